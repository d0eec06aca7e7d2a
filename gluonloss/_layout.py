"""Every axis and layout move between the user's arrays and the kernels'.

The elementwise and pairwise kernels see every sample as one contiguous
row: the batch axis is moved to the front and the remaining axes are
flattened in C order (:func:`to_rows`).  The softmax kernels see one
softmax row per row, the class axis last (:func:`to_class_rows`).  CTC reads
``pred`` through its strides, needing only contiguous classes
(:func:`class_contiguous`).  SDML's inputs are packed into panels
(:func:`sdml_panels`).  Per-element
operands (sample weights, ``pos_weight``) are handed over as ``(R, M)`` with
R = 1 when all samples share them, so an ``(1, C)`` weight is never
materialised at full size, and per-sample weights such as ``(N, 1)`` become a
length-N row factor instead of an operand at all.
"""
import math

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


# -- the class axis last (softmax family) -------------------------------------


def class_rows_layout(shape, axis, batch_axis):
    """(n_samples, n_inner) of the rows of pred with ``axis`` moved last.

    Row r belongs to sample (r // n_inner) % n_samples; when ``axis`` is the
    batch axis there is one sample holding every row.
    """
    if axis == batch_axis:
        return 1, math.prod(shape) // shape[axis] if shape[axis] else 0
    inner = shape[batch_axis + 1:]
    inner_count = math.prod(inner) // shape[axis] if axis > batch_axis else math.prod(inner)
    return shape[batch_axis], inner_count


def to_class_rows(a, axis, dtype):
    """C-contiguous ``(R, C)`` copy (or view) of ``a`` with ``axis`` last."""
    if axis != a.ndim - 1:
        a = np.moveaxis(a, axis, -1)
    elif a.ndim == 2 and a.dtype == dtype and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a, dtype=dtype).reshape(-1, a.shape[-1])


def from_class_rows(rows, shape, axis):
    """Inverse of :func:`to_class_rows`: a C-contiguous array of ``shape``."""
    if axis == len(shape) - 1:
        return rows.reshape(shape)
    moved = shape[:axis] + shape[axis + 1:] + (shape[axis],)
    return np.ascontiguousarray(np.moveaxis(rows.reshape(moved), -1, axis))


# -- CTC and SDML ----------------------------------------------------------------


def class_contiguous(pred, dtype):
    """pred as ``dtype`` with contiguous classes (last axis): a view when it already is."""
    item = np.dtype(dtype).itemsize
    if (pred.dtype == dtype and pred.dtype.isnative and pred.strides[-1] == item
            and all(s % item == 0 for s in pred.strides) and pred.flags.aligned):
        return pred
    return np.ascontiguousarray(pred, dtype)


def sdml_panels(x1, x2, dtype, panel, with_columns):
    """SDML's packed inputs: ``(a_rows, b_panels, a_cols, b_cols)``.

    With P = N rounded up to a multiple of ``panel``: ``a_rows`` is x1 as
    ``(P, D)`` with zero rows after N; ``b_panels[p, k, c] = x2[p * panel + c, k]``;
    with ``with_columns``, ``a_cols[q, i, c] = x1[i, q * panel + c]`` and the
    same for x2 (zero-padded), else None.
    """
    n, dim = x1.shape
    padded = -(-n // panel) * panel
    a_rows = np.zeros((padded, dim), dtype)
    a_rows[:n] = x1
    b_rows = np.zeros((padded, dim), dtype)
    b_rows[:n] = x2
    b_panels = np.ascontiguousarray(
        b_rows.reshape(padded // panel, panel, dim).transpose(0, 2, 1))
    a_cols = b_cols = None
    if with_columns:
        wide = -(-dim // panel) * panel
        a_cols, b_cols = (np.ascontiguousarray(
            np.pad(r, ((0, 0), (0, wide - dim))).reshape(padded, wide // panel, panel)
            .transpose(1, 0, 2)) for r in (a_rows, b_rows))
    return a_rows, b_panels, a_cols, b_cols
