"""``mx.test_utils``: the helpers MXNet 1.x's own tests and many user test suites call.

Tolerances follow MXNet 1.9.1: ``assert_almost_equal`` picks defaults by dtype (the looser of
the two operands': float16 rtol 1e-2 / atol 1e-1, float32 1e-4 / 1e-3, float64 1e-5 / 1e-20,
integers and bools exact) and checks ``|a - b| <= atol + rtol * |b|`` elementwise with
broadcasting, printing the worst violations before raising AssertionError; ``almost_equal``
(a bool) uses the float64 defaults whatever the dtype, as MXNet's does.  The symbolic checks
bind the symbol on agjit's executors: ``check_numeric_gradient`` compares the executor's
backward to central differences of ``sum(out * proj)`` for a random positive projection.
"""
import numbers

import numpy as np
import numpy.testing as npt

from symbol.base import MXNetError
from .context import check_context, current_context
from .ndarray import NDArray
from . import ndarray as nd

__all__ = ["default_context", "set_default_context", "list_gpus", "default_dtype",
           "default_rtols", "default_atols", "default_numeric_eps", "get_rtol", "get_atol",
           "get_tolerance", "get_tols", "effective_dtype", "assert_almost_equal",
           "almost_equal", "assert_almost_equal_ignore_nan", "almost_equal_ignore_nan", "same",
           "assert_exception", "random_arrays", "rand_shape_2d", "rand_shape_3d",
           "rand_shape_nd", "rand_ndarray", "simple_forward", "check_numeric_gradient",
           "numeric_grad", "check_symbolic_forward", "check_symbolic_backward",
           "assert_allclose", "check_consistency", "download"]

_EXACT = ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")


def default_context():
    """The context tests run on: ``cpu(0)`` unless :func:`set_default_context` changed it."""
    return current_context()


def set_default_context(ctx):
    """Accepts a CPU context (the only kind agjit has); refuses a GPU one clearly."""
    check_context(ctx, "set_default_context")


def list_gpus():
    """Indices of the GPUs: none (agjit runs on the CPU)."""
    return range(0)


def default_dtype():
    return np.float32


def default_rtols():
    tols = {np.dtype(np.float16): 1e-2, np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-5}
    tols.update({np.dtype(t): 0 for t in _EXACT})
    return tols


def default_atols():
    tols = {np.dtype(np.float16): 1e-1, np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-20}
    tols.update({np.dtype(t): 0 for t in _EXACT})
    return tols


def default_numeric_eps():
    return {np.dtype(np.float16): 1.0 / 2 ** 6, np.dtype(np.float32): 1.0 / 2 ** 9,
            np.dtype(np.float64): 1e-4}


def effective_dtype(dat):
    """The dtype that decides tolerances (agjit computes every dtype as stored)."""
    return np.dtype(dat.dtype)


def get_tolerance(dat, tol, default_tol):
    if isinstance(tol, numbers.Number):
        return tol
    dtype = effective_dtype(dat)
    tol = {} if tol is None else tol
    return tol.get(dtype, default_tol[dtype])


def get_tols(x, y, rtol, atol):
    """The (rtol, atol) for comparing x and y: the looser of the two dtypes' defaults."""
    x = np.array(x) if isinstance(x, numbers.Number) else x
    y = np.array(y) if isinstance(y, numbers.Number) else y
    return (max(get_tolerance(x, rtol, default_rtols()), get_tolerance(y, rtol, default_rtols())),
            max(get_tolerance(x, atol, default_atols()), get_tolerance(y, atol, default_atols())))


def get_rtol(rtol=None, dtype=np.dtype(np.float64)):
    return default_rtols()[np.dtype(dtype)] if rtol is None else rtol


def get_atol(atol=None, dtype=np.dtype(np.float64)):
    return default_atols()[np.dtype(dtype)] if atol is None else atol


def _np(a):
    return a.asnumpy() if isinstance(a, NDArray) else a


