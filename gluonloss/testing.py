"""MXNet 1.9.1's recorded losses as a conformance kit for any implementation.

The package ships, for each of the fourteen losses, cases recorded with Apache
MXNet 1.9.1: the constructor arguments, the inputs, a signed head gradient
``out_grad``, MXNet's per-sample loss and its autograd gradient of
``sum(out_grad * out)`` for every differentiable input.  Where gluonloss
documents a difference from 1.9.1 (see the compatibility page), the recorded
values were converted to the documented semantics and the case says so in
its ``source``.

Test an implementation of your own -- a PyTorch, JAX or NumPy port of an MXNet
model's loss -- with :func:`check`, or one case at a time with
:func:`assert_case` (for instance from a ``pytest.mark.parametrize`` over
:func:`cases`).  Nothing here needs MXNet, and nothing needs gluonloss's
compiled losses: the cases are plain NumPy arrays.

>>> import numpy as np
>>> from gluonloss import testing
>>> def my_l2(case):                      # MXNet's L2Loss, written by hand
...     pred, label = case.inputs.values()
...     axes = tuple(i for i in range(pred.ndim) if i != case.params["batch_axis"] % pred.ndim)
...     w = case.params.get("weight", 1.0)
...     sw = case.kwargs.get("sample_weight", 1.0)
...     return np.mean(w / 2 * (pred - label) ** 2 * sw, axis=axes)
>>> result = testing.check(my_l2, "L2Loss")
>>> print(result)
L2Loss: 45 of 45 cases passed (values only: no gradients returned)
"""
import functools
import importlib.resources
import json
import types
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Case", "CheckResult", "cases", "assert_case", "check"]

# Every loss with recorded cases, in the order of the package's API.
LOSSES = (
    "L2Loss", "L1Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss",
    "SigmoidBinaryCrossEntropyLoss", "PoissonNLLLoss", "SoftmaxCrossEntropyLoss", "KLDivLoss",
    "TripletLoss", "CosineEmbeddingLoss", "SDMLLoss", "CTCLoss",
)
ALIASES = {"SigmoidBCELoss": "SigmoidBinaryCrossEntropyLoss",
           "SoftmaxCELoss": "SoftmaxCrossEntropyLoss"}

# (rtol, atol) per dtype, atol relative to the scale of the expected array (its
# largest magnitude, at least 1).  float32: MXNet's libm and summation order
# against another implementation's, about 2 ulp of the scale; the losses with a
# log-softmax inside get 1e-5 (MXNet's own float32 log-softmax and CTC are off by
# up to 3.8e-6 of the scale from the exact value).  float64: 4e-16 of the scale
# was the largest difference seen.
TOLERANCES = {"float32": (4e-6, 1e-6), "float64": (1e-13, 1e-14)}
LOOSER_FLOAT32 = {"SoftmaxCrossEntropyLoss": (1e-5, 1e-5), "SDMLLoss": (1e-5, 1e-5),
                  "CTCLoss": (1e-5, 1e-5)}

RECORDED = "recorded from MXNet 1.9.1"
# The losses whose values were converted to the documented semantics, and how
# (the generator's conversions; TripletLoss's applies only with a sample_weight).
_CONVERSIONS = {
    "PoissonNLLLoss": "each sample recorded on its own slice (1.9.1 returns one mean over "
                      "the batch)",
    "KLDivLoss": "value and gradient divided by the number of elements per sample (1.9.1 "
                 "sums them)",
    "TripletLoss": "recorded without sample_weight (1.9.1 has none), then value and "
                   "gradients multiplied by each sample's weight",
    "CosineEmbeddingLoss": "value reshaped from (n, 1) to (n,)",
    "SDMLLoss": "value and gradients multiplied by weight / N (1.9.1 sums over the batch "
                "and ignores weight)",
}
_POISSON_FULL = ("; compute_full: the value from a call outside autograd, the gradient "
                 "that of compute_full=False (the Stirling term does not depend on pred)")


