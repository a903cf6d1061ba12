"""gluon.rnn and the fused RNN op.

* the RNN op's gradient (``_backward_RNN``, BPTT in NumPy) against central finite
  differences in float64, for every mode, layers, directions, projection, clipping,
  sequence lengths and dropout (the registry table skips RNN's gradient because it draws
  random numbers);
* the op and the cells against an independent NumPy implementation of the step formulas
  written here (gate orders LSTM i, f, g, o and GRU r, z, n with cuDNN's n gate);
* fused layers == the same weights in cells (``_unfuse`` and hand-built), TNC == NTC,
  hybridized == eager (outputs and gradients), deferred initialisation, MXNet's parameter
  names and shapes, the exported graph (``Reshape`` -> ``_rnn_param_concat`` -> ``RNN`` with
  MXNet's attrs), clear errors;
* goldens recorded from real MXNet 1.9.1 (tests/golden/gluon_rnn.json, made by
  :func:`_golden_cases` run under MXNet; regenerated and compared again when an MXNet
  interpreter exists), and export/import interop with real MXNet.
"""
import inspect
import json
import os
import subprocess
import textwrap

import numpy as np
import pytest

import agjit as mx
from symbol.base import MXNetError
from symbol.ops.rnn import rnn_param_size

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden", "gluon_rnn.json")
rnn = mx.gluon.rnn


# ---------------------------------------------------------------------------------------
# an independent NumPy reference of the recurrences
# ---------------------------------------------------------------------------------------
def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def ref_step(mode, x, h, c, wx, wh, bx, bh):
    """One step of a cell: x (N, C), h/c (N, H).  Returns (h', c')."""
    xa = x @ wx.T + bx
    ha = h @ wh.T + bh
    if mode == "lstm":
        i, f, g, o = np.split(xa + ha, 4, axis=1)
        c2 = _sig(f) * c + _sig(i) * np.tanh(g)
        return _sig(o) * np.tanh(c2), c2
    if mode == "gru":
        xr, xz, xn = np.split(xa, 3, axis=1)
        hr, hz, hn = np.split(ha, 3, axis=1)
        r, z = _sig(xr + hr), _sig(xz + hz)
        n = np.tanh(xn + r * hn)
        return (1 - z) * n + z * h, None
    pre = xa + ha
    return (np.tanh(pre) if mode == "rnn_tanh" else np.maximum(pre, 0)), None


def ref_unroll(mode, xs, h, c, w, reverse=False):
    """xs (T, N, C) -> outputs (T, N, H), h_T, c_T."""
    T = xs.shape[0]
    outs = [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        h, c = ref_step(mode, xs[t], h, c, *w)
        outs[t] = h
    return np.stack(outs), h, c


def ref_fused(mode, x, params, h0, c0, H, L, D):
    """The fused op from the reference steps (MXNet's packing: all weights, then biases)."""
    G = {"lstm": 4, "gru": 3}.get(mode, 1)
    off = 0
    ws = {}
    for layer in range(L):
        ni = x.shape[2] if layer == 0 else D * H
        for d in range(D):
            wx = params[off:off + G * H * ni].reshape(G * H, ni)
            off += G * H * ni
            wh = params[off:off + G * H * H].reshape(G * H, H)
            off += G * H * H
            ws[layer, d] = [wx, wh]
    for layer in range(L):
        for d in range(D):
            ws[layer, d] += [params[off:off + G * H], params[off + G * H:off + 2 * G * H]]
            off += 2 * G * H
    assert off == params.size
    inp, hs, cs = x, [], []
    for layer in range(L):
        ys = []
        for d in range(D):
            k = layer * D + d
            y, h, c = ref_unroll(mode, inp, h0[k], None if c0 is None else c0[k], ws[layer, d], d == 1)
            ys.append(y)
            hs.append(h)
            cs.append(c)
        inp = np.concatenate(ys, axis=2)
    return inp, np.stack(hs), (np.stack(cs) if c0 is not None else None)


def _rand_rnn_inputs(rs, mode, T, N, C, H, L, D, proj=None):
    attrs = {"state_size": H, "num_layers": L, "mode": mode, "bidirectional": D == 2,
             "projection_size": proj, "p": 0.0, "lstm_state_clip_min": None,
             "lstm_state_clip_max": None}
    R = proj or H
    ins = [rs.uniform(-1, 1, (T, N, C)), rs.uniform(-0.7, 0.7, rnn_param_size(attrs, C)),
           rs.uniform(-0.5, 0.5, (L * D, N, R))]
    if mode == "lstm":
        ins.append(rs.uniform(-0.5, 0.5, (L * D, N, H)))
    return ins


@pytest.mark.parametrize("mode", ["rnn_relu", "rnn_tanh", "lstm", "gru"])
def test_rnn_op_matches_numpy_reference(mode):
    rs = np.random.RandomState(3)
    T, N, C, H, L, D = 4, 3, 2, 3, 2, 2
    ins = _rand_rnn_inputs(rs, mode, T, N, C, H, L, D)
    got = mx.nd.RNN(*[mx.nd.array(a, dtype="float64") for a in ins], state_size=H, num_layers=L,
                    mode=mode, bidirectional=True, state_outputs=True)
    y, h, c = ref_fused(mode, ins[0], ins[1], ins[2], ins[3] if mode == "lstm" else None, H, L, D)
    np.testing.assert_allclose(got[0].asnumpy(), y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1].asnumpy(), h, rtol=1e-12, atol=1e-12)
    if mode == "lstm":
        np.testing.assert_allclose(got[2].asnumpy(), c, rtol=1e-12, atol=1e-12)
    assert got[0].shape == (T, N, D * H) and got[1].shape == (L * D, N, H)


def test_rnn_op_lstm_projection_matches_reference():
    """LSTMP (cuDNN's projection; MXNet's CPU kernel has none): r' = W_hr (s(o) tanh(c')),
    weights i2h (4H, C), h2h (4H, P), h2r (P, H) per layer/direction, then the biases."""
    rs = np.random.RandomState(4)
    T, N, C, H, P = 3, 2, 2, 4, 2
    wx, wh, wr = rs.uniform(-1, 1, (4 * H, C)), rs.uniform(-1, 1, (4 * H, P)), rs.uniform(-1, 1, (P, H))
    bx, bh = rs.uniform(-1, 1, 4 * H), rs.uniform(-1, 1, 4 * H)
    x, r0, c0 = rs.uniform(-1, 1, (T, N, C)), rs.uniform(-1, 1, (1, N, P)), rs.uniform(-1, 1, (1, N, H))
    params = np.concatenate([wx.ravel(), wh.ravel(), wr.ravel(), bx, bh])
    got = mx.nd.RNN(*[mx.nd.array(a, dtype="float64") for a in (x, params, r0, c0)], state_size=H,
                    num_layers=1, mode="lstm", projection_size=P, state_outputs=True)
    r, c, ys = r0[0], c0[0], []
    for t in range(T):
        hfull, c = ref_step("lstm", x[t], r, c, wx, wh, bx, bh)
        r = hfull @ wr.T
        ys.append(r)
    np.testing.assert_allclose(got[0].asnumpy(), np.stack(ys), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1].asnumpy()[0], r, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[2].asnumpy()[0], c, rtol=1e-12, atol=1e-12)


