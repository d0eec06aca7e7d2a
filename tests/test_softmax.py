"""SoftmaxCrossEntropyLoss and KLDivLoss: values, gradients, options, layouts,
numerics, threads and the error catalog."""
import importlib
import itertools
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import check_grad
from scipy.special import log_softmax, softmax

import gluonloss as gl
from _cases import (
    WIDE_BUILDS,
    assert_same_bits,
    kernel_builds,
    stable_rng,
    tolerances,
    ulp_distance,
)
from _softmax_cases import CASE_IDS, CASES, case_loss_shape, case_n_out
from gluonloss import _openmp, reference
from gluonloss import softmax as softmax_module

DTYPES = [np.float32, np.float64]
IMPLS = [pytest.param(gl, id="compiled"), pytest.param(reference, id="reference")]


def _axis_pairs():
    """Every (shape, axis, batch_axis) for ndim 1-4, alternating negative spellings."""
    for shape in [(7,), (6, 5), (3, 4, 5), (2, 3, 4, 5)]:
        ndim = len(shape)
        for a, b in itertools.product(range(ndim), repeat=2):
            yield shape, (a - ndim if (a + b) % 2 else a), (b - ndim if a % 2 else b)


AXIS_PAIRS = list(_axis_pairs())


def _assert_close(actual, expected, dtype, **kwargs):
    rtol, atol = tolerances(dtype)
    assert actual.dtype == np.dtype(dtype)
    assert_allclose(actual, expected, **{"rtol": rtol, "atol": atol, **kwargs})


# -- compiled against the reference ------------------------------------------------

