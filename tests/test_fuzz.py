"""Fuzzing every loss through its public entry points.

Hypothesis draws, for each of the 14 loss classes, constructor parameters
(valid, out of range, or of odd types) and call arguments: arrays of every
dtype NumPy has a kind for (bool, signed and unsigned ints up to uint64,
float16/32/64/long double, complex, object, str, bytes, datetime), of
arbitrary small shapes including 0-size dimensions, whose shapes are mostly
*related* to pred's (equal, flattened, a dimension changed, ...) so that
many calls get past validation and reach the kernels; values either moderate
or anything the dtype holds (NaN, +-inf, subnormals, the largest finite
values); labels, class indices and lengths in and just out of their range;
non-contiguous, reversed and read-only views, Python lists and scalars.

Each example runs forward, gradient and value_and_gradient and checks:

1. Only ValueError and TypeError escape (anything else -- including a crash
   of the process, which fails the whole run -- is a bug).
2. When all three succeed: the three methods agree bitwise (NaN-aware), the
   outputs have the compute dtype and the documented shapes, and no input
   was modified.
3. No NaN where the exact value is finite, no inf where it fits the dtype.
   The oracle is :mod:`gluonloss.reference` (the same formulas, in float64
   NumPy) on the arguments *as the compiled loss sees them*: every
   real-valued argument other than class indices, CTC labels, lengths and
   cosine labels is first converted to the compute dtype (the documented
   dtype policy; epsilon, and the elementwise losses' margin and rho too).
   The reference is read before its final rounding to the compute dtype, so
   for float32 it is the exact value up to float64 rounding.  Element by
   element over the loss and every gradient:

   - the compiled result may be NaN only where the reference is NaN (an
     undefined value such as 0 * log(0), a NaN input, inf - inf from
     infinite inputs: NaN and inf inputs reach only the results the
     reference says they reach);
   - it may be +-inf only where the reference is +-inf or NaN, or exceeds
     the compute dtype's largest finite value (the true value is out of
     range; e.g. exp(pred) for pred > 88.7 in float32).

   This is checked for *moderate* inputs, where it is exact:

   - every finite real number among the arguments and the constructor's
     parameters has magnitude at most ``moderate_bound(dtype)`` =
     (finfo(dtype).max / 1e4) ** (1/8) (about 2e4 for float32, 1e38 for
     float64): no product of up to eight of them, summed over up to 10^4
     elements, overflows.  With larger inputs an intermediate such as
     (pos - pred)**2 overflows in float32 (float32 inputs are computed in
     float32) and inf - inf is NaN where the exact value is finite;
   - the multiplicative weights (``weight``, ``sample_weight``,
     ``out_grad``) are 0 or at least 1 / moderate_bound(dtype) in
     magnitude: a subnormal weight times 1/M rounds to 0, and 0 * inf is
     NaN where the exact w*s*inf/M is inf.  (This fuzzer found exactly
     that, a subnormal per-sample weight on a sample with an infinite
     label; left as is: the per-sample factor w*s*out_grad/M is one
     rounded number.);
   - NaN and +-inf inputs count as moderate for float64 results, where the
     reference rounds like the compiled loss, and not for float32 results:
     an infinite label times log(1 - p + 1e-12), exactly 0 in float32 but
     not in float64, is NaN in the one and inf in the other;
   - except a +inf logit of CTCLoss: the kernel shifts each frame by its
     maximum, inf - inf is NaN and the sample's loss is NaN (as for a NaN
     input), while the reference never forms that NaN when the infinite
     class lies on no alignment and returns inf.  Both are IEEE outcomes
     of the same formula; the documentation does not choose.

4. For moderate inputs, the *values*: wherever the reference is finite, the
   compiled results are within the family's tolerances of it (those of the
   family test files), widened by two measures of what rounding alone can
   do there (:func:`_compare_values`): the reference's own spread when the
   inputs are perturbed by a few ulps of the compute dtype (cancellation,
   and branches such as a hinge's kink that one rounding can flip), and the
   size of the intermediates the inputs imply (:func:`_rounding_scale`).

5. Examples whose every part was drawn from the valid alternatives (no
   :func:`doubt` recorded while drawing, no refused combination) must
   succeed: a regression that rejects valid input fails at once.  And per
   class, at least a set fraction of the examples must reach the kernels and
   have their values compared (``MIN_FRACTIONS``), so that the checks above
   cannot silently stop.

Other examples are checked for 1 and 2 only.  The large-input test draws
valid data only (every example must succeed) of thousands of samples or
very long rows, with NaN/inf/zeros/subnormals written in, at 1-3 threads.

Examples per test: the ci profile's small budget by default (the whole file
runs in about a minute and a half on two cores); GLUONLOSS_FUZZ_EXAMPLES=N
raises it for a long local run (with GLUONLOSS_HYPOTHESIS=explore for fresh
random examples each time).
"""
import collections
import functools
import math

