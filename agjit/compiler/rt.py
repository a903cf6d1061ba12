"""What generated kernel modules import at run time -- and nothing else.

Every generated module's header imports the names below (agjit.compiler.lower's header), so
this file, not the rest of the JIT runtime, is part of every kernel's cache key
(agjit.compiler.cache ``library_hash``): rewording ``explain()`` or reorganising the runtime
invalidates no cached kernel; changing this file does.
"""
import json
import threading

from symbol.registry import get_op

__all__ = ["eager_op", "PAR_LOCK"]


class eager_op:
    """An op run through its NumPy kernel inside a replay (generated code calls this)."""

    def __init__(self, name, attrs_json):
        self.op = get_op(name)
        self.attrs = self.op.parse_attrs(json.loads(attrs_json), strict=False)
        self.forward = self.op.forward


# held while a parallel segment variant runs (agjit.compiler.lower note *parallel-loops*)
PAR_LOCK = threading.Lock()
