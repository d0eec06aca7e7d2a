"""gluonloss.jax: every loss as a differentiable JAX function, checked against
the NumPy API (eager and under jax.jit), against finite differences in
float64, under jax.vmap against a Python loop, and with every error of the
NumPy API raised with the same message."""
import re

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import gluonloss as gl  # noqa: E402
import gluonloss.jax as glj  # noqa: E402
from _bridge_cases import (  # noqa: E402
    BRIDGE_CASES,
    CASE_IDS,
    FIRST_PER_CLASS,
    check_constructor_error,
    check_public_surface,
    numpy_error,
)
from _error_catalog import CALL_ENTRIES, CONSTRUCTOR_ENTRIES, SUBJECT  # noqa: E402

FIRST_IDS = [c.id for c in FIRST_PER_CLASS]


def enable_x64():
    """A context with 64-bit types on (restored after)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64 as context  # older JAX
    return context()


def split(case, dtype=np.float32):
    """(differentiable, others, options): the differentiable inputs as JAX
    arrays, the other inputs and the options as JAX arrays too."""
    args, options = case.arrays(dtype)
    differentiable = [jnp.asarray(args[i]) for i in case.differentiable]
    others = {i: jnp.asarray(a) for i, a in enumerate(args) if i not in case.differentiable}
    return differentiable, others, {k: jnp.asarray(v) for k, v in options.items()}


def function_of(case, module, others, options):
    """The loss as a function of its differentiable inputs alone."""
    def loss(*differentiable):
        args = dict(others)
        args.update(zip(case.differentiable, differentiable, strict=False))
        return module(*[args[i] for i in range(len(args))], **options)
    return loss


def numpy_of(case, differentiable, others, options):
    args = {i: np.asarray(a) for i, a in others.items()}
    args.update(zip(case.differentiable, (np.asarray(a) for a in differentiable), strict=False))
    return [args[i] for i in range(len(args))], {k: np.asarray(v) for k, v in options.items()}


def as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


# -- surface -------------------------------------------------------------------------

def test_public_surface():
    check_public_surface(glj)
    assert repr(glj.L1Loss(reduction="mean")) == "L1Loss(L1Loss(batch_axis=0, w=None), " \
                                                 "reduction='mean')"


# -- values and gradients against the NumPy API ------------------------------------------

@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("case", BRIDGE_CASES, ids=CASE_IDS)
def test_matches_the_numpy_api(case, jit):
    differentiable, others, options = split(case)
    loss = function_of(case, case.make(glj), others, options)
    numpy_args, numpy_options = numpy_of(case, differentiable, others, options)
    numpy_loss = case.make()
    expected = numpy_loss.forward(*numpy_args, **numpy_options)
    upstream = np.random.default_rng(1).uniform(-2, 2, expected.shape).astype(np.float32)

    def value_and_vjp(*xs):
        out, pullback = jax.vjp(loss, *xs)
        return out, pullback(jnp.asarray(upstream))

    if jit:
        value_and_vjp = jax.jit(value_and_vjp)
    out, grads = value_and_vjp(*differentiable)
    assert out.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(out), expected)            # one kernel, bitwise
    expected_grads = as_tuple(numpy_loss.gradient(*numpy_args, **numpy_options,
                                                  out_grad=upstream))
    for grad, expected_grad in zip(grads, expected_grads, strict=False):
        assert grad.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(grad), expected_grad, rtol=1e-6,
                                   atol=1e-6 * np.abs(expected_grad).max())
    # the forward alone, as the primal of the custom_vjp under jit
    primal = (jax.jit(loss) if jit else loss)(*differentiable)
    np.testing.assert_array_equal(np.asarray(primal), expected)


@pytest.mark.parametrize("case", BRIDGE_CASES, ids=CASE_IDS)
def test_finite_differences_float64(case):
    with enable_x64():
        differentiable, others, options = split(case, np.float64)
        for reduction in ("none", "mean"):
            loss = function_of(case, case.make(glj, reduction=reduction), others, options)
            assert loss(*differentiable).dtype == jnp.float64
            check_grads(loss, differentiable, order=1, modes=("rev",), eps=1e-6,
                        atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_reductions_and_transforms(reduction):
    case = FIRST_PER_CLASS[FIRST_IDS.index("ce-sparse")]
    differentiable, others, options = split(case)
    loss = function_of(case, case.make(glj, reduction=reduction), others, options)
    per_sample = case.make()(*numpy_of(case, differentiable, others, options)[0],
                             **{k: np.asarray(v) for k, v in options.items()})
    expected = {"none": per_sample, "mean": jnp.mean(per_sample),
                "sum": jnp.sum(per_sample)}[reduction]
    value = loss(*differentiable)
    assert value.shape == np.shape(expected)
    np.testing.assert_allclose(np.asarray(value), expected, rtol=1e-6)
    if reduction != "none":
        v, g = jax.value_and_grad(loss)(*differentiable)
        g2 = jax.grad(loss)(*differentiable)
        v3, g3 = jax.jit(jax.value_and_grad(loss))(*differentiable)
        np.testing.assert_array_equal(np.asarray(v), np.asarray(v3))
        np.testing.assert_allclose(np.asarray(g), np.asarray(g2), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(g), np.asarray(g3), rtol=1e-6)


@pytest.mark.parametrize("case", FIRST_PER_CLASS, ids=FIRST_IDS)
def test_vmap_over_a_leading_axis_is_a_python_loop(case):
    batches = [split(case) for _ in range(1)]
    differentiable, others, options = batches[0]
    stacked = [jnp.stack([x, 0.5 * x + 0.25, -x]) for x in differentiable]   # 3 problems
    module = case.make(glj, reduction="sum")
    loss = function_of(case, module, others, options)
    value_and_grad = jax.value_and_grad(loss, argnums=tuple(range(len(stacked))))
    mapped_values, mapped_grads = jax.jit(jax.vmap(value_and_grad))(*stacked)
    for k in range(3):
        value, grads = value_and_grad(*[x[k] for x in stacked])
        np.testing.assert_array_equal(np.asarray(mapped_values[k]), np.asarray(value))
        for mapped, grad in zip(mapped_grads, grads, strict=False):
            np.testing.assert_allclose(np.asarray(mapped[k]), np.asarray(grad), rtol=1e-6,
                                       atol=1e-7)


def test_vmap_over_labels_too():
    pred = jnp.asarray(np.random.default_rng(0).standard_normal((2, 3, 4)), jnp.float32)
    labels = jnp.asarray([[0, 1, 3], [2, 2, 0]])
    loss = glj.SoftmaxCELoss()
    mapped = jax.vmap(loss)(pred, labels)
    for k in range(2):
        np.testing.assert_array_equal(np.asarray(mapped[k]),
                                      gl.SoftmaxCELoss()(np.asarray(pred[k]),
                                                         np.asarray(labels[k])))


def test_labels_and_weights_get_zero_gradient():
    case = FIRST_PER_CLASS[FIRST_IDS.index("ctc")]
    differentiable, others, options = split(case)
    module = case.make(glj, reduction="sum")

    def loss(pred, sample_weight):
        return module(pred, others[1], **{**options, "sample_weight": sample_weight})
    grads = jax.grad(loss, argnums=(0, 1))(differentiable[0], options["sample_weight"])
    assert np.any(np.asarray(grads[0]) != 0)
    assert not np.any(np.asarray(grads[1]))


# -- dtypes ------------------------------------------------------------------------------

def test_float64_only_with_x64():
    pred = np.random.default_rng(0).standard_normal((3, 4))
    label = np.zeros((3, 4))
    loss = glj.L2Loss(reduction="sum")
    assert jax.grad(loss)(jnp.asarray(pred), label).dtype == jnp.float32
    with enable_x64():
        value, grad = jax.value_and_grad(loss)(jnp.asarray(pred), label)
        assert value.dtype == grad.dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(grad), gl.L2Loss().gradient(pred, label))
        # float32 inputs stay float32, as in the NumPy API
        value32 = jax.jit(loss)(jnp.asarray(pred, jnp.float32), label)
        assert value32.dtype == jnp.float32


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_narrow_floats_compute_in_float32(dtype):
    pred = jnp.asarray(np.random.default_rng(0).standard_normal((3, 4)), dtype)
    label = jnp.zeros((3, 4))
    value, grad = jax.jit(jax.value_and_grad(glj.L1Loss(reduction="sum")))(pred, label)
    assert value.dtype == jnp.float32
    assert grad.dtype == dtype


# -- errors ------------------------------------------------------------------------------

def _jax_or_as_is(value):
    """A JAX array where JAX holds the value unchanged, else the value."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        array = jnp.asarray(value)
        if np.array_equal(np.asarray(array), value) and np.asarray(array).dtype == value.dtype:
            return array
    return value


