"""The compiled RNN kernels (agjit.compiler.kernels_rnn, note *rnn-rows*: the LSTM's
vectorised row loops) against the eager NumPy kernel of the RNN op and its backward, on
sizes where the vector loops have remainders (H = 37), both directions and two layers,
float32 and float64; the sequence-length path (the general loop) too."""
import numpy as np
import pytest

from agjit.compiler.kernels_rnn import rnn_fwd, rnn_bwd
from symbol.registry import get_op
from symbol.ops.rnn import rnn_param_size, _ATTRS


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
    rnn_fwd(x, w, hx, cx, x.reshape(-1), dummy, out, hy, cy, code, H, L, D, False, False)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref[0], rtol=0, atol=tol)
    np.testing.assert_allclose(hy, ref[1], rtol=0, atol=tol)
    if mode == "lstm":
        np.testing.assert_allclose(cy, ref[2], rtol=0, atol=tol)
    gout = rs.standard_normal(out.shape).astype(dtype)
    ghy = rs.standard_normal(hx.shape).astype(dtype)
    gcy = rs.standard_normal(hx.shape).astype(dtype)
    bins = ins + [gout, ghy] + ([gcy] if mode == "lstm" else [])
    gref = get_op("_backward_RNN").forward(attrs, bins, None)
    gx, gw = np.empty_like(x), np.empty_like(w)
    ghx, gcx = np.empty_like(hx), np.empty_like(hx)
    rnn_bwd(x, w, hx, cx, x.reshape(-1), dummy, gout, ghy, gcy if mode == "lstm" else
            np.zeros_like(hx), gx, gw, ghx, gcx, code, H, L, D, False, False)
    gtol = 1e-4 if dtype == np.float32 else 1e-11
    for got, want in zip((gx, gw, ghx, gcx), gref):
        np.testing.assert_allclose(got, want, rtol=0, atol=gtol * max(1.0, np.abs(want).max()))


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
    rnn_fwd(x, w, hx, cx, sl, np.empty((1, 1, 1, 1)), out, hy, cy, 2, H, 1, 1, False, True)
    np.testing.assert_allclose(out, ref[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(hy, ref[1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(cy, ref[2], rtol=0, atol=1e-12)
