"""The fuzz harness's draws: constructor parameters and call arguments of
every loss, mostly valid, with every way an argument can be wrong drawn now
and then (odd scalars, bad dtypes, changed shapes, out-of-range indices).

``PROBLEMS[cls]`` is a Hypothesis strategy of ``(cls, kwargs, args, call,
upstream)`` problems; ``doubt(reason)`` records why a draw may be invalid, in
``DOUBTS``, which a test clears before each example.  Used by
``tests/test_fuzz.py`` and ``tests/test_reference_independent.py``.
"""
import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from _layouts import LAYOUTS, with_layout

_EXAMPLES = int(os.environ.get("GLUONLOSS_FUZZ_EXAMPLES", "0"))


def fuzz_settings(ci_examples):
    return settings(max_examples=_EXAMPLES or ci_examples, deadline=None,
                    suppress_health_check=list(HealthCheck))


# -- which draws may be invalid ----------------------------------------------------------
# Every draw that can make an argument invalid (an odd alternative, a changed
# shape, a bad dtype, an out-of-range index, a combination the loss refuses)
# records why here.  An example with no record has valid arguments only, and
# all three calls must succeed on it: a regression that rejects valid input
# (an off-by-one in a range check, a refused axis or length) fails the test.
# Hypothesis draws one example at a time in one thread; the test resets it.

DOUBTS = []


def doubt(reason):
    DOUBTS.append(reason)


def _fits(x, target_shape):
    """Whether argument ``x`` (None: absent) broadcasts to ``target_shape``
    without enlarging it."""
    if x is None:
        return True
    shape = np.shape(x)
    if len(shape) > len(target_shape):
        return False
    return all(a in (1, b) for a, b in zip(reversed(shape), reversed(target_shape), strict=False))


# -- scalars -----------------------------------------------------------------------------

ODD_SCALARS = st.sampled_from([None, "1", b"1", [1.0], (2,), {}, 1 + 2j, object(),
                               np.array([1.0, 2.0]), np.array("x"), np.complex64(1)])
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def mostly(draw, valid, odd, odd_in_ten=1):
    """``valid`` nine times in ten (by default), else ``odd``: most examples
    must get past the constructor and the validation to reach the kernels."""
    # 0 (where Hypothesis shrinks to) is valid.
    if draw(st.integers(0, 9)) >= 10 - odd_in_ten:
        doubt("an odd alternative")
        return draw(odd)
    return draw(valid)


def real_parameter(typical):
    """A real scalar parameter: typical values, sometimes any float, a NumPy
    scalar or an odd type."""
    return mostly(typical, st.one_of(ANY_FLOAT, st.integers(-3, 3), st.booleans(),
                                     typical.map(np.float32), typical.map(np.array),
                                     ODD_SCALARS))


WEIGHT = mostly(st.one_of(st.none(), st.floats(-3, 3)), real_parameter(st.floats(-3, 3)))
FLAG = mostly(st.booleans(), st.sampled_from([0, 1, None, "yes", np.bool_(1)]))


def choice(valid, odd):
    return mostly(st.sampled_from(valid), st.sampled_from(odd))


def axis_parameter(ndim=2):
    """An axis of an ``ndim``-dimensional array, sometimes out of range or not an int."""
    return mostly(st.integers(-max(ndim, 1), max(ndim, 1) - 1),
                  st.one_of(st.integers(-9, 9),
                            st.sampled_from([1.0, "0", None, np.int64(1), np.uint8(0), True,
                                             2**70])))


# -- arrays ------------------------------------------------------------------------------

FLOAT_DTYPES = [np.float32, np.float64]
OTHER_REAL_DTYPES = [np.float16, np.longdouble, np.bool_, np.int8, np.int32, np.int64,
                     np.uint8, np.uint64, ">f4", ">f8"]
BAD_DTYPES = [np.complex64, np.complex128, "U3", "S3", object, "M8[s]", "m8[s]"]


def _elements(dtype, wild):
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and not wild:
        return st.floats(-8, 8, width=min(64, 8 * dtype.itemsize))
    if dtype.kind in "iu" and not wild:
        return st.integers(max(-3, int(np.iinfo(dtype).min)), 9)
    if dtype.kind == "O":
        return st.sampled_from([1, 2.5, None, "a", [1]])
    if dtype == np.longdouble:
        return st.floats(allow_nan=True).map(np.longdouble)
    return hnp.from_dtype(dtype)


