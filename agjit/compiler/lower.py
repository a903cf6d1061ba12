"""Lowering: a graph (forward or backward) -> a schedule -> generated Python source.

The stages, one module each: ``oplower`` reads an op's typed lowering (symbol.lowering
note *lowering-contract*) and resolves its kernel-library references; ``schedule`` splits
the graph into steps, fusion groups, buffers and segments; ``codegen`` writes the module
(names, comments, the line -> node map, imports derived from what the schedule uses);
this module checks the text (note *untrusted-text*) and returns :class:`Lowered`;
``lint`` checks the typed state between stages (tests run it after every pass).

Note: lowering
    The graph is walked in topological order and split into *steps*:

    * ``fused``: a maximal run of elementwise ops (an ``Elementwise`` lowering, or a
      ``KernelCall`` that returns a template for these shapes) with one output shape,
      emitted as ONE loop nest; only values used outside the group are
      written to memory, everything else stays in registers.  Inputs of other shapes are
      broadcast by index: a dimension of size 1 is indexed with 0.  Which dimensions are
      broadcast is part of the kernel key (it is the same for every batch size > 1); a full
      ``Reduction`` (sum / mean) of a loop value is accumulated inside the loop, and an
      ``Alias`` (``_gradient_output``) of a buffer nothing else returns is that buffer;
    * ``call``: ``KernelCall`` lowerings (dot / FullyConnected / batch_dot through
      BLAS, sum / mean, softmax / log_softmax / softmax_cross_entropy row kernels);
    * ``view``: ``View`` lowerings (Reshape-like ops), free views of their input;
    * ``eager``: anything the lowering cannot handle runs its NumPy kernel inside the replay
      (``explain()`` lists them).

    Consecutive ``fused``/``call`` steps form one ``@njit(cache=True)`` *segment*; a plain
    Python ``run`` function calls the segments, views and eager steps in order.  Kernels read
    every size at run time, so they depend on dtypes, ndims and broadcast patterns, never on
    shapes: a new batch size only needs a new buffer plan (:class:`ShapePlan`).
"""
import ast
import hashlib
import re

from . import oplower

__all__ = ["lower_graph", "Lowered", "check_source", "safe_text", "code_digest"]

# LLVM's optimisation time grows faster than linearly with function size: long graphs are
# split into segments of at most MAX_SEGMENT_STEPS steps and MAX_SEGMENT_LINES generated
# statements (one Numba function each), and a fused loop holds at most MAX_FUSED_NODES ops
# (a longer elementwise chain becomes several loops, its joints materialised).  So every
# Numba function is bounded and compile time grows linearly with the graph (measured for a
# chain of N elementwise ops, compile + first call: 1000 ops 13.9 s and 2000 ops 225 s in
# one loop before the bound; see the README's untrusted-files section for the numbers after).
MAX_SEGMENT_STEPS = 8
MAX_SEGMENT_LINES = 600
MAX_FUSED_NODES = 500
# Note: parallel-loops
#     A segment made only of flat fused loops (same-shape operands, read as 1-D) also gets
#     a parallel variant: each loop runs in blocks of BLOCK elements with the block loop a
#     ``prange``, partial sums per block in the loop's dtype, added in float64.  The serial
#     variant keeps one plain loop (a block loop around it stopped LLVM vectorising it,
#     measured 4x slower) with its partial sums in the loop's dtype.  Which variant runs is
#     decided per buffer plan (shapes are fixed there): parallel when elements x cost of a
#     loop reach PAR_WORK, cost = per op 1 + the declared costs of the kernel-library
#     functions it calls (agjit.compiler.kernels note *kernel-library*: 16 per
#     transcendental) or its Elementwise's own ``cost``.  PAR_WORK
#     comes from benchmarks/par_threshold.py: the W2 loop (cost ~60) wins in parallel from
#     ~16k elements on 2 cores (0.79x at 16k, 0.55x at 1M; 1.1x slower at 4k); a cheap
#     loop such as relu needs ~1M elements.  A loop with a full reduction takes the
#     parallel variant from RED_SERIAL_MAX elements whatever its cost, which bounds the
#     float32 partial sums of the serial variant.  Segments with BLAS/row-kernel calls or
#     broadcasting loop nests never run in parallel (Numba's parallel array analysis
#     rejects some of their shape patterns), and a parallel variant that fails to compile
#     falls back to the serial one (signature.KernelStats.run_counted).  Parallel variants
#     run one at a time per process (rt.PAR_LOCK): with Numba's workqueue threading
#     layer -- the fallback when neither TBB nor OpenMP loads -- concurrent launches from
#     several Python threads abort the process.
BLOCK = 4096
PAR_WORK = 1 << 20
RED_SERIAL_MAX = 1 << 14


