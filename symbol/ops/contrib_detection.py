"""MXNet's ``_contrib_`` box operators of the detection tutorials (SSD), plus khatri_rao and
``_identity_with_attr_like_rhs`` (MXNet's shape-constraint helper).

* box_iou(lhs, rhs, format): IoU of every lhs box with every rhs box; output shape
  ``lhs.shape[:-1] + rhs.shape[:-1]``; boxes are ``corner`` (x1, y1, x2, y2) or ``center``
  (x, y, w, h); an empty union gives 0.  Zero gradient.
* box_nms(data, ...): per batch item (all axes but the last two), the rows with score >
  valid_thresh (and class id != background_id when id_index >= 0) are sorted by score
  (descending, stable), cut to ``topk``, and greedily suppressed: a row overlapping (IoU >
  overlap_thresh) a kept higher-scored row of the same class (any class with
  force_suppress or id_index < 0) is dropped.  The kept rows come first in score order, the
  rest of the output is -1.  A hidden second output records where each output row came
  from; the gradient goes back to the kept rows only.
* MultiBoxPrior(data, sizes, ratios, clip, steps, offsets): for each pixel (row-major) of
  the (N, C, H, W) data, anchors ``(cx -+ w, cy -+ h)`` with ``cy = (r + offsets[0]) *
  steps[0]``, ``cx = (c + offsets[1]) * steps[1]`` (steps default 1/H, 1/W); first every size
  with ratios[0], then sizes[0] with every other ratio; ``w = size * H / W * sqrt(ratio) /
  2``, ``h = size / sqrt(ratio) / 2``.  Output (1, H*W*(len(sizes)+len(ratios)-1), 4).
* bipartite_matching(data, is_ascend, threshold, topk): greedy matching of a (..., N, M)
  score matrix, best score first; a pair is taken while the score is beyond ``threshold``
  (above it, or below it with is_ascend) and both its row and column are free, at most
  ``topk`` pairs.  Outputs the column of each row and the row of each column (-1 = none).
* MultiBoxTarget(anchor, label, cls_pred, ...): SSD training targets -- each ground truth
  takes its best anchor, then (overlap_threshold > 0) every other anchor its best ground
  truth above the threshold; negatives are all the rest, or with negative_mining_ratio the
  least background-confident ones below negative_mining_thresh; outputs loc_target
  (variance-encoded offsets), loc_mask and cls_target (class + 1, 0 background,
  ignore_label otherwise).  MultiBoxDetection(cls_prob, loc_pred, anchor, ...): decoding --
  best non-background class per anchor (below ``threshold`` dropped), boxes decoded from the
  anchors with ``variances`` (clipped with clip), score-sorted, cut to nms_topk, per-class
  (or force_suppress) NMS with IoU >= nms_threshold; rows [id, score, x1, y1, x2, y2], id -1
  for a suppressed row and -1 rows after the valid ones.  Both have zero gradients.
* khatri_rao(*args): the column-wise Kronecker product of (n_i, k) matrices, (prod n_i, k).
"""
import math

import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, same_shape


def _zeros_grad(F, attrs, ins, outs, og, ctx):
    return [F.zeros_like(x) for x in ins]


# -- box_iou -------------------------------------------------------------------------------------
def _corners(b, fmt_):
    if fmt_ == "center":
        x, y, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
        return x - w / 2, y - h / 2, x + w / 2, y + h / 2
    return b[..., 0], b[..., 1], b[..., 2], b[..., 3]


def _iou_matrix(lhs, rhs, fmt_):
    """IoU of every box in lhs (n, 4) with every box in rhs (m, 4): (n, m)."""
    l1, t1, r1, b1 = [v[:, None] for v in _corners(lhs, fmt_)]
    l2, t2, r2, b2 = [v[None, :] for v in _corners(rhs, fmt_)]
    iw = np.maximum(0.0, np.minimum(r1, r2) - np.maximum(l1, l2))
    ih = np.maximum(0.0, np.minimum(b1, b2) - np.maximum(t1, t2))
    inter = iw * ih
    union = (r1 - l1) * (b1 - t1) + (r2 - l2) * (b2 - t2) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _box_shape(op, s, what):
    if s is not None and (len(s) < 1 or s[-1] not in (0, 4)):
        raise MXNetError("%s: %s must have 4 values per box in its last axis, got shape %s"
                         % (op, what, fmt(s)))


