"""Every public loss with valid data of a given size: one table for the tests
that must cover all 14 classes alike (threads, memory, fuzzing).

``LOSSES`` has one entry per class (aliases excluded).  ``entry.call_args(rng,
size, dtype)`` returns ``(args, kwargs)`` for ``forward`` -- differentiable
inputs, labels, lengths and weights, drawn in the loss's domain -- and
``entry.upstream(rng, args)`` an ``out_grad`` for the gradient methods.

Sizes: "small" (a handful of samples), "many" (thousands of small samples,
above the parallel threshold) and "huge" (one or two very long samples: a
single row split over the threads).
"""
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import gluonloss as gl
from _cases import CASES
from _pairwise_cases import PAIR_CASES

# (samples, elements per sample) for the losses that take any per-sample width.
ROW_SHAPES = {"small": (5, 4), "many": (3000, 11), "huge": (1, 200_003)}


@dataclass
class LossEntry:
    cls: str
    kwargs: dict
    call_args: Callable          # (rng, size, dtype) -> (args, kwargs)
    n_out: Callable = None       # args -> number of outputs (default: len(args[0]))

    def make(self, impl=gl):
        return getattr(impl, self.cls)(**self.kwargs)

    def upstream(self, rng, args):
        n = self.n_out(args) if self.n_out else len(args[0])
        return rng.standard_normal(n)

    def __repr__(self):
        return f"{self.cls}({self.kwargs})"


def _elementwise(case):
    def call_args(rng, size, dtype):
        shape = ROW_SHAPES[size]
        pred, label, extra = case.data(rng, shape, dtype)
        return [pred, label], {"sample_weight": rng.uniform(0, 2, (shape[0], 1)), **extra}
    return LossEntry(case.cls, case.kwargs, call_args)


def _first_case_per_class(cases):
    seen = {}
    for case in cases:
        seen.setdefault(case.cls, case)
    return list(seen.values())


def _softmax_ce(rng, size, dtype):
    n, c = {"small": (5, 4), "many": (3000, 10), "huge": (1, 100_003)}[size]
    pred = (rng.standard_normal((n, c)) * 3).astype(dtype)
    label = rng.integers(0, c, n)
    return [pred, label], {"sample_weight": rng.uniform(0, 2, (n, 1))}


def _kl_div(rng, size, dtype):
    n, c = {"small": (5, 4), "many": (3000, 10), "huge": (1, 100_003)}[size]
    pred = rng.standard_normal((n, c))
    log_probs = pred - np.log(np.sum(np.exp(pred), axis=1, keepdims=True))
    label = rng.dirichlet(np.ones(c), n)
    return [log_probs.astype(dtype), label], {"sample_weight": rng.uniform(0, 2, (n, c))}


def _ctc(rng, size, dtype):
    """NTC activations; labels padded with -1, given lengths for half the samples."""
    n, t, c, width = {"small": (3, 6, 4, 3), "many": (400, 30, 8, 10),
                      "huge": (1, 3000, 40, 400)}[size]
    pred = (rng.standard_normal((n, t, c)) * 2).astype(dtype)
    lengths = rng.integers(0, width + 1, n)
    label = rng.integers(0, c - 1, (n, width))
    label[np.arange(width) >= lengths[:, None]] = -1
    pred_lengths = rng.integers(t // 2, t + 1, n)
    return [pred, label], {"pred_lengths": pred_lengths, "label_lengths": lengths,
                           "sample_weight": rng.uniform(0, 2, n)}


def _pairwise(case):
    shapes = {"TripletLoss": ROW_SHAPES,
              "CosineEmbeddingLoss": ROW_SHAPES,
              # SDML couples every pair of samples: N^2 work.
              "SDMLLoss": {"small": (5, 4), "many": (700, 6), "huge": (3, 100_003)}}[case.cls]

    def call_args(rng, size, dtype):
        shape = shapes[size]
        inputs, extra = case.data(rng, shape, dtype)
        kwargs = {}
        if case.cls != "SDMLLoss":
            kwargs["sample_weight"] = rng.uniform(0, 2, shape[0])
        return case.call_args(inputs, extra), kwargs
    return LossEntry(case.cls, case.kwargs, call_args)


LOSSES = (
    [_elementwise(case) for case in _first_case_per_class(CASES)]
    + [LossEntry("SoftmaxCrossEntropyLoss", {}, _softmax_ce),
       LossEntry("KLDivLoss", {}, _kl_div),
       LossEntry("CTCLoss", {"zero_infinity": False}, _ctc)]
    + [_pairwise(case) for case in _first_case_per_class(PAIR_CASES)]
)
LOSS_IDS = [entry.cls for entry in LOSSES]

assert len(LOSSES) == 14, LOSS_IDS


def run(entry, rng, size, dtype=np.float32):
    """forward and value_and_gradient on fresh data: a flat list of arrays."""
    args, kwargs = entry.call_args(rng, size, dtype)
    loss = entry.make()
    og = entry.upstream(rng, args)
    out, grads = loss.value_and_gradient(*args, **kwargs, out_grad=og)
    grads = grads if isinstance(grads, tuple) else (grads,)
    return [loss(*args, **kwargs), out, *grads]
