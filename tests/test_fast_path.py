"""The compiled fast entry of the common call against the general path.

Every loss with a fast entry (the elementwise losses and SoftmaxCELoss with
sparse labels) is called twice on each input: as it is, and through a
subclass with the fast entry switched off, which validates and computes the
general way.  Both must give the same bits (dtype, shape and every byte,
NaN and inf included) or raise the same error with the same message.  The
inputs cover the common call and every way of leaving it.
"""
import numpy as np
import pytest

import gluonloss as gl
from _cases import WIDE_BUILDS, kernel_build
from gluonloss import elementwise, softmax
from gluonloss._threads import threads_for

ELEMENTWISE = [
    ("L2Loss", {}), ("L2Loss", {"weight": 0.3}), ("L1Loss", {}), ("HuberLoss", {"rho": 0.7}),
    ("HingeLoss", {"margin": 0.5}), ("SquaredHingeLoss", {}), ("LogisticLoss", {}),
    ("LogisticLoss", {"label_format": "binary"}), ("SigmoidBCELoss", {}),
    ("SigmoidBCELoss", {"from_sigmoid": True}), ("PoissonNLLLoss", {}),
    ("PoissonNLLLoss", {"from_logits": False, "compute_full": True, "weight": 2.0}),
    ("L2Loss", {"batch_axis": -2}), ("L1Loss", {"batch_axis": 1}),
]
SOFTMAX = [
    ("SoftmaxCELoss", {}), ("SoftmaxCELoss", {"from_logits": True, "weight": 0.5}),
    ("SoftmaxCELoss", {"axis": 0}), ("SoftmaxCELoss", {"batch_axis": 1}),
    ("SoftmaxCELoss", {"sparse_label": False}), ("KLDivLoss", {}),
    # The cross-entropy options, alone and together; ignore_label inside and
    # outside [0, C) and beyond int32; class weights with a zero, and of the
    # wrong length (the general path's error).
    ("SoftmaxCELoss", {"label_smoothing": 0.1}), ("SoftmaxCELoss", {"ignore_label": 1}),
    ("SoftmaxCELoss", {"ignore_label": -1}), ("SoftmaxCELoss", {"ignore_label": 2**40}),
    ("SoftmaxCELoss", {"class_weight": [0.5, 1.0, 2.0, 3.0]}),
    ("SoftmaxCELoss", {"class_weight": [0.0, 1.0, 2.0, 3.0], "label_smoothing": 0.2}),
    ("SoftmaxCELoss", {"class_weight": [0.5, 1.0, 2.0, 3.0], "label_smoothing": 0.3,
                       "ignore_label": -1, "from_logits": True}),
    ("SoftmaxCELoss", {"class_weight": [1e-60, 1.0, 2.0, 3.0], "label_smoothing": 0.1,
                       "ignore_label": 4}),
    ("SoftmaxCELoss", {"class_weight": [1.0, 2.0], "ignore_label": -1}),
]
METHODS = ("forward", "gradient", "value_and_gradient")


def _general(loss):
    """The same loss with the fast entry off: it takes the general path."""
    # The same name: messages that name the loss must match.
    general = type(type(loss).__name__, (type(loss),), {"_fast_entry": None})
    twin = general.__new__(general)
    twin.__dict__.update(loss.__dict__)
    return twin


def _outcome(call):
    """``('ok', result)`` or ``('raised', type, message)``."""
    try:
        return ("ok", call())
    except (TypeError, ValueError) as exc:
        return ("raised", type(exc), str(exc))


def _flat(result):
    if isinstance(result, tuple):
        return [x for part in result for x in _flat(part)]
    return [result]


def _assert_same(fast, general):
    """Same error, or same arrays byte for byte (NaNs' signs included)."""
    assert fast[0] == general[0], (fast, general)
    if fast[0] == "raised":
        assert fast[1:] == general[1:]
        return
    for a, b in zip(_flat(fast[1]), _flat(general[1]), strict=True):
        assert type(a) is type(b) is np.ndarray
        assert (a.dtype, a.shape, a.flags.c_contiguous) == (b.dtype, b.shape, True)
        assert a.tobytes() == b.tobytes()


