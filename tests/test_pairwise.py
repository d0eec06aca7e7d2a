"""TripletLoss, CosineEmbeddingLoss and SDMLLoss: values, gradients of every
differentiable input, options, shapes, layouts, threads and builds."""
import inspect
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import check_grad
from scipy.special import logsumexp

import gluonloss as gl
from _cases import WIDE_BUILDS, assert_same_bits, kernel_builds, stable_rng
from _layouts import simple_layouts
from _pairwise_cases import PAIR_CASES, PAIR_IDS, gradient_atol, tolerances
from gluonloss import _openmp, pairwise

DTYPES = [np.float32, np.float64]


def _assert_close(actual, expected, dtype, atol=None):
    rtol, default_atol = tolerances(dtype)
    atol = default_atol if atol is None else atol
    assert actual.dtype == np.dtype(dtype)
    assert_allclose(actual, expected, rtol=rtol, atol=atol)


def _value_and_grads(loss, case, inputs, extra, sw=None, og=None):
    kwargs = {} if case.cls == "SDMLLoss" else {"sample_weight": sw}
    return loss.value_and_gradient(*case.call_args(inputs, extra), **kwargs, out_grad=og)


# -- compiled against the reference ---------------------------------------------

SHAPES = {
    "TripletLoss": [((7, 5), 0), ((7, 5), 1), ((4, 3, 6), 1), ((4, 3, 6), -1), ((9,), 0),
                    ((2, 3, 2, 5), 2), ((3, 600), 0), ((300, 130), 0)],
    "CosineEmbeddingLoss": [((7, 5), 0), ((4, 3, 6), 0), ((9,), 0), ((2, 3, 2, 5), 0),
                            ((3, 600), 0), ((300, 130), 0), ((5, 1), 0)],
    "SDMLLoss": [((2, 1), 0), ((2, 5), 0), ((7, 3), 0), ((33, 17), 0), ((40, 33), 0),
                 ((70, 20), 0), ((5, 40), 0)],
}
MATCH_PARAMS = [(case, shape, axis) for case in PAIR_CASES for shape, axis in SHAPES[case.cls]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case, shape, batch_axis", MATCH_PARAMS,
                         ids=[f"{c.id}-{s}-{a}" for c, s, a in MATCH_PARAMS])
def test_matches_reference(case, shape, batch_axis, dtype):
    rng = stable_rng(case.id, shape, batch_axis)
    inputs, extra = case.data(rng, shape, dtype, batch_axis)
    loss = case.make(batch_axis=batch_axis)
    ref = case.make_reference(batch_axis=batch_axis)
    n_out = len(loss(*case.call_args(inputs, extra)))
    sw = None if case.cls == "SDMLLoss" else rng.uniform(0.2, 2, n_out)
    og = rng.standard_normal(n_out)
    out, grads = _value_and_grads(loss, case, inputs, extra, sw, og)
    ref_out, ref_grads = _value_and_grads(ref, case, inputs, extra, sw, og)
    _assert_close(out, ref_out, dtype)
    assert len(grads) == case.n_differentiable
    for g, r, x in zip(grads, ref_grads, inputs, strict=False):
        assert g.shape == x.shape and g.flags.c_contiguous
        _assert_close(g, r, dtype, gradient_atol(case, inputs, dtype))


@pytest.mark.parametrize("case", PAIR_CASES, ids=PAIR_IDS)
def test_value_and_gradient_equals_separate_calls(case):
    rng = np.random.default_rng(1)
    inputs, extra = case.data(rng, (40, 33), np.float32)
    loss = case.make()
    args = case.call_args(inputs, extra)
    kwargs = {} if case.cls == "SDMLLoss" else {"sample_weight": rng.uniform(0, 2, (40, 1))}
    og = rng.standard_normal(40)
    out, grads = loss.value_and_gradient(*args, **kwargs, out_grad=og)
    assert_array_equal(out, loss(*args, **kwargs))
    assert_array_equal(out, loss.forward(*args, **kwargs))
    for a, b in zip(grads, loss.gradient(*args, **kwargs, out_grad=og), strict=False):
        assert_array_equal(a, b)


# -- analytic gradients of every input against finite differences ---------------------

GRAD_PARAMS = [(case, weighting) for case in PAIR_CASES for weighting in ("plain", "sample_weight")
               if not (case.cls == "SDMLLoss" and weighting == "sample_weight")]


