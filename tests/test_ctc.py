"""CTCLoss: against a brute-force sum over every alignment, the NumPy
reference, hand-derived values; layouts, lengths, padding, infeasible
samples, threads, and the error catalog of docs/semantics.rst."""
import itertools
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import approx_fprime, check_grad

import gluonloss as gl
from gluonloss import _openmp, ctc, reference

IMPLS = [pytest.param(gl, id="compiled"), pytest.param(reference, id="reference")]
LAYOUTS = [("NTC", "NT"), ("NTC", "TN"), ("TNC", "NT"), ("TNC", "TN")]
LAYOUT_IDS = [f"{a}-{b}" for a, b in LAYOUTS]
DTYPES = [np.float32, np.float64]


def _tolerances(dtype):
    return (2e-5, 2e-6) if np.dtype(dtype) == np.float32 else (1e-11, 1e-13)


def _assert_close(actual, expected, dtype, scale=1.0):
    rtol, atol = _tolerances(dtype)
    assert actual.dtype == np.dtype(dtype)
    assert_allclose(actual, expected, rtol=rtol * scale, atol=atol * scale)


# -- the oracle of oracles: every alignment, enumerated --------------------------

def _softmax(x):
    y = np.exp(x - x.max(axis=-1, keepdims=True))
    return y / y.sum(axis=-1, keepdims=True)


def _collapse(path, blank):
    """The labelling an alignment stands for: merge repeats, drop blanks."""
    return [k for i, k in enumerate(path) if (i == 0 or k != path[i - 1]) and k != blank]


def brute_force(x, label):
    """-log p(label | x) and its gradient for one (T, C) sample, by enumerating
    all C^T alignments: p = sum of prod_t y[t, pi_t] over the alignments that
    collapse to the label; d(-log p)/dx[t, k] = y[t, k] - P(pi_t = k | label)."""
    n_frames, n_classes = x.shape
    y = _softmax(x.astype(np.float64))
    p = 0.0
    occupancy = np.zeros((n_frames, n_classes))
    frames = np.arange(n_frames)
    for path in itertools.product(range(n_classes), repeat=n_frames):
        if _collapse(path, n_classes - 1) == list(label):
            prob = np.prod(y[frames, path])
            p += prob
            occupancy[frames, path] += prob
    if p == 0:
        return np.inf, np.zeros(x.shape)
    return -np.log(p), y - occupancy / p


def _brute_force_nll(x, label):
    return brute_force(x, label)[0]


def test_brute_force_gradient_is_the_derivative_of_its_loss():
    # The brute force's own gradient formula against finite differences.
    rng = np.random.default_rng(0)
    for label, shape in [([0, 1], (4, 3)), ([1, 1], (5, 3)), ([], (3, 2)), ([2, 0, 2], (6, 4))]:
        x = rng.standard_normal(shape)
        err = check_grad(lambda v: _brute_force_nll(v.reshape(shape), label),
                         lambda v: brute_force(v.reshape(shape), label)[1].ravel(),
                         x.ravel(), epsilon=1e-7)
        assert err < 1e-5


def _tiny_cases(seed, count):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n_frames = int(rng.integers(1, 7))
        n_classes = int(rng.integers(1, 5))
        n_labels = int(rng.integers(0, 4)) if n_classes > 1 else 0
        label = rng.integers(0, n_classes - 1, n_labels) if n_labels else np.zeros(0, int)
        if n_labels >= 2 and rng.random() < 0.4:
            label[1] = label[0]                    # a repeat: needs a blank between
        yield rng.standard_normal((n_frames, n_classes)) * 2, label


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("zero_infinity", [True, False])
def test_matches_brute_force(impl, dtype, zero_infinity):
    loss = impl.CTCLoss(zero_infinity=zero_infinity)
    n_infeasible = 0
    for x, label in _tiny_cases(1, 120):
        want_loss, want_grad = brute_force(x.astype(dtype), label)
        padded = np.concatenate([label, [-1, -1]])[None]
        out, grad = loss.value_and_gradient(x[None].astype(dtype), padded)
        if want_loss == np.inf:
            n_infeasible += 1
            assert out[0] == (0 if zero_infinity else np.inf)
            assert_array_equal(grad, 0)
            continue
        _assert_close(out, [want_loss], dtype)
        _assert_close(grad[0], want_grad, dtype)
    assert 5 < n_infeasible < 60      # the cases do exercise both kinds


@pytest.mark.parametrize("dtype", DTYPES)
def test_mxnet_example_batch(dtype):
    # The seeds' example: 'ba', 'cbb', 'abac' over {a: 0, b: 1, c: 2, blank: 3}.
    label = np.array([[1, 0, -1, -1], [2, 1, 1, -1], [0, 1, 0, 2]])
    rows = [[1, 0], [2, 1, 1], [0, 1, 0, 2]]
    x = np.random.default_rng(2).standard_normal((3, 6, 4)).astype(dtype)
    for impl in (gl, reference):
        out, grad = impl.CTCLoss().value_and_gradient(x, label)
        for b, row in enumerate(rows):
            want_loss, want_grad = brute_force(x[b], row)
            _assert_close(out[b:b + 1], [want_loss], dtype)
            _assert_close(grad[b], want_grad, dtype)