# Note: untrusted-text
#     Graphs come from model files and traced user code, so node names, attr strings, op
#     names, dtype strings and file names are untrusted text.  None of it reaches generated
#     source as code: identifiers are generated (sanitised names, agjit.compiler.codegen
#     note *generated-names*; ``seg<k>``, ``_t<k>``), numbers
#     are written by ``typed_const``/``%d``, the eager steps' op name and attrs are
#     ``ascii()`` literals of a JSON string, and comments hold only :func:`safe_text` of it
#     (printable ASCII, no backslash, at most ``limit`` characters, ``coding`` defused so no
#     line is read as an encoding declaration).  :func:`check_source` then verifies the whole
#     source before anything compiles it: printable ASCII and newlines only, it parses, it
#     imports only the kernel library, no string constant outside the eager steps but short
#     identifier-like ones (decorator options), no dunder or reflective name.  A failure
#     raises MXNetError (the kernel is never run).
_SAFE_LIMIT = 80
_SAFE_CHARS = frozenset(chr(c) for c in range(0x20, 0x7f)) - {"\\"}


def safe_text(text, limit=_SAFE_LIMIT):
    """``text`` made safe for a comment of generated source: characters outside printable
    ASCII (and the backslash) become ``?``, ``coding`` becomes ``c?ding``, and the result is
    cut to ``limit`` characters (``...`` marks a cut)."""
    text = str(text)
    if len(text) > limit * 4:
        text = text[:limit * 4]
    out = "".join(ch if ch in _SAFE_CHARS else "?" for ch in text)
    out = re.sub(r"(?i)c(o)(ding)", lambda m: m.group(0)[0] + "?" + m.group(2), out)
    if len(out) > limit:
        out = out[:max(limit - 3, 0)] + "..."
    return out


# the module generated code imports eager_op / PAR_LOCK from
RUNTIME_MODULE = "agjit.compiler.rt"
_ALLOWED_IMPORTS = frozenset(["math", "numpy", "numba", "agjit.compiler.kernels",
                              "agjit.compiler.vmath", "agjit.compiler.rt",
                              "agjit.compiler.numba_cache", "agjit.compiler"])
_FORBIDDEN_NAMES = frozenset(["exec", "eval", "compile", "open", "getattr", "setattr",
                              "delattr", "globals", "locals", "vars", "input", "breakpoint",
                              "memoryview", "type", "object", "help", "exit", "quit", "os",
                              "sys", "subprocess", "builtins", "importlib", "chr", "bytes",
                              "bytearray", "tofile", "fromfile", "save", "savez", "load",
                              "loadtxt", "savetxt", "genfromtxt", "memmap", "open_memmap",
                              "system", "popen", "ctypes", "ctypeslib", "pickle"])
# short identifier-like strings (decorator options, P['par0'], a lowering's mode names) are
# inert without a reflective name to use them; anything longer or with other characters is
# refused outside the eager steps' literals
_ALLOWED_STR = re.compile(r"\A[A-Za-z0-9_.]{0,32}\Z")


def check_source(src):
    """Verify generated kernel source before it is compiled (see the note *untrusted-text*);
    raises MXNetError naming the first violation."""
    from symbol.base import MXNetError

    def bad(why):
        raise MXNetError("agjit.jit: generated kernel source failed its safety check (%s); "
                         "the kernel is not run" % why)

    for k, ch in enumerate(src):
        if ch != "\n" and not (" " <= ch <= "~"):
            bad("character %r at offset %d" % (ch, k))
    for ln in src.split("\n")[:2]:
        if re.match(r"^[ \t\f]*#.*?coding[:=]", ln):
            bad("an encoding declaration")
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        bad("syntax error: %s" % safe_text(e))
    eager_args = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for m in mods:
                if m not in _ALLOWED_IMPORTS:
                    bad("import of %s" % safe_text(m))
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                isinstance(node.value.func, ast.Name) and node.value.func.id == "_eager":
            for a in node.value.args:
                if isinstance(a, ast.Constant) and isinstance(a.value, str):
                    eager_args.add(id(a))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and node not in tree.body:
            bad("a nested import")
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            if id(node) not in eager_args and not (isinstance(node.value, str) and
                                                   _ALLOWED_STR.match(node.value)):
                bad("string constant %s" % safe_text(ascii(node.value)))
        name = node.id if isinstance(node, ast.Name) else \
            node.attr if isinstance(node, ast.Attribute) else None
        if name is not None and (name.startswith("__") or name in _FORBIDDEN_NAMES):
            bad("name %s" % safe_text(name))
        if isinstance(node, (ast.Lambda, ast.ClassDef, ast.Global, ast.Nonlocal, ast.Await,
                             ast.AsyncFunctionDef, ast.With)) and \
                not (isinstance(node, ast.With) and _is_par_lock(node)):
            bad("a %s statement" % type(node).__name__)