@pytest.mark.parametrize("impl", ["compiled", "reference"])
@pytest.mark.parametrize("case, weighting", GRAD_PARAMS,
                         ids=[f"{c.id}-{w}" for c, w in GRAD_PARAMS])
def test_check_grad_every_input(case, weighting, impl):
    rng = np.random.default_rng(2)
    shape = (5, 3, 4) if case.cls == "TripletLoss" else (3, 2, 4) if (
        case.cls == "CosineEmbeddingLoss") else (5, 4)
    inputs, extra = case.data(rng, shape)
    loss = case.make() if impl == "compiled" else case.make_reference()
    n_out = len(loss(*case.call_args(inputs, extra)))
    kwargs = {}
    if case.cls != "SDMLLoss":
        kwargs["sample_weight"] = None if weighting == "plain" else rng.uniform(0.5, 2, n_out)
    og = rng.uniform(-2, 2, n_out)
    for k, x0 in enumerate(inputs):
        def with_k(x):
            args = list(inputs)
            args[k] = x.reshape(x0.shape)
            return case.call_args(args, extra)

        def f(x):
            return float(np.sum(og * loss(*with_k(x), **kwargs)))

        def g(x):
            return loss.gradient(*with_k(x), **kwargs, out_grad=og)[k].ravel()

        err = check_grad(f, g, x0.ravel(), epsilon=1e-7)
        scale = max(1.0, np.linalg.norm(g(x0.ravel())))
        assert err < 2e-5 * scale, (k, err)


# -- values computed by hand -------------------------------------------------------------

def test_triplet_known_values():
    p = np.array([[0.0, 0.0], [1.0, 1.0]])
    q = np.array([[1.0, 0.0], [1.0, 1.0]])
    n = np.array([[0.0, 2.0], [1.0, 1.0]])
    # row 0: (1 + 0) - (0 + 4) + 1 = -2 -> 0; row 1: 0 - 0 + 1 = 1
    out, (gp, gq, gn) = gl.TripletLoss().value_and_gradient(p, q, n)
    assert_array_equal(out, [0.0, 1.0])
    assert_array_equal(gp, [[0, 0], [0, 0]])      # row 0 inactive; row 1: 2(n - q) = 0
    # margin 4: row 0 active, h = 1; grads 2(n-q), 2(q-p), -2(n-p), times w s og
    out, (gp, gq, gn) = gl.TripletLoss(margin=4, weight=0.5).value_and_gradient(
        p, q, n, sample_weight=[3.0, 1.0], out_grad=[2.0, 1.0])
    assert_allclose(out, [1 * 0.5 * 3, 4 * 0.5])     # row 1: h = 0 + 4
    c = 2 * 0.5 * 3 * 2
    assert_allclose(gp[0], c * np.array([-1.0, 2.0]))
    assert_allclose(gq[0], c * np.array([1.0, 0.0]))
    assert_allclose(gn[0], c * np.array([0.0, -2.0]))


def test_triplet_kink_has_zero_gradient():
    p = np.zeros((1, 2))
    q = np.array([[1.0, 0.0]])
    n = np.array([[0.0, 1.0]])
    out, grads = gl.TripletLoss(margin=0).value_and_gradient(p, q, n)   # h = 0 exactly
    assert_array_equal(out, [0.0])
    for g in grads:
        assert_array_equal(g, 0.0)


def test_triplet_sums_rather_than_averages_and_empty_samples_cost_the_margin():
    p = np.zeros((2, 3))
    q = np.ones((2, 3))
    n = np.zeros((2, 3))
    assert_array_equal(gl.TripletLoss(margin=0.5)(p, q, n), [3.5, 3.5])
    out, grads = gl.TripletLoss(margin=0.5, batch_axis=1).value_and_gradient(
        np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)))
    assert_array_equal(out, [0.5, 0.5, 0.5])
    assert all(g.shape == (0, 3) for g in grads)
    assert_array_equal(gl.TripletLoss(margin=-1)(np.zeros((2, 0)), np.zeros((2, 0)),
                                                 np.zeros((2, 0))), [0.0, 0.0])


def _cos(x, y):
    return np.dot(x, y) / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-12)