def test_uniform_predictions_count_the_alignments():
    # With y = 1/C everywhere, p = (#alignments) / C^T.  'ab' in 3 frames over
    # {a, b, blank}: abB, aBb, Bab, aab, abb -> 5 alignments.
    out = gl.CTCLoss()(np.zeros((1, 3, 3)), np.array([[0, 1]]))
    assert_allclose(out, [-np.log(5 / 27)], rtol=1e-14)
    # 'aa' in 3 frames: only a, blank, a.
    out = gl.CTCLoss()(np.zeros((1, 3, 3)), np.array([[0, 0]]))
    assert_allclose(out, [3 * np.log(3)], rtol=1e-14)


# -- hand-derived values ---------------------------------------------------------

@pytest.mark.parametrize("impl", IMPLS)
def test_repeated_label_needs_a_blank_between(impl):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 3, 3))
    y = _softmax(x[0])
    # 'aa' (a = 0, blank = 2) in 3 frames has the single alignment a, blank, a.
    out, grad = impl.CTCLoss().value_and_gradient(x, np.array([[0, 0]]))
    assert_allclose(out, [-np.log(y[0, 0] * y[1, 2] * y[2, 0])], rtol=1e-12)
    onehot = np.eye(3)[[0, 2, 0]]
    assert_allclose(grad[0], y - onehot, rtol=1e-12, atol=1e-14)
    # In 2 frames it cannot fit: 0 by default, inf without zero_infinity.
    loss = impl.CTCLoss(zero_infinity=False)
    out, grad = loss.value_and_gradient(x[:, :2], np.array([[0, 0]]))
    assert out[0] == np.inf and not grad.any()
    # 'ab' fits in 2 frames, with the alignment a, b only.
    out = impl.CTCLoss()(x[:, :2], np.array([[0, 1]]))
    assert_allclose(out, [-np.log(y[0, 0] * y[1, 1])], rtol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_labels_are_all_blanks(impl, dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 4)).astype(dtype)
    y = _softmax(x.astype(np.float64))
    label = np.array([[-1, -1], [1, -1], [-1, 2]])      # the third: empty, junk after
    out, grad = impl.CTCLoss().value_and_gradient(x, label)
    for b in (0, 2):
        _assert_close(out[b:b + 1], [-np.log(y[b, :, 3]).sum()], dtype)
        _assert_close(grad[b], y[b] - np.eye(4)[3], dtype)
    # Every label of the batch empty (MXNet 1.9.1 returns junk here).
    out, grad = impl.CTCLoss().value_and_gradient(x, np.full((3, 4), -1))
    _assert_close(out, -np.log(y[:, :, 3]).sum(axis=1), dtype)
    _assert_close(grad, y - np.eye(4)[3], dtype)
    # A label width of 0.
    out2, grad2 = impl.CTCLoss().value_and_gradient(x, np.zeros((3, 0)))
    assert_array_equal(out2, out)
    assert_array_equal(grad2, grad)


@pytest.mark.parametrize("impl", IMPLS)
def test_single_frame(impl):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 1, 5))
    y = _softmax(x[:, 0])
    label = np.array([[2, -1], [-1, -1], [1, 3], [3, 3]])
    loss = impl.CTCLoss(zero_infinity=False)
    out, grad = loss.value_and_gradient(x, label)
    assert_allclose(out, [-np.log(y[0, 2]), -np.log(y[1, 4]), np.inf, np.inf], rtol=1e-12)
    assert_allclose(grad[:2, 0], y[:2] - np.eye(5)[[2, 4]], rtol=1e-12, atol=1e-15)
    assert not grad[2:].any()


@pytest.mark.parametrize("impl", IMPLS)
def test_zero_frames(impl):
    x = np.zeros((2, 0, 3), np.float32)
    loss = impl.CTCLoss(zero_infinity=False)
    out, grad = loss.value_and_gradient(x, np.array([[-1], [0]]))
    assert_array_equal(out, np.array([0, np.inf], np.float32))
    assert grad.shape == (2, 0, 3)
    out = loss(np.ones((2, 3, 3)), np.array([[-1], [0]]), pred_lengths=[0, 0])
    assert_array_equal(out, [0, np.inf])


# -- compiled against the reference ------------------------------------------------

