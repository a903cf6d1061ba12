"""``mx.profiler``: MXNet 1.9.1's profiler API over agjit's eager dispatcher.

Note: profiler-model
    ``set_config(**kw)`` takes MXNet's keys (profile_all, profile_symbolic,
    profile_imperative, profile_memory, profile_api, filename, continuous_dump, dump_period,
    aggregate_stats, profile_process) with their defaults; an unknown key raises MXNetError
    listing the known ones.  ``set_state('run')`` starts recording, ``'stop'`` stops it;
    ``pause()`` / ``resume()`` suspend it.  While it records:

    * with ``profile_imperative`` (or ``profile_all``) every eager op call (``mx.nd.*``,
      NDArray arithmetic, Gluon layers run imperatively, what ``mx.autograd`` runs) is one
      ``operator`` range named by MXNet's op name (``_mul_scalar``, ``FullyConnected``),
      timed around the op's kernel.  The hook lives in ``agjit.ndarray``: one module flag
      the eager fast paths check; while it is set they take ``invoke``, which times the
      kernel.  With the profiler stopped the flag is None and nothing else runs.
    * the user's ranges: ``Task`` (``b``/``e`` events, category = domain name), ``Frame``
      (``(``/``)``, ``<domain>,frame``), ``Event`` (``B``/``E``, ``event``), ``Counter``
      values (``C``, the domain) and ``Marker`` instants (``n``, ``<domain>,instant_marker``).
      A range is recorded at ``stop()`` when the profiler records at that moment.

    Not recorded (agjit has no such layer): MXNet's C API calls, device memory, engine
    bookkeeping (``DeleteVariable``, ``WaitForVar``), and the ops inside a compiled
    ``mx.jit`` replay (a replay is one Numba call: no per-op boundary exists).

    ``dump(finished=True)`` writes everything recorded so far to ``filename`` as a Chrome
    trace (``{"traceEvents": [...], "displayTimeUnit": "ms"}``, timestamps in microseconds,
    one ``process_name`` metadata entry per category), atomically; ``finished=True`` also
    ends the output, so a further ``dump`` raises MXNetError until the profiler runs again.
    ``dumps(reset, format, sort_by, ascending)`` returns the aggregate table (or JSON) when
    ``aggregate_stats=True`` was configured, else ``''``; ``reset=True`` clears it.

>>> import agjit as mx
>>> mx.profiler.set_config(profile_imperative=True, aggregate_stats=True)
>>> mx.profiler.set_state('run')
>>> y = mx.nd.ones((2, 2)) * 3
>>> mx.profiler.set_state('stop')
>>> print(mx.profiler.dumps(reset=True).split('operator')[1].split()[-6])
_mul_scalar
>>> mx.profiler.set_config(aggregate_stats=False)
"""
import itertools
import json
import threading
import time
import warnings
from collections import OrderedDict

from symbol.base import MXNetError, atomic_write

__all__ = ["set_config", "set_state", "dump", "dumps", "pause", "resume", "Domain", "Task",
           "Frame", "Event", "Counter", "Marker", "profiler_set_config", "profiler_set_state",
           "dump_profile", "set_kvstore_handle"]

_DEFAULTS = OrderedDict([
    ("profile_all", False), ("profile_symbolic", True), ("profile_imperative", True),
    ("profile_memory", True), ("profile_api", True), ("filename", "profile.json"),
    ("continuous_dump", False), ("dump_period", 1.0), ("aggregate_stats", False),
    ("profile_process", "worker")])


def _as_bool(key, v):
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true"):
        return True
    if s in ("0", "false"):
        return False
    raise MXNetError("Invalid Parameter format for %s expect boolean but value='%s'" % (key, v))


