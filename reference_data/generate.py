"""Record MXNet 1.9.1's loss values and autograd gradients as gluonloss fixtures.

Run with the Python of a venv that has MXNet (not gluonloss's own environment)::

    python3 -m venv /tmp/mxvenv
    /tmp/mxvenv/bin/pip install numpy==1.23.5 mxnet==1.9.1
    /tmp/mxvenv/bin/python reference_data/generate.py            # rewrite the fixtures
    /tmp/mxvenv/bin/python reference_data/generate.py --check    # regenerate, compare bytes

The fixtures are written into the package, ``gluonloss/_conformance/``, so that they
install with it (``gluonloss.testing`` reads them there); this folder keeps the generator
and the record of provenance.

Every case is drawn from a generator seeded by (SEED, loss number, case number), so the
files depend on nothing but this script, NumPy and MXNet: the same versions reproduce them
bit for bit (`--check`).  MXNet runs single-threaded on its naive engine for the same
reason: its CPU reductions then have one fixed order.

Each loss gets one ``<LossName>.npz``.  It holds a JSON string ``cases`` (constructor
arguments, call arguments, dtype and the array keys of every case) and the arrays
``c<i>.<name>``: the inputs, ``out_grad`` (the head gradient, random and signed), ``out``
(the per-sample loss) and ``grad.<input>`` for every differentiable input.  Values are
converted to gluonloss's documented semantics where MXNet 1.9.1 differs: ``RECIPES``
names the conversion each loss gets and its recorder applies it.  Inputs stay away from
the kinks of relu and abs, where MXNet's autograd takes the derivative 0 and gluonloss a
one-sided one.
"""
import argparse
import datetime
import io
import json
import os
import sys
import tempfile
import zipfile

os.environ.setdefault("MXNET_ENGINE_TYPE", "NaiveEngine")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402

SEED = 20261123
HERE = os.path.dirname(os.path.abspath(__file__))
# The installed copy: package data of gluonloss, read by gluonloss.testing.
FIXTURES = os.path.join(os.path.dirname(HERE), "gluonloss", "_conformance")

# Distance kept from every kink of relu/abs (|x| at 0, max(0, .) at 0, Huber's |d| = rho).
KINK_GAP = 0.05


# --------------------------------------------------------------------------- inputs

def away_from(values, kinks, rng, draw):
    """Redraw the entries of ``values`` within KINK_GAP of a kink until none are."""
    values = np.array(values)
    for _ in range(100):
        bad = kinks(values)
        if not bad.any():
            return values
        values[bad] = draw(int(bad.sum()))
    raise RuntimeError("could not draw inputs away from the kinks")


def per_sample_weight_shape(shape, batch_axis):
    """(1, .., N, .., 1): one weight per sample, in the batch axis's position."""
    out = [1] * len(shape)
    out[batch_axis] = shape[batch_axis]
    return tuple(out)


def sample_weight_for(kind, shape, batch_axis, rng):
    if kind is None:
        return None
    if kind == "sample":
        sw_shape = per_sample_weight_shape(shape, batch_axis)
    elif kind == "full":
        sw_shape = shape
    elif kind == "last":
        # broadcasts along every axis but the last
        sw_shape = (1,) * (len(shape) - 1) + shape[-1:]
    else:
        raise ValueError(kind)
    return rng.uniform(0.25, 2.0, size=sw_shape)


# --------------------------------------------------------------------------- recording

class LossRecipe:
    """How one loss is called and recorded.

    inputs: the positional inputs; optional: the optional call arguments in signature
    order; differentiable: the inputs with a gradient; integer: the arrays stored as
    int32 (class labels, CTC labels and lengths; MXNet gets them as floats);
    conversion: the sentence for the MANIFEST and README; recorder: the function
    that records MXNet and applies the conversion.
    """

    def __init__(self, inputs, optional, differentiable, conversion, recorder=None,
                 integer=()):
        self.inputs = inputs
        self.optional = optional
        self.differentiable = differentiable
        self.conversion = conversion
        self.recorder = recorder or record_plain
        self.integer = integer


