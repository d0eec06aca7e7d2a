"""Argument checks of every loss.

Everything a kernel assumes is established here: numeric dtypes, matching
sizes, broadcastable shapes, valid axes and parameters, and the values of
labels and lengths.  Messages name the argument, the offending value and
what was expected; a bad element is reported as the first one in C order,
in one format (:func:`element_error`).  The scans over label values run in
compiled code for speed, but their messages are built here.
"""
import math
import numbers
import operator

import numpy as np

from gluonloss._layout import row_vector

_REAL_KINDS = frozenset("biuf")


def as_numeric_array(x, name):
    """``np.asarray(x)``, rejecting anything that is not real-valued numbers."""
    if type(x) is np.ndarray:
        a = x
    else:
        try:
            a = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{name} could not be converted to an array: {exc}") from exc
    if a.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"{name} must hold real numbers (bool, int or float), "
                        f"got an array of dtype {a.dtype}")
    return a


def compute_dtype(*differentiable):
    """float32 when every differentiable input is float32, else float64."""
    for a in differentiable:
        if a.dtype.kind != "f" or a.dtype.itemsize != 4:   # any byte order
            return np.float64
    return np.float32


def check_real(value, name, allow_none=False):
    """A real scalar parameter (weight, margin, rho, ...), returned as given."""
    if value is None and allow_none:
        return None
    if type(value) in (float, int) or isinstance(value, (numbers.Real, np.bool_)) or (
            isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in _REAL_KINDS):
        return value
    expected = "a real number or None" if allow_none else "a real number"
    raise TypeError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")


def check_positive(value, name):
    check_real(value, name)
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def check_int(value, name):
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r} "
                        f"({type(value).__name__})") from None


