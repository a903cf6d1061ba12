"""MXNet's fused recurrent operator ``RNN`` (modes rnn_relu, rnn_tanh, lstm, gru), its
backward ``_backward_RNN`` and ``_rnn_param_concat`` (the concatenation Gluon's fused layers
use to build the flat parameter vector).

Note: rnn-parameter-packing
    ``parameters`` is one flat vector.  For ``L`` layers, ``D`` directions (2 when
    bidirectional), ``G`` gates (1 for rnn_*, 4 for lstm, 3 for gru) and state size ``H`` it
    holds first every weight, layer by layer and within a layer direction by direction
    (forward, then reverse): ``i2h`` of shape (G*H, in_l), ``h2h`` of shape (G*H, R) and, with
    ``projection_size`` P (lstm only), ``h2r`` of shape (P, H); then every bias in the same
    layer/direction order: ``i2h`` (G*H,) and ``h2h`` (G*H,).  ``in_0`` is the data's feature
    size, ``in_l = D*R`` above, where ``R`` is P with a projection and H without.  Matrices
    are row-major.  Gate rows: lstm i, f, g, o; gru r, z, n.

Note: rnn-formulas
    rnn_tanh/rnn_relu: ``h' = act(Wx x + bx + Wh h + bh)``.
    lstm: ``[i, f, g, o] = Wx x + bx + Wh r + bh``; ``c' = s(f) c + s(i) tanh(g)`` (clipped to
    [lstm_state_clip_min, lstm_state_clip_max] when given), ``h' = s(o) tanh(c')``; the
    recurrent state and output is ``r' = h'`` or, with a projection, ``r' = Whr h'``.
    gru: ``[xr, xz, xn] = Wx x + bx``, ``[hr, hz, hn] = Wh h + bh``, ``r = s(xr + hr)``,
    ``z = s(xz + hz)``, ``n = tanh(xn + r * hn)``, ``h' = (1 - z) n + z h`` (the reset gate
    multiplies the recurrent product *including* its bias, as cuDNN does).
    The reverse direction reads the sequence from its end; the output concatenates the
    directions along the feature axis, states are indexed ``layer * D + direction``.  With
    ``p > 0`` the input of every layer above the first is multiplied by a dropout mask in
    training (kept with probability 1-p, scaled by 1/(1-p)).  With ``use_sequence_length``
    the steps at and after an element's length give zero outputs and leave its state alone
    (the reverse direction starts at the element's last valid step).

Note: rnn-dropout-mask
    MXNet's RNN has no mask output.  Here, when dropout can act (p > 0 and more than one
    layer), the op has one *hidden* output, the masks of the layers above the first, shape
    (L-1, T, N, D*R) (ones outside training).  The backward reads it, so the gradient always
    belongs to the mask the forward used.  The op declares ``needs_rng``: the JIT's step mode
    (which may rerun a training forward) stays off for graphs with RNN.

Note: rnn-reserve
    MXNet's fused RNN keeps a reserve space from the training forward for the backward in
    its op state.  Here the op's last output, ``reserve``, is hidden too (graph JSON lists no
    outputs, so exports are unchanged): a flat vector of ``rnn_reserve_size`` that the
    compiled forward fills in training (agjit.compiler.kernels_rnn note *rnn-reserve*) and
    ``_backward_RNN`` takes as an input; with its last element (the flag) 0 -- the eager
    forward's zeros, a predict-mode forward -- the backward runs the forward again.

Note: rnn-empty-batch-states
    A state input whose batch dimension is 0 (what MXNet's ``_zeros`` with shape
    (L*D, 0, H) -- the implicit begin state in graphs MXNet exports -- would produce when
    its unknown dimension is not filled in) counts as zeros of the data's batch size.

Note: rnn-mxnet-cpu
    MXNet 1.9.1's CPU kernels ignore ``use_sequence_length`` and the LSTM state clipping
    (they compute the plain recurrence) and crash on ``projection_size``; those options are
    cuDNN features.  Here they follow the documented (cuDNN) semantics of note
    *rnn-formulas*, so with them the numbers differ from a CPU build of MXNet.

The eager backward ``_backward_RNN`` runs the forward again (keeping the gate activations;
it ignores the reserve) and then back-propagates through time in NumPy, vectorised over the
batch.  It is a first-order gradient only (``RNN`` declares ``second_order=False``;
``_backward_RNN`` is not differentiable).
"""
import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, merge_shape, ctx_train, blas_serial
from ._lowering import KernelCall
from .shape_join import _lower_concat

_GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}
_MODES = ("rnn_relu", "rnn_tanh", "lstm", "gru")

_ATTRS = {
    "state_size": Attr("int", doc="size of the state of each layer"),
    "num_layers": Attr("int", doc="number of stacked layers"),
    "bidirectional": Attr("bool", False),
    "mode": Attr("str", choices=_MODES),
    "p": Attr("float", 0.0, doc="dropout rate on the inputs of the layers above the first"),
    "state_outputs": Attr("bool", False, doc="also output the final states"),
    "projection_size": Attr("int_or_none", None),
    "lstm_state_clip_min": Attr("float_or_none", None),
    "lstm_state_clip_max": Attr("float_or_none", None),
    "lstm_state_clip_nan": Attr("bool", False),
    "use_sequence_length": Attr("bool", False),
}


# ---------------------------------------------------------------------------------------
# schema helpers
# ---------------------------------------------------------------------------------------
def _rnn_inputs(attrs):
    """Input names; with attributes unknown (``{}``) the longest list."""
    mode = attrs.get("mode")
    names = ["data", "parameters", "state"]
    if mode is None or mode == "lstm":
        names.append("state_cell")
    if attrs.get("use_sequence_length") is not False:
        names.append("sequence_length")
    return names


def _has_mask(attrs):
    return attrs.get("p", 0.0) > 0.0 and attrs.get("num_layers", 1) > 1


def _n_visible(attrs):
    if not attrs.get("state_outputs"):
        return 1
    return 3 if attrs.get("mode") == "lstm" else 2


def _n_outputs(attrs):
    return _n_visible(attrs) + (1 if _has_mask(attrs) else 0) + 1     # + the reserve


def _output_names(attrs):
    names = ["output"]
    if attrs.get("state_outputs"):
        names.append("state_output")
        if attrs.get("mode") == "lstm":
            names.append("statecell_output")
    if _has_mask(attrs):
        names.append("mask")
    names.append("reserve")
    return names


