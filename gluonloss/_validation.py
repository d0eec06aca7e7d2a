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
from collections import namedtuple

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
    if not a.flags.aligned:
        # The kernels read whole elements: an array at an odd address (a view
        # of a byte buffer) is copied once, values unchanged.
        a = a.copy()
    return a


def compute_dtype(*differentiable):
    """float32 when every differentiable input is float32 or float16, else float64."""
    for a in differentiable:
        if a.dtype.kind != "f" or a.dtype.itemsize > 4:   # any byte order
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


def check_class_weight(class_weight):
    """None, or SoftmaxCrossEntropyLoss's ``class_weight`` as read-only copies,
    ``{numpy.float32: ..., numpy.float64: ...}``, each finite and >= 0."""
    if class_weight is None:
        return None
    weights = as_numeric_array(class_weight, "class_weight")
    if weights.ndim != 1:
        raise ValueError(f"class_weight must be 1-D (one weight per class), got shape "
                         f"{weights.shape}")
    weights = weights.astype(np.float64)
    bad = ~(np.isfinite(weights) & (weights >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"class_weight[{i}] = {float(weights[i])!r} is not a finite number >= 0")
    copies = {np.float64: weights, np.float32: weights.astype(np.float32)}
    for copy in copies.values():
        copy.flags.writeable = False
    return copies


def check_class_count(n_weights, n_classes, axis, shape):
    """SoftmaxCrossEntropyLoss's ``class_weight`` must have one entry per class."""
    if n_weights != n_classes:
        raise ValueError(f"class_weight has {n_weights} entries but pred has {n_classes} "
                         f"classes along axis {axis} (pred shape {shape}); it needs one "
                         f"weight per class")


def check_ignore_label(ignore_label, sparse):
    """None, or SoftmaxCrossEntropyLoss's ``ignore_label`` as a Python int."""
    if ignore_label is None:
        return None
    if isinstance(ignore_label, (bool, np.bool_)):
        raise TypeError(f"ignore_label must be an integer or None, got {ignore_label!r}")
    value = check_int(ignore_label, "ignore_label")
    if not -2 ** 63 <= value < 2 ** 63:
        raise ValueError(f"ignore_label must fit in 64 bits, got {value}")
    if not sparse:
        raise ValueError(f"ignore_label={value} needs sparse labels (sparse_label=True): "
                         f"dense labels have no label value to ignore")
    return value


def check_label_smoothing(label_smoothing):
    """SoftmaxCrossEntropyLoss's ``label_smoothing`` as a float in [0, 1)."""
    check_real(label_smoothing, "label_smoothing")
    value = float(label_smoothing)
    if not 0 <= value < 1:
        raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing!r}")
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
        for s, t in zip(reversed(src_shape), reversed(target_shape), strict=False):
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


def class_indices(label, rows_shape, n_rows, n_classes, axis, scan, ignore=None):
    """Sparse labels as an intp array of ``rows_shape``, each an integer in [0, n_classes)
    or -1 where it equals ``ignore`` (None: no label is ignored).

    ``scan(flat, n_classes, ignore)`` is the compiled check-and-convert pass: it
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
    index, bad = scan(flat, n_classes, ignore)
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
            f"{n_classes} classes along axis {axis})"
            + ("" if ignore is None else f" or ignore_label = {ignore}"))
    return index if len(rows_shape) == 1 else index.reshape(rows_shape)


def ctc_labels(label, label_layout, given_lengths, n_classes, resolve, blank_first=False):
    """Resolve every sample's CTC label length and check the labels inside it.

    The blank is class C-1 and labels are padded with -1, or (``blank_first``)
    the blank is class 0 and labels are padded with 0.  ``resolve`` is the
    compiled pass (see ``_ctc.resolve_labels``).  Returns
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
    bad = resolve(values, given_lengths, n_classes, kernel_label, label_lengths, blank_first)
    if bad >= 0:
        b, j = divmod(bad, width)
        where = (b, j) if label_layout == "NT" else (j, b)
        value = rows[b, j].item()
        pad, blank = (0, 0) if blank_first else (-1, n_classes - 1)
        first, last = (1, n_classes - 1) if blank_first else (0, n_classes - 2)
        if value == pad:
            # only possible with label_lengths: otherwise the first -1 ends the label
            raise element_error("label", where, value, f"(padding) lies inside "
                                f"label_lengths[{b}] = {given_lengths[b]}")
        if n_classes < 2:
            raise element_error("label", where, value, "is not a valid CTC label",
                                f"pred has only the blank class (C = {n_classes}), so every "
                                f"label must be empty")
        raise element_error("label", where, value, "is not a valid CTC label",
                            f"labels must be integers in [{first}, {last}] (class "
                            f"{blank} is the blank), padded with {pad}")
    return label_lengths, kernel_label


