"""The JIT: compiled forward and backward equal eager for every registered op, an MLP step,
recompile counting, strict mode, the disk cache across processes, corruption and read-only
fall-backs, tracing hazards and get_symbol of jitted calls.

Numba compiles take seconds, so the registry table is ONE jitted function applying every op
to its first sample, compared per op (one pytest parameter per op, so a bad lowering fails
its own test), and the whole run shares one kernel cache directory (tests/conftest.py).
This file compiles the table's forward kernel; its training-forward and backward kernels
are tests/test_jit_table_backward.py's (a file of their own: with ``--dist loadfile`` a file
runs on one worker, and the two table compiles were the largest set-ups of the suite, 240 s
and 183 s in one file).
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import agjit as mx
from symbol.registry import all_ops

# ops whose compiled result cannot be compared elementwise with an eager run
_SKIP = {
    "Dropout": "random mask (checked separately for train/predict identity)",
    "_CustomFunction": "exists only in recorded histories",
    "_jit_call": "exists only in recorded histories",
}


def _table_ops():
    ops = []
    rs = np.random.RandomState(7)
    for op in all_ops():
        if op.name in _SKIP or op.samples is None:
            continue
        s = op.samples(rs)
        if not s:
            continue
        ops.append((op, s[0]))
    return ops


TABLE = _table_ops()


def _apply_all(*arrays):
    outs = []
    k = 0
    for op, sample in TABLE:
        n = len(sample.inputs)
        ins = list(arrays[k:k + n])
        k += n
        r = mx.nd.invoke(op, ins, dict(sample.attrs))
        outs.extend(r if isinstance(r, list) else [r])
    return tuple(outs)


def _inputs():
    # float samples run in float64; integer samples (indices of batch_take, ...) keep their dtype
    return [mx.nd.array(a, dtype="float64" if np.asarray(a).dtype.kind == "f" else np.asarray(a).dtype)
            for op, s in TABLE for a in s.inputs]


@pytest.fixture(scope="module")
def table_fn():
    return mx.jit(_apply_all)


def _forward_slices():
    """(op, start, stop) of each table op's visible outputs in the flat output tuple."""
    out = []
    i = 0
    for op, sample in TABLE:
        attrs = op.parse_attrs(dict(sample.attrs, **({op.variadic: len(sample.inputs)}
                                                     if op.variadic else {})))
        n_vis = op.num_visible(attrs)
        out.append((i, i + n_vis))
        i += n_vis
    return out


@pytest.fixture(scope="module")
def table_forward(table_fn):
    """Eager and compiled outputs of the whole table (ONE compiled kernel for every op)."""
    ins = _inputs()
    # random ops (the _random_*/_sample_* samplers) draw the same numbers from the same seed
    mx.random.seed(11)
    eager = _apply_all(*ins)
    mx.random.seed(11)
    comp = table_fn(*ins)
    return eager, comp


_SLICES = _forward_slices()
_IN_SLICES = []
_k = 0
for _op, _s in TABLE:
    _IN_SLICES.append((_k, _k + len(_s.inputs)))
    _k += len(_s.inputs)
_IDS = [op.name for op, _s in TABLE]


@pytest.mark.parametrize("k", range(len(TABLE)), ids=_IDS)
def test_compiled_forward_equals_eager(table_forward, k):
    """One op's outputs inside the whole-table kernel: a bad lowering fails its own test."""
    eager, comp = table_forward
    op = TABLE[k][0]
    assert len(eager) == len(comp) == _SLICES[-1][1]
    for i in range(*_SLICES[k]):
        np.testing.assert_allclose(comp[i].asnumpy(), eager[i].asnumpy(), rtol=1e-6, atol=1e-9,
                                   err_msg="compiled forward of %s" % op.name)
        assert comp[i].dtype == eager[i].dtype, op.name


def _mlp_params(rs):
    w1 = mx.nd.array(rs.randn(16, 10) * 0.3)
    b1 = mx.nd.zeros((16,))
    w2 = mx.nd.array(rs.randn(3, 16) * 0.3)
    b2 = mx.nd.zeros((3,))
    return [w1, b1, w2, b2]


