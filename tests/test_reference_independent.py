"""gluonloss.reference is a second implementation: it runs none of the compiled path.

Two watches, each shown to fire on the compiled losses: every function of a
compiled extension module of gluonloss is replaced by one that raises, and a
profiler records every Python function of the package that runs outside
``reference.py`` (the scalar checks of ``_validation.py`` and the constructor
arguments of ``_settings.py`` excepted: the reference shares them on purpose, so
that constructors check, show and word their arguments the same way).
Then every loss of the reference runs on recorded cases and on bad input.

And because it is independent, a bug in the compiled label parsing now shows up
as a difference between the two: a deliberately broken class-index parser and CTC
label resolver are caught.  Its argument parsing, written again, accepts and
rejects exactly what the compiled losses do, with the same messages (on the
fuzzer's arguments).
"""
import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gluonloss as gl
from _fuzz_problems import PROBLEMS, fuzz_settings
from gluonloss import reference, testing

PACKAGE = str(Path(gl.__file__).resolve().parent)
REFERENCE = str(Path(reference.__file__).resolve())
SHARED_SCALAR_CHECKS = {"check_real", "check_int", "check_choice", "check_positive",
                        "check_ignore_label", "check_label_smoothing"}
SHARED_SETTINGS = {"Settings", "CTCSettings", "read_only"}


def _compiled_modules():
    return [module for name, module in sorted(sys.modules.items())
            if name.startswith("gluonloss.") and module is not None
            and str(getattr(module, "__file__", "")).endswith((".so", ".pyd"))]


class CompiledCall(Exception):
    pass


@contextlib.contextmanager
def watched(monkeypatch):
    """Compiled functions raise CompiledCall; yields the list of the package's
    Python functions (outside the reference and the shared checks) that ran."""
    for module in _compiled_modules():
        for name in dir(module):
            if not name.startswith("__") and callable(getattr(module, name)):
                def refuse(*args, _name=f"{module.__name__}.{name}", **kwargs):
                    raise CompiledCall(_name)
                monkeypatch.setattr(module, name, refuse)
    ran = []

    def profile(frame, event, arg):
        if event != "call":
            return
        code = frame.f_code
        path = str(Path(code.co_filename).resolve()) if os.path.isabs(code.co_filename) else ""
        if not path.startswith(PACKAGE) or path == REFERENCE:
            return
        if path.endswith("_validation.py") and code.co_name in SHARED_SCALAR_CHECKS:
            return
        if path.endswith("_settings.py"):
            return
        if code.co_name == "refuse" or path.endswith("testing.py"):
            return
        ran.append(f"{Path(path).name}:{code.co_name}")

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield ran
    finally:
        sys.setprofile(previous)
        monkeypatch.undo()


def _run(module, case):
    loss = getattr(module, case.loss)(**case.params)
    return loss.value_and_gradient(*case.inputs.values(), **case.kwargs, out_grad=case.out_grad)


# A few recorded cases per loss (every option family), and bad input that each
# family's own parsing rejects.
SAMPLED = [case for name in testing.LOSSES for case in testing.cases(name)[:6]]
BAD_CALLS = [
    ("SoftmaxCrossEntropyLoss", {}, (np.zeros((3, 4)), np.array([0, 4, 1]))),
    ("SoftmaxCrossEntropyLoss", {}, (np.zeros((3, 4)), np.array([0, 1.5, 1]))),
    ("KLDivLoss", {"axis": 0}, (np.zeros((3, 4)), np.zeros((3, 4)))),
    ("CTCLoss", {}, (np.zeros((2, 5, 3)), np.array([[0, 2], [1, -1]]))),
    ("CTCLoss", {}, (np.zeros((2, 5, 3)), np.array([[0, 1], [1, -1]]), None, [2, 2])),
    ("CTCLoss", {}, (np.zeros((2, 5, 3)), np.array([[0, 1], [1, -1]]), [5, 6])),
    ("CosineEmbeddingLoss", {}, (np.ones((2, 3)), np.ones((2, 3)), np.array([1, 0]))),
    ("TripletLoss", {}, (np.ones((2, 3)), np.ones((2, 3)), np.ones(5))),
    ("L2Loss", {}, (np.ones((2, 3)), np.ones(5))),
    ("SigmoidBCELoss", {}, (np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3)), np.ones(4))),
    ("SDMLLoss", {}, (np.ones((1, 3)), np.ones((1, 3)))),
    ("PoissonNLLLoss", {}, (np.ones((2, 3)), np.ones((2, 3)), np.ones((3, 3)))),
]


def test_the_reference_runs_no_compiled_code(monkeypatch):
    with watched(monkeypatch) as ran:
        for case in SAMPLED:
            testing.assert_case(case, *_run(reference, case))
        for name, params, args in BAD_CALLS:
            with pytest.raises(ValueError):
                getattr(reference, name)(**params)(*args)
    assert ran == [], f"the reference ran gluonloss code outside itself: {sorted(set(ran))}"


