"""Moving between user layouts and the kernels' ``(N, M)`` row layout.

The kernels see every sample as one contiguous row: the batch axis is moved
to the front and the remaining axes are flattened in C order.  Per-element
operands (sample weights, ``pos_weight``) are handed over as ``(R, M)`` with
R = 1 when all samples share them, so an ``(1, C)`` weight is never
materialised at full size, and per-sample weights such as ``(N, 1)`` become a
length-N row factor instead of an operand at all.
"""
import numpy as np


def moved_shape(shape, axis):
    """``shape`` with ``axis`` moved to the front."""
    return (shape[axis],) + shape[:axis] + shape[axis + 1:]


def to_rows(a, axis, n_rows, n_cols, dtype):
    """C-contiguous ``(n_rows, n_cols)`` copy (or view) of ``a`` with ``axis`` first."""
    if axis:
        a = np.moveaxis(a, axis, 0)
    return np.ascontiguousarray(a, dtype=dtype).reshape(n_rows, n_cols)


def from_rows(rows, shape, axis):
    """Inverse of :func:`to_rows` for an array of the full ``shape``."""
    a = rows.reshape(moved_shape(shape, axis))
    if axis:
        a = np.ascontiguousarray(np.moveaxis(a, 0, axis))
    return a


def _padded(a, ndim):
    return a.reshape((1,) * (ndim - a.ndim) + a.shape) if a.ndim < ndim else a


def rows_operand(a, shape, axis, n_cols, dtype):
    """A per-element operand broadcasting to ``shape`` as ``(R, n_cols)``, R in {1, N}."""
    a = _padded(a, len(shape))
    n_shared = a.shape[axis]
    if axis:
        a = np.moveaxis(a, axis, 0)
    target = (n_shared,) + moved_shape(shape, axis)[1:]
    a = np.broadcast_to(a, target)
    return np.ascontiguousarray(a, dtype=dtype).reshape(n_shared, n_cols)


def split_sample_weight(sw, shape, axis, n_cols, dtype):
    """Factor a validated ``sample_weight`` into a row factor and an operand.

    Returns ``(row, elem)``: ``row`` is None or a contiguous float64 array of
    shape ``(N,)``; ``elem`` is None or an ``(R, n_cols)`` array of ``dtype``.
    Their product is the weight of every element.
    """
    if sw is None:
        return None, None
    sw = _padded(sw, len(shape))
    if sw.size == sw.shape[axis]:
        # Constant within each sample: a per-row factor.  Cast to the compute
        # dtype first, as every weight is.
        return row_vector(sw.reshape(-1).astype(dtype, copy=False), shape[axis]), None
    return None, rows_operand(sw, shape, axis, n_cols, dtype)


def row_vector(a, n_rows):
    """A per-sample quantity broadcasting to ``(n_rows,)`` as contiguous float64."""
    return np.ascontiguousarray(np.broadcast_to(a, (n_rows,)), dtype=np.float64)