def almost_equal(a, b, rtol=None, atol=None, equal_nan=False, use_broadcast=True):
    """Whether ``|a - b| <= atol + rtol * |b|`` everywhere (float64 default tolerances)."""
    a, b = _np(a), _np(b)
    if not use_broadcast:
        _check_shapes(a, b)
    return bool(np.allclose(a, b, rtol=get_rtol(rtol), atol=get_atol(atol), equal_nan=equal_nan))


def _check_shapes(a, b):
    if np.shape(a) != np.shape(b):
        raise ValueError("shape mismatch: %s vs %s" % (np.shape(a), np.shape(b)))


def _violation(a, b, rtol, atol):
    """Index of the largest |a-b| / (atol + rtol|b|) and that ratio."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = np.broadcast_arrays(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(a - b) / (atol + rtol * np.abs(b))
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    if ratio.size == 0:
        return (), 0.0
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), ratio.shape))
    return idx, float(ratio[idx])


def assert_almost_equal(a, b, rtol=None, atol=None, names=("a", "b"), equal_nan=False,
                        use_broadcast=True, mismatches=(10, 10)):
    """Raise AssertionError (after printing the worst elements) unless a and b are equal
    within the dtype's tolerances; ValueError when their shapes do not broadcast."""
    if not use_broadcast:
        _check_shapes(a, b)
    rtol, atol = get_tols(a, b, rtol, atol)
    a, b = np.asarray(_np(a)), np.asarray(_np(b))
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError("assert_almost_equal: shapes %s and %s do not broadcast"
                         % (a.shape, b.shape)) from None
    if a.dtype == np.bool_ and b.dtype == np.bool_:
        npt.assert_equal(a, b)
        return
    if np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan):
        return
    idx, worst = _violation(a, b, rtol, atol)
    ab = np.broadcast_arrays(a, b)
    shown = min(mismatches[0], ab[0].size) if mismatches[0] > 0 else 0
    print("\n*** Maximum errors for vector of size {}:  rtol={}, atol={}\n".format(
        ab[0].size, rtol, atol))
    ta, tb = ab[0].astype(np.float64).copy(), ab[1].astype(np.float64).copy()
    for k in range(shown):
        i, r = _violation(ta, tb, rtol, atol)
        if r <= 1.0:
            break
        print("%3d: Error %f  Location of error: %s, %s=%.8f, %s=%.8f"
              % (k + 1, r, str(i), names[0], ta[i], names[1], tb[i]))
        ta[i] = tb[i] = 0
    bad = ~np.isclose(ab[0], ab[1], rtol=rtol, atol=atol, equal_nan=equal_nan)
    msg = ("Error %f exceeds tolerance rtol=%e, atol=%e (mismatch %f%%).\n"
           "Location of maximum error: %s, %s=%.8f, %s=%.8f"
           % (worst, rtol, atol, 100.0 * bad.sum() / max(bad.size, 1), str(idx),
              names[0], ab[0][idx], names[1], ab[1][idx]))
    raise AssertionError(npt.build_err_msg([a, b], err_msg=msg, names=list(names)))


assert_allclose = assert_almost_equal


def almost_equal_ignore_nan(a, b, rtol=None, atol=None):
    a, b = np.copy(_np(a)), np.copy(_np(b))
    nan = np.logical_or(np.isnan(a), np.isnan(b))
    a[nan] = 0
    b[nan] = 0
    return almost_equal(a, b, rtol, atol)


def assert_almost_equal_ignore_nan(a, b, rtol=None, atol=None, names=("a", "b")):
    a, b = np.copy(_np(a)), np.copy(_np(b))
    nan = np.logical_or(np.isnan(a), np.isnan(b))
    a[nan] = 0
    b[nan] = 0
    assert_almost_equal(a, b, rtol, atol, names)


def same(a, b):
    """Exactly equal shapes and values."""
    return bool(np.array_equal(_np(a), _np(b)))


