"""Device contexts.  agjit runs on the CPU; ``mx.gpu()`` exists so MXNet programs import, and
any attempt to place data on it raises a clear MXNetError."""
import threading

from symbol.base import MXNetError

__all__ = ["Context", "cpu", "gpu", "cpu_pinned", "num_gpus", "current_context"]


class Context:
    """A device context (``cpu(0)``).  Usable as a ``with`` scope like MXNet's."""

    devtype2str = {1: "cpu", 2: "gpu", 3: "cpu_pinned"}

    def __init__(self, device_type="cpu", device_id=0):
        if isinstance(device_type, Context):
            device_type, device_id = device_type.device_type, device_type.device_id
        self.device_type = device_type
        self.device_id = device_id

    def __eq__(self, other):
        return isinstance(other, Context) and (self.device_type, self.device_id) == (
            other.device_type, other.device_id)

    def __hash__(self):
        return hash((self.device_type, self.device_id))

    def __repr__(self):
        return "%s(%d)" % (self.device_type, self.device_id)

    __str__ = __repr__

    # ``with ctx:`` makes ctx the current context (mx.current_context()), per thread
    _default_ctx = threading.local()

    def __enter__(self):
        if not hasattr(Context._default_ctx, "stack"):
            Context._default_ctx.stack = []
        Context._default_ctx.stack.append(self)
        return self

    def __exit__(self, *exc):
        Context._default_ctx.stack.pop()
        return False


def cpu(device_id=0):
    return Context("cpu", device_id)


def cpu_pinned(device_id=0):
    return Context("cpu_pinned", device_id)


def gpu(device_id=0):
    return Context("gpu", device_id)


def num_gpus():
    return 0


def current_context():
    """The context of the innermost ``with ctx:`` block of this thread (``cpu(0)`` outside
    any)."""
    stack = getattr(Context._default_ctx, "stack", None)
    return stack[-1] if stack else cpu(0)


def check_context(ctx, where="array"):
    """Refuse non-CPU contexts with a message that says why."""
    if ctx is None:
        return
    if isinstance(ctx, str):
        ctx = Context(ctx)
    if not isinstance(ctx, Context):
        raise MXNetError("%s: ctx must be a Context such as mx.cpu(), got %r" % (where, ctx))
    if ctx.device_type == "gpu":
        raise MXNetError("%s: %r is not available: agjit runs on the CPU only (mx.context.num_gpus() "
                         "is 0); use mx.cpu()" % (where, ctx))
