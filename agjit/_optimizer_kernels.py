"""Compiled multi-parameter optimizer updates (imported lazily: ``import agjit`` does not
load Numba).

Note: fused-optimizer-step
    One kernel call updates every parameter of a dtype group.  The parameters are passed as a
    table of raw buffer addresses (``ptrs``, one column per parameter: rows weight, grad,
    state0, state1, size), so the call costs the same ~1 us for 4 or 400 parameters and the
    kernel is compiled once per (optimizer, dtype), never per parameter count.  Unboxing a
    tuple or a typed List of arrays instead costs ~0.35 us per array and a typed List also
    pays a ~2 s uncached compile per process.

    Safety: the caller (``agjit.optimizer._FusedPlan``) holds references to every buffer in
    the table and only calls the kernel after checking, by identity, that the parameters
    still own those buffers; the buffers are C-contiguous and of the group's dtype.

    ``error_model='numpy'``: Python's error model puts a zero check before every division,
    which stops LLVM from vectorising Adam's loop (5 ns/element instead of 1.4 ns at 1e6
    elements); NumPy's model gives inf/NaN as MXNet and the NumPy twin do.

    Numerics follow MXNet 1.9.1's ``multi_sgd_update`` / ``multi_sgd_mom_update`` /
    ``adam_update`` element formulas operation by operation, in the parameter dtype, with
    every hyperparameter rounded to float32 first (MXNet's op params are C floats).  The
    rounding goes through the two scratch arrays ``s32`` (float32) and ``sT`` (the parameter
    dtype).  ``agjit.optimizer`` holds the NumPy twin of each kernel; the two agree bit for
    bit (tests/test_training.py).
"""
import numpy as np
from numba import types, carray
from numba.extending import intrinsic

from .compiler.numba_cache import njit  # verified cache under AGJIT_CACHE_DIR

__all__ = ["sgd_multi", "sgd_mom_multi", "adam_multi", "nag_multi", "rmsprop_multi", "adagrad_multi",
           "adadelta_multi", "adamax_multi", "signum_multi", "ftml_multi", "ftrl_multi",
           "dcasgd_multi"]


@intrinsic
def _ptr_like(typingctx, addr, like):
    """A typed pointer to ``like``'s dtype from a raw address."""
    ptr_t = types.CPointer(like.dtype)
    sig = ptr_t(types.intp, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(ptr_t))
    return sig, codegen


@njit(cache=True, error_model='numpy')
def _rnd(x, s32, sT, k):
    """``x`` rounded to float32, then converted to the parameter dtype (slot ``k``)."""
    s32[k] = x
    sT[k] = s32[k]
    return sT[k]


@njit(cache=True, error_model='numpy')
def sgd_multi(ptrs, lr, lr_mult, wd, wd_mult, rescale, clip, s32, sT):
    """``w += (-(lr*wd)*w - (lr*rescale)*g)`` (clip: ``- lr*clip(rescale*g)``) for every
    column of ``ptrs`` (rows: weight, grad, -, -, size)."""
    r = _rnd(rescale, s32, sT, 0)
    c = _rnd(clip, s32, sT, 1)
    for j in range(ptrs.shape[1]):
        n = ptrs[4, j]
        w = carray(_ptr_like(ptrs[0, j], sT), n)
        g = carray(_ptr_like(ptrs[1, j], sT), n)
        lrk = _rnd(lr * lr_mult[j], s32, sT, 2)
        wdk = _rnd(wd * wd_mult[j], s32, sT, 3)
        lw = lrk * wdk
        if c >= 0:
            for i in range(n):
                x = r * g[i]
                if x > c:
                    x = c
                elif x < -c:
                    x = -c
                w[i] = w[i] + (-(lw * w[i]) - lrk * x)
        else:
            lr_r = lrk * r
            for i in range(n):
                w[i] = w[i] + (-(lw * w[i]) - lr_r * g[i])