@st.composite
def related_shape(draw, base):
    """A shape equal or close to ``base``: most calls should pass validation."""
    size = int(np.prod(base))
    choice = draw(st.integers(0, 49))
    if choice <= 45:
        return base
    doubt("a changed shape")
    if choice == 46:
        return (size,)
    if choice == 47:
        return tuple(reversed(base))
    if choice == 48 and base:
        i = draw(st.integers(0, len(base) - 1))
        return base[:i] + (draw(st.integers(0, 4)),) + base[i + 1:]
    return draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))


@st.composite
def arrays(draw, shape, dtype=None, values=None, index=False):
    """An array argument of ``shape`` (or a nearby one): a float array by default,
    sometimes any other dtype, a view with odd strides, a list or a scalar.
    ``index``: the values must come from ``values`` (class indices, labels,
    lengths), so any other draw may be invalid."""
    shape = draw(related_shape(shape))
    kind = draw(st.integers(0, 39))
    if dtype is None or kind >= 38:
        if kind < 32:
            dtype = draw(st.sampled_from(FLOAT_DTYPES))
        elif kind < 38:
            dtype = draw(st.sampled_from(OTHER_REAL_DTYPES))
        else:
            dtype = draw(st.sampled_from(BAD_DTYPES))
            doubt("a non-numeric dtype")
    dtype = np.dtype(dtype)
    from_values = values is not None and dtype.kind in "biuf" and draw(st.integers(0, 3)) < 3
    if index and not from_values:
        doubt("index values not drawn from their range")
    if from_values:
        elements = values.map(lambda v: np.array(v).astype(dtype).item() if dtype.kind != "f"
                              or dtype == np.longdouble else v)
        a = np.array(draw(st.lists(elements, min_size=int(np.prod(shape)),
                                   max_size=int(np.prod(shape)))), dtype=dtype).reshape(shape)
    elif dtype.kind in "USOMm":
        fill = {"U": "ab", "S": b"ab", "O": None, "M": np.datetime64(1, "s"),
                "m": np.timedelta64(1, "s")}[dtype.kind]
        a = np.full(shape, fill, dtype=dtype)
    else:
        a = draw(hnp.arrays(dtype, shape, elements=_elements(dtype, draw(st.booleans()))))
    form = draw(st.integers(0, 11))          # 0 (the simplest) is the plain array
    if 8 <= form < 11:                       # the same values in another memory layout
        return with_layout(a, draw(st.sampled_from(LAYOUTS)))
    if form == 11:
        return a.tolist()
    return a


def maybe(strategy):
    return st.one_of(st.none(), strategy)


def pred_shape(min_dims=1, max_dims=4):
    """Mostly non-empty shapes (an empty sample is an error); 0-size sides or
    no dimensions at all one time in five."""
    return mostly(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=5),
                  hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=5),
                  odd_in_ten=2)


@st.composite
def index_array(draw, shape, low, high, valid=None, odd=None):
    """An int64 array of indices in [low, high] (or from ``valid``); one time in
    five, one entry anywhere in it is the nearest invalid value (or from
    ``odd``) -- the entry an off-by-one check lets through -- or every entry
    is drawn from a range two past either end."""
    valid = valid if valid is not None else st.integers(low, max(low, high))
    odd = odd if odd is not None else st.sampled_from([low - 1, high + 1])
    a = draw(mostly(arrays(shape, np.int64, valid, index=True),
                    arrays(shape, np.int64, st.integers(low - 2, high + 2), index=True),
                    odd_in_ten=1))
    if draw(st.integers(0, 9)) < 8 or not isinstance(a, np.ndarray) or not a.size \
            or a.dtype.kind not in "iuf" or not a.flags.writeable:
        return a
    a = a.copy()
    position, value = draw(st.integers(0, a.size - 1)), draw(odd)
    if np.can_cast(np.min_scalar_type(value), a.dtype) or a.dtype.kind == "f":
        a.flat[position] = value
        doubt("an index out of its range")
    return a


@st.composite
def out_grad(draw, n):
    return draw(maybe(arrays((n,))))


def _n(shape, axis):
    try:
        return shape[axis]
    except (IndexError, TypeError):
        return 1


# -- one problem per loss family -------------------------------------------------------
# Each returns (class name, constructor kwargs, positional args, keyword args,
# out_grad, names of the arguments that are indices rather than values).

ELEMENTWISE = ["L2Loss", "L1Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss",
               "SigmoidBinaryCrossEntropyLoss", "PoissonNLLLoss"]


