"""The baseline and AVX2 builds of the kernels give bitwise identical results."""
import importlib

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from _cases import CASE_IDS, CASES, kernel_builds
from gluonloss import _dispatch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_avx2_build_is_bitwise_identical_to_baseline(case, dtype, monkeypatch):
    base, avx2 = kernel_builds("_elementwise")
    from gluonloss import elementwise
    rng = np.random.default_rng(0)
    pred, label, extra = case.data(rng, (37, 1000), dtype)
    pred[3, 7] = np.nan
    pred[4, :5] = [np.inf, -np.inf, 1e4, -1e4, 0.0]
    sw = rng.uniform(0, 2, (1, 1000))
    og = rng.standard_normal(37)
    results = []
    for module in (base, avx2):
        monkeypatch.setattr(elementwise, "_elementwise", module)
        with np.errstate(all="ignore"):
            results.append(case.make().value_and_gradient(pred, label, sample_weight=sw, **extra,
                                                          out_grad=og))
    for a, b in zip(*results, strict=False):
        assert_array_equal(a, b)


def test_environment_forces_the_baseline(monkeypatch):
    monkeypatch.setenv("GLUONLOSS_KERNELS", "baseline")
    assert _dispatch.load_kernels("_elementwise").__name__ == "gluonloss._elementwise"
    monkeypatch.setenv("GLUONLOSS_KERNELS", "auto")
    expected = "_elementwise_avx2" if _dispatch.cpu_has_avx2() else "_elementwise"
    try:
        importlib.import_module("gluonloss._elementwise_avx2")
    except ImportError:
        expected = "_elementwise"
    assert _dispatch.load_kernels("_elementwise").__name__ == f"gluonloss.{expected}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ctc_avx2_build_is_bitwise_identical_to_baseline(dtype, monkeypatch):
    base, avx2 = kernel_builds("_ctc")
    from gluonloss import CTCLoss, ctc
    rng = np.random.default_rng(0)
    pred = (rng.standard_normal((9, 70, 33)) * 20).astype(dtype)
    pred[4, 3, 2] = np.nan
    label = rng.integers(0, 32, (9, 25))
    frames = rng.integers(25, 71, 9)
    lengths = rng.integers(0, 26, 9)
    results = []
    for module in (base, avx2):
        monkeypatch.setattr(ctc, "_ctc", module)
        results.append(CTCLoss().value_and_gradient(pred, label, pred_lengths=frames,
                                                    label_lengths=lengths))
    for a, b in zip(*results, strict=False):
        assert_array_equal(a, b)
