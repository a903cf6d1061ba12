"""Code generation: a :class:`agjit.compiler.schedule.Schedule` -> the source of one kernel
module (see agjit.compiler.lower notes *lowering*, *parallel-loops*, *untrusted-text*).

Names come from agjit.compiler.names (note *generated-names*).  Every statement block
follows one comment (node, op, shape, user source line -- all through ``safe_text``);
backward nodes name the forward node they came from (symbol.autodiff note
*backward-provenance*).
"""
import ast
import json
import re

from symbol.ops._lowering import typed_const
from . import oplower
from .names import Namespace
from .schedule import Segment

__all__ = ["generate"]

_FLOAT_LIT = re.compile(r"(?<![\w.{])(\d+\.\d+)")
_PLACE = re.compile(r"__(IN|OUT)(\d+)__|__T(\d+)_([a-z]+)__|__R_([a-z]+)__")
# a KernelCall's per-run values (symbol.ops._lowering ``LowerCtx.runtime``): the segment
# parameter that holds it, and what the run function passes for it
RUNTIME_ARGS = {"train": ("_rt_train", "ctx.is_train"), "rng": ("_rt_rng", "ctx.rng")}


class Out:
    """Generated lines, each with the node it belongs to (the line -> node map)."""

    def __init__(self):
        self.lines = []
        self.nodes = []

    def add(self, text, node=None):
        self.lines.append(text)
        self.nodes.append(node)

    def extend(self, other, indent=""):
        for t, n in zip(other.lines, other.nodes):
            self.add(indent + t if t else t, n)


def comment(n, shapes, dtypes, provenance):
    """One comment line for a node: every part taken from the graph (node name, op name,
    dtype, the user's file name) goes through safe_text (lower note *untrusted-text*)."""
    from .lower import safe_text, _shape_str
    text = "%s %s -> %s" % (safe_text(n.name), safe_text(n.op.name), safe_text(_shape_str(
        shapes.get((n, 0), ()), dtypes.get((n, 0), "?"))))
    fwd = _forward_of(n)
    if fwd is not None:
        text += "  (grad of %s)" % safe_text(fwd.name)
    prov = provenance.get(n) or (provenance.get(fwd, "") if fwd is not None else "")
    text += "  " + safe_text(prov, 160)
    return ("# " + text).rstrip()


def _forward_of(n):
    from symbol.autodiff import forward_node
    return forward_node(n)


