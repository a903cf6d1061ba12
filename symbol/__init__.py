"""The symbol package: MXNet-compatible Symbol graph IR, graph JSON and shape/type inference.

Importable on its own: it never imports agjit's runtime (JIT, Numba) at module level.
"""
from .base import MXNetError
from . import ops  # noqa: F401  (registers every operator)
from .registry import get_op, all_ops
from .symbol import Symbol

__all__ = ["MXNetError", "Symbol", "get_op", "all_ops"]
