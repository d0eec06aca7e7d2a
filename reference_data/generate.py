"""Record MXNet 1.9.1's loss values and autograd gradients as gluonloss fixtures.

Run with the Python of a venv that has MXNet (not gluonloss's own environment)::

    python3 -m venv /tmp/mxvenv
    /tmp/mxvenv/bin/pip install numpy==1.23.5 mxnet==1.9.1
    /tmp/mxvenv/bin/python reference_data/generate.py            # rewrite the fixtures
    /tmp/mxvenv/bin/python reference_data/generate.py --check    # regenerate, compare bytes

Every case is drawn from a generator seeded by (SEED, loss number, case number), so the
files depend on nothing but this script, NumPy and MXNet: the same versions reproduce them
bit for bit (`--check`).  MXNet runs single-threaded on its naive engine for the same
reason: its CPU reductions then have one fixed order.

Each loss gets one ``<LossName>.npz``.  It holds a JSON string ``cases`` (constructor
arguments, call arguments, dtype and the array keys of every case) and the arrays
``c<i>.<name>``: the inputs, ``out_grad`` (the head gradient, random and signed), ``out``
(the per-sample loss) and ``grad.<input>`` for every differentiable input.  Values are
converted to gluonloss's documented semantics where MXNet 1.9.1 differs; ``CONVERSIONS``
names the conversion each loss gets.  Inputs stay away from the kinks of relu and abs,
where MXNet's autograd takes the derivative 0 and gluonloss a one-sided one.
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

# What each loss's recorded values go through on their way to the fixture
# (../shared/SPEC.md section 3).  "none": MXNet 1.9.1 already computes the documented
# semantics for the cases recorded here.
CONVERSIONS = {
    "L2Loss": "none",
    "L1Loss": "none",
    "HuberLoss": "none",
    "HingeLoss": "none",
    "SquaredHingeLoss": "none",
    "LogisticLoss": "none",
    "SigmoidBinaryCrossEntropyLoss": "none",
}

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

def record(loss, inputs, diff_names, call_kwargs, out_grad, dtype):
    """MXNet's forward value and the autograd gradient of sum(out_grad * out)."""
    nd_inputs = [mx.nd.array(a, dtype=dtype) for a in inputs]
    for name, arr in zip(INPUT_NAMES[type(loss).__name__], nd_inputs):
        if name in diff_names:
            arr.attach_grad()
    # Gluon blocks take positional arguments only: the optional ones in signature
    # order, None where absent, trailing Nones dropped.
    optional = [call_kwargs.get(name) for name in OPTIONAL_NAMES[type(loss).__name__]]
    while optional and optional[-1] is None:
        optional.pop()
    optional = [mx.nd.array(v, dtype=dtype) if isinstance(v, np.ndarray) else v
                for v in optional]
    with autograd.record():
        out = loss(*nd_inputs, *optional)
    out.backward(mx.nd.array(out_grad, dtype=dtype).reshape(out.shape))
    grads = {name: arr.grad.asnumpy()
             for name, arr in zip(INPUT_NAMES[type(loss).__name__], nd_inputs)
             if name in diff_names}
    return out.asnumpy(), grads


INPUT_NAMES = {
    "L2Loss": ("pred", "label"),
    "L1Loss": ("pred", "label"),
    "HuberLoss": ("pred", "label"),
    "HingeLoss": ("pred", "label"),
    "SquaredHingeLoss": ("pred", "label"),
    "LogisticLoss": ("pred", "label"),
    "SigmoidBinaryCrossEntropyLoss": ("pred", "label"),
}


OPTIONAL_NAMES = {name: ("sample_weight",) for name in INPUT_NAMES}
OPTIONAL_NAMES["SigmoidBinaryCrossEntropyLoss"] = ("sample_weight", "pos_weight")


class CaseWriter:
    """Collects the cases of one loss and their arrays."""

    def __init__(self, loss_name):
        self.loss_name = loss_name
        self.cases = []
        self.arrays = {}

    def add(self, init, inputs, call_kwargs, dtype, rng, diff_names=("pred",)):
        """Record one case: ``inputs`` positional (NumPy, float64), ``call_kwargs``
        keyword arrays or numbers."""
        loss = getattr(gluon.loss, self.loss_name)(**init)
        names = INPUT_NAMES[self.loss_name]
        # Cast once here so the stored inputs are exactly what MXNet saw.
        inputs = [np.asarray(a, dtype=dtype) for a in inputs]
        call_kwargs = {k: (np.asarray(v, dtype=dtype) if isinstance(v, np.ndarray) else v)
                       for k, v in call_kwargs.items()}
        batch_axis = init.get("batch_axis", 0)
        n = inputs[0].shape[batch_axis]
        out_grad = (rng.uniform(0.5, 1.5, size=n) * rng.choice([-1.0, 1.0], size=n))
        out_grad = out_grad.astype(dtype)
        out, grads = record(loss, inputs, diff_names, call_kwargs, out_grad, dtype)
        out, grads = convert(self.loss_name, out, grads, init, inputs, call_kwargs)

        index = len(self.cases)

        def put(name, value):
            key = f"c{index}.{name}"
            self.arrays[key] = np.ascontiguousarray(value)
            return key

        case = {
            "init": init,
            "dtype": np.dtype(dtype).name,
            "inputs": [put(name, a) for name, a in zip(names, inputs)],
            "kwargs": {},
            "out_grad": put("out_grad", out_grad),
            "out": put("out", out),
            # [name, key] pairs in argument order (JSON objects get their keys sorted)
            "grads": [[name, put("grad." + name, grads[name])]
                      for name in names if name in grads],
        }
        for k, v in call_kwargs.items():
            case["kwargs"][k] = {"array": put(k, v)} if isinstance(v, np.ndarray) else v
        self.cases.append(case)


