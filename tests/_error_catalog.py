"""The error catalog of docs/semantics.rst as data: every documented argument
error for every loss it applies to, built on one valid call per subject.

Each entry is the exception type and a pattern its message must match: the
pattern names the argument at fault and, where there is one, the offending
value (or shape) and its position.  ``tests/test_error_catalog.py`` runs the
entries on the NumPy API (compiled and reference); the bridge tests run them
through PyTorch and JAX.
"""
import inspect
import re
from dataclasses import dataclass, field

import numpy as np

import gluonloss as gl

N = 4
X = np.zeros((N, 3))
PER_SAMPLE = np.ones((N, 1))


@dataclass
class Subject:
    """A loss with valid arguments; each catalog entry spoils one of them."""
    id: str
    cls: str
    args: dict                      # valid call arguments, by name
    ctor: dict = field(default_factory=dict)
    uses_batch_axis: bool = True    # CosineEmbeddingLoss and SDMLLoss accept and ignore it
    per_sample_weight: bool = False  # sample_weight: N values (else: broadcast to the loss)


CTC_LABEL = np.array([[0, 1, -1], [1, -1, -1], [0, 0, 1], [-1, -1, -1]])
# The same labels with the blank first: classes 1, 2, padded with 0.
CTC_LABEL_FIRST = np.where(CTC_LABEL < 0, 0, CTC_LABEL + 1)
SUBJECTS = [
    *(Subject(name, name, {"pred": X, "label": X, "sample_weight": PER_SAMPLE})
      for name in ("L2Loss", "L1Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss",
                   "LogisticLoss")),
    Subject("SigmoidBCELoss", "SigmoidBinaryCrossEntropyLoss",
            {"pred": X, "label": X, "sample_weight": PER_SAMPLE, "pos_weight": np.ones((1, 3))}),
    Subject("SigmoidBCELoss-from_sigmoid", "SigmoidBinaryCrossEntropyLoss",
            {"pred": X + 0.5, "label": X, "sample_weight": PER_SAMPLE,
             "pos_weight": np.ones((1, 3))}, {"from_sigmoid": True}),
    Subject("PoissonNLLLoss", "PoissonNLLLoss",
            {"pred": X, "target": X, "sample_weight": PER_SAMPLE, "epsilon": 1e-8}),
    Subject("PoissonNLLLoss-rate", "PoissonNLLLoss",
            {"pred": X + 1, "target": X, "sample_weight": PER_SAMPLE, "epsilon": 1e-8},
            {"from_logits": False, "compute_full": True}),
    Subject("SoftmaxCELoss-sparse", "SoftmaxCrossEntropyLoss",
            {"pred": X, "label": np.zeros(N, np.int64), "sample_weight": PER_SAMPLE}),
    Subject("SoftmaxCELoss-options", "SoftmaxCrossEntropyLoss",
            {"pred": X, "label": np.array([0, -100, 2, 1]), "sample_weight": PER_SAMPLE},
            {"class_weight": [1.0, 0.5, 2.0], "ignore_label": -100, "label_smoothing": 0.1}),
    Subject("SoftmaxCELoss-dense", "SoftmaxCrossEntropyLoss",
            {"pred": X, "label": X + 1 / 3, "sample_weight": PER_SAMPLE}, {"sparse_label": False}),
    Subject("KLDivLoss", "KLDivLoss", {"pred": X, "label": X + 1 / 3, "sample_weight": PER_SAMPLE}),
    Subject("TripletLoss", "TripletLoss",
            {"pred": X, "positive": X, "negative": X, "sample_weight": PER_SAMPLE},
            per_sample_weight=True),
    Subject("CosineEmbeddingLoss", "CosineEmbeddingLoss",
            {"input1": X, "input2": X + 1, "label": np.array([1, -1, 1, 1]),
             "sample_weight": PER_SAMPLE}, uses_batch_axis=False, per_sample_weight=True),
    Subject("SDMLLoss", "SDMLLoss", {"x1": X, "x2": X}, uses_batch_axis=False),
    Subject("CTCLoss", "CTCLoss",
            {"pred": np.zeros((N, 5, 3)), "label": CTC_LABEL, "pred_lengths": np.full(N, 5),
             "label_lengths": np.array([2, 1, 3, 0]), "sample_weight": PER_SAMPLE},
            uses_batch_axis=False, per_sample_weight=True),
    Subject("CTCLoss-first", "CTCLoss",
            {"pred": np.zeros((N, 5, 3)), "label": CTC_LABEL_FIRST, "pred_lengths": np.full(N, 5),
             "label_lengths": np.array([2, 1, 3, 0]), "sample_weight": PER_SAMPLE},
            {"blank_label": "first"}, uses_batch_axis=False, per_sample_weight=True),
]
SUBJECT = {s.id: s for s in SUBJECTS}