def _dims(attrs):
    """(G, H, R, D, L, P) of the attributes, checked."""
    op = "RNN"
    mode = attrs["mode"]
    H, L = attrs["state_size"], attrs["num_layers"]
    if H <= 0:
        raise MXNetError("%s: state_size must be positive, got %d" % (op, H))
    if L <= 0:
        raise MXNetError("%s: num_layers must be positive, got %d" % (op, L))
    if not 0.0 <= attrs["p"] <= 1.0:
        raise MXNetError("%s: p must be in [0, 1], got %r" % (op, attrs["p"]))
    P = attrs["projection_size"]
    if P is not None:
        if mode != "lstm":
            raise MXNetError("%s: projection is only supported for LSTM (mode=%r)" % (op, mode))
        if not 0 < P <= H:
            raise MXNetError("%s: projection_size must be in [1, state_size=%d], got %d" % (op, H, P))
    lo, hi = attrs["lstm_state_clip_min"], attrs["lstm_state_clip_max"]
    if lo is not None or hi is not None:
        if mode != "lstm":
            raise MXNetError("%s: state clipping is only supported for LSTM (mode=%r)" % (op, mode))
        if lo is None or hi is None:
            raise MXNetError("%s: lstm_state_clip_min and lstm_state_clip_max must be specified "
                             "together" % op)
        if hi < lo:
            raise MXNetError("%s: lstm_state_clip_max (%g) must be >= lstm_state_clip_min (%g)"
                             % (op, hi, lo))
    G = _GATES[mode]
    D = 2 if attrs["bidirectional"] else 1
    R = H if P is None else P
    return G, H, R, D, L, P


def rnn_param_size(attrs, input_size):
    """Length of the flat parameter vector (note *rnn-parameter-packing*)."""
    G, H, R, D, L, P = _dims(attrs)
    n = 0
    for layer in range(L):
        ni = input_size if layer == 0 else D * R
        n += D * (G * H * (ni + R) + 2 * G * H + (P * H if P is not None else 0))
    return n


def _reserve_kernel(attrs):
    """Whether the compiled kernels can run this op (what _rnn_lowerable checks of the
    attributes): only they fill a reserve."""
    return attrs["projection_size"] is None and attrs["lstm_state_clip_min"] is None


def rnn_reserve_size(attrs, T, N):
    """Length of the hidden ``reserve`` output (note *rnn-reserve*; the layout is
    agjit.compiler.kernels_rnn ``_reserve_layout``, which checks this length): activations,
    states and layer inputs of a training forward, then the flag.  1 (the flag alone)
    where no compiled kernel runs the op."""
    G, H, R, D, L, P = _dims(attrs)
    if not _reserve_kernel(attrs):
        return 1
    aw = {"lstm": 5, "gru": 4}.get(attrs["mode"], 1) * H
    return L * D * T * N * aw + 2 * L * D * (T + 1) * N * H + (L - 1) * T * N * D * H + 1


def _unpack(attrs, params, input_size):
    """Views of the flat vector: dict (layer, direction) -> (Wx, Wh, Wr, bx, bh)."""
    G, H, R, D, L, P = _dims(attrs)
    off = 0
    mats = {}
    for layer in range(L):
        ni = input_size if layer == 0 else D * R
        for d in range(D):
            wx = params[off:off + G * H * ni].reshape(G * H, ni)
            off += G * H * ni
            wh = params[off:off + G * H * R].reshape(G * H, R)
            off += G * H * R
            wr = None
            if P is not None:
                wr = params[off:off + P * H].reshape(P, H)
                off += P * H
            mats[(layer, d)] = [wx, wh, wr]
    for layer in range(L):
        for d in range(D):
            bx = params[off:off + G * H]
            off += G * H
            bh = params[off:off + G * H]
            off += G * H
            mats[(layer, d)] += [bx, bh]
    return mats, off


# ---------------------------------------------------------------------------------------
# shape / type inference
# ---------------------------------------------------------------------------------------
def _check_count(op, attrs, ins, names):
    if len(ins) != len(names):
        raise MXNetError("%s: mode=%r%s expects %d inputs (%s), got %d"
                         % (op, attrs["mode"],
                            ", use_sequence_length=True" if attrs["use_sequence_length"] else "",
                            len(names), ", ".join(names), len(ins)))


def _merge_in(op, name, given, want, data):
    try:
        return merge_shape(op, name, given, want)
    except MXNetError:
        raise MXNetError("%s: input %s has shape %s, but data %s with these attributes needs %s"
                         % (op, name, fmt(given), fmt(data), fmt(want))) from None


def _rnn_shapes(op, attrs, ins):
    """Inferred input shapes and output shapes [out, hy, cy, mask] (all four)."""
    names = _rnn_inputs(attrs)
    G, H, R, D, L, P = _dims(attrs)
    ins = list(ins)
    d = ins[0]
    if d is None:
        return ins, [None, None, None, None, None]
    d = tuple(d)
    if len(d) != 3:
        raise MXNetError("%s: data must be a 3-D (sequence length, batch size, input size) array, "
                         "got shape %s" % (op, fmt(d)))
    T, N, C = d
    st = (L * D, N, R)
    ins[2] = _merge_in(op, "state", ins[2], st, d)
    if "state_cell" in names:
        ins[3] = _merge_in(op, "state_cell", ins[3], (L * D, N, H), d)
    if C > 0:
        ins[1] = _merge_in(op, "parameters", ins[1], (rnn_param_size(attrs, C),), d)
    elif ins[1] is not None and len(ins[1]) != 1:
        raise MXNetError("%s: parameters must be a 1-D vector, got shape %s" % (op, fmt(ins[1])))
    if attrs["use_sequence_length"]:
        k = names.index("sequence_length")
        ins[k] = _merge_in(op, "sequence_length", ins[k], (N,), d)
    outs = [(T, N, D * R), st, (L * D, N, H), (L - 1, T, N, D * R),
            (rnn_reserve_size(attrs, T, N),)]
    return ins, outs


def _select_outs(attrs, outs):
    res = [outs[0]]
    if attrs["state_outputs"]:
        res.append(outs[1])
        if attrs["mode"] == "lstm":
            res.append(outs[2])
    if _has_mask(attrs):
        res.append(outs[3])
    res.append(outs[4])
    return res


def _rnn_infer(attrs, ins):
    _check_count("RNN", attrs, ins, _rnn_inputs(attrs))
    ins, outs = _rnn_shapes("RNN", attrs, ins)
    return ins, _select_outs(attrs, outs)


def _rnn_type(attrs, ins):
    names = _rnn_inputs(attrs)
    t = ins[0]
    if t is None:
        t = next((x for i, x in enumerate(ins) if x is not None and names[i] != "sequence_length"), None)
    res = []
    for name, x in zip(names, ins):
        if name == "sequence_length":
            res.append(x if x is not None else t)
        elif x is not None and t is not None and np.dtype(x) != np.dtype(t):
            raise MXNetError("RNN: input %s has dtype %s but data has dtype %s" % (name, x, t))
        else:
            res.append(t)
    return res, [t] * _n_outputs(attrs)


# ---------------------------------------------------------------------------------------
# NumPy kernels
# ---------------------------------------------------------------------------------------
def _sigmoid(a):
    return 0.5 * (np.tanh(0.5 * a) + 1.0)


