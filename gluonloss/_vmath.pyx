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


#: The functions ``apply`` knows, by name, with the switch value of ``_apply``:
#: exp, log, log1p for x in [0, 1], exp on (-inf, 0] flushing results below the
#: smallest normal to 0, log of finite positive normal numbers, and exp on
#: (-inf, 0] (and NaN) keeping subnormal results (exp's values).
FUNCTIONS = {"exp": 0, "log": 1, "log1p_unit": 2, "exp_nonpositive": 3, "log_normal": 4,
             "exp_nonpositive_exact": 5}


def apply(name, x):
    """The function ``name`` of FUNCTIONS elementwise on ``x`` with gluonloss's
    kernel math, in float32 for float32 input and float64 otherwise."""
    x = np.ascontiguousarray(x)
    if x.dtype != np.float32:
        x = x.astype(np.float64)
    out = np.empty_like(x)
    _apply(x.reshape(-1), out.reshape(-1), FUNCTIONS[name])
    return out
