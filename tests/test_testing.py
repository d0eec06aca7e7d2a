"""gluonloss.testing: the case objects, assert_case's reports and check's results."""
import dataclasses

import numpy as np
import pytest

import gluonloss as gl
from _package_under_test import run_python
from gluonloss import testing


def _with_gluonloss(case):
    loss = getattr(gl, case.loss)(**case.params)
    return loss.value_and_gradient(*case.inputs.values(), **case.kwargs, out_grad=case.out_grad)


# -- cases ----------------------------------------------------------------------

def test_cases_of_every_loss_in_order():
    every = testing.cases()
    assert [c.loss for c in every] == [name for name in testing.LOSSES
                                       for _ in testing.cases(name)]
    assert len({c.id for c in every}) == len(every)
    assert testing.cases("SigmoidBCELoss") == testing.cases("SigmoidBinaryCrossEntropyLoss")
    assert testing.cases("SoftmaxCELoss") == testing.cases("SoftmaxCrossEntropyLoss")


@pytest.mark.parametrize("bad", ["NoSuchLoss", "l2loss", "", "Loss"])
def test_unknown_loss_lists_the_valid_names(bad):
    with pytest.raises(ValueError, match=rf"no recorded cases for loss {bad!r}") as info:
        testing.cases(bad)
    for name in (*testing.LOSSES, "SigmoidBCELoss", "SoftmaxCELoss"):
        assert name in str(info.value)
    with pytest.raises(ValueError, match=rf"no recorded cases for loss {bad!r}"):
        testing.check(lambda case: None, bad)


def test_loss_must_be_a_name():
    with pytest.raises(TypeError, match="loss must be a loss class name"):
        testing.cases(gl.L2Loss)


def test_case_fields():
    for case in testing.cases():
        assert case.id.startswith(f"{case.loss}-") and case.id.endswith(case.dtype)
        inputs = list(case.inputs.values())
        n = case.expected_out.shape[0]
        assert case.expected_out.shape == case.out_grad.shape == (n,)
        assert case.expected_out.dtype == case.out_grad.dtype == np.dtype(case.dtype)
        assert set(case.expected_grads) <= set(case.inputs)
        for name, grad in case.expected_grads.items():
            assert grad.shape == case.inputs[name].shape
        assert inputs[0].dtype == np.dtype(case.dtype)
        assert (case.rtol, case.atol) in {(4e-6, 1e-6), (1e-5, 1e-5), (1e-13, 1e-14)}
        assert case.source.startswith(("recorded from MXNet 1.9.1",
                                       "derived from MXNet 1.9.1: "))


