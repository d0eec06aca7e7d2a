"""Kernel of CTCLoss: forward-backward over the extended label, one sample
per thread.

The Python layer (``gluonloss/ctc.py``) has validated everything and hands
over, per sample b, a frame count T_b <= T and a label of S_b classes other
than the blank, which is class C-1 (``blank_first`` False) or class 0
(True): labels lie in [0, C-2] or [1, C-1].  With the extended label
l' = (blank, l_1, blank, l_2, ..., l_S, blank) of 2S+1 states:

    loss_b = -log p(l | x_b),   p = sum over the alignments of prod_t y_t(l'_s(t))
    grad_b[t, k] = softmax(x_t)_k - sum_{s: l'_s = k} gamma_t(s)    (t < T_b; 0 after)

with gamma_t(s) = alpha_t(s) beta_t(s) / p the posterior of state s at frame t.

Numerics: log space.  Scaled probability space (Graves' rescaling) needs
fewer exp/log calls, but a single emission probability such as e^-100
(logits of +-50) is a float32 subnormal with a few bits left, or 0 below
e^-104, and one such factor on the only alignment that fits makes the
loss wrong or infinite.  In log space every quantity stays representable
for any finite logits.  Float32 log values still lose absolute precision
as they grow (alpha reaches ~1e5 for T = 2000), so each frame's alpha and
beta rows are shifted to a maximum of 0 and the shifts are summed in
float64: the rows keep full precision within the frame's dynamic range,
and the posteriors are normalised per frame (they sum to 1 over the states
of every frame), which needs no log p at all.

Only the band of states that lie on some complete alignment is computed
(s <= 2t+1 and s >= 2S+1 - 2(T_b - t)).  The exp/log are the branch-free
ones of ``_math.pxd``, so the loops over the states of one frame
vectorise.  Every sample is computed start to
finish by one thread in a fixed order: results are bitwise identical for
any thread count.  Scratch is one preallocated block per thread.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY, NAN
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memset
cimport numpy as cnp
import numpy as np

from gluonloss._kernel cimport (
    ANY, OPTIONAL, STRIDED, WRITABLE, array_data, element_stride, float_typenum, lanes_fill,
    lanes_sum,
)
from gluonloss._math cimport log_normal, vexp, vexp_nonpositive, vlog

cnp.import_array()

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #else
    static int omp_get_thread_num(void) { return 0; }
    #endif
    """
    int omp_get_thread_num() noexcept nogil

cdef enum:
    LANES = 8       # independent partial sums/maxima in a reduction
    ALIGN = 16      # threads' scratch blocks a multiple of 16 elements apart: no shared lines


# ---------------------------------------------------------------------------
# Scalar helpers.

cdef inline floating max2(floating a, floating b) noexcept nogil:
    return a if a > b else b


cdef inline floating finite_shift(floating m) noexcept nogil:
    """m, or 0 when m is -inf or NaN: subtracting it must not turn -inf into NaN."""
    return m if m > -INFINITY else <floating>0.0


cdef inline floating min2(floating a, floating b) noexcept nogil:
    return a if a < b else b


cdef inline floating log_sum_exp3(floating a, floating b, floating c) noexcept nogil:
    """log(e^a + e^b + e^c); -inf when all three are -inf.

    The largest term is e^0 = 1 after the shift, so only the other two need
    an exp, and the log's argument lies in [1, 3] (log_normal: no special
    cases).  vexp_nonpositive flushes terms below the smallest normal number
    to 0: far below half an ulp of the sum, and it keeps subnormals, which
    cost a ~100-cycle microcode assist per operation and turn up constantly
    in log-space recursions, out of the arithmetic.  NaN is not looked for:
    in the recursions a NaN input makes every emission of its frame NaN, so
    every state of the frame and the frame's shift (row_max) are NaN, and the
    shift carries it into log p.
    """
    cdef floating low = min2(a, b)
    cdef floating high = max2(a, b)
    cdef floating m = max2(high, c)
    cdef floating middle = min2(high, c)
    cdef floating shift = finite_shift(m)
    cdef floating total = (<floating>1.0 + vexp_nonpositive(low - shift)
                           + vexp_nonpositive(middle - shift))
    return shift + log_normal(total) if m > -INFINITY else <floating>-INFINITY


