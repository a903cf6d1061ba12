"""The recording and training flags are thread-local (MXNet keeps them per thread)."""
import threading

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