class _Gen:
    def __init__(self, sc, shapes, dtypes, provenance, names):
        self.sc, self.shapes, self.dtypes, self.prov = sc, shapes, dtypes, provenance
        self.ns = names
        self.lib = set()        # kernel-library names the module imports
        self.mods = set()       # np / math
        self.counter = 0        # segment-wide counter of a KernelCall's locals
        self.runtime = set()    # per-run values (RUNTIME_ARGS) the segment's calls read

    def name(self, e):
        return self.ns[self.sc.slot_of(e)]

    def comment(self, n):
        return comment(n, self.shapes, self.dtypes, self.prov)

    def use(self, refs):
        for r in refs:
            ref = oplower.resolve(r)
            if ref.module == "np" or ref.module == "math":
                self.mods.add(ref.module)
            elif ref.module is not None:
                self.lib.add(ref.name)

    # -- a fused loop -----------------------------------------------------------------
    def fused(self, st, par):
        """One loop nest; ``par``: the block loop of the parallel variant (flat loops)."""
        from .lower import safe_text, _shape_str
        sc, shapes, dtypes = self.sc, self.shapes, self.dtypes
        nodes = st.nodes
        ids = set(id(n) for n in nodes)
        reds = [n for n in nodes if oplower.is_reduction(n)]
        oshape, nd = st.shape, len(st.shape)
        dt = dtypes[(nodes[0], 0)]
        size_src = self.name(st.size_entry)
        out = Out()
        first = nodes[0]
        loopvars = ["_i%d" % k for k in range(nd)]
        ind = ""
        out.add("# loop over %s: %d op(s)%s" % (
            safe_text(_shape_str(oshape, dt)), len(nodes),
            ", operands read flat" if st.flat else ", broadcast by index"), first)
        if st.flat:
            out.add("_n = %s.size" % size_src, first)
            views = {}
            ents = list(st.ext_inputs) + [(n, 0) for n in nodes if (n, 0) in sc.materialised
                                          and not oplower.is_reduction(n)]
            for e in ents:
                v = self.name(e)
                if v not in views:
                    views[v] = v + "_f"
                    out.add("%s_f = %s.reshape(-1)" % (v, v), e[0] if e[0] in ids else first)
            for r, n in enumerate(reds):
                out.add("_acc%d = 0.0" % r, n)
            if par:
                # blocks of BLOCK elements: a block's partial sums stay in the loop's dtype
                # (a float64 accumulator would halve the vector width of a float32 loop) and
                # are added in float64
                from .lower import BLOCK
                out.add("for _jb in prange((_n + %d) // %d):" % (BLOCK - 1, BLOCK), first)
                out.add("    _j0 = _jb * %d" % BLOCK, first)
                out.add("    _j1 = min(_j0 + %d, _n)" % BLOCK, first)
                ind = "    "
            for r, n in enumerate(reds):
                out.add("%s_bacc%d = %s" % (ind, r, typed_const(0.0, dt)), n)
            # the serial variant is ONE loop over all elements (a block loop around it kept
            # LLVM from vectorising it -- measured 4x slower); its partial sums stay in the
            # loop's dtype only below RED_SERIAL_MAX elements (lower note *parallel-loops*)
            out.add("%sfor _i in range(%s):" % (ind, "_j0, _j1" if par else "_n"), first)
            ind += "    "

            def ref(s, i):
                return "%s_f[_i]" % self.name((s, i))

            def store(n):
                return "%s_f[_i]" % self.name((n, 0))
        else:
            for r, n in enumerate(reds):
                out.add("_acc%d = 0.0" % r, n)
            for k in range(nd):
                out.add("%sfor %s in range(%s.shape[%d]):" % (ind, loopvars[k], size_src, k),
                        first)
                ind += "    "

            def ref(s, i):
                ishape = shapes[(s, i)]
                k0 = nd - len(ishape)
                idx = []
                for d, sz in enumerate(ishape):
                    idx.append("0" if sz == 1 and oshape[k0 + d] != 1 else loopvars[k0 + d])
                if not idx:
                    return "%s[()]" % self.name((s, i))
                return "%s[%s]" % (self.name((s, i)), ", ".join(idx))

            def store(n):
                v = self.name((n, 0))
                return "%s[%s]" % (v, ", ".join(loopvars)) if loopvars else "%s[()]" % v
        local = {}
        for n in nodes:
            out.add(ind + self.comment(n), n)
            if oplower.is_reduction(n):
                (s, i, _v), = n.inputs
                out.add("%s%sacc%d += %s" % (ind, "_b" if st.flat else "_", reds.index(n),
                                             local[id(s)]), n)
                continue
            ops = []
            for (s, i, _v) in n.inputs:
                if id(s) in ids:
                    ops.append(local[id(s)])
                elif (s, i) in sc.ones:
                    ops.append(typed_const(1.0, dt))
                else:
                    ops.append(ref(s, i))
            low = oplower.expr_lowering(n, shapes, dtypes)
            self.use(low.refs())
            if low.nary:
                expr = "(" + " + ".join(ops) + ")"
            else:
                consts = {}
                for k, v in n.parsed.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        consts[k] = typed_const(v, dt)
                if "scalar" in n.parsed:
                    consts["s"] = typed_const(n.parsed["scalar"], dt)
                # bare float literals would turn float32 loops into float64 maths
                tmpl = _FLOAT_LIT.sub(lambda m: "np.%s(%s)" % (dt, m.group(1)), low.template)
                expr = _call_names(tmpl).format(*ops, **consts)
            t = "_t%d" % len(local)
            local[id(n)] = t
            out.add("%s%s = %s" % (ind, t, expr), n)
            if (n, 0) in sc.materialised:
                out.add("%s%s = %s" % (ind, store(n), t), n)
        if st.flat:
            for r, n in enumerate(reds):
                out.add("%s_acc%d += _bacc%d" % ("    " if par else "", r, r), n)
        for r, n in enumerate(reds):
            scale = " / %s.size" % size_src if oplower.node_lowering(n).mean else ""
            out.add("%s.reshape(-1)[0] = _acc%d%s" % (self.name((n, 0)), r, scale), n)
        return out

    # -- a kernel call ----------------------------------------------------------------
    def call(self, st):
        n = st.node
        got = oplower.call_lines(n, self.shapes, self.dtypes)
        self.use(got.used)
        names = {}
        for k, (s, i, _v) in enumerate(n.inputs):
            names[("IN", k)] = self.name((s, i))
        for i in range(n.num_outputs()):
            names[("OUT", i)] = self.name((n, i))
        tmps = {}

        def sub(m):
            if m.group(1):
                return names[(m.group(1), int(m.group(2)))]
            if m.group(5):
                self.runtime.add(m.group(5))
                return RUNTIME_ARGS[m.group(5)][0]
            key = (m.group(3), m.group(4))
            if key not in tmps:
                self.counter += 1
                tmps[key] = "_%s%d" % (m.group(4), self.counter)
            return tmps[key]
        out = Out()
        out.add(self.comment(n), n)
        for ln in got.lines:
            out.add(self._library_call(_PLACE.sub(sub, ln)), n)
        return out

    def _library_call(self, ln):
        """A KernelCall statement as compiled (note *one-specialisation*): ``np.dot(a, b,
        out)`` goes through the library's ``gemm``, and a bare int or bool literal passed to
        a library function is typed (``np.int64(3)``)."""
        m = _NP_DOT.match(ln)
        if m and _top_level_args(m.group(2)) == 3:
            self.lib.add("gemm")
            ln = "%sgemm(%s)" % (m.group(1), m.group(2))
        if not _INT_ARG.search(ln):
            return ln
        from .kernels import LIBRARY
        body = ln.lstrip()
        try:
            tree = ast.parse(body)
        except SyntaxError:
            return ln
        changed = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id in LIBRARY:
                for k, a in enumerate(node.args):
                    if isinstance(a, ast.Constant) and type(a.value) in (int, bool):
                        node.args[k] = ast.Call(
                            ast.Attribute(ast.Name("np", ast.Load()),
                                          "int64" if type(a.value) is int else "bool_",
                                          ast.Load()), [a], [])
                        changed = True
        if not changed:
            return ln
        self.mods.add("np")
        return ln[:len(ln) - len(body)] + ast.unparse(tree)

    # -- a segment ----------------------------------------------------------------------
    def segment(self, seg, par):
        body = Out()
        for st in seg.steps:
            body.extend(self.fused(st, par) if st.kind == "fused" else self.call(st))
        return body


