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
           "pool2d_fwd", "pool2d_bwd", "pool2d_select", "reduce_sum_keep_mid"]


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
    pool2d_select, reduce_sum_keep_mid)}
