"""The recording and training flags are thread-local (MXNet keeps them per thread)."""
import threading

import pytest

import numpy as np

import agjit as mx
from agjit import autograd as ag


def _run_threads(*targets):
    errors = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as e:      # surfaced in the main thread below
                errors.append(e)
        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


def test_flags_are_thread_local():
    barrier = threading.Barrier(2, timeout=10)
    seen = {}

    def recorder():
        with ag.record():
            barrier.wait()                  # 1: both threads are inside their scopes
            seen["recorder"] = (ag.is_recording(), ag.is_training())
            barrier.wait()                  # 2: both have looked
        seen["recorder_after"] = (ag.is_recording(), ag.is_training())

    def predictor():
        with ag.train_mode():
            barrier.wait()
            seen["predictor"] = (ag.is_recording(), ag.is_training())
            barrier.wait()
        seen["predictor_after"] = (ag.is_recording(), ag.is_training())

    _run_threads(recorder, predictor)
    assert seen == {"recorder": (True, True), "recorder_after": (False, False),
                    "predictor": (False, True), "predictor_after": (False, False)}


def test_new_thread_starts_with_defaults_and_main_is_untouched():
    seen = {}
    ag.set_recording(True)
    ag.set_training(True)

    def child():
        seen["child_start"] = (ag.is_recording(), ag.is_training())
        ag.set_recording(True)
        ag.set_training(False)

    _run_threads(child)
    assert seen["child_start"] == (False, False)
    assert (ag.is_recording(), ag.is_training()) == (True, True)


def test_recording_in_one_thread_does_not_record_in_another():
    barrier = threading.Barrier(2, timeout=10)
    out = {}

    def recorder():
        x = mx.nd.array([1.0, 2.0])
        x.attach_grad()
        with ag.record():
            barrier.wait()
            y = x * x
            barrier.wait()
        y.backward()
        out["grad"] = x.grad.asnumpy()

    def plain():
        x = mx.nd.array([3.0, 4.0])
        x.attach_grad()
        barrier.wait()                      # the other thread is recording now
        y = x * x
        barrier.wait()
        try:
            ag.get_symbol(y)
            out["plain"] = "recorded"
        except mx.MXNetError:
            out["plain"] = "not recorded"

    _run_threads(recorder, plain)
    np.testing.assert_allclose(out["grad"], [2.0, 4.0])
    assert out["plain"] == "not recorded"


# ---------------------------------------------------------------------------------------
# compiled replays, executors and optimizers under threads (issue 10 item 5)
# ---------------------------------------------------------------------------------------
N_THREADS = 4
TIME_BUDGET = 2.0           # seconds per stress test, whatever the machine's speed


def _stress(work, n_iter):
    """Run ``work(k, it)`` for it < n_iter in N_THREADS threads started together; a thread
    stops early once the time budget is spent (after at least a few iterations)."""
    import time
    barrier = threading.Barrier(N_THREADS, timeout=60)
    done = []

    def target(k):
        def run():
            barrier.wait()
            t0 = time.perf_counter()
            for it in range(n_iter):
                work(k, it)
                if it >= 20 and time.perf_counter() - t0 > TIME_BUDGET:
                    break
            done.append((k, it + 1))
        return run

    _run_threads(*[target(k) for k in range(N_THREADS)])
    assert len(done) == N_THREADS


def _net(x, w1, w2):
    return mx.nd.tanh(x * w1 + w2) * x


def _per_thread_data(seed):
    rs = np.random.RandomState(seed)
    return [rs.randn(8, 12).astype(np.float32) for _ in range(N_THREADS)], \
        rs.randn(8, 12).astype(np.float32), rs.randn(12).astype(np.float32)