# Note: one-specialisation
#     Numba compiles a dispatcher once per argument-type tuple, and types a bare literal
#     argument as its literal value: a library call ``k(x, out, 3)`` generated for one layer
#     and ``k(x, out, 5)`` for another were two compiles of ``k``.  Literal ints and bools
#     passed to library functions are therefore written ``np.int64(3)`` / ``np.bool_(True)``
#     (one specialisation per dtype and rank serves every layer).  And ``np.dot(a, b, out)``
#     of the BLAS lowerings calls the library's ``gemm`` (the same np.dot, one level down):
#     Numba's np.dot implementation is compiled once per machine inside ``gemm``'s cached
#     code instead of in every process that compiles a new segment.
_NP_DOT = re.compile(r"^(\s*)np\.dot\((.*)\)\s*$")
_INT_ARG = re.compile(r"[(,]\s*(\d+|True|False)\s*[,)]")


def _top_level_args(text):
    depth, n = 0, 1
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                return -1
        elif ch == "," and depth == 0:
            n += 1
    return n if depth == 0 else -1


def _call_names(template):
    """``K.name(`` in a template is the library function ``name`` (imported by name)."""
    return re.sub(r"\bK\.(?=[A-Za-z_])", "", template)


def _seg_args(gen, seg):
    """The slots a segment reads or writes, in first-use order."""
    sc = gen.sc
    slots = []
    seen = set()

    def add(e):
        s = sc.slot_of(e)
        if s not in seen:
            seen.add(s)
            slots.append(s)
    for st in seg.steps:
        if st.kind == "fused":
            ids = set(id(n) for n in st.nodes)
            add(st.size_entry)
            for n in st.nodes:
                for (s, i, _v) in n.inputs:
                    if id(s) not in ids and (s, i) not in sc.ones and \
                            not oplower.is_reduction(n):
                        add((s, i))
                if (n, 0) in sc.materialised or oplower.is_reduction(n):
                    add((n, 0))
        else:
            n = st.node
            for (s, i, _v) in n.inputs:
                add((s, i))
            for i in range(n.num_outputs()):
                add((n, i))
    return slots