def test_the_watch_sees_the_compiled_path(monkeypatch):
    # The same watch catches the compiled losses, family by family.
    for name in ("L2Loss", "SoftmaxCrossEntropyLoss", "TripletLoss", "CTCLoss"):
        case = testing.cases(name)[0]
        with watched(monkeypatch) as ran:
            with pytest.raises(CompiledCall):
                _run(gl, case)
        assert ran, name


def test_the_reference_imports_only_scalar_checks_and_settings():
    from_package = {name for name, value in vars(reference).items()
                    if getattr(value, "__module__", "").startswith("gluonloss.")
                    and value.__module__ != "gluonloss.reference"}
    assert from_package <= SHARED_SCALAR_CHECKS | SHARED_SETTINGS, from_package


# -- a broken compiled parser is caught by compiled-vs-reference -------------------

def _compiled_kernel_variants(name):
    return [module for module in _compiled_modules() if module.__name__.startswith(
        f"gluonloss.{name}")]


def test_a_broken_class_index_parser_is_caught(monkeypatch):
    rng = np.random.default_rng(5)
    pred = rng.standard_normal((6, 5))
    label = np.array([4, 0, 3, 4, 1, 2])
    compiled, twin = gl.SoftmaxCrossEntropyLoss(), reference.SoftmaxCrossEntropyLoss()
    np.testing.assert_allclose(compiled(pred, label), twin(pred, label), rtol=1e-13)
    # int64 labels of a plain call are read by the fast entry (checked against
    # this parser's path in tests/test_fast_path.py): switch it off here.
    monkeypatch.setattr(gl.SoftmaxCrossEntropyLoss, "_fast_entry", None)
    for module in _compiled_kernel_variants("_softmax"):
        parse = module.class_indices

        def last_class_read_as_zero(flat, n_classes, ignore=None, _parse=parse):
            index, bad = _parse(flat, n_classes, ignore)
            return np.where(index == n_classes - 1, 0, index), bad
        monkeypatch.setattr(module, "class_indices", last_class_read_as_zero)
    out = compiled(pred, label)
    assert not np.allclose(out, twin(pred, label), rtol=1e-6)
    failures = testing.check(lambda case: _run(gl, case), "SoftmaxCrossEntropyLoss").failed
    assert failures


def test_a_broken_ctc_label_resolver_is_caught(monkeypatch):
    rng = np.random.default_rng(6)
    pred = rng.standard_normal((3, 6, 4))
    label = np.array([[0, 1, 2], [1, 1, 0], [2, 0, 0]])       # junk after each length
    lengths = np.array([1, 2, 0])
    compiled, twin = gl.CTCLoss(), reference.CTCLoss()
    np.testing.assert_allclose(compiled(pred, label, None, lengths),
                               twin(pred, label, None, lengths), rtol=1e-12)
    for module in _compiled_kernel_variants("_ctc"):
        resolve = module.resolve_labels

        def lengths_ignored(rows, given, n_classes, out_label, out_length, blank_first=False,
                            _resolve=resolve):
            return _resolve(rows, None, n_classes, out_label, out_length, blank_first)
        monkeypatch.setattr(module, "resolve_labels", lengths_ignored)
    assert not np.allclose(compiled(pred, label, None, lengths),
                           twin(pred, label, None, lengths), rtol=1e-6)


# -- the same arguments accepted and rejected, with the same messages ----------------

def _outcome(method, *args, **kwargs):
    try:
        with np.errstate(all="ignore"):
            method(*args, **kwargs)
    except Exception as exc:        # noqa: BLE001 -- the outcome is what is compared
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.mark.slow
@fuzz_settings(ci_examples=40)
@pytest.mark.parametrize("cls", sorted(PROBLEMS))
@given(data=st.data())
def test_the_reference_rejects_what_the_compiled_rejects(cls, data):
    # The fuzzer's arguments (odd dtypes, shapes, labels and lengths just out of
    # range, ...): both implementations raise the same error, or neither does.
    _, params, args, call, upstream, _ = data.draw(PROBLEMS[cls](cls), label="problem")
    compiled = _outcome(getattr(gl, cls), **params)
    assert _outcome(getattr(reference, cls), **params) == compiled
    if compiled != "ok":
        return
    pair = getattr(gl, cls)(**params), getattr(reference, cls)(**params)
    for name in ("forward", "gradient", "value_and_gradient"):
        extra = {} if name == "forward" else {"out_grad": upstream}
        got = [_outcome(getattr(loss, name), *args, **call, **extra) for loss in pair]
        assert got[1] == got[0], name
