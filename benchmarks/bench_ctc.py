"""Benchmark CTCLoss against PyTorch's CPU CTC loss.

    python benchmarks/bench_ctc.py [--T 200 --N 32 --C 50 --L 40 --layout TNC]
                                   [--threads 2] [--repeats 15] [--dtype float32]

PyTorch's contender is what a user writes: ``F.ctc_loss`` on
``log_softmax(pred)`` with ``reduction='none'``; forward under ``no_grad``,
and forward + backward through both (the gradient then lands on the raw
activations, like gluonloss's).  Every contender runs in this one process,
interleaved round by round (a noisy neighbour hits all alike), each timed
call right after an untimed one of its own (see time_interleaved_hot); the
table shows medians and ratios.  gluonloss is also timed with one thread to show
its scaling (PyTorch gets ``--threads`` throughout).  Every label has length L
and every sample all T frames.  A last row times ``CTCLoss(blank_label='first')``
on the same batch with the classes rolled by one (blank at class 0, labels + 1)
against the default blank-last loss, interleaved with it: the ratio should be 1.
"""
import argparse
import os
import platform
import statistics
import time

import numpy as np
from bench_elementwise import torch_pair  # shared by every bench

import gluonloss as gl

try:
    import torch
    import torch.nn.functional as F
except ImportError:      # optional peer
    torch = None


def make_batch(rng, n_frames, n, n_classes, label_length, layout, dtype):
    """Activations in ``layout`` and (N, L) labels without repeats' extra frames."""
    shape = (n_frames, n, n_classes) if layout == "TNC" else (n, n_frames, n_classes)
    pred = rng.standard_normal(shape).astype(dtype)
    label = rng.integers(0, n_classes - 1, (n, label_length))
    return pred, label


def contenders(pred, label, layout, threads):
    loss = gl.CTCLoss(layout=layout)

    def with_threads(n, fn):
        def call():
            with gl.num_threads(n):
                return fn()
        return call

    c = {}
    for n in sorted({1, threads}):
        c[f"gl fwd {n}t"] = with_threads(n, lambda: loss(pred, label))
        c[f"gl f+g {n}t"] = with_threads(n, lambda: loss.value_and_gradient(pred, label))
    first = gl.CTCLoss(layout=layout, blank_label="first")
    first_pred, first_label = np.ascontiguousarray(np.roll(pred, 1, axis=2)), label + 1
    c["first fwd"] = with_threads(threads, lambda: first(first_pred, first_label))
    c["first f+g"] = with_threads(threads, lambda: first.value_and_gradient(first_pred,
                                                                             first_label))
    if torch is not None:
        n, n_frames = label.shape[0], pred.shape[0 if layout == "TNC" else 1]
        targets = torch.from_numpy(label)
        input_lengths = torch.full((n,), n_frames, dtype=torch.long)
        target_lengths = torch.full((n,), label.shape[1], dtype=torch.long)
        blank = pred.shape[2] - 1

        def torch_loss(inp):
            log_probs = F.log_softmax(inp, dim=-1)
            if layout == "NTC":              # torch wants (T, N, C)
                log_probs = log_probs.transpose(0, 1)
            return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=blank,
                              reduction="none")

        c["torch fwd"], c["torch f+g"] = torch_pair(torch_loss, [pred], [], n)
    return c


def time_interleaved_hot(calls, repeats):
    """Median seconds per call, all callables timed round-robin; each timed call
    directly follows an untimed call of the same callable.

    On an otherwise idle machine a core left idle for a few milliseconds
    wakes up slowly (~0.3 ms on the 2-core VM this was written on): without
    the untimed call that cost lands on whichever multi-threaded contender
    follows the single-threaded ones.  A training loop keeps its cores busy,
    so steady-state timings are the ones that matter.
    """
    times = {k: [] for k in calls}
    for _ in range(repeats):
        for k, fn in calls.items():
            fn()
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def check_agreement(pred, label, layout):
    """gluonloss and PyTorch compute the same numbers (else the timing means nothing)."""
    if torch is None:
        return "torch absent"
    c = contenders(pred, label, layout, 1)
    out, grad = c["gl f+g 1t"]()
    t_out, (t_grad,) = c["torch f+g"]()
    rel = np.max(np.abs(out - t_out.detach().numpy()) / np.maximum(1, np.abs(out)))
    return (f"max |loss diff| / max(1, |loss|) = {rel:.1e}, "
            f"max |grad diff| = {np.max(np.abs(grad - t_grad.numpy())):.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, default=200, help="frames")
    parser.add_argument("--N", type=int, default=32, help="batch size")
    parser.add_argument("--C", type=int, default=50, help="classes, blank included")
    parser.add_argument("--L", type=int, default=40, help="label length")
    parser.add_argument("--layout", choices=["TNC", "NTC"], default="TNC")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for gluonloss and PyTorch (gluonloss also runs 1)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args()
    if torch is not None:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    pred, label = make_batch(rng, args.T, args.N, args.C, args.L, args.layout,
                             np.dtype(args.dtype))
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} "
          f"CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"numpy {np.__version__}, torch {torch.__version__ if torch else 'absent'}")
    print(f"CTC {args.dtype} {args.layout}: T={args.T} N={args.N} C={args.C} L={args.L}; "
          f"medians of {args.repeats} interleaved rounds, milliseconds; "
          f"{args.threads} thread(s) unless marked")
    print(f"agreement with torch: {check_agreement(pred, label, args.layout)}\n")

    t = {k: v * 1e3 for k, v in time_interleaved_hot(
        contenders(pred, label, args.layout, args.threads), args.repeats).items()}
    n = args.threads
    nan = float("nan")
    print("| | gluonloss 1 thread | gluonloss "
          f"{n} threads | torch {n} threads | torch / gluonloss ({n} threads) "
          f"| gluonloss 1 / {n} threads |")
    print("|---|---:|---:|---:|---:|---:|")
    for what, key in (("forward", "fwd"), ("value_and_gradient", "f+g")):
        one, many = t[f"gl {key} 1t"], t[f"gl {key} {n}t"]
        peer = t.get(f"torch {key}", nan)
        print(f"| {what} | {one:.2f} | {many:.2f} | {peer:.2f} | {peer / many:.2f}x "
              f"| {one / many:.2f}x |")
    print(f"\nblank_label='first' / 'last', {n} threads: forward "
          f"{t['first fwd'] / t[f'gl fwd {n}t']:.3f} ({t['first fwd']:.2f} ms), "
          f"value_and_gradient {t['first f+g'] / t[f'gl f+g {n}t']:.3f} "
          f"({t['first f+g']:.2f} ms)")


if __name__ == "__main__":
    main()
