"""The ``agjit`` command line: inspect / draw / demo, and its error contract (one line on
stderr, non-zero exit, never a traceback; argparse usage errors exit 2)."""
import os
import subprocess
import sys

import pytest

import agjit as mx
from agjit import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    data = mx.sym.Variable("data")
    h = mx.sym.FullyConnected(data, num_hidden=16, name="fc1")
    h = mx.sym.BatchNorm(h, name="bn1")
    h = mx.sym.Activation(h, act_type="relu", name="relu1")
    h = mx.sym.Dropout(h, p=0.5, name="drop1")
    h = mx.sym.FullyConnected(h, num_hidden=3, name="fc2")
    sym = mx.sym.SoftmaxOutput(h, name="softmax")
    arg_shapes, _o, aux_shapes = sym.infer_shape(data=(1, 5))
    args = {n: mx.nd.ones(s) for n, s in zip(sym.list_arguments(), arg_shapes)
            if n not in ("data", "softmax_label")}
    aux = {n: mx.nd.ones(s) for n, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    prefix = str(d / "mlp")
    sym_file, params_file = mx.model.export(sym, args, aux, prefix, 0)
    return {"dir": d, "sym": sym_file, "params": params_file}


def run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _row(out, name):
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 1 and parts[1] == name:
            return line
    raise AssertionError("no row %s in\n%s" % (name, out))


def test_inspect_with_shapes(ckpt, capsys):
    rc, out, err = run(["inspect", ckpt["sym"], "--shape", "data=4,5"], capsys)
    assert rc == 0 and err == ""
    assert "6 operators" in out and "outputs softmax_output" in out
    assert "FullyConnected" in _row(out, "fc1") and "(4, 16)" in _row(out, "fc1")
    assert _row(out, "fc1").split()[-4] == "96"          # 16*5 weight + 16 bias
    assert _row(out, "bn1").split()[-6] == "64"          # gamma, beta, moving mean and var
    assert "(4, 3)" in _row(out, "softmax")
    assert "Variable(aux)" in _row(out, "bn1_moving_var")
    assert "Variable(input)" in _row(out, "softmax_label")
    assert "total parameters: 211 in 8 arrays" in out
    assert "inputs: data (4, 5), softmax_label (4,)" in out


def test_inspect_with_params_and_without_shapes(ckpt, capsys):
    rc, out, _ = run(["inspect", ckpt["sym"], "--params", ckpt["params"]], capsys)
    assert rc == 0 and "total parameters: 211 in 8 arrays" in out
    assert "(16, 5)" in _row(out, "fc1_weight")
    rc, out, _ = run(["inspect", ckpt["sym"]], capsys)
    assert rc == 0 and "Variable(input)" in _row(out, "data")
    assert "give input shapes with --shape" in out


def test_inspect_params_file(ckpt, capsys):
    rc, out, _ = run(["inspect", ckpt["params"]], capsys)
    assert rc == 0 and "8 arrays, 211 values" in out
    assert "arg:fc1_weight" in out and "aux:bn1_moving_mean" in out and "float32" in out


def test_inspect_recorded_graph(tmp_path, capsys):
    w = mx.nd.ones((2, 3))
    w.attach_grad()
    x = mx.nd.ones((4, 3))
    with mx.autograd.record():
        y = mx.nd.relu(mx.nd.FullyConnected(x, w, num_hidden=2, no_bias=True))
    f = str(tmp_path / "rec-symbol.json")
    mx.autograd.get_symbol(y).save(f)
    rc, out, _ = run(["inspect", f], capsys)
    assert rc == 0 and "2 operators" in out and "relu" in out


def test_draw_dot_and_svg(ckpt, capsys):
    dot = str(ckpt["dir"] / "g.dot")
    rc, out, err = run(["draw", ckpt["sym"], "-o", dot, "--shape", "data=2,5"], capsys)
    assert rc == 0 and "wrote" in out
    text = open(dot).read()
    assert text.startswith("digraph") and '"fc1"' in text and "(2, 16)" in text
    pytest.importorskip("matplotlib")
    svg = str(ckpt["dir"] / "g.svg")
    rc, _out, err = run(["draw", ckpt["sym"], "-o", svg], capsys)
    assert rc == 0, err
    assert "<svg" in open(svg).read()


def test_demo_dispatches_to_agjit_demo_main(monkeypatch, capsys):
    import agjit.demo
    calls = []
    monkeypatch.setattr(agjit.demo, "main", lambda: calls.append(()) or None)
    assert run(["demo"], capsys)[0] == 0 and calls == [()]
    rc, _o, err = run(["demo", "--fast"], capsys)
    assert rc == 1 and "takes no arguments" in err
    monkeypatch.setattr(agjit.demo, "main", lambda argv: calls.append(tuple(argv)) or 3)
    assert run(["demo", "--epochs", "2"], capsys)[0] == 3 and calls[-1] == ("--epochs", "2")


def _one_line_error(rc, err, code=1):
    assert rc == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in err, err
    return lines[0]


def test_errors_are_one_line(ckpt, tmp_path, capsys):
    missing = str(tmp_path / "nope-symbol.json")
    assert "No such file" in _one_line_error(*run(["inspect", missing], capsys)[::2])
    corrupt = tmp_path / "bad-symbol.json"
    corrupt.write_text('{"nodes": [')
    assert "not a valid symbol JSON" in _one_line_error(*run(["inspect", str(corrupt)],
                                                             capsys)[::2])
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\xff\xfe\x00binary")
    assert "not UTF-8" in _one_line_error(*run(["inspect", str(garbage)], capsys)[::2])
    trunc = tmp_path / "trunc.params"
    trunc.write_bytes(open(ckpt["params"], "rb").read()[:100])
    msg = _one_line_error(*run(["inspect", str(trunc)], capsys)[::2])
    assert "trunc.params" in msg and "byte offset" in msg
    msg = _one_line_error(*run(["inspect", ckpt["sym"], "--shape", "dta=1,5"], capsys)[::2])
    assert "dta" in msg and "data" in msg
    msg = _one_line_error(*run(["inspect", ckpt["sym"], "--shape", "data=2,7", "--params",
                                ckpt["params"]], capsys)[::2])
    assert "shape inference failed" in msg and "fc1" in msg
    msg = _one_line_error(*run(["draw", ckpt["sym"], "-o", str(tmp_path / "no" / "g.dot")],
                               capsys)[::2])
    assert "does not exist" in msg
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("argv", [
    [],
    ["frobnicate"],
    ["inspect"],
    ["inspect", "x-symbol.json", "--shape", "data"],
    ["inspect", "x-symbol.json", "--shape", "data=1,x"],
    ["inspect", "x-symbol.json", "--shape", "data=0,3"],
    ["draw", "x-symbol.json"],
    ["draw", "x-symbol.json", "-o", "graph.bmpx"],
])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as ei:
        cli.main(argv)
    assert ei.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "Traceback" not in err


def test_python_dash_m_agjit(ckpt):
    env = dict(os.environ, PYTHONPATH=REPO)
    ok = subprocess.run([sys.executable, "-m", "agjit", "inspect", ckpt["sym"],
                         "--shape", "data=1,5"], capture_output=True, text=True, env=env,
                        cwd=REPO, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "total parameters: 211" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "agjit", "inspect", ckpt["sym"] + ".missing"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert bad.returncode == 1 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "agjit", "--bogus"], capture_output=True,
                           text=True, env=env, cwd=REPO, timeout=120)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_inspect_counts_renamed_parameters_without_params_file(tmp_path, capsys):
    # exported graphs keep generated op names, so parameters are recognised by the slot
    # they feed (weight/bias), not by the <op>_<slot> naming convention
    data = mx.sym.Variable("data")
    w, b = mx.sym.Variable("w1"), mx.sym.Variable("b1")
    net = mx.sym.FullyConnected(data, weight=w, bias=b, num_hidden=5, name="node_17")
    f = tmp_path / "r-symbol.json"
    net.save(str(f))
    rc, out, _ = run(["inspect", str(f), "--shape", "data=2,3"], capsys)
    assert rc == 0
    assert "total parameters: 20 in 2 arrays" in out, out
