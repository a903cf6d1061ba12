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

__all__ = ["sgd_multi", "sgd_mom_multi", "adam_multi"]


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
