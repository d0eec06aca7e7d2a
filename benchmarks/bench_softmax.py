"""Benchmark the softmax family against PyTorch (and a NumPy/SciPy composite).

    python benchmarks/bench_softmax.py [--shape 4096 1000] [--repeats 15] [--threads N]

Every contender runs in this one process, interleaved round by round, and the
table shows medians and ratios (peer time / gluonloss time: > 1 means
gluonloss is faster).  Rows:

* SoftmaxCELoss, sparse labels: forward, and forward + gradient against
  ``F.cross_entropy(reduction='none')`` + backward;
* SoftmaxCELoss, dense labels: against ``F.cross_entropy`` with probability
  targets;
* KLDivLoss(from_logits=False): against ``F.kl_div(F.log_softmax(p), y,
  reduction='none').mean(1)`` + backward, and against gluonloss's own dense
  SoftmaxCELoss (KL may cost at most 1.3x the dense cross-entropy);
* the call overhead on a (32, 10) batch.

PyTorch is optional; its columns are NaN without it.

``--options`` prints instead the cost of SoftmaxCELoss's options
(``class_weight``, ``ignore_label``, ``label_smoothing``, and all three
together) relative to the plain loss on the same batch, forward and
forward + gradient, sparse and dense labels: medians of interleaved rounds
and the ratio option time / plain time (1.10 = 10% slower).  The
``ignore_label`` rows ignore no position (``--ignored`` sets the fraction),
so every row is computed as in the plain loss.
"""
import argparse
import platform

import numpy as np
from bench_elementwise import time_interleaved, torch_pair, use_threads  # shared
from scipy.special import log_softmax, softmax

import gluonloss as gl

try:
    import torch
    import torch.nn.functional as F
except ImportError:      # optional peer
    torch = None


def make_inputs(rng, shape, dtype):
    pred = (rng.standard_normal(shape) * 3).astype(dtype)
    classes = rng.integers(0, shape[1], shape[0])
    dist = softmax(rng.standard_normal(shape), axis=1).astype(dtype)
    return pred, classes, dist


def numpy_ce(p, y, grad):
    """What a user would write with SciPy: sparse CE, optionally its gradient."""
    lp = log_softmax(p, axis=1)
    rows = np.arange(p.shape[0])
    out = -lp[rows, y]
    if not grad:
        return out
    g = np.exp(lp)
    g[rows, y] -= 1
    return out, g


def contenders(name, pred, classes, dist):
    """Zero-argument callables for one row of the table."""
    if name == "SoftmaxCELoss(sparse)":
        loss, label = gl.SoftmaxCELoss(), classes
    elif name == "SoftmaxCELoss(dense)":
        loss, label = gl.SoftmaxCELoss(sparse_label=False), dist
    else:
        loss, label = gl.KLDivLoss(from_logits=False), dist
    calls = {
        "gl fwd": lambda: loss(pred, label),
        "gl f+g": lambda: loss.value_and_gradient(pred, label),
    }
    if name == "SoftmaxCELoss(sparse)":
        calls["np f+g"] = lambda: numpy_ce(pred, classes, True)
    if name == "KLDivLoss(from_logits=False)":
        ce_dense = gl.SoftmaxCELoss(sparse_label=False)
        calls["gl CE dense f+g"] = lambda: ce_dense.value_and_gradient(pred, dist)
    if torch is not None:
        if name == "SoftmaxCELoss(sparse)":
            ty = torch.from_numpy(classes)

            def fn(p):
                return F.cross_entropy(p, ty, reduction="none")
        elif name == "SoftmaxCELoss(dense)":
            ty = torch.from_numpy(dist)

            def fn(p):
                return F.cross_entropy(p, ty, reduction="none")
        else:
            ty = torch.from_numpy(dist)

            def fn(p):
                return F.kl_div(F.log_softmax(p, dim=1), ty, reduction="none").mean(1)
        calls["torch fwd"], calls["torch f+g"] = torch_pair(fn, [pred], [], pred.shape[0])
    return calls


def option_losses(n_classes):
    """Row name -> SoftmaxCELoss, sparse then dense, each option alone and together."""
    weights = np.random.default_rng(1).uniform(0.5, 2.0, n_classes)
    sparse = {
        "sparse plain": {},
        "sparse class_weight": {"class_weight": weights},
        "sparse ignore_label": {"ignore_label": -100},
        "sparse label_smoothing": {"label_smoothing": 0.1},
        "sparse all three": {"class_weight": weights, "ignore_label": -100,
                             "label_smoothing": 0.1},
    }
    dense = {
        "dense plain": {},
        "dense class_weight": {"class_weight": weights},
        "dense label_smoothing": {"label_smoothing": 0.1},
        "dense both": {"class_weight": weights, "label_smoothing": 0.1},
    }
    return ({name: gl.SoftmaxCELoss(**kw) for name, kw in sparse.items()},
            {name: gl.SoftmaxCELoss(sparse_label=False, **kw) for name, kw in dense.items()})


