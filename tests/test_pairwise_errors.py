"""The error catalog of docs/semantics.rst for TripletLoss, CosineEmbeddingLoss,
SDMLLoss and PoissonNLLLoss: the documented exception type, with a message
that names the argument and the offending value."""
import numpy as np
import pytest

import gluonloss as gl
from gluonloss import reference

IMPLS = [pytest.param(gl, id="compiled"), pytest.param(reference, id="reference")]
X = np.zeros((4, 3))
LABEL = np.array([1, -1, 1, 1])


def _call(impl, name, **override):
    """Call loss ``name`` on valid arguments with some of them replaced."""
    if name == "TripletLoss":
        args = {"pred": X, "positive": X, "negative": X, "sample_weight": None}
    elif name == "CosineEmbeddingLoss":
        args = {"input1": X, "input2": X, "label": LABEL, "sample_weight": None}
    elif name == "SDMLLoss":
        args = {"x1": X, "x2": X}
    else:
        args = {"pred": X, "target": X, "sample_weight": None}
    out_grad = override.pop("out_grad", None)
    args.update(override)
    loss = getattr(impl, name)()
    if out_grad is not None:
        return loss.gradient(**args, out_grad=out_grad)
    return loss(**args)


ARGUMENTS = [("TripletLoss", a) for a in ("pred", "positive", "negative", "sample_weight")] + [
    ("CosineEmbeddingLoss", a) for a in ("input1", "input2", "label", "sample_weight")] + [
    ("SDMLLoss", a) for a in ("x1", "x2")] + [
    ("PoissonNLLLoss", a) for a in ("pred", "target", "sample_weight")]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name, argument", ARGUMENTS)
@pytest.mark.parametrize("bad", [np.array([["a", "b", "c"]] * 4), np.zeros((4, 3), complex),
                                 np.array([[object()] * 3] * 4)], ids=["str", "complex", "object"])
def test_non_numeric_arrays_raise_type_error(impl, name, argument, bad):
    with pytest.raises(TypeError, match=argument):
        _call(impl, name, **{argument: bad})


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["TripletLoss", "CosineEmbeddingLoss", "SDMLLoss",
                                  "PoissonNLLLoss"])
@pytest.mark.parametrize("og_shape", [(3,), (4, 1), (5,), (2, 2)])
def test_out_grad_not_broadcastable(impl, name, og_shape):
    with pytest.raises(ValueError, match="out_grad of shape"):
        _call(impl, name, out_grad=np.ones(og_shape))


@pytest.mark.parametrize("impl", IMPLS)
def test_non_numeric_out_grad(impl):
    for name in ("TripletLoss", "CosineEmbeddingLoss", "SDMLLoss"):
        with pytest.raises(TypeError, match="out_grad"):
            _call(impl, name, out_grad=np.array(["x"]))


@pytest.mark.parametrize("name", ["TripletLoss", "CosineEmbeddingLoss", "SDMLLoss",
                                  "PoissonNLLLoss"])
@pytest.mark.parametrize("weight", ["2", [1.0], object(), 1j])
def test_non_numeric_weight(name, weight):
    with pytest.raises(TypeError, match="weight"):
        getattr(gl, name)(weight=weight)


@pytest.mark.parametrize("name", ["TripletLoss", "CosineEmbeddingLoss", "SDMLLoss",
                                  "PoissonNLLLoss"])
@pytest.mark.parametrize("batch_axis", [1.5, "0", None])
def test_non_integer_batch_axis(name, batch_axis):
    with pytest.raises(TypeError, match="batch_axis"):
        getattr(gl, name)(batch_axis=batch_axis)


@pytest.mark.parametrize("cls", [gl.TripletLoss, gl.CosineEmbeddingLoss])
@pytest.mark.parametrize("margin", ["1", None, [1.0]])
def test_non_numeric_margin(cls, margin):
    with pytest.raises(TypeError, match="margin"):
        cls(margin=margin)


# -- TripletLoss ---------------------------------------------------------------------------

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("argument", ["positive", "negative"])
@pytest.mark.parametrize("shape", [(4, 4), (11,), ()])
def test_triplet_size_mismatch(impl, argument, shape):
    with pytest.raises(ValueError, match=rf"{argument} has \d+ elements"):
        _call(impl, "TripletLoss", **{argument: np.zeros(shape)})


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("batch_axis", [2, -3])
def test_triplet_batch_axis_out_of_range(impl, batch_axis):
    with pytest.raises(ValueError, match=f"batch_axis={batch_axis}"):
        impl.TripletLoss(batch_axis=batch_axis)(X, X, X)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["TripletLoss", "CosineEmbeddingLoss"])
@pytest.mark.parametrize("sw_shape", [(3,), (4, 3), (2,), (5, 1), (12,)])
def test_per_sample_weight_needs_n_or_one_elements(impl, name, sw_shape):
    with pytest.raises(ValueError, match=r"sample_weight of shape .* needs 4"):
        _call(impl, name, sample_weight=np.ones(sw_shape))


