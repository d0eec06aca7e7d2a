"""Reference implementations of every loss, in plain NumPy and SciPy.

The classes here have the names, constructors, call signatures and error
messages of the compiled losses of :mod:`gluonloss`, and share none of their
code: argument parsing, label parsing, lengths, padding, axes and weight
broadcasting are all written again below, in NumPy, in the caller's own
layout.  Only the checks of scalar constructor arguments (weights, margins,
axis integers, enum strings) come from ``gluonloss._validation``, so that
those messages stay word for word the same.  Nothing here calls a compiled
function, so a bug in the compiled path shows up as a difference.

The arithmetic is written for clarity, not speed: float64 throughout, with
NumPy broadcasting for ``sample_weight`` and ``out_grad``; results are cast to
the compute dtype at the end (float32 when every differentiable input is
float32 or float16, else float64).  Use these classes to cross-check the compiled
kernels, or as a readable statement of what each loss computes.

>>> import numpy as np
>>> from gluonloss import reference
>>> reference.HingeLoss()(np.array([[0.5, 2.0]]), np.array([[1, -1]]))
array([1.75])
"""
import inspect
import math
from collections import namedtuple
from typing import Any

import numpy as np
from scipy.special import expit, log_expit, logsumexp

from gluonloss._settings import CTCSettings, Settings, read_only
from gluonloss._validation import (
    check_choice,
    check_ignore_label,
    check_int,
    check_label_smoothing,
    check_positive,
    check_real,
)

__all__ = [
    "L2Loss", "L1Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss",
    "SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss",
    "PoissonNLLLoss", "SoftmaxCrossEntropyLoss", "SoftmaxCELoss", "KLDivLoss",
    "TripletLoss", "CosineEmbeddingLoss", "SDMLLoss",
    "CTCLoss",
]


# ---------------------------------------------------------------------------
# Array arguments: the same rules (and messages) as the compiled losses.

def _numeric(x, name):
    """``x`` as an ndarray of real numbers (bool, int or float)."""
    if isinstance(x, np.ndarray):
        array = x
    else:
        try:
            array = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{name} could not be converted to an array: {exc}") from exc
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers (bool, int or float), "
                        f"got an array of dtype {array.dtype}")
    return array


def _float_dtype(*differentiable):
    """The compute dtype: float32 when every differentiable input is float32 or
    float16, else float64."""
    both = all(a.dtype.kind == "f" and a.dtype.itemsize <= 4 for a in differentiable)
    return np.dtype(np.float32) if both else np.dtype(np.float64)


def _wide(x, dtype):
    """A real argument as the loss sees it: rounded to the compute dtype, then float64."""
    return np.asarray(x).astype(dtype).astype(np.float64)


def _axis(axis, ndim, name):
    if axis < -ndim or axis >= ndim:
        raise ValueError(f"{name}={axis} is out of range for pred with "
                         f"{ndim} dimension{'' if ndim == 1 else 's'}")
    return axis % ndim


def _like(x, shape, name, like="pred"):
    """``x`` read in C order with ``shape``: it must have as many elements."""
    size = math.prod(shape)
    if x.size != size:
        raise ValueError(f"{name} has {x.size} elements (shape {x.shape}) but {like} has "
                         f"{size} (shape {shape}); they must have the same number of elements")
    return x.reshape(shape)


def _broadcasting(x, name, shape, shape_name):
    """None, or ``x`` as a real array that NumPy broadcasts to ``shape`` unchanged."""
    if x is None:
        return None
    x = _numeric(x, name)
    try:
        fits = x.ndim <= len(shape) and np.broadcast_shapes(x.shape, shape) == tuple(shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name} of shape {x.shape} does not broadcast to "
                         f"{shape_name} shape {tuple(shape)}")
    return x


def _out_grad(out_grad, n):
    """The head gradient as float64 ``(n,)``: ones when None."""
    og = _broadcasting(out_grad, "out_grad", (n,), "the loss output")
    return np.ones(n) if og is None else np.broadcast_to(og.astype(np.float64), (n,))


def _one_per_sample(x, n, dtype):
    """sample_weight of a loss with one value per sample: n values (any shape) or one."""
    if x is None:
        return np.ones(n)
    x = _numeric(x, "sample_weight")
    if x.size not in (1, n):
        raise ValueError(f"sample_weight of shape {x.shape} has {x.size} elements; the loss "
                         f"has one value per sample, so it needs {n} (one per sample) or 1")
    return np.broadcast_to(_wide(x.reshape(-1), dtype), (n,))


def _along(vector, axis, ndim):
    """A per-sample vector shaped to broadcast along ``axis`` of an ndim array."""
    shape = [1] * ndim
    shape[axis] = vector.size
    return vector.reshape(shape)


def _other_axes(ndim, axis):
    return tuple(i for i in range(ndim) if i != axis)


def _keep_nan(grad, *sources):
    """Put NaN into ``grad`` wherever any source is NaN (an undefined branch)."""
    bad = np.zeros(np.shape(grad), bool)
    for s in sources:
        bad |= np.isnan(s)
    return np.where(bad, np.nan, grad)


def _times(coef, value):
    """coef * value, with 0 wherever coef == 0 (the limit, even for inf)."""
    return np.where(coef == 0, 0.0, coef * value)