def _clip_cell(attrs, c):
    lo, hi = attrs["lstm_state_clip_min"], attrs["lstm_state_clip_max"]
    if lo is None:
        return c, None
    keep = (c >= lo) & (c <= hi)
    if attrs["lstm_state_clip_nan"]:
        c = np.where(np.isnan(c), lo, c)
    return np.clip(c, lo, hi), keep


def _step_masks(attrs, seqlen, T, N, dtype):
    if not attrs["use_sequence_length"]:
        return None
    lens = np.asarray(seqlen).astype(np.int64).reshape(-1)
    return (np.arange(T)[:, None] < lens[None, :]).astype(dtype)[:, :, None]   # (T, N, 1)


def _run_direction(attrs, x, h0, c0, w, reverse, steps, keep_cache):
    """One direction of one layer over the whole sequence.  x (T, N, C); returns (y (T, N, R),
    h_T, c_T, cache)."""
    mode = attrs["mode"]
    wx, wh, wr, bx, bh = w
    T = x.shape[0]
    GH = wx.shape[0]
    xw = (x.reshape(-1, x.shape[2]) @ wx.T + bx).reshape(T, x.shape[1], GH)
    y = np.zeros((T, x.shape[1], wh.shape[1]), dtype=x.dtype)
    h, c = h0, c0
    cache = [None] * T if keep_cache else None
    order = range(T - 1, -1, -1) if reverse else range(T)
    for t in order:
        hp, cp = h, c
        a = xw[t]
        if mode == "gru":
            H = GH // 3
            hw = hp @ wh.T + bh
            r = _sigmoid(a[:, :H] + hw[:, :H])
            z = _sigmoid(a[:, H:2 * H] + hw[:, H:2 * H])
            n = np.tanh(a[:, 2 * H:] + r * hw[:, 2 * H:])
            hn = (1.0 - z) * n + z * hp
            rec = (r, z, n, hw[:, 2 * H:])
            cn = None
        elif mode == "lstm":
            H = GH // 4
            g_all = a + hp @ wh.T + bh
            i = _sigmoid(g_all[:, :H])
            f = _sigmoid(g_all[:, H:2 * H])
            g = np.tanh(g_all[:, 2 * H:3 * H])
            o = _sigmoid(g_all[:, 3 * H:])
            cn, clip_keep = _clip_cell(attrs, f * cp + i * g)
            tc = np.tanh(cn)
            hfull = o * tc
            hn = hfull if wr is None else hfull @ wr.T
            rec = (i, f, g, o, tc, hfull, clip_keep)
        else:
            pre = a + hp @ wh.T + bh
            hn = np.tanh(pre) if mode == "rnn_tanh" else np.maximum(pre, 0.0)
            rec = (pre, hn)
            cn = None
        if steps is not None:
            m = steps[t]
            yt = hn * m
            hn = yt + hp * (1.0 - m)
            if cn is not None:
                cn = cn * m + cp * (1.0 - m)
        else:
            yt = hn
        y[t] = yt
        if keep_cache:
            cache[t] = (hp, cp, rec)
        h, c = hn, cn
    return y, h, c, cache


def _rnn_compute(attrs, ins, mask, keep_cache):
    """The whole forward.  Returns out, hy, cy, caches (per layer: layer input, per-direction
    caches)."""
    names = _rnn_inputs(attrs)
    G, H, R, D, L, P = _dims(attrs)
    x = ins[0]
    params = ins[1]
    hx = ins[2]
    cx = ins[3] if "state_cell" in names else None
    seq = ins[names.index("sequence_length")] if attrs["use_sequence_length"] else None
    T, N, C = x.shape
    dt = x.dtype
    mats, _ = _unpack(attrs, params.astype(dt, copy=False), C)
    steps = _step_masks(attrs, seq, T, N, dt)
    if hx.shape[1] == 0 and N > 0:          # note *rnn-empty-batch-states*
        hx = np.zeros((L * D, N, R), dtype=dt)
    if cx is not None and cx.shape[1] == 0 and N > 0:
        cx = np.zeros((L * D, N, H), dtype=dt)
    hy = np.zeros((L * D, N, R), dtype=dt)
    cy = np.zeros((L * D, N, H), dtype=dt)
    caches = []
    inp = x
    for layer in range(L):
        if layer > 0 and mask is not None:
            inp = inp * mask[layer - 1]
        ys, lc = [], []
        for d in range(D):
            k = layer * D + d
            c0 = cx[k].astype(dt, copy=False) if cx is not None else None
            with blas_serial():        # _common note *blas-serial*
                y, h, c, cache = _run_direction(attrs, inp, hx[k].astype(dt, copy=False), c0,
                                                mats[(layer, d)], d == 1, steps, keep_cache)
            ys.append(y)
            lc.append(cache)
            hy[k] = h
            if c is not None:
                cy[k] = c
        caches.append((inp, lc))
        inp = ys[0] if D == 1 else np.concatenate(ys, axis=2)
    return inp, hy, cy, caches


def _dropout_masks(attrs, shape, dt, ctx):
    if not _has_mask(attrs):
        return None
    G, H, R, D, L, P = _dims(attrs)
    T, N = shape[0], shape[1]
    ms = (L - 1, T, N, D * R)
    p = attrs["p"]
    if not ctx_train(ctx):
        return np.ones(ms, dtype=dt)
    if p >= 1.0:
        return np.zeros(ms, dtype=dt)
    keep = ctx.rng.random(ms) < (1.0 - p)
    return (keep * (1.0 / (1.0 - p))).astype(dt)


def _rnn_fwd(attrs, ins, ctx):
    x = ins[0]
    mask = _dropout_masks(attrs, x.shape, x.dtype, ctx)
    out, hy, cy, _ = _rnn_compute(attrs, ins, mask, False)
    # the reserve's flag 0: the backward recomputes (zeros: untouched pages, no memory)
    reserve = np.zeros(rnn_reserve_size(attrs, x.shape[0], x.shape[1]), dtype=x.dtype)
    return _select_outs(attrs, [out, hy, cy, mask, reserve])


