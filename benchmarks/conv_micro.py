"""Micro-benchmark of the 3x3 stride-1 convolution kernels alone: agjit's Winograd kernels
(wino_fwd / wino_bwd_data / wino_bwd_weight, note *winograd* of kernels_nn), its im2col +
GEMM kernels (conv2d_fwd / conv2d_bwd_data / conv2d_bwd_weight) and
PyTorch's conv2d (forward, and the two
gradients through torch.nn.grad), float32, process CPU ms per call (median of 5).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \
        .venv/bin/python benchmarks/conv_micro.py [--torch /work/peers-venv/bin/python]

PyTorch runs in its own interpreter (``--torch``, torch.set_num_threads(1)) and is skipped
when that one is missing.  Shapes: the W7 ResNet block conv and ResNet-18's 3x3 convs.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

# (name, n, c, f, H, W, pad)
SHAPES = [("W7 64x32x32 b32", 32, 64, 64, 32, 32, 1),
          ("R18 64x56 b1", 1, 64, 64, 56, 56, 1),
          ("R18 128x28 b1", 1, 128, 128, 28, 28, 1),
          ("R18 256x14 b1", 1, 256, 256, 14, 14, 1),
          ("R18 512x7 b1", 1, 512, 512, 7, 7, 1),
          ("R18 64x56 b16", 16, 64, 64, 56, 56, 1),
          ("R18 128x28 b16", 16, 128, 128, 28, 28, 1),
          ("R18 256x14 b16", 16, 256, 256, 14, 14, 1),
          ("R18 512x7 b16", 16, 512, 512, 7, 7, 1)]


def cpu_ms(fn, repeats=5):
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.process_time()
        k = 0
        while True:
            fn()
            k += 1
            if time.process_time() - t0 > 0.05:
                break
        ts.append((time.process_time() - t0) / k * 1e3)
    return float(np.median(ts))


def agjit_times(shape):
    from agjit.compiler import kernels_nn as K
    _, n, c, f, H, W, p = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, H, W)).astype(np.float32)
    w = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
    b = np.zeros(f, np.float32)
    OH, OW = H + 2 * p - 2, W + 2 * p - 2
    out = np.empty((n, f, OH, OW), np.float32)
    gy = rng.standard_normal(out.shape).astype(np.float32)
    gx = np.empty_like(x)
    gw = np.empty_like(w)
    r = {}
    r["wino"] = (cpu_ms(lambda: K.wino_fwd(x, w, b, out, p, p, 0)),
                 cpu_ms(lambda: K.wino_bwd_data(gy, w, gx, p, p)),
                 cpu_ms(lambda: K.wino_bwd_weight(gy, x, gw, p, p)))
    r["gemm"] = (cpu_ms(lambda: K.conv2d_fwd(x, w, b, out, 1, 1, p, p, 1, 1, 1, 0)),
                 cpu_ms(lambda: K.conv2d_bwd_data(gy, w, gx, 1, 1, p, p, 1, 1, 1)),
                 cpu_ms(lambda: K.conv2d_bwd_weight(gy, x, gw, 1, 1, p, p, 1, 1, 1)))
    return r


TORCH_CHILD = r'''
import json, sys, time, numpy as np, torch
torch.set_num_threads(1)
shapes = json.loads(sys.argv[1])
def cpu_ms(fn, repeats=5):
    fn(); ts = []
    for _ in range(repeats):
        t0 = time.process_time(); k = 0
        while True:
            fn(); k += 1
            if time.process_time() - t0 > 0.05: break
        ts.append((time.process_time() - t0) / k * 1e3)
    return float(np.median(ts))
res = []
for _, n, c, f, H, W, p in shapes:
    x = torch.randn(n, c, H, W); w = torch.randn(f, c, 3, 3)
    y = torch.nn.functional.conv2d(x, w, padding=p); gy = torch.randn_like(y)
    with torch.no_grad():
        res.append((cpu_ms(lambda: torch.nn.functional.conv2d(x, w, padding=p)),
                    cpu_ms(lambda: torch.nn.grad.conv2d_input(x.shape, w, gy, padding=p)),
                    cpu_ms(lambda: torch.nn.grad.conv2d_weight(x, w.shape, gy, padding=p))))
print(json.dumps(res))
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torch", default="/work/peers-venv/bin/python")
    args = ap.parse_args()
    torch_res = None
    if os.path.exists(args.torch):
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH="")
        p = subprocess.run([args.torch, "-c", TORCH_CHILD, json.dumps(SHAPES)], env=env,
                           capture_output=True, text=True)
        if p.returncode == 0:
            torch_res = json.loads(p.stdout.strip().splitlines()[-1])
        else:
            print("torch failed:", p.stderr[-500:], file=sys.stderr)
    print("CPU ms per call, float32 (forward / data gradient / weight gradient); load %s"
          % " ".join(open("/proc/loadavg").read().split()[:3]))
    print("| shape | agjit Winograd | agjit im2col+GEMM | PyTorch |")
    print("|---|---|---|---|")
    for i, s in enumerate(SHAPES):
        r = agjit_times(s)
        t = torch_res[i] if torch_res else None
        fmt = lambda v: " / ".join("%.1f" % a for a in v)  # noqa: E731
        print("| %s | %s | %s | %s |" % (s[0], fmt(r["wino"]), fmt(r["gemm"]),
                                         fmt(t) if t else "-"), flush=True)


if __name__ == "__main__":
    main()