def assert_exception(f, exception_type, *args, **kwargs):
    """Assert that ``f(*args, **kwargs)`` raises ``exception_type``."""
    try:
        f(*args, **kwargs)
    except exception_type:
        return
    raise AssertionError("%s did not raise %s" % (getattr(f, "__name__", f), exception_type.__name__))


def random_arrays(*shapes):
    """float32 standard-normal arrays of the given shapes (one array for one shape)."""
    arrays = [np.array(np.random.randn(), dtype=default_dtype()) if len(s) == 0
              else np.random.randn(*s).astype(default_dtype()) for s in shapes]
    return arrays[0] if len(arrays) == 1 else arrays


def rand_shape_2d(dim0=10, dim1=10, allow_zero_size=False):
    low = 0 if allow_zero_size else 1
    return np.random.randint(low, dim0 + 1), np.random.randint(low, dim1 + 1)


def rand_shape_3d(dim0=10, dim1=10, dim2=10, allow_zero_size=False):
    low = 0 if allow_zero_size else 1
    return (np.random.randint(low, dim0 + 1), np.random.randint(low, dim1 + 1),
            np.random.randint(low, dim2 + 1))


def rand_shape_nd(num_dim, dim=10, allow_zero_size=False):
    low = 0 if allow_zero_size else 1
    return tuple(np.random.randint(low, dim + 1, size=num_dim))


def rand_ndarray(shape, stype="default", density=None, dtype=None, modifier_func=None,
                 shuffle_csr_indices=False, distribution=None, ctx=None):
    """A random NDArray (standard normal); ``stype='csr'`` keeps a fraction ``density``
    (default: uniform in [0, 1)) of the entries, as a CSRNDArray."""
    if stype == "default":
        return nd.array(random_arrays(shape), dtype=dtype)
    if stype != "csr":
        raise MXNetError("rand_ndarray: storage type %r is not supported (agjit has 'default' "
                         "and a densely stored 'csr')" % (stype,))
    if len(shape) != 2:
        raise MXNetError("rand_ndarray: a csr array must be 2-D, got shape %s" % (shape,))
    density = np.random.rand() if density is None else density
    vals = np.random.uniform(size=shape) if distribution in (None, "uniform") else np.random.randn(*shape)
    keep = np.random.rand(*shape) < density
    dense = np.where(keep, vals, 0).astype(dtype or np.float32)
    if modifier_func is not None:
        dense = np.where(dense != 0, np.vectorize(modifier_func)(dense), 0).astype(dense.dtype)
    return nd.sparse.CSRNDArray(dense)


def _location(sym, location, dtype):
    if not isinstance(location, (dict, list, tuple)):
        raise AssertionError("location must be a dict, list or tuple of arrays")
    names = sym.list_arguments()
    if isinstance(location, dict):
        if set(location) != set(names):
            raise ValueError("Symbol arguments and keys of the given location do not match. "
                             "symbol args: %s, location.keys(): %s" % (set(names), set(location)))
    else:
        if len(location) != len(names):
            raise ValueError("the symbol has %d arguments %s but %d locations were given"
                             % (len(names), names, len(location)))
        location = dict(zip(names, location))
    return {k: (nd.array(v, dtype=v.dtype if dtype == "asnumpy" else dtype)
                if isinstance(v, np.ndarray) else v) for k, v in location.items()}


def _aux(sym, aux_states, dtype):
    if aux_states is None:
        return None
    names = sym.list_auxiliary_states()
    if isinstance(aux_states, dict):
        if set(aux_states) != set(names):
            raise ValueError("Symbol aux_states names and given aux_states do not match. "
                             "symbol aux_names: %s, aux_states.keys: %s" % (set(names), set(aux_states)))
    else:
        aux_states = dict(zip(names, aux_states))
    return {k: nd.array(_np(v), dtype=_np(v).dtype if dtype == "asnumpy" else dtype)
            for k, v in aux_states.items()}


