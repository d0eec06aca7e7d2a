"""The examples in the docstrings run and print what they say."""
import doctest

import pytest

import gluonloss
import gluonloss.ctc
import gluonloss.elementwise
import gluonloss.pairwise
import gluonloss.reference
import gluonloss.softmax

MODULES = [gluonloss, gluonloss.elementwise, gluonloss.reference, gluonloss.softmax,
           gluonloss.pairwise, gluonloss.ctc]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0


def test_every_loss_class_has_math_and_an_example():
    for name in gluonloss.__all__:
        obj = getattr(gluonloss, name)
        if isinstance(obj, type) and issubclass(obj, gluonloss.Loss) and obj is not gluonloss.Loss:
            assert ".. math::" in obj.__doc__, name
            assert ">>>" in obj.__doc__, name
