"""The public base class of every loss."""
from gluonloss._dask import dask_aware
from gluonloss._validation import check_int, check_real

# The public methods a subclass defines; each takes Dask arrays too.
_PUBLIC_METHODS = ("forward", "gradient", "value_and_gradient", "__call__")


class Loss:
    """Base class for all losses.

    A loss maps a batch of predictions (and labels) to one value per sample
    and provides the analytic gradient of ``sum(out_grad * loss)`` with
    respect to each differentiable input.  Subclasses define
    :meth:`forward`, :meth:`gradient` and :meth:`value_and_gradient` with
    their own call arguments (MXNet's); calling the loss object is the same
    as calling :meth:`forward`.

    Parameters
    ----------
    weight : float or None
        Global scalar multiplier of the loss; None means 1.
    batch_axis : int
        The axis of the prediction that indexes samples (negative allowed).

    Notes
    -----
    What every loss shares:

    - Inputs are anything :func:`numpy.asarray` accepts, in any memory
      layout; they are never modified, and outputs never alias them.
    - Computation is float32 when every differentiable input is float32,
      else float64.
    - ``sample_weight`` multiplies the elementwise loss before the
      per-sample reduction and must broadcast to it without enlarging it.
    - ``out_grad`` (ones when None) must broadcast to the output's shape.
    - Bad input raises ValueError or TypeError naming the argument.

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> loss = gl.L2Loss()
    >>> isinstance(loss, gl.Loss), loss
    (True, L2Loss(batch_axis=0, w=1.0))
    >>> loss(np.array([[1., 2.]]), np.array([[1., 0.]]))   # same as loss.forward
    array([1.])
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _PUBLIC_METHODS:
            method = cls.__dict__.get(name)
            if method is not None and not hasattr(method, "__wrapped__"):
                setattr(cls, name, dask_aware(method))

    def __init__(self, weight=None, batch_axis=0):
        self._weight = check_real(weight, "weight", allow_none=True)
        self._batch_axis = check_int(batch_axis, "batch_axis")

    @property
    def weight(self):
        """The global scalar weight (None means 1)."""
        return self._weight

    @property
    def batch_axis(self):
        """The axis of the prediction that indexes samples."""
        return self._batch_axis

    def _scalar_weight(self):
        return 1.0 if self._weight is None else float(self._weight)

    def __repr__(self):
        return f"{type(self).__name__}(batch_axis={self._batch_axis}, w={self._weight})"

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *inputs, sample_weight=None):
        """Per-sample loss.

        Parameters
        ----------
        *inputs : array_like
            The loss's inputs in MXNet's order, e.g. ``(pred, label)``; each
            subclass documents its own.
        sample_weight : array_like, optional
            Weights of the elementwise loss (see the subclass).

        Returns
        -------
        out : numpy.ndarray
            One value per sample, shape ``(N,)``, a new C-contiguous array.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def gradient(self, *inputs, sample_weight=None, out_grad=None):
        """Analytic gradient of ``sum(out_grad * forward(...))``.

        Parameters
        ----------
        *inputs, sample_weight
            As for :meth:`forward`.
        out_grad : array_like, optional
            Upstream gradient of the per-sample loss; broadcasts to ``(N,)``.
            None means ones, i.e. the gradient of ``sum(out)``.

        Returns
        -------
        grad : numpy.ndarray or tuple of numpy.ndarray
            One array shaped like the differentiable input, or a tuple in
            argument order when the loss has several (TripletLoss,
            CosineEmbeddingLoss, SDMLLoss).
        """
        raise NotImplementedError(f"{type(self).__name__} does not define gradient")

    def value_and_gradient(self, *inputs, sample_weight=None, out_grad=None):
        """``(forward(...), gradient(...))`` from one fused pass.

        Parameters
        ----------
        *inputs, sample_weight, out_grad
            As for :meth:`gradient`.

        Returns
        -------
        out : numpy.ndarray
            As returned by :meth:`forward`.
        grad : numpy.ndarray or tuple of numpy.ndarray
            As returned by :meth:`gradient`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not define value_and_gradient")
