"""Lowering: a graph (forward or backward) -> a step list -> generated Python source.

Note: lowering
    The graph is walked in topological order and split into *steps*:

    * ``fused``: a maximal run of elementwise ops (OpDef.lowering is an expression template)
      with one output shape, emitted as ONE loop nest; only values used outside the group are
      written to memory, everything else stays in registers.  Inputs of other shapes are
      broadcast by index: a dimension of size 1 is indexed with 0.  Which dimensions are
      broadcast is part of the kernel key (it is the same for every batch size > 1);
    * ``call``: ops with a hand-written lowering (dot / FullyConnected / batch_dot through
      BLAS, sum / mean, softmax / log_softmax / softmax_cross_entropy row kernels);
    * ``view``: Reshape-like ops, which are free views of their input;
    * ``eager``: anything the lowering cannot handle runs its NumPy kernel inside the replay
      (``explain()`` lists them).

    Consecutive ``fused``/``call`` steps form one ``@njit(cache=True)`` *segment*; a plain
    Python ``run`` function calls the segments, views and eager steps in order.  Kernels read
    every size at run time, so they depend on dtypes, ndims and broadcast patterns, never on
    shapes: a new batch size only needs a new buffer plan (:class:`ShapePlan`).
"""
import ast
import hashlib
import json
import re

import numpy as np

from symbol.ops._lowering import typed_const

__all__ = ["lower_graph", "Lowered"]

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
#     loop reach PAR_WORK, cost = 16 per transcendental call + 1 per other op.  PAR_WORK
#     comes from benchmarks/par_threshold.py: the W2 loop (cost ~60) wins in parallel from
#     ~16k elements on 2 cores (0.79x at 16k, 0.55x at 1M; 1.1x slower at 4k); a cheap
#     loop such as relu needs ~1M elements.  A loop with a full reduction takes the
#     parallel variant from RED_SERIAL_MAX elements whatever its cost, which bounds the
#     float32 partial sums of the serial variant.  Segments with BLAS/row-kernel calls or
#     broadcasting loop nests never run in parallel (Numba's parallel array analysis
#     rejects some of their shape patterns), and a parallel variant that fails to compile
#     falls back to the serial one (runtime, KernelStats.run_counted).  Parallel variants
#     run one at a time per process (runtime.PAR_LOCK): with Numba's workqueue threading
#     layer -- the fallback when neither TBB nor OpenMP loads -- concurrent launches from
#     several Python threads abort the process.
BLOCK = 4096
PAR_WORK = 1 << 20
RED_SERIAL_MAX = 1 << 14
_PRANGE = "_PR_"
_PAR_ONLY = "  #_PAR_"


# Note: untrusted-text
#     Graphs come from model files and traced user code, so node names, attr strings, op
#     names, dtype strings and file names are untrusted text.  None of it reaches generated
#     source as code: identifiers are generated (``v<slot>``, ``seg<k>``, ``t<k>``), numbers
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


_TRANSCENDENTAL = re.compile(r"\b(exp|expm1|log|log1p|tanh|sigmoid|softrelu|sin|cos|tan|"
                             r"sqrt|log2|log10|math\.\w+|np\.(?!float)\w+)\(")


def _loop_cost(nodes):
    """Rough work per element of a fused loop (see the note *parallel-loops*)."""
    cost = 0
    for n in nodes:
        tmpl = _expr_template(n) or ""
        cost += 1 + 16 * len(_TRANSCENDENTAL.findall(tmpl))
    return cost


def _serial_text(text):
    """The serial form of a segment body: each flat loop is ONE loop over all elements (a
    block loop around it keeps LLVM from vectorising this body -- measured 4x slower), its
    partial sums in the loop's dtype (a loop with a reduction reaches the serial variant
    only below RED_SERIAL_MAX elements, so the rounding error of those sums stays small;
    larger ones take the parallel variant, whose blocks bound it)."""
    out = []
    for ln in text.split("\n"):
        if _PRANGE in ln:
            out.append(ln[:len(ln) - len(ln.lstrip())] + "if True:")
        elif ln.endswith(_PAR_ONLY):
            body = ln[:-len(_PAR_ONLY)]
            if body.lstrip().startswith("for i in range(j0_, j1_):"):
                out.append(body.replace("range(j0_, j1_)", "range(n_)"))
            # j0_ / j1_ assignments are dropped
        else:
            out.append(ln)
    return "\n".join(out)

