"""Self-check: ``python -m gluonloss``.

Prints :func:`gluonloss.show_config` (the build in use); then, for every
implemented loss (and each of its main options), the mean forward value on
a fixed sample batch, the gradient check against
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
    ("PoissonNLLLoss", gl.PoissonNLLLoss(), "real", "count", {}),
    ("PoissonNLLLoss(full, rates)", gl.PoissonNLLLoss(from_logits=False, compute_full=True),
     "prob", "count", {"epsilon": 1e-6}),
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
             "prob": lambda: rng.uniform(0, 1, shape),
             "count": lambda: rng.poisson(1.5, shape).astype(np.float64)}[label_kind]()
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


def report_row(name, value, rel_err, max_err, rate, failed):
    """Print one row of the table; add ``name`` to ``failed`` if its check failed."""
    ok = rel_err < TOLERANCE and np.isfinite(value)
    if not ok:
        failed.append(name)
    print(f"{name:<30} {value:>13.6f} {rel_err:>11.2e} {max_err:>11.2e} {rate:>12.1f}  "
          f"{'ok' if ok else 'FAILED'}")


def main():
    rng = np.random.default_rng(0)
    gl.show_config()
    print()
    header = (f"{'loss':<30} {'mean forward':>13} {'check_grad':>11} {'max |diff|':>11} "
              f"{'Melem/s f32':>12}  status")
    print(f"gluonloss {gl.__version__}: sample batch {SAMPLE_SHAPE} float64, throughput of "
          f"value_and_gradient on {BENCH_SHAPE} float32 with {gl.get_num_threads()} thread(s)")
    print(header)
    print("-" * len(header))
    failed: list[str] = []
    for name, loss, pred_kind, label_kind, extra in CONFIGS:
        pred, label = make_data(rng, SAMPLE_SHAPE, pred_kind, label_kind)
        out_grad = rng.uniform(0.5, 1.5, SAMPLE_SHAPE[0])
        value = float(np.mean(loss(pred, label, **extra)))
        rel_err, max_err = gradient_errors(loss, pred, label, extra, out_grad)
        big_pred, big_label = make_data(rng, BENCH_SHAPE, pred_kind, label_kind, np.float32)
        rate = throughput(loss, big_pred, big_label, extra) / 1e6
        report_row(name, value, rel_err, max_err, rate, failed)
    failed += multi_input_rows(rng)
    failed += ctc_rows(rng)
    if failed:
        print(f"\ngradient check FAILED for: {', '.join(failed)}")
        return 1
    n_checks = len(CONFIGS) + len(MULTI_INPUT_CONFIGS) + len(CTC_CONFIGS)
    print(f"\nall {n_checks} gradient checks passed (relative tolerance {TOLERANCE:g})")
    return 0


# -- losses with several differentiable inputs ---------------------------------------
# The check_grad column is the worst input's; the throughput counts every input element.

def _triplet_inputs(rng, shape, dtype):
    return [rng.standard_normal(shape).astype(dtype) for _ in range(3)], {}


def _cosine_inputs(rng, shape, dtype):
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    cos = np.sum(x * y, 1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    # Label 1 where cos is near the clip's kink at 0 (margin 0), else random.
    label = np.where(np.abs(cos) < 0.05, 1, rng.choice([-1, 1], shape[0]))
    return [x.astype(dtype), y.astype(dtype)], {"label": label}


def _sdml_inputs(rng, shape, dtype):
    x1 = rng.standard_normal(shape)
    return [x1.astype(dtype), (x1 + 0.7 * rng.standard_normal(shape)).astype(dtype)], {}


# (label, loss, inputs builder, throughput shape)
MULTI_INPUT_CONFIGS = [
    ("TripletLoss(margin=50)", gl.TripletLoss(margin=50), _triplet_inputs, (1024, 1024)),
    ("CosineEmbeddingLoss", gl.CosineEmbeddingLoss(), _cosine_inputs, (1024, 1024)),
    ("SDMLLoss", gl.SDMLLoss(), _sdml_inputs, (512, 256)),
]


def _call_args(inputs, extra):
    return [*inputs, extra["label"]] if "label" in extra else list(inputs)


def multi_input_rows(rng):
    """Print one table row per multi-input loss; return the names that failed."""
    failed: list[str] = []
    for name, loss, make_inputs, bench_shape in MULTI_INPUT_CONFIGS:
        inputs, extra = make_inputs(rng, SAMPLE_SHAPE, np.float64)
        out_grad = rng.uniform(0.5, 1.5, SAMPLE_SHAPE[0])
        value = float(np.mean(loss(*_call_args(inputs, extra))))
        rel_err = max_err = 0.0
        for k in range(len(inputs)):
            def call_with(x, k=k):
                args = list(inputs)
                args[k] = x.reshape(inputs[k].shape)
                return _call_args(args, extra)

            wrapped = _OneInput(loss, call_with, k)
            r, m = gradient_errors(wrapped, inputs[k], None, {}, out_grad)
            rel_err, max_err = max(rel_err, r), max(max_err, m)
        big, big_extra = make_inputs(rng, bench_shape, np.float32)
        big_args = _call_args(big, big_extra)
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            loss.value_and_gradient(*big_args)
            times.append(time.perf_counter() - t0)
        rate = sum(x.size for x in big) / np.median(times) / 1e6
        report_row(name, value, rel_err, max_err, rate, failed)
    return failed


class _OneInput:
    """One input of a multi-input loss, seen as the pred of gradient_errors."""

    def __init__(self, loss, call_with, k):
        self._loss, self._call_with, self._k = loss, call_with, k

    def __call__(self, x, label, out_grad=None):
        return self._loss(*self._call_with(x))

    def gradient(self, x, label, out_grad=None):
        return self._loss.gradient(*self._call_with(x), out_grad=out_grad)[self._k]


# -- CTCLoss ----------------------------------------------------------------------
# Sample batch and throughput batch as (N, T, C, label length); the throughput
# counts pred's elements.

CTC_CONFIGS = [
    ("CTCLoss(NTC, NT)", gl.CTCLoss()),
    ("CTCLoss(TNC, TN, weight=0.5)", gl.CTCLoss("TNC", "TN", weight=0.5)),
]
CTC_SAMPLE = (4, 12, 5, 4)
CTC_BENCH = (32, 200, 50, 40)


def make_ctc_data(rng, size, loss, dtype=np.float64):
    """pred, label and length kwargs for a CTC loss, in its layouts.

    Labels have random lengths up to ``label length`` (padding -1), frames
    random counts from twice that up to T, so every sample is feasible.
    """
    n, n_frames, n_classes, label_length = size
    pred = rng.standard_normal((n, n_frames, n_classes))
    label = rng.integers(0, n_classes - 1, (n, label_length))
    lengths = rng.integers(0, label_length + 1, n)
    label[np.arange(label_length) >= lengths[:, None]] = -1
    frames = rng.integers(min(2 * label_length, n_frames), n_frames + 1, n)
    if loss.layout == "TNC":
        pred = pred.transpose(1, 0, 2)
    if loss.label_layout == "TN":
        label = label.T
    return (np.ascontiguousarray(pred, dtype), np.ascontiguousarray(label),
            {"pred_lengths": frames})


def ctc_rows(rng):
    """Print one table row per CTC configuration; return the names that failed."""
    failed: list[str] = []
    for name, loss in CTC_CONFIGS:
        pred, label, extra = make_ctc_data(rng, CTC_SAMPLE, loss)
        out_grad = rng.uniform(0.5, 1.5, CTC_SAMPLE[0])
        value = float(np.mean(loss(pred, label, **extra)))
        rel_err, max_err = gradient_errors(loss, pred, label, extra, out_grad)
        big_pred, big_label, big_extra = make_ctc_data(rng, CTC_BENCH, loss, np.float32)
        rate = throughput(loss, big_pred, big_label, big_extra) / 1e6
        report_row(name, value, rel_err, max_err, rate, failed)
    return failed


if __name__ == "__main__":
    sys.exit(main())