@dataclass(frozen=True, eq=False)
class Case:
    """One recorded case: a loss, its arguments and MXNet's results.

    Cases are immutable: the mappings are read-only views and every array is
    read-only (copy one before changing it).  :func:`cases` makes them; the
    parameters are also the attributes.

    Parameters
    ----------
    id : str
        Stable name, e.g. ``'L2Loss-003-float64'`` (loss, number, dtype), for
        pytest ids.
    loss : str
        The loss's class name (MXNet's and gluonloss's).
    params : Mapping
        Constructor keyword arguments, e.g. ``{'weight': 0.5, 'batch_axis': 1}``.
    inputs : Mapping[str, numpy.ndarray]
        The positional call arguments in order, by MXNet's names (``pred``,
        ``label``; ``pred``, ``positive``, ``negative``; ``x1``, ``x2``, ...).
    kwargs : Mapping
        Optional call arguments by name (``sample_weight``, ``pos_weight``,
        ``epsilon``, ``pred_lengths``, ``label_lengths``), only those given.
    out_grad : numpy.ndarray
        The head gradient, shape ``(N,)``: ``expected_grads`` are the gradients
        of ``sum(out_grad * out)``.
    expected_out : numpy.ndarray
        The per-sample loss, shape ``(N,)``.
    expected_grads : Mapping[str, numpy.ndarray]
        The gradient for every differentiable input, in argument order, each
        shaped like its input.
    rtol, atol : float
        The tolerances for this case's dtype and loss: an element passes when
        ``|got - want| <= atol * scale + rtol * |want|``, with ``scale`` the
        largest ``|want|`` of the array (at least 1).
    source : str
        ``'recorded from MXNet 1.9.1'``, or ``'derived from MXNet 1.9.1: '``
        followed by the conversion applied where gluonloss documents a
        difference from 1.9.1.
    dtype : str
        ``'float32'`` or ``'float64'``: the dtype of the float inputs and
        results (class labels, CTC labels and lengths are int32).
    """

    id: str
    loss: str
    params: types.MappingProxyType
    inputs: types.MappingProxyType
    kwargs: types.MappingProxyType
    out_grad: np.ndarray
    expected_out: np.ndarray
    expected_grads: types.MappingProxyType
    rtol: float
    atol: float
    source: str
    dtype: str

    def __repr__(self):
        return f"<Case {self.id}: {self.loss}({_arguments(self.params)})>"


class CheckResult:
    """What :func:`check` found: the cases that passed and those that failed.

    True when every case passed.  ``str()`` gives a summary with the first
    failures' reports.  :func:`check` makes them; the parameters are also the
    attributes (``loss`` excepted).

    Parameters
    ----------
    passed : tuple of Case
        The cases whose results agree with the recorded ones.
    failed : tuple of (Case, str)
        Each failing case with its report: the :func:`assert_case` message, or
        the exception the implementation raised.
    gradients_checked : int
        How many of the cases passed or failed with gradients returned.
    loss : str
        What was checked (a loss name or ``'all losses'``), for the summary.

    Examples
    --------
    >>> import gluonloss as gl
    >>> from gluonloss import testing
    >>> result = testing.check(lambda case: gl.L1Loss()(*case.inputs.values()), "L1Loss")
    >>> bool(result), len(result.passed), len(result.failed)
    (False, 3, 42)
    >>> case, report = result.failed[0]
    >>> print(report.splitlines()[1])
      out: 4 of 4 elements beyond tolerance (rtol 1e-13, atol 1e-14 x scale 1.37)
    """

    def __init__(self, passed, failed, gradients_checked, loss):
        self.passed = tuple(passed)
        self.failed = tuple(failed)
        self.gradients_checked = gradients_checked
        self._loss = loss

    def __bool__(self):
        return not self.failed

    def __len__(self):
        return len(self.passed) + len(self.failed)

    def __repr__(self):
        return f"<CheckResult {self._loss}: {len(self.passed)} passed, {len(self.failed)} failed>"

    def __str__(self, max_reports=5):
        total = len(self)
        lines = [f"{self._loss}: {len(self.passed)} of {total} cases passed"]
        if self.gradients_checked == 0:
            lines[0] += " (values only: no gradients returned)"
        elif self.gradients_checked < total:
            lines[0] += f" (gradients returned for {self.gradients_checked})"
        if self.failed:
            by_loss: dict[str, int] = {}
            for case, _ in self.failed:
                by_loss[case.loss] = by_loss.get(case.loss, 0) + 1
            lines.append("failed: " + ", ".join(f"{name} {count}"
                                                for name, count in by_loss.items()))
            for _, report in self.failed[:max_reports]:
                lines.append(report)
            if len(self.failed) > max_reports:
                lines.append(f"... and {len(self.failed) - max_reports} more")
        return "\n".join(lines)