def _back_direction(attrs, x, w, cache, dy, dh, dc, reverse, steps, grads):
    """BPTT through one direction.  dy (T, N, R) output gradient; dh/dc the final-state
    gradients.  Accumulates weight gradients into grads [dWx, dWh, dWr, dbx, dbh]; returns
    (dx (T, N, C), dh0, dc0)."""
    mode = attrs["mode"]
    wx, wh, wr, bx, bh = w
    T, N, C = x.shape
    GH = wx.shape[0]
    dxw = np.zeros((T, N, GH), dtype=x.dtype)
    dWh = np.zeros_like(wh)
    dbh = np.zeros_like(bh)
    dWr = np.zeros_like(wr) if wr is not None else None
    order = range(T) if reverse else range(T - 1, -1, -1)
    for t in order:
        hp, cp, rec = cache[t]
        g_out = dy[t] + dh
        if steps is not None:
            m = steps[t]
            dh_keep = dh * (1.0 - m)
            g_out = g_out * m
            if dc is not None:
                dc_keep = dc * (1.0 - m)
                dc = dc * m
        if mode == "gru":
            H = GH // 3
            r, z, n, hn_lin = rec
            dn = g_out * (1.0 - z)
            dz = g_out * (hp - n)
            dh_prev = g_out * z
            dan = dn * (1.0 - n * n)
            dar = dan * hn_lin * r * (1.0 - r)
            daz = dz * z * (1.0 - z)
            dxw[t, :, :H] = dar
            dxw[t, :, H:2 * H] = daz
            dxw[t, :, 2 * H:] = dan
            dhw = np.concatenate([dar, daz, dan * r], axis=1)
            dWh += dhw.T @ hp
            dbh += dhw.sum(axis=0)
            dh_prev = dh_prev + dhw @ wh
            dc_prev = None
        elif mode == "lstm":
            H = GH // 4
            i, f, g, o, tc, hfull, clip_keep = rec
            if wr is not None:
                dWr += g_out.T @ hfull
                dhf = g_out @ wr
            else:
                dhf = g_out
            dcn = dhf * o * (1.0 - tc * tc) + (dc if dc is not None else 0.0)
            if clip_keep is not None:
                dcn = dcn * clip_keep
            da = np.concatenate([dcn * g * i * (1.0 - i), dcn * cp * f * (1.0 - f),
                                 dcn * i * (1.0 - g * g), dhf * tc * o * (1.0 - o)], axis=1)
            dxw[t] = da
            dWh += da.T @ hp
            dbh += da.sum(axis=0)
            dh_prev = da @ wh
            dc_prev = dcn * f
        else:
            pre, hn = rec
            if mode == "rnn_tanh":
                da = g_out * (1.0 - hn * hn)
            else:
                da = g_out * (pre > 0)
            dxw[t] = da
            dWh += da.T @ hp
            dbh += da.sum(axis=0)
            dh_prev = da @ wh
            dc_prev = None
        if steps is not None:
            dh_prev = dh_prev + dh_keep
            if dc_prev is not None:
                dc_prev = dc_prev + dc_keep
        dh, dc = dh_prev, dc_prev
    flat = dxw.reshape(-1, GH)
    grads[0] += flat.T @ x.reshape(-1, C)
    grads[1] += dWh
    if dWr is not None:
        grads[2] += dWr
    grads[3] += flat.sum(axis=0)
    grads[4] += dbh
    dx = (flat @ wx).reshape(T, N, C)
    return dx, dh, dc


def _bwd_inputs(attrs):
    names = _rnn_inputs(attrs)
    if attrs.get("num_layers") is None or _has_mask(attrs):
        names.append("mask")
    names.append("reserve")
    names.append("ograd")
    so = attrs.get("state_outputs")
    if so is None or so:
        names.append("ograd_state")
        if attrs.get("mode") in (None, "lstm"):
            names.append("ograd_statecell")
    return names


def _bwd_split(attrs, ins):
    names = _bwd_inputs(attrs)
    _check_count("_backward_RNN", attrs, ins, names)
    k = {n: i for i, n in enumerate(names)}
    n_fwd = len(_rnn_inputs(attrs))
    return names, k, n_fwd


def _bwd_infer(attrs, ins):
    names, k, n_fwd = _bwd_split(attrs, ins)
    fwd_ins, outs = _rnn_shapes("_backward_RNN", attrs, ins[:n_fwd])
    ins = list(fwd_ins) + list(ins[n_fwd:])
    if outs[0] is not None:
        ins[k["ograd"]] = _merge_in("_backward_RNN", "ograd", ins[k["ograd"]], outs[0], fwd_ins[0])
        if "mask" in k:
            ins[k["mask"]] = _merge_in("_backward_RNN", "mask", ins[k["mask"]], outs[3], fwd_ins[0])
        ins[k["reserve"]] = _merge_in("_backward_RNN", "reserve", ins[k["reserve"]], outs[4],
                                      fwd_ins[0])
        if "ograd_state" in k:
            ins[k["ograd_state"]] = _merge_in("_backward_RNN", "ograd_state", ins[k["ograd_state"]],
                                              outs[1], fwd_ins[0])
        if "ograd_statecell" in k:
            ins[k["ograd_statecell"]] = _merge_in("_backward_RNN", "ograd_statecell",
                                                  ins[k["ograd_statecell"]], outs[2], fwd_ins[0])
    res = list(ins[:3])
    if attrs["mode"] == "lstm":
        res.append(ins[3])
    return ins, res


def _bwd_type(attrs, ins):
    t = next((x for x in ins if x is not None), None)
    return [x if x is not None else t for x in ins], [t] * (4 if attrs["mode"] == "lstm" else 3)


def _bwd_fwd(attrs, ins, ctx):
    names, k, n_fwd = _bwd_split(attrs, ins)
    G, H, R, D, L, P = _dims(attrs)
    x, params = ins[0], ins[1]
    dt = x.dtype
    T, N, C = x.shape
    mask = ins[k["mask"]] if "mask" in k else None
    _, _, _, caches = _rnn_compute(attrs, ins[:n_fwd], mask, True)
    dout = ins[k["ograd"]].astype(dt, copy=False)
    dhy = ins[k["ograd_state"]] if "ograd_state" in k else np.zeros((L * D, N, R), dtype=dt)
    dcy = ins[k["ograd_statecell"]] if "ograd_statecell" in k else np.zeros((L * D, N, H), dtype=dt)
    mats, size = _unpack(attrs, params.astype(dt, copy=False), C)
    dparams = np.zeros(size, dtype=dt)
    gmats, _ = _unpack(attrs, dparams, C)       # views into dparams
    steps = _step_masks(attrs, ins[names.index("sequence_length")] if attrs["use_sequence_length"]
                        else None, T, N, dt)
    dstate = np.zeros((L * D, N, R), dtype=dt)
    dcell = np.zeros((L * D, N, H), dtype=dt)
    g_above = dout
    for layer in range(L - 1, -1, -1):
        inp, lc = caches[layer]
        d_in = np.zeros_like(inp)
        for d in range(D):
            kk = layer * D + d
            dy = g_above[:, :, d * R:(d + 1) * R]
            dc = dcy[kk].astype(dt, copy=False) if attrs["mode"] == "lstm" else None
            with blas_serial():
                dx, dh0, dc0 = _back_direction(attrs, inp, mats[(layer, d)], lc[d], dy,
                                               dhy[kk].astype(dt, copy=False), dc, d == 1, steps,
                                               gmats[(layer, d)])
            d_in += dx
            dstate[kk] = dh0
            if dc0 is not None:
                dcell[kk] = dc0
        if layer > 0 and mask is not None:
            d_in = d_in * mask[layer - 1]
        g_above = d_in
    if ins[2].shape[1] == 0:
        dstate = np.zeros(ins[2].shape, dtype=dt)
    res = [g_above, dparams.astype(params.dtype, copy=False), dstate]
    if attrs["mode"] == "lstm":
        res.append(dcell if ins[3].shape[1] else np.zeros(ins[3].shape, dtype=dt))
    return res