def test_one_jitted_function_forward_from_many_threads():
    """Each thread gets its own result (one persistent output buffer set per kernel, shared
    by every caller, gave a thread another thread's values)."""
    f = mx.jit(_net)
    xs, w1, w2 = _per_thread_data(0)
    W1, W2 = mx.nd.array(w1), mx.nd.array(w2)
    refs = [np.tanh(x * w1 + w2) * x for x in xs]
    f(mx.nd.array(xs[0]), W1, W2)                       # compile outside the threads
    bad = []

    def work(k, it):
        out = f(mx.nd.array(xs[k]), W1, W2).asnumpy()
        if not np.allclose(out, refs[k], rtol=1e-5, atol=1e-5):
            bad.append((k, it))

    _stress(work, 400)
    assert not bad, "%d calls returned another thread's result, e.g. %s" % (len(bad), bad[:3])


def _eager_grads(fn, args, head, n_grad):
    ws = [a.copy() for a in args[1:]]
    for w in ws[:n_grad]:
        w.attach_grad()
    with ag.record():
        y = fn(args[0], *ws)
    y.backward(head)
    return y.asnumpy(), [w.grad.asnumpy() for w in ws[:n_grad]]


def _loss(x, w1, w2):
    return mx.nd.sum(_net(x, w1, w2) ** 2)


def _bn_loss(x, w1, g, b, mm, mv):
    h = mx.nd.BatchNorm(x * w1, g, b, mm, mv, fix_gamma=False, use_global_stats=True)
    return mx.nd.sum(h * h)


@pytest.mark.parametrize("kind", ["step", "head_grad", "batchnorm"])
def test_recorded_jitted_calls_and_backward_from_many_threads(kind):
    """Several threads x many recorded jitted calls + backward of ONE jitted function, each
    gradient compared with that thread's eager reference.  ``step``: step mode (head
    gradient of ones); ``head_grad``: another head gradient, so the training forward +
    backward kernels; ``batchnorm``: a graph with a mode-dependent op (never step mode)."""
    xs, w1, w2 = _per_thread_data(1)
    if kind == "batchnorm":
        rs = np.random.RandomState(2)
        extra = [rs.rand(12).astype(np.float32) + 0.5, rs.randn(12).astype(np.float32),
                 rs.randn(12).astype(np.float32) * 0.1, rs.rand(12).astype(np.float32) + 0.5]
        fn, params, n_grad = _bn_loss, [w1] + extra, 3
    else:
        fn, params, n_grad = _loss, [w1, w2], 2
    head = None if kind == "step" else mx.nd.array([0.5])
    refs = [_eager_grads(fn, [mx.nd.array(x)] + [mx.nd.array(p) for p in params], head,
                         n_grad) for x in xs]
    f = mx.jit(fn)
    # every thread has its own parameter arrays (gradients are per variable)
    thread_params = [[mx.nd.array(p) for p in params] for _ in range(N_THREADS)]
    for ps in thread_params:
        for p in ps[:n_grad]:
            p.attach_grad()
    with ag.record():
        y = f(mx.nd.array(xs[0]), *thread_params[0])
    y.backward(head)                                    # compile outside the threads
    bad = []

    def work(k, it):
        x = mx.nd.array(xs[k])
        ps = thread_params[k]
        with ag.record():
            y = f(x, *ps)
        y.backward(head)
        want_y, want_g = refs[k]
        if not np.allclose(y.asnumpy(), want_y, rtol=1e-4, atol=1e-4):
            bad.append((k, it, "loss"))
        for j, (p, w) in enumerate(zip(ps[:n_grad], want_g)):
            if not np.allclose(p.grad.asnumpy(), w, rtol=1e-4, atol=1e-4):
                bad.append((k, it, "grad%d" % j))

    _stress(work, 300)
    assert not bad, "%d wrong results, e.g. %s" % (len(bad), bad[:3])