def test_rnn_op_lstm_state_clipping():
    """c' is clipped to [lstm_state_clip_min, lstm_state_clip_max] after every step (cuDNN's
    semantics; MXNet's CPU kernel ignores the clip)."""
    rs = np.random.RandomState(0)
    T, N, C, H = 4, 2, 3, 3
    wx, wh = rs.uniform(-1.5, 1.5, (4 * H, C)), rs.uniform(-1.5, 1.5, (4 * H, H))
    bx, bh = rs.uniform(-1.5, 1.5, 4 * H), rs.uniform(-1.5, 1.5, 4 * H)
    x = rs.randn(T, N, C) * 2
    z = np.zeros((1, N, H))
    params = np.concatenate([wx.ravel(), wh.ravel(), bx, bh])
    got = mx.nd.RNN(*[mx.nd.array(a, dtype="float64") for a in (x, params, z, z)], state_size=H,
                    num_layers=1, mode="lstm", state_outputs=True, lstm_state_clip_min=-0.2,
                    lstm_state_clip_max=0.25)
    h, c, ys = z[0], z[0], []
    for t in range(T):
        _, c = ref_step("lstm", x[t], h, c, wx, wh, bx, bh)
        c = np.clip(c, -0.2, 0.25)
        gates = x[t] @ wx.T + bx + h @ wh.T + bh
        h = _sig(gates[:, 3 * H:]) * np.tanh(c)
        ys.append(h)
    np.testing.assert_allclose(got[0].asnumpy(), np.stack(ys), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[2].asnumpy()[0], c, rtol=1e-12, atol=1e-12)
    assert np.any(c == 0.25) and np.any(c == -0.2)


# ---------------------------------------------------------------------------------------
# gradients by finite differences
# ---------------------------------------------------------------------------------------
FD_CASES = {
    "relu_2layer": dict(mode="rnn_relu", L=2, D=1),
    "tanh_bidir": dict(mode="rnn_tanh", L=1, D=2),
    "lstm_2layer_bidir": dict(mode="lstm", L=2, D=2),
    "gru_2layer_bidir": dict(mode="gru", L=2, D=2),
    "lstm_projection": dict(mode="lstm", L=2, D=2, proj=2),
    "lstm_clip": dict(mode="lstm", L=1, D=1, clip=(-0.35, 0.3)),
    "gru_seqlen": dict(mode="gru", L=2, D=2, seqlen=[4, 2, 1]),
    "lstm_seqlen": dict(mode="lstm", L=1, D=2, seqlen=[1, 4, 3]),
    "lstm_dropout": dict(mode="lstm", L=3, D=1, p=0.4),
}


def _fd_setup(case):
    rs = np.random.RandomState(11)
    T, N, C, H = 4, 3, 2, 3
    c = FD_CASES[case]
    ins = _rand_rnn_inputs(rs, c["mode"], T, N, C, H, c["L"], c["D"], c.get("proj"))
    attrs = dict(state_size=H, num_layers=c["L"], mode=c["mode"], bidirectional=c["D"] == 2,
                 state_outputs=True, p=c.get("p", 0.0))
    if c.get("proj"):
        attrs["projection_size"] = c["proj"]
    if c.get("clip"):
        attrs["lstm_state_clip_min"], attrs["lstm_state_clip_max"] = c["clip"]
    if c.get("seqlen"):
        attrs["use_sequence_length"] = True
        ins.append(np.array(c["seqlen"], dtype=np.float64))
    return ins, attrs


def _run_op(ins, attrs, grads=None, heads=None):
    nds = [mx.nd.array(a, dtype="float64") for a in ins]
    mx.random.seed(5)                   # the same dropout masks for every evaluation
    if grads:
        for i in grads:
            nds[i].attach_grad()
        with mx.autograd.record():
            outs = mx.nd.RNN(*nds, **attrs)
        mx.autograd.backward(outs, [mx.nd.array(h, dtype="float64") for h in heads])
        return [nds[i].grad.asnumpy() for i in grads]
    with mx.autograd.train_mode():
        return [o.asnumpy() for o in mx.nd.RNN(*nds, **attrs)]


@pytest.mark.parametrize("case", sorted(FD_CASES))
def test_rnn_op_gradient_finite_differences(case):
    ins, attrs = _fd_setup(case)
    rs = np.random.RandomState(2)
    outs = _run_op(ins, attrs)
    if attrs.get("p"):
        # dropout acts in training: the output differs from the prediction-mode output
        pred = mx.nd.RNN(*[mx.nd.array(a, dtype="float64") for a in ins], **attrs)
        assert not np.allclose(pred[0].asnumpy(), outs[0])
    heads = [rs.standard_normal(o.shape) for o in outs]
    wrt = [0, 1, 2] + ([3] if attrs["mode"] == "lstm" else [])
    grads = _run_op(ins, attrs, wrt, heads)

    def objective(xs):
        return sum(float(np.sum(h * o)) for h, o in zip(heads, _run_op(xs, attrs)))

    eps = 1e-6
    for g, i in zip(grads, wrt):
        assert g.shape == ins[i].shape and np.all(np.isfinite(g))
        v = rs.standard_normal(ins[i].shape)
        plus, minus = list(ins), list(ins)
        plus[i] = ins[i] + eps * v
        minus[i] = ins[i] - eps * v
        fd = (objective(plus) - objective(minus)) / (2 * eps)
        an = float(np.sum(g * v))
        assert abs(an - fd) <= 1e-6 + 1e-5 * abs(fd), (case, i, an, fd)
        assert abs(an) > 1e-3, (case, i, an)     # a gradient that is really there