def test_mlp_sgd_compiled_matches_eager():
    rs = np.random.RandomState(0)
    x = mx.nd.array(rs.randn(8, 10))
    label = mx.nd.array(rs.randint(0, 3, size=8))
    results = []
    for use_jit in (False, True):
        params = _mlp_params(np.random.RandomState(1))
        w1, b1, w2, b2 = params
        for p in params:
            p.attach_grad()

        def loss_fn(x, label):
            h = mx.nd.relu(mx.nd.FullyConnected(x, w1, b1, num_hidden=16))
            out = mx.nd.FullyConnected(h, w2, b2, num_hidden=3)
            return mx.nd.softmax_cross_entropy(out, label) / 8

        f = mx.jit(loss_fn) if use_jit else loss_fn
        losses = []
        for step in range(5):
            with mx.autograd.record():
                loss = f(x, label)
            loss.backward()
            losses.append(float(loss.asscalar()))
            for p in params:
                p[:] = p - 0.5 * p.grad
        results.append((losses, [p.asnumpy() for p in params]))
        if use_jit:
            info = f.cache_info()
            assert info.traces == 1 and info.hits == 4, info
    (l0, p0), (l1, p1) = results
    np.testing.assert_allclose(l1, l0, rtol=1e-5)
    assert l1[-1] < l1[0]
    for a, b in zip(p1, p0):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_new_batch_size_retraces_without_compiling():
    w = mx.nd.array(np.random.RandomState(2).randn(5, 4))

    @mx.jit
    def f(x):
        return mx.nd.tanh(mx.nd.dot(x, w)) * 2 + 1

    f(mx.nd.ones((3, 5)))
    c0 = f.cache_info()
    y = f(mx.nd.ones((7, 5)))
    c1 = f.cache_info()
    assert y.shape == (7, 4)
    assert c1.traces == c0.traces + 1
    assert c1.compiles == c0.compiles, (c0, c1)
    assert "x: now float32[7,5], before float32[3,5]" in f.explain()
    f(mx.nd.ones((7, 5)))
    assert f.cache_info().hits == c1.hits + 1


def test_strict_mode_raises_on_retrace():
    f = mx.jit(lambda x: x * 2, strict=True)
    f(mx.nd.ones((2,)))
    f(mx.nd.ones((2,)))
    with pytest.raises(mx.MXNetError, match="strict"):
        f(mx.nd.ones((3,)))


def test_static_arguments_and_unhashable_refused():
    @mx.jit
    def f(x, k):
        return x * k

    assert f(mx.nd.ones((2,)), 3).asnumpy().tolist() == [3.0, 3.0]
    assert f(mx.nd.ones((2,)), 4).asnumpy().tolist() == [4.0, 4.0]
    assert f.cache_info().traces == 2
    with pytest.raises(mx.MXNetError, match="hashable"):
        f(mx.nd.ones((2,)), [1, 2])


def test_captured_parameters_are_read_by_reference():
    w = mx.nd.ones((3,))

    @mx.jit
    def f(x):
        return x * w

    x = mx.nd.array([1.0, 2.0, 3.0])
    assert f(x).asnumpy().tolist() == [1.0, 2.0, 3.0]
    w[:] = 2
    assert f(x).asnumpy().tolist() == [2.0, 4.0, 6.0]
    assert f.cache_info().traces == 1


def test_outputs_are_fresh_unless_reuse_outputs():
    f = mx.jit(lambda x: x + 1)
    x = mx.nd.ones((2,))
    a = f(x)
    b = f(x * 2)
    assert a.asnumpy().tolist() == [2.0, 2.0] and b.asnumpy().tolist() == [3.0, 3.0]
    g = mx.jit(lambda x: x + 1, reuse_outputs=True)
    a = g(x)
    g(x * 2)
    assert a.asnumpy().tolist() == [3.0, 3.0]


def test_tracing_hazard_warns():
    @mx.jit
    def f(x):
        if float(x.sum().asscalar()) > 0:
            return x * 2
        return x

    with pytest.warns(RuntimeWarning, match="frozen"):
        f(mx.nd.ones((2,)))


def test_get_symbol_of_jitted_output_is_inlined():
    x = mx.nd.array([1.0, 2.0])
    x.attach_grad()
    f = mx.jit(lambda x: mx.nd.exp(x) * 3)
    with mx.autograd.record():
        y = f(x) + 1
    sym = mx.autograd.get_symbol(y)
    ops = [n["op"] for n in __import__("json").loads(sym.tojson())["nodes"]]
    assert ops == ["null", "exp", "_mul_scalar", "_plus_scalar"]
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 3 * np.exp([1.0, 2.0]), rtol=1e-6)


def test_grad_req_add_accumulates_through_jit():
    x = mx.nd.array([1.0, 2.0])
    x.attach_grad(grad_req="add")
    f = mx.jit(lambda x: x * x)
    for _ in range(2):
        with mx.autograd.record():
            y = f(x)
        y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), [4.0, 8.0])


