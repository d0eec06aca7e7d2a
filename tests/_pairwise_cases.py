"""Cases for the losses with several differentiable inputs (TripletLoss,
CosineEmbeddingLoss, SDMLLoss): data generators kept away from the kinks,
shared by tests/test_pairwise.py and tests/test_pairwise_errors.py."""
from dataclasses import dataclass, field

import numpy as np

import gluonloss as gl
from gluonloss import reference


@dataclass
class PairCase:
    id: str
    cls: str
    kwargs: dict = field(default_factory=dict)

    def make(self, impl=gl, **extra):
        return getattr(impl, self.cls)(**self.kwargs, **extra)

    def make_reference(self, **extra):
        return self.make(reference, **extra)

    @property
    def n_differentiable(self):
        return 3 if self.cls == "TripletLoss" else 2

    def data(self, rng, shape, dtype=np.float64, batch_axis=0):
        """(differentiable inputs, other call arguments), away from every kink.

        ``shape`` is pred's shape (triplet), input2's (cosine) or (N, D) (SDML).
        """
        if self.cls == "TripletLoss":
            p, q, n = (rng.standard_normal(shape) for _ in range(3))
            margin = float(self.kwargs.get("margin", 1))
            axes = tuple(i for i in range(len(shape)) if i != batch_axis % len(shape))
            h = np.sum((q - p) ** 2 - (n - p) ** 2, axis=axes, keepdims=True) + margin
            # Push samples within 0.5 of the kink h = 0 deep into the inactive side.
            n = np.where(np.abs(h) < 0.5, n + 3.0, n)
            return [x.astype(dtype) for x in (p, q, n)], {}
        if self.cls == "CosineEmbeddingLoss":
            x, y = rng.standard_normal(shape), rng.standard_normal(shape)
            n_vec = int(np.prod(shape[:-1]))
            label = rng.choice([-1, 1], n_vec)
            margin = float(self.kwargs.get("margin", 0))
            xx, yy = x.reshape(n_vec, shape[-1]), y.reshape(n_vec, shape[-1])
            cos = np.sum(xx * yy, 1) / np.maximum(
                np.linalg.norm(xx, axis=1) * np.linalg.norm(yy, axis=1), 1e-12)
            near = (np.abs(cos - margin) < 0.03) | (np.abs(cos - 1) < 0.03)
            label = np.where(near, 1, label)        # label 1 has no kink
            return [x.astype(dtype), y.astype(dtype)], {"label": label}
        x1 = rng.standard_normal(shape)
        x2 = x1 + 0.7 * rng.standard_normal(shape)   # paired rows closer than the others
        return [x1.astype(dtype), x2.astype(dtype)], {}

    def call_args(self, inputs, extra):
        """Positional arguments of forward (without sample_weight)."""
        if self.cls == "CosineEmbeddingLoss":
            return [*inputs, extra["label"]]
        return list(inputs)


PAIR_CASES = [
    PairCase("triplet", "TripletLoss"),
    PairCase("triplet-margin3-w", "TripletLoss", {"margin": 3.0, "weight": 0.4}),
    PairCase("triplet-margin-neg", "TripletLoss", {"margin": -0.5}),
    PairCase("cosine", "CosineEmbeddingLoss"),
    PairCase("cosine-margin0.3-w", "CosineEmbeddingLoss", {"margin": 0.3, "weight": 1.7}),
    PairCase("cosine-margin-neg", "CosineEmbeddingLoss", {"margin": -0.4}),
    PairCase("sdml", "SDMLLoss"),
    PairCase("sdml-sp0", "SDMLLoss", {"smoothing_parameter": 0.0}),
    PairCase("sdml-sp0.9-w", "SDMLLoss", {"smoothing_parameter": 0.9, "weight": 2.5}),
]
PAIR_IDS = [c.id for c in PAIR_CASES]


def tolerances(dtype):
    """(rtol, atol) for compiled vs the float64 reference."""
    return (5e-5, 5e-6) if np.dtype(dtype) == np.float32 else (1e-11, 1e-13)


def gradient_atol(case, inputs, dtype):
    """The absolute tolerance of the gradients, scaled to the size of their terms.

    d cos/dx = y/D - cos x/|x|^2 is a difference of terms of size 1/|x|, which
    cancel for (nearly) parallel vectors: the rounding error is eps/|x|, not
    eps times the (small) result.
    """
    atol = tolerances(dtype)[1]
    if case.cls != "CosineEmbeddingLoss":
        return atol
    dim = inputs[1].shape[-1]
    norms = [np.linalg.norm(x.reshape(-1, dim).astype(np.float64), axis=1) for x in inputs]
    with np.errstate(divide="ignore"):
        smallest = min(float(n.min()) for n in norms) if dim and norms[0].size else 1.0
    return atol * max(1.0, 1.0 / max(smallest, 1e-3))
