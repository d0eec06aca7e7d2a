"""Argument checks shared by every loss.

Everything a kernel assumes is established here: numeric dtypes, matching
sizes, broadcastable shapes, valid axes and parameters.  Messages name the
argument, the offending value and what was expected.
"""
import numbers
import operator

import numpy as np

_REAL_KINDS = frozenset("biuf")


def as_numeric_array(x, name):
    """``np.asarray(x)``, rejecting anything that is not real-valued numbers."""
    if type(x) is np.ndarray:
        a = x
    else:
        try:
            a = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{name} could not be converted to an array: {exc}") from exc
    if a.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"{name} must hold real numbers (bool, int or float), "
                        f"got an array of dtype {a.dtype}")
    return a


def compute_dtype(*differentiable):
    """float32 when every differentiable input is float32, else float64."""
    for a in differentiable:
        if a.dtype.kind != "f" or a.dtype.itemsize != 4:   # any byte order
            return np.float64
    return np.float32


def check_real(value, name, allow_none=False):
    """A real scalar parameter (weight, margin, rho, ...), returned as given."""
    if value is None and allow_none:
        return None
    if type(value) in (float, int) or isinstance(value, (numbers.Real, np.bool_)) or (
            isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in _REAL_KINDS):
        return value
    expected = "a real number or None" if allow_none else "a real number"
    raise TypeError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")


def check_positive(value, name):
    check_real(value, name)
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def check_int(value, name):
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r} "
                        f"({type(value).__name__})") from None


def check_choice(value, name, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def normalize_axis(axis, ndim, name, array_name="pred"):
    """A possibly negative axis as a non-negative one, or ValueError."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for {array_name} with "
                         f"{ndim} dimension{'s' if ndim != 1 else ''}")
    return axis + ndim if axis < 0 else axis


def reshape_like(a, shape, size, name, like="pred"):
    """``a`` read in C order as an array of ``shape`` (same number of elements)."""
    if a.shape == shape:
        return a
    if a.size != size:
        raise ValueError(f"{name} has {a.size} elements (shape {a.shape}) but {like} has "
                         f"{size} (shape {shape}); they must have the same number of elements")
    return a.reshape(shape)


def check_broadcast(src_shape, target_shape, name, target_name):
    """``src_shape`` must broadcast to ``target_shape`` without enlarging it."""
    n = len(target_shape)
    ok = len(src_shape) <= n
    if ok:
        for s, t in zip(reversed(src_shape), reversed(target_shape)):
            if s != 1 and s != t:
                ok = False
                break
    if not ok:
        raise ValueError(f"{name} of shape {tuple(src_shape)} does not broadcast to "
                         f"{target_name} shape {tuple(target_shape)}")


def broadcastable_array(x, name, target_shape, target_name):
    """None, or ``x`` as a numeric array that broadcasts to ``target_shape``."""
    if x is None:
        return None
    a = as_numeric_array(x, name)
    check_broadcast(a.shape, target_shape, name, target_name)
    return a