def simple_forward(sym, ctx=None, is_train=False, **inputs):
    """Bind ``sym`` to NumPy ``inputs`` and return its outputs as NumPy (one array for one
    output)."""
    exe = sym.bind(ctx or default_context(), args={k: nd.array(v) for k, v in inputs.items()})
    exe.forward(is_train=is_train)
    outs = [x.asnumpy() for x in exe.outputs]
    return outs[0] if len(outs) == 1 else outs


def numeric_grad(executor, location, aux_states=None, eps=1e-4, use_forward_train=True,
                 dtype=np.float32):
    """Central differences of ``sum(outputs[0])`` w.r.t. each floating-point argument in
    ``location`` (a dict of NumPy arrays), perturbing one element at a time."""
    grads = {k: np.zeros(np.shape(v), dtype=dtype) for k, v in location.items()}
    location = {k: np.array(v, order="C", copy=True) for k, v in location.items()}
    for k, v in location.items():
        executor.arg_dict[k][:] = v.astype(dtype)

    def f():
        if aux_states is not None:
            for key, val in aux_states.items():
                executor.aux_dict[key][:] = val
        executor.forward(is_train=use_forward_train)
        return executor.outputs[0].asnumpy()

    for k, v in location.items():
        if v.dtype.kind != "f":
            continue
        flat = v.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps / 2.0
            executor.arg_dict[k][:] = v.astype(dtype)
            plus = f()
            flat[i] = old - eps / 2.0
            executor.arg_dict[k][:] = v.astype(dtype)
            minus = f()
            grads[k].reshape(-1)[i] = (plus - minus).sum() / eps
            flat[i] = old
        executor.arg_dict[k][:] = v.astype(dtype)
    return grads


def check_numeric_gradient(sym, location, aux_states=None, numeric_eps=None, rtol=None,
                           atol=None, grad_nodes=None, use_forward_train=True, ctx=None,
                           grad_stype_dict=None, dtype=np.float32):
    """Compare the symbol's backward with finite differences; AssertionError on mismatch.

    The scalar differentiated is ``sum(out * proj)`` for a random projection
    ``proj = rand + 0.1`` drawn from NumPy's global RNG (seed it for reproducibility).
    ``grad_nodes``: the arguments to check (a list, or a dict name -> grad_req).
    """
    if dtype not in (np.float16, np.float32, np.float64):
        raise AssertionError("check_numeric_gradient: dtype must be float16/32/64")
    ctx = ctx or default_context()
    location = _location(sym, location, dtype)
    loc_np = {k: v.asnumpy() for k, v in location.items()}
    aux = _aux(sym, aux_states, dtype)
    aux_np = None if aux is None else {k: v.asnumpy() for k, v in aux.items()}
    if grad_nodes is None:
        grad_nodes = sym.list_arguments()
        grad_req = {k: "write" for k in grad_nodes}
    elif isinstance(grad_nodes, (list, tuple)):
        grad_nodes = list(grad_nodes)
        grad_req = {k: "write" for k in grad_nodes}
    elif isinstance(grad_nodes, dict):
        grad_req = dict(grad_nodes)
        grad_nodes = list(grad_nodes)
    else:
        raise ValueError("grad_nodes must be a list, tuple or dict, got %s" % type(grad_nodes).__name__)
    _, out_shapes, _ = sym.infer_shape(**{k: v.shape for k, v in location.items()})
    if len(out_shapes) != 1:
        raise AssertionError("check_numeric_gradient needs a single-output symbol, got %d outputs"
                             % len(out_shapes))
    proj_np = np.random.rand(*out_shapes[0]) + 0.1
    proj = mx_sym_variable("__random_proj")
    out = sym * proj
    location = dict(location, __random_proj=nd.array(proj_np, dtype=dtype))
    grads_np = {k: np.random.normal(0, 0.01, size=location[k].shape) for k in grad_nodes}
    grads_np["__random_proj"] = np.random.normal(0, 0.01, size=out_shapes[0])
    args_grad = {k: nd.array(v, dtype=dtype) for k, v in grads_np.items()}
    reqs = {k: grad_req.get(k, "null") for k in out.list_arguments()}
    reqs["__random_proj"] = "write"
    exe = out.bind(ctx, args=location, args_grad=args_grad, grad_req=reqs, aux_states=aux)
    exe.forward(is_train=True)
    eps = get_tolerance(exe.outputs[0], numeric_eps, default_numeric_eps())
    if dtype in (np.float32, np.float16) and eps < 1e-5:
        raise AssertionError("numeric_eps %g is too small for %s" % (eps, np.dtype(dtype).name))
    exe.backward([nd.ones(out_shapes[0], dtype=dtype)])
    symbolic = exe.grad_dict
    numeric = numeric_grad(exe, dict(loc_np, __random_proj=proj_np), aux_np, eps=eps,
                           use_forward_train=use_forward_train, dtype=dtype)
    for name in grad_nodes:
        req = grad_req[name]
        got = symbolic[name].asnumpy()
        labels = ("NUMERICAL_%s" % name, "BACKWARD_%s" % name)
        if req == "write":
            assert_almost_equal(numeric[name], got, rtol, atol, labels)
        elif req == "add":
            assert_almost_equal(numeric[name], got - grads_np[name], rtol, atol, labels)
        elif req == "null":
            assert_almost_equal(grads_np[name], got, rtol, atol, labels)
        else:
            raise ValueError("Invalid grad_req %s for argument %s" % (req, name))