def _batch(rng, n, n_frames, n_classes, width, layout, label_layout, dtype, logit_scale=2.0,
           lengths="random"):
    """pred, label (in the given layouts) and call kwargs; labels padded with -1 and
    junk past a given label length."""
    x = (rng.standard_normal((n, n_frames, n_classes)) * logit_scale).astype(dtype)
    frames = rng.integers(0, n_frames + 1, n)
    frames[0] = n_frames
    most = min(width, max(n_frames // 2, 1))
    label_lengths = rng.integers(0, most + 1, n)
    label = rng.integers(0, n_classes - 1, (n, width))
    label[np.arange(width)[None, :] >= label_lengths[:, None]] = -1
    kwargs = {}
    if lengths == "given":
        kwargs = {"pred_lengths": frames, "label_lengths": label_lengths}
        junk = np.arange(width)[None, :] >= label_lengths[:, None]
        label = np.where(junk, rng.integers(-5, 99, label.shape), label)
    elif lengths == "pred":
        kwargs = {"pred_lengths": frames}
    if layout == "TNC":
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    if label_layout == "TN":
        label = np.ascontiguousarray(label.T)
    return x, label, kwargs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout, label_layout", LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("lengths", ["none", "pred", "given"])
def test_matches_reference(layout, label_layout, dtype, lengths):
    rng = np.random.default_rng(zlib.crc32(f"{layout}{label_layout}{lengths}".encode()))
    n = 7
    x, label, kwargs = _batch(rng, n, 23, 6, 9, layout, label_layout, dtype, lengths=lengths)
    sw = rng.uniform(0.5, 2, (n, 1))
    og = rng.standard_normal(n)
    for zero_infinity in (True, False):
        args = {"layout": layout, "label_layout": label_layout, "weight": 0.7,
                "zero_infinity": zero_infinity}
        out, grad = gl.CTCLoss(**args).value_and_gradient(x, label, **kwargs, sample_weight=sw,
                                                          out_grad=og)
        ref_out, ref_grad = reference.CTCLoss(**args).value_and_gradient(
            x, label, **kwargs, sample_weight=sw, out_grad=og)
        assert out.shape == (n,) and grad.shape == x.shape
        assert out.flags.c_contiguous and grad.flags.c_contiguous
        _assert_close(out, ref_out, dtype)
        _assert_close(grad, ref_grad, dtype)


@given(st.data())
def test_random_batches_match_reference(data):
    n = data.draw(st.integers(0, 4), "N")
    n_frames = data.draw(st.integers(0, 12), "T")
    n_classes = data.draw(st.integers(1, 5), "C")
    width = data.draw(st.integers(0, 14), "L")
    layout, label_layout = data.draw(st.sampled_from(LAYOUTS), "layouts")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), "seed"))
    x = rng.standard_normal((n, n_frames, n_classes)) * 4
    lengths = rng.integers(0, width + 1, n) if n_classes > 1 else np.zeros(n, int)
    label = rng.integers(0, max(n_classes - 1, 1), (n, width))
    label[np.arange(width)[None, :] >= lengths[:, None]] = -1
    kwargs = {}
    if data.draw(st.booleans(), "pred_lengths"):
        kwargs["pred_lengths"] = rng.integers(0, n_frames + 1, n)
    if data.draw(st.booleans(), "label_lengths"):
        kwargs["label_lengths"] = lengths
    if layout == "TNC":
        x = x.transpose(1, 0, 2)
    if label_layout == "TN":
        label = label.T
    zero_infinity = data.draw(st.booleans(), "zero_infinity")
    args = (layout, label_layout, 1.0, zero_infinity)
    out, grad = gl.CTCLoss(*args).value_and_gradient(x, label, **kwargs)
    ref_out, ref_grad = reference.CTCLoss(*args).value_and_gradient(x, label, **kwargs)
    assert_allclose(out, ref_out, rtol=1e-11, atol=1e-12)
    assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)


def _to_layouts(x_ntc, label_nt):
    for layout, label_layout in LAYOUTS:
        x = x_ntc if layout == "NTC" else np.ascontiguousarray(x_ntc.transpose(1, 0, 2))
        label = label_nt if label_layout == "NT" else np.ascontiguousarray(label_nt.T)
        yield layout, label_layout, x, label


def test_layouts_give_identical_results():
    rng = np.random.default_rng(6)
    x, label, kwargs = _batch(rng, 6, 17, 5, 8, "NTC", "NT", np.float32, lengths="given")
    want = gl.CTCLoss().value_and_gradient(x, label, **kwargs)
    for layout, label_layout, xl, ll in _to_layouts(x, label):
        out, grad = gl.CTCLoss(layout, label_layout).value_and_gradient(xl, ll, **kwargs)
        assert_array_equal(out, want[0])
        assert_array_equal(grad, want[1] if layout == "NTC" else want[1].transpose(1, 0, 2))