# -- CosineEmbeddingLoss ---------------------------------------------------------------------

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("label, value, index", [
    ([1, -1, 0, 1], "0", "2"),
    ([1, 2, -1, 1], "2", "1"),
    ([1.0, -1.0, 1.0, 0.5], "0.5", "3"),
    ([np.nan, 1, 1, 1], "nan", "0"),
    ([[1, 1], [-1, -2]], "-2", "1, 1"),
    ([True, False, True, True], "False", "1"),
])
def test_cosine_labels_must_be_plus_or_minus_one(impl, label, value, index):
    with pytest.raises(ValueError, match=rf"label\[{index}\] = .*{value}.* is not 1 or -1"):
        _call(impl, "CosineEmbeddingLoss", label=np.array(label))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("label_shape", [(3,), (5,), (4, 3), ()])
def test_cosine_one_label_per_vector(impl, label_shape):
    with pytest.raises(ValueError, match="label has .* one label per vector"):
        _call(impl, "CosineEmbeddingLoss", label=np.ones(label_shape))


@pytest.mark.parametrize("impl", IMPLS)
def test_cosine_input_sizes(impl):
    with pytest.raises(ValueError, match=r"input1 has 10 elements .* input2 has 12"):
        _call(impl, "CosineEmbeddingLoss", input1=np.zeros((2, 5)))
    with pytest.raises(ValueError, match="input2 must have at least one axis"):
        _call(impl, "CosineEmbeddingLoss", input1=np.float64(1.0), input2=np.float64(1.0),
              label=np.array([1]))


# -- SDMLLoss ------------------------------------------------------------------------------------

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n", [0, 1])
def test_sdml_needs_two_rows(impl, n):
    with pytest.raises(ValueError, match=f"^x1 and x2 need a batch of at least 2 rows.*got {n}"):
        impl.SDMLLoss()(np.zeros((n, 3)), np.zeros((n, 3)))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("x1_shape, x2_shape, match", [
    ((4,), (4,), r"x1 must be 2-D .* got shape \(4,\)"),
    ((2, 2, 3), (2, 2, 3), r"x1 must be 2-D"),
    ((), (), r"x1 must be 2-D"),
    ((4, 3), (4, 2), r"x2 must have the shape of x1 \(4, 3\), got \(4, 2\)"),
    ((4, 3), (3, 4), r"x2 must have the shape of x1"),
    ((4, 3), (12,), r"x2 must have the shape of x1"),
])
def test_sdml_shapes(impl, x1_shape, x2_shape, match):
    with pytest.raises(ValueError, match=match):
        impl.SDMLLoss()(np.zeros(x1_shape), np.zeros(x2_shape))


@pytest.mark.parametrize("sp", [-0.1, 1, 1.0, 1.5, float("nan"), float("inf")])
def test_sdml_smoothing_parameter_range(sp):
    with pytest.raises(ValueError, match=r"smoothing_parameter must be in \[0, 1\)"):
        gl.SDMLLoss(smoothing_parameter=sp)


@pytest.mark.parametrize("sp", ["0.3", None, [0.3]])
def test_sdml_smoothing_parameter_type(sp):
    with pytest.raises(TypeError, match="smoothing_parameter"):
        gl.SDMLLoss(smoothing_parameter=sp)


# -- PoissonNLLLoss --------------------------------------------------------------------------

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", [(4, 4), (11,), ()])
def test_poisson_target_size_mismatch_names_target(impl, shape):
    with pytest.raises(ValueError, match=r"target has \d+ elements"):
        _call(impl, "PoissonNLLLoss", target=np.zeros(shape))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("epsilon", ["1e-8", None, [1e-8], np.zeros(3)])
def test_poisson_epsilon_must_be_a_real_number(impl, epsilon):
    loss = impl.PoissonNLLLoss(from_logits=False)
    with pytest.raises(TypeError, match="epsilon"):
        loss(X, X, epsilon=epsilon)
    with pytest.raises(TypeError, match="epsilon"):
        loss.value_and_gradient(X, X, epsilon=epsilon)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("sw_shape", [(4,), (2, 3), (4, 3, 1)])
def test_poisson_sample_weight_not_broadcastable(impl, sw_shape):
    with pytest.raises(ValueError, match="sample_weight of shape"):
        _call(impl, "PoissonNLLLoss", sample_weight=np.ones(sw_shape))


@pytest.mark.parametrize("impl", IMPLS)
def test_poisson_empty_samples_and_axis(impl):
    with pytest.raises(ValueError, match="empty"):
        impl.PoissonNLLLoss()(np.zeros((4, 0)), np.zeros((4, 0)))
    with pytest.raises(ValueError, match="batch_axis=2"):
        impl.PoissonNLLLoss(batch_axis=2)(X, X)


def test_errors_leave_no_partial_state():
    loss = gl.SDMLLoss()
    with pytest.raises(ValueError):
        loss(np.zeros((1, 3)), np.zeros((1, 3)))
    assert loss(np.ones((3, 2)), np.ones((3, 2))).shape == (3,)
    cos = gl.CosineEmbeddingLoss()
    with pytest.raises(ValueError):
        cos(X, X, [1, 0, 1, 1])
    assert cos(X, X, LABEL).shape == (4,)