# -- the installed fixtures --------------------------------------------------------

def _fixture(name):
    return importlib.resources.files("gluonloss") / "_conformance" / name


def _canonical_name(loss):
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a loss class name (a str) or None, got {loss!r}")
    name = ALIASES.get(loss, loss)
    if name not in LOSSES:
        raise ValueError(f"no recorded cases for loss {loss!r}; the valid names are "
                         f"{', '.join(LOSSES)} and the aliases {', '.join(ALIASES)}")
    return name


def _frozen(array):
    array.flags.writeable = False
    return array


def _source(loss, init, kwargs):
    conversion = _CONVERSIONS.get(loss)
    if loss == "TripletLoss" and "sample_weight" not in kwargs:
        conversion = None
    if loss == "PoissonNLLLoss" and init.get("compute_full"):
        assert conversion is not None           # PoissonNLLLoss has a conversion
        conversion += _POISSON_FULL
    return RECORDED if conversion is None else f"derived from MXNet 1.9.1: {conversion}"


@functools.cache
def _load(loss):
    """The cases of one loss, read from its installed ``.npz`` file."""
    with _fixture(f"{loss}.npz").open("rb") as f, np.load(f, allow_pickle=False) as data:
        arrays = {key: _frozen(data[key]) for key in data.files}
    records = json.loads(str(arrays.pop("cases")))
    loaded = []
    for index, record in enumerate(records):
        dtype = record["dtype"]
        rtol, atol = TOLERANCES[dtype]
        if dtype == "float32":
            rtol, atol = LOOSER_FLOAT32.get(loss, (rtol, atol))
        inputs = {key.split(".", 1)[1]: arrays[key] for key in record["inputs"]}
        kwargs = {name: arrays[value["array"]] if isinstance(value, dict) else value
                  for name, value in record["kwargs"].items()}
        loaded.append(Case(
            id=f"{loss}-{index:03d}-{dtype}",
            loss=loss,
            params=types.MappingProxyType(dict(record["init"])),
            inputs=types.MappingProxyType(inputs),
            kwargs=types.MappingProxyType(kwargs),
            out_grad=arrays[record["out_grad"]],
            expected_out=arrays[record["out"]],
            expected_grads=types.MappingProxyType({name: arrays[key]
                                                   for name, key in record["grads"]}),
            rtol=rtol, atol=atol,
            source=_source(loss, record["init"], kwargs),
            dtype=dtype,
        ))
    return tuple(loaded)


def cases(loss=None, *, options=False):
    """The recorded cases of one loss, or of all of them.

    Parameters
    ----------
    loss : str or None
        A loss class name (``'CTCLoss'``; the aliases ``'SigmoidBCELoss'`` and
        ``'SoftmaxCELoss'`` too), or None for every loss.
    options : bool, default False
        Also the cases of the options gluonloss adds to MXNet's losses, derived
        exactly from recorded ones (their ``source`` says how):
        SoftmaxCrossEntropyLoss with ``class_weight`` and ``ignore_label``
        (from the sparse cases with one class row per sample: each sample's
        value and gradient times ``class_weight[label]``, 0 where the label is
        ignored) and CTCLoss with ``blank_label='first'`` (from every case:
        the class axis rolled by one, labels + 1, padding 0).  Their ids
        continue the loss's numbering.

    Returns
    -------
    tuple of Case
        In a fixed order: loss by loss, each loss's cases as recorded.

    Raises
    ------
    ValueError
        For a name without recorded cases; the message lists the valid names.

    Examples
    --------
    >>> from gluonloss import testing
    >>> case = testing.cases("CTCLoss")[1]
    >>> case.id, dict(case.params)
    ('CTCLoss-001-float32', {'label_layout': 'NT', 'layout': 'NTC'})
    >>> list(case.inputs), list(case.kwargs)
    (['pred', 'label'], ['pred_lengths'])
    >>> case.inputs["pred"].shape, case.expected_out.shape, list(case.expected_grads)
    ((4, 10, 5), (4,), ['pred'])
    >>> len(testing.cases()), case.source
    (530, 'recorded from MXNet 1.9.1')
    >>> first = testing.cases("CTCLoss", options=True)[-1]
    >>> first.id, first.params["blank_label"]
    ('CTCLoss-031-float32', 'first')
    """
    names = LOSSES if loss is None else (_canonical_name(loss),)
    return tuple(case for name in names
                 for case in (_load(name) + (_derived(name) if options else ())))