def test_cosine_known_values():
    x = np.array([[1.0, 0.0], [1.0, 1.0], [3.0, 4.0], [1.0, 0.0]])
    y = np.array([[0.0, 1.0], [1.0, 1.0], [4.0, 3.0], [-1.0, 0.0]])
    label = np.array([1, -1, -1, 1])
    # cos: 0, 1, 24/25, -1.  margin 0.5: label -1 -> clip(cos - 0.5, 0, 0.5)
    out = gl.CosineEmbeddingLoss(margin=0.5)(x, y, label)
    assert_allclose(out, [1.0, 0.5, 24 / 25 - 0.5, 2.0], rtol=1e-15)
    # d cos/dx at x = (3, 4), y = (4, 3): y/25 - (24/25) x/25
    grads = gl.CosineEmbeddingLoss(margin=0.5).gradient(x, y, label)
    assert_allclose(grads[0][2], np.array([4, 3]) / 25 - 24 / 25 * np.array([3, 4]) / 25)
    assert_allclose(grads[1][2], np.array([3, 4]) / 25 - 24 / 25 * np.array([4, 3]) / 25)
    # cos = 1 is the clip's upper edge: zero gradient (the open interval only).
    assert_array_equal(grads[0][1], [0.0, 0.0])


def test_cosine_margin_above_one_follows_mxnet_clip_order():
    # clip(v, 0, 1 - m) tests the upper bound first: v = cos - m <= 1 - m always,
    # so for m > 1 the loss is 0 (np.clip, lower bound first, would give 1 - m < 0).
    x = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    out, grads = gl.CosineEmbeddingLoss(margin=1.5).value_and_gradient(x, y, [-1, -1, -1])
    assert_array_equal(out, [0.0, 0.0, 0.0])
    assert_array_equal(grads[0], 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cosine_zero_and_tiny_vectors_are_finite(dtype):
    x = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1e-7, 0, 0], [1.0, 2.0, 2.0]], dtype)
    y = np.array([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0], [2e-7, 0, 0], [0.0, 0.0, 0.0]], dtype)
    label = np.array([1, -1, 1, 1])
    loss = gl.CosineEmbeddingLoss()
    out, (gx, gy) = loss.value_and_gradient(x, y, label)
    assert np.isfinite(out).all() and np.isfinite(gx).all() and np.isfinite(gy).all()
    # |x||y| = 0 or 2e-14 <= 1e-12: cos = x.y / 1e-12, d cos/dx = y / 1e-12.
    cos2 = float(dtype(1e-7) * dtype(2e-7)) / 1e-12
    assert_allclose(out, [1.0, 0.0, 1 - cos2, 1.0], rtol=1e-6)
    assert_allclose(gx[0], -y[0] / 1e-12, rtol=1e-6)
    assert_array_equal(gy[0], 0.0)
    assert_array_equal(gx[1], 0.0)
    assert_allclose(gx[2], -y[2] / 1e-12, rtol=1e-6)
    assert_allclose(gy[2], -x[2] / 1e-12, rtol=1e-6)
    ref = gl.reference.CosineEmbeddingLoss().value_and_gradient(x, y, label)
    for a, b in zip((out, gx, gy), (ref[0], *ref[1]), strict=False):
        assert_allclose(a, b, rtol=1e-6)


def test_cosine_floored_gradient_is_the_derivative():
    # Inside the floor the loss is linear in x: finite differences are exact-ish.
    rng = np.random.default_rng(3)
    x = rng.uniform(-1e-8, 1e-8, (1, 5))
    y = rng.uniform(-1e-8, 1e-8, (1, 5))
    loss = gl.CosineEmbeddingLoss()

    def f(v):
        return float(loss(v.reshape(1, 5), y, [1])[0])

    def g(v):
        return loss.gradient(v.reshape(1, 5), y, [1])[0].ravel()

    assert check_grad(f, g, x.ravel(), epsilon=1e-10) < 1e-5 * np.linalg.norm(g(x.ravel()))