def test_source_comments_and_symbol():
    @mx.jit
    def f(x):
        return mx.nd.sigmoid(x) + 1

    f(mx.nd.ones((2, 2)))
    src = f.source()
    assert "sigmoid" in src and "test_jit.py:" in src and "f32[2,2]" in src
    assert f.symbol().list_arguments() == ["x"]


def test_dropout_compiled_train_and_predict():
    f = mx.jit(lambda x: mx.nd.Dropout(x, p=0.5))
    x = mx.nd.ones((2000,))
    assert np.array_equal(f(x).asnumpy(), np.ones(2000, dtype=np.float32))
    with mx.autograd.train_mode():
        y = f(x).asnumpy()
    assert abs((y == 0).mean() - 0.5) < 0.05
    assert set(np.unique(y).tolist()) <= {0.0, 2.0}


_CHILD = textwrap.dedent("""
    import json, numpy as np, agjit as mx
    w = mx.nd.array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10)
    @mx.jit
    def f(x):
        return mx.nd.sum(mx.nd.tanh(mx.nd.dot(x, w)) * 2)
    x = mx.nd.ones((5, 4))
    y = float(f(x).asscalar())
    print(json.dumps({"y": y, "info": f.cache_info()._asdict()}))
""")


def _child(env):
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    import json
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_fresh_process_with_warm_cache_compiles_nothing(tmp_path):
    env = dict(os.environ, AGJIT_CACHE_DIR=str(tmp_path / "a"), NUMBA_CACHE_DIR=str(tmp_path / "n"))
    first = _child(env)
    second = _child(env)
    assert first["info"]["compiles"] >= 1
    assert second["info"]["compiles"] == 0 and second["info"]["disk_hits"] > 0, second
    assert second["y"] == first["y"]


def test_two_processes_compiling_concurrently(tmp_path):
    env = dict(os.environ, AGJIT_CACHE_DIR=str(tmp_path / "a"), NUMBA_CACHE_DIR=str(tmp_path / "n"))
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    ys = [__import__("json").loads(o[0].strip().splitlines()[-1])["y"] for o in outs]
    assert ys[0] == ys[1]


def test_corrupted_cache_file_is_rebuilt(tmp_path):
    env = dict(os.environ, AGJIT_CACHE_DIR=str(tmp_path / "a"), NUMBA_CACHE_DIR=str(tmp_path / "n"))
    first = _child(env)
    files = [f for f in os.listdir(tmp_path / "a") if f.endswith(".py")]
    assert files
    for f in files:
        p = tmp_path / "a" / f
        p.write_text(p.read_text()[:40])          # truncate
    code = "import warnings; warnings.simplefilter('always')\n" + _CHILD
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "corrupted" in out.stderr
    import json
    assert json.loads(out.stdout.strip().splitlines()[-1])["y"] == first["y"]


def test_read_only_cache_dir_falls_back_to_memory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):
            # root ignores permission bits: make the directory impossible to create instead
            blocker = tmp_path / "blocker"
            blocker.write_text("a file where the cache directory's parent should be")
            cache = blocker / "k"
        else:
            cache = ro / "k"
        env = dict(os.environ, AGJIT_CACHE_DIR=str(cache), NUMBA_CACHE_DIR=str(tmp_path / "n"))
        out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert "not usable" in out.stderr and "in memory" in out.stderr
        import json
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["info"]["disk_hits"] == 0
    finally:
        os.chmod(ro, 0o700)


def test_disk_cache_disabled(tmp_path, monkeypatch):
    monkeypatch.setenv("AGJIT_CACHE", "0")
    monkeypatch.setenv("AGJIT_CACHE_DIR", str(tmp_path / "off"))
    f = mx.jit(lambda x: mx.nd.cos(x) * 7 - 2)
    np.testing.assert_allclose(f(mx.nd.array([0.0])).asnumpy(), [5.0])
    assert not (tmp_path / "off").exists()


