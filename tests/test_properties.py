"""Property-based tests of every loss: random shapes (size-1 axes and
empty batches included), batch_axis/axis (negative too), dtypes (mixed
included), memory layouts of every array argument, sample_weight shapes and
out_grad.

For each drawn problem (see :func:`check`):

- the compiled loss equals the NumPy reference within the family's
  tolerances, in the dtype of the documented policy and the documented output shape;
- the result does not depend on the memory layouts: it is bitwise the result
  for C-contiguous copies of the same arguments;
- ``value_and_gradient`` is bitwise ``forward`` and ``gradient``;
- every input is unchanged (values, shape, strides, writeable flag);
- outputs are new C-contiguous arrays sharing memory with no input nor with
  each other.
"""
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import _pairwise_cases
from _cases import CASES, tolerances
from _layouts import LAYOUTS, assert_unchanged, snapshot, with_layout
from _pairwise_cases import PAIR_CASES, gradient_atol
from _softmax_cases import CASES as SOFTMAX_CASES
from _softmax_cases import case_loss_shape, case_n_out
from gluonloss import CTCLoss, reference

seeds = st.integers(0, 2**32 - 1)


def examples(n):
    """``n`` examples under the "ci" profile (60 by default), proportionally more
    under "explore" (GLUONLOSS_HYPOTHESIS=explore)."""
    return n * settings.default.max_examples // 60

# Differentiable inputs: float16 (and anything not float32) computes in float64.
input_dtypes = st.sampled_from([np.float32, np.float64, np.float32, np.float64, np.float16])
weight_dtypes = st.sampled_from([np.float32, np.float64])


def expected_dtype(*dtypes):
    """The documented dtype policy: float32 iff every differentiable input is
    float32 or float16."""
    return np.float32 if all(np.dtype(d) in (np.float32, np.float16) for d in dtypes) \
        else np.float64


@dataclass
class Problem:
    """One call of a loss on drawn arguments, laid out in drawn memory layouts."""
    loss: object
    reference: object
    args: list            # positional arguments, the differentiable inputs first
    kwargs: dict          # other call arguments (sample_weight, pos_weight, lengths...)
    out_grad: object
    n_differentiable: int
    out_shape: tuple
    dtype: type           # the compute dtype the dtype policy gives
    rtol: float
    atol: float
    grad_atol: float = None

    def arrays(self):
        named = [(f"argument {i}", a) for i, a in enumerate(self.args)]
        named += list(self.kwargs.items()) + [("out_grad", self.out_grad)]
        return [(name, a) for name, a in named if isinstance(a, np.ndarray)]

    def contiguous(self):
        """The same problem with every array argument a C-contiguous copy."""
        def c(a):
            return np.array(a, order="C") if isinstance(a, np.ndarray) else a
        return ([c(a) for a in self.args], {k: c(v) for k, v in self.kwargs.items()},
                c(self.out_grad))


@st.composite
def laid_out(draw, a):
    """``a`` in a drawn memory layout."""
    return with_layout(a, draw(st.sampled_from(LAYOUTS)))


@st.composite
def out_grads(draw, rng, n):
    """None (ones), one value per sample, or one value broadcast to all."""
    shape = draw(st.sampled_from([None, (n,), (n,), (), (1,)]))
    return None if shape is None else draw(laid_out(rng.standard_normal(shape)))


def _grads_tuple(grad, n):
    return (grad,) if n == 1 else tuple(grad)