def _iou_infer(attrs, ins):
    a, b = ins
    _box_shape("box_iou", a, "lhs")
    _box_shape("box_iou", b, "rhs")
    if a is None or b is None:
        return ins, [None]
    return ins, [tuple(a[:-1]) + tuple(b[:-1])]


def _iou_fwd(attrs, ins, ctx):
    a, b = ins
    out = _iou_matrix(a.reshape(-1, 4).astype(np.float64), b.reshape(-1, 4).astype(np.float64),
                      attrs["format"])
    return [out.reshape(a.shape[:-1] + b.shape[:-1]).astype(a.dtype)]


register("_contrib_box_iou", inputs=("lhs", "rhs"),
         attrs={"format": Attr("str", "corner", choices=("corner", "center"))},
         hint="box_iou", infer_shape=_iou_infer, forward=_iou_fwd, gradient=_zeros_grad,
         lowerable=False, grad_check=False, second_order=False,
         doc="Intersection over union of every lhs box with every rhs box.",
         samples=lambda rng: [
             Sample([np.array([[0., 0, 1, 1], [0.5, 0.5, 1.5, 1.5]]),
                     np.array([[0., 0, 1, 1], [0, 0, 2, 2], [3, 3, 4, 4]])]),
             Sample([np.array([[[0.5, 0.5, 1, 1]], [[1, 1, 2, 0.5]]]),
                     np.array([[0.6, 0.4, 1, 2], [1, 1, 1, 1]])], {"format": "center"})])


# -- box_nms ------------------------------------------------------------------------------------
_NMS_ATTRS = {
    "overlap_thresh": Attr("float", 0.5), "valid_thresh": Attr("float", 0.0),
    "topk": Attr("int", -1), "coord_start": Attr("int", 2), "score_index": Attr("int", 1),
    "id_index": Attr("int", -1), "background_id": Attr("int", -1),
    "force_suppress": Attr("bool", False),
    "in_format": Attr("str", "corner", choices=("corner", "center")),
    "out_format": Attr("str", "corner", choices=("corner", "center")),
}


def _nms_check(attrs, s):
    k = s[-1]
    if not k:
        return
    cs, si, ii = attrs["coord_start"], attrs["score_index"], attrs["id_index"]
    if not 0 <= cs <= k - 4:
        raise MXNetError("box_nms: coord_start=%d needs 4 coordinates within the last axis "
                         "of %s" % (cs, fmt(s)))
    if not 0 <= si < k:
        raise MXNetError("box_nms: score_index=%d is out of range for %s" % (si, fmt(s)))
    if ii >= k:
        raise MXNetError("box_nms: id_index=%d is out of range for %s" % (ii, fmt(s)))


def _nms_infer(attrs, ins):
    s = ins[0]
    if s is None:
        return ins, [None, None]
    if len(s) < 2:
        raise MXNetError("box_nms: data must be at least 2-D (..., num_boxes, values), got %s"
                         % fmt(s))
    _nms_check(attrs, s)
    return ins, [tuple(s), tuple(s[:-1])]


def _convert_boxes(b, src, dst):
    if src == dst:
        return b
    out = b.copy()
    if src == "corner":       # -> center
        out[..., 0] = (b[..., 0] + b[..., 2]) / 2
        out[..., 1] = (b[..., 1] + b[..., 3]) / 2
        out[..., 2] = b[..., 2] - b[..., 0]
        out[..., 3] = b[..., 3] - b[..., 1]
    else:
        out[..., 0] = b[..., 0] - b[..., 2] / 2
        out[..., 1] = b[..., 1] - b[..., 3] / 2
        out[..., 2] = b[..., 0] + b[..., 2] / 2
        out[..., 3] = b[..., 1] + b[..., 3] / 2
    return out


