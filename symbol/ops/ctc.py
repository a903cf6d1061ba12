"""Connectionist Temporal Classification loss: MXNet's ``CTCLoss`` (aliases ``ctc_loss``,
``_contrib_CTCLoss``, ``_contrib_ctc_loss``).

Note: ctc-loss
    ``data`` is (T, N, C) unnormalised activations (the op applies the softmax itself), ``label``
    is (N, L).  With ``blank_label='first'`` (the default) class 0 is the blank, labels are
    1..C-1 and 0 pads; with ``'last'`` class C-1 is the blank, labels are 0..C-2 and -1 pads.
    Without ``label_lengths`` a sample's label ends at its first padding value; without
    ``data_lengths`` every sample uses all T frames.  The output is ``-log p(label | data)``
    per sample, shape (N,).

    The forward runs the alpha (forward) and beta (backward) recursions over time,
    vectorised over the batch and the 2L+1 positions of the blank-extended label, in float64
    probability space with every frame rescaled to sum 1 (Graves' scaling: no logarithm or
    exponential inside the loop).  A sample whose scaled values underflow (emission
    probabilities below 1e-250) is redone in log space.  As MXNet (warp-ctc), it also produces the gradient of the loss w.r.t. ``data``
    as a hidden second output (softmax minus the normalised label occupancy; zero on
    frames past a sample's data length), and the op's gradient scales that hidden output by
    the head gradient of each sample.  A sample whose label cannot fit its frames
    (``L + repeats > T``) gets loss 0 and gradient 0, as MXNet.  The hidden gradient is not
    itself differentiated, so the op declares ``second_order=False``.
"""
import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt

_NEG = -np.inf


def _ctc_inputs(attrs):
    names = ["data", "label"]
    if attrs.get("use_data_lengths", True):
        names.append("data_lengths")
    if attrs.get("use_label_lengths", True):
        names.append("label_lengths")
    return names


def _ctc_infer(attrs, ins):
    d, l = ins[0], ins[1]
    if d is not None and len(d) != 3:
        raise MXNetError("CTCLoss: data must be 3-D (sequence_length, batch, alphabet_size), got %s"
                         % fmt(d))
    if l is not None and len(l) != 2:
        raise MXNetError("CTCLoss: label must be 2-D (batch, max_label_length), got %s" % fmt(l))
    if d is not None and l is not None:
        if l[0] and d[1] and l[0] != d[1]:
            raise MXNetError("CTCLoss: batch sizes of data %s and label %s differ" % (fmt(d), fmt(l)))
        if d[0] and l[1] and d[0] < l[1]:
            raise MXNetError("CTCLoss: the label length %d cannot exceed the sequence length %d "
                             "of data %s" % (l[1], d[0], fmt(d)))
    n = d[1] if d is not None else (l[0] if l is not None else None)
    out = list(ins)
    for k in range(2, len(ins)):
        if ins[k] is not None and len(ins[k]) != 1:
            raise MXNetError("CTCLoss: %s must be 1-D (batch,), got %s"
                             % (_ctc_inputs(attrs)[k], fmt(ins[k])))
        if n is not None:
            if ins[k] is not None and ins[k][0] and ins[k][0] != n:
                raise MXNetError("CTCLoss: %s %s does not match the batch size %d"
                                 % (_ctc_inputs(attrs)[k], fmt(ins[k]), n))
            out[k] = (n,)
    return out, [None if n is None else (n,), d]


def _ctc_type(attrs, ins):
    t = ins[0]
    return list(ins), [t, t]


