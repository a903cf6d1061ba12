"""Shape manipulation and selection, one module per sub-family (importing this module registers
them all):

* ``shape_reshape``   -- Reshape, Flatten, reshape_like;
* ``shape_axes``      -- transpose, expand_dims, squeeze, SwapAxis, reverse;
* ``shape_slice``     -- slice, slice_axis and their scatter helpers;
* ``shape_join``      -- Concat, SliceChannel, stack;
* ``shape_broadcast`` -- broadcast_to, broadcast_axis, tile, repeat;
* ``shape_index``     -- pick, one_hot, take;
* ``_shape_util``     -- the helpers they share.

Note: scatter-gradients
    Selection ops (slice, slice_axis, pick, take) and shape-replicating ops (Concat, tile,
    repeat) need the *shape of their input* in the gradient.  A gradient rule cannot read
    shapes (``F`` may be the symbol builder, whose values have no shape yet), so each rule
    passes the forward input as a ``like`` operand to a registered helper op
    (``_slice_assign``, ``_slice_axis_scatter``, ``_pick_scatter``, ``_take_scatter``,
    ``_concat_slice``, ``_tile_sum``, ``_repeat_sum``).  Each helper's own gradient is the
    forward selection again, so higher-order gradients stay in registered ops.
"""
from . import shape_reshape, shape_axes, shape_slice, shape_join, shape_broadcast, shape_index  # noqa: F401
from .shape_reshape import resolve_reshape
from .shape_slice import slice_ranges

__all__ = ["resolve_reshape", "slice_ranges"]
