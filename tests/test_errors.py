"""The error catalog of docs/semantics.rst for the elementwise losses.

Every error is the documented exception type, and its message names the
argument at fault.
"""
import numpy as np
import pytest

import gluonloss as gl
from gluonloss import reference

PRED = np.zeros((4, 3))
IMPLS = [pytest.param(gl, id="compiled"), pytest.param(reference, id="reference")]
ALL = ["L2Loss", "L1Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss",
       "SigmoidBinaryCrossEntropyLoss"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("argument, bad", [
    ("pred", np.array([["a", "b"]])),
    ("pred", np.array([[1 + 2j]])),
    ("pred", np.array([[object()]])),
    ("label", np.array([["a", "b", "c"]] * 4)),
    ("label", np.zeros((4, 3), complex)),
    ("sample_weight", np.array(["x"])),
    ("sample_weight", np.array([1j])),
    ("out_grad", np.array(["x"])),
    ("pred", np.array([[np.datetime64("2020-01-01")]])),
])
def test_non_numeric_arrays_raise_type_error(impl, name, argument, bad):
    loss = getattr(impl, name)()
    args = {"pred": PRED, "label": PRED, "sample_weight": None}
    if argument == "out_grad":
        with pytest.raises(TypeError, match="out_grad"):
            loss.gradient(PRED, PRED, out_grad=bad)
        return
    args[argument] = bad
    with pytest.raises(TypeError, match=argument):
        loss(args["pred"], args["label"], args["sample_weight"])
    with pytest.raises(TypeError, match=argument):
        loss.value_and_gradient(args["pred"], args["label"], sample_weight=args["sample_weight"])


@pytest.mark.parametrize("impl", IMPLS)
def test_non_numeric_pos_weight(impl):
    with pytest.raises(TypeError, match="pos_weight"):
        impl.SigmoidBCELoss()(PRED, PRED, pos_weight="heavy")


def test_ragged_input_names_the_argument():
    with pytest.raises(ValueError, match="pred"):
        gl.L2Loss()([[1, 2], [3]], [1, 2, 3])


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("weight", ["2", [1.0], object(), 1j])
def test_non_numeric_weight_raises_type_error(name, weight):
    with pytest.raises(TypeError, match="weight"):
        getattr(gl, name)(weight=weight)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("batch_axis", [1.5, "0", None])
def test_non_integer_batch_axis_raises_type_error(name, batch_axis):
    with pytest.raises(TypeError, match="batch_axis"):
        getattr(gl, name)(batch_axis=batch_axis)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("batch_axis", [2, -3, 7])
def test_batch_axis_out_of_range(impl, name, batch_axis):
    loss = getattr(impl, name)(batch_axis=batch_axis)
    with pytest.raises(ValueError, match=f"batch_axis={batch_axis}"):
        loss(PRED, PRED)


@pytest.mark.parametrize("impl", IMPLS)
def test_scalar_pred_has_no_batch_axis(impl):
    with pytest.raises(ValueError, match="batch_axis"):
        impl.L1Loss()(np.float64(1.0), np.float64(1.0))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("label_shape", [(4, 4), (11,), (3, 3), ()])
def test_label_size_mismatch(impl, name, label_shape):
    with pytest.raises(ValueError, match=r"label has \d+ elements"):
        getattr(impl, name)()(PRED, np.zeros(label_shape))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("sw_shape", [(4,), (2, 3), (4, 3, 1), (1, 4, 3), (5, 1), (3, 4)])
def test_sample_weight_not_broadcastable(impl, name, sw_shape):
    # (4,) aligns with the last axis (3): NumPy rules, no implicit batch alignment;
    # (4, 3, 1) and (1, 4, 3) would enlarge the loss.
    with pytest.raises(ValueError, match=r"sample_weight of shape"):
        getattr(impl, name)()(PRED, PRED, np.ones(sw_shape))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("og_shape", [(3,), (4, 1), (1, 4), (5,), (2, 2)])
def test_out_grad_not_broadcastable(impl, og_shape):
    with pytest.raises(ValueError, match=r"out_grad of shape"):
        impl.L2Loss().gradient(PRED, PRED, out_grad=np.ones(og_shape))
    with pytest.raises(ValueError, match=r"out_grad of shape"):
        impl.L2Loss().value_and_gradient(PRED, PRED, out_grad=np.ones(og_shape))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("pw_shape", [(4,), (2, 3), (1, 4, 3), (5, 3)])
def test_pos_weight_not_broadcastable(impl, pw_shape):
    with pytest.raises(ValueError, match=r"pos_weight of shape"):
        impl.SigmoidBCELoss()(PRED, PRED, pos_weight=np.ones(pw_shape))


@pytest.mark.parametrize("rho", [0, -1, -0.5, float("nan")])
def test_rho_must_be_positive(rho):
    with pytest.raises(ValueError, match="rho must be > 0"):
        gl.HuberLoss(rho=rho)


@pytest.mark.parametrize("kwargs", [{"rho": "1"}, {"rho": None}, {"margin": "1"}])
def test_non_numeric_parameters(kwargs):
    cls = gl.HuberLoss if "rho" in kwargs else gl.HingeLoss
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        cls(**kwargs)
    if "margin" in kwargs:
        with pytest.raises(TypeError, match="margin"):
            gl.SquaredHingeLoss(**kwargs)


@pytest.mark.parametrize("label_format", ["Signed", "binary ", "", None, 1])
def test_unknown_label_format(label_format):
    with pytest.raises(ValueError, match="label_format"):
        gl.LogisticLoss(label_format=label_format)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape, batch_axis", [((4, 0), 0), ((3, 0, 2), 2), ((5, 0), -2)])
def test_empty_samples_are_rejected(impl, shape, batch_axis):
    with pytest.raises(ValueError, match="empty"):
        impl.L2Loss(batch_axis=batch_axis)(np.zeros(shape), np.zeros(shape))


def test_errors_leave_no_partial_state():
    # A failed call does not poison the next one.
    loss = gl.L2Loss()
    with pytest.raises(ValueError):
        loss(PRED, np.zeros(5))
    assert loss(PRED, PRED).shape == (4,)
