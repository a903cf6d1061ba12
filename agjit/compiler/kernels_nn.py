"""Kernel-library functions of the CNN ops (Convolution, Deconvolution, Pooling and their
gradients), called by the ops' KernelCall lowerings (symbol/ops/nn_conv.py) through
``ctx.fn`` and registered in agjit.compiler.kernels.LIBRARY.

Note: numpy-blas
    The GEMMs call the OpenBLAS that NumPy itself links (``scipy_cblas_[sd]gemm64_`` in
    numpy.libs/libscipy_openblas64_*.so), not Numba's ``np.dot``, which goes through
    SciPy's bundled OpenBLAS: measured on this machine (1 thread, float32, CPU us per
    call): 6x25 @ 25x784 (LeNet conv1) 6.9 here / 17.7 np.dot in Numba / 12.0
    np.matmul; 16x150 @ 150x100 (LeNet conv2) 8.2 / 15.0 / 9.4; 64x576 @ 576x1024 (ResNet
    block 3x3 conv) 1043 / 1466 / 1004.  The symbol's address is registered with LLVM
    under a fixed name (``agjit_cblas_sgemm`` / ``agjit_cblas_dgemm``) when this module is
    imported and the kernels call that name, so their machine code holds no address and
    stays cacheable on disk (a ctypes function pointer would be baked in and make Numba
    refuse to cache).  Without NumPy's OpenBLAS (another NumPy build: ``HAVE_NUMPY_BLAS``
    false) :func:`gemm` falls back to Numba's ``np.dot`` on copied blocks.

Note: conv-blocks
    im2col writes the columns of a block of output rows at a time, sized to stay in cache
    (``COL_BLOCK`` elements): the ResNet block's 3x3 conv over 64 channels has 576 x 1024
    columns per sample (2.4 MB in float32), which went to memory and back.  Blocks of
    COL_BLOCK = 160 K elements (8 output rows there, 640 KB, a third of a 2 MB L2): measured
    1-thread CPU ms per call (forward / data gradient / weight gradient) 31 / 28 / 37 at 3
    rows per block (64 K elements), 28.5 / 26.5 / 32 at 8, 30 / 26.5 / 33 at 14, 31 / 29.5
    / 36 at all 32.

Convolution is im2col into one per-call scratch buffer + one GEMM per sample and group
(NCHW; 1-D data is viewed as H = 1 by the lowerings); the data gradient is a GEMM + col2im;
the weight gradient accumulates one GEMM per sample (beta = 1).  A 1x1 convolution with
stride 1 and no padding skips im2col.  Sizes are read from the arrays at run time; the
geometry (stride, pad, dilation, groups, pooling mode) comes as int64 arguments, so there
is one specialisation per dtype.

Pooling follows the eager kernels (symbol/ops/nn_conv.py): max starts from the lowest
finite value and propagates NaN (a global window starts at -inf, as ``max``); max's
gradient goes to the FIRST maximum of each window in row-major window order (padding is
-inf, NaN is skipped; a global window follows ``np.argmax``: the first NaN wins); avg
divides by the window clipped to the padded input (count_include_pad) or to the data, at
least 1; window sums are accumulated in float64.
"""
import ctypes
import glob
import os

import numpy as np
from llvmlite import ir
import llvmlite.binding as _ll
from numba.core import cgutils, types
from numba.extending import intrinsic, overload
from numba import prange

from .numba_cache import njit

__all__ = ["conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_weight", "add_channel_bias",
           "pool2d_fwd", "pool2d_bwd", "pool2d_select", "reduce_sum_keep_mid", "wino_fwd",
           "wino_bwd_data"]


def _numpy_blas():
    """Addresses of NumPy's own cblas sgemm/dgemm (ILP64 scipy-openblas), or None."""
    libdir = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libdir, "libscipy_openblas64_*.so"))):
        try:
            dll = ctypes.CDLL(path)
            s, d = dll.scipy_cblas_sgemm64_, dll.scipy_cblas_dgemm64_
        except (OSError, AttributeError):
            continue
        return (ctypes.cast(s, ctypes.c_void_p).value, ctypes.cast(d, ctypes.c_void_p).value,
                dll)
    return None


def _numpy_blas_threads(dll):
    """Addresses of that library's get/set_num_threads, or None."""
    try:
        get, set_ = dll.scipy_openblas_get_num_threads64_, dll.scipy_openblas_set_num_threads64_
    except AttributeError:
        return None
    return ctypes.cast(get, ctypes.c_void_p).value, ctypes.cast(set_, ctypes.c_void_p).value


_BLAS = _numpy_blas()
HAVE_NUMPY_BLAS = _BLAS is not None
if HAVE_NUMPY_BLAS:
    _ll.add_symbol("agjit_cblas_sgemm", _BLAS[0])
    _ll.add_symbol("agjit_cblas_dgemm", _BLAS[1])
_BLAS_THREADS = _numpy_blas_threads(_BLAS[2]) if HAVE_NUMPY_BLAS else None
# Note: sample-parallel
#     OpenBLAS threads each GEMM on its own (2 threads here): the convolutions' GEMMs are
#     small (64 x 96 x 576 per block of the ResNet block) and every call synchronises its
#     threads, spinning while they wait.  Measured on the W7 block's 3x3 conv (batch 32,
#     64 channels, 32x32; 2 cores with other load, load average ~10), process CPU ms per
#     conv: forward 31 with 1 BLAS thread, 490 with 2; data gradient 29 / 355; weight
#     gradient 36 / 301.  So with two or more Numba threads and at least as many samples,
#     the convolutions run their samples in parallel (a prange over blocks of samples, one
#     scratch buffer each) with OpenBLAS held at one thread for the call: one fork/join per
#     convolution instead of one per GEMM (CPU ms near the 1-thread ones, wall time halved
#     on 2 idle cores).  OpenBLAS's thread count is process-wide (its pthreads build has no
#     per-thread setting: openblas_set_num_threads_local sets the global one too), so one
#     sample-parallel call at a time owns it: a flag taken by compare-and-swap
#     (``agjit_blas_state``, memory registered with LLVM under that name like the GEMM
#     symbols, so the machine code stays cacheable); a call that finds the flag taken runs
#     its samples serially.  The weight gradient sums one partial per block of samples, in
#     block order (the float32 rounding depends on the Numba thread count, as OpenBLAS's
#     own results do on its thread count).
_BLAS_STATE = (ctypes.c_int64 * 2)()        # [0]: the flag, [1]: the saved thread count
HAVE_BLAS_THREADS = _BLAS_THREADS is not None
if HAVE_BLAS_THREADS:
    _ll.add_symbol("agjit_blas_get_threads", _BLAS_THREADS[0])
    _ll.add_symbol("agjit_blas_set_threads", _BLAS_THREADS[1])
    _ll.add_symbol("agjit_blas_state", ctypes.addressof(_BLAS_STATE))

_CBLAS_ROW_MAJOR, _CBLAS_NO_TRANS, _CBLAS_TRANS = 101, 111, 112

# Note: unsigned-index
#     The hot loops index flat arrays with uint64 values (``U``): Numba wraps a negative
#     signed index around, a test on every access that stops LLVM from vectorising the
#     loop (measured: LeNet conv1's im2col over the batch 1.42 ms with int64 indices, 0.49
#     with uint64; ResNet block conv 25.7 -> 5.5 ms).  Every unsigned expression is built
#     from non-negative int64 values converted once (uint64 mixed with int64 would give a
#     float64 in Numba).
U = np.uint64
COL_BLOCK = 163840


