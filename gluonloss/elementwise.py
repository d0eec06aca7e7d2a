r"""The elementwise losses: a per-element function of ``pred`` and ``label``,
averaged over each sample.

For every loss here, with :math:`p` = pred, :math:`y` = label read in C
order with pred's shape, :math:`s` = sample_weight broadcast to pred,
:math:`w` = weight and :math:`M` elements per sample,

.. math::

    \mathrm{out}_b = \frac{w}{M} \sum_{j \in b} \ell(p_j, y_j)\, s_j, \qquad
    \frac{\partial}{\partial p_j} \sum_b g_b\,\mathrm{out}_b
        = \frac{w\, g_b\, s_j}{M}\, \ell'(p_j, y_j)

where :math:`g` is ``out_grad`` (ones by default).
"""
from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np

from gluonloss._base import Loss
from gluonloss._dispatch import load_kernels
from gluonloss._layout import (
    from_rows,
    row_vector,
    rows_operand,
    split_sample_weight,
    to_rows,
)
from gluonloss._threads import threads_for
from gluonloss._validation import check_choice, check_positive, check_real, validate_elementwise

_elementwise = load_kernels("_elementwise")

__all__ = [
    "L2Loss", "L1Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss",
    "SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss", "PoissonNLLLoss",
]



class _ElementwiseLoss(Loss):
    """pred/label losses sharing one kernel driver (see the module docstring)."""

    _kind = None   # kernel kind id in gluonloss._elementwise
    _has_pos_weight = False
    _inputs = ("pred", "label")
    _differentiable = ("pred",)
    _options: ClassVar[tuple[tuple[str, Any], ...]] = (("sample_weight", None),)
    _parameter_docs = {
        "pred": ("array_like",
                 "Predictions, any shape; ``pred.shape[batch_axis]`` is the batch size N."),
        "label": ("array_like", "Targets with as many elements as ``pred``, read in C order as\n"
                                "``pred``'s shape."),
        "sample_weight": ("array_like, optional",
                          "Broadcasts to ``pred``'s shape, e.g. ``(N, 1)`` for one weight per\n"
                          "sample or the full shape for one per element."),
    }
    _out_doc = ("Shape ``(N,)``: ``weight`` times the mean of the weighted\n"
                "elementwise loss over each sample.")

    _count = "n_rows"

    # -- the two halves of a call -------------------------------------------

    _validate = validate_elementwise
    _fast_entry = staticmethod(_elementwise.elementwise_fast)

    def _fast_constants(self):
        param0, param1 = self._kernel_params()
        return (self._kind, float(param0), float(param1), self._scalar_weight(),
                self._option_defaults, self._batch_axis)

    def _kernel_params(self):
        return 0.0, 0.0

    def _compute(self, call, want_loss, want_grad):
        dtype, axis, n_rows, n_cols = call.dtype, call.axis, call.n_rows, call.n_cols
        shape = call.pred.shape
        pred = to_rows(call.pred, axis, n_rows, n_cols, dtype)
        label = to_rows(call.label, axis, n_rows, n_cols, dtype)
        row_weight, elem_weight = split_sample_weight(call.sample_weight, shape, axis,
                                                      n_cols, dtype)
        aux = self._aux_operand(call, n_cols)
        out_grad = None if call.out_grad is None or not want_grad else row_vector(
            call.out_grad, n_rows)
        out = np.empty(n_rows, dtype) if want_loss else None
        grad = np.empty((n_rows, n_cols), dtype) if want_grad else None
        p0, p1 = call.loss._kernel_params()
        _elementwise.elementwise(
            kind_id=self._kind, param0=p0, param1=p1, pred=pred, label=label, aux=aux,
            weight=elem_weight, scale=self._scalar_weight() / n_cols, row_weight=row_weight,
            out_grad=out_grad, out=out, grad=grad, n_threads=threads_for(n_rows * n_cols))
        return out, (from_rows(grad, shape, axis) if want_grad else None)

    def _aux_operand(self, call, n_cols):
        return None


class L2Loss(_ElementwiseLoss):
    r"""Mean squared error between label and pred.

    .. math::
        \ell = \tfrac12 (y - p)^2, \qquad \frac{\partial\ell}{\partial p} = p - y

    (MXNet applies the ½ as ``weight / 2``.)  ``out[b] = weight * mean_b(ℓ * s)``.

    Parameters
    ----------
    weight : float or None, default 1.0
        Global scalar weight; None means 1.
    batch_axis : int, default 0
        The axis of ``pred`` that indexes samples.

    Notes
    -----
    Call ``loss(pred, label, sample_weight=None)``: ``pred`` of any shape,
    ``label`` with the same number of elements, ``sample_weight``
    broadcasting to ``pred``; returns shape ``(N,)`` with
    N = ``pred.shape[batch_axis]``.  ``gradient`` returns an array shaped
    like ``pred``.

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> gl.L2Loss()(np.array([[1., 2.]]), np.array([[0., 0.]]))
    array([1.25])
    """

    _kind = _elementwise.L2

    def __init__(self, weight: float | None = 1., batch_axis: int = 0) -> None:
        super().__init__(weight, batch_axis)


