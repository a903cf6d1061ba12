"""The compiled RNN kernels (agjit.compiler.kernels_rnn, note *rnn-rows*: the LSTM's
vectorised row loops) against the eager NumPy kernel of the RNN op and its backward, on
sizes where the vector loops have remainders (H = 37), both directions and two layers,
float32 and float64; the sequence-length path (the general loop) too.  The backward runs
both ways (note *rnn-reserve*): on the reserve a training forward filled, and with the
reserve's flag clear (it then recomputes the forward), each against the eager op."""
import numpy as np
import pytest

from agjit.compiler.kernels_rnn import rnn_fwd, rnn_bwd
from symbol.registry import get_op
from symbol.ops.rnn import rnn_param_size, rnn_reserve_size, _ATTRS


def _parsed(**kw):
    return {k: kw.get(k, a.default) for k, a in _ATTRS.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode,bidir", [("lstm", False), ("lstm", True), ("gru", True)])
def test_kernels_match_eager_op(mode, bidir, dtype):
    rs = np.random.RandomState(11)
    T, N, C, H, L = 6, 5, 7, 37, 2
    D = 2 if bidir else 1
    attrs = _parsed(state_size=H, num_layers=L, mode=mode, bidirectional=bidir,
                    state_outputs=True)
    x = rs.uniform(-1, 1, (T, N, C)).astype(dtype)
    w = rs.uniform(-0.4, 0.4, rnn_param_size(attrs, C)).astype(dtype)
    hx = rs.uniform(-0.5, 0.5, (L * D, N, H)).astype(dtype)
    cx = rs.uniform(-0.5, 0.5, (L * D, N, H)).astype(dtype)
    ins = [x, w, hx] + ([cx] if mode == "lstm" else [])
    ref = get_op("RNN").forward(attrs, ins, None)
    code = {"lstm": 2, "gru": 3}[mode]
    out = np.empty((T, N, D * H), dtype)
    hy, cy = np.empty_like(hx), np.empty_like(hx)
    dummy = np.empty((1, 1, 1, 1), dtype)
    reserve = np.full(rnn_reserve_size(attrs, T, N), np.nan, dtype)
    rnn_fwd(x, w, hx, cx, x.reshape(-1), dummy, out, hy, cy, reserve, code, H, L, D, False,
            False, True)
    assert reserve[-1] == 1 and np.isfinite(reserve).all()      # every element written
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref[0], rtol=0, atol=tol)
    np.testing.assert_allclose(hy, ref[1], rtol=0, atol=tol)
    if mode == "lstm":
        np.testing.assert_allclose(cy, ref[2], rtol=0, atol=tol)
    gout = rs.standard_normal(out.shape).astype(dtype)
    ghy = rs.standard_normal(hx.shape).astype(dtype)
    gcy = rs.standard_normal(hx.shape).astype(dtype)
    bins = ins + [np.zeros_like(reserve), gout, ghy] + ([gcy] if mode == "lstm" else [])
    gref = get_op("_backward_RNN").forward(attrs, bins, None)
    gtol = 1e-4 if dtype == np.float32 else 1e-11
    # the reserve kept by the forward; then a stale one (garbage, flag clear): recomputed
    stale = np.full_like(reserve, 7.0)
    stale[-1] = 0
    for res in (reserve, stale):
        gx, gw = np.empty_like(x), np.empty_like(w)
        ghx, gcx = np.empty_like(hx), np.empty_like(hx)
        rnn_bwd(x, w, hx, cx, x.reshape(-1), dummy, res, gout, ghy, gcy if mode == "lstm" else
                np.zeros_like(hx), gx, gw, ghx, gcx, code, H, L, D, False, False)
        for got, want in zip((gx, gw, ghx, gcx), gref):
            np.testing.assert_allclose(got, want, rtol=0,
                                       atol=gtol * max(1.0, np.abs(want).max()))
    # a predict-mode forward clears the flag
    rnn_fwd(x, w, hx, cx, x.reshape(-1), dummy, out, hy, cy, reserve, code, H, L, D, False,
            False, False)
    assert reserve[-1] == 0
    np.testing.assert_allclose(out, ref[0], rtol=0, atol=tol)


def test_sequence_length_path_matches_eager_op():
    rs = np.random.RandomState(12)
    T, N, C, H = 5, 3, 4, 9
    attrs = _parsed(state_size=H, num_layers=1, mode="lstm", state_outputs=True,
                    use_sequence_length=True)
    x = rs.uniform(-1, 1, (T, N, C))
    w = rs.uniform(-0.4, 0.4, rnn_param_size(attrs, C))
    hx = rs.uniform(-0.5, 0.5, (1, N, H))
    cx = rs.uniform(-0.5, 0.5, (1, N, H))
    sl = np.array([5.0, 2.0, 3.0])
    ref = get_op("RNN").forward(attrs, [x, w, hx, cx, sl], None)
    out = np.empty((T, N, H))
    hy, cy = np.empty_like(hx), np.empty_like(hx)
    reserve = np.zeros(rnn_reserve_size(attrs, T, N))
    rnn_fwd(x, w, hx, cx, sl, np.empty((1, 1, 1, 1)), out, hy, cy, reserve, 2, H, 1, 1, False,
            True, True)
    np.testing.assert_allclose(out, ref[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(hy, ref[1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(cy, ref[2], rtol=0, atol=1e-12)
    gout = rs.standard_normal(out.shape)
    ghy, gcy = rs.standard_normal(hx.shape), rs.standard_normal(hx.shape)
    gref = get_op("_backward_RNN").forward(attrs, [x, w, hx, cx, sl, reserve, gout, ghy, gcy],
                                           None)
    got = [np.empty_like(x), np.empty_like(w), np.empty_like(hx), np.empty_like(hx)]
    rnn_bwd(x, w, hx, cx, sl, np.empty((1, 1, 1, 1)), reserve, gout, ghy, gcy, *got, 2, H, 1,
            1, False, True)
    for g, want in zip(got, gref):
        np.testing.assert_allclose(g, want, rtol=0, atol=1e-10 * max(1.0, np.abs(want).max()))
