"""PoissonNLLLoss beyond the shared elementwise cases (tests/_cases.py runs it
through every elementwise test): hand-computed values, the epsilon call
argument and the Stirling term of compute_full."""
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import gluonloss as gl


def _stirling(t):
    return t * math.log(t) - t + 0.5 * math.log(2 * math.pi * t)


def test_known_values_from_logits():
    # e^p - t p per element, averaged: p = (0, 1), t = (1, 2): (1 + e - 2) / 2
    out, grad = gl.PoissonNLLLoss().value_and_gradient(np.array([[0.0, 1.0]]),
                                                       np.array([[1.0, 2.0]]))
    assert_allclose(out, [(1 + math.e - 2) / 2], rtol=1e-15)
    assert_allclose(grad, [[(1 - 1) / 2, (math.e - 2) / 2]], rtol=1e-15)


def test_known_values_of_rates_and_epsilon():
    # p - t log(p + eps), gradient 1 - t / (p + eps)
    p, t = np.array([[2.0, 0.5]]), np.array([[3.0, 0.0]])
    loss = gl.PoissonNLLLoss(from_logits=False)
    out, grad = loss.value_and_gradient(p, t)
    assert_allclose(out, [(2 - 3 * math.log(2 + 1e-8) + 0.5) / 2], rtol=1e-15)
    assert_allclose(grad, [[(1 - 3 / (2 + 1e-8)) / 2, 0.5]], rtol=1e-15)
    out, grad = loss.value_and_gradient(p, t, epsilon=0.5)
    assert_allclose(out, [(2 - 3 * math.log(2.5) + 0.5) / 2], rtol=1e-15)
    assert_allclose(grad, [[(1 - 3 / 2.5) / 2, 0.5]], rtol=1e-15)
    # p = 0, t = 1: the epsilon keeps log finite
    assert_allclose(loss(np.array([[0.0]]), np.array([[1.0]]), epsilon=1e-3),
                    [-math.log(1e-3)], rtol=1e-15)


def test_epsilon_does_not_apply_to_logits():
    rng = np.random.default_rng(0)
    p, t = rng.standard_normal((3, 4)), rng.poisson(2.0, (3, 4))
    loss = gl.PoissonNLLLoss()
    assert_array_equal(loss(p, t, epsilon=0.7), loss(p, t))


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stirling_term_only_where_target_exceeds_one(from_logits, dtype):
    t = np.array([[0.0], [0.5], [1.0], [1.5], [2.0], [7.0], [1e6]], dtype)
    p = np.full_like(t, 0.75)
    plain = gl.PoissonNLLLoss(from_logits=from_logits)
    full = gl.PoissonNLLLoss(from_logits=from_logits, compute_full=True)
    out, grad = full.value_and_gradient(p, t)
    extra = [_stirling(float(v)) if v > 1 else 0.0 for v in t[:, 0]]
    assert np.isfinite(out).all()
    assert_allclose(out - plain(p, t), extra, rtol=1e-5 if dtype == np.float32 else 1e-12,
                    atol=1e-6 if dtype == np.float32 else 1e-12)
    assert_array_equal(out[:3], plain(p, t)[:3])          # t <= 1: nothing added
    assert_array_equal(grad, plain.gradient(p, t))          # no pred dependence


def test_per_sample_mean_and_mxnet_scalar():
    # MXNet 1.9.1 returns one scalar: the mean of the per-sample means.
    rng = np.random.default_rng(1)
    p, t = rng.standard_normal((5, 2, 3)), rng.poisson(1.0, (5, 2, 3))
    out = gl.PoissonNLLLoss(weight=2.0)(p, t)
    assert out.shape == (5,)
    per_element = 2.0 * (np.exp(p) - t * p)
    assert_allclose(out, per_element.reshape(5, -1).mean(1), rtol=1e-14)
    assert_allclose(out.mean(), per_element.mean(), rtol=1e-14)
    out_axis = gl.PoissonNLLLoss(batch_axis=2)(p, t)
    assert_allclose(out_axis, np.moveaxis(per_element / 2.0, 2, 0).reshape(3, -1).mean(1),
                    rtol=1e-14)


def test_positional_arguments_follow_mxnet_order():
    loss = gl.PoissonNLLLoss(0.5, False, 1, True)
    assert (loss.weight, loss._from_logits, loss.batch_axis, loss._compute_full) == (
        0.5, False, 1, True)
    p, t = np.array([[2.0, 1.0]]), np.array([[1.0, 1.0]])
    # forward(pred, target, sample_weight, epsilon)
    assert_array_equal(loss(p, t, None, 0.25), loss(p, t, epsilon=0.25))
    assert repr(gl.PoissonNLLLoss()) == "PoissonNLLLoss(batch_axis=0, w=None)"


def test_epsilon_of_concurrent_calls_never_mixes():
    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.1, (64, 900))
    t = rng.poisson(2.0, (64, 900)).astype(float)
    loss = gl.PoissonNLLLoss(from_logits=False)
    epsilons = [1e-8, 1e-3, 0.1, 1.0] * 4
    want = {e: loss.value_and_gradient(p, t, epsilon=e) for e in set(epsilons)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda e: loss.value_and_gradient(p, t, epsilon=e), epsilons))
    for e, (out, grad) in zip(epsilons, got, strict=False):
        assert_array_equal(out, want[e][0])
        assert_array_equal(grad, want[e][1])
    assert loss._epsilon == 1e-8           # the loss object itself is never changed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("compute_full", [False, True])
def test_epsilon_matches_reference(dtype, compute_full):
    rng = np.random.default_rng(3)
    p = rng.uniform(0.0, 2.0, (6, 50)).astype(dtype)
    t = rng.poisson(2.0, (6, 50)).astype(dtype)
    sw = rng.uniform(0.5, 2.0, (1, 50))
    og = rng.standard_normal(6)
    kwargs = {"from_logits": False, "compute_full": compute_full, "weight": 0.3}
    got = gl.PoissonNLLLoss(**kwargs).value_and_gradient(p, t, sample_weight=sw, epsilon=0.3,
                                                         out_grad=og)
    want = gl.reference.PoissonNLLLoss(**kwargs).value_and_gradient(p, t, sample_weight=sw,
                                                                    epsilon=0.3,
                                                                    out_grad=og)
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(got, want, strict=False):
        assert a.dtype == dtype
        assert_allclose(a, b, rtol=rtol, atol=rtol)