@st.composite
def elementwise_problem(draw, cls):
    shape = draw(pred_shape())
    kwargs = {"weight": draw(WEIGHT), "batch_axis": draw(axis_parameter(len(shape)))}
    if cls == "HuberLoss":
        kwargs["rho"] = draw(real_parameter(st.floats(0.01, 3)))
    if cls in ("HingeLoss", "SquaredHingeLoss"):
        kwargs["margin"] = draw(real_parameter(st.floats(-2, 3)))
    if cls == "LogisticLoss":
        kwargs["label_format"] = draw(choice(["signed", "binary"], ["bogus", None, 1]))
    if cls == "SigmoidBinaryCrossEntropyLoss":
        kwargs["from_sigmoid"] = draw(FLAG)
    if cls == "PoissonNLLLoss":
        kwargs["from_logits"] = draw(FLAG)
        kwargs["compute_full"] = draw(FLAG)
    n = _n(shape, kwargs["batch_axis"])
    label_values = (st.sampled_from([-1.0, 1.0, 0.0, 0.5, 2.0, 7.0]) if cls != "L2Loss"
                    else None)
    args = [draw(arrays(shape)), draw(arrays(shape, values=label_values))]
    sw_shape = draw(st.sampled_from([shape, shape[-1:], (1,) * len(shape), ()]))
    call = {"sample_weight": draw(maybe(arrays(sw_shape)))}
    if cls == "SigmoidBinaryCrossEntropyLoss":
        call["pos_weight"] = draw(maybe(arrays(shape[-1:])))
    if cls == "PoissonNLLLoss":
        call["epsilon"] = draw(real_parameter(st.floats(0, 1e-3)))
    return cls, kwargs, args, call, draw(out_grad(n)), ()


@st.composite
def softmax_problem(draw, cls):
    shape = draw(pred_shape(min_dims=1))
    kwargs = {"axis": draw(axis_parameter(len(shape))), "weight": draw(WEIGHT),
              "batch_axis": draw(axis_parameter(len(shape))), "from_logits": draw(FLAG)}
    if cls == "SoftmaxCrossEntropyLoss":
        kwargs["sparse_label"] = draw(FLAG)
    if (cls == "KLDivLoss" and len(shape) > 1 and all(isinstance(kwargs[k], int)
                                                      for k in ("axis", "batch_axis"))
            and kwargs["axis"] % len(shape) == kwargs["batch_axis"] % len(shape)
            and draw(st.integers(0, 3))):
        # KLDivLoss refuses axis == batch_axis: mostly move the batch axis.
        kwargs["batch_axis"] = (kwargs["axis"] + 1) % len(shape)
    axis = kwargs["axis"] if isinstance(kwargs["axis"], int) else -1
    n_classes = _n(shape, axis)
    sparse = cls == "SoftmaxCrossEntropyLoss" and kwargs["sparse_label"]
    if sparse:
        try:
            label_shape = shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
        except (ZeroDivisionError, TypeError):
            label_shape = shape
        label = draw(index_array(label_shape, 0, n_classes - 1))
        sw_shape = label_shape
    else:
        label = draw(arrays(shape, values=st.floats(0, 1)))
        sw_shape = shape
    call = {"sample_weight": draw(maybe(arrays(draw(st.sampled_from([sw_shape, (1,)])))))}
    n = _n(shape, kwargs["batch_axis"])
    return cls, kwargs, [draw(arrays(shape)), label], call, draw(out_grad(n)), (
        ("label",) if sparse else ())


@st.composite
def ctc_problem(draw, cls="CTCLoss"):
    kwargs = {"layout": draw(choice(["NTC", "TNC"], ["NCT", None])),
              "label_layout": draw(choice(["NT", "TN"], ["XY", 0])),
              "weight": draw(WEIGHT), "zero_infinity": draw(FLAG)}
    n, t, c, width = (draw(st.integers(0, 4)), draw(st.integers(0, 6)), draw(st.integers(0, 5)),
                      draw(st.integers(0, 7)))
    pred = draw(arrays((t, n, c) if kwargs["layout"] == "TNC" else (n, t, c)))
    label = draw(index_array((width, n) if kwargs["label_layout"] == "TN" else (n, width),
                             -1, c - 2))
    call = {"pred_lengths": draw(maybe(index_array((n,), 0, t))),
            "label_lengths": draw(maybe(index_array((n,), 0, width))),
            "sample_weight": draw(maybe(arrays(draw(st.sampled_from([(n,), (n, 1)])))))}
    return cls, kwargs, [pred, label], call, draw(out_grad(n)), (
        "label", "pred_lengths", "label_lengths")