# -- the cases of the options gluonloss adds, derived from recorded ones -------------

def _with(case, index, **changes):
    """``case`` with some fields replaced (arrays frozen) and the next id."""
    fields = {name: getattr(case, name) for name in Case.__dataclass_fields__}
    for name in ("params", "inputs", "kwargs", "expected_grads"):
        if name in changes:
            changes[name] = types.MappingProxyType(
                {k: _frozen(v) if isinstance(v, np.ndarray) else v
                 for k, v in changes[name].items()})
    for name in ("out_grad", "expected_out"):
        if name in changes:
            changes[name] = _frozen(changes[name])
    return Case(**{**fields, **changes, "id": f"{case.loss}-{index:03d}-{case.dtype}"})


_IGNORED = -1   # the ignore_label of the derived SoftmaxCrossEntropyLoss cases


def _softmax_options(case, index):
    """A sparse case with one class row per sample, with class weights and the
    first sample's label ignored; None for other cases."""
    pred, label = case.inputs["pred"], case.inputs["label"]
    params = case.params
    if not params.get("sparse_label", True) or pred.ndim != 2:
        return None
    axis = params.get("axis", -1) % 2
    batch_axis = params.get("batch_axis", 0) % 2
    if axis == batch_axis or label.size < 2:
        return None
    n_classes = pred.shape[axis]
    class_weight = np.linspace(0.5, 2.0, n_classes)
    label = label.reshape(-1)
    factor = class_weight[label.astype(np.int64)]
    factor[0] = 0.0
    ignored = label.copy()
    ignored[0] = _IGNORED
    dtype = case.expected_out.dtype
    out = (case.expected_out * factor).astype(dtype)
    grad = case.expected_grads["pred"] * np.expand_dims(factor, axis)
    return _with(case, index,
                 params={**params, "class_weight": class_weight, "ignore_label": _IGNORED},
                 inputs={"pred": pred, "label": ignored.reshape(case.inputs["label"].shape)},
                 expected_out=out,
                 expected_grads={"pred": grad.astype(dtype)},
                 source=f"derived from MXNet 1.9.1: class_weight = linspace(0.5, 2, C) and "
                        f"the first label set to ignore_label = {_IGNORED}: value and "
                        f"gradient times class_weight[label], 0 for the ignored sample")


def _ctc_blank_first(case, index):
    """The case with the blank moved from class C-1 to class 0 (the class axis is
    last in both layouts)."""
    params = case.params
    label = case.inputs["label"]
    rows = label if params.get("label_layout", "NT") == "NT" else label.T
    if "label_lengths" in case.kwargs:
        used = np.arange(rows.shape[1]) < case.kwargs["label_lengths"].reshape(-1, 1)
    else:
        padded = rows == -1
        ends = np.where(padded.any(axis=1), padded.argmax(axis=1), rows.shape[1])
        used = np.arange(rows.shape[1]) < ends[:, None]
    first = np.where(used, rows + 1, 0).astype(label.dtype)
    first = first if params.get("label_layout", "NT") == "NT" else first.T
    return _with(case, index,
                 params={**params, "blank_label": "first"},
                 inputs={"pred": np.roll(case.inputs["pred"], 1, axis=2), "label": first},
                 expected_grads={"pred": np.roll(case.expected_grads["pred"], 1, axis=2)},
                 source="derived from MXNet 1.9.1: the blank moved from class C-1 to class 0 "
                        "(the class axis rolled by one, labels + 1, padding 0)")


