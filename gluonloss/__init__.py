"""gluonloss: every loss of MXNet Gluon's ``gluon.loss`` on NumPy arrays,
with forward values and analytic gradients, in Cython with OpenMP.

>>> import numpy as np, gluonloss as gl
>>> loss = gl.L1Loss()
>>> out, grad = loss.value_and_gradient(np.array([[1., -2.]]), np.array([[0., 0.]]))
>>> out, grad
(array([1.5]), array([[ 0.5, -0.5]]))
"""
from gluonloss._base import Loss
from gluonloss._config import show_config
from gluonloss._threads import get_num_threads, num_threads, set_num_threads
from gluonloss.ctc import CTCLoss
from gluonloss.elementwise import (
    HingeLoss,
    HuberLoss,
    L1Loss,
    L2Loss,
    LogisticLoss,
    PoissonNLLLoss,
    SigmoidBCELoss,
    SigmoidBinaryCrossEntropyLoss,
    SquaredHingeLoss,
)
from gluonloss.pairwise import CosineEmbeddingLoss, SDMLLoss, TripletLoss
from gluonloss.softmax import KLDivLoss, SoftmaxCELoss, SoftmaxCrossEntropyLoss

__version__ = "0.1.0"

__all__ = [
    "Loss",
    "L2Loss", "L1Loss", "HuberLoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss",
    "SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss", "PoissonNLLLoss",
    "SoftmaxCrossEntropyLoss", "SoftmaxCELoss", "KLDivLoss",
    "TripletLoss", "CosineEmbeddingLoss", "SDMLLoss",
    "get_num_threads", "set_num_threads", "num_threads",
    "CTCLoss",
    "show_config",
]


def __getattr__(name):
    # The submodules ``reference`` (it imports SciPy) and ``testing`` (it reads the
    # recorded cases) load on first use only.
    if name in ("reference", "testing"):
        import importlib
        return importlib.import_module(f"gluonloss.{name}")
    raise AttributeError(f"module 'gluonloss' has no attribute {name!r}")
