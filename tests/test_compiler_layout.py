"""The layout of agjit.compiler: what is part of a kernel's cache key, what generated code
imports, and module sizes (issue 12: one concept per module, no file over ~400 lines)."""
import os
import re
import shutil

import pytest
import numpy as np

import agjit as mx
from agjit.compiler import cache

HERE = os.path.dirname(os.path.abspath(cache.__file__))

# the runtime modules: none of them may be hashed into the kernel cache key, and generated
# code imports none of them (it imports agjit.compiler.rt)
RUNTIME = ("decorator.py", "signature.py", "trace.py", "program.py", "step.py", "buffers.py",
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
    assert "runtime.py" not in cache.LIBRARY_FILES
    for f in os.listdir(HERE):
        if f.endswith(".py"):
            shutil.copy(os.path.join(HERE, f), tmp_path / f)
    before = _hash_of(monkeypatch, str(tmp_path))
    for f, phrase in (("decorator.py", "eager segments in the replay:"),
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


def test_source_names_the_cache_file_each_kernel_was_loaded_from():
    f = mx.jit(lambda x: mx.nd.sigmoid(x) * 3 - 1)
    f(mx.nd.array(np.linspace(-2, 2, 5, dtype=np.float32)))
    src = f.source()
    heads = re.findall(r"^# ---- (\S+) kernel \((.*)\) ----$", src, re.M)
    assert heads, src[:200]
    for kind, path in heads:
        if path == "in memory":
            continue
        assert os.path.isfile(path), path
        assert os.path.realpath(path).startswith(
            os.path.realpath(os.environ["AGJIT_CACHE_DIR"])), path
        with open(path) as fh:
            body = fh.read()
        text = src.split("# ---- %s kernel (%s) ----\n" % (kind, path), 1)[1]
        assert text.split("\n# ---- ")[0].strip() in body


def test_runtime_is_only_a_thin_compatibility_shim():
    """agjit/compiler/runtime.py (the old 1,216-line runtime) only re-exports names."""
    import ast
    with open(os.path.join(HERE, "runtime.py")) as fh:
        tree = ast.parse(fh.read())
    kinds = {type(n).__name__ for n in tree.body}
    assert kinds <= {"Expr", "ImportFrom", "Assign"}, kinds
    import importlib
    runtime = importlib.import_module("agjit.compiler.runtime")
    rt = importlib.import_module("agjit.compiler.rt")
    jit_module = importlib.import_module("agjit.compiler.decorator")
    assert runtime.eager_op is rt.eager_op and runtime.jit is jit_module.jit


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


# --- symbol never imports agjit ---------------------------------------------------------------
SYMBOL_DIR = os.path.join(os.path.dirname(HERE), os.pardir, "symbol")

_BLOCKED = r'''
import sys


class _NoAgjit:
    """A meta-path finder that refuses agjit and everything under it."""

    def find_spec(self, name, path=None, target=None):
        if name == "agjit" or name.startswith("agjit."):
            raise ImportError("agjit is blocked in this test")
        return None


sys.meta_path.insert(0, _NoAgjit())
import json
import symbol as sym
from symbol.base import MXNetError

data = sym.Variable("data")
net = sym.SoftmaxOutput(sym.Activation(sym.FullyConnected(data, num_hidden=4, name="fc"),
                                       act_type="relu"), name="out")
arg_shapes, out_shapes, aux_shapes = net.infer_shape(data=(2, 3))
back = sym.load_json(net.tojson())
assert back.tojson() == net.tojson()
grad = net.gradient(["fc_weight"])
try:
    net.simple_bind(None, data=(2, 3))
except MXNetError as e:
    bind_error = str(e)
else:
    bind_error = None
assert not [m for m in sys.modules if m == "agjit" or m.startswith("agjit.")]
print(json.dumps({"args": net.list_arguments(), "arg_shapes": arg_shapes,
                  "out_shapes": out_shapes, "grad_outputs": grad.list_outputs(),
                  "bind_error": bind_error}))
'''


def test_symbol_works_with_agjit_blocked():
    """``symbol`` builds, serialises, infers and differentiates graphs with agjit blocked;
    binding says it needs agjit."""
    import json
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(HERE))
    env = dict(os.environ, PYTHONPATH=root)
    r = subprocess.run([sys.executable, "-c", _BLOCKED], capture_output=True, text=True,
                       env=env, cwd=root, timeout=120)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["args"] == ["data", "fc_weight", "fc_bias", "out_label"]
    assert got["arg_shapes"] == [[2, 3], [4, 3], [4], [2]]
    assert got["out_shapes"] == [[2, 4]]
    assert got["grad_outputs"] == ["fc_weight_grad"]
    assert "import agjit" in got["bind_error"]


def test_symbol_sources_import_nothing_from_agjit():
    """No ``import agjit`` / ``from agjit`` anywhere in symbol/, not even inside functions."""
    import ast
    bad = []
    for dirpath, _dirs, files in os.walk(os.path.normpath(SYMBOL_DIR)):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(dirpath, f)
            with open(path) as fh:
                tree = ast.parse(fh.read(), path)
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module or ""]
                elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                        node.func, "id", None)) in ("import_module", "__import__"):
                    names = [a.value for a in node.args[:1] if isinstance(a, ast.Constant)]
                bad += ["%s:%d %s" % (path, node.lineno, n) for n in names
                        if n == "agjit" or str(n).startswith("agjit.")]
    assert not bad, bad


def test_bind_reaches_the_executor_through_the_hook():
    import symbol as sym
    from symbol import executor as hook
    from agjit import executor
    assert hook.executor_factory() is executor
    a = sym.Variable("a")
    ex = (a * 2).bind(mx.cpu(), {"a": mx.nd.array([1.0, 2.0])})
    assert isinstance(ex, executor.Executor)
    np.testing.assert_allclose(ex.forward()[0].asnumpy(), [2.0, 4.0])


class _Picky(mx.operator.CustomOp):
    """Doubles its input; refuses (at run time, inside a compiled replay) a large sum."""

    def forward(self, is_train, req, in_data, out_data, aux):
        if in_data[0].asnumpy().sum() > 100:
            raise ValueError("picky: sum too large")
        self.assign(out_data[0], req[0], in_data[0] * 2)

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        self.assign(in_grad[0], req[0], out_grad[0] * 2)


@mx.operator.register("layout_picky")
class _PickyProp(mx.operator.CustomOpProp):
    def list_arguments(self):
        return ["data"]

    def infer_shape(self, in_shape):
        return in_shape, in_shape, []

    def create_operator(self, ctx, shapes, dtypes):
        return _Picky()


def test_an_error_inside_a_replay_names_the_running_node_through_the_line_map():
    f = mx.jit(lambda x: mx.nd.relu(mx.nd.Custom(mx.nd.exp(x), op_type="layout_picky")) + 1)
    np.testing.assert_allclose(f(mx.nd.ones((3,))).asnumpy(), 2 * np.e + 1, rtol=1e-6)
    with pytest.raises(ValueError, match="picky") as ei:
        f(mx.nd.ones((3,)) * 10)                 # same signature: the cached replay raises
    notes = getattr(ei.value, "__notes__", [])
    assert len(notes) == 1, notes
    assert re.search(r"forward kernel at node n\d+ \(Custom\), generated line \d+ of ", notes[0]), notes
    # the line named is the one running the Custom node in the kernel file
    line = int(re.search(r"generated line (\d+)", notes[0]).group(1))
    path = notes[0].rsplit(" of ", 1)[1]
    if os.path.isfile(path):
        with open(path) as fh:
            assert "forward(" in fh.read().splitlines()[line - 1]
