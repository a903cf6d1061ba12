"""MXNet 1.9.1 autograd semantics (FINDINGS §1-5) as numeric assertions.

Counter-based names (``var<k>``, ``null<k>``) are checked relative to a counter value
captured at the start of each test, because the counter is process-global.
"""
import json
import re
import threading  # noqa: F401  (thread-locality is in test_threads.py)

import numpy as np
import pytest

import agjit as mx
from agjit import autograd as ag
from symbol.base import MXNetError
from conftest import next_var_index

nd = mx.nd


def arr(*vals, dtype=None):
    return nd.array(np.array(vals, dtype=np.float64), dtype=dtype)


def args_of(y):
    return ag.get_symbol(y).list_arguments()


def graph(y):
    return json.loads(ag.get_symbol(y).tojson())


def ops_of(y):
    return [n["op"] for n in graph(y)["nodes"]]


def close(a, b, tol=1e-6):
    a = a.asnumpy() if hasattr(a, "asnumpy") else np.asarray(a)
    np.testing.assert_allclose(a, np.asarray(b, dtype=np.float64), rtol=tol, atol=tol)


# ---------------------------------------------------------------------------------------
# §1 global state
# ---------------------------------------------------------------------------------------
def state():
    return [ag.is_recording(), ag.is_training()]


def test_state_defaults_and_scopes():
    assert state() == [False, False]
    with ag.record():
        assert state() == [True, True]
    with ag.record(train_mode=False):
        assert state() == [True, False]
    with ag.pause():
        assert state() == [False, False]
    with ag.pause(train_mode=True):
        assert state() == [False, True]
    with ag.train_mode():
        assert state() == [False, True]
    with ag.predict_mode():
        assert state() == [False, False]
    with ag.record():
        with ag.pause():
            assert state() == [False, False]
        assert state() == [True, True]
        with ag.predict_mode():
            assert state() == [True, False]
        assert state() == [True, True]
    assert state() == [False, False]


def test_set_functions_return_previous_bool():
    assert ag.set_recording(True) is False
    assert ag.set_recording(True) is True
    assert ag.set_recording(0) is True
    assert ag.is_recording() is False
    assert ag.set_training(1) is False
    assert ag.is_training() is True
    assert ag.set_training(False) is True
    assert type(ag.is_recording()) is bool and type(ag.is_training()) is bool


def test_scope_restore_quirk():
    # pause() found recording False and set False: it does not restore, the change leaks
    with ag.pause():
        ag.set_recording(True)
    assert ag.is_recording() is True
    ag.set_recording(False)
    # record() changed the flag, so it restores the saved value even if changed inside
    with ag.record():
        ag.set_recording(False)
        ag.set_training(False)
    assert state() == [False, False]
    # train_mode() leaves recording alone: a recording switched on inside leaks
    with ag.train_mode():
        ag.set_recording(True)
    assert state() == [True, False]


def test_scope_restores_on_exception():
    with pytest.raises(ValueError):
        with ag.record():
            raise ValueError("boom")
    assert state() == [False, False]


def test_backward_sets_and_restores_flags():
    seen = []

    class Probe(ag.Function):
        def forward(self, x):
            return x * 1

        def backward(self, dy):
            seen.append(ag.is_training())
            return dy

    for train in (True, False):
        x = arr(1.0, 2.0)
        x.attach_grad()
        with ag.record():
            y = Probe()(x)
        y.backward(train_mode=train)
        assert state() == [False, False]
    assert seen == [True, False]


# ---------------------------------------------------------------------------------------
# §2 recording model and naming
# ---------------------------------------------------------------------------------------
def test_recording_needs_a_recorded_input():
    c = arr(1.0, 2.0)
    with ag.record():
        y = nd.exp(c)
        z = y * 2
    for t in (y, z):
        with pytest.raises(MXNetError):
            ag.get_symbol(t)
    x = arr(1.0, 2.0)
    x.attach_grad()
    with ag.pause():
        with ag.record():
            pass
        w = x * 3
    with pytest.raises(MXNetError):
        ag.get_symbol(w)
    with ag.record():
        with ag.pause():
            w2 = x * 3
    with pytest.raises(MXNetError):
        ag.get_symbol(w2)