@functools.cache
def _derived(loss):
    """The option cases of one loss (empty for the losses without new options)."""
    derive = {"SoftmaxCrossEntropyLoss": _softmax_options,
              "CTCLoss": _ctc_blank_first}.get(loss)
    if derive is None:
        return ()
    recorded = _load(loss)
    made: list[Case] = []
    for case in recorded:
        new = derive(case, len(recorded) + len(made))
        if new is not None:
            made.append(new)
    return tuple(made)


# -- comparing -------------------------------------------------------------------

def _arguments(params):
    return ", ".join(f"{key}={value!r}" for key, value in params.items())


def _index(flat_index, shape):
    return tuple(int(i) for i in np.unravel_index(flat_index, shape)) if shape else ()


def _compare(what, got, want, rtol, atol):
    """A report of how ``got`` differs from ``want`` beyond the tolerance, or None."""
    try:
        got = np.asarray(got)
    except Exception as exc:     # noqa: BLE001 -- any conversion failure is a mismatch
        return f"  {what}: could not be read as an array ({type(exc).__name__}: {exc})"
    if got.dtype.kind not in "biuf":
        return f"  {what}: an array of dtype {got.dtype}, expected real numbers"
    if got.shape != want.shape:
        return f"  {what}: shape {got.shape}, expected {want.shape}"
    if want.size == 0:
        return None
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    scale = max(1.0, float(np.max(np.abs(want64))))
    allowed = atol * scale + rtol * np.abs(want64)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(got64 - want64)
        both_nan = np.isnan(got64) & np.isnan(want64)
        same_inf = np.isinf(want64) & (got64 == want64)
        ok = both_nan | same_inf | (error <= allowed)
    if ok.all():
        return None
    bad = ~ok
    with np.errstate(invalid="ignore", divide="ignore"):
        # NaN and inf in the wrong place count as the worst possible error
        excess = np.where(bad, np.nan_to_num(error / allowed, nan=np.inf), 0.0)
        relative = np.where(bad, error / np.abs(want64), 0.0)
    worst = int(np.argmax(excess))
    largest = int(np.argmax(np.where(bad, np.nan_to_num(error, nan=np.inf), 0.0)))
    most_relative = int(np.argmax(np.nan_to_num(relative, nan=np.inf)))
    return "\n".join([
        f"  {what}: {int(bad.sum())} of {want.size} elements beyond tolerance "
        f"(rtol {rtol:g}, atol {atol:g} x scale {scale:.3g})",
        # str(): a float32 shows its own shortest digits, not float64's
        f"    worst at index {_index(worst, want.shape)}: got {str(got.flat[worst])}, "
        f"expected {str(want.flat[worst])}",
        f"    max abs error {error.flat[largest]:.3g} at index {_index(largest, want.shape)}, "
        f"max rel error {relative.flat[most_relative]:.3g} at index "
        f"{_index(most_relative, want.shape)}",
    ])


def _named_gradients(case, grads):
    """``grads`` as a dict by input name, or an error report."""
    expected = case.expected_grads
    if isinstance(grads, Mapping):
        unknown = [name for name in grads if name not in expected]
        if unknown:
            return None, (f"  grads: {', '.join(map(repr, unknown))} "
                          f"{'is not a' if len(unknown) == 1 else 'are not'} differentiable "
                          f"input{'s' if len(unknown) > 1 else ''} of {case.loss} (those are "
                          f"{', '.join(expected)})")
        return dict(grads), None
    if isinstance(grads, (tuple, list)):
        if len(grads) != len(expected):
            return None, (f"  grads: {len(grads)} arrays, expected {len(expected)} "
                          f"({', '.join(expected)}, in that order)")
        return dict(zip(expected, grads, strict=True)), None
    if len(expected) != 1:
        return None, (f"  grads: one array, expected {len(expected)} "
                      f"({', '.join(expected)}): pass a tuple or a dict")
    return {next(iter(expected)): grads}, None