def _gemm_intrinsic(symbol, fl):
    """An intrinsic calling ``symbol`` (cblas ?gemm, ILP64) with raw pointers."""
    i32, i64, vp = ir.IntType(32), ir.IntType(64), cgutils.voidptr_t
    fty = fl()

    def impl(typingctx, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc):
        i, f = types.int64, (types.float32 if isinstance(fty, ir.FloatType) else types.float64)
        sig = types.void(i, i, i, i, i, f, types.voidptr, i, types.voidptr, i, f,
                         types.voidptr, i)

        def codegen(context, builder, signature, args):
            fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, fty, vp, i64,
                                                   vp, i64, fty, vp, i64])
            fn = cgutils.get_or_insert_function(builder.module, fnty, symbol)
            ta_, tb_, M_, N_, K_, al, A_, lda_, B_, ldb_, be, C_, ldc_ = args
            builder.call(fn, [ir.Constant(i32, _CBLAS_ROW_MAJOR),
                              builder.trunc(ta_, i32), builder.trunc(tb_, i32),
                              M_, N_, K_, al, A_, lda_, B_, ldb_, be, C_, ldc_])
            return context.get_dummy_value()
        return sig, codegen
    return intrinsic(impl)


_sgemm = _gemm_intrinsic("agjit_cblas_sgemm", ir.FloatType)
_dgemm = _gemm_intrinsic("agjit_cblas_dgemm", ir.DoubleType)


@intrinsic
def _ptr(typingctx, arr, offset):
    """The address of element ``offset`` (flat, in elements) of array ``arr``."""
    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, value=args[0])
        p = builder.gep(ary.data, [args[1]])
        return builder.bitcast(p, cgutils.voidptr_t)
    return types.voidptr(arr, types.int64), codegen


def _state_ptr(context, builder, index):
    arr = context.get_c_value(builder, ir.ArrayType(ir.IntType(64), 2), "agjit_blas_state",
                              dllimport=True)
    return builder.gep(arr, [ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), index)])


@intrinsic
def _blas_take(typingctx):
    """Take the sample-parallel flag (note *sample-parallel*): true when it was free; then
    the BLAS thread count is saved and set to 1."""
    def codegen(context, builder, sig, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        res = builder.cmpxchg(_state_ptr(context, builder, 0), ir.Constant(i64, 0),
                              ir.Constant(i64, 1), "seq_cst", "seq_cst")
        ok = builder.extract_value(res, 1)
        with builder.if_then(ok):
            get = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i32, []),
                                                 "agjit_blas_get_threads")
            set_ = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [i32]), "agjit_blas_set_threads")
            n = builder.call(get, [])
            builder.store(builder.sext(n, i64), _state_ptr(context, builder, 1))
            builder.call(set_, [ir.Constant(i32, 1)])
        return ok
    return types.boolean(), codegen


@intrinsic
def _blas_give(typingctx):
    """Restore the saved BLAS thread count and free the flag (after ``_blas_take``)."""
    def codegen(context, builder, sig, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        set_ = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i32]), "agjit_blas_set_threads")
        n = builder.load(_state_ptr(context, builder, 1))
        builder.call(set_, [builder.trunc(n, i32)])
        builder.store_atomic(ir.Constant(i64, 0), _state_ptr(context, builder, 0), "seq_cst", 8)
        return context.get_dummy_value()
    return types.void(), codegen


def _par_begin():
    """True when this call may run its samples in parallel (note *sample-parallel*); then
    ``_par_end()`` must follow (the Python body is never run)."""
    raise NotImplementedError


def _par_end():
    raise NotImplementedError


@overload(_par_begin)
def _ov_par_begin():
    if not HAVE_BLAS_THREADS:
        return lambda: False
    return lambda: _blas_take()


@overload(_par_end)
def _ov_par_end():
    if not HAVE_BLAS_THREADS:
        return lambda: None
    return lambda: _blas_give()


try:        # the cacheable form of numba.get_num_threads() (that one bakes in an address)
    from numba.np.ufunc.parallel import _iget_num_threads, _launch_threads
except ImportError:         # pragma: no cover - another Numba: run the samples serially
    _iget_num_threads = None
else:
    # The threading layer registers the ``get_num_threads`` symbol that _iget_num_threads
    # calls when it starts; code loaded from the cache is not typed again, so start it now
    # (a cached convolution run before any parallel code was typed called a null symbol).
    _launch_threads()


def _numba_threads():
    """Numba's thread count for parallel regions started by this thread (Python body
    never run)."""
    raise NotImplementedError


@overload(_numba_threads)
def _ov_numba_threads():
    if _iget_num_threads is None:
        return lambda: 1
    return lambda: _iget_num_threads()


@njit(cache=True)
def _par_blocks(n):
    """Blocks of samples for a sample-parallel call: 0 to run serially (fewer than two
    Numba threads or samples, or another call holds the flag), else the block count, with
    the flag taken."""
    nt = min(n, _numba_threads())
    if nt < 2 or not _par_begin():
        return 0
    return nt


@njit(cache=True)
def _take_serial():
    return _par_begin()


@njit(cache=True)
def _give_serial():
    _par_end()


class _BlasSerial:
    """symbol.ops._common.blas_serial() here: BLAS at one thread while the flag of note
    *sample-parallel* is held (nothing when another call holds it)."""
    __slots__ = ("held",)

    def __enter__(self):
        self.held = _take_serial()
        return self

    def __exit__(self, *exc):
        if self.held:
            _give_serial()
        return False


def _install_blas_serial():
    from symbol.ops import _common
    _common._BLAS_SERIAL[0] = _BlasSerial


_install_blas_serial()


def gemm(ta, tb, M, N, K, A, a0, lda, B, b0, ldb, beta, C, c0, ldc):
    """C[c0:] (M x N, row stride ldc) = op(A[a0:]) @ op(B[b0:]) + beta * C, row-major on
    the flat element offsets of C-contiguous arrays (the Python body is never run)."""
    raise NotImplementedError


@overload(gemm)
def _ov_gemm(ta, tb, M, N, K, A, a0, lda, B, b0, ldb, beta, C, c0, ldc):
    if not HAVE_NUMPY_BLAS:
        return _gemm_np_dot
    if C.dtype == types.float32:
        def impl(ta, tb, M, N, K, A, a0, lda, B, b0, ldb, beta, C, c0, ldc):
            if M == 0 or N == 0:
                return
            if K == 0:
                _scale_block(C, c0, M, N, ldc, beta)
                return
            _sgemm(np.int64(_CBLAS_TRANS if ta else _CBLAS_NO_TRANS),
                   np.int64(_CBLAS_TRANS if tb else _CBLAS_NO_TRANS), M, N, K, np.float32(1.0),
                   _ptr(A, a0), lda, _ptr(B, b0), ldb, np.float32(beta), _ptr(C, c0), ldc)
        return impl
    if C.dtype == types.float64:
        def impl(ta, tb, M, N, K, A, a0, lda, B, b0, ldb, beta, C, c0, ldc):
            if M == 0 or N == 0:
                return
            if K == 0:
                _scale_block(C, c0, M, N, ldc, beta)
                return
            _dgemm(np.int64(_CBLAS_TRANS if ta else _CBLAS_NO_TRANS),
                   np.int64(_CBLAS_TRANS if tb else _CBLAS_NO_TRANS), M, N, K, np.float64(1.0),
                   _ptr(A, a0), lda, _ptr(B, b0), ldb, np.float64(beta), _ptr(C, c0), ldc)
        return impl
    return None


@njit(cache=True)
def _scale_block(C, c0, M, N, ldc, beta):
    """C's M x N block at flat offset c0 (row stride ldc) times beta (a GEMM with K = 0;
    BLAS refuses a zero leading dimension)."""
    flat = C.reshape(-1)
    for i in range(M):
        for j in range(N):
            flat[c0 + i * ldc + j] = flat[c0 + i * ldc + j] * beta if beta != 0 else 0


def _gemm_np_dot(ta, tb, M, N, K, A, a0, lda, B, b0, ldb, beta, C, c0, ldc):
    if M == 0 or N == 0:
        return
    af, bf, cf = A.reshape(-1), B.reshape(-1), C.reshape(-1)
    a = np.empty((M, K), dtype=C.dtype)
    b = np.empty((K, N), dtype=C.dtype)
    for i in range(M):
        for k in range(K):
            a[i, k] = af[a0 + k * lda + i] if ta else af[a0 + i * lda + k]
    for k in range(K):
        for j in range(N):
            b[k, j] = bf[b0 + j * ldb + k] if tb else bf[b0 + k * ldb + j]
    r = np.dot(a, b)
    for i in range(M):
        for j in range(N):
            o = c0 + i * ldc + j
            cf[o] = r[i, j] + (cf[o] * beta if beta != 0 else 0)