def test_executor_runs_compiled_kernels_after_warmup():
    data = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(data, num_hidden=4, name="fc")
    net = mx.sym.Activation(net, act_type="tanh", name="act")
    ex = net.simple_bind(mx.cpu(), data=(3, 5))
    rs = np.random.RandomState(0)
    for name in net.list_arguments():
        ex.arg_dict[name][:] = rs.uniform(-1, 1, size=ex.arg_dict[name].shape)
    hg = mx.nd.array(rs.randn(3, 4))
    results = []
    for _ in range(4):
        out = ex.forward(is_train=True)[0].asnumpy()
        ex.backward(hg)
        results.append((out, ex.grad_dict["fc_weight"].asnumpy().copy()))
    g = ex._compiled
    assert not g.interpreted
    assert any("seg0" in k.lowered.source for k in g.kernels())   # a Numba segment ran
    for out, gw in results[1:]:
        np.testing.assert_allclose(out, results[0][0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gw, results[0][1], rtol=1e-5, atol=1e-6)
    # and the numbers are eager autograd's
    x = ex.arg_dict["data"].copy()
    w = ex.arg_dict["fc_weight"].copy()
    b = ex.arg_dict["fc_bias"].copy()
    w.attach_grad()
    with mx.autograd.record():
        y = mx.nd.tanh(mx.nd.FullyConnected(x, w, b, num_hidden=4))
    y.backward(hg)
    np.testing.assert_allclose(results[-1][0], y.asnumpy(), rtol=1e-5)
    np.testing.assert_allclose(results[-1][1], w.grad.asnumpy(), rtol=1e-5, atol=1e-6)


def test_kernel_key_is_built_from_named_parts(tmp_path, monkeypatch):
    import dataclasses
    from agjit.compiler import cache
    k1 = cache.KernelKey(graph="g", inputs=(("float32", 2, "C"),), training=False,
                         grad_mask=(), kind="forward")
    assert set(k1.parts()) == {"graph", "inputs", "training", "grad_mask", "kind", "agjit",
                               "numba", "numpy", "library"}
    for field, value in [("numba", "0.0"), ("library", "x"), ("training", True),
                         ("inputs", (("float64", 2, "C"),)), ("grad_mask", (True,))]:
        assert dataclasses.replace(k1, **{field: value}).digest() != k1.digest(), field
    # a new dtype gives a new cache file whose header lists the key parts
    monkeypatch.setenv("AGJIT_CACHE_DIR", str(tmp_path / "k"))
    f = mx.jit(lambda x: mx.nd.exp(x) + 1)
    f(mx.nd.ones((2,), dtype="float32"))
    f(mx.nd.ones((2,), dtype="float64"))
    files = sorted((tmp_path / "k").glob("k_*.py"))
    assert len(files) == 2
    assert all(p.read_text().startswith("# kernel key: graph=") for p in files)


def test_compiled_dropout_is_seeded_by_mx_random_seed():
    f = mx.jit(lambda x: mx.nd.Dropout(x, p=0.5) * 1)
    x = mx.nd.ones((64,))
    masks = []
    for _ in range(2):
        mx.random.seed(11)
        with mx.autograd.train_mode():
            masks.append(f(x).asnumpy())
    np.testing.assert_array_equal(masks[0], masks[1])
    mx.random.seed(12)
    with mx.autograd.train_mode():
        assert not np.array_equal(f(x).asnumpy(), masks[0])


def test_backward_of_a_single_jitted_call_keeps_autograd_semantics():
    # the fast path (gradients written straight into .grad) must free the graph, honour
    # head gradients and retain_graph exactly like the general tape walk
    x = mx.nd.array([1.0, 2.0, 3.0])
    c = mx.nd.array([0.5, 0.5, 0.5])           # a constant input: no gradient
    x.attach_grad()
    f = mx.jit(lambda x, c: x * x * c)
    with mx.autograd.record():
        y = f(x, c)
    y.backward(mx.nd.array([1.0, 2.0, 3.0]), retain_graph=True)
    np.testing.assert_allclose(x.grad.asnumpy(), [1.0, 4.0, 9.0])
    y.backward()                               # retained: works again, then frees
    np.testing.assert_allclose(x.grad.asnumpy(), [1.0, 2.0, 3.0])
    with pytest.raises(mx.MXNetError):
        y.backward()
    with pytest.raises(mx.MXNetError):
        mx.autograd.get_symbol(y)
    n = mx.nd.array([1.0, 1.0, 1.0])
    n.attach_grad(grad_req="null")
    with mx.autograd.record():
        z = f(n, c)
    with pytest.raises(mx.MXNetError, match="require gradients"):
        z.backward()


# --- step mode (agjit.compiler.step note *step-mode*), parallel variants (lower note *parallel-loops*) ---
def _w2_loss(x, a, b):
    return mx.nd.sum(mx.nd.tanh(x * a + b) * mx.nd.sigmoid(x) + x * x)


def _w2_grads(x, a, b):
    """float64 reference gradients of _w2_loss."""
    x, a, b = (np.asarray(v, np.float64) for v in (x, a, b))
    t = np.tanh(x * a + b)
    s = 1 / (1 + np.exp(-x))
    g = (1 - t * t) * s
    return float(np.sum(t * s + x * x)), g * a + t * s * (1 - s) + 2 * x, g * x, g


@pytest.fixture(scope="module")
def w2_fn():
    return mx.jit(_w2_loss)


def _w2_arrays(n, seed=0):
    rs = np.random.RandomState(seed)
    arrs = [mx.nd.array(rs.randn(n).astype(np.float32)) for _ in range(3)]
    for t in arrs:
        t.attach_grad()
    return arrs


@pytest.mark.parametrize("n", [1000, 3 * (1 << 14) + 17])   # serial / parallel variant
def test_step_kernel_serial_and_parallel_match_reference(w2_fn, n):
    from agjit.compiler import lower
    xs = _w2_arrays(n)
    for _ in range(2):                      # second step: swapped buffers are reused
        with mx.autograd.record():
            loss = w2_fn(*xs)
        loss.backward()
    ref = _w2_grads(*(t.asnumpy() for t in xs))
    np.testing.assert_allclose(float(loss.asscalar()), ref[0], rtol=2e-6)
    for t, r in zip(xs, ref[1:]):
        np.testing.assert_allclose(t.grad.asnumpy(), r, rtol=2e-5, atol=2e-6)
    tr = w2_fn._last
    (mask, plan), = [(k, v) for k, v in tr._step_plans.items() if v is not None]
    assert plan.P["par0"] == (n >= lower.RED_SERIAL_MAX)
    assert "prange" in w2_fn.source()
    assert not tr.compiled.bwd, "step mode must not compile the separate backward kernels"
    assert ("recorded calls with gradients for x, a, b: step mode (one forward+backward "
            "kernel%s)" % (", parallel loops in seg0" if n >= lower.RED_SERIAL_MAX else "")
            ) in w2_fn.explain()


def test_step_mode_hands_over_gradient_buffers_only_when_unreferenced(w2_fn):
    xs = _w2_arrays(64, seed=1)
    seen = set()
    for _ in range(3):
        with mx.autograd.record():
            loss = w2_fn(*xs)
        loss.backward()
        seen.add(id(xs[0].grad._data))
    assert len(seen) > 1                     # the step's buffers were swapped in
    held = xs[0].grad                        # now referenced: copied into, never swapped
    for k in range(3):
        xs[0][:] = xs[0] * 0.5
        with mx.autograd.record():
            loss = w2_fn(*xs)
        loss.backward()
        ref = _w2_grads(*(t.asnumpy() for t in xs))
        np.testing.assert_allclose(held.asnumpy(), ref[1], rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(xs[0].grad.asnumpy(), ref[1], rtol=2e-5, atol=2e-6)


def test_step_mode_other_head_gradients_fall_back_and_stop_speculating():
    f = mx.jit(_w2_loss)
    xs = _w2_arrays(50, seed=2)
    ref = _w2_grads(*(t.asnumpy() for t in xs))
    with mx.autograd.record():
        loss = f(*xs)
    loss.backward(mx.nd.array([3.0]))
    for t, r in zip(xs, ref[1:]):
        np.testing.assert_allclose(t.grad.asnumpy(), 3 * r, rtol=2e-5, atol=2e-6)
    assert f._last._step_plans and all(v is None for v in f._last._step_plans.values())
    assert "step mode switched off: a backward asked for head gradients other than ones" \
        in f.explain()
    with mx.autograd.record():              # later calls use forward_train + backward
        loss = f(*xs) * 2
    loss.backward()
    for t, r in zip(xs, ref[1:]):
        np.testing.assert_allclose(t.grad.asnumpy(), 2 * r, rtol=2e-5, atol=2e-6)


def test_step_mode_retain_graph_add_and_two_calls_in_flight(w2_fn):
    xs = _w2_arrays(40, seed=3)
    for t in xs:
        t.attach_grad(grad_req="add")
    with mx.autograd.record():
        l1 = w2_fn(*xs)
    ys = [mx.nd.array(t.asnumpy() * 0.5) for t in xs]
    for t in ys:
        t.attach_grad()
    with mx.autograd.record():
        l2 = w2_fn(*ys)                       # a second call before the first backward
    l1.backward(retain_graph=True)
    l1.backward()
    l2.backward()
    r1 = _w2_grads(*(t.asnumpy() for t in xs))
    r2 = _w2_grads(*(t.asnumpy() for t in ys))
    for t, r in zip(xs, r1[1:]):
        np.testing.assert_allclose(t.grad.asnumpy(), 2 * r, rtol=2e-5, atol=2e-6)
    for t, r in zip(ys, r2[1:]):
        np.testing.assert_allclose(t.grad.asnumpy(), r, rtol=2e-5, atol=2e-6)


def test_gradient_flows_into_a_jitted_call_through_recorded_ops():
    # an input computed by recorded ops (not a leaf) must get its gradient
    f = mx.jit(lambda h, x: mx.nd.sum(h * x))
    w = mx.nd.array([1.0, 2.0])
    x = mx.nd.array([3.0, 4.0])
    w.attach_grad()
    x.attach_grad()
    with mx.autograd.record():
        h = w * 2
        loss = f(h, x)
    loss.backward()
    np.testing.assert_allclose(w.grad.asnumpy(), [6.0, 8.0])
    np.testing.assert_allclose(x.grad.asnumpy(), [2.0, 4.0])


def test_views_and_detach_inside_a_jitted_function_stay_graph_values():
    # x.reshape / x[a:b] / x[i] / x.detach() used to return plain NumPy views while tracing:
    # the traced graph captured them as constants and later calls reused the first values
    f = mx.jit(lambda x: (x.reshape((3, 2)) * 2).sum() + x[1:3].sum() + x[2].sum()
               + (x.detach() * 3).sum())
    for v in (np.arange(6.0), np.ones(6), np.linspace(-1, 1, 6)):
        got = f(mx.nd.array(v)).asnumpy()
        want = 2 * v.sum() + v[1:3].sum() + v[2] + 3 * v.sum()
        np.testing.assert_allclose(got, [want], rtol=1e-6)
    x = mx.nd.array(np.arange(6.0))
    x.attach_grad()
    with mx.autograd.record():
        y = f(x)
    y.backward()
    # d/dx: 2 (reshape) + [0,1,1,0,0,0] (slice) + [0,0,1,0,0,0] (x[2]) + 0 (detach)
    np.testing.assert_allclose(x.grad.asnumpy(), [2, 3, 4, 2, 2, 2])
    assert "capture" not in f.symbol().tojson()


_PAR_THREADS_CHILD = textwrap.dedent("""
    import threading, numpy as np, agjit as mx
    nd = mx.nd
    f = mx.jit(lambda x, a, b: nd.sum(nd.tanh(x * a + b) * nd.sigmoid(x) + x * x))
    out = {}
    def work(seed):
        rs = np.random.RandomState(seed)
        xs = [nd.array(rs.randn(40000).astype(np.float32)) for _ in range(3)]
        for t in xs:
            t.attach_grad()
        for _ in range(30):
            with mx.autograd.record():
                loss = f(*xs)
            loss.backward()
        out[seed] = (float(loss.asscalar()), float(xs[0].grad.asnumpy().sum()))
    work(0)                                     # compile (the parallel variant) first
    ts = [threading.Thread(target=work, args=(i,)) for i in range(1, 4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    import numba
    print(numba.threading_layer(), len(out), f._last._step_plans[(True, True, True)].P["par0"])
""")


def test_parallel_kernels_from_several_threads_with_the_workqueue_layer():
    # Numba's workqueue layer aborts the process on concurrent parallel launches; agjit
    # serialises its parallel segment variants (rt.PAR_LOCK)
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    out = subprocess.run([sys.executable, "-c", _PAR_THREADS_CHILD], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["workqueue", "4", "True"], out.stdout


def test_step_mode_is_off_for_random_ops_and_gradients_follow_the_drawn_mask():
    f = mx.jit(lambda x: mx.nd.sum(mx.nd.Dropout(x, p=0.5) * x))
    x = mx.nd.array(np.linspace(1, 2, 1000))
    x.attach_grad()
    with mx.autograd.record():
        loss = f(x)
    loss.backward()
    assert "step mode is off for graphs with Dropout" in f.explain()
    g = x.grad.asnumpy()
    # d/dx (m * x * x) = 2 m x with m in {0, 2}: the backward used the forward's mask
    kept = g != 0
    assert 0.4 < kept.mean() < 0.6
    np.testing.assert_allclose(g[kept], 4 * x.asnumpy()[kept], rtol=1e-6)
    np.testing.assert_allclose(float(loss.asscalar()),
                               float((2 * x.asnumpy()[kept] ** 2).sum()), rtol=1e-5)