def check_signed_labels(label):
    """Every label exactly 1 or -1, else ValueError naming the first bad one."""
    bad = ~((label == 1) | (label == -1))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise element_error("label", unravel(first, label.shape), label.reshape(-1)[first].item(),
                            "is not 1 or -1",
                            "labels must be 1 (similar pair) or -1 (dissimilar pair)")


# -- the validated call records --------------------------------------------------
#
# A loss's ``_validate`` (one of the validate_* functions below, taking the
# loss object as its first argument) turns the raw call arguments into one of
# these records; ``_compute`` then only moves layouts and runs the kernel.

# Elementwise losses: the arguments in the caller's layout.
# ``loss`` is the loss with its per-call options applied (PoissonNLLLoss's
# epsilon), a copy when they change it, so that concurrent calls never share one.
ElementwiseCall = namedtuple("ElementwiseCall", "pred label sample_weight pos_weight out_grad "
                                                "dtype axis n_rows n_cols loss")
# Softmax family: ``label`` is the intp class index array in the shape of pred
# without ``axis`` (sparse) or the label with pred's shape (dense);
# ``loss_shape`` is the shape of the elementwise loss, ``n_out`` the number of
# samples, ``n_per_sample`` the elements of the loss per sample.
SoftmaxCall = namedtuple("SoftmaxCall", "pred label sample_weight out_grad dtype axis "
                                        "batch_axis loss_shape n_out n_per_sample")
TripletCall = namedtuple("TripletCall", "pred positive negative row_weight out_grad dtype "
                                        "axis n_rows n_cols")
CosineCall = namedtuple("CosineCall", "input1 input2 label row_weight out_grad dtype "
                                      "n_vectors dim")
SdmlCall = namedtuple("SdmlCall", "x1 x2 out_grad dtype n dim")
# CTC: pred and label in the caller's layout; label_lengths always resolved
# (kernel_label: the used labels as C-contiguous int32 (N, L), -1 past each
# length); pred_lengths may be None (all T).
CtcCall = namedtuple("CtcCall", "pred label pred_lengths label_lengths kernel_label "
                                "sample_weight out_grad dtype n_samples n_frames n_classes")


# -- one validator per family ----------------------------------------------------

def validate_elementwise(loss, inputs, options, out_grad):
    pred, label = inputs
    sample_weight = options[0]
    pos_weight = options[1] if loss._has_pos_weight else None
    label_name = loss._inputs[1]
    pred = as_numeric_array(pred, "pred")
    label = as_numeric_array(label, label_name)
    shape = pred.shape
    axis = normalize_axis(loss._batch_axis, pred.ndim, "batch_axis")
    label = reshape_like(label, shape, pred.size, label_name)
    n_rows = shape[axis]
    n_cols = math.prod(shape[:axis] + shape[axis + 1:])
    if n_cols == 0 and n_rows:
        raise ValueError(f"every sample of pred is empty (pred shape {shape}, "
                         f"batch_axis={loss._batch_axis}); the per-sample mean is undefined")
    sample_weight = broadcastable_array(sample_weight, "sample_weight", shape,
                                        "the elementwise loss")
    pos_weight = broadcastable_array(pos_weight, "pos_weight", shape, "pred")
    out_grad = broadcastable_array(out_grad, "out_grad", (n_rows,), "the loss output")
    return ElementwiseCall(pred, label, sample_weight, pos_weight, out_grad, compute_dtype(pred),
                           axis, n_rows, n_cols, loss)


