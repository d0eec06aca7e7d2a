r"""The losses with several differentiable inputs: TripletLoss,
CosineEmbeddingLoss and SDMLLoss.

``gradient`` returns a tuple with one array per differentiable input, in
argument order, each shaped like its input; ``out_grad`` (ones by default)
weights the per-sample losses: the gradient is that of
:math:`\sum_b g_b\,\mathrm{out}_b`.  Computation is float32 when every
differentiable input is float32 or float16, else float64.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from gluonloss._base import Loss
from gluonloss._dispatch import load_kernels
from gluonloss._layout import from_rows, sdml_panels, to_rows
from gluonloss._threads import threads_for
from gluonloss._validation import check_real, validate_cosine, validate_sdml, validate_triplet

_pairwise = load_kernels("_pairwise")

__all__ = ["TripletLoss", "CosineEmbeddingLoss", "SDMLLoss"]


class TripletLoss(Loss):
    r"""Triplet loss: pull ``positive`` towards ``pred``, push ``negative`` away.

    For sample :math:`b` (sums over its elements, :math:`p` = pred,
    :math:`q` = positive, :math:`n` = negative, :math:`s_b` = sample_weight):

    .. math::
        h_b = \sum_{j \in b} \left((q_j - p_j)^2 - (n_j - p_j)^2\right) + m, \qquad
        \mathrm{out}_b = \max(h_b, 0)\, s_b\, w

    Where :math:`h_b > 0` the gradients are

    .. math::
        \frac{\partial \mathrm{out}_b}{\partial p_j} = 2 (n_j - q_j)\, s_b w, \quad
        \frac{\partial \mathrm{out}_b}{\partial q_j} = 2 (q_j - p_j)\, s_b w, \quad
        \frac{\partial \mathrm{out}_b}{\partial n_j} = -2 (n_j - p_j)\, s_b w

    and zero where :math:`h_b \le 0` (the kink included).  A sample with no
    elements has :math:`h_b = m` (a sum, not a mean).

    Parameters
    ----------
    margin : float, default 1
        The margin :math:`m`.
    weight : float or None, default None
        Global scalar weight :math:`w`.
    batch_axis : int, default 0
        The axis of ``pred`` that indexes samples.

    Notes
    -----
    Call ``loss(pred, positive, negative, sample_weight=None)``:
    ``positive`` and ``negative`` have as many elements as ``pred`` and are
    read in C order with its shape; ``sample_weight`` has N elements (one per
    sample, any shape) or one.  Returns shape ``(N,)``; ``gradient`` returns
    ``(d_pred, d_positive, d_negative)``.

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> p, q, n = np.array([[0., 0.]]), np.array([[1., 0.]]), np.array([[0., 2.]])
    >>> gl.TripletLoss(margin=4)(p, q, n)                 # 1 - 4 + 4
    array([1.])
    >>> gl.TripletLoss(margin=4).gradient(p, q, n)[0]     # 2 (n - q)
    array([[-2.,  4.]])
    """

    _inputs = ("pred", "positive", "negative")
    _differentiable = _inputs
    _options = (("sample_weight", None),)
    _count = "n_rows"
    _parameter_docs = {
        "pred": ("array_like",
                 "Anchors, any shape; ``pred.shape[batch_axis]`` is the batch size N."),
        "positive": ("array_like", "As many elements as ``pred``, read in C order as its shape."),
        "negative": ("array_like", "As many elements as ``pred``, read in C order as its shape."),
        "sample_weight": ("array_like, optional",
                          "N weights (one per sample, any shape) or a single one."),
    }

    def __init__(self, margin: float = 1, weight: float | None = None,
                 batch_axis: int = 0) -> None:
        super().__init__(weight, batch_axis)
        self._margin = check_real(margin, "margin")

    _validate = validate_triplet

    def _compute(self, call, want_loss, want_grad):
        dtype, axis, n_rows, n_cols = call.dtype, call.axis, call.n_rows, call.n_cols
        shape = call.pred.shape
        rows = [to_rows(x.reshape(shape), axis, n_rows, n_cols, dtype)
                for x in (call.pred, call.positive, call.negative)]
        out = np.empty(n_rows, dtype) if want_loss else None
        grads = [np.empty((n_rows, n_cols), dtype) for _ in range(3)] if want_grad else [None] * 3
        _pairwise.triplet(
            pred=rows[0], positive=rows[1], negative=rows[2], margin=float(self._margin),
            weight=self._scalar_weight(), row_weight=call.row_weight,
            out_grad=call.out_grad if want_grad else None, out=out, grad_pred=grads[0],
            grad_positive=grads[1], grad_negative=grads[2],
            n_threads=threads_for(3 * n_rows * n_cols))
        if not want_grad:
            return out, None
        return out, tuple(from_rows(g, shape, axis).reshape(x.shape)
                          for g, x in zip(grads, (call.pred, call.positive, call.negative),
                                          strict=True))


class CosineEmbeddingLoss(Loss):
    r"""Cosine embedding loss: similar pairs (label 1) towards cosine 1,
    dissimilar pairs (label -1) below the margin.

    Vectors lie along the last axis and every leading axis indexes the batch
    (a 1-D input is one vector).  For vectors :math:`x` (input1), :math:`y`
    (input2) with label :math:`l`:

    .. math::
        \cos = \frac{x \cdot y}{\max(\lVert x\rVert\,\lVert y\rVert,\ 10^{-12})}, \qquad
        \ell = \begin{cases} 1 - \cos & l = 1 \\
                             \operatorname{clip}(\cos - m,\ 0,\ 1 - m) & l = -1 \end{cases}

    and ``out = ℓ * s * w``, shape ``(number of vectors,)``.  With
    :math:`D = \lVert x\rVert\lVert y\rVert`,

    .. math::
        \frac{\partial\cos}{\partial x} = \frac{y}{D} - \cos\frac{x}{\lVert x\rVert^2}
        \quad (D > 10^{-12}), \qquad
        \frac{\partial\cos}{\partial x} = \frac{y}{10^{-12}} \quad \text{otherwise}

    (symmetrically for :math:`y`); :math:`d\ell/d\cos` is -1 for label 1
    and, for label -1, 1 inside the open interval :math:`0 < \cos - m < 1 - m`
    and 0 outside.  Zero vectors give finite values and gradients.  The
    clip applies its upper bound first (MXNet's order), so for ``margin > 1``
    the loss is :math:`1 - m` where :math:`\cos - m > 1 - m` and 0 elsewhere.

    Parameters
    ----------
    weight : float or None, default None
        Global scalar weight :math:`w`.
    batch_axis : int, default 0
        Accepted for MXNet compatibility and, as in MXNet, not used: the
        vectors are always the last axis and the batch is everything before it.
    margin : float, default 0
        The margin :math:`m` for dissimilar pairs.

    Notes
    -----
    Call ``loss(input1, input2, label, sample_weight=None)``: ``input1``
    with as many elements as ``input2`` (read in C order with its shape),
    ``label`` with one value per vector, each exactly 1 or -1,
    ``sample_weight`` with one value per vector (any shape) or one.
    ``gradient`` returns ``(d_input1, d_input2)``.

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> x = np.array([[1., 0.], [1., 1.]])
    >>> y = np.array([[0., 1.], [1., 1.]])
    >>> gl.CosineEmbeddingLoss()(x, y, np.array([1, -1]))   # 1 - 0 and clip(1 - 0, 0, 1)
    array([1., 1.])
    >>> gl.CosineEmbeddingLoss().gradient(x, y, np.array([1, 1]))[0][0]   # -(y/D - cos x)
    array([ 0., -1.])
    """

    _inputs = ("input1", "input2", "label")
    _differentiable = ("input1", "input2")
    _options = (("sample_weight", None),)
    _count = "n_vectors"
    _parameter_docs = {
        "input1": ("array_like", "As many elements as ``input2``, read in C order as its shape."),
        "input2": ("array_like", "Vectors along the last axis; the leading axes index them."),
        "label": ("array_like",
                  "One value per vector, each exactly 1 (similar) or -1 (dissimilar)."),
        "sample_weight": ("array_like, optional",
                          "One weight per vector (any shape) or a single one."),
        "out_grad": ("array_like, optional",
                     "Upstream gradient, broadcasting to ``(number of vectors,)``; None\n"
                     "means ones."),
    }
    _forward_summary = "Per-vector loss."
    _out_doc = "Shape ``(number of vectors,)``."

    def __init__(self, weight: float | None = None, batch_axis: int = 0,
                 margin: float = 0) -> None:
        super().__init__(weight, batch_axis)
        self._margin = check_real(margin, "margin")

    _validate = validate_cosine

    def _compute(self, call, want_loss, want_grad):
        dtype, n, dim = call.dtype, call.n_vectors, call.dim
        x = np.ascontiguousarray(call.input1, dtype).reshape(n, dim)
        y = np.ascontiguousarray(call.input2, dtype).reshape(n, dim)
        label = np.ascontiguousarray(call.label, dtype).reshape(n)
        out = np.empty(n, dtype) if want_loss else None
        grads: list[Any] = ([np.empty((n, dim), dtype) for _ in range(2)] if want_grad
                            else [None] * 2)
        _pairwise.cosine(
            x=x, y=y, label=label, margin=float(self._margin), weight=self._scalar_weight(),
            row_weight=call.row_weight, out_grad=call.out_grad if want_grad else None, out=out,
            grad_x=grads[0], grad_y=grads[1], n_threads=threads_for(2 * n * dim))
        if not want_grad:
            return out, None
        return out, (grads[0].reshape(call.input1.shape), grads[1].reshape(call.input2.shape))


class SDMLLoss(Loss):
    r"""Smoothed Deep Metric Learning loss (Bonadiman et al., 2019).

    ``x1[i]`` and ``x2[i]`` form a positive pair; every other row of the
    batch serves as a negative.  With :math:`N` rows, smoothing
    parameter :math:`\sigma`:

    .. math::
        D_{ij} = \lVert x1_i - x2_j \rVert^2, \qquad
        \mathrm{lp}_{ij} = \log \operatorname{softmax}_j(-D_{ij}), \qquad
        Y_{ij} = \begin{cases} 1 - \sigma & i = j \\ \sigma / (N - 1) & i \ne j \end{cases}

    .. math::
        \mathrm{out}_i = \frac{w}{N} \sum_j Y_{ij}\left(\log(Y_{ij} + 10^{-12})
                                                      - \mathrm{lp}_{ij}\right)

    (a mean over :math:`j`, like KLDivLoss; MXNet 1.9.1 sums and ignores
    ``weight``).  With :math:`G_{ij} = 2 g_i \tfrac{w}{N}(Y_{ij} - e^{\mathrm{lp}_{ij}})`
    for upstream gradient :math:`g`:

    .. math::
        \frac{\partial}{\partial x1_i} = \sum_j G_{ij}(x1_i - x2_j), \qquad
        \frac{\partial}{\partial x2_j} = \sum_i G_{ij}(x2_j - x1_i)

    Parameters
    ----------
    smoothing_parameter : float, default 0.3
        Probability mass spread over the negatives, in [0, 1).
    weight : float or None, default 1
        Global scalar weight :math:`w`.
    batch_axis : int, default 0
        Accepted for MXNet compatibility and, as in MXNet, not used: rows
        of the (N, D) inputs are always the samples.

    Notes
    -----
    Call ``loss(x1, x2)`` with two (N, D) arrays of the same shape, N >= 2;
    returns shape ``(N,)``; ``gradient`` returns ``(d_x1, d_x2)``.

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> x1 = np.array([[0., 0.], [3., 0.]])
    >>> x2 = np.array([[0., 0.], [3., 0.]])
    >>> out = gl.SDMLLoss(smoothing_parameter=0.0)(x1, x2)   # Y = I: -lp_ii / 2
    >>> np.allclose(out, (np.log1p(1e-12) + np.log1p(np.exp(-9))) / 2, rtol=1e-14)
    True
    """

    _inputs = ("x1", "x2")
    _differentiable = _inputs
    _parameter_docs = {
        "x1": ("array_like", "(N, D), N >= 2; ``x1[i]`` and ``x2[i]`` are a positive pair."),
        "x2": ("array_like", "(N, D), the shape of ``x1``."),
    }
    _forward_summary = "Per-row loss."
    _grad_doc = "Each of shape (N, D)."

    def __init__(self, smoothing_parameter: float = 0.3, weight: float | None = 1.,
                 batch_axis: int = 0) -> None:
        super().__init__(weight, batch_axis)
        sp = check_real(smoothing_parameter, "smoothing_parameter")
        if not 0 <= sp < 1:
            raise ValueError(f"smoothing_parameter must be in [0, 1), got {sp!r}")
        self._smoothing_parameter = sp

    _count = "n"      # never 0: a batch needs two rows

    _validate = validate_sdml

    def _targets(self, n):
        """(Y_ii, Y_ij for i != j, sum_j Y_ij log(Y_ij + 1e-12))."""
        sp = float(self._smoothing_parameter)
        y_diag, y_off = 1.0 - sp, sp / (n - 1)
        entropy = y_diag * math.log(y_diag + 1e-12) + (n - 1) * y_off * math.log(y_off + 1e-12)
        return y_diag, y_off, entropy

    def _compute(self, call, want_loss, want_grad):
        dtype, n, dim = call.dtype, call.n, call.dim
        out = np.empty(n, dtype) if want_loss else None
        grads = [np.empty((n, dim), dtype) for _ in range(2)] if want_grad else [None] * 2
        y_diag, y_off, entropy = self._targets(n)
        n_threads = threads_for(n * n * max(dim, 1))
        out_grad = call.out_grad if want_grad else None
        grad_exponent = self._grad_exponent(out_grad, n, dtype) if want_grad else 0
        if grad_exponent:
            out_grad = np.ldexp(np.ones(n) if out_grad is None else out_grad, -grad_exponent)
        blas = {"x1": np.ascontiguousarray(call.x1, dtype),
                "x2": np.ascontiguousarray(call.x2, dtype), "y_diag": y_diag, "y_off": y_off,
                "entropy": entropy, "weight": self._scalar_weight(), "n_threads": n_threads}
        # Through BLAS unless an input is not finite or too large, or the
        # gradient's products could overflow (see _pairwise.sdml_blas).
        if _pairwise.sdml_blas(**blas, out_grad=out_grad, out=out, grad_x1=grads[0],
                               grad_x2=grads[1]):
            return out, (self._scaled(grads, grad_exponent) if want_grad else None)
        # Declined with a gradient wanted: the loss still comes from where
        # forward's does (BLAS unless the inputs rule it out), so that
        # value_and_gradient gives forward's bits; the gradient is direct.
        direct_out = out
        if want_loss and want_grad and _pairwise.sdml_blas(
                **blas, out_grad=None, out=out, grad_x1=None, grad_x2=None):
            direct_out = None
        a_rows, b_panels, a_cols, b_cols = sdml_panels(call.x1, call.x2, dtype,
                                                       _pairwise.SDML_PANEL, want_grad)
        _pairwise.sdml(
            a_rows=a_rows, b_panels=b_panels, a_cols=a_cols, b_cols=b_cols, n=n, y_diag=y_diag,
            y_off=y_off, entropy=entropy, weight=self._scalar_weight(), out_grad=out_grad,
            out=direct_out, grad_x1=grads[0], grad_x2=grads[1], n_threads=n_threads)
        return out, (self._scaled(grads, grad_exponent) if want_grad else None)

    def _grad_exponent(self, out_grad, n, dtype):
        """k > 0 when the largest gradient coefficient 2 weight / n out_grad_i
        (out_grad None: ones) is finite and above the square root of the dtype's
        largest value; the kernels then take out_grad / 2**k, which brings it
        below that, and their gradients are scaled back by 2**k.  A power of two
        changes no bit short of overflow or underflow, and the coefficients of
        rows with an ordinary out_grad stay far from underflow.  Without it the
        coefficients (rounded to the dtype) or the sums over a row overflow where
        the gradient does not (inf - inf: NaN)."""
        largest = 1.0 if out_grad is None else float(np.max(np.abs(out_grad)))
        top = 2.0 * abs(float(self._scalar_weight())) / n * largest
        half_range = 64 if dtype == np.float32 else 512       # sqrt(max) ~ 2**half_range
        exponent = math.frexp(top)[1] - half_range if top < math.inf else 0
        return max(exponent, 0)

    @staticmethod
    def _scaled(grads, exponent):
        """The gradients times 2**exponent (overflowing to inf where they do)."""
        if exponent:
            with np.errstate(over="ignore"):
                for grad in grads:
                    np.ldexp(grad, exponent, out=grad)
        return tuple(grads)