BRIDGE_CALL_ENTRIES = [e for e in CALL_ENTRIES if "out_grad" not in e.call]


@pytest.mark.parametrize("entry", BRIDGE_CALL_ENTRIES, ids=[e.id for e in BRIDGE_CALL_ENTRIES])
def test_call_errors_as_the_numpy_api(entry):
    subject = SUBJECT[entry.subject]
    with enable_x64():           # float64 and int64 arrays stay what they are
        args = {k: _jax_or_as_is(v) for k, v in {**subject.args, **entry.call}.items()}
        expected = numpy_error(lambda: getattr(gl, subject.cls)(**subject.ctor)(
            **{k: np.asarray(v) if isinstance(v, jax.Array) else v for k, v in args.items()}))
        module = getattr(glj, subject.cls)(**subject.ctor)
        with pytest.raises(type(expected)) as info:
            module(**args)
        assert str(info.value) == str(expected)
        # under jax.grad, the values are concrete in the custom_vjp's forward rule
        first = next(iter(args))
        if isinstance(args[first], jax.Array) and args[first].dtype.kind == "f":
            rest = {k: v for k, v in args.items() if k != first}
            with pytest.raises(type(expected)) as info:
                jax.grad(lambda x: jnp.sum(module(**{first: x}, **rest)))(args[first])
            assert str(info.value) == str(expected)


