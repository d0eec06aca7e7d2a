"""Benchmark the PyTorch and JAX bridges against each framework's own losses.

    python benchmarks/bench_bridges.py [--repeats 15] [--threads 2] [--only torch|jax]

float32, forward + backward through the bridge against the native op doing
the same work, every contender of a row timed in this one process,
interleaved round by round; the table shows medians (and the best round) and
the ratio native /
bridge (> 1 means the bridge is faster).  Rows:

* ``gluonloss.torch.CTCLoss(layout='TNC')`` against ``F.ctc_loss`` on
  ``log_softmax`` activations with the blank last, T=200, N=32, C=50, L=40;
* ``gluonloss.torch.SoftmaxCELoss`` against ``F.cross_entropy`` at (4096, 1000);
* ``gluonloss.torch.L2Loss`` against ``F.mse_loss(reduction='none').mean(1)``
  at (4096, 1024), and at (32, 10) where the bridge's own cost shows (with
  a bare ``torch.autograd.Function`` around the NumPy call for scale);
* below each gluonloss row, the NumPy API's ``value_and_gradient`` alone on
  the same data: the bridge's time less this is what the bridge adds;
* under ``jax.jit``, ``gluonloss.jax.CTCLoss`` against ``optax.ctc_loss`` and
  ``gluonloss.jax.SoftmaxCELoss`` against
  ``optax.softmax_cross_entropy_with_integer_labels`` (value and gradient).

Every backward pass starts from the same random upstream gradient of shape
(N,), and again, in the rows "mean, loss.backward()", from the mean's
scalar, as in a training step (``reduction='mean'`` for the bridge).
"""
import argparse
import os
import platform
import statistics
import time

import numpy as np

import gluonloss as gl


def time_interleaved(calls, repeats, min_seconds=0.05):
    """(median, best) seconds per call; each round times every callable
    once, over enough calls in a row to last about ``min_seconds``."""
    loops = {}
    for name, fn in calls.items():
        fn()                                            # warm-up
        t0 = time.perf_counter()
        fn()
        loops[name] = max(1, int(min_seconds / max(time.perf_counter() - t0, 1e-9)))
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            times[name].append((time.perf_counter() - t0) / loops[name])
    return {name: (statistics.median(v), min(v)) for name, v in times.items()}