def nd(value, dtype):
    return mx.nd.array(value, dtype=dtype) if isinstance(value, np.ndarray) else value


def call_arguments(recipe, arrays, dtype):
    """Gluon blocks take positional arguments only: the inputs, then the optional ones
    in signature order, None where absent, trailing Nones dropped."""
    inputs = [nd(arrays[name], dtype) for name in recipe.inputs]
    optional = [arrays.get(name) for name in recipe.optional]
    while optional and optional[-1] is None:
        optional.pop()
    return inputs, [nd(v, dtype) for v in optional]


def run_mxnet(loss, recipe, arrays, out_grad, dtype):
    """MXNet's forward value and the autograd gradient of sum(out_grad * out)."""
    inputs, optional = call_arguments(recipe, arrays, dtype)
    for name, array in zip(recipe.inputs, inputs, strict=False):
        if name in recipe.differentiable:
            array.attach_grad()
    with autograd.record():
        out = loss(*inputs, *optional)
    out.backward(mx.nd.array(out_grad, dtype=dtype).reshape(out.shape))
    grads = {name: array.grad.asnumpy() for name, array in zip(recipe.inputs, inputs, strict=False)
             if name in recipe.differentiable}
    return out.asnumpy(), grads


def record_plain(loss, recipe, init, arrays, out_grad, dtype):
    return run_mxnet(loss, recipe, arrays, out_grad, dtype)


class CaseWriter:
    """Collects the cases of one loss and their arrays."""

    def __init__(self, loss_name):
        self.loss_name = loss_name
        self.recipe = RECIPES[loss_name]
        self.cases = []
        self.arrays = {}

    def add(self, init, arrays, dtype, rng, n_out):
        """Record one case.  ``arrays``: inputs and optional call arguments by name
        (float arrays are cast to ``dtype``; absent ones left out); ``n_out``: the
        number of per-sample values the loss returns."""
        recipe = self.recipe
        arrays = {name: (np.asarray(value, dtype=np.int32) if name in recipe.integer
                         else np.asarray(value, dtype=dtype) if isinstance(value, np.ndarray)
                         else value)
                  for name, value in arrays.items() if value is not None}
        out_grad = (rng.uniform(0.5, 1.5, size=n_out)
                    * rng.choice([-1.0, 1.0], size=n_out)).astype(dtype)
        loss = getattr(gluon.loss, self.loss_name)(**init)
        out, grads = recipe.recorder(loss, recipe, init, arrays, out_grad, dtype)
        assert out.shape == (n_out,), (self.loss_name, out.shape)

        index = len(self.cases)

        def put(name, value):
            key = f"c{index}.{name}"
            self.arrays[key] = np.ascontiguousarray(value)
            return key

        self.cases.append({
            "init": init,
            "dtype": np.dtype(dtype).name,
            "inputs": [put(name, arrays[name]) for name in recipe.inputs],
            "kwargs": {name: ({"array": put(name, arrays[name])}
                              if isinstance(arrays[name], np.ndarray) else arrays[name])
                       for name in recipe.optional if name in arrays},
            "out_grad": put("out_grad", out_grad),
            "out": put("out", out.astype(dtype)),
            # [name, key] pairs in argument order (JSON objects get their keys sorted)
            "grads": [[name, put("grad." + name, grads[name].astype(dtype))]
                      for name in recipe.inputs if name in grads],
        })


# --------------------------------------------------------------------------- the elementwise family

# (shape, batch_axis) pairs: 1-D to 4-D, every batch axis position, negative axes.
ELEMENTWISE_LAYOUTS = [
    ((6,), 0),
    ((4, 5), 0),
    ((5, 4), 1),
    ((3, 4, 5), 0),
    ((3, 4, 5), 1),
    ((3, 4, 5), -1),
    ((2, 3, 2, 3), 2),
]
SAMPLE_WEIGHTS = [None, "sample", "full", "last"]
DTYPES = ["float32", "float64"]


