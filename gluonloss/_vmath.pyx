"""NumPy-facing wrappers of the scalar math in ``_math.pxd``.

Only for checking that math on whole arrays (tests/test_math.py): the loss
kernels inline the functions themselves.
"""
from cython cimport floating
cimport numpy as cnp
import numpy as np

from gluonloss._math cimport (
    log1p_unit, log_normal, vexp, vexp_nonpositive, vexp_nonpositive_exact, vlog,
)

cnp.import_array()


def _apply(const floating[::1] x, floating[::1] out, int which):
    cdef Py_ssize_t i
    cdef floating u
    with nogil:
        for i in range(x.shape[0]):
            if which == 0:
                out[i] = vexp(x[i])
            elif which == 1:
                out[i] = vlog(x[i])
            elif which == 2:
                u = 1 + x[i]
                out[i] = log1p_unit(x[i], u, <floating>1 / u)
            elif which == 3:
                out[i] = vexp_nonpositive(x[i])
            elif which == 5:
                out[i] = vexp_nonpositive_exact(x[i])
            else:
                out[i] = log_normal(x[i])


def _run(x, int which):
    x = np.ascontiguousarray(x)
    if x.dtype != np.float32:
        x = x.astype(np.float64)
    out = np.empty_like(x)
    _apply(x.reshape(-1), out.reshape(-1), which)
    return out


def exp_array(x):
    """Elementwise exp with gluonloss's kernel math (float32 or float64)."""
    return _run(x, 0)


def log_array(x):
    """Elementwise log with gluonloss's kernel math (float32 or float64)."""
    return _run(x, 1)


def log1p_unit_array(x):
    """Elementwise log1p for x in [0, 1] with gluonloss's kernel math."""
    return _run(x, 2)


def exp_nonpositive_array(x):
    """exp on (-inf, 0], flushing results below the smallest normal to 0."""
    return _run(x, 3)


def log_normal_array(x):
    """log of finite, positive, normal numbers (no special cases)."""
    return _run(x, 4)


def exp_nonpositive_exact_array(x):
    """exp on (-inf, 0] (and NaN), subnormal results kept: exp_array's values."""
    return _run(x, 5)
