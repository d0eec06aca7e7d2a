"""Benchmark the elementwise losses against NumPy/SciPy, PyTorch and MXNet.

    python benchmarks/bench_elementwise.py [--shape 4096 1024] [--repeats 15]

Every contender runs in this one process, interleaved round by round (so a
noisy neighbour hits all of them alike); the table shows medians and ratios.
PyTorch and MXNet are optional and skipped when they cannot be imported.
Also timed: the call overhead on a (32, 10) batch, and the memory-bandwidth
floor of ``value_and_gradient``: a vectorised OpenMP C loop (``_floor.c``,
compiled here with the system C compiler, ``-O3 -fopenmp -march=native``)
that reads pred and label and writes one array of the same size, on the same
thread count.  Its "fresh output" row allocates that array on every call, as
``value_and_gradient`` must for the gradient it returns; it is the reference
of the ``f+g/floor`` column.  Without a working C compiler the NumPy pass
``pred + label`` stands in (and the table says so).  The floor is timed once
on its own, and again inside every loss's rounds, interleaved with that
loss's contenders, just before gluonloss's fwd+grad: ``f+g/floor`` divides
by the latter, so both sides of the ratio run in the same conditions (after
a call that leaves no PyTorch worker threads spinning).
"""
import argparse
import ctypes
import functools
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from scipy.special import expit, log_expit

import gluonloss as gl
from _data import elementwise_data

DTYPE = np.dtype(np.float32)   # set from --dtype

try:
    import torch
    import torch.nn.functional as F
except ImportError:      # optional peer
    torch = None
try:
    import mxnet
except ImportError:      # optional peer (needs NumPy < 1.24: usually its own venv)
    mxnet = None


# -- the NumPy composites a user would write by hand (forward, forward+gradient) --

def np_l2(p, y, grad):
    d = p - y
    out = 0.5 * np.mean(d * d, axis=1)
    return (out, d / p.shape[1]) if grad else out


def np_l1(p, y, grad):
    d = p - y
    out = np.mean(np.abs(d), axis=1)
    return (out, np.sign(d) / p.shape[1]) if grad else out


def np_huber(p, y, grad, rho=1.0):
    d = p - y
    a = np.abs(d)
    out = np.mean(np.where(a > rho, a - 0.5 * rho, 0.5 / rho * d * d), axis=1)
    return (out, np.where(a > rho, np.sign(d), d / rho) / p.shape[1]) if grad else out


def np_hinge(p, y, grad, margin=1.0):
    t = margin - p * y
    out = np.mean(np.maximum(t, 0), axis=1)
    return (out, np.where(t > 0, -y, 0) / p.shape[1]) if grad else out


def np_sqhinge(p, y, grad, margin=1.0):
    h = np.maximum(margin - p * y, 0)
    out = np.mean(h * h, axis=1)
    return (out, -2 * y * h / p.shape[1]) if grad else out


def np_bce(p, y, grad):
    out = -np.mean(y * log_expit(p) + (1 - y) * log_expit(-p), axis=1)
    return (out, (expit(p) - y) / p.shape[1]) if grad else out


def np_bce_prob(p, y, grad, eps=1e-12):
    out = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps), axis=1)
    return (out, (-y / (p + eps) + (1 - y) / (1 - p + eps)) / p.shape[1]) if grad else out


# -- PyTorch: the same formulas, forward and forward + backward ----------------------

def torch_losses():
    return {
        "L2Loss": lambda p, y: 0.5 * F.mse_loss(p, y, reduction="none").mean(1),
        "L1Loss": lambda p, y: F.l1_loss(p, y, reduction="none").mean(1),
        "HuberLoss": lambda p, y: F.smooth_l1_loss(p, y, reduction="none", beta=1.0).mean(1),
        "HingeLoss": lambda p, y: torch.clamp(1 - p * y, min=0).mean(1),
        "SquaredHingeLoss": lambda p, y: torch.clamp(1 - p * y, min=0).square().mean(1),
        "LogisticLoss": lambda p, y: F.binary_cross_entropy_with_logits(
            p, y, reduction="none").mean(1),
        "SigmoidBCELoss": lambda p, y: F.binary_cross_entropy_with_logits(
            p, y, reduction="none").mean(1),
        "SigmoidBCELoss(from_sigmoid)": lambda p, y: F.binary_cross_entropy(
            p, y, reduction="none").mean(1),
    }


# name: (gluonloss loss, numpy composite, pred kind, label kind)
LOSSES = {
    "L2Loss": (gl.L2Loss(), np_l2, "real", "real"),
    "L1Loss": (gl.L1Loss(), np_l1, "real", "real"),
    "HuberLoss": (gl.HuberLoss(), np_huber, "real", "real"),
    "HingeLoss": (gl.HingeLoss(), np_hinge, "real", "signed"),
    "SquaredHingeLoss": (gl.SquaredHingeLoss(), np_sqhinge, "real", "signed"),
    "LogisticLoss": (gl.LogisticLoss(label_format="binary"), np_bce, "real", "binary"),
    "SigmoidBCELoss": (gl.SigmoidBCELoss(), np_bce, "real", "prob"),
    "SigmoidBCELoss(from_sigmoid)": (gl.SigmoidBCELoss(from_sigmoid=True), np_bce_prob,
                                     "prob", "prob"),
}


