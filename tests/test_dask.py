"""Every loss on Dask arrays: lazy graphs whose results are bitwise those of
the in-memory call, on the threaded and processes schedulers and on a
dask.distributed cluster of two worker processes (with one killed mid-run);
shape and dtype errors at call time and value errors at compute time, with
the NumPy API's messages."""
import os
import signal
import textwrap
import threading
import time

import numpy as np
import pytest

import gluonloss as gl
from _all_losses import LOSS_IDS, LOSSES
from _cases import stable_rng
from _package_under_test import run_python

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

DTYPES = [np.float32, np.float64]


def uneven(n):
    """Uneven chunk sizes summing to n (one chunk when n < 3)."""
    if n < 3:
        return (n,)
    first = max(1, n // 4)
    second = max(1, (n - first) // 2)
    return (first, second, n - first - second)


def as_dask(x, batch_axis=0, split_other=True):
    """``x`` as a Dask array, unevenly chunked along ``batch_axis`` and split
    in two along every other axis of length > 1."""
    x = np.asarray(x)
    chunks = []
    for axis, n in enumerate(x.shape):
        if axis == batch_axis % max(x.ndim, 1):
            chunks.append(uneven(n))
        elif split_other and n > 1:
            chunks.append((n // 2, n - n // 2))
        else:
            chunks.append((n,))
    return da.from_array(x, chunks=tuple(chunks))


def assert_bitwise(lazy, eager):
    if isinstance(eager, tuple):
        assert isinstance(lazy, tuple) and len(lazy) == len(eager)
        for a, b in zip(lazy, eager, strict=False):
            assert_bitwise(a, b)
        return
    assert isinstance(eager, np.ndarray) and isinstance(lazy, np.ndarray)
    assert lazy.dtype == eager.dtype and lazy.shape == eager.shape
    assert np.array_equal(lazy, eager, equal_nan=True), np.max(np.abs(lazy - eager))
    assert lazy.tobytes() == eager.tobytes()


def three_methods(loss, args, kwargs, out_grad):
    """The calls of forward, gradient and value_and_gradient, as thunks."""
    return [lambda a, k: loss.forward(*a, **k),
            lambda a, k: loss.gradient(*a, **k, out_grad=out_grad),
            lambda a, k: loss.value_and_gradient(*a, **k, out_grad=out_grad)]


# -- every loss, both dtypes, uneven chunks -------------------------------------------

def dask_arguments(entry, args, kwargs, which):
    """Dask versions of the arguments: the first array only ('primary'), or
    every array argument ('all', chunked unevenly along its axis 0)."""
    sdml = entry.cls == "SDMLLoss"
    batch = 1 if entry.cls == "CTCLoss" and entry.kwargs.get("layout") == "TNC" else 0
    dargs = [as_dask(a, batch, split_other=True) if i == 0 else a for i, a in enumerate(args)]
    if sdml:      # SDML's batch must be one chunk
        dargs[0] = dargs[0].rechunk({0: -1})
    dkwargs = dict(kwargs)
    if which == "all":
        dargs = [dargs[0]] + [as_dask(a).rechunk({0: -1}) if sdml else as_dask(a)
                              for a in args[1:]]
        dkwargs = {k: as_dask(v) for k, v in kwargs.items()}
    return dargs, dkwargs


@pytest.mark.parametrize("size", ["small", "many"])
@pytest.mark.parametrize("which", ["primary", "all"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("entry", LOSSES, ids=LOSS_IDS)
def test_every_loss_bitwise_equal_to_the_in_memory_call(entry, dtype, which, size):
    rng = stable_rng("dask", entry.cls, dtype, which, size)
    args, kwargs = entry.call_args(rng, size, dtype)
    loss = entry.make()
    og = entry.upstream(rng, args)
    dargs, dkwargs = dask_arguments(entry, args, kwargs, which)
    dog = as_dask(og) if which == "all" else og
    eager = [call(args, kwargs) for call in three_methods(loss, args, kwargs, og)]
    lazy = [call(dargs, dkwargs) for call in three_methods(loss, dargs, dkwargs, dog)]
    computed = dask.compute(*lazy, scheduler="threads")
    for a, b in zip(computed, eager, strict=False):
        assert_bitwise(a, b)


def leaves(x):
    return [y for z in x for y in leaves(z)] if isinstance(x, tuple) else [x]


# Argument layouts beyond the common (N, ...) with batch axis 0.
LAYOUTS = {
    "L2 batch_axis=1, label in another shape": (
        lambda: gl.L2Loss(weight=0.7, batch_axis=1),
        lambda r, t: ([r.standard_normal((4, 9, 3)).astype(t),
                       r.standard_normal(108).astype(t)],
                      {"sample_weight": r.uniform(0, 2, (1, 9, 1))}),
        lambda r: r.standard_normal(9), 1),
    "SigmoidBCE pos_weight (1, C), sample_weight (C,)": (
        lambda: gl.SigmoidBCELoss(),
        lambda r, t: ([r.standard_normal((11, 6)).astype(t),
                       r.uniform(0, 1, (11, 6)).astype(t)],
                      {"pos_weight": r.uniform(0.5, 3, (1, 6)),
                       "sample_weight": r.uniform(0, 2, 6)}),
        lambda r: r.standard_normal(11), 0),
    "Poisson rates, epsilon, full": (
        lambda: gl.PoissonNLLLoss(from_logits=False, compute_full=True),
        lambda r, t: ([r.uniform(0.1, 3, (10, 5)).astype(t),
                       r.poisson(1.5, (10, 5)).astype(t)], {"epsilon": 1e-3}),
        lambda r: r.standard_normal(10), 0),
    "SoftmaxCE axis=1 (N, C, T), label (N, T)": (
        lambda: gl.SoftmaxCELoss(axis=1),
        lambda r, t: ([r.standard_normal((10, 5, 3)).astype(t),
                       r.integers(0, 5, (10, 3))],
                      {"sample_weight": r.uniform(0, 2, (10, 1, 3))}),
        lambda r: r.standard_normal(10), 0),
    "SoftmaxCE batch_axis=1 (T, N, C), flat label": (
        lambda: gl.SoftmaxCELoss(batch_axis=1),
        lambda r, t: ([r.standard_normal((3, 10, 4)).astype(t),
                       r.integers(0, 4, 30).astype(np.float64)], {}),
        lambda r: r.standard_normal(10), 1),
    "SoftmaxCE dense from_logits": (
        lambda: gl.SoftmaxCELoss(sparse_label=False, from_logits=True),
        lambda r, t: ([r.standard_normal((9, 4)).astype(t),
                       r.dirichlet(np.ones(4), 9).astype(t)], {}),
        lambda r: r.standard_normal(9), 0),
    "SoftmaxCE axis == batch_axis (one sample)": (
        lambda: gl.SoftmaxCELoss(axis=0),
        lambda r, t: ([r.standard_normal(12).astype(t), np.array([3])], {}),
        lambda r: r.standard_normal(1), 0),
    "KLDiv not from logits, sample_weight (1, C)": (
        lambda: gl.KLDivLoss(from_logits=False),
        lambda r, t: ([r.standard_normal((10, 4)).astype(t),
                       r.dirichlet(np.ones(4), 10).astype(t)],
                      {"sample_weight": r.uniform(0, 2, (1, 4))}),
        lambda r: r.standard_normal(10), 0),
    "Triplet batch_axis=1, one sample_weight": (
        lambda: gl.TripletLoss(margin=2, batch_axis=1),
        lambda r, t: ([r.standard_normal((3, 10, 2)).astype(t) for _ in range(3)],
                      {"sample_weight": np.array([[1.5]])}),
        lambda r: r.standard_normal(10), 1),
    "Cosine (A, B, D), flat label": (
        lambda: gl.CosineEmbeddingLoss(margin=0.2),
        lambda r, t: ([r.standard_normal((5, 3, 4)).astype(t),
                       r.standard_normal((5, 3, 4)).astype(t),
                       r.choice([-1, 1], 15)], {"sample_weight": r.uniform(0, 2, (5, 3))}),
        lambda r: r.standard_normal(15), 0),
    "CTC TNC/TN, lengths (N, 1)": (
        lambda: gl.CTCLoss(layout="TNC", label_layout="TN", zero_infinity=False),
        lambda r, t: ([r.standard_normal((8, 7, 5)).astype(t),
                       np.where(np.arange(4)[:, None] < np.arange(7) % 5,
                                r.integers(0, 4, (4, 7)), -1)],
                      {"pred_lengths": r.integers(4, 9, (7, 1)),
                       "label_lengths": np.minimum(np.arange(7) % 5, 4)[:, None]}),
        lambda r: r.standard_normal(7), 1),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layouts_bitwise_equal(layout, dtype):
    make, data, upstream, batch = LAYOUTS[layout]
    rng = stable_rng("layout", layout, dtype)
    loss = make()
    args, kwargs = data(rng, dtype)
    og = upstream(rng)
    dargs = [as_dask(args[0], batch)] + [as_dask(a) for a in args[1:]]
    dkwargs = {k: as_dask(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    # every argument Dask; pred only; everything but pred (blocks from label's chunks)
    for dask_args in ((dargs, dkwargs), (dargs[:1] + args[1:], kwargs),
                      (args[:1] + dargs[1:], dkwargs)):
        eager = [call(args, kwargs) for call in three_methods(loss, args, kwargs, og)]
        lazy = [call(*dask_args) for call in three_methods(loss, *dask_args, as_dask(og))]
        for a, b in zip(dask.compute(*lazy, scheduler="threads"), eager, strict=False):
            assert_bitwise(a, b)


# -- the graph: lazy, chunked like pred, one kernel call per block -------------------

def test_nothing_is_computed_until_asked():
    calls = []

    def counted(block):
        calls.append(block.shape)
        return block

    x = da.from_array(np.ones((12, 4)), chunks=(5, 4)).map_blocks(counted)
    calls.clear()                         # map_blocks tried it on empty meta arrays
    loss = gl.SigmoidBCELoss()
    out, grad = loss.value_and_gradient(x, x, sample_weight=x[:, :1])
    assert calls == [] and isinstance(out, da.Array) and isinstance(grad, da.Array)
    out.compute()
    assert calls


def test_output_chunks_follow_the_batch_axis():
    rng = stable_rng("chunks")
    pred = da.from_array(rng.standard_normal((6, 13, 4)), chunks=(3, (2, 6, 5), 2))
    loss = gl.L1Loss(batch_axis=1)
    out, grad = loss.value_and_gradient(pred, np.zeros((6, 13, 4)))
    assert out.chunks == ((2, 6, 5),)
    assert grad.chunks == ((6,), (2, 6, 5), (4,))      # other axes: one chunk
    ctc = gl.CTCLoss(layout="TNC")
    pred = da.from_array(np.zeros((5, 9, 3)), chunks=(2, (4, 5), 3))
    out = ctc(pred, da.from_array(np.zeros((9, 2), int), chunks=3))
    assert out.chunks == ((4, 5),)
    pairs = gl.TripletLoss().gradient(*(da.ones((7, 3), chunks=(3, 2)),) * 3)
    assert [g.chunks for g in pairs] == [((3, 3, 1), (3,))] * 3


def test_value_and_gradient_is_one_kernel_call_per_block(monkeypatch):
    import gluonloss.elementwise as module

    kernels = module._elementwise
    calls = []

    class Counting:
        def __getattr__(self, name):
            return getattr(kernels, name)

        def elementwise(self, **kwargs):
            calls.append(kwargs["grad"].shape)
            return kernels.elementwise(**kwargs)

    fast_entry = module._ElementwiseLoss._fast_entry

    def counting_fast_entry(*args):
        result = fast_entry(*args)
        if result is not None:      # the common call, computed in one step
            calls.append(result[1].shape)
        return result

    monkeypatch.setattr(module, "_elementwise", Counting())
    monkeypatch.setattr(module._ElementwiseLoss, "_fast_entry", staticmethod(counting_fast_entry))
    pred = da.from_array(np.ones((10, 3), np.float32), chunks=((4, 4, 2), 3))
    out, grad = gl.L2Loss().value_and_gradient(pred, pred)
    calls.clear()                    # the call-time check on one-sample stand-ins
    dask.compute(out, grad, scheduler="sync")
    assert sorted(calls) == [(2, 3), (4, 3), (4, 3)]
    shared = set(out.dask.layers) & set(grad.dask.layers)
    assert any(name.startswith("gluonloss-L2Loss-value_and_gradient") for name in shared)


def test_numpy_arguments_never_import_dask(tmp_path):
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import gluonloss as gl
        p, q = np.ones((4, 3)), np.zeros((4, 3))
        for loss in (gl.L2Loss(), gl.SigmoidBCELoss(), gl.SoftmaxCELoss()):
            label = np.zeros(4, int) if isinstance(loss, gl.SoftmaxCELoss) else q
            loss(p, label); loss.gradient(p, label); loss.value_and_gradient(p, label)
        gl.TripletLoss().value_and_gradient(p, q, p)
        gl.CosineEmbeddingLoss().value_and_gradient(p, q + 1, np.ones(4))
        gl.SDMLLoss()(p, q)
        gl.CTCLoss()(np.zeros((2, 5, 3)), np.zeros((2, 2)))
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed")))
    """)
    result = run_python(["-c", code], cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- errors ---------------------------------------------------------------------------

def numpy_error(call, *args, **kwargs):
    with pytest.raises((ValueError, TypeError)) as info:
        call(*args, **kwargs)
    return info.type, str(info.value)


CALL_TIME_ERRORS = {
    "label size": (gl.L2Loss(), [np.zeros((6, 4)), np.zeros((6, 5))], {}),
    "sample_weight broadcast": (gl.L1Loss(), [np.zeros((6, 4)), np.zeros((6, 4))],
                                {"sample_weight": np.zeros((6, 2))}),
    "complex pred": (gl.HuberLoss(), [np.zeros((6, 4), complex), np.zeros((6, 4))], {}),
    "batch_axis out of range": (gl.L2Loss(batch_axis=2), [np.zeros((6, 4)),
                                                          np.zeros((6, 4))], {}),
    "out_grad shape": (gl.LogisticLoss(), [np.zeros((6, 4)), np.zeros((6, 4))],
                       {"out_grad": np.zeros(5)}),
    "KLDiv axis == batch_axis": (gl.KLDivLoss(axis=0), [np.zeros((6, 4)),
                                                        np.zeros((6, 4))], {}),
    "sparse label count": (gl.SoftmaxCELoss(), [np.zeros((6, 4)), np.zeros(5)], {}),
    "no classes": (gl.SoftmaxCELoss(), [np.zeros((6, 0)), np.zeros(6)], {}),
    "triplet sample_weight": (gl.TripletLoss(), [np.zeros((6, 4))] * 3,
                              {"sample_weight": np.zeros(3)}),
    "cosine label count": (gl.CosineEmbeddingLoss(), [np.zeros((6, 4)), np.zeros((6, 4)),
                                                     np.ones(5)], {}),
    "sdml shapes": (gl.SDMLLoss(), [np.zeros((6, 4)), np.zeros((6, 3))], {}),
    "sdml one row": (gl.SDMLLoss(), [np.zeros((1, 4)), np.zeros((1, 4))], {}),
    "ctc pred 2-D": (gl.CTCLoss(), [np.zeros((6, 4)), np.zeros((6, 2))], {}),
    "ctc label samples": (gl.CTCLoss(), [np.zeros((6, 5, 4)), np.zeros((5, 2))], {}),
    "ctc lengths count": (gl.CTCLoss(), [np.zeros((6, 5, 4)), np.zeros((6, 2))],
                          {"pred_lengths": np.ones(4)}),
}


@pytest.mark.parametrize("case", list(CALL_TIME_ERRORS))
def test_shape_and_dtype_errors_at_call_time_with_the_numpy_message(case):
    loss, args, kwargs = CALL_TIME_ERRORS[case]
    expected = numpy_error(loss.value_and_gradient, *args, **kwargs)
    for which in range(len(args) + len(kwargs)):
        dargs = [as_dask(a) if i == which else a for i, a in enumerate(args)]
        dkwargs = {k: as_dask(v) if i + len(args) == which else v
                   for i, (k, v) in enumerate(kwargs.items())}
        if not any(isinstance(a, da.Array) for a in dargs + list(dkwargs.values())):
            continue
        assert numpy_error(loss.value_and_gradient, *dargs, **dkwargs) == expected


def two_blocks(x, first=3):
    x = np.asarray(x)
    return da.from_array(x, chunks=((first, x.shape[0] - first),) + x.shape[1:])


def compute_error(lazy):
    with pytest.raises(ValueError) as info:
        dask.compute(lazy, scheduler="threads")
    return str(info.value)


def test_value_errors_raise_at_compute_time_with_the_numpy_message():
    rng = stable_rng("value errors")
    label = rng.integers(0, 4, (7, 2))
    label[5, 1] = 4                                          # in the second block
    pred = rng.standard_normal((7, 4, 2))
    loss = gl.SoftmaxCELoss(axis=1)
    expected = numpy_error(loss, pred, label)[1]
    assert compute_error(loss(two_blocks(pred), label)) == expected
    assert compute_error(loss(pred, two_blocks(label))) == expected
    flat = label.reshape(-1)
    assert compute_error(loss(two_blocks(pred), flat)) == numpy_error(loss, pred, flat)[1]

    cosine = gl.CosineEmbeddingLoss()
    x = rng.standard_normal((3, 4, 5))
    signs = rng.choice([-1, 1], (3, 4))
    signs[2, 1] = 0
    assert compute_error(cosine(two_blocks(x, 1), x, signs)) == numpy_error(
        cosine, x, x, signs)[1]

    ctc = gl.CTCLoss(layout="TNC", label_layout="TN")
    pred = np.zeros((6, 7, 4))
    label = np.zeros((3, 7))
    label[1, 5] = 3                                          # the blank
    dpred = da.from_array(pred, chunks=(6, (4, 3), 4))
    assert compute_error(ctc(dpred, label)) == numpy_error(ctc, pred, label)[1]
    label[1, 5] = -1
    lengths = np.full((7, 1), 2.0)
    assert compute_error(ctc(dpred, label, label_lengths=lengths)) == numpy_error(
        ctc, pred, label, label_lengths=lengths)[1]
    lengths[6, 0] = np.nan
    assert compute_error(ctc(dpred, np.zeros((3, 7)), pred_lengths=lengths)) == numpy_error(
        ctc, pred, np.zeros((3, 7)), pred_lengths=lengths)[1]
    assert "label_lengths[5]" in numpy_error(ctc, pred, label,
                                             label_lengths=np.full((7, 1), 2.0))[1]


def test_sdml_refuses_a_batch_in_several_chunks():
    x = np.random.default_rng(0).standard_normal((8, 3))
    loss = gl.SDMLLoss()
    for x1, x2 in ((two_blocks(x), x), (x, two_blocks(x)), (two_blocks(x), two_blocks(x))):
        with pytest.raises(ValueError, match=r"SDMLLoss couples .* rechunk it to one chunk"):
            loss.value_and_gradient(x1, x2)
    one = da.from_array(x, chunks=(8, 2))
    assert_bitwise(loss(one, one).compute(), loss(x, x))


def test_empty_blocks_and_unconvertible_arguments():
    pred = da.from_array(np.arange(15.0).reshape(5, 3), chunks=((2, 0, 3), 3))
    label = np.ones((5, 3))
    out, grad = gl.L2Loss().value_and_gradient(pred, label)
    assert out.chunks == ((2, 0, 3),)
    assert_bitwise(dask.compute(out, grad),
                   tuple(gl.L2Loss().value_and_gradient(pred.compute(), label)))
    ragged = [[1.0, 2.0], [3.0]]
    for args in ((pred, ragged), (ragged, pred)):
        expected = numpy_error(gl.L2Loss(), *(np.ones((5, 3)) if isinstance(a, da.Array)
                                              else a for a in args))
        assert numpy_error(gl.L2Loss(), *args) == expected


def test_unknown_chunk_sizes_are_refused():
    x = da.from_array(np.arange(12.0).reshape(6, 2), chunks=3)
    unknown = x[x[:, 0] > 3]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        gl.L2Loss()(unknown, unknown)


# -- other schedulers -------------------------------------------------------------------

def all_losses_lazy_and_eager(size="small"):
    lazy, eager = [], []
    for entry in LOSSES:
        for dtype in DTYPES:
            rng = stable_rng("schedulers", entry.cls, dtype)
            args, kwargs = entry.call_args(rng, size, dtype)
            loss = entry.make()
            og = entry.upstream(rng, args)
            dargs, dkwargs = dask_arguments(entry, args, kwargs, "all")
            eager.append(loss.value_and_gradient(*args, **kwargs, out_grad=og))
            lazy.append(loss.value_and_gradient(*dargs, **dkwargs, out_grad=as_dask(og)))
    return lazy, eager


def test_processes_scheduler():
    lazy, eager = all_losses_lazy_and_eager()
    for a, b in zip(dask.compute(*lazy, scheduler="processes", num_workers=2), eager, strict=False):
        assert_bitwise(a, b)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  worker_dashboard_address=None, protocol="tcp://",
                                  silence_logs=40, timeout=60) as local:
        with distributed.Client(local, timeout=60) as client:
            yield local, client


def test_distributed_cluster(cluster):
    _, client = cluster
    lazy, eager = all_losses_lazy_and_eager()
    futures = client.compute(lazy)
    distributed.wait(futures, timeout=120)
    for a, b in zip(client.gather(futures, errors="raise"), eager, strict=False):
        assert_bitwise(a, b)


def slow_copy(block):
    time.sleep(0.05)
    return block.copy()


def test_worker_killed_mid_computation(cluster):
    """Kill one worker process while blocks run: its tasks are pure, re-run
    elsewhere, and the result is still bitwise equal."""
    local, client = cluster
    rng = stable_rng("fault")
    pred = rng.standard_normal((400, 16)).astype(np.float32)
    label = rng.standard_normal((400, 16)).astype(np.float32)
    dpred = da.from_array(pred, chunks=(10, 16)).map_blocks(slow_copy)
    out, grad = gl.HuberLoss().value_and_gradient(dpred, label)
    expected = gl.HuberLoss().value_and_gradient(pred, label)
    futures = client.compute([out, grad])
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 30
    while not any(client.processing().values()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.3)                       # a few blocks done, others running
    assert not all(f.done() for f in futures)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    distributed.wait(futures, timeout=120)
    results = client.gather(futures)
    assert_bitwise(tuple(results), expected)
    client.wait_for_workers(2, timeout=60)          # the nanny restarts it
    assert victim not in client.run(os.getpid).values()


def test_threads_in_blocks_do_not_change_results():
    pred = np.random.default_rng(3).standard_normal((40_000, 3))
    dpred = da.from_array(pred, chunks=13_000)
    with gl.num_threads(1):
        one = gl.LogisticLoss().value_and_gradient(pred, pred > 0)
    results = []
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        results.append(dask.compute(*gl.LogisticLoss().value_and_gradient(dpred, pred > 0),
                                    scheduler="threads", num_workers=3))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for result in results:
        assert_bitwise(result, one)


def test_tasks_run_their_kernels_on_one_thread_unless_set():
    seen = []

    class Probe(gl.L2Loss):        # subclasses keep the Dask path
        def forward(self, pred, label, sample_weight=None):
            seen.append(gl.get_num_threads())
            return super().forward(pred, label, sample_weight)

    pred = da.ones((6, 2), chunks=2)
    out = Probe()(pred, pred)
    seen.clear()
    dask.compute(out, scheduler="threads")
    assert seen == [1, 1, 1]
    with gl.num_threads(3):
        seen.clear()
        dask.compute(out, scheduler="threads")
        assert seen == [3, 3, 3]
    assert gl.get_num_threads() >= 1


def test_array_expression_mode(tmp_path):
    """Dask's query-planning arrays (a future default) take the same path."""
    code = textwrap.dedent("""
        import dask, dask.array as da, numpy as np, gluonloss as gl
        assert da.array_expr_enabled()
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((11, 4)), rng.standard_normal((11, 4))
        dx = da.from_array(x, chunks=((3, 5, 3), (2, 2)))
        for loss, label in ((gl.HuberLoss(), y), (gl.SoftmaxCELoss(), np.arange(11) % 4),
                            (gl.TripletLoss(), y)):
            args = (label, x) if isinstance(loss, gl.TripletLoss) else (label,)
            lazy = loss.value_and_gradient(dx, *args)
            eager = loss.value_and_gradient(x, *args)
            for a, b in zip(dask.compute(*lazy[:1], *(lazy[1] if isinstance(lazy[1], tuple)
                                                       else (lazy[1],))),
                            (eager[0], *(eager[1] if isinstance(eager[1], tuple)
                                         else (eager[1],)))):
                assert a.tobytes() == b.tobytes()
        print("ok")
    """)
    result = run_python(["-c", code], cwd=tmp_path, timeout=120,
                        extra_env={"DASK_ARRAY__QUERY_PLANNING": "True"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
