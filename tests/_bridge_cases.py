"""Every loss and option, with small valid data, for the PyTorch and JAX
bridge tests.

``BRIDGE_CASES`` holds one entry per loss configuration: the elementwise
cases of ``_cases`` and the pairwise cases of ``_pairwise_cases`` (every
constructor option), plus the call options and layouts that change where
the batch lies (batch_axis, softmax axis, dense labels, CTC layouts and
lengths, inputs reshaped like pred, several axes of vectors).  Data are
float64 NumPy arrays kept away from the kinks, small enough for
``torch.autograd.gradcheck``.
"""
import doctest
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import gluonloss as gl
from _cases import CASES, stable_rng
from _pairwise_cases import PAIR_CASES
from gluonloss._bridge import LOSS_NAMES, SIGNATURES


@dataclass
class BridgeCase:
    id: str
    cls: str
    kwargs: dict
    data: Callable       # rng -> (args, options): forward's positional inputs and keywords

    def make(self, impl=gl, **extra):
        return getattr(impl, self.cls)(**self.kwargs, **extra)

    @property
    def differentiable(self):
        """Positions of the differentiable inputs among ``args``."""
        return SIGNATURES[getattr(gl, self.cls).__name__].differentiable

    def arrays(self, dtype=np.float64):
        """(args, options) with the differentiable inputs in ``dtype``."""
        args, options = self.data(stable_rng(self.id))
        args = [np.asarray(a, dtype) if i in self.differentiable else a
                for i, a in enumerate(args)]
        return args, options

    def __repr__(self):
        return self.id


def _elementwise(case, shape=(3, 4), sample_weight_shape=(3, 1)):
    def data(rng):
        pred, label, extra = case.data(rng, shape)
        return [pred, label], {"sample_weight": rng.uniform(0.5, 2, sample_weight_shape),
                               **extra}
    return BridgeCase(case.id, case.cls, case.kwargs, data)


def _reshaped_label(rng):
    pred = rng.standard_normal((3, 4))
    return [pred, rng.standard_normal(12)], {}


def _batch_axis_1(rng):
    pred = rng.standard_normal((2, 3, 4))
    return [pred, rng.standard_normal((2, 3, 4))], {"sample_weight": rng.uniform(0.5, 2,
                                                                                  (1, 3, 1))}


def _poisson_epsilon(rng):
    return [rng.uniform(0.2, 2, (3, 4)), rng.poisson(1.5, (3, 4))], {"epsilon": 1e-3}


def _softmax_sparse(rng):
    return [rng.standard_normal((3, 5)) * 2, rng.integers(0, 5, 3)], {
        "sample_weight": rng.uniform(0.5, 2, (3, 1))}


def _softmax_dense(rng):
    return [rng.standard_normal((3, 5)), rng.dirichlet(np.ones(5), 3)], {}


def _softmax_axis1(rng):
    # classes on axis 1 of (N, C, L): one label per (sample, position)
    return [rng.standard_normal((2, 4, 3)), rng.integers(0, 4, (2, 3))], {
        "sample_weight": rng.uniform(0.5, 2, (2, 1, 3))}


def _softmax_batch_axis1(rng):
    return [rng.standard_normal((2, 3, 4)), rng.integers(0, 4, (2, 3))], {}


def _log_probs(rng, shape):
    x = rng.standard_normal(shape)
    return x - np.log(np.sum(np.exp(x), axis=-1, keepdims=True))


def _kl_log_probs(rng):
    return [_log_probs(rng, (3, 4)), rng.dirichlet(np.ones(4), 3)], {
        "sample_weight": rng.uniform(0.5, 2, (3, 4))}


def _kl_logits(rng):
    return [rng.standard_normal((3, 4)), rng.dirichlet(np.ones(4), 3)], {}


def _ctc(layout="NTC", label_layout="NT", lengths=True, infeasible=False):
    def data(rng):
        n, t, c, width = 3, 5, 4, 3
        pred = rng.standard_normal((n, t, c))
        label = np.array([[0, 1, -1], [2, 2, 1], [1, -1, -1]])
        options = {"sample_weight": rng.uniform(0.5, 2, n)}
        if lengths:
            options["pred_lengths"] = np.array([5, 4, 3])
            options["label_lengths"] = np.array([2, 3, 1])
        if infeasible:
            label[1] = [2, 2, 2]          # needs 5 frames, and sample 1 has 4
        if layout == "TNC":
            pred = pred.transpose(1, 0, 2).copy()
        if label_layout == "TN":
            label = label.T.copy()
        assert label.size == n * width
        return [pred, label], options
    return data


def _pairwise(case, shape, reshape_first=False, batch_axis=0):
    def data(rng):
        inputs, extra = case.data(rng, shape, batch_axis=batch_axis)
        if reshape_first:
            inputs[0] = inputs[0].reshape(-1)      # read in C order as the others' shape
        options = {}
        if case.cls != "SDMLLoss":
            n = shape[batch_axis] if case.cls == "TripletLoss" else int(np.prod(shape[:-1]))
            options["sample_weight"] = rng.uniform(0.5, 2, n)
        return case.call_args(inputs, extra), options
    return data