def _check(loss, *args, **kwargs):
    general = _general(loss)
    for method in METHODS:
        _assert_same(_outcome(lambda m=method: getattr(loss, m)(*args, **kwargs)),
                     _outcome(lambda m=method: getattr(general, m)(*args, **kwargs)))


def _specials(rng, shape, dtype):
    """Random values with NaN, +-inf, zeros and subnormals sprinkled in."""
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    tiny = np.finfo(dtype).smallest_subnormal if np.dtype(dtype).kind == "f" else 0
    for value in (np.nan, np.inf, -np.inf, 0.0, -0.0, tiny):
        if flat.size:
            flat[rng.integers(0, flat.size)] = value
    return x


def _byteswapped(x):
    return x.astype(x.dtype.newbyteorder())


def _unaligned(x):
    raw = np.zeros(x.nbytes + 1, np.uint8)
    view = raw[1:].view(x.dtype).reshape(x.shape)
    view[...] = x
    return view


def _elementwise_inputs(rng, dtype):
    """(pred, label, kwargs) for the elementwise losses: common and not."""
    p = _specials(rng, (6, 5), dtype)
    y = rng.uniform(0, 1, (6, 5)).astype(dtype)
    other = np.float64 if dtype == np.float32 else np.float32
    cases = [
        (p, y, {}),                                        # the common call
        (np.abs(p), y, {}),
        (p[:1], y[:1], {}),                                # one sample
        (p.reshape(-1), y.reshape(-1), {}),                # 1-D: one element per sample
        (p.reshape(2, 3, 5), y.reshape(2, 3, 5), {}),
        (p, y.reshape(-1), {}),                            # label: same size, other shape
        (p, y.reshape(5, 6), {}),
        (p, y.astype(other), {}),                          # label of another dtype
        (p, (y > 0.5).astype(np.int64), {}),
        (p, y > 0.5, {}),
        (p, y.astype(np.float16), {}),
        (p, y.astype(np.longdouble), {}),
        (p, (y * 300 - 150).astype(np.int8), {}),
        (p, (y * 1e6).astype(np.uint64), {}),
        (p, np.full((6, 5), 2**63 + 2**40, np.uint64), {}),
        (p, np.full((6, 5), 2**62 + 1, np.int64), {}),
        (p.astype(np.float16), y, {}),                     # pred not float32/float64
        (np.nan_to_num(p, posinf=0, neginf=0).astype(np.int32), y, {}),
        (p > 0, y, {}),
        (p.astype(np.longdouble), y, {}),
        (p.T, y.T, {}),                                    # not C-contiguous
        (np.asfortranarray(p), y, {}),
        (p, np.asfortranarray(y), {}),
        (p[:, ::2], y[:, ::2], {}),
        (_byteswapped(p), y, {}),
        (p, _byteswapped(y), {}),
        (_unaligned(p), y, {}),
        (p, _unaligned(y), {}),
        (p.tolist(), y, {}),                               # not an ndarray
        (p, y.tolist(), {}),
        (np.ma.masked_array(p), y, {}),                    # an ndarray subclass
        (p, y[:-1], {}),                                   # bad: sizes differ
        (p, y[:, :4], {}),
        (p.astype(np.complex64), y, {}),                   # bad: dtypes
        (p, y.astype(np.complex128), {}),
        (p, np.array(["a"] * 30).reshape(6, 5), {}),
        (np.float32(1.5) if dtype == np.float32 else np.float64(1.5), y, {}),
        (np.array(1.5, dtype), np.array(0.5, dtype), {}),  # bad: 0-d
        (np.zeros((0, 5), dtype), np.zeros((0, 5), dtype), {}),   # empty batch
        (np.zeros((0,), dtype), np.zeros((0,), dtype), {}),
        (np.zeros((4, 0), dtype), np.zeros((4, 0), dtype), {}),   # bad: empty samples
        (np.zeros((0, 0), dtype), np.zeros((0, 0), dtype), {}),
        (p, y, {"sample_weight": rng.uniform(0, 2, (6, 1))}),    # options
        (p, y, {"sample_weight": None}),
        (p, y, {"sample_weight": np.ones((7, 1))}),
        (p.astype(np.float64), y.astype(np.float64), {}),
        (rng.standard_normal((3, 5000)).astype(dtype),            # several blocks per row
         rng.standard_normal((3, 5000)).astype(dtype), {}),
        (rng.standard_normal((40, 1000)).astype(dtype),           # several threads
         rng.standard_normal((40, 1000)).astype(dtype), {}),
    ]
    return cases


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "kwargs"), ELEMENTWISE, ids=lambda x: str(x))
def test_elementwise_fast_path_is_the_general_path(cls, kwargs, dtype):
    rng = np.random.default_rng(0)
    loss = getattr(gl, cls)(**kwargs)
    for pred, label, call in _elementwise_inputs(rng, dtype):
        if "batch_axis" in kwargs and np.ndim(pred) < 2:
            continue
        _check(loss, pred, label, **call)
    with gl.num_threads(2):
        big = rng.standard_normal((40, 1000)).astype(dtype)
        _check(loss, big, big[::-1].copy())