# ---------------------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------------------
@njit(cache=True)
def _valid(n_out, stride, offset, size):
    """The range [lo, hi) of output positions o whose input o * stride + offset lies in
    [0, size)."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = n_out
    last = size - 1 - offset          # o * stride <= last
    if last < 0:
        hi = 0
    elif last // stride + 1 < hi:
        hi = last // stride + 1
    if hi < lo:
        hi = lo
    return lo, hi


@njit(cache=True)
def _im2col(xf, x0, H, W, cg, kh, kw, sh, sw, ph, pw, dh, dw, oy0, oy1, OW, cols):
    """cols (flat, cg*kh*kw rows of (oy1-oy0)*OW) = the windows of output rows oy0..oy1 of
    the cg channel planes of the flat array ``xf`` starting at element ``x0`` (note
    *unsigned-index*)."""
    N = (oy1 - oy0) * OW
    HW = H * W
    r = 0
    for ci in range(cg):
        pbase = x0 + ci * HW
        for ki in range(kh):
            y_lo, y_hi = _valid(oy1, sh, ki * dh - ph, H)
            for kj in range(kw):
                x_lo, x_hi = _valid(OW, sw, kj * dw - pw, W)
                nx = U(x_hi - x_lo)
                cbase = r * N - oy0 * OW
                r += 1
                for oy in range(oy0, oy1):
                    dst = U(cbase + oy * OW)
                    if oy < y_lo or oy >= y_hi:
                        for ox in range(U(OW)):
                            cols[dst + ox] = 0
                        continue
                    for ox in range(U(x_lo)):
                        cols[dst + ox] = 0
                    d1 = dst + U(x_lo)
                    src = U(pbase + (oy * sh - ph + ki * dh) * W + kj * dw - pw + x_lo * sw)
                    if sw == 1:
                        for j in range(nx):
                            cols[d1 + j] = xf[src + j]
                    else:
                        usw = U(sw)
                        for j in range(nx):
                            cols[d1 + j] = xf[src + j * usw]
                    for ox in range(U(x_hi), U(OW)):
                        cols[dst + ox] = 0


@njit(cache=True)
def _col2im_add(cols, gf, g0, H, W, cg, kh, kw, sh, sw, ph, pw, dh, dw, oy0, oy1, OW):
    """The adjoint of _im2col: the columns added onto the planes of ``gf`` at ``g0``."""
    N = (oy1 - oy0) * OW
    HW = H * W
    r = 0
    for ci in range(cg):
        pbase = g0 + ci * HW
        for ki in range(kh):
            y_lo, y_hi = _valid(oy1, sh, ki * dh - ph, H)
            for kj in range(kw):
                x_lo, x_hi = _valid(OW, sw, kj * dw - pw, W)
                nx = U(x_hi - x_lo)
                cbase = r * N - oy0 * OW
                r += 1
                for oy in range(max(oy0, y_lo), y_hi):
                    src = U(cbase + oy * OW + x_lo)
                    dst = U(pbase + (oy * sh - ph + ki * dh) * W + kj * dw - pw + x_lo * sw)
                    if sw == 1:
                        for j in range(nx):
                            gf[dst + j] += cols[src + j]
                    else:
                        usw = U(sw)
                        for j in range(nx):
                            gf[dst + j * usw] += cols[src + j]


@njit(cache=True)
def _row_chunk(R, OH, OW):
    """Output rows per im2col block: the columns of one block (R x rows*OW) stay within
    COL_BLOCK elements, so the GEMM reads them from cache (note *conv-blocks*)."""
    return max(1, min(OH, COL_BLOCK // max(1, R * OW)))


# ---------------------------------------------------------------------------------------
# Convolution (2-D, NCHW; the Deconvolution lowerings call the same kernels with the
# roles of data and output swapped, symbol/ops/nn_extra.py note *deconvolution-as-adjoint*)
# ---------------------------------------------------------------------------------------
@njit(cache=True)
def _fwd_samples(x, w, bias, out, sh, sw, ph, pw, dh, dw, G, has_bias, b0, b1, cols):
    """conv2d_fwd for samples b0..b1 (``cols``: the im2col scratch)."""
    c, H, W = x.shape[1], x.shape[2], x.shape[3]
    f, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    OH, OW = out.shape[2], out.shape[3]
    cg, fg = c // G, f // G
    R, O = cg * kh * kw, OH * OW
    direct = kh == 1 and kw == 1 and sh == 1 and sw == 1 and ph == 0 and pw == 0
    ry = _row_chunk(R, OH, OW)
    xf = x.reshape(-1)
    of = out.reshape(-1)
    for b in range(b0, b1):
        for g in range(G):
            if direct:
                gemm(False, False, fg, O, R, w, g * fg * R, R, x, (b * c + g * cg) * H * W, O,
                     0.0, out, (b * f + g * fg) * O, O)
                continue
            for oy0 in range(0, OH, ry):
                oy1 = min(OH, oy0 + ry)
                nc = (oy1 - oy0) * OW
                _im2col(xf, (b * c + g * cg) * H * W, H, W, cg, kh, kw, sh, sw, ph, pw, dh, dw,
                        oy0, oy1, OW, cols)
                gemm(False, False, fg, nc, R, w, g * fg * R, R, cols, 0, nc,
                     0.0, out, (b * f + g * fg) * O + oy0 * OW, O)
        if has_bias:
            for j in range(f):
                v = bias[j]
                o0 = U((b * f + j) * O)
                for i in range(U(O)):
                    of[o0 + i] += v


@njit(cache=True)
def _cols_size(x, w, out, sh, sw, ph, pw, G):
    """Elements of one im2col scratch buffer (1 for a 1x1 convolution that needs none)."""
    kh, kw = w.shape[2], w.shape[3]
    R = (x.shape[1] // G) * kh * kw
    OH, OW = out.shape[2], out.shape[3]
    if kh == 1 and kw == 1 and sh == 1 and sw == 1 and ph == 0 and pw == 0:
        return 1
    return R * _row_chunk(R, OH, OW) * OW


@njit(cache=True, parallel=True)
def _fwd_par(x, w, bias, out, sh, sw, ph, pw, dh, dw, G, has_bias, nb, ncol):
    n = x.shape[0]
    for t in prange(nb):
        cols = np.empty(ncol, dtype=out.dtype)
        _fwd_samples(x, w, bias, out, sh, sw, ph, pw, dh, dw, G, has_bias,
                     t * n // nb, (t + 1) * n // nb, cols)


@njit(cache=True)
def conv2d_fwd(x, w, bias, out, sh, sw, ph, pw, dh, dw, G, has_bias):
    """out (n, f, OH, OW) = conv(x (n, c, H, W), w (f, c/G, kh, kw)) [+ bias (f,)]; the
    samples in parallel where they can be (note *sample-parallel*)."""
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    ncol = _cols_size(x, w, out, sh, sw, ph, pw, G)
    nb = _par_blocks(x.shape[0])
    if nb > 0:
        _fwd_par(x, w, bias, out, sh, sw, ph, pw, dh, dw, G, has_bias, nb, ncol)
        _par_end()
        return
    cols = np.empty(ncol, dtype=out.dtype)
    _fwd_samples(x, w, bias, out, sh, sw, ph, pw, dh, dw, G, has_bias, 0, x.shape[0], cols)


@njit(cache=True)
def _bwd_data_samples(gy, w, gx, sh, sw, ph, pw, dh, dw, G, b0, b1, cols):
    """conv2d_bwd_data for samples b0..b1."""
    c, H, W = gx.shape[1], gx.shape[2], gx.shape[3]
    f, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    OH, OW = gy.shape[2], gy.shape[3]
    cg, fg = c // G, f // G
    R, O = cg * kh * kw, OH * OW
    direct = kh == 1 and kw == 1 and sh == 1 and sw == 1 and ph == 0 and pw == 0
    if direct:
        for b in range(b0, b1):
            for g in range(G):
                gemm(True, False, R, O, fg, w, g * fg * R, R, gy, (b * f + g * fg) * O, O,
                     0.0, gx, (b * c + g * cg) * O, O)
        return
    ry = _row_chunk(R, OH, OW)
    gf = gx.reshape(-1)
    gf[b0 * c * H * W:b1 * c * H * W] = 0
    for b in range(b0, b1):
        for g in range(G):
            for oy0 in range(0, OH, ry):
                oy1 = min(OH, oy0 + ry)
                nc = (oy1 - oy0) * OW
                gemm(True, False, R, nc, fg, w, g * fg * R, R, gy,
                     (b * f + g * fg) * O + oy0 * OW, O, 0.0, cols, 0, nc)
                _col2im_add(cols, gf, (b * c + g * cg) * H * W, H, W, cg, kh, kw, sh, sw, ph,
                            pw, dh, dw, oy0, oy1, OW)


@njit(cache=True, parallel=True)
def _bwd_data_par(gy, w, gx, sh, sw, ph, pw, dh, dw, G, nb, ncol):
    n = gx.shape[0]
    for t in prange(nb):
        cols = np.empty(ncol, dtype=gx.dtype)
        _bwd_data_samples(gy, w, gx, sh, sw, ph, pw, dh, dw, G, t * n // nb,
                          (t + 1) * n // nb, cols)


@njit(cache=True)
def conv2d_bwd_data(gy, w, gx, sh, sw, ph, pw, dh, dw, G):
    """gx (n, c, H, W) = d conv / d x for output gradient gy (n, f, OH, OW)."""
    gy = np.ascontiguousarray(gy)
    w = np.ascontiguousarray(w)
    ncol = _cols_size(gx, w, gy, sh, sw, ph, pw, G)
    nb = _par_blocks(gx.shape[0])
    if nb > 0:
        _bwd_data_par(gy, w, gx, sh, sw, ph, pw, dh, dw, G, nb, ncol)
        _par_end()
        return
    cols = np.empty(ncol, dtype=gx.dtype)
    _bwd_data_samples(gy, w, gx, sh, sw, ph, pw, dh, dw, G, 0, gx.shape[0], cols)


@njit(cache=True)
def _bwd_weight_into(gy, x, gwf, g0, f, kh, kw, sh, sw, ph, pw, dh, dw, G, b0, b1, cols):
    """gwf[g0 : g0 + f*c/G*kh*kw] = the weight gradient (f, c/G, kh, kw) of samples b0..b1
    (b1 > b0; the first GEMM with beta 0, the others accumulate)."""
    c, H, W = x.shape[1], x.shape[2], x.shape[3]
    OH, OW = gy.shape[2], gy.shape[3]
    cg, fg = c // G, f // G
    R, O = cg * kh * kw, OH * OW
    direct = kh == 1 and kw == 1 and sh == 1 and sw == 1 and ph == 0 and pw == 0
    ry = _row_chunk(R, OH, OW)
    xf = x.reshape(-1)
    for b in range(b0, b1):
        for g in range(G):
            if direct:
                gemm(False, True, fg, R, O, gy, (b * f + g * fg) * O, O,
                     x, (b * c + g * cg) * O, O, 0.0 if b == b0 else 1.0, gwf, g0 + g * fg * R,
                     R)
                continue
            for oy0 in range(0, OH, ry):
                oy1 = min(OH, oy0 + ry)
                nc = (oy1 - oy0) * OW
                _im2col(xf, (b * c + g * cg) * H * W, H, W, cg, kh, kw, sh, sw, ph, pw, dh, dw,
                        oy0, oy1, OW, cols)
                gemm(False, True, fg, R, nc, gy, (b * f + g * fg) * O + oy0 * OW, O, cols, 0,
                     nc, 0.0 if b == b0 and oy0 == 0 else 1.0, gwf, g0 + g * fg * R, R)


@njit(cache=True, parallel=True)
def _bwd_weight_par(gy, x, parts, f, kh, kw, sh, sw, ph, pw, dh, dw, G, nb, ncol):
    n = x.shape[0]
    m = parts.shape[0] // nb
    for t in prange(nb):
        cols = np.empty(ncol, dtype=parts.dtype)
        _bwd_weight_into(gy, x, parts, t * m, f, kh, kw, sh, sw, ph, pw, dh, dw, G,
                         t * n // nb, (t + 1) * n // nb, cols)


@njit(cache=True)
def conv2d_bwd_weight(gy, x, gw, sh, sw, ph, pw, dh, dw, G):
    """gw (f, c/G, kh, kw) = d conv / d w for output gradient gy (n, f, OH, OW)."""
    gy = np.ascontiguousarray(gy)
    x = np.ascontiguousarray(x)
    n = x.shape[0]
    f, kh, kw = gw.shape[0], gw.shape[2], gw.shape[3]
    if n == 0 or gy.shape[2] * gy.shape[3] == 0:
        gw[...] = 0
        return
    ncol = _cols_size(x, gw, gy, sh, sw, ph, pw, G)
    gwf = gw.reshape(-1)
    m = gwf.shape[0]
    nb = _par_blocks(n)
    if nb > 0:
        parts = np.empty(nb * m, dtype=gw.dtype)
        _bwd_weight_par(gy, x, parts, f, kh, kw, sh, sw, ph, pw, dh, dw, G, nb, ncol)
        _par_end()
        for i in range(U(m)):
            gwf[i] = parts[i]
        for t in range(1, nb):
            p0 = U(t * m)
            for i in range(U(m)):
                gwf[i] += parts[p0 + i]
        return
    cols = np.empty(ncol, dtype=gw.dtype)
    _bwd_weight_into(gy, x, gwf, 0, f, kh, kw, sh, sw, ph, pw, dh, dw, G, 0, n, cols)


# ---------------------------------------------------------------------------------------
# Winograd F(2x2, 3x3): the 3x3 stride-1 convolutions (note *winograd*)
# ---------------------------------------------------------------------------------------
# Kernels for the convolutions wino_shape_ok accepts (3x3, stride 1, dilation 1, groups 1,
# padding <= 2, enough channels); which calls take them: symbol.ops._conv_rules note
# *winograd-dispatch*.
#
# Note: winograd
#     Each 2x2 block of outputs of a 3x3 convolution is Y = A^T [(G g G^T) . (B^T d B)] A
#     for the 4x4 input tile d it reads (tiles overlap by two rows/columns) and the 3x3
#     filter g: 16 products per input/output channel pair and tile instead of 36, and the
#     sums over input channels are 16 GEMMs ``M[xi] (f x T) = U[xi] (f x c) @ V[xi] (c x T)``
#     over a block of T tiles (the transformed inputs V of the block stay in cache:
#     ``WINO_BLOCK`` elements).  The data gradient is the same forward convolution of the
#     output gradient with the flipped, transposed filter and padding 2 - p; the weight
#     gradient is its adjoint: ``dU[xi] += dM[xi] @ V[xi]^T`` with dM = A dY A^T of each
#     2x2 output-gradient block (0 outside the output), then dg = G^T dU G.  The transforms'
#     coefficients are 0, +-1 and +-1/2, so in float32 the result differs from the direct
#     sum by a few units of rounding of the largest partial term (tests/test_conv_winograd.py
#     measures it against float64: relative to max |ref|, at most 1e-5 for 64-512
#     channels).  Samples run in parallel as in note *sample-parallel*.
WINO_BLOCK = 131072         # elements of one block's transformed inputs (16 x c x T)
WINO_MIN_TILES = 64         # the least tiles per GEMM block (small GEMMs are slow in BLAS)
from symbol.ops._conv_rules import WINO_MIN_CHANNELS  # noqa: E402,F401  (the dispatch rule: note *winograd-dispatch*)


from symbol.ops._conv_rules import (WINO_DISPATCH, WINO_DISPATCH_TILES, wino_dispatch,  # noqa: E402,F401
                         wino_shape_ok)


@njit(cache=True)
def _wino_tiles_per_block(c, f, total):
    tb = WINO_BLOCK // (16 * max(c, f, 1))
    tb = max(tb, WINO_MIN_TILES)
    return max(1, min(tb, total))


@njit(cache=True)
def _wino_slab(rows, tb):
    """Elements between the 16 matrices of a block (rows x tb each): padded by 32 so the
    16 streams a transform reads or writes do not fall on the same cache sets (a power of
    two apart they did: the input transform of the W7 conv took 34 ms, 4 KB aliasing)."""
    return rows * tb + 32


@njit(cache=True)
def _wino_filter_transform(w, Uw, flip):
    """Uw (16, f, c) = G g G^T of each 3x3 filter of w (f, c, 3, 3); with ``flip`` the
    filters of the data gradient: Uw (16, c, f) from w[f, c, ::-1, ::-1]."""
    f, c = w.shape[0], w.shape[1]
    g = np.empty(9, dtype=w.dtype)
    t = np.empty(12, dtype=w.dtype)
    h = w.dtype.type(0.5)
    for k in range(f):
        for ci in range(c):
            for i in range(3):
                for j in range(3):
                    if flip:
                        g[i * 3 + j] = w[k, ci, 2 - i, 2 - j]
                    else:
                        g[i * 3 + j] = w[k, ci, i, j]
            for j in range(3):          # t (4x3) = G g
                a, b, e = g[j], g[3 + j], g[6 + j]
                t[j] = a
                t[3 + j] = h * (a + b + e)
                t[6 + j] = h * (a - b + e)
                t[9 + j] = e
            for i in range(4):          # (G g) G^T
                a, b, e = t[i * 3], t[i * 3 + 1], t[i * 3 + 2]
                r0, r1, r2, r3 = a, h * (a + b + e), h * (a - b + e), e
                if flip:
                    base = ci * f + k
                    stride = c * f
                else:
                    base = k * c + ci
                    stride = f * c
                Uw[(i * 4 + 0) * stride + base] = r0
                Uw[(i * 4 + 1) * stride + base] = r1
                Uw[(i * 4 + 2) * stride + base] = r2
                Uw[(i * 4 + 3) * stride + base] = r3


@njit(cache=True, inline="always")
def _wino_load4(xf, p, y, ix0, H, W):
    """Row y, columns ix0..ix0+3 of the plane at flat offset p (0 outside it)."""
    z = xf.dtype.type(0)
    if y < 0 or y >= H:
        return z, z, z, z
    q = p + y * W
    v0 = xf[q + ix0] if 0 <= ix0 < W else z
    v1 = xf[q + ix0 + 1] if 0 <= ix0 + 1 < W else z
    v2 = xf[q + ix0 + 2] if 0 <= ix0 + 2 < W else z
    v3 = xf[q + ix0 + 3] if 0 <= ix0 + 3 < W else z
    return v0, v1, v2, v3


@njit(cache=True, inline="always")
def _wino_bt(d0, d1, d2, d3):
    """B^T applied to a vector of 4."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@njit(cache=True, inline="always")
