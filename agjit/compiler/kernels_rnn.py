"""Kernel-library functions of MXNet's fused ``RNN`` op (symbol/ops/rnn.py: modes rnn_relu,
rnn_tanh, lstm, gru; layers; bidirectional; the dropout mask between layers), called by its
KernelCall lowerings through ``ctx.fn`` and registered in agjit.compiler.kernels.LIBRARY.

The formulas and the parameter packing are those of symbol/ops/rnn.py (notes
*rnn-parameter-packing*, *rnn-formulas*).  Each direction of each layer does one GEMM for
the input projection of the whole sequence (T*N rows), then per time step one GEMM for the
recurrent product and one loop over the gates; the backward reads the gate activations and
states a training forward kept in the op's reserve output (note *rnn-reserve*; without one
it recomputes the forward, as the eager ``_backward_RNN`` does), then back-propagates
through time with the same GEMMs transposed, accumulating the weight gradients (beta = 1).  GEMMs go
through agjit.compiler.kernels_nn ``gemm`` (NumPy's own OpenBLAS, note *numpy-blas*).

The lowerings hand these kernels only what they support: no projection, no state clipping,
no sequence lengths, and state inputs of the data's batch size (anything else runs the
eager kernel).  Mode codes: 0 rnn_relu, 1 rnn_tanh, 2 lstm, 3 gru.
"""
import numpy as np

from .numba_cache import njit
from .kernels_nn import gemm
from .vmath import tanh as _tanh     # no libm call (vmath note *vmath*)

__all__ = ["rnn_fwd", "rnn_bwd"]

_RELU, _TANH, _LSTM, _GRU = 0, 1, 2, 3


@njit(cache=True)
def _gates(mode):
    if mode == _LSTM:
        return 4
    if mode == _GRU:
        return 3
    return 1


@njit(cache=True)
def _act_width(mode, H):
    """Per step and batch row, what the backward keeps of a direction's forward."""
    if mode == _LSTM:
        return 5 * H        # i, f, g, o, tanh(c')
    if mode == _GRU:
        return 4 * H        # r, z, n, Wh h + bh (its n part)
    return H                # h'


@njit(cache=True)
def _typed(arr, v):
    """``v`` as a scalar of ``arr``'s dtype: float32 kernels then compute in float32, as the
    eager NumPy kernel does (a float literal would widen every expression to float64)."""
    t = np.empty(1, dtype=arr.dtype)
    t[0] = v
    return t[0]


@njit(cache=True)
def _sig(a, half, one):
    return half * (_tanh(half * a) + one)


@njit(cache=True)
def _offsets(mode, H, L, D, C):
    """Per (layer * D + direction): flat offsets of Wx, Wh, bx, bh and the input size."""
    G = _gates(mode)
    GH = G * H
    n = L * D
    wx = np.zeros(n, dtype=np.int64)
    wh = np.zeros(n, dtype=np.int64)
    bx = np.zeros(n, dtype=np.int64)
    bh = np.zeros(n, dtype=np.int64)
    ni = np.zeros(n, dtype=np.int64)
    off = 0
    for layer in range(L):
        nin = C if layer == 0 else D * H
        for d in range(D):
            k = layer * D + d
            ni[k] = nin
            wx[k] = off
            off += GH * nin
            wh[k] = off
            off += GH * H
    for k in range(n):
        bx[k] = off
        off += GH
        bh[k] = off
        off += GH
    return wx, wh, bx, bh, ni, off


# Note: rnn-gemm
#     OpenBLAS's sgemm with a transposed B packs B on every call: the per-step recurrent
#     product h (N, H) @ Wh^T with Wh (4H, H) took 5 ms at N = 20, H = 256 against 0.7 ms
#     for the same product with Wh^T stored (measured on this 2-core machine under load,
#     70 calls): the forward transposes Wx and Wh once per direction and multiplies NN.
@njit(cache=True)
def _transposed(w, off, rows, cols):
    """The (cols, rows) transpose of the row-major (rows, cols) block of ``w`` at ``off``."""
    out = np.empty((cols, rows), dtype=w.dtype)
    for r in range(rows):
        for c in range(cols):
            out[c, r] = w[off + r * cols + c]
    return out