def option_table(pred, classes, dist, repeats, ignored):
    """Print the option-cost table: each option against the plain loss."""
    classes = classes.copy()
    if ignored:
        rng = np.random.default_rng(2)
        classes[rng.random(classes.size) < ignored] = -100
    plain_classes = np.where(classes < 0, 0, classes)
    sparse, dense = option_losses(pred.shape[1])
    print("| loss | fwd ms | f+g ms | fwd / plain | f+g / plain |")
    print("|---|---|---|---|---|")
    for losses in (sparse, dense):
        calls = {}
        for name, loss in losses.items():
            # -100 marks the ignored positions; the losses without ignore_label
            # get class 0 there.
            label = (dist if not loss._sparse_label
                     else classes if loss.ignore_label is not None else plain_classes)
            calls[(name, "fwd")] = lambda loss=loss, label=label: loss(pred, label)
            calls[(name, "f+g")] = lambda loss=loss, label=label: loss.value_and_gradient(
                pred, label)
        t = {k: v * 1e3 for k, v in time_interleaved(calls, repeats).items()}
        plain = next(iter(losses))
        for name in losses:
            fwd, fg = t[(name, "fwd")], t[(name, "f+g")]
            print(f"| {name} | {fwd:.3f} | {fg:.3f} | {fwd / t[(plain, 'fwd')]:.3f} | "
                  f"{fg / t[(plain, 'f+g')]:.3f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, default=[4096, 1000], metavar=("N", "C"))
    parser.add_argument("--small-shape", type=int, nargs=2, default=[32, 10], metavar=("N", "C"))
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--small-repeats", type=int, default=3000)
    parser.add_argument("--threads", type=int, help="threads for gluonloss and PyTorch")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--overhead-only", action="store_true",
                        help="only the small-batch call-overhead rows")
    parser.add_argument("--options", action="store_true",
                        help="the option-cost table of SoftmaxCELoss instead")
    parser.add_argument("--ignored", type=float, default=0.0,
                        help="fraction of ignored positions in the ignore_label rows")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    threads = use_threads(args.threads)
    shape = tuple(args.shape)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {threads} thread(s); "
          f"numpy {np.__version__}, torch {torch.__version__ if torch else 'absent'}")
    rng = np.random.default_rng(0)
    if args.overhead_only:
        call_overhead(rng, tuple(args.small_shape), dtype, args.small_repeats)
        return
    print(f"{dtype} {shape}, medians of {args.repeats} interleaved rounds, milliseconds; "
          f"ratios are peer time / gluonloss time\n")

    pred, classes, dist = make_inputs(rng, shape, dtype)
    if args.options:
        option_table(pred, classes, dist, args.repeats, args.ignored)
        return
    nan = float("nan")
    cols = ["gl fwd", "gl f+g", "torch fwd", "torch f+g", "torch/gl fwd", "torch/gl f+g",
            "other"]
    print("| loss | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name in ("SoftmaxCELoss(sparse)", "SoftmaxCELoss(dense)", "KLDivLoss(from_logits=False)"):
        t = {k: v * 1e3 for k, v in time_interleaved(
            contenders(name, pred, classes, dist), args.repeats).items()}
        if "np f+g" in t:
            other = f"numpy/gl f+g {t['np f+g'] / t['gl f+g']:.2f}"
        elif "gl CE dense f+g" in t:
            other = f"KL/CE-dense f+g {t['gl f+g'] / t['gl CE dense f+g']:.2f}"
        else:
            other = ""
        row = [t["gl fwd"], t["gl f+g"], t.get("torch fwd", nan), t.get("torch f+g", nan),
               t.get("torch fwd", nan) / t["gl fwd"], t.get("torch f+g", nan) / t["gl f+g"]]
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row) + f" | {other} |")

    call_overhead(rng, tuple(args.small_shape), dtype, args.small_repeats)


def call_overhead(rng, small, dtype, repeats):
    """A small batch, where the call costs more than the arithmetic: the
    forward against PyTorch's (the target: at most half its time)."""
    p, y, _ = make_inputs(rng, small, dtype)
    loss = gl.SoftmaxCELoss()
    y32 = y.astype(np.int32)
    calls = {"loss(p, y)": lambda: loss(p, y),
             "loss(p, y.astype(int32))": lambda: loss(p, y32),
             "loss.value_and_gradient(p, y)": lambda: loss.value_and_gradient(p, y)}
    if torch is not None:
        tp, ty = torch.from_numpy(p), torch.from_numpy(y)

        def torch_small():
            with torch.no_grad():
                return F.cross_entropy(tp, ty, reduction="none")

        calls["F.cross_entropy (no_grad)"] = torch_small
    t = time_interleaved(calls, repeats)
    print(f"\ncall overhead, {small} {dtype}, microseconds (medians of {repeats}):")
    for k, v in t.items():
        print(f"  {k:<32} {v * 1e6:8.2f}")
    if torch is not None:
        ratio = t["loss(p, y)"] / t["F.cross_entropy (no_grad)"]
        print(f"  gl fwd / torch fwd: {ratio:.2f} (target <= 0.5)")


if __name__ == "__main__":
    main()