@dataclass
class Entry:
    subject: str
    kind: str                   # what it covers, e.g. "weight", "non-numeric:label"
    exc: type
    pattern: str                # the message must match it (re.search)
    ctor: dict = field(default_factory=dict)    # constructor arguments replaced
    call: dict = field(default_factory=dict)    # call arguments replaced (out_grad too)
    label: str = ""

    @property
    def id(self):
        return f"{self.subject}-{self.kind}{'-' + self.label if self.label else ''}"


def _non_numeric(valid):
    """Non-numeric versions of a valid array argument: str, complex, object
    (an object array of numbers is still not a numeric array)."""
    shape = np.shape(valid)
    return [("str", np.full(shape, "x")), ("complex", np.zeros(shape, complex)),
            ("object", np.asarray(valid).astype(object)), ("None", None)]


def _generic_entries(s):
    """The errors every loss has, derived from its valid arguments."""
    ctor_params = inspect.signature(getattr(gl, s.cls)).parameters
    entries = [Entry(s.id, "weight", TypeError,
                     rf"weight must be a real number.*got {re.escape(repr(bad))}",
                     ctor={"weight": bad}, label=type(bad).__name__)
               for bad in ("2", [1.0], 1j, object())]
    if "batch_axis" in ctor_params:
        entries += [Entry(s.id, "batch_axis-type", TypeError, "batch_axis must be an integer",
                          ctor={"batch_axis": bad}, label=repr(bad)) for bad in (1.5, "0")]
    if s.uses_batch_axis:
        ndim = np.ndim(s.args["pred"])
        entries += [Entry(s.id, "batch_axis", ValueError,
                          rf"batch_axis={bad} is out of range for pred with {ndim} dimensions",
                          ctor={"batch_axis": bad}, label=str(bad)) for bad in (ndim, -ndim - 1)]
    for name, valid in [*s.args.items(), ("out_grad", np.ones(N))]:
        if isinstance(valid, np.ndarray):
            entries += [Entry(s.id, f"non-numeric:{name}", TypeError,
                              rf"^{name} must hold real numbers", call={name: bad}, label=what)
                        for what, bad in _non_numeric(valid)
                        if not (bad is None and name in ("sample_weight", "pos_weight",
                                                         "pred_lengths", "label_lengths",
                                                         "out_grad"))]   # None: the default
    entries += [Entry(s.id, "out_grad-shape", ValueError,
                      rf"out_grad of shape {re.escape(str(shape))} does not broadcast",
                      call={"out_grad": np.ones(shape)}, label=str(shape))
                for shape in ((N + 1,), (N, 1), (2, 2))]
    if "sample_weight" in s.args:
        shapes = [(N - 1,), (N, 2), (N + 1, 1)] if s.per_sample_weight else [(N + 1, 1),
                                                                            (1, *X.shape), (2, 1)]
        entries += [Entry(s.id, "sample_weight-shape", ValueError,
                          rf"sample_weight.*{re.escape(str(shape))}",
                          call={"sample_weight": np.ones(shape)}, label=str(shape))
                    for shape in shapes]
    return entries


def _ragged(name):
    return Entry("L2Loss", f"ragged:{name}", ValueError,
                 rf"^{name} could not be converted to an array",
                 call={name: [[1.0, 2.0], [3.0]]})