class L1Loss(_ElementwiseLoss):
    r"""Mean absolute error between label and pred.

    .. math::
        \ell = |y - p|, \qquad
        \frac{\partial\ell}{\partial p} = \operatorname{sign}(p - y)
        \ \ (0 \text{ at } p = y)

    Parameters
    ----------
    {weight_and_batch_axis}

    Notes
    -----
    Called as :class:`L2Loss`: ``loss(pred, label, sample_weight=None)``,
    returns shape ``(N,)``.

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> gl.L1Loss().value_and_gradient(np.array([[1., -3.]]), np.array([[0., 0.]]))
    (array([2.]), array([[ 0.5, -0.5]]))
    """

    _kind = _elementwise.L1

    def __init__(self, weight: float | None = None, batch_axis: int = 0) -> None:
        super().__init__(weight, batch_axis)


class HuberLoss(_ElementwiseLoss):
    r"""Smoothed L1: quadratic within ``rho`` of the label, linear beyond.

    With :math:`d = |y - p|`:

    .. math::
        \ell = \begin{cases} d - \rho/2 & d > \rho \\ d^2 / (2\rho) & d \le \rho \end{cases},
        \qquad
        \frac{\partial\ell}{\partial p} = \begin{cases}
            \operatorname{sign}(p - y) & d > \rho \\ (p - y)/\rho & d \le \rho \end{cases}

    Parameters
    ----------
    rho : float, default 1
        Threshold between the quadratic and linear parts; must be > 0.
    {weight_and_batch_axis}

    Notes
    -----
    Called as :class:`L2Loss`; at :math:`d = \rho` the quadratic branch's
    gradient is used (both branches agree there).

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> gl.HuberLoss(rho=1)(np.array([[0.5, 3.0]]), np.array([[0., 0.]]))
    array([1.3125])
    """

    _kind = _elementwise.HUBER

    def __init__(self, rho: float = 1, weight: float | None = None,
                 batch_axis: int = 0) -> None:
        super().__init__(weight, batch_axis)
        self._rho = check_positive(check_real(rho, "rho"), "rho")

    def _kernel_params(self):
        return float(self._rho), 0.0


_MARGIN_PARAMETERS = """\
    Parameters
    ----------
    margin : float, default 1
        The margin :math:`m`.
    {weight_and_batch_axis}
"""


class _MarginLoss(_ElementwiseLoss):
    """The hinge losses: a margin, then the elementwise loss's arguments."""

    _doc_snippets = {"margin_parameters": _MARGIN_PARAMETERS}

    def __init__(self, margin: float = 1, weight: float | None = None,
                 batch_axis: int = 0) -> None:
        super().__init__(weight, batch_axis)
        self._margin = check_real(margin, "margin")

    def _kernel_params(self):
        return float(self._margin), 0.0


class HingeLoss(_MarginLoss):
    r"""Hinge loss of SVMs, for labels in {-1, 1}.

    .. math::
        \ell = \max(0,\ m - p\,y), \qquad
        \frac{\partial\ell}{\partial p} =
            \begin{cases} -y & m - p\,y > 0 \\ 0 & \text{else} \end{cases}

    {margin_parameters}

    Notes
    -----
    Called as :class:`L2Loss`.  Labels are used as given (not checked to
    be ±1, as in MXNet); the gradient is 0 at the kink :math:`m = p\,y`.

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> gl.HingeLoss()(np.array([[0.5, 2.0]]), np.array([[1, -1]]))
    array([1.75])
    """

    _kind = _elementwise.HINGE


class SquaredHingeLoss(_MarginLoss):
    r"""Squared hinge (soft-margin) loss, for labels in {-1, 1}.

    .. math::
        \ell = \max(0,\ m - p\,y)^2, \qquad
        \frac{\partial\ell}{\partial p} = -2y\max(0,\ m - p\,y)

    {margin_parameters}

    Notes
    -----
    Called as :class:`L2Loss`; labels are used as given, as in MXNet.

    Examples
    --------
    With margin 2, the loss and its gradient (the mean over the two elements):

    >>> import numpy as np, gluonloss as gl
    >>> pred, label = np.array([[0.5, 2.0]]), np.array([[1, -1]])
    >>> gl.SquaredHingeLoss(margin=2).value_and_gradient(pred, label)
    (array([9.125]), array([[-1.5,  4. ]]))
    """

    _kind = _elementwise.SQUARED_HINGE