@njit(cache=True, error_model='numpy')
def sgd_mom_multi(ptrs, lr, lr_mult, wd, wd_mult, momentum, rescale, clip, s32, sT):
    """``mom = momentum*mom - (lr*wd)*w - (lr*rescale)*g; w += mom`` (rows: weight, grad,
    mom, -, size)."""
    r = _rnd(rescale, s32, sT, 0)
    c = _rnd(clip, s32, sT, 1)
    mo = _rnd(momentum, s32, sT, 4)
    for j in range(ptrs.shape[1]):
        n = ptrs[4, j]
        w = carray(_ptr_like(ptrs[0, j], sT), n)
        g = carray(_ptr_like(ptrs[1, j], sT), n)
        m = carray(_ptr_like(ptrs[2, j], sT), n)
        lrk = _rnd(lr * lr_mult[j], s32, sT, 2)
        wdk = _rnd(wd * wd_mult[j], s32, sT, 3)
        lw = lrk * wdk
        if c >= 0:
            for i in range(n):
                x = r * g[i]
                if x > c:
                    x = c
                elif x < -c:
                    x = -c
                v = mo * m[i] - lw * w[i] - lrk * x
                m[i] = v
                w[i] = w[i] + v
        else:
            lr_r = lrk * r
            for i in range(n):
                v = mo * m[i] - lw * w[i] - lr_r * g[i]
                m[i] = v
                w[i] = w[i] + v


@njit(cache=True, error_model='numpy')
def adam_multi(ptrs, lr, lr_mult, coef, wd, wd_mult, beta1, beta2, epsilon, rescale, clip,
               s32, sT):
    """MXNet's adam_update per column (rows: weight, grad, mean, var, size) with the
    bias-corrected rate ``(lr*lr_mult[j]) * coef[j]``, ``coef = sqrt(1-b2^t)/(1-b1^t)``."""
    r = _rnd(rescale, s32, sT, 0)
    c = _rnd(clip, s32, sT, 1)
    b1 = _rnd(beta1, s32, sT, 4)
    b2 = _rnd(beta2, s32, sT, 5)
    eps = _rnd(epsilon, s32, sT, 6)
    one = _rnd(1.0, s32, sT, 7)
    ob1 = one - b1
    ob2 = one - b2
    for j in range(ptrs.shape[1]):
        n = ptrs[4, j]
        w = carray(_ptr_like(ptrs[0, j], sT), n)
        g = carray(_ptr_like(ptrs[1, j], sT), n)
        mean = carray(_ptr_like(ptrs[2, j], sT), n)
        var = carray(_ptr_like(ptrs[3, j], sT), n)
        lrk = _rnd((lr * lr_mult[j]) * coef[j], s32, sT, 2)
        wdk = _rnd(wd * wd_mult[j], s32, sT, 3)
        for i in range(n):
            x = g[i] * r + w[i] * wdk
            if c >= 0:
                if x > c:
                    x = c
                elif x < -c:
                    x = -c
            mm = b1 * mean[i] + ob1 * x
            vv = b2 * var[i] + ob2 * x * x
            mean[i] = mm
            var[i] = vv
            w[i] = w[i] - lrk * mm / (np.sqrt(vv) + eps)


# -- the other optimizers of agjit.optimizer (each kernel mirrors its class's _np_update
#    operation by operation; rows: weight, grad, state0, state1, size, state2).  ``cT`` holds
#    per-column coefficients already in the parameter dtype (powers like beta1**t computed by
#    NumPy in that dtype, which Numba's pow need not reproduce bit for bit).

@njit(cache=True, error_model='numpy', inline='always')
def _clipped(x, c):
    if c >= 0:
        if x > c:
            return c
        if x < -c:
            return -c
    return x


@njit(cache=True, error_model='numpy', inline='always')
def _sign(x, one):
    """np.sign in the dtype of ``one``: -1, 0, 1, nan for nan."""
    if x > 0:
        return one
    if x < 0:
        return -one
    return x * one if x != x else x - x


@njit(cache=True, error_model='numpy')
def nag_multi(ptrs, lr, lr_mult, wd, wd_mult, momentum, rescale, clip, has_mom, s32, sT):
    """NAG (rows: weight, grad, mom); without momentum plain SGD's single formula."""
    r = _rnd(rescale, s32, sT, 0)
    c = _rnd(clip, s32, sT, 1)
    mu = _rnd(momentum, s32, sT, 4)
    one = _rnd(1.0, s32, sT, 7)
    for j in range(ptrs.shape[1]):
        n = ptrs[4, j]
        w = carray(_ptr_like(ptrs[0, j], sT), n)
        g = carray(_ptr_like(ptrs[1, j], sT), n)
        lrk = _rnd(lr * lr_mult[j], s32, sT, 2)
        wdk = _rnd(wd * wd_mult[j], s32, sT, 3)
        if has_mom:
            m = carray(_ptr_like(ptrs[2, j], sT), n)
            for i in range(n):
                x = _clipped(g[i] * r, c)
                gw = x + wdk * w[i]
                wn = w[i] + mu * (mu * m[i] - lrk * gw) - lrk * gw
                w[i] = wn
                m[i] = mu * m[i] - lrk * (x + wdk * wn)
        else:
            keep = one - lrk * wdk
            for i in range(n):
                w[i] = keep * w[i] - lrk * _clipped(g[i] * r, c)