def test_variable_and_constant_naming():
    k = next_var_index()
    a, b, c = arr(1.0, 2.0), arr(3.0, 4.0), arr(5.0, 6.0)
    a.attach_grad()                         # var k
    b.attach_grad()                         # var k+1
    with ag.record():
        y1 = a * c + b                      # c -> null k+2
        y2 = (a * c) * c                    # still null k+2
    assert args_of(y1) == ["var%d" % k, "null%d" % (k + 2), "var%d" % (k + 1)]
    assert args_of(y2) == ["var%d" % k, "null%d" % (k + 2)]
    g = graph(y1)
    assert [n["op"] for n in g["nodes"]] == ["null", "null", "broadcast_mul", "null", "broadcast_add"]
    assert all(re.fullmatch(r"node_\d+", n["name"]) for n in g["nodes"] if n["op"] != "null")
    assert g["arg_nodes"] == [0, 1, 3]
    a.attach_grad()                         # re-attaching takes a new number: var k+3
    with ag.record():
        y3 = a * b
    assert args_of(y3) == ["var%d" % (k + 3), "var%d" % (k + 1)]
    mx.autograd.mark_variables([c], [nd.zeros((2,))])   # the constant becomes var k+4
    with ag.record():
        y4 = c + a
    assert args_of(y4) == ["var%d" % (k + 4), "var%d" % (k + 3)]
    assert args_of(y1)[1] == "null%d" % (k + 2)          # old symbols keep the old name
    d = arr(1.0, 1.0)
    with ag.record():
        y5 = a * d                          # d -> null k+5
        y6 = d * 2                          # d now carries an entry: recorded
    assert args_of(y5) == ["var%d" % (k + 3), "null%d" % (k + 5)]
    assert ops_of(y6) == ["null", "_mul_scalar"]
    assert args_of(y6) == ["null%d" % (k + 5)]
    with pytest.raises(MXNetError):
        y6.backward()                       # nothing in its graph requires a gradient


def test_attach_grad_basics():
    x = arr(1.0, 2.0, 3.0)
    assert x.grad is None
    x.attach_grad()
    close(x.grad, [0, 0, 0])
    assert x.grad.dtype == np.float32
    live = x.grad
    x.backward()                            # a variable's own backward: ones
    close(x.grad, [1, 1, 1])
    u = arr(5.0, 5.0)
    u.attach_grad()
    u.grad[:] = 7
    with ag.record():
        y = x * x
    y.backward()
    close(u.grad, [7, 7])                   # unreachable variable untouched
    close(x.grad, [2, 4, 6])
    close(live, [2, 4, 6])                  # the handle aliases the buffer
    assert y.grad is None                   # intermediates have no .grad
    x.attach_grad()
    close(x.grad, [0, 0, 0])                # re-attaching resets


def test_float64_gradients_keep_dtype():
    d = nd.array(np.array([1.5, -2.0]), dtype="float64")
    d.attach_grad()
    with ag.record():
        e = d * d
    e.backward()
    assert d.grad.dtype == np.float64 and e.dtype == np.float64
    close(d.grad, [3.0, -4.0])


def test_grad_req_write_add_and_switch():
    x = arr(1.0, 2.0, 3.0)
    x.attach_grad()
    for _ in range(2):
        with ag.record():
            y = x * x
        y.backward()
        close(x.grad, [2, 4, 6])            # write overwrites
    x.attach_grad(grad_req="add")           # switch: reset to zero, then accumulate
    close(x.grad, [0, 0, 0])
    for k in (1, 2, 3):
        with ag.record():
            y = x * x
        y.backward()
        close(x.grad, np.array([2, 4, 6]) * k)
    x.attach_grad(grad_req="write")
    with ag.record():
        y = x * 5
    y.backward()
    close(x.grad, [5, 5, 5])


def test_retain_graph_with_add():
    x = arr(1.0, 2.0, 3.0)
    x.attach_grad(grad_req="add")
    with ag.record():
        y = x * x * x
    three_x2 = 3 * np.array([1.0, 2.0, 3.0]) ** 2
    y.backward(retain_graph=True)
    close(x.grad, three_x2)
    y.backward(retain_graph=True)
    close(x.grad, 2 * three_x2)
    y.backward()
    close(x.grad, 3 * three_x2)
    with pytest.raises(MXNetError):
        y.backward()