def check(problem):
    p = problem
    before = [(name, a, snapshot(a)) for name, a in p.arrays()]
    out, grad = p.loss.value_and_gradient(*p.args, **p.kwargs, out_grad=p.out_grad)
    grads = _grads_tuple(grad, p.n_differentiable)

    # Shapes, dtypes, fresh C-contiguous outputs.
    assert out.shape == p.out_shape and out.dtype == p.dtype
    assert len(grads) == p.n_differentiable
    for g, x in zip(grads, p.args, strict=False):
        assert g.shape == np.shape(x) and g.dtype == p.dtype
    outputs = [out, *grads]
    for i, o in enumerate(outputs):
        assert type(o) is np.ndarray and o.flags.c_contiguous and o.flags.writeable
        for name, a, _ in before:
            assert not np.shares_memory(o, a), f"an output aliases {name}"
        for other in outputs[i + 1:]:
            assert not np.shares_memory(o, other), "two outputs share memory"

    # Inputs untouched.
    for name, a, snap in before:
        assert_unchanged(a, snap, name)

    # Fused equals separate, bitwise.
    assert_array_equal(out, p.loss(*p.args, **p.kwargs))
    separate = _grads_tuple(p.loss.gradient(*p.args, **p.kwargs, out_grad=p.out_grad),
                            p.n_differentiable)
    for g, s in zip(grads, separate, strict=False):
        assert_array_equal(g, s)

    # Layout-independent, bitwise.
    args, kwargs, og = p.contiguous()
    c_out, c_grad = p.loss.value_and_gradient(*args, **kwargs, out_grad=og)
    assert_array_equal(out, c_out)
    for g, c in zip(grads, _grads_tuple(c_grad, p.n_differentiable), strict=False):
        assert_array_equal(g, c)

    # Against the reference.
    ref_out, ref_grad = p.reference.value_and_gradient(*p.args, **p.kwargs, out_grad=p.out_grad)
    assert_allclose(out, ref_out, rtol=p.rtol, atol=p.atol)
    grad_atol = p.atol if p.grad_atol is None else p.grad_atol
    for g, r in zip(grads, _grads_tuple(ref_grad, p.n_differentiable), strict=False):
        assert_allclose(g, r, rtol=p.rtol, atol=grad_atol)


# -- shapes and weights shared by the families ------------------------------------------------

@st.composite
def shapes(draw, min_ndim=1, max_ndim=4, min_side=1, max_side=5):
    ndim = draw(st.integers(min_ndim, max_ndim))
    return tuple(draw(st.lists(st.integers(min_side, max_side), min_size=ndim, max_size=ndim)))


def _with_empty_batch(draw, shape, batch_axis):
    """``shape``, sometimes with the batch axis of length 0."""
    if draw(st.integers(0, 5)) == 0:
        return tuple(0 if i == batch_axis % len(shape) else d for i, d in enumerate(shape))
    return shape


@st.composite
def elementwise_weights(draw, rng, loss_shape, batch_axis):
    """A sample_weight broadcasting to ``loss_shape``: none, per sample, full,
    a scalar, or some trailing axes kept."""
    ndim = len(loss_shape)
    kind = draw(st.sampled_from(["none", "per-sample", "full", "scalar", "broadcast"]))
    if kind == "none":
        return None
    if kind == "per-sample":
        shape = tuple(d if i == batch_axis % ndim else 1 for i, d in enumerate(loss_shape))
    elif kind == "full":
        shape = loss_shape
    elif kind == "scalar":
        shape = ()
    else:
        keep = draw(st.integers(0, ndim))
        shape = tuple(d if draw(st.booleans()) else 1 for d in loss_shape[ndim - keep:])
    return draw(laid_out(rng.uniform(0, 2, shape).astype(draw(weight_dtypes))))


@st.composite
def per_sample_weights(draw, rng, n, allow_single=True):
    """None or exactly ``n`` weights in any shape (or, where allowed, one for all)."""
    shapes_ = [None, (n,), (n, 1), (1, n, 1)] + ([()] if allow_single else [])
    shape = draw(st.sampled_from(shapes_))
    if shape is None:
        return None
    return draw(laid_out(rng.uniform(0, 2, shape).astype(draw(weight_dtypes))))


# -- the elementwise family: L2 ... SigmoidBCE, PoissonNLL -----------------------------------

# Label dtypes each label kind allows (integer dtypes only for integral labels).
LABEL_DTYPES = {
    "real": [np.float32, np.float64], "prob": [np.float32, np.float64],
    "signed": [np.float32, np.float64, np.int8, np.int64],
    "binary": [np.float32, np.float64, np.bool_, np.uint8],
    "count": [np.float32, np.float64, np.int32, np.uint8],
}


@st.composite
def elementwise_problems(draw):
    case = draw(st.sampled_from(CASES))
    shape = draw(shapes())
    batch_axis = draw(st.integers(-len(shape), len(shape) - 1))
    shape = _with_empty_batch(draw, shape, batch_axis)
    pred_dtype = draw(input_dtypes)
    rng = np.random.default_rng(draw(seeds))
    pred, label, extra = case.data(rng, shape)
    label = label.astype(draw(st.sampled_from(LABEL_DTYPES[case.label])))
    if draw(st.booleans()):
        label = label.reshape(-1)           # read in C order as pred's shape
    kwargs = {"sample_weight": draw(elementwise_weights(rng, shape, batch_axis))}
    if "pos_weight" in extra:
        kwargs["pos_weight"] = draw(laid_out(extra["pos_weight"].astype(draw(weight_dtypes))))
    if case.cls == "PoissonNLLLoss" and draw(st.booleans()):
        kwargs["epsilon"] = draw(st.sampled_from([1e-8, 1e-3, 0.5]))
    dtype = expected_dtype(pred_dtype)
    return Problem(
        loss=type(case.make())(**case.kwargs, batch_axis=batch_axis),
        reference=type(case.make_reference())(**case.kwargs, batch_axis=batch_axis),
        args=[draw(laid_out(pred.astype(pred_dtype))), draw(laid_out(label))], kwargs=kwargs,
        out_grad=draw(out_grads(rng, shape[batch_axis])), n_differentiable=1,
        out_shape=(shape[batch_axis],), dtype=dtype, rtol=tolerances(dtype)[0],
        atol=tolerances(dtype)[1])


