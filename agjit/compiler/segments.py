"""Content-addressed segment kernels (note *segment-kernels*): each Numba segment function
of a generated kernel module is shared, by its canonical code, with every other segment of
the same code -- in this process (one dispatcher) and on disk (one verified file and one set
of Numba cache files)."""
import ast
import builtins
import collections
import hashlib
import json
import logging
import os
import re
import threading
import warnings

import numba
import numpy as np

from symbol.base import atomic_write
from . import numba_cache as _nbc
from .cache import (_read_kernel, _sealed, _purge_numba_cache, _exec_file_module,
                    _module_from_memory, _version, library_hash)

log = logging.getLogger("agjit.jit")

__all__ = ["share_segments", "canonical_segment", "SEGMENT_STATS"]


# Note: segment-kernels
#     Segments are content addressed on their own, not only as part of their graph's module:
#     after a kernel module is built, each of its Numba segment functions (``seg<k>``,
#     ``seg<k>_par``) is put in a canonical form -- parameters renamed ``a0, a1, ...`` in
#     order, locals ``v0, v1, ...`` in the order the syntax tree lists them, comments
#     dropped, the function named ``seg`` -- with exactly the imports it uses.  That text,
#     the kernel-library hash and the agjit/Numba/NumPy versions name it
#     (``<cache dir>/s_<sha256>.py``, sealed and loaded like kernel files, note
#     *kernel-cache*), and the module's ``seg<k>`` is rebound to that file's dispatcher.
#     So two segments with the same code -- in one graph (two layers of the same shape
#     kind), in two graphs, or in two processes -- share one dispatcher and one set of
#     Numba cache files: a second model that shares layers with the first compiles only
#     its new segments (``cache_info().compiles`` counts them; the shared ones count as
#     neither compile nor disk hit).  The module text (``source()``) keeps the graph's
#     names; the canonical function is the same function up to names.  A segment that
#     cannot be canonicalised (a global it reads is not an import) keeps its own dispatcher.
#     Beside a kernel file, a verified table ``k_<...>.segs`` (segment name -> digest) lets a
#     warm process load the shared segments without parsing the module again.

_SEG_NAME = re.compile(r"seg\d+(_par)?\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_seg_lock = threading.RLock()
_seg_memory = collections.OrderedDict()     # segment digest -> dispatcher
_SEG_MEMORY_MAX = 2048
SEGMENT_STATS = {"built": 0, "shared": 0}   # segment dispatchers made / reused (process)


def _import_table(tree):
    """name bound at module level by an import -> (module, imported name or None, asname)."""
    table = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                table[a.asname or a.name.split(".")[0]] = (a.name, None, a.asname)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            for a in node.names:
                table[a.asname or a.name] = (node.module, a.name, a.asname)
    return table


def canonical_segment(fn, imports):
    """The canonical module text of segment function ``fn`` (an ast.FunctionDef, renamed in
    place) whose module imports ``imports`` (:func:`_import_table`), or None (note
    *segment-kernels*)."""
    a = fn.args
    if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs or a.defaults:
        return None
    ren = {p.arg: "a%d" % k for k, p in enumerate(a.args)}
    nloc = 0
    used = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store):
                if node.id not in ren:
                    ren[node.id] = "v%d" % nloc
                    nloc += 1
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and node.id not in ren:
            if node.id in imports:
                used.add(node.id)
            elif not hasattr(builtins, node.id):
                return None
    for node in ast.walk(fn):       # renamed in place: the tree is the caller's own parse
        if isinstance(node, ast.Name) and node.id in ren:
            node.id = ren[node.id]
        elif isinstance(node, ast.arg):
            node.arg = ren[node.arg]
    fn.name = "seg_par" if fn.name.endswith("_par") else "seg"
    plain, froms = [], {}
    for name in sorted(used):
        mod, orig, asname = imports[name]
        if orig is None:
            plain.append("import %s%s" % (mod, " as " + asname if asname else ""))
        else:
            froms.setdefault(mod, []).append(orig + (" as " + asname if asname else ""))
    lines = ["# agjit segment kernel: content-addressed, shared by every graph whose segment "
             "has this code"]
    lines += sorted(plain)
    lines += ["from %s import %s" % (m, ", ".join(froms[m])) for m in sorted(froms)]
    return "\n".join(lines) + "\n\n\n" + ast.unparse(fn) + "\n"


def _digest(text):
    return hashlib.sha256(("%s\n%s %s %s %s" % (text, library_hash(), _version(),
                                                numba.__version__, np.__version__)
                           ).encode()).hexdigest()


