"""The hook through which ``Symbol.bind`` / ``simple_bind`` / ``eval`` reach an executor.

Executors run compiled kernels, which are agjit's (agjit/executor.py, ``mx.executor``), and
``symbol`` never imports agjit.  So agjit installs its executor module here when it is
imported (:func:`set_executor_factory`); without it, binding raises MXNetError while
everything else in ``symbol`` (building, serialising, inferring graphs) works.
"""
from .base import MXNetError

__all__ = ["set_executor_factory", "executor_factory", "bind", "simple_bind", "eval"]

_FACTORY = []


def set_executor_factory(factory):
    """Install the executor implementation: an object (agjit.executor) with
    ``bind(sym, ctx, args, ...)``, ``simple_bind(sym, ctx, ...)`` and ``eval(sym, ctx, ...)``
    taking MXNet's ``Symbol.bind`` / ``simple_bind`` / ``eval`` arguments."""
    _FACTORY[:] = [factory]


def executor_factory():
    """The installed executor implementation; MXNetError when there is none."""
    if not _FACTORY:
        raise MXNetError("Symbol.bind / simple_bind / eval need agjit's executors: import agjit "
                         "(the symbol package alone builds, serialises and infers graphs)")
    return _FACTORY[0]


def bind(sym, ctx, args, **kwargs):
    """``Symbol.bind`` (see agjit.executor.bind)."""
    return executor_factory().bind(sym, ctx, args, **kwargs)


def simple_bind(sym, ctx, **kwargs):
    """``Symbol.simple_bind`` (see agjit.executor.simple_bind)."""
    return executor_factory().simple_bind(sym, ctx, **kwargs)


def eval(sym, ctx=None, **kwargs):
    """``Symbol.eval`` (see agjit.executor.eval)."""
    return executor_factory().eval(sym, ctx=ctx, **kwargs)
