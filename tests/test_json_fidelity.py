"""Every registered operator's graph JSON (built from its first sample) loads in real MXNet
1.9.1, except agjit's own gradient helpers, which MXNet does not have (and the list of those
stays exact: each one listed must indeed be refused).  Runs when an MXNet interpreter exists
(see tests/test_model_files.py)."""
import json
import subprocess
import textwrap

import numpy as np
import pytest

import agjit as mx
from symbol.api import _create_op
from symbol.registry import all_ops

from test_model_files import _mxnet_python

# agjit-only ops: gradient helpers and internals that appear in agjit's backward graphs, never
# in a model an MXNet user exports
AGJIT_ONLY = {
    "_backward_Convolution_data", "_backward_Convolution_weight", "_backward_Embedding",
    "_backward_dot_lhs", "_backward_dot_rhs", "_broadcast_reduced", "_cast_like", "_concat_slice",
    "_diag_backward", "_digamma", "_gather_nd_backward", "_gradient_output", "_makeloss_grad",
    "_nn_channel_view", "_nn_embedding_lookup", "_nn_reshape_like", "_pick_scatter",
    "_pooling_max_select", "_prod_others", "_reduce_sum_like", "_regression_output_grad",
    "_repeat_sum", "_slice_axis_scatter", "_smooth_l1_derivative", "_softmax_output_scale",
    "_softmax_output_target", "_svm_output_grad", "_take_scatter", "_tile_sum", "_topk_scatter",
    "_prelu_bcast", "_prelu_reduce", "_backward_Deconvolution_data",
    "_backward_Deconvolution_weight", "_backward_UpSampling_nearest", "_upsampling_nearest_place",
    "_backward_BatchNorm", "_sample_multinomial_grad", "_backward_BilinearResize2D",
    "_backward_AdaptiveAvgPooling2D",
}

LOADER = textwrap.dedent(r"""
    import json, sys
    import mxnet as mx
    docs = json.load(open(sys.argv[1]))
    bad = {}
    for name, text in docs.items():
        try:
            mx.sym.load_json(text)
        except Exception as e:
            bad[name] = str(e).splitlines()[0][:200]
    json.dump(bad, open(sys.argv[2], "w"))
""")


def _graphs():
    rs = np.random.RandomState(0)
    docs = {}
    for op in all_ops():
        if op.samples is None:
            continue
        s = op.samples(rs)[0]
        attrs = dict(s.attrs)
        ins = [mx.sym.Variable("in%d" % i) for i in range(len(s.inputs))]
        if op.variadic:
            attrs[op.variadic] = len(ins)
        docs[op.name] = _create_op(op, ins, attrs, "n", op.name.lower()).tojson()
    return docs


def test_every_op_json_loads_in_mxnet(tmp_path):
    py = _mxnet_python()
    if py is None:
        pytest.skip("no MXNet 1.9.1 interpreter")
    docs = _graphs()
    src, res = tmp_path / "graphs.json", tmp_path / "bad.json"
    src.write_text(json.dumps(docs))
    (tmp_path / "load.py").write_text(LOADER)
    subprocess.run([py, str(tmp_path / "load.py"), str(src), str(res)], check=True,
                   capture_output=True, timeout=300)
    bad = json.loads(res.read_text())
    unexpected = {k: v for k, v in bad.items() if k not in AGJIT_ONLY}
    assert not unexpected, "MXNet 1.9.1 refuses the JSON agjit writes for: %s" % unexpected
    stale = sorted(k for k in AGJIT_ONLY if k in docs and k not in bad)
    assert not stale, "listed as agjit-only but MXNet loads them: %s" % stale