def test_backward_frees_graph():
    k = next_var_index()
    x = arr(1.0, 2.0)
    x.attach_grad()                         # var k
    c = arr(3.0, 4.0)
    with ag.record():
        h = x * c                           # c -> null k+1
        y = nd.exp(h)
    assert args_of(y) == ["var%d" % k, "null%d" % (k + 1)]
    y.backward()
    for t in (y, h):
        with pytest.raises(MXNetError):
            ag.get_symbol(t)
    with pytest.raises(MXNetError):
        y.backward()
    assert args_of(x) == ["var%d" % k]      # a marked variable keeps its info and name
    assert ops_of(x) == ["null"]
    with ag.record():
        y2 = x * c                          # the freed constant gets a new number
    assert args_of(y2) == ["var%d" % k, "null%d" % (k + 2)]


def test_grad_req_null_loses_status_after_backward():
    k = next_var_index()
    a, b = arr(1.0, 2.0, 3.0), arr(4.0, 5.0, 6.0)
    a.attach_grad(grad_req="null")          # var k
    b.attach_grad()                         # var k+1
    close(a.grad, [0, 0, 0])
    with ag.record():
        z = a * b
    assert args_of(z) == ["var%d" % k, "var%d" % (k + 1)]
    z.backward()
    assert a.grad is None
    close(b.grad, [1, 2, 3])
    with ag.record():
        z2 = a * b                          # a is now a constant
    assert args_of(z2) == ["null%d" % (k + 2), "var%d" % (k + 1)]
    c = arr(1.0, 1.0)
    c.attach_grad(grad_req="null")
    with ag.record():
        w = c * 2
    with pytest.raises(MXNetError, match="require"):
        w.backward()


def test_mark_variables_buffers():
    x, y = arr(1.0, 2.0), arr(3.0, 4.0)
    gx, gy = nd.zeros((2,)), arr(10.0, 10.0)
    ag.mark_variables([x, y], [gx, gy], grad_reqs=["write", "add"])
    with ag.record():
        w = x * y + x
    w.backward()
    close(gx, [4, 5])
    close(gy, [11, 12])                     # add keeps the buffer's content
    close(x.grad, [4, 5])
    close(y.grad, [11, 12])
    gx[:] = 0.5
    close(x.grad, [0.5, 0.5])               # x.grad reads the given buffer
    s = arr(2.0, -1.0, 0.5)
    gs = nd.ones((3,)) * 7
    ag.mark_variables(s, gs)                # single NDArray form
    with ag.record():
        v = nd.square(s) * 1
    v.backward()
    close(gs, [4, -2, 1])


def test_grad_api():
    x = arr(1.0, 2.0, 3.0)
    x.attach_grad()
    x.grad[:] = 9
    with ag.record():
        y = x * x * x
    g = ag.grad(y, x)
    assert isinstance(g, list) and len(g) == 1
    close(g[0], 3 * np.array([1.0, 4.0, 9.0]))
    close(x.grad, [9, 9, 9])                # .grad untouched
    with pytest.raises(MXNetError):         # retain_graph defaults to create_graph=False
        ag.grad(y, [x])
    z = arr(1.0, 1.0)
    z.attach_grad()
    with ag.record():
        y = x * 2
    g = ag.grad(y, [x], retain_graph=True)
    assert isinstance(g, list)
    close(g[0], [2, 2, 2])
    with pytest.raises(AssertionError):
        ag.grad(y, [])
    with pytest.raises(MXNetError, match="unreachable"):
        ag.grad(y, [z], retain_graph=True)
    c = arr(1.0, 2.0, 3.0)
    with ag.record():
        y = x * c
    with pytest.raises(MXNetError):         # c is a constant, not a variable
        ag.grad(y, [c], retain_graph=True)