def check_choice(value, name, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def normalize_axis(axis, ndim, name, array_name="pred"):
    """A possibly negative axis as a non-negative one, or ValueError."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for {array_name} with "
                         f"{ndim} dimension{'s' if ndim != 1 else ''}")
    return axis + ndim if axis < 0 else axis


def reshape_like(a, shape, size, name, like="pred"):
    """``a`` read in C order as an array of ``shape`` (same number of elements)."""
    if a.shape == shape:
        return a
    if a.size != size:
        raise ValueError(f"{name} has {a.size} elements (shape {a.shape}) but {like} has "
                         f"{size} (shape {shape}); they must have the same number of elements")
    return a.reshape(shape)


def check_broadcast(src_shape, target_shape, name, target_name):
    """``src_shape`` must broadcast to ``target_shape`` without enlarging it."""
    n = len(target_shape)
    ok = len(src_shape) <= n
    if ok:
        for s, t in zip(reversed(src_shape), reversed(target_shape)):
            if s != 1 and s != t:
                ok = False
                break
    if not ok:
        raise ValueError(f"{name} of shape {tuple(src_shape)} does not broadcast to "
                         f"{target_name} shape {tuple(target_shape)}")


def broadcastable_array(x, name, target_shape, target_name):
    """None, or ``x`` as a numeric array that broadcasts to ``target_shape``."""
    if x is None:
        return None
    a = as_numeric_array(x, name)
    check_broadcast(a.shape, target_shape, name, target_name)
    return a


# -- element values: the first bad element -------------------------------------
#
# Every check of element values (class indices, CTC labels and lengths, cosine
# labels) reports the first bad element in C order the same way:
#     "<name>[i, j] = <value> <problem>[: <rule>]"


def element_error(name, where, value, problem, rule=None):
    """The ValueError for a bad element: ``name[where] = value problem[: rule]``.

    ``where`` is the element's index tuple (empty for a 0-d array, which is
    then called just ``name``); ``value`` is shown with ``repr``.
    """
    at = f"{name}[{', '.join(str(int(i)) for i in where)}]" if len(where) else name
    message = f"{at} = {value!r} {problem}"
    return ValueError(message if rule is None else f"{message}: {rule}")


def unravel(flat_index, shape):
    """The index tuple of the element at C-order position ``flat_index``."""
    return np.unravel_index(flat_index, shape) if shape else ()


def integral(a):
    """Boolean mask of the entries of ``a`` that are (finite) integers."""
    if a.dtype.kind in "biu":
        return np.ones(a.shape, bool)
    with np.errstate(invalid="ignore"):
        return np.isfinite(a) & (a == np.floor(a))


# -- per-sample arguments ------------------------------------------------------


def per_sample(x, name, n):
    """None, or ``x`` (any shape with exactly ``n`` elements) as a flat array."""
    if x is None:
        return None
    a = as_numeric_array(x, name)
    if a.size != n:
        raise ValueError(f"{name} must hold one value per sample ({n}), got shape {a.shape} "
                         f"({a.size} element{'s' if a.size != 1 else ''})")
    return a.reshape(-1)


def per_sample_weight(sample_weight, n, dtype):
    """None, or ``sample_weight`` as one float64 factor per sample, shape ``(n,)``.

    The rule of every loss with one value per sample and no elementwise loss
    (TripletLoss, CosineEmbeddingLoss, CTCLoss): any array of exactly ``n``
    elements (``(n,)``, ``(n, 1)``, ...) is one weight per sample, and a
    single element is shared by all; anything else is a ValueError.  Weights
    are cast to the compute dtype first, as every weight is.
    """
    if sample_weight is None:
        return None
    sw = as_numeric_array(sample_weight, "sample_weight")
    if sw.size not in (1, n):
        raise ValueError(f"sample_weight of shape {sw.shape} has {sw.size} elements; the loss "
                         f"has one value per sample, so it needs {n} (one per sample) or 1")
    return row_vector(sw.reshape(-1).astype(dtype, copy=False), n)


def out_grad_vector(out_grad, n):
    """None, or ``out_grad`` broadcast to ``(n,)`` as contiguous float64."""
    og = broadcastable_array(out_grad, "out_grad", (n,), "the loss output")
    return None if og is None else row_vector(og, n)


def lengths(x, name, n, limit, limit_name):
    """None, or ``n`` integers in [0, limit] as a contiguous int64 array."""
    a = per_sample(x, name, n)
    if a is None:
        return None
    shape = np.shape(x)
    for mask, problem in ((~integral(a), "is not an integer"), (a < 0, "is negative"),
                          (a > limit, f"exceeds {limit_name} = {limit}")):
        if mask.any():
            i = int(np.argmax(mask))
            raise element_error(name, unravel(i, shape), a[i].item(), problem)
    return np.ascontiguousarray(a, np.int64)


# -- labels --------------------------------------------------------------------

# Label dtypes the compiled index scan reads directly (native byte order);
# others are cast first.
_INDEX_SOURCE_DTYPES = frozenset(np.dtype(t) for t in (
    np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float32, np.float64))


def class_indices(label, rows_shape, n_rows, n_classes, axis, scan):
    """Sparse labels as an intp array of ``rows_shape``, each an integer in [0, n_classes).

    ``scan(flat, n_classes)`` is the compiled check-and-convert pass: it
    returns ``(indices, position of the first bad label or -1)``.
    """
    if label.size != n_rows:
        raise ValueError(
            f"label has {label.size} elements (shape {label.shape}) but sparse labels need one "
            f"class index per row of pred: pred's shape without axis {axis} is {rows_shape} "
            f"({n_rows} elements)")
    flat = label if label.ndim == 1 else label.reshape(-1)
    dtype = flat.dtype
    if dtype not in _INDEX_SOURCE_DTYPES:
        flat = flat.astype(np.float64 if dtype.kind == "f" else np.int64)
    if not flat.flags.c_contiguous:
        flat = np.ascontiguousarray(flat)
    index, bad = scan(flat, n_classes)
    if bad >= 0:
        value = label.reshape(-1)[bad].item()
        if value != value:
            problem = "is NaN"
        elif math.isfinite(value) and value != math.floor(value):
            problem = "is not an integer"
        else:
            problem = f"is outside [0, {n_classes})"
        raise element_error(
            "label", unravel(bad, label.shape), value, problem,
            f"sparse labels must be integer class indices in [0, {n_classes}) (pred has "
            f"{n_classes} classes along axis {axis})")
    return index if len(rows_shape) == 1 else index.reshape(rows_shape)


def ctc_labels(label, label_layout, given_lengths, n_classes, resolve):
    """Resolve every sample's CTC label length and check the labels inside it.

    ``resolve`` is the compiled pass (see ``_ctc.resolve_labels``).  Returns
    the lengths (int64) and the used labels as a C-contiguous int32
    ``(N, L)`` array (-1 past each length) for the kernel.
    """
    rows = label if label_layout == "NT" else label.T           # (N, L) view
    kind, itemsize = rows.dtype.kind, rows.dtype.itemsize
    if kind in "bi" or (kind == "u" and itemsize < 8):
        values = rows.astype(np.int64, copy=False)
    elif itemsize <= 8:
        # float32/64, and uint64, whose values past int64 must not wrap around
        # to -1 (padding): as float64 they stay huge and out of range.
        values = rows.astype(np.float64, copy=False)
    else:
        # long double: a value float64 cannot hold exactly is not a valid label.
        values = rows.astype(np.float64)
        values[values != rows] = np.nan
    n, width = rows.shape
    label_lengths = np.empty(n, np.int64)
    kernel_label = np.empty((n, width), np.int32)
    bad = resolve(values, given_lengths, n_classes, kernel_label, label_lengths)
    if bad >= 0:
        b, j = divmod(bad, width)
        where = (b, j) if label_layout == "NT" else (j, b)
        value = rows[b, j].item()
        if value == -1:
            # only possible with label_lengths: otherwise the first -1 ends the label
            raise element_error("label", where, value, f"(padding) lies inside "
                                f"label_lengths[{b}] = {given_lengths[b]}")
        if n_classes < 2:
            raise element_error("label", where, value, "is not a valid CTC label",
                                f"pred has only the blank class (C = {n_classes}), so every "
                                f"label must be empty")
        raise element_error("label", where, value, "is not a valid CTC label",
                            f"labels must be integers in [0, {n_classes - 2}] (class "
                            f"{n_classes - 1} is the blank), padded with -1")
    return label_lengths, kernel_label


def check_signed_labels(label):
    """Every label exactly 1 or -1, else ValueError naming the first bad one."""
    bad = ~((label == 1) | (label == -1))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise element_error("label", unravel(first, label.shape), label.reshape(-1)[first].item(),
                            "is not 1 or -1",
                            "labels must be 1 (similar pair) or -1 (dissimilar pair)")