def _nms_one(rows, attrs):
    """Indices of the kept rows of one (n, k) item, in output order."""
    si, ii, cs = attrs["score_index"], attrs["id_index"], attrs["coord_start"]
    scores = rows[:, si]
    valid = scores > attrs["valid_thresh"]
    if ii >= 0 and attrs["background_id"] >= 0:
        valid &= rows[:, ii] != attrs["background_id"]
    cand = np.nonzero(valid)[0]
    cand = cand[np.argsort(-scores[cand], kind="stable")]
    if attrs["topk"] > 0:
        cand = cand[:attrs["topk"]]
    if not len(cand):
        return cand
    boxes = rows[cand, cs:cs + 4].astype(np.float64)
    iou = _iou_matrix(boxes, boxes, attrs["in_format"])
    same = np.ones_like(iou, dtype=bool)
    if ii >= 0 and not attrs["force_suppress"]:
        ids = rows[cand, ii]
        same = ids[:, None] == ids[None, :]
    alive = np.ones(len(cand), dtype=bool)
    for i in range(len(cand)):
        if alive[i]:
            kill = (iou[i] > attrs["overlap_thresh"]) & same[i]
            kill[:i + 1] = False
            alive &= ~kill
    return cand[alive]


def _nms_fwd(attrs, ins, ctx):
    x = ins[0]
    _nms_check(attrs, x.shape)
    n, k = x.shape[-2], x.shape[-1]
    flat = x.reshape(-1, n, k)
    out = np.full_like(flat, -1)
    src = np.full(flat.shape[:2], -1.0, dtype=x.dtype)
    cs = attrs["coord_start"]
    for b in range(flat.shape[0]):
        keep = _nms_one(flat[b], attrs)
        rows = flat[b, keep].copy()
        rows[:, cs:cs + 4] = _convert_boxes(rows[:, cs:cs + 4], attrs["in_format"],
                                            attrs["out_format"])
        out[b, :len(keep)] = rows
        src[b, :len(keep)] = keep
    return [out.reshape(x.shape), src.reshape(x.shape[:-1])]


def _nms_back_fwd(attrs, ins, ctx):
    g, src = ins
    n, k = g.shape[-2], g.shape[-1]
    gf = g.reshape(-1, n, k)
    sf = src.reshape(-1, n)
    out = np.zeros_like(gf)
    for b in range(gf.shape[0]):
        for j in range(n):
            i = int(sf[b, j])
            if i >= 0:
                out[b, i] += gf[b, j]
    return [out.reshape(g.shape)]


register("_contrib_box_nms", inputs=("data",), attrs=dict(_NMS_ATTRS),
         aliases=("_contrib_box_non_maximum_suppression",), hint="box_nms",
         num_outputs=2, num_visible=1, output_names=("output0", "output1"),
         infer_shape=_nms_infer, forward=_nms_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._backward_contrib_box_nms(og[0], outs[1])],
         lowerable=False, grad_check=False, second_order=False,
         doc="Non-maximum suppression of scored boxes; suppressed rows are -1.",
         samples=lambda rng: [
             Sample([np.array([[0., 0.9, 0.1, 0.1, 0.5, 0.5], [1, 0.8, 0.12, 0.1, 0.52, 0.5],
                               [0, 0.7, 0.6, 0.6, 0.9, 0.9], [1, 0.05, 0, 0, 1, 1],
                               [0, 0.75, 0.11, 0.1, 0.5, 0.52]])],
                    {"overlap_thresh": 0.5, "valid_thresh": 0.1}),
             Sample([np.array([[[0., 0.9, 0.1, 0.1, 0.5, 0.5], [1, 0.8, 0.12, 0.1, 0.52, 0.5],
                                [0, 0.7, 0.6, 0.6, 0.9, 0.9]]] * 2)],
                    {"id_index": 0, "topk": 2, "out_format": "center"})])

register("_backward_contrib_box_nms", inputs=("ograd", "index"), attrs={},
         infer_shape=lambda attrs, ins: (ins, [ins[0]]),
         infer_type=lambda attrs, ins: (ins, [ins[0]]), forward=_nms_back_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [None, None], differentiable=False,
         lowerable=False, grad_check=False,
         doc="box_nms's gradient: each output row's gradient back at the row it came from.",
         samples=lambda rng: [Sample([rng.uniform(-1, 1, (3, 6)), np.array([2., 0, -1])])])


# -- MultiBoxPrior ------------------------------------------------------------------------------
_PRIOR_ATTRS = {"sizes": Attr("floats", (1.0,)), "ratios": Attr("floats", (1.0,)),
                "clip": Attr("bool", False), "steps": Attr("floats", (-1.0, -1.0)),
                "offsets": Attr("floats", (0.5, 0.5))}