def torch_pair(fn, differentiable, other, n_out):
    """(forward under no_grad, forward + backward with ones) of the torch function
    ``fn(*differentiable, *other)`` over torch views of the NumPy inputs."""
    tensors = [torch.from_numpy(x).requires_grad_(True) for x in differentiable]
    rest = [torch.from_numpy(np.asarray(x)) for x in other]
    ones = torch.ones(n_out, dtype=tensors[0].dtype)

    def forward():
        with torch.no_grad():
            return fn(*tensors, *rest)

    def forward_backward():
        for t in tensors:
            t.grad = None
        out = fn(*tensors, *rest)
        out.backward(ones)
        return out, [t.grad for t in tensors]

    return forward, forward_backward


def use_threads(n):
    """Run gluonloss (and PyTorch, when present) on ``n`` threads (None: the
    OpenMP default); return the count in use."""
    if n:
        gl.set_num_threads(n)
    threads = gl.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    return threads


def contenders(name, pred, label):
    """name -> zero-argument callable, for one loss on one batch."""
    loss, composite, _, _ = LOSSES[name]
    c = {
        "gluonloss fwd": lambda: loss(pred, label),
        "gluonloss fwd+grad": lambda: loss.value_and_gradient(pred, label),
        "numpy fwd": lambda: composite(pred, label, False),
        "numpy fwd+grad": lambda: composite(pred, label, True),
    }
    if torch is not None:
        c["torch fwd"], c["torch fwd+grad"] = torch_pair(torch_losses()[name], [pred], [label],
                                                         pred.shape[0])
    if mxnet is not None:
        mx_loss = getattr(mxnet.gluon.loss, name.split("(")[0])(
            **({"from_sigmoid": True} if "from_sigmoid" in name else {}))
        mp, my = mxnet.nd.array(pred), mxnet.nd.array(label)
        mp.attach_grad()

        def mx_fwd():
            return mx_loss(mp, my).wait_to_read()

        def mx_fwd_bwd():
            with mxnet.autograd.record():
                out = mx_loss(mp, my)
            out.backward()
            return mp.grad.wait_to_read()

        c["mxnet fwd"] = mx_fwd
        c["mxnet fwd+grad"] = mx_fwd_bwd
    return c


@functools.cache
def compile_floor():
    """The C floor loop as a ctypes library, or (None, reason) without a compiler."""
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_floor.c")
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc.split()[0]) is None:
        return None, f"no C compiler ({cc!r} not found)"
    build = tempfile.mkdtemp(prefix="gluonloss_floor_")
    lib = os.path.join(build, "floor.so")
    try:
        subprocess.run(cc.split() + ["-O3", "-fopenmp", "-march=native", "-shared", "-fPIC",
                                     source, "-o", lib],
                       check=True, capture_output=True, text=True, timeout=120)
        floor = ctypes.CDLL(lib)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        return None, f"compiling {source} failed: {detail}"
    for name, ctype in (("floor_add_f32", ctypes.c_float), ("floor_add_f64", ctypes.c_double)):
        fn = getattr(floor, name)
        pointer = ctypes.POINTER(ctype)
        fn.argtypes = [pointer, pointer, pointer, ctypes.c_ssize_t, ctypes.c_int]
        fn.restype = None
    return floor, ""


def floor_contenders(pred, label, threads):
    """(name -> callable, name of the reference row) for the bandwidth floor."""
    buf = np.empty_like(pred)
    calls = {"numpy pred + label": lambda: pred + label,
             "numpy np.add(out=)": lambda: np.add(pred, label, out=buf)}
    floor, why_not = compile_floor()
    if floor is None:
        print(f"bandwidth floor: {why_not}; the NumPy pass stands in for the C loop",
              file=sys.stderr)
        return calls, "numpy pred + label"
    fn = floor.floor_add_f32 if pred.dtype == np.float32 else floor.floor_add_f64
    ctype = ctypes.c_float if pred.dtype == np.float32 else ctypes.c_double

    def c_floor(out):
        fn(pred.ctypes.data_as(ctypes.POINTER(ctype)), label.ctypes.data_as(
            ctypes.POINTER(ctype)), out.ctypes.data_as(ctypes.POINTER(ctype)), pred.size,
           threads)
        return out

    calls["C OpenMP loop, fresh output"] = lambda: c_floor(np.empty_like(pred))
    calls["C OpenMP loop, reused output"] = lambda: c_floor(buf)
    return calls, "C OpenMP loop, fresh output"


