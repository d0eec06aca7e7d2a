"""SDMLLoss through BLAS: accuracy of the expanded distances where they would
cancel, and results that depend neither on gluonloss's thread count nor on
the BLAS's own, nor on the kernel build.

The direct kernel (every distance summed as sum_k (x1_ik - x2_jk)^2) still
runs for inputs that are not all finite; it serves here as a second opinion.
"""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from threadpoolctl import threadpool_limits

import gluonloss as gl
from _cases import WIDE_BUILDS, kernel_builds
from gluonloss import _openmp, pairwise, reference
from gluonloss._layout import sdml_panels

DTYPES = [np.float32, np.float64]
# Several GEMM tiles along every axis (tiles are 128 x 64 x 32), ragged edges.
SHAPES = [(300, 150), (130, 70), (33, 200)]


def _direct(x1, x2, loss, out_grad=None):
    """The direct kernel's (out, (d_x1, d_x2)) for finite x1, x2."""
    kernels = pairwise._pairwise
    n, dim = x1.shape
    dtype = x1.dtype
    panels = sdml_panels(x1, x2, dtype, kernels.SDML_PANEL, True)
    out = np.empty(n, dtype)
    grads = (np.empty((n, dim), dtype), np.empty((n, dim), dtype))
    y_diag, y_off, entropy = loss._targets(n)
    kernels.sdml(a_rows=panels[0], b_panels=panels[1], a_cols=panels[2], b_cols=panels[3],
                 n=n, y_diag=y_diag, y_off=y_off, entropy=entropy, weight=loss._scalar_weight(),
                 out_grad=out_grad, out=out, grad_x1=grads[0], grad_x2=grads[1], n_threads=1)
    return out, grads


def _relative_errors(got, want):
    """max |error| / max |want| of the loss and of each gradient."""
    out, grads = got
    return [float(np.max(np.abs(g.astype(np.float64) - w)) / np.max(np.abs(w)))
            for g, w in zip((out, *grads), (want[0], *want[1]), strict=True)]


def _pairs(rng, n, dim, gap, offset, dtype):
    """Positive pairs ``gap`` apart (per coordinate), ``offset`` from the origin."""
    x1 = offset + rng.standard_normal((n, dim))
    x2 = x1 + gap * rng.standard_normal((n, dim))
    return x1.astype(dtype), x2.astype(dtype)


@pytest.mark.parametrize("offset", [0.0, 100.0])
@pytest.mark.parametrize("gap", [1e-1, 1e-3, 1e-5])
def test_float32_near_identical_pairs_match_float64(gap, offset):
    # D_ii = |x1_i - x2_i|^2 is ~gap^2 * dim, next to |x1_i|^2 ~ (offset^2 + 1) * dim:
    # expanded as |a|^2 + |b|^2 - 2 a.b it would lose every digit.  The float32
    # results stay within a few float32 ulps of the float64 reference, like
    # the direct kernel's.
    rng = np.random.default_rng(17)
    x1, x2 = _pairs(rng, 200, 64, gap, offset, np.float32)
    loss = gl.SDMLLoss(0.3)
    want = reference.SDMLLoss(0.3).value_and_gradient(x1.astype(np.float64),
                                                        x2.astype(np.float64))
    blas = _relative_errors(loss.value_and_gradient(x1, x2), want)
    direct = _relative_errors(_direct(x1, x2, loss), want)
    assert max(blas) < 4e-7, (blas, direct)      # measured: 0.9e-7 to 2e-7
    assert max(blas) < 2 * max(direct), (blas, direct)


