"""mx.profiler: MXNet 1.9.1's API (set_config / set_state / pause / resume / dump / dumps,
Domain, Task, Frame, Event, Counter, Marker) recording agjit's eager op calls and the user's
ranges into a Chrome trace and MXNet's aggregate table."""
import json
import os

import numpy as np
import pytest

import agjit as mx
from agjit import profiler
from agjit.base import MXNetError
import agjit.ndarray.ndarray as _ndmod


@pytest.fixture(autouse=True)
def _fresh_profiler():
    profiler._P.__init__()
    profiler._P.sync_hook()
    yield
    profiler._P.__init__()
    profiler._P.sync_hook()
    assert mx.ndarray._profiling is None and _ndmod._profiling is None


def _events(path):
    with open(path) as f:
        doc = json.load(f)
    assert doc["displayTimeUnit"] == "ms"
    return doc["traceEvents"]


def _ranges(events, cat, begin="B", end="E"):
    """[(name, duration_us)] of the begin/end pairs of category ``cat``, in order."""
    out, open_ = [], {}
    for e in events:
        if e.get("cat") != cat:
            continue
        if e["ph"] == begin:
            open_[e["name"]] = e["ts"]
        elif e["ph"] == end:
            out.append((e["name"], e["ts"] - open_.pop(e["name"])))
    assert not open_
    return out


def test_trace_has_ops_and_user_ranges(tmp_path):
    fname = str(tmp_path / "prof.json")
    profiler.set_config(profile_all=True, filename=fname)
    x = mx.nd.array(np.arange(6, dtype=np.float32).reshape(2, 3))
    profiler.set_state('run')
    assert _ndmod._profiling is not None
    dom = profiler.Domain('mydomain')
    task = dom.new_task('step')
    task.start()
    y = (x * 2 + 1).sum()
    z = mx.nd.relu(x - 3)
    task.stop()
    frame = dom.new_frame('frame1')
    frame.start()
    frame.stop()
    ev = profiler.Event('ev1')
    ev.start()
    ev.stop()
    cnt = dom.new_counter('items', 5)
    cnt += 3
    cnt -= 1
    cnt.increment(10)
    dom.new_marker('here').mark('process')
    profiler.set_state('stop')
    after = x * 5                     # not recorded: stopped
    profiler.dump(finished=True)
    assert y.asscalar() == 36.0 and z.asnumpy().tolist() == [[0, 0, 0], [0, 1, 2]]
    assert after.asnumpy()[1, 2] == 25
    events = _events(fname)
    ops = [n for n, _ in _ranges(events, "operator")]
    assert ops == ['_mul_scalar', '_plus_scalar', 'sum', '_minus_scalar', 'relu']
    (name, dur), = _ranges(events, "mydomain", "b", "e")
    assert name == 'step' and dur >= 0
    op_total = sum(d for _, d in _ranges(events, "operator"))
    assert dur >= op_total
    assert [n for n, _ in _ranges(events, "mydomain,frame", "(", ")")] == ['frame1']
    assert [n for n, _ in _ranges(events, "event")] == ['ev1']
    assert [e["args"]["items"] for e in events if e.get("ph") == "C"] == [5, 8, 7, 17]
    mark, = [e for e in events if e.get("ph") == "n"]
    assert (mark["name"], mark["cat"], mark["s"]) == ('here', 'mydomain,instant_marker', 'p')
    # one process_name entry per category, pids matching
    meta = {e["args"]["name"]: e["pid"] for e in events if e.get("ph") == "M"}
    assert sorted(meta) == ['event', 'mydomain', 'mydomain,frame', 'mydomain,instant_marker',
                            'operator']
    for e in events:
        if e.get("ph") != "M":
            assert e["pid"] == meta[e["cat"]]
    # the trace's timestamps are in microseconds and ordered within a category
    ts = [e["ts"] for e in events if e.get("cat") == "operator"]
    assert ts == sorted(ts)
    # finished: no more output until the profiler runs again
    with pytest.raises(MXNetError, match="Profiler hasn't been run"):
        profiler.dump()
    assert sorted(os.listdir(tmp_path)) == ['prof.json']    # atomic: no temporary left


def test_pause_resume_and_imperative_switch(tmp_path):
    fname = str(tmp_path / "p.json")
    profiler.set_config(profile_imperative=True, filename=fname)
    x = mx.nd.ones((2, 2))
    profiler.set_state('run')
    x * 2
    profiler.pause()
    assert _ndmod._profiling is None          # paused: the op hook is off
    x + 5
    profiler.Event('hidden').start()
    profiler.resume()
    x - 5
    profiler.set_config(profile_imperative=False)
    x / 2
    profiler.set_state('stop')
    profiler.dump()
    assert [n for n, _ in _ranges(_events(fname), "operator")] == ['_mul_scalar',
                                                                    '_minus_scalar']