def _triplet_reshaped(rng):
    p, q = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    n = p + 0.1 * rng.standard_normal((3, 4))     # negatives close: every sample active
    return [p, q.reshape(12), n.reshape(2, 6)], {}


BRIDGE_CASES = (
    [_elementwise(case) for case in CASES]
    + [
        BridgeCase("l2-batch_axis1", "L2Loss", {"batch_axis": 1}, _batch_axis_1),
        BridgeCase("huber-label-reshaped", "HuberLoss", {"rho": 0.5}, _reshaped_label),
        BridgeCase("poisson-rate-epsilon", "PoissonNLLLoss", {"from_logits": False},
                   _poisson_epsilon),
        BridgeCase("ce-sparse", "SoftmaxCELoss", {}, _softmax_sparse),
        BridgeCase("ce-dense", "SoftmaxCrossEntropyLoss", {"sparse_label": False},
                   _softmax_dense),
        BridgeCase("ce-from_logits", "SoftmaxCELoss", {"from_logits": True, "weight": 0.5},
                   _softmax_sparse),
        BridgeCase("ce-axis1", "SoftmaxCELoss", {"axis": 1}, _softmax_axis1),
        BridgeCase("ce-batch_axis1", "SoftmaxCELoss", {"batch_axis": 1}, _softmax_batch_axis1),
        BridgeCase("kl", "KLDivLoss", {}, _kl_log_probs),
        BridgeCase("kl-logits", "KLDivLoss", {"from_logits": False, "weight": 2.0},
                   _kl_logits),
        BridgeCase("ctc", "CTCLoss", {}, _ctc()),
        BridgeCase("ctc-padding", "CTCLoss", {"weight": 0.5}, _ctc(lengths=False)),
        BridgeCase("ctc-tnc-tn", "CTCLoss", {"layout": "TNC", "label_layout": "TN"},
                   _ctc("TNC", "TN")),
        BridgeCase("ctc-infeasible", "CTCLoss", {"layout": "TNC"},
                   _ctc("TNC", infeasible=True)),
        BridgeCase("triplet-reshaped", "TripletLoss", {"margin": 0.5}, _triplet_reshaped),
        BridgeCase("triplet-batch_axis1", "TripletLoss", {"batch_axis": 1},
                   _pairwise(PAIR_CASES[0], (2, 3, 2), batch_axis=1)),
        BridgeCase("cosine-3d-reshaped", "CosineEmbeddingLoss", {"margin": 0.2},
                   _pairwise(PAIR_CASES[3], (2, 3, 4), reshape_first=True)),
    ]
    + [BridgeCase(case.id, case.cls, case.kwargs,
                  _pairwise(case, (4, 3) if case.cls == "SDMLLoss" else (3, 4)))
       for case in PAIR_CASES]
)
CASE_IDS = [case.id for case in BRIDGE_CASES]

# One case per class, for the tests that need each loss once.
FIRST_PER_CLASS = list({getattr(gl, c.cls): c for c in reversed(BRIDGE_CASES)}.values())

assert {getattr(gl, c.cls).__name__ for c in BRIDGE_CASES} == set(SIGNATURES)


def check_public_surface(bridge):
    """What both bridge modules promise: a class per public loss (the
    aliases the same objects), the NumPy class behind it, ``reduction``
    checked, and docstring examples that run."""
    for name in LOSS_NAMES:
        cls = getattr(bridge, name)
        assert cls.__name__ == getattr(gl, name).__name__
        assert cls._numpy_class is getattr(gl, name)
    assert bridge.SoftmaxCELoss is bridge.SoftmaxCrossEntropyLoss
    assert bridge.SigmoidBCELoss is bridge.SigmoidBinaryCrossEntropyLoss
    assert sorted(bridge.__all__) == sorted(LOSS_NAMES)
    loss = bridge.HuberLoss(0.5, 2.0, reduction="sum")
    assert (repr(loss.loss), loss.reduction) == (repr(gl.HuberLoss(0.5, 2.0)), "sum")
    for bad in ("avg", None, 1, "Mean"):
        with pytest.raises(ValueError, match="reduction must be one of 'none', 'mean', 'sum'"):
            bridge.L2Loss(reduction=bad)
    result = doctest.testmod(bridge, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > len(LOSS_NAMES)


def numpy_error(call):
    """The exception ``call()`` raises."""
    with pytest.raises(Exception) as info:
        call()
    return info.value


def check_constructor_error(bridge, subject, entry, convert):
    """A constructor argument the NumPy API rejects is rejected the same way
    (at construction or, for batch_axis, at the first call)."""
    ctor = {**subject.ctor, **entry.ctor}
    expected = numpy_error(lambda: getattr(gl, subject.cls)(**ctor)(**subject.args))
    with pytest.raises(type(expected)) as info:
        getattr(bridge, subject.cls)(**ctor)(**{k: convert(v) for k, v in subject.args.items()})
    assert str(info.value) == str(expected)
