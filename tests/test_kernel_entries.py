"""The compiled kernel entries check every array they are handed.

The Python layer always passes what a kernel expects; these tests call the
entries directly, as a mistake in that layer would, and check that a wrong
dtype, layout, shape or length raises instead of reaching the nogil code.
Each entry is first called with a correct set of arguments (so a failure
below is the one change, not a broken baseline), in every kernel build.
"""

import numpy as np
import pytest

from _all_losses import LOSSES
from _cases import WIDE_BUILDS, kernel_build

F32 = np.float32
BUILDS = ["baseline", *WIDE_BUILDS]


def _kernels(build, family):
    return kernel_build(f"_{family}", build)


def _elementwise_args():
    pred = np.ones((4, 5), F32)
    return "elementwise", "elementwise", dict(
        kind_id=0, param0=0.0, param1=0.0, pred=pred, label=pred.copy(), aux=None,
        weight=None, scale=0.2, row_weight=np.ones(4), out_grad=np.ones(4),
        out=np.empty(4, F32), grad=np.empty((4, 5), F32), n_threads=1)


def _softmax_args():
    return "softmax", "softmax_loss", dict(
        kind_id=0, from_logits=False, pred=np.zeros((4, 3), F32), label=None,
        index=np.array([0, 1, 2, 0], np.intp), weight=None, w_sample_stride=0, w_row_stride=0,
        w_class_stride=0, n_samples=4, n_inner=1, scale=1.0, sample_weight=None,
        out_grad=None, out=np.empty(4, F32), grad=np.empty((4, 3), F32), n_threads=1)


def _triplet_args():
    x = np.ones((4, 5), F32)
    return "pairwise", "triplet", dict(
        pred=x, positive=x.copy(), negative=x.copy(), margin=1.0, weight=1.0,
        row_weight=None, out_grad=None, out=np.empty(4, F32), grad_pred=np.empty((4, 5), F32),
        grad_positive=np.empty((4, 5), F32), grad_negative=np.empty((4, 5), F32), n_threads=1)


def _cosine_args():
    x = np.ones((4, 5), F32)
    return "pairwise", "cosine", dict(
        x=x, y=x.copy(), label=np.ones(4, F32), margin=0.0, weight=1.0, row_weight=None,
        out_grad=None, out=np.empty(4, F32), grad_x=np.empty((4, 5), F32),
        grad_y=np.empty((4, 5), F32), n_threads=1)


def _sdml_args():
    panel, n, dim = 16, 3, 5
    return "pairwise", "sdml", dict(
        a_rows=np.zeros((panel, dim), F32), b_panels=np.zeros((1, dim, panel), F32),
        a_cols=np.zeros((1, panel, panel), F32), b_cols=np.zeros((1, panel, panel), F32),
        n=n, y_diag=0.7, y_off=0.15, entropy=0.0, weight=1.0, out_grad=None,
        out=np.empty(n, F32), grad_x1=np.empty((n, dim), F32),
        grad_x2=np.empty((n, dim), F32), n_threads=1)


def _ctc_args():
    return "ctc", "ctc", dict(
        pred=np.zeros((2, 6, 4), F32), sample_axis=0,
        label=np.array([[0, 1], [2, -1]], np.int32), frames=np.array([6, 5], np.int64),
        label_length=np.array([2, 1], np.int64), loss_scale=np.ones(2),
        grad_scale=np.ones(2), zero_infinity=True, out=np.empty(2, F32),
        grad=np.empty((2, 6, 4), F32), n_threads=1)


ENTRIES = {"elementwise": _elementwise_args, "softmax_loss": _softmax_args,
           "triplet": _triplet_args, "cosine": _cosine_args, "sdml": _sdml_args,
           "ctc": _ctc_args}


def _wrong_arrays(name, value):
    """(description, wrong replacement, expected exception) for an array argument."""
    yield "a list", value.tolist(), TypeError
    other = np.float64 if value.dtype == F32 else (
        np.float32 if value.dtype == np.float64 else np.int16)
    with np.errstate(invalid="ignore"):     # np.empty buffers may hold NaN
        wrong_dtype = value.astype(other)
    yield "the wrong dtype", wrong_dtype, TypeError
    yield "byte-swapped", value.astype(value.dtype.newbyteorder()), TypeError
    yield "one more dimension", value[None], ValueError
    if value.ndim:
        longer = np.concatenate([value, value[:1]]) if len(value) else np.zeros(
            (1,) + value.shape[1:], value.dtype)
        yield "one more element along axis 0", longer, ValueError
    if value.ndim and value.shape[-1] > 1:
        wide = np.repeat(value, 2, axis=-1)
        yield "every other element (not contiguous)", wide[..., ::2], ValueError
    if value.ndim >= 2:
        yield "Fortran order", np.asfortranarray(value), ValueError