def elementwise_grid(options):
    """Every option set × layout × sample_weight kind × dtype, thinned deterministically
    so each option set meets every layout and every sample_weight kind at least once."""
    for i, init in enumerate(options):
        for j, (shape, batch_axis) in enumerate(ELEMENTWISE_LAYOUTS):
            sw = SAMPLE_WEIGHTS[(i + j) % len(SAMPLE_WEIGHTS)]
            dtype = DTYPES[(i + j) % 2]
            yield dict(init, batch_axis=batch_axis), shape, sw, dtype
        # and every sample_weight kind on the plain 2-D layout, both dtypes
        for sw in SAMPLE_WEIGHTS:
            for dtype in DTYPES:
                yield dict(init, batch_axis=0), (4, 5), sw, dtype


def regression_pair(shape, rng, gap_at):
    """pred, label with |pred - label - k| >= KINK_GAP for every kink k in gap_at."""
    label = rng.normal(size=shape)

    def kinks(p):
        d = np.abs(p - label)
        return np.any([np.abs(d - k) < KINK_GAP for k in gap_at], axis=0)

    pred = away_from(label + rng.normal(scale=1.5, size=shape), kinks, rng,
                     lambda k: rng.normal(scale=3.0, size=k))
    return pred, label


def margin_pair(shape, rng, margin):
    """pred, ±1 label with |margin - pred*label| >= KINK_GAP."""
    label = rng.choice([-1.0, 1.0], size=shape)
    pred = away_from(rng.normal(scale=1.5, size=shape),
                     lambda p: np.abs(margin - p * label) < KINK_GAP, rng,
                     lambda k: rng.normal(scale=1.5, size=k))
    return pred, label


def elementwise_inputs(loss_name, init, shape, k, rng):
    """pred and label for one case of an elementwise loss (k: the case's number)."""
    if loss_name in ("L2Loss", "L1Loss"):
        return regression_pair(shape, rng, gap_at=[0.0])
    if loss_name == "HuberLoss":
        return regression_pair(shape, rng, gap_at=[0.0, init.get("rho", 1.0)])
    if loss_name in ("HingeLoss", "SquaredHingeLoss"):
        return margin_pair(shape, rng, init.get("margin", 1.0))
    if loss_name == "LogisticLoss":
        values = [-1.0, 1.0] if init.get("label_format", "signed") == "signed" else [0.0, 1.0]
        return rng.normal(scale=3.0, size=shape), rng.choice(values, size=shape)
    if loss_name == "SigmoidBinaryCrossEntropyLoss":
        if init.get("from_sigmoid"):
            pred = rng.uniform(0.02, 0.98, size=shape)
        else:
            pred = rng.normal(scale=3.0, size=shape)
        # hard labels and soft ones
        label = rng.choice([0.0, 1.0], size=shape) if k % 2 else rng.uniform(size=shape)
        return pred, label
    if loss_name == "PoissonNLLLoss":
        if init.get("from_logits", True):
            pred = rng.normal(scale=1.0, size=shape)
        else:
            pred = rng.uniform(0.05, 4.0, size=shape)
        # counts, including 0 and 1 (where the Stirling term is 0), and fractional
        # targets; MXNet's compute_full gives NaN at target 0, so those cases use
        # targets >= 0.5 (docs/semantics.rst).
        if init.get("compute_full"):
            target = np.where(rng.uniform(size=shape) < 0.5,
                              rng.integers(1, 8, size=shape), rng.uniform(0.5, 6.0, size=shape))
        else:
            target = np.where(rng.uniform(size=shape) < 0.5,
                              rng.integers(0, 6, size=shape), rng.uniform(0.0, 5.0, size=shape))
        return pred, target
    raise ValueError(loss_name)