def _attr_kw(attrs):
    """The attributes that differ from their defaults (to pass on to _backward_RNN)."""
    return {k: v for k, v in attrs.items() if _ATTRS[k].required or v != _ATTRS[k].default}


def _rnn_grad(F, attrs, ins, outs, og, ctx):
    nvis = _n_visible(attrs)
    args = list(ins)
    if _has_mask(attrs):
        args.append(outs[nvis])
    args.append(outs[-1])           # the reserve (note *rnn-reserve*)
    args.append(og[0])
    if attrs["state_outputs"]:
        args.extend(og[1:nvis])
    res = F._backward_RNN(*args, **_attr_kw(attrs))
    res = list(res)
    if attrs["use_sequence_length"]:
        res.append(None)
    return res


# ---------------------------------------------------------------------------------------
# samples
# ---------------------------------------------------------------------------------------
def _sample(rng, mode, T=3, N=2, C=3, H=2, L=1, bidir=False, proj=None, seqlen=None, **extra):
    attrs = {"state_size": H, "num_layers": L, "mode": mode, "bidirectional": bidir}
    if proj is not None:
        attrs["projection_size"] = proj
    attrs.update(extra)
    parsed = {k: attrs.get(k, a.default) for k, a in _ATTRS.items()}
    D = 2 if bidir else 1
    R = proj or H
    ins = [rng.uniform(-1, 1, (T, N, C)),
           rng.uniform(-0.8, 0.8, (rnn_param_size(parsed, C),)),
           rng.uniform(-0.5, 0.5, (L * D, N, R))]
    if mode == "lstm":
        ins.append(rng.uniform(-0.5, 0.5, (L * D, N, H)))
    if seqlen is not None:
        attrs["use_sequence_length"] = True
        ins.append(np.array(seqlen, dtype=np.float64))
    return Sample(ins, attrs)


def _rnn_samples(rng):
    return [
        _sample(rng, "rnn_tanh"),
        _sample(rng, "rnn_relu", L=2, state_outputs=True),
        _sample(rng, "lstm", state_outputs=True),
        _sample(rng, "lstm", L=2, bidir=True, T=2, state_outputs=True),
        _sample(rng, "gru", bidir=True, state_outputs=True),
        _sample(rng, "gru", L=2, T=2),
        _sample(rng, "lstm", H=3, proj=2, T=2, state_outputs=True),
        _sample(rng, "lstm", T=3, seqlen=[3, 1], bidir=True, state_outputs=True),
        _sample(rng, "lstm", L=2, T=2, p=0.5),
    ]


def _bwd_samples(rng):
    out = []
    for s in (_sample(rng, "gru", bidir=True, state_outputs=True),
              _sample(rng, "lstm", L=2, T=2, state_outputs=True),
              _sample(rng, "rnn_tanh", T=2, L=2, p=0.3),
              _sample(rng, "lstm", T=3, seqlen=[3, 1], bidir=True, state_outputs=True),
              _sample(rng, "gru", T=3, N=3, seqlen=[2, 3, 1], L=2)):
        parsed = {k: s.attrs.get(k, a.default) for k, a in _ATTRS.items()}
        _, outs = _rnn_shapes("RNN", parsed, [np.shape(a) for a in s.inputs])
        extra = []
        if _has_mask(parsed):
            extra.append((rng.uniform(0, 1, outs[3]) < 0.7) / 0.7 + 0.0)
        extra.append(np.zeros(outs[4]))         # no reserve: the backward recomputes
        extra.append(rng.standard_normal(outs[0]))
        if parsed["state_outputs"]:
            extra.append(rng.standard_normal(outs[1]))
            if parsed["mode"] == "lstm":
                extra.append(rng.standard_normal(outs[2]))
        out.append(Sample(list(s.inputs) + extra, s.attrs))
    return out


# ---------------------------------------------------------------------------------------
# lowerings (agjit.compiler.kernels_rnn; note *rnn-lowering*)
# ---------------------------------------------------------------------------------------
# Note: rnn-lowering
#     Inside ``mx.jit`` RNN and _backward_RNN are one kernel-library call each (rnn_fwd /
#     rnn_bwd): every mode, layer count and direction, sequence lengths, float32 / float64.
#     Projection, state clipping and state inputs of another batch size than the data's
#     (note *rnn-empty-batch-states*) run the eager kernel.  The dropout mask is
#     drawn in the kernel from the ``mx.random`` generator with the eager kernel's
#     comparisons (one double per element in C order, as Dropout's lowering), ones in a
#     predict-mode forward, zeros for p >= 1 (nothing drawn, as eager).
_MODE_CODE = {"rnn_relu": 0, "rnn_tanh": 1, "lstm": 2, "gru": 3}


def _rnn_lowerable(ctx, op_names):
    if not _reserve_kernel(ctx.attrs):
        return False
    xs = ctx.in_shapes[0]
    if len(xs) != 3:
        return False
    for name in ("state", "state_cell"):
        if name in op_names:
            s = ctx.in_shapes[op_names.index(name)]
            if len(s) != 3 or s[1] != xs[1]:
                return False
    return True


def _i64(*vals):
    return ", ".join("np.int64(%d)" % int(v) for v in vals)


def _lower_rnn(ctx):
    a = ctx.attrs
    names = _rnn_inputs(a)
    if not _rnn_lowerable(ctx, names):
        return None
    G, H, R, D, L, P = _dims(a)
    lstm = a["mode"] == "lstm"
    x, w, hx = ctx.ins[:3]
    cx = ctx.ins[3] if lstm else hx
    lines = []
    dt = "np.%s" % ctx.dtype

    def scratch(shape):
        t = ctx.tmp("s")
        lines.append("%s = np.empty(%s, dtype=%s)" % (t, shape, dt))
        return t
    st = "(%d, %s.shape[1], %d)" % (L * D, x, H)
    outs = list(ctx.outs)
    k = 1
    if a["state_outputs"]:
        hy = outs[1]
        k = 2
        if lstm:
            cy = outs[2]
            k = 3
        else:
            cy = scratch(st)
    else:
        hy, cy = scratch(st), scratch(st)
    has_mask = _has_mask(a)
    if has_mask:
        m = outs[k]
        p = a["p"]
        i, n = ctx.tmp("i"), ctx.tmp("n")

        def fill(v, ind):
            return [ind + "%s = %s.size" % (n, m), ind + "for %s in range(%s):" % (i, n),
                    ind + "    %s.reshape(-1)[%s] = %s" % (m, i, ctx.const(v))]
        if p >= 1.0:
            draw = fill(0.0, "    ")
        else:
            draw = ["    %s(%s, %s.reshape(-1), np.float64(%r), np.float64(%r))"
                    % (ctx.fn("dropout_draw"), ctx.runtime("rng"), m, 1.0 - p, 1.0 / (1.0 - p))]
        lines += ["if %s:" % ctx.runtime("train")] + draw + ["else:"] + fill(1.0, "    ")
    else:
        m = scratch("(1, 1, 1, 1)")
    seq = ctx.ins[names.index("sequence_length")] if a["use_sequence_length"] else x
    # the reserve (the last output) filled in a training forward (note *rnn-reserve*)
    lines.append("%s(%s, %s, %s, %s, %s.reshape(%s.size), %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                 % (ctx.fn("rnn_fwd"), x, w, hx, cx, seq, seq, m, outs[0], hy, cy, outs[-1],
                    _i64(_MODE_CODE[a["mode"]], H, L, D), has_mask,
                    bool(a["use_sequence_length"]), ctx.runtime("train")))
    return lines