def test_rnn_op_sequence_length_semantics():
    """Steps at/after an element's length give zeros and keep its state; the reverse
    direction starts at the last valid step (so the element equals a shorter sequence)."""
    ins, attrs = _fd_setup("lstm_seqlen")
    outs = _run_op(ins, attrs)
    lens = [1, 4, 3]
    H = attrs["state_size"]
    for b, n in enumerate(lens):
        sub = [ins[0][:n, b:b + 1], ins[1], ins[2][:, b:b + 1], ins[3][:, b:b + 1]]
        short = dict(attrs)
        del short["use_sequence_length"]
        o = _run_op(sub, short)
        np.testing.assert_allclose(outs[0][:n, b], o[0][:, 0], rtol=1e-12, atol=1e-12)
        assert np.all(outs[0][n:, b] == 0)
        np.testing.assert_allclose(outs[1][:, b], o[1][:, 0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(outs[2][:, b], o[2][:, 0], rtol=1e-12, atol=1e-12)
    assert outs[0].shape[2] == 2 * H


def test_rnn_op_errors():
    x = mx.nd.ones((3, 2, 2))
    h = mx.nd.zeros((1, 2, 3))
    with pytest.raises(MXNetError, match=r"RNN: input parameters has shape \(85\).*needs \(84\)"):
        mx.nd.RNN(x, mx.nd.ones((85,)), h, h, state_size=3, num_layers=1, mode="lstm")
    with pytest.raises(MXNetError, match="RNN: input state has shape"):
        mx.nd.RNN(x, mx.nd.ones((84,)), mx.nd.zeros((2, 2, 3)), h, state_size=3, num_layers=1,
                  mode="lstm")
    with pytest.raises(MXNetError, match="3-D"):
        mx.nd.RNN(mx.nd.ones((3, 2)), mx.nd.ones((84,)), h, h, state_size=3, num_layers=1,
                  mode="lstm")
    with pytest.raises(MXNetError, match="expects 4 inputs"):
        mx.nd.RNN(x, mx.nd.ones((84,)), h, state_size=3, num_layers=1, mode="lstm")
    with pytest.raises(MXNetError, match="projection is only supported for LSTM"):
        mx.nd.RNN(x, mx.nd.ones((63,)), h, state_size=3, num_layers=1, mode="gru",
                  projection_size=2)
    with pytest.raises(MXNetError, match="must be specified together"):
        mx.nd.RNN(x, mx.nd.ones((84,)), h, h, state_size=3, num_layers=1, mode="lstm",
                  lstm_state_clip_min=-1.0)
    with pytest.raises(MXNetError, match="mode"):
        mx.nd.RNN(x, mx.nd.ones((84,)), h, h, state_size=3, num_layers=1, mode="lstmx")


def test_rnn_op_empty_batch_state_is_zeros():
    """Note rnn-empty-batch-states: a (L*D, 0, H) state (MXNet's implicit begin state) is
    zeros of the data's batch."""
    rs = np.random.RandomState(0)
    x, p = mx.nd.array(rs.randn(3, 2, 2)), mx.nd.array(rs.randn(84) * 0.3)
    kw = dict(state_size=3, num_layers=1, mode="lstm", state_outputs=True)
    a = mx.nd.RNN(x, p, mx.nd.zeros((1, 0, 3)), mx.nd.zeros((1, 0, 3)), **kw)
    b = mx.nd.RNN(x, p, mx.nd.zeros((1, 2, 3)), mx.nd.zeros((1, 2, 3)), **kw)
    for u, v in zip(a, b):
        assert u.shape == v.shape
        np.testing.assert_array_equal(u.asnumpy(), v.asnumpy())
    assert np.abs(b[0].asnumpy()).sum() > 0


def test_rnn_symbol_inference_and_arguments():
    s = mx.sym.RNN(mx.sym.var("data"), state_size=4, num_layers=1, mode="lstm", state_outputs=True,
                   name="rnn1")
    assert s.list_arguments() == ["data", "rnn1_parameters", "rnn1_state", "rnn1_state_cell"]
    assert s.list_outputs() == ["rnn1_output", "rnn1_state_output", "rnn1_statecell_output"]
    args, outs, _ = s.infer_shape(data=(5, 2, 3))
    assert args == [(5, 2, 3), (144,), (1, 2, 4), (1, 2, 4)]       # MXNet 1.9.1's answer
    assert outs == [(5, 2, 4), (1, 2, 4), (1, 2, 4)]
    g = mx.sym.RNN(mx.sym.var("data"), state_size=4, num_layers=1, mode="gru", name="rnn0")
    assert g.list_arguments() == ["data", "rnn0_parameters", "rnn0_state"]
    assert g.list_outputs() == ["rnn0_output"]


# ---------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------
def _fill(block, seed, lo=-0.5, hi=0.5):
    rs = np.random.RandomState(seed)
    ps = block.collect_params()
    for n in sorted(ps.keys()):
        ps[n].set_data(mx.nd.array(rs.uniform(lo, hi, size=ps[n].shape)))


def _weights(cell):
    return [cell.i2h_weight.data().asnumpy(), cell.h2h_weight.data().asnumpy(),
            cell.i2h_bias.data().asnumpy(), cell.h2h_bias.data().asnumpy()]


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_cell_unroll_matches_numpy_reference(kind):
    H = 4
    cell = {"rnn_tanh": lambda: rnn.RNNCell(H, input_size=3),
            "rnn_relu": lambda: rnn.RNNCell(H, activation="relu", input_size=3),
            "lstm": lambda: rnn.LSTMCell(H, input_size=3),
            "gru": lambda: rnn.GRUCell(H, input_size=3)}[kind]()
    cell.initialize()
    _fill(cell, 1)
    x = np.random.RandomState(0).randn(2, 5, 3).astype(np.float32)      # NTC
    out, states = cell.unroll(5, mx.nd.array(x), layout="NTC", merge_outputs=True)
    h0 = np.zeros((2, H), np.float32)
    y, h, c = ref_unroll(kind, x.transpose(1, 0, 2), h0, h0 if kind == "lstm" else None, _weights(cell))
    np.testing.assert_allclose(out.asnumpy(), y.transpose(1, 0, 2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(states[0].asnumpy(), h, rtol=1e-5, atol=1e-6)
    assert len(states) == (2 if kind == "lstm" else 1)
    if kind == "lstm":
        np.testing.assert_allclose(states[1].asnumpy(), c, rtol=1e-5, atol=1e-6)
    # list outputs, TNC layout, single steps
    outs, _ = cell.unroll(5, mx.nd.array(x.transpose(1, 0, 2)), layout="TNC", merge_outputs=False)
    assert len(outs) == 5
    np.testing.assert_allclose(outs[2].asnumpy(), y[2], rtol=1e-5, atol=1e-6)
    st = cell.begin_state(batch_size=2)
    o1, st = cell(mx.nd.array(x[:, 0]), st)
    np.testing.assert_allclose(o1.asnumpy(), y[0], rtol=1e-5, atol=1e-6)


def test_cell_names_shapes_and_state_info():
    cell = rnn.LSTMCell(4, prefix="lc_")
    assert [(n, p.shape) for n, p in cell.collect_params().items()] == [
        ("lc_i2h_weight", (16, 0)), ("lc_h2h_weight", (16, 4)), ("lc_i2h_bias", (16,)),
        ("lc_h2h_bias", (16,))]
    assert cell.state_info(3) == [{"shape": (3, 4), "__layout__": "NC"}] * 2
    cell.initialize()
    cell.unroll(2, mx.nd.ones((3, 2, 7)))           # deferred initialisation
    assert cell.i2h_weight.shape == (16, 7)
    g = rnn.GRUCell(2, input_size=3, prefix="g_")
    assert g.i2h_weight.shape == (6, 3) and g.h2h_weight.shape == (6, 2)
    assert repr(g) == "GRUCell(3 -> 6)"
    seq = rnn.SequentialRNNCell(prefix="s_")
    with seq.name_scope():
        seq.add(rnn.LSTMCell(3))
        seq.add(rnn.DropoutCell(0.5))
        seq.add(rnn.GRUCell(2))
    assert list(seq.collect_params().keys())[0] == "s_lstm0_i2h_weight"
    assert list(seq.collect_params().keys())[4] == "s_gru0_i2h_weight"
    assert [s["shape"] for s in seq.state_info(5)] == [(5, 3), (5, 3), (5, 2)]
    assert len(seq) == 3 and isinstance(seq[1], rnn.DropoutCell)
    bi = rnn.BidirectionalCell(rnn.LSTMCell(2, prefix="l_"), rnn.LSTMCell(2, prefix="r_"))
    with pytest.raises(NotImplementedError, match="unroll"):
        bi(mx.nd.ones((1, 2)), bi.begin_state(batch_size=1))
    base = rnn.GRUCell(2)
    rnn.ZoneoutCell(base, 0.1, 0.1)
    with pytest.raises(AssertionError, match="modifier"):
        base.begin_state(batch_size=1)


def test_cell_gradient_matches_finite_differences():
    cell = rnn.GRUCell(3, input_size=2)
    cell.initialize()
    _fill(cell, 4)
    x = np.random.RandomState(1).randn(2, 3, 2)
    heads = np.random.RandomState(2).randn(2, 3, 3)

    def f(xv):
        o, _ = cell.unroll(3, mx.nd.array(xv), merge_outputs=True)
        return float(np.sum(o.asnumpy().astype(np.float64) * heads))

    xa = mx.nd.array(x)
    xa.attach_grad()
    with mx.autograd.record():
        o, _ = cell.unroll(3, xa, merge_outputs=True)
    o.backward(mx.nd.array(heads))
    v = np.random.RandomState(3).randn(*x.shape)
    eps = 1e-2        # float32 parameters: a large step, a loose tolerance
    fd = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
    an = float(np.sum(xa.grad.asnumpy() * v))
    assert abs(an - fd) < 2e-3 * max(1.0, abs(fd)), (an, fd)


def test_bidirectional_and_valid_length():
    l_cell, r_cell = rnn.LSTMCell(3, input_size=2), rnn.LSTMCell(3, input_size=2)
    bi = rnn.BidirectionalCell(l_cell, r_cell)
    bi.initialize()
    _fill(bi, 6)
    x = np.random.RandomState(1).randn(2, 4, 2).astype(np.float32)
    out, st = bi.unroll(4, mx.nd.array(x), merge_outputs=True)
    h0 = np.zeros((2, 3), np.float32)
    yl, hl, cl = ref_unroll("lstm", x.transpose(1, 0, 2), h0, h0, _weights(l_cell))
    yr, hr, cr = ref_unroll("lstm", x.transpose(1, 0, 2), h0, h0, _weights(r_cell), reverse=True)
    ref = np.concatenate([yl, yr], axis=2).transpose(1, 0, 2)
    np.testing.assert_allclose(out.asnumpy(), ref, rtol=1e-5, atol=1e-6)
    assert len(st) == 4
    np.testing.assert_allclose(st[2].asnumpy(), hr, rtol=1e-5, atol=1e-6)
    # valid_length: sequence 1 has length 2 -> equals the unroll of its first 2 steps
    vl = mx.nd.array([4, 2])
    out2, st2 = bi.unroll(4, mx.nd.array(x), merge_outputs=True, valid_length=vl)
    short, sst = bi.unroll(2, mx.nd.array(x[1:2, :2]), merge_outputs=True)
    np.testing.assert_allclose(out2.asnumpy()[1, :2], short.asnumpy()[0], rtol=1e-5, atol=1e-6)
    assert np.all(out2.asnumpy()[1, 2:] == 0)
    np.testing.assert_allclose(out2.asnumpy()[0], out.asnumpy()[0], rtol=1e-6)
    for a, b in zip(st2, sst):
        np.testing.assert_allclose(a.asnumpy()[1], b.asnumpy()[0], rtol=1e-5, atol=1e-6)


def test_modifier_and_dropout_cells():
    base = rnn.GRUCell(3, input_size=3)
    res = rnn.ResidualCell(base)
    res.initialize()
    _fill(res, 2)
    x = np.random.RandomState(1).randn(2, 4, 3).astype(np.float32)
    out, _ = res.unroll(4, mx.nd.array(x), merge_outputs=True)
    y, _, _ = ref_unroll("gru", x.transpose(1, 0, 2), np.zeros((2, 3), np.float32), None, _weights(base))
    np.testing.assert_allclose(out.asnumpy(), y.transpose(1, 0, 2) + x, rtol=1e-5, atol=1e-6)
    assert list(res.collect_params().keys()) == list(base.collect_params().keys())
    zo = rnn.ZoneoutCell(rnn.LSTMCell(3, input_size=3), 0.5, 0.5)
    zo.initialize()
    z_pred, _ = zo.unroll(4, mx.nd.array(x), merge_outputs=True)     # predict mode: no zoneout
    zo.base_cell._modified = False
    plain, _ = zo.base_cell.unroll(4, mx.nd.array(x), merge_outputs=True)
    zo.base_cell._modified = True
    np.testing.assert_allclose(z_pred.asnumpy(), plain.asnumpy(), rtol=1e-6)
    with mx.autograd.train_mode():
        z_train, _ = zo.unroll(4, mx.nd.array(x), merge_outputs=True)
    assert not np.allclose(z_train.asnumpy(), plain.asnumpy())
    d = rnn.DropoutCell(0.5)
    o, s = d.unroll(4, mx.nd.array(x), merge_outputs=True)
    np.testing.assert_array_equal(o.asnumpy(), x)
    with mx.autograd.train_mode():
        o, _ = d.unroll(4, mx.nd.array(np.ones((2, 4, 3), np.float32)), merge_outputs=True)
    assert set(np.unique(o.asnumpy())) <= {0.0, 2.0}


# ---------------------------------------------------------------------------------------
# fused layers
# ---------------------------------------------------------------------------------------
LAYERS = {
    "lstm": lambda **kw: rnn.LSTM(3, **kw),
    "gru": lambda **kw: rnn.GRU(3, **kw),
    "rnn_relu": lambda **kw: rnn.RNN(3, activation="relu", **kw),
    "rnn_tanh": lambda **kw: rnn.RNN(3, activation="tanh", **kw),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_equals_cells_with_same_weights(kind):
    layer = LAYERS[kind](num_layers=2, bidirectional=True, input_size=2)
    layer.initialize()
    _fill(layer, 8)
    x = np.random.RandomState(1).randn(4, 2, 2).astype(np.float32)
    st = [s + 0.2 for s in layer.begin_state(batch_size=2)]
    y, states = layer(mx.nd.array(x), st)
    # 1. the reference recurrences with the layer's parameters
    p = {n[len(layer.prefix):]: v.data().asnumpy() for n, v in layer.collect_params().items()}
    mode = "rnn_relu" if kind == "rnn_relu" else ("rnn_tanh" if kind == "rnn_tanh" else kind)
    inp, hs = x, []
    for k in range(2):
        ys = []
        for d, tag in enumerate("lr"):
            w = [p["%s%d_%s" % (tag, k, s)] for s in ("i2h_weight", "h2h_weight", "i2h_bias", "h2h_bias")]
            c0 = st[1].asnumpy()[2 * k + d] if kind == "lstm" else None
            yy, h, _ = ref_unroll(mode, inp, st[0].asnumpy()[2 * k + d], c0, w, d == 1)
            ys.append(yy)
            hs.append(h)
        inp = np.concatenate(ys, axis=2)
    np.testing.assert_allclose(y.asnumpy(), inp, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(states[0].asnumpy(), np.stack(hs), rtol=1e-5, atol=1e-6)
    # 2. the cells of _unfuse (sharing the parameters)
    stack = layer._unfuse()
    yu, su = stack.unroll(4, mx.nd.array(x), begin_state=[s[i] for i in range(4) for s in st]
                          if kind == "lstm" else [st[0][i] for i in range(4)],
                          layout="TNC", merge_outputs=True)
    np.testing.assert_allclose(yu.asnumpy(), y.asnumpy(), rtol=1e-5, atol=1e-6)


def test_layer_names_shapes_states_and_repr():
    lstm = rnn.LSTM(4, num_layers=2, bidirectional=True, input_size=3, prefix="lstm0_")
    names = [(n, p.shape) for n, p in lstm.collect_params().items()]
    assert names[:5] == [("lstm0_l0_i2h_weight", (16, 3)), ("lstm0_l0_h2h_weight", (16, 4)),
                         ("lstm0_l0_i2h_bias", (16,)), ("lstm0_l0_h2h_bias", (16,)),
                         ("lstm0_r0_i2h_weight", (16, 3))]
    assert names[8] == ("lstm0_l1_i2h_weight", (16, 8)) and len(names) == 16
    assert [s.shape for s in lstm.begin_state(batch_size=2)] == [(4, 2, 4), (4, 2, 4)]
    assert repr(lstm) == "LSTM(3 -> 4, TNC, num_layers=2, bidirectional)"
    gru = rnn.GRU(3, layout="NTC", prefix="g_")
    assert gru.l0_i2h_weight.shape == (9, 0)
    assert repr(gru) == "GRU(None -> 3, NTC)"
    p = rnn.LSTM(5, projection_size=2, input_size=3, num_layers=2, prefix="p_")
    pn = [(n, s.shape) for n, s in p.collect_params().items()]
    assert pn[:5] == [("p_l0_i2h_weight", (20, 3)), ("p_l0_h2h_weight", (20, 2)),
                      ("p_l0_i2h_bias", (20,)), ("p_l0_h2h_bias", (20,)), ("p_l0_h2r_weight", (2, 5))]
    assert pn[5] == ("p_l1_i2h_weight", (20, 2))
    assert [s["shape"] for s in p.state_info(4)] == [(2, 4, 2), (2, 4, 5)]
    p.initialize()
    y, (h, c) = p(mx.nd.ones((6, 4, 3)), p.begin_state(batch_size=4))
    assert y.shape == (6, 4, 2) and h.shape == (2, 4, 2) and c.shape == (2, 4, 5)


def test_layer_deferred_init_layouts_and_errors():
    g = rnn.GRU(3, num_layers=2, bidirectional=True, layout="NTC")
    g.initialize()
    x = np.random.RandomState(0).randn(2, 5, 7).astype(np.float32)
    y = g(mx.nd.array(x))
    assert g.l0_i2h_weight.shape == (9, 7) and g.r0_i2h_weight.shape == (9, 7)
    assert g.l1_i2h_weight.shape == (9, 6) and y.shape == (2, 5, 6)
    t = rnn.GRU(3, num_layers=2, bidirectional=True, layout="TNC", input_size=7)
    t.initialize()
    for a, b in zip(t.collect_params().values(), g.collect_params().values()):
        a.set_data(b.data())
    yt = t(mx.nd.array(x.transpose(1, 0, 2)))
    np.testing.assert_allclose(yt.asnumpy().transpose(1, 0, 2), y.asnumpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="Invalid recurrent state shape"):
        g(mx.nd.array(x), [mx.nd.zeros((4, 3, 3))])
    with pytest.raises(AssertionError, match="Invalid layout"):
        rnn.LSTM(3, layout="NCT")


def test_layer_dropout_between_layers():
    lstm = rnn.LSTM(4, num_layers=3, dropout=0.5, input_size=3)
    lstm.initialize()
    x = mx.nd.array(np.random.RandomState(0).randn(5, 2, 3))
    pred = lstm(x).asnumpy()
    no_drop = rnn.LSTM(4, num_layers=3, input_size=3)
    no_drop.initialize()
    for a, b in zip(no_drop.collect_params().values(), lstm.collect_params().values()):
        a.set_data(b.data())
    np.testing.assert_allclose(no_drop(x).asnumpy(), pred, rtol=1e-6)   # predict: no dropout
    xa = x.copy()
    xa.attach_grad()
    with mx.autograd.record():
        y = lstm(xa)
    y.backward()
    assert not np.allclose(y.asnumpy(), pred)
    assert np.all(np.isfinite(xa.grad.asnumpy())) and np.abs(xa.grad.asnumpy()).sum() > 0


def test_layer_hybridize_equals_eager():
    """(One layer kind only: every graph costs Numba compiles.)"""
    def make():
        return rnn.LSTM(3, num_layers=2, bidirectional=True, layout="NTC")
    a, b = make(), make()
    a.initialize()
    b.initialize()
    x = np.random.RandomState(0).randn(2, 5, 3).astype(np.float32)
    a(mx.nd.array(x))
    b(mx.nd.array(x))
    _fill(a, 3)
    _fill(b, 3)
    b.hybridize()
    res = []
    for net in (a, b):
        xa = mx.nd.array(x)
        xa.attach_grad()
        st = [s + 0.1 for s in net.begin_state(batch_size=2)]
        with mx.autograd.record():
            y, s = net(xa, st)
            loss = (y * y).sum() + (s[0] * s[0]).sum()
        loss.backward()
        y0 = net(mx.nd.array(x))          # without states: the output only
        res.append([y.asnumpy(), s[0].asnumpy(), xa.grad.asnumpy(), y0.asnumpy()] +
                   [p.grad().asnumpy() for p in net.collect_params().values()])
    for u, v in zip(*res):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def test_cell_hybridize_equals_eager():
    cell = rnn.LSTMCell(3, input_size=2)
    cell.initialize()
    _fill(cell, 5)
    x = mx.nd.array(np.random.RandomState(0).randn(4, 2))
    st = [mx.nd.ones((4, 3)) * 0.3, mx.nd.ones((4, 3)) * -0.2]
    o1, s1 = cell(x, st)
    cell.hybridize()
    o2, s2 = cell(x, st)
    np.testing.assert_allclose(o1.asnumpy(), o2.asnumpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(s1[1].asnumpy(), s2[1].asnumpy(), rtol=1e-6, atol=1e-7)


def test_symbolic_layer_in_parent_and_export(tmp_path):
    """A layer called symbolically without states (inside a hybridized parent) makes zero
    states from the data; the export has MXNet's Reshape -> _rnn_param_concat -> RNN chain."""
    net = mx.gluon.nn.HybridSequential(prefix="net_")
    with net.name_scope():
        net.add(rnn.LSTM(4, num_layers=2, bidirectional=True, layout="NTC"))
    net.initialize()
    x = mx.nd.array(np.random.RandomState(0).randn(2, 5, 3))
    eager = net(x).asnumpy()
    net.hybridize()
    np.testing.assert_allclose(net(x).asnumpy(), eager, rtol=1e-5, atol=1e-7)   # compiled float32 (tanh ulps)
    np.testing.assert_allclose(net(mx.nd.concat(x, x, dim=0)).asnumpy()[2:], eager, rtol=1e-5, atol=1e-7)
    net.export(str(tmp_path / "m"))
    graph = json.load(open(str(tmp_path / "m-symbol.json")))
    ops = [n["op"] for n in graph["nodes"] if n["op"] != "null"]
    assert ops.count("Reshape") == 16 and ops.count("_rnn_param_concat") == 1
    node = [n for n in graph["nodes"] if n["op"] == "RNN"][0]
    assert node["attrs"] == {"bidirectional": "True", "lstm_state_clip_max": "None",
                             "lstm_state_clip_min": "None", "lstm_state_clip_nan": "False",
                             "mode": "lstm", "num_layers": "2", "p": "0",
                             "projection_size": "None", "state_outputs": "True",
                             "state_size": "4", "use_sequence_length": "False"}
    back = mx.gluon.SymbolBlock.imports(str(tmp_path / "m-symbol.json"), ["data"],
                                        str(tmp_path / "m-0000.params"))
    np.testing.assert_allclose(back(x).asnumpy(), eager, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("bidirectional,num_layers", [(False, 1), (False, 2), (True, 1), (True, 2)])
def test_deferred_input_size_inside_hybridized_parent(bidirectional, num_layers):
    """A fused layer without input_size inside a hybridized parent: graph inference alone
    finds the i2h input size (RNN -> _rnn_param_concat's backward rule -> Reshape's), as in
    MXNet 1.9.1 (its shapes recorded by hand: l0/r0 (16, 3), l1/r1 (16, 4 or 8)); the
    outputs equal the same layer run eagerly with the same parameters."""
    def build():
        net = mx.gluon.nn.HybridSequential()
        with net.name_scope():
            net.add(rnn.LSTM(4, num_layers=num_layers, layout="NTC", bidirectional=bidirectional))
        return net
    x = mx.nd.array(np.random.default_rng(3).uniform(-1, 1, (2, 5, 3)).astype(np.float32))
    net = build()
    net.initialize(mx.init.Uniform(0.5))
    net.hybridize()
    out = net(x)
    D = 2 if bidirectional else 1
    assert out.shape == (2, 5, 4 * D)
    shapes = {k.split("lstm0_")[1]: v.shape for k, v in net.collect_params().items()
              if "i2h_weight" in k}
    want = {"l0_i2h_weight": (16, 3)}
    if bidirectional:
        want["r0_i2h_weight"] = (16, 3)
    if num_layers == 2:
        want["l1_i2h_weight"] = (16, 4 * D)
        if bidirectional:
            want["r1_i2h_weight"] = (16, 4 * D)
    assert shapes == want
    ref = build()
    ref.initialize()
    ref(x)                                  # eager deferred init
    for (k, p), (_k2, q) in zip(sorted(net.collect_params().items()),
                                sorted(ref.collect_params().items())):
        q.set_data(p.data())
    np.testing.assert_allclose(out.asnumpy(), ref(x).asnumpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shapes,out,want", [
    # MXNet 1.9.1's answers (infer_shape_partial of _rnn_param_concat + a (16,) operand)
    ([(0,), (6,), (4,)], (16,), [(6,), (6,), (4,)]),
    ([(0,), (0,), (4,)], (16,), [(6,), (6,), (4,)]),
    ([(0, 3), (0, 3)], (8, 3), [(4, 3), (4, 3)]),
])
def test_rnn_param_concat_infers_unknown_inputs_from_output(shapes, out, want):
    vs = [mx.sym.var("v%d" % i, shape=s) for i, s in enumerate(shapes)]
    o = mx.sym._internal._rnn_param_concat(*vs, num_args=len(vs), dim=0)
    args, outs, _ = (o + mx.sym.var("d", shape=out)).infer_shape_partial()
    assert args[:len(vs)] == want and outs == [out]


@pytest.mark.parametrize("shapes,msg", [
    ([(0,), (0,), (0,)], "at most 2 can be inferred"),
    ([(0,), (0,), (5,)], "cannot be split over 2"),    # MXNet 1.9.1 silently gives (5,)x3
    ([(0,), (20,)], "cannot be split over 1"),
])
def test_rnn_param_concat_backward_inference_errors(shapes, msg):
    vs = [mx.sym.var("v%d" % i, shape=s) for i, s in enumerate(shapes)]
    o = mx.sym._internal._rnn_param_concat(*vs, num_args=len(vs), dim=0)
    with pytest.raises(mx.base.MXNetError, match=msg):
        (o + mx.sym.var("d", shape=(16,))).infer_shape_partial()


class _UnrollNet(mx.gluon.HybridBlock):
    def __init__(self, **kw):
        super(_UnrollNet, self).__init__(**kw)
        with self.name_scope():
            self.bi = rnn.BidirectionalCell(rnn.LSTMCell(3), rnn.GRUCell(3))
            self.seq = rnn.HybridSequentialRNNCell()
            self.seq.add(rnn.LSTMCell(2))
            self.seq.add(rnn.ResidualCell(rnn.GRUCell(2)))

    def hybrid_forward(self, F, x, vl):
        o, s = self.bi.unroll(4, x, layout="NTC", merge_outputs=True, valid_length=vl)
        o2, s2 = self.seq.unroll(4, o, layout="NTC", merge_outputs=False)
        return F.concat(F.stack(*o2, axis=1), F.expand_dims(F.broadcast_add(s2[0], F.sum(s[0])), axis=1), dim=1)


def test_cells_unrolled_symbolically_equal_eager():
    """unroll with F = mx.sym and no begin state (a cell inside a hybridized parent)."""
    net = _UnrollNet()
    net.initialize()
    rs = np.random.RandomState(0)
    x, vl = mx.nd.array(rs.randn(2, 4, 3)), mx.nd.array([4, 2])
    eager = net(x, vl).asnumpy()
    sym = net(mx.sym.var("data0"), mx.sym.var("data1"))
    args = {n: p.data() for n, p in net.collect_params().items()}
    got = sym.eval(data0=x, data1=vl, **args)[0].asnumpy()
    np.testing.assert_allclose(got, eager, rtol=1e-5, atol=1e-7)
    assert eager.shape == (2, 5, 2)


# ---------------------------------------------------------------------------------------
# goldens from real MXNet 1.9.1
# ---------------------------------------------------------------------------------------
def _golden_cases(mx):
    """Runs under MXNet 1.9.1 (to record) and agjit (to check): explicit prefixes, fixed
    parameters, no dropout."""
    import numpy as np
    rnn = mx.gluon.rnn
    res = {}

    def fill(block, seed):
        rs = np.random.RandomState(seed)
        ps = block.collect_params()
        for n in sorted(ps.keys()):
            ps[n].set_data(mx.nd.array(rs.uniform(-0.5, 0.5, size=ps[n].shape)))

    def put(name, v):
        if isinstance(v, (list, tuple)):
            for i, a in enumerate(v):
                put("%s.%d" % (name, i), a)
        else:
            res[name] = np.round(v.asnumpy().astype(np.float64), 7).tolist()

    rs = np.random.RandomState(0)
    X = rs.randn(2, 4, 3).astype(np.float32)
    vl = mx.nd.array([4, 2])

    def cell_case(name, cell, layout="NTC", valid=None):
        cell.initialize()
        x = mx.nd.array(X if layout == "NTC" else X.transpose(1, 0, 2))
        cell.unroll(4, x, layout=layout, merge_outputs=True)
        fill(cell, 1)
        x.attach_grad()
        with mx.autograd.record():
            o, s = cell.unroll(4, x, layout=layout, merge_outputs=True, valid_length=valid)
            loss = (o * o).sum() + sum((a * a * 0.5).sum() for a in s)
        loss.backward()
        put(name + "_out", o)
        put(name + "_states", s)
        put(name + "_gx", x.grad)
        ps = cell.collect_params()
        put(name + "_g", [ps[n].grad() for n in sorted(ps.keys())])
        res[name + "_names"] = [[n, list(p.shape)] for n, p in ps.items()]

    cell_case("lstm_vl", rnn.LSTMCell(3, prefix="lc_"), valid=vl)
    cell_case("gru_tnc", rnn.GRUCell(3, prefix="gc_"), layout="TNC")
    cell_case("relu", rnn.RNNCell(3, activation="relu", prefix="rc_"))
    cell_case("bi_vl", rnn.BidirectionalCell(rnn.LSTMCell(2, prefix="bl_"),
                                             rnn.GRUCell(2, prefix="br_")), valid=vl)
    seq = rnn.HybridSequentialRNNCell(prefix="hs_")
    with seq.name_scope():
        seq.add(rnn.GRUCell(3))
        seq.add(rnn.ResidualCell(rnn.GRUCell(3)))
    cell_case("hseq_res", seq)
    XT = rs.randn(4, 2, 3).astype(np.float32)

    def layer_case(name, layer, layout="TNC"):
        layer.initialize()
        x = mx.nd.array(XT if layout == "TNC" else XT.transpose(1, 0, 2))
        layer(x)
        fill(layer, 2)
        x.attach_grad()
        with mx.autograd.record():
            st = [s + 0.1 * (i + 1) for i, s in enumerate(layer.begin_state(batch_size=2))]
            y, s = layer(x, st)
            loss = (y * y).sum() + sum((a * a * 0.5).sum() for a in s)
        loss.backward()
        put(name + "_y", y)
        put(name + "_states", s)
        put(name + "_gx", x.grad)
        put(name + "_g", [p.grad() for p in layer.collect_params().values()])
        res[name + "_names"] = [[n, list(p.shape)] for n, p in layer.collect_params().items()]

    layer_case("L_lstm_bi", rnn.LSTM(3, num_layers=2, bidirectional=True, prefix="lb_"))
    layer_case("L_gru_ntc", rnn.GRU(2, num_layers=2, bidirectional=True, layout="NTC",
                                    prefix="gb_"), layout="NTC")
    layer_case("L_rnn_tanh", rnn.RNN(3, activation="tanh", prefix="rt_"))
    return res


def _mxnet_python():
    cands = [os.environ.get("AGJIT_MXNET_PYTHON"),
             os.path.join(HERE, "..", "..", "shared", "oracle", ".mxenv", "bin", "python"),
             "/work/mxenv/bin/python"]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def _compare(got, want):
    assert sorted(got) == sorted(want)
    for k in want:
        if k.endswith("_names"):
            assert got[k] == want[k], k
        else:
            np.testing.assert_allclose(np.array(got[k]), np.array(want[k]), rtol=1e-5,
                                       atol=2e-6, err_msg=k)


def test_goldens_from_mxnet():
    with open(GOLDEN) as f:
        want = json.load(f)
    _compare(_golden_cases(mx), want)


def _run_mxnet(script, *args):
    py = _mxnet_python()
    if py is None:
        pytest.skip("no MXNet interpreter (set AGJIT_MXNET_PYTHON)")
    r = subprocess.run([py, "-c", script] + list(args), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@pytest.mark.oracle
def test_goldens_regenerate_with_mxnet(tmp_path):
    """The stored goldens are what MXNet 1.9.1 computes now (when it is installed)."""
    src = textwrap.dedent(inspect.getsource(_golden_cases))
    script = ("import json, sys, warnings\nwarnings.simplefilter('ignore')\nimport mxnet as mx\n"
              + src + "\njson.dump(_golden_cases(mx), open(sys.argv[1], 'w'))\n")
    _run_mxnet(script, str(tmp_path / "g.json"))
    with open(str(tmp_path / "g.json")) as f:
        fresh = json.load(f)
    if os.environ.get("AGJIT_WRITE_RNN_GOLDEN"):        # how tests/golden/gluon_rnn.json is made
        with open(GOLDEN, "w") as f:
            json.dump(fresh, f, sort_keys=True)
    with open(GOLDEN) as f:
        _compare(fresh, json.load(f))


@pytest.mark.oracle
def test_export_import_interop_with_mxnet(tmp_path):
    """An LSTM exported by agjit runs in MXNet 1.9.1 with the same outputs; a GRU exported by
    MXNet (states as inputs) runs in agjit."""
    rs = np.random.RandomState(1)
    net = mx.gluon.nn.HybridSequential(prefix="n_")
    with net.name_scope():
        net.add(rnn.LSTM(4, num_layers=2, bidirectional=True, layout="NTC", input_size=3))
        net.add(mx.gluon.nn.Dense(2, in_units=40))
    net.initialize()
    _fill(net, 9)
    net.hybridize()
    x = rs.randn(2, 5, 3).astype(np.float32)
    y = net(mx.nd.array(x)).asnumpy()
    net.export(str(tmp_path / "ag"))
    np.save(str(tmp_path / "x.npy"), x)
    script = textwrap.dedent("""
        import sys, warnings, numpy as np, mxnet as mx
        warnings.simplefilter('ignore')
        w = sys.argv[1]
        b = mx.gluon.SymbolBlock.imports(w + '/ag-symbol.json', ['data'], w + '/ag-0000.params')
        np.save(w + '/mx_y.npy', b(mx.nd.array(np.load(w + '/x.npy'))).asnumpy())
        g = mx.gluon.rnn.GRU(3, num_layers=2, bidirectional=True, input_size=3)
        g.initialize(mx.init.Uniform(0.5))
        g.hybridize()
        xt = np.random.RandomState(2).randn(5, 2, 3).astype(np.float32)
        out, st = g(mx.nd.array(xt), g.begin_state(batch_size=2))
        g.export(w + '/gru')
        np.savez(w + '/gru.npz', x=xt, y=out.asnumpy(), h=st[0].asnumpy())
    """)
    _run_mxnet(script, str(tmp_path))
    np.testing.assert_allclose(np.load(str(tmp_path / "mx_y.npy")), y, rtol=1e-5, atol=1e-6)
    ref = np.load(str(tmp_path / "gru.npz"))
    g = mx.gluon.SymbolBlock.imports(str(tmp_path / "gru-symbol.json"), ["data0", "data1"],
                                     str(tmp_path / "gru-0000.params"))
    out, h = g(mx.nd.array(ref["x"]), mx.nd.zeros((4, 2, 3)))
    np.testing.assert_allclose(out.asnumpy(), ref["y"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h.asnumpy(), ref["h"], rtol=1e-5, atol=1e-6)


# the per-step mean losses MXNet 1.9.1 gives for the program below (first 4 steps)
LM_MXNET = {"lstm": [3.010419464111328, 3.008112907409668, 2.9714101791381835, 3.014293098449707],
            "gru": [3.0074178695678713, 2.970913314819336, 2.998796272277832, 2.9854358673095702]}


def test_word_language_model_tutorial_program():
    """The Gluon word-language-model tutorial's model and loop (Embedding -> 2-layer
    LSTM/GRU -> Dense, begin_state, detach, clip_global_norm, Trainer sgd) gives MXNet
    1.9.1's losses step by step."""
    from agjit import gluon, autograd
    from agjit.gluon import nn

    class RNNModel(gluon.Block):
        def __init__(self, mode, vocab_size, num_embed, num_hidden, num_layers, **kwargs):
            super(RNNModel, self).__init__(**kwargs)
            with self.name_scope():
                self.encoder = nn.Embedding(vocab_size, num_embed)
                cls = rnn.LSTM if mode == "lstm" else rnn.GRU
                self.rnn = cls(num_hidden, num_layers, input_size=num_embed)
                self.decoder = nn.Dense(vocab_size, in_units=num_hidden)
                self.num_hidden = num_hidden

        def forward(self, inputs, hidden):
            output, hidden = self.rnn(self.encoder(inputs), hidden)
            return self.decoder(output.reshape((-1, self.num_hidden))), hidden

    for mode in ("lstm", "gru"):
        model = RNNModel(mode, 20, 8, 16, 2)
        model.initialize(mx.init.Xavier(), ctx=mx.cpu())
        rs = np.random.RandomState(0)
        ps = model.collect_params()
        for n in sorted(ps.keys()):
            ps[n].set_data(mx.nd.array(rs.uniform(-0.3, 0.3, ps[n].shape)))
        trainer = gluon.Trainer(model.collect_params(), "sgd", {"learning_rate": 0.5})
        loss = gluon.loss.SoftmaxCrossEntropyLoss()
        data = rs.randint(0, 20, size=(60, 4)).astype(np.float32)
        hidden = model.rnn.begin_state(func=mx.nd.zeros, batch_size=4, ctx=mx.cpu())
        losses = []
        for i in range(0, 20, 5):
            x, y = mx.nd.array(data[i:i + 5]), mx.nd.array(data[i + 1:i + 6])
            hidden = [h.detach() for h in hidden]
            with autograd.record():
                output, hidden = model(x, hidden)
                L = loss(output, y.reshape((-1,)))
                L.backward()
            grads = [p.grad(mx.cpu()) for p in model.collect_params().values()]
            gluon.utils.clip_global_norm(grads, 0.25 * 5 * 4)
            trainer.step(5 * 4)
            losses.append(float(mx.nd.sum(L).asscalar()) / L.size)
        np.testing.assert_allclose(losses, LM_MXNET[mode], rtol=2e-6, err_msg=mode)