ELEMENTWISE_OPTIONS = {
    "L2Loss": [{}, {"weight": 0.5}, {"weight": 2.0}],
    "L1Loss": [{}, {"weight": 0.5}, {"weight": 2.0}],
    "HuberLoss": [{}, {"rho": 0.5}, {"rho": 2.0, "weight": 1.5}],
    "HingeLoss": [{}, {"margin": 0.5}, {"margin": 2.0, "weight": 0.75}],
    "SquaredHingeLoss": [{}, {"margin": 0.5}, {"margin": 2.0, "weight": 0.75}],
    "LogisticLoss": [{}, {"label_format": "binary"},
                     {"label_format": "signed", "weight": 2.0}],
    "SigmoidBinaryCrossEntropyLoss": [{}, {"from_sigmoid": True}, {"weight": 0.5},
                                      {"from_sigmoid": True, "weight": 2.0}],
    "PoissonNLLLoss": [{}, {"from_logits": False}, {"compute_full": True, "weight": 0.5},
                       {"from_logits": False, "compute_full": True}],
}


def elementwise_cases(loss_name, rng):
    writer = CaseWriter(loss_name)
    for k, (init, shape, sw, dtype) in enumerate(elementwise_grid(ELEMENTWISE_OPTIONS[loss_name])):
        pred, label = elementwise_inputs(loss_name, init, shape, k, rng)
        batch_axis = init["batch_axis"] % len(shape)
        arrays = {"pred": pred, "label": label,
                  "sample_weight": sample_weight_for(sw, shape, batch_axis, rng)}
        if loss_name == "PoissonNLLLoss":
            arrays["target"] = arrays.pop("label")
            if k % 3 == 1:
                arrays["epsilon"] = 1e-3
        if loss_name == "SigmoidBinaryCrossEntropyLoss":
            pos_weight = ["none", "last", "full"][k % 3]
            if pos_weight == "last":
                arrays["pos_weight"] = rng.uniform(0.5, 3.0, size=(1,) * (len(shape) - 1)
                                                   + shape[-1:])
            elif pos_weight == "full":
                arrays["pos_weight"] = rng.uniform(0.5, 3.0, size=shape)
        writer.add(init, arrays, dtype, rng, n_out=shape[batch_axis])
    return writer


def record_poisson(loss, recipe, init, arrays, out_grad, dtype):
    """1.9.1 returns one mean over the whole batch: record every sample's slice on its
    own, so its mean is the per-sample value and its gradient is scaled by that
    sample's out_grad.  Its autograd cannot record compute_full (the in-place Stirling
    update), whose term has no pred gradient: the value comes from an unrecorded
    compute_full call, the gradient from the same loss without compute_full."""
    batch_axis = init.get("batch_axis", 0) % arrays["pred"].ndim
    n = arrays["pred"].shape[batch_axis]
    gradient_loss = loss
    if init.get("compute_full"):
        gradient_loss = gluon.loss.PoissonNLLLoss(**dict(init, compute_full=False))
    outs, grads = [], []
    for b in range(n):
        sample = {name: (take_sample(value, batch_axis, b, n) if isinstance(value, np.ndarray)
                         else value) for name, value in arrays.items()}
        value, grad = run_mxnet(gradient_loss, recipe, sample, out_grad[b:b + 1], dtype)
        if init.get("compute_full"):
            inputs, optional = call_arguments(recipe, sample, dtype)
            value = loss(*inputs, *optional).asnumpy()
        outs.append(value.reshape(()))
        grads.append(grad["pred"])
    return np.stack(outs), {"pred": np.concatenate(grads, axis=batch_axis)}


def take_sample(array, batch_axis, b, n):
    """Sample b's slice, keeping the axis; arrays of size 1 along it are shared."""
    if array.ndim == 0 or array.shape[batch_axis] != n:
        return array
    return np.take(array, [b], axis=batch_axis)