def test_frames_past_pred_lengths_are_ignored_and_get_zero_gradient():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 10, 4))
    label = np.array([[0, 1, -1], [2, -1, -1], [1, 1, 0]])
    frames = np.array([6, 3, 10])
    loss = gl.CTCLoss()
    out, grad = loss.value_and_gradient(x, label, pred_lengths=frames)
    for b in range(3):
        assert not grad[b, frames[b]:].any()
        solo = loss.value_and_gradient(x[b:b + 1, :frames[b]], label[b:b + 1])
        assert_array_equal(out[b], solo[0][0])
        assert_array_equal(grad[b, :frames[b]], solo[1][0])
    # Garbage (NaN) past the end changes nothing.
    x[0, 6:] = np.nan
    x[1, 3:] = np.inf
    out2, grad2 = loss.value_and_gradient(x, label, pred_lengths=frames)
    assert_array_equal(out2, out)
    assert_array_equal(grad2, grad)


def test_label_lengths_override_padding_and_ignore_what_follows():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 8, 5))
    label = np.array([[1, 2, 3, 3], [0, 0, 1, 2]])
    loss = gl.CTCLoss()
    out = loss(x, label, label_lengths=[2, 3])
    want = loss(x, np.array([[1, 2, -1], [0, 0, 1]]))
    assert_array_equal(out, want)
    # Past the first -1 anything goes, even out-of-range values and NaN.
    junk = np.array([[1, 2, -1, 77.0], [0, 0, 1, -1]])
    junk2 = np.array([[1, 2, -1, np.nan], [0, 0, 1, -1]])
    assert_array_equal(loss(x, junk), want)
    assert_array_equal(loss(x, junk2), want)


def test_label_width_may_exceed_the_frames():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 4, 3))
    label = np.full((2, 50), -1)
    label[0, :2] = [0, 1]
    label[1, :5] = [0, 1, 0, 1, 0]            # 5 labels in 4 frames: infeasible
    out, grad = gl.CTCLoss(zero_infinity=False).value_and_gradient(x, label)
    assert_allclose(out[0], brute_force(x[0], [0, 1])[0], rtol=1e-12)
    assert out[1] == np.inf and not grad[1].any()
    out, grad = gl.CTCLoss(layout="TNC", label_layout="TN").value_and_gradient(
        np.ascontiguousarray(x.transpose(1, 0, 2)), np.ascontiguousarray(label.T),
        label_lengths=[2, 5])
    assert out[1] == 0 and not grad[:, 1].any()


# -- infeasible and impossible samples -----------------------------------------------

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_infeasible_samples(impl, dtype):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 5, 4)).astype(dtype)
    label = np.array([[0, 0, 0, -1],      # 3 labels + 2 repeats = 5 frames: fits exactly
                      [0, 0, 0, 0],       # 4 + 3 > 5
                      [0, 1, 2, -1],      # fits
                      [2, 2, 1, 1]])      # 4 + 2 > 5
    sw = np.array([1.0, 2.0, 0.5, 3.0])
    for zero_infinity in (True, False):
        loss = impl.CTCLoss(zero_infinity=zero_infinity)
        out, grad = loss.value_and_gradient(x, label, sample_weight=sw)
        bad = out[[1, 3]]
        assert_array_equal(bad, [0, 0] if zero_infinity else [np.inf, np.inf])
        assert not grad[[1, 3]].any()
        for b in (0, 2):
            want, want_grad = brute_force(x[b], label[b][label[b] >= 0])
            _assert_close(out[b:b + 1], [want * sw[b]], dtype)
            _assert_close(grad[b], want_grad * sw[b], dtype)


@pytest.mark.parametrize("impl", IMPLS)
def test_minus_infinity_logits_can_rule_out_every_alignment(impl):
    x = np.zeros((2, 3, 3))
    x[:, :, 1] = -np.inf                     # class 1 never emitted
    label = np.array([[0, -1], [1, -1]])
    for zero_infinity, want in ((True, 0.0), (False, np.inf)):
        out, grad = impl.CTCLoss(zero_infinity=zero_infinity).value_and_gradient(x, label)
        # Sample 0: y = 1/2 on a and blank; 'a' in 3 frames has 6 alignments of 8.
        assert_allclose(out[0], -np.log(6 / 8), rtol=1e-12)
        assert out[1] == want and not grad[1].any()
        assert np.isfinite(grad[0]).all() and (grad[0, :, 1] == 0).all()