# Note: rnn-rows
#     The LSTM's per-step gate math is a function of one batch row with no branch inside its
#     loop over the H units (the mode and ``keep`` tests are outside it), so LLVM vectorises
#     it with vmath's tanh (vmath note *vmath*); the loop with the mode tests inside kept it
#     scalar.  Measured on W9 (T 35, N 20, H 256, 2 layers; process CPU, 2 cores under load):
#     rnn_fwd 53 -> 50 ms, rnn_bwd 168 -> 117 ms, against 7 ms per 700 x 256 x 1024 GEMM
#     (the backward then still recomputed the forward: about 50 ms of it; note *rnn-reserve*).  The forward adds bx
#     into the input projection once; the forward-direction backward keeps one gate-gradient
#     buffer (its rows in step order are those in time order).
@njit(cache=True)
def _lstm_fwd_row(xr, hr, bh, c, a, H, half, one):
    """One batch row of an LSTM step.  hr (4H) holds Wh h and becomes the pre-activations
    xr (Wx x + bx) + hr + bh; a (5H) gets the activations i, f, g, o, tanh(c'); c (H) is
    updated in place to c' and hr[:H] to the output h'.  Each loop touches few arrays, so
    LLVM's runtime alias checks stay under its limit and it vectorises (note *rnn-rows*)."""
    for j in range(4 * H):
        hr[j] = (xr[j] + hr[j]) + bh[j]
    for j in range(H):
        a[j] = _sig(hr[j], half, one)
        a[H + j] = _sig(hr[H + j], half, one)
        a[2 * H + j] = _tanh(hr[2 * H + j])
        a[3 * H + j] = _sig(hr[3 * H + j], half, one)
    for j in range(H):
        cv = a[H + j] * c[j] + a[j] * a[2 * H + j]
        c[j] = cv
        a[4 * H + j] = _tanh(cv)
    for j in range(H):
        hr[j] = a[3 * H + j] * a[4 * H + j]


@njit(cache=True)
def _lstm_bwd_row(gyr, col0, dh, dc, a, cp, da, H, one):
    """One batch row of an LSTM step's backward: dh (H) becomes g = gyr[col0:] + dh, the
    output gradient; dc the cell gradient (updated in place to the previous cell's); da
    (4H) gets the gradient of the gate pre-activations."""
    for j in range(H):
        dh[j] = gyr[col0 + j] + dh[j]
    for j in range(H):
        g = dh[j]
        gi = a[j]
        gf = a[H + j]
        gg = a[2 * H + j]
        go = a[3 * H + j]
        tc = a[4 * H + j]
        dcn = g * go * (one - tc * tc) + dc[j]
        da[j] = dcn * gg * gi * (one - gi)
        da[H + j] = dcn * cp[j] * gf * (one - gf)
        da[2 * H + j] = dcn * gi * (one - gg * gg)
        da[3 * H + j] = g * tc * go * (one - go)
        dc[j] = dcn * gf