# --------------------------------------------------------------------------- softmax family

def softmax_layouts():
    """(shape, axis, batch_axis): class axis last or not, negative axes, ndim 2 to 4."""
    return [((5, 7), -1, 0), ((5, 7), 1, 0), ((7, 5), 0, 1), ((3, 4, 6), -1, 0),
            ((3, 6, 4), 1, 0), ((4, 3, 6), -1, 1), ((6, 3, 4), 0, -1),
            ((2, 3, 5, 2), 2, 0), ((2, 3, 5, 2), -1, 1)]


def loss_shape(shape, axis):
    out = list(shape)
    out[axis] = 1
    return tuple(out)


def softmax_cases(loss_name, rng):
    writer = CaseWriter(loss_name)
    if loss_name == "SoftmaxCrossEntropyLoss":
        options = [{}, {"sparse_label": False}, {"from_logits": True},
                   {"sparse_label": False, "from_logits": True, "weight": 0.5},
                   {"weight": 2.0}]
    else:
        options = [{}, {"from_logits": False}, {"from_logits": False, "weight": 0.5},
                   {"weight": 2.0}]
    k = 0
    for i, init in enumerate(options):
        for j, (shape, axis, batch_axis) in enumerate(softmax_layouts()):
            dtype = DTYPES[(i + j) % 2]
            init_case = dict(init, axis=axis, batch_axis=batch_axis)
            ndim = len(shape)
            axis_n, batch_n = axis % ndim, batch_axis % ndim
            logits = rng.normal(scale=2.0, size=shape)
            from_logits = init.get("from_logits", loss_name == "KLDivLoss")
            # from_logits means pred already holds log-probabilities
            pred = logits - np.log(np.exp(logits).sum(axis=axis_n, keepdims=True)) \
                if from_logits else logits
            if init.get("sparse_label", loss_name == "SoftmaxCrossEntropyLoss"):
                label = rng.integers(0, shape[axis_n], size=np.delete(shape, axis_n))
            else:
                raw = rng.uniform(0.0, 1.0, size=shape) ** 2
                label = raw / raw.sum(axis=axis_n, keepdims=True)
                if k % 4 == 3:  # exact zeros in a dense label: 0 * log(0 + 1e-12)
                    label = np.where(raw < 0.05, 0.0, label)
            target = loss_shape(shape, axis_n)
            sw_kind = ["sample", None, "full", "last"][(i + j) % 4]
            sample_weight = sample_weight_for(sw_kind, target, batch_n, rng)
            writer.add(init_case, {"pred": pred, "label": label,
                                   "sample_weight": sample_weight},
                       dtype, rng, n_out=shape[batch_n])
            k += 1
    return writer


def record_kldiv(loss, recipe, init, arrays, out_grad, dtype):
    """1.9.1 sums over each sample where the documented loss averages: divide the value
    and the gradient by the number of elements per sample."""
    out, grads = run_mxnet(loss, recipe, arrays, out_grad, dtype)
    pred = arrays["pred"]
    per_sample = pred.size // pred.shape[init.get("batch_axis", 0)]
    return out / per_sample, {name: g / per_sample for name, g in grads.items()}


# --------------------------------------------------------------------------- pairwise family