import numpy as np
import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

import gluonloss as gl
from _all_losses import LOSS_IDS, LOSSES
from _fuzz_problems import (
    DOUBTS,
    ELEMENTWISE,
    FLOAT_DTYPES,
    PROBLEMS,
    _n,
    fuzz_settings,
    refused_combination,
)
from _layouts import assert_unchanged, snapshot
from gluonloss import reference

# Converting a float64 argument beyond float32's range to float32 warns (and is inf).
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:overflow encountered in cast")]


ALLOWED = (ValueError, TypeError)


def _call(method, *args, **kwargs):
    """``method(...)``, or the allowed exception it raised; anything else fails."""
    try:
        return method(*args, **kwargs)
    except ALLOWED as exc:
        return exc
    except BaseException as exc:   # noqa: BLE001 - the point of the test
        raise AssertionError(f"{method.__qualname__} raised {type(exc).__name__}: {exc}") from exc


def _as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


def _seen_as_compute_dtype(x, dtype):
    """A real-valued array argument (or PoissonNLLLoss's epsilon) as the
    compiled loss converts it."""
    if isinstance(x, list):
        x = np.asarray(x)
    if isinstance(x, float):
        return float(np.array(x).astype(dtype))
    if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
        with np.errstate(over="ignore"):
            return x.astype(dtype)
    return x


def moderate_bound(dtype):
    """Inputs up to this magnitude cannot overflow an intermediate product of
    up to eight of them, summed over up to 10^4 elements (see the module docstring)."""
    return (float(np.finfo(dtype).max) / 1e4) ** (1 / 8)


def _floats(v):
    """The real numbers in argument ``v`` as a float64 array (empty for None,
    flags and non-numeric arguments)."""
    if isinstance(v, (bool, np.bool_)) or v is None:
        return np.empty(0)
    a = np.asarray(v)
    return a.astype(np.float64) if a.dtype.kind in "biuf" else np.empty(0)


def _all_moderate(values, weights, dtype):
    """Whether every finite real number in ``values`` has magnitude at most
    ``moderate_bound(dtype)``, and every non-zero one in ``weights`` at
    least its inverse (NaN and inf are fine)."""
    bound = moderate_bound(dtype)

    def magnitudes(v):
        a = np.abs(_floats(v))
        return a[np.isfinite(a)]
    if any((magnitudes(v) > bound).any() for v in values):
        return False
    return not any(((m > 0) & (m < 1 / bound)).any() for m in map(magnitudes, weights))


def _check_against_reference(compiled, ref_wide, dtype, moderate):
    """For moderate inputs, element by element: NaN only where the reference
    is NaN; inf only where the reference is inf or beyond the dtype's range
    (see the module docstring)."""
    largest = float(np.finfo(dtype).max)
    for i, (got, want) in enumerate(zip(compiled, ref_wide, strict=False)):
        got = np.asarray(got)
        want = np.broadcast_to(np.asarray(want, np.float64), got.shape)
        bad_nan = np.isnan(got) & ~np.isnan(want)
        assert not (moderate and bad_nan.any()), (
            f"result {i}: NaN where the reference is finite at "
            f"{np.argwhere(bad_nan)[:5].tolist()}: reference {want[bad_nan][:5]}")
        with np.errstate(invalid="ignore"):
            bad_inf = np.isinf(got) & ~(np.isinf(want) | np.isnan(want)
                                        | (np.abs(want) > largest * (1 - 1e-6)))
        assert not (moderate and bad_inf.any()), (
            f"result {i}: inf where the reference is {want[bad_inf][:5]} (fits {dtype.name})")


