"""The error catalog of docs/semantics.rst (``tests/_error_catalog.py``), run:
every documented argument error for every loss it applies to.

Call-time errors are raised by all three entry points (``forward``,
``gradient``, ``value_and_gradient``), compiled and reference alike.
:func:`test_every_public_loss_is_in_the_catalog` makes a new loss without
catalog entries fail.
"""
import inspect

import numpy as np
import pytest

import gluonloss as gl
from _error_catalog import CALL_ENTRIES, CONSTRUCTOR_ENTRIES, ENTRIES, SUBJECT, SUBJECTS, N
from gluonloss import reference

IMPLS = [pytest.param(gl, id="compiled"), pytest.param(reference, id="reference")]


@pytest.mark.parametrize("entry", CONSTRUCTOR_ENTRIES, ids=[e.id for e in CONSTRUCTOR_ENTRIES])
def test_constructor_errors(entry):
    s = SUBJECT[entry.subject]
    with pytest.raises(entry.exc, match=entry.pattern):
        # batch_axis out of range is found at the first call (pred's ndim).
        getattr(gl, s.cls)(**{**s.ctor, **entry.ctor})(**s.args)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("entry", CALL_ENTRIES, ids=[e.id for e in CALL_ENTRIES])
def test_call_errors(impl, entry):
    s = SUBJECT[entry.subject]
    loss = getattr(impl, s.cls)(**s.ctor)
    args = {**s.args, **entry.call}
    out_grad = args.pop("out_grad", None)
    calls = [lambda: loss.value_and_gradient(**args, out_grad=out_grad),
             lambda: loss.gradient(**args, out_grad=out_grad)]
    if "out_grad" not in entry.call:
        calls.append(lambda: loss.forward(**args))
    for call in calls:
        with pytest.raises(entry.exc, match=entry.pattern):
            call()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("subject", SUBJECTS, ids=[s.id for s in SUBJECTS])
def test_the_valid_arguments_are_valid(impl, subject):
    # Every entry spoils one argument of a call that otherwise succeeds.
    loss = getattr(impl, subject.cls)(**subject.ctor)
    out, _ = loss.value_and_gradient(**subject.args, out_grad=np.ones(N))
    assert out.shape == (N,)


def _public_losses():
    classes = {getattr(gl, name) for name in gl.__all__}
    return sorted((c for c in classes if isinstance(c, type) and issubclass(c, gl.Loss)
                   and c is not gl.Loss), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _public_losses(), ids=lambda c: c.__name__)
def test_every_public_loss_is_in_the_catalog(cls):
    subjects = [s for s in SUBJECTS if s.cls == cls.__name__]
    assert subjects, f"{cls.__name__} has no entries in the error catalog"
    call_params = list(inspect.signature(cls.value_and_gradient).parameters)[1:]
    ctor_params = inspect.signature(cls).parameters
    for s in subjects:
        # The subject passes every call argument, so each one's errors are covered.
        assert list(s.args) + ["out_grad"] == call_params, s.id
        kinds = {e.kind for e in ENTRIES if e.subject == s.id}
        required = {"weight", "out_grad-shape"} | {
            f"non-numeric:{name}" for name in call_params if name != "epsilon"}
        required |= {k for k in ("sample_weight-shape",) if "sample_weight" in s.args}
        required |= {"batch_axis-type"} if "batch_axis" in ctor_params else set()
        required |= {"batch_axis"} if s.uses_batch_axis else set()
        assert required <= kinds, f"{s.id} lacks catalog entries: {sorted(required - kinds)}"
        assert any(k.startswith("size:") for k in kinds), f"{s.id} has no size-mismatch entry"