def triplet_cases(loss_name, rng):
    writer = CaseWriter(loss_name)
    layouts = [((6, 4), 0), ((4, 6), 1), ((3, 4, 5), 0), ((3, 4, 5), -1), ((5,), 0)]
    options = [{}, {"margin": 0.5}, {"margin": 2.0, "weight": 0.5}]
    for i, init in enumerate(options):
        for j, (shape, batch_axis) in enumerate(layouts):
            dtype = DTYPES[(i + j) % 2]
            n = shape[batch_axis]
            pred = rng.normal(size=shape)
            positive = pred + rng.normal(scale=0.7, size=shape)
            negative = pred + rng.normal(scale=0.9, size=shape)
            # keep every sample's hinge argument away from 0 (relu's kink)
            margin = init.get("margin", 1.0)
            axes = tuple(a for a in range(len(shape)) if a != batch_axis % len(shape))
            for _ in range(100):
                arg = (((positive - pred) ** 2 - (negative - pred) ** 2).sum(axis=axes)
                       + margin)
                if np.all(np.abs(arg) >= KINK_GAP):
                    break
                negative = pred + rng.normal(scale=0.9, size=shape)
            # sample_weight: none, (N,), (N, 1)
            sw_shape = [None, (n,), (n, 1)][(i + j) % 3]
            sample_weight = None if sw_shape is None else rng.uniform(0.25, 2.0, size=sw_shape)
            writer.add(dict(init, batch_axis=batch_axis),
                       {"pred": pred, "positive": positive, "negative": negative,
                        "sample_weight": sample_weight}, dtype, rng, n_out=n)
    return writer


def record_triplet(loss, recipe, init, arrays, out_grad, dtype):
    """1.9.1 has no sample_weight: record without it, then scale each sample's value
    and gradients by its weight (the loss is linear in it)."""
    arrays = dict(arrays)
    sample_weight = arrays.pop("sample_weight", None)
    out, grads = run_mxnet(loss, recipe, arrays, out_grad, dtype)
    if sample_weight is None:
        return out, grads
    s = sample_weight.reshape(-1).astype(np.float64)
    batch_axis = init.get("batch_axis", 0) % arrays["pred"].ndim
    shape = [1] * arrays["pred"].ndim
    shape[batch_axis] = s.size
    return out * s, {name: g * s.reshape(shape) for name, g in grads.items()}


def cosine_cases(loss_name, rng):
    writer = CaseWriter(loss_name)
    shapes = [(6, 5), (4, 3, 5), (7,), (8, 16)]
    options = [{}, {"margin": 0.25}, {"margin": -0.2, "weight": 0.5}, {"weight": 2.0}]
    for i, init in enumerate(options):
        for j, shape in enumerate(shapes):
            n = int(np.prod(shape[:-1]))
            input1 = rng.normal(size=shape)
            input2 = rng.normal(size=shape)
            if j == 1:  # near-parallel pairs: cos close to 1 and to -1
                input2 = input1 * rng.choice([-1.0, 1.0]) + 0.05 * input2
            label = rng.choice([-1, 1], size=n)
            # keep label -1 cases away from the clip's kink at cos = margin
            cos = (input1 * input2).sum(-1).reshape(-1) / (
                np.linalg.norm(input1, axis=-1).reshape(-1)
                * np.linalg.norm(input2, axis=-1).reshape(-1))
            label = np.where(np.abs(cos - init.get("margin", 0.0)) < KINK_GAP, 1, label)
            sample_weight = None if (i + j) % 2 else rng.uniform(0.25, 2.0, size=(n, 1))
            writer.add(init, {"input1": input1, "input2": input2, "label": label,
                              "sample_weight": sample_weight}, "float32", rng, n_out=n)
    return writer


def record_cosine(loss, recipe, init, arrays, out_grad, dtype):
    """1.9.1 returns shape (n, 1); the documented shape is (n,)."""
    out, grads = run_mxnet(loss, recipe, arrays, out_grad, dtype)
    return out.reshape(-1), grads


def sdml_cases(loss_name, rng):
    writer = CaseWriter(loss_name)
    options = [{}, {"smoothing_parameter": 0.0}, {"smoothing_parameter": 0.5, "weight": 0.5},
               {"smoothing_parameter": 0.1, "weight": 2.0}]
    for init in options:
        for n, d in [(2, 3), (5, 4), (8, 6)]:
            x1 = rng.normal(size=(n, d))
            x2 = x1 + rng.normal(scale=0.5, size=(n, d))
            writer.add(init, {"x1": x1, "x2": x2}, "float32", rng, n_out=n)
    return writer