def test_gluon_layers_and_autograd_are_profiled(tmp_path):
    fname = str(tmp_path / "g.json")
    net = mx.gluon.nn.Dense(3, in_units=4)
    net.initialize()
    x = mx.nd.ones((2, 4))
    profiler.set_config(profile_all=True, filename=fname, aggregate_stats=True)
    profiler.set_state('run')
    with mx.autograd.record():
        y = net(x)
        loss = (y * y).sum()
    loss.backward()
    profiler.set_state('stop')
    profiler.dump()
    ops = [n for n, _ in _ranges(_events(fname), "operator")]
    assert ops[:3] == ['FullyConnected', 'broadcast_mul', 'sum']
    assert 'dot' in ops[3:]                     # the backward pass's ops are recorded too
    table = profiler.dumps()
    assert 'FullyConnected' in table


def test_dumps_table_and_json():
    assert profiler.dumps() == ''            # nothing aggregated
    profiler.set_config(profile_all=True, aggregate_stats=True,
                        filename=os.devnull + '.unused')
    x = mx.nd.ones((3,))
    profiler.set_state('run')
    for _ in range(3):
        x * 2
    x + 1
    d = profiler.Domain('D')
    t = d.new_task('T')
    t.start()
    t.stop()
    profiler.set_state('stop')
    text = profiler.dumps()
    lines = text.split('\n')
    assert lines[:3] == ['', 'Profile Statistics:',
                         '\tNote the difference in units for different entries.']
    i = lines.index('operator')
    assert lines[i + 1] == '================='
    assert lines[i + 2].split() == ['Name', 'Total', 'Count', 'Time', '(ms)', 'Min', 'Time',
                                    '(ms)', 'Max', 'Time', '(ms)', 'Avg', 'Time', '(ms)']
    rows = {}
    for line in lines[i + 4:]:
        if not line:
            break
        parts = line.split()
        rows[parts[0]] = [float(v) for v in parts[1:]]
    assert sorted(rows) == ['_mul_scalar', '_plus_scalar']
    count, total, mn, mxx, avg = rows['_mul_scalar']
    assert count == 3 and mn <= avg <= mxx and abs(total - 3 * avg) < 2e-4 + 1e-3 * total
    assert lines.index('D') < i                 # categories sorted as MXNet's
    doc = json.loads(profiler.dumps(format='json', sort_by='count'))
    assert doc["Time"]["operator"]["_mul_scalar"]["Count"] == 3
    assert list(doc["Time"]["operator"]) == ['_mul_scalar', '_plus_scalar']
    asc = json.loads(profiler.dumps(format='json', sort_by='count', ascending=True))
    assert list(asc["Time"]["operator"]) == ['_plus_scalar', '_mul_scalar']
    assert profiler.dumps(reset=True) != ''
    assert profiler.dumps() == ''
    with pytest.raises(AssertionError, match="Invalid value provided for format: xml"):
        profiler.dumps(format='xml')
    with pytest.raises(AssertionError, match="sort_by"):
        profiler.dumps(sort_by='median')


def test_config_errors_and_dump_before_run(tmp_path):
    with pytest.raises(MXNetError, match="Cannot find argument 'foo'"):
        profiler.set_config(foo=1)
    with pytest.raises(MXNetError, match="expect boolean"):
        profiler.set_config(profile_all='maybe')
    with pytest.raises(KeyError):
        profiler.set_state('go')
    with pytest.raises(MXNetError, match="Profiler hasn't been run"):
        profiler.dump()
    with pytest.raises(MXNetError, match="stop\\(\\) without start\\(\\)"):
        profiler.Event('e').stop()
    profiler.set_config(filename=str(tmp_path / "x.json"), profile_symbolic='False')
    assert profiler._P.config['profile_symbolic'] is False
    profiler.set_state('run')
    profiler.set_state('stop')
    profiler.dump(finished=False)
    profiler.dump(finished=False)         # not finished: can dump again
    assert json.load(open(str(tmp_path / "x.json")))["traceEvents"] == []
    assert str(profiler.Domain('dd')) == 'dd' and str(profiler.Task(profiler.Domain('a'),
                                                                    'tt')) == 'tt'
    with pytest.warns(UserWarning, match='deprecated'):
        profiler.profiler_set_config('imperative', str(tmp_path / 'y.json'))
    assert profiler._P.config['filename'] == str(tmp_path / 'y.json')