def test_cases_are_immutable():
    case = testing.cases("TripletLoss")[1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        case.rtol = 1.0
    for mapping in (case.params, case.inputs, case.kwargs, case.expected_grads):
        with pytest.raises(TypeError):
            mapping["x"] = 1
    arrays = [*case.inputs.values(), case.out_grad, case.expected_out,
              *case.expected_grads.values(),
              *(v for v in case.kwargs.values() if isinstance(v, np.ndarray))]
    for array in arrays:
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 0


def test_derived_sources_name_their_conversion():
    poisson = testing.cases("PoissonNLLLoss")
    full = [c for c in poisson if c.params.get("compute_full")]
    assert full and all("compute_full" in c.source for c in full)
    assert all("own slice" in c.source for c in poisson)
    triplets = testing.cases("TripletLoss")
    assert {c.source == testing.RECORDED for c in triplets} == {True, False}
    for case in testing.cases("SDMLLoss"):
        assert "weight / N" in case.source


# -- assert_case -----------------------------------------------------------------

def test_assert_case_accepts_the_expected_results_in_every_form():
    for name in ("L2Loss", "TripletLoss", "CTCLoss"):
        case = testing.cases(name)[2]
        grads = dict(case.expected_grads)
        testing.assert_case(case, case.expected_out)
        testing.assert_case(case, case.expected_out, grads)
        testing.assert_case(case, case.expected_out.tolist(), tuple(grads.values()))
        testing.assert_case(case, case.expected_out, list(grads.values()))
        testing.assert_case(case, case.expected_out, {k: grads[k] for k in list(grads)[:1]})
        if len(grads) == 1:
            testing.assert_case(case, case.expected_out, next(iter(grads.values())))


def test_assert_case_tolerances():
    case = testing.cases("L1Loss")[1]           # float64: rtol 1e-13, atol 1e-14 x scale
    want = case.expected_out.astype(np.float64)
    scale = max(1.0, np.abs(want).max())
    inside = want + 0.9 * (case.atol * scale + case.rtol * np.abs(want))
    testing.assert_case(case, inside)
    outside = want.copy()
    outside[1] += 1.1 * (case.atol * scale + case.rtol * abs(want[1]))
    with pytest.raises(AssertionError, match=r"out: 1 of \d+ elements beyond tolerance"):
        testing.assert_case(case, outside)


def test_assert_case_report_names_array_index_and_values():
    case = testing.cases("TripletLoss")[0]
    grads = {name: g.copy() for name, g in case.expected_grads.items()}
    grads["negative"][2, 1] += 0.25
    with pytest.raises(AssertionError) as info:
        testing.assert_case(case, case.expected_out, grads)
    report = str(info.value)
    assert report.splitlines()[0].startswith(f"{case.id}: TripletLoss(batch_axis=0), float32")
    assert "out:" not in report and "'pred'" not in report
    assert "grad 'negative': 1 of 24 elements beyond tolerance" in report
    want = case.expected_grads["negative"][2, 1]
    assert f"worst at index (2, 1): got {np.float32(want + 0.25)}, expected {want}" in report
    assert "max abs error 0.25 at index (2, 1)" in report


def test_assert_case_wrong_shapes_are_named_not_broadcast():
    case = testing.cases("L2Loss")[0]                 # out (6,)
    out = case.expected_out
    for bad in (out[:, None], out[None, :], out[:1], np.float32(out[0]), out[:5]):
        with pytest.raises(AssertionError, match=rf"out: shape {re_shape(bad)}, "
                                                 rf"expected \(6,\)"):
            testing.assert_case(case, bad)
    grad = case.expected_grads["pred"]
    with pytest.raises(AssertionError, match=r"grad 'pred': shape \(1, 6\), expected \(6,\)"):
        testing.assert_case(case, out, grad.reshape(1, -1))


def re_shape(array):
    return str(np.shape(array)).replace("(", r"\(").replace(")", r"\)")


@pytest.mark.parametrize("grads, message", [
    ({"anchor": np.zeros(3)}, r"'anchor' is not a differentiable input of TripletLoss "
                              r"\(those are pred, positive, negative\)"),
    ((np.zeros(3),) * 2, r"2 arrays, expected 3 \(pred, positive, negative, in that order\)"),
    (np.zeros(3), r"one array, expected 3 \(pred, positive, negative\): pass a tuple or a dict"),
])
def test_assert_case_gradient_forms_that_do_not_fit(grads, message):
    case = testing.cases("TripletLoss")[0]
    with pytest.raises(AssertionError, match=message):
        testing.assert_case(case, case.expected_out, grads)


def test_assert_case_non_numeric_and_non_finite_results():
    case = testing.cases("L2Loss")[3]
    with pytest.raises(AssertionError, match="out: an array of dtype <U1, expected real"):
        testing.assert_case(case, np.full(case.expected_out.shape, "x"))
    with pytest.raises(AssertionError, match="out: could not be read as an array"):
        testing.assert_case(case, [[1.0], [2.0, 3.0]])
    nan = case.expected_out.copy()
    nan[0] = np.nan
    with pytest.raises(AssertionError, match=r"1 of \d+ elements .*\n.*index \(0,\): got nan"):
        testing.assert_case(case, nan)
    with pytest.raises(TypeError, match="case must be a gluonloss.testing.Case"):
        testing.assert_case("L2Loss-003-float64", case.expected_out)


# -- check -----------------------------------------------------------------------

def test_check_gluonloss_itself():
    result = testing.check(_with_gluonloss)
    assert result and len(result.passed) == len(testing.cases()) == result.gradients_checked
    assert str(result) == f"all losses: {len(result)} of {len(result)} cases passed"


def test_check_reports_failures_and_exceptions():
    def half_broken(case):
        index = testing.cases(case.loss).index(case)
        if index % 3 == 0:
            raise RuntimeError("not ported yet")
        out = case.expected_out * (1.5 if index % 3 == 1 else 1.0)
        return out, dict(case.expected_grads)

    result = testing.check(half_broken, "HuberLoss")
    assert not result
    assert len(result.passed) == 15 and len(result.failed) == 30
    assert result.gradients_checked == 30
    raised = [report for _, report in result.failed if "raised" in report]
    assert len(raised) == 15 and "raised RuntimeError: not ported yet" in raised[0]
    summary = str(result)
    assert summary.startswith("HuberLoss: 15 of 45 cases passed (gradients returned for 30)")
    assert "failed: HuberLoss 30" in summary and "... and 25 more" in summary
    assert repr(result) == "<CheckResult HuberLoss: 15 passed, 30 failed>"


def test_check_values_only_and_bad_fn():
    result = testing.check(lambda case: case.expected_out, "SDMLLoss")
    assert result and str(result) == ("SDMLLoss: 12 of 12 cases passed "
                                      "(values only: no gradients returned)")
    with pytest.raises(TypeError, match="fn must be callable"):
        testing.check("not a function")


def test_testing_is_reachable_as_an_attribute(tmp_path):
    # A fresh interpreter where nothing imported it yet; `import gluonloss` alone does not.
    code = ("import sys, gluonloss as gl; assert 'gluonloss.testing' not in sys.modules; "
            "print(len(gl.testing.cases('CTCLoss')))")
    result = run_python(["-c", code], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "16"