def _lower_rnn_bwd(ctx):
    a = ctx.attrs
    names = _bwd_inputs(a)
    if not _rnn_lowerable(ctx, names):
        return None
    G, H, R, D, L, P = _dims(a)
    lstm = a["mode"] == "lstm"
    k = {n: i for i, n in enumerate(names)}
    ins = ctx.ins
    x, w, hx = ins[:3]
    cx = ins[3] if lstm else hx
    lines = []
    dt = "np.%s" % ctx.dtype
    st = "(%d, %s.shape[1], %d)" % (L * D, x, H)

    def zeros(shape):
        t = ctx.tmp("z")
        lines.append("%s = np.zeros(%s, dtype=%s)" % (t, shape, dt))
        return t
    has_mask = "mask" in k
    m = ins[k["mask"]] if has_mask else zeros("(1, 1, 1, 1)")
    ghy = ins[k["ograd_state"]] if "ograd_state" in k else zeros(st)
    gcy = ins[k["ograd_statecell"]] if "ograd_statecell" in k else zeros(st)
    gx, gw, ghx = ctx.outs[:3]
    gcx = ctx.outs[3] if lstm else zeros(st)
    seq = ins[k["sequence_length"]] if a["use_sequence_length"] else x
    lines.append("%s(%s, %s, %s, %s, %s.reshape(%s.size), %s, %s, %s, %s, %s, %s, %s, %s, "
                 "%s, %s, %s, %s)" % (
                     ctx.fn("rnn_bwd"), x, w, hx, cx, seq, seq, m, ins[k["reserve"]],
                     ins[k["ograd"]], ghy, gcy,
                     gx, gw, ghx, gcx, _i64(_MODE_CODE[a["mode"]], H, L, D), has_mask,
                     bool(a["use_sequence_length"])))
    return lines


register("RNN", inputs=_rnn_inputs, attrs=dict(_ATTRS), aliases=("_npx_rnn",),
         infer_shape=_rnn_infer, infer_type=_rnn_type, forward=_rnn_fwd, gradient=_rnn_grad,
         num_outputs=_n_outputs, num_visible=_n_visible, output_names=_output_names,
         optional_inputs=("state_cell", "sequence_length"),
         train_dependent=True, needs_rng=True, second_order=False,
         # any_dtype: sequence_length may be an integer array (the rest share one dtype)
         lowering=KernelCall(_lower_rnn, uses=("rnn_fwd", "dropout_draw"), any_dtype=True),
         samples=_rnn_samples,
         doc="MXNet's fused multi-layer (bidirectional) recurrent network over a (T, N, C) "
             "sequence: modes rnn_relu, rnn_tanh, lstm, gru, parameters in one flat vector "
             "(notes *rnn-parameter-packing*, *rnn-formulas*).  Outputs the (T, N, D*H) "
             "sequence and, with state_outputs, the final states (L*D, N, H).")

register("_backward_RNN", inputs=_bwd_inputs, attrs=dict(_ATTRS),
         infer_shape=_bwd_infer, infer_type=_bwd_type, forward=_bwd_fwd,
         num_outputs=lambda attrs: 4 if attrs.get("mode") == "lstm" else 3,
         optional_inputs=("state_cell", "sequence_length", "mask", "reserve", "ograd",
                          "ograd_state", "ograd_statecell"),
         differentiable=False, samples=_bwd_samples,
         lowering=KernelCall(_lower_rnn_bwd, uses=("rnn_bwd",), any_dtype=True),
         doc="Gradient of RNN by back-propagation through time: inputs are RNN's inputs, its "
             "dropout mask (when it has one) and the output gradients; outputs the gradients "
             "of data, parameters, state (and state_cell for lstm).")