def test_grad_create_graph_second_order():
    x = arr(0.5, 1.0, 2.0)
    x.attach_grad()
    with ag.record():
        y = nd.sin(x)
        (dx,) = ag.grad(y, [x], create_graph=True)
    close(dx, np.cos([0.5, 1.0, 2.0]))
    dx.backward()
    close(x.grad, -np.sin([0.5, 1.0, 2.0]))
    x.attach_grad()
    with ag.record():
        y = nd.exp(nd.tanh(x)) + nd.log(x)
        (dx,) = ag.grad(y, [x], create_graph=True)
    dx.backward()
    t = np.tanh([0.5, 1.0, 2.0])
    xv = np.array([0.5, 1.0, 2.0])
    d1 = np.exp(t) * (1 - t ** 2)
    expected = d1 * (1 - t ** 2) + np.exp(t) * (-2 * t * (1 - t ** 2)) - 1 / xv ** 2
    close(x.grad, expected, 1e-5)


def test_head_grads():
    x = arr(1.0, 2.0)
    x.attach_grad()
    with ag.record():
        y = x * x
    y.backward(arr(3.0, 0.5))
    close(x.grad, [6, 2])
    with ag.record():
        y1 = x * 2
        y2 = x * x
    ag.backward([y1, y2], [None, arr(10.0, 10.0)])   # None means ones; heads are summed
    close(x.grad, [2 + 20, 2 + 40])
    with ag.record():
        y1 = x * 2
        y2 = x * 3
    with pytest.raises(AssertionError):
        ag.backward([y1, y2], [None])
    with pytest.raises(AssertionError):
        ag.grad([y1, y2], [x], head_grads=[arr(1.0, 1.0)])


def test_backward_without_graph_raises():
    x = arr(1.0, 2.0)
    with pytest.raises(MXNetError):
        x.backward()
    with ag.record():
        y = x * 2
    with pytest.raises(MXNetError):
        y.backward()


# ---------------------------------------------------------------------------------------
# §4 autograd.Function
# ---------------------------------------------------------------------------------------
class Sigmoid(ag.Function):
    def forward(self, x):
        self.recording_in_forward = ag.is_recording()
        y = 1 / (1 + nd.exp(-x))
        self.save_for_backward(y)
        return y

    def backward(self, dy):
        (y,) = self.saved_tensors
        return dy * y * (1 - y)


def test_function_custom_sigmoid():
    x = arr(-1.0, 0.0, 2.0)
    x.attach_grad()
    f = Sigmoid()
    with ag.record():
        y = f(x)
    assert f.recording_in_forward is False
    assert len(f.saved_tensors) == 1
    assert ops_of(y) == ["null", "_CustomFunction"]
    y.backward()
    s = 1 / (1 + np.exp(-np.array([-1.0, 0.0, 2.0])))
    close(y, s)
    close(x.grad, s * (1 - s))
    with pytest.raises(AssertionError):
        f(x)                                # once only


def test_function_backward_replaces_chain_rule():
    class Double(ag.Function):
        def forward(self, x):
            return x * 2

        def backward(self, dy):
            return dy * 100

    x = arr(1.0, 2.0)
    x.attach_grad()
    with ag.record():
        y = Double()(x)
    y.backward()
    close(x.grad, [100, 100])
    z = Double()(x)                         # outside record: nothing recorded
    close(z, [2, 4])
    with pytest.raises(MXNetError):
        ag.get_symbol(z)


def test_function_multiple_outputs():
    class SplitScale(ag.Function):
        def forward(self, a, b):
            return a * 2, a * b

        def backward(self, da, dab):
            self.got = (da.asnumpy(), dab.asnumpy())
            return da * 2, dab * 5

    a, b = arr(1.0, 2.0), arr(3.0, 4.0)
    a.attach_grad()
    b.attach_grad()
    f = SplitScale()
    with ag.record():
        p, q = f(a, b)
        loss = p + q * 3
    loss.backward()
    close(f.got[0], [1, 1])
    close(f.got[1], [3, 3])
    close(a.grad, [2, 2])
    close(b.grad, [15, 15])


