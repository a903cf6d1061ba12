"""Build the notebooks of this folder from their sources and execute them in place, so they
are committed with their outputs::

    .venv/bin/python notebooks/build.py            # all of them
    .venv/bin/python notebooks/build.py tour       # one

Each notebook ``NAME.ipynb`` has its source in ``NAME.py``, a jupytext "percent" file
(``# %%`` starts a code cell, ``# %% [markdown]`` a text cell): plain Python that linters
and reviewers read like any other module.  Edit the ``.py`` files, not the ``.ipynb`` files;
tests/test_notebooks.py checks that every committed notebook holds exactly its source's
cells and executes every notebook.  Needs the ``notebooks`` extra (jupytext, nbclient,
ipykernel, matplotlib, scikit-learn).
"""
import os
import sys
import tempfile
import time

import jupytext
import nbformat
from nbclient import NotebookClient

HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}
NAMES = ("tour", "training", "export", "gluon")


def source_path(name):
    return os.path.join(HERE, name + ".py")


def read_source(name):
    """The notebook (cells only, no outputs) that ``NAME.py`` describes."""
    nb = jupytext.read(source_path(name))
    nb.metadata = {"kernelspec": KERNEL, "language_info": {"name": "python"}}
    for i, cell in enumerate(nb.cells):          # stable ids: small diffs on rebuild
        cell["id"] = "%s-%02d" % (name, i)
        cell.metadata = {}
    return nb


def build(name, timeout=120):
    nb = read_source(name)
    path = os.path.join(HERE, name + ".ipynb")
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": HERE}}).execute()
    fd, tmp = tempfile.mkstemp(prefix="." + name + ".", suffix=".tmp", dir=HERE)
    try:                                         # publish only a complete notebook
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    print("%s: executed in %.1f s" % (path, time.perf_counter() - t0))


if __name__ == "__main__":
    unknown = [n for n in sys.argv[1:] if n not in NAMES]
    if unknown:
        sys.exit("build.py: no notebook named %s (have: %s)" % (", ".join(unknown), ", ".join(NAMES)))
    for n in sys.argv[1:] or NAMES:
        build(n)
