"""Every notebook in notebooks/ executes without a cell error (nbclient, a fresh kernel each).

The notebooks run from a temporary copy, so the committed files and their outputs are never
touched.  The kernel is a subprocess of this test and inherits os.environ, hence the per-run
kernel cache that tests/conftest.py sets (AGJIT_CACHE_DIR, NUMBA_CACHE_DIR).  Plots use the
inline backend; MPLBACKEND is set to Agg so nothing could open a window even without it.
"""
import glob
import os
import shutil

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
CELL_TIMEOUT = 120


def test_there_are_notebooks():
    names = {os.path.basename(p) for p in NOTEBOOKS}
    assert {"tour.ipynb", "training.ipynb", "export.ipynb", "gluon.ipynb"} <= names, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_notebook_matches_its_source(path):
    """Each committed notebook holds exactly the cells of its jupytext source NAME.py (what
    notebooks/build.py builds from), so an edit of one without the other is caught."""
    jupytext = pytest.importorskip("jupytext")
    source = os.path.splitext(path)[0] + ".py"
    assert os.path.exists(source), "%s has no source %s" % (path, source)
    want = [(c.cell_type, c.source) for c in jupytext.read(source).cells]
    have = [(c.cell_type, c.source) for c in nbformat.read(path, as_version=4).cells]
    for i, (w, h) in enumerate(zip(want, have)):
        assert w == h, "%s cell %d differs from %s: run notebooks/build.py %s" % (
            os.path.basename(path), i, os.path.basename(source),
            os.path.basename(source)[:-3])
    assert len(want) == len(have), (len(want), len(have))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    copy = tmp_path / os.path.basename(path)
    shutil.copy(path, copy)
    nb = nbformat.read(str(copy), as_version=4)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert os.environ.get("AGJIT_CACHE_DIR"), "tests/conftest.py sets the per-run kernel cache"
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail("%s: a cell failed:\n%s" % (os.path.basename(path), str(e)[-3000:]),
                    pytrace=False)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    # the committed notebook carries its outputs (executed before committing)
    committed = nbformat.read(path, as_version=4)
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), \
        "%s is committed without outputs: run notebooks/build.py" % os.path.basename(path)