@st.composite
def triplet_problem(draw, cls="TripletLoss"):
    shape = draw(pred_shape())
    kwargs = {"margin": draw(real_parameter(st.floats(-2, 3))), "weight": draw(WEIGHT),
              "batch_axis": draw(axis_parameter(len(shape)))}
    n = _n(shape, kwargs["batch_axis"])
    args = [draw(arrays(shape)) for _ in range(3)]
    call = {"sample_weight": draw(maybe(arrays(draw(st.sampled_from([(n,), (n, 1)])))))}
    return cls, kwargs, args, call, draw(out_grad(n)), ()


@st.composite
def cosine_problem(draw, cls="CosineEmbeddingLoss"):
    shape = draw(pred_shape())
    kwargs = {"weight": draw(WEIGHT), "batch_axis": draw(axis_parameter(len(shape))),
              "margin": draw(real_parameter(st.floats(-1, 1)))}
    n = int(np.prod(shape[:-1])) if shape else 1
    label = draw(index_array((n,), -1, 1, valid=st.sampled_from([-1, 1]),
                             odd=st.sampled_from([0, 2, -2])))
    args = [draw(arrays(shape)), draw(arrays(shape)), label]
    call = {"sample_weight": draw(maybe(arrays(draw(st.sampled_from([(n,), (n, 1)])))))}
    return cls, kwargs, args, call, draw(out_grad(n)), ("label",)


@st.composite
def sdml_problem(draw, cls="SDMLLoss"):
    kwargs = {"smoothing_parameter": draw(real_parameter(st.floats(0, 1))),
              "weight": draw(WEIGHT), "batch_axis": draw(axis_parameter(2))}
    shape = draw(mostly(pred_shape(min_dims=2, max_dims=2), pred_shape(max_dims=3)))
    n = _n(shape, 0)
    return cls, kwargs, [draw(arrays(shape)), draw(arrays(shape))], {}, draw(out_grad(n)), ()


def refused_combination(problem):
    """Why a problem drawn from valid parts only is still invalid (a
    combination the loss documents as an error), or None."""
    cls, kwargs, args, call, upstream, _ = problem
    shape = np.shape(args[0])
    if cls in ("SoftmaxCrossEntropyLoss", "KLDivLoss"):
        axis, batch_axis = kwargs["axis"] % len(shape), kwargs["batch_axis"] % len(shape)
        if cls == "KLDivLoss" and axis == batch_axis:
            return "KLDivLoss with axis == batch_axis"
        loss_shape = shape if cls == "KLDivLoss" else shape[:axis] + (1,) + shape[axis + 1:]
        if not _fits(call["sample_weight"], loss_shape):
            return "a sample_weight that does not fit the elementwise loss"
        n_out = loss_shape[batch_axis]
    elif cls == "CosineEmbeddingLoss":
        n_out = int(np.prod(shape[:-1]))
    elif cls == "SDMLLoss":
        if len(shape) != 2 or shape[0] < 2:
            return "SDMLLoss with fewer than 2 rows"
        if not 0 <= kwargs["smoothing_parameter"] < 1:
            return "a smoothing_parameter outside [0, 1)"
        n_out = shape[0]
    elif cls == "CTCLoss":
        if len(shape) != 3 or np.ndim(args[1]) != 2:
            return "CTC arguments that lost their dimensions (empty lists)"
        if shape[2] == 0:
            return "CTCLoss without classes"
        label = np.asarray(args[1])
        rows = label if kwargs["label_layout"] == "NT" else label.T
        lengths = call["label_lengths"]
        if lengths is not None and any((rows[b, :length] == -1).any()
                                       for b, length in enumerate(np.ravel(lengths))):
            return "a -1 (padding) inside label_lengths"
        n_out = shape[kwargs["layout"].index("N")]
    else:
        n_out = shape[kwargs["batch_axis"]]
        if not _fits(call.get("sample_weight"), shape):
            return "a sample_weight that does not fit pred"
    if not _fits(upstream, (n_out,)):
        return "an out_grad that does not fit the output"
    return None


PROBLEMS = {**{cls: elementwise_problem for cls in ELEMENTWISE},
            "SoftmaxCrossEntropyLoss": softmax_problem, "KLDivLoss": softmax_problem,
            "CTCLoss": ctc_problem, "TripletLoss": triplet_problem,
            "CosineEmbeddingLoss": cosine_problem, "SDMLLoss": sdml_problem}
assert len(PROBLEMS) == 14


# -- the checks ---------------------------------------------------------------------------