@settings(max_examples=examples(300))
@given(elementwise_problems())
def test_elementwise_losses(problem):
    check(problem)


# -- the softmax family: SoftmaxCrossEntropyLoss (sparse, dense), KLDivLoss --------------------

SPARSE_LABEL_DTYPES = [np.int64, np.int32, np.uint8, np.float64, np.float32]


@st.composite
def softmax_problems(draw):
    case = draw(st.sampled_from(SOFTMAX_CASES))
    shape = draw(shapes())
    ndim = len(shape)
    axis = draw(st.integers(-ndim, ndim - 1))
    batch_axis = draw(st.integers(-ndim, ndim - 1))
    if case.elementwise and axis % ndim == batch_axis % ndim:
        batch_axis = draw(st.sampled_from([a for a in range(-ndim, ndim)
                                           if a % ndim != axis % ndim] or [None]))
        if batch_axis is None:              # 1-D: KL needs a class and a batch axis
            case, batch_axis = SOFTMAX_CASES[0], axis
    if axis % ndim != batch_axis % ndim:
        shape = _with_empty_batch(draw, shape, batch_axis)
    pred_dtype = draw(input_dtypes)
    rng = np.random.default_rng(draw(seeds))
    pred, label = case.data(rng, shape, axis)
    if case.sparse:
        label = label.astype(draw(st.sampled_from(SPARSE_LABEL_DTYPES)))
    else:
        label = label.astype(draw(weight_dtypes))
    if draw(st.booleans()):
        label = label.reshape(-1)
    loss_shape = case_loss_shape(case, shape, axis)
    n_out = case_n_out(case, shape, axis, batch_axis)
    dtype = expected_dtype(pred_dtype)
    return Problem(
        loss=case.make(axis=axis, batch_axis=batch_axis),
        reference=case.make(reference, axis=axis, batch_axis=batch_axis),
        args=[draw(laid_out(pred.astype(pred_dtype))), draw(laid_out(label))],
        kwargs={"sample_weight": draw(elementwise_weights(rng, loss_shape, batch_axis))},
        out_grad=draw(out_grads(rng, n_out)), n_differentiable=1, out_shape=(n_out,),
        dtype=dtype, rtol=tolerances(dtype)[0], atol=tolerances(dtype)[1])


@settings(max_examples=examples(200))
@given(softmax_problems())
def test_softmax_losses(problem):
    check(problem)


# -- TripletLoss, CosineEmbeddingLoss, SDMLLoss ------------------------------------------------