def test_optimizer_updates_from_many_threads_equal_a_serial_run():
    """Trainer.step / Updater calls through one optimizer from several threads at once
    run one at a time: Adam's update count and the fused kernel's scratch arrays are
    shared, so the weights equal those of the same number of serial steps."""
    def run(threads):
        w = mx.nd.array(np.linspace(-1, 1, 64).astype(np.float32).reshape(8, 8))
        w.attach_grad()
        w.grad[:] = np.linspace(0.5, 2, 64).astype(np.float32).reshape(8, 8)
        trainer = mx.Trainer([w], "adam", {"learning_rate": 0.01})
        upd = mx.optimizer.get_updater(mx.optimizer.Adam(learning_rate=0.01))
        v = mx.nd.array(np.linspace(-1, 1, 16).astype(np.float32))
        gv = mx.nd.array(np.linspace(0.5, 2, 16).astype(np.float32))
        n = 60

        def work():
            for _ in range(n):
                trainer.step(1)
                upd([0], [gv], [v])
        if threads:
            barrier = threading.Barrier(N_THREADS, timeout=30)

            def target():
                barrier.wait()
                work()
            _run_threads(*[target] * N_THREADS)
        else:
            for _ in range(N_THREADS):
                work()
        return w.asnumpy(), v.asnumpy(), trainer.optimizer.num_update

    serial = run(False)
    threaded = run(True)
    assert threaded[2] == serial[2] == N_THREADS * 60
    np.testing.assert_array_equal(threaded[0], serial[0])
    np.testing.assert_array_equal(threaded[1], serial[1])


def _executor():
    data = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(data, num_hidden=3, name="fc")
    ex = net.simple_bind(mx.cpu(), data=(2, 4))
    ex.arg_dict["data"][:] = np.arange(8, dtype=np.float32).reshape(2, 4)
    ex.arg_dict["fc_weight"][:] = 0.1
    return ex


def test_executor_refuses_concurrent_use():
    """An executor is one set of arrays: a call while another thread is inside forward or
    backward raises MXNetError instead of mixing the two threads' values."""
    ex = _executor()
    out = {}
    ex._busy.acquire()                  # as if another thread were inside forward
    try:
        def other():
            for what, call in (("forward", lambda: ex.forward(is_train=True)),
                               ("backward", lambda: ex.backward(mx.nd.ones((2, 3))))):
                try:
                    call()
                    out[what] = "ran"
                except mx.MXNetError as e:
                    out[what] = str(e)
        _run_threads(other)
    finally:
        ex._busy.release()
    for what in ("forward", "backward"):
        assert "running forward/backward in another thread" in out[what], out[what]
    ex.forward(is_train=True)           # free again
    ex.backward(mx.nd.ones((2, 3)))


def test_executor_refuses_backward_after_another_threads_forward():
    """Thread A forward, thread B forward, thread A backward would give A the gradients of
    B's forward: refused.  B's backward, and a plain hand-over of the executor to a thread
    that ran no forward, are fine."""
    ex = _executor()
    steps = [threading.Event() for _ in range(4)]
    out = {}

    def a():
        ex.forward(is_train=True)
        steps[0].set()
        steps[1].wait(10)
        try:
            ex.backward(mx.nd.ones((2, 3)))
            out["a"] = "ran"
        except mx.MXNetError as e:
            out["a"] = str(e)
        steps[2].set()

    def b():
        steps[0].wait(10)
        ex.forward(is_train=True)
        steps[1].set()
        steps[2].wait(10)
        ex.backward(mx.nd.ones((2, 3)))
        out["b"] = "ran"

    _run_threads(a, b)
    assert "another thread ran forward on this executor" in out["a"]
    assert out["b"] == "ran"

    def handed_over():
        ex.backward(mx.nd.ones((2, 3)))
        out["c"] = "ran"
    _run_threads(handed_over)
    assert out["c"] == "ran"
    np.testing.assert_allclose(ex.grad_dict["fc_weight"].asnumpy(),
                               np.ones((3, 2)) @ np.arange(8).reshape(2, 4))