@pytest.mark.parametrize("cls", ["SigmoidBCELoss", "PoissonNLLLoss"])
def test_second_option_given_takes_the_general_path(cls):
    rng = np.random.default_rng(1)
    loss = getattr(gl, cls)(from_logits=False) if cls == "PoissonNLLLoss" else getattr(gl, cls)()
    pred = rng.uniform(0.1, 2, (4, 3))
    label = rng.uniform(0, 1, (4, 3))
    extra = {"pos_weight": np.array([[1.0, 2.0, 3.0]])} if cls == "SigmoidBCELoss" else {
        "epsilon": 0.5}
    _check(loss, pred, label, **extra)
    _check(loss, pred, label, **{name: "bad" for name in extra})
    assert loss(pred, label, **extra).tobytes() != loss(pred, label).tobytes()


def test_out_grad_takes_the_general_path():
    rng = np.random.default_rng(2)
    pred, label = rng.standard_normal((2, 4, 3))
    for loss in (gl.L2Loss(), gl.SoftmaxCELoss()):
        y = label if isinstance(loss, gl.L2Loss) else np.array([0, 2, 1, 1])
        for out_grad in (None, rng.standard_normal(4), 2.0, np.ones(3), "x"):
            for method in ("gradient", "value_and_gradient"):
                _assert_same(
                    _outcome(lambda m=method, g=out_grad: getattr(loss, m)(pred, y, out_grad=g)),
                    _outcome(lambda m=method, g=out_grad: getattr(_general(loss), m)(
                        pred, y, out_grad=g)))