# (rtol, atol) of each family's own tests against the float64 reference.
FAMILY_TOLERANCES = {
    "elementwise": {np.float32: (2e-5, 2e-6), np.float64: (1e-11, 1e-13)},
    "softmax": {np.float32: (2e-5, 2e-6), np.float64: (1e-11, 1e-13)},
    "pairwise": {np.float32: (5e-5, 5e-6), np.float64: (1e-11, 1e-13)},
    "ctc": {np.float32: (2e-5, 2e-6), np.float64: (1e-10, 1e-12)},
}
FAMILY = {**{cls: "elementwise" for cls in ELEMENTWISE},
          "SoftmaxCrossEntropyLoss": "softmax", "KLDivLoss": "softmax",
          "TripletLoss": "pairwise", "CosineEmbeddingLoss": "pairwise", "SDMLLoss": "pairwise",
          "CTCLoss": "ctc"}
# Relative size of the input perturbations that probe the reference's own
# sensitivity: a few units in the last place of the compute dtype.
PERTURBATION_ULPS = 8


def _perturbations(args, index_args, dtype):
    """The positional value arguments scaled by 1 +- delta in four sign patterns:
    the first against the others (moves differences such as p - y, p * y) and
    all alike (moves products and norms)."""
    delta = PERTURBATION_ULPS * float(np.finfo(dtype).eps)
    names = ["pred", "label", "x3"]
    for first, rest in ((1, -1), (-1, 1), (1, 1), (-1, -1)):
        yield [x if name in index_args or not isinstance(x, np.ndarray) or x.dtype.kind != "f"
               else x.astype(np.float64) * (1 + (first if i == 0 else rest) * delta)
               for i, (name, x) in enumerate(zip(names, args, strict=False))]


def _weight_scale(kwargs, call, upstream):
    """|weight| * max |sample_weight| * max |out_grad| (each 1 when absent)."""
    scale = 1.0
    for v in (kwargs.get("weight"), call.get("sample_weight"), upstream):
        a = np.abs(_floats(v))
        a = a[np.isfinite(a)]
        if a.size:
            scale *= float(a.max())
    return scale


def _compare_values(cls, compiled, ref_wide, ref_perturbed, dtype, weight_scale, atol_scale):
    """Where the reference and every perturbed reference are finite, the
    compiled results are within the family's tolerances of the reference,
    widened by the reference's own spread under the perturbations (its
    sensitivity to rounding the inputs: cancellation, and branches such as
    a hinge's kink that a rounding can flip).  Returns the number of values
    compared."""
    rtol, atol = FAMILY_TOLERANCES[FAMILY[getattr(gl, cls).__name__]][dtype.type]
    atol *= max(1.0, weight_scale) * atol_scale
    largest = float(np.finfo(dtype).max)
    compared = 0
    for i, (got, want) in enumerate(zip(compiled, ref_wide, strict=False)):
        got = np.asarray(got, np.float64)
        want = np.broadcast_to(np.asarray(want, np.float64), got.shape)
        spread = np.zeros(got.shape)
        defined = np.isfinite(want) & (np.abs(want) <= largest)
        for perturbed in ref_perturbed:
            other = np.broadcast_to(np.asarray(perturbed[i], np.float64), got.shape)
            defined &= np.isfinite(other)
            with np.errstate(invalid="ignore"):
                spread = np.maximum(spread, np.where(defined, np.abs(other - want), 0.0))
        if not defined.any():
            continue
        g, w, sp = got[defined], want[defined], spread[defined]
        error = np.abs(g - w)
        allowed = rtol * np.abs(w) + atol + 4 * sp
        bad = ~(error <= allowed)
        assert not bad.any(), (
            f"result {i}: values differ from the reference at "
            f"{np.argwhere(defined)[bad][:5].tolist()}: got {g[bad][:5]}, reference {w[bad][:5]} "
            f"(allowed {allowed[bad][:5]}, reference spread {sp[bad][:5]})")
        compared += int(defined.sum())
    return compared


