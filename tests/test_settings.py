"""Constructor arguments: every loss shows them read-only, the compiled and the
reference losses alike, and they hold what the constructor was given."""
import inspect

import pytest

import gluonloss as gl
from _all_losses import LOSS_IDS, LOSSES
from gluonloss import reference


def _read_only_names(cls):
    return sorted({name for klass in cls.__mro__ for name, value in vars(klass).items()
                   if isinstance(value, property)})


@pytest.mark.parametrize("module", [gl, reference], ids=["compiled", "reference"])
@pytest.mark.parametrize("entry", LOSSES, ids=LOSS_IDS)
def test_constructor_arguments_are_read_only(module, entry):
    loss = entry.make(module)
    names = _read_only_names(type(loss))
    assert {"weight", "batch_axis"} <= set(names)
    for name in names:
        before = getattr(loss, name)
        with pytest.raises(AttributeError, match=rf"{type(loss).__name__}\.{name}|setter"):
            setattr(loss, name, before)
        assert getattr(loss, name) is before
        assert inspect.getdoc(getattr(type(loss), name)).endswith((".", ")."))


@pytest.mark.parametrize("module", [gl, reference], ids=["compiled", "reference"])
def test_attributes_hold_the_checked_arguments(module):
    ctc = module.CTCLoss(layout="TNC", label_layout="TN", weight=2, zero_infinity=False,
                         blank_label="first")
    assert (ctc.layout, ctc.label_layout, ctc.weight, ctc.zero_infinity, ctc.blank_label,
            ctc.batch_axis) == ("TNC", "TN", 2, False, "first", 1)
    assert repr(ctc) == ("CTCLoss(layout='TNC', label_layout='TN', w=2, "
                         "zero_infinity=False, blank_label='first')")
    l1 = module.L1Loss(weight=None, batch_axis=-1)
    assert (l1.weight, l1.batch_axis, repr(l1)) == (None, -1, "L1Loss(batch_axis=-1, w=None)")
    softmax = module.SoftmaxCELoss(axis=0, ignore_label=-100, label_smoothing=0.25)
    assert (softmax.axis, softmax.ignore_label, softmax.label_smoothing) == (0, -100, 0.25)
    with pytest.raises(ValueError, match="layout"):
        module.CTCLoss(layout="NCT")
    weighted = module.SoftmaxCELoss(class_weight=[1, 2.5])
    assert weighted.class_weight.tolist() == [1.0, 2.5]
    assert module.SoftmaxCELoss().class_weight is None