class _Loss(Settings):
    """What every reference loss shares: weight, batch_axis, the three methods.

    A loss names its call arguments in ``_inputs`` (positional, in MXNet's
    order) and ``_options`` (``(name, default)``, after the inputs; keyword-only
    in ``gradient`` and ``value_and_gradient``); ``forward``, ``gradient`` and
    ``value_and_gradient`` are made from them, and pass the inputs, then the
    options by name and ``out_grad``, to ``_validate``.
    """

    _inputs: tuple[str, ...] = ()
    _options: tuple[tuple[str, Any], ...] = (("sample_weight", None),)
    _forward_doc = "Per-sample loss, shape ``(N,)``."
    _gradient_doc = "Gradient of ``sum(out_grad * loss)`` with respect to pred."

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls._inputs:
            for name in ("forward", "gradient", "value_and_gradient"):
                setattr(cls, name, _reference_method(cls, name))

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _evaluate(self, inputs, options, out_grad):
        """Validate, then compute unless the batch is empty: ``(out, grads)``."""
        with np.errstate(all="ignore"):       # NaN and inf propagate quietly
            call = self._validate(*inputs, **options, out_grad=out_grad)
            if call.n == 0:
                empty = tuple(np.zeros(np.shape(x), call.dtype)
                              for x in self._differentiable(call))
                return np.empty(0, call.dtype), empty if len(empty) > 1 else empty[0]
            return self._compute(call, True, True)