# ---------------------------------------------------------------------------------------
# detach / BlockGrad, in-place, get_symbol
# ---------------------------------------------------------------------------------------
def test_detach_vs_blockgrad():
    x = arr(1.0, 2.0, 3.0)
    x.attach_grad()
    with ag.record():
        y = x * x
        z = y.detach() * x
    assert ops_of(z) == ["null", "null", "broadcast_mul"]
    assert args_of(z)[0].startswith("null") and args_of(z)[1].startswith("var")
    z.backward()
    close(x.grad, [1, 4, 9])
    with ag.record():
        y = x * x
        z = nd.stop_gradient(y) * x + y
    assert "BlockGrad" in ops_of(z)
    assert sum(1 for o in ops_of(z) if o == "null") == 1
    z.backward()
    close(x.grad, [1 + 2, 4 + 4, 9 + 6])
    with ag.record():
        z = nd.BlockGrad(x * 2) + x * 4
    z.backward()
    close(x.grad, [4, 4, 4])


def test_inplace_refused_inside_record():
    x = arr(1.0, 2.0)
    x.attach_grad()
    with ag.record():
        y = x * 2
        with pytest.raises(MXNetError):
            y += 1
        with pytest.raises(MXNetError):
            y[:] = 0
        with pytest.raises(MXNetError):
            nd.exp(x, out=y)
    close(y, [2, 4])
    y2 = x * 2
    y2 += 1                                 # outside record it is fine
    close(y2, [3, 5])
    nd.exp(x, out=y2)
    close(y2, np.exp([1.0, 2.0]))


def test_get_symbol_json_and_arguments():
    k = next_var_index()
    x = arr(1.0, 2.0)
    x.attach_grad()
    with ag.record():
        y = nd.relu(x * 2 + 1)
    s = ag.get_symbol(y)
    assert s.list_arguments() == ["var%d" % k]
    g = json.loads(s.tojson())
    assert [n["op"] for n in g["nodes"]] == ["null", "_mul_scalar", "_plus_scalar", "relu"]
    assert g["nodes"][1]["attrs"] == {"scalar": "2.0"}
    assert g["nodes"][2]["attrs"] == {"scalar": "1.0"}
    assert "attrs" not in g["nodes"][3] or g["nodes"][3]["attrs"] == {}
    assert g["heads"] == [[3, 0, 0]]
    assert g["node_row_ptr"] == [0, 1, 2, 3, 4]
    assert g["attrs"] == {"mxnet_version": ["int", 10901]}
    with pytest.raises(AssertionError):
        ag.get_symbol(np.ones(2))


# ---------------------------------------------------------------------------------------
# errors name the op and the shapes
# ---------------------------------------------------------------------------------------
def _shape_re(*dims):
    return r"[\(\[]" + r",\s*".join(str(d) for d in dims) + r",?[\)\]]"


def test_error_message_dot_names_op_and_both_shapes():
    a, b = nd.ones((2, 3)), nd.ones((2, 3))
    with pytest.raises(MXNetError) as e:
        nd.dot(a, b)
    msg = str(e.value)
    assert "dot" in msg and len(re.findall(_shape_re(2, 3), msg)) >= 2, msg


def test_error_messages_name_op_and_shapes():
    with pytest.raises(MXNetError) as e:
        nd.ones((2, 3)) + nd.ones((4,))
    msg = str(e.value)
    assert "broadcast_add" in msg and re.search(_shape_re(2, 3), msg) and re.search(_shape_re(4), msg), msg
    with pytest.raises(MXNetError) as e:
        nd.elemwise_add(nd.ones((2, 3)), nd.ones((3, 2)))
    msg = str(e.value)
    assert "elemwise_add" in msg and re.search(_shape_re(3, 2), msg), msg
    x = nd.ones((2, 3))
    x.attach_grad()
    with ag.record():
        with pytest.raises(MXNetError, match="broadcast_mul"):
            x * nd.ones((5,))


def test_error_messages_for_layers():
    with pytest.raises(MXNetError) as e:
        nd.FullyConnected(nd.ones((2, 3)), nd.ones((4, 5)), nd.ones((4,)), num_hidden=4)
    assert "FullyConnected" in str(e.value)
    with pytest.raises(MXNetError) as e:
        nd.concat(nd.ones((2, 3)), nd.ones((3, 3)), dim=1)
    assert "Concat" in str(e.value) or "concat" in str(e.value)
    with pytest.raises(MXNetError) as e:
        nd.ones((2, 3)).reshape((4, 2))
    assert "eshape" in str(e.value)