def _wino_edge_tile(xf, p, iy0, ix0, H, W, V, o, CT):
    """_wino_store of a tile reaching outside the plane (zeros there)."""
    a0, a1, a2, a3 = _wino_load4(xf, p, iy0, ix0, H, W)
    b0, b1, b2, b3 = _wino_load4(xf, p, iy0 + 1, ix0, H, W)
    c0, c1, c2, c3 = _wino_load4(xf, p, iy0 + 2, ix0, H, W)
    e0, e1, e2, e3 = _wino_load4(xf, p, iy0 + 3, ix0, H, W)
    _wino_store(V, o, CT, a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, e0, e1, e2, e3)


@njit(cache=True)
def _wino_input_transform(xf, C, H, W, ph, pw, TY, TX, t0, nt, tb, V):
    """V[xi, ci, j] (16 x C x tb, flat) = B^T d B of tile t0 + j (tiles numbered over the
    samples: (b, ty, tx)) of each channel of the flat NCHW array xf.  Tiles are taken a
    row of tiles (b, ty) at a time so the tile's position needs no division per tile;
    the interior columns of a row of tiles inside the plane load without bounds tests."""
    T1 = TY * TX
    CT = U(_wino_slab(C, tb))
    HW = H * W
    t = t0
    t_end = t0 + nt
    # interior tile columns: 2 tx - pw >= 0 and 2 tx - pw + 4 <= W
    txl = (pw + 1) // 2
    txh = (W + pw - 4) // 2 + 1 if W + pw >= 4 else 0
    while t < t_end:
        b = t // T1
        r = t - b * T1
        ty = r // TX
        tx_a = r - ty * TX
        tx_b = min(TX, tx_a + (t_end - t))
        j0 = t - t0
        iy0 = 2 * ty - ph
        rows_in = iy0 >= 0 and iy0 + 4 <= H
        lo, hi = tx_a, tx_a
        if rows_in:
            lo = min(max(tx_a, txl), tx_b)
            hi = max(min(tx_b, txh), lo)
        for ci in range(C):
            p = (b * C + ci) * HW
            vbase = U(ci * tb + j0 - tx_a)
            for tx in range(tx_a, lo):
                _wino_edge_tile(xf, p, iy0, 2 * tx - pw, H, W, V, vbase + U(tx), CT)
            q0 = U(p + iy0 * W - pw)      # (wraps below 0; q below does not)
            for tx2 in range(U(lo), U(hi)):
                q = q0 + U(2) * tx2
                a0, a1, a2, a3 = xf[q], xf[q + U(1)], xf[q + U(2)], xf[q + U(3)]
                q += U(W)
                b0, b1, b2, b3 = xf[q], xf[q + U(1)], xf[q + U(2)], xf[q + U(3)]
                q += U(W)
                c0, c1, c2, c3 = xf[q], xf[q + U(1)], xf[q + U(2)], xf[q + U(3)]
                q += U(W)
                e0, e1, e2, e3 = xf[q], xf[q + U(1)], xf[q + U(2)], xf[q + U(3)]
                _wino_store(V, vbase + tx2, CT, a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2,
                            c3, e0, e1, e2, e3)
            for tx in range(hi, tx_b):
                _wino_edge_tile(xf, p, iy0, 2 * tx - pw, H, W, V, vbase + U(tx), CT)
        t += tx_b - tx_a


