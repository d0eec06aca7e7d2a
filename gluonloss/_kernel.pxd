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


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* acc[j] = x[g*16 + j] if x[g*16 + j] > acc[j] else acc[j], for every group g
       of 16 in order: a running maximum per lane, keeping acc on NaN (and with
       < instead of >, a running minimum).  GCC does
       not vectorise the compare-and-select of this loop when it is written out
       per lane (it unrolls the 16 lanes into scalar code first), so with
       GNU C it is written with vector types as wide as the build's registers:
       the same compare and select, lane by lane, in every build. */
    #if defined(__GNUC__)
    #if defined(__AVX512F__)
    #define GLUONLOSS_VBYTES 64
    #elif defined(__AVX__)
    #define GLUONLOSS_VBYTES 32
    #else
    #define GLUONLOSS_VBYTES 16
    #endif
    #define GLUONLOSS_LANES_SELECT(NAME, T, IT, OP)                                     \\
    static inline void NAME(const T* x, Py_ssize_t n_groups, T* acc) {                \\
        typedef T vec_t __attribute__((vector_size(GLUONLOSS_VBYTES)));               \\
        typedef IT mask_t __attribute__((vector_size(GLUONLOSS_VBYTES)));             \\
        enum { PER_VEC = GLUONLOSS_VBYTES / sizeof(T), N_VEC = 16 / PER_VEC };        \\
        vec_t best[N_VEC], v;                                                         \\
        mask_t take;                                                                  \\
        Py_ssize_t g; int k;                                                          \\
        memcpy(best, acc, 16 * sizeof(T));                                            \\
        for (g = 0; g < n_groups; g++) {                                              \\
            for (k = 0; k < N_VEC; k++) {                                             \\
                memcpy(&v, x + g * 16 + k * PER_VEC, sizeof v);                       \\
                take = v OP best[k];                                                  \\
                best[k] = (vec_t)((take & (mask_t)v) | (~take & (mask_t)best[k]));    \\
            }                                                                         \\
        }                                                                             \\
        memcpy(acc, best, 16 * sizeof(T));                                            \\
    }
    #else
    #define GLUONLOSS_LANES_SELECT(NAME, T, IT, OP)                                     \\
    static inline void NAME(const T* x, Py_ssize_t n_groups, T* acc) {                \\
        Py_ssize_t g; int j;                                                          \\
        for (g = 0; g < n_groups; g++)                                                \\
            for (j = 0; j < 16; j++)                                                  \\
                acc[j] = x[g * 16 + j] OP acc[j] ? x[g * 16 + j] : acc[j];            \\
    }
    #endif
    GLUONLOSS_LANES_SELECT(gluonloss_lanes16_max_f32, float, int32_t, >)
    GLUONLOSS_LANES_SELECT(gluonloss_lanes16_max_f64, double, int64_t, >)
    GLUONLOSS_LANES_SELECT(gluonloss_lanes16_min_f32, float, int32_t, <)
    GLUONLOSS_LANES_SELECT(gluonloss_lanes16_min_f64, double, int64_t, <)
    """
    void _lanes16_max_f32 "gluonloss_lanes16_max_f32"(
        const float* x, Py_ssize_t n_groups, float* acc) noexcept nogil
    void _lanes16_max_f64 "gluonloss_lanes16_max_f64"(
        const double* x, Py_ssize_t n_groups, double* acc) noexcept nogil
    void _lanes16_min_f32 "gluonloss_lanes16_min_f32"(
        const float* x, Py_ssize_t n_groups, float* acc) noexcept nogil
    void _lanes16_min_f64 "gluonloss_lanes16_min_f64"(
        const double* x, Py_ssize_t n_groups, double* acc) noexcept nogil


cdef inline void lanes16_max(const floating* x, Py_ssize_t n_groups,
                             floating* acc) noexcept nogil:
    """Per lane j of 16, acc[j] = max(acc[j], x[16 g + j]) over the groups g,
    as ``x if x > acc else acc`` (a NaN never replaces acc)."""
    if floating is float:
        _lanes16_max_f32(x, n_groups, acc)
    else:
        _lanes16_max_f64(x, n_groups, acc)


cdef inline void lanes16_min(const floating* x, Py_ssize_t n_groups,
                             floating* acc) noexcept nogil:
    """Per lane j of 16, acc[j] = min(acc[j], x[16 g + j]) over the groups g,
    as ``x if x < acc else acc`` (a NaN never replaces acc)."""
    if floating is float:
        _lanes16_min_f32(x, n_groups, acc)
    else:
        _lanes16_min_f64(x, n_groups, acc)
