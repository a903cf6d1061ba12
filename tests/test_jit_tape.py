"""The JIT on the autograd tape (agjit.tape note *compiled-calls*): the explicit protocol,
backward from some outputs of a multi-output jitted call (agjit.compiler.program note
*partial-heads*), and outputs that depend on no recorded input (no autograd entry, as
eager)."""
import inspect

import numpy as np
import pytest

import agjit as mx
from agjit import tape, autograd
from agjit.compiler import tape_bridge
from agjit.compiler.trace import Tracer, IdentityMap

A = np.array([0.0, 1.0, 4.0], np.float32)


def _two(a):
    return a ** 0.5, a ** 1.5


def _run(f, head, general=False, hg=None):
    a = mx.nd.array(A)
    a.attach_grad()
    with np.errstate(all="ignore"), mx.autograd.record():
        y = f(a)
        h = y[head] * 1 if general else y[head]     # * 1: the general tape walk
    with np.errstate(all="ignore"):
        h.backward(hg)
    return y, a.grad.asnumpy()


@pytest.mark.parametrize("general", [False, True], ids=["fast", "tape-walk"])
def test_backward_from_one_output_of_two(general):
    f = mx.jit(_two)
    for head, want in ((1, 1.5 * np.sqrt(A)), (0, None)):
        _y, eager = _run(_two, head, general)
        _y, got = _run(f, head, general)
        assert np.isfinite(got[1:]).all(), got
        np.testing.assert_array_equal(np.isnan(got), np.isnan(eager))
        np.testing.assert_allclose(got, eager, rtol=1e-6)
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-6)
    # both heads: the full backward (d/da of a**0.5 at 0 is inf, as eager)
    a = mx.nd.array([1.0, 4.0])
    a.attach_grad()
    with mx.autograd.record():
        y = f(a)
    mx.autograd.backward(list(y), [mx.nd.ones((2,)), mx.nd.array([2.0, 2.0])])
    np.testing.assert_allclose(a.grad.asnumpy(), 0.5 / np.sqrt([1.0, 4.0])
                               + 3.0 * np.sqrt([1.0, 4.0]), rtol=1e-6)


def test_partial_heads_with_head_gradient_and_add():
    f = mx.jit(lambda a, b: (mx.nd.sqrt(a) * b, mx.nd.exp(b)))
    a = mx.nd.array(A)
    b = mx.nd.array([1.0, 2.0, 3.0])
    a.attach_grad(grad_req="add")
    b.attach_grad()
    b.grad[:] = 7.0
    for _ in range(2):
        with np.errstate(all="ignore"), mx.autograd.record():
            y = f(a, b)
        y[1].backward(mx.nd.array([1.0, 2.0, 0.5]))
    # a only feeds the absent head: untouched (no nan added); b's gradient written
    np.testing.assert_array_equal(a.grad.asnumpy(), np.zeros(3))
    np.testing.assert_allclose(b.grad.asnumpy(), np.exp([1.0, 2.0, 3.0]) * [1.0, 2.0, 0.5],
                               rtol=1e-6)
    assert any("heads-01" in k.kind for k in f._last.kernels()), \
        [k.kind for k in f._last.kernels()]


def test_partial_heads_of_a_mode_dependent_graph():
    f = mx.jit(lambda x: (mx.nd.Dropout(x, p=0.5) * 2, mx.nd.sqrt(x)))
    x = mx.nd.array(A)
    x.attach_grad()
    with np.errstate(all="ignore"), mx.autograd.record(train_mode=False):
        y = f(x)
    with np.errstate(all="ignore"):
        y[0].backward(train_mode=False)
    np.testing.assert_allclose(x.grad.asnumpy(), np.full(3, 2.0))