@njit(cache=True, inline="always")
def _wino_store(V, o, CT, a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, e0, e1, e2, e3):
    """V[xi * CT + o] = (B^T d B)[xi] for the 4x4 tile d with rows a, b, c, e."""
    # columns of B^T d: rows r0 = a - c, r1 = b + c, r2 = c - b, r3 = b - e
    r00, r01, r02, r03 = a0 - c0, a1 - c1, a2 - c2, a3 - c3
    r10, r11, r12, r13 = b0 + c0, b1 + c1, b2 + c2, b3 + c3
    r20, r21, r22, r23 = c0 - b0, c1 - b1, c2 - b2, c3 - b3
    r30, r31, r32, r33 = b0 - e0, b1 - e1, b2 - e2, b3 - e3
    V[o] = r00 - r02
    V[CT + o] = r01 + r02
    V[U(2) * CT + o] = r02 - r01
    V[U(3) * CT + o] = r01 - r03
    V[U(4) * CT + o] = r10 - r12
    V[U(5) * CT + o] = r11 + r12
    V[U(6) * CT + o] = r12 - r11
    V[U(7) * CT + o] = r11 - r13
    V[U(8) * CT + o] = r20 - r22
    V[U(9) * CT + o] = r21 + r22
    V[U(10) * CT + o] = r22 - r21
    V[U(11) * CT + o] = r21 - r23
    V[U(12) * CT + o] = r30 - r32
    V[U(13) * CT + o] = r31 + r32
    V[U(14) * CT + o] = r32 - r31
    V[U(15) * CT + o] = r31 - r33


