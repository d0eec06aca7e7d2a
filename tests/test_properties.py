"""Property-based tests: random shapes, axes, dtypes and weight shapes."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from _cases import CASES, tolerances


@st.composite
def problems(draw):
    case = draw(st.sampled_from(CASES))
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=ndim, max_size=ndim)))
    batch_axis = draw(st.integers(-ndim, ndim - 1))
    if draw(st.booleans()):          # sometimes an empty batch
        shape = tuple(0 if i == batch_axis % ndim else d for i, d in enumerate(shape))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    # A sample_weight shape that broadcasts: drop leading axes, set some to 1.
    keep = draw(st.integers(0, ndim))
    sw_shape = tuple(d if draw(st.booleans()) else 1 for d in shape[ndim - keep:])
    use_sw = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    return case, shape, batch_axis, dtype, (sw_shape if use_sw else None), seed


@settings(max_examples=300)
@given(problems())
def test_compiled_matches_reference(problem):
    case, shape, batch_axis, dtype, sw_shape, seed = problem
    rng = np.random.default_rng(seed)
    pred, label, extra = case.data(rng, shape, dtype)
    sw = None if sw_shape is None else rng.uniform(0, 2, sw_shape)
    og = rng.standard_normal(shape[batch_axis])
    loss = type(case.make())(**case.kwargs, batch_axis=batch_axis)
    ref = type(case.make_reference())(**case.kwargs, batch_axis=batch_axis)
    inputs = [pred, label] + ([] if sw is None else [sw]) + list(extra.values())
    snapshots = [x.copy() for x in inputs]

    out, grad = loss.value_and_gradient(pred, label, sw, **extra, out_grad=og)
    ref_out, ref_grad = ref.value_and_gradient(pred, label, sw, **extra, out_grad=og)
    assert out.shape == (shape[batch_axis],) and grad.shape == shape
    assert out.dtype == dtype and grad.dtype == dtype
    rtol, atol = tolerances(dtype)
    assert_allclose(out, ref_out, rtol=rtol, atol=atol)
    assert_allclose(grad, ref_grad, rtol=rtol, atol=atol)
    assert_array_equal(out, loss(pred, label, sw, **extra))
    assert_array_equal(grad, loss.gradient(pred, label, sw, **extra, out_grad=og))
    for x, snap in zip(inputs, snapshots):
        assert_array_equal(x, snap)