def mx_sym_variable(name):
    import symbol
    return symbol.Variable(name)


def check_symbolic_forward(sym, location, expected, rtol=None, atol=None, aux_states=None,
                           ctx=None, equal_nan=False, dtype=np.float32):
    """Forward (predict mode) and compare every output with ``expected`` (a list, or a dict by
    output name); returns the executor's outputs."""
    ctx = ctx or default_context()
    location = _location(sym, location, dtype)
    aux = _aux(sym, aux_states, dtype)
    if isinstance(expected, dict):
        expected = [expected[k] for k in sym.list_outputs()]
    exe = sym.bind(ctx, args=location, aux_states=aux)
    exe.forward(is_train=False)
    for name, want, got in zip(sym.list_outputs(), expected, exe.outputs):
        assert_almost_equal(want, got, rtol, atol, ("EXPECTED_%s" % name, "FORWARD_%s" % name),
                            equal_nan=equal_nan)
    return exe.outputs


def check_symbolic_backward(sym, location, out_grads, expected, rtol=None, atol=None,
                            aux_states=None, grad_req="write", ctx=None, grad_stypes=None,
                            equal_nan=False, dtype=np.float32):
    """Forward (training mode) and backward with ``out_grads``; compare the gradients with
    ``expected`` (a list in argument order, or a dict by name); returns name -> gradient."""
    ctx = ctx or default_context()
    location = _location(sym, location, dtype)
    aux = _aux(sym, aux_states, dtype)
    names = sym.list_arguments()
    if isinstance(expected, (list, tuple)):
        expected = dict(zip(names, expected))
    grads_np = {k: np.random.normal(size=np.shape(v)) for k, v in sorted(expected.items())}
    args_grad = {k: nd.array(v, dtype=np.asarray(_np(expected[k])).dtype if dtype == "asnumpy" else dtype)
                 for k, v in grads_np.items()}
    if isinstance(grad_req, str):
        grad_req = {k: grad_req for k in names}
    elif isinstance(grad_req, (list, tuple)):
        grad_req = dict(zip(names, grad_req))
    reqs = {k: (grad_req.get(k, "write") if k in args_grad else "null") for k in names}
    exe = sym.bind(ctx, args=location, args_grad=args_grad, aux_states=aux, grad_req=reqs)
    exe.forward(is_train=True)
    if isinstance(out_grads, (list, tuple)):
        out_grads = [nd.array(g, dtype=g.dtype if dtype == "asnumpy" else dtype)
                     if isinstance(g, np.ndarray) else g for g in out_grads]
    elif isinstance(out_grads, dict):
        out_grads = [out_grads[k] if not isinstance(out_grads[k], np.ndarray)
                     else nd.array(out_grads[k], dtype=dtype) for k in sym.list_outputs()]
    elif out_grads is not None:
        raise AssertionError("out_grads must be a list, dict or None")
    exe.backward(out_grads)
    for name in expected:
        got = args_grad[name].asnumpy()
        labels = ("EXPECTED_%s" % name, "BACKWARD_%s" % name)
        req = reqs[name]
        if req == "write":
            assert_almost_equal(expected[name], got, rtol, atol, labels, equal_nan=equal_nan)
        elif req == "add":
            assert_almost_equal(expected[name], got - grads_np[name], rtol, atol, labels,
                                equal_nan=equal_nan)
        elif req == "null":
            assert_almost_equal(grads_np[name], got, rtol, atol, labels, equal_nan=equal_nan)
        else:
            raise ValueError("Invalid grad_req %s for argument %s" % (req, name))
    return args_grad