def _is_par_lock(node):
    return len(node.items) == 1 and isinstance(node.items[0].context_expr, ast.Name) and \
        node.items[0].context_expr.id == "_PAR_LOCK"


class Lowered:
    """Result of lowering: source text + the metadata the runtime needs.

    ``line_nodes[k]`` is the node line ``k + 1`` of ``source`` was generated for (None for
    scaffolding): :meth:`node_at` maps a traceback's line number back to the graph (the
    kernel cache writes two header lines above ``source`` in the file: pass
    ``offset=2`` for a line number of the file)."""

    def __init__(self, source, n_slots, given_slots, out_slots, buffer_slots, view_slots,
                 eager_notes, node_of_slot, digest, par_segments=(), line_nodes=(),
                 names=(), life=None, pinned=()):
        self.source = source
        self.n_slots = n_slots
        self.given_slots = given_slots      # slots the caller fills, in order
        self.out_slots = out_slots          # slots returned, in order
        self.buffer_slots = buffer_slots    # slots needing a preallocated buffer
        self.view_slots = view_slots
        self.eager_notes = eager_notes      # ["node_3 (Dropout): no lowering", ...]
        self.node_of_slot = node_of_slot    # slot -> (Node, index)
        self.digest = digest
        self.par_segments = par_segments    # [(segment index, [loop-size slots])]
        self.line_nodes = tuple(line_nodes)
        self.names = tuple(names)           # slot -> generated identifier
        # buffer slot -> (first, last) step using it; buffers a result may view (schedule
        # note *buffer-liveness*)
        self.life = dict(life or {})
        self.pinned = frozenset(pinned)

    def node_at(self, lineno, offset=0):
        """The node generated line ``lineno`` (1-based, as in a traceback; ``offset`` lines
        of header above ``source``) belongs to, or None."""
        k = int(lineno) - 1 - offset
        return self.line_nodes[k] if 0 <= k < len(self.line_nodes) else None


def _shape_str(shape, dtype):
    short = {"float32": "f32", "float64": "f64", "float16": "f16", "int32": "i32",
             "int64": "i64", "uint8": "u8", "int8": "i8", "bool": "b"}.get(dtype, dtype)
    return "%s[%s]" % (short, ",".join(str(d) for d in shape))




def lower_graph(order, heads, given, shapes, dtypes, provenance=None, name="graph",
                interpret=False, ones=()):
    """Lower a graph: schedule it (agjit.compiler.schedule), generate its source
    (agjit.compiler.codegen) and check that source (note *untrusted-text*).

    order:   nodes in topological order (every node reachable from ``heads``);
    heads:   list of (Node, index) entries to return;
    given:   list of (Node, index) entries supplied by the caller (variables, and for backward
             graphs the saved forward values), in argument order;
    shapes, dtypes: dict (node, index) -> shape / dtype name at trace time (used only
             for the broadcast pattern and comments; kernels read sizes at run time);
    provenance: dict node -> "file:line" of the user's code;
    interpret: run every op through its NumPy kernel (no Numba compile): the first tier of
             executors, which are often run only once or twice;
    ones:    given entries known to hold only ones (the head gradients of a step kernel):
             fused loops use the constant 1 instead of reading them.
    """
    from .schedule import schedule
    from .codegen import generate
    sc = schedule(order, heads, given, shapes, dtypes, interpret=interpret, ones=ones)
    src, line_nodes, par_segments, eager_notes, names = generate(
        sc, shapes, dtypes, provenance or {}, name, interpret)
    check_source(src)
    return Lowered(src, len(sc.node_of_slot), sc.given_slots, sc.out_slots, sc.buffer_slots,
                   sc.view_slots, eager_notes, sc.node_of_slot, code_digest(src), par_segments,
                   line_nodes, names, sc.life, sc.pinned)


def _classify(n, shapes, dtypes):
    """'view', 'fused', 'call' or 'eager' for one node (the runtime's save decisions)."""
    return oplower.classify(n, shapes, dtypes)


def code_digest(source):
    """Hash of the generated code without its comments: comments carry the shapes and source
    lines of the trace that generated the file, which must not change the kernel's identity
    (a new batch size reuses the same kernel)."""
    code = "\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith("#"))
    return hashlib.sha256(code.encode()).hexdigest()


def _why_eager(n):
    if n.op.lowering is None and not n.op.lowerable:
        return "the op has no lowering"
    return "no lowering for these attributes/shapes"
