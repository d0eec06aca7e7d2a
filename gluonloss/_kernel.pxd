# Plumbing shared by the kernel modules: checked access to the arrays a
# kernel entry receives, and the fixed-order lane reductions.
#
# A kernel entry (a ``def`` called by the Python layer) takes ndarrays and
# hands raw pointers to nogil code that trusts every shape.  ``array_data``
# is the one place where an array becomes a pointer: it checks the type,
# dtype, byte order, alignment, contiguity, dimensions and writability the
# kernel relies on, and raises TypeError/ValueError naming the kernel and
# the argument otherwise.  The checks read a few fields of the array
# header, so they cost nanoseconds, unlike a typed memoryview (which
# acquires a buffer per argument and, for fused types, dispatches on a
# signature string).

cimport numpy as cnp

from cython cimport floating

cdef enum:
    ANY = -1               # a dimension that may have any length
    # array_data flags
    OPTIONAL = 1           # None is accepted (the pointer is NULL)
    WRITABLE = 2           # an output: must be writeable
    STRIDED = 4            # only the last axis must be contiguous (else C-contiguous)


cdef inline int float_typenum(object arr, str kernel, str name) except -1:
    """NPY_FLOAT32 or NPY_FLOAT64: the compute dtype, read off ``arr``."""
    cdef int typenum
    if type(arr) is not cnp.ndarray:
        raise TypeError(f"{kernel}: {name} must be a numpy.ndarray, got {type(arr).__name__}")
    typenum = cnp.PyArray_TYPE(<cnp.ndarray>arr)
    if typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64:
        raise TypeError(f"{kernel}: {name} must be float32 or float64, got "
                        f"{(<cnp.ndarray>arr).dtype}")
    return typenum


cdef inline void* array_data(object arr, str kernel, str name, int typenum, int ndim,
                             Py_ssize_t dim0, Py_ssize_t dim1, Py_ssize_t dim2,
                             int flags) except? NULL:
    """The data pointer of ``arr`` once it is what the kernel reads or writes.

    ``arr`` must be an ndarray of ``typenum`` in native byte order, aligned,
    with ``ndim`` dimensions of the given lengths (ANY: any length; only the
    first ``ndim`` are looked at), C-contiguous (STRIDED: its last axis
    contiguous and every stride a multiple of the item size, unless it is
    empty) and writeable
    when WRITABLE.  None gives NULL when OPTIONAL, else a TypeError.
    """
    cdef cnp.ndarray a
    cdef Py_ssize_t expected[3]
    cdef int axis, array_flags
    cdef Py_ssize_t item
    if arr is None:
        if flags & OPTIONAL:
            return NULL
        raise TypeError(f"{kernel}: {name} is required, got None")
    if type(arr) is not cnp.ndarray:
        raise TypeError(f"{kernel}: {name} must be a numpy.ndarray, got {type(arr).__name__}")
    a = <cnp.ndarray>arr
    if cnp.PyArray_TYPE(a) != typenum and not cnp.PyArray_EquivTypenums(
            cnp.PyArray_TYPE(a), typenum):
        raise TypeError(f"{kernel}: {name} must have dtype {cnp.PyArray_DescrFromType(typenum)}, "
                        f"got {arr.dtype}")
    if not cnp.PyArray_ISNOTSWAPPED(a):
        raise TypeError(f"{kernel}: {name} must be in native byte order, got {arr.dtype}")
    if cnp.PyArray_NDIM(a) != ndim:
        raise ValueError(f"{kernel}: {name} must have {ndim} dimensions, got shape {arr.shape}")
    expected[0] = dim0
    expected[1] = dim1
    expected[2] = dim2
    for axis in range(min(ndim, 3)):
        if expected[axis] != ANY and cnp.PyArray_DIM(a, axis) != expected[axis]:
            raise ValueError(f"{kernel}: {name} must have length {expected[axis]} along axis "
                             f"{axis}, got shape {arr.shape}")
    array_flags = cnp.PyArray_FLAGS(a)
    if not array_flags & cnp.NPY_ARRAY_ALIGNED:
        raise ValueError(f"{kernel}: {name} must be aligned")
    if flags & WRITABLE and not array_flags & cnp.NPY_ARRAY_WRITEABLE:
        raise ValueError(f"{kernel}: {name} must be writeable")
    if not flags & STRIDED:
        if not array_flags & cnp.NPY_ARRAY_C_CONTIGUOUS:
            raise ValueError(f"{kernel}: {name} must be C-contiguous, got strides {arr.strides}")
    elif cnp.PyArray_SIZE(a):      # an empty array is never read: any strides
        item = cnp.PyArray_ITEMSIZE(a)
        if ndim and cnp.PyArray_DIM(a, ndim - 1) > 1 and cnp.PyArray_STRIDE(a, ndim - 1) != item:
            raise ValueError(f"{kernel}: {name} must be contiguous along its last axis, "
                             f"got strides {arr.strides}")
        for axis in range(ndim):
            if cnp.PyArray_STRIDE(a, axis) % item:
                raise ValueError(f"{kernel}: {name} must have strides that are multiples of "
                                 f"its item size, got strides {arr.strides}")
    return cnp.PyArray_DATA(a)


cdef inline Py_ssize_t element_stride(object arr, int axis) noexcept:
    """The stride of an array checked by array_data, in elements (0 for None)."""
    if arr is None:
        return 0
    return (cnp.PyArray_STRIDE(<cnp.ndarray>arr, axis)
            // cnp.PyArray_ITEMSIZE(<cnp.ndarray>arr))


# ---------------------------------------------------------------------------
# Lane reductions: ``lanes`` independent partial results side by side (the
# loops vectorise) and then combined in lane order, so the result depends on
# the data alone.  Inlined with a constant ``lanes``, they compile to the
# same code as the loops written out.

cdef inline void lanes_fill(floating* acc, int lanes, floating value) noexcept nogil:
    cdef int j
    for j in range(lanes):
        acc[j] = value


ctypedef fused total_t:
    float
    double


cdef inline total_t lanes_sum(const floating* acc, int lanes, total_t start) noexcept nogil:
    """start + acc[0] + ... + acc[lanes - 1] in that order, accumulated in the
    type of ``start`` (double, or the lanes' own type)."""
    cdef total_t total = start
    cdef int j
    for j in range(lanes):
        total += acc[j]
    return total
