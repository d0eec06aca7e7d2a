"""Numerical edge cases, one section per kind:

1. logits of +-1e4 and +-inf (LogisticLoss, SigmoidBCELoss, SoftmaxCELoss,
   KLDivLoss, CTCLoss, PoissonNLLLoss);
2. probabilities of exactly 0 and 1 with ``from_sigmoid=True``;
3. labels of exactly 0 and 1 in KLDivLoss;
4. zero vectors in CosineEmbeddingLoss;
5. identical rows in SDMLLoss;
6. CTC with thousands of frames;
7. an out_grad near the largest finite value of the dtype.

Every expected value is computed here, independently of the package: closed
forms in Python floats (``math``), or long double (80-bit on x86) recursions.
Where an input is infinite and the documented formula has no limit to take,
the expected value is the formula evaluated in IEEE arithmetic
(docs/semantics.rst: NaN and infinities in float inputs propagate by IEEE
rules, and only into the samples that contain them).
"""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import gluonloss as gl
from _cases import tolerances
from gluonloss import reference

DTYPES = [np.float32, np.float64]
INF = math.inf
BIG = 1e4


def _column(values, dtype):
    """One element per sample, so that out[b] is the elementwise loss itself."""
    return np.array(values, dtype).reshape(-1, 1)


# -- 1. logits of +-1e4 and +-inf -------------------------------------------------------------

def _logit_bce_limit(p, y, q=1.0):
    """The documented from-logits BCE at |p| >= 1e4, where log1p(e^-|p|) < 1e-4000 is
    0 in any float: the loss is the linear part, with 0 * inf = 0 (the limit
    of a vanishing coefficient); the gradient is (1 - y) or -q y."""
    coef = (1 - y) if p >= 0 else q * y
    loss = 0.0 if coef == 0 else coef * abs(p)
    grad = (1 - y) if p >= 0 else -q * y
    return loss, grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss_name, kwargs, labels, q", [
    ("LogisticLoss", {"label_format": "binary"}, [0.0, 1.0, 0.5], 1.0),
    ("LogisticLoss", {"label_format": "signed"}, [-1.0, 1.0], 1.0),
    ("SigmoidBCELoss", {}, [0.0, 1.0, 0.5, 0.25], 1.0),
    ("SigmoidBCELoss", {}, [0.0, 1.0, 0.5], 3.0),       # with pos_weight
])
def test_binary_losses_at_huge_and_infinite_logits(dtype, loss_name, kwargs, labels, q):
    logits = [BIG, -BIG, INF, -INF]
    pairs = [(p, y) for p in logits for y in labels]
    pred = _column([p for p, _ in pairs], dtype)
    label = _column([y for _, y in pairs], dtype)
    extra = {"pos_weight": q} if loss_name == "SigmoidBCELoss" and q != 1 else {}
    out, grad = getattr(gl, loss_name)(**kwargs).value_and_gradient(pred, label, **extra)
    # signed labels in {-1, 1} mean y' = (y + 1) / 2
    mapped = [(p, (y + 1) / 2 if kwargs.get("label_format") == "signed" else y) for p, y in pairs]
    want = [_logit_bce_limit(p, y, q) for p, y in mapped]
    assert_array_equal(out, np.array([w[0] for w in want], dtype))
    assert_array_equal(grad[:, 0], np.array([w[1] for w in want], dtype))