def _softmax_inputs(rng, dtype, n_classes=4):
    p = _specials(rng, (6, n_classes), dtype)
    y = rng.integers(0, n_classes, 6)
    dense = rng.dirichlet(np.ones(n_classes), 6).astype(dtype)
    cases = [
        (p, y, {}),                                        # the common call
        (p, y.astype(np.int32), {}),
        (p, y.astype(np.intp), {}),
        (p, y.astype(np.longlong), {}),
        (p, y.astype(np.int8), {}),                        # other label dtypes
        (p, y.astype(np.int16), {}),
        (p, y.astype(np.uint8), {}),
        (p, y.astype(np.uint64), {}),
        (p, y.astype(np.float32), {}),
        (p, y.astype(np.float64), {}),
        (p, y.astype(bool), {}),
        (p, y.reshape(6, 1), {}),                          # label: N elements, other shape
        (p, y.reshape(2, 3), {}),
        (p, y.tolist(), {}),
        (p, _byteswapped(y), {}),
        (p, _unaligned(y), {}),
        (p, np.repeat(y, 2)[::2], {}),                     # strided label
        (p, np.where(np.arange(6) == 3, -1, y), {}),       # bad labels
        (p, np.where(np.arange(6) == 2, n_classes, y), {}),
        (p, np.where(np.arange(6) == 4, 2**40, y), {}),
        (p, np.where(np.arange(6) == 1, -1, y).astype(np.int32), {}),
        (p, np.where(np.arange(6) == 5, n_classes, y).astype(np.int32), {}),
        (p, np.where(np.arange(6) == 0, 0.5, y), {}),
        (p, np.where(np.arange(6) == 0, np.nan, y), {}),
        (p, y[:-1], {}),                                   # bad: label size
        (p, np.concatenate([y, y]), {}),
        (p, y.astype(np.complex64), {}),
        (p, dense, {}),
        (p.T, y[:4], {}),                                  # pred not C-contiguous
        (np.asfortranarray(p), y, {}),
        (_byteswapped(p), y, {}),
        (_unaligned(p), y, {}),
        (p.astype(np.float16), y, {}),                     # pred dtypes
        (np.nan_to_num(p, posinf=0, neginf=0).astype(np.int64), y, {}),
        (p > 0, y, {}),
        (p.astype(np.complex128), y, {}),
        (p.tolist(), y, {}),
        (np.ma.masked_array(p), y, {}),
        (p.reshape(-1), y[:1], {}),                        # 1-D pred: one sample
        (p.reshape(-1), np.array(3), {}),
        (p.reshape(2, 3, n_classes), y.reshape(2, 3), {}), # 3-D pred
        (np.array(1.0, dtype), np.array(0), {}),           # bad: 0-d
        (np.zeros((0, n_classes), dtype), np.zeros(0, np.int64), {}),  # empty batch
        (np.zeros((3, 0), dtype), np.zeros(3, np.int64), {}),          # bad: no classes
        (np.zeros((0, 0), dtype), np.zeros(0, np.int64), {}),
        (p, y, {"sample_weight": rng.uniform(0, 2, (6, 1))}),
        (p, y, {"sample_weight": None}),
        (p, y, {"sample_weight": np.ones((5, 1))}),
        (rng.standard_normal((4, 5000)).astype(dtype), rng.integers(0, 5000, 4), {}),
        (rng.standard_normal((64, 1000)).astype(dtype), rng.integers(0, 1000, 64), {}),
    ]
    return cases


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "kwargs"), SOFTMAX, ids=lambda x: str(x))
def test_softmax_fast_path_is_the_general_path(cls, kwargs, dtype):
    rng = np.random.default_rng(3)
    loss = getattr(gl, cls)(**kwargs)
    for pred, label, call in _softmax_inputs(rng, dtype):
        _check(loss, pred, label, **call)
    with gl.num_threads(2):
        _check(loss, rng.standard_normal((64, 1000)).astype(dtype), rng.integers(0, 1000, 64))


# -- the fast entry is taken exactly where it should be -------------------------


def _spy(monkeypatch, cls):
    """Record, per call of ``cls``'s fast entry, whether it answered."""
    answers = []
    entry = cls._fast_entry

    def spy(*args):
        result = entry(*args)
        answers.append(result is not None)
        return result

    monkeypatch.setattr(cls, "_fast_entry", staticmethod(spy))
    return answers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "kwargs"), [c for c in ELEMENTWISE if "batch_axis" not in c[1]]
                         + [("SoftmaxCELoss", {}), ("SoftmaxCELoss", {"batch_axis": -2}),
                            ("SoftmaxCELoss", {"class_weight": [1.0, 2.0, 0.0],
                                               "label_smoothing": 0.1, "ignore_label": -100})],
                         ids=lambda x: str(x))
def test_the_common_call_takes_the_fast_entry(monkeypatch, cls, kwargs, dtype):
    loss = getattr(gl, cls)(**kwargs)
    answers = _spy(monkeypatch, type(loss))
    rng = np.random.default_rng(4)
    pred = rng.uniform(0.1, 0.9, (8, 3)).astype(dtype)
    label = rng.integers(0, 3, 8) if cls == "SoftmaxCELoss" else rng.uniform(0, 1, (8, 3)).astype(
        dtype)
    if "ignore_label" in kwargs:
        label[2] = kwargs["ignore_label"]
    loss(pred, label)
    loss.gradient(pred, label)
    loss.value_and_gradient(pred, label)
    assert answers == [True] * 3
    if cls != "SoftmaxCELoss":     # labels of another real dtype are cast in the entry
        for cast in (np.int64, np.int8, bool, np.float16, np.float64, np.float32):
            loss(pred, label.astype(cast))
        assert answers == [True] * 9
        del answers[3:]
    loss(pred, label, sample_weight=np.ones((8, 1)))
    loss.gradient(pred, label, out_grad=np.ones(8))
    loss(np.asfortranarray(pred), label)
    assert answers[3:] == [False] * 3