cdef inline floating row_max(const floating* v, Py_ssize_t n) noexcept nogil:
    cdef floating acc[LANES]
    cdef Py_ssize_t c, i, j, n_vec = n - n % LANES
    cdef floating m = -INFINITY
    lanes_fill(acc, LANES, -INFINITY)
    for c in range(n_vec // LANES):
        i = c * LANES
        for j in range(LANES):
            acc[j] = max2(acc[j], v[i + j])
    for j in range(LANES):
        m = max2(m, acc[j])
    for i in range(n_vec, n):
        m = max2(m, v[i])
    return m


cdef inline floating sum_exp(const floating* v, floating shift, floating* w,
                             Py_ssize_t n) noexcept nogil:
    """w_i = exp(v_i - shift) for v_i <= shift, and their sum in a fixed order."""
    cdef floating acc[LANES]
    cdef Py_ssize_t c, i, j, n_vec = n - n % LANES
    cdef floating total
    lanes_fill(acc, LANES, 0)
    for c in range(n_vec // LANES):
        i = c * LANES
        for j in range(LANES):
            w[i + j] = vexp_nonpositive(v[i + j] - shift)
            acc[j] += w[i + j]
    total = lanes_sum(acc, LANES, <floating>0)
    for i in range(n_vec, n):
        w[i] = vexp_nonpositive(v[i] - shift)
        total += w[i]
    return total


cdef inline floating log_normalizer(const floating* x, floating* work,
                                    Py_ssize_t n) noexcept nogil:
    """log(sum_k e^x_k), the log-softmax normaliser of one frame (work: n entries)."""
    cdef floating shift = finite_shift(row_max(x, n))
    return shift + vlog(sum_exp(x, shift, work, n))


cdef inline floating shift_to_max_zero(floating* v, Py_ssize_t n) noexcept nogil:
    """Subtract the row's maximum from every entry; return the maximum."""
    cdef floating m = row_max(v, n)
    cdef floating shift = finite_shift(m)
    cdef Py_ssize_t i
    for i in range(n):
        v[i] = v[i] - shift
    return m


cdef inline floating even_sum(const floating* v, Py_ssize_t start,
                              Py_ssize_t stop) noexcept nogil:
    """sum of v[s] over the even s in [start, stop), in a fixed order."""
    cdef floating acc[LANES]
    cdef Py_ssize_t first = start + (start & 1)
    cdef Py_ssize_t n = (stop - first + 1) // 2
    cdef Py_ssize_t c, i, j, n_vec = n - n % LANES
    cdef floating total
    lanes_fill(acc, LANES, 0)
    for c in range(n_vec // LANES):
        i = first + 2 * c * LANES
        for j in range(LANES):
            acc[j] += v[i + 2 * j]
    total = lanes_sum(acc, LANES, <floating>0)
    for i in range(n_vec, n):
        total += v[first + 2 * i]
    return total


# ---------------------------------------------------------------------------
# One sample.

cdef struct Job:
    Py_ssize_t n_classes
    const void* pred
    Py_ssize_t pred_sample_stride     # elements; class stride is 1
    Py_ssize_t pred_frame_stride
    const int32_t* label
    Py_ssize_t label_sample_stride
    Py_ssize_t label_position_stride
    const int64_t* frames             # T_b
    const int64_t* label_length       # S_b
    int32_t blank                     # C-1, or 0 with blank_first
    const double* loss_scale          # weight * sample_weight[b]
    const double* grad_scale          # weight * sample_weight[b] * out_grad[b]
    bint zero_infinity
    void* out                         # (N,) or NULL
    void* grad                        # like pred (class stride 1) or NULL
    Py_ssize_t grad_sample_stride
    Py_ssize_t grad_frame_stride
    Py_ssize_t n_frames               # T: gradient rows to write per sample
    Py_ssize_t row_width              # states + 2 pads each side: every row's pitch
    Py_ssize_t alpha_rows             # T + 1 with a gradient, else 2
    void* scratch                     # per-thread floating blocks
    Py_ssize_t scratch_pitch          # elements per thread
    int32_t* classes                  # per-thread extended labels
    Py_ssize_t classes_pitch


cdef struct Buffers:
    # Every row has room for two entries after the last state, and alpha's
    # and next_term's rows for two before state 0 as well: the -inf fences
    # around a band always fit, so the s-1, s-2 (s+1, s+2) reads need no
    # bounds test.
    void* alpha
    void* log_norm    # per frame
    void* emit        # log y_t(l'_s) of the current frame
    void* beta
    void* next_term   # beta_{t+1}(s) + log y_{t+1}(l'_s), rows like alpha's
    void* work
    void* skip        # 0 where the s-2 -> s transition is allowed, else -inf
    void* occupancy   # per class
    void* class_work  # per class


cdef inline void _buffers(const Job* job, floating* base, Buffers* buf) noexcept nogil:
    cdef Py_ssize_t r = job.row_width
    cdef Py_ssize_t at = 0
    buf.alpha = base
    at += job.alpha_rows * r
    buf.log_norm = base + at
    at += job.n_frames + 1
    buf.emit = base + at
    at += r
    buf.beta = base + at
    at += r
    buf.next_term = base + at + 2
    at += r
    buf.work = base + at
    at += r
    buf.skip = base + at
    at += r
    buf.occupancy = base + at
    at += job.n_classes
    buf.class_work = base + at


cdef Py_ssize_t _scratch_pitch(Py_ssize_t alpha_rows, Py_ssize_t row_width,
                               Py_ssize_t n_frames, Py_ssize_t n_classes) noexcept:
    """Elements of one thread's scratch block (see _buffers), rounded up."""
    cdef Py_ssize_t n = alpha_rows * row_width + n_frames + 1 + 5 * row_width + 2 * n_classes
    return (n + ALIGN - 1) // ALIGN * ALIGN


cdef inline Py_ssize_t _extended_label(const Job* job, Py_ssize_t b, Py_ssize_t n_labels,
                                       int32_t* classes, floating* skip) noexcept nogil:
    """Fill the extended label and its skip mask; return the adjacent repeats."""
    cdef const int32_t* label = job.label + b * job.label_sample_stride
    cdef Py_ssize_t j, repeats = 0
    cdef int32_t blank = job.blank
    cdef int32_t k, previous = -1
    classes[0] = blank
    skip[0] = -INFINITY
    for j in range(n_labels):
        k = label[j * job.label_position_stride]
        classes[2 * j + 1] = k
        classes[2 * j + 2] = blank
        # A blank is never skipped; a label is, unless it repeats the previous one.
        skip[2 * j + 1] = -INFINITY if k == previous or j == 0 else <floating>0.0
        skip[2 * j + 2] = -INFINITY
        if k == previous:
            repeats += 1
        previous = k
    skip[2 * n_labels + 1] = -INFINITY
    skip[2 * n_labels + 2] = -INFINITY
    return repeats


cdef inline void _emissions(const floating* x, floating log_norm, const int32_t* classes,
                            floating* emit, Py_ssize_t n_states) noexcept nogil:
    cdef Py_ssize_t s
    for s in range(n_states):
        emit[s] = x[classes[s]] - log_norm


cdef inline void _alpha_step(const floating* prev, const floating* emit, const floating* skip,
                             floating* cur, Py_ssize_t n_states) noexcept nogil:
    cdef Py_ssize_t s
    for s in range(n_states):
        cur[s] = emit[s] + log_sum_exp3(prev[s], prev[s - 1], prev[s - 2] + skip[s])


cdef inline void _beta_step(const floating* nxt, const floating* skip, floating* beta,
                            Py_ssize_t n_states) noexcept nogil:
    cdef Py_ssize_t s
    for s in range(n_states):
        beta[s] = log_sum_exp3(nxt[s], nxt[s + 1], nxt[s + 2] + skip[s + 2])


cdef inline void _fill_rows(floating* g, Py_ssize_t frame_stride, Py_ssize_t n_frames,
                            Py_ssize_t n_classes, floating value) noexcept nogil:
    cdef Py_ssize_t t, k
    for t in range(n_frames):
        for k in range(n_classes):
            g[t * frame_stride + k] = value


cdef inline void _zero_rows(floating* g, Py_ssize_t frame_stride, Py_ssize_t first,
                            Py_ssize_t last, Py_ssize_t n_classes) noexcept nogil:
    cdef Py_ssize_t t
    for t in range(first, last):
        memset(g + t * frame_stride, 0, n_classes * sizeof(floating))


cdef inline Py_ssize_t _band_start(Py_ssize_t t, Py_ssize_t n_frames,
                                   Py_ssize_t n_states) noexcept nogil:
    """First state of frame t that can still reach the end (2 states a frame at most)."""
    return max(<Py_ssize_t>0, n_states - 2 * (n_frames - t))


cdef inline Py_ssize_t _band_stop(Py_ssize_t t, Py_ssize_t n_states) noexcept nogil:
    """One past the last state of frame t reachable from the start."""
    return min(n_states, 2 * t + 2)


cdef inline void _fence(floating* row, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """-inf on the two states either side of [start, stop): all the next step reads."""
    row[start - 2] = -INFINITY
    row[start - 1] = -INFINITY
    row[stop] = -INFINITY
    row[stop + 1] = -INFINITY


cdef inline double _forward(const Job* job, const floating* x0, Py_ssize_t n_frames,
                            Py_ssize_t n_states, const int32_t* classes, const floating* skip,
                            floating* alpha, floating* log_norm, floating* emit,
                            floating* class_work, bint keep_rows) noexcept nogil:
    """log p(l | x): alpha rows kept (row t+1 for frame t) when keep_rows.

    Only the band of states that lie on some complete alignment is computed
    (warp-ctc's pruning): the rest has alpha * beta = 0 and is left out of
    the recursion, the per-frame shift and the posteriors alike.
    """
    cdef Py_ssize_t t, start, stop, r = job.row_width
    cdef floating* prev = alpha + 2
    cdef floating* cur
    cdef const floating* x
    cdef double log_scale = 0.0       # sum of the per-frame shifts
    # Row 0 is "before the first frame": all the mass on state 0.
    prev[0] = 0
    _fence(prev, 0, 1)
    for t in range(n_frames):
        start = _band_start(t, n_frames, n_states)
        stop = _band_stop(t, n_states)
        x = x0 + t * job.pred_frame_stride
        log_norm[t] = log_normalizer(x, class_work, job.n_classes)
        _emissions(x, log_norm[t], classes + start, emit + start, stop - start)
        cur = alpha + (t + 1 if keep_rows else (t + 1) % 2) * r + 2
        _alpha_step(prev + start, emit + start, skip + start, cur + start, stop - start)
        log_scale += shift_to_max_zero(cur + start, stop - start)
        _fence(cur, start, stop)
        prev = cur
    # The alignment ends in the last label or the final blank.
    return log_scale + log_sum_exp3(prev[n_states - 1], prev[n_states - 2],
                                    <floating>-INFINITY)


cdef inline void _backward(const Job* job, const floating* x0, floating* g0,
                           Py_ssize_t n_frames, Py_ssize_t n_states, const int32_t* classes,
                           const floating* skip, const floating* alpha,
                           const floating* log_norm, floating* beta, floating* nxt,
                           floating* work, floating* occupancy,
                           floating scale) noexcept nogil:
    """Gradient rows 0..n_frames-1: scale * (softmax - posterior class occupancy)."""
    cdef Py_ssize_t t, s, k, start, stop, c = job.n_classes
    cdef const floating* x
    cdef const floating* a
    cdef floating* g
    cdef floating shift, inv_total
    # beta of the last frame: 1 on the two final states (those in its band).
    for s in range(_band_start(n_frames - 1, n_frames, n_states),
                   _band_stop(n_frames - 1, n_states)):
        beta[s] = 0
    memset(occupancy, 0, c * sizeof(floating))
    for t in range(n_frames - 1, -1, -1):
        start = _band_start(t, n_frames, n_states)
        stop = _band_stop(t, n_states)
        x = x0 + t * job.pred_frame_stride
        g = g0 + t * job.grad_frame_stride
        a = alpha + (t + 1) * job.row_width + 2
        # Posteriors of frame t, normalised over its states (they sum to 1).
        for s in range(start, stop):
            nxt[s] = a[s] + beta[s]
        shift = finite_shift(row_max(nxt + start, stop - start))
        inv_total = <floating>1.0 / sum_exp(nxt + start, shift, work + start, stop - start)
        # The blanks (even states) in partial sums: one running total in memory
        # would chain every other state through a store and a reload.
        occupancy[job.blank] = even_sum(work, start, stop) * inv_total
        for s in range(start | 1, stop, 2):
            occupancy[classes[s]] += work[s] * inv_total
        for k in range(c):
            g[k] = scale * (vexp(x[k] - log_norm[t]) - occupancy[k])
        for s in range(start | 1, stop, 2):
            occupancy[classes[s]] = 0
        if t > 0:
            _emissions(x, log_norm[t], classes + start, work + start, stop - start)
            for s in range(start, stop):
                nxt[s] = beta[s] + work[s]
            _fence(nxt, start, stop)
            start = _band_start(t - 1, n_frames, n_states)
            stop = _band_stop(t - 1, n_states)
            _beta_step(nxt + start, skip + start, beta + start, stop - start)
            shift_to_max_zero(beta + start, stop - start)


cdef void _sample(const Job* job, const floating* pred, Py_ssize_t b,
                  int thread) noexcept nogil:
    """Sample b, with the scratch block of ``thread`` (its number in our team)."""
    cdef Buffers buf
    cdef floating* base = <floating*>job.scratch + thread * job.scratch_pitch
    cdef int32_t* classes = job.classes + thread * job.classes_pitch
    cdef Py_ssize_t n_frames = job.frames[b]
    cdef Py_ssize_t n_labels = job.label_length[b]
    cdef Py_ssize_t n_states = 2 * n_labels + 1
    cdef const floating* x0 = pred + b * job.pred_sample_stride
    cdef floating* g0 = NULL
    cdef bint want_grad = job.grad != NULL
    cdef double nll
    cdef bint infinite
    if want_grad:
        g0 = <floating*>job.grad + b * job.grad_sample_stride
        _zero_rows(g0, job.grad_frame_stride, n_frames, job.n_frames, job.n_classes)
    # Feasible iff every label gets a frame and every repeat a blank between.
    if n_labels > n_frames:
        infinite = True
    else:
        _buffers(job, base, &buf)
        infinite = n_labels + _extended_label(job, b, n_labels, classes,
                                              <floating*>buf.skip) > n_frames
    if not infinite:
        nll = -_forward(job, x0, n_frames, n_states, classes, <const floating*>buf.skip,
                        <floating*>buf.alpha, <floating*>buf.log_norm,
                        <floating*>buf.emit, <floating*>buf.class_work, want_grad)
        # +inf also when -inf logits rule out every alignment.
        infinite = nll == INFINITY
    if infinite:
        if job.out != NULL:
            (<floating*>job.out)[b] = 0 if job.zero_infinity else <floating>(
                INFINITY * job.loss_scale[b])
        if want_grad:
            _zero_rows(g0, job.grad_frame_stride, 0, n_frames, job.n_classes)
        return
    if job.out != NULL:
        (<floating*>job.out)[b] = <floating>(nll * job.loss_scale[b])
    if want_grad and nll != nll:
        # NaN input in the sample's frames: its whole gradient is NaN.
        _fill_rows(g0, job.grad_frame_stride, n_frames, job.n_classes, <floating>NAN)
    elif want_grad:
        _backward(job, x0, g0, n_frames, n_states, classes, <const floating*>buf.skip,
                  <const floating*>buf.alpha, <const floating*>buf.log_norm,
                  <floating*>buf.beta, <floating*>buf.next_term, <floating*>buf.work,
                  <floating*>buf.occupancy, <floating>job.grad_scale[b])


cdef void _run(const Job* job, const floating* pred, Py_ssize_t n_samples,
               int n_threads) noexcept nogil:
    cdef Py_ssize_t b
    # Runs of a few samples handed out on demand: samples differ in length
    # and a thread may be descheduled, so no thread owns a large share up
    # front; runs rather than single samples because in TNC neighbouring
    # samples' gradient rows share cache lines.  Each sample is still one
    # thread's work.
    cdef Py_ssize_t chunk = max(<Py_ssize_t>1, n_samples // (4 * n_threads))
    if n_threads > 1:
        for b in prange(n_samples, schedule="dynamic", chunksize=chunk,
                        num_threads=n_threads):
            _sample(job, pred, b, omp_get_thread_num())
    else:
        for b in range(n_samples):
            # Not omp_get_thread_num(): a caller inside an OpenMP region of its own
            # would get its outer thread number.
            _sample(job, pred, b, 0)


def ctc(*, pred, int sample_axis, label, frames, label_length, loss_scale, grad_scale,
        bint zero_infinity, out, grad, int n_threads, bint blank_first=False):
    """Run CTC on a validated batch; see the module docstring for the contract.

    pred        : float32 or float64, (N, T, C) for sample_axis 0 or (T, N, C)
                  for 1, with contiguous classes (other strides free); class
                  C-1 is the blank, or class 0 with blank_first.
    label       : (N, L) C-contiguous int32; label j of sample b in [0, C-2]
                  ([1, C-1] with blank_first) for j < label_length[b] (entries
                  after it are not read).
    frames, label_length : (N,) int64, frames[b] in [0, T], label_length[b] in [0, L].
    loss_scale, grad_scale : (N,) float64.
    out         : (N,) of pred's dtype, or None.
    grad        : pred's shape and dtype with contiguous classes, or None;
                  every element is written.

    Every array is checked against this contract, the lengths and the used
    labels included (TypeError or ValueError).
    """
    cdef int typenum = float_typenum(pred, "ctc", "pred")
    cdef Job job
    cdef Py_ssize_t n_samples, n_frames, width, bad_sample, bad_position
    cdef Py_ssize_t max_states = 1
    cdef cnp.ndarray scratch, classes
    if sample_axis not in (0, 1):
        raise ValueError(f"ctc: sample_axis must be 0 or 1, got {sample_axis}")
    job.pred = array_data(pred, "ctc", "pred", typenum, 3, ANY, ANY, ANY, STRIDED)
    n_samples = cnp.PyArray_DIM(<cnp.ndarray>pred, sample_axis)
    n_frames = cnp.PyArray_DIM(<cnp.ndarray>pred, 1 - sample_axis)
    job.n_classes = cnp.PyArray_DIM(<cnp.ndarray>pred, 2)
    if job.n_classes < 1:
        raise ValueError("ctc: pred needs at least the blank class")
    job.blank = 0 if blank_first else <int32_t>(job.n_classes - 1)
    job.pred_sample_stride = element_stride(pred, sample_axis)
    job.pred_frame_stride = element_stride(pred, 1 - sample_axis)
    job.label = <const int32_t*>array_data(label, "ctc", "label", cnp.NPY_INT32, 2, n_samples,
                                           ANY, ANY, 0)
    width = cnp.PyArray_DIM(<cnp.ndarray>label, 1)
    job.label_sample_stride = width
    job.label_position_stride = 1
    job.frames = <const int64_t*>array_data(frames, "ctc", "frames", cnp.NPY_INT64, 1,
                                            n_samples, ANY, ANY, 0)
    job.label_length = <const int64_t*>array_data(label_length, "ctc", "label_length",
                                                  cnp.NPY_INT64, 1, n_samples, ANY, ANY, 0)
    job.loss_scale = <const double*>array_data(loss_scale, "ctc", "loss_scale",
                                               cnp.NPY_FLOAT64, 1, n_samples, ANY, ANY, 0)
    job.grad_scale = <const double*>array_data(grad_scale, "ctc", "grad_scale",
                                               cnp.NPY_FLOAT64, 1, n_samples, ANY, ANY, 0)
    job.out = array_data(out, "ctc", "out", typenum, 1, n_samples, ANY, ANY,
                         OPTIONAL | WRITABLE)
    job.grad = array_data(grad, "ctc", "grad", typenum, 3,
                          cnp.PyArray_DIM(<cnp.ndarray>pred, 0),
                          cnp.PyArray_DIM(<cnp.ndarray>pred, 1), job.n_classes,
                          OPTIONAL | WRITABLE | STRIDED)
    job.grad_sample_stride = element_stride(grad, sample_axis)
    job.grad_frame_stride = element_stride(grad, 1 - sample_axis)
    with nogil:
        bad_sample = _first_bad_sample(&job, n_samples, n_frames, width, &bad_position,
                                       &max_states)
    if bad_sample >= 0:
        raise ValueError(f"ctc: sample {bad_sample} has frames = {job.frames[bad_sample]}, "
                         f"label_length = {job.label_length[bad_sample]} (T = {n_frames}, "
                         f"L = {width}) or a label outside [{1 if blank_first else 0}, "
                         f"{job.n_classes - 1 if blank_first else job.n_classes - 2}] at "
                         f"position {bad_position}")
    n_threads = max(1, min(n_threads, n_samples))
    job.zero_infinity = zero_infinity
    job.n_frames = n_frames
    job.row_width = max_states + 4
    job.alpha_rows = n_frames + 1 if grad is not None else 2
    job.scratch_pitch = _scratch_pitch(job.alpha_rows, job.row_width, n_frames, job.n_classes)
    job.classes_pitch = (job.row_width + ALIGN - 1) // ALIGN * ALIGN
    scratch = np.empty(n_threads * job.scratch_pitch,
                       np.float32 if typenum == cnp.NPY_FLOAT32 else np.float64)
    classes = np.empty(n_threads * job.classes_pitch, np.int32)
    job.scratch = cnp.PyArray_DATA(scratch)
    job.classes = <int32_t*>cnp.PyArray_DATA(classes)
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _run(&job, <const float*>job.pred, n_samples, n_threads)
        else:
            _run(&job, <const double*>job.pred, n_samples, n_threads)


cdef Py_ssize_t _first_bad_sample(const Job* job, Py_ssize_t n_samples, Py_ssize_t n_frames,
                                  Py_ssize_t width, Py_ssize_t* bad_position,
                                  Py_ssize_t* max_states) noexcept nogil:
    """The first sample whose lengths or used labels break the contract, or -1;
    also the most extended-label states any sample needs."""
    cdef Py_ssize_t b, j, used
    cdef int32_t value
    bad_position[0] = -1
    for b in range(n_samples):
        if not (0 <= job.frames[b] <= n_frames and 0 <= job.label_length[b] <= width):
            return b
        for j in range(job.label_length[b]):
            value = job.label[b * width + j]
            if value == job.blank or value < 0 or value > job.n_classes - 1:
                bad_position[0] = j
                return b
        used = min(job.label_length[b], job.frames[b])
        max_states[0] = max(max_states[0], 2 * used + 1)
    return -1


# ---------------------------------------------------------------------------
# Labels: one pass that resolves every sample's length, checks the used
# entries and writes them as int32 for the kernel.

ctypedef fused label_value:
    int64_t
    double


cdef inline Py_ssize_t _resolve_sample(const label_value[:, :] rows, Py_ssize_t b,
                                       Py_ssize_t length, label_value first, label_value last,
                                       int32_t[:, ::1] out_label) noexcept nogil:
    """Check and copy sample b's first ``length`` labels; the bad position or -1."""
    cdef Py_ssize_t j
    cdef label_value value
    for j in range(length):
        value = rows[b, j]
        # NaN fails both comparisons; a float must also be integral (the cast
        # is safe once the value is known to lie in [first, last]).
        if not (value >= first and value <= last):
            return j
        if label_value is double:
            if value != <double><int64_t>value:
                return j
        out_label[b, j] = <int32_t>value
    for j in range(length, rows.shape[1]):
        out_label[b, j] = -1
    return -1


def resolve_labels(const label_value[:, :] rows, const int64_t[::1] given, int n_classes,
                   int32_t[:, ::1] out_label, int64_t[::1] out_length,
                   bint blank_first=False):
    """Resolve the labels of N samples, ``rows`` of shape (N, L) in any layout.

    A sample's length is ``given[b]`` (validated <= L) or, when ``given`` is
    None, the position of its first padding value (L without one): -1, or 0
    with ``blank_first``.  Every entry inside it must be an integer in
    [0, n_classes - 2] ([1, n_classes - 1] with ``blank_first``); entries past
    it are never read.
    Writes the used entries into ``out_label`` (-1 elsewhere) and the lengths
    into ``out_length``; returns the flat (b * L + j) index of the first bad
    entry in sample-major order, or -1.
    """
    cdef Py_ssize_t n = rows.shape[0], width = rows.shape[1], b, j, length, bad = -1
    cdef bint has_given = given is not None
    cdef label_value first = 1 if blank_first else 0
    cdef label_value last = n_classes - 1 if blank_first else n_classes - 2
    cdef label_value pad = 0 if blank_first else -1
    with nogil:
        for b in range(n):
            if has_given:
                length = given[b]
            else:
                length = width
                for j in range(width):
                    if rows[b, j] == pad:
                        length = j
                        break
            out_length[b] = length
            bad = _resolve_sample(rows, b, length, first, last, out_label)
            if bad >= 0:
                bad += b * width
                break
    return bad
