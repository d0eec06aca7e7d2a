"""The public base class of every loss."""
from gluonloss._validation import check_int, check_real


class Loss:
    """Base class for all losses.

    A loss maps a batch of predictions (and labels) to one value per sample
    and provides the analytic gradient of ``sum(out_grad * loss)`` with
    respect to each differentiable input.  Subclasses define ``forward``,
    ``gradient`` and ``value_and_gradient`` with their own call arguments;
    calling the loss object is the same as calling ``forward``.

    Parameters
    ----------
    weight : float or None
        Global scalar multiplier of the loss; None means 1.
    batch_axis : int
        The axis of the prediction that indexes samples (negative allowed).
    """

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