# ---------------------------------------------------------------------------------------
# _rnn_param_concat
# ---------------------------------------------------------------------------------------
def _rpc_infer(attrs, ins, outs=None):
    """As Concat, plus MXNet's backward rule: with the output's size along ``dim`` known, one
    or two inputs of unknown size there get the remainder (split evenly between two -- the
    two directions' first-layer i2h weights of a bidirectional layer), which is how a fused
    Gluon RNN layer inside a hybridized parent learns its input size from the data (RNN
    infers ``parameters``, this op hands the rest to the unknown i2h weight, Reshape turns it
    into the weight's missing dimension)."""
    op = "_rnn_param_concat"
    n = attrs["num_args"]
    if n != len(ins):
        raise MXNetError("%s: num_args=%d but %d inputs given" % (op, n, len(ins)))
    o = outs[0] if outs else None
    ranked = [s for s in ins if s is not None] + ([o] if o is not None else [])
    if not ranked:
        return list(ins), [None]
    nd = len(ranked[0])
    dim = attrs["dim"]
    if any(len(s) != nd for s in ranked) or not -nd <= dim < nd:
        raise MXNetError("%s: inputs %s (output %s) cannot be concatenated along dim=%d"
                         % (op, ", ".join(fmt(x) for x in ins), fmt(o), dim))
    ax = dim % nd
    common = [0] * nd               # every dimension but ax, shared by inputs and output
    for s in ranked:
        for i in range(nd):
            if i == ax or s[i] == 0:
                continue
            if common[i] == 0:
                common[i] = s[i]
            elif s[i] != common[i]:
                raise MXNetError("%s: input shapes must agree except on dim=%d, got %s "
                                 "(output %s)" % (op, dim, ", ".join(fmt(x) for x in ins),
                                                  fmt(o)))

    def with_axis(size):
        t = list(common)
        t[ax] = size
        return tuple(t)

    sizes = [None if s is None else s[ax] for s in ins]
    unknown = [i for i, z in enumerate(sizes) if not z]
    new_ins = [None if s is None and common.count(0) == nd else with_axis(z or 0)
               for s, z in zip(ins, sizes)]
    total = o[ax] if o is not None and o[ax] else 0
    if unknown and total:
        if len(unknown) > 2:
            raise MXNetError("%s: the output has size %d along dim=%d but %d inputs have an "
                             "unknown size there; at most 2 can be inferred (inputs %s)"
                             % (op, total, dim, len(unknown), ", ".join(fmt(x) for x in ins)))
        rest = total - sum(z for z in sizes if z)
        if rest <= 0 or rest % len(unknown):
            raise MXNetError("%s: the output has size %d along dim=%d; the known inputs %s "
                             "leave %d, which cannot be split over %d unknown input(s)"
                             % (op, total, dim, ", ".join(fmt(x) for x in ins), rest,
                                len(unknown)))
        for i in unknown:
            new_ins[i] = with_axis(rest // len(unknown))
        unknown = []
    out = with_axis(0 if unknown else sum(s[ax] for s in new_ins))
    return new_ins, [out]


def _rpc_fwd(attrs, ins, ctx):
    ax = attrs["dim"] % ins[0].ndim
    return [np.concatenate(ins, axis=ax)]


def _rpc_grad(F, attrs, ins, outs, og, ctx):
    n = len(ins)
    return [F._concat_slice(og[0], *ins, num_args=n + 1, dim=attrs["dim"], index=i)
            for i in range(n)]


register("_rnn_param_concat", inputs=(), variadic="num_args", aliases=("_npi_rnn_param_concat",),
         attrs={"num_args": Attr("int", doc="number of inputs"),
                "dim": Attr("int", 1, doc="axis to concatenate along")},
         infer_shape=_rpc_infer, forward=_rpc_fwd, gradient=_rpc_grad,
         lowering=KernelCall(_lower_concat),     # Concat's copies (symbol/ops/shape_join.py)
         samples=lambda rng: [Sample([rng.uniform(-1, 1, (6,)), rng.uniform(-1, 1, (4,)),
                                      rng.uniform(-1, 1, (2,))], {"num_args": 3, "dim": 0})],
         doc="Concat used by Gluon's fused RNN layers to build RNN's flat parameter vector.")


# ---------------------------------------------------------------------------------------
# SequenceMask / SequenceLast / SequenceReverse (valid_length in the Gluon cells' unroll)
# ---------------------------------------------------------------------------------------
_SEQ_ATTRS = {"use_sequence_length": Attr("bool", False), "axis": Attr("int", 0)}


def _lower_seq(kind):
    """SequenceMask / SequenceLast / _backward_SequenceLast / SequenceReverse: the data (or
    the gradient buffer) viewed (shape[0], shape[1], rest) and one library kernel with the
    time axis, the lengths and whether they are given as run-time values."""
    from ._lowering import KernelCall
    fn = {"mask": "seq_mask_3d", "last": "seq_last_3d", "back": "seq_last_back_3d",
          "rev": "seq_reverse_3d"}[kind]

    def emit(ctx):
        a = ctx.attrs
        ins = ctx.ins[1:] if kind == "back" else ctx.ins
        big = ctx.outs[0] if kind == "back" else ins[0]
        nd = ctx.out_ndim[0] if kind == "back" else ctx.in_ndim[0]
        if nd < 2 or a["axis"] not in (0, 1):
            return None
        has = bool(a["use_sequence_length"])
        v3, ln = ctx.tmp("v"), ctx.tmp("l")
        rest = " * ".join(["1"] + ["%s.shape[%d]" % (big, k) for k in range(2, nd)])
        lines = ["%s = %s.reshape((%s.shape[0], %s.shape[1], %s))" % (v3, big, big, big, rest),
                 "%s = %s.reshape(%s.size)" % (ln, ins[1] if has else big, ins[1] if has else big)]
        tax = a["axis"]
        f = ctx.fn(fn)
        if kind == "mask":
            o3 = ctx.tmp("o")
            lines.append("%s = %s.reshape(%s.shape)" % (o3, ctx.outs[0], v3))
            return lines + ["%s(%s, %s, %s, %d, %s, %s)" % (f, v3, ln, o3, tax,
                                                          ctx.const(a["value"]), has)]
        if kind == "rev":
            o3 = ctx.tmp("o")
            lines.append("%s = %s.reshape(%s.shape)" % (o3, ctx.outs[0], v3))
            return lines + ["%s(%s, %s, %s, %s)" % (f, v3, ln, o3, has)]
        o2 = ctx.tmp("o")
        small = ctx.outs[0] if kind == "last" else ctx.ins[0]
        lines.append("%s = %s.reshape((%s.shape[%d], %s))" % (o2, small, v3, 1 - tax, rest))
        if kind == "last":
            return lines + ["%s(%s, %s, %s, %d, %s)" % (f, v3, ln, o2, tax, has)]
        return lines + ["%s(%s, %s, %s, %d, %s)" % (f, o2, ln, v3, tax, has)]
    return KernelCall(emit, uses=(fn,), any_dtype=True)


def _seq_inputs(attrs):
    if attrs.get("use_sequence_length") is False:
        return ["data"]
    return ["data", "sequence_length"]


def _seq_check(op, attrs, ins, axis0_only=False):
    _check_count_seq(op, attrs, ins)
    d = ins[0]
    ax = attrs["axis"]
    if axis0_only and ax != 0:
        raise MXNetError("%s: axis must be 0, got %d" % (op, ax))
    if ax not in (0, 1):
        raise MXNetError("%s: axis must be 0 or 1, got %d" % (op, ax))
    ins = list(ins)
    if d is not None:
        if len(d) < 2:
            raise MXNetError("%s: data must have at least 2 dimensions (time and batch), got "
                             "shape %s" % (op, fmt(d)))
        if attrs["use_sequence_length"]:
            ins[1] = _merge_in(op, "sequence_length", ins[1], (d[1 - ax],), d)
    return ins


def _check_count_seq(op, attrs, ins):
    names = _seq_inputs(attrs)
    if len(ins) != len(names):
        raise MXNetError("%s: use_sequence_length=%s expects %d inputs (%s), got %d"
                         % (op, attrs["use_sequence_length"], len(names), ", ".join(names),
                            len(ins)))


def _lengths(op, attrs, ins, T, N):
    if not attrs["use_sequence_length"]:
        return np.full(N, T, dtype=np.int64)
    lens = np.asarray(ins[1]).astype(np.int64).reshape(-1)
    if np.any(lens < 0) or np.any(lens > T):
        raise MXNetError("%s: sequence_length values must be in [0, %d], got %s"
                         % (op, T, lens.tolist()))
    return lens


def _tn(x, ax):
    """View with time first and batch second."""
    return x if ax == 0 else np.swapaxes(x, 0, 1)


def _seq_type(attrs, ins):
    t = ins[0]
    res = [t] + [x if x is not None else t for x in ins[1:]]
    return res, [t]


def _smask_infer(attrs, ins):
    ins = _seq_check("SequenceMask", attrs, ins)
    return ins, [ins[0]]


def _smask_fwd(attrs, ins, ctx):
    x = ins[0]
    ax = attrs["axis"]
    xt = _tn(x, ax)
    T, N = xt.shape[:2]
    lens = _lengths("SequenceMask", attrs, ins, T, N)
    keep = (np.arange(T)[:, None] < lens[None, :]).reshape((T, N) + (1,) * (x.ndim - 2))
    out = np.where(keep, xt, np.asarray(attrs["value"], dtype=x.dtype)).astype(x.dtype)
    return [np.ascontiguousarray(_tn(out, ax))]


def _seq_kw(attrs, **extra):
    kw = {"use_sequence_length": attrs["use_sequence_length"], "axis": attrs["axis"]}
    kw.update(extra)
    return kw


def _smask_grad(F, attrs, ins, outs, og, ctx):
    g = F.SequenceMask(*([og[0]] + list(ins[1:])), **_seq_kw(attrs, value=0.0))
    return [g] + [None] * (len(ins) - 1)


def _seq_samples(rng, op):
    x = rng.uniform(-1, 1, (4, 3, 2))
    lens = np.array([2.0, 4.0, 1.0])
    s = [Sample([x, lens], {"use_sequence_length": True}),
         Sample([rng.uniform(-1, 1, (4, 3))], {})]
    if op != "SequenceReverse":
        s.append(Sample([rng.uniform(-1, 1, (3, 4, 2)), lens], {"use_sequence_length": True,
                                                               "axis": 1}))
    return s


register("SequenceMask", inputs=_seq_inputs,
         attrs={"use_sequence_length": Attr("bool", False), "value": Attr("float", 0.0),
                "axis": Attr("int", 0)},
         infer_shape=_smask_infer, infer_type=_seq_type, forward=_smask_fwd,
         gradient=_smask_grad, optional_inputs=("sequence_length",), lowering=_lower_seq("mask"),
         samples=lambda rng: _seq_samples(rng, "SequenceMask"),
         doc="Sets the steps at and after each sequence's length (along ``axis``, 0 or 1; "
             "the batch is the other of the first two axes) to ``value``.")


def _slast_infer(attrs, ins):
    ins = _seq_check("SequenceLast", attrs, ins)
    d = ins[0]
    if d is None:
        return ins, [None]
    ax = attrs["axis"]
    return ins, [tuple(d[:ax]) + tuple(d[ax + 1:])]


def _slast_fwd(attrs, ins, ctx):
    x = ins[0]
    xt = _tn(x, attrs["axis"])
    T, N = xt.shape[:2]
    lens = _lengths("SequenceLast", attrs, ins, T, N)
    idx = np.maximum(lens - 1, 0)
    return [np.ascontiguousarray(xt[idx, np.arange(N)])]


def _slast_grad(F, attrs, ins, outs, og, ctx):
    g = F._backward_SequenceLast(*([og[0]] + list(ins)), **_seq_kw(attrs))
    return [g] + [None] * (len(ins) - 1)


register("SequenceLast", inputs=_seq_inputs, attrs=dict(_SEQ_ATTRS),
         infer_shape=_slast_infer, infer_type=_seq_type, forward=_slast_fwd,
         gradient=_slast_grad, optional_inputs=("sequence_length",), lowering=_lower_seq("last"),
         samples=lambda rng: _seq_samples(rng, "SequenceLast"),
         doc="The last valid step of each sequence (step ``sequence_length - 1``, or the last "
             "one) along ``axis`` (0 or 1); the output drops that axis.")


def _bslast_inputs(attrs):
    return ["ograd"] + _seq_inputs(attrs)


def _bslast_infer(attrs, ins):
    _check_count_seq("_backward_SequenceLast", attrs, ins[1:])
    fwd = _seq_check("_backward_SequenceLast", attrs, ins[1:])
    return [ins[0]] + fwd, [fwd[0]]


def _bslast_fwd(attrs, ins, ctx):
    g, x = ins[0], ins[1]
    ax = attrs["axis"]
    out = np.zeros_like(x, dtype=g.dtype)
    ot = _tn(out, ax)
    T, N = ot.shape[:2]
    lens = _lengths("_backward_SequenceLast", attrs, ins[1:], T, N)
    ot[np.maximum(lens - 1, 0), np.arange(N)] = g
    return [out]


def _bslast_grad(F, attrs, ins, outs, og, ctx):
    g = F.SequenceLast(*([og[0]] + list(ins[2:])), **_seq_kw(attrs))
    return [g] + [None] * (len(ins) - 1)


register("_backward_SequenceLast", inputs=_bslast_inputs, attrs=dict(_SEQ_ATTRS),
         infer_shape=_bslast_infer, infer_type=lambda attrs, ins: (ins, [ins[0] or ins[1]]),
         forward=_bslast_fwd, gradient=_bslast_grad, optional_inputs=("sequence_length",),
         lowering=_lower_seq("back"),
         samples=lambda rng: [Sample([rng.uniform(-1, 1, (3, 2)), rng.uniform(-1, 1, (4, 3, 2)),
                                      np.array([2.0, 4.0, 1.0])], {"use_sequence_length": True}),
                              Sample([rng.uniform(-1, 1, (3, 2)), rng.uniform(-1, 1, (3, 4, 2)),
                                      np.array([2.0, 4.0, 1.0])],
                                     {"use_sequence_length": True, "axis": 1})],
         doc="Gradient of SequenceLast: zeros shaped like data with ograd at each sequence's "
             "last valid step.")


def _srev_infer(attrs, ins):
    ins = _seq_check("SequenceReverse", attrs, ins, axis0_only=True)
    return ins, [ins[0]]


def _srev_fwd(attrs, ins, ctx):
    x = ins[0]
    T, N = x.shape[:2]
    lens = _lengths("SequenceReverse", attrs, ins, T, N)
    t = np.arange(T)[:, None]
    src = np.where(t < lens[None, :], lens[None, :] - 1 - t, t)      # (T, N)
    return [np.ascontiguousarray(x[src, np.arange(N)[None, :]])]


def _srev_grad(F, attrs, ins, outs, og, ctx):
    g = F.SequenceReverse(*([og[0]] + list(ins[1:])), **_seq_kw(attrs))
    return [g] + [None] * (len(ins) - 1)


register("SequenceReverse", inputs=_seq_inputs, attrs=dict(_SEQ_ATTRS),
         infer_shape=_srev_infer, infer_type=_seq_type, forward=_srev_fwd,
         gradient=_srev_grad, optional_inputs=("sequence_length",), lowering=_lower_seq("rev"),
         samples=lambda rng: _seq_samples(rng, "SequenceReverse"),
         doc="Reverses the first ``sequence_length`` steps of each sequence along axis 0 (the "
             "rest stays in place).")
