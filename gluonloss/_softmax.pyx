"""Kernels of the softmax family: SoftmaxCrossEntropyLoss (sparse and dense
labels) and KLDivLoss.

The Python layer (``gluonloss/softmax.py``) has validated everything and
moved the class axis last, so the kernels see:

* ``pred``: C-contiguous ``(R, C)``, one softmax row per row, of the compute
  dtype.  Rows are in C order over pred's other axes, which the Python layer
  describes as ``(n_outer, n_samples, n_inner)``: row r belongs to sample
  ``(r // n_inner) % n_samples``.
* the label: ``(R,)`` class indices (``Py_ssize_t``, already checked to lie
  in [0, C)) or ``(R, C)`` values of the compute dtype;
* an optional weight operand of the compute dtype, addressed for row
  ``r = (p, n, q)`` and class c as
  ``weight[n * sample_stride + (p * n_inner + q) * row_stride + c * class_stride]``
  (class_stride 0: one weight per row; 1: per element, KLDivLoss only);
* ``scale`` = weight / (elements of the loss per sample), optional float64
  per-sample factors ``sample_weight`` and ``out_grad``;
* cross-entropy options: optional ``(C,)`` class weights c, label smoothing
  eps and, for sparse labels, ``ignore`` (an index of -1 marks an ignored
  row: loss and gradient 0).  They replace the label y by the target
  t = c * ((1 - eps) * y + eps / C) (see smoothed_row and target).

With s_r the row weight, f_n = scale * sample_weight[n] and
u_r = f_n * out_grad[n] * s_r, a row's contribution to ``out[n]`` is
f_n * s_r * loss_r and its gradient u_r * dloss_r/dx.

Per row, one read of pred finds the maximum M and S = sum_j exp(x_j - M)
together ("online" softmax, one exp per element); the log-sum-exp is
M + log S.  A second read writes the gradient, exp(x_j - M) * (u / S) minus
the label term, and, for dense labels, sums the loss.  Rows run in parallel;
the rows of one sample are then added in row order, so results depend only
on the shape, never on the thread count.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY, fabs
cimport numpy as cnp
import numpy as np

from gluonloss._kernel cimport (
    ANY, OPTIONAL, WRITABLE, array_data, float_typenum, lanes16_max, lanes_fill, lanes_sum,
)
from gluonloss._math cimport one_nan, vabs, vexp, vexp_nonpositive, vlog, zero_unless_nan

cnp.import_array()

cdef enum:
    # Independent partial results per row (vectorisable, fixed order);
    # lanes16_max assumes 16.
    LANES = 16
    BLOCK = 256    # elements per block of the max-and-sum pass (a multiple of LANES)
    MAX_STORED_BLOCKS = 32   # rows up to 8192 classes keep their exps for the gradient

cdef enum:
    KIND_SPARSE_CE, KIND_DENSE_CE, KIND_KL_DIV

SPARSE_CE, DENSE_CE, KL_DIV = KIND_SPARSE_CE, KIND_DENSE_CE, KIND_KL_DIV

# The loss kinds as a fused type: each (kind, dtype) pair gets its own loops.
cdef struct SparseCEKind:
    char unused

cdef struct DenseCEKind:
    char unused

cdef struct KLDivKind:
    char unused

ctypedef fused Kind:
    SparseCEKind
    DenseCEKind
    KLDivKind


# ---------------------------------------------------------------------------
# Row pieces.

cdef inline void max_and_sum_exp(const floating* x, Py_ssize_t n, floating* max_out,
                                 floating* sum_out, floating* e_out,
                                 floating* block_m) noexcept nogil:
    """M = max_j x_j and S = sum_j exp(x_j - M), reading x from memory once.

    Each of LANES lanes keeps a running maximum m and s = sum exp(x - m).  The
    row goes by blocks of at most BLOCK elements (from L1 cache): first the
    block's maximum per lane, then -- only when it exceeds m -- s is rescaled
    by exp(m - new m), then the block's exp(x - m) are added.  x == m
    contributes exp(0) = 1 even for infinite x (-inf - -inf would be NaN), so
    -inf elements add exactly 0 once a lane has seen a finite value, a NaN
    makes s NaN, and +inf makes M = +inf.  Elements after the last full group
    of LANES are folded in one at a time.

    With e_out (rows of at most MAX_STORED_BLOCKS blocks), the blocked part
    also stores each exp(x - m) in e_out and each block's lane maxima in
    block_m, so a gradient can be had by rescaling instead of a second exp.
    """
    cdef floating m[LANES]
    cdef floating s[LANES]
    cdef floating block_max[LANES]
    cdef floating xv, mv, d, e, big
    cdef bint raised
    cdef double total = 0.0
    cdef Py_ssize_t block, start, c, n_chunks, i, j, n_vec = n - n % LANES
    if n < LANES:
        # A short row: copied once into m (padded with -inf, which adds
        # nothing), then its maximum and the sum, with the special values
        # below.  The exps run over all LANES entries: one vectorised loop.
        big = -INFINITY
        for j in range(n):
            m[j] = x[j]
            big = m[j] if m[j] > big else big
        for j in range(n, LANES):
            m[j] = -INFINITY
        for j in range(LANES):
            s[j] = <floating>1 if m[j] == big else vexp_nonpositive(m[j] - big)
        for j in range(n):
            total += s[j]
        max_out[0] = big
        sum_out[0] = <floating>total
        return
    for j in range(LANES):
        m[j] = -INFINITY
        s[j] = 0
    for block in range((n_vec + BLOCK - 1) // BLOCK):
        start = block * BLOCK
        n_chunks = min(<Py_ssize_t>BLOCK, n_vec - start) // LANES
        for j in range(LANES):
            block_max[j] = m[j]
        lanes16_max(x + start, n_chunks, block_max)
        raised = False
        for j in range(LANES):
            raised = raised | (block_max[j] != m[j])
        if raised:
            for j in range(LANES):
                s[j] = s[j] if block_max[j] == m[j] else s[j] * vexp_nonpositive(
                    m[j] - block_max[j])
                m[j] = block_max[j]
        if e_out == NULL:
            for c in range(n_chunks):
                i = start + c * LANES
                for j in range(LANES):
                    xv = x[i + j]
                    d = <floating>0 if xv == m[j] else xv - m[j]
                    s[j] += vexp_nonpositive(d)
        else:
            # The same sums, storing each term (into the gradient row).
            for j in range(LANES):
                block_m[block * LANES + j] = m[j]
            for c in range(n_chunks):
                i = start + c * LANES
                for j in range(LANES):
                    xv = x[i + j]
                    d = <floating>0 if xv == m[j] else xv - m[j]
                    e = vexp_nonpositive(d)
                    s[j] += e
                    e_out[i + j] = e
    for i in range(n_vec, n):
        # One element into lane j: becomes the new maximum or adds exp(d).
        j = i - n_vec
        xv = x[i]
        mv = m[j]
        d = <floating>0 if xv == mv else xv - mv
        e = vexp(-vabs(d))
        s[j] = s[j] + e if d <= 0 else s[j] * e + <floating>1
        m[j] = xv if xv > mv else mv
    big = m[0]
    for j in range(1, LANES):
        big = m[j] if m[j] > big else big
    for j in range(LANES):
        # m == big skips exp(inf - inf) = NaN when the maximum is +inf.
        block_max[j] = s[j] if m[j] == big else s[j] * vexp_nonpositive(m[j] - big)
    for j in range(LANES):      # in order, apart from the vectorised exps above
        total += block_max[j]
    max_out[0] = big
    sum_out[0] = <floating>total


# How a dense row's target is formed from its label, as a fused type: each
# form gets its own loops.  With runtime flags instead, the class weights'
# load is conditional and GCC leaves the loops that read them scalar.
cdef struct LabelTarget:             # y
    char unused

cdef struct WeightedTarget:          # y * cw
    char unused

cdef struct SmoothedTarget:          # keep * y + spread
    char unused

cdef struct WeightedSmoothedTarget:  # (keep * y + spread) * cw
    char unused

ctypedef fused Target:
    LabelTarget
    WeightedTarget
    SmoothedTarget
    WeightedSmoothedTarget


cdef inline floating target(Target form, const floating* y, const floating* cw, Py_ssize_t i,
                            floating keep, floating spread) noexcept nogil:
    """The target weight of class i: y_i, smoothed to keep * y_i + spread, times
    cw_i when weighted (see Target)."""
    cdef floating t
    if Target is SmoothedTarget or Target is WeightedSmoothedTarget:
        t = keep * y[i] + spread
    else:
        t = y[i]
    if Target is WeightedTarget or Target is WeightedSmoothedTarget:
        return t * cw[i]
    return t


cdef inline double label_sum(Target form, const floating* y, const floating* cw,
                             floating keep, floating spread, Py_ssize_t n) noexcept nogil:
    """sum_j of the targets (see target), in a fixed order."""
    cdef floating acc[LANES]
    cdef Py_ssize_t c, i, j, n_vec = n - n % LANES
    cdef double total
    lanes_fill(acc, LANES, 0)
    for c in range(n_vec // LANES):
        i = c * LANES
        for j in range(LANES):
            acc[j] += target(form, y, cw, i + j, keep, spread)
    total = lanes_sum(acc, LANES, 0.0)
    for i in range(n_vec, n):
        total += target(form, y, cw, i, keep, spread)
    return total


cdef inline floating dense_term(floating yw, floating y, floating x, floating big,
                                bint kl) noexcept nogil:
    """yw * (M - x) (+ yw * log(y + 1e-12) for KL); 0 where yw == 0 even for
    x = -inf, NaN where x is NaN."""
    cdef floating t = big - x
    if kl:
        t = t + vlog(y + <floating>1e-12)
    return yw * t if yw != 0 else zero_unless_nan(x)


cdef inline floating logits_term(floating yw, floating y, floating x, bint kl) noexcept nogil:
    """from_logits: -yw * x (+ yw * log(y + 1e-12) for KL), guarded as dense_term."""
    cdef floating t = -x
    if kl:
        t = t + vlog(y + <floating>1e-12)
    return yw * t if yw != 0 else zero_unless_nan(x)


cdef inline double sparse_row(const floating* x, Py_ssize_t n, Py_ssize_t label,
                              bint from_logits, floating u, floating* g) noexcept nogil:
    """-log softmax(x)[label] (or -x[label] from logits); g = u * d/dx unless NULL."""
    cdef floating big, total, k
    cdef floating block_m[MAX_STORED_BLOCKS * LANES]
    cdef bint stored = g != NULL and LANES <= n <= MAX_STORED_BLOCKS * BLOCK
    cdef Py_ssize_t j
    if from_logits:
        if g != NULL:
            for j in range(n):
                g[j] = 0
            g[label] = -u
        return -x[label]
    max_and_sum_exp(x, n, &big, &total, g if stored else NULL, block_m)
    if g != NULL:
        k = u / total
        if stored and vabs(big) < INFINITY and total == total:
            rescale_stored_exps(x, n, big, k, block_m, g)
        else:
            for j in range(n):
                g[j] = vexp_nonpositive(x[j] - big) * k
        g[label] = g[label] - u
    return (big - x[label]) + vlog(total)


cdef inline void rescale_stored_exps(const floating* x, Py_ssize_t n, floating big, floating k,
                                     const floating* block_m, floating* g) noexcept nogil:
    """g_j = exp(x_j - M) * k from the stored g_j = exp(x_j - m) of max_and_sum_exp.

    Per block and lane the factor is exp(m - M) * k (just k where m == M); the
    last n % LANES elements, which were not stored, get their exp here.  Only
    for a finite maximum M and a sum without NaN.
    """
    cdef floating factor[MAX_STORED_BLOCKS * LANES]
    cdef const floating* f
    cdef Py_ssize_t block, c, i, j, n_vec = n - n % LANES
    block_factors(n_vec, big, k, block_m, factor)
    for block in range((n_vec + BLOCK - 1) // BLOCK):
        f = factor + block * LANES
        for c in range(min(<Py_ssize_t>BLOCK, n_vec - block * BLOCK) // LANES):
            i = block * BLOCK + c * LANES
            for j in range(LANES):
                g[i + j] = g[i + j] * f[j]
    for i in range(n_vec, n):
        g[i] = vexp_nonpositive(x[i] - big) * k


cdef inline void block_factors(Py_ssize_t n_vec, floating big, floating k,
                               const floating* block_m, floating* factor) noexcept nogil:
    """factor = exp(m - M) * k for every block and lane (k where m == M)."""
    cdef Py_ssize_t t
    for t in range((n_vec + BLOCK - 1) // BLOCK * LANES):
        factor[t] = k if block_m[t] == big else vexp_nonpositive(block_m[t] - big) * k


cdef inline double dense_row(Target form, const floating* x, const floating* y,
                             const floating* cw, floating keep, floating spread,
                             bint kl, Py_ssize_t n, bint from_logits,
                             floating u, floating* g) noexcept nogil:
    """sum_j yw_j * (log-sum-exp - x_j) (plus yw_j log(y_j + 1e-12) for KL),
    with yw the target of class j (see target; KL is never smoothed);
    g = u * d/dx unless NULL."""
    cdef floating acc[LANES]
    cdef floating block_m[MAX_STORED_BLOCKS * LANES]
    cdef floating factor[MAX_STORED_BLOCKS * LANES]
    cdef floating big = 0, total = 1, a = 0, yw
    cdef double ysum = 0.0, loss = 0.0
    cdef bint stored = g != NULL and LANES <= n <= MAX_STORED_BLOCKS * BLOCK
    cdef const floating* f
    cdef Py_ssize_t block, c, i, j, n_vec = n - n % LANES
    lanes_fill(acc, LANES, 0)
    if from_logits:
        for c in range(n_vec // LANES):
            i = c * LANES
            for j in range(LANES):
                yw = target(form, y, cw, i + j, keep, spread)
                acc[j] += logits_term(yw, y[i + j], x[i + j], kl)
                if g != NULL:
                    g[i + j] = -u * yw
        for i in range(n_vec, n):
            yw = target(form, y, cw, i, keep, spread)
            loss += logits_term(yw, y[i], x[i], kl)
            if g != NULL:
                g[i] = -u * yw
    else:
        max_and_sum_exp(x, n, &big, &total, g if stored else NULL, block_m)
        ysum = label_sum(form, y, cw, keep, spread, n)
        a = <floating>(<double>u * ysum / <double>total)
        if stored and vabs(big) < INFINITY and total == total:
            # g holds exp(x - m) per block and lane: rescale (see sparse_row).
            block_factors(n_vec, big, a, block_m, factor)
            for block in range((n_vec + BLOCK - 1) // BLOCK):
                f = factor + block * LANES
                for c in range(min(<Py_ssize_t>BLOCK, n_vec - block * BLOCK) // LANES):
                    i = block * BLOCK + c * LANES
                    for j in range(LANES):
                        yw = target(form, y, cw, i + j, keep, spread)
                        acc[j] += dense_term(yw, y[i + j], x[i + j], big, kl)
                        g[i + j] = g[i + j] * f[j] - u * yw
        else:
            for c in range(n_vec // LANES):
                i = c * LANES
                for j in range(LANES):
                    yw = target(form, y, cw, i + j, keep, spread)
                    acc[j] += dense_term(yw, y[i + j], x[i + j], big, kl)
                    if g != NULL:
                        g[i + j] = vexp_nonpositive(x[i + j] - big) * a - u * yw
        for i in range(n_vec, n):
            loss += dense_term(target(form, y, cw, i, keep, spread), y[i], x[i], big, kl)
        if g != NULL:
            # Apart from the ordered sum above, so that these exps vectorise.
            for i in range(n_vec, n):
                yw = target(form, y, cw, i, keep, spread)
                g[i] = vexp_nonpositive(x[i] - big) * a - u * yw
        loss += <double>vlog(total) * ysum
    return lanes_sum(acc, LANES, loss)


# Whether the smoothed sparse row has class weights (and whether one is 0), as a
# fused type: each variant gets its own loops (a runtime flag in the loop would
# keep them scalar).
cdef struct WeightedTag:
    char unused

cdef struct UnweightedTag:
    char unused

cdef struct PositiveWeightedTag:
    char unused

ctypedef fused Weighting:
    WeightedTag           # some class weight is 0: 0 * (M - x) must stay 0 at x = -inf
    PositiveWeightedTag   # every class weight > 0: no guard
    UnweightedTag


cdef extern from *:
    """
    #include <string.h>
    /* The gradient's rescale pass of a smoothed row with every class weight
       positive (or none): per lane j of 16, acc[j] += w_j * (big - x_j) and
       g_j = g_j * f[j] - off * w_j (w_j = 1, the products dropped, unweighted),
       in that order.  The same loop in Cython vectorises only with a runtime
       aliasing check every 16 elements; here g is read and written once per
       element through vector types, as wide as the build's registers. */
    #if defined(__GNUC__)
    #if defined(__AVX512F__)
    #define GL_SMOOTH_VBYTES 64
    #elif defined(__AVX__)
    #define GL_SMOOTH_VBYTES 32
    #else
    #define GL_SMOOTH_VBYTES 16
    #endif
    #define GL_SMOOTH_RESCALE(NAME, T)                                                  \
    static inline void NAME(T* g, const T* x, const T* w, const T* f, T big, T off,   \
                            Py_ssize_t n_groups, T* acc) {                            \
        typedef T vec_t __attribute__((vector_size(GL_SMOOTH_VBYTES)));               \
        enum { PER_VEC = GL_SMOOTH_VBYTES / sizeof(T), N_VEC = 16 / PER_VEC };        \
        vec_t sums[N_VEC], factors[N_VEC], bigs, offs, xv, gv, wv;                    \
        Py_ssize_t c; int k, j;                                                       \
        for (j = 0; j < PER_VEC; j++) { bigs[j] = big; offs[j] = off; }               \
        memcpy(sums, acc, 16 * sizeof(T));                                            \
        memcpy(factors, f, 16 * sizeof(T));                                           \
        for (c = 0; c < n_groups; c++) {                                              \
            for (k = 0; k < N_VEC; k++) {                                             \
                Py_ssize_t at = c * 16 + k * PER_VEC;                                 \
                memcpy(&xv, x + at, sizeof xv);                                       \
                memcpy(&gv, g + at, sizeof gv);                                       \
                if (w != NULL) {                                                      \
                    memcpy(&wv, w + at, sizeof wv);                                   \
                    sums[k] = sums[k] + wv * (bigs - xv);                             \
                    gv = gv * factors[k] - offs * wv;                                 \
                } else {                                                              \
                    sums[k] = sums[k] + (bigs - xv);                                  \
                    gv = gv * factors[k] - offs;                                      \
                }                                                                     \
                memcpy(g + at, &gv, sizeof gv);                                       \
            }                                                                         \
        }                                                                             \
        memcpy(acc, sums, 16 * sizeof(T));                                            \
    }
    #else
    #define GL_SMOOTH_RESCALE(NAME, T)                                                  \
    static inline void NAME(T* g, const T* x, const T* w, const T* f, T big, T off,   \
                            Py_ssize_t n_groups, T* acc) {                            \
        Py_ssize_t c; int j;                                                          \
        for (c = 0; c < n_groups; c++)                                                \
            for (j = 0; j < 16; j++) {                                                \
                Py_ssize_t at = c * 16 + j;                                           \
                if (w != NULL) {                                                      \
                    acc[j] = acc[j] + w[at] * (big - x[at]);                          \
                    g[at] = g[at] * f[j] - off * w[at];                               \
                } else {                                                              \
                    acc[j] = acc[j] + (big - x[at]);                                  \
                    g[at] = g[at] * f[j] - off;                                       \
                }                                                                     \
            }                                                                         \
    }
    #endif
    GL_SMOOTH_RESCALE(gluonloss_smooth_rescale_f32, float)
    GL_SMOOTH_RESCALE(gluonloss_smooth_rescale_f64, double)
    """
    void _smooth_rescale_f32 "gluonloss_smooth_rescale_f32"(
        float* g, const float* x, const float* w, const float* f, float big, float off,
        Py_ssize_t n_groups, float* acc) noexcept nogil
    void _smooth_rescale_f64 "gluonloss_smooth_rescale_f64"(
        double* g, const double* x, const double* w, const double* f, double big,
        double off, Py_ssize_t n_groups, double* acc) noexcept nogil


cdef inline void smooth_rescale(floating* g, const floating* x, const floating* w,
                                const floating* f, floating big, floating off,
                                Py_ssize_t n_groups, floating* acc) noexcept nogil:
    """The rescale pass of smoothed_row over n_groups groups of 16 (w NULL:
    unweighted; else every w_j > 0)."""
    if floating is float:
        _smooth_rescale_f32(g, x, w, f, big, off, n_groups, acc)
    else:
        _smooth_rescale_f64(g, x, w, f, big, off, n_groups, acc)


cdef inline floating smoothing_term(Weighting weighting, floating w, floating x,
                                    floating big) noexcept nogil:
    """w * (M - x), 0 where w == 0 even for x = -inf (NaN where x is NaN);
    unweighted M - x."""
    if Weighting is WeightedTag:
        return dense_term(w, w, x, big, False)
    if Weighting is PositiveWeightedTag:
        return w * (big - x)
    return big - x


cdef inline floating smoothing_logits_term(Weighting weighting, floating w,
                                           floating x) noexcept nogil:
    """-w * x from logits, guarded as smoothing_term; unweighted -x."""
    if Weighting is WeightedTag:
        return logits_term(w, w, x, False)
    if Weighting is PositiveWeightedTag:
        return -w * x
    return -x


cdef inline double smoothed_row(Weighting weighting, const floating* x, Py_ssize_t n,
                                Py_ssize_t label, const floating* cw, floating on_label,
                                floating spread, double target_total, bint from_logits,
                                floating u, floating* g) noexcept nogil:
    """Sparse cross-entropy against the smoothed target t_j = spread * cw_j
    (spread alone unweighted) plus on_label at the label, summing to
    target_total: sum_j t_j (log-sum-exp - x_j), or -sum_j t_j x_j from logits;
    g = u * (softmax(x) * target_total - t) (or -u * t) unless NULL.

    Written as on_label * (M - x_label) + spread * sum_j cw_j (M - x_j) +
    target_total * log S: every M - x_j >= 0, so nothing cancels.  The sum
    over j shares the gradient's pass over the row.
    """
    cdef floating acc[LANES]
    cdef floating block_m[MAX_STORED_BLOCKS * LANES]
    cdef floating factor[MAX_STORED_BLOCKS * LANES]
    cdef floating big = 0, total = 1, k = 0, off = u * spread, w
    cdef double rest = 0.0, loss
    cdef bint stored = g != NULL and LANES <= n <= MAX_STORED_BLOCKS * BLOCK
    cdef const floating* f
    cdef Py_ssize_t block, c, i, j, n_vec = n - n % LANES
    lanes_fill(acc, LANES, 0)
    if from_logits:
        for c in range(n_vec // LANES):
            i = c * LANES
            for j in range(LANES):
                w = <floating>1 if Weighting is UnweightedTag else cw[i + j]
                acc[j] += smoothing_logits_term(weighting, w, x[i + j])
                if g != NULL:
                    g[i + j] = -off * w
        for i in range(n_vec, n):
            w = <floating>1 if Weighting is UnweightedTag else cw[i]
            rest += smoothing_logits_term(weighting, w, x[i])
            if g != NULL:
                g[i] = -off * w
        if g != NULL:
            g[label] = g[label] - u * on_label
        return -on_label * x[label] + spread * lanes_sum(acc, LANES, rest)
    max_and_sum_exp(x, n, &big, &total, g if stored else NULL, block_m)
    k = <floating>(<double>u * target_total / <double>total)
    if stored and vabs(big) < INFINITY and total == total:
        # g holds exp(x - m) per block and lane: rescale (see sparse_row).
        block_factors(n_vec, big, k, block_m, factor)
        for block in range((n_vec + BLOCK - 1) // BLOCK):
            f = factor + block * LANES
            if Weighting is WeightedTag:
                for c in range(min(<Py_ssize_t>BLOCK, n_vec - block * BLOCK) // LANES):
                    i = block * BLOCK + c * LANES
                    for j in range(LANES):
                        acc[j] += smoothing_term(weighting, cw[i + j], x[i + j], big)
                        g[i + j] = g[i + j] * f[j] - off * cw[i + j]
            else:
                i = block * BLOCK
                smooth_rescale(g + i, x + i, NULL if Weighting is UnweightedTag else cw + i, f,
                               big, off, min(<Py_ssize_t>BLOCK, n_vec - i) // LANES, acc)
    elif g == NULL:
        # The forward alone: one more read of the row, from cache, without exps.
        for c in range(n_vec // LANES):
            i = c * LANES
            for j in range(LANES):
                w = <floating>1 if Weighting is UnweightedTag else cw[i + j]
                acc[j] += smoothing_term(weighting, w, x[i + j], big)
    else:
        for c in range(n_vec // LANES):
            i = c * LANES
            for j in range(LANES):
                w = <floating>1 if Weighting is UnweightedTag else cw[i + j]
                acc[j] += smoothing_term(weighting, w, x[i + j], big)
                g[i + j] = vexp_nonpositive(x[i + j] - big) * k - off * w
    for i in range(n_vec, n):
        w = <floating>1 if Weighting is UnweightedTag else cw[i]
        rest += smoothing_term(weighting, w, x[i], big)
    if g != NULL:
        # Apart from the ordered sum above, so that these exps vectorise.
        for i in range(n_vec, n):
            w = <floating>1 if Weighting is UnweightedTag else cw[i]
            g[i] = vexp_nonpositive(x[i] - big) * k - off * w
    if g != NULL:
        g[label] = g[label] - u * on_label
    loss = <double>on_label * <double>(big - x[label]) + <double>vlog(total) * target_total
    return loss + spread * lanes_sum(acc, LANES, rest)


# ---------------------------------------------------------------------------
# Driver.

cdef struct Job:
    Py_ssize_t n_rows
    Py_ssize_t n_classes
    Py_ssize_t n_samples
    Py_ssize_t n_inner
    bint from_logits
    const void* pred
    const void* label           # dense: (R, C) of the dtype
    const Py_ssize_t* index     # sparse: (R,) class indices
    const void* weight          # NULL: all ones
    Py_ssize_t w_sample_stride
    Py_ssize_t w_row_stride
    Py_ssize_t w_class_stride   # 0: one weight per row; 1: per element
    double scale
    const double* sample_weight  # (n_samples,) or NULL
    const double* out_grad       # (n_samples,) or NULL
    void* out                    # (n_samples,) of the dtype, or NULL
    void* grad                   # (R, C) of the dtype, or NULL
    double* partial              # (R,) row losses when a sample has several rows, else NULL
    # Cross-entropy options (the plain loss: NULL, 0, False)
    const void* class_weight     # (C,) of the dtype, or NULL
    double class_weight_total    # sum of class_weight (C without one)
    bint class_weight_positive   # every class weight > 0
    double smoothing             # label smoothing epsilon in [0, 1)
    bint ignore                  # sparse: index -1 marks an ignored row


cdef inline double _sparse_options_row(const floating* x, const Job* job, Py_ssize_t label,
                                       floating u, floating* g) noexcept nogil:
    """Sparse cross-entropy with class weights, ignored rows or smoothing."""
    cdef Py_ssize_t j, n = job.n_classes
    cdef const floating* cw = <const floating*>job.class_weight
    cdef floating w_label, on_label, spread
    if label < 0:
        # An ignored row: nothing, not even its NaNs, reaches the loss.
        if g != NULL:
            for j in range(n):
                g[j] = 0
        return 0.0
    w_label = cw[label] if cw != NULL else <floating>1
    if job.smoothing == 0:
        # A class weight alone scales the row like a row weight.
        return w_label * sparse_row(x, n, label, job.from_logits, u * w_label, g)
    on_label = <floating>((1.0 - job.smoothing) * w_label)
    spread = <floating>(job.smoothing / n)
    if cw != NULL and job.class_weight_positive:
        return smoothed_row(_POSITIVE_WEIGHTED_TAG, x, n, label, cw, on_label, spread,
                            on_label + spread * job.class_weight_total, job.from_logits, u, g)
    if cw != NULL:
        return smoothed_row(_WEIGHTED_TAG, x, n, label, cw, on_label, spread,
                            on_label + spread * job.class_weight_total, job.from_logits, u, g)
    return smoothed_row(_UNWEIGHTED_TAG, x, n, label, cw, on_label, spread,
                        on_label + spread * job.class_weight_total, job.from_logits, u, g)


cdef inline double _dense_options_row(const floating* x, const floating* y, const Job* job,
                                      floating u, floating* g) noexcept nogil:
    """Dense cross-entropy with class weights and/or smoothing."""
    cdef Py_ssize_t n = job.n_classes
    cdef const floating* cw = <const floating*>job.class_weight
    cdef floating keep = <floating>(1.0 - job.smoothing)
    cdef floating spread = <floating>(job.smoothing / n)
    if cw != NULL and job.smoothing != 0:
        return dense_row(_WEIGHTED_SMOOTHED_TARGET, x, y, cw, keep, spread, False, n,
                         job.from_logits, u, g)
    if cw != NULL:
        return dense_row(_WEIGHTED_TARGET, x, y, cw, keep, spread, False, n, job.from_logits,
                         u, g)
    return dense_row(_SMOOTHED_TARGET, x, y, cw, keep, spread, False, n, job.from_logits, u, g)


cdef inline void one_nan_row(floating* g, Py_ssize_t n) noexcept nogil:
    """Every NaN of g as the one quiet NaN (see one_nan: two NaNs meet where a
    NaN row has a +inf logit)."""
    cdef Py_ssize_t j
    for j in range(n):
        g[j] = one_nan(g[j])


cdef inline void _row(Kind kind, const floating* pred, const Job* job,
                      Py_ssize_t r) noexcept nogil:
    cdef Py_ssize_t n_classes = job.n_classes
    # One row per sample is the common case: no integer divisions then.
    cdef Py_ssize_t sample = r if job.n_rows == job.n_samples else (
        (r // job.n_inner) % job.n_samples)
    cdef Py_ssize_t outer, at
    cdef const floating* x = pred + r * n_classes
    cdef const floating* cw = NULL
    cdef floating row_w = 1
    cdef floating* g = NULL if job.grad == NULL else <floating*>job.grad + r * n_classes
    cdef double factor = job.scale
    cdef double loss
    cdef floating u
    if job.weight != NULL:
        outer = r // (job.n_inner * job.n_samples)
        at = (sample * job.w_sample_stride
              + (outer * job.n_inner + r % job.n_inner) * job.w_row_stride)
        if job.w_class_stride:
            cw = <const floating*>job.weight + at
        else:
            row_w = (<const floating*>job.weight)[at]
    if job.sample_weight != NULL:
        factor = factor * job.sample_weight[sample]
    u = <floating>(factor * (1.0 if job.out_grad == NULL else job.out_grad[sample]) * row_w)
    if Kind is SparseCEKind:
        if job.class_weight == NULL and job.smoothing == 0 and not job.ignore:
            loss = sparse_row(x, n_classes, job.index[r], job.from_logits, u, g)
        else:
            loss = _sparse_options_row(x, job, job.index[r], u, g)
    elif Kind is DenseCEKind and (job.class_weight != NULL or job.smoothing != 0):
        loss = _dense_options_row(x, <const floating*>job.label + r * n_classes, job, u, g)
    else:
        if cw != NULL:
            loss = dense_row(_WEIGHTED_TARGET, x, <const floating*>job.label + r * n_classes,
                             cw, 1, 0, Kind is KLDivKind, n_classes, job.from_logits, u, g)
        else:
            loss = dense_row(_LABEL_TARGET, x, <const floating*>job.label + r * n_classes,
                             cw, 1, 0, Kind is KLDivKind, n_classes, job.from_logits, u, g)
    loss = loss * row_w
    if g != NULL and not fabs(loss) < INFINITY:
        one_nan_row(g, n_classes)   # only rows with a NaN or infinite loss hold NaNs
    if job.partial != NULL:
        job.partial[r] = loss
    elif job.out != NULL:
        (<floating*>job.out)[sample] = <floating>one_nan(factor * loss)


cdef void _run(Kind kind, const floating* pred, const Job* job, int n_threads) noexcept nogil:
    cdef Py_ssize_t r, sample, outer, inner, n_outer
    cdef double total, factor
    if n_threads > 1:
        for r in prange(job.n_rows, schedule="static", num_threads=n_threads):
            _row(kind, pred, job, r)
    else:
        for r in range(job.n_rows):
            _row(kind, pred, job, r)
    if job.partial == NULL or job.out == NULL:
        return
    # The rows of each sample, added in row order.
    n_outer = job.n_rows // (job.n_samples * job.n_inner)
    for sample in range(job.n_samples):
        total = 0.0
        for outer in range(n_outer):
            r = (outer * job.n_samples + sample) * job.n_inner
            for inner in range(job.n_inner):
                total += job.partial[r + inner]
        factor = job.scale
        if job.sample_weight != NULL:
            factor = factor * job.sample_weight[sample]
        (<floating*>job.out)[sample] = <floating>one_nan(factor * total)


# The kinds carry no parameters: one zero-initialised tag each selects _run's
# specialisation.
cdef WeightedTag _WEIGHTED_TAG
cdef PositiveWeightedTag _POSITIVE_WEIGHTED_TAG
cdef UnweightedTag _UNWEIGHTED_TAG
cdef LabelTarget _LABEL_TARGET
cdef WeightedTarget _WEIGHTED_TARGET
cdef SmoothedTarget _SMOOTHED_TARGET
cdef WeightedSmoothedTarget _WEIGHTED_SMOOTHED_TARGET
cdef SparseCEKind _SPARSE_CE_TAG
cdef DenseCEKind _DENSE_CE_TAG
cdef KLDivKind _KL_DIV_TAG


cdef void _dispatch(int kind_id, const floating* pred, const Job* job,
                    int n_threads) noexcept nogil:
    if kind_id == KIND_SPARSE_CE:
        _run(_SPARSE_CE_TAG, pred, job, n_threads)
    elif kind_id == KIND_DENSE_CE:
        _run(_DENSE_CE_TAG, pred, job, n_threads)
    else:
        _run(_KL_DIV_TAG, pred, job, n_threads)


def softmax_loss(*, int kind_id, bint from_logits, pred, label, index, weight,
                 Py_ssize_t w_sample_stride, Py_ssize_t w_row_stride,
                 Py_ssize_t w_class_stride, Py_ssize_t n_samples, Py_ssize_t n_inner,
                 double scale, sample_weight, out_grad, out, grad, int n_threads,
                 class_weight=None, double smoothing=0.0, bint ignore=False):
    """Run one softmax-family loss; see the module docstring for the contract.

    pred            : (R, C) C-contiguous float32 or float64.
    label           : (R, C) C-contiguous of pred's dtype (dense kinds) or None.
    index           : (R,) C-contiguous intp in [0, C) (sparse kind) or None.
    weight          : C-contiguous of pred's dtype, addressed with the strides, or None.
    n_samples, n_inner : R = n_outer * n_samples * n_inner.
    sample_weight, out_grad : (n_samples,) C-contiguous float64, or None (ones).
    out             : (n_samples,) of the dtype or None; grad: (R, C) of the dtype or None.
    class_weight    : (C,) C-contiguous of pred's dtype, finite and >= 0, or None
                      (cross-entropy only).
    smoothing       : label smoothing in [0, 1) (cross-entropy only).
    ignore          : sparse only: an index of -1 marks a row to ignore (loss and
                      gradient 0).

    Every array is checked against this contract, the class indices and the
    weight's extent included (TypeError or ValueError).
    """
    cdef int typenum = float_typenum(pred, "softmax_loss", "pred")
    cdef Job job
    cdef cnp.ndarray partial
    cdef Py_ssize_t bad, last_weight
    if not 0 <= kind_id <= KIND_KL_DIV:
        raise ValueError(f"softmax_loss: unknown kind_id {kind_id}")
    job.pred = array_data(pred, "softmax_loss", "pred", typenum, 2, ANY, ANY, ANY, 0)
    job.n_rows = cnp.PyArray_DIM(<cnp.ndarray>pred, 0)
    job.n_classes = cnp.PyArray_DIM(<cnp.ndarray>pred, 1)
    if n_samples < 1 or n_inner < 1 or job.n_rows % (n_samples * n_inner):
        raise ValueError(f"softmax_loss: {job.n_rows} rows do not split into samples of "
                         f"n_samples={n_samples} and n_inner={n_inner}")
    job.n_samples = n_samples
    job.n_inner = n_inner
    job.from_logits = from_logits
    job.label = NULL
    job.index = NULL
    if not 0 <= smoothing < 1:
        raise ValueError(f"softmax_loss: smoothing must lie in [0, 1), got {smoothing}")
    if kind_id == KIND_KL_DIV and (class_weight is not None or smoothing != 0 or ignore):
        raise ValueError("softmax_loss: KL_DIV takes no class_weight, smoothing or ignore")
    job.smoothing = smoothing
    job.ignore = ignore and kind_id == KIND_SPARSE_CE
    job.class_weight = array_data(class_weight, "softmax_loss", "class_weight", typenum, 1,
                                  job.n_classes, ANY, ANY, OPTIONAL)
    if not _set_class_weight_stats(&job, typenum):
        raise ValueError("softmax_loss: class_weight must be finite and >= 0")
    if kind_id == KIND_SPARSE_CE:
        job.index = <const Py_ssize_t*>array_data(index, "softmax_loss", "index", cnp.NPY_INTP,
                                                  1, job.n_rows, ANY, ANY, 0)
        with nogil:
            bad = _first_outside(job.index, job.n_rows, job.n_classes, job.ignore)
        if bad >= 0:
            raise ValueError(f"softmax_loss: index[{bad}] = {job.index[bad]} is outside "
                             f"[0, {job.n_classes})")
    else:
        job.label = array_data(label, "softmax_loss", "label", typenum, 2, job.n_rows,
                               job.n_classes, ANY, 0)
    job.weight = array_data(weight, "softmax_loss", "weight", typenum,
                            cnp.PyArray_NDIM(<cnp.ndarray>weight) if weight is not None else 0,
                            ANY, ANY, ANY, OPTIONAL)
    if job.weight != NULL:
        if w_sample_stride < 0 or w_row_stride < 0 or w_class_stride not in (0, 1):
            raise ValueError("softmax_loss: weight strides must be >= 0 (class stride 0 or 1)")
        last_weight = ((n_samples - 1) * w_sample_stride
                       + (job.n_rows // n_samples - 1) * w_row_stride
                       + (job.n_classes - 1) * w_class_stride)
        if job.n_rows and last_weight >= cnp.PyArray_SIZE(<cnp.ndarray>weight):
            raise ValueError(f"softmax_loss: the weight strides address element {last_weight} "
                             f"of a weight with {cnp.PyArray_SIZE(<cnp.ndarray>weight)}")
    job.w_sample_stride = w_sample_stride
    job.w_row_stride = w_row_stride
    job.w_class_stride = w_class_stride
    job.scale = scale
    job.sample_weight = <const double*>array_data(
        sample_weight, "softmax_loss", "sample_weight", cnp.NPY_FLOAT64, 1, n_samples, ANY, ANY,
        OPTIONAL)
    job.out_grad = <const double*>array_data(out_grad, "softmax_loss", "out_grad",
                                             cnp.NPY_FLOAT64, 1, n_samples, ANY, ANY, OPTIONAL)
    job.out = array_data(out, "softmax_loss", "out", typenum, 1, n_samples, ANY, ANY,
                         OPTIONAL | WRITABLE)
    job.grad = array_data(grad, "softmax_loss", "grad", typenum, 2, job.n_rows, job.n_classes,
                          ANY, OPTIONAL | WRITABLE)
    job.partial = NULL
    if job.n_rows != n_samples and out is not None:
        partial = np.empty(job.n_rows)
        job.partial = <double*>cnp.PyArray_DATA(partial)
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _dispatch(kind_id, <const float*>job.pred, &job, n_threads)
        else:
            _dispatch(kind_id, <const double*>job.pred, &job, n_threads)


cdef Py_ssize_t _first_outside(const Py_ssize_t* index, Py_ssize_t n,
                               Py_ssize_t n_classes, bint ignore) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if (index[i] < 0 and not (ignore and index[i] == -1)) or index[i] >= n_classes:
            return i
    return -1


cdef bint _set_class_weight_stats(Job* job, int typenum) noexcept nogil:
    """class_weight_total and class_weight_positive from job.class_weight (C and
    False without one); False when a class weight is negative, infinite or NaN."""
    cdef Py_ssize_t i
    job.class_weight_total = job.n_classes
    job.class_weight_positive = False
    if job.class_weight == NULL:
        return True
    job.class_weight_total = _checked_total(job.class_weight, typenum, job.n_classes)
    if not job.class_weight_total >= 0:
        return False
    job.class_weight_positive = True
    for i in range(job.n_classes):
        if not ((<const float*>job.class_weight)[i] > 0 if typenum == cnp.NPY_FLOAT32
                else (<const double*>job.class_weight)[i] > 0):
            job.class_weight_positive = False
            break
    return True


cdef double _checked_total(const void* weights, int typenum, Py_ssize_t n) noexcept nogil:
    """The sum of n class weights, or -1 when one is negative, infinite or NaN."""
    cdef Py_ssize_t i
    cdef double v, total = 0.0
    for i in range(n):
        v = (<const float*>weights)[i] if typenum == cnp.NPY_FLOAT32 else (
            <const double*>weights)[i]
        if not (0 <= v < INFINITY):
            return -1.0
        total += v
    return total


# ---------------------------------------------------------------------------
# Sparse labels: check and convert to Py_ssize_t in one pass.

ctypedef signed char i8
ctypedef unsigned char u8
ctypedef unsigned short u16
ctypedef unsigned int u32
ctypedef unsigned long long u64

ctypedef fused label_t:
    i8
    short
    int
    long long
    u8
    u16
    u32
    u64
    float
    double


cdef Py_ssize_t _to_index(const label_t* labels, Py_ssize_t n, Py_ssize_t n_classes,
                          bint has_ignore, long long ignore, Py_ssize_t* out) noexcept nogil:
    """Copy labels into out as indices, -1 for a label equal to ``ignore`` (when
    has_ignore); the position of the first other label that is not an integer in
    [0, n_classes), or -1.  Never casts an out-of-range float."""
    cdef Py_ssize_t i, k
    cdef label_t v
    for i in range(n):
        v = labels[i]
        if label_t is float or label_t is double:
            if has_ignore and v == <double>ignore:
                out[i] = -1
                continue
            if not (v >= 0 and v < <double>n_classes):     # NaN fails here too
                return i
            k = <Py_ssize_t>v
            if k != v:
                return i
        elif label_t is u8 or label_t is u16 or label_t is u32 or label_t is u64:
            if has_ignore and ignore >= 0 and <u64>v == <u64>ignore:
                out[i] = -1
                continue
            if v >= <u64>n_classes:
                return i
            k = <Py_ssize_t>v
        else:
            if has_ignore and <long long>v == ignore:
                out[i] = -1
                continue
            if v < 0 or v >= n_classes:
                return i
            k = <Py_ssize_t>v
        out[i] = k
    return -1


cdef Py_ssize_t _convert(int typenum, const void* src, Py_ssize_t n, Py_ssize_t n_classes,
                         bint has_ignore, long long ignore, Py_ssize_t* out) noexcept nogil:
    if typenum == cnp.NPY_INT8:
        return _to_index(<const i8*>src, n, n_classes, has_ignore, ignore, out)
    elif typenum == cnp.NPY_INT16:
        return _to_index(<const short*>src, n, n_classes, has_ignore, ignore, out)
    elif typenum == cnp.NPY_INT32:
        return _to_index(<const int*>src, n, n_classes, has_ignore, ignore, out)
    elif typenum == cnp.NPY_INT64:
        return _to_index(<const long long*>src, n, n_classes, has_ignore, ignore, out)
    elif typenum == cnp.NPY_UINT8:
        return _to_index(<const u8*>src, n, n_classes, has_ignore, ignore, out)
    elif typenum == cnp.NPY_UINT16:
        return _to_index(<const u16*>src, n, n_classes, has_ignore, ignore, out)
    elif typenum == cnp.NPY_UINT32:
        return _to_index(<const u32*>src, n, n_classes, has_ignore, ignore, out)
    elif typenum == cnp.NPY_UINT64:
        return _to_index(<const u64*>src, n, n_classes, has_ignore, ignore, out)
    elif typenum == cnp.NPY_FLOAT32:
        return _to_index(<const float*>src, n, n_classes, has_ignore, ignore, out)
    else:
        return _to_index(<const double*>src, n, n_classes, has_ignore, ignore, out)


def class_indices(cnp.ndarray labels not None, Py_ssize_t n_classes, ignore=None):
    """Check labels and convert them to intp: ``(indices, first bad position or -1)``.

    labels : 1-D C-contiguous, native byte order, of one of the integer
             types int8..int64, uint8..uint64, or float32/float64.
    ignore : None, or an integer (any value, also outside [0, n_classes)):
             labels equal to it become -1 and are not checked.
    """
    cdef int typenum = cnp.PyArray_TYPE(labels)
    cdef const void* src
    cdef cnp.npy_intp n
    cdef bint has_ignore = ignore is not None
    cdef long long ignore_value = 0
    if cnp.PyArray_NDIM(labels) != 1 or not cnp.PyArray_IS_C_CONTIGUOUS(labels) or not (
            cnp.PyArray_ISNOTSWAPPED(labels) and cnp.PyArray_ISALIGNED(labels)):
        raise ValueError(f"class_indices: labels must be 1-D, C-contiguous, aligned and in "
                         f"native byte order, got shape {(<object>labels).shape}, "
                         f"dtype {labels.dtype}")
    if has_ignore:
        ignore_value = ignore      # an integer that fits int64 (checked by the caller)
    src = cnp.PyArray_DATA(labels)
    n = cnp.PyArray_DIM(labels, 0)
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(1, &n, cnp.NPY_INTP, 0)
    cdef Py_ssize_t* dst = <Py_ssize_t*>cnp.PyArray_DATA(out)
    cdef Py_ssize_t bad
    if cnp.PyArray_ITEMSIZE(labels) == 8 and typenum in (cnp.NPY_LONG, cnp.NPY_LONGLONG):
        typenum = cnp.NPY_INT64
    elif cnp.PyArray_ITEMSIZE(labels) == 8 and typenum in (cnp.NPY_ULONG, cnp.NPY_ULONGLONG):
        typenum = cnp.NPY_UINT64
    elif typenum not in (cnp.NPY_INT8, cnp.NPY_INT16, cnp.NPY_INT32, cnp.NPY_INT64,
                         cnp.NPY_UINT8, cnp.NPY_UINT16, cnp.NPY_UINT32, cnp.NPY_UINT64,
                         cnp.NPY_FLOAT32, cnp.NPY_FLOAT64):
        raise TypeError(f"class_indices: unsupported label dtype {labels.dtype}")
    with nogil:
        bad = _convert(typenum, src, n, n_classes, has_ignore, ignore_value, dst)
    return out, bad


include "_softmax_fast.pxi"
