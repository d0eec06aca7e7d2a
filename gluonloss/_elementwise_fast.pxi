# The fast entry of the elementwise losses, included at the end of
# _elementwise.pyx (so every build of that module has it).
#
# ``Loss._call`` tries it before the general path (validation, layout moves,
# the keyword entry above).  It answers only the common call, which the
# general path would accept unchanged and hand to the same kernel with the
# same job: pred an ndarray of float32 or float64 and label an ndarray of
# bool, integers or floats (cast to pred's dtype as the general path casts
# it), both native byte order, aligned and C-contiguous, label with pred's
# number of elements, every option left at its default, no out_grad, batch_axis 0, and
# a non-empty batch of non-empty samples.  Anything else returns None and goes
# the general way, which makes every check and raises every error.

from libc.string cimport memset


cdef inline bint _plain_float_array(object x, int typenum) noexcept:
    """``x`` is an ndarray of ``typenum``, native, aligned and C-contiguous."""
    cdef int flags
    if type(x) is not cnp.ndarray or cnp.PyArray_TYPE(<cnp.ndarray>x) != typenum:
        return False
    flags = cnp.PyArray_FLAGS(<cnp.ndarray>x)
    return (flags & cnp.NPY_ARRAY_C_CONTIGUOUS and flags & cnp.NPY_ARRAY_ALIGNED
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>x))


cdef inline bint _plain_real_array(object x) noexcept:
    """``x`` is an ndarray of bool, integers or floats, native, aligned and C-contiguous."""
    cdef int flags
    if type(x) is not cnp.ndarray or not (
            cnp.PyArray_ISBOOL(<cnp.ndarray>x) or cnp.PyArray_ISINTEGER(<cnp.ndarray>x)
            or cnp.PyArray_ISFLOAT(<cnp.ndarray>x)):
        return False
    flags = cnp.PyArray_FLAGS(<cnp.ndarray>x)
    return (flags & cnp.NPY_ARRAY_C_CONTIGUOUS and flags & cnp.NPY_ARRAY_ALIGNED
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>x))


def elementwise_fast(tuple constants not None, tuple inputs not None,
                     tuple options not None, out_grad,
                     bint want_loss, bint want_grad, threads_for):
    """``(out, grad)`` of a common call (see above), or None for the general path.

    constants   : ``(kind_id, param0, param1, weight, defaults, batch_axis)`` of
                  the loss: its kernel kind and parameters, its scalar weight (a
                  float), the default of each option and its batch axis.
    inputs      : ``(pred, label)`` as the caller passed them.
    options     : the call's options, in the order of ``defaults``; the call is
                  common only when each is its default object itself.
    threads_for : the thread count for a number of elements.
    """
    if len(constants) != 6:      # indexing below is unchecked
        raise TypeError(f"elementwise_fast: constants must have 6 items, got {len(constants)}")
    cdef int kind_id = constants[0]
    cdef tuple defaults = constants[4]
    if defaults is None:
        raise TypeError("the option defaults must be a tuple, got None")
    cdef object pred, label
    cdef int typenum, ndim
    cdef Py_ssize_t i, size
    cdef Job job
    cdef cnp.ndarray out = None, grad = None, partial
    if out_grad is not None or len(options) != len(defaults):
        return None
    for i in range(len(options)):
        if options[i] is not defaults[i]:
            return None
    pred, label = inputs
    if type(pred) is not cnp.ndarray:
        return None
    typenum = cnp.PyArray_TYPE(<cnp.ndarray>pred)
    if typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64:
        return None
    if not _plain_float_array(pred, typenum):
        return None
    if not _plain_float_array(label, typenum):
        if not _plain_real_array(label):
            return None
        # numpy's unsafe cast, as np.ascontiguousarray(label, dtype) in the general path
        label = cnp.PyArray_Cast(<cnp.ndarray>label, typenum)
    ndim = cnp.PyArray_NDIM(<cnp.ndarray>pred)
    size = cnp.PyArray_SIZE(<cnp.ndarray>pred)
    if (ndim == 0 or size == 0 or cnp.PyArray_SIZE(<cnp.ndarray>label) != size
            or (constants[5] != 0 and constants[5] != -ndim)):
        return None
    if not 0 <= kind_id <= KIND_POISSON_RATE_FULL:
        raise ValueError(f"elementwise_fast: unknown kind_id {kind_id}")
    memset(&job, 0, sizeof(job))
    job.pred = cnp.PyArray_DATA(<cnp.ndarray>pred)
    job.label = cnp.PyArray_DATA(<cnp.ndarray>label)
    job.n_rows = cnp.PyArray_DIM(<cnp.ndarray>pred, 0)
    job.n_cols = size // job.n_rows
    job.n_blocks = (job.n_cols + BLOCK - 1) // BLOCK
    job.aux = _operand(None, "aux", typenum, job.n_rows, job.n_cols)
    job.weight = job.aux
    job.scale = <double>constants[3] / <double>job.n_cols
    if want_loss:
        out = cnp.PyArray_EMPTY(1, cnp.PyArray_DIMS(<cnp.ndarray>pred), typenum, 0)
        job.out = cnp.PyArray_DATA(out)
    if want_grad:
        grad = cnp.PyArray_EMPTY(ndim, cnp.PyArray_DIMS(<cnp.ndarray>pred), typenum, 0)
        job.grad = cnp.PyArray_DATA(grad)
    if job.n_blocks > 1:
        partial = np.empty(job.n_rows * job.n_blocks)
        job.partial = <double*>cnp.PyArray_DATA(partial)
    cdef int n_threads = threads_for(size)
    cdef double param0 = constants[1], param1 = constants[2]
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _dispatch(kind_id, param0, param1, <const float*>job.pred, &job, n_threads)
        else:
            _dispatch(kind_id, param0, param1, <const double*>job.pred, &job, n_threads)
    return out, grad