def validate_softmax(loss, inputs, options, out_grad):
    pred, label = inputs
    sample_weight = options[0]
    pred = as_numeric_array(pred, "pred")
    label = as_numeric_array(label, "label")
    shape = pred.shape
    ndim = len(shape)
    axis = normalize_axis(loss._axis, ndim, "axis")
    batch_axis = normalize_axis(loss._batch_axis, ndim, "batch_axis")
    n_classes = shape[axis]
    rows_shape = shape[:axis] + shape[axis + 1:]
    class_loss_shape = shape[:axis] + (1,) + shape[axis + 1:]
    if loss._elementwise_over_classes:
        if axis == batch_axis:
            raise ValueError(
                f"{type(loss).__name__}: axis={loss._axis} and batch_axis="
                f"{loss._batch_axis} are the same axis of pred (shape {shape}); the "
                f"class axis cannot also index the samples")
        loss_shape = shape
    else:
        loss_shape = class_loss_shape
    n_out = loss_shape[batch_axis]
    n_rows = pred.size // n_classes if n_classes else math.prod(rows_shape)
    n_loss = n_rows if loss_shape is class_loss_shape else pred.size
    if n_out:
        if n_classes == 0:
            raise ValueError(f"pred has no classes: its axis {axis} (axis={loss._axis}) "
                             f"has length 0 (pred shape {shape})")
        if n_loss == 0:
            raise ValueError(f"every sample of pred is empty (pred shape {shape}, "
                             f"batch_axis={loss._batch_axis}); the per-sample mean is "
                             f"undefined")
    if loss._sparse:
        label = class_indices(label, rows_shape, n_rows, n_classes, axis,
                              loss._kernels.class_indices, loss._ignore_label)
    else:
        label = reshape_like(label, shape, pred.size, "label")
    if sample_weight is not None:
        sample_weight = broadcastable_array(
            sample_weight, "sample_weight", loss_shape,
            "the elementwise loss (pred's shape with the class axis kept as size 1)"
            if loss_shape is class_loss_shape else "the elementwise loss (pred's shape)")
    if out_grad is not None:
        out_grad = broadcastable_array(out_grad, "out_grad", (n_out,), "the loss output")
    if loss._class_weights is not None:
        check_class_count(loss._class_weights[np.float64].size, n_classes, loss._axis, shape)
    return SoftmaxCall(pred, label, sample_weight, out_grad, compute_dtype(pred), axis, batch_axis,
                       loss_shape, n_out, n_loss // n_out if n_out else 0)


def validate_triplet(loss, inputs, options, out_grad):
    pred, positive, negative = inputs
    sample_weight = options[0]
    pred = as_numeric_array(pred, "pred")
    positive = as_numeric_array(positive, "positive")
    negative = as_numeric_array(negative, "negative")
    shape = pred.shape
    axis = normalize_axis(loss._batch_axis, pred.ndim, "batch_axis")
    reshape_like(positive, shape, pred.size, "positive")
    reshape_like(negative, shape, pred.size, "negative")
    n_rows = shape[axis]
    n_cols = math.prod(shape[:axis] + shape[axis + 1:])
    dtype = compute_dtype(pred, positive, negative)
    return TripletCall(pred, positive, negative, per_sample_weight(sample_weight, n_rows, dtype),
                       out_grad_vector(out_grad, n_rows), dtype, axis, n_rows, n_cols)


def validate_cosine(loss, inputs, options, out_grad):
    input1, input2, label = inputs
    sample_weight = options[0]
    input2 = as_numeric_array(input2, "input2")
    input1 = as_numeric_array(input1, "input1")
    if input2.ndim == 0:
        raise ValueError("input2 must have at least one axis (the vectors lie along the "
                         "last axis), got a scalar")
    shape = input2.shape
    reshape_like(input1, shape, input2.size, "input1", like="input2")
    n_vectors = math.prod(shape[:-1])
    label = as_numeric_array(label, "label")
    if label.size != n_vectors:
        raise ValueError(f"label has {label.size} elements (shape {label.shape}) but the "
                         f"inputs hold {n_vectors} vectors (shape {shape}, vectors along "
                         f"the last axis); it needs one label per vector")
    check_signed_labels(label)
    dtype = compute_dtype(input1, input2)
    return CosineCall(input1, input2, label, per_sample_weight(sample_weight, n_vectors, dtype),
                      out_grad_vector(out_grad, n_vectors), dtype, n_vectors, shape[-1])


def validate_sdml(loss, inputs, options, out_grad):
    x1, x2 = inputs
    x1 = as_numeric_array(x1, "x1")
    x2 = as_numeric_array(x2, "x2")
    if x1.ndim != 2:
        raise ValueError(f"x1 must be 2-D (batch, dim), got shape {x1.shape}")
    if x2.shape != x1.shape:
        raise ValueError(f"x2 must have the shape of x1 {x1.shape}, got {x2.shape}")
    n, dim = x1.shape
    if n < 2:
        raise ValueError(f"x1 and x2 need a batch of at least 2 rows (each row's "
                         f"negatives are the other rows), got {n}")
    return SdmlCall(x1, x2, out_grad_vector(out_grad, n), compute_dtype(x1, x2), n, dim)


def validate_ctc(loss, inputs, options, out_grad):
    pred, label = inputs
    pred_lengths, label_lengths, sample_weight = options
    pred = as_numeric_array(pred, "pred")
    label = as_numeric_array(label, "label")
    if pred.ndim != 3:
        raise ValueError(f"pred must have 3 dimensions (layout {loss._layout!r}), "
                         f"got shape {pred.shape}")
    batch_axis = loss._layout.index("N")
    n_samples, n_frames, n_classes = (pred.shape[batch_axis], pred.shape[1 - batch_axis],
                                      pred.shape[2])
    if n_classes == 0:
        raise ValueError(f"pred has 0 classes (shape {pred.shape}); CTC needs at least "
                         "the blank class C-1")
    if label.ndim != 2:
        raise ValueError(f"label must have 2 dimensions (label_layout "
                         f"{loss._label_layout!r}), got shape {label.shape}")
    label_batch_axis = loss._label_layout.index("N")
    if label.shape[label_batch_axis] != n_samples:
        raise ValueError(f"label of shape {label.shape} (label_layout "
                         f"{loss._label_layout!r}) has {label.shape[label_batch_axis]} "
                         f"samples but pred of shape {pred.shape} (layout "
                         f"{loss._layout!r}) has {n_samples}")
    width = label.shape[1 - label_batch_axis]
    pred_lengths = lengths(pred_lengths, "pred_lengths", n_samples, n_frames,
                            "the number of frames T")
    given = lengths(label_lengths, "label_lengths", n_samples, width, "the label width L")
    label_lengths, kernel_label = ctc_labels(label, loss._label_layout, given, n_classes,
                                             loss._kernels.resolve_labels,
                                             loss._blank_label == "first")
    dtype = compute_dtype(pred)
    sample_weight = per_sample_weight(sample_weight, n_samples, dtype)
    out_grad = out_grad_vector(out_grad, n_samples)
    return CtcCall(pred, label, pred_lengths, label_lengths, kernel_label, sample_weight, out_grad,
                   dtype, n_samples, n_frames, n_classes)