@njit(cache=True)
def _direction_fwd(mode, H, inp, nin, w, wxo, who, bxo, bho, h0, c0, rev, y, col0,
                   keep, acts, hs, cs, steps, has_steps):
    """One direction of one layer over the sequence.  inp (T, N, nin) C-contiguous; writes
    y[:, :, col0:col0 + H] and returns (h_T, c_T).  With ``keep``: acts (T, N, act width),
    hs / cs (T + 1, N, H) the states in the direction's step order (hs[0] = h0).  With
    ``has_steps``, steps (T, N) is 1 at the valid steps of each sequence, 0 after its length:
    there the output is 0 and the state stays (the eager kernel's arithmetic)."""
    T, N = inp.shape[0], inp.shape[1]
    G = _gates(mode)
    GH = G * H
    dt = y.dtype
    half, one, zero = _typed(y, 0.5), _typed(y, 1.0), _typed(y, 0.0)
    # the weights transposed once (note *rnn-gemm*): (nin, GH) and (H, GH)
    wxt = _transposed(w, wxo, GH, nin)
    wht = _transposed(w, who, GH, H)
    xw = np.empty((T * N, GH), dtype=dt)
    gemm(False, False, T * N, GH, nin, inp, 0, nin, wxt, 0, GH, 0.0, xw, 0, GH)
    hw = np.empty((N, GH), dtype=dt)
    h = h0.copy()
    c = c0.copy()
    hn = np.empty((N, H), dtype=dt)
    cn_ = np.empty((N, H), dtype=dt)
    if keep:
        hs[0] = h
        cs[0] = c
    arow = np.empty(5 * H, dtype=dt)
    bhv = w[bho:bho + GH]
    if mode == _LSTM and not has_steps:
        for r in range(T * N):
            for j in range(GH):
                xw[r, j] += w[bxo + j]
    for s in range(T):
        t = T - 1 - s if rev else s
        gemm(False, False, N, GH, H, h, 0, H, wht, 0, GH, 0.0, hw, 0, GH)
        if mode == _LSTM and not has_steps:
            for b in range(N):
                hb = hw[b]
                _lstm_fwd_row(xw[t * N + b], hb, bhv, c[b],
                              acts[t, b] if keep else arow, H, half, one)
                h[b] = hb[:H]
            y[t, :, col0:col0 + H] = h
            if keep:
                hs[s + 1] = h
                cs[s + 1] = c
            continue
        for b in range(N):
            r0 = t * N + b
            for j in range(H):
                if mode == _LSTM:
                    ai = (xw[r0, j] + w[bxo + j]) + hw[b, j] + w[bho + j]
                    af = (xw[r0, H + j] + w[bxo + H + j]) + hw[b, H + j] + w[bho + H + j]
                    ag = (xw[r0, 2 * H + j] + w[bxo + 2 * H + j]) + hw[b, 2 * H + j] + \
                        w[bho + 2 * H + j]
                    ao = (xw[r0, 3 * H + j] + w[bxo + 3 * H + j]) + hw[b, 3 * H + j] + \
                        w[bho + 3 * H + j]
                    gi = _sig(ai, half, one)
                    gf = _sig(af, half, one)
                    gg = _tanh(ag)
                    go = _sig(ao, half, one)
                    cn = gf * c[b, j] + gi * gg
                    tc = _tanh(cn)
                    cn_[b, j] = cn
                    hn[b, j] = go * tc
                    if keep:
                        acts[t, b, j] = gi
                        acts[t, b, H + j] = gf
                        acts[t, b, 2 * H + j] = gg
                        acts[t, b, 3 * H + j] = go
                        acts[t, b, 4 * H + j] = tc
                elif mode == _GRU:
                    hr = hw[b, j] + w[bho + j]
                    hz = hw[b, H + j] + w[bho + H + j]
                    hnl = hw[b, 2 * H + j] + w[bho + 2 * H + j]
                    gr = _sig((xw[r0, j] + w[bxo + j]) + hr, half, one)
                    gz = _sig((xw[r0, H + j] + w[bxo + H + j]) + hz, half, one)
                    gn = _tanh((xw[r0, 2 * H + j] + w[bxo + 2 * H + j]) + gr * hnl)
                    hn[b, j] = (one - gz) * gn + gz * h[b, j]
                    if keep:
                        acts[t, b, j] = gr
                        acts[t, b, H + j] = gz
                        acts[t, b, 2 * H + j] = gn
                        acts[t, b, 3 * H + j] = hnl
                else:
                    pre = (xw[r0, j] + w[bxo + j]) + hw[b, j] + w[bho + j]
                    if mode == _TANH:
                        v = _tanh(pre)
                    else:
                        v = pre if pre > zero else zero
                    hn[b, j] = v
                    if keep:
                        acts[t, b, j] = v
        for b in range(N):
            m = steps[t, b] if has_steps else one
            for j in range(H):
                if has_steps:
                    yt = hn[b, j] * m
                    y[t, b, col0 + j] = yt
                    h[b, j] = yt + h[b, j] * (one - m)
                    if mode == _LSTM:
                        c[b, j] = cn_[b, j] * m + c[b, j] * (one - m)
                else:
                    h[b, j] = hn[b, j]
                    y[t, b, col0 + j] = hn[b, j]
                    if mode == _LSTM:
                        c[b, j] = cn_[b, j]
        if keep:
            hs[s + 1] = h
            cs[s + 1] = c
    return h, c


@njit(cache=True)
def _layer_input(x, ybuf, mask, layer, has_mask):
    """The input of ``layer``: the data, or the layer below's output times its mask."""
    if layer == 0:
        return x
    if not has_mask:
        return ybuf.copy()
    out = np.empty(ybuf.shape, dtype=ybuf.dtype)
    T, N, DH = ybuf.shape
    for t in range(T):
        for b in range(N):
            for j in range(DH):
                out[t, b, j] = ybuf[t, b, j] * mask[layer - 1, t, b, j]
    return out


@njit(cache=True)
def _steps(seqlen, T, N, dt, has_steps):
    steps = np.zeros((T if has_steps else 1, N if has_steps else 1), dtype=dt)
    if has_steps:
        for b in range(N):
            n = int(seqlen[b])
            for t in range(T):
                if t < n:
                    steps[t, b] = 1
    return steps