def test_output_that_depends_on_no_recorded_input_has_no_entry():
    """As eager: an output computed from unrecorded arrays only is not on the tape, and a
    backward from it raises eager's (and MXNet's) error."""
    def g(x, k):
        return x * 2, mx.nd.one_hot(k, 3)
    f = mx.jit(g)
    errors = []
    for fn in (g, f):
        x = mx.nd.ones((2,))
        x.attach_grad()
        k = mx.nd.array([0.0, 2.0])            # fresh: no autograd entry
        with mx.autograd.record():
            p, q = fn(x, k)
        assert q._entry is None and p._entry is not None
        with pytest.raises(mx.MXNetError) as e:
            q.backward()
        errors.append(str(e.value))
        with pytest.raises(mx.MXNetError):
            mx.autograd.get_symbol(q)
        p.backward()
        np.testing.assert_allclose(x.grad.asnumpy(), [2.0, 2.0])
    assert errors[0] == errors[1]
    assert "Cannot differentiate node because it is not in a computational graph" in errors[0]
    # single output on unrecorded inputs: no entry either (the call is not recorded)
    c = mx.nd.array([1.0, 2.0])
    with mx.autograd.record():
        y = mx.jit(lambda c: c * 3)(c)
    with pytest.raises(mx.MXNetError, match="not in a computational graph"):
        y.backward()


def test_the_tape_protocol_is_explicit():
    assert issubclass(Tracer, tape.TapeObserver)
    assert issubclass(tape_bridge._JitNode, tape.CompiledNode)
    assert issubclass(tape_bridge._JitCallNode, tape.CompiledCall)
    with pytest.raises(TypeError):
        tape.set_tracer(object())
    # autograd knows the JIT only through the protocol: no op-name matching, no duck typing
    src = inspect.getsource(autograd)
    assert "_jit_call" not in src and "getattr(fn" not in src
    f = mx.jit(lambda a: mx.nd.sin(a) * 2)
    a = mx.nd.array([0.5, 1.0])
    a.attach_grad()
    with mx.autograd.record():
        y = f(a)
    node = y._entry[0]
    assert isinstance(node.function, tape.CompiledNode)
    assert isinstance(node.sym, tape.CompiledCall)
    sym = mx.autograd.get_symbol(y)
    assert [n["op"] for n in __import__("json").loads(sym.tojson())["nodes"]] == \
        ["null", "sin", "_mul_scalar"]
    y.backward()
    np.testing.assert_allclose(a.grad.asnumpy(), 2 * np.cos([0.5, 1.0]), rtol=1e-6)


def test_identity_map_holds_its_keys():
    m = IdentityMap()
    a = mx.nd.ones((2,))
    m[a] = 1
    del a
    b = [mx.nd.ones((2,)) for _ in range(50)]     # ids of freed arrays would be reused
    assert all(x not in m for x in b) and len(m) == 1


@pytest.mark.parametrize("general", [False, True], ids=["fast", "tape-walk"])
def test_a_backward_reaches_only_the_inputs_its_output_reads(general):
    """As eager: a backward from one output of a jitted call targets only the variables that
    output depends on (``CompiledNode.inputs_of``); the others keep their gradients, and an
    output of constants only raises eager's error."""
    def g(a, b, k):
        return a * 2, b * 3, mx.nd.one_hot(k, 3) * 1
    f = mx.jit(g)
    got = {}
    for name, fn in (("eager", g), ("jit", f)):
        a, b = mx.nd.ones((2,)), mx.nd.ones((2,))
        a.attach_grad()
        b.attach_grad()
        b.grad[:] = 7.0
        k = mx.nd.array([0.0, 2.0])
        with mx.autograd.record():
            _ = a * k                           # k becomes a recorded constant (null<k>)
            ys = fn(a, b, k)
            h = ys[0] * 1 if general else ys[0]
            c = ys[2] * 1 if general else ys[2]
        with pytest.raises(mx.MXNetError) as e:
            c.backward(retain_graph=True)
        h.backward()
        got[name] = (a.grad.asnumpy(), b.grad.asnumpy(), str(e.value))
    assert "no inputs in computation graph that require gradients" in got["eager"][2]
    assert got["jit"][2] == got["eager"][2]
    np.testing.assert_array_equal(got["jit"][0], got["eager"][0])
    np.testing.assert_array_equal(got["jit"][1], [7.0, 7.0])
    np.testing.assert_array_equal(got["eager"][1], [7.0, 7.0])