def _traceable(entry):
    args = {**SUBJECT[entry.subject].args, **entry.call}
    return all(isinstance(v, np.ndarray) and v.dtype.kind in "biuf" for v in args.values())


# one entry of each kind that JAX can trace (numeric arrays), every loss
JIT_ENTRIES = list({(e.subject, e.kind): e for e in reversed(BRIDGE_CALL_ENTRIES)
                    if _traceable(e)}.values())


@pytest.mark.parametrize("entry", JIT_ENTRIES, ids=[e.id for e in JIT_ENTRIES])
def test_call_errors_under_jit_carry_the_numpy_apis_message(entry):
    subject = SUBJECT[entry.subject]
    args = {**subject.args, **entry.call}
    with enable_x64():
        expected = numpy_error(lambda: getattr(gl, subject.cls)(**subject.ctor)(**args))
        module = getattr(glj, subject.cls)(**subject.ctor)
        names = list(args)
        with pytest.raises(Exception) as info:
            jax.block_until_ready(jax.jit(lambda *xs: module(**dict(zip(names, xs, strict=False))))(
                *[jnp.asarray(v) for v in args.values()]))
        assert str(expected) in str(info.value)
        assert isinstance(info.value, (type(expected), jax.errors.JaxRuntimeError)) or \
            re.search(type(expected).__name__, str(info.value))


@pytest.mark.parametrize("entry", CONSTRUCTOR_ENTRIES, ids=[e.id for e in CONSTRUCTOR_ENTRIES])
def test_constructor_errors_as_the_numpy_api(entry):
    check_constructor_error(glj, SUBJECT[entry.subject], entry, lambda v: v)


def test_shape_errors_under_jit_at_trace_time():
    # an out-of-range batch_axis leaves no output shape: the NumPy API's error, when traced
    with pytest.raises(ValueError, match="batch_axis=2 is out of range for pred"):
        jax.jit(glj.L2Loss(batch_axis=2))(jnp.zeros((3, 4)), jnp.zeros((3, 4)))