def ctc_data(rng, t=200, n=32, c=50, width=40):
    """TNC activations, labels in [0, C-2] padded with -1, lengths in [L/2, L]."""
    pred = rng.standard_normal((t, n, c)).astype(np.float32)
    lengths = rng.integers(width // 2, width + 1, n)
    label = rng.integers(0, c - 1, (n, width))
    label[np.arange(width) >= lengths[:, None]] = -1
    return pred, label, lengths


# -- PyTorch ------------------------------------------------------------------

def torch_rows(rng, repeats):
    import torch
    import torch.nn.functional as F

    import gluonloss.torch as glt

    def backward_pair(bridge_fn, native_fn, inputs, n):
        """Two callables: forward and backward of each, grads reset; with
        ``n`` the backward starts from a random (N,) upstream gradient, with
        None from the scalar output (a training step's ``loss.backward()``)."""
        tensors = [torch.from_numpy(x).requires_grad_(True) for x in inputs]
        upstream = None if n is None else torch.rand(n, dtype=torch.float32)

        def run(fn):
            def call():
                for x in tensors:
                    x.grad = None
                fn(*tensors).backward(upstream)
            return call
        return run(bridge_fn), run(native_fn)

    rows = []

    pred, label, lengths = ctc_data(rng)
    t_frames, n, c = pred.shape
    ctc = glt.CTCLoss(layout="TNC")
    label_t = torch.from_numpy(label)
    targets = torch.from_numpy(np.where(label < 0, 0, label))
    target_lengths = torch.from_numpy(lengths)
    input_lengths = torch.full((n,), t_frames, dtype=torch.int64)
    bridge, native = backward_pair(
        lambda p: ctc(p, label_t),
        lambda p: F.ctc_loss(F.log_softmax(p, dim=2), targets, input_lengths, target_lengths,
                             blank=c - 1, reduction="none"),
        [pred], n)
    rows.append(("CTCLoss T=200 N=32 C=50 L=40", "F.ctc_loss", bridge, native, 3.0))
    ctc_mean = glt.CTCLoss(layout="TNC", reduction="mean")
    bridge, native = backward_pair(
        lambda p: ctc_mean(p, label_t),
        lambda p: F.ctc_loss(F.log_softmax(p, dim=2), targets, input_lengths, target_lengths,
                             blank=c - 1, reduction="none").mean(), [pred], None)
    rows.append(("  mean, loss.backward()", "F.ctc_loss(...).mean()", bridge, native, 3.0))
    upstream_np = rng.random(n, dtype=np.float32)
    rows.append(("  the NumPy API alone", "", lambda g=upstream_np: gl.CTCLoss(
        layout="TNC").value_and_gradient(pred, label, out_grad=g), None, None))

    logits = (rng.standard_normal((4096, 1000)) * 3).astype(np.float32)
    classes = torch.from_numpy(rng.integers(0, 1000, 4096))
    ce = glt.SoftmaxCELoss()
    bridge, native = backward_pair(
        lambda p: ce(p, classes),
        lambda p: F.cross_entropy(p, classes, reduction="none"), [logits], 4096)
    rows.append(("SoftmaxCELoss (4096, 1000)", "F.cross_entropy", bridge, native, 1.5))
    ce_mean = glt.SoftmaxCELoss(reduction="mean")
    bridge, native = backward_pair(lambda p: ce_mean(p, classes),
                                   lambda p: F.cross_entropy(p, classes), [logits], None)
    rows.append(("  mean, loss.backward()", "F.cross_entropy (mean)", bridge, native, 1.5))
    classes_np, upstream_np = classes.numpy(), rng.random(4096, dtype=np.float32)
    rows.append(("  the NumPy API alone", "", lambda g=upstream_np: gl.SoftmaxCELoss(
        ).value_and_gradient(logits, classes_np, out_grad=g), None, None))

    l2, numpy_l2 = glt.L2Loss(), gl.L2Loss()
    for shape, target in (((4096, 1024), 3.0), ((32, 10), 1 / 1.25)):
        p, y = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
        label_y = torch.from_numpy(y)
        bridge, native = backward_pair(
            lambda p, y=label_y: l2(p, y),
            lambda p, y=label_y: F.mse_loss(p, y, reduction="none").mean(1), [p], shape[0])
        rows.append((f"L2Loss {shape}", "F.mse_loss(...).mean(1)", bridge, native, target))
        l2_mean = glt.L2Loss(reduction="mean")
        bridge, native = backward_pair(
            lambda p, y=label_y: l2_mean(p, y),
            lambda p, y=label_y: F.mse_loss(p, y, reduction="none").mean(1).mean(), [p], None)
        rows.append(("  mean, loss.backward()", "... .mean(1).mean()", bridge, native, target))
        upstream_np = rng.random(shape[0], dtype=np.float32)
        rows.append(("  the NumPy API alone", "", lambda p=p, y=y, g=upstream_np:
                     numpy_l2.value_and_gradient(p, y, out_grad=g), None, None))

    # scale for the bridge's own cost: the least glue around the NumPy call

    class BareFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, p, y):
            out, grad = numpy_l2.value_and_gradient(p.detach().numpy(), y.numpy())
            ctx.grad = torch.from_numpy(grad)
            return torch.from_numpy(out)

        @staticmethod
        def backward(ctx, upstream):
            return ctx.grad * upstream[:, None], None

    p, y = (rng.standard_normal((32, 10)).astype(np.float32) for _ in range(2))
    label_y = torch.from_numpy(y)
    bare, native = backward_pair(
        lambda p: BareFunction.apply(p, label_y),
        lambda p: F.mse_loss(p, label_y, reduction="none").mean(1), [p], 32)
    rows.append(("bare autograd.Function (32, 10)", "F.mse_loss(...).mean(1)", bare, native,
                 None))

    results = []
    for name, peer, bridge, native, target in rows:
        if native is None:
            t = time_interleaved({"bridge": bridge}, repeats)
            results.append((name, peer, t["bridge"], (None, None), None))
            continue
        t = time_interleaved({"bridge": bridge, "native": native}, repeats)
        results.append((name, peer, t["bridge"], t["native"], target))
    return results


# -- JAX ------------------------------------------------------------------------