def test_cosine_shapes_and_labels():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 5))
    y = rng.standard_normal((2, 3, 5))
    label = rng.choice([-1, 1], (2, 3))
    loss = gl.CosineEmbeddingLoss(margin=0.1)
    out = loss(x, y, label)
    assert out.shape == (6,)
    flat = loss(x.reshape(6, 5), y.reshape(6, 5), label.ravel().astype(float))
    assert_array_equal(out, flat)
    want = [1 - _cos(a, b) if lab == 1 else np.clip(_cos(a, b) - 0.1, 0, 0.9)
            for a, b, lab in zip(x.reshape(6, 5), y.reshape(6, 5), label.ravel(), strict=False)]
    assert_allclose(out, want, rtol=1e-13)
    # input1 is read like input2; its gradient keeps its own shape.
    g1, g2 = loss.gradient(x.reshape(30), y, label)
    assert g1.shape == (30,) and g2.shape == (2, 3, 5)
    # A 1-D input is one vector.
    assert loss(x[0, 0], y[0, 0], [label[0, 0]]).shape == (1,)
    assert_allclose(loss(x[0, 0], y[0, 0], 1), [1 - _cos(x[0, 0], y[0, 0])], rtol=1e-13)


def test_cosine_batch_axis_is_accepted_and_ignored():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((2, 4, 6))
    label = rng.choice([-1, 1], 4)
    want = gl.CosineEmbeddingLoss().value_and_gradient(x, y, label)
    for axis in (1, -1, 7):
        got = gl.CosineEmbeddingLoss(batch_axis=axis).value_and_gradient(x, y, label)
        assert_array_equal(got[0], want[0])
        assert_array_equal(got[1][0], want[1][0])


def _sdml_brute_force(x1, x2, sp, w=1.0):
    n = len(x1)
    dist = np.array([[np.sum((a - b) ** 2) for b in x2] for a in x1])
    lp = -dist - logsumexp(-dist, axis=1, keepdims=True)
    y = np.where(np.eye(n, dtype=bool), 1 - sp, sp / (n - 1))
    return w * np.mean(y * (np.log(y + 1e-12) - lp), axis=1)


