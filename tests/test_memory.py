"""Repeated calls do not grow memory: hundreds of successful calls of every
loss, and of calls that raise (from the Python layer and from the Cython
validators), after a warm-up.

Two measurements per loop: tracemalloc (every Python object and every NumPy
array buffer, which NumPy reports to tracemalloc) and the bytes the C heap
has handed out (glibc's mallinfo2: any malloc without its free in compiled
code).  Not the resident set size: freed memory stays resident and is
reused, so an RSS bound passes or fails with what ran before in the
process.  The bounds are set from the smallest leak each is meant to catch:

- tracemalloc: one leaked empty ndarray per call is sys.getsizeof(np.empty(0))
  = 112 bytes or more; the bound is a quarter of that per call (a leaked
  list slot, 8 bytes per call, would not be caught: no such reference is
  kept anywhere in the package).  Seen here: at most 4.3 KB in all.
- C heap: a leaked kilobyte per call (a scratch buffer, a row of a result)
  grows the heap by ITERATIONS KiB; the bound is half of that.

``test_the_bounds_catch_a_small_leak`` checks that such leaks are caught.
"""
import ctypes
import gc
import os
import sys
import tracemalloc

import numpy as np
import pytest

import gluonloss as gl
from _all_losses import LOSS_IDS, LOSSES
from _cases import stable_rng

ITERATIONS = 600
WARM_UP = 100
TRACED_BOUND = ITERATIONS * sys.getsizeof(np.empty(0)) // 4
HEAP_BOUND = ITERATIONS * 1024 // 2

class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _mallinfo2():
    """glibc's mallinfo2, or None (another C library, or glibc before 2.33)."""
    try:
        function = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    function.restype = _MallInfo2
    return function


_MALLINFO2 = _mallinfo2()


def _heap_in_use():
    """Bytes the C heap has handed out and not taken back (glibc), or None.

    Not the resident set size: freed memory often stays resident and is
    reused, so a leak can grow the heap for a long time without growing the
    RSS.  None under AddressSanitizer, whose allocator glibc does not see.
    """
    if _MALLINFO2 is None or "libasan" in os.environ.get("LD_PRELOAD", ""):
        return None
    info = _MALLINFO2()
    return info.uordblks + info.hblkhd


def growth(call, iterations=ITERATIONS):
    """(traced bytes, C heap bytes or None) that ``iterations`` calls of
    ``call`` add after a warm-up."""
    for _ in range(WARM_UP):
        call()
    gc.collect()
    heap_before = _heap_in_use()
    tracemalloc.start()
    try:
        traced_before = tracemalloc.get_traced_memory()[0]
        for _ in range(iterations):
            call()
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - traced_before
    finally:
        tracemalloc.stop()
    heap_after = _heap_in_use()
    return traced, None if heap_before is None else heap_after - heap_before


def assert_no_growth(call):
    traced, heap = growth(call)
    assert traced < TRACED_BOUND, f"tracemalloc: {traced} bytes more after {ITERATIONS} calls"
    if heap is not None:
        assert heap < HEAP_BOUND, f"C heap: {heap} bytes more after {ITERATIONS} calls"


def _successful_calls(entry):
    rng = stable_rng("memory", entry.cls)
    args, kwargs = entry.call_args(rng, "small", np.float32)
    og = entry.upstream(rng, args)
    loss = entry.make()

    def call():
        loss(*args, **kwargs)
        loss.gradient(*args, **kwargs, out_grad=og)
        loss.value_and_gradient(*args, **kwargs, out_grad=og)
    return call


@pytest.mark.parametrize("entry", LOSSES, ids=LOSS_IDS)
def test_repeated_calls_do_not_grow_memory(entry):
    assert_no_growth(_successful_calls(entry))


def _raising(loss, args, kwargs, exc):
    def call():
        with pytest.raises(exc):
            loss.value_and_gradient(*args, **kwargs)
    return call


def _bad_calls(entry):
    """Calls of ``entry``'s loss that raise: a label of the wrong size, an
    object-dtype input, an out_grad that does not broadcast."""
    rng = stable_rng("memory-errors", entry.cls)
    args, kwargs = entry.call_args(rng, "small", np.float64)
    loss = entry.make()
    short = [args[0], *[np.asarray(a)[:1] for a in args[1:]]]
    objects = [args[0].astype(object), *args[1:]]
    return [_raising(loss, short, kwargs, ValueError),
            _raising(loss, objects, kwargs, TypeError),
            _raising(loss, args, {**kwargs, "out_grad": np.ones(7)}, ValueError)]


@pytest.mark.parametrize("entry", LOSSES, ids=LOSS_IDS)
def test_repeated_calls_that_raise_do_not_grow_memory(entry):
    calls = _bad_calls(entry)
    assert_no_growth(lambda: [call() for call in calls])


def _cython_validator_errors():
    """Errors found inside the compiled validators, after buffers were allocated:
    CTC labels (_ctc.resolve_labels) and sparse class labels
    (_softmax.class_indices) out of range."""
    rng = stable_rng("memory-validators")
    pred = rng.standard_normal((4, 6, 5))
    label = np.array([[0, 1, -1], [2, 3, 3], [4, 0, -1], [1, -1, -1]])  # 4 is the blank
    logits = rng.standard_normal((30, 7))
    classes = rng.integers(0, 7, 30)
    classes[17] = 7
    return [_raising(gl.CTCLoss(), [pred, label], {}, ValueError),
            _raising(gl.CTCLoss(), [pred, label.astype(np.float32)], {}, ValueError),
            _raising(gl.SoftmaxCrossEntropyLoss(), [logits, classes], {}, ValueError),
            _raising(gl.SoftmaxCrossEntropyLoss(), [logits, classes.astype(np.uint8)], {},
                     ValueError)]


def test_errors_from_the_compiled_validators_do_not_grow_memory():
    calls = _cython_validator_errors()
    assert_no_growth(lambda: [call() for call in calls])


def test_the_bounds_catch_a_small_leak():
    """The smallest leak each measurement is meant to catch is caught."""
    kept = []
    call = _successful_calls(LOSSES[0])

    def leaking_array():
        call()
        kept.append(np.empty(0))
    traced, _ = growth(leaking_array)
    assert traced >= TRACED_BOUND
    if _heap_in_use() is None:
        pytest.skip("no glibc mallinfo2 here")
    kept.clear()
    raw = []
    buffers = ctypes.CDLL(None)
    buffers.malloc.restype = ctypes.c_void_p

    def leaking_kilobyte():                          # as a kernel's forgotten free() would
        call()
        raw.append(buffers.malloc(1024))
    _, heap = growth(leaking_kilobyte)
    assert heap >= HEAP_BOUND