@njit(cache=True)
def _wino_output_transform(M, F, OH, OW, TY, TX, t0, nt, tb, of, bias, has_bias):
    """The 2x2 outputs A^T m A of each tile t0 + j of M (16 x F x tb) into the flat NCHW
    array of (clipped to OH x OW), plus bias[k] when has_bias; a row of tiles at a time."""
    T1 = TY * TX
    FT = U(_wino_slab(F, tb))
    O = OH * OW
    t = t0
    t_end = t0 + nt
    txh = OW // 2                   # tile columns with both output columns inside
    while t < t_end:
        b = t // T1
        r = t - b * T1
        ty = r // TX
        tx_a = r - ty * TX
        tx_b = min(TX, tx_a + (t_end - t))
        j0 = t - t0
        oy = 2 * ty
        down = oy + 1 < OH
        hi = max(min(tx_b, txh), tx_a) if down else tx_a
        for k in range(F):
            bv = bias[k] if has_bias else M.dtype.type(0)
            mb = U(k * tb + j0 - tx_a)
            pb = U((b * F + k) * O + oy * OW)
            for tx in range(U(tx_a), U(tx_b)):
                o = mb + tx
                m0, m1, m2, m3 = M[o], M[FT + o], M[U(2) * FT + o], M[U(3) * FT + o]
                m4, m5, m6, m7 = (M[U(4) * FT + o], M[U(5) * FT + o], M[U(6) * FT + o],
                                  M[U(7) * FT + o])
                m8, m9, m10, m11 = (M[U(8) * FT + o], M[U(9) * FT + o], M[U(10) * FT + o],
                                    M[U(11) * FT + o])
                m12, m13, m14, m15 = (M[U(12) * FT + o], M[U(13) * FT + o],
                                      M[U(14) * FT + o], M[U(15) * FT + o])
                a0, a1, a2, a3 = m0 + m4 + m8, m1 + m5 + m9, m2 + m6 + m10, m3 + m7 + m11
                c0, c1, c2, c3 = (m4 - m8 - m12, m5 - m9 - m13, m6 - m10 - m14,
                                  m7 - m11 - m15)
                p = pb + U(2) * tx
                of[p] = a0 + a1 + a2 + bv
                if tx < U(hi):
                    of[p + U(1)] = a1 - a2 - a3 + bv
                    of[p + U(OW)] = c0 + c1 + c2 + bv
                    of[p + U(OW + 1)] = c1 - c2 - c3 + bv
                else:
                    if 2 * tx + 1 < OW:
                        of[p + U(1)] = a1 - a2 - a3 + bv
                    if down:
                        of[p + U(OW)] = c0 + c1 + c2 + bv
                        if 2 * tx + 1 < OW:
                            of[p + U(OW + 1)] = c1 - c2 - c3 + bv
        t += tx_b - tx_a


@njit(cache=True)
def _wino_fwd_range(x, Uw, F, out, ph, pw, bias, has_bias, b0, b1, V, M, tb):
    """out[b0:b1] = the convolution of x[b0:b1] with the transformed filters Uw (16,F,C)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    OH, OW = out.shape[2], out.shape[3]
    TY, TX = (OH + 1) // 2, (OW + 1) // 2
    xf = x.reshape(-1)
    of = out.reshape(-1)
    t_end = b1 * TY * TX
    for t0 in range(b0 * TY * TX, t_end, tb):
        nt = min(tb, t_end - t0)
        _wino_input_transform(xf, C, H, W, ph, pw, TY, TX, t0, nt, tb, V)
        for xi in range(16):
            gemm(False, False, F, nt, C, Uw, xi * F * C, C, V, xi * _wino_slab(C, tb), tb, 0.0, M,
                 xi * _wino_slab(F, tb), tb)
        _wino_output_transform(M, F, OH, OW, TY, TX, t0, nt, tb, of, bias, has_bias)


@njit(cache=True, parallel=True)
def _wino_fwd_par(x, Uw, F, out, ph, pw, bias, has_bias, nb, tb):
    n, C = x.shape[0], x.shape[1]
    for t in prange(nb):
        V = np.empty(16 * _wino_slab(C, tb), dtype=out.dtype)
        M = np.empty(16 * _wino_slab(F, tb), dtype=out.dtype)
        _wino_fwd_range(x, Uw, F, out, ph, pw, bias, has_bias, t * n // nb, (t + 1) * n // nb,
                   V, M, tb)


@njit(cache=True)
def _wino_fwd_core(x, Uw, F, out, ph, pw, bias, has_bias):
    n, C = x.shape[0], x.shape[1]
    if n == 0 or out.shape[2] * out.shape[3] == 0:
        return
    TY, TX = (out.shape[2] + 1) // 2, (out.shape[3] + 1) // 2
    nb = _par_blocks(n)
    if nb > 0:
        tb = _wino_tiles_per_block(C, F, (n // nb) * TY * TX)
        _wino_fwd_par(x, Uw, F, out, ph, pw, bias, has_bias, nb, tb)
        _par_end()
        return
    tb = _wino_tiles_per_block(C, F, n * TY * TX)
    V = np.empty(16 * _wino_slab(C, tb), dtype=out.dtype)
    M = np.empty(16 * _wino_slab(F, tb), dtype=out.dtype)
    _wino_fwd_range(x, Uw, F, out, ph, pw, bias, has_bias, 0, n, V, M, tb)


@njit(cache=True)
def wino_fwd(x, w, bias, out, ph, pw, has_bias):
    """out (n, f, OH, OW) = conv(x (n, c, H, W), w (f, c, 3, 3)) [+ bias], stride 1."""
    f, c = w.shape[0], w.shape[1]
    Uw = np.empty(16 * f * c, dtype=out.dtype)
    _wino_filter_transform(w, Uw, False)
    _wino_fwd_core(x, Uw, f, out, ph, pw, bias, has_bias)


@njit(cache=True)
def wino_bwd_data(gy, w, gx, ph, pw):
    """gx (n, c, H, W) = the data gradient of the stride-1 3x3 convolution for output
    gradient gy (n, f, OH, OW): gy convolved with the flipped transposed filters, padding
    2 - p."""
    f, c = w.shape[0], w.shape[1]
    Uw = np.empty(16 * f * c, dtype=gx.dtype)
    _wino_filter_transform(w, Uw, True)
    _wino_fwd_core(gy, Uw, c, gx, 2 - ph, 2 - pw, Uw, False)


@njit(cache=True)
def _wino_grad_transform(gf, F, OH, OW, TY, TX, t0, nt, tb, D):
    """D[xi, k, j] (16 x F x tb) = A dY A^T of the 2x2 output-gradient block of tile t0 + j
    (0 outside the output)."""
    T1 = TY * TX
    FT = _wino_slab(F, tb)
    for j in range(nt):
        t = t0 + j
        b = t // T1
        r = t - b * T1
        ty = r // TX
        tx = r - ty * TX
        oy, ox = 2 * ty, 2 * tx
        right = ox + 1 < OW
        down = oy + 1 < OH
        for k in range(F):
            p = (b * F + k) * OH * OW + oy * OW + ox
            g00 = gf[p]
            g01 = gf[p + 1] if right else gf.dtype.type(0)
            g10 = gf[p + OW] if down else gf.dtype.type(0)
            g11 = gf[p + OW + 1] if right and down else gf.dtype.type(0)
            # rows of A dY (4x2): (r0, r0 + r1, r0 - r1, -r1); then the same on columns
            s0, s1 = g00, g01
            u0, u1 = g00 + g10, g01 + g11
            v0, v1 = g00 - g10, g01 - g11
            w0, w1 = -g10, -g11
            o = k * tb + j
            D[0 * FT + o] = s0
            D[1 * FT + o] = s0 + s1
            D[2 * FT + o] = s0 - s1
            D[3 * FT + o] = -s1
            D[4 * FT + o] = u0
            D[5 * FT + o] = u0 + u1
            D[6 * FT + o] = u0 - u1
            D[7 * FT + o] = -u1
            D[8 * FT + o] = v0
            D[9 * FT + o] = v0 + v1
            D[10 * FT + o] = v0 - v1
            D[11 * FT + o] = -v1
            D[12 * FT + o] = w0
            D[13 * FT + o] = w0 + w1
            D[14 * FT + o] = w0 - w1
            D[15 * FT + o] = -w1


@njit(cache=True)
def _wino_bwd_weight_range(gy, x, ph, pw, b0, b1, dU, u0, V, D, tb):
    """dU[u0 : u0 + 16*F*C] = sum over the tiles of samples b0..b1 of dM @ V^T."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    F, OH, OW = gy.shape[1], gy.shape[2], gy.shape[3]
    TY, TX = (OH + 1) // 2, (OW + 1) // 2
    xf = x.reshape(-1)
    gf = gy.reshape(-1)
    t_beg, t_end = b0 * TY * TX, b1 * TY * TX
    for t0 in range(t_beg, t_end, tb):
        nt = min(tb, t_end - t0)
        _wino_input_transform(xf, C, H, W, ph, pw, TY, TX, t0, nt, tb, V)
        _wino_grad_transform(gf, F, OH, OW, TY, TX, t0, nt, tb, D)
        for xi in range(16):
            gemm(False, True, F, C, nt, D, xi * _wino_slab(F, tb), tb, V, xi * _wino_slab(C, tb), tb,
                 0.0 if t0 == t_beg else 1.0, dU, u0 + xi * F * C, C)