def check_consistency(sym, ctx_list, scale=1.0, grad_req="write", arg_params=None,
                      aux_params=None, rtol=None, atol=None, raise_on_err=True,
                      ground_truth=None, equal_nan=False, use_uniform=False, rand_type=np.float64):
    """Run ``sym`` bound once per entry of ``ctx_list`` (dicts of ``ctx``, input shapes and
    ``type_dict``: on agjit every context is the CPU, so this compares dtypes) on the same
    random inputs, and check every output and gradient against the most precise run's.
    Returns the ground truth dict (outputs and gradients by name)."""
    from symbol.symbol import Symbol
    if len(ctx_list) < 2:
        raise AssertionError("check_consistency needs at least 2 contexts")
    syms = [sym] * len(ctx_list) if isinstance(sym, Symbol) else list(sym)
    if len(syms) != len(ctx_list):
        raise AssertionError("one symbol per context is needed")
    out_names, arg_names = syms[0].list_outputs(), syms[0].list_arguments()
    exes = []
    for s, ctx in zip(syms, ctx_list):
        if s.list_arguments() != arg_names or s.list_outputs() != out_names:
            raise AssertionError("the symbols differ in arguments or outputs")
        kw = dict(ctx)
        kw.setdefault("ctx", current_context())
        exes.append(s.simple_bind(grad_req=grad_req, **kw))
    arg_params = dict(arg_params or {})
    aux_params = dict(aux_params or {})
    for n, arr in sorted(exes[0].arg_dict.items()):
        if n not in arg_params:
            arg_params[n] = (np.random.uniform(-0.92 * scale, 0.92 * scale, size=arr.shape)
                             if use_uniform else
                             np.random.normal(size=arr.shape, scale=scale)).astype(rand_type)
    for n in exes[0].aux_dict:
        aux_params.setdefault(n, 0)
    for exe in exes:
        for name, arr in exe.arg_dict.items():
            arr[:] = arg_params[name]
        for name, arr in exe.aux_dict.items():
            arr[:] = aux_params[name]
        if grad_req == "add":
            for arr in exe.grad_arrays:
                if arr is not None:
                    arr[:] = 0
    for exe in exes:
        exe.forward(is_train=False)
    dtypes = [np.dtype(exe.outputs[0].dtype) for exe in exes]
    gt_idx = int(np.argmax([d.itemsize for d in dtypes]))
    gt = ground_truth
    if gt is None:
        gt = {n: o.copy() for n, o in zip(out_names, exes[gt_idx].outputs)}

    def compare(what, i, name, arr, ref):
        try:
            assert_almost_equal(arr, ref, rtol=rtol, atol=atol, equal_nan=equal_nan)
        except AssertionError:
            print("%s Err: ctx %d vs ctx %d at %s" % (what, i, gt_idx, name))
            if raise_on_err:
                raise

    for i, exe in enumerate(exes):
        if i != gt_idx:
            for name, arr in zip(out_names, exe.outputs):
                compare("Predict", i, name, arr, gt[name])
    if grad_req == "null":
        return gt
    for exe in exes:
        exe.forward(is_train=True)
    heads = [o.asnumpy() for o in exes[int(np.argmin([d.itemsize for d in dtypes]))].outputs]
    for exe in exes:
        exe.backward([nd.array(h, dtype=o.dtype) for h, o in zip(heads, exe.outputs)])
    if ground_truth is None:
        gt.update({n: (g.copy() if g is not None else None)
                   for n, g in zip(arg_names, exes[gt_idx].grad_arrays)})
        gt.update({n: o.copy() for n, o in zip(out_names, exes[gt_idx].outputs)})
    for i, exe in enumerate(exes):
        if i == gt_idx:
            continue
        for name, arr in zip(out_names + arg_names, list(exe.outputs) + list(exe.grad_arrays)):
            if gt.get(name) is None:
                if arr is not None:
                    raise AssertionError("%s has a gradient in ctx %d but not in the reference" % (name, i))
                continue
            compare("Train", i, name, arr, gt[name])
    return gt