def _expr_template(node, shapes=None, dtypes=None):
    """The scalar expression template of a fusible node, or None.  A callable lowering may
    return a template (a string) for the attrs/shapes where the op is elementwise, e.g. a
    gradient helper whose operand already has the output's shape."""
    low = node.op.lowering if node.op is not None else None
    if isinstance(low, dict):
        key = node.parsed.get("act_type")
        low = low.get(key)
    if callable(low) and shapes is not None:
        low = _call_lines(node, shapes, dtypes)
    if not isinstance(low, str) or low == "view":
        return None
    return low


class Lowered:
    """Result of lowering: source text + the metadata the runtime needs."""

    def __init__(self, source, n_slots, given_slots, out_slots, buffer_slots, view_slots,
                 eager_notes, node_of_slot, digest, par_segments=()):
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


def _shape_str(shape, dtype):
    short = {"float32": "f32", "float64": "f64", "float16": "f16", "int32": "i32",
             "int64": "i64", "uint8": "u8", "int8": "i8", "bool": "b"}.get(dtype, dtype)
    return "%s[%s]" % (short, ",".join(str(d) for d in shape))


def lower_graph(order, heads, given, shapes, dtypes, provenance=None, name="graph",
                interpret=False, ones=()):
    """Lower a graph.

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
    ones = set((n, i) for n, i in ones)
    provenance = provenance or {}
    slot = {}
    node_of_slot = []

    alias = {}            # (node, 0) of a shape-preserving view -> its input entry
    produced = set()      # entries computed into buffers by this kernel's loops and calls
    aliased_src = set()   # entries already returned through an aliased gradient output

    def slot_of(e):
        k = (e[0], e[1])
        a = alias.get(k)
        if a is not None:
            return slot_of(a)
        s = slot.get(k)
        if s is None:
            s = len(node_of_slot)
            slot[k] = s
            node_of_slot.append((e[0], e[1]))
        return s

    given_slots = [slot_of(e) for e in given]
    given_ids = set((n, i) for n, i in given)
    # consumers, to know which fused values escape their group
    uses = {}
    for n in order:
        for (src, i, _v) in n.inputs:
            uses.setdefault((src, i), []).append(n)
    head_keys = set((n, i) for n, i in heads)

    steps = []            # ("fused", [nodes]) | ("call", node) | ("view", node) | ("eager", node)
    cur = []
    cur_shape = None

    cur_red = set()       # ids of the reductions accumulated by the open loop

    def close():
        nonlocal cur, cur_shape
        if cur:
            steps.append(("fused", cur))
        cur, cur_shape = [], None
        cur_red.clear()

    for n in order:
        if n.op is None:
            continue
        if all((n, i) in given_ids for i in range(n.num_outputs())):
            continue          # value supplied by the caller (saved forward value)
        kind = _classify(n, shapes, dtypes)
        if n.op.name == "_gradient_output" and kind == "fused" and not interpret:
            src, si, _v = n.inputs[0]
            k = (src, si)
            while k in alias:               # through same-shape views
                k = alias[k]
            if k in produced and k not in head_keys and k not in aliased_src and \
                    tuple(shapes.get(k) or ()) == tuple(shapes.get((n, 0)) or ()):
                # the gradient is already in a buffer of this kernel that nothing else
                # returns: return that buffer instead of copying it
                alias[(n, 0)] = (src, si)
                aliased_src.add(k)
                continue
        if kind == "view" and not interpret:
            src, si, _v = n.inputs[0]
            ishape, oshape = shapes.get((src, si)), shapes.get((n, 0))
            if ishape is not None and tuple(ishape) == tuple(oshape) and \
                    dtypes.get((src, si)) == dtypes.get((n, 0)):
                # a reshape to the same shape (FullyConnected's weight gradient, flatten of
                # 2-D data): the same slot, no step -- so no segment split either
                alias[(n, 0)] = (src, si)
                continue
        if interpret and kind in ("fused", "call"):
            kind = "eager"
        if kind in ("fused", "call"):
            for i in range(n.num_outputs()):
                produced.add((n, i))
        if kind == "fused":
            oshape = shapes.get((n, 0))
            # join the open loop unless it reads a reduction of that same loop (available
            # only after the loop)
            if cur and oshape == cur_shape and len(cur) < MAX_FUSED_NODES and not any(
                    id(src) in cur_red for (src, _i, _v) in n.inputs):
                cur.append(n)
            else:
                close()
                cur, cur_shape = [n], oshape
        elif kind == "call" and cur and len(cur) < MAX_FUSED_NODES and \
                _fusible_reduction(n, cur, cur_shape, shapes):
            cur.append(n)     # a full sum/mean of a loop value: accumulated inside the loop
            cur_red.add(id(n))
        else:
            close()
            steps.append((kind, n))
    close()

    # which values must be materialised
    member = {}
    for k, st in enumerate(steps):
        if st[0] == "fused":
            for n in st[1]:
                member[id(n)] = k
    out_slots = [slot_of(e) for e in heads]
    buffer_slots, view_slots = [], []
    materialised = set()
    for k, st in enumerate(steps):
        if st[0] == "fused":
            for n in st[1]:
                key = (n, 0)
                escapes = key in head_keys or any(member.get(id(c)) != k for c in uses.get(key, []))
                if escapes:
                    materialised.add(key)
                    buffer_slots.append(slot_of((n, 0)))
        elif st[0] == "call":
            for i in range(st[1].num_outputs()):
                materialised.add((st[1], i))
                buffer_slots.append(slot_of((st[1], i)))
        else:
            for i in range(st[1].num_outputs()):
                materialised.add((st[1], i))
                s = slot_of((st[1], i))
                if st[0] == "view":
                    view_slots.append(s)

    # ---- code generation -------------------------------------------------------------
    lines = []
    seg_defs = []
    run_body = []
    eager_notes = []
    eager_globals = []
    seg = []              # steps of the open segment
    sizes = []            # loop-size arguments ("v<slot>") of the open segment's flat loops
    par_segments = []     # (segment index, size slots) of segments with a parallel variant
    counter = [0]

    def flush():
        if not seg:
            return
        idx = len(seg_defs)
        body, args = [], []
        argset = {}

        def arg(s):
            if s not in argset:
                argset[s] = "v%d" % s
                args.append(s)
            return argset[s]

        for st in seg:
            body.extend(_gen_step(st, arg, slot_of, shapes, dtypes, materialised, provenance,
                                  counter, sizes, ones))
        fname = "seg%d" % idx
        # an accumulator only vectorises if LLVM may reassociate the sum (vmath functions
        # keep their own flags when inlined, so special values stay right)
        fm = ", fastmath={'reassoc'}" if any("acc" in b and "+=" in b for b in body) else ""
        params = ", ".join("v%d" % s for s in args)
        text = "\n".join("    " + b for b in body)
        seg_defs.append("@njit(cache=True, nogil=True, error_model='numpy'%s)\ndef %s(%s):" % (
            fm, fname, params) + "\n%s\n" % _serial_text(text))
        call_args = ", ".join("V[%d]" % s for s in args)
        if sizes and len(sizes) == len(seg):
            # the parallel variant (compiled on its first use) of a segment made only of
            # flat loops: run when the work of one of them reaches PAR_WORK (decided per
            # buffer plan; see the note *parallel-loops*)
            seg_defs.append("@njit(cache=True, nogil=True, error_model='numpy', "
                            "parallel=True%s)\ndef %s_par(%s):" % (fm, fname, params)
                            + "\n%s\n" % text.replace(_PRANGE, "prange").replace(_PAR_ONLY, ""))
            par_segments.append((idx, [(int(v[1:]), c, r) for v, c, r in sizes]))
            # one parallel kernel at a time per process: Numba's fallback threading layer
            # (workqueue, used when neither TBB nor OpenMP loads) aborts the process on
            # concurrent launches from several Python threads
            run_body.append("    if P['par%d']:" % idx)
            run_body.append("        with _PAR_LOCK:")
            run_body.append("            %s_par(%s)" % (fname, call_args))
            run_body.append("    else:")
            run_body.append("        %s(%s)" % (fname, call_args))
        else:
            run_body.append("    %s(%s)" % (fname, call_args))
        seg.clear()
        sizes.clear()
        seg_cost[0] = 0

    seg_cost = [0]
    for st in steps:
        if st[0] in ("fused", "call"):
            cost = len(st[1]) if st[0] == "fused" else 8
            if seg and seg_cost[0] + cost > MAX_SEGMENT_LINES:
                flush()
            seg.append(st)
            seg_cost[0] += cost
            if len(seg) >= MAX_SEGMENT_STEPS:
                flush()
            continue
        flush()
        n = st[1]
        ins = ", ".join("V[%d]" % slot_of((s, i)) for (s, i, _v) in n.inputs)
        outs = [slot_of((n, i)) for i in range(n.num_outputs())]
        run_body.append("    " + _comment(n, shapes, dtypes, provenance))
        if st[0] == "view":
            run_body.append("    V[%d] = np.reshape(V[%d], P[%d])" % (outs[0], slot_of(n.inputs[0][:2]), outs[0]))
            continue
        g = "_E%d" % len(eager_globals)
        # ascii(): a pure-ASCII literal whatever the op name and attr strings hold
        eager_globals.append("%s = _eager(%s, %s)" % (g, ascii(str(n.op.name)), ascii(
            json.dumps(n.attrs, sort_keys=True, ensure_ascii=True))))
        if not interpret:
            eager_notes.append("%s (%s): runs eagerly (%s)" % (safe_text(n.name), safe_text(n.op.name), _why_eager(n)))
        tmp = "_r"
        run_body.append("    %s = %s.forward(%s.attrs, [%s], ctx)" % (tmp, g, g, ins))
        for i, s in enumerate(outs):
            run_body.append("    V[%d] = %s[%d]" % (s, tmp, i))
    flush()

    header = [
        "# Generated by agjit.jit for graph %s -- do not edit (content-addressed)." % safe_text(name),
        "# One statement (or loop) per node; comments give op, shape and source line of the",
        "# trace that first generated this file (kernels read every size at run time).",
        "import math",
        "import numpy as np",
        "from numba import prange",
        "from agjit.compiler.numba_cache import njit",
        "from agjit.compiler import kernels as K",
        "from agjit.compiler.kernels import (sqrt, sin, cos, tan, relu, sign, floor, ceil, round, "
        "log2, log10, mod)",
        "from agjit.compiler.vmath import exp, expm1, log, log1p, tanh, sigmoid, softrelu",
        "from agjit.compiler.rt import eager_op as _eager, PAR_LOCK as _PAR_LOCK",
        "",
    ]
    src = "\n".join(header) + "\n".join(eager_globals) + ("\n\n" if eager_globals else "\n") \
        + "\n\n".join(seg_defs) + "\n\ndef run(V, P, ctx):\n" + ("\n".join(run_body) or "    pass") + "\n"
    check_source(src)
    digest = code_digest(src)
    return Lowered(src, len(node_of_slot), given_slots, out_slots, buffer_slots, view_slots,
                   eager_notes, node_of_slot, digest, par_segments)


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


def _classify(n, shapes, dtypes):
    """'view', 'fused', 'call' or 'eager' for one node (see the module note)."""
    op = n.op
    if op.lowering == "view" and n.num_outputs() == 1 and shapes.get((n, 0)) is not None:
        return "view"
    dt = dtypes.get((n, 0))
    if dt not in ("float32", "float64"):
        return "eager"
    for (s, i, _v) in n.inputs:
        if dtypes.get((s, i)) != dt:
            return "eager"
    if _expr_template(n, shapes, dtypes) is not None and n.num_outputs() == 1:
        oshape = shapes.get((n, 0))
        if oshape is None:
            return "eager"
        for (s, i, _v) in n.inputs:
            ishape = shapes.get((s, i))
            if ishape is None or len(ishape) > len(oshape):
                return "eager"
            for a, b in zip(ishape[::-1], oshape[::-1]):
                if a != b and a != 1:
                    return "eager"
        return "fused"
    if callable(op.lowering) and isinstance(_call_lines(n, shapes, dtypes), list):
        return "call"
    return "eager"


_PLACE_IN = "__IN%d__"
_PLACE_OUT = "__OUT%d__"
_call_cache = {}


def _call_lines(n, shapes, dtypes):
    """The op's callable lowering with placeholder names: a list of statements, a fusible
    expression template (str), or None (not supported here)."""
    from symbol.ops._lowering import LowerCtx
    in_shapes = [shapes.get((s, i)) for (s, i, _v) in n.inputs]
    out_shapes = [shapes.get((n, i)) for i in range(n.num_outputs())]
    # the lines depend on the shapes and dtype too: one node is lowered with other shapes
    # when a symbol is bound again with other input shapes
    key = (n, tuple(map(_hashable, in_shapes)), tuple(map(_hashable, out_shapes)),
           dtypes.get((n, 0)))
    hit = _call_cache.get(key, _call_cache)
    if hit is not _call_cache:
        return hit
    if any(x is None for x in in_shapes) or any(x is None for x in out_shapes):
        lines = None
    else:
        ctx = LowerCtx(n, [_PLACE_IN % k for k in range(len(in_shapes))],
                       [_PLACE_OUT % k for k in range(len(out_shapes))], in_shapes, out_shapes,
                       dtypes.get((n, 0)), [0])
        lines = n.op.lowering(ctx)
    if len(_call_cache) > 4096:
        _call_cache.clear()
    _call_cache[key] = lines
    return lines


def _hashable(shape):
    return None if shape is None else tuple(shape)


# ---------------------------------------------------------------------------------------
def _gen_step(st, arg, slot_of, shapes, dtypes, materialised, provenance, counter,
              size_slots, ones):
    if st[0] == "fused":
        return _gen_fused(st[1], arg, slot_of, shapes, dtypes, materialised, provenance,
                          size_slots, ones)
    return _gen_call(st[1], arg, slot_of, shapes, dtypes, provenance, counter)


def _comment(n, shapes, dtypes, provenance):
    """One comment line for a node: every part taken from the graph (node name, op name,
    dtype, the user's file name) goes through :func:`safe_text` (see the note
    *untrusted-text*)."""
    text = "%s %s -> %s  %s" % (safe_text(n.name), safe_text(n.op.name), safe_text(_shape_str(
        shapes.get((n, 0), ()), dtypes.get((n, 0), "?"))),
        safe_text(provenance.get(n, ""), 160))
    return ("# " + text).rstrip()


def _is_reduction(n):
    return n.op is not None and n.op.name in ("sum", "mean")


def _fusible_reduction(n, group, gshape, shapes):
    """A sum/mean over every axis of a value computed by the open loop, where the loop has
    an input of the loop's full shape to read its sizes from."""
    from symbol.ops.reduce import reduce_axes
    if not _is_reduction(n) or len(n.inputs) != 1:
        return False
    src, i, _v = n.inputs[0]
    ids = set(id(m) for m in group)
    if id(src) not in ids or _is_reduction(src) or tuple(shapes.get((src, i)) or ()) != tuple(gshape):
        return False
    nd = len(gshape)
    if nd == 0 or reduce_axes(n.op.name, nd, n.parsed["axis"], n.parsed["exclude"]) != \
            tuple(range(nd)):
        return False
    return any(tuple(shapes.get((s, k)) or ()) == tuple(gshape)
               for m in group for (s, k, _v) in m.inputs if id(s) not in ids)