@njit(cache=True, parallel=True)
def _wino_bwd_weight_par(gy, x, ph, pw, parts, nb, tb):
    n, C, F = x.shape[0], x.shape[1], gy.shape[1]
    m = 16 * F * C
    for t in prange(nb):
        V = np.empty(16 * _wino_slab(C, tb), dtype=parts.dtype)
        D = np.empty(16 * _wino_slab(F, tb), dtype=parts.dtype)
        _wino_bwd_weight_range(gy, x, ph, pw, t * n // nb, (t + 1) * n // nb, parts, t * m, V, D,
                          tb)


@njit(cache=True)
def wino_bwd_weight(gy, x, gw, ph, pw):
    """gw (f, c, 3, 3) = the weight gradient of the stride-1 3x3 convolution."""
    n, C = x.shape[0], x.shape[1]
    F, OH, OW = gy.shape[1], gy.shape[2], gy.shape[3]
    if n == 0 or OH * OW == 0:
        gw[...] = 0
        return
    TY, TX = (OH + 1) // 2, (OW + 1) // 2
    m = 16 * F * C
    nb = _par_blocks(n)
    if nb > 0:
        tb = _wino_tiles_per_block(C, F, (n // nb) * TY * TX)
        parts = np.empty(nb * m, dtype=gw.dtype)
        _wino_bwd_weight_par(gy, x, ph, pw, parts, nb, tb)
        _par_end()
        dU = parts[:m].copy()
        for t in range(1, nb):
            p0 = U(t * m)
            for i in range(U(m)):
                dU[i] += parts[p0 + i]
    else:
        tb = _wino_tiles_per_block(C, F, n * TY * TX)
        dU = np.empty(m, dtype=gw.dtype)
        V = np.empty(16 * _wino_slab(C, tb), dtype=gw.dtype)
        D = np.empty(16 * _wino_slab(F, tb), dtype=gw.dtype)
        _wino_bwd_weight_range(gy, x, ph, pw, 0, n, dU, 0, V, D, tb)
    # gw = G^T dU G per filter: rows (u0 + (u1 + u2)/2, (u1 - u2)/2, (u1 + u2)/2 + u3)
    h = gw.dtype.type(0.5)
    FC = F * C
    q = np.empty(12, dtype=gw.dtype)
    for k in range(F):
        for ci in range(C):
            base = k * C + ci
            for e in range(4):          # G^T on the rows (xi = a*4 + e): 3x4
                u0 = dU[(0 + e) * FC + base]
                u1 = dU[(4 + e) * FC + base]
                u2 = dU[(8 + e) * FC + base]
                u3 = dU[(12 + e) * FC + base]
                q[e] = u0 + h * (u1 + u2)
                q[4 + e] = h * (u1 - u2)
                q[8 + e] = h * (u1 + u2) + u3
            for i in range(3):          # then G on the columns
                u0, u1, u2, u3 = q[i * 4], q[i * 4 + 1], q[i * 4 + 2], q[i * 4 + 3]
                gw[k, ci, i, 0] = u0 + h * (u1 + u2)
                gw[k, ci, i, 1] = h * (u1 - u2)
                gw[k, ci, i, 2] = h * (u1 + u2) + u3


@njit(cache=True)
def add_channel_bias(out, bias):
    """out (n, f, ...) += bias[f] (a Deconvolution's bias)."""
    n, f = out.shape[0], out.shape[1]
    o3 = out.reshape((n, f, out.size // max(n * f, 1)))
    of = o3.reshape(-1)
    m = o3.shape[2]
    for b in range(n):
        for j in range(f):
            v = bias[j]
            o0 = U((b * f + j) * m)
            for i in range(U(m)):
                of[o0 + i] += v


# ---------------------------------------------------------------------------------------
# Pooling (2-D, NCHW; 1-D as H = 1)
# ---------------------------------------------------------------------------------------
@njit(cache=True)
def _pool_count(oy, ox, kh, kw, sh, sw, ph, pw, H, W, include_pad):
    y0, x0 = oy * sh - ph, ox * sw - pw
    y1, x1 = y0 + kh, x0 + kw
    if include_pad:
        lo_y, hi_y, lo_x, hi_x = -ph, H + ph, -pw, W + pw
    else:
        lo_y, hi_y, lo_x, hi_x = 0, H, 0, W
    cy = min(y1, hi_y) - max(y0, lo_y)
    cx = min(x1, hi_x) - max(x0, lo_x)
    cnt = max(cy, 0) * max(cx, 0)
    return max(cnt, 1)


@njit(cache=True)
def _is_global(kh, kw, ph, pw, H, W, OH, OW):
    return kh == H and kw == W and ph == 0 and pw == 0 and OH == 1 and OW == 1


@njit(cache=True)
def _interior(n_out, stride, pad, k, size):
    """[lo, hi) of the output positions whose window [o*stride - pad, + k) lies inside
    [0, size)."""
    lo = (pad + stride - 1) // stride
    top = size - k + pad
    hi = top // stride + 1 if top >= 0 else 0
    if hi > n_out:
        hi = n_out
    if hi < lo:
        hi = lo
    return lo, hi


@njit(cache=True)
def _win_fwd(xf, xb, W, H, y0, x0, kh, kw, mode, start):
    """One window's max (from ``start``, NaN propagating) or float64 sum."""
    k0, k1 = max(0, -y0), min(kh, H - y0)
    j0 = max(0, -x0)
    nj = U(max(0, min(kw, W - x0) - j0))
    if mode == 0:
        m = start
        for ki in range(k0, k1):
            rb = U(xb + (y0 + ki) * W + x0 + j0)
            for kj in range(nj):
                v = xf[rb + kj]
                m = v if (v > m) | (v != v) else m
        return m
    acc = 0.0        # float64: a global window sums many elements
    for ki in range(k0, k1):
        rb = U(xb + (y0 + ki) * W + x0 + j0)
        for kj in range(nj):
            acc += xf[rb + kj]
    return acc


@njit(cache=True)
def pool2d_fwd(x, out, kh, kw, sh, sw, ph, pw, mode, include_pad, lo):
    """mode 0 max (``lo``: the start value, the lowest finite one), 1 avg, 2 sum.  Max
    pooling runs the windows inside the data row-wise, one pass per kernel offset over
    the output row (vectorisable); border windows one at a time."""
    H, W = x.shape[2], x.shape[3]
    if kh < 0:         # global pooling: the window is the whole plane
        kh, kw = H, W
    OH, OW = out.shape[2], out.shape[3]
    P = x.shape[0] * x.shape[1]
    xf = x.reshape(-1)
    of = out.reshape(-1)
    glob = _is_global(kh, kw, ph, pw, H, W, OH, OW)
    start = -np.inf if glob else lo
    ix_lo, ix_hi = _interior(OW, sw, pw, kw, W)
    if mode != 0 or glob:
        ix_lo, ix_hi = 0, 0
    ni, usw = U(ix_hi - ix_lo), U(sw)
    for q in range(P):
        xb = q * H * W
        ob = q * OH * OW
        for oy in range(OH):
            y0 = oy * sh - ph
            orow = ob + oy * OW
            inside = y0 >= 0 and y0 + kh <= H and ni > 0
            if inside:
                o1 = U(orow + ix_lo)
                for t in range(ni):
                    of[o1 + t] = start
                for ki in range(kh):
                    for kj in range(kw):
                        base = U(xb + (y0 + ki) * W - pw + kj + ix_lo * sw)
                        for t in range(ni):
                            v = xf[base + t * usw]
                            m = of[o1 + t]
                            # bitwise | and a select: no branch on random data
                            of[o1 + t] = v if (v > m) | (v != v) else m
            for ox in range(OW):
                if inside and ox >= ix_lo and ox < ix_hi:
                    continue
                r = _win_fwd(xf, xb, W, H, y0, ox * sw - pw, kh, kw, mode, start)
                if mode == 1:
                    r = r / _pool_count(oy, ox, kh, kw, sh, sw, ph, pw, H, W, include_pad)
                of[U(orow + ox)] = r


@njit(cache=True)
def _first_max(xf, xb, W, y0, x0, k0, k1, j0, j1, kw, nan_first):
    """Flat index into ``xf`` of the first position of the window at (y0, x0) of the plane
    at ``xb`` (row-major, padding included as -inf) equal to the NaN-skipping maximum, or
    -1 where that is a padding position or every value is NaN; with ``nan_first`` (a
    global window, np.argmax) the first NaN wins.  Scanned over the data part only:
    padding can come first only when the maximum is -inf."""
    best = -np.inf
    at = -1
    row_at = -1
    nj = U(max(0, j1 - j0))
    for ki in range(k0, k1):
        rb = xb + (y0 + ki) * W + x0 + j0
        urb = U(rb)
        for kj in range(nj):
            v = xf[urb + kj]
            if at >= 0 and best != best:
                break
            if (nan_first and v != v) or v > best or (at < 0 and v == best):
                best = v
                at = rb + np.int64(kj)
                row_at = ki
    if at >= 0 and best == -np.inf and (k0 > 0 or j0 > 0 or (j1 < kw and row_at > k0)):
        return -1               # a padding position comes first
    return at


@njit(cache=True)
def pool2d_bwd(gy, x, gx, kh, kw, sh, sw, ph, pw, mode, include_pad):
    """gx = d pool / d x for output gradient gy (modes as pool2d_fwd; max's windows inside
    the data row-wise as there, keeping the first maximum per window)."""
    H, W = x.shape[2], x.shape[3]
    if kh < 0:         # global pooling: the window is the whole plane
        kh, kw = H, W
    OH, OW = gy.shape[2], gy.shape[3]
    P = x.shape[0] * x.shape[1]
    xf = x.reshape(-1)
    gf = gy.reshape(-1)
    of = gx.reshape(-1)
    of[:] = 0
    is_global = _is_global(kh, kw, ph, pw, H, W, OH, OW)
    ix_lo, ix_hi = _interior(OW, sw, pw, kw, W)
    if mode != 0 or is_global:
        ix_lo, ix_hi = 0, 0
    ni, usw = U(ix_hi - ix_lo), U(sw)
    best = np.empty(ix_hi - ix_lo, dtype=x.dtype)
    at = np.empty(ix_hi - ix_lo, dtype=np.int64)
    for q in range(P):
        xb = q * H * W
        ob = q * OH * OW
        for oy in range(OH):
            y0 = oy * sh - ph
            orow = ob + oy * OW
            inside = y0 >= 0 and y0 + kh <= H and ni > 0
            if inside:
                for t in range(ni):
                    best[t] = -np.inf
                    at[t] = -1
                for ki in range(kh):
                    for kj in range(kw):
                        b0 = xb + (y0 + ki) * W - pw + kj + ix_lo * sw
                        base = U(b0)
                        for t in range(ni):
                            v = xf[base + t * usw]
                            bt, a = best[t], at[t]
                            c = (v > bt) | ((a < 0) & (v == bt))
                            best[t] = v if c else bt
                            at[t] = b0 + np.int64(t) * sw if c else a
                o1 = U(orow + ix_lo)
                for t in range(ni):
                    if at[t] >= 0:
                        of[U(at[t])] += gf[o1 + t]
            k0, k1 = max(0, -y0), min(kh, H - y0)
            for ox in range(OW):
                if inside and ox >= ix_lo and ox < ix_hi:
                    continue
                x0 = ox * sw - pw
                j0, j1 = max(0, -x0), min(kw, W - x0)
                gv = gf[U(orow + ox)]
                if mode == 0:
                    a = _first_max(xf, xb, W, y0, x0, k0, k1, j0, j1, kw, is_global)
                    if a >= 0:
                        of[U(a)] += gv
                else:
                    if mode == 1:
                        gv = gv / _pool_count(oy, ox, kh, kw, sh, sw, ph, pw, H, W,
                                              include_pad)
                    nj = U(max(0, j1 - j0))
                    for ki in range(k0, k1):
                        rb = U(xb + (y0 + ki) * W + x0 + j0)
                        for kj in range(nj):
                            of[rb + kj] += gv


@njit(cache=True)
def pool2d_select(g, x, out, kh, kw, sh, sw, ph, pw):
    """Max pooling's routing applied to g (x's shape): per window, g at x's first maximum
    (0 where that is padding or the window is all NaN) -- _pooling_max_select."""
    H, W = x.shape[2], x.shape[3]
    if kh < 0:         # global pooling: the window is the whole plane
        kh, kw = H, W
    OH, OW = out.shape[2], out.shape[3]
    P = x.shape[0] * x.shape[1]
    xf = x.reshape(-1)
    gf = g.reshape(-1)
    of = out.reshape(-1)
    for q in range(P):
        xb = q * H * W
        ob = q * OH * OW
        for oy in range(OH):
            y0 = oy * sh - ph
            k0, k1 = max(0, -y0), min(kh, H - y0)
            for ox in range(OW):
                x0 = ox * sw - pw
                j0, j1 = max(0, -x0), min(kw, W - x0)
                at = _first_max(xf, xb, W, y0, x0, k0, k1, j0, j1, kw, False)
                of[U(ob + oy * OW + ox)] = gf[U(at)] if at >= 0 else 0


@njit(cache=True)
def reduce_sum_keep_mid(x, out):
    """x viewed as (outer, mid, inner) -> out (mid,): the sum over outer and inner (the sum
    over every axis but one, e.g. a bias gradient).  Accumulated in float64."""
    acc = np.zeros(x.shape[1], dtype=np.float64)
    for o in range(x.shape[0]):
        for m in range(x.shape[1]):
            s = 0.0
            for i in range(x.shape[2]):
                s += x[o, m, i]
            acc[m] += s
    for m in range(x.shape[1]):
        out[m] = acc[m]


LIBRARY_NN = {f.__name__: (f, None) for f in (
    conv2d_fwd, conv2d_bwd_data, conv2d_bwd_weight, add_channel_bias, pool2d_fwd, pool2d_bwd,
    pool2d_select, reduce_sum_keep_mid, wino_fwd, wino_bwd_data)}