def record_sdml(loss, recipe, init, arrays, out_grad, dtype):
    """1.9.1 sums over each row of the N x N matrix where the documented loss averages,
    and ignores ``weight``: multiply the value and the gradients by weight / N."""
    out, grads = run_mxnet(loss, recipe, arrays, out_grad, dtype)
    factor = init.get("weight", 1.0) / arrays["x1"].shape[0]
    return out * factor, {name: g * factor for name, g in grads.items()}


# --------------------------------------------------------------------------- CTC

def ctc_label(rng, length, n_classes, repeats):
    """A label sequence over classes [0, C-2]; ``repeats`` forces an adjacent pair."""
    label = rng.integers(0, n_classes - 1, size=length)
    if repeats and length >= 2:
        label[1] = label[0]
    return label


def ctc_cases(loss_name, rng):
    writer = CaseWriter(loss_name)
    k = 0
    for layout in ("NTC", "TNC"):
        for label_layout in ("NT", "TN"):
            for variant in range(4):
                init = {"layout": layout, "label_layout": label_layout}
                if variant == 3:
                    init["weight"] = 0.5
                n, t, c, width = [(3, 6, 4, 3), (4, 10, 5, 5), (2, 12, 6, 6),
                                  (5, 8, 3, 4)][variant]
                logits = rng.normal(scale=2.0, size=(n, t, c))
                labels = np.full((n, width), -1)
                lengths = []
                frames = rng.integers(max(1, t - 3), t + 1, size=n) if variant % 2 else \
                    np.full(n, t)
                for b in range(n):
                    # feasible: length + repeats <= frames; one empty label per batch
                    length = 0 if b == 0 else int(rng.integers(1, width + 1))
                    while True:
                        label = ctc_label(rng, length, c, repeats=(b % 2 == 1))
                        need = length + int(np.sum(label[1:] == label[:-1]))
                        if need <= frames[b]:
                            break
                        length -= 1
                    labels[b, :length] = label
                    lengths.append(length)
                arrays = {
                    "pred": logits if layout == "NTC" else logits.transpose(1, 0, 2),
                    "label": labels if label_layout == "NT" else labels.T,
                }
                if variant % 2:
                    arrays["pred_lengths"] = frames
                if variant >= 2:
                    # explicit label lengths, with junk (non -1 padding) after them
                    padded = labels.copy()
                    for b, length in enumerate(lengths):
                        padded[b, length:] = rng.integers(0, c - 1, size=width - length)
                    arrays["label"] = padded if label_layout == "NT" else padded.T
                    arrays["label_lengths"] = np.array(lengths)
                if k % 3 == 2:
                    arrays["sample_weight"] = rng.uniform(0.25, 2.0, size=n)
                writer.add(init, arrays, "float32", rng, n_out=n)
                k += 1
    return writer


# --------------------------------------------------------------------------- the losses

PLAIN = "none: MXNet 1.9.1 computes the documented values for the cases recorded"
RECIPES = {
    name: LossRecipe(("pred", "label"), ("sample_weight",), ("pred",), PLAIN)
    for name in ["L2Loss", "L1Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss",
                 "LogisticLoss"]
}
RECIPES["SigmoidBinaryCrossEntropyLoss"] = LossRecipe(
    ("pred", "label"), ("sample_weight", "pos_weight"), ("pred",), PLAIN)
RECIPES["PoissonNLLLoss"] = LossRecipe(
    ("pred", "target"), ("sample_weight", "epsilon"), ("pred",),
    "per-sample: each sample recorded on its own slice (1.9.1 returns one batch mean); "
    "compute_full value from an unrecorded call, gradient from compute_full=False; "
    "no target 0 with compute_full (1.9.1 gives NaN there)", record_poisson)
