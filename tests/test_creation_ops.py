"""mx.sym.zeros / ones / full / arange: the nodes MXNet 1.9.1 writes for them (recorded from
real MXNet), their values, and zero-size dimensions (MXNet's exported RNN begin states)."""
import json

import numpy as np

import agjit as mx


def test_nodes_match_mxnet():
    cases = [
        (mx.sym.zeros((2, 3)), {"op": "_zeros", "name": "_zeros0",
                                "attrs": {"dtype": "float32", "shape": "(2, 3)"}, "inputs": []}),
        (mx.sym.ones((2, 0), dtype="int32", name="o"),
         {"op": "_ones", "name": "o", "attrs": {"dtype": "int32", "shape": "(2, 0)"}, "inputs": []}),
        (mx.sym.full((2,), 5), {"op": "_full", "name": "_full0",
                                "attrs": {"dtype": "float32", "shape": "(2,)", "value": "5.0"},
                                "inputs": []}),
        (mx.sym.arange(0, 5, 2), {"op": "_arange", "name": "_arange0",
                                  "attrs": {"dtype": "float32", "infer_range": "False", "repeat": "1",
                                            "start": "0", "step": "2", "stop": "5"}, "inputs": []}),
    ]
    with mx.name.NameManager():
        for sym, node in cases:
            got = json.loads(sym.tojson())["nodes"][0]
            node = dict(node, name=got["name"] if node["name"].endswith("0") else node["name"])
            assert got == node


def test_values():
    assert mx.sym.arange(0, 5, 2).eval()[0].asnumpy().tolist() == [0.0, 2.0, 4.0]
    assert mx.sym.arange(3, repeat=2).eval()[0].asnumpy().tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(mx.sym.full((2, 2), 7, dtype="int32").eval()[0].asnumpy(),
                                  np.full((2, 2), 7, dtype=np.int32))
    z = mx.sym.zeros((2, 0, 3)).eval()[0]
    assert z.shape == (2, 0, 3)
