"""Reference implementations of every loss, in plain NumPy and SciPy.

The classes here have the names, constructors, call signatures, validation
and errors of their compiled twins in :mod:`gluonloss` (they subclass them
and replace only the arithmetic).  The arithmetic is written for clarity:
float64 throughout, in the caller's own layout, with NumPy broadcasting
for ``sample_weight`` and ``out_grad``; results are cast to the compute dtype
at the end.  Use them to cross-check the compiled kernels, or as a readable
statement of what each loss computes.

>>> import numpy as np
>>> from gluonloss import reference
>>> reference.HingeLoss()(np.array([[0.5, 2.0]]), np.array([[1, -1]]))
array([1.75])
"""
import numpy as np
from scipy.special import expit, log_expit, logsumexp

import gluonloss as _gl

__all__ = [
    "L2Loss", "L1Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss",
    "SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss",
    "PoissonNLLLoss", "SoftmaxCrossEntropyLoss", "SoftmaxCELoss", "KLDivLoss",
    "TripletLoss", "CosineEmbeddingLoss", "SDMLLoss",
    "CTCLoss",
]


def _keep_nan(grad, *sources):
    """Put NaN into ``grad`` wherever any source is NaN (an undefined branch)."""
    bad = np.zeros(np.shape(grad), bool)
    for s in sources:
        bad |= np.isnan(s)
    return np.where(bad, np.nan, grad)


def _times(coef, value):
    """coef * value, with 0 wherever coef == 0 (the limit, even for inf)."""
    return np.where(coef == 0, 0.0, coef * value)


class _Elementwise:
    """Mean over each sample of ``weight * sample_weight * loss``, and its gradient."""

    def _compute(self, call, want_loss, want_grad):
        p = call.pred.astype(np.float64)
        y = call.label.astype(np.float64)
        q = 1.0 if call.pos_weight is None else call.pos_weight.astype(np.float64)
        loss, dloss = call.loss._terms(p, y, q)
        s = 1.0 if call.sample_weight is None else (
            call.sample_weight.astype(call.dtype).astype(np.float64))
        ws = self._scalar_weight() * np.broadcast_to(s, p.shape)
        other_axes = tuple(i for i in range(p.ndim) if i != call.axis)
        out = np.mean(loss * ws, axis=other_axes)
        og = np.ones(call.n_rows) if call.out_grad is None else np.broadcast_to(
            call.out_grad.astype(np.float64), (call.n_rows,))
        og_shape = [1] * p.ndim
        og_shape[call.axis] = call.n_rows
        grad = dloss * ws * og.reshape(og_shape) / call.n_cols
        return out.astype(call.dtype), grad.astype(call.dtype)


class L2Loss(_Elementwise, _gl.L2Loss):
    __doc__ = _gl.L2Loss.__doc__

    def _terms(self, p, y, q):
        return 0.5 * (y - p) ** 2, p - y


class L1Loss(_Elementwise, _gl.L1Loss):
    __doc__ = _gl.L1Loss.__doc__

    def _terms(self, p, y, q):
        return np.abs(y - p), np.sign(p - y)


class HuberLoss(_Elementwise, _gl.HuberLoss):
    __doc__ = _gl.HuberLoss.__doc__

    def _terms(self, p, y, q):
        rho = float(self._rho)
        d = np.abs(y - p)
        linear = d > rho
        loss = np.where(linear, d - rho / 2, d ** 2 / (2 * rho))
        grad = np.where(linear, np.sign(p - y), (p - y) / rho)
        return loss, grad


class HingeLoss(_Elementwise, _gl.HingeLoss):
    __doc__ = _gl.HingeLoss.__doc__

    def _terms(self, p, y, q):
        t = float(self._margin) - p * y
        return np.maximum(0.0, t), _keep_nan(np.where(t > 0, -y, 0.0), t)


class SquaredHingeLoss(_Elementwise, _gl.SquaredHingeLoss):
    __doc__ = _gl.SquaredHingeLoss.__doc__

    def _terms(self, p, y, q):
        h = np.maximum(0.0, float(self._margin) - p * y)
        return h ** 2, -2 * y * h


def _logit_bce_terms(p, y, q):
    """-(q y log sigmoid(p) + (1-y) log sigmoid(-p)) and its derivative."""
    loss = -(_times(q * y, log_expit(p)) + _times(1 - y, log_expit(-p)))
    grad = -q * y * expit(-p) + (1 - y) * expit(p)
    return loss, grad


class LogisticLoss(_Elementwise, _gl.LogisticLoss):
    __doc__ = _gl.LogisticLoss.__doc__

    def _terms(self, p, y, q):
        if self._label_format == "signed":
            y = (y + 1) / 2
        return _logit_bce_terms(p, y, 1.0)


