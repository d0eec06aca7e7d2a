"""The kernels' own exp, log and log1p (gluonloss/_math.pxd), on whole arrays.

float32 results are compared with float64 libm rounded to float32, float64
results with libm itself (NumPy's, within an ulp of the true value).
"""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from _cases import ulp_distance
from gluonloss import _vmath

DTYPES = [np.float32, np.float64]
TINY = {np.float32: np.float32(1e-45), np.float64: 5e-324}


def _oracle(fn, x):
    with np.errstate(all="ignore"):
        return fn(x.astype(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp(dtype):
    rng = np.random.default_rng(0)
    top = 88.7 if dtype == np.float32 else 709.7
    bottom = -103.9 if dtype == np.float32 else -745.0
    x = np.concatenate([rng.uniform(bottom, top, 300_000), rng.uniform(-1, 1, 100_000),
                        np.linspace(bottom - 5, top + 5, 10_001)]).astype(dtype)
    assert ulp_distance(_vmath.apply("exp", x), _oracle(np.exp, x), dtype).max() <= 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_log(dtype):
    rng = np.random.default_rng(1)
    finfo = np.finfo(dtype)
    x = np.concatenate([
        np.exp(rng.uniform(np.log(finfo.tiny), np.log(finfo.max), 300_000)),
        rng.uniform(0.5, 2.0, 100_000),
        [TINY[dtype], finfo.tiny / 3, finfo.tiny, finfo.max, 1.0, 2.0, 0.5],
    ]).astype(dtype)
    assert ulp_distance(_vmath.apply("log", x), _oracle(np.log, x), dtype).max() <= 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_log1p_on_the_unit_interval(dtype):
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(0, 1, 300_000), np.exp(-rng.uniform(0, 700, 100_000)),
                        [0.0, 1.0, TINY[dtype], 1e-30, np.sqrt(2) - 1]]).astype(dtype)
    assert ulp_distance(_vmath.apply("log1p_unit", x), _oracle(np.log1p, x), dtype).max() <= 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(dtype):
    inf, nan = np.inf, np.nan
    x = np.array([inf, -inf, nan, 0.0, -0.0], dtype)
    with np.errstate(all="ignore"):
        assert_array_equal(_vmath.apply("exp", x), np.exp(x))
        x = np.append(x, [-1.0, -inf, 1.0])
        assert_array_equal(_vmath.apply("log", x), np.log(x))
    assert np.isnan(_vmath.apply("log1p_unit", np.array([nan], dtype)))[0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_restricted_exp_and_log(dtype):
    # exp on (-inf, 0] flushing below the smallest normal; log without special cases.
    rng = np.random.default_rng(3)
    smallest = -87.33 if dtype == np.float32 else -708.3
    x = np.concatenate([rng.uniform(smallest, 0, 300_000), rng.uniform(-1, 0, 100_000),
                        [smallest, -1e-30, -0.0, 0.0]]).astype(dtype)
    assert ulp_distance(_vmath.apply("exp_nonpositive", x), _oracle(np.exp, x), dtype).max() <= 1
    below = np.array([smallest - 0.01, -1000.0, -np.inf, np.nan], dtype)
    assert_array_equal(_vmath.apply("exp_nonpositive", below), np.array([0, 0, 0, np.nan], dtype))
    finfo = np.finfo(dtype)
    x = np.concatenate([np.exp(rng.uniform(np.log(finfo.tiny), np.log(finfo.max), 300_000)),
                        rng.uniform(1, 3, 100_000), [finfo.tiny, finfo.max, 1.0, 3.0]])
    x = x.astype(dtype)
    assert ulp_distance(_vmath.apply("log_normal", x), _oracle(np.log, x), dtype).max() <= 1


@pytest.mark.parametrize("dtype, zero_from", [(np.float32, 104.0), (np.float64, 746.0)])
def test_exp_of_nonpositive_arguments_is_exactly_zero_from_the_sdml_bound(dtype, zero_from):
    # SDMLLoss skips the exps of a group of distances when every argument is
    # at most -zero_from: that is exact only if each such exp is 0, not the
    # smallest subnormal.
    rng = np.random.default_rng(6)
    x = -np.concatenate([[zero_from], rng.uniform(zero_from, zero_from + 1, 100_000),
                         rng.uniform(zero_from, 1e4, 100_000), [1e30, np.inf]]).astype(dtype)
    assert_array_equal(_vmath.apply("exp_nonpositive_exact", x), 0.0)
    # and the bound is tight: one less still gives a subnormal
    assert _vmath.apply("exp_nonpositive_exact", np.array([1.0 - zero_from], dtype))[0] > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_of_nonpositive_arguments_is_exp(dtype):
    # The shortcut for x <= 0 (one scaling step) gives exp's bits,
    # subnormal results and the ends of the range included.
    rng = np.random.default_rng(4)
    bottom = -105.0 if dtype == np.float32 else -746.0
    x = np.concatenate([rng.uniform(bottom, 0, 300_000), rng.uniform(-1e-3, 0, 10_000),
                        np.linspace(bottom, 0, 10_001),
                        [-0.0, 0.0, -np.inf, np.nan, -87.33, -103.97, -104.0, -1e30]]).astype(dtype)
    assert_array_equal(_vmath.apply("exp_nonpositive_exact", x), _vmath.apply("exp", x))
    assert ulp_distance(_vmath.apply("exp_nonpositive_exact", x), _oracle(np.exp, x),
                        dtype).max() <= 1