def download(url, fname=None, dirname=None, overwrite=False, retries=5):
    """MXNet's download helper: returns the local file when it exists (and not
    ``overwrite``); agjit has no network access, so anything else raises MXNetError naming the
    URL and the path to place the file at."""
    import os
    if retries < 0:
        raise AssertionError("Number of retries should be at least 0")
    if fname is None:
        fname = url.split("/")[-1]
    if dirname is not None:
        fname = os.path.join(dirname, fname)
    if not overwrite and os.path.exists(fname):
        return fname
    raise MXNetError("download: cannot fetch %s: agjit has no network access here; obtain the "
                     "file by other means and place it at %s" % (url, os.path.abspath(fname)))


_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def get_mnist(path=None):
    """MNIST as MXNet's ``get_mnist()`` returns it: ``{'train_data', 'train_label',
    'test_data', 'test_label'}``, images float32 ``(N, 1, 28, 28)`` scaled to [0, 1], labels
    int8.  MXNet downloads the four idx files into the current directory; agjit cannot
    download, so it reads them (gzipped or not) from ``path``, else the current directory,
    else ``./data``, and raises MXNetError naming the files and where to put them."""
    import os
    roots = [path] if path is not None else [os.getcwd(), os.path.join(os.getcwd(), "data")]

    def has_all(root):
        return all(os.path.isfile(os.path.join(root, f)) or
                   os.path.isfile(os.path.join(root, f[:-3])) for f in _MNIST_FILES)
    root = next((r for r in roots if has_all(r)), None)
    if root is None:
        raise MXNetError("get_mnist: the MNIST files %s were not found in %s; agjit has no "
                         "network access, so download them from http://yann.lecun.com/exdb/"
                         "mnist/ (or http://data.mxnet.io/data/mnist/) and place them there "
                         "(gzipped or not), or pass get_mnist(path=<directory>)"
                         % (", ".join(_MNIST_FILES), " or ".join(os.path.abspath(r)
                                                                for r in roots)))
    from .gluon.data.vision import MNIST
    out = {}
    for split, train in (("train", True), ("test", False)):
        ds = MNIST(root=root, train=train)
        images = ds._data.asnumpy()
        out[split + "_data"] = (images.reshape(images.shape[0], 1, 28, 28)
                                .astype(np.float32) / 255)
        out[split + "_label"] = np.asarray(ds._label).astype(np.int8)
    return out
