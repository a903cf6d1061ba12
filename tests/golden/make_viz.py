"""Writes tests/golden/viz.json with real MXNet 1.9.1: python make_viz.py OUT (the same
program runs against agjit in tests/test_viz.py)."""
import contextlib
import io
import json
import sys


def build(mx):
    data = mx.sym.Variable("data")
    c1 = mx.sym.Convolution(data, kernel=(3, 3), num_filter=4, pad=(1, 1), name="c1")
    c2 = mx.sym.Convolution(data, kernel=(1, 1), num_filter=2, no_bias=True, name="c2")
    cat = mx.sym.Concat(c1, c2, dim=1, name="cat")
    bn = mx.sym.BatchNorm(cat, name="bn")
    act = mx.sym.LeakyReLU(bn, act_type="leaky", name="lrelu")
    pool = mx.sym.Pooling(act, kernel=(2, 2), stride=(2, 2), pool_type="avg", name="pool")
    fc = mx.sym.FullyConnected(mx.sym.Flatten(pool, name="fl"), num_hidden=5, no_bias=True, name="fc")
    return mx.sym.SoftmaxOutput(fc, name="out")


def run(mx):
    net = build(mx)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        mx.viz.print_summary(net, shape={"data": (2, 3, 6, 6)})
    summary = buf.getvalue()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        mx.viz.print_summary(net, line_length=80)
    g = mx.viz.plot_network(net, shape={"data": (2, 3, 6, 6)}, hide_weights=False, title="t")
    return {"summary": summary, "summary_noshape": buf.getvalue(), "source": g.source,
            "name": g.name}


if __name__ == "__main__":
    import mxnet
    json.dump(run(mxnet), open(sys.argv[1], "w"), indent=1)