# The errors particular to some losses.  Each names the argument and the value.
PARTICULAR = [
    # -- "label reshaped like pred" and other sizes
    *(Entry(s, "size:label", ValueError, rf"label has {k} elements \(shape \({k},\)\) but pred "
            r"has 12", call={"label": np.zeros(k)}, label=str(k))
      for s in ("L2Loss", "L1Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss",
                "SigmoidBCELoss", "SigmoidBCELoss-from_sigmoid", "SoftmaxCELoss-dense",
                "KLDivLoss") for k in (11, 13)),
    *(Entry(s, "size:target", ValueError, r"target has 16 elements \(shape \(4, 4\)\) but pred",
            call={"target": np.zeros((4, 4))}) for s in ("PoissonNLLLoss", "PoissonNLLLoss-rate")),
    Entry("SoftmaxCELoss-sparse", "size:label", ValueError,
          r"label has 5 elements \(shape \(5,\)\) but sparse labels need one class index per row",
          call={"label": np.zeros(5, int)}),
    *(Entry("TripletLoss", f"size:{name}", ValueError,
            rf"{name} has 13 elements .* but pred has 12", call={name: np.zeros(13)})
      for name in ("positive", "negative")),
    Entry("CosineEmbeddingLoss", "size:input1", ValueError,
          r"input1 has 8 elements \(shape \(4, 2\)\) but input2 has 12",
          call={"input1": np.zeros((4, 2))}),
    Entry("CosineEmbeddingLoss", "size:label", ValueError,
          r"label has 5 elements \(shape \(5,\)\) but the inputs hold 4 vectors",
          call={"label": np.ones(5)}),
    Entry("SDMLLoss", "size:x2", ValueError, r"x2 must have the shape of x1 \(4, 3\), got \(4, 2\)",
          call={"x2": np.zeros((4, 2))}),
    Entry("SDMLLoss", "size:x1", ValueError, r"x1 must be 2-D \(batch, dim\), got shape \(12,\)",
          call={"x1": np.zeros(12), "x2": np.zeros(12)}),
    Entry("CTCLoss", "size:label", ValueError,
          r"label of shape \(3, 3\) .* has 3 samples but pred of shape \(4, 5, 3\)",
          call={"label": CTC_LABEL[:3]}),
    Entry("CTCLoss", "size:pred", ValueError, r"pred must have 3 dimensions",
          call={"pred": np.zeros((N, 5))}),
    *(Entry("CTCLoss", f"size:{name}", ValueError,
            rf"{name} must hold one value per sample \(4\), got shape \(3,\)",
            call={name: np.ones(3, int)}) for name in ("pred_lengths", "label_lengths")),
    Entry("SigmoidBCELoss", "size:pos_weight", ValueError,
          r"pos_weight of shape \(5,\) does not broadcast to pred shape \(4, 3\)",
          call={"pos_weight": np.ones(5)}),
    # -- zero-element samples of the per-sample means
    *(Entry(s, "empty-sample", ValueError, r"every sample of pred is empty \(pred shape \(4, 0\)",
            call={"pred": np.zeros((N, 0)), arg: np.zeros((N, 0))})
      for s, arg in (("L2Loss", "label"), ("LogisticLoss", "label"), ("PoissonNLLLoss", "target"),
                     ("SigmoidBCELoss-from_sigmoid", "label"))),
    *(Entry(s, "empty-sample", ValueError,
            r"every sample of pred is empty \(pred shape \(4, 0, 3\)",
            call={"pred": np.zeros((N, 0, 3)), "label": label})
      for s, label in (("SoftmaxCELoss-sparse", np.zeros((N, 0), int)),
                       ("SoftmaxCELoss-dense", np.zeros((N, 0, 3))),
                       ("KLDivLoss", np.zeros((N, 0, 3))))),
    # -- constructor parameters
    *(Entry("LogisticLoss", "label_format", ValueError,
            rf"label_format must be one of 'signed', 'binary', got {re.escape(repr(bad))}",
            ctor={"label_format": bad}, label=repr(bad)) for bad in ("Signed", "", None)),
    *(Entry("CTCLoss", name, ValueError,
            rf"{name} must be one of {choices}, got {re.escape(repr(bad))}",
            ctor={name: bad}, label=repr(bad))
      for name, choices in (("layout", "'NTC', 'TNC'"), ("label_layout", "'NT', 'TN'"))
      for bad in ("NCT", "ntc", None)),
    *(Entry("HuberLoss", "rho", ValueError, rf"rho must be > 0, got {re.escape(repr(bad))}",
            ctor={"rho": bad}, label=repr(bad)) for bad in (0, -1.5, float("nan"))),
    Entry("HuberLoss", "rho-type", TypeError, r"rho must be a real number, got '1'",
          ctor={"rho": "1"}),
    *(Entry("SDMLLoss", "smoothing_parameter", ValueError,
            rf"smoothing_parameter must be in \[0, 1\), got {re.escape(repr(bad))}",
            ctor={"smoothing_parameter": bad}, label=repr(bad))
      for bad in (-0.1, 1, 1.0, 2.5, float("nan"))),
    Entry("SDMLLoss", "smoothing_parameter-type", TypeError, r"smoothing_parameter must be a real "
          r"number, got '0.3'", ctor={"smoothing_parameter": "0.3"}),
    *(Entry(s, "margin-type", TypeError, r"margin must be a real number, got '1'",
            ctor={"margin": "1"})
      for s in ("HingeLoss", "SquaredHingeLoss", "TripletLoss", "CosineEmbeddingLoss")),
    *(Entry(s, "axis", ValueError, rf"^axis={bad} is out of range for pred with 2 dimensions",
            ctor={"axis": bad}, label=str(bad))
      for s in ("SoftmaxCELoss-sparse", "KLDivLoss") for bad in (2, -3)),
    *(Entry(s, "axis-type", TypeError, r"^axis must be an integer, got 1.0", ctor={"axis": 1.0})
      for s in ("SoftmaxCELoss-sparse", "KLDivLoss")),
    Entry("KLDivLoss", "axis-is-batch_axis", ValueError,
          r"axis=0 and batch_axis=0 are the same axis of pred", ctor={"axis": 0}),
    *(Entry(s, "epsilon-type", TypeError, r"epsilon must be a real number, got 'small'",
            call={"epsilon": "small"}) for s in ("PoissonNLLLoss", "PoissonNLLLoss-rate")),
    # -- SDML batch < 2
    *(Entry("SDMLLoss", "batch-size", ValueError, rf"x1 and x2 .*at least 2 rows.*got {n}\b",
            call={"x1": np.zeros((n, 3)), "x2": np.zeros((n, 3))}, label=str(n))
      for n in (0, 1)),
    # -- sparse class labels: integral and in [0, C)
    *(Entry("SoftmaxCELoss-sparse", "sparse-label", ValueError,
            rf"label\[2\] = {text} {what}: sparse labels must be integer class indices in "
            r"\[0, 3\)", call={"label": np.array([0, 1, bad, 0])}, label=text)
      for bad, text, what in ((1.5, "1.5", "is not an integer"), (np.nan, "nan", "is NaN"),
                              (np.inf, "inf", r"is outside \[0, 3\)"),
                              (3, "3", r"is outside \[0, 3\)"),
                              (-1, "-1", r"is outside \[0, 3\)"))),
    # -- CTC labels in [0, C-2] or the padding -1; lengths integral, in range
    *(Entry("CTCLoss", "ctc-label", ValueError,
            rf"label\[2, 1\] = {text} is not a valid CTC label: labels must be integers in "
            r"\[0, 1\] \(class 2 is the blank\)",
            call={"label": np.where(np.arange(12).reshape(4, 3) == 7, bad, CTC_LABEL)},
            label=text)
      for bad, text in ((2, "2"), (-2, "-2"), (0.5, "0.5"), (np.nan, "nan"))),
    Entry("CTCLoss", "ctc-label-padding", ValueError,
          r"label\[1, 1\] = -1 \(padding\) lies inside label_lengths\[1\] = 2",
          call={"label_lengths": np.array([2, 2, 3, 0])}),
    *(Entry("CTCLoss", f"ctc-{name}", ValueError, rf"{name}\[1\] = {text} {what}",
            call={name: np.array([1, bad, 1, 0])}, label=f"{text}")
      for name, limit in (("pred_lengths", "the number of frames T = 5"),
                          ("label_lengths", "the label width L = 3"))
      for bad, text, what in ((-1, "-1", "is negative"), (1.5, "1.5", "is not an integer"),
                              (9, "9", f"exceeds {limit}"))),
    # -- SoftmaxCrossEntropyLoss's class_weight, ignore_label, label_smoothing
    *(Entry(s, "class_weight-size", ValueError,
            r"class_weight has 2 entries but pred has 3 classes along axis -1",
            ctor={"class_weight": [1.0, 2.0]}) for s in ("SoftmaxCELoss-sparse",
                                                          "SoftmaxCELoss-dense")),
    Entry("SoftmaxCELoss-sparse", "class_weight-ndim", ValueError,
          r"class_weight must be 1-D \(one weight per class\), got shape \(1, 3\)",
          ctor={"class_weight": np.ones((1, 3))}),
    *(Entry("SoftmaxCELoss-sparse", "class_weight-value", ValueError,
            rf"class_weight\[1\] = {text} is not a finite number >= 0",
            ctor={"class_weight": [1.0, bad, 1.0]}, label=text)
      for bad, text in ((-1.0, "-1.0"), (np.nan, "nan"), (np.inf, "inf"))),
    *(Entry("SoftmaxCELoss-sparse", "class_weight-type", TypeError,
            r"class_weight must hold real numbers", ctor={"class_weight": bad}, label=what)
      for what, bad in (("str", ["a", "b", "c"]), ("complex", np.ones(3, complex)))),
    *(Entry("SoftmaxCELoss-sparse", "ignore_label-type", TypeError,
            rf"ignore_label must be an integer.*got {re.escape(repr(bad))}",
            ctor={"ignore_label": bad}, label=repr(bad)) for bad in (1.5, -1.0, "-1", True)),
    Entry("SoftmaxCELoss-dense", "ignore_label-dense", ValueError,
          r"ignore_label=-100 needs sparse labels \(sparse_label=True\)",
          ctor={"ignore_label": -100}),
    *(Entry(s, "label_smoothing", ValueError,
            rf"label_smoothing must lie in \[0, 1\), got {re.escape(repr(bad))}",
            ctor={"label_smoothing": bad}, label=repr(bad))
      for s in ("SoftmaxCELoss-sparse", "SoftmaxCELoss-dense")
      for bad in (-0.1, 1, 1.0, 1.5, float("nan"))),
    Entry("SoftmaxCELoss-sparse", "label_smoothing-type", TypeError,
          r"label_smoothing must be a real number, got '0.1'", ctor={"label_smoothing": "0.1"}),
    *(Entry("SoftmaxCELoss-options", "sparse-label", ValueError,
            rf"label\[1\] = {text} is outside \[0, 3\): sparse labels must be integer class "
            r"indices in \[0, 3\) \(pred has 3 classes along axis 1\) or ignore_label = -100",
            call={"label": np.array([0, bad, 1, 2])}, label=text)
      for bad, text in ((3, "3"), (-1, "-1"), (-99, "-99"))),
    Entry("SoftmaxCELoss-options", "size:label", ValueError,
          r"label has 3 elements \(shape \(3,\)\) but sparse labels need one class index",
          call={"label": np.zeros(3, int)}),
    Entry("SoftmaxCELoss-options", "class_weight-size", ValueError,
          r"class_weight has 3 entries but pred has 2 classes", call={"pred": np.zeros((N, 2)),
                                                                      "label": np.zeros(N)}),
    # -- CTCLoss's blank_label; labels with the blank first in [1, C-1], padded with 0
    *(Entry("CTCLoss", "blank_label", ValueError,
            rf"blank_label must be one of 'first', 'last', got {re.escape(repr(bad))}",
            ctor={"blank_label": bad}, label=repr(bad)) for bad in ("middle", "First", 0, None)),
    Entry("CTCLoss-first", "ctc-label-padding", ValueError,
          r"label\[1, 1\] = 0 \(padding\) lies inside label_lengths\[1\] = 2",
          call={"label_lengths": np.array([2, 2, 3, 0])}),
    *(Entry("CTCLoss-first", "ctc-label", ValueError,
            rf"label\[2, 1\] = {text} is not a valid CTC label: labels must be integers in "
            r"\[1, 2\] \(class 0 is the blank\), padded with 0",
            call={"label": np.where(np.arange(12).reshape(4, 3) == 7, bad, CTC_LABEL_FIRST)},
            label=text)
      for bad, text in ((3, "3"), (-1, "-1"), (1.5, "1.5"), (np.nan, "nan"))),
    Entry("CTCLoss-first", "size:label", ValueError,
          r"label of shape \(3, 3\) \(label_layout 'NT'\) has 3 samples but pred",
          call={"label": CTC_LABEL_FIRST[:3]}),
    # -- cosine labels
    *(Entry("CosineEmbeddingLoss", "cosine-label", ValueError,
            rf"label\[1\] = {text} is not 1 or -1: labels must be 1 \(similar pair\) or -1",
            call={"label": np.array([1, bad, -1, 1])}, label=text)
      for bad, text in ((0, "0"), (2, "2"), (0.5, "0.5"), (np.nan, "nan"))),
    # -- arrays NumPy cannot even build
    *(_ragged(name) for name in ("pred", "label", "sample_weight", "out_grad")),
]

ENTRIES = [e for s in SUBJECTS for e in _generic_entries(s)] + PARTICULAR
CONSTRUCTOR_ENTRIES = [e for e in ENTRIES if e.ctor]
CALL_ENTRIES = [e for e in ENTRIES if not e.ctor]
