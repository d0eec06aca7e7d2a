"""The seven elementwise losses: values, gradients, options and layouts."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import check_grad

import gluonloss as gl
from _cases import CASE_IDS, CASES, stable_rng, tolerances, ulp_distance
from _layouts import simple_layouts
from _package_under_test import run_python

DTYPES = [np.float32, np.float64]


def _assert_close(actual, expected, dtype):
    rtol, atol = tolerances(dtype)
    assert actual.dtype == np.dtype(dtype)
    assert_allclose(actual, expected, rtol=rtol, atol=atol)


# -- compiled against the reference ------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("shape, batch_axis", [
    ((7, 5), 0), ((7, 5), 1), ((7, 5), -1), ((4, 3, 6), 0), ((4, 3, 6), 1), ((4, 3, 6), -1),
    ((9,), 0), ((2, 3, 2, 5), 2), ((3, 5000), 0), ((2, 9000), 0),
])
def test_matches_reference(case, dtype, shape, batch_axis):
    rng = stable_rng(case.id, shape, batch_axis)
    pred, label, extra = case.data(rng, shape, dtype)
    if "pos_weight" in extra:
        extra["pos_weight"] = rng.uniform(0.5, 3.0, shape)
    loss = type(case.make())(**case.kwargs, batch_axis=batch_axis)
    ref = type(case.make_reference())(**case.kwargs, batch_axis=batch_axis)
    out_grad = rng.standard_normal(shape[batch_axis])
    out, grad = loss.value_and_gradient(pred, label, **extra, out_grad=out_grad)
    ref_out, ref_grad = ref.value_and_gradient(pred, label, **extra, out_grad=out_grad)
    assert out.shape == (shape[batch_axis],) and grad.shape == shape
    assert out.flags.c_contiguous and grad.flags.c_contiguous
    _assert_close(out, ref_out, dtype)
    _assert_close(grad, ref_grad, dtype)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_value_and_gradient_equals_separate_calls(case):
    rng = np.random.default_rng(1)
    pred, label, extra = case.data(rng, (6, 40), np.float32)
    sw = rng.uniform(0, 2, (6, 40))
    og = rng.standard_normal(6)
    loss = case.make()
    out, grad = loss.value_and_gradient(pred, label, sample_weight=sw, **extra, out_grad=og)
    assert_array_equal(out, loss(pred, label, sw, **extra))
    assert_array_equal(out, loss.forward(pred, label, sw, **extra))
    assert_array_equal(grad, loss.gradient(pred, label, sample_weight=sw, **extra, out_grad=og))


# -- analytic gradients against finite differences ----------------------------

@pytest.mark.parametrize("impl", ["compiled", "reference"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("weighting", ["plain", "sample_weight", "elementwise_weight"])
def test_check_grad(case, impl, weighting):
    rng = np.random.default_rng(2)
    shape = (5, 3, 4)
    pred, label, extra = case.data(rng, shape)
    loss = case.make() if impl == "compiled" else case.make_reference()
    sw = {"plain": None, "sample_weight": rng.uniform(0.5, 2, (5, 1, 1)),
          "elementwise_weight": rng.uniform(0.5, 2, (1, 3, 4))}[weighting]
    og = rng.uniform(-2, 2, 5)

    def f(x):
        return float(np.sum(og * loss(x.reshape(shape), label, sw, **extra)))

    def g(x):
        return loss.gradient(x.reshape(shape), label, sample_weight=sw, **extra,
                             out_grad=og).ravel()

    err = check_grad(f, g, pred.ravel(), epsilon=1e-7)
    scale = max(1.0, np.linalg.norm(g(pred.ravel())))
    assert err < 2e-5 * scale, err


# -- values computed by hand ---------------------------------------------------

@pytest.mark.parametrize("loss, pred, label, expected", [
    # 0.5*(1^2 + 2^2)/2 = 1.25
    (gl.L2Loss(), [[1.0, 2.0]], [[0.0, 0.0]], [1.25]),
    # weight halves: 0.5 * 0.5 * 4 = 1.0
    (gl.L2Loss(weight=0.5), [[2.0]], [[0.0]], [1.0]),
    ((gl.L1Loss()), [[1.0, -3.0]], [[0.0, 0.0]], [2.0]),
    # d = 0.5 <= 1: 0.25/2 = 0.125 ; d = 3 > 1: 3 - 0.5 = 2.5
    (gl.HuberLoss(), [[0.5], [3.0]], [[0.0], [0.0]], [0.125, 2.5]),
    # rho = 2: d = 1: 1/4
    (gl.HuberLoss(rho=2), [[1.0]], [[0.0]], [0.25]),
    # 1 - 0.5*1 = 0.5 ; 1 - 2*(-1) = 3 ; 1 - 3*1 < 0 -> 0
    (gl.HingeLoss(), [[0.5, 2.0, 3.0]], [[1, -1, 1]], [3.5 / 3]),
    (gl.SquaredHingeLoss(margin=2), [[0.5]], [[1]], [2.25]),
    # p = 0: log(2) for any label
    (gl.LogisticLoss(), [[0.0]], [[-1]], [np.log(2)]),
    # p = 2, y' = 1: log(1 + e^-2)
    (gl.LogisticLoss(label_format="binary"), [[2.0]], [[1]], [np.log1p(np.exp(-2.0))]),
    # p = -1, y = 1: max(p, 0) - p*y + log(1 + e^-1) = 1 + log(1 + e^-1)
    (gl.SigmoidBCELoss(), [[-1.0]], [[1.0]], [np.log1p(np.exp(-1.0)) + 1.0]),
    (gl.SigmoidBCELoss(), [[-1.0]], [[0.0]], [np.log1p(np.exp(-1.0))]),
    (gl.SigmoidBCELoss(from_sigmoid=True), [[0.25]], [[1.0]], [-np.log(0.25 + 1e-12)]),
])
def test_known_values(loss, pred, label, expected):
    assert_allclose(loss(np.array(pred), np.array(label)), expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huber_tie_takes_the_quadratic_branch_bit_for_bit(dtype):
    # At |p - y| = rho the documented branch is the quadratic one.  With a rho
    # that is not a power of two the branches round differently: the linear
    # one gives d - rho/2 = rho/2 and sign(d) = +-1 exactly, the quadratic one
    # (1/(2 rho)) d^2 and d / rho with 1/rho rounded once (from float64 to the
    # compute dtype, then multiplied), which for rho = 3.7 differ from those
    # by an ulp in both dtypes.  One element per sample: out is the element's
    # loss with no rounding from the mean.
    rho = 3.7
    r = dtype(rho)
    pred = np.array([[r], [-r], [0.0], [0.0]], dtype)
    label = np.array([[0.0], [0.0], [-r], [r]], dtype)
    d = pred - label
    assert (np.abs(d) == r).all()
    inv = dtype(1.0 / rho)
    quadratic = (dtype(0.5) * inv) * np.abs(d) * np.abs(d)
    quadratic_grad = d * inv
    linear, linear_grad = np.abs(d) - dtype(0.5) * r, np.sign(d)
    assert (quadratic != linear).all() and (quadratic_grad != linear_grad).all()
    out, grad = gl.HuberLoss(rho=rho).value_and_gradient(pred, label)
    assert_array_equal(out, quadratic.ravel(), strict=True)
    assert_array_equal(grad, quadratic_grad, strict=True)


def test_pos_weight_known_value():
    # q = 3, y = 1, p = 0.5: 3 * log(1 + e^-0.5); y = 0 ignores q: 0.5 + log(1 + e^-0.5)
    loss = gl.SigmoidBCELoss()
    out = loss(np.array([[0.5], [0.5]]), np.array([[1.0], [0.0]]), pos_weight=3.0)
    assert_allclose(out, [3 * np.log1p(np.exp(-0.5)), 0.5 + np.log1p(np.exp(-0.5))], rtol=1e-12)
    grad = loss.gradient(np.array([[0.5]]), np.array([[1.0]]), pos_weight=3.0)
    # 1 - y + L (sigmoid(p) - 1) with L = 3
    assert_allclose(grad, [[3 * (1 / (1 + np.exp(-0.5)) - 1)]], rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pos_weight_one_equals_none(dtype):
    rng = np.random.default_rng(3)
    pred = rng.standard_normal((8, 30)).astype(dtype)
    label = rng.uniform(0, 1, (8, 30)).astype(dtype)
    for from_sigmoid in (False, True):
        x = 1 / (1 + np.exp(-pred)) if from_sigmoid else pred
        loss = gl.SigmoidBCELoss(from_sigmoid=from_sigmoid)
        a = loss.value_and_gradient(x, label)
        b = loss.value_and_gradient(x, label, pos_weight=np.ones((1, 30)))
        assert_array_equal(a[0], b[0])
        assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("pw_shape", [(), (30,), (1, 30), (8, 30), (8, 1), (1, 1)])
def test_pos_weight_shapes(pw_shape):
    rng = np.random.default_rng(4)
    pred = rng.standard_normal((8, 30))
    label = rng.choice([0.0, 1.0], (8, 30))
    pw = rng.uniform(0.5, 3, pw_shape)
    loss = gl.SigmoidBCELoss()
    # Oracle: the reference, which broadcasts with NumPy in the caller's layout.
    ref = gl.reference.SigmoidBCELoss()
    for got, want in zip(loss.value_and_gradient(pred, label, pos_weight=pw),
                         ref.value_and_gradient(pred, label, pos_weight=pw), strict=False):
        assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_logistic_signed_equals_binary_on_mapped_labels():
    rng = np.random.default_rng(5)
    pred = rng.standard_normal((5, 7))
    signed = rng.choice([-1.0, 1.0], (5, 7))
    a = gl.LogisticLoss().value_and_gradient(pred, signed)
    b = gl.LogisticLoss(label_format="binary").value_and_gradient(pred, (signed + 1) / 2)
    b2 = gl.SigmoidBCELoss().value_and_gradient(pred, (signed + 1) / 2)
    for x, y, z in zip(a, b, b2, strict=False):
        assert_array_equal(x, y)
        assert_array_equal(x, z)


# -- sample_weight, weight, out_grad --------------------------------------------

@pytest.mark.parametrize("sw_shape", [(), (1,), (6,), (1, 1), (3, 1), (1, 6), (3, 6), (4, 1, 1),
                                      (1, 3, 1), (1, 1, 6), (4, 3, 1), (4, 1, 6), (4, 3, 6)])
@pytest.mark.parametrize("batch_axis", [0, 1, 2])
def test_sample_weight_shapes(sw_shape, batch_axis):
    rng = np.random.default_rng(6)
    shape = (4, 3, 6)
    pred = rng.standard_normal(shape)
    label = rng.standard_normal(shape)
    sw = rng.uniform(0, 2, sw_shape)
    full = np.broadcast_to(sw, shape)
    for cls in (gl.L2Loss, gl.LogisticLoss):
        loss = cls(batch_axis=batch_axis)
        out, grad = loss.value_and_gradient(pred, label, sample_weight=sw)
        # Weighting by the materialised full-size weight gives the same numbers.
        out_full, grad_full = loss.value_and_gradient(pred, label, sample_weight=np.array(full))
        assert_allclose(out, out_full, rtol=1e-13)
        assert_allclose(grad, grad_full, rtol=1e-13)
        ref = getattr(gl.reference, cls.__name__)(batch_axis=batch_axis)
        ref_out, ref_grad = ref.value_and_gradient(pred, label, sample_weight=sw)
        assert_allclose(out, ref_out, rtol=1e-12)
        assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)


def test_per_sample_weight_scales_each_sample():
    rng = np.random.default_rng(7)
    pred, label = rng.standard_normal((2, 5, 8))
    sw = rng.uniform(0.5, 2, (5, 1))
    loss = gl.HuberLoss(rho=0.5)
    assert_allclose(loss(pred, label, sw), loss(pred, label) * sw[:, 0], rtol=1e-14)
    assert_allclose(loss.gradient(pred, label, sample_weight=sw), loss.gradient(pred, label) * sw,
                    rtol=1e-14)


def test_weight_scales_linearly_and_none_means_one():
    rng = np.random.default_rng(8)
    pred, label = rng.standard_normal((2, 5, 8))
    base = gl.L1Loss()
    assert base.weight is None
    assert_array_equal(base(pred, label), gl.L1Loss(weight=1)(pred, label))
    assert_allclose(gl.L1Loss(weight=-3.5)(pred, label), -3.5 * base(pred, label), rtol=1e-14)
    assert_allclose(gl.L2Loss(weight=2)(pred, label), 2 * gl.L2Loss()(pred, label), rtol=1e-14)
    assert_allclose(gl.L2Loss(weight=None)(pred, label), gl.L2Loss()(pred, label), rtol=1e-14)


@pytest.mark.parametrize("og", [2.5, [2.5], np.full(5, 2.5), np.float32(2.5)])
def test_out_grad_broadcasts(og):
    rng = np.random.default_rng(9)
    pred, label = rng.standard_normal((2, 5, 8))
    loss = gl.SquaredHingeLoss()
    assert_allclose(loss.gradient(pred, label, out_grad=og), 2.5 * loss.gradient(pred, label),
                    rtol=1e-14)


def test_out_grad_per_sample():
    rng = np.random.default_rng(10)
    pred, label = rng.standard_normal((2, 5, 8))
    og = rng.standard_normal(5)
    loss = gl.L2Loss()
    assert_allclose(loss.gradient(pred, label, out_grad=og),
                    loss.gradient(pred, label) * og[:, None], rtol=1e-14)


# -- labels, dtypes, shapes ------------------------------------------------------

def test_label_is_read_in_c_order_by_size():
    rng = np.random.default_rng(11)
    pred = rng.standard_normal((4, 6))
    label = rng.standard_normal((4, 6))
    loss = gl.L1Loss()
    want = loss.value_and_gradient(pred, label)
    for other in (label.ravel(), label.reshape(6, 4), label.reshape(2, 2, 6),
                  np.asfortranarray(label).reshape(24, order="C")):
        got = loss.value_and_gradient(pred, other)
        assert_array_equal(got[0], want[0])
        assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("pred_dtype, label_dtype, expected", [
    (np.float32, np.float32, np.float32),
    (np.float32, np.float64, np.float32),
    (np.float32, np.int64, np.float32),
    (np.float32, np.bool_, np.float32),
    (np.float64, np.float32, np.float64),
    (np.float16, np.float16, np.float32),
    (np.int32, np.float32, np.float64),
    (np.bool_, np.float32, np.float64),
])
def test_dtype_policy(pred_dtype, label_dtype, expected):
    pred = np.array([[1, 0, 1], [0, 1, 1]], dtype=pred_dtype)
    label = np.array([[0, 1, 1], [1, 1, 0]], dtype=label_dtype)
    for loss in (gl.L2Loss(), gl.SigmoidBCELoss()):
        out, grad = loss.value_and_gradient(pred, label, sample_weight=np.float64(2))
        assert out.dtype == expected and grad.dtype == expected
        ref = getattr(gl.reference, type(loss).__name__)()
        assert_allclose(out, ref(pred.astype(np.float64), label.astype(np.float64), 2.0),
                        rtol=1e-6)


def test_non_native_byte_order():
    rng = np.random.default_rng(18)
    pred = rng.standard_normal((5, 7)).astype(np.float32)
    label = rng.standard_normal((5, 7))
    loss = gl.HuberLoss()
    want = loss.value_and_gradient(pred, label)
    got = loss.value_and_gradient(pred.astype(">f4"), label.astype(">f8"),
                                  sample_weight=np.ones((5, 1), ">f8"))
    assert got[0].dtype == np.float32 and got[0].dtype.isnative
    assert_array_equal(got[0], want[0])
    assert_array_equal(got[1], want[1])


def test_python_lists_are_accepted():
    out = gl.L2Loss()([[1, 2], [3, 4]], [[1, 1], [1, 1]])
    assert out.dtype == np.float64
    assert_allclose(out, [0.25, 3.25])   # 0.5 * (0 + 1) / 2, 0.5 * (4 + 9) / 2


@pytest.mark.parametrize("shape, batch_axis", [((0, 5), 0), ((3, 0), 1), ((0,), 0),
                                               ((2, 0, 3), 1)])
def test_empty_batch(shape, batch_axis):
    pred = np.zeros(shape, np.float32)
    loss = gl.L2Loss(batch_axis=batch_axis)
    out, grad = loss.value_and_gradient(pred, pred)
    assert out.shape == (0,) and out.dtype == np.float32
    assert grad.shape == shape and grad.dtype == np.float32
    assert loss(pred, pred).shape == (0,)


def test_single_huge_sample_matches_reference():
    rng = np.random.default_rng(12)
    pred = rng.standard_normal((1, 3 * 4096 + 17)).astype(np.float32)
    label = rng.standard_normal(pred.shape).astype(np.float32)
    for cls in (gl.L2Loss, gl.LogisticLoss):
        out, grad = cls().value_and_gradient(pred, label)
        ref_out, ref_grad = getattr(gl.reference, cls.__name__)().value_and_gradient(pred, label)
        _assert_close(out, ref_out, np.float32)
        _assert_close(grad, ref_grad, np.float32)


# -- memory layouts ------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("batch_axis", [0, 1])
def test_memory_layouts_and_no_aliasing(case, batch_axis):
    rng = np.random.default_rng(13)
    pred, label, extra = case.data(rng, (6, 9), np.float32)
    sw = rng.uniform(0, 2, (6, 9))
    loss = type(case.make())(**case.kwargs, batch_axis=batch_axis)
    if extra:
        extra["pos_weight"] = rng.uniform(0.5, 3, (6, 9))
    want = loss.value_and_gradient(pred, label, sample_weight=sw, **extra)
    for (name, p), (_, y), (_, w) in zip(simple_layouts(pred), simple_layouts(label),
                                         simple_layouts(sw), strict=False):
        ex = {k: next(v for n, v in simple_layouts(x) if n == name) for k, x in extra.items()}
        snapshots = [x.copy() for x in (p, y, w, *ex.values())]
        out, grad = loss.value_and_gradient(p, y, sample_weight=w, **ex)
        assert_array_equal(out, want[0], err_msg=name)
        assert_array_equal(grad, want[1], err_msg=name)
        for x, snap in zip((p, y, w, *ex.values()), snapshots, strict=False):
            assert_array_equal(x, snap, err_msg=f"{name}: an input was modified")
            assert not np.shares_memory(out, x) and not np.shares_memory(grad, x)


def test_outputs_never_alias_contiguous_inputs():
    pred = np.ones((3, 4), np.float32)
    for loss in (gl.L2Loss(), gl.L1Loss(batch_axis=1)):
        out, grad = loss.value_and_gradient(pred, pred)
        assert not np.shares_memory(grad, pred)
        assert not np.shares_memory(out, pred)


# -- NaN and infinities ------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_stays_in_its_sample(case, dtype):
    rng = np.random.default_rng(14)
    pred, label, extra = case.data(rng, (4, 33), dtype)
    pred[1, 5] = np.nan
    loss = case.make()
    out, grad = loss.value_and_gradient(pred, label, **extra)
    assert np.isnan(out[1]) and np.isnan(grad[1, 5])
    assert np.isfinite(np.delete(out, 1)).all()
    grad_ok = np.delete(grad, 1, axis=0)
    assert np.isfinite(grad_ok).all() and np.isfinite(np.delete(grad[1], 5)).all()
    ref_out, ref_grad = case.make_reference().value_and_gradient(pred, label, **extra)
    rtol, atol = tolerances(dtype)
    assert_allclose(out, ref_out, rtol=rtol, atol=atol, equal_nan=True)
    assert_allclose(grad, ref_grad, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logits_at_infinity_give_the_limits(dtype):
    # sigmoid(+inf) = 1, so label 1 costs 0 and label 0 costs inf; symmetric at -inf.
    pred = np.array([[np.inf], [np.inf], [-np.inf], [-np.inf], [1e4], [-1e4]], dtype)
    label = np.array([[1.0], [0.0], [0.0], [1.0], [1.0], [0.0]], dtype)
    out, grad = gl.SigmoidBCELoss().value_and_gradient(pred, label)
    assert_array_equal(out, np.array([0, np.inf, 0, np.inf, 0, 0], dtype))
    assert_array_equal(grad[:, 0], np.array([0, 1, 0, -1, 0, 0], dtype))
    out, grad = gl.SigmoidBCELoss().value_and_gradient(pred, label, pos_weight=2.0)
    assert_array_equal(out, np.array([0, np.inf, 0, np.inf, 0, 0], dtype))
    assert_array_equal(grad[:, 0], np.array([0, 1, 0, -2, 0, 0], dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_logits_are_accurate(dtype):
    # log(1 + e^-|p|) for |p| large is e^-|p|: no overflow, no underflow to a wrong 0.
    p = np.array([30.0, -30.0, 80.0, -80.0], dtype)
    y = np.array([1.0, 0.0, 1.0, 0.0], dtype)
    out, grad = gl.SigmoidBCELoss(batch_axis=0).value_and_gradient(p, y)
    expected = np.exp(-np.abs(p.astype(np.float64)))
    assert_allclose(out, expected, rtol=1e-6)
    assert_allclose(grad, [-expected[0], expected[1], -expected[2], expected[3]], rtol=1e-6)


# -- our vectorised exp/log/log1p against libm, in ulps ---------------------------------

# float32 is compared with float64 libm rounded to float32; float64 with libm
# itself (NumPy's), which is within an ulp of the true value.
@pytest.mark.parametrize("dtype", DTYPES)
def test_logistic_within_two_ulp_of_libm(dtype):
    # One element per sample, so out[b] is the elementwise loss itself.
    rng = np.random.default_rng(15)
    edges = [0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0, 103.0, -103.0, 700.0, -700.0, -744.0]
    p = np.concatenate([rng.uniform(-100, 100, 200_000), rng.uniform(-3, 3, 200_000),
                        rng.uniform(-745, 700, 50_000), edges]).astype(dtype)
    p64 = p.astype(np.float64)
    zero = np.zeros_like(p)
    out, grad = gl.LogisticLoss(label_format="binary").value_and_gradient(p, zero)
    with np.errstate(over="ignore"):
        assert ulp_distance(out, np.logaddexp(0.0, p64), dtype).max() <= 2
        # sigmoid as e^p / (1 + e^p) for p < 0 keeps subnormal values (scipy's expit
        # flushes sigmoid(-744) to 0).
        e = np.exp(-np.abs(p64))
        sigmoid = np.where(p64 < 0, e, 1.0) / (1 + e)
        assert ulp_distance(grad, sigmoid, dtype).max() <= 2


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_within_two_ulp_of_libm(dtype):
    rng = np.random.default_rng(16)
    p = np.concatenate([np.exp(rng.uniform(-27, 0, 200_000)), rng.uniform(0, 1, 200_000),
                        [1.0, 0.5, 1e-7]]).astype(dtype)
    eps = dtype(1e-12)
    out = gl.SigmoidBCELoss(from_sigmoid=True)(p, np.ones_like(p))
    assert ulp_distance(out, -np.log((p + eps).astype(np.float64)), dtype).max() <= 2
    # Label 0 exercises log(1 - p + eps); subnormal and zero arguments too.
    q = np.array([1.0, 1.0 - 1e-7, 0.0, 1e-40, 1e-310, 0.75], dtype)
    out = gl.SigmoidBCELoss(from_sigmoid=True)(q, np.zeros_like(q))
    want = -np.log((dtype(1) - q + eps).astype(np.float64))
    assert ulp_distance(out, want, dtype).max() <= 2


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_follow_ieee_like_the_reference(dtype):
    # Out-of-domain inputs give what the formula gives in IEEE arithmetic.
    # (Not p = -eps: there float32 and the float64 oracle legitimately differ.)
    values = [np.inf, -np.inf, np.nan, -1.0, 0.0, 1.0, 2.0, 1e-40]
    p, y = np.meshgrid(np.array(values, dtype), np.array([0.0, 1.0, 0.5], dtype))
    p, y = p.reshape(-1, 1), y.reshape(-1, 1)
    with np.errstate(all="ignore"):
        for kwargs in ({"from_sigmoid": True}, {"from_sigmoid": False}):
            got = gl.SigmoidBCELoss(**kwargs).value_and_gradient(p, y)
            want = gl.reference.SigmoidBCELoss(**kwargs).value_and_gradient(p, y)
            for g, w in zip(got, want, strict=False):
                assert_allclose(g, w, rtol=1e-6, atol=1e-9, equal_nan=True)
        for cls in (gl.L2Loss, gl.L1Loss, gl.HuberLoss, gl.HingeLoss, gl.SquaredHingeLoss):
            got = cls().value_and_gradient(p, y)
            want = getattr(gl.reference, cls.__name__)().value_and_gradient(p, y)
            for g, w in zip(got, want, strict=False):
                assert_allclose(g, w, rtol=1e-6, equal_nan=True, err_msg=cls.__name__)


# -- misc API -----------------------------------------------------------------------

def test_repr_and_aliases():
    assert repr(gl.L2Loss()) == "L2Loss(batch_axis=0, w=1.0)"
    assert repr(gl.HingeLoss(weight=2, batch_axis=-1)) == "HingeLoss(batch_axis=-1, w=2)"
    assert repr(gl.SigmoidBCELoss()) == "SigmoidBinaryCrossEntropyLoss(batch_axis=0, w=None)"
    assert gl.SigmoidBCELoss is gl.SigmoidBinaryCrossEntropyLoss
    assert gl.reference.SigmoidBCELoss is gl.reference.SigmoidBinaryCrossEntropyLoss
    for name in ("L2Loss", "L1Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss",
                 "LogisticLoss", "SigmoidBinaryCrossEntropyLoss"):
        assert issubclass(getattr(gl, name), gl.Loss)
        assert repr(getattr(gl.reference, name)()) == repr(getattr(gl, name)())


def test_call_is_forward():
    rng = np.random.default_rng(17)
    pred, label = rng.standard_normal((2, 3, 4))
    loss = gl.HuberLoss()
    assert_array_equal(loss(pred, label), loss.forward(pred, label))
    assert_array_equal(loss(pred, label, sample_weight=2.0), loss.forward(pred, label, 2.0))


def test_positional_arguments_follow_mxnet_order():
    assert gl.HuberLoss(0.5, 2.0, 1)._rho == 0.5
    h = gl.HuberLoss(0.5, 2.0, 1)
    assert (h.weight, h.batch_axis) == (2.0, 1)
    lg = gl.LogisticLoss(2.0, 1, "binary")
    assert (lg.weight, lg.batch_axis, lg._label_format) == (2.0, 1, "binary")
    b = gl.SigmoidBCELoss(True, 3.0, 1)
    assert (b._from_sigmoid, b.weight, b.batch_axis) == (True, 3.0, 1)
    assert gl.HingeLoss(2, 3.0, 1)._margin == 2


def test_reference_is_reachable_as_an_attribute(tmp_path):
    # A fresh interpreter on the package under test, where nothing imported
    # gluonloss.reference yet.
    code = ("import sys, gluonloss as gl, numpy as np; "
            "assert 'gluonloss.reference' not in sys.modules; "
            "print(gl.reference.L2Loss()(np.ones((2, 3)), np.zeros((2, 3))))")
    result = run_python(["-c", code], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[0.5 0.5]" in result.stdout
