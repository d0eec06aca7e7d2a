"""The kernel builds (baseline, AVX2, AVX-512) give bitwise identical results, and
``GLUONLOSS_KERNELS`` picks among them."""
import importlib

import numpy as np
import pytest

from _cases import CASE_IDS, CASES, WIDE_BUILDS, assert_same_bits, kernel_build, kernel_builds
from _package_under_test import run_python
from gluonloss import _dispatch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("wide", WIDE_BUILDS)
def test_wide_builds_are_bitwise_identical_to_baseline(wide, case, dtype, monkeypatch):
    base, wide_build = kernel_builds("_elementwise", wide)
    from gluonloss import elementwise
    rng = np.random.default_rng(0)
    pred, label, extra = case.data(rng, (37, 1000), dtype)
    pred[3, 7] = np.nan
    pred[4, :5] = [np.inf, -np.inf, 1e4, -1e4, 0.0]
    sw = rng.uniform(0, 2, (1, 1000))
    og = rng.standard_normal(37)
    results = []
    for module in (base, wide_build):
        monkeypatch.setattr(elementwise, "_elementwise", module)
        with np.errstate(all="ignore"):
            results.append(case.make().value_and_gradient(pred, label, sample_weight=sw, **extra,
                                                          out_grad=og))
    for a, b in zip(*results, strict=False):
        assert_same_bits(a, b)


@pytest.mark.parametrize("build", ["baseline", *WIDE_BUILDS])
def test_environment_forces_a_build(build, monkeypatch):
    kernel_build("_elementwise", build)   # skips where not compiled or not runnable
    monkeypatch.setenv("GLUONLOSS_KERNELS", build)
    module = _dispatch.load_kernels("_elementwise")
    assert _dispatch.build_of(module) == build
    suffix = "" if build == "baseline" else f"_{build}"
    assert module.__name__ == f"gluonloss._elementwise{suffix}"


def test_auto_picks_the_widest_build_the_cpu_runs(monkeypatch):
    monkeypatch.setenv("GLUONLOSS_KERNELS", "auto")
    runnable = [b for b in _dispatch.BUILDS if _dispatch.cpu_runs(b)]
    compiled = []
    for build in runnable:
        try:
            importlib.import_module(_dispatch._module_name("_elementwise", build))
        except ImportError:
            continue
        compiled.append(build)
    assert _dispatch.build_of(_dispatch.load_kernels("_elementwise")) == compiled[-1]


def test_unknown_build_name_is_refused(monkeypatch):
    monkeypatch.setenv("GLUONLOSS_KERNELS", "sse9")
    with pytest.raises(ImportError, match="GLUONLOSS_KERNELS='sse9' is not one of"):
        _dispatch.load_kernels("_elementwise")


def test_forcing_a_build_the_cpu_cannot_run_is_refused(monkeypatch):
    monkeypatch.setattr(_dispatch, "cpu_features",
                        lambda: dict.fromkeys(_dispatch.FEATURES, False) | {"AVX2": True})
    monkeypatch.setenv("GLUONLOSS_KERNELS", "avx512")
    with pytest.raises(ImportError, match="this CPU lacks AVX512F, AVX512BW"):
        _dispatch.load_kernels("_elementwise")
    monkeypatch.setenv("GLUONLOSS_KERNELS", "auto")
    assert _dispatch.build_of(_dispatch.load_kernels("_elementwise")) in ("baseline", "avx2")


@pytest.mark.parametrize("build", ["baseline", *WIDE_BUILDS])
def test_a_fresh_import_loads_the_forced_build_in_every_family(build, tmp_path):
    """... and show_config reports it."""
    kernel_build("_elementwise", build)   # skips where not compiled or not runnable
    code = ("import gluonloss as gl\n"
            "from gluonloss import _dispatch, ctc, elementwise, pairwise, softmax\n"
            "modules = (elementwise._elementwise, softmax._softmax, pairwise._pairwise, ctc._ctc)\n"
            "print(sorted({_dispatch.build_of(m) for m in modules}))\n"
            "c = gl.show_config(mode='dicts')\n"
            "print(c['kernels'], c['kernels_requested'])\n")
    child = run_python(["-c", code], cwd=tmp_path, extra_env={"GLUONLOSS_KERNELS": build})
    assert child.returncode == 0, child.stderr
    families, config = child.stdout.strip().splitlines()
    assert families == repr([build])
    assert config.split() == [build, build]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wide", WIDE_BUILDS)
def test_ctc_wide_builds_are_bitwise_identical_to_baseline(wide, dtype, monkeypatch):
    base, wide_build = kernel_builds("_ctc", wide)
    from gluonloss import CTCLoss, ctc
    rng = np.random.default_rng(0)
    pred = (rng.standard_normal((9, 70, 33)) * 20).astype(dtype)
    pred[4, 3, 2] = np.nan
    label = rng.integers(0, 32, (9, 25))
    frames = rng.integers(25, 71, 9)
    lengths = rng.integers(0, 26, 9)
    results = []
    for module in (base, wide_build):
        monkeypatch.setattr(ctc, "_ctc", module)
        results.append(CTCLoss().value_and_gradient(pred, label, pred_lengths=frames,
                                                    label_lengths=lengths))
    for a, b in zip(*results, strict=False):
        assert_same_bits(a, b)