def test_clusters_far_from_each_other_keep_their_small_distances():
    # 8 clusters ~100 apart, rows within a cluster ~0.05 apart and pairs 1e-3
    # apart: a row's softmax is decided by distances ~0.1 between members of
    # its cluster, while |x1_i - x1_0|^2 ~ 1e5.  Expanded, those distances
    # would carry errors ~1e-7 * 1e5 = 1e-2 and the losses would be off by
    # percents; recomputed directly they are exact to float32 rounding.
    rng = np.random.default_rng(18)
    centres = 100 * rng.standard_normal((8, 1, 32))
    x1 = (centres + 0.05 * rng.standard_normal((8, 16, 32))).reshape(128, 32)
    x2 = x1 + 1e-3 * rng.standard_normal((128, 32))
    x1, x2 = x1.astype(np.float32), x2.astype(np.float32)
    got = gl.SDMLLoss(0.3).value_and_gradient(x1, x2)
    want = reference.SDMLLoss(0.3).value_and_gradient(x1.astype(np.float64),
                                                        x2.astype(np.float64))
    assert_allclose(got[0], want[0], rtol=1e-5)
    for g, w in zip(got[1], want[1], strict=True):
        assert_allclose(g, w, rtol=1e-4, atol=1e-4 * np.abs(w).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_blas_path_agrees_with_the_direct_kernel(dtype):
    rng = np.random.default_rng(19)
    for n, dim in SHAPES:
        x1, x2 = _pairs(rng, n, dim, 0.7, 3.0, dtype)
        og = rng.standard_normal(n)
        loss = gl.SDMLLoss(0.2, weight=1.5)
        got = loss.value_and_gradient(x1, x2, out_grad=og)
        want = _direct(x1, x2, loss, og)
        rtol = 2e-5 if dtype == np.float32 else 1e-12
        assert_allclose(got[0], want[0], rtol=rtol)
        for g, w in zip(got[1], want[1], strict=True):
            assert_allclose(g, w, rtol=rtol, atol=rtol * np.abs(w).max())


def test_duplicate_rows_give_exactly_zero_distances_off_the_diagonal():
    # Rows 0 and 5 of x1 equal, x2 = x1: D_05 = D_50 = 0 exactly (recomputed
    # directly where the expansion cancels), so the two rows' losses are equal.
    rng = np.random.default_rng(20)
    x1 = (50 + rng.standard_normal((40, 300))).astype(np.float32)
    x1[5] = x1[0]
    out, (g1, g2) = gl.SDMLLoss().value_and_gradient(x1, x1.copy())
    assert out[0] == out[5]
    assert_array_equal(g1[0], g1[5])


needs_openmp = pytest.mark.skipif(not _openmp.openmp_enabled(), reason="built without OpenMP")


@needs_openmp
@pytest.mark.parametrize("dtype", DTYPES)
def test_bitwise_identical_for_any_gluonloss_and_blas_thread_count(dtype):
    # OpenBLAS itself gives other bits with other thread counts (dgemm even
    # for short sums); SDML's fixed single-threaded tiles must not.
    rng = np.random.default_rng(21)
    problems = [_pairs(rng, n, dim, 0.5, 1.0, dtype) + (rng.standard_normal(n),)
                for n, dim in SHAPES]

    def run():
        results = []
        for x1, x2, og in problems:
            out, grads = gl.SDMLLoss().value_and_gradient(x1, x2, out_grad=og)
            results += [out, *grads]
        return results

    with gl.num_threads(1), threadpool_limits(1, user_api="blas"):
        want = run()
    for threads in (2, 3):
        for blas_threads in (1, 2, 4):
            with gl.num_threads(threads), threadpool_limits(blas_threads, user_api="blas"):
                got = run()
            for g, w in zip(got, want, strict=True):
                assert_array_equal(g, w, strict=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wide", WIDE_BUILDS)
def test_wide_builds_are_bitwise_identical_to_baseline(wide, dtype, monkeypatch):
    base, wide_build = kernel_builds("_pairwise", wide)
    rng = np.random.default_rng(22)
    x1, x2 = _pairs(rng, 150, 90, 0.3, 2.0, dtype)
    og = rng.standard_normal(150)
    results = []
    for module in (base, wide_build):
        monkeypatch.setattr(pairwise, "_pairwise", module)
        out, grads = gl.SDMLLoss(0.1).value_and_gradient(x1, x2, out_grad=og)
        results.append([out, *grads])
    for a, b in zip(*results, strict=True):
        assert_array_equal(a, b)


def test_blas_entry_declines_what_it_cannot_do():
    kernels = pairwise._pairwise
    x = np.ones((3, 2))
    args = dict(y_diag=0.7, y_off=0.15, entropy=0.0, weight=1.0, out_grad=None,
                out=np.empty(3), grad_x1=None, grad_x2=None, n_threads=1)
    assert kernels.sdml_blas(x1=x, x2=x, **args) is True
    # 1e300: |x|^2 overflows; 1e154: |x|^2 is finite but a distance to -1e154
    # is not (it must come out infinite, not inf - inf).
    for bad in (np.inf, -np.inf, np.nan, 1e300, 1e154):
        y = x.copy()
        y[1, 0] = bad
        assert kernels.sdml_blas(x1=x, x2=y, **args) is False
    assert kernels.sdml_blas(x1=np.ones((3, 0)), x2=np.ones((3, 0)), **args) is False
    with pytest.raises(ValueError, match="sdml_blas: x1 must have at least 2 rows"):
        kernels.sdml_blas(x1=np.ones((1, 2)), x2=np.ones((1, 2)), **args)
    with pytest.raises(ValueError, match="sdml_blas: x2 must have length 3 along axis 0"):
        kernels.sdml_blas(x1=x, x2=np.ones((2, 2)), **args)
    with pytest.raises(TypeError, match="sdml_blas: x2 must have dtype float64"):
        kernels.sdml_blas(x1=x, x2=x.astype(np.float32), **args)


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_distances_that_overflow_are_infinite_as_in_the_reference(smoothing):
    x1 = np.array([[1e154], [1.0], [2.0]])
    x2 = np.array([[-1e154], [1.5], [0.0]])
    with np.errstate(all="ignore"):
        got = gl.SDMLLoss(smoothing).value_and_gradient(x1, x2)
        want = reference.SDMLLoss(smoothing).value_and_gradient(x1, x2)
    for g, w in zip([got[0], *got[1]], [want[0], *want[1]], strict=True):
        assert_array_equal(np.isnan(g), np.isnan(w))
        assert_array_equal(np.isinf(g), np.isinf(w))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    assert got[0][0] == np.inf


@pytest.mark.parametrize("out_grad", [[1.0, np.inf], [-np.inf, 1.0], [np.nan, 1.0]])
def test_infinite_out_grad_gives_the_reference_infinities(out_grad):
    x1 = np.array([[1.0], [0.0]], np.float32)
    x2 = np.array([[0.0], [0.0]])
    with np.errstate(all="ignore"):
        got = gl.SDMLLoss(0.0).value_and_gradient(x1, x2, out_grad=out_grad)
        want = reference.SDMLLoss(0.0).value_and_gradient(x1, x2, out_grad=out_grad)
    for g, w in zip([got[0], *got[1]], [want[0], *want[1]], strict=True):
        assert_array_equal(np.isnan(g), np.isnan(w))
        assert_array_equal(np.isposinf(g), np.isposinf(w))
        assert_array_equal(np.isneginf(g), np.isneginf(w))


@pytest.mark.parametrize("scale", [1e308, -1.7e308])
def test_an_out_grad_near_the_float64_limit_gives_the_reference_gradient(scale):
    # The gradient is out_grad * 2 (weight / n) * (y - p) summed over pairs:
    # finite here.  Scaled as 2 * out_grad first, its coefficient overflowed
    # to inf, and inf * 0 and inf - inf made NaNs.
    rng = np.random.default_rng(5)
    x1 = rng.standard_normal((6, 3))
    x2 = x1 + 0.1 * rng.standard_normal((6, 3))
    out_grad = np.full(6, scale)
    got = gl.SDMLLoss().gradient(x1, x2, out_grad=out_grad)
    want = reference.SDMLLoss().gradient(x1, x2, out_grad=out_grad)
    for g, w in zip(got, want, strict=True):
        assert np.isfinite(w).all()
        assert_allclose(g, w, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [np.inf, 1e38, -1e300])
def test_an_out_grad_that_sends_the_gradient_direct_leaves_the_loss_as_forward(dtype, scale):
    # A huge out_grad sends the gradient to the direct kernel (its GEMM
    # products could overflow); the loss must still be forward's, bit for bit,
    # ill-conditioned far-away rows included.
    rng = np.random.default_rng(9)
    x1 = rng.standard_normal((7, 3)).astype(dtype)
    x1[4] += 2**24
    x2 = (x1 + 0.1 * rng.standard_normal((7, 3))).astype(dtype)
    loss = gl.SDMLLoss(0.2)
    out_grad = np.full(7, scale)
    with np.errstate(all="ignore"):
        out, grads = loss.value_and_gradient(x1, x2, out_grad=out_grad)
        assert_array_equal(out, loss(x1, x2), strict=True)
        for both, alone in zip(grads, loss.gradient(x1, x2, out_grad=out_grad), strict=True):
            assert_array_equal(both, alone, strict=True)


def _active_scratch():
    """The scratch store of the kernel build in use, emptied."""
    module = pairwise._pairwise
    module._scratch.__dict__.clear()
    return module


def test_scratch_reused_by_a_smaller_call_gives_the_same_bits():
    # A big call leaves its scratch (with its values) behind; smaller calls
    # and calls of the other dtype carve theirs from it and must not depend
    # on what is there.
    rng = np.random.default_rng(23)
    small64 = _pairs(rng, 40, 30, 0.5, 1.0, np.float64)
    small32 = _pairs(rng, 40, 30, 0.5, 1.0, np.float32)
    big = _pairs(rng, 300, 150, 0.5, 1.0, np.float64)
    loss = gl.SDMLLoss(0.1)
    module = _active_scratch()
    fresh = [loss.value_and_gradient(*small64), loss.value_and_gradient(*small32)]
    kept = module._scratch.buffer
    loss.value_and_gradient(*big)
    assert module._scratch.buffer.nbytes > kept.nbytes      # grown, and kept
    again = [loss.value_and_gradient(*small64), loss.value_and_gradient(*small32)]
    for (out_a, grads_a), (out_b, grads_b) in zip(fresh, again, strict=True):
        for a, b in zip((out_a, *grads_a), (out_b, *grads_b), strict=True):
            assert_array_equal(a, b, strict=True)
    want = reference.SDMLLoss(0.1).value_and_gradient(*small64)
    assert_allclose(again[0][0], want[0], rtol=1e-12)


def test_scratch_above_the_keep_limit_is_not_kept(monkeypatch):
    rng = np.random.default_rng(24)
    x1, x2 = _pairs(rng, 50, 20, 0.5, 1.0, np.float64)
    module = _active_scratch()
    monkeypatch.setattr(module, "SCRATCH_KEEP_BYTES", 1000)
    want = reference.SDMLLoss().value_and_gradient(x1, x2)
    got = gl.SDMLLoss().value_and_gradient(x1, x2)
    assert getattr(module._scratch, "buffer", None) is None
    assert_allclose(got[0], want[0], rtol=1e-12)


def test_each_python_thread_has_its_own_scratch():
    # Calls at once from several threads: each result equals the same call
    # made alone, and each thread kept a buffer of its own.
    rng = np.random.default_rng(25)
    problems = [_pairs(rng, 120 + 10 * k, 60, 0.5, 1.0, np.float32) for k in range(8)]
    loss = gl.SDMLLoss()
    want = [loss.value_and_gradient(x1, x2) for x1, x2 in problems]
    module = pairwise._pairwise
    buffers = {}

    def call(k):
        result = loss.value_and_gradient(*problems[k])
        buffers[threading.get_ident()] = module._scratch.buffer
        return result

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(call, range(len(problems))))
    for (out_g, grads_g), (out_w, grads_w) in zip(got, want, strict=True):
        for g, w in zip((out_g, *grads_g), (out_w, *grads_w), strict=True):
            assert_array_equal(g, w, strict=True)
    assert len({id(b) for b in buffers.values()}) == len(buffers)
