"""The ``agjit`` command (also ``python -m agjit``).

::

    agjit inspect MODEL-symbol.json [--shape data=1,784 ...] [--params MODEL-0000.params]
    agjit inspect MODEL-0000.params
    agjit draw MODEL-symbol.json -o graph.png|graph.svg|graph.pdf|graph.dot [--shape ...]
    agjit demo [ARGS...]
    agjit launch -n N [--hostfile F] [--mpirun-arg ARG ...] script.py [ARGS...]

``inspect`` prints a symbol's node table with the shapes inferred from ``--shape`` (and from
the arrays of ``--params``, when given) and the parameter count of every operator; given a
``.params`` file it lists the arrays in it.  ``draw`` writes Graphviz DOT text (``.dot``) or
a matplotlib drawing (any other extension matplotlib can save); no system Graphviz is needed.
``launch`` runs ``script.py`` on N MPI ranks through ``mpirun``, each output line prefixed
with ``[rank]``, and exits with mpirun's status (agjit.kvstore.launch note *kv-launch*).

Errors (bad arguments, unreadable or corrupt files) print one line on stderr and exit with a
non-zero status: 2 for command-line usage errors (argparse), 1 for everything else.  Set
``AGJIT_DEBUG=1`` to get the traceback instead.
"""
import argparse
import os
import sys

__all__ = ["main", "build_parser"]

_PARAMS_MAGIC = (0x112).to_bytes(8, "little")


class CLIError(Exception):
    """A failure to report as one line (exit status 1)."""


# ---------------------------------------------------------------------------------------
# argument helpers
# ---------------------------------------------------------------------------------------
def _shape_arg(text):
    """``name=d1,d2,...`` -> (name, (d1, d2, ...))."""
    name, sep, dims = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=D1,D2,... (e.g. data=1,784), got %r"
                                         % text)
    dims = dims.strip().strip("()[]")
    try:
        shape = tuple(int(d) for d in dims.split(",") if d.strip()) if dims else ()
    except ValueError:
        raise argparse.ArgumentTypeError("dimensions of %r must be integers, got %r"
                                         % (name, dims)) from None
    if any(d <= 0 for d in shape):
        raise argparse.ArgumentTypeError("dimensions of %r must be positive, got %r"
                                         % (name, dims))
    return name, shape


def _is_params_file(path):
    try:
        with open(path, "rb") as f:
            return f.read(8) == _PARAMS_MAGIC
    except OSError:
        return False