# ---------------------------------------------------------------------------------------
# §5 Dropout and BatchNorm: training vs prediction
# ---------------------------------------------------------------------------------------
def test_dropout_predict_is_identity():
    x = nd.array(np.arange(1.0, 7.0).reshape(2, 3))
    close(nd.Dropout(x, p=0.5), x.asnumpy())
    x.attach_grad()
    with ag.record(train_mode=False):
        close(nd.Dropout(x, p=0.5), x.asnumpy())
    with ag.record():
        with ag.predict_mode():
            close(nd.Dropout(x, p=0.5), x.asnumpy())
        close(nd.Dropout(x, p=0.0), x.asnumpy())


def test_dropout_train_statistics_and_gradient():
    mx.random.seed(3)
    x = nd.ones((100, 100))
    x.attach_grad()
    with ag.record():
        y = nd.Dropout(x, p=0.3)
    v = y.asnumpy()
    zero = float(np.mean(v == 0))
    assert abs(zero - 0.3) < 0.03, zero
    np.testing.assert_allclose(v[v != 0], 1 / 0.7, rtol=1e-6)
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), v, rtol=1e-6)   # mask/(1-p) equals output
    with ag.train_mode():                   # training without recording also drops
        z = nd.Dropout(nd.ones((100, 100)), p=0.5).asnumpy()
    assert abs(float(np.mean(z == 0)) - 0.5) < 0.03


def test_batchnorm_modes_and_moving_stats():
    rs = np.random.RandomState(0)
    xv = rs.rand(4, 3) * 4
    data = nd.array(xv)
    gamma, beta = arr(1.5, 0.5, 2.0), arr(0.1, -0.2, 0.3)
    mmean, mvar = nd.zeros((3,)), nd.ones((3,))
    for a in (data, gamma, beta):
        a.attach_grad()
    g, b = gamma.asnumpy(), beta.asnumpy()
    xf = data.asnumpy().astype(np.float64)
    out = nd.BatchNorm(data, gamma, beta, mmean, mvar, fix_gamma=False)
    close(out, xf / np.sqrt(1 + 1e-3) * g + b, 1e-5)
    with ag.record():
        y = nd.BatchNorm(data, gamma, beta, mmean, mvar, fix_gamma=False, momentum=0.9)
    mu, var = xf.mean(axis=0), xf.var(axis=0)
    close(y, (xf - mu) / np.sqrt(var + 1e-3) * g + b, 1e-4)
    close(mmean, [0, 0, 0])                 # not touched by the training forward
    close(mvar, [1, 1, 1])
    y.backward(nd.array(rs.rand(4, 3)))
    close(mmean, 0.1 * mu, 1e-5)            # updated in backward
    close(mvar, 0.9 + 0.1 * var, 1e-5)
    with ag.record(train_mode=False):
        p = nd.BatchNorm(data, gamma, beta, mmean, mvar, fix_gamma=False)
    close(p, (xf - 0.1 * mu) / np.sqrt(0.9 + 0.1 * var + 1e-3) * g + b, 1e-4)


def test_batchnorm_fix_gamma_and_global_stats():
    rs = np.random.RandomState(1)
    data = nd.array(rs.rand(4, 3))
    gamma, beta = arr(1.5, 0.5, 2.0), arr(0.0, 0.0, 0.0)
    mmean, mvar = nd.zeros((3,)), nd.ones((3,))
    for a in (data, gamma, beta):
        a.attach_grad()
    with ag.record():
        y = nd.BatchNorm(data, gamma, beta, mmean, mvar)        # fix_gamma=True
    xf = data.asnumpy().astype(np.float64)
    close(y, (xf - xf.mean(0)) / np.sqrt(xf.var(0) + 1e-3), 1e-4)
    y.backward(nd.array(rs.rand(4, 3)))
    close(gamma.grad, [0, 0, 0])
    with ag.record():
        y = nd.BatchNorm(data, gamma, beta, mmean, mvar, use_global_stats=True, fix_gamma=False)
    before = (mmean.asnumpy().copy(), mvar.asnumpy().copy())
    y.backward()
    close(mmean, before[0])
    close(mvar, before[1])