# Note: rnn-reserve
#     MXNet's fused RNN keeps a reserve space from the forward for the backward (cuDNN's, and
#     its CPU kernel's, in the op's state).  Here the op has a hidden last output,
#     ``reserve`` (symbol/ops/rnn.py ``rnn_reserve_size``; not in the graph JSON, which does
#     not list outputs): a training forward (``keep``) writes into it what the backward
#     needs -- per direction the activations (LD, T, N, act width), the states h and c in
#     the direction's step order (LD, T + 1, N, H) each, then the inputs of the layers above
#     the first (L - 1, T, N, D*H) -- and sets its last element, the flag, to 1; any other
#     forward (predict mode, the eager kernel) leaves the flag 0 and the backward runs the
#     forward again (what it always did before).  Measured on W9 (T 35, N 20, H 256, 2
#     layers): the recomputation was about 50 ms of rnn_bwd's 130.
@njit(cache=True)
def _reserve_layout(mode, H, L, D, T, N):
    """Sizes of the reserve's parts (acts, one of hs / cs, inps) and its total length."""
    LD = L * D
    na = LD * T * N * _act_width(mode, H)
    nh = LD * (T + 1) * N * H
    ni = (L - 1) * T * N * D * H
    return na, nh, ni, na + 2 * nh + ni + 1


@njit(cache=True)
def _reserve_views(reserve, mode, H, L, D, T, N):
    na, nh, ni, _n = _reserve_layout(mode, H, L, D, T, N)
    acts = reserve[0:na].reshape((L * D, T, N, _act_width(mode, H)))
    hs = reserve[na:na + nh].reshape((L * D, T + 1, N, H))
    cs = reserve[na + nh:na + 2 * nh].reshape((L * D, T + 1, N, H))
    inps = reserve[na + 2 * nh:na + 2 * nh + ni].reshape((max(L - 1, 0), T, N, D * H))
    return acts, hs, cs, inps


@njit(cache=True)
def _forward_layers(x, w, hx, cx, steps, mask, out, hy, cy, mode, H, L, D, has_mask,
                    has_steps, keep, acts, hs, cs, inps):
    """Every layer and direction; with ``keep`` the activations, states and layer inputs go
    into acts / hs / cs / inps (note *rnn-reserve*)."""
    T, N, C = x.shape
    wxo, who, bxo, bho, ni, _size = _offsets(mode, H, L, D, C)
    dt = out.dtype
    dummy3 = np.empty((1, 1, 1), dtype=dt)
    ybuf = np.empty((T, N, D * H), dtype=dt) if L > 1 else dummy3
    for layer in range(L):
        if layer == 0:
            inp = x
        elif keep:
            inp = inps[layer - 1]
            if has_mask:
                for t in range(T):
                    for b in range(N):
                        for j in range(D * H):
                            inp[t, b, j] = ybuf[t, b, j] * mask[layer - 1, t, b, j]
            else:
                inp[:] = ybuf
        else:
            inp = _layer_input(x, ybuf, mask, layer, has_mask)
        dst = out if layer == L - 1 else ybuf
        for d in range(D):
            k = layer * D + d
            h, c = _direction_fwd(mode, H, inp, ni[k], w, wxo[k], who[k], bxo[k], bho[k],
                                  hx[k], cx[k] if mode == _LSTM else hx[k], d == 1, dst, d * H,
                                  keep, acts[k] if keep else dummy3, hs[k] if keep else dummy3,
                                  cs[k] if keep else dummy3, steps, has_steps)
            hy[k] = h
            if mode == _LSTM:
                cy[k] = c
            else:
                cy[k] = 0.0


@njit(cache=True)
def rnn_fwd(x, w, hx, cx, seqlen, mask, out, hy, cy, reserve, mode, H, L, D, has_mask,
            has_steps, keep):
    """The RNN op's forward: x (T, N, C), w the flat parameters, hx / cx (L*D, N, H) (cx
    read for lstm only), seqlen (N,) the sequence lengths when ``has_steps``, mask (L-1,
    T, N, D*H) when ``has_mask``; writes out (T, N, D*H), hy and cy (L*D, N, H) and, with
    ``keep``, the reserve (flat, note *rnn-reserve*; its flag 0 without)."""
    T, N, C = x.shape
    steps = _steps(seqlen, T, N, out.dtype, has_steps)
    _na, _nh, _ni, size = _reserve_layout(mode, H, L, D, T, N)
    if keep:
        if reserve.size != size:
            raise ValueError("rnn_fwd: the reserve has the wrong size")
        acts, hs, cs, inps = _reserve_views(reserve, mode, H, L, D, T, N)
    else:
        d4 = np.empty((1, 1, 1, 1), dtype=out.dtype)
        acts, hs, cs, inps = d4, d4, d4, d4
    _forward_layers(x, w, hx, cx, steps, mask, out, hy, cy, mode, H, L, D, has_mask,
                    has_steps, keep, acts, hs, cs, inps)
    if reserve.size > 0:
        reserve[reserve.size - 1] = 1.0 if keep else 0.0