@njit(cache=True, error_model='numpy')
def rmsprop_multi(ptrs, lr, lr_mult, wd, wd_mult, gamma1, gamma2, epsilon, rescale, clip,
                  centered, clip_weights, s32, sT):
    """RMSProp (rows: weight, grad, n [, G, -, -, delta in row 5])."""
    r = _rnd(rescale, s32, sT, 0)
    c = _rnd(clip, s32, sT, 1)
    g1 = _rnd(gamma1, s32, sT, 4)
    g2 = _rnd(gamma2, s32, sT, 5)
    eps = _rnd(epsilon, s32, sT, 6)
    one = _rnd(1.0, s32, sT, 7)
    cw = _rnd(clip_weights, s32, sT, 1)          # -1: no clipping
    og1 = one - g1
    for j in range(ptrs.shape[1]):
        n = ptrs[4, j]
        w = carray(_ptr_like(ptrs[0, j], sT), n)
        g = carray(_ptr_like(ptrs[1, j], sT), n)
        st = carray(_ptr_like(ptrs[2, j], sT), n)
        lrk = _rnd(lr * lr_mult[j], s32, sT, 2)
        wdk = _rnd(wd * wd_mult[j], s32, sT, 3)
        if centered:
            gs = carray(_ptr_like(ptrs[3, j], sT), n)
            de = carray(_ptr_like(ptrs[5, j], sT), n)
            for i in range(n):
                x = _clipped(g[i] * r + wdk * w[i], c)
                nn = og1 * x * x + g1 * st[i]
                st[i] = nn
                gg = og1 * x + g1 * gs[i]
                gs[i] = gg
                d = g2 * de[i] - lrk * (x / np.sqrt(nn - gg * gg + eps))
                de[i] = d
                w[i] = _clipped(w[i] + d, cw)
        else:
            for i in range(n):
                x = _clipped(g[i] * r + wdk * w[i], c)
                nn = og1 * x * x + g1 * st[i]
                st[i] = nn
                w[i] = _clipped(w[i] - lrk * (x / np.sqrt(nn + eps)), cw)


@njit(cache=True, error_model='numpy')
def adagrad_multi(ptrs, lr, lr_mult, wd, wd_mult, eps, rescale, clip, s32, sT):
    """AdaGrad (rows: weight, grad, history)."""
    r = _rnd(rescale, s32, sT, 0)
    c = _rnd(clip, s32, sT, 1)
    e = _rnd(eps, s32, sT, 4)
    for j in range(ptrs.shape[1]):
        n = ptrs[4, j]
        w = carray(_ptr_like(ptrs[0, j], sT), n)
        g = carray(_ptr_like(ptrs[1, j], sT), n)
        h = carray(_ptr_like(ptrs[2, j], sT), n)
        nlr = _rnd(-(lr * lr_mult[j]), s32, sT, 2)
        wdk = _rnd(wd * wd_mult[j], s32, sT, 3)
        for i in range(n):
            x = _clipped(g[i] * r, c)
            hh = h[i] + x * x
            h[i] = hh
            w[i] = w[i] + (x / np.sqrt(hh + e) + w[i] * wdk) * nlr


@njit(cache=True, error_model='numpy')
def adadelta_multi(ptrs, wd, wd_mult, rho, epsilon, rescale, clip, s32, sT):
    """AdaDelta (rows: weight, grad, acc_g, acc_delta); no learning rate, as in MXNet."""
    r = _rnd(rescale, s32, sT, 0)
    c = _rnd(clip, s32, sT, 1)
    rh = _rnd(rho, s32, sT, 4)
    eps = _rnd(epsilon, s32, sT, 5)
    one = _rnd(1.0, s32, sT, 7)
    orh = one - rh
    for j in range(ptrs.shape[1]):
        n = ptrs[4, j]
        w = carray(_ptr_like(ptrs[0, j], sT), n)
        g = carray(_ptr_like(ptrs[1, j], sT), n)
        ag = carray(_ptr_like(ptrs[2, j], sT), n)
        ad = carray(_ptr_like(ptrs[3, j], sT), n)
        wdk = _rnd(wd * wd_mult[j], s32, sT, 3)
        for i in range(n):
            x = _clipped(g[i] * r, c)
            a = ag[i] * rh + orh * x * x
            ag[i] = a
            d = np.sqrt(ad[i] + eps) / np.sqrt(a + eps) * x
            ad[i] = ad[i] * rh + orh * d * d
            w[i] = w[i] - (d + wdk * w[i])