def time_interleaved(calls, repeats):
    """Median seconds per call, all callables timed round-robin."""
    times = {k: [] for k in calls}
    for fn in calls.values():
        fn()                                  # warm-up
    for _ in range(repeats):
        for k, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, default=[4096, 1024])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--only", nargs="*", help="loss names to run")
    parser.add_argument("--threads", type=int, help="threads for gluonloss and PyTorch")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--overhead-only", action="store_true",
                        help="only the (32, 10) call-overhead rows")
    args = parser.parse_args()
    shape = tuple(args.shape)
    global DTYPE
    DTYPE = np.dtype(args.dtype)
    threads = use_threads(args.threads)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, "
          f"{threads} thread(s); numpy {np.__version__}, "
          f"torch {torch.__version__ if torch else 'absent'}, "
          f"mxnet {mxnet.__version__ if mxnet else 'absent'}")
    rng = np.random.default_rng(0)
    if args.overhead_only:
        call_overhead(rng, max(args.repeats, 2000))
        return
    print(f"{DTYPE} {shape}, medians of {args.repeats} interleaved rounds, milliseconds\n")

    pred, label = elementwise_data(rng, shape, "real", "real", DTYPE)
    calls, reference = floor_contenders(pred, label, threads)
    floor = time_interleaved(calls, args.repeats)
    print("bandwidth floor (read pred and label, write one array), milliseconds:")
    for k, v in floor.items():
        print(f"  {k:<30} {v * 1e3:8.2f}" + ("   <- reference" if k == reference else ""))
    print()

    cols = ["gl fwd", "gl f+g", "np f+g", "torch fwd", "torch f+g", "mx f+g", "floor",
            "f+g/floor", "torch/gl fwd", "torch/gl f+g", "np/gl f+g"]
    print(f"{'loss':<29}" + "".join(f"{c:>13}" for c in cols))
    for name in LOSSES:
        if args.only and name not in args.only:
            continue
        p, y = elementwise_data(rng, shape, LOSSES[name][2], LOSSES[name][3], DTYPE)
        floor_calls, floor_name = floor_contenders(p, y, threads)
        # The floor between gluonloss's forward and its fwd+grad: each of the
        # two follows a call that leaves no other thread pool spinning.
        calls = {}
        for k, fn in contenders(name, p, y).items():
            if k == "gluonloss fwd+grad":
                calls["bandwidth floor"] = floor_calls[floor_name]
            calls[k] = fn
        t = {k: v * 1e3 for k, v in time_interleaved(calls, args.repeats).items()}
        nan = float("nan")
        row = [t["gluonloss fwd"], t["gluonloss fwd+grad"], t["numpy fwd+grad"],
               t.get("torch fwd", nan), t.get("torch fwd+grad", nan), t.get("mxnet fwd+grad", nan),
               t["bandwidth floor"], t["gluonloss fwd+grad"] / t["bandwidth floor"],
               t.get("torch fwd", nan) / t["gluonloss fwd"],
               t.get("torch fwd+grad", nan) / t["gluonloss fwd+grad"],
               t["numpy fwd+grad"] / t["gluonloss fwd+grad"]]
        print(f"{name:<29}" + "".join(f"{v:>13.2f}" for v in row))

    call_overhead(rng, max(args.repeats, 2000))


def call_overhead(rng, repeats):
    """A tiny batch, where the call costs more than the arithmetic: L2Loss
    against the one-liner a user would write (the target: at most half its
    time) and PyTorch's forward."""
    a = rng.standard_normal((32, 10)).astype(DTYPE)
    b = rng.standard_normal((32, 10)).astype(DTYPE)
    loss = gl.L2Loss()
    calls = {
        "loss(a, b)": lambda: loss(a, b),
        "gl.L2Loss()(a, b)": lambda: gl.L2Loss()(a, b),
        "loss.value_and_gradient(a, b)": lambda: loss.value_and_gradient(a, b),
        "0.5*np.square(a-b).mean(1)": lambda: 0.5 * np.square(a - b).mean(1),
    }
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)

        def torch_small():
            with torch.no_grad():
                return 0.5 * F.mse_loss(ta, tb, reduction="none").mean(1)

        calls["torch 0.5*mse_loss.mean(1) (no_grad)"] = torch_small
    small = time_interleaved(calls, repeats)
    print(f"\ncall overhead, (32, 10) {DTYPE}, microseconds (medians of {repeats} "
          f"interleaved rounds):")
    for k, v in small.items():
        print(f"  {k:<38} {v * 1e6:8.2f}")
    ratio = small["loss(a, b)"] / small["0.5*np.square(a-b).mean(1)"]
    print(f"  loss(a, b) / numpy one-liner: {ratio:.2f} (target <= 0.5)")


if __name__ == "__main__":
    main()