_FLOAT_LIT = re.compile(r"(?<![\w.{])(\d+\.\d+)")


def _gen_fused(nodes, arg, slot_of, shapes, dtypes, materialised, provenance, size_slots,
               ones):
    ids = set(id(n) for n in nodes)
    reds = [n for n in nodes if _is_reduction(n)]
    oshape = shapes[(nodes[0], 0)]
    nd = len(oshape)
    dt = dtypes[(nodes[0], 0)]
    # the loop-size source: the first materialised member, else an input of the full shape
    size_src = None
    for n in nodes:
        if (n, 0) in materialised and not _is_reduction(n):
            size_src = arg(slot_of((n, 0)))
            break
    if size_src is None:
        for n in nodes:
            for (s, i, _v) in n.inputs:
                if id(s) not in ids and tuple(shapes[(s, i)]) == tuple(oshape):
                    size_src = arg(slot_of((s, i)))
                    break
            if size_src is not None:
                break
    lines = []
    for n in nodes:
        lines.append(_comment(n, shapes, dtypes, provenance).rstrip())
    flat = True
    ext_inputs = []
    for n in nodes:
        for (s, i, _v) in n.inputs:
            if id(s) in ids or _is_reduction(n) or (s, i) in ones:
                continue
            ishape = shapes[(s, i)]
            if tuple(ishape) != tuple(oshape):
                flat = False
            ext_inputs.append((s, i))
    if nd == 0:
        flat = True
    loopvars = ["i%d" % k for k in range(nd)]
    ind = ""
    if flat:
        lines.append("n_ = %s.size" % size_src)
        views = {}
        for (s, i) in ext_inputs:
            v = arg(slot_of((s, i)))
            if v not in views:
                views[v] = "%s_f" % v
                lines.append("%s_f = %s.reshape(-1)" % (v, v))
        for n in nodes:
            if (n, 0) in materialised and not _is_reduction(n):
                v = arg(slot_of((n, 0)))
                if v not in views:
                    views[v] = "%s_f" % v
                    lines.append("%s_f = %s.reshape(-1)" % (v, v))
        for r, n in enumerate(reds):
            lines.append("acc%d = 0.0" % r)
        # blocks of BLOCK elements: a block's partial sums stay in the loop's dtype (a
        # float64 accumulator would halve the vector width of a float32 loop) and are
        # added in float64; the block loop is ``prange`` in the parallel variant
        lines.append("for jb_ in %s((n_ + %d) // %d):" % (_PRANGE, BLOCK - 1, BLOCK))
        lines.append("    j0_ = jb_ * %d%s" % (BLOCK, _PAR_ONLY))
        lines.append("    j1_ = min(j0_ + %d, n_)%s" % (BLOCK, _PAR_ONLY))
        for r, n in enumerate(reds):
            lines.append("    bacc%d = %s" % (r, typed_const(0.0, dt)))
        lines.append("    for i in range(j0_, j1_):%s" % _PAR_ONLY)
        ind = "        "
        size_slots.append((size_src, _loop_cost(nodes), bool(reds)))

        def ref(s, i):
            return "%s_f[i]" % arg(slot_of((s, i)))

        def store(n):
            return "%s_f[i]" % arg(slot_of((n, 0)))
    else:
        for r, n in enumerate(reds):
            lines.append("acc%d = 0.0" % r)
        for k in range(nd):
            lines.append("%sfor %s in range(%s.shape[%d]):" % (ind, loopvars[k], size_src, k))
            ind += "    "

        def ref(s, i):
            ishape = shapes[(s, i)]
            k0 = nd - len(ishape)
            idx = []
            for d, sz in enumerate(ishape):
                if sz == 1 and oshape[k0 + d] != 1:
                    idx.append("0")
                else:
                    idx.append(loopvars[k0 + d])
            if not idx:
                return "%s[()]" % arg(slot_of((s, i)))
            return "%s[%s]" % (arg(slot_of((s, i))), ", ".join(idx))

        def store(n):
            return "%s[%s]" % (arg(slot_of((n, 0))), ", ".join(loopvars)) if loopvars else \
                "%s[()]" % arg(slot_of((n, 0)))
    local = {}
    for n in nodes:
        if _is_reduction(n):
            (s, i, _v), = n.inputs
            lines.append("%s%sacc%d += %s" % (ind, "b" if flat else "", reds.index(n),
                                              local[id(s)]))
            continue
        ops = []
        for (s, i, _v) in n.inputs:
            if id(s) in ids:
                ops.append(local[id(s)])
            elif (s, i) in ones:
                ops.append(typed_const(1.0, dt))
            else:
                ops.append(ref(s, i))
        tmpl = _expr_template(n, shapes, dtypes)
        consts = {}
        for k, v in n.parsed.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                consts[k] = typed_const(v, dt)
        if "scalar" in n.parsed:
            consts["s"] = typed_const(n.parsed["scalar"], dt)
        if n.op.variadic:
            expr = "(" + " + ".join(ops) + ")"
        else:
            # bare float literals would turn float32 loops into float64 maths
            tmpl = _FLOAT_LIT.sub(lambda m: "np.%s(%s)" % (dt, m.group(1)), tmpl)
            expr = tmpl.format(*ops, **consts)
        t = "t%d" % len(local)
        local[id(n)] = t
        lines.append("%s%s = %s" % (ind, t, expr))
        if (n, 0) in materialised:
            lines.append("%s%s = %s" % (ind, store(n), t))
    if flat:
        for r, n in enumerate(reds):
            lines.append("    acc%d += bacc%d" % (r, r))
    for r, n in enumerate(reds):
        scale = " / %s.size" % size_src if n.op.name == "mean" else ""
        lines.append("%s.reshape(-1)[0] = acc%d%s" % (arg(slot_of((n, 0))), r, scale))
    return lines


def _gen_call(n, arg, slot_of, shapes, dtypes, provenance, counter):
    lines = _call_lines(n, shapes, dtypes)
    names = {}
    for k, (s, i, _v) in enumerate(n.inputs):
        names[_PLACE_IN % k] = arg(slot_of((s, i)))
    for i in range(n.num_outputs()):
        names[_PLACE_OUT % i] = arg(slot_of((n, i)))
    # local names made unique across the whole segment (one Numba function)
    counter[0] += 1
    tag = "_n%d" % counter[0]
    out = [_comment(n, shapes, dtypes, provenance).rstrip()]
    for ln in lines:
        ln = re.sub(r"__(IN|OUT)\d+__", lambda m: names[m.group(0)], ln)
        ln = re.sub(r"\b([a-z]+_\d+)\b", lambda m: m.group(1) + tag, ln)
        out.append(ln)
    return out
