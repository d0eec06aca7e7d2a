"""Every loss, not one family at a time: bitwise identical results for any
OpenMP thread count, on one huge sample and on many small ones, and when
many Python threads call different losses at once (each with OpenMP
threads of its own inside)."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import gluonloss as gl
from _all_losses import LOSS_IDS, LOSSES, run
from _cases import stable_rng
from gluonloss import _openmp

needs_openmp = pytest.mark.skipif(not _openmp.openmp_enabled(), reason="built without OpenMP")

THREAD_COUNTS = (2, 3, 4, 8)     # 8 oversubscribes a small machine on purpose


def _results(entry, size, dtype):
    return run(entry, stable_rng(entry.cls, size, np.dtype(dtype).name), size, dtype)


def _assert_all_equal(got, want, what):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        assert g.dtype == w.dtype and g.shape == w.shape, what
        assert_array_equal(g, w, err_msg=f"{what}: result {i}", strict=True)


@needs_openmp
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", ["huge", "many"])
@pytest.mark.parametrize("entry", LOSSES, ids=LOSS_IDS)
def test_bitwise_identical_for_any_openmp_thread_count(entry, size, dtype):
    with gl.num_threads(1):
        want = _results(entry, size, dtype)
    for n in THREAD_COUNTS:
        with gl.num_threads(n):
            got = _results(entry, size, dtype)
        _assert_all_equal(got, want, f"{entry} {size} with {n} threads")


# Each job: one loss, one size, one seed; every worker gets a different mix.
JOBS = [(entry, size, seed) for seed in range(2) for entry in LOSSES
        for size in ("small", "many")]


def _job(job):
    entry, size, seed = job
    return run(entry, stable_rng(entry.cls, size, seed), size)


@pytest.mark.parametrize("openmp_threads", [1, 2])
def test_many_python_threads_calling_every_loss_at_once(openmp_threads):
    with gl.num_threads(1):
        want = [_job(job) for job in JOBS]
    # The job list rotated eight ways, three times over: tasks that run at the same
    # time are different losses and sizes.
    order = [(start + k) % len(JOBS) for start in range(0, len(JOBS), len(JOBS) // 8 + 1)
             for k in range(len(JOBS))] * 3
    with gl.num_threads(openmp_threads), ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda i: _job(JOBS[i]), order))
    for i, results in zip(order, got, strict=False):
        entry, size, seed = JOBS[i]
        _assert_all_equal(results, want[i], f"{entry} {size} seed {seed}")
