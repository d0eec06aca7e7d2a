# The fast entry of SoftmaxCrossEntropyLoss with sparse labels, included at
# the end of _softmax.pyx (so every build of that module has it).
#
# ``Loss._call`` tries it before the general path (validation, layout moves,
# the label scan, the keyword entry above).  It answers only the common call,
# which the general path would accept and hand to the same kernel with the same
# job: pred a 2-D (N, C) ndarray of float32 or float64, native byte order,
# aligned and C-contiguous, with the classes last (axis -1) and the samples
# first (batch_axis 0), N >= 1, C >= 1; label an int32 or int64 ndarray,
# native, aligned and C-contiguous, of N elements, each in [0, C) or equal to
# the loss's ignore_label; class weights, if any, one per class; the sample
# weight left at its default; no out_grad.  Anything else, a bad label
# included, returns None and goes the general way, which makes every check
# and raises every error.

from libc.string cimport memset


cdef inline bint _plain_array(object x) noexcept:
    """``x`` is an ndarray in native byte order, aligned and C-contiguous."""
    cdef int flags
    if type(x) is not cnp.ndarray:
        return False
    flags = cnp.PyArray_FLAGS(<cnp.ndarray>x)
    return (flags & cnp.NPY_ARRAY_C_CONTIGUOUS and flags & cnp.NPY_ARRAY_ALIGNED
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>x))


cdef inline bint _is_int_type(int typenum, int itemsize, size_t size) noexcept:
    """A signed integer typenum of ``size`` bytes (long and long long alike)."""
    return itemsize == <int>size and typenum in (cnp.NPY_BYTE, cnp.NPY_SHORT, cnp.NPY_INT,
                                                 cnp.NPY_LONG, cnp.NPY_LONGLONG)


cdef bint _set_options(Job* job, tuple options, int typenum) except -1:
    """The loss's cross-entropy options into the job, as softmax_loss sets them;
    False when the general path must take the call (class weights of another
    length, which it reports)."""
    cdef object weights = options[0 if typenum == cnp.NPY_FLOAT32 else 1]
    job.smoothing = options[2]
    job.ignore = options[3] is not None
    if weights is not None:
        if type(weights) is not cnp.ndarray or cnp.PyArray_TYPE(<cnp.ndarray>weights) != typenum:
            raise TypeError("sparse_ce_fast: class weights must be ndarrays of pred's dtype")
        if cnp.PyArray_SIZE(<cnp.ndarray>weights) != job.n_classes:
            return False
        job.class_weight = cnp.PyArray_DATA(<cnp.ndarray>weights)
    cdef bint valid
    with nogil:
        valid = _set_class_weight_stats(job, typenum)
    return valid


def sparse_ce_fast(tuple constants not None, tuple inputs not None,
                   tuple options not None, out_grad,
                   bint want_loss, bint want_grad, threads_for):
    """``(out, grad)`` of a common call (see above), or None for the general path.

    constants   : ``(kind_id, from_logits, weight, axis, batch_axis, defaults,
                  options)`` of the loss: its kernel kind (only sparse
                  cross-entropy is answered), its scalar weight (a float), its
                  axes, the default of each call option, and None or its
                  cross-entropy options ``(class weights as float32 and as
                  float64 arrays or None, label smoothing, ignore_label or
                  None)``.
    inputs      : ``(pred, label)`` as the caller passed them.
    options     : the call's options, in the order of ``defaults``; the call is
                  common only when each is its default object itself.
    threads_for : the thread count for a number of elements.
    """
    if len(constants) != 7:      # indexing below is unchecked
        raise TypeError(f"sparse_ce_fast: constants must have 7 items, got {len(constants)}")
    cdef tuple defaults = constants[5]
    cdef tuple ce_options = constants[6]
    if defaults is None:
        raise TypeError("the option defaults must be a tuple, got None")
    if ce_options is not None and len(ce_options) != 4:
        raise TypeError(f"sparse_ce_fast: options must have 4 items, got {len(ce_options)}")
    cdef long long ignore_value = 0
    cdef object pred, label
    cdef int typenum, label_type
    cdef Py_ssize_t i, bad
    cdef Job job
    cdef cnp.ndarray out = None, grad = None, index
    if (out_grad is not None or constants[0] != KIND_SPARSE_CE
            or len(options) != len(defaults)):
        return None
    for i in range(len(options)):
        if options[i] is not defaults[i]:
            return None
    pred, label = inputs
    if not (_plain_array(pred) and _plain_array(label)):
        return None
    typenum = cnp.PyArray_TYPE(<cnp.ndarray>pred)
    if ((typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64)
            or cnp.PyArray_NDIM(<cnp.ndarray>pred) != 2
            or constants[3] not in (1, -1) or constants[4] not in (0, -2)):
        return None
    memset(&job, 0, sizeof(job))
    job.n_rows = cnp.PyArray_DIM(<cnp.ndarray>pred, 0)
    job.n_classes = cnp.PyArray_DIM(<cnp.ndarray>pred, 1)
    if job.n_rows == 0 or job.n_classes == 0 or cnp.PyArray_SIZE(<cnp.ndarray>label) != job.n_rows:
        return None
    if ce_options is not None and not _set_options(&job, ce_options, typenum):
        return None
    label_type = cnp.PyArray_TYPE(<cnp.ndarray>label)
    if _is_int_type(label_type, cnp.PyArray_ITEMSIZE(<cnp.ndarray>label), 8):
        label_type = cnp.NPY_INT64
    elif _is_int_type(label_type, cnp.PyArray_ITEMSIZE(<cnp.ndarray>label), 4):
        label_type = cnp.NPY_INT32
    else:
        return None
    if label_type == cnp.NPY_INT64 and sizeof(Py_ssize_t) == 8 and not job.ignore:
        # Already the kernel's indices: checked in place, not copied.
        job.index = <const Py_ssize_t*>cnp.PyArray_DATA(<cnp.ndarray>label)
        with nogil:
            bad = _first_outside(job.index, job.n_rows, job.n_classes, False)
    else:
        # Converted and checked as class_indices does (ignore_label -> -1).
        if job.ignore:
            ignore_value = ce_options[3]
        index = cnp.PyArray_EMPTY(1, cnp.PyArray_DIMS(<cnp.ndarray>pred), cnp.NPY_INTP, 0)
        job.index = <const Py_ssize_t*>cnp.PyArray_DATA(index)
        with nogil:
            bad = _convert(label_type, cnp.PyArray_DATA(<cnp.ndarray>label), job.n_rows,
                           job.n_classes, job.ignore, ignore_value, <Py_ssize_t*>job.index)
    if bad >= 0:
        return None
    job.pred = cnp.PyArray_DATA(<cnp.ndarray>pred)
    job.n_samples = job.n_rows
    job.n_inner = 1
    job.from_logits = constants[1]
    job.scale = <double>constants[2]
    if want_loss:
        out = cnp.PyArray_EMPTY(1, cnp.PyArray_DIMS(<cnp.ndarray>pred), typenum, 0)
        job.out = cnp.PyArray_DATA(out)
    if want_grad:
        grad = cnp.PyArray_EMPTY(2, cnp.PyArray_DIMS(<cnp.ndarray>pred), typenum, 0)
        job.grad = cnp.PyArray_DATA(grad)
    cdef int n_threads = threads_for(job.n_rows * job.n_classes)
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _dispatch(KIND_SPARSE_CE, <const float*>job.pred, &job, n_threads)
        else:
            _dispatch(KIND_SPARSE_CE, <const double*>job.pred, &job, n_threads)
    return out, grad
