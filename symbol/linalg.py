"""``mx.sym.linalg``: the ``_linalg_*`` operators under their short names (gemm2, potrf...)."""
from . import api as _api

_NAMES = ("gemm", "gemm2", "potrf", "potri", "trsm", "trmm", "sumlogdiag", "syrk", "inverse",
          "det", "slogdet", "extractdiag", "makediag", "extracttrian", "maketrian", "gelqf", "syevd")
__all__ = list(_NAMES)

for _n in _NAMES:
    globals()[_n] = _api.OP_FUNCTIONS["_linalg_" + _n]
del _n
