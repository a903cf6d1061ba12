"""``agjit launch``: start N ranks of a Python script with ``mpirun``.

Note: kv-launch
    ``agjit launch -n N [--hostfile F] [--mpirun-arg ARG ...] script.py args...`` runs
    ``mpirun -np N [--hostfile F] [-x VAR ...] <this python> -u -m agjit.kvstore._rank
    script.py args...``.  ``agjit.kvstore._rank`` runs the script as ``__main__`` (as
    ``python script.py`` would) after replacing ``sys.stdout`` / ``sys.stderr`` with
    streams that write every complete line as ``[r] line`` in one write, so lines of
    different ranks never mix (output written below Python, by C libraries, is not
    prefixed); and it installs an excepthook that, when MPI is initialised, aborts the job
    after printing the traceback, so an uncaught exception never leaves the other ranks
    waiting (``agjit.kvstore._mpi`` note *kv-faults*).  The exit status is mpirun's: 0
    when every rank succeeded, else the status of the first rank that failed (Open MPI).
    On one machine (no hostfile) ``--oversubscribe`` is added when N exceeds the CPU count;
    as root ``--allow-run-as-root`` is added (Open MPI refuses root otherwise).  The
    variables ``PYTHONPATH``, ``PATH``, ``LD_LIBRARY_PATH`` and every ``AGJIT_*``,
    ``NUMBA_*``, ``OMP_*``, ``OPENBLAS_*`` and ``MXNET_*`` one are forwarded to the ranks
    (``-x``), which matters on other hosts.  Without ``mpirun`` on PATH (or
    ``AGJIT_MPIRUN``), or without mpi4py in this Python, the launch fails at once with one
    line saying what to install.  ``mpirun -np 2 python script.py`` runs the same training,
    without the prefixes.
"""
import os
import shutil
import subprocess
import sys

__all__ = ["build_command", "launch", "find_mpirun", "LaunchError"]

_FORWARD = ("PYTHONPATH", "PATH", "LD_LIBRARY_PATH")
_FORWARD_PREFIX = ("AGJIT_", "NUMBA_", "OMP_", "OPENBLAS_", "MXNET_")


class LaunchError(Exception):
    """A launch that cannot start (reported as one line)."""


def find_mpirun():
    """The ``mpirun`` to use: ``AGJIT_MPIRUN`` or ``mpirun`` / ``mpiexec`` on PATH."""
    names = [os.environ["AGJIT_MPIRUN"]] if os.environ.get("AGJIT_MPIRUN") else \
        ["mpirun", "mpiexec"]
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


def _flavour(mpirun):
    try:
        out = subprocess.run([mpirun, "--version"], capture_output=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = out.decode("utf-8", "replace")
    if "Open MPI" in text or "OpenRTE" in text:
        return "openmpi"
    if "HYDRA" in text or "MPICH" in text or "Intel" in text:
        return "mpich"
    return "unknown"


def build_command(n, script, args=(), hostfile=None, mpirun=None, flavour=None,
                  mpirun_args=(), python=None):
    """The mpirun command line ``agjit launch`` runs (note *kv-launch*)."""
    mpirun = mpirun or find_mpirun()
    flavour = flavour or _flavour(mpirun)
    cmd = [mpirun]
    fwd = sorted(k for k in os.environ if k in _FORWARD or k.startswith(_FORWARD_PREFIX))
    if flavour == "mpich":
        cmd += ["-n", str(n)]
        if hostfile:
            cmd += ["-f", hostfile]
        if fwd:
            cmd += ["-genvlist", ",".join(fwd)]
    else:
        cmd += ["-np", str(n)]
        if hostfile:
            cmd += ["--hostfile", hostfile]
        elif n > (os.cpu_count() or 1):
            cmd += ["--oversubscribe"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd += ["--allow-run-as-root"]
        for k in fwd:
            cmd += ["-x", k]
    cmd += list(mpirun_args)
    cmd += [python or sys.executable, "-u", "-m", "agjit.kvstore._rank", script] + list(args)
    return cmd


def launch(n, script, args=(), hostfile=None, mpirun_args=()):
    """Run ``script`` on ``n`` ranks; returns mpirun's exit status (note *kv-launch*)."""
    if not isinstance(n, int) or n < 1:
        raise LaunchError("-n must be a positive number of processes, got %r" % (n,))
    if not os.path.isfile(script):
        raise LaunchError("%s: no such script" % script)
    if hostfile is not None and not os.path.isfile(hostfile):
        raise LaunchError("%s: no such hostfile" % hostfile)
    mpirun = find_mpirun()
    if mpirun is None:
        raise LaunchError("mpirun not found on PATH: install Open MPI (Debian/Ubuntu: "
                          "apt-get install openmpi-bin libopenmpi-dev) and mpi4py "
                          "(pip install 'agjit[dist]'), or set AGJIT_MPIRUN")
    import importlib.util
    if importlib.util.find_spec("mpi4py") is None:
        raise LaunchError("mpi4py is not installed in %s: pip install 'agjit[dist]' (it "
                          "builds against the MPI of %s)" % (sys.executable, mpirun))
    env = dict(os.environ)
    # the ranks import this agjit (-m agjit.kvstore._rank), wherever it lives
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if here not in parts:
        env["PYTHONPATH"] = os.pathsep.join([here] + parts)
    os.environ["PYTHONPATH"] = env["PYTHONPATH"]       # so that -x forwards it
    cmd = build_command(n, script, args, hostfile, mpirun, _flavour(mpirun), mpirun_args)
    proc = subprocess.Popen(cmd, env=env)
    try:
        rc = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    if rc < 0:                      # mpirun itself killed by a signal
        rc = 128 - rc
    return rc
