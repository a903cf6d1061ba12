"""Records tests/golden/rnn_legacy_mxnet.json with real MXNet 1.9.1 (or, with --agjit, the
same graphs built by agjit, which tests/test_rnn_legacy.py compares with the file):

    /work/mxenv/bin/python tests/golden/gen_rnn_legacy_mxnet.py > tests/golden/rnn_legacy_mxnet.json

Each case builds an ``mx.rnn`` graph in a fresh NameManager and records its JSON, its
arguments and its state_info."""
import json
import sys
import warnings

if "--agjit" in sys.argv:
    import agjit as mx
else:
    import mxnet as mx


def lstm():
    c = mx.rnn.LSTMCell(4, prefix="lstm_")
    return c.unroll(2, mx.sym.var("data"), layout="NTC", merge_outputs=True), c


def rnn_tnc():
    c = mx.rnn.RNNCell(3, prefix="r_")
    return c.unroll(2, mx.sym.var("data"), layout="TNC"), c


def gru_list():
    c = mx.rnn.GRUCell(3, prefix="g_")
    return c.unroll(2, [mx.sym.var("a"), mx.sym.var("b")], merge_outputs=False), c


def stack():
    seq = mx.rnn.SequentialRNNCell()
    seq.add(mx.rnn.LSTMCell(2, prefix="l0_"))
    seq.add(mx.rnn.DropoutCell(0.5, prefix="d_"))
    seq.add(mx.rnn.ResidualCell(mx.rnn.GRUCell(2, prefix="l1_")))
    return seq.unroll(2, mx.sym.var("data"), layout="NTC", merge_outputs=True), seq


def bidir():
    b = mx.rnn.BidirectionalCell(mx.rnn.GRUCell(2, prefix="a_"), mx.rnn.LSTMCell(2, prefix="b_"))
    return b.unroll(3, mx.sym.var("data"), merge_outputs=True), b


def bidir_steps():
    b = mx.rnn.BidirectionalCell(mx.rnn.RNNCell(2, prefix="a_"), mx.rnn.RNNCell(2, prefix="b_"),
                                 output_prefix="x_")
    return b.unroll(2, mx.sym.var("data"), merge_outputs=False), b


def fused_unfused():
    f = mx.rnn.FusedRNNCell(3, num_layers=2, mode="lstm", bidirectional=True, prefix="f_")
    u = f.unfuse()
    return u.unroll(2, mx.sym.var("data"), merge_outputs=True), u


def stepped():
    c = mx.rnn.LSTMCell(3, prefix="s_")
    st = c.begin_state()
    out, st = c(mx.sym.var("x0"), st)
    out, st = c(mx.sym.var("x1"), st)
    return (out, st), c


CASES = [lstm, rnn_tnc, gru_list, stack, bidir, bidir_steps, fused_unfused, stepped]


def flat(x):
    if isinstance(x, (list, tuple)):
        return [y for z in x for y in flat(z)]
    return [x]


def main():
    out = {}
    for case in CASES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mx.name.NameManager():
                (outputs, states), cell = case()
                g = mx.sym.Group(flat(outputs) + flat(states))
                out[case.__name__] = {"json": json.loads(g.tojson()),
                                      "arguments": g.list_arguments(),
                                      "state_info": [{k: list(v) if isinstance(v, tuple) else v
                                                      for k, v in i.items()}
                                                     for i in cell.state_info],
                                      "n_outputs": len(flat(outputs)),
                                      "n_states": len(flat(states))}
    print(json.dumps(out, indent=0, sort_keys=True))


main()