def _prior_check(attrs):
    if not attrs["sizes"] or not attrs["ratios"]:
        raise MXNetError("MultiBoxPrior: sizes and ratios must not be empty")
    if any(v <= 0 for v in attrs["sizes"] + attrs["ratios"]):
        raise MXNetError("MultiBoxPrior: sizes %s and ratios %s must be positive"
                         % (attrs["sizes"], attrs["ratios"]))
    if len(attrs["steps"]) != 2 or len(attrs["offsets"]) != 2:
        raise MXNetError("MultiBoxPrior: steps and offsets must have 2 values (y, x)")


def _prior_infer(attrs, ins):
    _prior_check(attrs)
    s = ins[0]
    if s is None:
        return ins, [None]
    if len(s) < 4:
        raise MXNetError("MultiBoxPrior: data must be 4-D (N, C, H, W), got %s" % fmt(s))
    na = len(attrs["sizes"]) + len(attrs["ratios"]) - 1
    return ins, [(1, s[2] * s[3] * na, 4)]


def _prior_fwd(attrs, ins, ctx):
    _prior_check(attrs)
    x = ins[0]
    h, w = x.shape[2], x.shape[3]
    sizes, ratios = attrs["sizes"], attrs["ratios"]
    sy, sx = attrs["steps"]
    sy = 1.0 / h if sy <= 0 else sy
    sx = 1.0 / w if sx <= 0 else sx
    oy, ox = attrs["offsets"]
    shapes = [(sz * h / w * math.sqrt(ratios[0]) / 2, sz / math.sqrt(ratios[0]) / 2) for sz in sizes]
    shapes += [(sizes[0] * h / w * math.sqrt(r) / 2, sizes[0] / math.sqrt(r) / 2) for r in ratios[1:]]
    hw = np.array(shapes, dtype=np.float64)                          # (A, 2): half w, half h
    cy = (np.arange(h) + oy) * sy
    cx = (np.arange(w) + ox) * sx
    cyy, cxx = np.meshgrid(cy, cx, indexing="ij")                    # (H, W)
    c = np.stack([cxx, cyy], axis=-1)[:, :, None, :]                 # (H, W, 1, 2)
    out = np.concatenate([c - hw, c + hw], axis=-1).reshape(1, -1, 4)
    if attrs["clip"]:
        out = np.clip(out, 0.0, 1.0)
    return [out.astype(x.dtype)]


register("_contrib_MultiBoxPrior", inputs=("data",), attrs=dict(_PRIOR_ATTRS),
         hint="multiboxprior", infer_shape=_prior_infer, forward=_prior_fwd,
         infer_type=lambda attrs, ins: (ins, [ins[0]]), gradient=_zeros_grad,
         lowerable=False, grad_check=False, second_order=False,
         doc="SSD anchor boxes for every pixel of a feature map.",
         samples=lambda rng: [
             Sample([np.zeros((1, 3, 2, 3))], {"sizes": (0.5, 0.25), "ratios": (1.0, 2.0)}),
             Sample([np.zeros((2, 1, 3, 2))], {"sizes": (0.5,), "ratios": (1.0, 2.0, 0.5),
                                               "clip": True, "steps": (0.4, 0.3),
                                               "offsets": (0.2, 0.7)})])


# -- bipartite_matching ---------------------------------------------------------------------------
_BM_ATTRS = {"is_ascend": Attr("bool", False), "threshold": Attr("float"),
             "topk": Attr("int", -1)}


def _bm_infer(attrs, ins):
    s = ins[0]
    if s is None:
        return ins, [None, None]
    if len(s) < 2:
        raise MXNetError("bipartite_matching: data must be at least 2-D, got %s" % fmt(s))
    return ins, [tuple(s[:-1]), tuple(s[:-2]) + (s[-1],)]


def _bm_fwd(attrs, ins, ctx):
    x = ins[0]
    n, m = x.shape[-2], x.shape[-1]
    flat = x.reshape(-1, n, m)
    rows = np.full(flat.shape[:2], -1, dtype=x.dtype)
    cols = np.full((flat.shape[0], m), -1, dtype=x.dtype)
    asc, thr, topk = attrs["is_ascend"], attrs["threshold"], attrs["topk"]
    for b in range(flat.shape[0]):
        v = flat[b].ravel()
        order = np.argsort(v if asc else -v, kind="stable")
        taken = 0
        for e in order:
            s = v[e]
            if (asc and not s < thr) or (not asc and not s > thr):
                break
            i, j = divmod(int(e), m)
            if rows[b, i] == -1 and cols[b, j] == -1:
                rows[b, i] = j
                cols[b, j] = i
                taken += 1
                if 0 < topk <= taken:
                    break
    return [rows.reshape(x.shape[:-1]), cols.reshape(x.shape[:-2] + (m,))]