@njit(cache=True, error_model='numpy')
def adamax_multi(ptrs, lr, lr_mult, coef, wd, wd_mult, beta1, beta2, rescale, clip, s32, sT):
    """AdaMax (rows: weight, grad, m, u); ``coef[j] = 1 - beta1**t`` of column j."""
    r = _rnd(rescale, s32, sT, 0)
    c = _rnd(clip, s32, sT, 1)
    b1 = _rnd(beta1, s32, sT, 4)
    b2 = _rnd(beta2, s32, sT, 5)
    one = _rnd(1.0, s32, sT, 7)
    ob1 = one - b1
    for j in range(ptrs.shape[1]):
        n = ptrs[4, j]
        w = carray(_ptr_like(ptrs[0, j], sT), n)
        g = carray(_ptr_like(ptrs[1, j], sT), n)
        m = carray(_ptr_like(ptrs[2, j], sT), n)
        u = carray(_ptr_like(ptrs[3, j], sT), n)
        lrk = _rnd((lr * lr_mult[j]) / coef[j], s32, sT, 2)
        wdk = _rnd(wd * wd_mult[j], s32, sT, 3)
        for i in range(n):
            x = _clipped(g[i] * r + wdk * w[i], c)
            mm = m[i] * b1 + ob1 * x
            m[i] = mm
            a = b2 * u[i]
            b = abs(x)
            uu = a if (a > b or a != a) else b       # np.maximum: nan wins
            u[i] = uu
            w[i] = w[i] - lrk * mm / uu


@njit(cache=True, error_model='numpy')
def signum_multi(ptrs, lr, lr_mult, wd, wd_mult, momentum, wd_lh, rescale, clip, has_mom,
                 s32, sT):
    """Signum (rows: weight, grad, mom); without momentum signSGD."""
    r = _rnd(rescale, s32, sT, 0)
    c = _rnd(clip, s32, sT, 1)
    mu = _rnd(momentum, s32, sT, 4)
    lh = _rnd(wd_lh, s32, sT, 5)
    one = _rnd(1.0, s32, sT, 7)
    omu = one - mu
    for j in range(ptrs.shape[1]):
        n = ptrs[4, j]
        w = carray(_ptr_like(ptrs[0, j], sT), n)
        g = carray(_ptr_like(ptrs[1, j], sT), n)
        lrk = _rnd(lr * lr_mult[j], s32, sT, 2)
        wdk = _rnd(wd * wd_mult[j], s32, sT, 3)
        if has_mom:
            m = carray(_ptr_like(ptrs[2, j], sT), n)
            omw = omu * wdk
            keep = one - lrk * lh
            for i in range(n):
                x = _clipped(g[i] * r, c)
                mm = mu * m[i] - omw * w[i] - omu * x
                m[i] = mm
                w[i] = keep * w[i] + lrk * _sign(mm, one)
        else:
            keep = one - lrk * wdk
            for i in range(n):
                w[i] = keep * w[i] - lrk * _sign(_clipped(g[i] * r, c), one)