class LogisticLoss(_ElementwiseLoss):
    r"""Logistic loss of a binary classifier's logits.

    With :math:`y' = (y + 1)/2` for ``label_format='signed'`` (labels in
    {-1, 1}) or :math:`y' = y` for ``'binary'`` (labels in {0, 1}):

    .. math::
        \ell = \max(p, 0) - p\,y' + \log(1 + e^{-|p|}), \qquad
        \frac{\partial\ell}{\partial p} = \sigma(p) - y'

    Parameters
    ----------
    {weight_and_batch_axis}
    label_format : {'signed', 'binary'}, default 'signed'
        Labels in {-1, 1} ('signed') or in {0, 1} ('binary').

    Notes
    -----
    Called as :class:`L2Loss`.  The loss is computed from
    :math:`e^{-|p|} \le 1` only, so no logit overflows.

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> gl.LogisticLoss()(np.array([[0.0]]), np.array([[1]]))
    array([0.69314718])
    """

    _kind = _elementwise.LOGIT_BCE

    def __init__(self, weight: float | None = None, batch_axis: int = 0,
                 label_format: str = "signed") -> None:
        super().__init__(weight, batch_axis)
        self._label_format = check_choice(label_format, "label_format", ("signed", "binary"))

    def _kernel_params(self):
        # y' = scale * y + shift
        return (0.5, 0.5) if self._label_format == "signed" else (1.0, 0.0)


class SigmoidBinaryCrossEntropyLoss(_ElementwiseLoss):
    r"""Binary cross-entropy of logits (or probabilities), with ``pos_weight``.

    ``from_sigmoid=False`` (``pred`` are logits), with :math:`q` = pos_weight
    (1 when absent) and :math:`L = 1 + (q - 1) y`:

    .. math::
        \ell = p - p\,y + L\left(\log(1 + e^{-|p|}) + \max(-p, 0)\right), \qquad
        \frac{\partial\ell}{\partial p} = 1 - y + L\,(\sigma(p) - 1)

    which for :math:`q = 1` is :math:`\max(p,0) - p y + \log(1+e^{-|p|})`
    with gradient :math:`\sigma(p) - y`.  ``from_sigmoid=True`` (``pred`` are
    probabilities), with :math:`\epsilon = 10^{-12}`:

    .. math::
        \ell = -\left(y\,q \log(p + \epsilon) + (1 - y)\log(1 - p + \epsilon)\right), \qquad
        \frac{\partial\ell}{\partial p} =
            -\frac{y\,q}{p + \epsilon} + \frac{1 - y}{1 - p + \epsilon}

    Parameters
    ----------
    from_sigmoid : bool, default False
        Whether ``pred`` already went through a sigmoid.
    {weight_and_batch_axis}

    Notes
    -----
    Call ``loss(pred, label, sample_weight=None, pos_weight=None)``;
    ``pos_weight`` broadcasts to ``pred`` (e.g. shape ``(1, C)``); returns
    shape ``(N,)``.  ``SigmoidBCELoss`` is the same class object.

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> bce = gl.SigmoidBCELoss()
    >>> bce(np.array([[0.0]]), np.array([[1.0]]), pos_weight=3.0)     # 3 log 2
    array([2.07944154])
    >>> bce.gradient(np.array([[0.0]]), np.array([[1.0]]))            # sigmoid(0) - 1
    array([[-0.5]])
    """

    _has_pos_weight = True
    _options = (("sample_weight", None), ("pos_weight", None))
    _parameter_docs = {
        "pred": ("array_like",
                 "Logits (or probabilities with ``from_sigmoid=True``), any shape;\n"
                 "``pred.shape[batch_axis]`` is the batch size N."),
        "label": ("array_like", "Targets in [0, 1] with as many elements as ``pred``, read in C\n"
                                "order as ``pred``'s shape."),
        "sample_weight": ("array_like, optional",
                          "Broadcasts to ``pred``'s shape, e.g. ``(N, 1)``."),
        "pos_weight": ("array_like, optional",
                       "Weight :math:`q` of the positive term; broadcasts to ``pred``'s\n"
                       "shape, e.g. ``(1, C)`` for one weight per class."),
    }
    _out_doc = "Shape ``(N,)``."

    def __init__(self, from_sigmoid: bool = False, weight: float | None = None,
                 batch_axis: int = 0) -> None:
        super().__init__(weight, batch_axis)
        self._from_sigmoid = bool(from_sigmoid)
        self._kind = _elementwise.PROB_BCE if self._from_sigmoid else _elementwise.LOGIT_BCE

    def _kernel_params(self):
        return 1.0, 0.0     # labels used as given

    def _aux_operand(self, call, n_cols):
        if call.pos_weight is None:
            return None
        return rows_operand(call.pos_weight, call.pred.shape, call.axis, n_cols, call.dtype)


