"""mx.viz against real MXNet 1.9.1's output for the same graph (tests/golden/viz.json from
tests/golden/make_viz.py): the print_summary table character for character, and
plot_network's DOT source."""
import json
import os
import sys

import pytest

import agjit as mx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "golden"))
import make_viz  # noqa: E402

GOLD = json.load(open(os.path.join(os.path.dirname(__file__), "golden", "viz.json")))


def test_print_summary_and_plot_network_match_mxnet():
    pytest.importorskip("graphviz")
    got = make_viz.run(mx)
    assert got["summary"] == GOLD["summary"]
    assert got["summary_noshape"] == GOLD["summary_noshape"]
    # graphviz 0.21 ends the source with a newline, the 0.8.4 beside MXNet does not
    assert got["source"].rstrip("\n") == GOLD["source"].rstrip("\n")
    assert got["name"] == "t"


def test_viz_refuses_non_symbols():
    with pytest.raises(TypeError):
        mx.viz.print_summary("net")
    with pytest.raises(TypeError):
        mx.viz.plot_network(42)