register("_contrib_bipartite_matching", inputs=("data",), attrs=dict(_BM_ATTRS),
         hint="bipartite_matching", num_outputs=2, infer_shape=_bm_infer, forward=_bm_fwd,
         infer_type=lambda attrs, ins: (ins, [ins[0], ins[0]]), gradient=_zeros_grad,
         lowerable=False, grad_check=False, second_order=False,
         doc="Greedy bipartite matching of a score matrix: the column of each row and the "
             "row of each column (-1 = unmatched).",
         samples=lambda rng: [
             Sample([np.array([[0.5, 0.6], [0.1, 0.2], [0.3, 0.4]])], {"threshold": 1e-12}),
             Sample([np.array([[[0.5, 0.6], [0.1, 0.2], [0.3, 0.4]]] * 2)],
                    {"threshold": 0.25, "is_ascend": True, "topk": 1})])


# -- khatri_rao ----------------------------------------------------------------------------------
def _kr_infer(attrs, ins):
    if attrs["num_args"] != len(ins) or not ins:
        raise MXNetError("khatri_rao: num_args=%d but %d inputs given" % (attrs["num_args"], len(ins)))
    for s in ins:
        if s is not None and len(s) != 2:
            raise MXNetError("khatri_rao: every input must be 2-D, got %s"
                             % ", ".join(fmt(x) for x in ins))
    if any(s is None for s in ins):
        return ins, [None]
    k = same_shape("khatri_rao", [(s[1],) for s in ins])
    rows = 1
    for s in ins:
        rows *= s[0]
    return ins, [(rows, k[0])]


def _kr_fwd(attrs, ins, ctx):
    out = ins[0]
    for b in ins[1:]:
        out = (out[:, None, :] * b[None, :, :]).reshape(-1, out.shape[1])
    return [np.ascontiguousarray(out, dtype=ins[0].dtype)]


register("khatri_rao", inputs=(), variadic="num_args", attrs={"num_args": Attr("int")},
         infer_shape=_kr_infer, forward=_kr_fwd, gradient=None, differentiable=False,
         lowerable=False, grad_check=False,
         doc="Column-wise Kronecker product of matrices with the same number of columns.",
         samples=lambda rng: [Sample([rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (4, 3))],
                                     {"num_args": 2}),
                              Sample([rng.uniform(-1, 1, (2, 2)), rng.uniform(-1, 1, (1, 2)),
                                      rng.uniform(-1, 1, (3, 2))], {"num_args": 3})])


# -- _identity_with_attr_like_rhs ------------------------------------------------------------------
def _like_rhs_infer(attrs, ins, outs=None):
    s = same_shape("_identity_with_attr_like_rhs", [ins[0], ins[1]] + list(outs or [])[:1],
                   ["lhs", "rhs", "output"])
    return [s, s], [s]


register("_identity_with_attr_like_rhs", inputs=("lhs", "rhs"), attrs={},
         infer_shape=_like_rhs_infer, forward=lambda attrs, ins, ctx: [ins[0].copy()],
         infer_type=lambda attrs, ins, outs=None: (
             [ins[0] or ins[1] or (outs or [None])[0], ins[1] or ins[0]],
             [ins[0] or ins[1] or (outs or [None])[0]]),
         gradient=lambda F, attrs, ins, outs, og, ctx: [og[0], F.zeros_like(ins[1])],
         lowerable=False, second_order=False,
         doc="lhs unchanged, with the shape and dtype of rhs imposed on it (both ways).",
         samples=lambda rng: [Sample([rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (2, 3))])])


# -- MultiBoxTarget / MultiBoxDetection (SSD training targets and decoding) ----------------------
_VAR = (0.1, 0.1, 0.2, 0.2)


def _vars(attrs, op):
    v = attrs["variances"]
    if len(v) != 4:
        raise MXNetError("%s: variances must have 4 values, got %s" % (op, v))
    return v