@njit(cache=True)
def _direction_bwd(mode, H, inp, nin, w, wxo, who, bxo, bho, rev, acts, hs, cs, gy, col0,
                   dh, dc, gw, d_in, steps, has_steps):
    """BPTT through one direction: gy (T, N, D*H) the gradient of the layer's output (this
    direction's columns col0..), dh / dc the final-state gradients (updated in place to
    the initial-state gradients); accumulates into gw (flat parameter gradient) and d_in
    (T, N, nin); past a sequence's length (``steps``) the state gradient passes through."""
    T, N = inp.shape[0], inp.shape[1]
    G = _gates(mode)
    GH = G * H
    dt = gy.dtype
    one, zero = _typed(gy, 1.0), _typed(gy, 0.0)
    dxw = np.empty((T * N, GH), dtype=dt)
    # gradient of Wh h + bh, per step s (rows s * N ...): one GEMM for Wh's gradient at
    # the end instead of one per step
    dab = dxw if (mode == _LSTM and not rev and not has_steps) else np.empty((T * N, GH), dtype=dt)
    dhn = np.empty((N, H), dtype=dt)
    keep_h = np.zeros((N, H), dtype=dt)
    keep_c = np.zeros((N, H), dtype=dt)
    for s in range(T - 1, -1, -1):
        t = T - 1 - s if rev else s
        hp = hs[s]
        cp = cs[s]
        if mode == _LSTM and not has_steps:
            for b in range(N):
                _lstm_bwd_row(gy[t, b], col0, dh[b], dc[b], acts[t, b], cp[b],
                              dxw[t * N + b], H, one)
                if rev:
                    dab[s * N + b] = dxw[t * N + b]
            gemm(False, False, N, H, GH, dxw if not rev else dab, s * N * GH, GH, w, who, H,
                 0.0, dh, 0, H)
            continue
        for b in range(N):
            r0 = t * N + b
            m = steps[t, b] if has_steps else one
            for j in range(H):
                g = gy[t, b, col0 + j] + dh[b, j]
                dcm = dc[b, j]
                if has_steps:
                    keep_h[b, j] = dh[b, j] * (one - m)
                    g = g * m
                    keep_c[b, j] = dc[b, j] * (one - m)
                    dcm = dc[b, j] * m
                if mode == _LSTM:
                    gi = acts[t, b, j]
                    gf = acts[t, b, H + j]
                    gg = acts[t, b, 2 * H + j]
                    go = acts[t, b, 3 * H + j]
                    tc = acts[t, b, 4 * H + j]
                    dcn = g * go * (one - tc * tc) + dcm
                    v0 = dcn * gg * gi * (one - gi)
                    v1 = dcn * cp[b, j] * gf * (one - gf)
                    v2 = dcn * gi * (one - gg * gg)
                    v3 = g * tc * go * (one - go)
                    dxw[r0, j] = v0
                    dxw[r0, H + j] = v1
                    dxw[r0, 2 * H + j] = v2
                    dxw[r0, 3 * H + j] = v3
                    dab[s * N + b, j] = v0
                    dab[s * N + b, H + j] = v1
                    dab[s * N + b, 2 * H + j] = v2
                    dab[s * N + b, 3 * H + j] = v3
                    dc[b, j] = dcn * gf + keep_c[b, j] if has_steps else dcn * gf
                    dhn[b, j] = zero
                elif mode == _GRU:
                    gr = acts[t, b, j]
                    gz = acts[t, b, H + j]
                    gn = acts[t, b, 2 * H + j]
                    hnl = acts[t, b, 3 * H + j]
                    dn = g * (one - gz)
                    dz = g * (hp[b, j] - gn)
                    dan = dn * (one - gn * gn)
                    dar = dan * hnl * gr * (one - gr)
                    daz = dz * gz * (one - gz)
                    dxw[r0, j] = dar
                    dxw[r0, H + j] = daz
                    dxw[r0, 2 * H + j] = dan
                    dab[s * N + b, j] = dar
                    dab[s * N + b, H + j] = daz
                    dab[s * N + b, 2 * H + j] = dan * gr
                    dhn[b, j] = g * gz
                else:
                    v = acts[t, b, j]
                    if mode == _TANH:
                        a = g * (one - v * v)
                    else:
                        a = g if v > zero else zero * g
                    dxw[r0, j] = a
                    dab[s * N + b, j] = a
                    dhn[b, j] = zero
        # dh = da Wh (+ the direct part of GRU)
        gemm(False, False, N, H, GH, dab, s * N * GH, GH, w, who, H, 0.0, dh, 0, H)
        if mode == _GRU:
            for b in range(N):
                for j in range(H):
                    dh[b, j] += dhn[b, j]
        if has_steps:
            for b in range(N):
                for j in range(H):
                    dh[b, j] += keep_h[b, j]
    # Wh += sum_s da_s^T h_s (hs holds h_s for s < T as its first T * N rows); bh += sum da
    gemm(True, False, GH, H, T * N, dab, 0, GH, hs, 0, H, 1.0, gw, who, H)
    for r in range(T * N):
        for j in range(GH):
            gw[bho + j] += dab[r, j]
    gemm(True, False, GH, nin, T * N, dxw, 0, GH, inp, 0, nin, 1.0, gw, wxo, nin)
    for r in range(T * N):
        for j in range(GH):
            gw[bxo + j] += dxw[r, j]
    gemm(False, False, T * N, nin, GH, dxw, 0, GH, w, wxo, nin, 1.0, d_in, 0, nin)