# KLDivLoss refuses axis == batch_axis (see the error tests).
PAIRED_CASES = [pytest.param(case, shape, axis, batch_axis,
                             id=f"{case.id}-{shape}-axis{axis}-batch{batch_axis}")
                for case in CASES for shape, axis, batch_axis in AXIS_PAIRS
                if not (case.elementwise and axis % len(shape) == batch_axis % len(shape))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case, shape, axis, batch_axis", PAIRED_CASES)
def test_matches_reference_every_axis_pairing(case, dtype, shape, axis, batch_axis):
    rng = stable_rng(case.id, shape, axis, batch_axis)
    pred, label = case.data(rng, shape, axis, dtype)
    loss_shape = case_loss_shape(case, shape, axis)
    sw = rng.uniform(0.5, 2, loss_shape)
    og = rng.standard_normal(case_n_out(case, shape, axis, batch_axis))
    got = case.make(axis=axis, batch_axis=batch_axis).value_and_gradient(
        pred, label, sample_weight=sw, out_grad=og)
    want = case.make(reference, axis=axis, batch_axis=batch_axis).value_and_gradient(
        pred, label, sample_weight=sw, out_grad=og)
    assert got[0].shape == og.shape and got[1].shape == shape
    assert got[0].flags.c_contiguous and got[1].flags.c_contiguous
    _assert_close(got[0], want[0], dtype)
    _assert_close(got[1], want[1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("shape, axis, batch_axis", [
    ((3, 1000), -1, 0), ((5, 37), 1, 0), ((2, 3, 600), 2, 1), ((40, 33, 30), 1, 0),
    ((64, 600), -1, 0), ((1, 70000), 1, 0), ((300, 2), -1, 0), ((2, 17, 9), 0, 2),
])
def test_matches_reference_large_and_ragged_rows(case, dtype, shape, axis, batch_axis):
    # Rows longer than the 16 lanes with tails; parallel sizes; many tiny rows.
    rng = stable_rng(case.id, shape)
    pred, label = case.data(rng, shape, axis, dtype)
    og = rng.standard_normal(shape[batch_axis])
    got = case.make(axis=axis, batch_axis=batch_axis).value_and_gradient(pred, label,
                                                                         out_grad=og)
    want = case.make(reference, axis=axis, batch_axis=batch_axis).value_and_gradient(
        pred, label, out_grad=og)
    _assert_close(got[0], want[0], dtype)
    _assert_close(got[1], want[1], dtype)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("shape, axis, batch_axis", [((6, 40), -1, 0), ((4, 5, 6), 1, 2),
                                                     ((5, 1000), -1, 0), ((2, 9000), 1, 0)])
def test_value_and_gradient_equals_separate_calls(case, shape, axis, batch_axis):
    rng = np.random.default_rng(1)
    pred, label = case.data(rng, shape, axis, np.float32)
    sw = rng.uniform(0, 2, case_loss_shape(case, shape, axis))
    og = rng.standard_normal(shape[batch_axis])
    loss = case.make(axis=axis, batch_axis=batch_axis)
    out, grad = loss.value_and_gradient(pred, label, sample_weight=sw, out_grad=og)
    assert_array_equal(out, loss(pred, label, sw))
    assert_array_equal(out, loss.forward(pred, label, sw))
    assert_array_equal(grad, loss.gradient(pred, label, sample_weight=sw, out_grad=og))
    assert_array_equal(grad, loss.gradient(pred, label, sample_weight=sw, out_grad=og))


# -- analytic gradients against finite differences ------------------------------------

def _weightings(case):
    yield "plain", None
    yield "per-sample", (5, 1, 1)
    yield "per-row", (1, 3, 1)       # varies within a sample, constant along the classes
    if case.elementwise:
        yield "per-class", (1, 1, 4)
        yield "per-element", (5, 3, 4)


@pytest.mark.parametrize("impl", ["compiled", "reference"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("axis", [-1, 1])
def test_check_grad(case, impl, axis):
    rng = np.random.default_rng(2)
    shape = (5, 3, 4)
    pred, label = case.data(rng, shape, axis)
    loss = case.make(gl if impl == "compiled" else reference, axis=axis)
    og = rng.uniform(-2, 2, 5)
    for name, sw_shape in _weightings(case):
        if sw_shape is not None and axis == 1 and not case.elementwise:
            sw_shape = (sw_shape[0], 1, sw_shape[1] * sw_shape[2] // 3 or 1)
        sw = None if sw_shape is None else rng.uniform(0.5, 2, sw_shape)

        def f(x):
            return float(np.sum(og * loss(x.reshape(shape), label, sw)))

        def g(x):
            return loss.gradient(x.reshape(shape), label, sample_weight=sw, out_grad=og).ravel()

        err = check_grad(f, g, pred.ravel(), epsilon=1e-7)
        scale = max(1.0, np.linalg.norm(g(pred.ravel())))
        assert err < 2e-5 * scale, (name, err)


# -- values derived by hand -------------------------------------------------------------

def test_known_values_sparse():
    loss = gl.SoftmaxCELoss()
    # -log softmax([1, 10])[0] = log(1 + e^9); -log softmax([8, 2])[1] = log(1 + e^6)
    out = loss(np.array([[1.0, 10.0], [8.0, 2.0]]), np.array([0, 1]))
    assert_allclose(out, [np.log1p(np.exp(9.0)), np.log1p(np.exp(6.0))], rtol=1e-14)
    # Equal logits: log C; gradient softmax - onehot = 1/C - [j == y].
    pred = np.full((1, 4), 0.3)
    out, grad = loss.value_and_gradient(pred, np.array([2]))
    assert_allclose(out, [np.log(4.0)], rtol=1e-14)
    assert_allclose(grad, [[0.25, 0.25, -0.75, 0.25]], rtol=1e-14)
    # from_logits: just -pred[label]; gradient -1 at the label.
    out, grad = gl.SoftmaxCELoss(from_logits=True).value_and_gradient(
        np.array([[-1.5, -0.2, -3.0]]), np.array([1.0]))
    assert_allclose(out, [0.2])
    assert_array_equal(grad, [[0.0, -1.0, 0.0]])


def test_known_values_dense_and_kl():
    # Dense labels (a, b) on logits (0, log 3): softmax = (1/4, 3/4), so the loss
    # is a log 4 + b log(4/3) and the gradient softmax * (a + b) - label.
    pred = np.array([[0.0, np.log(3.0)]])
    label = np.array([[0.2, 0.6]])
    out, grad = gl.SoftmaxCELoss(sparse_label=False).value_and_gradient(pred, label)
    assert_allclose(out, [0.2 * np.log(4) + 0.6 * np.log(4 / 3)], rtol=1e-14)
    assert_allclose(grad, [[0.25 * 0.8 - 0.2, 0.75 * 0.8 - 0.6]], rtol=1e-14, atol=1e-16)
    # KL from_logits with pred = log(label): every term y (log(y + eps) - log y) ~ eps.
    y = np.array([[0.25, 0.75]])
    assert_allclose(gl.KLDivLoss()(np.log(y), y), [1e-12], rtol=1e-3)
    # KL(label || softmax) averaged over the C entries: (a log(a/p) + b log(b/q)) / 2.
    out = gl.KLDivLoss(from_logits=False)(pred, np.array([[0.5, 0.5]]))
    assert_allclose(out, [(0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)) / 2],
                    rtol=1e-10)


def test_dense_one_hot_equals_sparse():
    rng = np.random.default_rng(3)
    pred = rng.standard_normal((9, 13))
    label = rng.integers(0, 13, 9)
    sw = rng.uniform(0.5, 2, (9, 1))
    for from_logits in (False, True):
        sparse = gl.SoftmaxCELoss(from_logits=from_logits).value_and_gradient(pred, label,
                                                                              sample_weight=sw)
        dense = gl.SoftmaxCELoss(sparse_label=False, from_logits=from_logits) \
            .value_and_gradient(pred, np.eye(13)[label], sample_weight=sw)
        assert_allclose(sparse[0], dense[0], rtol=1e-14)
        assert_allclose(sparse[1], dense[1], rtol=1e-14, atol=1e-17)


def test_kl_mean_is_mxnet_sum_over_classes():
    # MXNet 1.9.1 sums over the class axis; gluonloss averages (docs/semantics.rst).
    rng = np.random.default_rng(4)
    pred = log_softmax(rng.standard_normal((4, 6)), axis=1)
    y = softmax(rng.standard_normal((4, 6)), axis=1)
    terms = y * (np.log(y + 1e-12) - pred)
    assert_allclose(gl.KLDivLoss()(pred, y) * 6, terms.sum(axis=1), rtol=1e-13)


def test_kl_softmax_equals_kl_of_log_softmax():
    rng = np.random.default_rng(5)
    pred = rng.standard_normal((4, 2, 6))
    y = softmax(rng.standard_normal((4, 2, 6)), axis=1)
    a = gl.KLDivLoss(from_logits=False, axis=1).value_and_gradient(pred, y)
    b = gl.KLDivLoss(axis=1)(log_softmax(pred, axis=1), y)
    assert_allclose(a[0], b, rtol=1e-13)
    # The gradient through log_softmax: J^T of the from_logits gradient.
    g_lp = gl.KLDivLoss(axis=1).gradient(log_softmax(pred, axis=1), y)
    chain = g_lp - softmax(pred, axis=1) * g_lp.sum(axis=1, keepdims=True)
    assert_allclose(a[1], chain, rtol=1e-12, atol=1e-16)


def test_one_dimensional_pred_is_one_sample():
    pred = np.array([0.5, -1.0, 2.0])
    out, grad = gl.SoftmaxCELoss().value_and_gradient(pred, np.array(2))
    assert out.shape == (1,) and grad.shape == (3,)
    assert_allclose(out, [-log_softmax(pred)[2]], rtol=1e-14)
    assert_allclose(grad, softmax(pred) - [0, 0, 1], rtol=1e-14)
    # axis == batch_axis on a 2-D pred: softmax down each column, one output.
    pred = np.arange(6.0).reshape(3, 2)
    out = gl.SoftmaxCELoss(axis=0, batch_axis=0)(pred, np.array([0, 2]))
    lp = log_softmax(pred, axis=0)
    assert_allclose(out, [-(lp[0, 0] + lp[2, 1]) / 2], rtol=1e-14)


# -- sample_weight, weight, out_grad ------------------------------------------------------

@pytest.mark.parametrize("sw_shape", [(), (1,), (1, 1), (1, 1, 1), (4, 1, 1), (1, 3, 1),
                                      (4, 3, 1), (3, 1)])
@pytest.mark.parametrize("case", CASES[::2], ids=CASE_IDS[::2])
def test_sample_weight_shapes_ce_and_per_row_kl(case, sw_shape):
    rng = np.random.default_rng(6)
    shape = (4, 3, 6)
    pred, label = case.data(rng, shape, -1)
    sw = rng.uniform(0, 2, sw_shape)
    loss = case.make()
    got = loss.value_and_gradient(pred, label, sample_weight=sw)
    full = np.array(np.broadcast_to(sw, case_loss_shape(case, shape, -1)))
    for want in (loss.value_and_gradient(pred, label, sample_weight=full),
                 case.make(reference).value_and_gradient(pred, label, sample_weight=sw)):
        assert_allclose(got[0], want[0], rtol=1e-12)
        assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("sw_shape", [(6,), (1, 6), (1, 1, 6), (4, 1, 6), (1, 3, 6), (4, 3, 6),
                                      (3, 6)])
@pytest.mark.parametrize("axis, batch_axis", [(-1, 0), (2, 1), (0, 1)])
def test_kl_sample_weight_varying_along_the_classes(sw_shape, axis, batch_axis):
    rng = np.random.default_rng(7)
    shape = (4, 3, 6)
    pred = rng.standard_normal(shape)
    label = softmax(rng.standard_normal(shape), axis=axis)
    sw = rng.uniform(0, 2, sw_shape)
    og = rng.standard_normal(shape[batch_axis])
    for from_logits in (True, False):
        kw = dict(from_logits=from_logits, axis=axis, batch_axis=batch_axis)
        got = gl.KLDivLoss(**kw).value_and_gradient(pred, label, sample_weight=sw, out_grad=og)
        want = reference.KLDivLoss(**kw).value_and_gradient(pred, label, sample_weight=sw,
                                                            out_grad=og)
        assert_allclose(got[0], want[0], rtol=1e-12)
        assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-16)


def test_weight_scales_linearly_and_none_means_one():
    rng = np.random.default_rng(8)
    pred = rng.standard_normal((5, 8))
    label = rng.integers(0, 8, 5)
    base = gl.SoftmaxCELoss()
    assert base.weight is None
    assert_array_equal(base(pred, label), gl.SoftmaxCELoss(weight=1)(pred, label))
    assert_allclose(gl.SoftmaxCELoss(weight=-2.5)(pred, label), -2.5 * base(pred, label),
                    rtol=1e-14)
    assert_allclose(gl.SoftmaxCELoss(weight=3).gradient(pred, label),
                    3 * base.gradient(pred, label), rtol=1e-14)


@pytest.mark.parametrize("og", [2.5, [2.5], np.full(5, 2.5), np.float32(2.5)])
def test_out_grad_broadcasts(og):
    rng = np.random.default_rng(9)
    pred, y = rng.standard_normal((2, 5, 8))
    loss = gl.KLDivLoss(from_logits=False)
    assert_allclose(loss.gradient(pred, softmax(y, -1), out_grad=og),
                    2.5 * loss.gradient(pred, softmax(y, -1)), rtol=1e-14)


# -- labels -----------------------------------------------------------------------------

@pytest.mark.parametrize("label_dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32,
                                         np.uint32, np.int64, np.uint64, np.float16, np.float32,
                                         np.float64, ">i4", ">f8", np.longdouble])
def test_sparse_label_dtypes(label_dtype):
    rng = np.random.default_rng(10)
    pred = rng.standard_normal((6, 5)).astype(np.float32)
    label = rng.integers(0, 5, 6)
    want = gl.SoftmaxCELoss().value_and_gradient(pred, label)
    got = gl.SoftmaxCELoss().value_and_gradient(pred, label.astype(label_dtype))
    assert got[0].dtype == np.float32
    assert_array_equal(got[0], want[0])
    assert_array_equal(got[1], want[1])


def test_sparse_labels_bool_int_list_and_shapes():
    pred = np.array([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])
    want = gl.SoftmaxCELoss()(pred, np.array([1, 0, 1]))
    loss = gl.SoftmaxCELoss()
    assert_array_equal(loss(pred, np.array([True, False, True])), want)
    assert_array_equal(loss(pred, [1, 0, 1]), want)
    assert_array_equal(loss(pred, [1.0, -0.0, 1.0]), want)
    assert_array_equal(loss(pred, np.array([[1], [0], [1]])), want)      # same element count
    assert_array_equal(loss(pred, np.array([1, 0, 1])[::-1].copy()[::-1]), want)
    # Labels read in C order from any shape with the right number of elements.
    pred = np.random.default_rng(11).standard_normal((2, 4, 3))
    label = np.array([[0, 1, 2], [3, 2, 1]])
    got = gl.SoftmaxCELoss(axis=1).value_and_gradient(pred, label)
    for other in (label.reshape(3, 2), label.ravel(), np.asfortranarray(label)):
        again = gl.SoftmaxCELoss(axis=1).value_and_gradient(pred, other)
        assert_array_equal(again[0], got[0])
        assert_array_equal(again[1], got[1])
    lp = log_softmax(pred, axis=1)
    assert_allclose(got[0], [-(lp[0, 0, 0] + lp[0, 1, 1] + lp[0, 2, 2]) / 3,
                             -(lp[1, 3, 0] + lp[1, 2, 1] + lp[1, 1, 2]) / 3], rtol=1e-14)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bad, value_text, where", [
    ([0, 1, 5, 2], "5", "[2]"),
    ([0, -1, 1, 2], "-1", "[1]"),
    ([0, 1, 2, 1.5], "1.5 is not an integer", "[3]"),
    ([0, np.nan, 1, 2], "nan is NaN", "[1]"),
    ([0, 1, np.inf, 2], "inf", "[2]"),
    ([1e30, 0, 1, 2], r"1e\+30 is outside", "[0]"),
    ([0, 1, 2, 3], "3", "[3]"),
    ([0.0, 1.0, 3.0, 2.0], r"3\.0 is outside", "[2]"),          # float path, exactly C
    ([0.0, 2.0, 2.9999999, 2.0], "2.9999999 is not an integer", "[2]"),
    ([0, 1, -0.5, 2], "-0.5 is not an integer", "[2]"),
])
def test_bad_sparse_labels_name_the_first_value_and_index(impl, bad, value_text, where):
    pred = np.zeros((4, 3))
    with pytest.raises(ValueError, match=re.escape(f"label{where} = ") + f".*{value_text}"):
        impl.SoftmaxCELoss()(pred, np.array(bad))
    with pytest.raises(ValueError, match="label"):
        impl.SoftmaxCELoss().value_and_gradient(pred, np.array(bad))


@pytest.mark.parametrize("label", [np.array([2**63 + 5, 0], np.uint64),
                                   np.array([0, -128], np.int8),
                                   np.array([0, 3], np.int64), np.array([0, 255], np.uint8)])
def test_out_of_range_integer_labels_of_every_width(label):
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        gl.SoftmaxCELoss()(np.zeros((2, 3)), label)


def test_bad_label_index_is_in_the_labels_own_shape():
    label = np.zeros((2, 3), np.int64)
    label[1, 2] = 7
    with pytest.raises(ValueError, match=r"label\[1, 2\] = 7"):
        gl.SoftmaxCELoss(axis=1)(np.zeros((2, 4, 3)), label)


# -- numerics ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_logits_do_not_overflow(dtype):
    pred = np.array([[1e4, -1e4, 0.0], [1e4, 1e4 + 1, 1e4], [-1e4, -1e4, -1e4 - 2]], dtype)
    label = np.array([0, 0, 2])
    out, grad = gl.SoftmaxCELoss().value_and_gradient(pred, label)
    # Row 1: softmax (1, 0, 0); row 2: log(2 + e) - 0 + ...; row 3 against float64 by hand.
    e = np.e
    assert_allclose(out, [0.0, np.log(2 + e), 2 + np.log(2 + np.exp(-2.0))],
                    rtol=2e-6 if dtype == np.float32 else 1e-13)
    assert np.isfinite(grad).all()
    assert_allclose(grad[0], [0, 0, 0], atol=1e-30)
    assert_allclose(grad[1], np.array([1, e, 1]) / (2 + e) - [1, 0, 0], rtol=1e-6)
    # Dense and KL on the same logits: finite and equal to the reference.
    y = softmax(np.array([[1.0, 2, 3]] * 3), axis=1)
    for loss, ref in ((gl.SoftmaxCELoss(sparse_label=False),
                       reference.SoftmaxCELoss(sparse_label=False)),
                      (gl.KLDivLoss(from_logits=False), reference.KLDivLoss(from_logits=False))):
        got, want = loss.value_and_gradient(pred, y), ref.value_and_gradient(pred, y)
        for g, w in zip(got, want, strict=False):
            assert np.isfinite(g).all()
            _assert_close(g, w, dtype, atol=1e-4 if dtype == np.float32 else 1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_minus_infinity_logits_that_are_not_the_label(dtype):
    inf = np.inf
    pred = np.array([[-inf, 0.0, 1.0, -inf] + [0.5] * 30, [-inf] * 33 + [2.0],
                     [0.0, -inf, 3.0, 1.0] + [-inf] * 30], dtype)
    label = np.array([2, 33, 1])
    out, grad = gl.SoftmaxCELoss().value_and_gradient(pred, label)
    finite = pred[0, np.isfinite(pred[0])].astype(np.float64)
    assert_allclose(out[0], -log_softmax(finite)[1], rtol=1e-6)
    assert out[1] == 0.0
    assert out[2] == inf                       # the label's own logit is -inf
    assert not np.isnan(grad).any()
    assert_array_equal(grad[0, [0, 3]], 0)
    assert_array_equal(grad[1], np.eye(34)[33] * 0)
    assert_allclose(grad[2, [0, 2, 3]], softmax(np.array([0.0, 3.0, 1.0])), rtol=1e-6)
    assert grad[2, 1] == -1
    # Dense labels that are 0 where the logit is -inf, and KL on log-probabilities of 0.
    y = np.where(np.isfinite(pred), 1.0, 0.0)
    y /= y.sum(axis=1, keepdims=True)
    for loss in (gl.SoftmaxCELoss(sparse_label=False), gl.KLDivLoss(from_logits=False),
                 gl.SoftmaxCELoss(sparse_label=False, from_logits=True), gl.KLDivLoss()):
        o, g = loss.value_and_gradient(pred, y)
        assert np.isfinite(o).all() and np.isfinite(g).all(), loss
        ref = getattr(reference, type(loss).__name__)(
            sparse_label=False, from_logits=loss._from_logits) if isinstance(
            loss, gl.SoftmaxCELoss) else reference.KLDivLoss(from_logits=loss._from_logits)
        r = ref.value_and_gradient(pred, y)
        _assert_close(o, r[0], dtype)
        _assert_close(g, r[1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_pad", [1, 13, 37, 300])
def test_padding_with_minus_infinity_changes_nothing(dtype, n_pad):
    # Short rows (C < 16) and blocked rows take different paths; -inf logits
    # appended to either contribute exactly nothing and get a zero gradient.
    rng = np.random.default_rng(15)
    pred = np.concatenate([rng.standard_normal((6, 5)) * 3, [[1e4, -1e4, 0, 1, 2]]]).astype(dtype)
    label = np.array([0, 1, 2, 3, 4, 0, 0])
    padded = np.concatenate([pred, np.full((7, n_pad), -np.inf, dtype)], axis=1)
    for kwargs in ({}, {"from_logits": True}):
        out, grad = gl.SoftmaxCELoss(**kwargs).value_and_gradient(pred, label)
        out_p, grad_p = gl.SoftmaxCELoss(**kwargs).value_and_gradient(padded, label)
        _assert_close(out_p, out, dtype)
        _assert_close(grad_p[:, :5], grad, dtype)
        assert_array_equal(grad_p[:, 5:], 0)
    y = softmax(rng.standard_normal((7, 5)), axis=1)
    y_padded = np.concatenate([y, np.zeros((7, n_pad))], axis=1)
    out, grad = gl.KLDivLoss(from_logits=False).value_and_gradient(pred, y)
    out_p, grad_p = gl.KLDivLoss(from_logits=False).value_and_gradient(padded, y_padded)
    _assert_close(out_p * (5 + n_pad) / 5, out, dtype)     # mean over more entries
    _assert_close(grad_p[:, :5] * (5 + n_pad) / 5, grad, dtype)
    assert_array_equal(grad_p[:, 5:], 0)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_stays_in_its_sample(case, dtype):
    rng = np.random.default_rng(12)
    pred, label = case.data(rng, (4, 3, 33), -1, dtype)
    pred[1, 2, 5] = np.nan
    out, grad = case.make().value_and_gradient(pred, label)
    assert np.isfinite(np.delete(out, 1)).all()
    assert np.isfinite(np.delete(grad, 1, axis=0)).all()
    assert np.isfinite(grad[1, :2]).all()
    assert np.isnan(out[1]) or case.sparse and case.kwargs.get("from_logits")
    want = case.make(reference).value_and_gradient(pred, label)
    _assert_close(out, want[0], dtype, equal_nan=True)
    _assert_close(grad, want[1], dtype, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_follow_the_reference(dtype):
    inf, nan = np.inf, np.nan
    pred = np.array([[inf, 0, 1], [inf, inf, 0], [-inf, -inf, -inf], [nan, 0, 1],
                     [1, 2, 3], [0, inf, -inf]], dtype)
    label = np.array([1, 0, 0, 1, 2, 1])
    dense = np.eye(3)[label]
    with np.errstate(all="ignore"):
        for kwargs, y in (({}, label), ({"sparse_label": False}, dense)):
            got = gl.SoftmaxCELoss(**kwargs).value_and_gradient(pred, y)
            want = reference.SoftmaxCELoss(**kwargs).value_and_gradient(pred, y)
            for g, w in zip(got, want, strict=False):
                assert_allclose(g, w, rtol=1e-6, atol=1e-7, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_nonpositive_within_one_ulp_of_libm(dtype):
    kernels = importlib.import_module("gluonloss._vmath")
    low = -87.33 if dtype == np.float32 else -708.3
    rng = np.random.default_rng(14)
    x = np.concatenate([rng.uniform(low, 0, 300_000), rng.uniform(-1, 0, 100_000),
                        np.linspace(low, 0, 10_001), [0.0, -0.0, low]]).astype(dtype)
    got = kernels.apply("exp_nonpositive", x)
    assert ulp_distance(got, np.exp(x.astype(np.float64)), dtype).max() <= 1
    assert np.all(got[x == 0] == 1)
    # Below the smallest normal result: 0, never a subnormal; -inf -> 0; NaN -> NaN.
    edge = np.array([low * 1.001, -1e4, -np.inf, np.nan], dtype)
    assert_array_equal(kernels.apply("exp_nonpositive", edge), np.array([0, 0, 0, np.nan], dtype))


# -- layouts, dtypes, empty batches ---------------------------------------------------------

def _layouts(a):
    yield "fortran", np.asfortranarray(a)
    big = np.zeros(tuple(2 * d for d in a.shape), a.dtype)
    big[tuple(slice(None, None, 2) for _ in a.shape)] = a
    yield "strided", big[tuple(slice(None, None, 2) for _ in a.shape)]
    flipped = np.ascontiguousarray(a[tuple(slice(None, None, -1) for _ in a.shape)])
    yield "negative-strides", flipped[tuple(slice(None, None, -1) for _ in a.shape)]
    ro = a.copy()
    ro.flags.writeable = False
    yield "read-only", ro


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("axis, batch_axis", [(-1, 0), (0, 1)])
def test_memory_layouts_and_no_aliasing(case, axis, batch_axis):
    rng = np.random.default_rng(13)
    pred, label = case.data(rng, (6, 9), axis, np.float32)
    sw = rng.uniform(0, 2, case_loss_shape(case, (6, 9), axis))
    loss = case.make(axis=axis, batch_axis=batch_axis)
    want = loss.value_and_gradient(pred, label, sample_weight=sw)
    for (name, p), (_, y), (_, w) in zip(_layouts(pred), _layouts(label), _layouts(sw),
                                         strict=False):
        snapshots = [x.copy() for x in (p, y, w)]
        out, grad = loss.value_and_gradient(p, y, sample_weight=w)
        assert_array_equal(out, want[0], err_msg=name)
        assert_array_equal(grad, want[1], err_msg=name)
        for x, snap in zip((p, y, w), snapshots, strict=False):
            assert_array_equal(x, snap, err_msg=f"{name}: an input was modified")
            assert not np.shares_memory(out, x) and not np.shares_memory(grad, x)


@pytest.mark.parametrize("pred_dtype, expected", [
    (np.float32, np.float32), (">f4", np.float32), (np.float64, np.float64),
    (np.float16, np.float32), (np.int32, np.float64),
])
def test_dtype_policy(pred_dtype, expected):
    pred = np.array([[1, 0, 2], [0, 1, 1]]).astype(pred_dtype)
    for loss, label in ((gl.SoftmaxCELoss(), np.array([2, 0], np.int8)),
                        (gl.SoftmaxCELoss(sparse_label=False), np.eye(3)[[2, 0]]),
                        (gl.KLDivLoss(), np.full((2, 3), 1 / 3, np.float64))):
        out, grad = loss.value_and_gradient(pred, label, sample_weight=np.float64(2))
        assert out.dtype == expected and grad.dtype == expected
        ref = getattr(reference, type(loss).__name__)(
            **({"sparse_label": loss._sparse} if isinstance(loss, gl.SoftmaxCELoss) else {}))
        assert_allclose(out, ref(pred.astype(np.float64), label, 2.0), rtol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("shape, axis, batch_axis", [((0, 5), -1, 0), ((3, 0, 4), 2, 1),
                                                     ((0, 0), 1, 0), ((4, 0), 0, 1)])
def test_empty_batch(case, shape, axis, batch_axis):
    pred = np.zeros(shape, np.float32)
    rows = shape[:axis % 2] + shape[axis % 2 + 1:] if len(shape) == 2 else (3, 0)
    label = np.zeros(rows, np.int64) if case.sparse else np.zeros(shape)
    loss = case.make(axis=axis, batch_axis=batch_axis)
    out, grad = loss.value_and_gradient(pred, label)
    assert out.shape == (0,) and out.dtype == np.float32
    assert grad.shape == shape and grad.dtype == np.float32
    assert loss(pred, label).shape == (0,)


# -- random problems ------------------------------------------------------------------------

@st.composite
def problems(draw):
    case = draw(st.sampled_from(CASES))
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    axis = draw(st.integers(-ndim, ndim - 1))
    batch_axis = draw(st.integers(-ndim, ndim - 1))
    if case.elementwise and axis % ndim == batch_axis % ndim:
        case = CASES[0]
    if axis % ndim != batch_axis % ndim and draw(st.booleans()):   # sometimes an empty batch
        shape = tuple(0 if i == batch_axis % ndim else d for i, d in enumerate(shape))
    loss_shape = case_loss_shape(case, shape, axis)
    keep = draw(st.integers(0, ndim))
    sw_shape = tuple(d if draw(st.booleans()) else 1 for d in loss_shape[ndim - keep:])
    sw_shape = sw_shape if draw(st.booleans()) else None
    dtype = draw(st.sampled_from(DTYPES))
    return case, shape, axis, batch_axis, sw_shape, dtype, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=200)
@given(problems())
def test_random_problems_match_the_reference(problem):
    case, shape, axis, batch_axis, sw_shape, dtype, seed = problem
    rng = np.random.default_rng(seed)
    pred, label = case.data(rng, shape, axis, dtype)
    sw = None if sw_shape is None else rng.uniform(0, 2, sw_shape)
    og = rng.standard_normal(case_n_out(case, shape, axis, batch_axis))
    loss = case.make(axis=axis, batch_axis=batch_axis)
    got = loss.value_and_gradient(pred, label, sample_weight=sw, out_grad=og)
    want = case.make(reference, axis=axis, batch_axis=batch_axis).value_and_gradient(
        pred, label, sample_weight=sw, out_grad=og)
    assert got[0].shape == og.shape and got[1].shape == shape
    _assert_close(got[0], want[0], dtype)
    _assert_close(got[1], want[1], dtype)
    assert_array_equal(got[0], loss(pred, label, sw))
    assert_array_equal(got[1], loss.gradient(pred, label, sample_weight=sw, out_grad=og))


# -- threads and builds ---------------------------------------------------------------------

def _run_all(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    results = []
    for case in CASES:
        for shape, axis, batch_axis in [((512, 100), -1, 0), ((2, 40000), 1, 0),
                                        ((20, 30, 70), 1, 0), ((8, 50, 90), -1, 1)]:
            pred, label = case.data(rng, shape, axis, dtype)
            sw = rng.uniform(0, 2, case_loss_shape(case, shape, axis))
            og = rng.standard_normal(shape[batch_axis])
            loss = case.make(axis=axis, batch_axis=batch_axis)
            results += loss.value_and_gradient(pred, label, sample_weight=sw, out_grad=og)
    return results


@pytest.mark.skipif(not _openmp.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_identical_for_any_thread_count(dtype):
    # Rows of 100 to 40000 classes: longer than the 16 lanes, and the
    # 40000-class rows span many 256-element blocks.
    with gl.num_threads(1):
        want = _run_all(dtype=dtype)
    assert all(w.dtype == dtype for w in want)
    for n in (2, 3):
        with gl.num_threads(n):
            got = _run_all(dtype=dtype)
        for g, w in zip(got, want, strict=False):
            assert_array_equal(g, w, strict=True)


def test_many_python_threads_at_once():
    want = [_run_all(seed) for seed in range(3)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(_run_all, [0, 1, 2] * 2))
    for i, results in enumerate(got):
        for g, w in zip(results, want[i % 3], strict=False):
            assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wide", WIDE_BUILDS)
def test_wide_builds_are_bitwise_identical_to_baseline(wide, dtype, monkeypatch):
    base, wide_build = kernel_builds("_softmax", wide)
    rng = np.random.default_rng(0)
    # Rows short, stored and too long to store; a row with both NaN and +inf,
    # where two NaNs meet.
    for case, n_classes in itertools.product(CASES, (7, 1000, 9000)):
        pred, label = case.data(rng, (37, n_classes), -1, dtype)
        pred[3, 5] = np.nan
        pred[4, :5] = [np.inf, -np.inf, 1e4, -1e4, 0.0]
        pred[5, :3] = -np.inf
        pred[6, [1, 4]] = [np.nan, np.inf]
        sw = rng.uniform(0, 2, (37, 1))
        og = rng.standard_normal(37)
        results = []
        for module in (base, wide_build):
            monkeypatch.setattr(softmax_module, "_softmax", module)
            with np.errstate(all="ignore"):
                results.append(case.make().value_and_gradient(pred, label, sample_weight=sw,
                                                              out_grad=og))
        for a, b in zip(*results, strict=False):
            assert_same_bits(a, b, err_msg=case.id)


# -- the error catalog ------------------------------------------------------------------------

PRED = np.zeros((4, 3))
SPARSE = np.zeros(4, np.int64)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["SoftmaxCrossEntropyLoss", "KLDivLoss"])
@pytest.mark.parametrize("argument, bad", [
    ("pred", np.array([["a", "b", "c"]] * 4)),
    ("pred", np.zeros((4, 3), complex)),
    ("label", np.array(["x"] * 4)),
    ("label", np.zeros(4, complex)),
    ("sample_weight", np.array(["x"])),
    ("out_grad", np.array(["x"])),
])
def test_non_numeric_arrays_raise_type_error(impl, name, argument, bad):
    loss = getattr(impl, name)()
    label = SPARSE if name != "KLDivLoss" else PRED
    args = {"pred": PRED, "label": label, "sample_weight": None, "out_grad": None}
    args[argument] = bad
    with pytest.raises(TypeError, match=argument):
        loss.value_and_gradient(args["pred"], args["label"], sample_weight=args["sample_weight"],
                                out_grad=args["out_grad"])


@pytest.mark.parametrize("name", ["SoftmaxCrossEntropyLoss", "KLDivLoss"])
@pytest.mark.parametrize("kwargs, exc, text", [
    ({"weight": "2"}, TypeError, "weight"), ({"axis": 1.5}, TypeError, "axis"),
    ({"axis": None}, TypeError, "axis"), ({"batch_axis": "0"}, TypeError, "batch_axis"),
])
def test_bad_constructor_arguments(name, kwargs, exc, text):
    with pytest.raises(exc, match=text):
        getattr(gl, name)(**kwargs)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kwargs, text", [
    ({"axis": 2}, "axis=2"), ({"axis": -3}, "axis=-3"), ({"batch_axis": 5}, "batch_axis=5"),
])
def test_axes_out_of_range(impl, kwargs, text):
    for loss, label in ((impl.SoftmaxCELoss(**kwargs), SPARSE), (impl.KLDivLoss(**kwargs), PRED)):
        with pytest.raises(ValueError, match=text):
            loss(PRED, label)


@pytest.mark.parametrize("impl", IMPLS)
def test_scalar_pred(impl):
    with pytest.raises(ValueError, match="axis"):
        impl.SoftmaxCELoss()(np.float64(1.0), 0)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("label_shape", [(3,), (4, 3), (5,), ()])
def test_sparse_label_size_mismatch(impl, label_shape):
    with pytest.raises(ValueError, match=r"label has \d+ elements.*without axis 1"):
        impl.SoftmaxCELoss()(PRED, np.zeros(label_shape, np.int64))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("label_shape", [(4,), (3, 3), (13,)])
def test_dense_label_size_mismatch(impl, label_shape):
    for loss in (impl.SoftmaxCELoss(sparse_label=False), impl.KLDivLoss()):
        with pytest.raises(ValueError, match=r"label has \d+ elements"):
            loss(PRED, np.zeros(label_shape))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("sw_shape", [(4, 3), (3,), (4,), (1, 3), (2, 1), (4, 1, 1)])
def test_ce_sample_weight_must_broadcast_to_theloss_shape(impl, sw_shape):
    # The loss has shape (4, 1): a per-class weight does not fit.
    with pytest.raises(ValueError, match=r"sample_weight of shape .* class axis kept as size 1"):
        impl.SoftmaxCELoss()(PRED, SPARSE, np.ones(sw_shape))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("sw_shape", [(4,), (2, 3), (1, 4, 3), (5, 1)])
def test_kl_sample_weight_not_broadcastable(impl, sw_shape):
    with pytest.raises(ValueError, match=r"sample_weight of shape"):
        impl.KLDivLoss()(PRED, PRED, np.ones(sw_shape))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("og_shape", [(3,), (4, 1), (5,)])
def test_out_grad_not_broadcastable(impl, og_shape):
    with pytest.raises(ValueError, match=r"out_grad of shape"):
        impl.SoftmaxCELoss().gradient(PRED, SPARSE, out_grad=np.ones(og_shape))
    with pytest.raises(ValueError, match=r"out_grad of shape"):
        impl.KLDivLoss().value_and_gradient(PRED, PRED, out_grad=np.ones(og_shape))
    with pytest.raises(ValueError, match=r"out_grad of shape"):   # one output
        impl.SoftmaxCELoss(axis=0).gradient(PRED, np.zeros(3, int), out_grad=np.ones(4))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("axis, batch_axis", [(0, 0), (-1, 1), (1, -1)])
def test_kl_refuses_axis_equal_to_batch_axis(impl, axis, batch_axis):
    with pytest.raises(ValueError, match="same axis"):
        impl.KLDivLoss(axis=axis, batch_axis=batch_axis)(PRED, PRED)


@pytest.mark.parametrize("impl", IMPLS)
def test_no_classes_and_empty_samples(impl):
    with pytest.raises(ValueError, match="no classes"):
        impl.SoftmaxCELoss()(np.zeros((4, 0)), np.zeros(4, int))
    with pytest.raises(ValueError, match="no classes"):
        impl.KLDivLoss()(np.zeros((4, 0)), np.zeros((4, 0)))
    with pytest.raises(ValueError, match="no classes"):
        impl.SoftmaxCELoss()(np.zeros(0), np.zeros((), int))
    with pytest.raises(ValueError, match="empty"):
        impl.SoftmaxCELoss(axis=-1)(np.zeros((4, 0, 3)), np.zeros((4, 0), int))


def test_errors_leave_no_partial_state():
    loss = gl.SoftmaxCELoss()
    with pytest.raises(ValueError):
        loss(PRED, np.array([0, 1, 9, 0]))
    assert loss(PRED, SPARSE).shape == (4,)


# -- misc API -------------------------------------------------------------------------------

def test_repr_aliases_and_positional_arguments():
    assert gl.SoftmaxCELoss is gl.SoftmaxCrossEntropyLoss
    assert reference.SoftmaxCELoss is reference.SoftmaxCrossEntropyLoss
    assert repr(gl.SoftmaxCELoss()) == "SoftmaxCrossEntropyLoss(batch_axis=0, w=None)"
    assert repr(gl.KLDivLoss(weight=2)) == "KLDivLoss(batch_axis=0, w=2)"
    ce = gl.SoftmaxCrossEntropyLoss(1, False, True, 0.5, 2)
    assert (ce.axis, ce._sparse_label, ce._from_logits, ce.weight, ce.batch_axis) == (
        1, False, True, 0.5, 2)
    kl = gl.KLDivLoss(False, 0, 3.0, 1)
    assert (kl._from_logits, kl.axis, kl.weight, kl.batch_axis) == (False, 0, 3.0, 1)
    for name in ("SoftmaxCrossEntropyLoss", "KLDivLoss"):
        assert issubclass(getattr(gl, name), gl.Loss)
        assert repr(getattr(reference, name)()) == repr(getattr(gl, name)())
