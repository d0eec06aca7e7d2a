r"""Connectionist Temporal Classification (CTC) loss (Graves et al., ICML 2006).

The kernel (``_ctc.pyx``) runs the forward-backward recursion in log space,
one sample per thread; this module validates the arguments, resolves the
label and frame lengths and hands strided views to it (no transposed
copies for the ``'TNC'`` / ``'TN'`` layouts).
"""
from __future__ import annotations

import numpy as np

from gluonloss._base import Loss
from gluonloss._dispatch import load_kernels
from gluonloss._layout import class_contiguous
from gluonloss._settings import CTCSettings
from gluonloss._threads import threads_for
from gluonloss._validation import validate_ctc

_ctc = load_kernels("_ctc")

__all__ = ["CTCLoss"]



class CTCLoss(CTCSettings, Loss):
    r"""Connectionist Temporal Classification loss.

    ``pred`` holds unnormalised activations; the loss applies a softmax over
    the classes, :math:`y_{t,k} = e^{x_{t,k}} / \sum_j e^{x_{t,j}}`.  Class
    :math:`C-1` is the blank (class 0 with ``blank_label='first'``).  For a
    sample with label :math:`l` of length
    :math:`S` and :math:`T_b` frames, let :math:`\mathcal{B}^{-1}(l)` be the
    alignments :math:`\pi \in \{0..C-1\}^{T_b}` that give :math:`l` once
    repeated classes are merged and blanks removed:

    .. math::
        \mathrm{out}_b = -w\, s_b \log \sum_{\pi \in \mathcal{B}^{-1}(l)}
            \prod_{t < T_b} y_{t, \pi_t}, \qquad
        \frac{\partial \sum_b g_b\,\mathrm{out}_b}{\partial x_{t,k}}
            = w\, s_b\, g_b \left(y_{t,k} - \gamma_{t,k}\right)

    where :math:`\gamma_{t,k}` is the posterior probability, given the label,
    that frame :math:`t` emits class :math:`k`; the gradient is 0 on the
    frames :math:`t \ge T_b`.  Computed by the forward-backward recursion in
    log space (stable for any finite logits and thousands of frames).

    Parameters
    ----------
    layout : {'NTC', 'TNC'}, default 'NTC'
        Layout of ``pred``: (batch, frames, classes) or (frames, batch, classes).
    label_layout : {'NT', 'TN'}, default 'NT'
        Layout of ``label``: (batch, label width) or (label width, batch).
    weight : float or None
        Global scalar weight :math:`w` (None means 1).
    zero_infinity : bool, default True
        What an impossible sample returns: a label that does not fit its frames
        (:math:`S` plus the number of adjacent repeated labels exceeds
        :math:`T_b`, since each repeat needs a blank between), or one ruled out
        by ``-inf`` logits.  True: loss 0 (MXNet's result); False: ``+inf``
        (times :math:`w s_b`).  Either way its gradient is 0.
    blank_label : {'last', 'first'}, default 'last'
        Keyword-only.  'last': class C-1 is the blank, labels lie in [0, C-2]
        and are padded with -1 (MXNet's CTCLoss).  'first': class 0 is the
        blank, labels lie in [1, C-1] and are padded with 0 (MXNet's
        ``ctc_loss`` operator with ``blank_label='first'``, PyTorch's
        ``ctc_loss`` with ``blank=0``, warp-ctc).  The loss and its speed are
        otherwise the same.

    Notes
    -----
    Call ``loss(pred, label, pred_lengths=None, label_lengths=None,
    sample_weight=None)``:

    - ``pred``: (N, T, C) or (T, N, C), real numbers; C >= 1.
    - ``label``: (N, L) or (L, N), integers in [0, C-2] padded with -1 (float
      values must be integral); with ``blank_label='first'``, integers in
      [1, C-1] padded with 0.  L may exceed T.  Without ``label_lengths``
      a row's label ends at its first padding value (or after L entries);
      entries after the label's end are ignored, whatever they are.  A
      padding value inside a given ``label_lengths`` is an error.  An empty
      label is valid (all blanks).
    - ``pred_lengths``: None (every sample uses all T frames) or N integers in
      [0, T]; sample b uses frames [0, pred_lengths[b]).
    - ``label_lengths``: None or N integers in [0, L].
    - ``sample_weight``: None, N per-sample weights :math:`s_b`, or a single
      weight shared by every sample (the rule of every loss with one value
      per sample and no elementwise loss).

    The lengths and ``sample_weight`` may have any shape holding their N
    elements, e.g. (N,) or (N, 1); lengths may be floats with integral values.
    Returns shape (N,).  NaN (or ``+inf``) in a sample's used frames makes its
    loss NaN and its gradient NaN on all of those frames; frames past
    ``pred_lengths[b]`` are never read.

    Examples
    --------
    The MXNet example: labels 'ba', 'cbb', 'abac' over classes a, b, c and the
    blank (index 3), padded with -1.

    >>> import numpy as np, gluonloss as gl
    >>> label = np.array([[1, 0, -1, -1], [2, 1, 1, -1], [0, 1, 0, 2]])
    >>> pred = np.zeros((3, 6, 4))       # 6 frames, uniform: every y = 1/4
    >>> loss = gl.CTCLoss()
    >>> out, grad = loss.value_and_gradient(pred, label)
    >>> np.round(4 ** 6 * np.exp(-out))  # p = (number of alignments) / 4^6
    array([70., 28., 45.])
    >>> grad.shape, bool(np.abs(grad.sum(axis=2)).max() < 1e-12)   # rows sum to 0
    ((3, 6, 4), True)

    The same labels with the blank first (class 0) and a, b, c as 1, 2, 3,
    padded with 0:

    >>> first = gl.CTCLoss(blank_label="first")
    >>> np.round(4 ** 6 * np.exp(-first(pred, np.where(label < 0, 0, label + 1))))
    array([70., 28., 45.])
    """

    _kernels = _ctc
    _inputs = ("pred", "label")
    _differentiable = ("pred",)
    _options = (("pred_lengths", None), ("label_lengths", None), ("sample_weight", None))
    _parameter_docs = {
        "pred": ("array_like", "Unnormalised activations, (N, T, C) for ``layout='NTC'`` or\n"
                               "(T, N, C) for ``'TNC'``; class C-1 is the blank (class 0\n"
                               "with ``blank_label='first'``)."),
        "label": ("array_like", "(N, L) for ``label_layout='NT'`` or (L, N) for ``'TN'``:\n"
                                "integers in [0, C-2], rows padded with -1 (with\n"
                                "``blank_label='first'``: in [1, C-1], padded with 0)."),
        "pred_lengths": ("array_like, optional",
                         "N frame counts in [0, T]; None means T for every sample."),
        "label_lengths": ("array_like, optional",
                          "N label lengths in [0, L]; None means up to the first padding\n"
                          "value (-1, or 0 with ``blank_label='first'``)."),
        "sample_weight": ("array_like, optional",
                          "N per-sample weights (any shape) or a single one."),
    }
    _out_doc = "Shape ``(N,)``: the negative log-likelihood times weights."
    _grad_doc = ("Shaped like ``pred``; 0 on frames past a sample's length and on\n"
                 "infeasible samples.")

    # -- the two halves of a call -------------------------------------------

    _validate = validate_ctc

    def _compute(self, call, want_loss, want_grad):
        dtype, n_samples, n_frames = call.dtype, call.n_samples, call.n_frames
        pred = class_contiguous(call.pred, dtype)
        frames = (np.full(n_samples, n_frames, np.int64) if call.pred_lengths is None
                  else call.pred_lengths)
        loss_scale = np.full(n_samples, self._scalar_weight())
        if call.sample_weight is not None:
            loss_scale *= call.sample_weight
        grad_scale = loss_scale if call.out_grad is None else loss_scale * call.out_grad
        out = np.empty(n_samples, dtype) if want_loss else None
        grad = np.empty(call.pred.shape, dtype) if want_grad else None
        work = pred.size + 8 * int(np.sum(frames * (2 * call.label_lengths + 1)))
        _ctc.ctc(pred=pred, sample_axis=self._layout.index("N"), label=call.kernel_label,
                 frames=frames, label_length=call.label_lengths, loss_scale=loss_scale,
                 grad_scale=np.ascontiguousarray(grad_scale, np.float64),
                 zero_infinity=self._zero_infinity, out=out, grad=grad,
                 n_threads=threads_for(work), blank_first=self._blank_label == "first")
        return out, grad