@njit(cache=True)
def rnn_bwd(x, w, hx, cx, seqlen, mask, reserve, gout, ghy, gcy, gx, gw, ghx, gcx, mode, H,
            L, D, has_mask, has_steps):
    """_backward_RNN: BPTT from the top layer down on the forward's reserve (note
    *rnn-reserve*) or, when its flag is not set, on the forward run again keeping the
    activations.  gout (T, N, D*H); ghy / gcy (L*D, N, H) the final-state gradients
    (zeros when the op has no state outputs); writes gx, gw (flat), ghx, gcx."""
    T, N, C = x.shape
    steps = _steps(seqlen, T, N, gx.dtype, has_steps)
    wxo, who, bxo, bho, ni, _size = _offsets(mode, H, L, D, C)
    dt = gx.dtype
    _na, _nh, _ni, size = _reserve_layout(mode, H, L, D, T, N)
    if reserve.size == size and reserve[size - 1] == 1.0:
        acts, hs, cs, inps = _reserve_views(reserve, mode, H, L, D, T, N)
    else:
        acts, hs, cs, inps = _reserve_views(np.empty(size, dtype=dt), mode, H, L, D, T, N)
        LD = L * D
        _forward_layers(x, w, hx, cx, steps, mask, np.empty((T, N, D * H), dtype=dt),
                        np.empty((LD, N, H), dtype=dt), np.empty((LD, N, H), dtype=dt),
                        mode, H, L, D, has_mask, has_steps, True, acts, hs, cs, inps)
    for i in range(gw.shape[0]):
        gw[i] = 0.0
    gabove = gout.copy()
    for layer in range(L - 1, -1, -1):
        inp = x if layer == 0 else inps[layer - 1]
        nin = ni[layer * D]
        d_in = np.zeros((T, N, nin), dtype=dt)
        for d in range(D):
            k = layer * D + d
            dh = ghy[k].copy()
            dc = gcy[k].copy() if mode == _LSTM else np.zeros((N, H), dtype=dt)
            _direction_bwd(mode, H, inp, nin, w, wxo[k], who[k], bxo[k], bho[k], d == 1,
                           acts[k], hs[k], cs[k], gabove, d * H, dh, dc, gw, d_in, steps,
                           has_steps)
            ghx[k] = dh
            if mode == _LSTM:
                gcx[k] = dc
        if layer > 0:
            if has_mask:
                for t in range(T):
                    for b in range(N):
                        for j in range(nin):
                            d_in[t, b, j] *= mask[layer - 1, t, b, j]
            gabove = d_in
        else:
            gx[:] = d_in


LIBRARY_RNN = {f.__name__: (f, None) for f in (rnn_fwd, rnn_bwd)}
