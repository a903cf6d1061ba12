"""``python -m agjit.kvstore._rank script.py args...``: what ``agjit launch`` runs on every
rank (``agjit.kvstore.launch`` note *kv-launch*): rank-prefixed output lines, an excepthook
that aborts the MPI job, then the script as ``__main__``."""
import io
import os
import runpy
import sys


def _rank():
    for k in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"):
        v = os.environ.get(k)
        if v is not None and v.isdigit():
            return int(v)
    return 0


class _Prefixed(io.TextIOBase):
    """A text stream writing each complete line as ``prefix + line`` in one write."""

    def __init__(self, raw, prefix):
        self._raw = raw
        self._prefix = prefix
        self._pending = ""

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        text = self._pending + s
        lines = text.split("\n")
        self._pending = lines.pop()
        if lines:
            self._raw.write("".join(self._prefix + line + "\n" for line in lines))
            self._raw.flush()
        return len(s)

    def flush(self):
        if self._pending:
            self._raw.write(self._prefix + self._pending)
            self._pending = ""
        self._raw.flush()

    def writable(self):
        return True

    def fileno(self):
        return self._raw.fileno()

    def isatty(self):
        return False

    @property
    def encoding(self):
        return getattr(self._raw, "encoding", "utf-8")

    @property
    def buffer(self):
        return self._raw.buffer


def _excepthook(etype, value, tb):
    sys.__excepthook__(etype, value, tb)
    mpi = sys.modules.get("mpi4py.MPI")
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized() and \
                mpi.COMM_WORLD.Get_size() > 1:
            sys.stderr.write("agjit launch: rank %d raised %s; aborting the MPI job\n"
                             % (_rank(), etype.__name__))
            sys.stderr.flush()
            mpi.COMM_WORLD.Abort(1)
    except Exception:  # noqa: BLE001 - exiting anyway
        pass


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        sys.stderr.write("usage: python -m agjit.kvstore._rank script.py [args...]\n")
        return 2
    prefix = "[%d] " % _rank()
    sys.stdout = _Prefixed(sys.stdout, prefix)
    sys.stderr = _Prefixed(sys.stderr, prefix)
    sys.excepthook = _excepthook
    script = argv[0]
    sys.argv = argv
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