def convert(loss_name, out, grads, init, inputs, call_kwargs):
    conversion = CONVERSIONS[loss_name]
    if conversion == "none":
        return out, grads
    raise ValueError(f"unknown conversion {conversion!r} for {loss_name}")


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


def elementwise_cases(loss_name, rng):
    writer = CaseWriter(loss_name)
    if loss_name in ("L2Loss", "L1Loss"):
        options = [{}, {"weight": 0.5}, {"weight": 2.0}]
        for init, shape, sw, dtype in elementwise_grid(options):
            pred, label = regression_pair(shape, rng, gap_at=[0.0])
            writer.add(init, [pred, label], sw_kwargs(sw, shape, init, rng), dtype, rng)
    elif loss_name == "HuberLoss":
        options = [{}, {"rho": 0.5}, {"rho": 2.0, "weight": 1.5}]
        for init, shape, sw, dtype in elementwise_grid(options):
            pred, label = regression_pair(shape, rng, gap_at=[0.0, init.get("rho", 1.0)])
            writer.add(init, [pred, label], sw_kwargs(sw, shape, init, rng), dtype, rng)
    elif loss_name in ("HingeLoss", "SquaredHingeLoss"):
        options = [{}, {"margin": 0.5}, {"margin": 2.0, "weight": 0.75}]
        for init, shape, sw, dtype in elementwise_grid(options):
            pred, label = margin_pair(shape, rng, init.get("margin", 1.0))
            writer.add(init, [pred, label], sw_kwargs(sw, shape, init, rng), dtype, rng)
    elif loss_name == "LogisticLoss":
        options = [{}, {"label_format": "binary"}, {"label_format": "signed", "weight": 2.0}]
        for init, shape, sw, dtype in elementwise_grid(options):
            pred = rng.normal(scale=3.0, size=shape)
            if init.get("label_format", "signed") == "signed":
                label = rng.choice([-1.0, 1.0], size=shape)
            else:
                label = rng.choice([0.0, 1.0], size=shape)
            writer.add(init, [pred, label], sw_kwargs(sw, shape, init, rng), dtype, rng)
    elif loss_name == "SigmoidBinaryCrossEntropyLoss":
        options = [{}, {"from_sigmoid": True}, {"weight": 0.5},
                   {"from_sigmoid": True, "weight": 2.0}]
        for k, (init, shape, sw, dtype) in enumerate(elementwise_grid(options)):
            if init.get("from_sigmoid"):
                pred = rng.uniform(0.02, 0.98, size=shape)
            else:
                pred = rng.normal(scale=3.0, size=shape)
            # hard labels and soft ones
            label = rng.choice([0.0, 1.0], size=shape) if k % 2 else rng.uniform(size=shape)
            kwargs = sw_kwargs(sw, shape, init, rng)
            pos_weight = ["none", "last", "full"][k % 3]
            if pos_weight == "last":
                kwargs["pos_weight"] = rng.uniform(0.5, 3.0, size=(1,) * (len(shape) - 1)
                                                   + shape[-1:])
            elif pos_weight == "full":
                kwargs["pos_weight"] = rng.uniform(0.5, 3.0, size=shape)
            writer.add(init, [pred, label], kwargs, dtype, rng)
    else:
        raise ValueError(loss_name)
    return writer


def sw_kwargs(kind, shape, init, rng):
    sw = sample_weight_for(kind, shape, init.get("batch_axis", 0) % len(shape), rng)
    return {} if sw is None else {"sample_weight": sw}


FAMILIES = {name: elementwise_cases for name in [
    "L2Loss", "L1Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss",
    "SigmoidBinaryCrossEntropyLoss"]}


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
        "conversions": {name: CONVERSIONS[name] for name in counts},
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
    parser.add_argument("--out", default=HERE, help="output folder (default: this one)")
    args = parser.parse_args()
    if not args.check:
        generate(args.out, datetime.date.today().isoformat())
        return 0
    with open(os.path.join(HERE, "MANIFEST.json")) as f:
        stored = json.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, stored["date"])
        different = [name for name in sorted(os.listdir(tmp))
                     if not os.path.exists(os.path.join(HERE, name))
                     or open(os.path.join(tmp, name), "rb").read()
                     != open(os.path.join(HERE, name), "rb").read()]
    if different:
        print("differ from the stored fixtures: " + ", ".join(different), file=sys.stderr)
        return 1
    print("regenerated fixtures are identical to the stored ones", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