class _Profiler(object):
    """The process-wide profiler state (one lock guards the buffers)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.config = OrderedDict(_DEFAULTS)
        self.running = False
        self.paused = False
        self.output_enabled = False
        self.events = []
        self.stats = {}                 # category -> {name: [count, total, min, max] (ms)}
        self.categories = []            # in order of first use (trace pids)
        self.threads = {}
        self._base_ns = time.perf_counter_ns()
        self._base_us = time.time() * 1e6

    # -- clock and buffers ------------------------------------------------------------------
    def clock(self):
        return time.perf_counter_ns()

    def _us(self, ns):
        return int(self._base_us + (ns - self._base_ns) / 1000.0)

    def _tid(self):
        ident = threading.get_ident()
        t = self.threads.get(ident)
        if t is None:
            t = self.threads[ident] = len(self.threads)
        return t

    def _pid(self, cat):
        if cat not in self.categories:
            self.categories.append(cat)
            self.events.append({"ph": "M", "args": {"name": cat},
                                "pid": len(self.categories) - 1, "name": "process_name"})
        return self.categories.index(cat)

    def recording(self):
        return self.running and not self.paused

    def _stat(self, cat, name, ms):
        if not self.config["aggregate_stats"]:
            return
        row = self.stats.setdefault(cat, OrderedDict()).get(name)
        if row is None:
            self.stats[cat][name] = [1, ms, ms, ms]
        else:
            row[0] += 1
            row[1] += ms
            row[2] = min(row[2], ms)
            row[3] = max(row[3], ms)

    def duration(self, cat, name, t0, t1, begin, end, extra=None):
        with self.lock:
            pid, tid = self._pid(cat), self._tid()
            for ph, t in ((begin, t0), (end, t1)):
                ev = {"name": name, "cat": cat, "ph": ph, "ts": self._us(t), "pid": pid,
                      "tid": tid}
                if extra:
                    ev.update(extra)
                self.events.append(ev)
            self._stat(cat, name, (t1 - t0) / 1e6)

    def instant(self, cat, name, ev):
        with self.lock:
            if cat not in self.stats and self.config["aggregate_stats"]:
                self.stats[cat] = OrderedDict()
            ev.update({"name": name, "cat": cat, "ts": self._us(time.perf_counter_ns()),
                       "pid": self._pid(cat), "tid": self._tid()})
            self.events.append(ev)

    def op(self, name, t0):
        """One eager op call (the agjit.ndarray hook)."""
        self.duration("operator", name, t0, time.perf_counter_ns(), "B", "E")

    # -- the hook ---------------------------------------------------------------------------
    def sync_hook(self):
        import importlib
        cfg = self.config
        on = self.recording() and (cfg["profile_all"] or cfg["profile_imperative"])
        value = self if on else None
        importlib.import_module(__name__.rsplit(".", 1)[0] + ".ndarray")._profiling = value
        importlib.import_module(__name__.rsplit(".", 1)[0] + ".ndarray.ndarray")._profiling = \
            value


_P = _Profiler()


def set_kvstore_handle(handle):
    """Accepted for MXNet compatibility (agjit's kvstore servers are not profiled)."""


def set_config(**kwargs):
    """Set profiler options (note *profiler-model*); unknown keys raise MXNetError."""
    new = OrderedDict(_P.config)
    for key, value in kwargs.items():
        if key not in _DEFAULTS:
            raise MXNetError("Cannot find argument '%s', Possible Arguments: %s"
                             % (key, ", ".join(_DEFAULTS)))
        default = _DEFAULTS[key]
        if isinstance(default, bool):
            value = _as_bool(key, value)
        elif isinstance(default, float):
            value = float(value)
        else:
            value = str(value)
        new[key] = value
    if new["profile_process"] not in ("worker", "server"):
        raise MXNetError("Invalid Input: '%s', valid values are: {'server', 'worker'}"
                         % new["profile_process"])
    _P.config = new
    _P.sync_hook()


def profiler_set_config(mode='symbolic', filename='profile.json'):
    """Deprecated MXNet form of :func:`set_config`."""
    warnings.warn('profiler.profiler_set_config() is deprecated. Please use '
                  'profiler.set_config() instead')
    set_config(**{"profile_" + mode: True, "filename": filename})


def set_state(state='stop', profile_process='worker'):
    """``'run'`` starts recording, ``'stop'`` stops it."""
    running = {'stop': False, 'run': True}[state]
    {'worker': 0, 'server': 1}[profile_process]
    _P.running = running
    if running:
        _P.output_enabled = True
    _P.sync_hook()


def profiler_set_state(state='stop'):
    """Deprecated MXNet form of :func:`set_state`."""
    warnings.warn('profiler.profiler_set_state() is deprecated. Please use '
                  'profiler.set_state() instead')
    set_state(state)


def pause(profile_process='worker'):
    """Suspend recording (the state stays 'run')."""
    {'worker': 0, 'server': 1}[profile_process]
    _P.paused = True
    _P.sync_hook()


def resume(profile_process='worker'):
    """Resume recording after :func:`pause`."""
    {'worker': 0, 'server': 1}[profile_process]
    _P.paused = False
    _P.sync_hook()


def dump(finished=True, profile_process='worker'):
    """Write the recorded events to the configured file as a Chrome trace (atomically);
    ``finished=True`` ends the output (note *profiler-model*)."""
    {'worker': 0, 'server': 1}[profile_process]
    if not _P.output_enabled:
        raise MXNetError("Check failed: profiler->IsEnableOutput(): Profiler hasn't been run. "
                         "Config and start profiler first")
    with _P.lock:
        doc = {"traceEvents": list(_P.events), "displayTimeUnit": "ms"}
        if finished is True:
            _P.events = []
            _P.categories = []
            _P.output_enabled = False
    fname = _P.config["filename"]
    atomic_write(fname, [json.dumps(doc, indent=0)], mode="w")


def dump_profile():
    """Deprecated MXNet form of ``dump(True)``."""
    warnings.warn('profiler.dump_profile() is deprecated. Please use profiler.dump() instead')
    dump(True)


_SORT = {'total': 1, 'avg': None, 'min': 2, 'max': 3, 'count': 0}


def dumps(reset=False, format='table', sort_by='total', ascending=False):
    """The aggregate statistics as MXNet's text table (``format='table'``) or JSON; ``''``
    unless ``set_config(aggregate_stats=True)``.  ``reset=True`` clears them."""
    assert format in ('table', 'json'), \
        "Invalid value provided for format: {0}. Support: 'table', 'json'".format(format)
    assert sort_by in _SORT, \
        "Invalid value provided for sort_by: {0}. Support: 'total', 'avg', 'min', 'max', " \
        "'count'".format(sort_by)
    assert ascending in (False, True), \
        "Invalid value provided for ascending: {0}. Support: False, True".format(ascending)
    assert reset in (False, True), \
        "Invalid value provided for reset: {0}. Support: False, True".format(reset)
    with _P.lock:
        stats = {c: OrderedDict((n, list(r)) for n, r in rows.items())
                 for c, rows in _P.stats.items()}
        if reset:
            _P.stats = {}
    if not stats:
        return ''

    def key(item):
        c, total, mn, mx = item[1]
        return {'total': total, 'avg': total / c, 'min': mn, 'max': mx, 'count': c}[sort_by]

    cats = sorted(stats)
    if format == 'json':
        doc = OrderedDict()
        for cat in cats:
            doc[cat] = OrderedDict(
                (n, OrderedDict([("Count", r[0]), ("Total", round(r[1], 4)),
                                 ("Min", round(r[2], 4)), ("Max", round(r[3], 4)),
                                 ("Avg", round(r[1] / r[0], 4))]))
                for n, r in sorted(stats[cat].items(), key=key, reverse=not ascending))
        return json.dumps({"Time": doc}, indent=4)
    lines = ['', 'Profile Statistics:', '\tNote the difference in units for different entries.']
    for cat in cats:
        lines += [cat, '=================',
                  'Name'.ljust(30) + 'Total Count'.rjust(11) + 'Time (ms)'.rjust(17)
                  + 'Min Time (ms)'.rjust(17) + 'Max Time (ms)'.rjust(17)
                  + 'Avg Time (ms)'.rjust(17),
                  '----'.ljust(30) + '-----------'.rjust(11) + '---------'.rjust(17)
                  + '-------------'.rjust(17) + '-------------'.rjust(17)
                  + '-------------'.rjust(17)]
        for name, (c, total, mn, mx) in sorted(stats[cat].items(), key=key,
                                               reverse=not ascending):
            lines.append(name.ljust(30) + str(c).rjust(11) + ''.join(
                ('%.4f' % v).rjust(17) for v in (total, mn, mx, total / c)))
        lines.append('')
    return '\n'.join(lines) + '\n'


class Domain(object):
    """A named group of tasks, frames, counters and markers (the trace category)."""

    def __init__(self, name):
        self.name = name

    def __str__(self):
        return self.name

    def new_task(self, name):
        return Task(self, name)

    def new_frame(self, name):
        return Frame(self, name)

    def new_counter(self, name, value=None):
        return Counter(self, name, value)

    def new_marker(self, name):
        return Marker(self, name)


class _Range(object):
    """What Task, Frame and Event share: ``start()`` / ``stop()`` a timed range."""
    _phases = ("B", "E")

    def __init__(self, category, name):
        self.name = name
        self._category = category
        self._t0 = None

    def start(self):
        self._t0 = time.perf_counter_ns()

    def stop(self):
        if self._t0 is None:
            raise MXNetError("%s '%s': stop() without start()" % (type(self).__name__,
                                                                    self.name))
        t0, self._t0 = self._t0, None
        if _P.recording():
            extra = {"id": self._id} if self._phases == ("b", "e") else None
            _P.duration(self._category, self.name, t0, time.perf_counter_ns(),
                        self._phases[0], self._phases[1], extra)

    def __str__(self):
        return self.name


class Task(_Range):
    """A task of ``domain`` (trace phases b/e)."""
    _phases = ("b", "e")

    _ids = itertools.count(1)

    def __init__(self, domain, name):
        super(Task, self).__init__(domain.name, name)
        self._id = next(Task._ids)          # pairs the b/e events of one task


class Frame(_Range):
    """A frame of ``domain`` (trace phases ( and ), category ``<domain>,frame``)."""
    _phases = ("(", ")")

    def __init__(self, domain, name):
        super(Frame, self).__init__(domain.name + ",frame", name)


class Event(_Range):
    """A free-standing event range (category ``event``)."""

    def __init__(self, name):
        super(Event, self).__init__("event", name)


class Counter(object):
    """An integer counter of ``domain``; every change is a trace ``C`` event."""

    def __init__(self, domain, name, value=None):
        self.name = name
        self._domain = domain
        self._value = 0
        if value is not None:
            self.set_value(value)

    def _emit(self):
        if _P.recording():
            _P.instant(self._domain.name, self.name, {"ph": "C",
                                                      "args": {self.name: self._value}})

    def set_value(self, value):
        self._value = int(value)
        self._emit()

    def increment(self, delta=1):
        self._value += int(delta)
        self._emit()

    def decrement(self, delta=1):
        self._value -= int(delta)
        self._emit()

    def __iadd__(self, delta):
        self.increment(delta)
        return self

    def __isub__(self, delta):
        self.decrement(delta)
        return self

    def __str__(self):
        return self.name


class Marker(object):
    """An instant marker of ``domain`` (``mark(scope)``: 'process', 'global', 'thread' ...)."""

    def __init__(self, domain, name):
        self.name = name
        self.domain = domain

    def mark(self, scope='process'):
        if _P.recording():
            _P.instant(self.domain.name + ",instant_marker", self.name,
                       {"ph": "n", "s": str(scope)[:1]})