def _mbt_infer(attrs, ins):
    op = "MultiBoxTarget"
    a, lab, p = ins
    if a is None or lab is None or p is None:
        return ins, [None, None, None]
    if len(a) != 3 or a[0] != 1 or a[2] != 4:
        raise MXNetError("%s: anchor must be (1, num_anchors, 4), got %s" % (op, fmt(a)))
    if len(lab) != 3 or lab[2] < 5:
        raise MXNetError("%s: label must be (batch, num_labels, >=5), got %s" % (op, fmt(lab)))
    if len(p) != 3 or p[2] != a[1]:
        raise MXNetError("%s: cls_pred must be (batch, num_classes, %d), got %s"
                         % (op, a[1], fmt(p)))
    loc = (lab[0], a[1] * 4)
    return ins, [loc, loc, (lab[0], a[1])]


def _mbt_fwd(attrs, ins, ctx):
    anchor, labels, cls_preds = ins
    _mbt_infer(attrs, [anchor.shape, labels.shape, cls_preds.shape])
    vx, vy, vw, vh = _vars(attrs, "MultiBoxTarget")
    dt = anchor.dtype
    anc = anchor.reshape(-1, 4)
    na = anc.shape[0]
    nb, nl = labels.shape[0], labels.shape[1]
    loc_t = np.zeros((nb, na * 4), dt)
    loc_m = np.zeros((nb, na * 4), dt)
    cls_t = np.full((nb, na), attrs["ignore_label"], dt)
    thr = attrs["overlap_threshold"]
    for b in range(nb):
        lab = labels[b]
        nv = 0
        while nv < nl and lab[nv, 0] != -1:
            nv += 1
        if nv == 0:
            continue
        # anchor x label IoU in the data's dtype, 0 for an empty union (safe_divide)
        l1, t1, r1, b1 = [anc[:, i:i + 1] for i in range(4)]
        l2, t2, r2, b2 = [lab[None, :nv, i + 1] for i in range(4)]
        inter = np.maximum(0, np.minimum(r1, r2) - np.maximum(l1, l2)) * \
            np.maximum(0, np.minimum(b1, b2) - np.maximum(t1, t2))
        union = (r1 - l1) * (b1 - t1) + (r2 - l2) * (b2 - t2) - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            ov = np.where(union != 0, inter / np.where(union != 0, union, 1), 0).astype(np.float32)
        gt_done = np.zeros(nv, bool)
        match_iou = np.full(na, -1.0, np.float32)
        match_gt = np.full(na, -1)
        flags = np.full(na, -1)
        npos = 0
        while not gt_done.all():        # best remaining (anchor, gt) pair, one gt at a time
            best, ba, bg = np.float32(1e-6), -1, -1
            for j in range(na):
                if flags[j] == 1:
                    continue
                for k in range(nv):
                    if not gt_done[k] and ov[j, k] > best:
                        best, ba, bg = ov[j, k], j, k
            if ba < 0:
                break
            match_iou[ba], match_gt[ba] = best, bg
            npos += 1
            gt_done[bg] = True
            flags[ba] = 1
        if thr > 0:
            for j in range(na):
                if flags[j] == 1:
                    continue
                k = int(np.argmax(ov[j]))
                match_iou[j], match_gt[j] = ov[j, k], k
                if ov[j, k] > thr:
                    npos += 1
                    gt_done[k] = True
                    flags[j] = 1
        ratio = attrs["negative_mining_ratio"]
        if ratio > 0:
            if not attrs["negative_mining_thresh"] > 0:
                raise MXNetError("MultiBoxTarget: negative_mining_thresh must be positive")
            nneg = min(int(npos * ratio), na - npos)
            if nneg > 0:
                cand = []
                cp = cls_preds[b]
                for j in range(na):
                    if flags[j] == 1:
                        continue
                    if match_iou[j] < 0:
                        k = int(np.argmax(ov[j]))
                        match_iou[j], match_gt[j] = ov[j, k], k
                    if match_iou[j] < attrs["negative_mining_thresh"] and flags[j] == -1:
                        col = cp[:, j]
                        e = np.exp(col - col.max())
                        cand.append((-(e[0] / e.sum()), j))
                if len(cand) < nneg:
                    raise MXNetError("MultiBoxTarget: not enough negative samples for "
                                     "negative_mining_ratio=%g" % ratio)
                # most confident non-background first (MXNet's stable descending sort)
                order = sorted(range(len(cand)), key=lambda i: cand[i][0], reverse=True)
                for i in order[:nneg]:
                    flags[cand[i][1]] = 0
        else:
            flags[flags != 1] = 0
        for i in range(na):
            if flags[i] == 1:
                g = lab[match_gt[i]]
                cls_t[b, i] = g[0] + 1
                loc_m[b, 4 * i:4 * i + 4] = 1
                al, at, ar, ab = [np.float32(v) for v in anc[i]]
                aw, ah = ar - al, ab - at
                ax, ay = (al + ar) * np.float32(0.5), (at + ab) * np.float32(0.5)
                gl, gt, gr, gb = [np.float32(v) for v in g[1:5]]
                gw, gh = gr - gl, gb - gt
                gx, gy = (gl + gr) * np.float32(0.5), (gt + gb) * np.float32(0.5)
                loc_t[b, 4 * i:4 * i + 4] = [(gx - ax) / aw / np.float32(vx),
                                             (gy - ay) / ah / np.float32(vy),
                                             np.log(gw / aw) / np.float32(vw),
                                             np.log(gh / ah) / np.float32(vh)]
            elif flags[i] == 0:
                cls_t[b, i] = 0
    return [loc_t, loc_m, cls_t]


