"""The layout of agjit.compiler: what is part of a kernel's cache key, what generated code
imports, and module sizes (issue 12: one concept per module, no file over ~400 lines)."""
import os
import re
import shutil

import numpy as np

import agjit as mx
from agjit.compiler import cache

HERE = os.path.dirname(os.path.abspath(cache.__file__))

# the runtime modules: none of them may be hashed into the kernel cache key, and generated
# code imports none of them (it imports agjit.compiler.rt)
RUNTIME = ("jit.py", "signature.py", "trace.py", "program.py", "step.py", "buffers.py",
           "tape_bridge.py", "shapes.py")


def _hash_of(monkeypatch, folder):
    monkeypatch.setattr(cache, "__file__", os.path.join(folder, "cache.py"))
    monkeypatch.setattr(cache, "_LIB_HASH", [])
    return cache.library_hash()


def test_rewording_explain_invalidates_no_cached_kernel(tmp_path, monkeypatch):
    """The library hash (part of every KernelKey) covers rt.py, not the runtime: rewording
    explain() or the retrace messages leaves it alone; changing rt.py changes it."""
    assert "rt.py" in cache.LIBRARY_FILES
    assert not set(RUNTIME) & set(cache.LIBRARY_FILES)
    assert not os.path.exists(os.path.join(HERE, "runtime.py"))
    for f in os.listdir(HERE):
        if f.endswith(".py"):
            shutil.copy(os.path.join(HERE, f), tmp_path / f)
    before = _hash_of(monkeypatch, str(tmp_path))
    for f, phrase in (("jit.py", "eager segments in the replay:"),
                      ("signature.py", "closest previous differs in")):
        text = (tmp_path / f).read_text()
        assert phrase in text, (f, phrase)
        (tmp_path / f).write_text(text.replace(phrase, phrase.upper()))
    for f in RUNTIME:
        with open(tmp_path / f, "a") as fh:
            fh.write("\n# reworded\n")
    assert _hash_of(monkeypatch, str(tmp_path)) == before
    with open(tmp_path / "rt.py", "a") as fh:
        fh.write("\n# changed\n")
    assert _hash_of(monkeypatch, str(tmp_path)) != before


def test_generated_code_imports_only_rt_from_the_runtime():
    f = mx.jit(lambda x: mx.nd.relu(x) * 2 + 1)
    x = mx.nd.array(np.arange(6, dtype=np.float32).reshape(2, 3) - 2)
    np.testing.assert_allclose(f(x).asnumpy(), np.maximum(x.asnumpy(), 0) * 2 + 1)
    src = f.source()
    mods = set(re.findall(r"^\s*(?:from|import)\s+agjit\.compiler\.(\w+)", src, re.M))
    assert "rt" in mods or "_eager" not in src, mods
    assert not {m + ".py" for m in mods} & set(RUNTIME), mods
    assert "agjit.compiler.runtime" not in src


def test_compiler_modules_stay_small():
    """No runtime module over ~400 lines (issue 12)."""
    sizes = {}
    for f in RUNTIME + ("rt.py",):
        with open(os.path.join(HERE, f)) as fh:
            sizes[f] = sum(1 for _ in fh)
    assert max(sizes.values()) <= 420, sizes
    with open(os.path.join(HERE, "rt.py")) as fh:
        rt = fh.read()
    # rt.py holds only what generated code imports
    assert set(re.findall(r"^(?:class|def) (\w+)", rt, re.M)) == {"eager_op"}
    assert "PAR_LOCK" in rt