def _reference_method(cls, name):
    """``forward``, ``gradient`` or ``value_and_gradient`` of ``cls``, with the
    signature its ``_inputs`` and ``_options`` describe."""
    kind = inspect.Parameter
    options = [kind(option, kind.POSITIONAL_OR_KEYWORD if name == "forward" else kind.KEYWORD_ONLY,
                    default=default) for option, default in cls._options]
    if name != "forward":
        options.append(kind("out_grad", kind.KEYWORD_ONLY, default=None))
    signature = inspect.Signature(
        [kind("self", kind.POSITIONAL_OR_KEYWORD)]
        + [kind(x, kind.POSITIONAL_OR_KEYWORD) for x in cls._inputs] + options)

    def method(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        given = dict(bound.arguments)
        out_grad = given.pop("out_grad", None)
        inputs = [given.pop(x) for x in ("self", *cls._inputs)][1:]
        out, grads = self._evaluate(inputs, given, out_grad)
        return {"forward": out, "gradient": grads}.get(name, (out, grads))

    method.__signature__ = signature
    method.__name__ = name
    method.__qualname__ = f"{cls.__qualname__}.{name}"
    method.__doc__ = {"forward": cls._forward_doc, "gradient": cls._gradient_doc}.get(
        name, "``(forward(...), gradient(...))``.")
    return method


# ---------------------------------------------------------------------------
# The elementwise losses: out[b] = w * mean over sample b of (loss * s).

_ElementwiseCall = namedtuple("_ElementwiseCall",
                              "pred label sample_weight pos_weight epsilon out_grad dtype axis n")


class _ElementwiseBase(_Loss):
    """``_terms(call, p, y, q)`` gives the elementwise loss and its derivative in p.

    The public methods come from :class:`_Elementwise`, or from the subclass
    itself when it takes more call arguments (pos_weight, epsilon) before
    ``out_grad``.
    """

    _label_name = "label"
    _has_epsilon = False    # PoissonNLLLoss's call argument

    def _differentiable(self, call):
        return (call.pred,)

    def _validate(self, pred, label, sample_weight, pos_weight=None, epsilon=None,
                  out_grad=None):
        if self._has_epsilon:
            epsilon = float(check_real(epsilon, "epsilon"))
        pred = _numeric(pred, "pred")
        label = _numeric(label, self._label_name)
        axis = _axis(self._batch_axis, pred.ndim, "batch_axis")
        label = _like(label, pred.shape, self._label_name)
        n = pred.shape[axis]
        if n and pred.size == 0:
            raise ValueError(f"every sample of pred is empty (pred shape {pred.shape}, "
                             f"batch_axis={self._batch_axis}); the per-sample mean is undefined")
        sample_weight = _broadcasting(sample_weight, "sample_weight", pred.shape,
                                      "the elementwise loss")
        pos_weight = _broadcasting(pos_weight, "pos_weight", pred.shape, "pred")
        og = _broadcasting(out_grad, "out_grad", (n,), "the loss output")
        return _ElementwiseCall(pred, label, sample_weight, pos_weight, epsilon, og,
                                _float_dtype(pred), axis, n)

    def _compute(self, call, want_loss, want_grad):
        dtype, axis, ndim = call.dtype, call.axis, call.pred.ndim
        p = _wide(call.pred, dtype)
        y = _wide(call.label, dtype)
        q = 1.0 if call.pos_weight is None else _wide(call.pos_weight, dtype)
        loss, dloss = self._terms(call, p, y, q)
        s = 1.0 if call.sample_weight is None else _wide(call.sample_weight, dtype)
        ws = self._scalar_weight() * np.broadcast_to(s, p.shape)
        per_sample = p.size // call.n
        out = np.mean(loss * ws, axis=_other_axes(ndim, axis))
        og = np.ones(call.n) if call.out_grad is None else np.broadcast_to(
            call.out_grad.astype(np.float64), (call.n,))
        # Scaled first: out_grad * dloss alone can overflow where the gradient is finite.
        grad = dloss * (ws * _along(og, axis, ndim) / per_sample)
        return (np.ascontiguousarray(out, call.dtype).reshape(call.n),
                np.ascontiguousarray(grad, call.dtype))


class _Elementwise(_ElementwiseBase):
    """The elementwise losses called with (pred, label, sample_weight)."""

    _inputs = ("pred", "label")


class L2Loss(_Elementwise):
    """0.5 (y - p)^2, derivative p - y."""

    def __init__(self, weight=1., batch_axis=0):
        super().__init__(weight, batch_axis)

    def _terms(self, call, p, y, q):
        return 0.5 * (y - p) ** 2, p - y


class L1Loss(_Elementwise):
    """|y - p|, derivative sign(p - y) (0 at p = y)."""

    def __init__(self, weight=None, batch_axis=0):
        super().__init__(weight, batch_axis)

    def _terms(self, call, p, y, q):
        return np.abs(y - p), np.sign(p - y)


class HuberLoss(_Elementwise):
    """d - rho/2 where d = |y - p| > rho, else d^2 / (2 rho)."""

    def __init__(self, rho=1, weight=None, batch_axis=0):
        super().__init__(weight, batch_axis)
        self._rho = check_positive(check_real(rho, "rho"), "rho")

    def _terms(self, call, p, y, q):
        rho = float(self._rho)
        d = np.abs(y - p)
        linear = d > rho
        loss = np.where(linear, d - rho / 2, d ** 2 / (2 * rho))
        grad = np.where(linear, np.sign(p - y), (p - y) / rho)
        return loss, grad


class HingeLoss(_Elementwise):
    """max(0, margin - p y), derivative -y where positive (0 at the kink)."""

    def __init__(self, margin=1, weight=None, batch_axis=0):
        super().__init__(weight, batch_axis)
        self._margin = check_real(margin, "margin")

    def _terms(self, call, p, y, q):
        t = float(self._margin) - p * y
        return np.maximum(0.0, t), _keep_nan(np.where(t > 0, -y, 0.0), t)


class SquaredHingeLoss(_Elementwise):
    """max(0, margin - p y)^2, derivative -2 y max(0, margin - p y)."""

    def __init__(self, margin=1, weight=None, batch_axis=0):
        super().__init__(weight, batch_axis)
        self._margin = check_real(margin, "margin")

    def _terms(self, call, p, y, q):
        h = np.maximum(0.0, float(self._margin) - p * y)
        return h ** 2, -2 * y * h


def _logit_bce_terms(p, y, q):
    """-(q y log sigmoid(p) + (1-y) log sigmoid(-p)) and its derivative."""
    loss = -(_times(q * y, log_expit(p)) + _times(1 - y, log_expit(-p)))
    grad = -q * y * expit(-p) + (1 - y) * expit(p)
    return loss, grad


class LogisticLoss(_Elementwise):
    """Binary cross-entropy of logits; 'signed' labels y in {-1, 1} become (y + 1) / 2."""

    def __init__(self, weight=None, batch_axis=0, label_format="signed"):
        super().__init__(weight, batch_axis)
        self._label_format = check_choice(label_format, "label_format", ("signed", "binary"))

    def _terms(self, call, p, y, q):
        if self._label_format == "signed":
            y = (y + 1) / 2
        return _logit_bce_terms(p, y, 1.0)


class SigmoidBinaryCrossEntropyLoss(_ElementwiseBase):
    """Binary cross-entropy of logits (or of probabilities), positive term times pos_weight."""

    _inputs = ("pred", "label")
    _options = (("sample_weight", None), ("pos_weight", None))

    def __init__(self, from_sigmoid=False, weight=None, batch_axis=0):
        super().__init__(weight, batch_axis)
        self._from_sigmoid = bool(from_sigmoid)

    def _terms(self, call, p, y, q):
        if not self._from_sigmoid:
            return _logit_bce_terms(p, y, q)
        eps = 1e-12
        loss = -(y * q * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
        grad = -y * q / (p + eps) + (1 - y) / (1 - p + eps)
        return loss, grad


SigmoidBCELoss = SigmoidBinaryCrossEntropyLoss


def _stirling_or_zero(t):
    """t log t - t + log(2 pi t)/2 where t > 1, else 0 (NaN stays NaN)."""
    big = t > 1
    ts = np.where(big, t, 2.0)
    s = ts * np.log(ts) - ts + 0.5 * np.log(2 * np.pi * ts)
    return np.where(big, s, np.where(np.isnan(t), np.nan, 0.0))


class PoissonNLLLoss(_ElementwiseBase):
    """exp(p) - t p (from logits) or p - t log(p + epsilon); compute_full adds Stirling."""

    _label_name = "target"
    _has_epsilon = True
    _inputs = ("pred", "target")
    _options = (("sample_weight", None), ("epsilon", 1e-08))

    def __init__(self, weight=None, from_logits=True, batch_axis=0, compute_full=False):
        super().__init__(weight, batch_axis)
        self._from_logits = bool(from_logits)
        self._compute_full = bool(compute_full)

    def _terms(self, call, p, t, q):
        if self._from_logits:
            loss, grad = np.exp(p) - t * p, np.exp(p) - t
        else:
            eps = call.epsilon
            loss, grad = p - t * np.log(p + eps), 1 - t / (p + eps)
        if self._compute_full:
            loss = loss + _stirling_or_zero(t)
        return loss, grad


# ---------------------------------------------------------------------------
# The softmax family: SoftmaxCrossEntropyLoss and KLDivLoss, in pred's own
# layout with the class axis where the caller put it.

_SoftmaxCall = namedtuple("_SoftmaxCall", "pred label sample_weight out_grad dtype axis "
                                          "batch_axis loss_shape n per_sample")


def _class_indices(label, rows_shape, n_classes, axis, ignore=None):
    """Sparse labels as an int64 array of ``rows_shape`` (pred without its class
    axis), each an integer in [0, n_classes), or -1 where the label equals
    ``ignore``; ValueError naming the first bad one."""
    n_rows = math.prod(rows_shape)
    if label.size != n_rows:
        raise ValueError(
            f"label has {label.size} elements (shape {label.shape}) but sparse labels need one "
            f"class index per row of pred: pred's shape without axis {axis} is {rows_shape} "
            f"({n_rows} elements)")
    flat = label.reshape(-1)
    if flat.dtype.kind == "f":
        values = flat.astype(np.float64)
        integral = np.isfinite(values) & (values == np.floor(values))
    else:
        values = flat
        integral = np.ones(flat.shape, bool)
    ignored = np.zeros(flat.shape, bool) if ignore is None else (values == ignore)
    good = ignored | (integral & (values >= 0) & (values < n_classes))
    if not good.all():
        first = int(np.argmin(good))
        # a 0-d label is called just "label", as the compiled losses call it
        where = "[" + ", ".join(str(int(i)) for i in np.unravel_index(first, label.shape)) \
            + "]" if label.ndim else ""
        value = flat[first].item()
        if value != value:
            what = "is NaN"
        elif math.isfinite(value) and value != math.floor(value):
            what = "is not an integer"
        else:
            what = f"is outside [0, {n_classes})"
        raise ValueError(
            f"label{where} = {value!r} {what}: sparse labels must be integer class indices "
            f"in [0, {n_classes}) (pred has {n_classes} classes along axis {axis})"
            + ("" if ignore is None else f" or ignore_label = {ignore}"))
    return np.where(ignored, -1, values).astype(np.int64).reshape(rows_shape)


class _SoftmaxFamily(_Loss):
    """Elementwise loss in pred's layout, then NumPy means and broadcasting."""

    _keeps_class_axis = False       # KLDivLoss: the elementwise loss has pred's shape
    _sparse = False
    _inputs = ("pred", "label")

    def __init__(self, axis, from_logits, weight, batch_axis):
        super().__init__(weight, batch_axis)
        self._axis = check_int(axis, "axis")
        self._from_logits = bool(from_logits)

    axis: int = read_only("The class axis of ``pred``.")

    def _differentiable(self, call):
        return (call.pred,)

    def _validate(self, pred, label, sample_weight, out_grad):
        pred = _numeric(pred, "pred")
        label = _numeric(label, "label")
        shape = pred.shape
        axis = _axis(self._axis, pred.ndim, "axis")
        batch_axis = _axis(self._batch_axis, pred.ndim, "batch_axis")
        n_classes = shape[axis]
        rows_shape = shape[:axis] + shape[axis + 1:]
        if self._keeps_class_axis:
            if axis == batch_axis:
                raise ValueError(
                    f"{type(self).__name__}: axis={self._axis} and batch_axis="
                    f"{self._batch_axis} are the same axis of pred (shape {shape}); the "
                    f"class axis cannot also index the samples")
            loss_shape = shape
            where = "the elementwise loss (pred's shape)"
        else:
            loss_shape = shape[:axis] + (1,) + shape[axis + 1:]
            where = "the elementwise loss (pred's shape with the class axis kept as size 1)"
        n = loss_shape[batch_axis]
        loss_size = math.prod(loss_shape)
        if n and n_classes == 0:
            raise ValueError(f"pred has no classes: its axis {axis} (axis={self._axis}) "
                             f"has length 0 (pred shape {shape})")
        if n and loss_size == 0:
            raise ValueError(f"every sample of pred is empty (pred shape {shape}, "
                             f"batch_axis={self._batch_axis}); the per-sample mean is "
                             f"undefined")
        if self._sparse:
            label = _class_indices(label, rows_shape, n_classes, axis,
                                   getattr(self, "_ignore_label", None))
        else:
            label = _like(label, shape, "label")
        sample_weight = _broadcasting(sample_weight, "sample_weight", loss_shape, where)
        og = _broadcasting(out_grad, "out_grad", (n,), "the loss output")
        return _SoftmaxCall(pred, label, sample_weight, og, _float_dtype(pred), axis,
                            batch_axis, loss_shape, n, loss_size // n if n else 0)

    def _compute(self, call, want_loss, want_grad):
        dtype, axis, batch_axis = call.dtype, call.axis, call.batch_axis
        p = _wide(call.pred, dtype)
        lp = p if self._from_logits else p - logsumexp(p, axis=axis, keepdims=True)
        if self._sparse:            # one-hot rows (all zero where ignored)
            y = np.zeros(p.shape)
            kept = np.expand_dims(call.label >= 0, axis)
            np.put_along_axis(y, np.expand_dims(np.maximum(call.label, 0), axis), 1.0, axis=axis)
            y *= kept
        else:
            y = _wide(call.label, dtype)
        y = self._target(y, p.shape, axis)
        loss = self._elementwise_loss(call, y, lp, p)       # shape call.loss_shape
        s = 1.0 if call.sample_weight is None else _wide(call.sample_weight, dtype)
        ws = self._scalar_weight() * np.broadcast_to(s, call.loss_shape)
        out = np.mean(loss * ws, axis=_other_axes(p.ndim, batch_axis))
        og = np.ones(call.n) if call.out_grad is None else np.broadcast_to(
            call.out_grad.astype(np.float64), (call.n,))
        upstream = ws * _along(og, batch_axis, p.ndim) / call.per_sample
        yu = y * upstream
        if self._from_logits:
            grad = -yu
        else:
            grad = np.exp(lp) * np.sum(yu, axis=axis, keepdims=True) - yu
        if self._sparse:            # ignored positions: exactly 0, whatever pred holds
            grad = np.where(np.expand_dims(call.label >= 0, axis), grad, 0.0)
        return (np.ascontiguousarray(out, dtype).reshape(call.n),
                np.ascontiguousarray(grad, dtype))

    def _target(self, y, shape, axis):
        """The target distribution the loss compares with (the label itself here)."""
        return y


def _label_times(y, lp, p):
    """y * lp, with 0 where y == 0 even for lp = +-inf, unless pred p is NaN there."""
    return np.where(y == 0, np.where(np.isnan(p), np.nan, 0.0), y * lp)


class SoftmaxCrossEntropyLoss(_SoftmaxFamily):
    """-sum_j t_j log softmax(p)_j: t the one-hot (sparse) or given (dense)
    label, smoothed to (1 - eps) t + eps / C and times the class weights;
    0 where a sparse label equals ``ignore_label``."""

    def __init__(self, axis=-1, sparse_label=True, from_logits=False, weight=None,
                 batch_axis=0, *, class_weight=None, ignore_label=None, label_smoothing=0.0):
        super().__init__(axis, from_logits, weight, batch_axis)
        self._sparse_label = bool(sparse_label)
        self._sparse = self._sparse_label
        self._class_weight = _class_weight(class_weight)
        self._ignore_label = check_ignore_label(ignore_label, self._sparse)
        self._label_smoothing = check_label_smoothing(label_smoothing)

    ignore_label: int | None = read_only(
        "The sparse label value whose positions are ignored, or None.")
    label_smoothing: float = read_only("The label smoothing epsilon in [0, 1).")

    @property
    def class_weight(self):
        """The per-class weights (a float64 copy), or None."""
        return None if self._class_weight is None else self._class_weight.copy()

    def _validate(self, pred, label, sample_weight, out_grad):
        call = super()._validate(pred, label, sample_weight, out_grad)
        n_classes = call.pred.shape[call.axis]
        if self._class_weight is not None and self._class_weight.size != n_classes:
            raise ValueError(f"class_weight has {self._class_weight.size} entries but pred "
                             f"has {n_classes} classes along axis {self._axis} (pred shape "
                             f"{call.pred.shape}); it needs one weight per class")
        return call

    def _target(self, y, shape, axis):
        n_classes = shape[axis]
        eps = self._label_smoothing
        if eps:
            present = np.sum(y, axis=axis, keepdims=True) > 0 if self._sparse else True
            y = (1 - eps) * y + np.where(present, eps / n_classes, 0.0)
        if self._class_weight is not None:
            y = y * self._class_weight.reshape([-1 if a == axis else 1
                                                for a in range(len(shape))])
        return y

    def _elementwise_loss(self, call, y, lp, p):
        if self._sparse and not self._label_smoothing:
            # Only the label's own log-probability is read (times its weight).
            index = np.expand_dims(np.maximum(call.label, 0), call.axis)
            picked = np.take_along_axis(lp, index, call.axis)
            if self._class_weight is not None:
                picked = picked * self._class_weight[index]
            loss = -picked
        else:
            loss = -np.sum(_label_times(y, lp, p), axis=call.axis, keepdims=True)
        if self._sparse:
            loss = np.where(np.expand_dims(call.label >= 0, call.axis), loss, 0.0)
        return loss


def _class_weight(class_weight):
    """None, or the class weights as a float64 vector, each finite and >= 0."""
    if class_weight is None:
        return None
    weights = _numeric(class_weight, "class_weight")
    if weights.ndim != 1:
        raise ValueError(f"class_weight must be 1-D (one weight per class), got shape "
                         f"{weights.shape}")
    weights = weights.astype(np.float64)
    for i, value in enumerate(weights.tolist()):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"class_weight[{i}] = {value!r} is not a finite number >= 0")
    return weights


SoftmaxCELoss = SoftmaxCrossEntropyLoss


class KLDivLoss(_SoftmaxFamily):
    """y (log(y + 1e-12) - lp) elementwise, lp = p (from logits) or log softmax(p)."""

    _keeps_class_axis = True

    def __init__(self, from_logits=True, axis=-1, weight=None, batch_axis=0):
        super().__init__(axis, from_logits, weight, batch_axis)

    def _elementwise_loss(self, call, y, lp, p):
        return _label_times(y, np.log(y + 1e-12) - lp, p)


# ---------------------------------------------------------------------------
# TripletLoss, CosineEmbeddingLoss, SDMLLoss: brute force, float64.

_TripletCall = namedtuple("_TripletCall", "pred positive negative sample_weight out_grad "
                                          "dtype axis n")


class TripletLoss(_Loss):
    """max(sum_b ((q - p)^2 - (n - p)^2) + margin, 0) per sample, times its weights."""

    _inputs = ("pred", "positive", "negative")
    _gradient_doc = "``(d_pred, d_positive, d_negative)``."

    def __init__(self, margin=1, weight=None, batch_axis=0):
        super().__init__(weight, batch_axis)
        self._margin = check_real(margin, "margin")

    def _differentiable(self, call):
        return call.pred, call.positive, call.negative

    def _validate(self, pred, positive, negative, sample_weight, out_grad):
        pred = _numeric(pred, "pred")
        positive = _numeric(positive, "positive")
        negative = _numeric(negative, "negative")
        axis = _axis(self._batch_axis, pred.ndim, "batch_axis")
        _like(positive, pred.shape, "positive")
        _like(negative, pred.shape, "negative")
        n = pred.shape[axis]
        dtype = _float_dtype(pred, positive, negative)
        sample_weight = _one_per_sample(sample_weight, n, dtype)
        return _TripletCall(pred, positive, negative, sample_weight, _out_grad(out_grad, n),
                            dtype, axis, n)

    def _compute(self, call, want_loss, want_grad):
        dtype, axis = call.dtype, call.axis
        p = _wide(call.pred, dtype)
        q = _wide(call.positive, dtype).reshape(p.shape)
        n = _wide(call.negative, dtype).reshape(p.shape)
        h = np.sum((q - p) ** 2 - (n - p) ** 2, axis=_other_axes(p.ndim, axis)) + float(
            self._margin)
        ws = self._scalar_weight() * call.sample_weight
        out = np.maximum(h, 0.0) * ws
        active = _keep_nan(np.where(h > 0, 1.0, 0.0), h)
        # The 2 goes on the differences: 2 * ws * out_grad can overflow where
        # the gradient does not.
        c = _along(ws * call.out_grad * active, axis, p.ndim)
        grads = (c * (2 * (n - q)), c * (2 * (q - p)), c * (2 * (p - n)))
        return np.ascontiguousarray(out, dtype), tuple(
            np.ascontiguousarray(g, dtype).reshape(x.shape)
            for g, x in zip(grads, (call.pred, call.positive, call.negative), strict=True))


_CosineCall = namedtuple("_CosineCall", "input1 input2 label sample_weight out_grad dtype n dim")


class CosineEmbeddingLoss(_Loss):
    """1 - cos (label 1) or clip(cos - margin, 0, 1 - margin) (label -1), per vector."""

    _inputs = ("input1", "input2", "label")
    _forward_doc = "Per-vector loss, shape ``(number of vectors,)``."
    _gradient_doc = "``(d_input1, d_input2)``."

    def __init__(self, weight=None, batch_axis=0, margin=0):
        super().__init__(weight, batch_axis)
        self._margin = check_real(margin, "margin")

    def _differentiable(self, call):
        return call.input1, call.input2

    def _validate(self, input1, input2, label, sample_weight, out_grad):
        input2 = _numeric(input2, "input2")
        input1 = _numeric(input1, "input1")
        if input2.ndim == 0:
            raise ValueError("input2 must have at least one axis (the vectors lie along the "
                             "last axis), got a scalar")
        shape = input2.shape
        _like(input1, shape, "input1", like="input2")
        n = math.prod(shape[:-1])
        label = _numeric(label, "label")
        if label.size != n:
            raise ValueError(f"label has {label.size} elements (shape {label.shape}) but the "
                             f"inputs hold {n} vectors (shape {shape}, vectors along "
                             f"the last axis); it needs one label per vector")
        signed = (label == 1) | (label == -1)
        if not signed.all():
            first = int(np.argmin(signed.reshape(-1)))
            raise ValueError(f"{_entry('label', first, label.shape)} = "
                             f"{label.reshape(-1)[first].item()!r} is not 1 or -1: labels must "
                             f"be 1 (similar pair) or -1 (dissimilar pair)")
        dtype = _float_dtype(input1, input2)
        return _CosineCall(input1, input2, label.reshape(n),
                           _one_per_sample(sample_weight, n, dtype), _out_grad(out_grad, n),
                           dtype, n, shape[-1])

    def _compute(self, call, want_loss, want_grad):
        dtype, n = call.dtype, call.n
        x = _wide(call.input1, dtype).reshape(n, call.dim)
        y = _wide(call.input2, dtype).reshape(n, call.dim)
        label = call.label
        m = float(self._margin)
        xx, yy = np.sum(x * x, axis=1), np.sum(y * y, axis=1)
        norms = np.sqrt(xx) * np.sqrt(yy)
        floored = norms <= 1e-12
        den = np.maximum(norms, 1e-12)
        cos = np.sum(x * y, axis=1) / den
        v = cos - m
        clipped = np.where(v > 1 - m, 1 - m, np.where(v < 0, 0.0, v))   # MXNet's clip order
        loss = np.where(label == 1, 1 - cos, clipped)
        dclip = _keep_nan(np.where((v > 0) & (v < 1 - m), 1.0, 0.0), v)
        dloss = np.where(label == 1, -1.0, dclip)
        ws = self._scalar_weight() * call.sample_weight
        k = ws * call.out_grad * dloss
        cx = np.where(floored, 0.0, k * cos / xx)
        cy = np.where(floored, 0.0, k * cos / yy)
        gx = (k / den)[:, None] * y - cx[:, None] * x
        gy = (k / den)[:, None] * x - cy[:, None] * y
        return np.ascontiguousarray(loss * ws, dtype), (
            np.ascontiguousarray(gx, dtype).reshape(call.input1.shape),
            np.ascontiguousarray(gy, dtype).reshape(call.input2.shape))


_SdmlCall = namedtuple("_SdmlCall", "x1 x2 out_grad dtype n")


class SDMLLoss(_Loss):
    """Mean over j of Y_ij (log(Y_ij + 1e-12) - log softmax_j(-|x1_i - x2_j|^2)), times w."""

    _inputs = ("x1", "x2")
    _options = ()
    _forward_doc = "Per-row loss, shape ``(N,)``."
    _gradient_doc = "``(d_x1, d_x2)``."

    def __init__(self, smoothing_parameter=0.3, weight=1., batch_axis=0):
        super().__init__(weight, batch_axis)
        sp = check_real(smoothing_parameter, "smoothing_parameter")
        if not 0 <= sp < 1:
            raise ValueError(f"smoothing_parameter must be in [0, 1), got {sp!r}")
        self._smoothing_parameter = sp

    def _differentiable(self, call):
        return call.x1, call.x2

    def _validate(self, x1, x2, out_grad):
        x1 = _numeric(x1, "x1")
        x2 = _numeric(x2, "x2")
        if x1.ndim != 2:
            raise ValueError(f"x1 must be 2-D (batch, dim), got shape {x1.shape}")
        if x2.shape != x1.shape:
            raise ValueError(f"x2 must have the shape of x1 {x1.shape}, got {x2.shape}")
        n = x1.shape[0]
        if n < 2:
            raise ValueError(f"x1 and x2 need a batch of at least 2 rows (each row's "
                             f"negatives are the other rows), got {n}")
        return _SdmlCall(x1, x2, _out_grad(out_grad, n), _float_dtype(x1, x2), n)

    def _compute(self, call, want_loss, want_grad):
        dtype, n = call.dtype, call.n
        a, b = _wide(call.x1, dtype), _wide(call.x2, dtype)
        diff = a[:, None, :] - b[None, :, :]            # (N, N, D): a_i - b_j
        dist = np.sum(diff ** 2, axis=2)
        lp = -dist - logsumexp(-dist, axis=1, keepdims=True)
        sp = float(self._smoothing_parameter)
        y = np.full((n, n), sp / (n - 1))
        np.fill_diagonal(y, 1 - sp)
        w = self._scalar_weight()
        out = w * np.mean(y * (np.log(y + 1e-12) - lp), axis=1)
        g = 2 * (w / n) * call.out_grad[:, None] * (y - np.exp(lp))
        grad_x1 = np.einsum("ij,ijd->id", g, diff)
        grad_x2 = -np.einsum("ij,ijd->jd", g, diff)
        return np.ascontiguousarray(out, dtype), (np.ascontiguousarray(grad_x1, dtype),
                                                  np.ascontiguousarray(grad_x2, dtype))


# ---------------------------------------------------------------------------
# CTCLoss: the textbook log-space forward-backward (Graves et al. 2006, with
# beta including the emission of its own frame), one sample at a time, no
# rescaling; infeasible labels come out as log p = -inf by themselves.

def _ctc_transitions(extended, blank):
    """Where the s-2 -> s skip is allowed: s is a label differing from l'_{s-2}."""
    skip = np.zeros(len(extended), bool)
    skip[2:] = (extended[2:] != blank) & (extended[2:] != extended[:-2])
    return skip


def _ctc_sample(x, label, blank):
    """-log p(label | x) and its gradient for one sample's (T_b, C) activations."""
    n_frames = x.shape[0]
    if n_frames == 0:
        return (0.0 if len(label) == 0 else np.inf), np.zeros(x.shape)
    log_y = x - np.logaddexp.reduce(x, axis=1, keepdims=True)
    extended = np.full(2 * len(label) + 1, blank)
    extended[1::2] = label
    skip = _ctc_transitions(extended, blank)
    emit = log_y[:, extended]                                      # (T_b, S')
    n_states = len(extended)
    alpha = np.full((n_frames, n_states), -np.inf)
    alpha[0, :2] = emit[0, :2]
    for t in range(1, n_frames):
        a = alpha[t - 1]
        acc = a.copy()
        acc[1:] = np.logaddexp(acc[1:], a[:-1])
        acc[2:] = np.where(skip[2:], np.logaddexp(acc[2:], a[:-2]), acc[2:])
        alpha[t] = acc + emit[t]
    beta = np.full((n_frames, n_states), -np.inf)
    beta[-1, -2:] = emit[-1, -2:]
    for t in range(n_frames - 2, -1, -1):
        b = beta[t + 1]
        acc = b.copy()
        acc[:-1] = np.logaddexp(acc[:-1], b[1:])
        acc[:-2] = np.where(skip[2:], np.logaddexp(acc[:-2], b[2:]), acc[:-2])
        beta[t] = acc + emit[t]
    log_p = np.logaddexp.reduce(alpha[-1, -2:])
    if log_p == -np.inf:
        return np.inf, np.zeros(x.shape)
    if np.isnan(log_p):
        return np.nan, np.full(x.shape, np.nan)
    unreachable = np.isneginf(alpha) | np.isneginf(beta)
    log_gamma = np.where(unreachable, -np.inf, alpha + beta - emit - log_p)
    occupancy = np.zeros(x.shape)
    for s, k in enumerate(extended):
        occupancy[:, k] += np.exp(log_gamma[:, s])
    return -log_p, np.exp(log_y) - occupancy


def _entry(name, flat_index, shape):
    """``name[i, j]`` for the element at a flat C-order index of ``shape``."""
    if not shape:
        return name
    return f"{name}[{', '.join(str(int(i)) for i in np.unravel_index(flat_index, shape))}]"


def _n_values(x, name, n):
    """None, or ``x`` (any shape holding exactly ``n`` values) flattened."""
    if x is None:
        return None
    x = _numeric(x, name)
    if x.size != n:
        raise ValueError(f"{name} must hold one value per sample ({n}), got shape {x.shape} "
                         f"({x.size} element{'' if x.size == 1 else 's'})")
    return x.reshape(-1)


def _ctc_lengths(x, name, n, limit, limit_name):
    """None, or ``n`` integers in [0, limit] as int64: the first bad one is named."""
    values = _n_values(x, name, n)
    if values is None:
        return None
    shape = np.shape(x)
    if values.dtype.kind == "f":
        integral = np.isfinite(values) & (values == np.floor(values))
    else:
        integral = np.ones(values.shape, bool)
    for bad, what in ((~integral, "is not an integer"), (values < 0, "is negative"),
                      (values > limit, f"exceeds {limit_name} = {limit}")):
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{_entry(name, i, shape)} = {values[i].item()!r} {what}")
    return values.astype(np.int64)


def _ctc_labels(label, label_layout, given, n_classes, blank_first):
    """Each sample's label sequence (int64), cut at its length.

    The length is ``given[b]`` or, without ``label_lengths``, the position of
    the sample's first padding value (-1, or 0 when the blank is first; the
    whole row without one).  Every entry inside the length must be an integer
    in [0, C - 2] ([1, C - 1] when the blank is first); entries after it are
    never looked at.
    """
    rows = label if label_layout == "NT" else label.T            # (N, L)
    first, last = (1, n_classes - 1) if blank_first else (0, n_classes - 2)
    pad, blank = (0, 0) if blank_first else (-1, n_classes - 1)
    sequences = []
    for b in range(rows.shape[0]):
        row = rows[b]
        if given is not None:
            length = int(given[b])
        else:
            padding = np.flatnonzero(row == pad)
            length = int(padding[0]) if padding.size else row.size
        used = row[:length]
        if used.dtype.kind == "f":
            good = np.isfinite(used) & (used == np.floor(used))
        else:
            good = np.ones(used.shape, bool)
        good &= (used >= first) & (used <= last) if last >= first else False
        if not np.all(good):
            j = int(np.argmin(good))
            where = f"label[{b}, {j}]" if label_layout == "NT" else f"label[{j}, {b}]"
            value = used[j].item()
            if value == pad:
                raise ValueError(f"{where} = {value!r} (padding) lies inside "
                                 f"label_lengths[{b}] = {given[b]}")
            if last < first:
                raise ValueError(f"{where} = {value!r} is not a valid CTC label: pred has only "
                                 f"the blank class "
                                 f"(C = {n_classes}), so every label must be empty")
            raise ValueError(f"{where} = {value!r} is not a valid CTC label: labels must be "
                             f"integers in [{first}, {last}] (class {blank} is the blank), "
                             f"padded with {pad}")
        sequences.append(used.astype(np.int64))
    return sequences


_CtcCall = namedtuple("_CtcCall", "pred labels pred_lengths sample_weight out_grad dtype n")


class CTCLoss(CTCSettings, _Loss):
    """-log sum over alignments of prod_t softmax(x_t)[pi_t], blank = class C - 1
    (``blank_label='last'``) or class 0 (``'first'``)."""

    _inputs = ("pred", "label")
    _options = (("pred_lengths", None), ("label_lengths", None), ("sample_weight", None))

    def _differentiable(self, call):
        return (call.pred,)

    def _validate(self, pred, label, pred_lengths, label_lengths, sample_weight, out_grad):
        pred = _numeric(pred, "pred")
        label = _numeric(label, "label")
        if pred.ndim != 3:
            raise ValueError(f"pred must have 3 dimensions (layout {self._layout!r}), "
                             f"got shape {pred.shape}")
        if self._layout == "NTC":
            n, n_frames, n_classes = pred.shape
        else:
            n_frames, n, n_classes = pred.shape
        if n_classes == 0:
            raise ValueError(f"pred has 0 classes (shape {pred.shape}); CTC needs at least "
                             "the blank class C-1")
        if label.ndim != 2:
            raise ValueError(f"label must have 2 dimensions (label_layout "
                             f"{self._label_layout!r}), got shape {label.shape}")
        label_n, width = label.shape if self._label_layout == "NT" else label.shape[::-1]
        if label_n != n:
            raise ValueError(f"label of shape {label.shape} (label_layout "
                             f"{self._label_layout!r}) has {label_n} samples but pred of shape "
                             f"{pred.shape} (layout {self._layout!r}) has {n}")
        pred_lengths = _ctc_lengths(pred_lengths, "pred_lengths", n, n_frames,
                                    "the number of frames T")
        label_lengths = _ctc_lengths(label_lengths, "label_lengths", n, width,
                                     "the label width L")
        labels = _ctc_labels(label, self._label_layout, label_lengths, n_classes,
                             self._blank_label == "first")
        dtype = _float_dtype(pred)
        sample_weight = _one_per_sample(sample_weight, n, dtype)
        og = _broadcasting(out_grad, "out_grad", (n,), "the loss output")
        return _CtcCall(pred, labels, pred_lengths, sample_weight, og, dtype, n)

    def _compute(self, call, want_loss, want_grad):
        dtype, n = call.dtype, call.n
        x = _wide(call.pred, dtype)
        if self._layout == "TNC":
            x = x.transpose(1, 0, 2)                         # (N, T, C)
        n_classes = x.shape[2]
        frames = np.full(n, x.shape[1]) if call.pred_lengths is None else call.pred_lengths
        w = self._scalar_weight()
        s = call.sample_weight
        og = np.ones(n) if call.out_grad is None else np.broadcast_to(
            call.out_grad.astype(np.float64), (n,))
        out = np.empty(n)
        grad = np.zeros(x.shape)
        for b in range(n):
            blank = 0 if self._blank_label == "first" else n_classes - 1
            nll, g = _ctc_sample(x[b, :frames[b]], call.labels[b], blank)
            if nll == np.inf and self._zero_infinity:
                out[b] = 0.0
            else:
                out[b] = nll * s[b] * w
            grad[b, :frames[b]] = g * (w * s[b] * og[b])
        if self._layout == "TNC":
            grad = grad.transpose(1, 0, 2)
        return np.ascontiguousarray(out, dtype), np.ascontiguousarray(grad, dtype)