def _lengths(op_ins, attrs, T, N, label):
    """(data lengths, label lengths) as int arrays, validated."""
    got = dict(zip(_ctc_inputs(attrs)[2:], op_ins))
    L = label.shape[1]
    if "data_lengths" in got:
        dl = np.asarray(got["data_lengths"])
        if np.any(dl != np.round(dl)) or np.any(dl < 0) or np.any(dl > T):
            raise MXNetError("CTCLoss: data_lengths must be whole numbers in [0, %d], got %s"
                             % (T, dl.tolist()))
        dl = dl.astype(np.int64)
    else:
        dl = np.full(N, T, dtype=np.int64)
    pad = 0 if attrs["blank_label"] == "first" else -1
    if "label_lengths" in got:
        ll = np.asarray(got["label_lengths"])
        if np.any(ll != np.round(ll)) or np.any(ll < 0) or np.any(ll > L):
            raise MXNetError("CTCLoss: label_lengths must be whole numbers in [0, %d], got %s"
                             % (L, ll.tolist()))
        ll = ll.astype(np.int64)
    else:
        is_pad = np.concatenate([label == pad, np.ones((N, 1), dtype=bool)], axis=1)
        ll = np.argmax(is_pad, axis=1).astype(np.int64)
    return dl, ll


def ctc_loss_np(data, label, dl, ll, blank_first):
    """Loss (N,) and gradient w.r.t. the activations (T, N, C), float64 (see note ctc-loss)."""
    T, N, C = data.shape
    if T == 0 or N == 0:
        return np.zeros(N), np.zeros(data.shape)
    x = data.astype(np.float64)
    mx = x.max(axis=2, keepdims=True)
    lse = mx + np.log(np.exp(x - mx).sum(axis=2, keepdims=True))
    lp = x - lse                                             # log softmax, (T, N, C)
    blank = 0 if blank_first else C - 1
    Lmax = label.shape[1]
    S = 2 * Lmax + 1
    lab = np.asarray(label).astype(np.int64)
    pos = np.arange(Lmax)[None, :] < ll[:, None]
    lo, hi = (1, C - 1) if blank_first else (0, C - 2)
    bad = pos & ((lab < lo) | (lab > hi))
    if np.any(bad):
        raise MXNetError("CTCLoss: label values must be in [%d, %d] with blank_label=%r and %d "
                         "classes, got %s" % (lo, hi, "first" if blank_first else "last", C,
                                              sorted(set(lab[bad].tolist()))))
    ext = np.full((N, S), blank, dtype=np.int64)              # blank-extended labels
    ext[:, 1::2] = np.where(pos, lab, blank)
    Sb = 2 * ll + 1
    valid = np.arange(S)[None, :] < Sb[:, None]               # (N, S)
    # a skip s-2 -> s is allowed onto a non-blank that differs from the label two back
    skip = np.zeros((N, S), dtype=bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    repeats = np.sum(pos[:, 1:] & (lab[:, 1:] == lab[:, :-1]), axis=1) if Lmax > 1 else np.zeros(N, np.int64)
    feasible = (ll + repeats <= dl) & (dl > 0)
    em = lp[:, np.arange(N)[:, None], ext]                   # log emissions (T, N, S)
    em = np.where(valid[None], em, _NEG)

    logp, occ, ok = _occupancy_scaled(np.exp(em), skip, Sb, dl)
    redo = np.nonzero(feasible & ~ok)[0]
    if redo.size:                       # an underflow in probability space: redo in log space
        lp2, occ2 = _occupancy_log(em[:, redo], skip[redo], Sb[redo], dl[redo])
        logp[redo] = lp2
        occ[:, redo] = occ2
    feasible &= np.isfinite(logp)
    loss = np.where(feasible, -np.where(feasible, logp, 0.0), 0.0)
    onehot = (ext[:, :, None] == np.arange(C)[None, None, :]).astype(np.float64)   # (N, S, C)
    target = np.einsum("tns,nsc->tnc", occ, onehot)
    frames = (np.arange(T)[:, None] < dl[None, :])            # (T, N)
    keep = (frames & feasible[None, :])[:, :, None]
    grad = np.where(keep, np.exp(lp) - target, 0.0)
    return loss, grad


_TINY = 1e-250


def _occupancy_scaled(y, skip, Sb, dl):
    """Alpha/beta in probability space, each frame rescaled to sum 1 (Graves' scaling).

    Returns log p (N,), the per-frame occupancy of each extended position (T, N, S) and a
    flag per sample: False where a scale or occupancy underflowed (the caller then uses
    :func:`_occupancy_log`)."""
    T, N, S = y.shape
    rows = np.arange(N)
    alpha = np.zeros((T, N, S))
    a = np.zeros((N, S))
    a[:, 0] = y[0, :, 0]
    if S > 1:
        a[Sb > 1, 1] = y[0, Sb > 1, 1]
    logc = np.zeros(N)
    ok = np.ones(N, dtype=bool)
    for t in range(T):
        if t:
            prev = alpha[t - 1]
            a = prev.copy()
            a[:, 1:] += prev[:, :-1]
            a[:, 2:] += np.where(skip[:, 2:], prev[:, :-2], 0.0)
            a *= y[t]
        live = t < dl
        c = a.sum(axis=1)
        ok &= ~live | (c > _TINY)
        c = np.where(live & (c > 0), c, 1.0)
        a /= c[:, None]
        a[~live] = 0.0
        alpha[t] = a
        logc += np.where(live, np.log(c), 0.0)
    last = np.maximum(dl - 1, 0)
    at = alpha[last, rows]
    end = at[rows, Sb - 1] + np.where(Sb >= 2, at[rows, np.maximum(Sb - 2, 0)], 0.0)
    ok &= end > _TINY
    with np.errstate(divide="ignore"):
        logp = logc + np.log(end)

    beta = np.zeros((T, N, S))
    skip_from = np.zeros((N, S), dtype=bool)      # s -> s+2 allowed (the skip onto s+2)
    skip_from[:, :-2] = skip[:, 2:]
    for t in range(T - 1, -1, -1):
        if t + 1 < T:
            nxt = beta[t + 1]
            b = nxt.copy()
            b[:, :-1] += nxt[:, 1:]
            b[:, :-2] += np.where(skip_from[:, :-2], nxt[:, 2:], 0.0)
            b *= y[t]
        else:
            b = np.zeros((N, S))
        e = rows[t == last]
        if e.size:
            b[e] = 0.0
            b[e, Sb[e] - 1] = y[t, e, Sb[e] - 1]
            e2 = e[Sb[e] >= 2]
            b[e2, Sb[e2] - 2] = y[t, e2, Sb[e2] - 2]
        d = b.sum(axis=1)
        d = np.where(d > 0, d, 1.0)
        b /= d[:, None]
        b[t > last] = 0.0
        beta[t] = b
    with np.errstate(invalid="ignore", divide="ignore"):
        gam = np.where(y > 0, alpha * beta / np.where(y > 0, y, 1.0), 0.0)
    z = gam.sum(axis=2)                                          # (T, N)
    live = np.arange(T)[:, None] < dl[None, :]
    ok &= np.all(~live | (z > _TINY), axis=0)
    occ = gam / np.where(z > 0, z, 1.0)[:, :, None]
    return logp, occ, ok


def _occupancy_log(em, skip, Sb, dl):
    """As :func:`_occupancy_scaled` in log space (slower, no underflow); returns (log p, occ)."""
    T, N, S = em.shape
    rows = np.arange(N)
    lae = np.logaddexp
    alpha = np.full((T, N, S), _NEG)
    a0 = np.full((N, S), _NEG)
    a0[:, 0] = em[0, :, 0]
    if S > 1:
        a0[Sb > 1, 1] = em[0, Sb > 1, 1]
    alpha[0] = a0
    for t in range(1, T):
        prev = alpha[t - 1]
        cur = prev.copy()
        lae(cur[:, 1:], prev[:, :-1], out=cur[:, 1:])
        lae(cur[:, 2:], np.where(skip[:, 2:], prev[:, :-2], _NEG), out=cur[:, 2:])
        cur += em[t]
        cur[t >= dl] = _NEG
        alpha[t] = cur
    last = np.maximum(dl - 1, 0)
    at = alpha[last, rows]
    logp = lae(at[rows, Sb - 1], np.where(Sb >= 2, at[rows, np.maximum(Sb - 2, 0)], _NEG))

    beta = np.full((T, N, S), _NEG)
    skip_from = np.zeros((N, S), dtype=bool)
    skip_from[:, :-2] = skip[:, 2:]
    for t in range(T - 1, -1, -1):
        if t + 1 < T:
            nxt = beta[t + 1]
            cur = nxt.copy()
            lae(cur[:, :-1], nxt[:, 1:], out=cur[:, :-1])
            lae(cur[:, :-2], np.where(skip_from[:, :-2], nxt[:, 2:], _NEG), out=cur[:, :-2])
            cur += em[t]
        else:
            cur = np.full((N, S), _NEG)
        cur[t > last] = _NEG
        e = rows[t == last]
        if e.size:
            cur[e] = _NEG
            cur[e, Sb[e] - 1] = em[t, e, Sb[e] - 1]
            e2 = e[Sb[e] >= 2]
            cur[e2, Sb[e2] - 2] = em[t, e2, Sb[e2] - 2]
        beta[t] = cur
    with np.errstate(invalid="ignore", under="ignore"):
        g = alpha + beta - em - np.where(np.isfinite(logp), logp, 0.0)[None, :, None]
        occ = np.where(np.isfinite(g), np.exp(np.where(np.isfinite(g), g, 0.0)), 0.0)
    return logp, occ


def _ctc_fwd(attrs, ins, ctx):
    data, label = ins[0], ins[1]
    if data.ndim != 3 or label.ndim != 2:
        raise MXNetError("CTCLoss: data must be 3-D and label 2-D, got %s and %s"
                         % (fmt(data.shape), fmt(label.shape)))
    T, N, C = data.shape
    dl, ll = _lengths(ins[2:], attrs, T, N, label)
    loss, grad = ctc_loss_np(data, label, dl, ll, attrs["blank_label"] == "first")
    return [loss.astype(data.dtype), grad.astype(data.dtype)]


def _ctc_grad(F, attrs, ins, outs, og, ctx):
    g = F.broadcast_mul(outs[1], F.reshape(og[0], shape=(1, -1, 1)))
    return [g] + [None] * (len(ins) - 1)


def _ctc_samples(rng):
    d = lambda *s: rng.uniform(-2, 2, size=s)
    return [
        Sample([d(5, 2, 4), np.array([[1.0, 2.0, 0.0], [3.0, 3.0, 0.0]])], {}),
        Sample([d(6, 3, 5), np.array([[0.0, 1.0, -1.0], [2.0, 2.0, 3.0], [3.0, -1.0, -1.0]])],
               {"blank_label": "last"}),
        Sample([d(5, 2, 4), np.array([[1.0, 2.0, 2.0], [3.0, 1.0, 1.0]]), np.array([5.0, 4.0]),
                np.array([3.0, 1.0])],
               {"use_data_lengths": True, "use_label_lengths": True}),
        Sample([d(4, 2, 3), np.array([[0.0, 1.0], [1.0, 1.0]]), np.array([2.0, 0.0])],
               {"use_label_lengths": True, "blank_label": "last"}),
        Sample([d(4, 2, 3), np.array([[0.0, 1.0], [1.0, -1.0]]), np.array([4.0, 2.0])],
               {"use_data_lengths": True, "blank_label": "last"}),
    ]


register("CTCLoss", inputs=_ctc_inputs,
         attrs={"use_data_lengths": Attr("bool", False), "use_label_lengths": Attr("bool", False),
                "blank_label": Attr("str", "first", choices=("first", "last"))},
         aliases=("ctc_loss", "_contrib_CTCLoss", "_contrib_ctc_loss"), hint="ctcloss",
         infer_shape=_ctc_infer, infer_type=_ctc_type, forward=_ctc_fwd, gradient=_ctc_grad,
         num_outputs=2, num_visible=1, output_names=("output0", "output1"),
         optional_inputs=("data_lengths", "label_lengths"), lowerable=False, second_order=False,
         samples=_ctc_samples,
         doc="Connectionist Temporal Classification loss of (T, N, C) activations against (N, L) "
             "labels, one value per sample (see the note ctc-loss in symbol/ops/ctc.py).")