class SigmoidBinaryCrossEntropyLoss(_Elementwise, _gl.SigmoidBinaryCrossEntropyLoss):
    __doc__ = _gl.SigmoidBinaryCrossEntropyLoss.__doc__

    def _terms(self, p, y, q):
        if not self._from_sigmoid:
            return _logit_bce_terms(p, y, q)
        eps = 1e-12
        loss = -(y * q * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
        grad = -y * q / (p + eps) + (1 - y) / (1 - p + eps)
        return loss, grad


SigmoidBCELoss = SigmoidBinaryCrossEntropyLoss


# ---------------------------------------------------------------------------
# The softmax family: SoftmaxCrossEntropyLoss and KLDivLoss.

def _label_times(y, lp, p):
    """y * lp, with 0 where y == 0 even for lp = +-inf, unless pred p is NaN there."""
    return np.where(y == 0, np.where(np.isnan(p), np.nan, 0.0), y * lp)


class _SoftmaxFamily:
    """Elementwise loss in pred's own layout, then NumPy means and broadcasting."""

    def _compute(self, call, want_loss, want_grad):
        p = call.pred.astype(np.float64)
        axis, batch_axis = call.axis, call.batch_axis
        with np.errstate(invalid="ignore"):
            lp = p if self._from_logits else p - logsumexp(p, axis=axis, keepdims=True)
        y = self._dense_label(call, p)
        with np.errstate(invalid="ignore", divide="ignore"):
            loss = self._elementwise_loss(call, y, lp, p)     # shape call.loss_shape
        s = 1.0 if call.sample_weight is None else (
            call.sample_weight.astype(call.dtype).astype(np.float64))
        ws = self._scalar_weight() * np.broadcast_to(s, call.loss_shape)
        other_axes = tuple(i for i in range(loss.ndim) if i != batch_axis)
        out = np.mean(loss * ws, axis=other_axes).reshape(call.n_out)
        og = np.ones(call.n_out) if call.out_grad is None else np.broadcast_to(
            call.out_grad.astype(np.float64), (call.n_out,))
        og_shape = [1] * p.ndim
        og_shape[batch_axis] = call.n_out
        upstream = ws * og.reshape(og_shape) / call.n_per_sample
        yu = y * upstream
        if self._from_logits:
            grad = -yu
        else:
            with np.errstate(invalid="ignore"):
                grad = np.exp(lp) * np.sum(yu, axis=axis, keepdims=True) - yu
        return out.astype(call.dtype), grad.astype(call.dtype)

    def _dense_label(self, call, p):
        if not self._sparse:
            return call.label.astype(p.dtype)
        onehot = np.zeros(p.shape)
        np.put_along_axis(onehot, np.expand_dims(call.label, call.axis), 1.0, axis=call.axis)
        return onehot


class SoftmaxCrossEntropyLoss(_SoftmaxFamily, _gl.SoftmaxCrossEntropyLoss):
    __doc__ = _gl.SoftmaxCrossEntropyLoss.__doc__

    def _elementwise_loss(self, call, y, lp, p):
        if self._sparse:
            return -np.take_along_axis(lp, np.expand_dims(call.label, call.axis), call.axis)
        return -np.sum(_label_times(y, lp, p), axis=call.axis, keepdims=True)


SoftmaxCELoss = SoftmaxCrossEntropyLoss


class KLDivLoss(_SoftmaxFamily, _gl.KLDivLoss):
    __doc__ = _gl.KLDivLoss.__doc__

    def _elementwise_loss(self, call, y, lp, p):
        return _label_times(y, np.log(y + 1e-12) - lp, p)


# ---------------------------------------------------------------------------
# PoissonNLLLoss


def _stirling_or_zero(t):
    """t log t - t + log(2 pi t)/2 where t > 1, else 0 (NaN stays NaN)."""
    big = t > 1
    ts = np.where(big, t, 2.0)
    s = ts * np.log(ts) - ts + 0.5 * np.log(2 * np.pi * ts)
    return np.where(big, s, np.where(np.isnan(t), np.nan, 0.0))


class PoissonNLLLoss(_Elementwise, _gl.PoissonNLLLoss):
    __doc__ = _gl.PoissonNLLLoss.__doc__

    def _terms(self, p, t, q):
        if self._from_logits:
            loss, grad = np.exp(p) - t * p, np.exp(p) - t
        else:
            eps = self._epsilon
            loss, grad = p - t * np.log(p + eps), 1 - t / (p + eps)
        if self._compute_full:
            loss = loss + _stirling_or_zero(t)
        return loss, grad


# ---------------------------------------------------------------------------
# TripletLoss, CosineEmbeddingLoss, SDMLLoss: brute force, float64.


def _per_sample(values, n):
    """A validated per-sample factor (or None) as float64 ``(n,)``, ones when absent."""
    return np.ones(n) if values is None else np.broadcast_to(values.astype(np.float64), (n,))


class TripletLoss(_gl.TripletLoss):
    __doc__ = _gl.TripletLoss.__doc__

    def _compute(self, call, want_loss, want_grad):
        p = call.pred.astype(np.float64)
        q = call.positive.reshape(p.shape).astype(np.float64)
        n = call.negative.reshape(p.shape).astype(np.float64)
        other_axes = tuple(i for i in range(p.ndim) if i != call.axis)
        h = np.sum((q - p) ** 2 - (n - p) ** 2, axis=other_axes) + float(self._margin)
        ws = self._scalar_weight() * _per_sample(call.row_weight, call.n_rows)
        out = np.maximum(h, 0.0) * ws
        active = _keep_nan(np.where(h > 0, 1.0, 0.0), h)
        shape = [1] * p.ndim
        shape[call.axis] = call.n_rows
        c = (2 * ws * _per_sample(call.out_grad, call.n_rows) * active).reshape(shape)
        grads = (c * (n - q), c * (q - p), c * (p - n))
        return out.astype(call.dtype), tuple(
            g.astype(call.dtype).reshape(x.shape)
            for g, x in zip(grads, (call.pred, call.positive, call.negative)))


class CosineEmbeddingLoss(_gl.CosineEmbeddingLoss):
    __doc__ = _gl.CosineEmbeddingLoss.__doc__

    def _compute(self, call, want_loss, want_grad):
        n = call.n_vectors
        x = call.input1.reshape(call.input2.shape).astype(np.float64).reshape(n, call.dim)
        y = call.input2.astype(np.float64).reshape(n, call.dim)
        label = call.label.reshape(n)
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
        ws = self._scalar_weight() * _per_sample(call.row_weight, n)
        k = ws * _per_sample(call.out_grad, n) * dloss
        with np.errstate(divide="ignore", invalid="ignore"):
            cx = np.where(floored, 0.0, k * cos / xx)
            cy = np.where(floored, 0.0, k * cos / yy)
        gx = (k / den)[:, None] * y - cx[:, None] * x
        gy = (k / den)[:, None] * x - cy[:, None] * y
        return (loss * ws).astype(call.dtype), (
            gx.astype(call.dtype).reshape(call.input1.shape),
            gy.astype(call.dtype).reshape(call.input2.shape))


class SDMLLoss(_gl.SDMLLoss):
    __doc__ = _gl.SDMLLoss.__doc__

    def _compute(self, call, want_loss, want_grad):
        from scipy.special import logsumexp
        a, b = call.x1.astype(np.float64), call.x2.astype(np.float64)
        n = call.n
        diff = a[:, None, :] - b[None, :, :]            # (N, N, D): a_i - b_j
        dist = np.sum(diff ** 2, axis=2)
        lp = -dist - logsumexp(-dist, axis=1, keepdims=True)
        sp = float(self._smoothing_parameter)
        y = np.full((n, n), sp / (n - 1))
        np.fill_diagonal(y, 1 - sp)
        w = self._scalar_weight()
        out = w * np.mean(y * (np.log(y + 1e-12) - lp), axis=1)
        g = 2 * (w / n) * _per_sample(call.out_grad, n)[:, None] * (y - np.exp(lp))
        grad_x1 = np.einsum("ij,ijd->id", g, diff)
        grad_x2 = -np.einsum("ij,ijd->jd", g, diff)
        return out.astype(call.dtype), (grad_x1.astype(call.dtype), grad_x2.astype(call.dtype))


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


class CTCLoss(_gl.CTCLoss):
    __doc__ = _gl.CTCLoss.__doc__

    def _compute(self, call, want_loss, want_grad):
        x = call.pred.astype(np.float64)
        if self._layout == "TNC":
            x = x.transpose(1, 0, 2)
        labels = call.label if self._label_layout == "NT" else call.label.T
        n, n_frames, n_classes = x.shape
        frames = np.full(n, n_frames) if call.pred_lengths is None else call.pred_lengths
        w = self._scalar_weight()
        s = np.ones(n) if call.sample_weight is None else (
            call.sample_weight.astype(call.dtype).astype(np.float64))
        og = np.ones(n) if call.out_grad is None else np.broadcast_to(
            call.out_grad.astype(np.float64), (n,))
        out = np.empty(n)
        grad = np.zeros(x.shape)
        for b in range(n):
            label = labels[b, :call.label_lengths[b]].astype(np.int64)
            with np.errstate(invalid="ignore"):      # NaN inputs propagate quietly
                nll, g = _ctc_sample(x[b, :frames[b]], label, n_classes - 1)
            if nll == np.inf and self._zero_infinity:
                out[b] = 0.0
            else:
                out[b] = nll * s[b] * w
            grad[b, :frames[b]] = g * (w * s[b] * og[b])
        if self._layout == "TNC":
            grad = grad.transpose(1, 0, 2)
        return out.astype(call.dtype), np.ascontiguousarray(grad, call.dtype)