def test_subclasses_that_change_validation_or_computation_take_the_general_path():
    class Scaled(gl.L2Loss):
        def _compute(self, call, want_loss, want_grad):
            out, grad = super()._compute(call, want_loss, want_grad)
            return (None if out is None else 2 * out), (None if grad is None else 2 * grad)

    class Checked(gl.SoftmaxCELoss):
        def _validate(self, inputs, options, out_grad):
            raise ValueError("refused")

    class Plain(gl.L1Loss):
        pass

    pred, label = np.ones((2, 3)), np.zeros((2, 3))
    assert Scaled._fast_entry is None and Checked._fast_entry is None
    assert Plain._fast_entry is gl.L1Loss._fast_entry is not None
    np.testing.assert_array_equal(Scaled()(pred, label), [1.0, 1.0])
    with pytest.raises(ValueError, match="refused"):
        Checked()(pred, np.array([0, 1]))


# -- the entries themselves -------------------------------------------------------


@pytest.mark.parametrize("build", ["baseline", *WIDE_BUILDS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_build_of_the_fast_entries_gives_the_same_bits(build, dtype):
    rng = np.random.default_rng(5)
    for shape in ((7, 13), (3, 5000), (200, 300)):
        pred = _specials(rng, shape, dtype)
        label = rng.standard_normal(shape).astype(dtype)
        classes = rng.integers(0, shape[1], shape[0])
        for loss, kernel, entry, args in (
                (gl.HuberLoss(rho=0.5), "_elementwise", "elementwise_fast", (pred, label)),
                (gl.SigmoidBCELoss(), "_elementwise", "elementwise_fast", (pred, label)),
                (gl.SoftmaxCELoss(), "_softmax", "sparse_ce_fast", (pred, classes))):
            module = kernel_build(kernel, build)
            with gl.num_threads(2):
                result = getattr(module, entry)(loss._fast_constants(), args,
                                                loss._option_defaults, None, True, True,
                                                threads_for)
            _assert_same(("ok", result), ("ok", _general(loss).value_and_gradient(*args)))


@pytest.mark.parametrize(("entry", "loss"), [
    ("elementwise_fast", gl.L2Loss()), ("sparse_ce_fast", gl.SoftmaxCELoss())])
def test_fast_entries_refuse_malformed_arguments_without_crashing(entry, loss):
    module = {"elementwise_fast": elementwise._elementwise,
              "sparse_ce_fast": softmax._softmax}[entry]
    fast = getattr(module, entry)
    pred = np.ones((2, 3))
    label = np.zeros((2, 3)) if entry == "elementwise_fast" else np.array([0, 1])
    constants = loss._fast_constants()
    good = (constants, (pred, label), (None,), None, True, True, threads_for)
    assert fast(*good) is not None
    for position, bad in ((0, list(constants)), (0, None), (1, [pred, label]), (2, None)):
        args = list(good)
        args[position] = bad
        with pytest.raises(TypeError):
            fast(*args)
    with pytest.raises((TypeError, ValueError)):
        fast(constants, (pred,), (None,), None, True, True, threads_for)
    with pytest.raises(TypeError):
        fast(constants[:-1], (pred, label), (None,), None, True, True, threads_for)
    no_defaults = list(constants)
    no_defaults[{"elementwise_fast": 4, "sparse_ce_fast": 5}[entry]] = None
    with pytest.raises(TypeError):
        fast(tuple(no_defaults), (pred, label), (None,), None, True, True, threads_for)
    with pytest.raises(TypeError):
        fast(constants + (0,), (pred, label), (None,), None, True, True, threads_for)
    with pytest.raises(TypeError):
        fast(constants, (pred, label), (None,), None, True, True, None)
    # not the common call: None, and nothing is computed
    assert fast(constants, (pred, label), (np.ones(1),), None, True, True, threads_for) is None
    assert fast(constants, (pred, label), (), None, True, True, threads_for) is None
    assert fast(constants, (pred, label), (None,), np.ones(2), True, True, threads_for) is None
    if entry == "elementwise_fast":
        with pytest.raises(ValueError, match="unknown kind_id"):
            fast((99,) + constants[1:], (pred, label), (None,), None, True, False, threads_for)
    else:
        assert fast((99,) + constants[1:], (pred, label), (None,), None, True, False,
                    threads_for) is None