# -- numerical robustness -------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["NTC", "TNC"])
def test_long_sequences_with_large_logits(dtype, layout):
    rng = np.random.default_rng(11)
    n, n_frames, n_classes = 3, 2000, 6
    x = rng.uniform(-50, 50, (n, n_frames, n_classes)).astype(dtype)
    label = rng.integers(0, n_classes - 1, (n, 300))
    label[1, 150:] = -1
    label[2, :] = -1
    if layout == "TNC":
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    out, grad = gl.CTCLoss(layout).value_and_gradient(x, label)
    ref_out, ref_grad = reference.CTCLoss(layout).value_and_gradient(x, label)
    assert np.isfinite(out).all() and np.isfinite(grad).all()
    assert (out > 1000).all()                # far from 0: no alignment is likely
    # Both sides round log values of magnitude up to ~1e5 (the loss) or ~1e4
    # (gaps between states of one frame) for 2000 frames: against an 80-bit
    # run of the reference, float64 gradients of both are within 1e-10
    # (PyTorch's float32 CTC: 7e-2 on this case).
    if dtype == np.float64:
        assert_allclose(out, ref_out, rtol=1e-12)
        assert_allclose(grad, ref_grad, rtol=0, atol=5e-10)
        return
    assert_allclose(out, ref_out, rtol=2e-6)
    # float32: each gradient entry y - gamma is a difference of a softmax value
    # and a posterior, each computed to a relative error; so the error is
    # bounded relative to the larger of the two, not to their difference
    # (which cancels).  Against the float64 reference on the same float32
    # inputs, the kernel's worst entry is 2.0e-3 of that scale, 99% of the
    # entries are within 4e-4 and the median within 2e-7.  Terms below
    # float32's normal range are flushed to 0, so an absolute 1e-12 covers
    # entries of that size.
    exact = reference.CTCLoss(layout).value_and_gradient(x.astype(np.float64), label)[1]
    frames_last = x if layout == "NTC" else x.transpose(1, 0, 2)
    y = _softmax(frames_last.astype(np.float64))
    y = y if layout == "NTC" else y.transpose(1, 0, 2)
    scale = np.maximum(np.abs(y), np.abs(y - exact))
    error = np.abs(grad - exact)
    assert (error <= 3e-3 * scale + 1e-12).all(), np.max((error - 1e-12) / scale)
    relative = error[scale > 1e-4] / scale[scale > 1e-4]
    assert np.quantile(relative, 0.99) <= 5e-4, np.quantile(relative, 0.99)
    assert np.median(relative) <= 1e-6, np.median(relative)