def _mbt_samples(rng):
    anc = _prior_fwd(dict(sizes=(0.4, 0.2), ratios=(1.0, 2.0), clip=False, steps=(-1.0, -1.0),
                          offsets=(0.5, 0.5)), [np.zeros((1, 1, 2, 2))], None)[0]
    lab = np.array([[[0, 0.1, 0.1, 0.45, 0.5], [2, 0.5, 0.4, 0.9, 0.95], [-1, -1, -1, -1, -1]],
                    [[1, 0.3, 0.2, 0.6, 0.7], [-1, -1, -1, -1, -1], [-1, -1, -1, -1, -1]]])
    return [Sample([anc, lab, rng.uniform(-1, 1, (2, 3, anc.shape[1]))]),
            Sample([anc, lab, rng.uniform(-1, 1, (2, 3, anc.shape[1]))],
                   {"negative_mining_ratio": 1.0, "overlap_threshold": 0.3})]


register("_contrib_MultiBoxTarget", inputs=("anchor", "label", "cls_pred"),
         attrs={"overlap_threshold": Attr("float", 0.5), "ignore_label": Attr("float", -1.0),
                "negative_mining_ratio": Attr("float", -1.0),
                "negative_mining_thresh": Attr("float", 0.5),
                "minimum_negative_samples": Attr("int", 0),
                "variances": Attr("floats", _VAR)},
         hint="multiboxtarget", num_outputs=3,
         output_names=("loc_target", "loc_mask", "cls_target"),
         infer_shape=_mbt_infer, forward=_mbt_fwd,
         infer_type=lambda attrs, ins: (ins, [ins[0]] * 3), gradient=_zeros_grad,
         lowerable=False, grad_check=False, second_order=False,
         doc="SSD training targets: anchors matched to ground-truth boxes (regression "
             "targets, their mask, and class targets with 0 = background).",
         samples=_mbt_samples)


def _mbd_infer(attrs, ins):
    op = "MultiBoxDetection"
    c, l, a = ins
    if c is None or l is None or a is None:
        return ins, [None]
    if len(c) != 3 or len(l) != 2 or len(a) != 3 or a[2] != 4:
        raise MXNetError("%s: expects cls_prob (batch, num_classes, num_anchors), loc_pred "
                         "(batch, num_anchors*4) and anchor (1, num_anchors, 4), got %s, %s, %s"
                         % (op, fmt(c), fmt(l), fmt(a)))
    if a[1] != c[2] or l[1] != c[2] * 4 or l[0] != c[0]:
        raise MXNetError("%s: the number of anchors disagrees: cls_prob %s, loc_pred %s, "
                         "anchor %s" % (op, fmt(c), fmt(l), fmt(a)))
    return ins, [(c[0], c[2], 6)]


