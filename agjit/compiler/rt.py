"""What generated kernel modules import at run time -- and nothing else.

Every generated module's header imports the names below (agjit.compiler.lower's header), so
this file, not the rest of the JIT runtime, is part of every kernel's cache key
(agjit.compiler.cache ``library_hash``): rewording ``explain()`` or reorganising the runtime
invalidates no cached kernel; changing this file does.
"""
import json
import threading

import numpy as np

from symbol.registry import get_op

__all__ = ["eager_op", "PAR_LOCK"]


class eager_op:
    """An op run through its NumPy kernel inside a replay (generated code calls this).  Its
    outputs are made C-contiguous: compiled segments read them flat (``reshape(-1)``), and
    a NumPy kernel may return a strided result (a transpose, ``astype`` keeping a layout)."""

    def __init__(self, name, attrs_json):
        self.op = get_op(name)
        self.attrs = self.op.parse_attrs(json.loads(attrs_json), strict=False)
        self._forward = self.op.forward

    def forward(self, attrs, ins, ctx):
        out = self._forward(attrs, ins, ctx)
        for k, a in enumerate(out):
            if isinstance(a, np.ndarray) and not a.flags.c_contiguous:
                out = list(out)
                out[k] = np.ascontiguousarray(a)
        return out


# held while a parallel segment variant runs (agjit.compiler.lower note *parallel-loops*)
PAR_LOCK = threading.Lock()