class _Module:
    """The parts of one generated module: segment definitions, the run function, eager
    globals and what the header must import."""

    def __init__(self, gen):
        self.gen = gen
        self.defs, self.run, self.eager_globals = Out(), Out(), Out()
        self.eager_notes = []
        self.par_segments = []
        self.any_par = False

    def _copy_only(self, seg):
        """(node, source slot, destination slot) when segment ``seg`` is one copy loop (an
        Alias of a value it cannot be, e.g. a gradient output from an eager step), else
        None: such a segment is ``np.copyto`` in ``run``, not a Numba function to compile."""
        sc, shapes, dtypes = self.gen.sc, self.gen.shapes, self.gen.dtypes
        if len(seg.steps) != 1 or seg.steps[0].kind != "fused":
            return None
        st = seg.steps[0]
        if len(st.nodes) != 1 or not oplower.is_alias(st.nodes[0]):
            return None
        n = st.nodes[0]
        s, i, _v = n.inputs[0]
        if (s, i) in sc.ones or (n, 0) not in sc.materialised or \
                shapes.get((s, i)) != shapes.get((n, 0)) or \
                dtypes.get((s, i)) != dtypes.get((n, 0)):
            return None
        return n, sc.slot_of((s, i)), sc.slot_of((n, 0))

    def segment(self, seg):
        from .lower import safe_text
        gen, sc = self.gen, self.gen.sc
        copy = self._copy_only(seg)
        if copy is not None:
            n, src, dst = copy
            self.run.add("    " + gen.comment(n), n)
            self.run.add("    np.copyto(V[%d], V[%d])" % (dst, src), n)
            return
        fname = "seg%d" % seg.index
        gen.counter = 0
        gen.runtime = set()
        body = gen.segment(seg, False)
        args = _seg_args(gen, seg)
        extra = sorted(gen.runtime)
        params = ", ".join([gen.ns[s] for s in args] + [RUNTIME_ARGS[r][0] for r in extra])
        # an accumulator only vectorises if LLVM may reassociate the sum (vmath functions
        # keep their own flags when inlined, so special values stay right)
        fm = ", fastmath={'reassoc'}" if any(
            st.kind == "fused" and any(oplower.is_reduction(n) for n in st.nodes)
            for st in seg.steps) else ""
        what = ", ".join(safe_text(n.name, 24) for st in seg.steps for n in st.nodes[:3])
        self._define("# segment %d: %s" % (seg.index, safe_text(what)),
                     "@njit(cache=True, nogil=True, error_model='numpy'%s)" % fm,
                     "def %s(%s):" % (fname, params), body)
        call_args = ", ".join(["V[%d]" % s for s in args] + [RUNTIME_ARGS[r][1] for r in extra])
        self.run.add("    # %s(%s)" % (fname, safe_text(params, 200)))
        if not seg.parallel:
            self.run.add("    %s(%s)" % (fname, call_args))
            return
        self.any_par = True
        gen.counter = 0
        self._define("# segment %d, parallel variant (run when the work reaches PAR_WORK)"
                     % seg.index,
                     "@njit(cache=True, nogil=True, error_model='numpy', parallel=True%s)" % fm,
                     "def %s_par(%s):" % (fname, params), gen.segment(seg, True))
        self.par_segments.append((seg.index, [
            (sc.slot_of(st.size_entry), st.cost, any(oplower.is_reduction(n) for n in st.nodes))
            for st in seg.steps]))
        # one parallel kernel at a time per process: Numba's fallback threading layer
        # (workqueue, used when neither TBB nor OpenMP loads) aborts the process on
        # concurrent launches from several Python threads
        self.run.add("    if P['par%d']:" % seg.index)
        self.run.add("        with _PAR_LOCK:")
        self.run.add("            %s_par(%s)" % (fname, call_args))
        self.run.add("    else:")
        self.run.add("        %s(%s)" % (fname, call_args))

    def _define(self, comment_line, decorator, signature, body):
        for ln in ("", "", comment_line, decorator, signature):
            self.defs.add(ln)
        self.defs.extend(body, "    ")

    def step(self, st):
        """A view or an eager step, run from Python."""
        from .lower import safe_text, _why_eager
        gen, sc = self.gen, self.gen.sc
        n = st.node
        ins = ", ".join("V[%d]" % sc.slot_of((s, i)) for (s, i, _v) in n.inputs)
        outs = [sc.slot_of((n, i)) for i in range(n.num_outputs())]
        self.run.add("    " + gen.comment(n), n)
        if st.kind == "view":
            self.run.add("    V[%d] = np.reshape(V[%d], P[%d])" % (
                outs[0], sc.slot_of(n.inputs[0][:2]), outs[0]), n)
            return
        g = "_E%d" % len(self.eager_notes)
        # ascii(): a pure-ASCII literal whatever the op name and attr strings hold
        self.eager_globals.add("%s = _eager(%s, %s)" % (g, ascii(str(n.op.name)), ascii(
            json.dumps(n.attrs, sort_keys=True, ensure_ascii=True))), n)
        self.eager_notes.append("%s (%s): runs eagerly (%s)" % (
            safe_text(n.name), safe_text(n.op.name), _why_eager(n)))
        self.run.add("    _r = %s.forward(%s.attrs, [%s], ctx)" % (g, g, ins), n)
        for i, s in enumerate(outs):
            self.run.add("    V[%d] = _r[%d]" % (s, i), n)

    def header(self, name):
        """Comment lines and exactly the imports the schedule uses."""
        from .lower import safe_text, RUNTIME_MODULE
        gen = self.gen
        head = Out()
        head.add("# Generated by agjit.jit for graph %s -- do not edit (content-addressed)."
                 % safe_text(name))
        head.add("# Values are named after the graph (sanitised); each statement follows a "
                 "comment")
        head.add("# giving node, op, shape and source line of the trace that first generated "
                 "this")
        head.add("# file (kernels read every size at run time).")
        if "math" in gen.mods:
            head.add("import math")
        head.add("import numpy as np")
        if self.any_par:
            head.add("from numba import prange")
        if self.defs.lines:
            head.add("from agjit.compiler.numba_cache import njit")
        if gen.lib:
            head.add("from agjit.compiler.kernels import %s" % ", ".join(sorted(gen.lib)))
        rt = (["eager_op as _eager"] if self.eager_globals.lines else []) + \
            (["PAR_LOCK as _PAR_LOCK"] if self.any_par else [])
        if rt:
            head.add("from %s import %s" % (RUNTIME_MODULE, ", ".join(rt)))
        if self.eager_globals.lines:
            head.add("")
            head.extend(self.eager_globals)
        return head


def generate(sc, shapes, dtypes, provenance, name, interpret):
    """(source, line -> node list, par_segments, eager notes, slot names) for a schedule."""
    named = {}
    for (n, i) in sc.heads:
        s = sc.slot_of((n, i))
        if s not in named and sc.node_of_slot[s] != (n, i) and s not in sc.given_slots:
            named[s] = (n, i)
    names = Namespace(sc.node_of_slot, named)
    mod = _Module(_Gen(sc, shapes, dtypes, provenance, names))
    for item in sc.items:
        if isinstance(item, Segment):
            mod.segment(item)
        else:
            mod.step(item)
    src = Out()
    src.extend(mod.header(name))
    src.extend(mod.defs)
    for ln in ("", "", "def run(V, P, ctx):"):
        src.add(ln)
    if mod.run.lines:
        src.extend(mod.run)
    else:
        src.add("    pass")
    return ("\n".join(src.lines) + "\n", tuple(src.nodes), mod.par_segments,
            [] if interpret else mod.eager_notes, names.names)
