"""The elementwise loss cases every test module iterates over.

Each case builds a compiled loss, its reference twin and data in the loss's
domain (labels in {-1, 1} for the margin losses, probabilities for
from_sigmoid, ...), with values kept away from the kinks so that finite
differences are meaningful.
"""
import importlib
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest

import gluonloss as gl
from gluonloss import _dispatch, reference

#: The builds compiled beside the baseline on x86-64.
WIDE_BUILDS = ("avx2", "avx512")


def kernel_build(name, build):
    """Kernel module ``name`` in its 'baseline', 'avx2' or 'avx512' build; skips
    the test where that build was not compiled or the CPU cannot run it."""
    if build == "baseline":
        return importlib.import_module(f"gluonloss.{name}")
    try:
        module = importlib.import_module(f"gluonloss.{name}_{build}")
    except ImportError:
        pytest.skip(f"no {build} build on this platform")
    if not _dispatch.cpu_runs(build):
        pytest.skip(f"this CPU cannot run the {build} build")
    return module


def assert_same_bits(a, b, err_msg=""):
    """Same dtype, shape and bytes: NaNs included, sign and payload alike."""
    assert (a.dtype, a.shape) == (b.dtype, b.shape), err_msg
    assert a.tobytes() == b.tobytes(), f"{err_msg}: differing at " \
        f"{np.argwhere(a.view(np.uint8) != b.view(np.uint8))[:3].tolist()} (bytes)"


def kernel_builds(name, wide):
    """The baseline and the ``wide`` build of kernel module ``name`` (see kernel_build)."""
    return kernel_build(name, "baseline"), kernel_build(name, wide)


def stable_rng(*parts):
    """A generator seeded by the test's parameters, the same in every process
    (``hash`` of a str changes with PYTHONHASHSEED)."""
    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


@dataclass
class Case:
    id: str
    cls: str
    kwargs: dict = field(default_factory=dict)
    label: str = "real"        # real | signed | binary | prob | count
    pred: str = "real"         # real | prob
    pos_weight: bool = False   # pass a pos_weight argument

    def make(self):
        return getattr(gl, self.cls)(**self.kwargs)

    def make_reference(self):
        return getattr(reference, self.cls)(**self.kwargs)

    def data(self, rng, shape, dtype=np.float64):
        """pred, label and call kwargs, away from every kink."""
        if self.pred == "prob":
            pred = rng.uniform(0.05, 0.95, shape)
        else:
            pred = rng.standard_normal(shape) * 2
        if self.label == "signed":
            label = rng.choice([-1.0, 1.0], shape)
        elif self.label == "binary":
            label = rng.choice([0.0, 1.0], shape)
        elif self.label == "prob":
            label = rng.uniform(0, 1, shape)
        elif self.label == "count":     # Poisson targets: 0, 1 and larger counts
            label = rng.poisson(1.5, shape)
        else:
            label = rng.standard_normal(shape)
        pred = _away_from_kinks(self, pred, label)
        extra = {}
        if self.pos_weight:
            extra["pos_weight"] = rng.uniform(0.5, 3.0, (1,) + shape[1:])
        return pred.astype(dtype), label.astype(dtype), extra


def _away_from_kinks(case, pred, label):
    """Shift pred by 0.1 wherever it lies within 0.05 of a kink."""
    kinks = []
    if case.cls in ("L1Loss", "HuberLoss"):
        kinks.append(pred - label)
        if case.cls == "HuberLoss":
            rho = case.kwargs.get("rho", 1)
            kinks += [pred - label - rho, pred - label + rho]
    if case.cls in ("HingeLoss", "SquaredHingeLoss"):
        kinks.append(case.kwargs.get("margin", 1) - pred * label)
    for k in kinks:
        pred = np.where(np.abs(k) < 0.05, pred + 0.1, pred)
    return pred


CASES = [
    Case("l2", "L2Loss"),
    Case("l2-weight", "L2Loss", {"weight": 0.3}),
    Case("l1", "L1Loss"),
    Case("l1-weight", "L1Loss", {"weight": 2.5}),
    Case("huber", "HuberLoss"),
    Case("huber-rho0.4", "HuberLoss", {"rho": 0.4, "weight": 1.5}),
    Case("hinge", "HingeLoss", label="signed"),
    Case("hinge-margin2", "HingeLoss", {"margin": 2.0}, label="signed"),
    Case("sqhinge", "SquaredHingeLoss", label="signed"),
    Case("sqhinge-margin0.5", "SquaredHingeLoss", {"margin": 0.5, "weight": 0.7}, label="signed"),
    Case("logistic-signed", "LogisticLoss", label="signed"),
    Case("logistic-binary", "LogisticLoss", {"label_format": "binary"}, label="binary"),
    Case("bce", "SigmoidBCELoss", label="prob"),
    Case("bce-posw", "SigmoidBCELoss", {"weight": 0.5}, label="binary", pos_weight=True),
    Case("bce-sigmoid", "SigmoidBCELoss", {"from_sigmoid": True}, label="prob", pred="prob"),
    Case("bce-sigmoid-posw", "SigmoidBCELoss", {"from_sigmoid": True}, label="binary",
         pred="prob", pos_weight=True),
    # PoissonNLLLoss: log-rates or rates, integer counts as targets.
    Case("poisson", "PoissonNLLLoss", label="count"),
    Case("poisson-full", "PoissonNLLLoss", {"compute_full": True, "weight": 0.7}, label="count"),
    Case("poisson-rate", "PoissonNLLLoss", {"from_logits": False}, label="count", pred="prob"),
    Case("poisson-rate-full", "PoissonNLLLoss", {"from_logits": False, "compute_full": True},
         label="count", pred="prob"),
]

CASE_IDS = [c.id for c in CASES]


def tolerances(dtype):
    """(rtol, atol) for compiled vs reference (float64 oracle)."""
    return (2e-5, 2e-6) if np.dtype(dtype) == np.float32 else (1e-11, 1e-13)


def ulp_distance(a, b, dtype):
    """|a - b| in units in the last place of ``dtype`` (both rounded to it)."""
    itype = np.int32 if np.dtype(dtype) == np.float32 else np.int64
    with np.errstate(over="ignore"):     # float64 oracles beyond float32's range
        a = np.asarray(a, dtype).view(itype).astype(np.int64)
        b = np.asarray(b, dtype).view(itype).astype(np.int64)
    sign = np.int64(np.iinfo(itype).max)
    a = np.where(a < 0, -(a & sign), a)
    b = np.where(b < 0, -(b & sign), b)
    return np.abs(a - b)
