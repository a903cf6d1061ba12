"""The compile worker process of the tiered JIT (``AGJIT_TIER_WORKER=process``;
agjit.compiler.tier note *tiers*).

The worker (``python -m agjit.compiler.tier_worker``, one per process that asks for it, at
a slightly lower CPU priority: nice ``AGJIT_TIER_WORKER_NICE``, default 2) reads compile requests from its stdin: a graph's JSON, its inputs'
names, shapes and dtypes, copies of the call's input arrays and the *need*.  It rebuilds the
same CompiledGraph (the same graph hash, hence the same kernel keys), runs the compiled
tier once as the compile thread would, so its kernels land in the shared, verified disk
cache (``AGJIT_CACHE_DIR``), and answers with the graph hash it built.  The workers of two
processes on one cache directory compile one need one at a time (:class:`need_lock`, a
flock beside its hint): the second then loads what the first wrote instead of compiling
it again on the same cores.  The caller's
compile thread then loads the kernels from the disk cache, which costs a fraction of the
compile.  Messages are length-prefixed pickles on the pipes between the two processes
(nothing else can write to them).  The worker ends when its stdin closes (the parent
exits or closes it at its exit; a compile in progress is finished first, so no cache entry is
left half written, and the parent does not wait for it).
"""
import os
import pickle
import struct
import subprocess
import sys

__all__ = ["WorkerClient"]

_LEN = struct.Struct("<Q")


def _send(f, obj):
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(_LEN.pack(len(data)) + data)
    f.flush()


def _recv(f):
    head = f.read(_LEN.size)
    if len(head) < _LEN.size:
        return None
    n = _LEN.unpack(head)[0]
    data = f.read(n)
    if len(data) < n:
        return None
    return pickle.loads(data)


class WorkerClient:
    """The parent's end of a compile worker."""

    def __init__(self, proc):
        self.proc = proc

    @classmethod
    def start(cls):
        """A running worker, or None when it cannot help (disk cache off) or fails to start."""
        from .cache_paths import cache_enabled, cache_dir
        if not cache_enabled():
            return None
        env = dict(os.environ)
        env["AGJIT_CACHE_DIR"] = os.path.abspath(cache_dir())
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            proc = subprocess.Popen([sys.executable, "-m", "agjit.compiler.tier_worker"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, env=env, close_fds=True)
        except OSError:
            return None
        return cls(proc)

    def send(self, graph, need, arrays):
        """Ask the worker to compile ``need`` of ``graph`` (one request at a time: the
        compile thread is the only caller); False when the pipe is broken."""
        req = {"json": graph.sym.tojson(), "inputs": [n.name for n in graph.input_nodes],
               "shapes": [graph.shapes[(n, 0)] for n in graph.input_nodes],
               "dtypes": [graph.dtypes[(n, 0)] for n in graph.input_nodes],
               "need": need, "arrays": arrays, "hash": graph.graph_hash}
        try:
            _send(self.proc.stdin, req)
            return True
        except (OSError, ValueError, pickle.PickleError):
            return False

    def receive(self, graph):
        """Wait for the answer to :meth:`send`; True when the worker compiled that graph."""
        try:
            rep = _recv(self.proc.stdout)
        except (OSError, ValueError, pickle.PickleError, EOFError):
            rep = None
        return bool(rep and rep.get("ok") and rep.get("hash") == graph.graph_hash)

    def close(self):
        """Close the worker's pipes without waiting for it: it finishes the compile it is
        in (its cache files are complete when they appear, under their names or not at all)
        and exits at the end of its input -- the caller never waits for a compile."""
        p = self.proc
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except Exception:
                pass


class need_lock:
    """``with need_lock(hint_path):`` -- an exclusive flock on ``<hint path>.lock`` (taken
    by the workers of every process on this cache directory, released when the holder
    ends or dies); a no-op where the path is None or the lock cannot be had."""

    def __init__(self, hint_path):
        self.path = None if hint_path is None else hint_path + ".lock"
        self.fd = None

    def __enter__(self):
        if self.path is None:
            return self
        try:
            import fcntl
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except (ImportError, OSError):
            if self.fd is not None:
                os.close(self.fd)
            self.fd = None
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        return False


def _serve(fin, fout):
    import symbol
    from symbol.graph import topo_order, Node
    from .program import CompiledGraph
    from .signature import KernelStats
    from .tier import Tiers, _Job, _hint, _hint_path
    from .numba_cache import cache_root
    from .import_guard import first_import, LIBRARY_MODULES
    first_import(LIBRARY_MODULES)       # Numba's set-up before the first request
    usable = cache_root() is not None
    while True:
        req = _recv(fin)
        if req is None:
            return
        try:
            if not usable:
                raise RuntimeError("the disk cache is not usable in the worker")
            sym = symbol.load_json(req["json"])
            by_name = {n.name: n for n in topo_order(sym._outputs) if n.op is None}
            nodes = [by_name.get(nm) for nm in req["inputs"]]
            # an input the graph does not read is not in its JSON
            nodes = [n if n is not None else Node(None, nm)
                     for n, nm in zip(nodes, req["inputs"])]
            shapes = {(n, 0): tuple(s) for n, s in zip(nodes, req["shapes"])}
            dtypes = {(n, 0): d for n, d in zip(nodes, req["dtypes"])}
            g = CompiledGraph(KernelStats(), sym._outputs, nodes, shapes, dtypes)
            if g.graph_hash != req["hash"]:
                raise RuntimeError("graph hash differs after the JSON round trip")
            with need_lock(_hint_path(g, req["need"])):
                # a second process's worker for the same cache waits here for the first
                # one's compile, then only loads what it wrote
                Tiers(g).compile_need(_Job(req["need"], req["arrays"]))
            # the hint too: a parent that exits before loading the kernels (the worker
            # finishes its compile) leaves the next process a warm start
            _hint(g, req["need"])
            rep = {"ok": True, "hash": g.graph_hash}
        except Exception as e:
            rep = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        try:
            _send(fout, rep)
        except OSError:         # the parent is gone
            return


def main():
    try:
        os.nice(int(os.environ.get("AGJIT_TIER_WORKER_NICE", "2")))
    except (AttributeError, OSError, ValueError):
        pass
    fin = sys.stdin.buffer
    fout = sys.stdout.buffer
    # nothing else may write to the reply pipe
    sys.stdout = sys.stderr
    _serve(fin, fout)


if __name__ == "__main__":
    main()
