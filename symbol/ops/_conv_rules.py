"""Which convolutions take which kernel of agjit.compiler.kernels_nn, decided in Python
when a Convolution is lowered (note *winograd-dispatch*).  This module imports neither
Numba nor the kernels: the lowering runs on the caller's thread (mx.jit's trace, the eager
compiled kernels' preparation), which must not import Numba (agjit.compiler.tier).  It
lives in symbol/ (which never imports agjit) because the Convolution lowering reads it;
agjit.compiler.kernels_nn re-exports it."""

WINO_MIN_CHANNELS = 8       # fewer input or output channels: im2col wins (transform-bound)
WINO_DISPATCH_TILES = 256   # wino_dispatch: the least 2x2 output tiles of one call


# Note: winograd-dispatch
#     Which convolutions take these kernels is decided in Python when a Convolution is
#     lowered (symbol/ops/nn_conv.py _wino_picks -> wino_dispatch, for mx.jit and for the
#     eager compiled kernels alike), from the call's shapes: the generated statement calls
#     wino_fwd / wino_bwd_data instead of conv2d_fwd / conv2d_bwd_data, so a convolution
#     that keeps im2col never makes Numba type or compile them (a call inside conv2d_*,
#     even behind a False switch, compiled them for every convolution).  The rule and the
#     measurements it rests on are at wino_dispatch.
WINO_DISPATCH = True        # False: every convolution stays on im2col + GEMM


def wino_dispatch(kernel, n, c, f, H, W, stride, pad, dilate, groups):
    """True when the 3x3 convolution ``kernel`` ('conv2d_fwd' or 'conv2d_bwd_data') of
    n samples, c -> f channels, H x W input runs on Winograd (note *winograd-dispatch*).

    The rule: the geometry of wino_shape_ok, and at least WINO_DISPATCH_TILES (256) 2x2
    output tiles in the call (n * ceil(OH/2) * ceil(OW/2)); the weight gradient never.
    The filter transform is redone per call and a call with few tiles gives BLAS narrow
    GEMMs, so small calls lose whatever the channels.  Measured (benchmarks/conv_micro.py,
    1-thread process CPU ms, forward / data gradient / weight gradient, Winograd against
    im2col + GEMM, load ~9, 2 cores):
      W7 64ch 32x32 b32 (8192 tiles)   39.5 / 46.4 / 58.5   53.0 / 60.4 / 58.5
      R18 64ch 56x56 b1 (784)           4.0 /  4.2 /  4.7    4.2 /  4.2 /  5.1
      R18 128ch 28x28 b1 (196)          4.9 /  6.6 /  5.8    4.7 /  5.2 /  4.6
      R18 256ch 14x14 b1 (49)           8.0 /  9.7 /  6.0    5.5 /  5.8 /  4.7
      R18 512ch 7x7 b1 (16)            19.7 / 33.4 / 14.3    8.0 / 10.5 /  8.4
      R18 64ch 56x56 b16 (12544)       69.6 / 74.6 / 94.1   82.1 / 88.3 / 81.6
      R18 128ch 28x28 b16 (3136)       55.7 / 60.4 / 58.0   63.7 / 76.3 / 59.3
      R18 256ch 14x14 b16 (784)        75.5 / 60.7 / 62.4   81.7 / 95.2 / 75.4
      R18 512ch 7x7 b16 (256)          70.8 / 83.1 / 82.3  109.5 /164.1 / 82.4
    (a tiles-per-channel rule, 16 x max(c, f), would have kept the b16 256- and 512-channel
    convolutions, Winograd's largest wins, on im2col)."""
    if not WINO_DISPATCH or kernel not in ("conv2d_fwd", "conv2d_bwd_data"):
        return False
    if not wino_shape_ok(c, f, 3, 3, stride[0], stride[1], pad[0], pad[1], dilate[0],
                         dilate[1], groups):
        return False
    OH, OW = H + 2 * pad[0] - 2, W + 2 * pad[1] - 2
    tiles = n * ((OH + 1) // 2) * ((OW + 1) // 2)
    return tiles >= WINO_DISPATCH_TILES


def wino_shape_ok(c, f, kh, kw, sh, sw, ph, pw, dh, dw, G):
    """True when a convolution of c -> f channels with this geometry can take the Winograd
    kernels (3x3, stride 1, dilation 1, groups 1, padding <= 2, enough channels)."""
    return (kh == 3 and kw == 3 and sh == 1 and sw == 1 and dh == 1 and dw == 1 and G == 1
            and 0 <= ph <= 2 and 0 <= pw <= 2 and c >= WINO_MIN_CHANNELS
            and f >= WINO_MIN_CHANNELS)