def test_sdml_known_values():
    # Two rows 3 apart, sp = 0: Y = I, lp_ii = -log(1 + e^-9), so
    # out_i = (log(1 + 1e-12) + log(1 + e^-9)) / 2.
    x = np.array([[0.0, 0.0], [3.0, 0.0]])
    # (log-sum-exp forms log(1 + e^-9): relative error ~1e-16 / e^-9 ~ 1e-12)
    assert_allclose(gl.SDMLLoss(0.0)(x, x), (np.log1p(1e-12) + np.log1p(np.exp(-9.0))) / 2,
                    rtol=1e-11)
    # Weight applied and the mean over j (MXNet 1.9.1 differs; docs/semantics.rst).
    rng = np.random.default_rng(6)
    x1, x2 = rng.standard_normal((2, 4, 3))
    assert_allclose(gl.SDMLLoss(0.2, weight=3.0)(x1, x2),
                    _sdml_brute_force(x1, x2, 0.2, 3.0), rtol=1e-13)
    assert_allclose(gl.SDMLLoss(0.2, weight=None)(x1, x2), _sdml_brute_force(x1, x2, 0.2),
                    rtol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sdml_identical_rows_give_exact_zero_distances(dtype):
    # Far from the origin, where |a|^2 + |b|^2 - 2 a.b would cancel badly.
    n, sp = 5, 0.3
    x = np.full((n, 64), 1234.5678, dtype)
    out, (g1, g2) = gl.SDMLLoss(sp).value_and_gradient(x, x.copy())
    y_off = sp / (n - 1)
    # All distances 0: lp = -log n, out = (sum_j Y (log(Y + 1e-12)) + log n) / n.
    want = ((1 - sp) * np.log(1 - sp + 1e-12) + (n - 1) * y_off * np.log(y_off + 1e-12)
            + np.log(n)) / n
    assert_allclose(out, want, rtol=1e-6 if dtype == np.float32 else 1e-14)
    assert_array_equal(g1, 0.0)
    assert_array_equal(g2, 0.0)
    # Paired rows identical, the others apart: D_ii = 0 exactly, loss = reference.
    rng = np.random.default_rng(7)
    x1 = (1000 + rng.standard_normal((6, 8))).astype(dtype)
    ref = gl.reference.SDMLLoss(sp).value_and_gradient(x1, x1)
    got = gl.SDMLLoss(sp).value_and_gradient(x1, x1)
    rtol, atol = tolerances(dtype)
    assert_allclose(got[0], ref[0], rtol=rtol, atol=atol)
    for a, b in zip(got[1], ref[1], strict=False):
        assert_allclose(a, b, rtol=rtol, atol=atol * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sp", [0.0, 0.3, 0.9])
def test_sdml_infinite_paired_distance_gives_inf_not_nan(sp, dtype):
    # D_00 = inf: row 0's loss has the term Y_00 * (log Y_00 - lp_00) = +inf,
    # whatever Y_01 (found by tests/test_fuzz.py: y_off * D_00 - y_off * D_00
    # was NaN for sp = 0 and for sp > (N - 1) / N).
    x1 = np.array([[0.0], [0.0]], dtype)
    x2 = np.array([[np.inf], [0.0]], dtype)
    out = gl.SDMLLoss(sp)(x1, x2)
    with np.errstate(invalid="ignore"):
        ref = gl.reference.SDMLLoss(sp)(x1, x2)
    assert out[0] == np.inf
    # Row 1: Y_10 (log Y_10 - lp_10) with lp_10 = -inf is 0 * inf = NaN for sp = 0.
    assert_array_equal(np.isnan(out), np.isnan(ref))
    assert_array_equal(np.isinf(out), np.isinf(ref))


def test_sdml_is_translation_invariant_far_from_the_origin():
    rng = np.random.default_rng(8)
    x1, x2 = rng.standard_normal((2, 9, 5))
    near = gl.SDMLLoss().value_and_gradient(x1, x2)
    far = gl.SDMLLoss().value_and_gradient(x1 + 1e4, x2 + 1e4)
    assert_allclose(far[0], near[0], rtol=1e-8)
    for a, b in zip(far[1], near[1], strict=False):
        assert_allclose(a, b, rtol=1e-7, atol=1e-9)


def test_sdml_batch_axis_is_accepted_and_ignored():
    rng = np.random.default_rng(9)
    x1, x2 = rng.standard_normal((2, 5, 3))
    want = gl.SDMLLoss()(x1, x2)
    assert_array_equal(gl.SDMLLoss(batch_axis=1)(x1, x2), want)
    assert_array_equal(gl.SDMLLoss(batch_axis=-4)(x1, x2), want)


def test_sdml_zero_width_vectors():
    out, (g1, g2) = gl.SDMLLoss(0.3).value_and_gradient(np.zeros((3, 0)), np.zeros((3, 0)))
    assert_allclose(out, _sdml_brute_force(np.zeros((3, 0)), np.zeros((3, 0)), 0.3),
                    rtol=1e-14)
    assert g1.shape == (3, 0) and g2.shape == (3, 0)


# -- weights, out_grad, dtypes, empty batches ------------------------------------------

@pytest.mark.parametrize("cls", ["TripletLoss", "CosineEmbeddingLoss"])
@pytest.mark.parametrize("sw_shape", [(), (1,), (6,), (6, 1), (1, 6), (2, 3), (1, 1, 6)])
def test_any_sample_weight_with_n_elements_is_per_sample(cls, sw_shape):
    rng = np.random.default_rng(10)
    case = next(c for c in PAIR_CASES if c.cls == cls)
    inputs, extra = case.data(rng, (6, 4))
    sw = rng.uniform(0.5, 2, sw_shape)
    per_sample = np.broadcast_to(sw.reshape(-1), (6,))
    loss = case.make()
    args = case.call_args(inputs, extra)
    out, grads = loss.value_and_gradient(*args, sample_weight=sw)
    plain, plain_grads = loss.value_and_gradient(*args)
    assert_allclose(out, plain * per_sample, rtol=1e-14)
    for g, pg in zip(grads, plain_grads, strict=False):
        assert_allclose(g, pg * per_sample[:, None], rtol=1e-14)


@pytest.mark.parametrize("case", PAIR_CASES, ids=PAIR_IDS)
@pytest.mark.parametrize("og", [2.5, [2.5], np.float32(2.5)])
def test_out_grad_broadcasts(case, og):
    rng = np.random.default_rng(11)
    inputs, extra = case.data(rng, (5, 4))
    loss = case.make()
    args = case.call_args(inputs, extra)
    for a, b in zip(loss.gradient(*args, out_grad=og), loss.gradient(*args), strict=False):
        assert_allclose(a, 2.5 * b, rtol=1e-14)


@pytest.mark.parametrize("case", PAIR_CASES, ids=PAIR_IDS)
def test_weight_scales_linearly(case):
    rng = np.random.default_rng(12)
    inputs, extra = case.data(rng, (5, 4))
    args = case.call_args(inputs, extra)
    kwargs = {k: v for k, v in case.kwargs.items() if k != "weight"}
    base = getattr(gl, case.cls)(**kwargs, weight=1)
    scaled = getattr(gl, case.cls)(**kwargs, weight=-2.5)
    assert_allclose(scaled(*args), -2.5 * base(*args), rtol=1e-14)
    for a, b in zip(scaled.gradient(*args), base.gradient(*args), strict=False):
        assert_allclose(a, -2.5 * b, rtol=1e-14)


@pytest.mark.parametrize("dtypes, expected", [
    ((np.float32, np.float32, np.float32), np.float32),
    ((np.float32, np.float32, np.float64), np.float64),
    ((np.float32, np.int64, np.float32), np.float64),
    ((np.float64, np.float32, np.float32), np.float64),
    ((np.float16, np.float16, np.float16), np.float32),
])
def test_dtype_policy_counts_every_differentiable_input(dtypes, expected):
    rng = np.random.default_rng(13)
    arrays = [rng.integers(-2, 3, (4, 5)).astype(d) for d in dtypes]
    label = np.array([1, -1, 1, 1], dtype=np.int8)
    cases = [(gl.TripletLoss(), arrays, {}),
             (gl.CosineEmbeddingLoss(), arrays[1:] + [label.astype(np.float64)], {}),
             (gl.SDMLLoss(), arrays[1:], {})]
    for loss, args, _ in cases:
        out, grads = loss.value_and_gradient(*args)
        want = expected if loss is cases[0][0] else (
            np.float32 if all(a.dtype in (np.float32, np.float16) for a in args[:2])
            else np.float64)
        assert out.dtype == want and all(g.dtype == want for g in grads), type(loss)


@pytest.mark.parametrize("cls, shapes", [
    ("TripletLoss", [(0, 4), (0,), (3, 0, 2)]),
    ("CosineEmbeddingLoss", [(0, 4), (3, 0, 4), (0, 0)]),
])
def test_empty_batch(cls, shapes):
    for shape in shapes:
        batch_axis = 1 if cls == "TripletLoss" and shape == (3, 0, 2) else 0
        loss = getattr(gl, cls)(batch_axis=batch_axis)
        z = np.zeros(shape, np.float32)
        args = [z, z, z] if cls == "TripletLoss" else [z, z, np.zeros(0)]
        out, grads = loss.value_and_gradient(*args)
        assert out.shape == (0,) and out.dtype == np.float32
        assert all(g.shape == shape and g.dtype == np.float32 for g in grads)


# -- NaN stays in its sample ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_stays_in_its_sample(dtype):
    rng = np.random.default_rng(14)
    p, q, n = rng.standard_normal((3, 4, 9)).astype(dtype)
    p[1, 2] = np.nan
    out, grads = gl.TripletLoss(margin=30).value_and_gradient(p, q, n)
    assert np.isnan(out[1]) and np.isfinite(np.delete(out, 1)).all()
    for g in grads:
        assert np.isnan(g[1]).all() and np.isfinite(np.delete(g, 1, axis=0)).all()
    x, y = rng.standard_normal((2, 4, 9)).astype(dtype)
    y[2, 0] = np.nan
    for label in (1, -1):
        out, grads = gl.CosineEmbeddingLoss(margin=-1).value_and_gradient(x, y, [label] * 4)
        assert np.isnan(out[2]) and np.isfinite(np.delete(out, 2)).all()
        for g in grads:
            assert np.isnan(g[2]).all() and np.isfinite(np.delete(g, 2, axis=0)).all()
    # SDML: a NaN in x1_i reaches out_i only (x2_j is shared by every row, so
    # its gradient couples them all).
    x1, x2 = rng.standard_normal((2, 5, 3)).astype(dtype)
    x1[3, 1] = np.nan
    out = gl.SDMLLoss()(x1, x2)
    assert np.isnan(out[3]) and np.isfinite(np.delete(out, 3)).all()


# -- memory layouts ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", PAIR_CASES[::3], ids=PAIR_IDS[::3])
def test_memory_layouts_and_no_aliasing(case):
    rng = np.random.default_rng(15)
    inputs, extra = case.data(rng, (6, 9), np.float32)
    loss = case.make()
    want = loss.value_and_gradient(*case.call_args(inputs, extra))
    variants = list(zip(*[list(simple_layouts(x)) for x in inputs], strict=False))
    for variant in variants:
        name = variant[0][0]
        xs = [x for _, x in variant]
        snapshots = [x.copy() for x in xs]
        out, grads = loss.value_and_gradient(*case.call_args(xs, extra))
        assert_array_equal(out, want[0], err_msg=name)
        for g, w, x, snap in zip(grads, want[1], xs, snapshots, strict=False):
            assert_array_equal(g, w, err_msg=name)
            assert_array_equal(x, snap, err_msg=f"{name}: an input was modified")
            for o in (out, *grads):
                assert not np.shares_memory(o, x)


# -- threads and builds ---------------------------------------------------------------------

needs_openmp = pytest.mark.skipif(not _openmp.openmp_enabled(), reason="built without OpenMP")

# Above the serial threshold; odd sizes exercise SDML's padding.
THREAD_SHAPES = {"TripletLoss": [(512, 300), (3, 20000)],
                 "CosineEmbeddingLoss": [(512, 300), (3, 20000)],
                 "SDMLLoss": [(100, 40), (37, 70)]}


def _run_all(case, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    results = []
    for shape in THREAD_SHAPES[case.cls]:
        inputs, extra = case.data(rng, shape, dtype)
        og = rng.standard_normal(shape[0])
        out, grads = case.make().value_and_gradient(*case.call_args(inputs, extra), out_grad=og)
        results += [out, *grads]
    return results


@needs_openmp
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", PAIR_CASES, ids=PAIR_IDS)
def test_bitwise_identical_for_any_thread_count(case, dtype):
    with gl.num_threads(1):
        want = _run_all(case, dtype=dtype)
    assert all(w.dtype == dtype for w in want)
    for n in (2, 3):
        with gl.num_threads(n):
            got = _run_all(case, dtype=dtype)
        for g, w in zip(got, want, strict=False):
            assert_array_equal(g, w, strict=True)


@pytest.mark.parametrize("case", PAIR_CASES[::4], ids=PAIR_IDS[::4])
def test_many_python_threads_at_once(case):
    want = [_run_all(case, seed) for seed in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda seed: _run_all(case, seed), list(range(4)) * 2))
    for i, results in enumerate(got):
        for g, w in zip(results, want[i % 4], strict=False):
            assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", PAIR_CASES, ids=PAIR_IDS)
@pytest.mark.parametrize("wide", WIDE_BUILDS)
def test_wide_builds_are_bitwise_identical_to_baseline(wide, case, dtype, monkeypatch):
    base, wide_build = kernel_builds("_pairwise", wide)
    rng = np.random.default_rng(16)
    inputs, extra = case.data(rng, (37, 45), dtype)
    inputs[0][3, 7] = np.nan
    results = []
    for module in (base, wide_build):
        monkeypatch.setattr(pairwise, "_pairwise", module)
        with np.errstate(all="ignore"):
            out, grads = case.make().value_and_gradient(*case.call_args(inputs, extra))
        results.append([out, *grads])
    for a, b in zip(*results, strict=False):
        assert_same_bits(a, b)


# -- misc API ----------------------------------------------------------------------------------

def test_repr_positional_arguments_and_exports():
    assert repr(gl.TripletLoss()) == "TripletLoss(batch_axis=0, w=None)"
    assert repr(gl.SDMLLoss()) == "SDMLLoss(batch_axis=0, w=1.0)"
    assert repr(gl.CosineEmbeddingLoss(2.0, 1)) == "CosineEmbeddingLoss(batch_axis=1, w=2.0)"
    t = gl.TripletLoss(2, 3.0, 1)
    assert (t._margin, t.weight, t.batch_axis) == (2, 3.0, 1)
    c = gl.CosineEmbeddingLoss(3.0, 1, 0.25)
    assert (c.weight, c.batch_axis, c._margin) == (3.0, 1, 0.25)
    s = gl.SDMLLoss(0.1, 2.0, 1)
    assert (s._smoothing_parameter, s.weight, s.batch_axis) == (0.1, 2.0, 1)
    for name in ("TripletLoss", "CosineEmbeddingLoss", "SDMLLoss"):
        assert issubclass(getattr(gl, name), gl.Loss) and name in gl.__all__
        # The reference is a second implementation, not a subclass, with the same API.
        twin = getattr(gl.reference, name)
        assert not issubclass(twin, gl.Loss)
        # Same parameters, defaults and kinds (the compiled classes also carry type hints).
        assert _parameters(twin) == _parameters(getattr(gl, name))
        for method in ("forward", "gradient", "value_and_gradient"):
            assert _parameters(getattr(twin, method)) == _parameters(
                getattr(getattr(gl, name), method))
        assert repr(twin(weight=0.5)) == repr(getattr(gl, name)(weight=0.5))


def test_self_check_rows(capsys, monkeypatch):
    import gluonloss.__main__ as main_module
    assert main_module.multi_input_rows(np.random.default_rng(0)) == []
    printed = capsys.readouterr().out
    for name, *_ in main_module.MULTI_INPUT_CONFIGS:
        assert name in printed
    real = pairwise.SDMLLoss.gradient

    def broken(self, x1, x2, *, out_grad=None):
        g1, g2 = real(self, x1, x2, out_grad=out_grad)
        return g1, 1.01 * g2                    # only the second input is wrong

    monkeypatch.setattr(pairwise.SDMLLoss, "gradient", broken)
    assert main_module.multi_input_rows(np.random.default_rng(0)) == ["SDMLLoss"]


# -- random shapes, axes, dtypes and weights ---------------------------------------------------

@st.composite
def _problems(draw):
    case = draw(st.sampled_from(PAIR_CASES))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    if case.cls == "SDMLLoss":
        shape, batch_axis = (draw(st.integers(2, 40)), draw(st.integers(0, 40))), 0
    else:
        ndim = draw(st.integers(1, 4))
        shape = tuple(draw(st.lists(st.integers(0 if case.cls == "TripletLoss" else 1, 6),
                                    min_size=ndim, max_size=ndim)))
        batch_axis = draw(st.integers(-ndim, ndim - 1)) if case.cls == "TripletLoss" else 0
    return case, shape, batch_axis, dtype, draw(st.booleans()), draw(st.integers(0, 2**32 - 1))


@settings(max_examples=150)
@given(_problems())
def test_property_compiled_matches_reference(problem):
    case, shape, batch_axis, dtype, weighted, seed = problem
    rng = np.random.default_rng(seed)
    inputs, extra = case.data(rng, shape, dtype, batch_axis)
    loss = case.make(batch_axis=batch_axis)
    ref = case.make_reference(batch_axis=batch_axis)
    args = case.call_args(inputs, extra)
    n_out = len(ref(*args))
    kwargs = {}
    if weighted and case.cls != "SDMLLoss":
        kwargs["sample_weight"] = rng.uniform(0, 2, (n_out, 1))
    og = rng.standard_normal(n_out)
    snapshots = [x.copy() for x in inputs]
    out, grads = loss.value_and_gradient(*args, **kwargs, out_grad=og)
    ref_out, ref_grads = ref.value_and_gradient(*args, **kwargs, out_grad=og)
    rtol, atol = tolerances(dtype)
    assert out.dtype == dtype and out.shape == (n_out,)
    assert_allclose(out, ref_out, rtol=rtol, atol=atol)
    for g, r, x, snap in zip(grads, ref_grads, inputs, snapshots, strict=False):
        assert g.shape == x.shape and g.dtype == dtype
        assert_allclose(g, r, rtol=rtol, atol=gradient_atol(case, inputs, dtype))
        assert_array_equal(x, snap)


def test_cosine_clip_edges_have_zero_gradient():
    # label -1, margin 0: cos = 0 is the lower edge, cos = 1 (= 1 - margin) the upper
    # edge; both outside the open interval, so the gradient is 0 there.
    x = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 4.0]])
    y = np.array([[0.0, 1.0], [3.0, 0.0], [1.0, 0.0]])
    out, (gx, gy) = gl.CosineEmbeddingLoss().value_and_gradient(x, y, [-1, -1, -1])
    assert_array_equal(out, [0.0, 1.0, 0.6])
    assert_array_equal(gx[:2], 0.0)
    assert_array_equal(gy[:2], 0.0)
    assert_allclose(gx[2], np.array([1.0, 0.0]) / 5 - 0.6 * np.array([3.0, 4.0]) / 25)


def _parameters(function):
    return [(p.name, p.default, p.kind) for p in inspect.signature(function).parameters.values()]