def jax_rows(rng, repeats):
    import jax
    import jax.numpy as jnp
    import optax

    import gluonloss.jax as glj

    rows = []
    pred, label, lengths = ctc_data(rng)
    t_frames, n, c = pred.shape
    logits = jnp.asarray(pred.transpose(1, 0, 2).copy())          # NTC for both
    label_nt = jnp.asarray(label)
    upstream = jnp.asarray(rng.random(n, dtype=np.float32))
    ctc = glj.CTCLoss()
    logit_paddings = jnp.zeros((n, t_frames), jnp.float32)
    label_paddings = jnp.asarray((label < 0).astype(np.float32))
    optax_labels = jnp.asarray(np.where(label < 0, 0, label))

    def vjp_of(fn, x, upstream):
        """jit of value and vector-Jacobian product with ``upstream``."""
        def value_and_grad(x):
            out, pullback = jax.vjp(fn, x)
            return out, pullback(upstream)[0]
        jitted = jax.jit(value_and_grad)
        return lambda: jax.block_until_ready(jitted(x))

    bridge = vjp_of(lambda x: ctc(x, label_nt), logits, upstream)
    native = vjp_of(lambda x: optax.ctc_loss(x, logit_paddings, optax_labels, label_paddings,
                                             blank_id=c - 1), logits, upstream)
    rows.append(("CTCLoss T=200 N=32 C=50 L=40", "optax.ctc_loss", bridge, native))
    host_ctc = gl.CTCLoss()
    host_pred, upstream_np = np.asarray(logits), np.asarray(upstream)
    rows.append(("  the NumPy API alone", "", lambda g=upstream_np: host_ctc.value_and_gradient(
        host_pred, label, out_grad=g), None))

    x = (rng.standard_normal((4096, 1000)) * 3).astype(np.float32)
    classes = rng.integers(0, 1000, 4096).astype(np.int32)
    upstream = jnp.asarray(rng.random(4096, dtype=np.float32))
    classes_j = jnp.asarray(classes)
    ce = glj.SoftmaxCELoss()
    bridge = vjp_of(lambda x: ce(x, classes_j), jnp.asarray(x), upstream)
    native = vjp_of(lambda x: optax.softmax_cross_entropy_with_integer_labels(x, classes_j),
                    jnp.asarray(x), upstream)
    rows.append(("SoftmaxCELoss (4096, 1000)", "optax.softmax_cross_entropy_with_integer_labels",
                 bridge, native))
    host_ce, upstream_np = gl.SoftmaxCELoss(), np.asarray(upstream)
    rows.append(("  the NumPy API alone", "", lambda g=upstream_np: host_ce.value_and_gradient(
        x, classes, out_grad=g), None))

    results = []
    for name, peer, bridge, native in rows:
        calls = {"bridge": bridge} if native is None else {"bridge": bridge, "native": native}
        t = time_interleaved(calls, repeats)
        results.append((name, peer, t["bridge"], t.get("native", (None, None)), None))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["torch", "jax"])
    args = parser.parse_args()
    gl.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    results = []
    if args.only != "jax":
        import torch
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
        results += [("torch",) + r for r in torch_rows(rng, args.repeats)]
    if args.only != "torch":
        results += [("jax",) + r for r in jax_rows(rng, args.repeats)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {args.threads} threads; "
          f"float32, forward + backward, milliseconds: median of {args.repeats} interleaved "
          f"rounds (best round in brackets)")
    print(f"{'':6} {'workload':34} {'peer':30} {'bridge':>17} {'peer':>17} "
          f"{'peer/bridge':>13} {'target':>8}")
    for framework, name, peer, bridge, native, target in results:
        cells = [f"{bridge[0] * 1e3:8.3f} [{bridge[1] * 1e3:6.3f}]"]
        if native[0] is None:
            cells += [f"{'':17}", f"{'':13}"]
        else:
            cells += [f"{native[0] * 1e3:8.3f} [{native[1] * 1e3:6.3f}]",
                      f"{native[0] / bridge[0]:5.2f} [{native[1] / bridge[1]:5.2f}]"]
        goal = f">= {target:.2f}" if target else ""
        print(f"{framework:6} {name:34} {peer[:30]:30} {' '.join(cells)} {goal:>8}")


if __name__ == "__main__":
    main()