def _mbd_fwd(attrs, ins, ctx):
    cls_prob, loc_pred, anchor = ins
    _mbd_infer(attrs, [cls_prob.shape, loc_pred.shape, anchor.shape])
    vx, vy, vw, vh = _vars(attrs, "MultiBoxDetection")
    dt = cls_prob.dtype
    nb, nc, na = cls_prob.shape
    anc = anchor.reshape(-1, 4)
    out = np.full((nb, na, 6), -1, dt)
    nms, topk, clip = attrs["nms_threshold"], attrs["nms_topk"], attrs["clip"]
    for b in range(nb):
        p = cls_prob[b]
        if nc > 1:
            ids = np.argmax(p[1:], axis=0) + 1      # first maximum wins, as MXNet's scan
            score = p[ids, np.arange(na)]
        else:
            ids = np.zeros(na, int)
            score = np.full(na, -1, dt)
        ids = np.where((ids > 0) & (score < attrs["threshold"]), 0, ids)
        al, at, ar, ab = anc[:, 0], anc[:, 1], anc[:, 2], anc[:, 3]
        aw, ah = ar - al, ab - at
        ax, ay = (al + ar) / 2, (at + ab) / 2
        lp = loc_pred[b].reshape(na, 4)
        ox = lp[:, 0] * dt.type(vx) * aw + ax
        oy = lp[:, 1] * dt.type(vy) * ah + ay
        ow = np.exp(lp[:, 2] * dt.type(vw)) * aw / 2
        oh = np.exp(lp[:, 3] * dt.type(vh)) * ah / 2
        box = np.stack([ox - ow, oy - oh, ox + ow, oy + oh], axis=1)
        if clip:
            box = np.clip(box, 0, 1)
        rows = np.concatenate([(ids - 1)[:, None].astype(dt), score[:, None], box], axis=1).astype(dt)
        valid = rows[rows[:, 0] >= 0]
        nv = len(valid)
        out[b, :nv] = valid
        if nv < 1 or nms <= 0 or nms > 1:
            continue
        order = np.argsort(-valid[:, 1], kind="stable")
        nkeep = nv
        if 0 < topk < nkeep:
            nkeep = topk
            out[b, nkeep:nv, 0] = -1
        o = out[b]
        o[:nkeep] = valid[order[:nkeep]]
        for i in range(nkeep):
            if o[i, 0] < 0:
                continue
            for j in range(i + 1, nkeep):
                if o[j, 0] < 0:
                    continue
                if attrs["force_suppress"] or o[i, 0] == o[j, 0]:
                    if _iou_matrix(o[i:i + 1, 2:6], o[j:j + 1, 2:6], "corner")[0, 0] >= nms:
                        o[j, 0] = -1
    return [out]


def _mbd_samples(rng):
    anc = _prior_fwd(dict(sizes=(0.4, 0.2), ratios=(1.0, 2.0), clip=False, steps=(-1.0, -1.0),
                          offsets=(0.5, 0.5)), [np.zeros((1, 1, 2, 2))], None)[0]
    na = anc.shape[1]
    e = np.exp(rng.uniform(-2, 2, (2, 3, na)))
    return [Sample([e / e.sum(axis=1, keepdims=True), rng.uniform(-0.5, 0.5, (2, na * 4)), anc]),
            Sample([e / e.sum(axis=1, keepdims=True), rng.uniform(-0.5, 0.5, (2, na * 4)), anc],
                   {"force_suppress": True, "nms_topk": 3, "threshold": 0.2})]


register("_contrib_MultiBoxDetection", inputs=("cls_prob", "loc_pred", "anchor"),
         attrs={"clip": Attr("bool", True), "threshold": Attr("float", 0.01),
                "background_id": Attr("int", 0), "nms_threshold": Attr("float", 0.5),
                "force_suppress": Attr("bool", False), "variances": Attr("floats", _VAR),
                "nms_topk": Attr("int", -1)},
         hint="multiboxdetection", infer_shape=_mbd_infer, forward=_mbd_fwd,
         infer_type=lambda attrs, ins: (ins, [ins[0]]), gradient=_zeros_grad,
         lowerable=False, grad_check=False, second_order=False,
         doc="SSD decoding: per anchor the best non-background class and its score, the "
             "decoded box, then per-class NMS; rows [class_id, score, x1, y1, x2, y2], -1 = none.",
         samples=_mbd_samples)
