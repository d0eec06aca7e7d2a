"""Benchmark losses on Dask arrays against the in-memory call.

    python benchmarks/bench_dask.py [--rows 1048576] [--cols 64] [--chunks 16] [--repeats 5]

L2Loss and SigmoidBCELoss ``value_and_gradient`` on a float32 (rows, cols)
array in ``--chunks`` chunks of rows:

- **in memory**: the NumPy call on the whole arrays;
- **threads**: the lazy (out, grad) on the threaded scheduler with 2
  threads: ``dask.persist`` (every block computed, left as a Dask array in
  memory), then ``dask.compute``, results gathered into NumPy arrays (this
  adds Dask's concatenation of the blocks); once as by default (each task
  runs its kernel on one OpenMP thread) and once with ``gl.num_threads(2)``,
  which gives every task's kernel 2 OpenMP threads (4 on 2 cores);
- **cluster, N workers**: a ``dask.distributed.LocalCluster`` of N worker
  processes with one thread each, the inputs persisted on the workers
  beforehand: "persist" leaves (out, grad) on the workers, "gather" also
  ships them to the client.

Contenders of one table run interleaved round by round in this process
(a noisy neighbour hits all alike); the table shows medians and the ratio
to the in-memory call of the same rounds.
"""
import argparse
import os
import platform
import statistics
import time

import numpy as np

import gluonloss as gl


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(contenders, repeats):
    """Median seconds of each contender, run round by round."""
    times = {name: [] for name in contenders}
    for fn in contenders.values():      # warm-up
        fn()
    for _ in range(repeats):
        for name, fn in contenders.items():
            times[name].append(timed(fn))
    return {name: statistics.median(t) for name, t in times.items()}


def make_data(rows, cols, rng):
    pred = rng.standard_normal((rows, cols), dtype=np.float32)
    label = (rng.random((rows, cols), dtype=np.float32) > 0.5).astype(np.float32)
    return pred, label


def print_table(title, medians, reference="in memory"):
    print(f"\n{title}")
    print(f"{'contender':<44} {'median ms':>10} {'/ in memory':>12}")
    for name, seconds in medians.items():
        print(f"{name:<44} {seconds * 1e3:>10.1f} {seconds / medians[reference]:>12.2f}")


def bench_threads(losses, pred, label, chunk_rows, repeats):
    import dask
    import dask.array as da

    dpred = da.from_array(pred, chunks=(chunk_rows, -1))
    dlabel = da.from_array(label, chunks=(chunk_rows, -1))
    for name, loss in losses.items():
        def lazy(loss=loss):
            return loss.value_and_gradient(dpred, dlabel)

        def threads_two_omp_threads():
            with gl.num_threads(2):
                dask.compute(*lazy(), scheduler="threads", num_workers=2)

        contenders = {
            "in memory": lambda loss=loss: loss.value_and_gradient(pred, label),
            "threads (2), blocks left in memory (persist)": lambda: dask.persist(
                *lazy(), scheduler="threads", num_workers=2),
            "threads (2), 1 OpenMP thread per task": lambda: dask.compute(
                *lazy(), scheduler="threads", num_workers=2),
            "threads (2), gl.num_threads(2) in each task": threads_two_omp_threads,
        }
        print_table(f"{name}.value_and_gradient, threaded scheduler",
                    interleaved(contenders, repeats))


def bench_cluster(losses, pred, label, chunk_rows, repeats, n_workers):
    import dask.array as da
    from distributed import Client, LocalCluster, wait

    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None, silence_logs=40,
                      memory_limit=0) as cluster, Client(cluster) as client:
        dpred = client.persist(da.from_array(pred, chunks=(chunk_rows, -1)))
        dlabel = client.persist(da.from_array(label, chunks=(chunk_rows, -1)))
        wait([dpred, dlabel])
        for name, loss in losses.items():
            def persist(loss=loss):
                results = client.persist(list(loss.value_and_gradient(dpred, dlabel)))
                wait(results)
                del results

            def gather(loss=loss):
                client.compute(list(loss.value_and_gradient(dpred, dlabel)), sync=True)

            contenders = {
                "in memory": lambda loss=loss: loss.value_and_gradient(pred, label),
                f"cluster, {n_workers} worker(s): persist": persist,
                f"cluster, {n_workers} worker(s): gather to client": gather,
            }
            print_table(f"{name}.value_and_gradient, LocalCluster with {n_workers} "
                        f"worker process(es) x 1 thread", interleaved(contenders, repeats))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2 ** 20)
    parser.add_argument("--cols", type=int, default=64)
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-cluster", action="store_true")
    args = parser.parse_args()

    import dask
    import distributed

    print(f"gluonloss {gl.__version__}, dask {dask.__version__}, distributed "
          f"{distributed.__version__}, NumPy {np.__version__}, Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{gl.get_num_threads()} OpenMP threads in memory")
    rng = np.random.default_rng(0)
    pred, label = make_data(args.rows, args.cols, rng)
    chunk_rows = -(-args.rows // args.chunks)
    print(f"float32 ({args.rows}, {args.cols}) in {args.chunks} chunks of {chunk_rows} rows; "
          f"median of {args.repeats} interleaved rounds")
    losses = {"L2Loss": gl.L2Loss(), "SigmoidBCELoss": gl.SigmoidBCELoss()}
    bench_threads(losses, pred, label, chunk_rows, args.repeats)
    if not args.skip_cluster:
        for n_workers in (1, 2):
            bench_cluster(losses, pred, label, chunk_rows, args.repeats, n_workers)


if __name__ == "__main__":
    main()