def _rounding_scale(cls, kwargs, args):
    """How many times the family's atol the rounding of an exact (or float64)
    computation may reach: intermediates of the size of the largest input A
    (a log-sum-exp shifted by the largest logit), of its square (products
    and squares of two inputs), summed over a sample (triplet, CTC frames)."""
    values = np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in args
                             if isinstance(x, np.ndarray) and x.dtype.kind in "biuf"] or [[0.0]])
    values = np.abs(values[np.isfinite(values)])
    a = max(1.0, float(values.max()) if values.size else 1.0)
    shape = np.shape(args[0])
    if cls == "CosineEmbeddingLoss":
        return _cosine_atol_scale(args) * (shape[-1] if shape else 1)
    if cls == "SDMLLoss":
        return _sdml_atol_scale(args)
    if cls == "CTCLoss":
        # log-space recursions over T frames of logits up to A
        return max(1, shape[0 if kwargs.get("layout") == "TNC" else 1]) * a
    if cls == "TripletLoss":
        return max(1, int(np.prod(shape)) // max(1, _n(shape, kwargs.get("batch_axis", 0)))) * a * a
    if cls == "PoissonNLLLoss" and kwargs.get("from_logits", True):
        return max(a * a, math.exp(min(a, 700.0)))
    return a * a


def _sdml_atol_scale(args):
    """log_softmax(-D) rounds to eps times the largest distance D, and the
    gradients multiply it by differences of the inputs: eps * D_max * A."""
    a = np.abs(np.concatenate([np.asarray(x, np.float64).ravel() for x in args[:2]]))
    a = a[np.isfinite(a)]
    largest = float(a.max()) if a.size else 0.0
    dim = np.shape(args[0])[-1] if np.ndim(args[0]) else 1
    return max(1.0, dim * (2 * largest) ** 2 * largest)


def _cosine_atol_scale(args):
    """d cos/dx = y/D - cos x/|x|^2 cancels for (nearly) parallel vectors: its
    rounding error is eps/|x| (as in the pairwise tests' gradient_atol), for
    every pair with D = |x||y| > 1e-12 (below, d cos/dx = y/1e-12 has no
    difference in it)."""
    a, b = (np.asarray(x, np.float64) for x in args[:2])
    if not (b.ndim and b.size and b.shape[-1]):
        return 1.0
    norms = [np.linalg.norm(x.reshape(-1, b.shape[-1]), axis=1) for x in (a, b)]
    with np.errstate(over="ignore", invalid="ignore"):
        cancelling = norms[0] * norms[1] > 1e-12
    if not cancelling.any():
        return 1.0
    smallest = float(np.minimum(norms[0], norms[1])[cancelling].min())
    return max(1.0, 1.0 / smallest)


def check_problem(problem):
    cls, kwargs, args, call, upstream, index_args = problem
    note(f"{cls}(**{kwargs!r})")
    loss = _call(getattr(gl, cls), **kwargs)
    if isinstance(loss, Exception):
        return "constructor"
    inputs = {f"argument {i}": x for i, x in enumerate(args)} | {**call, "out_grad": upstream}
    snapshots = {name: snapshot(x) for name, x in inputs.items() if isinstance(x, np.ndarray)}
    out = _call(loss.forward, *args, **call)
    grad = _call(loss.gradient, *args, **call, out_grad=upstream)
    both = _call(loss.value_and_gradient, *args, **call, out_grad=upstream)
    for name, before in snapshots.items():
        assert_unchanged(inputs[name], before, name)
    if isinstance(both, Exception):
        # Errors are about the arguments, so the other methods raise too
        # (forward does not take out_grad).
        assert isinstance(grad, Exception), f"gradient succeeded where value_and_gradient " \
                                            f"raised {both!r}"
        return "error"
    assert not isinstance(out, Exception), f"forward raised {out!r}, value_and_gradient did not"
    assert not isinstance(grad, Exception), f"gradient raised {grad!r}"
    results = [out, both[0], *_as_tuple(both[1]), *_as_tuple(grad)]
    dtype = out.dtype
    assert dtype in (np.float32, np.float64)
    for r in results:
        assert isinstance(r, np.ndarray) and r.dtype == dtype and r.flags.c_contiguous
    assert out.ndim == 1
    np.testing.assert_array_equal(out, both[0], strict=True)
    for g, h in zip(_as_tuple(grad), _as_tuple(both[1]), strict=False):
        np.testing.assert_array_equal(g, h, strict=True)

    # The oracle: the reference in float64, on the arguments as converted.
    names = ["pred", "label", "x3"]
    wide_args = [x if name in index_args else _seen_as_compute_dtype(x, dtype)
                 for name, x in zip(names, args, strict=False)]
    if cls == "CosineEmbeddingLoss":
        wide_args[2] = args[2]
    wide_call = {k: v if k in index_args else _seen_as_compute_dtype(v, dtype)
                 for k, v in call.items()}
    # The elementwise kernels read margin and rho in the compute dtype, like
    # every input (the pairwise kernels keep their margin in float64).
    wide_kwargs = {k: _seen_as_compute_dtype(v, dtype)
                   if k in ("margin", "rho") and cls in ELEMENTWISE else v
                   for k, v in kwargs.items()}
    ref_out, ref_grad = _reference_float64(cls, wide_kwargs, wide_args, wide_call,
                                           _seen_as_compute_dtype(upstream, dtype))
    values = [*kwargs.values(), *wide_args, *wide_call.values(), upstream]
    moderate = _all_moderate(values, [kwargs.get("weight"), wide_call.get("sample_weight"),
                                      upstream], dtype)
    if dtype == np.float32 and not all(np.isfinite(_floats(v)).all() for v in values):
        moderate = False     # see the module docstring
    if cls == "CTCLoss" and (_floats(args[0]) == np.inf).any():
        moderate = False     # likewise
    compiled = [both[0], *_as_tuple(both[1])]
    ref_all = [ref_out, *_as_tuple(ref_grad)]
    _check_against_reference(compiled, ref_all, dtype, moderate)
    if not moderate:
        return "ok, extreme inputs"
    perturbed = []
    for p_args in _perturbations(wide_args, index_args, dtype):
        p_out, p_grad = _reference_float64(cls, wide_kwargs, p_args, wide_call,
                                           _seen_as_compute_dtype(upstream, dtype))
        perturbed.append([p_out, *_as_tuple(p_grad)])
    atol_scale = _rounding_scale(cls, wide_kwargs, wide_args)
    compared = _compare_values(cls, compiled, ref_all, perturbed, dtype,
                               _weight_scale(kwargs, wide_call, upstream), atol_scale)
    return "ok, values compared" if compared else "ok, moderate inputs"


@functools.cache
def _wide_reference(cls):
    """The reference class ``cls``, returning its float64 results before their
    final rounding to the compute dtype (each ``_compute`` ends with
    ``.astype(call.dtype)``)."""
    class Wide(getattr(reference, cls)):
        def _compute(self, call, want_loss, want_grad):
            return super()._compute(call._replace(dtype=np.float64), want_loss, want_grad)
    return Wide


def _reference_float64(cls, kwargs, args, call, upstream):
    with np.errstate(all="ignore"):
        return _wide_reference(cls)(**kwargs).value_and_gradient(*args, **call,
                                                                   out_grad=upstream)


@st.composite
def large_problem(draw, entry):
    """Valid data of the "many" (thousands of samples) or "huge" (one or a few
    very long samples) sizes of tests/_all_losses.py -- the multi-block and
    multi-thread paths the small shapes above never reach -- with NaN, +-inf,
    zeros and subnormals written into drawn positions of every float array
    argument, and sometimes a non-contiguous pred."""
    size = draw(st.sampled_from(["many", "huge"]))
    dtype = np.dtype(draw(st.sampled_from(FLOAT_DTYPES)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    args, call = entry.call_args(rng, size, dtype)
    tiny = float(np.finfo(dtype).smallest_subnormal)
    specials = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, tiny, -tiny])
    for a in [*args, *call.values()]:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size:
            for _ in range(draw(st.integers(0, 4))):
                a.flat[draw(st.integers(0, a.size - 1))] = draw(specials)
    if draw(st.booleans()):
        args[0] = np.ascontiguousarray(args[0][::-1])[::-1]
    upstream = draw(st.sampled_from([None, entry.upstream(rng, args)]))
    index_args = {"SoftmaxCrossEntropyLoss": ("label",),
                  "CTCLoss": ("label", "pred_lengths", "label_lengths"),
                  "CosineEmbeddingLoss": ("label",)}.get(entry.cls, ())
    return entry.cls, entry.kwargs, list(args), call, upstream, index_args


@fuzz_settings(ci_examples=8)
@pytest.mark.parametrize("entry", LOSSES, ids=LOSS_IDS)
@given(data=st.data())
def test_fuzz_large_inputs_every_loss(entry, data):
    problem = data.draw(large_problem(entry), label="problem")
    threads = data.draw(st.sampled_from([1, 2, 3]), label="threads")
    with gl.num_threads(threads):
        outcome = check_problem(problem)
    event(outcome)
    # Valid data by construction (only the values are extreme): rejecting it is a bug.
    assert outcome.startswith("ok"), f"valid arguments rejected ({outcome})"


REACHED = ("ok, values compared", "ok, moderate inputs", "ok, extreme inputs")
# The least fractions of the drawn examples that must reach the kernels (all
# three calls succeed) and whose values must be compared with the reference:
# about 0.6 of the smaller of what the ci profile's draws and one explore run
# of 400 examples gave (in the comments), so that the comparisons cannot
# silently stop.  Valid arguments are checked one by one (see ``doubt``); at
# least MIN_VALID of the examples must be valid.
MIN_FRACTIONS = {
    # class: (reached, values compared)     measured: ci profile; explore
    "CTCLoss": (0.18, 0.1),                 # 0.34, 0.18; 0.30, 0.17
    "CosineEmbeddingLoss": (0.27, 0.19),    # 0.50, 0.32; 0.46, 0.32
    "HingeLoss": (0.43, 0.28),              # 0.72, 0.46; 0.74, 0.53
    "HuberLoss": (0.44, 0.3),               # 0.78, 0.52; 0.73, 0.50
    "KLDivLoss": (0.2, 0.09),               # 0.36, 0.24; 0.34, 0.16
    "L1Loss": (0.41, 0.26),                 # 0.69, 0.43; 0.68, 0.48
    "L2Loss": (0.42, 0.23),                 # 0.70, 0.38; 0.81, 0.56
    "LogisticLoss": (0.42, 0.29),           # 0.71, 0.51; 0.70, 0.49
    "PoissonNLLLoss": (0.37, 0.17),         # 0.61, 0.28; 0.71, 0.38
    "SDMLLoss": (0.15, 0.1),                # 0.40, 0.26; 0.25, 0.16
    "SigmoidBinaryCrossEntropyLoss": (0.37, 0.27),   # 0.62, 0.44; 0.62, 0.46
    "SoftmaxCrossEntropyLoss": (0.29, 0.22),         # 0.56, 0.45; 0.48, 0.36
    "SquaredHingeLoss": (0.43, 0.26),       # 0.72, 0.46; 0.73, 0.44
    "TripletLoss": (0.43, 0.25),            # 0.80, 0.47; 0.72, 0.42
}
MIN_VALID = 0.1                             # measured: 0.16 to 0.64
assert set(MIN_FRACTIONS) == set(PROBLEMS)


@pytest.mark.parametrize("cls", sorted(PROBLEMS))
def test_fuzz_every_loss(cls):
    outcomes = collections.Counter()

    @fuzz_settings(ci_examples=250)
    @given(data=st.data())
    def fuzz(data):
        DOUBTS.clear()
        problem = data.draw(PROBLEMS[cls](cls), label="problem")
        valid = not DOUBTS and refused_combination(problem) is None
        outcome = check_problem(problem)
        event(outcome)
        outcomes[outcome] += 1
        outcomes["valid arguments"] += valid
        assert not valid or outcome.startswith("ok"), (
            f"valid arguments rejected: {outcome}")

    fuzz()
    total = sum(outcomes.values()) - outcomes["valid arguments"]
    reached = sum(outcomes[o] for o in REACHED) / total
    compared = outcomes["ok, values compared"] / total
    valid = outcomes["valid arguments"] / total
    print(f"{cls}: {total} examples, reached {reached:.3f}, values compared {compared:.3f}, "
          f"valid {valid:.3f}: {dict(outcomes)}")
    assert valid >= MIN_VALID, f"only {valid:.1%} of {total} examples were valid"
    least_reached, least_compared = MIN_FRACTIONS[cls]
    assert reached >= least_reached, (
        f"only {reached:.1%} of {total} examples reached the kernels: {dict(outcomes)}")
    assert compared >= least_compared, (
        f"values compared in only {compared:.1%} of {total} examples: {dict(outcomes)}")