def _cases():
    for entry, make in ENTRIES.items():
        _, _, args = make()
        leading = next(name for name, value in args.items() if isinstance(value, np.ndarray))
        for name, value in args.items():
            if not isinstance(value, np.ndarray):
                continue
            for what, wrong, error in _wrong_arrays(name, value):
                # The leading array sets the dtype and the shape: changing it alone
                # makes the others wrong, and the message names one of them.
                named = not (name == leading and ("dtype" in what or "axis 0" in what))
                yield pytest.param(entry, name, wrong, error, named, id=f"{entry}-{name}-{what}")


def _call(build, entry, **changes):
    family, function, args = ENTRIES[entry]()
    args.update(changes)
    return getattr(_kernels(build, family), function)(**args)


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_entry_accepts_the_contract(build, entry):
    _call(build, entry)


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("entry, name, wrong, error, named", list(_cases()))
def test_entry_rejects_a_wrong_array(build, entry, name, wrong, error, named):
    if entry == "ctc" and name in ("pred", "grad") and isinstance(wrong, np.ndarray) and (
            wrong.ndim == 3 and not wrong.flags.c_contiguous
            and wrong.strides[-1] == wrong.itemsize):
        pytest.skip("CTC reads pred and writes grad through their strides")
    with pytest.raises(error, match=name if named else None):
        _call(build, entry, **{name: wrong})


@pytest.mark.parametrize("build", BUILDS)
def test_outputs_must_be_writeable(build):
    for entry, name in (("elementwise", "out"), ("softmax_loss", "grad"), ("triplet", "out"),
                        ("cosine", "grad_y"), ("sdml", "grad_x1"), ("ctc", "grad")):
        _, _, args = ENTRIES[entry]()
        value = args[name]
        value.flags.writeable = False
        with pytest.raises(ValueError, match=f"{name} must be writeable"):
            _call(build, entry, **{name: value})


@pytest.mark.parametrize("build", BUILDS)
def test_values_that_index_memory_are_checked(build):
    # Class indices, CTC lengths and labels address memory inside the kernels.
    with pytest.raises(ValueError, match=r"index\[2\] = 3 is outside \[0, 3\)"):
        _call(build, "softmax_loss", index=np.array([0, 1, 3, 0], np.intp))
    with pytest.raises(ValueError, match="ctc: sample 1"):
        _call(build, "ctc", frames=np.array([6, 7], np.int64))
    with pytest.raises(ValueError, match="ctc: sample 0"):
        _call(build, "ctc", label_length=np.array([3, 1], np.int64))
    with pytest.raises(ValueError, match="ctc: sample 1 .* position 0"):
        _call(build, "ctc", label=np.array([[0, 1], [3, -1]], np.int32))
    # The softmax weight's strides may not reach past its end.
    with pytest.raises(ValueError, match="weight strides address element"):
        _call(build, "softmax_loss", weight=np.ones((3, 1), F32), w_sample_stride=1)
    with pytest.raises(ValueError, match="unknown kind_id"):
        _call(build, "elementwise", kind_id=99)
    with pytest.raises(ValueError, match="sdml: a_rows"):
        _call(build, "sdml", n=20)


@pytest.mark.parametrize("build", BUILDS)
def test_gradients_come_all_or_none(build):
    with pytest.raises(ValueError, match="all or none"):
        _call(build, "triplet", grad_positive=None)
    with pytest.raises(ValueError, match="all or none"):
        _call(build, "cosine", grad_x=None)


@pytest.mark.parametrize("build", BUILDS)
def test_entries_take_keywords_only(build):
    family, function, args = ENTRIES["elementwise"]()
    with pytest.raises(TypeError):
        getattr(_kernels(build, family), function)(*args.values())


# -- what the entries refuse, the public API converts ------------------------------


def _unaligned(a):
    """``a``'s values at an odd address (a view into a byte buffer)."""
    raw = np.zeros(a.nbytes + 1, np.uint8)
    view = np.frombuffer(raw.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    view[...] = a
    return view


def _byteswapped(a):
    return a.astype(a.dtype.newbyteorder())


@pytest.mark.parametrize("convert", [_unaligned, _byteswapped])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("entry", LOSSES, ids=repr)
def test_public_api_accepts_unaligned_and_byteswapped_arrays(entry, dtype, convert):
    # The entries refuse such arrays; the validation layer hands them over as
    # aligned native copies, so the results are bitwise those of plain arrays.
    rng = np.random.default_rng(7)
    args, kwargs = entry.call_args(rng, "small", dtype)
    out_grad = entry.upstream(rng, args)
    want_out, want_grad = entry.make().value_and_gradient(*args, **kwargs, out_grad=out_grad)

    def spoil(value):
        if isinstance(value, np.ndarray) and value.dtype.itemsize > 1 and value.size:
            spoiled = convert(value)
            assert not (spoiled.flags.aligned and spoiled.dtype.isnative)
            return spoiled
        return value

    out, grad = entry.make().value_and_gradient(
        *map(spoil, args), **{k: spoil(v) for k, v in kwargs.items()}, out_grad=spoil(out_grad))
    assert out.dtype == want_out.dtype and out.tobytes() == want_out.tobytes()
    for got, want in zip(grad if isinstance(grad, tuple) else (grad,),
                         want_grad if isinstance(want_grad, tuple) else (want_grad,),
                         strict=True):
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
