"""Memory layouts for the property tests: the same values as an array, stored
differently (docs/semantics.rst: any memory layout is accepted, inputs are never
modified, outputs never alias them)."""
import numpy as np

# C order, Fortran order, every axis strided (a view of a bigger array),
# every axis reversed (negative strides), strided and reversed at once, a
# transposed view (non-contiguous for 2+ axes), read-only; and three whose
# last axis stays contiguous while the others are not (kernels may take such
# arrays as views): the other axes reversed, rows padded (a view of a wider
# array), the first two axes swapped.
LAYOUTS = ("C", "F", "strided", "reversed", "strided-reversed", "transposed", "read-only",
           "outer-reversed", "rows-padded", "outer-swapped")


def _every_axis(ndim, step):
    return tuple(slice(None, None, step) for _ in range(ndim))


def with_layout(a, layout):
    """A new array equal to ``a`` (same shape, dtype and values) in ``layout``;
    never ``a`` itself, and never sharing its memory."""
    a = np.asarray(a)
    if a.ndim == 0 and layout != "read-only":
        return np.array(a)          # a 0-d array has no layout to vary
    if layout == "C":
        return np.array(a, order="C")
    if layout == "F":
        return np.array(a, order="F")
    if layout in ("strided", "strided-reversed"):
        step = 2 if layout == "strided" else -2
        big = np.zeros(tuple(2 * d + 1 for d in a.shape), a.dtype)
        view = big[_every_axis(a.ndim, step)][tuple(slice(0, d) for d in a.shape)]
        view[...] = a
        return view
    if layout == "reversed":
        return np.array(a[_every_axis(a.ndim, -1)])[_every_axis(a.ndim, -1)]
    if layout == "transposed":
        return np.array(a.T, order="C").T
    if layout == "outer-reversed":
        outer = _every_axis(a.ndim - 1, -1)
        return np.array(a[outer])[outer]
    if layout == "rows-padded":
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1] + 3,), a.dtype)
        view = wide[..., 1:a.shape[-1] + 1]
        view[...] = a
        return view
    if layout == "outer-swapped":
        return np.array(a.swapaxes(0, 1), order="C").swapaxes(0, 1) if a.ndim > 2 else np.array(a)
    if layout == "read-only":
        ro = np.array(a)
        ro.flags.writeable = False
        return ro
    raise ValueError(f"unknown layout {layout!r}")


def snapshot(a):
    """What must not change about an input during a call: its values (NaN-aware
    via a copy), dtype, shape, strides, data pointer and writeable flag."""
    return (np.array(a, copy=True), a.dtype, a.shape, a.strides,
            a.__array_interface__["data"][0], a.flags.writeable)


def assert_unchanged(a, before, name):
    copy, dtype, shape, strides, pointer, writeable = before
    assert (a.dtype, a.shape, a.strides) == (dtype, shape, strides), f"{name} was reshaped"
    assert a.__array_interface__["data"][0] == pointer, f"{name} was replaced"
    assert a.flags.writeable == writeable, f"{name}'s writeable flag changed"
    np.testing.assert_array_equal(a, copy, err_msg=f"{name} was modified")


def simple_layouts(a):
    """The same values as ``a`` in other memory layouts."""
    yield "fortran", np.asfortranarray(a)
    big = np.zeros((a.shape[0] * 2, a.shape[1] * 3), a.dtype)
    big[::2, ::3] = a
    yield "strided", big[::2, ::3]
    flipped = np.ascontiguousarray(a[::-1, ::-1])
    yield "negative-strides", flipped[::-1, ::-1]
    ro = a.copy()
    ro.flags.writeable = False
    yield "read-only", ro