@njit(cache=True, error_model='numpy')
def ftml_multi(ptrs, lr, lr_mult, cT, wd, wd_mult, beta1, beta2, epsilon, rescale, clip,
               s32, sT):
    """FTML (rows: weight, grad, d, v, -, z in row 5); ``cT[0, j] = 1 - beta1**t``,
    ``cT[1, j] = 1 - beta2**t`` in the parameter dtype."""
    r = _rnd(rescale, s32, sT, 0)
    c = _rnd(clip, s32, sT, 1)
    b1 = _rnd(beta1, s32, sT, 4)
    b2 = _rnd(beta2, s32, sT, 5)
    eps = _rnd(epsilon, s32, sT, 6)
    one = _rnd(1.0, s32, sT, 7)
    ob1 = one - b1
    ob2 = one - b2
    for j in range(ptrs.shape[1]):
        n = ptrs[4, j]
        w = carray(_ptr_like(ptrs[0, j], sT), n)
        g = carray(_ptr_like(ptrs[1, j], sT), n)
        d = carray(_ptr_like(ptrs[2, j], sT), n)
        v = carray(_ptr_like(ptrs[3, j], sT), n)
        z = carray(_ptr_like(ptrs[5, j], sT), n)
        lrk = _rnd(lr * lr_mult[j], s32, sT, 2)
        wdk = _rnd(wd * wd_mult[j], s32, sT, 3)
        p1 = cT[0, j]
        p2 = cT[1, j]
        for i in range(n):
            x = _clipped(g[i] * r + wdk * w[i], c)
            vv = b2 * v[i] + ob2 * x * x
            v[i] = vv
            dt = p1 / lrk * (np.sqrt(vv / p2) + eps)
            zz = b1 * z[i] + ob1 * x - (dt - b1 * d[i]) * w[i]
            z[i] = zz
            d[i] = dt
            w[i] = -zz / dt


@njit(cache=True, error_model='numpy')
def ftrl_multi(ptrs, lr, lr_mult, wd, wd_mult, lamda1, beta, rescale, clip, s32, sT):
    """FTRL-proximal (rows: weight, grad, z, n)."""
    r = _rnd(rescale, s32, sT, 0)
    c = _rnd(clip, s32, sT, 1)
    l1 = _rnd(lamda1, s32, sT, 4)
    be = _rnd(beta, s32, sT, 5)
    one = _rnd(1.0, s32, sT, 7)
    zero = one - one
    for j in range(ptrs.shape[1]):
        n = ptrs[4, j]
        w = carray(_ptr_like(ptrs[0, j], sT), n)
        g = carray(_ptr_like(ptrs[1, j], sT), n)
        z = carray(_ptr_like(ptrs[2, j], sT), n)
        q = carray(_ptr_like(ptrs[3, j], sT), n)
        lrk = _rnd(lr * lr_mult[j], s32, sT, 2)
        wdk = _rnd(wd * wd_mult[j], s32, sT, 3)
        for i in range(n):
            x = _clipped(g[i] * r, c)
            zz = z[i] + (x - (np.sqrt(q[i] + x * x) - np.sqrt(q[i])) * w[i] / lrk)
            z[i] = zz
            qq = q[i] + x * x
            q[i] = qq
            w[i] = (_sign(zz, one) * l1 - zz) / ((be + np.sqrt(qq)) / lrk + wdk) * \
                (one if abs(zz) > l1 else zero)


@njit(cache=True, error_model='numpy')
def dcasgd_multi(ptrs, lr, lr_mult, wd, wd_mult, momentum, lamda, rescale, clip, has_mom,
                 s32, sT):
    """DCASGD (rows: weight, grad, w_prev; with momentum: weight, grad, mom, w_prev)."""
    r = _rnd(rescale, s32, sT, 0)
    c = _rnd(clip, s32, sT, 1)
    mu = _rnd(momentum, s32, sT, 4)
    la = _rnd(lamda, s32, sT, 5)
    for j in range(ptrs.shape[1]):
        n = ptrs[4, j]
        w = carray(_ptr_like(ptrs[0, j], sT), n)
        g = carray(_ptr_like(ptrs[1, j], sT), n)
        nlr = _rnd(-(lr * lr_mult[j]), s32, sT, 2)
        wdk = _rnd(wd * wd_mult[j], s32, sT, 3)
        if has_mom:
            m = carray(_ptr_like(ptrs[2, j], sT), n)
            p = carray(_ptr_like(ptrs[3, j], sT), n)
            for i in range(n):
                x = _clipped(g[i] * r, c)
                s = nlr * (x + wdk * w[i] + la * x * x * (w[i] - p[i]))
                mm = m[i] * mu + s
                m[i] = mm
                p[i] = w[i]
                w[i] = w[i] + mm
        else:
            p = carray(_ptr_like(ptrs[2, j], sT), n)
            for i in range(n):
                x = _clipped(g[i] * r, c)
                s = nlr * (x + wdk * w[i] + la * x * x * (w[i] - p[i]))
                p[i] = w[i]
                w[i] = w[i] + s