def _load_symbol(path):
    import symbol as _sym
    from symbol.base import MXNetError
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise CLIError("cannot read %s: %s" % (path, e.strerror or e)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CLIError("%s is not a symbol JSON file (not UTF-8 text: %s)" % (path, e)) from None
    if not text.strip():
        raise CLIError("%s is empty, not a symbol JSON file" % path)
    try:
        return _sym.load_json(text)
    except MXNetError as e:
        raise CLIError("%s is not a valid symbol JSON file: %s" % (path, _one_line(e))) from None


def _load_params(path):
    from . import ndarray as nd
    data = nd.load(path)
    if isinstance(data, list):
        return {"%d" % k: v for k, v in enumerate(data)}
    return data


def _one_line(e):
    return " ".join(str(e).split())


def _fmt_shape(s):
    if s is None or len(s) == 0 or any(d <= 0 for d in s):
        if s and any(d > 0 for d in s):
            return "(%s)" % ", ".join(str(d) if d > 0 else "?" for d in s)
        return "?"
    return str(tuple(s))


def _count(s):
    if not s or any(d <= 0 for d in s):
        return None
    c = 1
    for d in s:
        c *= d
    return c


def _table(rows):
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return ["  ".join(r[c].ljust(widths[c]) for c in range(len(r))).rstrip() for r in rows]


# ---------------------------------------------------------------------------------------
# inspect
# ---------------------------------------------------------------------------------------
def _inspect_params(path, out):
    data = _load_params(path)
    rows = [("name", "dtype", "shape", "size")]
    total = 0
    for name, a in data.items():
        if a is None:
            rows.append((name, "-", "none", "0"))
            continue
        rows.append((name, a._data.dtype.name, str(tuple(a.shape)), str(a.size)))
        total += a.size
    print("%s: %d arrays, %d values" % (path, len(data), total), file=out)
    for line in _table(rows):
        print("  " + line, file=out)


def _node_shapes(sym, shapes):
    """{output name of every internal entry: shape tuple ('()' when unknown)} and the arg /
    aux shapes, all by name, using ``get_internals().infer_shape_partial``."""
    import warnings
    internals = sym.get_internals()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arg_s, out_s, aux_s = internals.infer_shape_partial(**shapes)
    by_name = dict(zip(internals.list_outputs(), out_s))
    by_name.update(zip(sym.list_arguments(), arg_s))
    by_name.update(zip(sym.list_auxiliary_states(), aux_s))
    return by_name


def _auto_named_param(name, order):
    """Whether variable ``name`` looks like a parameter without ``--params`` to tell:
    MXNet names the inputs an operator creates ``<op name>_<input name>`` (``fc1_weight``,
    ``bn1_moving_var``); ``data`` and ``label`` inputs named that way are still inputs
    (``softmax_label``), and so is every variable the user named otherwise."""
    for n in order:
        if n.op is None:
            continue
        try:
            slots = n.op.input_names(n.parsed)
        except Exception:  # noqa: BLE001 - a best-effort guess for display only
            continue
        for k, (src, _i, _v) in enumerate(n.inputs):
            if src.op is None and src.name == name and k < len(slots):
                if slots[k] not in ("data", "label", "lhs", "rhs") and \
                        name == "%s_%s" % (n.name, slots[k]):
                    return True
    return False


def _feeds_only_data(name, order):
    """Whether variable ``name`` is only ever an op's data/label-like input (not a weight,
    bias, gamma ... slot): how an input looks in graphs whose variables were renamed."""
    slots = set()
    for n in order:
        if n.op is None:
            continue
        try:
            names = n.op.input_names(n.parsed)
        except Exception:  # noqa: BLE001 - a best-effort guess for display only
            return True
        for k, (src, _i, _v) in enumerate(n.inputs):
            if src.op is None and src.name == name:
                slots.add(names[k] if k < len(names) else "data")
    return not slots or slots <= {"data", "label", "lhs", "rhs", "index", "indices", "condition",
                                  "x", "y", "a"}


def _inspect_symbol(path, shapes, params_path, out):
    from symbol.base import MXNetError
    from symbol.graph import topo_order
    sym = _load_symbol(path)
    params = {}
    if params_path:
        raw = _load_params(params_path)
        for k, v in raw.items():
            name = k.split(":", 1)[1] if k[:4] in ("arg:", "aux:") else k
            if v is not None:
                params[name] = v
    args = sym.list_arguments()
    aux = sym.list_auxiliary_states()
    unknown = [k for k in shapes if k not in args and k not in aux]
    if unknown:
        raise CLIError("--shape names %s, which %s not an input of %s; its arguments are %s"
                       % (", ".join(unknown), "is" if len(unknown) == 1 else "are", path,
                          ", ".join(args)))
    known = {k: tuple(v.shape) for k, v in params.items() if k in args or k in aux}
    known.update(shapes)
    try:
        by_name = _node_shapes(sym, known)
    except MXNetError as e:
        raise CLIError("shape inference failed: %s" % _one_line(e)) from None
    order = topo_order(sym._outputs)
    if params:
        data = {a for a in args if a not in params}
    else:
        data = (set(shapes) | {a for a in args if not _auto_named_param(a, order)
                               and _feeds_only_data(a, order)}) - set(aux)
    rows = [("#", "name", "op", "output shape", "params", "inputs")]
    total = 0
    n_ops = 0
    for k, n in enumerate(order):
        if n.op is None:
            kind = "input" if n.name in data else ("aux" if n.name in aux else "param")
            rows.append((str(k), n.name, "Variable(%s)" % kind,
                         _fmt_shape(by_name.get(n.name)), "", ""))
            continue
        n_ops += 1
        outs = [_fmt_shape(by_name.get(n.output_name(i))) for i in range(n.num_visible())]
        p = 0
        unknown_p = False
        for src, _i, _v in n.inputs:
            if src.op is None and src.name not in data:
                c = _count(by_name.get(src.name))
                if c is None:
                    unknown_p = True
                else:
                    p += c
        total += p
        rows.append((str(k), n.name, n.op.name, ", ".join(outs),
                     ("%d+?" % p if p else "?") if unknown_p else str(p),
                     ", ".join(src.name for src, _i, _v in n.inputs)))
    print("%s: %d operators, %d arguments, %d auxiliary states, outputs %s"
          % (path, n_ops, len(args), len(aux), ", ".join(sym.list_outputs())), file=out)
    lines = _table(rows)
    print(lines[0], file=out)
    print("-" * max(len(x) for x in lines), file=out)
    for line in lines[1:]:
        print(line, file=out)
    n_param = sum(1 for a in args + aux if a not in data)
    unknown_total = [a for a in args + aux if a not in data and _count(by_name.get(a)) is None]
    print("-" * max(len(x) for x in lines), file=out)
    print("inputs: %s" % (", ".join("%s %s" % (a, _fmt_shape(by_name.get(a)))
                                    for a in args if a in data) or "none"), file=out)
    if unknown_total:
        print("total parameters: %d in %d arrays (shapes unknown for %s; give input shapes "
              "with --shape)" % (total, n_param, ", ".join(unknown_total)), file=out)
    else:
        print("total parameters: %d in %d arrays" % (total, n_param), file=out)


def cmd_inspect(ns, out):
    if _is_params_file(ns.file):
        if ns.shape or ns.params:
            raise CLIError("--shape and --params apply to a symbol file; %s is a .params file"
                           % ns.file)
        _inspect_params(ns.file, out)
    else:
        _inspect_symbol(ns.file, dict(ns.shape or ()), ns.params, out)
    return 0


# ---------------------------------------------------------------------------------------
# draw
# ---------------------------------------------------------------------------------------
def cmd_draw(ns, out):
    from symbol.base import MXNetError
    from .ndarray.utils import atomic_write
    sym = _load_symbol(ns.file)
    shapes = dict(ns.shape or ()) or None
    ext = os.path.splitext(ns.output)[1].lower()
    out_dir = os.path.dirname(os.path.abspath(ns.output))
    if not os.path.isdir(out_dir):
        raise CLIError("cannot write %s: the directory %s does not exist" % (ns.output, out_dir))
    try:
        if ext in (".dot", ".gv"):
            atomic_write(ns.output, [sym.to_dot(shapes=shapes)], mode="w")
        else:
            try:
                import sys as _sys
                import matplotlib
                if "matplotlib.pyplot" not in _sys.modules:
                    # headless default for the command line; never switch the backend of a
                    # process (a notebook) that already uses pyplot
                    matplotlib.use("Agg")
                import matplotlib.pyplot as plt
            except ImportError:
                raise CLIError("drawing %s needs matplotlib (pip install matplotlib, or the "
                               "agjit[viz] extra); write a .dot file instead" % ext) from None
            ax = sym.draw(shapes=shapes)
            fig = ax.figure
            try:
                fig.savefig(ns.output, bbox_inches="tight")
            finally:
                plt.close(fig)
    except MXNetError as e:
        raise CLIError("cannot draw %s: %s" % (ns.file, _one_line(e))) from None
    print("wrote %s" % ns.output, file=out)
    return 0


# ---------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------
def cmd_demo(ns, out):
    import inspect
    from . import demo
    fn = demo.main
    try:
        takes_args = bool(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        takes_args = False
    if takes_args:
        rc = fn(list(ns.args))
    else:
        if ns.args:
            raise CLIError("the demo takes no arguments, got %s" % " ".join(ns.args))
        rc = fn()
    return rc if isinstance(rc, int) else 0


# ---------------------------------------------------------------------------------------
_DRAW_EXTS = (".dot", ".gv", ".png", ".svg", ".pdf", ".jpg", ".jpeg")


def build_parser():
    p = argparse.ArgumentParser(
        prog="agjit", description="Inspect and draw MXNet symbol/params files; run the demo.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    pi = sub.add_parser("inspect", help="print the node table of a -symbol.json file (or "
                                        "list the arrays of a .params file)")
    pi.add_argument("file", help="MODEL-symbol.json or MODEL-NNNN.params")
    pi.add_argument("--shape", action="append", type=_shape_arg, metavar="NAME=D1,D2,...",
                    help="an input shape for inference (repeatable), e.g. data=1,784")
    pi.add_argument("--params", metavar="FILE",
                    help="a .params file whose array shapes feed inference")
    pi.set_defaults(func=cmd_inspect)
    pd = sub.add_parser("draw", help="draw a -symbol.json graph to .png/.svg/.pdf or .dot")
    pd.add_argument("file", help="MODEL-symbol.json")
    pd.add_argument("-o", "--output", required=True, metavar="OUT",
                    help="output file: .dot (Graphviz text) or .png/.svg/.pdf (matplotlib)")
    pd.add_argument("--shape", action="append", type=_shape_arg, metavar="NAME=D1,D2,...",
                    help="an input shape; edges are labelled with inferred shapes")
    pd.set_defaults(func=cmd_draw)
    pm = sub.add_parser("demo", help="run the agjit demo")
    pm.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the demo")
    pm.set_defaults(func=cmd_demo)
    pl = sub.add_parser("launch", help="run a script on N MPI ranks (mpirun underneath), "
                                       "output prefixed with [rank]")
    pl.add_argument("-n", "--np", dest="n", type=int, required=True, metavar="N",
                    help="number of processes")
    pl.add_argument("--hostfile", metavar="F", help="Open MPI hostfile (hosts and slots)")
    pl.add_argument("--mpirun-arg", action="append", default=[], metavar="ARG",
                    help="an extra argument for mpirun (repeatable), e.g. "
                         "--mpirun-arg=--mca --mpirun-arg=btl_tcp_if_include "
                         "--mpirun-arg=eth0")
    pl.add_argument("script", help="the Python script every rank runs")
    pl.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    pl.set_defaults(func=cmd_launch)
    return p


def cmd_launch(ns, out):
    from .kvstore.launch import launch, LaunchError
    try:
        return launch(ns.n, ns.script, ns.args, hostfile=ns.hostfile,
                      mpirun_args=ns.mpirun_arg)
    except LaunchError as e:
        raise CLIError(str(e)) from None


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"] and not {"-h", "--help"} & set(argv[1:2]):
        # everything after ``demo`` belongs to the demo, options included
        ns = parser.parse_args(["demo"])
        ns.args = argv[1:]
    else:
        ns = parser.parse_args(argv)                  # exits 2 on usage errors
    if ns.command == "draw":
        ext = os.path.splitext(ns.output)[1].lower()
        if ext not in _DRAW_EXTS:
            parser.error("draw: cannot tell the format of %r; use one of %s"
                         % (ns.output, ", ".join(_DRAW_EXTS)))
    debug = os.environ.get("AGJIT_DEBUG", "") not in ("", "0")
    try:
        return ns.func(ns, sys.stdout)
    except KeyboardInterrupt:
        print("agjit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as e:  # noqa: BLE001 - the CLI promises one line, never a traceback
        if debug:
            raise
        from symbol.base import MXNetError
        if isinstance(e, (CLIError, MXNetError)):
            msg = _one_line(e)
        elif isinstance(e, OSError):
            msg = "%s: %s" % (e.filename or "", e.strerror or e) if e.filename else _one_line(e)
        else:
            msg = "%s: %s (set AGJIT_DEBUG=1 for the traceback)" % (type(e).__name__,
                                                                   _one_line(e))
        print("agjit %s: error: %s" % (ns.command, msg), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