SigmoidBCELoss = SigmoidBinaryCrossEntropyLoss


class PoissonNLLLoss(_ElementwiseLoss):
    r"""Negative log-likelihood of a Poisson-distributed target.

    ``from_logits=True`` (``pred`` is the log of the rate) and ``False``
    (``pred`` is the rate itself), with :math:`t` = target and
    :math:`\epsilon` = the ``epsilon`` call argument:

    .. math::
        \ell = e^{p} - t\,p, \quad \frac{\partial\ell}{\partial p} = e^{p} - t
        \qquad\text{or}\qquad
        \ell = p - t\log(p + \epsilon), \quad
        \frac{\partial\ell}{\partial p} = 1 - \frac{t}{p + \epsilon}

    ``compute_full=True`` adds Stirling's approximation of :math:`\log t!`,
    :math:`t\log t - t + \tfrac12\log(2\pi t)`, where :math:`t > 1` and
    nothing elsewhere, so a zero count keeps a finite loss (MXNet gives NaN
    there).  It does not depend on ``pred``, so the gradient is unchanged.
    ``out[b] = weight * mean_b(ℓ * s)``, shape ``(N,)`` (MXNet 1.9.1 returns
    the mean over the whole batch instead).

    Parameters
    ----------
    weight : float or None, default None
        Global scalar weight.
    from_logits : bool, default True
        Whether ``pred`` is the log of the rate.
    batch_axis : int, default 0
        The axis of ``pred`` that indexes samples.
    compute_full : bool, default False
        Add the Stirling term.

    Notes
    -----
    Call ``loss(pred, target, sample_weight=None, epsilon=1e-08)``:
    ``target`` with the same number of elements as ``pred``,
    ``sample_weight`` broadcasting to ``pred``; ``epsilon`` (a real number)
    is only used when ``from_logits=False``.

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> gl.PoissonNLLLoss()(np.array([[0.0, 1.0]]), np.array([[1.0, 2.0]]))  # (1 + e - 2)/2
    array([0.85914091])
    >>> gl.PoissonNLLLoss(from_logits=False).gradient(np.array([[2.0]]), np.array([[1.0]]))
    array([[0.5]])
    """

    _inputs = ("pred", "target")
    _options = (("sample_weight", None), ("epsilon", 1e-08))
    _parameter_docs = {
        "pred": ("array_like", "Log-rates (``from_logits=True``) or rates, any shape;\n"
                               "``pred.shape[batch_axis]`` is the batch size N."),
        "target": ("array_like", "Counts with as many elements as ``pred``, read in C order as\n"
                                 "``pred``'s shape."),
        "sample_weight": ("array_like, optional",
                          "Broadcasts to ``pred``'s shape, e.g. ``(N, 1)``."),
        "epsilon": ("float, default 1e-08", "Added to the rate inside the log; used only when\n"
                                            "``from_logits=False``."),
    }
    _out_doc = "Shape ``(N,)``."

    def __init__(self, weight: float | None = None, from_logits: bool = True,
                 batch_axis: int = 0, compute_full: bool = False) -> None:
        super().__init__(weight, batch_axis)
        self._from_logits = bool(from_logits)
        self._compute_full = bool(compute_full)
        self._kind = {(True, False): _elementwise.POISSON_LOGITS,
                      (True, True): _elementwise.POISSON_LOGITS_FULL,
                      (False, False): _elementwise.POISSON_RATE,
                      (False, True): _elementwise.POISSON_RATE_FULL}[
                          self._from_logits, self._compute_full]
        self._epsilon = 1e-08

    # The fast entry answers only calls with the default epsilon, which binds nothing.
    _fast_entry = staticmethod(_elementwise.elementwise_fast)

    def _validate(self, inputs, options, out_grad):
        # epsilon is a call argument: it goes on a private copy of the loss (the
        # record's ``loss``), so calls from several threads never share one.
        bound = copy.copy(self)
        bound._epsilon = float(check_real(options[1], "epsilon"))
        return validate_elementwise(bound, inputs, options, out_grad)

    def _kernel_params(self):
        return self._epsilon, 0.0
