r"""The softmax family: SoftmaxCrossEntropyLoss (alias SoftmaxCELoss) and
KLDivLoss.

Both take a log-softmax of ``pred`` along ``axis`` (unless ``from_logits``)
and compare it with a label.  With :math:`C` classes along ``axis``,
:math:`\mathrm{lp} = \log\mathrm{softmax}(p)` (or :math:`p` itself when
``from_logits``), :math:`s` = sample_weight, :math:`w` = weight and
:math:`g` = out_grad, the gradient of :math:`\sum_b g_b\,\mathrm{out}_b` is

.. math::

    \frac{\partial}{\partial p_j} = \mathrm{softmax}(p)_j \sum_k y_k u_k - y_j u_j
    \quad\text{or, from logits,}\quad -y_j u_j

where :math:`y` is the (one-hot or dense) label and :math:`u` the upstream
gradient of the elementwise loss, :math:`u = w\,s\,g_b / M` with :math:`M`
elements of the elementwise loss per sample.

How ``axis`` and ``batch_axis`` combine
---------------------------------------
They are independent.  The elementwise cross-entropy has pred's shape with
``axis`` kept as size 1, so ``M = (elements of pred per sample) / C``; the
elementwise KL divergence has pred's full shape.  When ``axis`` and
``batch_axis`` name the same axis, SoftmaxCrossEntropyLoss follows MXNet:
the loss has a single entry along the batch axis, so the whole array is one
sample and ``out`` has shape ``(1,)`` (this is how a 1-D ``pred`` of ``C``
logits is scored).  KLDivLoss refuses that combination with a ValueError: its
"samples" would be the classes themselves (MXNet returns one mean per class),
which is not a per-sample loss.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from gluonloss._base import Loss
from gluonloss._dispatch import load_kernels
from gluonloss._layout import (
    class_rows_layout,
    from_class_rows,
    row_vector,
    split_sample_weight,
    to_class_rows,
)
from gluonloss._settings import read_only
from gluonloss._threads import threads_for
from gluonloss._validation import (
    check_class_weight,
    check_ignore_label,
    check_int,
    check_label_smoothing,
    validate_softmax,
)

_softmax = load_kernels("_softmax")

__all__ = ["SoftmaxCrossEntropyLoss", "SoftmaxCELoss", "KLDivLoss"]


class _SoftmaxFamilyLoss(Loss):
    """Shared driver: validation, layout and the kernel call."""

    _kind = None            # kernel kind id in gluonloss._softmax
    _inputs = ("pred", "label")
    _differentiable = ("pred",)
    _options = (("sample_weight", None),)
    _parameter_docs = {
        "pred": ("array_like",
                 "Logits (or log-probabilities with ``from_logits=True``) with C\n"
                 "classes along ``axis``; ``pred.shape[batch_axis]`` is N."),
        "label": ("array_like",
                  "Class indices (SoftmaxCrossEntropyLoss with ``sparse_label=True``)\n"
                  "or per-class values with ``pred``'s number of elements; see the\nclass."),
        "sample_weight": ("array_like, optional",
                          "Broadcasts to the elementwise loss: ``pred``'s shape with\n"
                          "``axis`` as size 1 for cross-entropy, ``pred``'s shape for KL."),
    }
    _elementwise_over_classes = False   # True: the loss keeps the class axis (KL)
    _sparse = False                     # True: class-index labels
    _kernels = _softmax
    # Cross-entropy options (SoftmaxCrossEntropyLoss sets them; KL has none).
    _ignore_label = None
    _class_weights = None               # {dtype: (C,) array} or None
    _label_smoothing = 0.0
    _has_options = False
    _fast_options: tuple | None = None  # the options as the fast entry takes them, or None

    def _kernel_options(self, dtype):
        return {"class_weight": None if self._class_weights is None
                else self._class_weights[dtype],
                "smoothing": self._label_smoothing, "ignore": self._ignore_label is not None}

    def __init__(self, axis, from_logits, weight, batch_axis):
        super().__init__(weight, batch_axis)
        self._axis = check_int(axis, "axis")
        self._from_logits = bool(from_logits)

    axis: int = read_only("The class axis of ``pred``.")

    _count = "n_out"

    # -- the two halves of a call -------------------------------------------

    _validate = validate_softmax
    # Sparse cross-entropy only (the entry returns None for the other kinds).
    _fast_entry = staticmethod(_softmax.sparse_ce_fast)

    def _fast_constants(self):
        return (self._kind, self._from_logits, self._scalar_weight(), self._axis,
                self._batch_axis, self._option_defaults, self._fast_options)

    def _compute(self, call, want_loss, want_grad):
        dtype, axis, shape = call.dtype, call.axis, call.pred.shape
        pred = to_class_rows(call.pred, axis, dtype)
        n_rows, n_classes = pred.shape
        if n_rows == call.n_out:       # one row per sample (covers the usual (N, C))
            n_samples, n_inner = n_rows, 1
        else:
            n_samples, n_inner = class_rows_layout(shape, axis, call.batch_axis)
        if self._sparse:
            label = None
            index = call.label if call.label.ndim == 1 else call.label.reshape(-1)
        else:
            label, index = to_class_rows(call.label, axis, dtype), None
        if call.sample_weight is None:
            weight, strides, sample_factor = None, (0, 0, 0), None
        else:
            weight, strides, sample_factor = self._weight_operand(call, n_rows, n_classes)
        out_grad = None if call.out_grad is None or not want_grad else row_vector(
            call.out_grad, call.n_out)
        out = np.empty(call.n_out, dtype) if want_loss else None
        grad = np.empty((n_rows, n_classes), dtype) if want_grad else None
        # The options only when set: the plain call keeps its cost.
        options = self._kernel_options(dtype) if self._has_options else {}
        _softmax.softmax_loss(
            kind_id=self._kind, from_logits=self._from_logits, pred=pred, label=label,
            index=index, weight=weight, w_sample_stride=strides[0], w_row_stride=strides[1],
            w_class_stride=strides[2], n_samples=n_samples, n_inner=n_inner,
            scale=self._scalar_weight() / call.n_per_sample, sample_weight=sample_factor,
            out_grad=out_grad, out=out, grad=grad, n_threads=threads_for(pred.size), **options)
        return out, (from_class_rows(grad, shape, axis) if want_grad else None)

    def _weight_operand(self, call, n_rows, n_classes):
        """(operand, (sample, row, class) strides, per-sample factor) for the kernel."""
        sw = call.sample_weight
        shape, axis, batch_axis = call.pred.shape, call.axis, call.batch_axis
        ndim = len(shape)
        sw = sw.reshape((1,) * (ndim - sw.ndim) + sw.shape)
        rows_per_sample = n_rows // call.n_out
        if sw.shape[axis] == 1:
            # One weight per softmax row: address it in the loss shape with the
            # class axis as size 1, where rows are in pred's C order.
            row_shape = shape[:axis] + (1,) + shape[axis + 1:]
            factor, elem = split_sample_weight(sw, row_shape, batch_axis, rows_per_sample,
                                               call.dtype)
            if elem is None:
                return None, (0, 0, 0), factor
            return elem, (rows_per_sample if elem.shape[0] > 1 else 0, 1, 0), None
        # Varies along the classes (KLDivLoss only): per element, class axis last.
        moved = np.moveaxis(sw, axis, -1)
        moved_shape = shape[:axis] + shape[axis + 1:] + (n_classes,)
        moved_batch = batch_axis if batch_axis < axis else batch_axis - 1
        factor, elem = split_sample_weight(moved, moved_shape, moved_batch,
                                           rows_per_sample * n_classes, call.dtype)
        return elem, (rows_per_sample * n_classes if elem.shape[0] > 1 else 0,
                      n_classes, 1), None


class SoftmaxCrossEntropyLoss(_SoftmaxFamilyLoss):
    r"""Softmax cross-entropy between logits and class labels (alias SoftmaxCELoss).

    With :math:`\mathrm{lp} = \log\mathrm{softmax}(p)` along ``axis`` (or
    :math:`\mathrm{lp} = p` when ``from_logits``) and :math:`u` the upstream
    gradient of the elementwise loss (:math:`w\,s\,g_b/M`):

    .. math::
        \text{sparse:}\quad \ell = -\mathrm{lp}_{y}, \qquad
        \text{dense:}\quad \ell = -\sum_j y_j\,\mathrm{lp}_j

    .. math::
        \frac{\partial}{\partial p_j} = u\left(\mathrm{softmax}(p)_j \sum_k y_k - y_j\right)
        \quad\text{or, from logits,}\quad -u\,y_j

    (sparse labels act as one-hot :math:`y`).  :math:`\ell` has pred's shape
    with ``axis`` kept as size 1; ``out[b] = weight * mean_b(ℓ * s)`` over its
    :math:`M` = (elements of pred per sample) / C entries per sample.  The
    log-sum-exp is computed stably: logits of ±1e4 do not overflow, and a
    ``-inf`` logit that is not the label costs nothing (the label's own
    ``-inf`` gives loss ``+inf``).

    Parameters
    ----------
    axis : int, default -1
        The class axis (negative allowed), independent of ``batch_axis``.  If
        both name the same axis the whole array is one sample (``out`` has
        shape ``(1,)``), as in MXNet: a 1-D ``pred`` is one sample.
    sparse_label : bool, default True
        True: ``label`` holds integer class indices (integer dtype, or floats
        with integral values), one per row, shaped like ``pred`` without
        ``axis`` (or any shape with that many elements, read in C order);
        each must lie in [0, C).  False: ``label`` holds per-class values
        (probabilities), with pred's number of elements, read in C order as
        pred's shape.
    from_logits : bool, default False
        Whether ``pred`` already holds log-probabilities (no log-softmax).
    weight : float or None
        Global scalar weight; None means 1.
    batch_axis : int, default 0
        The axis of ``pred`` that indexes samples.
    class_weight : array_like or None, default None
        Keyword-only.  C finite weights >= 0, one per class: the target of
        class k is multiplied by ``class_weight[k]`` (sparse labels without
        smoothing: each position's loss by ``class_weight[label]``).
    ignore_label : int or None, default None
        Keyword-only, sparse labels only.  Positions whose label equals it
        get loss 0 and gradient 0 (and still count in the per-sample mean);
        it may lie outside [0, C), e.g. -1 or -100.
    label_smoothing : float, default 0.0
        Keyword-only, in [0, 1): the target becomes ``(1 - eps) * y + eps / C``
        (y one-hot for sparse labels).

    Notes
    -----
    Call ``loss(pred, label, sample_weight=None)``: ``sample_weight``
    broadcasts to the elementwise loss (pred's shape with ``axis`` as size 1,
    e.g. ``(N, 1)``); returns shape ``(N,)``.

    The options replace the label by the target
    :math:`t_k = c_k((1-\varepsilon)\,y_k + \varepsilon/C)` (:math:`c` the
    class weights, :math:`\varepsilon` the smoothing) in
    :math:`\ell = -\sum_k t_k\,\mathrm{lp}_k` and in the gradient
    :math:`u(\mathrm{softmax}(p)_k \sum_j t_j - t_k)` (:math:`-u\,t_k` from
    logits, where ``pred`` is :math:`\mathrm{lp}` itself).  For a 2-D
    ``(N, C)`` pred with the class axis last this is exactly
    ``torch.nn.functional.cross_entropy(pred, label, weight=class_weight,
    ignore_index=ignore_label, label_smoothing=eps, reduction='none')``; for
    other shapes ``out`` is the per-sample mean of this per-position value.
    They are computed in the same pass as the plain loss.

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> loss = gl.SoftmaxCrossEntropyLoss()
    >>> pred = np.array([[1., 10.], [8., 2.]])
    >>> loss(pred, np.array([0, 1]))             # log(1 + e^9), log(1 + e^6)
    array([9.0001234 , 6.00247569])
    >>> loss.gradient(np.array([[0., 0.]]), np.array([1]))   # softmax - onehot
    array([[ 0.5, -0.5]])

    Class weights, an ignored padding label and label smoothing:

    >>> padded = gl.SoftmaxCrossEntropyLoss(class_weight=[1.0, 2.0], ignore_label=-1)
    >>> padded(pred, np.array([1, -1]))                       # 2 log(1 + e^-9), 0
    array([0.0002468, 0.       ])
    >>> smooth = gl.SoftmaxCrossEntropyLoss(label_smoothing=0.2)
    >>> smooth.gradient(np.array([[0., 0.]]), np.array([1]))  # softmax - (0.1, 0.9)
    array([[ 0.4, -0.4]])
    """

    _kind = _softmax.SPARSE_CE

    def __init__(self, axis: int = -1, sparse_label: bool = True, from_logits: bool = False,
                 weight: float | None = None, batch_axis: int = 0, *,
                 class_weight: ArrayLike | None = None, ignore_label: int | None = None,
                 label_smoothing: float = 0.0) -> None:
        super().__init__(axis, from_logits, weight, batch_axis)
        self._sparse_label = bool(sparse_label)
        self._sparse = self._sparse_label
        self._kind = _softmax.SPARSE_CE if self._sparse else _softmax.DENSE_CE
        self._class_weights = check_class_weight(class_weight)
        self._ignore_label = check_ignore_label(ignore_label, self._sparse)
        self._label_smoothing = check_label_smoothing(label_smoothing)
        self._has_options = (self._class_weights is not None or self._ignore_label is not None
                             or self._label_smoothing != 0)
        if self._has_options:
            weights = self._class_weights
            self._fast_options = (None if weights is None else weights[np.float32],
                                  None if weights is None else weights[np.float64],
                                  self._label_smoothing, self._ignore_label)

    @property
    def class_weight(self) -> np.ndarray | None:
        """The per-class weights (a read-only float64 copy), or None."""
        return None if self._class_weights is None else self._class_weights[np.float64]

    ignore_label: int | None = read_only(
        "The sparse label value whose positions are ignored, or None.")
    label_smoothing: float = read_only("The label smoothing epsilon in [0, 1).")

    def __repr__(self) -> str:
        text = super().__repr__()[:-1]
        if self._class_weights is not None:
            text += f", class_weight={self.class_weight.tolist()}"
        if self._ignore_label is not None:
            text += f", ignore_label={self._ignore_label}"
        if self._label_smoothing:
            text += f", label_smoothing={self._label_smoothing}"
        return text + ")"


SoftmaxCELoss = SoftmaxCrossEntropyLoss


class KLDivLoss(_SoftmaxFamilyLoss):
    r"""Kullback-Leibler divergence of the label distribution from softmax(pred).

    With :math:`\mathrm{lp} = p` when ``from_logits`` (the default: ``pred``
    holds log-probabilities) or :math:`\log\mathrm{softmax}(p)` along
    ``axis`` otherwise:

    .. math::
        \ell = y \left(\log(y + 10^{-12}) - \mathrm{lp}\right), \qquad
        \frac{\partial}{\partial p_j} = \mathrm{softmax}(p)_j \sum_k y_k u_k - y_j u_j
        \quad\text{or, from logits,}\quad -y_j u_j

    elementwise, with :math:`u = w\,s\,g_b/M` per element; ``out[b]`` is the
    **mean** of :math:`\ell \cdot s \cdot w` over the :math:`M` elements of
    sample b (as the MXNet documentation says, "averaged"; MXNet 1.9.1's code
    sums over the class axis instead: multiply by C to compare).  A term with
    :math:`y = 0` is 0 even where :math:`\mathrm{lp} = -\infty`.

    Parameters
    ----------
    from_logits : bool, default True
        Whether ``pred`` already holds log-probabilities.
    axis : int, default -1
        The class axis for the log-softmax; must differ from ``batch_axis``.
    weight : float or None
        Global scalar weight; None means 1.
    batch_axis : int, default 0
        The axis of ``pred`` that indexes samples; never the class ``axis``
        (a ValueError at the call).

    Notes
    -----
    Call ``loss(pred, label, sample_weight=None)``: ``label`` with pred's
    number of elements (read in C order as pred's shape), ``sample_weight``
    broadcasting to pred (per sample ``(N, 1)``, per class ``(1, C)``, ...);
    returns shape ``(N,)``.

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> y = np.array([[0.5, 0.5]])
    >>> gl.KLDivLoss()(np.log(np.array([[0.25, 0.75]])), y)   # (log 2 + log(2/3)) / 4
    array([0.07192052])
    >>> gl.KLDivLoss(from_logits=False).gradient(np.array([[0., 2.]]), y).round(6)
    array([[-0.190399,  0.190399]])
    """

    _kind = _softmax.KL_DIV
    _elementwise_over_classes = True
    _sparse = False

    def __init__(self, from_logits: bool = True, axis: int = -1, weight: float | None = None,
                 batch_axis: int = 0) -> None:
        super().__init__(axis, from_logits, weight, batch_axis)
