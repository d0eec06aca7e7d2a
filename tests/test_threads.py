"""Thread count control, bitwise determinism across thread counts, and
concurrent calls from many Python threads."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from threadpoolctl import threadpool_info, threadpool_limits

import gluonloss as gl
from _cases import CASE_IDS, CASES
from gluonloss import _openmp, elementwise

needs_openmp = pytest.mark.skipif(not _openmp.openmp_enabled(),
                                  reason="built without OpenMP")


def _run(case, shapes, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    results = []
    for shape in shapes:
        pred, label, extra = case.data(rng, shape, dtype)
        sw = rng.uniform(0, 2, shape)
        og = rng.standard_normal(shape[0])
        results += case.make().value_and_gradient(pred, label, sample_weight=sw, **extra,
                                                  out_grad=og)
    return results


BLOCK = elementwise._elementwise.BLOCK_SIZE
# Many rows; one huge row split into blocks; rows of a few blocks each.
SHAPES = [(512, 300), (1, 5 * BLOCK + 123), (3, 3 * BLOCK + 1)]


@needs_openmp
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_bitwise_identical_for_any_thread_count(case, dtype):
    with gl.num_threads(1):
        want = _run(case, SHAPES, dtype=dtype)
    assert all(w.dtype == dtype for w in want)
    for n in (2, 3, 4):
        with gl.num_threads(n):
            got = _run(case, SHAPES, dtype=dtype)
        for g, w in zip(got, want, strict=False):
            assert_array_equal(g, w, strict=True)


@needs_openmp
def test_threadpoolctl_controls_the_openmp_pool():
    assert any(info["user_api"] == "openmp" for info in threadpool_info())
    with threadpool_limits(1, user_api="openmp"):
        assert gl.get_num_threads() == 1
        one = _run(CASES[0], SHAPES)
    with threadpool_limits(2, user_api="openmp"):
        assert gl.get_num_threads() == 2
        two = _run(CASES[0], SHAPES)
    for a, b in zip(one, two, strict=False):
        assert_array_equal(a, b)


def test_set_num_threads_and_context_manager():
    before = gl.get_num_threads()
    with gl.num_threads(3):
        assert gl.get_num_threads() == 3
        with gl.num_threads(1):
            assert gl.get_num_threads() == 1
        assert gl.get_num_threads() == 3
    assert gl.get_num_threads() == before
    gl.set_num_threads(2)
    try:
        assert gl.get_num_threads() == 2
    finally:
        gl.set_num_threads(None)
    assert gl.get_num_threads() == before


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                      ("2", TypeError)])
def test_set_num_threads_rejects_bad_counts(bad, exc):
    with pytest.raises(exc):
        gl.set_num_threads(bad)


@pytest.mark.parametrize("case", CASES[::3], ids=CASE_IDS[::3])
def test_many_python_threads_at_once(case):
    shapes = [(64, 700), (1, 9000), (7, 3)]
    want = [_run(case, shapes, seed) for seed in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda seed: _run(case, shapes, seed), list(range(8)) * 3))
    for i, results in enumerate(got):
        for g, w in zip(results, want[i % 8], strict=False):
            assert_array_equal(g, w)
