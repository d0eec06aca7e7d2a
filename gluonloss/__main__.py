"""Self-check: ``python -m gluonloss``.

For every implemented loss (and each of its main options) prints the mean
forward value on a fixed sample batch, the gradient check against
``scipy.optimize.check_grad`` (float64), and the float32 throughput of
``value_and_gradient``.  Exits with status 1 if any gradient check fails.
"""
import sys
import time

import numpy as np
from scipy.optimize import approx_fprime, check_grad

import gluonloss as gl

# (label, loss, pred kind, label kind, extra call kwargs)
CONFIGS = [
    ("L2Loss", gl.L2Loss(), "real", "real", {}),
    ("L1Loss", gl.L1Loss(), "real", "real", {}),
    ("HuberLoss(rho=0.5)", gl.HuberLoss(rho=0.5), "real", "real", {}),
    ("HingeLoss", gl.HingeLoss(), "real", "signed", {}),
    ("SquaredHingeLoss", gl.SquaredHingeLoss(), "real", "signed", {}),
    ("LogisticLoss(signed)", gl.LogisticLoss(), "real", "signed", {}),
    ("LogisticLoss(binary)", gl.LogisticLoss(label_format="binary"), "real", "binary", {}),
    ("SigmoidBCELoss", gl.SigmoidBCELoss(), "real", "prob", {}),
    ("SigmoidBCELoss(pos_weight)", gl.SigmoidBCELoss(), "real", "binary", {"pos_weight": 2.0}),
    ("SigmoidBCELoss(from_sigmoid)", gl.SigmoidBCELoss(from_sigmoid=True), "prob", "prob", {}),
    ("SoftmaxCELoss", gl.SoftmaxCELoss(), "real", "class", {}),
    ("SoftmaxCELoss(dense)", gl.SoftmaxCELoss(sparse_label=False), "real", "dist", {}),
    ("SoftmaxCELoss(from_logits)", gl.SoftmaxCELoss(from_logits=True), "real", "class", {}),
    ("KLDivLoss", gl.KLDivLoss(), "real", "dist", {}),
    ("KLDivLoss(from_logits=False)", gl.KLDivLoss(from_logits=False), "real", "dist", {}),
]

SAMPLE_SHAPE = (8, 16)
BENCH_SHAPE = (1024, 1024)
TOLERANCE = 1e-5   # on ||analytic - numerical|| / max(1, ||analytic||)


def make_data(rng, shape, pred_kind, label_kind, dtype=np.float64):
    pred = rng.uniform(0.05, 0.95, shape) if pred_kind == "prob" else rng.standard_normal(shape)
    if label_kind in ("class", "dist"):
        # Softmax family, classes along the last axis (no kinks): class indices,
        # or a probability distribution per row.
        label = rng.integers(0, shape[-1], shape[:-1]) if label_kind == "class" else (
            rng.dirichlet(np.ones(shape[-1]), shape[:-1]).astype(dtype))
        return pred.astype(dtype), label
    label = {"real": lambda: rng.standard_normal(shape),
             "signed": lambda: rng.choice([-1.0, 1.0], shape),
             "binary": lambda: rng.choice([0.0, 1.0], shape),
             "prob": lambda: rng.uniform(0, 1, shape)}[label_kind]()
    # Keep clear of the kinks of L1/Huber/hinge, where finite differences are meaningless.
    for kink in (pred - label, pred - label - 0.5, pred - label + 0.5, 1 - pred * label):
        pred = np.where(np.abs(kink) < 0.02, pred + 0.05, pred)
    return pred.astype(dtype), label.astype(dtype)


def gradient_errors(loss, pred, label, extra, out_grad):
    def f(x):
        return float(np.sum(out_grad * loss(x.reshape(pred.shape), label, **extra)))

    def g(x):
        return loss.gradient(x.reshape(pred.shape), label, **extra, out_grad=out_grad).ravel()

    x0 = pred.ravel()
    eps = 1e-7
    norm_err = check_grad(f, g, x0, epsilon=eps)
    max_err = np.max(np.abs(g(x0) - approx_fprime(x0, f, eps)))
    return norm_err / max(1.0, np.linalg.norm(g(x0))), max_err


def throughput(loss, pred, label, extra, repeats=7):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        loss.value_and_gradient(pred, label, **extra)
        times.append(time.perf_counter() - t0)
    return pred.size / np.median(times)


def main():
    rng = np.random.default_rng(0)
    header = (f"{'loss':<30} {'mean forward':>13} {'check_grad':>11} {'max |diff|':>11} "
              f"{'Melem/s f32':>12}  status")
    print(f"gluonloss {gl.__version__}: sample batch {SAMPLE_SHAPE} float64, throughput of "
          f"value_and_gradient on {BENCH_SHAPE} float32 with {gl.get_num_threads()} thread(s)")
    print(header)
    print("-" * len(header))
    failed = []
    for name, loss, pred_kind, label_kind, extra in CONFIGS:
        pred, label = make_data(rng, SAMPLE_SHAPE, pred_kind, label_kind)
        out_grad = rng.uniform(0.5, 1.5, SAMPLE_SHAPE[0])
        value = float(np.mean(loss(pred, label, **extra)))
        rel_err, max_err = gradient_errors(loss, pred, label, extra, out_grad)
        big_pred, big_label = make_data(rng, BENCH_SHAPE, pred_kind, label_kind, np.float32)
        rate = throughput(loss, big_pred, big_label, extra) / 1e6
        ok = rel_err < TOLERANCE and np.isfinite(value)
        if not ok:
            failed.append(name)
        print(f"{name:<30} {value:>13.6f} {rel_err:>11.2e} {max_err:>11.2e} {rate:>12.1f}  "
              f"{'ok' if ok else 'FAILED'}")
    if failed:
        print(f"\ngradient check FAILED for: {', '.join(failed)}")
        return 1
    print(f"\nall {len(CONFIGS)} gradient checks passed (relative tolerance {TOLERANCE:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