@st.composite
def pairwise_problems(draw):
    case = draw(st.sampled_from(PAIR_CASES))
    if case.cls == "SDMLLoss":
        shape, batch_axis = (draw(st.integers(2, 20)), draw(st.integers(0, 10))), 0
    elif case.cls == "CosineEmbeddingLoss":
        # Vectors along the last axis (at least one element), any batch before it.
        shape = draw(shapes(min_side=0, max_ndim=3)) + (draw(st.integers(1, 6)),)
        batch_axis = draw(st.integers(-4, 4))       # accepted, unused
    else:
        shape = draw(shapes(min_side=0))
        batch_axis = draw(st.integers(-len(shape), len(shape) - 1))
        shape = _with_empty_batch(draw, shape, batch_axis)
    rng = np.random.default_rng(draw(seeds))
    inputs, extra = case.data(rng, shape, np.float64, batch_axis)
    dtypes = [draw(input_dtypes) for _ in inputs]
    inputs = [x.astype(d) for x, d in zip(inputs, dtypes, strict=False)]
    if case.cls != "SDMLLoss" and draw(st.booleans()):
        # positive/negative (triplet) and input1 (cosine) are read like the first/last.
        flat = 1 if case.cls == "TripletLoss" else 0
        inputs[flat] = inputs[flat].reshape(-1)
    if case.cls == "CosineEmbeddingLoss":
        label = extra["label"].astype(draw(st.sampled_from([np.int8, np.int64, np.float32])))
        extra["label"] = draw(laid_out(label.reshape(shape[:-1]) if draw(st.booleans())
                                       else label))
    call_args = case.call_args([draw(laid_out(x)) for x in inputs], extra)
    n_out = {"SDMLLoss": shape[0], "TripletLoss": shape[batch_axis % len(shape)],
             "CosineEmbeddingLoss": int(np.prod(shape[:-1]))}[case.cls]
    kwargs = {} if case.cls == "SDMLLoss" else {
        "sample_weight": draw(per_sample_weights(rng, n_out))}
    dtype = expected_dtype(*dtypes)
    rtol, atol = _pairwise_cases.tolerances(dtype)
    return Problem(
        loss=case.make(batch_axis=batch_axis), reference=case.make_reference(batch_axis=batch_axis),
        args=call_args, kwargs=kwargs, out_grad=draw(out_grads(rng, n_out)),
        n_differentiable=case.n_differentiable, out_shape=(n_out,), dtype=dtype, rtol=rtol,
        atol=atol, grad_atol=gradient_atol(case, inputs, dtype))


@settings(max_examples=examples(200))
@given(pairwise_problems())
def test_pairwise_losses(problem):
    check(problem)


# -- CTCLoss -------------------------------------------------------------------------------

CTC_LABEL_DTYPES = [np.int64, np.int32, np.int16, np.float64, np.float32]
LENGTH_DTYPES = [np.int64, np.int32, np.uint8, np.float64]


@st.composite
def ctc_problems(draw):
    n, n_frames = draw(st.integers(0, 4)), draw(st.integers(0, 10))
    n_classes, width = draw(st.integers(1, 5)), draw(st.integers(0, 8))
    layout, label_layout = draw(st.sampled_from(["NTC", "TNC"])), draw(st.sampled_from(["NT",
                                                                                        "TN"]))
    rng = np.random.default_rng(draw(seeds))
    pred_dtype = draw(input_dtypes)
    x = rng.standard_normal((n, n_frames, n_classes)) * 3
    lengths = rng.integers(0, width + 1, n) if n_classes > 1 else np.zeros(n, int)
    label = rng.integers(0, max(n_classes - 1, 1), (n, width))
    past_end = np.arange(width)[None, :] >= lengths[:, None]
    kwargs = {}
    if draw(st.booleans()):
        # Given lengths: what follows each label is ignored, junk included.
        kwargs["label_lengths"] = lengths.astype(draw(st.sampled_from(LENGTH_DTYPES)))
        label = np.where(past_end, rng.integers(-5, 99, label.shape), label)
    else:
        label[past_end] = -1
    if draw(st.booleans()):
        kwargs["pred_lengths"] = rng.integers(0, n_frames + 1, n).astype(
            draw(st.sampled_from(LENGTH_DTYPES)))
    if draw(st.booleans()):
        kwargs["sample_weight"] = draw(per_sample_weights(rng, n, allow_single=False))
    kwargs = {k: draw(laid_out(v)) if isinstance(v, np.ndarray) else v
              for k, v in kwargs.items()}
    if layout == "TNC":
        x = x.transpose(1, 0, 2)
    if label_layout == "TN":
        label = label.T
    label = label.astype(draw(st.sampled_from(CTC_LABEL_DTYPES)))
    ctor = {"layout": layout, "label_layout": label_layout,
            "weight": draw(st.sampled_from([None, 0.5, 2.0])),
            "zero_infinity": draw(st.booleans())}
    dtype = expected_dtype(pred_dtype)
    # float64: the log-space recursion of T frames rounds differently from the
    # reference's; float32: the family's documented tolerance.
    rtol, atol = (2e-5, 2e-6) if dtype == np.float32 else (1e-10, 1e-12)
    return Problem(
        loss=CTCLoss(**ctor), reference=reference.CTCLoss(**ctor),
        args=[draw(laid_out(x.astype(pred_dtype))), draw(laid_out(label))], kwargs=kwargs,
        out_grad=draw(out_grads(rng, n)), n_differentiable=1, out_shape=(n,), dtype=dtype,
        rtol=rtol, atol=atol)


@settings(max_examples=examples(150))
@given(ctc_problems())
def test_ctc_loss(problem):
    check(problem)
