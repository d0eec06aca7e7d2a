"""The softmax-family cases (SoftmaxCrossEntropyLoss, KLDivLoss) that test
modules iterate over, with their data and expected shapes."""
from dataclasses import dataclass, field

import numpy as np
from scipy.special import log_softmax, softmax

import gluonloss as gl


@dataclass
class SoftmaxCase:
    id: str
    cls: str
    kwargs: dict = field(default_factory=dict)

    @property
    def sparse(self):
        return self.cls == "SoftmaxCrossEntropyLoss" and self.kwargs.get("sparse_label", True)

    @property
    def elementwise(self):
        """Whether the elementwise loss keeps the class axis (KL)."""
        return self.cls == "KLDivLoss"

    def make(self, impl=gl, **extra):
        return getattr(impl, self.cls)(**self.kwargs, **extra)

    def data(self, rng, shape, axis, dtype=np.float64):
        """pred (logits, or log-probabilities for from_logits) and a label."""
        axis %= len(shape)
        pred = rng.standard_normal(shape) * 2
        if self.kwargs.get("from_logits", self.cls == "KLDivLoss"):
            pred = log_softmax(pred, axis=axis)
        if self.sparse:
            label = rng.integers(0, shape[axis], shape[:axis] + shape[axis + 1:])
        else:
            label = softmax(rng.standard_normal(shape), axis=axis)
        return pred.astype(dtype), label


CASES = [
    SoftmaxCase("ce-sparse", "SoftmaxCrossEntropyLoss"),
    SoftmaxCase("ce-sparse-logits", "SoftmaxCrossEntropyLoss", {"from_logits": True}),
    SoftmaxCase("ce-dense", "SoftmaxCrossEntropyLoss", {"sparse_label": False, "weight": 0.7}),
    SoftmaxCase("ce-dense-logits", "SoftmaxCrossEntropyLoss",
                {"sparse_label": False, "from_logits": True}),
    SoftmaxCase("kl-logits", "KLDivLoss", {"weight": 1.5}),
    SoftmaxCase("kl-softmax", "KLDivLoss", {"from_logits": False}),
]
CASE_IDS = [c.id for c in CASES]


def case_loss_shape(case, shape, axis):
    """The shape of the elementwise loss: pred's, with ``axis`` as size 1 for CE."""
    axis %= len(shape)
    return shape if case.elementwise else shape[:axis] + (1,) + shape[axis + 1:]


def case_n_out(case, shape, axis, batch_axis):
    """The number of samples: 1 when ``axis`` is the batch axis."""
    return 1 if axis % len(shape) == batch_axis % len(shape) else shape[batch_axis]
