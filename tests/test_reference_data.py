"""gluonloss and gluonloss.reference against the cases recorded with MXNet 1.9.1.

The fixtures (``gluonloss/_conformance/*.npz``, package data written by
``reference_data/generate.py``) hold MXNet's forward values and autograd gradients,
converted to the documented semantics; :mod:`gluonloss.testing` reads them and
states the tolerances.  MXNet is not needed here.  A missing or unreadable fixture is
a failure, not a skip.  Beyond what ``assert_case`` checks, gluonloss's own results
must have the case's dtype, and ``value_and_gradient`` must give ``forward``'s value.
"""
import importlib.resources
import json
import zipfile

import numpy as np
import pytest

import gluonloss as gl
import gluonloss.reference as ref
from gluonloss import testing

FIXTURES = importlib.resources.files("gluonloss") / "_conformance"
ALL_CASES = testing.cases()


def _manifest():
    return json.loads((FIXTURES / "MANIFEST.json").read_text())


def test_manifest_lists_every_fixture():
    manifest = _manifest()
    assert manifest["mxnet_version"] == "1.9.1"
    assert set(manifest["case_counts"]) == set(testing.LOSSES)
    for name in testing.LOSSES:
        assert len(testing.cases(name)) == manifest["case_counts"][name] > 0


def test_every_public_loss_has_a_fixture():
    exported = [getattr(gl, name) for name in gl.__all__]
    losses = {obj.__name__ for obj in exported
              if isinstance(obj, type) and issubclass(obj, gl.Loss) and obj is not gl.Loss}
    assert losses == set(testing.LOSSES)


def test_fixtures_are_small():
    total = sum(p.stat().st_size for p in FIXTURES.iterdir() if p.is_file())
    assert total < 5 * 2**20


def test_sources_follow_the_manifest():
    # A loss is converted exactly where the generator says it converts it.
    conversions = _manifest()["conversions"]
    for case in ALL_CASES:
        plain = conversions[case.loss].startswith("none")
        if case.loss == "TripletLoss":     # converted only where a sample_weight is given
            plain = "sample_weight" not in case.kwargs
        assert plain == (case.source == testing.RECORDED), case.id


def _run(module, case):
    loss = getattr(module, case.loss)(**case.params)
    inputs = list(case.inputs.values())
    out = loss(*inputs, **case.kwargs)
    value, grads = loss.value_and_gradient(*inputs, **case.kwargs, out_grad=case.out_grad)
    np.testing.assert_array_equal(value, out)
    return out, grads


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_compiled_matches_mxnet(case):
    out, grads = _run(gl, case)
    testing.assert_case(case, out, grads)
    for got in [out, *(grads if isinstance(grads, tuple) else (grads,))]:
        assert got.dtype == np.dtype(case.dtype), f"{case.id}: dtype {got.dtype}"


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_reference_matches_mxnet(case):
    testing.assert_case(case, *_run(ref, case))


def test_missing_or_unreadable_fixture_is_an_error(tmp_path, monkeypatch):
    # Damaged or absent files fail loudly; nothing here is ever skipped.
    (tmp_path / "_conformance").mkdir()
    (tmp_path / "_conformance" / "L2Loss.npz").write_bytes(b"not a zip archive")
    monkeypatch.setattr(testing, "_fixture", lambda name: tmp_path / "_conformance" / name)
    testing._load.cache_clear()
    try:
        with pytest.raises((OSError, ValueError, zipfile.BadZipFile)):
            testing.cases("L2Loss")
        with pytest.raises(FileNotFoundError):
            testing.cases("L1Loss")
    finally:
        testing._load.cache_clear()
