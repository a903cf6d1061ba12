"""Generated identifiers for the values of a kernel module.

Note: generated-names
    Values are named from the graph: a variable by its name (``w1``), an op output by its
    MXNet output name with ``_output`` shortened to ``_out`` (``fc0_out``; a backward
    graph's gradient outputs are ``w1_grad``).  Names are *sanitised identifiers*: every
    character outside ``[A-Za-z0-9_]`` becomes ``_``, leading underscores are dropped, a
    leading digit gets a ``v`` prefix, at most 32 characters, never a keyword, builtin,
    kernel-library function, module or scaffolding name (``V``, ``P``, ``ctx``, ``run``,
    ``seg<k>``) nor one the source check refuses, never ending in ``_f`` (the suffix of
    flat views), and made unique with ``_<k>``.  Scaffolding locals all start with ``_``
    (``_n``, ``_i``, ``_t0``, ``_acc0``), so no graph name can shadow them.  Every statement
    is preceded by one comment (node, op, shape, user source line -- all through
    ``safe_text``); backward nodes name the forward node they came from.
"""
import builtins
import keyword
import re

__all__ = ["Namespace"]

_RESERVED = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | frozenset(
    ["np", "math", "K", "V", "P", "ctx", "run", "prange", "njit", "numba", "numpy"])
_SEG = re.compile(r"seg\d+(_par)?\Z")
NAME_LIMIT = 32


class Namespace:
    """Slot -> generated identifier (note *generated-names*)."""

    def __init__(self, node_of_slot, named=None):
        """``named``: slot -> the entry to name it after (a returned gradient aliasing the
        buffer that computes it is named ``w1_grad``, not after that buffer's node).
        ``node_of_slot`` may still grow while code is generated (a schedule's slot_of gives
        a slot to an entry first met there): such slots are named when first asked for."""
        from .kernels import LIBRARY
        from .lower import _FORBIDDEN_NAMES
        self._reserved = _RESERVED | frozenset(LIBRARY) | _FORBIDDEN_NAMES
        self._taken = set()
        self._named = named or {}
        self._node_of_slot = node_of_slot
        self.names = []
        for s in range(len(node_of_slot)):
            self._add(s)

    def _add(self, s):
        n, i = self._named.get(s, self._node_of_slot[s])
        try:
            base = n.output_name(i)
        except Exception:       # an op whose output names need attrs it lacks
            base = "%s_out%d" % (n.name, i)
        if base.endswith("_output"):
            base = base[:-len("_output")] + "_out"
        base = re.sub(r"[^A-Za-z0-9_]", "_", str(base)).lstrip("_")[:NAME_LIMIT]
        if not base or base[0].isdigit():
            base = "v" + base
        if base in self._reserved or _SEG.match(base) or re.search(r"_f\d*\Z", base):
            base += "_"
        name, k = base, 1
        while name in self._taken:
            k += 1
            name = "%s_%d" % (base, k)
        self._taken.add(name)
        self.names.append(name)

    def __getitem__(self, slot):
        while slot >= len(self.names) and slot < len(self._node_of_slot):
            self._add(len(self.names))
        return self.names[slot]