@pytest.mark.parametrize("dtype", DTYPES)
def test_an_unlikely_forced_alignment_is_finite_and_exact(dtype):
    # 'ab' in 2 frames while every frame prefers the other class by 100: the loss
    # is about 200 (emissions of e^-100, below float32's normal range).
    x = np.full((1, 2, 3), -50.0, dtype)
    x[0, 0, 1] = 50
    x[0, 1, 0] = 50
    out, grad = gl.CTCLoss().value_and_gradient(x, np.array([[0, 1]]))
    want, want_grad = brute_force(x[0].astype(np.float64), [0, 1])
    assert 199 < want < 201
    _assert_close(out, [want], dtype)
    _assert_close(grad[0], want_grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_stays_in_its_sample(dtype):
    rng = np.random.default_rng(12)
    x, label, kwargs = _batch(rng, 4, 12, 5, 4, "TNC", "NT", dtype, lengths="none")
    x[3, 1, 2] = np.nan                       # a middle frame
    x[0, 2, 0] = np.nan                       # the first
    x[11, 3, 4] = np.inf                      # the last; inf - inf gives NaN
    out, grad = gl.CTCLoss("TNC").value_and_gradient(x, label)
    # A NaN loss has a NaN gradient on all of the sample's frames.
    for b in (1, 2, 3):
        assert np.isnan(out[b]) and np.isnan(grad[:, b]).all()
    others = [0]
    assert np.isfinite(out[others]).all() and np.isfinite(grad[:, others]).all()
    ref_out, ref_grad = reference.CTCLoss("TNC").value_and_gradient(x, label)
    rtol, atol = _tolerances(dtype)
    assert_allclose(out, ref_out, rtol=rtol, atol=atol, equal_nan=True)
    assert_allclose(grad, ref_grad, rtol=rtol, atol=atol, equal_nan=True)


# -- weights, out_grad, gradient checks ------------------------------------------------

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout, label_layout", LAYOUTS, ids=LAYOUT_IDS)
def test_check_grad(impl, layout, label_layout):
    rng = np.random.default_rng(13)
    x, label, kwargs = _batch(rng, 4, 7, 4, 4, layout, label_layout, np.float64,
                              lengths="given")
    loss = impl.CTCLoss(layout, label_layout, weight=1.5)
    sw = rng.uniform(0.5, 2, 4)
    og = rng.uniform(-2, 2, 4)
    shape = x.shape

    def f(v):
        return float(np.sum(og * loss(v.reshape(shape), label, **kwargs, sample_weight=sw)))

    def g(v):
        return loss.gradient(v.reshape(shape), label, **kwargs, sample_weight=sw,
                             out_grad=og).ravel()

    err = check_grad(f, g, x.ravel(), epsilon=1e-7)
    assert err < 2e-5 * max(1.0, np.linalg.norm(g(x.ravel())))
    assert np.max(np.abs(g(x.ravel()) - approx_fprime(x.ravel(), f, 1e-7))) < 1e-5


def test_a_single_sample_weight_is_shared():
    # The rule of every per-sample loss: N weights, or one for all.
    x = np.random.default_rng(3).standard_normal((2, 6, 4))
    label = np.array([[0, 1], [2, -1]])
    for sw in (2.5, [2.5], np.array([[2.5]])):
        out, grad = gl.CTCLoss().value_and_gradient(x, label, sample_weight=sw)
        want_out, want_grad = gl.CTCLoss().value_and_gradient(x, label,
                                                             sample_weight=[2.5, 2.5])
        assert_array_equal(out, want_out)
        assert_array_equal(grad, want_grad)


@pytest.mark.parametrize("sw_shape", [(5,), (5, 1), (1, 5), (5, 1, 1)])
def test_sample_weight_is_one_weight_per_sample(sw_shape):
    rng = np.random.default_rng(14)
    x, label, _ = _batch(rng, 5, 9, 4, 3, "NTC", "NT", np.float64)
    sw = rng.uniform(0, 2, sw_shape)
    loss = gl.CTCLoss()
    base_out, base_grad = loss.value_and_gradient(x, label)
    out, grad = loss.value_and_gradient(x, label, sample_weight=sw)
    assert_allclose(out, base_out * sw.ravel(), rtol=1e-14)
    assert_allclose(grad, base_grad * sw.reshape(5, 1, 1), rtol=1e-14)
    og = rng.standard_normal(5)
    assert_allclose(gl.CTCLoss(weight=-2).gradient(x, label, sample_weight=sw, out_grad=og),
                    -2 * base_grad * (sw.ravel() * og)[:, None, None], rtol=1e-13)
    assert_allclose(gl.CTCLoss(weight=-2)(x, label, sample_weight=sw),
                    -2 * base_out * sw.ravel(), rtol=1e-14)


def test_value_and_gradient_equals_separate_calls():
    rng = np.random.default_rng(15)
    x, label, kwargs = _batch(rng, 6, 30, 7, 10, "TNC", "TN", np.float32, lengths="given")
    sw = rng.uniform(0, 2, 6)
    og = rng.standard_normal(6)
    loss = gl.CTCLoss("TNC", "TN", weight=0.3)
    out, grad = loss.value_and_gradient(x, label, **kwargs, sample_weight=sw, out_grad=og)
    assert_array_equal(out, loss(x, label, **kwargs, sample_weight=sw))
    assert_array_equal(out, loss.forward(x, label, **kwargs, sample_weight=sw))
    assert_array_equal(grad, loss.gradient(x, label, **kwargs, sample_weight=sw, out_grad=og))


# -- dtypes, memory layouts, empty batches ------------------------------------------------

@pytest.mark.parametrize("pred_dtype, expected", [
    (np.float32, np.float32), (np.float64, np.float64), (np.float16, np.float32),
    (np.int64, np.float64), (">f4", np.float32),
])
def test_dtype_policy(pred_dtype, expected):
    rng = np.random.default_rng(16)
    x = rng.integers(-3, 3, (3, 6, 4)).astype(pred_dtype)
    for label in (np.array([[0, 1, -1], [2, -1, -1], [1, 1, 0]]),
                  np.array([[0, 1, -1], [2, -1, -1], [1, 1, 0]], np.float32),
                  np.array([[0, 1, -1], [2, -1, -1], [1, 1, 0]], np.int8)):
        out, grad = gl.CTCLoss().value_and_gradient(x, label, pred_lengths=np.array([6., 5, 6]),
                                                    label_lengths=np.array([2, 1, 3], np.uint8))
        assert out.dtype == expected and grad.dtype == expected
        ref = reference.CTCLoss()(x.astype(np.float64), label, [6, 5, 6])
        assert_allclose(out, ref, rtol=1e-6)


def _memory_layouts(a):
    yield "fortran", np.asfortranarray(a)
    big = np.zeros(tuple(2 * d for d in a.shape), a.dtype)
    view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    view[...] = a
    yield "strided", view
    flipped = np.ascontiguousarray(a[::-1, ::-1])
    yield "negative-strides", flipped[::-1, ::-1]
    ro = a.copy()
    ro.flags.writeable = False
    yield "read-only", ro


@pytest.mark.parametrize("layout, label_layout", LAYOUTS, ids=LAYOUT_IDS)
def test_memory_layouts_and_no_aliasing(layout, label_layout):
    rng = np.random.default_rng(17)
    x, label, kwargs = _batch(rng, 5, 11, 4, 5, layout, label_layout, np.float32,
                              lengths="given")
    loss = gl.CTCLoss(layout, label_layout)
    want = loss.value_and_gradient(x, label, **kwargs)
    for (name, xl), (_, ll) in zip(_memory_layouts(x), _memory_layouts(label), strict=False):
        snapshots = (xl.copy(), ll.copy())
        out, grad = loss.value_and_gradient(xl, ll, **kwargs)
        assert_array_equal(out, want[0], err_msg=name)
        assert_array_equal(grad, want[1], err_msg=name)
        assert grad.flags.c_contiguous
        assert_array_equal(xl, snapshots[0])
        assert_array_equal(ll, snapshots[1])
        assert not np.shares_memory(grad, xl) and not np.shares_memory(out, xl)


@pytest.mark.parametrize("layout", ["NTC", "TNC"])
def test_empty_batch(layout):
    x = np.zeros((0, 5, 3) if layout == "NTC" else (5, 0, 3), np.float32)
    out, grad = gl.CTCLoss(layout).value_and_gradient(x, np.zeros((0, 2)))
    assert out.shape == (0,) and out.dtype == np.float32
    assert grad.shape == x.shape and grad.dtype == np.float32


def test_python_lists_and_repr():
    loss = gl.CTCLoss("TNC", "TN", weight=2.0, zero_infinity=False)
    assert repr(loss) == "CTCLoss(layout='TNC', label_layout='TN', w=2.0, zero_infinity=False)"
    assert loss.layout == "TNC" and loss.label_layout == "TN" and not loss.zero_infinity
    assert loss.batch_axis == 1 and loss.weight == 2.0
    out = gl.CTCLoss()([[[0.0, 0.0], [0.0, 0.0]]], [[0]])
    assert_allclose(out, [-np.log(3 / 4)])     # 'a' in 2 frames: aa, aB, Ba of 4


# -- threads ---------------------------------------------------------------------------

needs_openmp = pytest.mark.skipif(not _openmp.openmp_enabled(), reason="built without OpenMP")


def _thread_batch(seed, dtype=np.float32, n_classes=12):
    rng = np.random.default_rng(seed)
    x, label, kwargs = _batch(rng, 37, 60, n_classes, 20, "TNC", "NT", dtype, lengths="given")
    sw = rng.uniform(0, 2, 37)
    og = rng.standard_normal(37)
    loss = gl.CTCLoss("TNC", zero_infinity=False)
    return [*loss.value_and_gradient(x, label, **kwargs, sample_weight=sw, out_grad=og),
            loss(x, label, **kwargs)]


@needs_openmp
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_classes", [12, 70])
def test_bitwise_identical_for_any_thread_count(monkeypatch, dtype, n_classes):
    # Force the parallel path even for small batches; 70 classes: frames
    # longer than the 8 lanes of the kernel's reductions, with a remainder.
    monkeypatch.setattr(ctc, "threads_for", lambda work: gl.get_num_threads())
    with gl.num_threads(1):
        want = _thread_batch(0, dtype, n_classes)
    assert all(w.dtype == dtype for w in want)
    for n in (2, 3, 8):
        with gl.num_threads(n):
            got = _thread_batch(0, dtype, n_classes)
        for g, w in zip(got, want, strict=False):
            assert_array_equal(g, w, strict=True)


def test_many_python_threads_at_once():
    want = [_thread_batch(seed) for seed in range(4)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(_thread_batch, list(range(4)) * 3))
    for i, results in enumerate(got):
        for g, w in zip(results, want[i % 4], strict=False):
            assert_array_equal(g, w)


# -- errors (docs/semantics.rst, "Errors") ---------------------------------------------

X = np.zeros((2, 5, 4))
LABEL = np.array([[0, 1, -1], [2, -1, -1]])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("label, label_layout, message", [
    (np.array([[0, 3, -1], [2, -1, -1]]), "NT", r"label\[0, 1\] = 3 is not a valid CTC label.*"
                                                r"\[0, 2\].*class 3 is the blank"),
    (np.array([[0, 1, -1], [2, 7, -1]]), "NT", r"label\[1, 1\] = 7 "),
    (np.array([[0, 1], [5, -1], [-1, -1]]), "TN", r"label\[1, 0\] = 5 "),
    (np.array([[0, -2, -1], [2, -1, -1]]), "NT", r"label\[0, 1\] = -2 "),
    (np.array([[0, 1.5, -1], [2, -1, -1]]), "NT", r"label\[0, 1\] = 1.5 "),
    (np.array([[0, np.nan, -1], [2, -1, -1]]), "NT", r"label\[0, 1\] = nan "),
    (np.array([[0, np.inf, -1], [2, -1, -1]]), "NT", r"label\[0, 1\] = inf "),
    (np.array([[0, 1, 2**40], [2, -1, -1]]), "NT", r"label\[0, 2\] = 1099511627776 "),
    # uint64 past int64 must not wrap around to -1 (padding)
    (np.array([[0, 1, 2**64 - 1], [2, 2**64 - 1, 0]], np.uint64), "NT",
     r"label\[0, 2\] = 18446744073709551615 "),
    pytest.param(
        np.array([[0, 1], [2, 1]], np.longdouble) + np.array([[0, 0], [0, np.longdouble("1e-18")]]),
        "NT", r"label\[1, 1\] = .*1\.000000000000000001",
        marks=pytest.mark.skipif(np.finfo(np.longdouble).eps > 1e-18,
                                 reason="long double is no wider than float64 here")),
])
def test_invalid_labels(impl, label, label_layout, message):
    with pytest.raises(ValueError, match=message):
        impl.CTCLoss(label_layout=label_layout)(X, label)


@pytest.mark.parametrize("impl", IMPLS)
def test_padding_inside_label_lengths_and_blank_only_alphabets(impl):
    with pytest.raises(ValueError, match=r"label\[0, 2\] = -1 \(padding\) lies inside "
                                         r"label_lengths\[0\] = 3"):
        impl.CTCLoss()(X, LABEL, label_lengths=[3, 1])
    with pytest.raises(ValueError, match=r"label\[0, 0\] = 0 is not a valid CTC label: pred has "
                                         r"only the blank"):
        impl.CTCLoss()(np.zeros((2, 5, 1)), LABEL)
    # ... where empty labels are fine.
    out = impl.CTCLoss()(np.zeros((2, 5, 1)), np.full((2, 3), -1))
    assert_array_equal(out, [0, 0])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name, value, message", [
    ("pred_lengths", [5, 6], r"pred_lengths\[1\] = 6 exceeds the number of frames T = 5"),
    ("pred_lengths", [-1, 5], r"pred_lengths\[0\] = -1 is negative"),
    ("pred_lengths", [2.5, 5], r"pred_lengths\[0\] = 2.5 is not an integer"),
    ("pred_lengths", [np.nan, 5], r"pred_lengths\[0\] = nan is not an integer"),
    ("pred_lengths", [5, 5, 5], r"pred_lengths must hold one value per sample \(2\), "
                                r"got shape \(3,\)"),
    ("pred_lengths", 5, r"pred_lengths must hold one value per sample \(2\), got shape \(\)"),
    ("pred_lengths", [[5], [7]], r"pred_lengths\[1, 0\] = 7 exceeds"),
    ("label_lengths", [2, 4], r"label_lengths\[1\] = 4 exceeds the label width L = 3"),
    ("label_lengths", [-3, 1], r"label_lengths\[0\] = -3 is negative"),
    ("label_lengths", [1, 0.5], r"label_lengths\[1\] = 0.5 is not an integer"),
    ("label_lengths", np.ones((2, 2)), r"label_lengths must hold one value per sample"),
    ("sample_weight", np.ones(3), r"sample_weight of shape \(3,\) has 3 elements; the loss has "
                                  r"one value per sample, so it needs 2 \(one per sample\) or 1"),
    ("sample_weight", np.ones((2, 2)), r"sample_weight of shape \(2, 2\) has 4 elements"),
])
def test_invalid_lengths_and_weights(impl, name, value, message):
    with pytest.raises(ValueError, match=message):
        impl.CTCLoss()(X, LABEL, **{name: value})
    with pytest.raises(ValueError, match=message):
        impl.CTCLoss().value_and_gradient(X, LABEL, **{name: value})


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("pred, label, layout, label_layout, message", [
    (np.zeros((2, 5)), LABEL, "NTC", "NT", r"pred must have 3 dimensions \(layout 'NTC'\)"),
    (np.zeros((2, 5, 4, 1)), LABEL, "NTC", "NT", r"pred must have 3 dimensions"),
    (X, np.array([0, 1]), "NTC", "NT", r"label must have 2 dimensions \(label_layout 'NT'\)"),
    (X, LABEL, "TNC", "NT", r"label of shape \(2, 3\).* has 2 samples but pred of shape "
                            r"\(2, 5, 4\) \(layout 'TNC'\) has 5"),
    (X, LABEL, "NTC", "TN", r"label of shape \(2, 3\) \(label_layout 'TN'\) has 3 samples"),
    (np.zeros((2, 5, 0)), LABEL, "NTC", "NT", r"pred has 0 classes"),
])
def test_shape_errors(impl, pred, label, layout, label_layout, message):
    with pytest.raises(ValueError, match=message):
        impl.CTCLoss(layout, label_layout)(pred, label)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("og_shape", [(3,), (2, 1), (1, 2, 1)])
def test_out_grad_not_broadcastable(impl, og_shape):
    with pytest.raises(ValueError, match=r"out_grad of shape"):
        impl.CTCLoss().gradient(X, LABEL, out_grad=np.ones(og_shape))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("argument, bad", [
    ("pred", np.array([[["a"]]])), ("pred", np.zeros((2, 5, 4), complex)),
    ("label", np.array([["a", "b"]] * 2)), ("pred_lengths", ["5", "5"]),
    ("label_lengths", np.array([1j, 1j])), ("sample_weight", [object(), object()]),
])
def test_non_numeric_arrays(impl, argument, bad):
    args = {"pred": X, "label": LABEL, argument: bad}
    with pytest.raises(TypeError, match=argument):
        impl.CTCLoss()(**args)


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"layout": "NCT"}, ValueError, "layout must be one of 'NTC', 'TNC'"),
    ({"layout": None}, ValueError, "layout"),
    ({"label_layout": "NTC"}, ValueError, "label_layout must be one of 'NT', 'TN'"),
    ({"weight": "2"}, TypeError, "weight"),
])
def test_constructor_errors(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        gl.CTCLoss(**kwargs)