def _known_dispatcher(digest):
    """The dispatcher of the segment named ``digest``, from memory or from its verified
    file; None when that file is missing or fails a check (the caller canonicalises)."""
    with _seg_lock:
        disp = _seg_memory.get(digest)
        if disp is not None:
            _seg_memory.move_to_end(digest)
            SEGMENT_STATS["shared"] += 1
            return disp
        root = _nbc.cache_root()
        if root is None:
            return None
        text = _read_kernel(os.path.join(root[0], "s_%s.py" % digest[:32]), root[1])
        if not isinstance(text, str) or _digest(text) != digest:
            return None
        return _segment_dispatcher(text, digest)


def _segment_dispatcher(text, digest=None):
    """The dispatcher of canonical segment ``text``: from memory, from its verified file in
    the cache directory, or built (and written there)."""
    digest = digest or _digest(text)
    with _seg_lock:
        disp = _seg_memory.get(digest)
        if disp is not None:
            _seg_memory.move_to_end(digest)
            SEGMENT_STATS["shared"] += 1
            return disp
        name = "agjit_s_" + digest[:24]
        root = _nbc.cache_root()
        mod = None
        if root is not None:
            d, mkey = root
            path = os.path.join(d, "s_%s.py" % digest[:32])
            got = _read_kernel(path, mkey)
            if got is False:
                warnings.warn("agjit: cached segment kernel %s is corrupted (it fails its MAC); "
                              "rebuilding it" % path, RuntimeWarning, stacklevel=4)
            elif got is not None and got != text:
                # verified, but not the code it is named after (another agjit build)
                warnings.warn("agjit: cached segment kernel %s fails to load (its text is not "
                              "the code it is named after); rebuilding it" % path,
                              RuntimeWarning, stacklevel=4)
            if got is not None and got != text:
                _purge_numba_cache(path)
                got = None
            if got is None:
                try:
                    atomic_write(path, [_sealed(text, mkey)], perm=0o600)
                    got = text
                except OSError:
                    pass            # memory only (load_module has warned about the dir)
            if got is not None:
                mod = _exec_file_module(name, path, text, digest)
        if mod is None:
            mod = _module_from_memory(name, text)
        disp = mod.seg_par if hasattr(mod, "seg_par") else mod.seg
        SEGMENT_STATS["built"] += 1
        _seg_memory[digest] = disp
        while len(_seg_memory) > _SEG_MEMORY_MAX:
            _seg_memory.popitem(last=False)
        return disp


def _sidecar(mod):
    """(path, key) of the verified table ``k_<...>.segs`` beside kernel file ``mod``
    (segment name -> digest: a warm process loads the shared segments without parsing and
    canonicalising the module), or None for a module without a file."""
    path = getattr(mod, "__file__", "") or ""
    root = _nbc.cache_root()
    if root is None or not path.endswith(".py") or os.path.dirname(path) != root[0]:
        return None
    return path[:-3] + ".segs", root[1]


def _from_sidecar(mod, side):
    payload = _nbc.read_verified(side[0], side[1])
    if payload is None:
        return False
    try:
        table = json.loads(payload.decode("ascii"))
        disps = {}
        for name, dg in table.items():
            if not (_SEG_NAME.match(name) and _HEX64.match(dg) and hasattr(mod, name)):
                return False
            disps[name] = _known_dispatcher(dg)
            if disps[name] is None:
                return False
    except Exception:
        return False
    for name, disp in disps.items():
        setattr(mod, name, disp)
    mod._agjit_segments = table
    return True


def share_segments(mod, source):
    """Rebind the segment functions of kernel module ``mod`` (built from ``source``) to the
    content-addressed dispatchers of their code (note *segment-kernels*); a segment that
    fails to canonicalise or load keeps the module's own dispatcher."""
    side = _sidecar(mod)
    if side is not None and _from_sidecar(mod, side):
        return
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return
    imports = _import_table(tree)
    shared = {}
    for fn in tree.body:
        if not (isinstance(fn, ast.FunctionDef) and _SEG_NAME.match(fn.name) and
                fn.decorator_list):
            continue
        try:
            name = fn.name
            text = canonical_segment(fn, imports)
            if text is None:
                continue
            digest = _digest(text)
            setattr(mod, name, _segment_dispatcher(text, digest))
            shared[name] = digest
        except Exception as e:      # never worse than an unshared segment
            log.debug("agjit.jit: segment %s not shared (%s: %s)", fn.name,
                      type(e).__name__, e)
    mod._agjit_segments = shared
    if side is not None:
        try:
            _nbc.write_verified(side[0], side[1],
                                json.dumps(shared, sort_keys=True).encode("ascii"))
        except OSError:
            pass