RECIPES["SoftmaxCrossEntropyLoss"] = LossRecipe(
    ("pred", "label"), ("sample_weight",), ("pred",), PLAIN, integer=())
RECIPES["KLDivLoss"] = LossRecipe(
    ("pred", "label"), ("sample_weight",), ("pred",),
    "value and gradient divided by the elements per sample (1.9.1 sums)", record_kldiv)
RECIPES["TripletLoss"] = LossRecipe(
    ("pred", "positive", "negative"), ("sample_weight",), ("pred", "positive", "negative"),
    "recorded without sample_weight (1.9.1 has none), value and gradients then "
    "multiplied by each sample's weight", record_triplet)
RECIPES["CosineEmbeddingLoss"] = LossRecipe(
    ("input1", "input2", "label"), ("sample_weight",), ("input1", "input2"),
    "value reshaped from (n, 1) to (n,); float32 only", record_cosine, integer=("label",))
RECIPES["SDMLLoss"] = LossRecipe(
    ("x1", "x2"), (), ("x1", "x2"),
    "value and gradients multiplied by weight / N (1.9.1 sums over the batch and "
    "ignores weight); float32 only", record_sdml)
RECIPES["CTCLoss"] = LossRecipe(
    ("pred", "label"), ("pred_lengths", "label_lengths", "sample_weight"), ("pred",),
    "none for the cases recorded: only feasible samples, at least one non-empty label "
    "per batch, label width <= T (1.9.1 is wrong or refuses otherwise); float32 only",
    integer=("label", "pred_lengths", "label_lengths"))

FAMILIES = {name: elementwise_cases for name in ELEMENTWISE_OPTIONS}
FAMILIES.update({
    "SoftmaxCrossEntropyLoss": softmax_cases,
    "KLDivLoss": softmax_cases,
    "TripletLoss": triplet_cases,
    "CosineEmbeddingLoss": cosine_cases,
    "SDMLLoss": sdml_cases,
    "CTCLoss": ctc_cases,
})


# --------------------------------------------------------------------------- files

def write_npz(path, arrays):
    """np.savez_compressed without the clock: fixed member timestamps and order, so
    the same arrays give the same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, arrays[key], allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


def generate(out_dir, date):
    counts = {}
    for number, (loss_name, make_cases) in enumerate(FAMILIES.items()):
        rng = np.random.default_rng([SEED, number])
        writer = make_cases(loss_name, rng)
        arrays = dict(writer.arrays)
        arrays["cases"] = np.array(json.dumps(writer.cases, sort_keys=True))
        write_npz(os.path.join(out_dir, loss_name + ".npz"), arrays)
        counts[loss_name] = len(writer.cases)
        print(f"{loss_name}: {len(writer.cases)} cases", file=sys.stderr)
    manifest = {
        "generator": "reference_data/generate.py",
        "mxnet_version": mx.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "seed": SEED,
        "date": date,
        "case_counts": counts,
        "conversions": {name: RECIPES[name].conversion for name in counts},
        "files": {name: name + ".npz" for name in counts},
    }
    with open(os.path.join(out_dir, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temporary folder and compare with the "
                             "stored files byte for byte (MANIFEST date excepted)")
    parser.add_argument("--out", default=FIXTURES,
                        help="output folder (default: gluonloss/_conformance)")
    args = parser.parse_args()
    if not args.check:
        generate(args.out, datetime.date.today().isoformat())
        return 0
    with open(os.path.join(FIXTURES, "MANIFEST.json")) as f:
        stored = json.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, stored["date"])
        different = [name for name in sorted(os.listdir(tmp))
                     if not os.path.exists(os.path.join(FIXTURES, name))
                     or open(os.path.join(tmp, name), "rb").read()
                     != open(os.path.join(FIXTURES, name), "rb").read()]
    if different:
        print("differ from the stored fixtures: " + ", ".join(different), file=sys.stderr)
        return 1
    print("regenerated fixtures are identical to the stored ones", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