def _log_softmax(row):
    """log softmax of a row of Python floats, in math: -inf entries stay -inf."""
    top = max(row)
    log_sum = math.log(math.fsum(math.exp(v - top) for v in row))
    return [(v - top) - log_sum for v in row]


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_family_at_huge_logits(dtype):
    rows = [[BIG, -BIG, 0.0], [-BIG, -BIG, -BIG + 2], [BIG, BIG, -BIG], [-INF, BIG, -BIG]]
    pred = np.array(rows, dtype)
    lps = [_log_softmax(r) for r in rows]
    probs = [[math.exp(v) for v in lp] for lp in lps]
    rtol = 1e-6 if dtype == np.float32 else 1e-14

    # Sparse: -lp[label]; gradient softmax - onehot.
    label = [1, 2, 0, 1]
    out, grad = gl.SoftmaxCELoss().value_and_gradient(pred, np.array(label))
    assert_allclose(out, [-lp[k] for lp, k in zip(lps, label, strict=False)], rtol=rtol)
    onehot = np.eye(3)[label]
    assert_allclose(grad, np.array(probs) - onehot, rtol=rtol, atol=1e-30)

    # Dense labels, and KL from logits=False (mean over the 3 classes).
    y = np.array([[0.2, 0.3, 0.5], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.0, 0.25, 0.75]])
    dense = [-math.fsum(a * b for a, b in zip(yr, lp, strict=False) if a)
             for yr, lp in zip(y, lps, strict=False)]
    out, grad = gl.SoftmaxCELoss(sparse_label=False).value_and_gradient(pred, y)
    assert_allclose(out, dense, rtol=rtol)
    assert_allclose(grad, np.array(probs) * y.sum(1, keepdims=True) - y, rtol=rtol, atol=1e-7)
    kl = [math.fsum(a * (math.log(a + 1e-12) - b) for a, b in zip(yr, lp, strict=False) if a) / 3
          for yr, lp in zip(y, lps, strict=False)]
    out, grad = gl.KLDivLoss(from_logits=False).value_and_gradient(pred, y)
    assert_allclose(out, kl, rtol=rtol)
    assert_allclose(grad, (np.array(probs) * y.sum(1, keepdims=True) - y) / 3, rtol=rtol,
                    atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_family_at_infinite_logits(dtype):
    # -inf: a class with probability 0.  Not the label: costs nothing; the label:
    # loss +inf.  +inf: log softmax is -inf for the other classes (loss +inf
    # when one is the label) and inf - inf = NaN for the +inf class itself, as
    # is its gradient: IEEE values, in that sample only.
    pred = np.array([[-INF, 1.0, 1.0], [-INF, 1.0, 1.0], [INF, 0.0, 0.0], [INF, 0.0, 0.0],
                     [0.0, 0.0, 0.0]], dtype)
    out, grad = gl.SoftmaxCELoss().value_and_gradient(pred, np.array([1, 0, 1, 0, 2]))
    assert_allclose(out[[0, 1, 4]], [math.log(2), INF, math.log(3)], rtol=1e-6)
    assert_allclose(grad[[0, 4]], [[0.0, -0.5, 0.5], [1 / 3, 1 / 3, -2 / 3]], rtol=1e-6)
    assert out[2] == INF and math.isnan(out[3])
    assert np.isnan(grad[2:4, 0]).all() and (grad[2:4, 1:] == [[-1, 0], [0, 0]]).all()
    # KL: y = 0 where lp = -inf is a 0 term; y > 0 there is an infinite divergence.
    y = np.array([[0.0, 0.5, 0.5], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    out = gl.KLDivLoss(from_logits=False)(pred[[0, 1, 2, 4]], y)
    # 2 * 0.5 (log(0.5 + 1e-12) - log 0.5) / 3 = log1p(2e-12) / 3
    assert_allclose(out[0], math.log1p(2e-12) / 3, rtol=1e-4,
                    atol=1e-11 if dtype == np.float32 else 1e-15)
    assert out[1] == INF and out[2] == INF
    assert_allclose(out[3], (math.log1p(1e-12) + math.log(3)) / 3, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ctc_at_huge_logits(dtype):
    # Classes 0, 1 and the blank 2.  Each frame favours one class by 2e4.
    def frames(*favoured):
        x = np.full((len(favoured), 3), -BIG)
        x[np.arange(len(favoured)), favoured] = BIG
        return x

    # The favoured path 0, blank, 1 spells the label: probability 1, every
    # other alignment e^-2e4 = 0, so loss 0 and gradient softmax - posterior = 0.
    x = frames(0, 2, 1)[None].astype(dtype)
    out, grad = gl.CTCLoss().value_and_gradient(x, np.array([[0, 1]]))
    assert_array_equal(out, [0.0])
    assert_array_equal(grad, 0.0)
    # Label 0 in 2 frames that both favour the blank: the alignments (0, b),
    # (b, 0) and (0, 0) have probabilities e^-2e4, e^-2e4 and e^-4e4, so
    # loss = 2e4 - log 2, and each frame's posterior is half 0, half blank.
    x = frames(2, 2)[None].astype(dtype)
    out, grad = gl.CTCLoss().value_and_gradient(x, np.array([[0]]))
    assert_allclose(out, [2 * BIG - math.log(2)], rtol=1e-7 if dtype == np.float32 else 1e-15)
    assert_allclose(grad[0], [[-0.5, 0.0, 0.5]] * 2, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ctc_at_infinite_logits(dtype):
    # -inf on class 1 (unused by the label): the softmax is (1/2, 0, 1/2); the
    # alignments of label 0 in 2 frames are (0, b), (b, 0), (0, 0), each 1/4:
    # loss -log(3/4), frame posteriors (2/3, 0, 1/3).
    x = np.array([[[0.0, -INF, 0.0], [0.0, -INF, 0.0]]], dtype)
    out, grad = gl.CTCLoss().value_and_gradient(x, np.array([[0]]))
    assert_allclose(out, [-math.log(0.75)], rtol=1e-6)
    assert_allclose(grad[0], [[0.5 - 2 / 3, 0.0, 0.5 - 1 / 3]] * 2, rtol=1e-6, atol=1e-7)
    # -inf on the label's class in every frame: no alignment is possible
    # (infeasible: zero_infinity gives 0, else +inf; the gradient is 0), and
    # +inf anywhere: NaN (inf - inf in the softmax), in that sample only.
    x = np.zeros((3, 2, 3), dtype)
    x[0, :, 0] = -INF
    x[1, 1, 1] = INF
    label = np.array([[0], [0], [1]])
    for zero_infinity, infeasible in ((True, 0.0), (False, INF)):
        out, grad = gl.CTCLoss(zero_infinity=zero_infinity).value_and_gradient(x, label)
        assert out[0] == infeasible and not grad[0].any()
        assert math.isnan(out[1]) and np.isnan(grad[1]).all()
        assert_allclose(out[2], -math.log(3 / 9), rtol=1e-6)      # (1,b), (b,1), (1,1)
        assert np.isfinite(grad[2]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_poisson_at_huge_and_infinite_log_rates(dtype):
    targets = [0.0, 1.0, 2.5]
    logits = [BIG, -BIG, INF, -INF]
    pairs = [(p, t) for p in logits for t in targets]
    pred, target = _column([p for p, _ in pairs], dtype), _column([t for _, t in pairs], dtype)
    out, grad = gl.PoissonNLLLoss().value_and_gradient(pred, target)

    def ieee(p, t):
        # e^p - t p, and e^p - t, evaluated in IEEE doubles: e^1e4 overflows to
        # inf; inf - inf and 0 * inf are NaN (no limit is taken; docs/semantics.rst).
        e = INF if p > 709 else math.exp(p)
        prod = math.nan if (t == 0 and math.isinf(p)) else t * p
        return e - prod, e - t

    want = [ieee(p, t) for p, t in pairs]
    assert_array_equal(out, np.array([w[0] for w in want], dtype))
    assert_array_equal(grad[:, 0], np.array([w[1] for w in want], dtype))
    # The finite cases are the mathematically right values: at p = -1e4 the
    # rate e^-1e4 is 0 and the loss is 1e4 t exactly.
    assert_array_equal(out[3:6, ], np.array([0.0, BIG, 2.5 * BIG], dtype))


# -- 2. probabilities of exactly 0 and 1 with from_sigmoid=True --------------------------------

def _prob_bce(p, y, q):
    """The documented from_sigmoid formula (eps = 1e-12) in math: log(1 - p + eps) as
    log1p(eps - p) for p = 0, where 1 + eps would round."""
    eps = 1e-12
    log_not_p = math.log1p(eps) if p == 0 else math.log(1 - p + eps)
    loss = -(y * q * math.log(p + eps) + (1 - y) * log_not_p)
    grad = -y * q / (p + eps) + (1 - y) / (1 - p + eps)
    return loss, grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("q", [1.0, 2.5])
def test_from_sigmoid_probabilities_of_exactly_zero_and_one(dtype, q):
    pairs = [(p, y) for p in (0.0, 1.0) for y in (0.0, 1.0, 0.3)]
    pred = _column([p for p, _ in pairs], dtype)
    label = _column([y for _, y in pairs], dtype)
    extra = {"pos_weight": q} if q != 1 else {}
    out, grad = gl.SigmoidBCELoss(from_sigmoid=True).value_and_gradient(pred, label, **extra)
    assert np.isfinite(out).all() and np.isfinite(grad).all()
    want = [_prob_bce(p, y, q) for p, y in pairs]
    # float32 rounds 1 + 1e-12 to 1 (a loss of 0 instead of -1e-12).
    rtol, atol = (2e-6, 1e-11) if dtype == np.float32 else (1e-14, 1e-15)
    assert_allclose(out, [w[0] for w in want], rtol=rtol, atol=atol)
    assert_allclose(grad[:, 0], [w[1] for w in want], rtol=rtol, atol=atol)
    # Spelled out: a confident wrong answer costs -log(1e-12) = 27.63, with
    # gradient of size 1e12; a confident right one costs (almost exactly) 0.
    assert_allclose(out[[1, 3]], [q * 12 * math.log(10), 12 * math.log(10)], rtol=1e-6)
    assert_allclose(grad[[1, 3], 0], [-q * 1e12, 1e12], rtol=1e-6)
    assert abs(out[0]) <= 1e-11 and abs(out[4]) <= 1e-11


# -- 3. labels of exactly 0 and 1 in KLDivLoss ------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_labels_of_exactly_zero_and_one(dtype):
    # One-hot labels against log-probabilities with -inf where the label is 0:
    # 0 * (log(0 + 1e-12) - (-inf)) is 0 (y log y with 0 log 0 = 0, as documented).
    log_probs = np.array([[math.log(0.5), math.log(0.5), -INF],
                          [-INF, 0.0, -INF],
                          [math.log(0.2), math.log(0.3), math.log(0.5)],
                          [-INF, math.log(0.5), math.log(0.5)]], dtype)
    y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype)
    out, grad = gl.KLDivLoss().value_and_gradient(log_probs, y)
    want = [(math.log1p(1e-12) + math.log(2)) / 3, math.log1p(1e-12) / 3, 0.0, INF]
    assert_allclose(out, want, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-12)
    # from logits the gradient is -y u, u = 1/3 per element: 0 where y = 0.
    assert_array_equal(grad, -y / dtype(3))
    # Through the log-softmax: the logits (0, 0, -inf) give lp = (-log 2, -log 2, -inf).
    logits = np.array([[0.0, 0.0, -INF], [-INF, 5.0, -INF], [1.0, 2.0, 3.0]], dtype)
    out, grad = gl.KLDivLoss(from_logits=False).value_and_gradient(logits, y[:3])
    assert_allclose(out, want[:3], rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-12)
    assert_allclose(grad[0], [(0.5 - 1) / 3, 0.5 / 3, 0.0], rtol=1e-6)
    assert_array_equal(grad[1:], 0.0)    # softmax * sum(y) - y = 0, and 0 for y = 0


# -- 4. zero vectors in CosineEmbeddingLoss ---------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_cosine_zero_vectors(dtype):
    # |x| |y| = 0 is floored to 1e-12: cos = x.y / 1e-12 = 0, d cos/dx = y / 1e-12
    # (the derivative of the floored function, linear in x there).
    zero, v = [0.0, 0.0, 0.0], [1.0, -2.0, 2.0]
    x = np.array([zero, zero, zero, zero, v, zero], dtype)
    y = np.array([zero, v, v, v, zero, v], dtype)
    label = np.array([1, 1, -1, -1, -1, -1])
    margins = np.array([0.0, 0.0, 0.0, -0.5, -0.5, 1.5])
    for margin in sorted(set(margins)):
        rows = margins == margin
        out, (gx, gy) = gl.CosineEmbeddingLoss(margin=margin, weight=2.0).value_and_gradient(
            x[rows], y[rows], label[rows])
        assert np.isfinite(out).all() and np.isfinite(gx).all() and np.isfinite(gy).all()
        for o, a, b, lab, g1, g2 in zip(out, x[rows].astype(float), y[rows].astype(float),
                                        label[rows], gx, gy, strict=False):
            if lab == 1:        # 1 - cos = 1; d/dx = -2 * b / 1e-12
                want, dcos = 1.0, -1.0
            else:               # clip(0 - m, 0, 1 - m), slope 1 strictly inside
                # (upper bound first, MXNet's order: 0 for margin > 1)
                want = max(min(-margin, 1 - margin), 0.0)
                dcos = 1.0 if 0 < -margin < 1 - margin else 0.0
            assert_allclose(o, 2.0 * want, rtol=1e-6)
            assert_allclose(g1, 2.0 * dcos * b / 1e-12, rtol=1e-6)
            assert_allclose(g2, 2.0 * dcos * a / 1e-12, rtol=1e-6)


# -- 5. identical rows in SDMLLoss ------------------------------------------------------------

def _sdml_longdouble(x1, x2, sp):
    """The documented SDML loss in long double, straight from its definition."""
    a, b = x1.astype(np.longdouble), x2.astype(np.longdouble)
    n = len(a)
    dist = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    neg = -dist
    top = neg.max(1, keepdims=True)
    lp = neg - top - np.log(np.exp(neg - top).sum(1, keepdims=True))
    target = np.where(np.eye(n, dtype=bool), np.longdouble(1 - sp),
                      np.longdouble(sp) / (n - 1))
    return (target * (np.log(target + np.longdouble(1e-12)) - lp)).mean(1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sdml_identical_rows(dtype):
    # x2 = x1 (every D_ii exactly 0), with rows 0 and 3 equal (D_03 = D_30 = 0
    # too), far from the origin where |a|^2 + |b|^2 - 2 a.b would cancel.
    rng = np.random.default_rng(81)
    x1 = (300 + rng.standard_normal((6, 7))).astype(dtype)
    x1[3] = x1[0]
    sp = 0.3
    out, (g1, g2) = gl.SDMLLoss(sp).value_and_gradient(x1, x1.copy())
    assert np.isfinite(out).all() and np.isfinite(g1).all() and np.isfinite(g2).all()
    rtol, atol = (5e-5, 5e-6) if dtype == np.float32 else (1e-13, 1e-14)
    assert_allclose(out, _sdml_longdouble(x1, x1, sp).astype(float), rtol=rtol, atol=atol)
    # Rows 0 and 3 are interchangeable: equal losses, bitwise.
    assert out[0] == out[3]
    # Translation invariance: the gradients of x1 and x2 sum to 0.
    assert_allclose(g1.sum(0) + g2.sum(0), 0.0, atol=1e-3 if dtype == np.float32 else 1e-10)
    ref = reference.SDMLLoss(sp).value_and_gradient(x1, x1)
    for got, want in zip((g1, g2), ref[1], strict=False):
        assert_allclose(got, want, rtol=rtol, atol=atol * 10)


# -- 6. CTC with thousands of frames ----------------------------------------------------------

def _ctc_nll_longdouble(x, label):
    """-log p(label | x) for one (T, C) sample: Graves's forward recursion in
    long double, rescaled every frame (probabilities, not logs)."""
    x = x.astype(np.longdouble)
    y = np.exp(x - x.max(1, keepdims=True))
    y /= y.sum(1, keepdims=True)
    blank = x.shape[1] - 1
    ext = np.full(2 * len(label) + 1, blank)
    ext[1::2] = label
    skip = np.zeros(len(ext), bool)
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    alpha = np.zeros(len(ext), np.longdouble)
    alpha[:2] = y[0, ext[:2]]
    log_p = np.longdouble(0)
    for t in range(1, len(x)):
        scale = alpha.sum()
        log_p += np.log(scale)
        prev = alpha / scale
        alpha = prev.copy()
        alpha[1:] += prev[:-1]
        alpha[2:][skip[2:]] += prev[:-2][skip[2:]]
        alpha *= y[t, ext]
    return -(log_p + np.log(alpha[-2:].sum()))


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["NTC", "TNC"])
def test_ctc_thousands_of_frames(layout):
    rng = np.random.default_rng(86)
    n_frames, n_classes = 3000, 6
    x = rng.standard_normal((2, n_frames, n_classes)) * 3
    label = np.full((2, 400), -1)
    label[0] = rng.integers(0, n_classes - 1, 400)
    label[1, :60] = rng.integers(0, n_classes - 1, 60)
    pred_lengths = np.array([n_frames, 2500])
    exact = [_ctc_nll_longdouble(x[0], label[0]), _ctc_nll_longdouble(x[1, :2500], label[1, :60])]

    results = {}
    for dtype in DTYPES:
        xd = x.astype(dtype)
        xd = np.ascontiguousarray(xd.transpose(1, 0, 2)) if layout == "TNC" else xd
        loss = gl.CTCLoss(layout)
        out, grad = loss.value_and_gradient(xd, label, pred_lengths=pred_lengths)
        grad = grad.transpose(1, 0, 2) if layout == "TNC" else grad
        results[dtype] = out, grad
        assert np.isfinite(out).all() and np.isfinite(grad).all()
        assert (out > 1000).all()
        # Losses of ~6000 and ~7800: measured within 2e-15 (float64) and 2e-7
        # (float32) of the 80-bit values.
        assert_allclose(out, np.array(exact, float), rtol=2e-6 if dtype == np.float32 else 1e-13)
        # softmax - posterior: every used frame's gradient sums to 0 (both
        # distributions sum to 1); frames past pred_lengths get exactly 0.
        assert_allclose(grad.sum(-1), 0.0, atol=1e-5 if dtype == np.float32 else 1e-12)
        assert not grad[1, 2500:].any()
        ref_out, ref_grad = reference.CTCLoss(layout).value_and_gradient(xd, label,
                                                                         pred_lengths=pred_lengths)
        ref_grad = ref_grad.transpose(1, 0, 2) if layout == "TNC" else ref_grad
        rtol, atol = tolerances(dtype)
        assert_allclose(out, ref_out, rtol=rtol)
        assert_allclose(grad, ref_grad, rtol=0, atol=2e-3 if dtype == np.float32 else 1e-9)

    # The float64 gradient against a central difference of the 80-bit loss
    # along a random direction (step 1e-4: truncation error ~1e-8 relative).
    direction = rng.standard_normal(x.shape)
    step = 1e-4

    def total(v):
        return (_ctc_nll_longdouble(v[0], label[0])
                + _ctc_nll_longdouble(v[1, :2500], label[1, :60]))

    slope = (total(x + step * direction) - total(x - step * direction)) / (2 * step)
    got = float(np.sum(results[np.float64][1] * direction))
    assert_allclose(got, float(slope), rtol=1e-6)


# -- 7. an out_grad near the largest finite value ---------------------------------------------

@pytest.mark.parametrize("loss_name, pred, label, dloss", [
    ("L2Loss", 1.5, -1.0, 2.5),              # d/dp 0.5 (y - p)^2 = p - y
    ("SquaredHingeLoss", -1.0, 1.0, -4.0),   # d/dp max(0, 1 - p y)^2 = -2 y max(0, 1 - p y)
])
def test_a_huge_out_grad_keeps_a_finite_gradient_finite(loss_name, pred, label, dloss):
    # The gradient out_grad * dloss / n is finite here, although out_grad * dloss
    # alone overflows.
    n = 8
    pred = np.full((1, n), pred)
    label = np.full((1, n), label)
    want = np.full((1, n), dloss * (1.5e308 / n))
    for module in (gl, reference):
        grad = getattr(module, loss_name)().gradient(pred, label, out_grad=[1.5e308])
        assert_allclose(grad, want, rtol=1e-15)


@pytest.mark.parametrize("dtype, out_grad", [(np.float32, 3e38), (np.float64, 1.5e308)])
def test_a_huge_out_grad_keeps_the_triplet_gradient_finite(dtype, out_grad):
    # Active hinge: (q - p)^2 - (n - p)^2 = 0.0625 - 0.015625 > 0.  Each gradient
    # is 2 * out_grad * (a difference of +-0.125 or 0.25), finite in the dtype,
    # although 2 * out_grad is not.
    shape = (1, 4)
    pred, positive, negative = (np.full(shape, v, dtype) for v in (0.0, 0.25, 0.125))
    want = [out_grad * diff * 2 for diff in (0.125 - 0.25, 0.25 - 0.0, 0.0 - 0.125)]
    for module in (gl, reference):
        grads = module.TripletLoss().gradient(pred, positive, negative, out_grad=[out_grad])
        for grad, value in zip(grads, want, strict=True):
            assert grad.dtype == dtype
            assert_allclose(grad, np.full(shape, value), rtol=1e-6 if dtype == np.float32
                            else 1e-15)


def _sdml_gradients(x1, x2, out_grad, smoothing=0.3):
    """SDMLLoss's (d_x1, d_x2) in float64 from its definition: per row i,
    loss_i = (1/n) sum_j Y_ij (log Y_ij - log softmax_j(-D_ij)), D_ij = |x1_i - x2_j|^2,
    so d loss_i / d D_ij = (Y_ij - softmax_j(-D_ij)) / n."""
    n = len(x1)
    targets = np.full((n, n), smoothing / (n - 1))
    np.fill_diagonal(targets, 1 - smoothing)
    diff = x1[:, None, :] - x2[None, :, :]                       # (i, j, k)
    dist = np.sum(diff * diff, axis=2)
    logits = -dist - np.max(-dist, axis=1, keepdims=True)
    probs = np.exp(logits) / np.sum(np.exp(logits), axis=1, keepdims=True)
    # Scaled down by 2**-600 so that nothing overflows on the way, back at the end.
    coef = np.ldexp(out_grad, -600)[:, None] * ((targets - probs) * (2.0 / n))
    d_x1 = np.sum(coef[:, :, None] * diff, axis=1)
    d_x2 = -np.sum(coef[:, :, None] * diff, axis=0)
    return np.ldexp(d_x1, 600), np.ldexp(d_x2, 600)


@pytest.mark.parametrize("dtype, big", [(np.float32, 1e39), (np.float64, 1e308)])
def test_a_huge_out_grad_keeps_the_sdml_gradient_finite(dtype, big):
    # out_grad is float64: 1e39 lies beyond float32.  Every gradient is finite,
    # and the rows with an ordinary out_grad keep their precision.
    rng = np.random.default_rng(3)
    x1 = rng.standard_normal((5, 3)).astype(dtype)
    x2 = (x1 + 0.3 * rng.standard_normal((5, 3))).astype(dtype)
    out_grad = np.array([big, 1.0, 1.0, 1.0, 1e-3])
    want = _sdml_gradients(x1.astype(np.float64), x2.astype(np.float64), out_grad)
    for module in (gl, reference):
        grads = module.SDMLLoss().gradient(x1, x2, out_grad=out_grad)
        for got, expected in zip(grads, want, strict=True):
            assert got.dtype == dtype and np.all(np.isfinite(expected))
            # Relative to each row's largest entry: entries are sums that cancel.
            row_scale = np.max(np.abs(expected), axis=1, keepdims=True)
            assert_allclose(got / row_scale, expected / row_scale,
                            atol=1e-5 if dtype == np.float32 else 1e-12)
