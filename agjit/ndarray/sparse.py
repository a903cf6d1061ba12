"""``mx.nd.sparse``: MXNet's compressed-sparse-row array type, stored densely.

agjit has no sparse kernels: a :class:`CSRNDArray` holds its values as an ordinary dense
NumPy array (every op computes on that), and exposes MXNet's CSR view of it -- ``stype ==
'csr'``, ``data``, ``indices``, ``indptr`` -- computed from the dense values when asked.  It
exists so that programs which receive CSR batches (``LibSVMIter``, ``rand_ndarray(...,
'csr')``) run with the same numbers; it saves no memory.
"""
import numpy as np

from symbol.base import MXNetError
from .ndarray import NDArray

__all__ = ["CSRNDArray", "csr_matrix", "zeros"]


class CSRNDArray(NDArray):
    """A 2-D array that reports MXNet's ``csr`` storage type (values stored densely)."""

    __slots__ = ()

    def __init__(self, data, ctx=None, dtype=None):
        super().__init__(data, ctx=ctx, dtype=dtype)
        if self._data.ndim != 2:
            raise MXNetError("CSRNDArray: a csr array must be 2-D, got shape %s"
                             % (self._data.shape,))

    @property
    def stype(self):
        return "csr"

    def _nonzero(self):
        rows, cols = np.nonzero(self._data)
        return rows, cols

    @property
    def data(self):
        """The stored (non-zero) values in row-major order."""
        rows, cols = self._nonzero()
        return NDArray(self._data[rows, cols])

    @property
    def indices(self):
        """Column index of each stored value (int64, as MXNet)."""
        return NDArray(self._nonzero()[1].astype(np.int64))

    @property
    def indptr(self):
        """Row pointers: values of row i are ``data[indptr[i]:indptr[i+1]]`` (int64)."""
        rows = self._nonzero()[0]
        counts = np.bincount(rows, minlength=self._data.shape[0])
        return NDArray(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))

    def tostype(self, stype):
        if stype == "csr":
            return self
        if stype == "default":
            return NDArray(self._data.copy())
        raise MXNetError("tostype: cannot convert csr to %r" % (stype,))

    def asscipy(self):
        import scipy.sparse
        return scipy.sparse.csr_matrix(self._data)

    def __repr__(self):
        return "\n<CSRNDArray %s @cpu(0)>" % "x".join(str(d) for d in self.shape)


def csr_matrix(arg1, shape=None, ctx=None, dtype=None):
    """A CSRNDArray from ``(data, indices, indptr)`` (with ``shape``), a dense array-like, a
    SciPy sparse matrix, or another NDArray."""
    if isinstance(arg1, tuple) and len(arg1) == 3:
        data, indices, indptr = (np.asarray(a.asnumpy() if isinstance(a, NDArray) else a)
                                 for a in arg1)
        if shape is None:
            raise MXNetError("csr_matrix: shape is required with (data, indices, indptr)")
        rows, cols = int(shape[0]), int(shape[1])
        if indptr.shape != (rows + 1,) or indptr[0] != 0 or indptr[-1] != len(data) \
                or len(indices) != len(data) or np.any(np.diff(indptr) < 0):
            raise MXNetError("csr_matrix: inconsistent indptr %s for %d values and %d rows"
                             % (indptr.tolist()[:8], len(data), rows))
        if len(indices) and (indices.min() < 0 or indices.max() >= cols):
            raise MXNetError("csr_matrix: column index out of range [0, %d)" % cols)
        dense = np.zeros((rows, cols), dtype=dtype or (data.dtype if data.size else np.float32))
        row_of = np.repeat(np.arange(rows), np.diff(indptr))
        dense[row_of, indices.astype(np.int64)] = data
        return CSRNDArray(dense)
    if hasattr(arg1, "toarray"):
        arg1 = arg1.toarray()
    if isinstance(arg1, NDArray):
        arg1 = arg1.asnumpy()
    return CSRNDArray(np.asarray(arg1, dtype=dtype or np.float32))


def zeros(stype, shape, ctx=None, dtype=None, **kwargs):
    """An all-zero array of storage type ``stype`` ('csr' or 'default')."""
    a = np.zeros(shape, dtype=dtype or np.float32)
    if stype == "csr":
        return CSRNDArray(a)
    if stype == "default":
        return NDArray(a)
    raise MXNetError("sparse.zeros: unsupported storage type %r (agjit supports 'default' "
                     "and a densely stored 'csr')" % (stype,))
