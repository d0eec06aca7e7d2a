"""gluonloss and gluonloss.reference against the fixtures recorded with MXNet 1.9.1.

The fixtures (``reference_data/*.npz``, written by ``reference_data/generate.py``) hold
MXNet's forward values and autograd gradients, converted to the documented semantics.
MXNet is not needed here.  A missing or unreadable fixture is a failure, not a skip.

Tolerances, per dtype, on |got - want| <= atol + rtol * |want| with atol scaled by the
largest |want| of the array:
- float32: MXNet's libm and reduction order against ours. The largest difference seen
  is 2.4e-7 of the array's scale (about 2 ulp), so rtol 4e-6, atol 1e-6.  The losses
  with a log-softmax inside (softmax cross-entropy, SDML, CTC) get rtol and atol 1e-5:
  MXNet's float32 log_softmax and CTC are off by up to 3.8e-6 of the scale (the float64
  reference, on the same float32 inputs, is as far from them as the compiled kernels).
- float64: the largest difference seen is 4e-16 of the scale, so rtol 1e-13, atol 1e-14.
"""
import json
import pathlib
import zipfile

import numpy as np
import pytest

import gluonloss as gl
import gluonloss.reference as ref

DATA = pathlib.Path(__file__).resolve().parent.parent / "reference_data"

# Every loss whose fixture must exist; each one's classes in both implementations.
FIXTURE_LOSSES = [
    "L2Loss", "L1Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss",
    "SigmoidBinaryCrossEntropyLoss", "PoissonNLLLoss", "SoftmaxCrossEntropyLoss", "KLDivLoss",
    "TripletLoss", "CosineEmbeddingLoss", "SDMLLoss", "CTCLoss",
]
TOLERANCES = {"float32": (4e-6, 1e-6), "float64": (1e-13, 1e-14)}
LOOSER_FLOAT32 = {"SoftmaxCrossEntropyLoss": (1e-5, 1e-5), "SDMLLoss": (1e-5, 1e-5),
                  "CTCLoss": (1e-5, 1e-5)}


def load_fixture(loss_name, folder=DATA):
    path = folder / f"{loss_name}.npz"
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    cases = json.loads(str(arrays.pop("cases")))
    return cases, arrays


def assert_close(got, want, dtype, what, loss_name):
    rtol, atol = TOLERANCES[dtype]
    if dtype == "float32":
        rtol, atol = LOOSER_FLOAT32.get(loss_name, (rtol, atol))
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype}, want {dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, want {want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, err_msg=what)


def test_manifest_lists_every_fixture():
    manifest = json.loads((DATA / "MANIFEST.json").read_text())
    assert manifest["mxnet_version"] == "1.9.1"
    assert set(FIXTURE_LOSSES) <= set(manifest["case_counts"])
    for name in FIXTURE_LOSSES:
        cases, _ = load_fixture(name)
        assert len(cases) == manifest["case_counts"][name] > 0


def test_every_public_loss_has_a_fixture():
    exported = [getattr(gl, name) for name in gl.__all__]
    losses = {obj.__name__ for obj in exported
              if isinstance(obj, type) and issubclass(obj, gl.Loss) and obj is not gl.Loss}
    assert losses == set(FIXTURE_LOSSES)


def test_fixtures_are_small():
    total = sum(p.stat().st_size for p in DATA.iterdir() if p.is_file())
    assert total < 5 * 2**20


@pytest.mark.parametrize("module", [gl, ref], ids=["compiled", "reference"])
@pytest.mark.parametrize("loss_name", FIXTURE_LOSSES)
def test_matches_mxnet(loss_name, module):
    cases, arrays = load_fixture(loss_name)
    cls = getattr(module, loss_name)
    for index, case in enumerate(cases):
        loss = cls(**case["init"])
        inputs = [arrays[key] for key in case["inputs"]]
        kwargs = {name: (arrays[value["array"]] if isinstance(value, dict) else value)
                  for name, value in case["kwargs"].items()}
        out_grad = arrays[case["out_grad"]]
        where = f"{loss_name} case {index} {case['init']} {case['dtype']}"

        out = loss(*inputs, **kwargs)
        assert_close(out, arrays[case["out"]], case["dtype"], where + " out", loss_name)
        value, grads = loss.value_and_gradient(*inputs, **kwargs, out_grad=out_grad)
        np.testing.assert_array_equal(value, out)
        if not isinstance(grads, tuple):
            grads = (grads,)
        assert len(grads) == len(case["grads"]), where
        for got, (name, key) in zip(grads, case["grads"]):
            assert_close(got, arrays[key], case["dtype"], f"{where} grad {name}", loss_name)


def test_missing_or_unreadable_fixture_is_an_error(tmp_path):
    # Damaged or absent files fail loudly; nothing here is ever skipped.
    (tmp_path / "L2Loss.npz").write_bytes(b"not a zip archive")
    with pytest.raises((OSError, ValueError, zipfile.BadZipFile)):
        load_fixture("L2Loss", tmp_path)
    with pytest.raises(FileNotFoundError):
        load_fixture("L1Loss", tmp_path)