def assert_case(case, out, grads=None):
    """Assert that an implementation's results agree with a recorded case.

    Parameters
    ----------
    case : Case
        One of :func:`cases`.
    out : array_like
        The per-sample loss computed from ``case.inputs``, ``case.params`` and
        ``case.kwargs``; must have the shape of ``case.expected_out``
        (nothing is broadcast).
    grads : array_like, sequence, dict or None
        The gradients of ``sum(case.out_grad * out)``: a dict by input name
        (checks the inputs it names), a tuple or list in argument order, or
        one array for a loss with one differentiable input.  None checks
        ``out`` only.

    Returns
    -------
    None

    Raises
    ------
    AssertionError
        When any array has the wrong shape or differs beyond ``case.rtol`` and
        ``case.atol``: the message names the case and each bad array, with the
        count of bad elements, the worst element's index and both values, and
        the largest absolute and relative errors.

    Examples
    --------
    >>> import numpy as np
    >>> from gluonloss import testing
    >>> case = testing.cases("L2Loss")[0]
    >>> testing.assert_case(case, case.expected_out)      # passes silently
    >>> bad = case.expected_out.copy()
    >>> bad[2] += 0.5
    >>> testing.assert_case(case, bad)
    Traceback (most recent call last):
    ...
    AssertionError: L2Loss-000-float32: L2Loss(batch_axis=0), float32, recorded from MXNet 1.9.1
      out: 1 of 6 elements beyond tolerance (rtol 4e-06, atol 1e-06 x scale 3.79)
        worst at index (2,): got 2.0241137, expected 1.5241137
        max abs error 0.5 at index (2,), max rel error 0.328 at index (2,)
    """
    if not isinstance(case, Case):
        raise TypeError(f"case must be a gluonloss.testing.Case, got {type(case).__name__}")
    reports = [_compare("out", out, case.expected_out, case.rtol, case.atol)]
    if grads is not None:
        named, problem = _named_gradients(case, grads)
        reports.append(problem)
        for name, got in (named or {}).items():
            reports.append(_compare(f"grad {name!r}", got, case.expected_grads[name],
                                    case.rtol, case.atol))
    reports = [r for r in reports if r]
    if reports:
        raise AssertionError("\n".join([_header(case)] + reports))


def _header(case):
    return f"{case.id}: {case.loss}({_arguments(case.params)}), {case.dtype}, {case.source}"


def check(fn, loss=None, *, options=False):
    """Run an implementation on every recorded case and compare its results.

    Parameters
    ----------
    fn : callable
        ``fn(case)`` computes the loss of ``case`` (see :class:`Case`) and
        returns ``out``, or a 2-tuple ``(out, grads)`` with ``grads`` as
        :func:`assert_case` takes them.  An exception it raises fails that
        case (and is reported); the other cases still run.
    loss : str or None
        Check one loss's cases (a class name, alias accepted), or all of them.
    options : bool, default False
        Also the cases of gluonloss's added options (see :func:`cases`).

    Returns
    -------
    CheckResult
        True when every case passed; ``passed`` and ``failed`` list the cases,
        each failure with its report.

    Examples
    --------
    gluonloss itself, all 530 cases, values and gradients:

    >>> import gluonloss as gl
    >>> from gluonloss import testing
    >>> def run(case):
    ...     loss = getattr(gl, case.loss)(**case.params)
    ...     return loss.value_and_gradient(*case.inputs.values(), **case.kwargs,
    ...                                    out_grad=case.out_grad)
    >>> result = testing.check(run)
    >>> bool(result), len(result.passed), result.gradients_checked
    (True, 530, 530)
    >>> print(testing.check(run, "CTCLoss", options=True))   # blank_label='first' too
    CTCLoss: 32 of 32 cases passed
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {fn!r}")
    selected = cases(loss, options=options)
    passed, failed, with_grads = [], [], 0
    for case in selected:
        try:
            result = fn(case)
        except Exception as exc:     # noqa: BLE001 -- the implementation's failure is reported
            failed.append((case, f"{_header(case)}\n  raised {type(exc).__name__}: {exc}"))
            continue
        out, grads = result if isinstance(result, tuple) and len(result) == 2 else (result, None)
        with_grads += grads is not None
        try:
            assert_case(case, out, grads)
        except AssertionError as exc:
            failed.append((case, str(exc)))
        else:
            passed.append(case)
    return CheckResult(passed, failed, with_grads,
                       "all losses" if loss is None else _canonical_name(loss))
