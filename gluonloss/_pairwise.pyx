"""Kernels of the losses with several differentiable inputs: TripletLoss,
CosineEmbeddingLoss and SDMLLoss.

The Python layer (``gluonloss/pairwise.py``) has validated everything and
hands over C-contiguous arrays of one compute dtype (float32 or float64):

* triplet: pred, positive, negative as ``(N, M)`` rows;
* cosine: the two inputs as ``(N, D)`` rows (one vector per row) and the
  labels as ``(N,)``, every one exactly 1 or -1;
* SDML through BLAS (``sdml_blas``): the two ``(N, D)`` inputs as they are;
* SDML's direct kernel (``sdml``, for inputs that are not all finite): the
  inputs zero-padded and packed into panels;

plus optional float64 length-N ``row_weight`` (the per-sample weight) and
``out_grad``.  Triplet and cosine rows are independent: ``prange`` over rows,
each row summed with ``LANES`` partial sums in a fixed order.  SDML runs
over rows (and columns) of the N x N distance matrix; its matrix products
are fixed tiles, each one single-threaded GEMM call.  Every reduction order
depends on the shape alone, so results are bitwise identical for any thread
count.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.float cimport DBL_MAX, FLT_MAX
from libc.math cimport fabs, log, sqrt
cimport numpy as cnp
import threading

import numpy as np
from scipy.linalg.cython_blas cimport dgemm, sgemm

from gluonloss._kernel cimport (
    ANY, OPTIONAL, WRITABLE, array_data, float_typenum, lanes16_min, lanes_fill, lanes_sum,
)
from gluonloss._math cimport one_nan, vexp_nonpositive_exact, zero_unless_nan

cnp.import_array()

cdef enum:
    LANES = 16     # independent partial sums along a row
    RI = 4         # SDML register tile: rows ...
    CW = 16        # ... times columns (one panel wide)
    RB = 32        # SDML rows per parallel work item (RB tiles of RI rows)

SDML_PANEL = CW

# exp(-x) is exactly 0 for every x from these on, float32 and float64 (with
# vexp_nonpositive_exact; tests/test_math.py pins both).
cdef double EXP_ZERO_FROM_F32 = 104.0
cdef double EXP_ZERO_FROM_F64 = 746.0


cdef inline double _scale(const double* row_weight, double weight, Py_ssize_t row) noexcept nogil:
    return weight if row_weight == NULL else weight * row_weight[row]


cdef inline double _ones_or(const double* values, Py_ssize_t row) noexcept nogil:
    return 1.0 if values == NULL else values[row]


cdef const double* _per_row(object arr, str kernel, str name, Py_ssize_t n) except? NULL:
    """An optional (n,) float64 per-row quantity (row_weight, out_grad)."""
    return <const double*>array_data(arr, kernel, name, cnp.NPY_FLOAT64, 1, n, ANY, ANY,
                                     OPTIONAL)


cdef int _outputs(str kernel, object out, Py_ssize_t n, tuple grads, tuple names,
                  Py_ssize_t dim, int typenum, void** out_data, void** grad_data) except -1:
    """Check ``out`` ((n,) or None) and the gradients ((n, dim) each, all or none)."""
    cdef Py_ssize_t k
    out_data[0] = array_data(out, kernel, "out", typenum, 1, n, ANY, ANY, OPTIONAL | WRITABLE)
    for k in range(len(grads)):
        if (grads[k] is None) != (grads[0] is None):
            raise ValueError(f"{kernel}: {', '.join(names)} must be given all or none")
        grad_data[k] = array_data(grads[k], kernel, names[k], typenum, 2, n, dim, ANY,
                                  OPTIONAL | WRITABLE)
    return 0


# ---------------------------------------------------------------------------
# TripletLoss: out = max(sum_j (pos_j - p_j)^2 - (neg_j - p_j)^2 + margin, 0).

cdef struct TripletJob:
    Py_ssize_t n_rows
    Py_ssize_t n_cols
    const void* pred
    const void* positive
    const void* negative
    double margin
    double weight
    const double* row_weight   # NULL: ones
    const double* out_grad     # NULL: ones
    void* out                  # NULL: no loss wanted
    void* grad_pred            # NULL: no gradients wanted (else all three)
    void* grad_positive
    void* grad_negative


cdef inline double _triplet_sum(const floating* p, const floating* pos, const floating* neg,
                                Py_ssize_t n) noexcept nogil:
    """sum_j (pos_j - p_j)^2 - (neg_j - p_j)^2 in a fixed order."""
    cdef floating acc[LANES]
    cdef floating dp, dn
    cdef Py_ssize_t c, i, j, n_vec = n - n % LANES
    cdef double total
    lanes_fill(acc, LANES, 0)
    for c in range(n_vec // LANES):
        i = c * LANES
        for j in range(LANES):
            dp = pos[i + j] - p[i + j]
            dn = neg[i + j] - p[i + j]
            acc[j] += dp * dp - dn * dn
    total = lanes_sum(acc, LANES, 0.0)
    for i in range(n_vec, n):
        dp = pos[i] - p[i]
        dn = neg[i] - p[i]
        total += dp * dp - dn * dn
    return total


cdef inline void _triplet_row(const floating* pred, const TripletJob* job,
                              Py_ssize_t row) noexcept nogil:
    cdef Py_ssize_t n = job.n_cols
    cdef Py_ssize_t at = row * n
    cdef Py_ssize_t j
    cdef const floating* p = pred + at
    cdef const floating* pos = <const floating*>job.positive + at
    cdef const floating* neg = <const floating*>job.negative + at
    cdef floating* gp
    cdef floating* gpos
    cdef floating* gneg
    cdef double h = _triplet_sum(p, pos, neg, n) + job.margin
    cdef double scale = _scale(job.row_weight, job.weight, row)
    # 1 where the hinge is active, 0 at and below the kink, NaN for NaN.
    cdef double active = 1.0 if h > 0 else zero_unless_nan(h)
    cdef double half
    cdef double half_limit = (FLT_MAX if floating is float else DBL_MAX) / 2
    cdef floating c
    if job.out != NULL:
        (<floating*>job.out)[row] = <floating>((h if h > 0 else zero_unless_nan(h)) * scale)
    if job.grad_pred != NULL:
        half = scale * _ones_or(job.out_grad, row) * active
        gp = <floating*>job.grad_pred + at
        gpos = <floating*>job.grad_positive + at
        gneg = <floating*>job.grad_negative + at
        if fabs(half) <= half_limit:
            c = <floating>(2.0 * half)
            for j in range(n):
                gp[j] = c * (neg[j] - pos[j])
                gpos[j] = c * (pos[j] - p[j])
                gneg[j] = c * (p[j] - neg[j])
        else:
            # 2 * half overflows the dtype, but the gradient need not: double
            # the differences instead (the same result wherever it is finite).
            for j in range(n):
                gp[j] = <floating>(half * (2.0 * <double>(neg[j] - pos[j])))
                gpos[j] = <floating>(half * (2.0 * <double>(pos[j] - p[j])))
                gneg[j] = <floating>(half * (2.0 * <double>(p[j] - neg[j])))


cdef void _rows_run(const floating* data, const void* job, bint cosine, Py_ssize_t n_rows,
                    int n_threads) noexcept nogil:
    """Every row of a triplet or cosine job, in parallel when n_threads > 1."""
    cdef Py_ssize_t row
    if n_threads > 1:
        for row in prange(n_rows, schedule="static", num_threads=n_threads):
            _pair_row(data, job, cosine, row)
    else:
        for row in range(n_rows):
            _pair_row(data, job, cosine, row)


cdef inline void _pair_row(const floating* data, const void* job, bint cosine,
                           Py_ssize_t row) noexcept nogil:
    if cosine:
        _cosine_row(data, <const CosineJob*>job, row)
    else:
        _triplet_row(data, <const TripletJob*>job, row)


def triplet(*, pred, positive, negative, double margin, double weight, row_weight, out_grad,
            out, grad_pred, grad_positive, grad_negative, int n_threads):
    """TripletLoss over (N, M) rows; see the module docstring.

    pred, positive, negative : (N, M) C-contiguous, float32 or float64 (the same).
    row_weight, out_grad     : (N,) C-contiguous float64, or None (ones).
    out                      : (N,) of the dtype, or None.
    grad_*                   : (N, M) of the dtype, all three or None.

    Every array is checked against this contract (TypeError or ValueError).
    """
    cdef int typenum = float_typenum(pred, "triplet", "pred")
    cdef TripletJob job
    cdef void* grads[3]
    job.pred = array_data(pred, "triplet", "pred", typenum, 2, ANY, ANY, ANY, 0)
    job.n_rows = cnp.PyArray_DIM(<cnp.ndarray>pred, 0)
    job.n_cols = cnp.PyArray_DIM(<cnp.ndarray>pred, 1)
    job.positive = array_data(positive, "triplet", "positive", typenum, 2, job.n_rows,
                              job.n_cols, ANY, 0)
    job.negative = array_data(negative, "triplet", "negative", typenum, 2, job.n_rows,
                              job.n_cols, ANY, 0)
    job.margin = margin
    job.weight = weight
    job.row_weight = _per_row(row_weight, "triplet", "row_weight", job.n_rows)
    job.out_grad = _per_row(out_grad, "triplet", "out_grad", job.n_rows)
    _outputs("triplet", out, job.n_rows, (grad_pred, grad_positive, grad_negative),
             ("grad_pred", "grad_positive", "grad_negative"), job.n_cols, typenum, &job.out,
             grads)
    job.grad_pred = grads[0]
    job.grad_positive = grads[1]
    job.grad_negative = grads[2]
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _rows_run(<const float*>job.pred, &job, False, job.n_rows, n_threads)
        else:
            _rows_run(<const double*>job.pred, &job, False, job.n_rows, n_threads)


# ---------------------------------------------------------------------------
# CosineEmbeddingLoss: cos = x.y / max(|x||y|, 1e-12) per row.

cdef struct CosineJob:
    Py_ssize_t n_rows
    Py_ssize_t n_cols
    const void* x
    const void* y
    const void* label
    double margin
    double weight
    const double* row_weight
    const double* out_grad
    void* out
    void* grad_x               # NULL: no gradients wanted (else both)
    void* grad_y


cdef extern from *:
    """
    #include <stddef.h>
    #include <string.h>
    typedef float gl_dot_vf32 __attribute__((vector_size(32)));
    typedef double gl_dot_vf64 __attribute__((vector_size(32)));
    /* x.y, x.x and y.y: lane j (of 16) sums the elements i = j mod 16 in
       order, the lanes are then added in order in double, then the tail.
       Written with vector types because GCC vectorises the same loop in
       Cython badly (three accumulator arrays defeat its lane analysis). */
    #define GL_DEFINE_DOT3(T, V, SFX)                                                \
    static inline void gl_dot3_##SFX(const T* x, const T* y, ptrdiff_t n,          \
                                     double* xy, double* xx, double* yy) {          \
        enum { W = sizeof(V) / sizeof(T), NV = 16 / W };                             \
        V axy[NV], axx[NV], ayy[NV];                                                \
        T lanes[3][16];                                                             \
        ptrdiff_t n_vec = n - n % 16;                                               \
        memset(axy, 0, sizeof axy);                                                 \
        memset(axx, 0, sizeof axx);                                                 \
        memset(ayy, 0, sizeof ayy);                                                 \
        for (ptrdiff_t i = 0; i < n_vec; i += 16)                                   \
            for (int v = 0; v < NV; v++) {                                          \
                V a, b;                                                             \
                memcpy(&a, x + i + v * W, sizeof a);                                \
                memcpy(&b, y + i + v * W, sizeof b);                                \
                axy[v] += a * b;                                                    \
                axx[v] += a * a;                                                    \
                ayy[v] += b * b;                                                    \
            }                                                                       \
        memcpy(lanes[0], axy, sizeof axy);                                          \
        memcpy(lanes[1], axx, sizeof axx);                                          \
        memcpy(lanes[2], ayy, sizeof ayy);                                          \
        *xy = *xx = *yy = 0.0;                                                      \
        for (int j = 0; j < 16; j++) {                                              \
            *xy += lanes[0][j];                                                     \
            *xx += lanes[1][j];                                                     \
            *yy += lanes[2][j];                                                     \
        }                                                                           \
        for (ptrdiff_t i = n_vec; i < n; i++) {                                     \
            *xy += (T)(x[i] * y[i]);                                                \
            *xx += (T)(x[i] * x[i]);                                                \
            *yy += (T)(y[i] * y[i]);                                                \
        }                                                                           \
    }
    GL_DEFINE_DOT3(float, gl_dot_vf32, f32)
    GL_DEFINE_DOT3(double, gl_dot_vf64, f64)
    """
    void gl_dot3_f32(const float* x, const float* y, Py_ssize_t n,
                     double* xy, double* xx, double* yy) noexcept nogil
    void gl_dot3_f64(const double* x, const double* y, Py_ssize_t n,
                     double* xy, double* xx, double* yy) noexcept nogil


cdef inline void _dot3(const floating* x, const floating* y, Py_ssize_t n,
                       double* xy, double* xx, double* yy) noexcept nogil:
    """x.y, x.x and y.y, each in a fixed order."""
    if floating is float:
        gl_dot3_f32(x, y, n, xy, xx, yy)
    else:
        gl_dot3_f64(x, y, n, xy, xx, yy)


cdef inline void _cosine_row(const floating* x_all, const CosineJob* job,
                             Py_ssize_t row) noexcept nogil:
    cdef Py_ssize_t n = job.n_cols
    cdef Py_ssize_t at = row * n
    cdef Py_ssize_t j
    cdef const floating* x = x_all + at
    cdef const floating* y = <const floating*>job.y + at
    cdef floating* gx
    cdef floating* gy
    cdef double xy, xx, yy, norms, den, cos, v, loss, dloss, k
    cdef double hi = 1.0 - job.margin
    cdef bint floored
    cdef floating cx_x, cx_y, cy_x, cy_y
    _dot3(x, y, n, &xy, &xx, &yy)
    norms = sqrt(xx) * sqrt(yy)
    floored = norms <= 1e-12           # False for NaN: NaN must reach every output
    den = 1e-12 if floored else norms
    cos = xy / den
    if (<const floating*>job.label)[row] > 0:
        loss = 1.0 - cos
        dloss = -1.0
    else:
        # clip(v, 0, 1 - margin) in MXNet's order (upper bound first), which
        # also defines margin > 1; the gradient is 1 on the open interval only.
        v = cos - job.margin
        loss = hi if v > hi else (0.0 if v < 0 else v)
        dloss = 1.0 if (v > 0 and v < hi) else zero_unless_nan(v)
    if job.out != NULL:
        (<floating*>job.out)[row] = <floating>(loss * _scale(job.row_weight, job.weight, row))
    if job.grad_x != NULL:
        # d cos/dx = y/den - cos x/|x|^2, or y/1e-12 where the floor holds.
        k = _scale(job.row_weight, job.weight, row) * _ones_or(job.out_grad, row) * dloss
        cx_y = <floating>(k / den)
        cx_x = <floating>(0.0 if floored else -k * cos / xx)
        cy_x = cx_y
        cy_y = <floating>(0.0 if floored else -k * cos / yy)
        gx = <floating*>job.grad_x + at
        gy = <floating*>job.grad_y + at
        # Both products can be NaN: one_nan makes the sum's NaN the same in
        # every kernel build.
        for j in range(n):
            gx[j] = one_nan(cx_y * y[j] + cx_x * x[j])
            gy[j] = one_nan(cy_x * x[j] + cy_y * y[j])


def cosine(*, x, y, label, double margin, double weight, row_weight, out_grad, out, grad_x,
           grad_y, int n_threads):
    """CosineEmbeddingLoss over (N, D) rows; see the module docstring.

    x, y                 : (N, D) C-contiguous, float32 or float64 (the same).
    label                : (N,) of that dtype, each exactly 1 or -1.
    row_weight, out_grad : (N,) C-contiguous float64, or None (ones).
    out                  : (N,) of the dtype, or None.
    grad_x, grad_y       : (N, D) of the dtype, both or None.

    Every array is checked against this contract (TypeError or ValueError).
    """
    cdef int typenum = float_typenum(x, "cosine", "x")
    cdef CosineJob job
    cdef void* grads[2]
    job.x = array_data(x, "cosine", "x", typenum, 2, ANY, ANY, ANY, 0)
    job.n_rows = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
    job.n_cols = cnp.PyArray_DIM(<cnp.ndarray>x, 1)
    job.y = array_data(y, "cosine", "y", typenum, 2, job.n_rows, job.n_cols, ANY, 0)
    job.label = array_data(label, "cosine", "label", typenum, 1, job.n_rows, ANY, ANY, 0)
    job.margin = margin
    job.weight = weight
    job.row_weight = _per_row(row_weight, "cosine", "row_weight", job.n_rows)
    job.out_grad = _per_row(out_grad, "cosine", "out_grad", job.n_rows)
    _outputs("cosine", out, job.n_rows, (grad_x, grad_y), ("grad_x", "grad_y"), job.n_cols,
             typenum, &job.out, grads)
    job.grad_x = grads[0]
    job.grad_y = grads[1]
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _rows_run(<const float*>job.x, &job, True, job.n_rows, n_threads)
        else:
            _rows_run(<const double*>job.x, &job, True, job.n_rows, n_threads)


# ---------------------------------------------------------------------------
# SDMLLoss.
#
# D_ij = |a_i - b_j|^2 (a = x1, b = x2), lp = log_softmax(-D) by rows,
# Y = (1 - sp) on the diagonal and sp/(N-1) elsewhere, and
#   out_i = w/N * sum_j Y_ij (log(Y_ij + 1e-12) - lp_ij)
#         = w/N * (C + sum_j Y_ij (D_ij - m_i) + log S_i)
# with C = sum_j Y_ij log(Y_ij + 1e-12), m_i = min_j D_ij and
# S_i = sum_j exp(m_i - D_ij) (using sum_j Y_ij = 1).  With g_i the upstream
# gradient times w/N and G_ij = 2 g_i (Y_ij - softmax(-D)_ij):
#   d/da_i = sum_j G_ij (a_i - b_j),   d/db_j = sum_i G_ij (b_j - a_i).
#
# The distances are summed directly as (a_ik - b_jk)^2, not expanded into
# |a|^2 + |b|^2 - 2 a.b: it costs one subtraction more per term but every
# term is >= 0, so there is no cancellation at all, identical rows give
# exactly 0, and nothing depends on how far the data sit from the origin.
# The gradients are summed directly as G_ij (a_i - b_j) for the same reason
# (the expanded form r_i a_i - sum_j G_ij b_j cancels when the data are far
# from the origin).  All three N x N x D sums are register-tiled RI x CW
# loops that GCC vectorises along the CW axis; each output entry is a plain
# sum in index order, so neither the tiling nor the threads change a bit.
# The inputs arrive zero-padded to P rows (a multiple of CW) and packed into
# CW-wide panels, so every inner loop reads contiguous memory.

cdef struct SdmlJob:
    Py_ssize_t n             # rows of x1 and x2
    Py_ssize_t dim           # D
    Py_ssize_t padded        # P: n rounded up to a multiple of CW
    Py_ssize_t dim_panels    # ceil(D / CW)
    const void* a_rows       # (P, D) x1, zero rows after n
    const void* b_panels     # (P / CW, D, CW): b_panels[p, k, c] = x2[p CW + c, k]
    const void* a_cols       # (dim_panels, P, CW): a_cols[q, i, c] = x1[i, q CW + c]
    const void* b_cols       # (dim_panels, P, CW), the same for x2
    void* work               # (P, P): distances, then the coefficients G
    void* work_t             # (P, P): G transposed
    double y_diag            # Y_ii
    double y_off             # Y_ij, i != j
    double entropy           # C
    double weight
    const double* out_grad
    void* out
    void* grad_x1            # (n, D), NULL: no gradients wanted (else both)
    void* grad_x2


# The two register tiles, in C with GCC's vector extensions: 32-byte
# vectors (AVX2 registers, or pairs of SSE2 registers in the baseline build)
# that GCC keeps in registers across the k loop, which its auto-vectoriser
# does not manage for the same loops written in Cython.  Each lane does the
# scalar operations of the comment, in the same order, and there is no FMA
# (-mavx2 without -mfma), so the results are those of plain scalar code.
cdef extern from *:
    """
    #include <stddef.h>
    #include <string.h>
    #define GL_TILE_RI 4
    #define GL_TILE_CW 16
    typedef float gl_vf32 __attribute__((vector_size(32)));
    typedef double gl_vf64 __attribute__((vector_size(32)));

    /* Loads and stores through memcpy: unaligned, well defined, one instruction. */
    #define GL_LOAD(dst, src) memcpy(&(dst), (src), sizeof(dst))

    /* Each tile runs in passes over groups of PV vectors of its CW columns, so
       that accumulators and operands fit in the 16 vector registers. */
    #define GL_DEFINE_TILES(T, V, SFX)                                               \
    /* out[r, c] = sum_k (a[r, k] - panel[k, c])^2, all RI x CW stored */           \
    static inline void gl_sqdist_tile_##SFX(const T* a, ptrdiff_t lda, const T* panel, \
                                            ptrdiff_t dim, T* out, ptrdiff_t ldo) {   \
        enum { W = sizeof(V) / sizeof(T), PV = 2 };                                  \
        for (int c0 = 0; c0 < GL_TILE_CW; c0 += PV * W) {                           \
            V acc[GL_TILE_RI][PV];                                                  \
            memset(acc, 0, sizeof acc);                                             \
            for (ptrdiff_t k = 0; k < dim; k++) {                                   \
                V b[PV];                                                            \
                for (int v = 0; v < PV; v++)                                        \
                    GL_LOAD(b[v], panel + k * GL_TILE_CW + c0 + v * W);             \
                for (int r = 0; r < GL_TILE_RI; r++) {                              \
                    T av = a[r * lda + k];                                          \
                    for (int v = 0; v < PV; v++) { V t = av - b[v]; acc[r][v] += t * t; } \
                }                                                                   \
            }                                                                       \
            for (int r = 0; r < GL_TILE_RI; r++)                                    \
                memcpy(out + r * ldo + c0, acc[r], sizeof acc[r]);                  \
        }                                                                           \
    }                                                                               \
    /* out[r, c] = sum_k coef[r, k] (own[r, c] - other[k, c]); the first           \
       n_rows x n_cols of the RI x CW tile are stored */                           \
    static inline void gl_weighted_diff_tile_##SFX(                                 \
            const T* coef, ptrdiff_t ld_coef, const T* own, const T* other,        \
            ptrdiff_t n_terms, T* out, ptrdiff_t ld_out, ptrdiff_t n_rows,          \
            ptrdiff_t n_cols) {                                                     \
        enum { W = sizeof(V) / sizeof(T), PV = 2 };                                  \
        T done[GL_TILE_RI][GL_TILE_CW];                                             \
        for (int c0 = 0; c0 < GL_TILE_CW; c0 += PV * W) {                           \
            V acc[GL_TILE_RI][PV], mine[GL_TILE_RI][PV];                            \
            memset(acc, 0, sizeof acc);                                             \
            for (int r = 0; r < GL_TILE_RI; r++)                                    \
                for (int v = 0; v < PV; v++)                                        \
                    GL_LOAD(mine[r][v], own + r * GL_TILE_CW + c0 + v * W);         \
            for (ptrdiff_t k = 0; k < n_terms; k++) {                               \
                V o[PV];                                                            \
                for (int v = 0; v < PV; v++)                                        \
                    GL_LOAD(o[v], other + k * GL_TILE_CW + c0 + v * W);             \
                for (int r = 0; r < GL_TILE_RI; r++) {                              \
                    T w = coef[r * ld_coef + k];                                    \
                    for (int v = 0; v < PV; v++) acc[r][v] += w * (mine[r][v] - o[v]); \
                }                                                                   \
            }                                                                       \
            for (int r = 0; r < GL_TILE_RI; r++)                                    \
                memcpy(&done[r][c0], acc[r], sizeof acc[r]);                        \
        }                                                                           \
        for (ptrdiff_t r = 0; r < n_rows; r++)                                      \
            for (ptrdiff_t c = 0; c < n_cols; c++) out[r * ld_out + c] = done[r][c]; \
    }

    GL_DEFINE_TILES(float, gl_vf32, f32)
    GL_DEFINE_TILES(double, gl_vf64, f64)
    """
    void gl_sqdist_tile_f32(const float* a, Py_ssize_t lda, const float* panel,
                            Py_ssize_t dim, float* out, Py_ssize_t ldo) noexcept nogil
    void gl_sqdist_tile_f64(const double* a, Py_ssize_t lda, const double* panel,
                            Py_ssize_t dim, double* out, Py_ssize_t ldo) noexcept nogil
    void gl_weighted_diff_tile_f32(const float* coef, Py_ssize_t ld_coef, const float* own,
                                   const float* other, Py_ssize_t n_terms, float* out,
                                   Py_ssize_t ld_out, Py_ssize_t n_rows,
                                   Py_ssize_t n_cols) noexcept nogil
    void gl_weighted_diff_tile_f64(const double* coef, Py_ssize_t ld_coef, const double* own,
                                   const double* other, Py_ssize_t n_terms, double* out,
                                   Py_ssize_t ld_out, Py_ssize_t n_rows,
                                   Py_ssize_t n_cols) noexcept nogil


cdef inline void _sqdist_tile(const floating* a, Py_ssize_t lda, const floating* panel,
                              Py_ssize_t dim, floating* out, Py_ssize_t ldo) noexcept nogil:
    """out[r, c] = sum_k (a[r, k] - panel[k, c])^2 for an RI x CW tile."""
    if floating is float:
        gl_sqdist_tile_f32(a, lda, panel, dim, out, ldo)
    else:
        gl_sqdist_tile_f64(a, lda, panel, dim, out, ldo)


cdef inline void _weighted_diff_tile(const floating* coef, Py_ssize_t ld_coef,
                                     const floating* own, const floating* other,
                                     Py_ssize_t n_terms, floating* out, Py_ssize_t ld_out,
                                     Py_ssize_t n_rows, Py_ssize_t n_cols) noexcept nogil:
    """out[r, c] = sum_k coef[r, k] (own[r, c] - other[k, c]), an RI x CW tile
    of which the first n_rows x n_cols are stored."""
    if floating is float:
        gl_weighted_diff_tile_f32(coef, ld_coef, own, other, n_terms, out, ld_out, n_rows,
                                  n_cols)
    else:
        gl_weighted_diff_tile_f64(coef, ld_coef, own, other, n_terms, out, ld_out, n_rows,
                                  n_cols)


cdef inline void _distance_block(const floating* dummy, const SdmlJob* job,
                                 Py_ssize_t block) noexcept nogil:
    cdef Py_ssize_t panel, i
    cdef Py_ssize_t p = job.padded
    cdef Py_ssize_t dim = job.dim
    cdef const floating* a = <const floating*>job.a_rows
    cdef const floating* b = <const floating*>job.b_panels
    cdef floating* work = <floating*>job.work
    cdef Py_ssize_t tile
    for panel in range(p // CW):
        for tile in range(RB // RI):
            i = block * RB + tile * RI
            if i >= p:                   # the last block may be partial
                break
            _sqdist_tile(a + i * dim, dim, b + panel * dim * CW, dim,
                         work + i * p + panel * CW, p)


cdef inline void _softmax_row(const floating* dummy, const SdmlJob* job,
                              Py_ssize_t i) noexcept nogil:
    """Loss of row i; with gradients, replace its distances by G_i."""
    cdef Py_ssize_t n = job.n
    cdef Py_ssize_t p = job.padded
    cdef floating* row = <floating*>job.work + i * p
    cdef floating acc_s[LANES]
    cdef floating acc_t[LANES]
    cdef floating lane_min[LANES]
    cdef floating m, d, d_diag, e, e_diag, coef, inv_s, y_off
    cdef double s, t
    cdef bint want_grad = job.grad_x1 != NULL
    cdef floating zero_from = <floating>(EXP_ZERO_FROM_F32 if floating is float
                                         else EXP_ZERO_FROM_F64)
    cdef int n_zero
    cdef Py_ssize_t c, j, lane, n_vec = n - n % LANES
    if i >= n:                       # padding row: no loss, zero coefficients
        for j in range(p):
            row[j] = 0
        return
    # m = min_j D_ij, a NaN never replacing it (a NaN D_i0 stays): per lane
    # with vector compares, then the lanes and the tail in order.
    m = row[0]
    lanes_fill(lane_min, LANES, m)
    lanes16_min(row, n_vec // LANES, lane_min)
    for lane in range(LANES):
        m = lane_min[lane] if lane_min[lane] < m else m
    for j in range(n_vec, n):
        m = row[j] if row[j] < m else m
    # Every D_ij - m >= 0 (or NaN): the exponentials' arguments are <= 0.
    d_diag = row[i] - m
    e_diag = vexp_nonpositive_exact(-d_diag)
    lanes_fill(acc_s, LANES, 0)
    lanes_fill(acc_t, LANES, 0)
    # exp(m - D_ij) <= 1 and D_ij - m >= 0, summed in LANES partial sums;
    # with gradients the exponentials are kept in place of the distances.
    # t leaves out the diagonal, which enters the loss as y_diag * d_diag
    # alone: an infinite D_ii must not meet y_off * D_ii - y_off * D_ii.
    for c in range(n_vec // LANES):
        j = c * LANES
        n_zero = 0
        for lane in range(LANES):
            n_zero += row[j + lane] - m >= zero_from     # False for NaN
        if n_zero == LANES:
            # Every exp(m - D_ij) of the group is exactly 0, as for most pairs
            # of far-apart rows: the same sums and zeros without the exps,
            # whose underflowing products are the slowest of all.
            for lane in range(LANES):
                acc_t[lane] += 0 if j + lane == i else row[j + lane] - m
                if want_grad:
                    row[j + lane] = 0
            continue
        for lane in range(LANES):
            d = row[j + lane] - m
            e = vexp_nonpositive_exact(-d)
            acc_t[lane] += 0 if j + lane == i else d
            acc_s[lane] += e
            if want_grad:
                row[j + lane] = e
    s = lanes_sum(acc_s, LANES, 0.0)
    t = lanes_sum(acc_t, LANES, 0.0)
    for j in range(n_vec, n):
        d = row[j] - m
        e = vexp_nonpositive_exact(-d)
        t += 0 if j == i else d
        s += e
        if want_grad:
            row[j] = e
    if job.out != NULL:
        (<floating*>job.out)[i] = <floating>(job.weight / n * (
            job.entropy + job.y_off * t + job.y_diag * d_diag + log(s)))
    if want_grad:
        coef = <floating>(2.0 * (job.weight / n) * _ones_or(job.out_grad, i))
        inv_s = <floating>(1.0 / s)
        y_off = <floating>job.y_off
        for j in range(n):
            row[j] = coef * (y_off - row[j] * inv_s)
        row[i] = coef * (<floating>job.y_diag - e_diag * inv_s)
        for j in range(n, p):
            row[j] = 0


cdef inline void _transpose_block(const floating* dummy, const SdmlJob* job,
                                  Py_ssize_t block) noexcept nogil:
    """work_t[j, i] = work[i, j] for the (at most) RB rows j of this block."""
    cdef Py_ssize_t p = job.padded
    cdef const floating* src = <const floating*>job.work
    cdef floating* dst = <floating*>job.work_t
    cdef Py_ssize_t i_block, i, j
    for i_block in range((p + RB - 1) // RB):
        for j in range(block * RB, min(block * RB + RB, p)):
            for i in range(i_block * RB, min(i_block * RB + RB, p)):
                dst[j * p + i] = src[i * p + j]


cdef inline void _gradient_block(const floating* dummy, const SdmlJob* job, Py_ssize_t block,
                                 bint for_x2) noexcept nogil:
    """Rows of this block of d/dx1 (G by rows) or d/dx2 (G by columns)."""
    cdef Py_ssize_t n = job.n
    cdef Py_ssize_t p = job.padded
    cdef Py_ssize_t dim = job.dim
    cdef const floating* coef = <const floating*>(job.work_t if for_x2 else job.work)
    cdef const floating* own = <const floating*>(job.b_cols if for_x2 else job.a_cols)
    cdef const floating* other = <const floating*>(job.a_cols if for_x2 else job.b_cols)
    cdef floating* grad = <floating*>(job.grad_x2 if for_x2 else job.grad_x1)
    cdef Py_ssize_t q, i, tile
    for q in range(job.dim_panels):
        for tile in range(RB // RI):
            i = block * RB + tile * RI
            if i >= n:
                break
            _weighted_diff_tile(coef + i * p, p, own + q * p * CW + i * CW, other + q * p * CW,
                                n, grad + i * dim + q * CW, dim,
                                min(<Py_ssize_t>RI, n - i), min(<Py_ssize_t>CW, dim - q * CW))


cdef enum SdmlStep:
    DISTANCES, SOFTMAX_ROWS, TRANSPOSE, GRAD_X1, GRAD_X2


cdef inline void _sdml_item(const floating* dummy, const SdmlJob* job, SdmlStep step,
                            Py_ssize_t item) noexcept nogil:
    if step == DISTANCES:
        _distance_block(dummy, job, item)
    elif step == SOFTMAX_ROWS:
        _softmax_row(dummy, job, item)
    elif step == TRANSPOSE:
        _transpose_block(dummy, job, item)
    else:
        _gradient_block(dummy, job, item, step == GRAD_X2)


cdef void _sdml_step(const floating* dummy, const SdmlJob* job, SdmlStep step,
                     Py_ssize_t n_items, int n_threads) noexcept nogil:
    cdef Py_ssize_t item
    if n_threads > 1:
        for item in prange(n_items, schedule="static", num_threads=n_threads):
            _sdml_item(dummy, job, step, item)
    else:
        for item in range(n_items):
            _sdml_item(dummy, job, step, item)


cdef void _sdml_run(const floating* dummy, const SdmlJob* job, int n_threads) noexcept nogil:
    cdef Py_ssize_t n_blocks = (job.padded + RB - 1) // RB
    _sdml_step(dummy, job, DISTANCES, n_blocks, n_threads)
    _sdml_step(dummy, job, SOFTMAX_ROWS, job.padded, n_threads)
    if job.grad_x1 != NULL:
        _sdml_step(dummy, job, TRANSPOSE, n_blocks, n_threads)
        _sdml_step(dummy, job, GRAD_X1, n_blocks, n_threads)
        _sdml_step(dummy, job, GRAD_X2, n_blocks, n_threads)


def sdml(*, a_rows, b_panels, a_cols, b_cols, Py_ssize_t n, double y_diag, double y_off,
         double entropy, double weight, out_grad, out, grad_x1, grad_x2, int n_threads):
    """SDMLLoss; see the comment above ``SdmlJob`` for the packed layouts.

    a_rows           : (P, D) C-contiguous, float32 or float64, x1 with zero rows after n.
    b_panels         : (P / CW, D, CW) of that dtype, x2 transposed in panels.
    a_cols, b_cols   : (ceil(D / CW), P, CW) of that dtype, x1 and x2 in column
                       panels (zero-padded), or None when no gradient is wanted.
    out_grad         : (n,) C-contiguous float64, or None (ones).
    out              : (n,) of the dtype, or None.
    grad_x1, grad_x2 : (n, D) of the dtype, both or None.

    Every array is checked against this contract (TypeError or ValueError).
    """
    cdef int typenum = float_typenum(a_rows, "sdml", "a_rows")
    cdef SdmlJob job
    cdef cnp.ndarray work
    cdef cnp.ndarray work_t
    cdef void* grads[2]
    cdef bint want_grad
    job.a_rows = array_data(a_rows, "sdml", "a_rows", typenum, 2, ANY, ANY, ANY, 0)
    job.padded = cnp.PyArray_DIM(<cnp.ndarray>a_rows, 0)
    job.dim = cnp.PyArray_DIM(<cnp.ndarray>a_rows, 1)
    if n < 1 or job.padded % CW or not n <= job.padded < n + CW:
        raise ValueError(f"sdml: a_rows must have n = {n} rows padded to a multiple of {CW}, "
                         f"got shape {a_rows.shape}")
    job.n = n
    job.dim_panels = (job.dim + CW - 1) // CW
    job.b_panels = array_data(b_panels, "sdml", "b_panels", typenum, 3, job.padded // CW,
                              job.dim, CW, 0)
    _outputs("sdml", out, n, (grad_x1, grad_x2), ("grad_x1", "grad_x2"), job.dim, typenum,
             &job.out, grads)
    job.grad_x1 = grads[0]
    job.grad_x2 = grads[1]
    want_grad = job.grad_x1 != NULL
    job.a_cols = array_data(a_cols, "sdml", "a_cols", typenum, 3, job.dim_panels, job.padded,
                            CW, 0 if want_grad else OPTIONAL)
    job.b_cols = array_data(b_cols, "sdml", "b_cols", typenum, 3, job.dim_panels, job.padded,
                            CW, 0 if want_grad else OPTIONAL)
    dtype = np.float32 if typenum == cnp.NPY_FLOAT32 else np.float64
    work = np.empty((job.padded, job.padded), dtype)
    job.work = cnp.PyArray_DATA(work)
    job.work_t = NULL
    if want_grad:
        work_t = np.empty((job.padded, job.padded), dtype)
        job.work_t = cnp.PyArray_DATA(work_t)
    job.y_diag = y_diag
    job.y_off = y_off
    job.entropy = entropy
    job.weight = weight
    job.out_grad = _per_row(out_grad, "sdml", "out_grad", n)
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _sdml_run(<const float*>job.a_rows, &job, n_threads)
        else:
            _sdml_run(<const double*>job.a_rows, &job, n_threads)


# ---------------------------------------------------------------------------
# SDMLLoss through BLAS (the default for finite inputs; ``sdml`` above
# handles the rest).
#
# With a = x1 - c and b = x2 - c for a centre c (below), n_i = |a_i|^2,
# m_j = |b_j|^2 and P = A B^T from GEMM,
#   D_ij = n_i + m_j - 2 P_ij,
# which cancels when D_ij is small next to n_i + m_j.  Such entries are
# recomputed directly as sum_k (a_ik - b_jk)^2: every D_ij < n_i + m_j / 4
# (rare off the diagonal, except for near-duplicate rows) and always the
# diagonal, straight from x1_i - x2_i, whose positive pairs are the small
# distances the loss cares most about.  The centre c_k is x1[0, k] (0 where
# that is not finite), which puts the origin inside the data: the expanded
# form then rounds like the direct sum, and equal rows give exactly 0.
#
# The gradients, with G' = G without its diagonal, r_i = sum_j G'_ij and
# c_j = sum_i G'_ij (both summed in index order):
#   d/dx1_i = -(G' B)_i + r_i a_i + G_ii (x1_i - x2_i)
#   d/dx2_j = -(G'^T A)_j + c_j b_j + G_jj (x2_j - x1_j)
# the diagonal again taken directly.
#
# Determinism.  A GEMM's result depends on how the BLAS splits it: OpenBLAS
# (measured with SciPy's build on AVX-512) gives other bits for dgemm with
# 2 threads than with 1 even for k = 7 (its edge kernels sum in another
# order), and for sgemm once k exceeds its k-block (~400).  Its thread
# count is process-wide (``openblas_set_num_threads_local`` too, in the
# pthreads builds SciPy ships), so it cannot be pinned for one call without
# touching every other user of the library.  Instead every product is cut
# into fixed tiles of at most GEMM_TM x GEMM_TN x GEMM_TK = 2**18
# multiply-adds -- OpenBLAS runs any GEMM that small on the calling thread
# alone, whatever its setting -- accumulated over k in a fixed order
# (beta = 1), and the tiles are spread over gluonloss's own threads (one
# work item: GEMM_TN columns of the column-major result, all its tiles).
# Each tile is then one single-threaded call on the same operands whatever
# the thread counts, and so is every other step: fixed-order loops over
# rows or columns.  Non-finite inputs (or norms that overflow) go to the
# direct kernel, which keeps the IEEE results of the formula as
# written (an infinite coordinate makes n_i + m_j - 2 P_ij NaN).

cdef enum:
    GEMM_TM = 128      # one GEMM call: rows of the (column-major) result ...
    GEMM_TN = 64       # ... its columns (also the columns of one work item) ...
    GEMM_TK = 32       # ... and the length of its sums
    COL_BLOCK = 256    # columns per work item of the column sums
    TRANS_N = 78       # b"N": op(X) = X
    TRANS_T = 84       # b"T": op(X) = X^T


cdef struct Gemm:
    # Column-major C (m x n) = alpha op(A) op(B), with op(A)[i, k] at
    # a[i * a_i + k * a_k] and op(B)[k, j] at b[k * b_k + j * b_j].
    int m
    int n
    int k
    double alpha
    char trans_a
    char trans_b
    const void* a
    int lda
    Py_ssize_t a_i
    Py_ssize_t a_k
    const void* b
    int ldb
    Py_ssize_t b_k
    Py_ssize_t b_j
    void* c
    int ldc

cdef struct BlasJob:
    Py_ssize_t n
    Py_ssize_t dim
    const void* x1           # (n, dim) inputs
    const void* x2
    void* a                  # (n, dim) x1 - c
    void* b                  # (n, dim) x2 - c
    void* b_t                # (dim, n) its transpose
    double* norm_a           # (n,) |a_i|^2
    double* norm_b           # (n,) |b_j|^2
    void* gram               # (n, n): A B^T, then D, then G (diagonal zeroed)
    double* g_diag           # (n,) G_ii
    double* row_sum          # (n,) r_i
    double* col_sum          # (n,) c_j
    Gemm gemm                # the product of the current GEMM step


cdef inline void _gemm(char* trans_a, char* trans_b, int m, int n, int k, floating alpha,
                       const floating* a, int lda, const floating* b, int ldb, floating beta,
                       floating* c, int ldc) noexcept nogil:
    """Column-major C = alpha op(A) op(B) + beta C (scipy's BLAS)."""
    if floating is float:
        sgemm(trans_a, trans_b, &m, &n, &k, &alpha, <float*>a, &lda, <float*>b, &ldb, &beta,
              c, &ldc)
    else:
        dgemm(trans_a, trans_b, &m, &n, &k, &alpha, <double*>a, &lda, <double*>b, &ldb, &beta,
              c, &ldc)


cdef inline void _gemm_columns(const floating* dummy, const Gemm* g,
                               Py_ssize_t item) noexcept nogil:
    """Columns [item GEMM_TN, +GEMM_TN) of a Gemm, tile by tile, k in order."""
    cdef int j0 = <int>item * GEMM_TN
    cdef int nj = min(<int>GEMM_TN, g.n - j0)
    cdef int i_tile, k_tile, i0, k0, mi, kk
    cdef char trans_a = g.trans_a
    cdef char trans_b = g.trans_b
    cdef const floating* a = <const floating*>g.a
    cdef const floating* b = <const floating*>g.b
    cdef floating* c = <floating*>g.c
    for i_tile in range((g.m + GEMM_TM - 1) // GEMM_TM):
        i0 = i_tile * GEMM_TM
        mi = min(<int>GEMM_TM, g.m - i0)
        for k_tile in range((g.k + GEMM_TK - 1) // GEMM_TK):
            k0 = k_tile * GEMM_TK
            kk = min(<int>GEMM_TK, g.k - k0)
            _gemm(&trans_a, &trans_b, mi, nj, kk, <floating>g.alpha,
                  a + i0 * g.a_i + k0 * g.a_k, g.lda, b + k0 * g.b_k + j0 * g.b_j, g.ldb,
                  <floating>(0.0 if k0 == 0 else 1.0), c + i0 + <Py_ssize_t>j0 * g.ldc, g.ldc)


cdef inline void _set_gemm(BlasJob* job, int m, int n, int k, double alpha, char trans_a,
                           const void* a, int lda, char trans_b, const void* b, int ldb,
                           void* c, int ldc) noexcept nogil:
    job.gemm.m = m
    job.gemm.n = n
    job.gemm.k = k
    job.gemm.alpha = alpha
    job.gemm.trans_a = trans_a
    job.gemm.trans_b = trans_b
    job.gemm.a = a
    job.gemm.lda = lda
    job.gemm.a_i = 1 if trans_a == TRANS_N else lda
    job.gemm.a_k = lda if trans_a == TRANS_N else 1
    job.gemm.b = b
    job.gemm.ldb = ldb
    job.gemm.b_k = 1 if trans_b == TRANS_N else ldb
    job.gemm.b_j = ldb if trans_b == TRANS_N else 1
    job.gemm.c = c
    job.gemm.ldc = ldc


cdef enum LaneTerm:
    TERM_VALUE, TERM_SQUARE, TERM_SQUARED_DIFFERENCE


cdef inline double _lane_sum(const floating* x, const floating* y, Py_ssize_t n,
                             LaneTerm term) noexcept nogil:
    """sum_k of x_k, x_k^2 or (x_k - y_k)^2 (``term``, a constant where inlined),
    each term rounded in the dtype and summed in LANES partial sums of double,
    a fixed order."""
    cdef double acc[LANES]
    cdef floating t
    cdef Py_ssize_t c, i, j, n_vec = n - n % LANES
    cdef double total
    lanes_fill(acc, LANES, 0)
    for c in range(n_vec // LANES):
        i = c * LANES
        for j in range(LANES):
            t = x[i + j] if term == TERM_VALUE else (
                x[i + j] if term == TERM_SQUARE else x[i + j] - y[i + j])
            acc[j] += t if term == TERM_VALUE else t * t
    total = lanes_sum(acc, LANES, 0.0)
    for i in range(n_vec, n):
        t = x[i] if term != TERM_SQUARED_DIFFERENCE else x[i] - y[i]
        total += t if term == TERM_VALUE else t * t
    return total


cdef inline void _center_row(const floating* centre, const BlasJob* job,
                             Py_ssize_t i) noexcept nogil:
    cdef Py_ssize_t dim = job.dim
    cdef Py_ssize_t k
    cdef const floating* x1 = <const floating*>job.x1 + i * dim
    cdef const floating* x2 = <const floating*>job.x2 + i * dim
    cdef floating* a = <floating*>job.a + i * dim
    cdef floating* b = <floating*>job.b + i * dim
    for k in range(dim):
        a[k] = x1[k] - centre[k]
        b[k] = x2[k] - centre[k]
    job.norm_a[i] = _lane_sum(a, a, dim, TERM_SQUARE)
    job.norm_b[i] = _lane_sum(b, b, dim, TERM_SQUARE)


cdef inline void _transpose_b(const floating* dummy, const BlasJob* job,
                              Py_ssize_t block) noexcept nogil:
    """b_t[k, i] = b[i, k] for the rows i of this block (GEMM_TN of them)."""
    cdef Py_ssize_t n = job.n
    cdef Py_ssize_t dim = job.dim
    cdef Py_ssize_t i0 = block * GEMM_TN
    cdef Py_ssize_t width = min(<Py_ssize_t>GEMM_TN, n - i0)
    cdef Py_ssize_t i, k
    cdef const floating* b = <const floating*>job.b + i0 * dim
    cdef floating* b_t = <floating*>job.b_t + i0
    for k in range(dim):
        for i in range(width):
            b_t[k * n + i] = b[i * dim + k]


cdef inline void _distance_row(const floating* dummy, const BlasJob* job,
                               Py_ssize_t i) noexcept nogil:
    """Row i of the Gram matrix becomes D_i, recomputed directly where it cancels."""
    cdef Py_ssize_t n = job.n
    cdef Py_ssize_t dim = job.dim
    cdef Py_ssize_t j
    cdef floating* row = <floating*>job.gram + i * n
    cdef const floating* a = <const floating*>job.a
    cdef const floating* b = <const floating*>job.b
    cdef floating norm_i = <floating>job.norm_a[i]
    cdef floating scale
    cdef int n_cancelled = 0
    for j in range(n):
        scale = norm_i + <floating>job.norm_b[j]
        row[j] = scale - <floating>2.0 * row[j]
        n_cancelled += 0 if row[j] >= <floating>0.25 * scale else 1
    # The diagonal, a positive pair, is small and usually cancels: it is
    # summed directly below in any case, so it alone does not send the row
    # through the (scalar) search for cancelled entries.
    scale = norm_i + <floating>job.norm_b[i]
    n_cancelled -= 0 if row[i] >= <floating>0.25 * scale else 1
    if n_cancelled:
        for j in range(n):
            scale = norm_i + <floating>job.norm_b[j]
            if j != i and not row[j] >= <floating>0.25 * scale:
                row[j] = <floating>_lane_sum(a + i * dim, b + j * dim, dim,
                                             TERM_SQUARED_DIFFERENCE)
    row[i] = <floating>_lane_sum(<const floating*>job.x1 + i * dim,
                                 <const floating*>job.x2 + i * dim, dim, TERM_SQUARED_DIFFERENCE)


cdef inline void _blas_softmax_row(const floating* dummy, const SdmlJob* sjob,
                                   const BlasJob* job, Py_ssize_t i) noexcept nogil:
    """Loss of row i; with gradients, G_i with its diagonal moved to g_diag and r_i."""
    cdef floating* row
    _distance_row(dummy, job, i)
    _softmax_row(dummy, sjob, i)
    if sjob.grad_x1 != NULL:
        row = <floating*>job.gram + i * job.n
        job.g_diag[i] = row[i]
        row[i] = 0
        job.row_sum[i] = _lane_sum(row, row, job.n, TERM_VALUE)


cdef inline void _column_sums(const floating* dummy, const BlasJob* job,
                              Py_ssize_t block) noexcept nogil:
    """c_j = sum_i G'_ij in row order (in double), for the columns of this block."""
    cdef Py_ssize_t n = job.n
    cdef Py_ssize_t j0 = block * COL_BLOCK
    cdef Py_ssize_t width = min(<Py_ssize_t>COL_BLOCK, n - j0)
    cdef Py_ssize_t i, j
    cdef const floating* g = <const floating*>job.gram
    cdef double acc[COL_BLOCK]
    for j in range(width):
        acc[j] = 0
    for i in range(n):
        for j in range(width):
            acc[j] += g[i * n + j0 + j]
    for j in range(width):
        job.col_sum[j0 + j] = acc[j]


cdef inline void _finish_gradient_row(const floating* dummy, const SdmlJob* sjob,
                                      const BlasJob* job, Py_ssize_t i) noexcept nogil:
    """Add r_i a_i + G_ii (x1_i - x2_i) and c_i b_i + G_ii (x2_i - x1_i)."""
    cdef Py_ssize_t dim = job.dim
    cdef Py_ssize_t k
    cdef floating* g1 = <floating*>sjob.grad_x1 + i * dim
    cdef floating* g2 = <floating*>sjob.grad_x2 + i * dim
    cdef const floating* x1 = <const floating*>job.x1 + i * dim
    cdef const floating* x2 = <const floating*>job.x2 + i * dim
    cdef const floating* a = <const floating*>job.a + i * dim
    cdef const floating* b = <const floating*>job.b + i * dim
    cdef floating r = <floating>job.row_sum[i]
    cdef floating c = <floating>job.col_sum[i]
    cdef floating gd = <floating>job.g_diag[i]
    for k in range(dim):
        g1[k] = (g1[k] + r * a[k]) + gd * (x1[k] - x2[k])
        g2[k] = (g2[k] + c * b[k]) + gd * (x2[k] - x1[k])


cdef enum BlasStep:
    CENTER, TRANSPOSE_B, GEMM, SOFTMAX, COLUMNS, FINISH


cdef void _blas_step(const floating* centre, const SdmlJob* sjob, const BlasJob* job,
                     BlasStep step, Py_ssize_t n_items, int n_threads) noexcept nogil:
    cdef Py_ssize_t item
    if n_threads > 1:
        for item in prange(n_items, schedule="static", num_threads=n_threads):
            _blas_item(centre, sjob, job, step, item)
    else:
        for item in range(n_items):
            _blas_item(centre, sjob, job, step, item)


cdef inline void _blas_item(const floating* centre, const SdmlJob* sjob, const BlasJob* job,
                            BlasStep step, Py_ssize_t item) noexcept nogil:
    if step == CENTER:
        _center_row(centre, job, item)
    elif step == TRANSPOSE_B:
        _transpose_b(centre, job, item)
    elif step == GEMM:
        _gemm_columns(centre, &job.gemm, item)
    elif step == SOFTMAX:
        _blas_softmax_row(centre, sjob, job, item)
    elif step == COLUMNS:
        _column_sums(centre, job, item)
    else:
        _finish_gradient_row(centre, sjob, job, item)


cdef void _gemm_step(const floating* centre, const SdmlJob* sjob, const BlasJob* job,
                     int n_threads) noexcept nogil:
    _blas_step(centre, sjob, job, GEMM, (job.gemm.n + GEMM_TN - 1) // GEMM_TN, n_threads)


cdef bint _sdml_blas_run(const floating* centre, const SdmlJob* sjob, BlasJob* job,
                         double scale_max, int n_threads) noexcept nogil:
    """Run the BLAS path; False (nothing written) when a squared norm is not
    finite or so large that a distance could overflow."""
    cdef Py_ssize_t i
    cdef int n = <int>job.n
    cdef int dim = <int>job.dim
    # |a - b|^2 <= 2|a|^2 + 2|b|^2: norms up to a quarter of the largest finite
    # value keep every distance and product finite; beyond that the direct
    # kernel gives the IEEE results (an infinite distance, not inf - inf).
    cdef double limit = (FLT_MAX if floating is float else DBL_MAX) / 4
    cdef double norm_max = 0
    _blas_step(centre, sjob, job, CENTER, job.n, n_threads)
    for i in range(job.n):
        if not (job.norm_a[i] <= limit and job.norm_b[i] <= limit):
            return False
        norm_max = max(norm_max, max(job.norm_a[i], job.norm_b[i]))
    # The gradient products sum n terms of at most 2 |weight * out_grad| |x|:
    # where that could overflow (inf - inf in a GEMM) the direct kernel runs.
    if not (scale_max * 8.0 * job.n * (sqrt(norm_max) + 1.0) <= limit):
        return False
    _blas_step(centre, sjob, job, TRANSPOSE_B, (job.n + GEMM_TN - 1) // GEMM_TN, n_threads)
    # Row-major P = A B^T is column-major P^T = B A^T: B as the column-major
    # (n x D) storage of b_t, A^T as that of a (no transposed operand: the
    # fastest kernels).
    _set_gemm(job, n, n, dim, 1.0, TRANS_N, job.b_t, n, TRANS_N, job.a, dim, job.gram, n)
    _gemm_step(centre, sjob, job, n_threads)
    _blas_step(centre, sjob, job, SOFTMAX, job.n, n_threads)
    if sjob.grad_x1 == NULL:
        return True
    _blas_step(centre, sjob, job, COLUMNS, (job.n + COL_BLOCK - 1) // COL_BLOCK, n_threads)
    # d/dx1 = -G' B: column-major (D x n) = B^T G'^T, both as stored.
    _set_gemm(job, dim, n, n, -1.0, TRANS_N, job.b, dim, TRANS_N, job.gram, n, sjob.grad_x1,
              dim)
    _gemm_step(centre, sjob, job, n_threads)
    # d/dx2 = -G'^T A: column-major (D x n) = A^T G', G' the transpose of its storage.
    _set_gemm(job, dim, n, n, -1.0, TRANS_N, job.a, dim, TRANS_T, job.gram, n, sjob.grad_x2,
              dim)
    _gemm_step(centre, sjob, job, n_threads)
    _blas_step(centre, sjob, job, FINISH, job.n, n_threads)
    return True


# The BLAS path's scratch (the centred copies and the n x n matrix) is kept
# per thread and reused by the next call that fits in it: freshly allocated,
# its pages are faulted in and zeroed by the kernel on every call (glibc
# returns large freed blocks to the system), about a fifth of the time at
# n = 1024.  Scratch above SCRATCH_KEEP_BYTES is allocated per call and not
# kept.  Per thread, so that concurrent calls never share it.
SCRATCH_KEEP_BYTES = 64 << 20
_scratch = threading.local()


cdef inline Py_ssize_t _aligned_bytes(Py_ssize_t n_bytes) noexcept:
    return (n_bytes + 63) // 64 * 64


def _scratch_arrays(tuple shapes, tuple dtypes):
    """Uninitialised arrays of these shapes and dtypes, carved from this thread's
    reusable scratch buffer, each starting on a 64-byte boundary of it."""
    cdef Py_ssize_t total = 0, at = 0
    nbytes = [int(np.prod(shape)) * np.dtype(dtype).itemsize
              for shape, dtype in zip(shapes, dtypes)]
    for size in nbytes:
        total += _aligned_bytes(size)
    buffer = getattr(_scratch, "buffer", None)
    if buffer is None or buffer.nbytes < total:
        buffer = np.empty(total, np.uint8)
        if total <= SCRATCH_KEEP_BYTES:
            _scratch.buffer = buffer
    arrays = []
    for shape, dtype, size in zip(shapes, dtypes, nbytes):
        arrays.append(buffer[at:at + size].view(dtype).reshape(shape))
        at += _aligned_bytes(size)
    return arrays


def sdml_blas(*, x1, x2, double y_diag, double y_off, double entropy, double weight, out_grad,
              out, grad_x1, grad_x2, int n_threads):
    """SDMLLoss through BLAS; see the comment above ``BlasJob``.

    x1, x2           : (n, D) C-contiguous, float32 or float64 (the same), n >= 2.
    out_grad         : (n,) C-contiguous float64, or None (ones).
    out              : (n,) of the dtype, or None.
    grad_x1, grad_x2 : (n, D) of the dtype, both or None.

    Returns False, having written nothing, when the inputs are not all finite
    (or their squared norms could make a distance overflow), D is 0 or a dimension does not fit
    BLAS's 32-bit integers: the caller then runs ``sdml``.  Every array is
    checked against this contract (TypeError or ValueError).
    """
    cdef int typenum = float_typenum(x1, "sdml_blas", "x1")
    cdef SdmlJob sjob
    cdef BlasJob job
    cdef void* grads[2]
    cdef cnp.ndarray a, b, b_t, gram, centre, per_row
    cdef Py_ssize_t n, dim
    cdef bint done
    cdef double scale_max
    job.x1 = array_data(x1, "sdml_blas", "x1", typenum, 2, ANY, ANY, ANY, 0)
    n = cnp.PyArray_DIM(<cnp.ndarray>x1, 0)
    dim = cnp.PyArray_DIM(<cnp.ndarray>x1, 1)
    if n < 2:
        raise ValueError(f"sdml_blas: x1 must have at least 2 rows, got shape {x1.shape}")
    job.x2 = array_data(x2, "sdml_blas", "x2", typenum, 2, n, dim, ANY, 0)
    _outputs("sdml_blas", out, n, (grad_x1, grad_x2), ("grad_x1", "grad_x2"), dim, typenum,
             &sjob.out, grads)
    if dim == 0 or n > 2**31 - 1 or dim > 2**31 - 1:
        return False
    dtype = np.float32 if typenum == cnp.NPY_FLOAT32 else np.float64
    centre = np.ascontiguousarray(x1[0], dtype=dtype).copy()
    centre[~np.isfinite(centre)] = 0
    per_row, a, b, b_t, gram = _scratch_arrays(((5, n), (n, dim), (n, dim), (dim, n), (n, n)),
                                               (np.float64, dtype, dtype, dtype, dtype))
    job.n = n
    job.dim = dim
    job.a = cnp.PyArray_DATA(a)
    job.b = cnp.PyArray_DATA(b)
    job.b_t = cnp.PyArray_DATA(b_t)
    job.gram = cnp.PyArray_DATA(gram)
    job.norm_a = <double*>cnp.PyArray_DATA(per_row)
    job.norm_b = job.norm_a + n
    job.g_diag = job.norm_a + 2 * n
    job.row_sum = job.norm_a + 3 * n
    job.col_sum = job.norm_a + 4 * n
    # The softmax rows of the direct kernel, on the unpadded (n, n) matrix.
    sjob.n = n
    sjob.dim = dim
    sjob.padded = n
    sjob.work = job.gram
    sjob.y_diag = y_diag
    sjob.y_off = y_off
    sjob.entropy = entropy
    sjob.weight = weight
    sjob.out_grad = _per_row(out_grad, "sdml_blas", "out_grad", n)
    # NaN when out_grad or weight is: then the direct kernel runs.
    scale_max = abs(weight) * (1.0 if out_grad is None else float(np.max(np.abs(out_grad))))
    sjob.grad_x1 = grads[0]
    sjob.grad_x2 = grads[1]
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            done = _sdml_blas_run(<const float*>cnp.PyArray_DATA(centre), &sjob, &job,
                                  scale_max, n_threads)
        else:
            done = _sdml_blas_run(<const double*>cnp.PyArray_DATA(centre), &sjob, &job,
                                  scale_max, n_threads)
    return done
