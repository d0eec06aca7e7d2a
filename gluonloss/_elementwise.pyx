"""Kernels of the elementwise losses: L2, L1, Huber, Hinge, SquaredHinge,
Logistic, SigmoidBinaryCrossEntropy and PoissonNLL.

Each loss is a per-element function l(p, y) with derivative dl/dp, averaged
over every sample.  The Python layer (``gluonloss/elementwise.py``) has
already validated everything and hands over:

* ``pred``, ``label``: C-contiguous ``(N, M)`` arrays of the compute dtype,
  the batch axis first;
* two per-element operands -- the elementwise sample weight and the BCE
  ``pos_weight`` -- each as a C-contiguous ``(R, M)`` array with R = N, or
  R = 1 when every sample shares it, or ``None`` for "all ones";
* ``scale`` and optional float64 length-N ``row_weight`` and ``out_grad``:
  with r_b = scale * row_weight[b] (row_weight absent: 1),
  out[b] = r_b * sum_j l_bj * w_bj and grad_bj = r_b * out_grad[b] * w_bj * dl_bj.

Work is split into items of at most ``BLOCK`` elements of one row.  Items
run in parallel (``prange``); inside an item ``LANES`` partial sums run side
by side (vectorisable, and a fixed order), and the items of one row are
combined in row order afterwards.  The split depends only on M, so results
are bitwise identical for every thread count.
"""

from cython cimport floating
from cython.parallel cimport prange
cimport numpy as cnp
import numpy as np

from gluonloss._kernel cimport (
    ANY, OPTIONAL, WRITABLE, array_data, float_typenum, lanes_fill, lanes_sum,
)
from gluonloss._math cimport (
    log1p_unit, mul_zero_wins, one_nan, sign_or_nan, vabs, vexp, vexp_nonpositive_exact, vlog,
    zero_unless_nan,
)

cnp.import_array()

cdef enum:
    LANES = 16     # independent partial sums inside a block
    BLOCK = 4096   # elements per work item
    STAGE = 64     # elements whose exps are computed ahead (a multiple of LANES)
    PREFETCH_AHEAD = 512   # elements between a stage and the one it prefetches

BLOCK_SIZE = BLOCK

# Loss kinds.  Each kind is a struct holding its parameters; as a fused type
# it selects the per-element formula at compile time, so every (kind, dtype)
# pair gets its own specialised, vectorised loop.
cdef enum:
    KIND_L2, KIND_L1, KIND_HUBER, KIND_HINGE, KIND_SQUARED_HINGE, KIND_LOGIT_BCE, KIND_PROB_BCE
    KIND_POISSON_LOGITS, KIND_POISSON_RATE, KIND_POISSON_LOGITS_FULL, KIND_POISSON_RATE_FULL

L2, L1, HUBER, HINGE, SQUARED_HINGE = KIND_L2, KIND_L1, KIND_HUBER, KIND_HINGE, KIND_SQUARED_HINGE
LOGIT_BCE, PROB_BCE = KIND_LOGIT_BCE, KIND_PROB_BCE
POISSON_LOGITS, POISSON_RATE = KIND_POISSON_LOGITS, KIND_POISSON_RATE
POISSON_LOGITS_FULL, POISSON_RATE_FULL = KIND_POISSON_LOGITS_FULL, KIND_POISSON_RATE_FULL

cdef struct L2Kind:
    char unused

cdef struct L1Kind:
    char unused

cdef struct HuberKind:
    double rho
    double inv_rho

cdef struct HingeKind:
    double margin

cdef struct SquaredHingeKind:
    double margin

cdef struct LogitBCEKind:
    # y' = label_scale * y + label_shift maps LogisticLoss's signed labels
    # {-1, 1} to {0, 1}; (1, 0) for binary labels.
    double label_scale
    double label_shift

cdef struct ProbBCEKind:
    char unused

# PoissonNLLLoss: pred is the log-rate (logits) or the rate; the _FULL kinds
# add the Stirling term (compute_full).  Separate kinds rather than a flag,
# so that each loop is compiled without the branch and stays vectorised.
cdef struct PoissonLogitsKind:
    char unused

cdef struct PoissonLogitsFullKind:
    char unused

cdef struct PoissonRateKind:
    double epsilon

cdef struct PoissonRateFullKind:
    double epsilon

ctypedef fused Kind:
    L2Kind
    L1Kind
    HuberKind
    HingeKind
    SquaredHingeKind
    LogitBCEKind
    ProbBCEKind
    PoissonLogitsKind
    PoissonLogitsFullKind
    PoissonRateKind
    PoissonRateFullKind


# ---------------------------------------------------------------------------
# Per-element loss and gradient.  Each returns l(p, y) and stores dl/dp in
# grad[0]; a caller that only wants the loss passes a dummy and the compiler
# drops the dead gradient code.  NaN anywhere gives NaN in both.

cdef inline floating closs_grad_l2(floating p, floating y, floating* grad) noexcept nogil:
    cdef floating d = p - y
    grad[0] = d
    return <floating>0.5 * d * d


cdef inline floating closs_grad_l1(floating p, floating y, floating* grad) noexcept nogil:
    cdef floating d = p - y
    grad[0] = sign_or_nan(d)          # 0 at p == y
    return vabs(d)


cdef inline floating closs_grad_huber(floating p, floating y, floating rho, floating inv_rho,
                                      floating* grad) noexcept nogil:
    # inv_rho = 1/rho: a multiply instead of a division (within 1 ulp of d/rho).
    cdef floating d = p - y
    cdef floating a = vabs(d)
    cdef bint linear = a > rho
    grad[0] = sign_or_nan(d) if linear else d * inv_rho
    return a - <floating>0.5 * rho if linear else (<floating>0.5 * inv_rho) * a * a


cdef inline floating closs_grad_hinge(floating p, floating y, floating margin,
                                      floating* grad) noexcept nogil:
    cdef floating t = margin - p * y
    cdef bint active = t > 0          # 0 gradient at the kink t == 0
    grad[0] = -y if active else zero_unless_nan(t)
    return t if active else zero_unless_nan(t)


cdef inline floating closs_grad_squared_hinge(floating p, floating y, floating margin,
                                              floating* grad) noexcept nogil:
    cdef floating t = margin - p * y
    cdef floating h = t if t > 0 else zero_unless_nan(t)
    grad[0] = <floating>-2.0 * y * h
    return h * h


cdef inline floating exp_minus_abs(floating p) noexcept nogil:
    """exp(-|p|), the one exponential of the logit BCE; NaN stays NaN."""
    return vexp_nonpositive_exact(-vabs(p))


cdef inline floating closs_grad_logit_bce(floating p, floating y, floating q, floating e,
                                          floating* grad) noexcept nogil:
    # l = max(p,0) - p*y + L*(log1p(e^-|p|) + max(-p,0)) - (L-1)*max(-p,0)
    # with L = 1 + (q-1)*y, rewritten as coef*|p| + L*log1p(e^-|p|) where
    # coef = 1-y for p >= 0 and q*y for p < 0.  Only exp(-|p|) <= 1 is ever
    # formed, and a zero coef gives the exact limit 0 at p = +-inf.
    # e = exp_minus_abs(p), computed by the caller (see _block_loss).
    cdef floating a = vabs(p)
    cdef floating denom = <floating>1.0 + e
    cdef floating inv = <floating>1.0 / denom
    cdef floating softplus = log1p_unit(e, denom, inv)
    cdef bint nonneg = p >= 0
    # sigmoid(+-|p|): 1/(1+e) and e/(1+e), each rounded once (e * inv would
    # round twice and lose an ulp where the gradient is tiny).
    cdef floating sig_small = e / denom
    cdef floating sig_p = inv if nonneg else sig_small    # sigmoid(p)
    cdef floating sig_m = sig_small if nonneg else inv    # sigmoid(-p)
    cdef floating coef = <floating>1.0 - y if nonneg else q * y
    # 1 - y + L*(sigmoid(p) - 1) = (1-y)*sigmoid(p) - q*y*sigmoid(-p): no
    # cancellation for hard labels, so the gradient keeps its tiny values
    # (e.g. -sigmoid(-30) for p = 30, y = 1) instead of rounding to 0.
    grad[0] = (<floating>1.0 - y) * sig_p - q * y * sig_m
    return mul_zero_wins(coef, a) + (<floating>1.0 + (q - <floating>1.0) * y) * softplus


cdef inline floating closs_grad_prob_bce(floating p, floating y, floating q,
                                         floating* grad) noexcept nogil:
    cdef floating eps = <floating>1e-12
    cdef floating pe = p + eps
    cdef floating me = <floating>1.0 - p + eps
    cdef floating not_y = <floating>1.0 - y
    grad[0] = not_y / me - y * q / pe
    return -(y * q * vlog(pe) + not_y * vlog(me))


cdef inline floating stirling_or_zero(floating t) noexcept nogil:
    """t log t - t + log(2 pi t)/2 for t > 1, else 0 (NaN stays NaN).

    Stirling's approximation of log(t!), PoissonNLLLoss's compute_full term.
    Only t > 1 gets it, so t = 0 keeps a finite loss.
    """
    cdef floating ts = t if t > 1 else <floating>2.0     # a safe argument where unused
    cdef floating log_t = vlog(ts)
    # log(2 pi t)/2 = log(t)/2 + log(2 pi)/2: one logarithm instead of two
    cdef floating s = (ts + <floating>0.5) * log_t - ts + <floating>0.91893853320467274
    return s if t > 1 else zero_unless_nan(t)


cdef inline floating closs_grad_poisson_logits(floating p, floating t, bint compute_full,
                                               floating* grad) noexcept nogil:
    # pred is log(rate): l = e^p - t p
    cdef floating e = vexp(p)
    grad[0] = e - t
    if compute_full:
        return e - t * p + stirling_or_zero(t)
    return e - t * p


cdef inline floating closs_grad_poisson_rate(floating p, floating t, floating eps,
                                             bint compute_full, floating* grad) noexcept nogil:
    # pred is the rate itself: l = p - t log(p + eps)
    cdef floating pe = p + eps
    grad[0] = <floating>1.0 - t / pe
    if compute_full:
        return p - t * vlog(pe) + stirling_or_zero(t)
    return p - t * vlog(pe)


cdef inline floating closs_grad(Kind kind, floating p, floating y, floating q, floating e,
                                floating* grad) noexcept nogil:
    """l(p, y) and dl/dp; e is staged_exp(kind, p), computed ahead by the caller."""
    if Kind is L2Kind:
        return closs_grad_l2(p, y, grad)
    elif Kind is L1Kind:
        return closs_grad_l1(p, y, grad)
    elif Kind is HuberKind:
        return closs_grad_huber(p, y, <floating>kind.rho, <floating>kind.inv_rho, grad)
    elif Kind is HingeKind:
        return closs_grad_hinge(p, y, <floating>kind.margin, grad)
    elif Kind is SquaredHingeKind:
        return closs_grad_squared_hinge(p, y, <floating>kind.margin, grad)
    elif Kind is LogitBCEKind:
        return closs_grad_logit_bce(
            p, <floating>kind.label_scale * y + <floating>kind.label_shift, q, e, grad)
    elif Kind is PoissonLogitsKind:
        return closs_grad_poisson_logits(p, y, False, grad)
    elif Kind is PoissonLogitsFullKind:
        return closs_grad_poisson_logits(p, y, True, grad)
    elif Kind is PoissonRateKind:
        return closs_grad_poisson_rate(p, y, <floating>kind.epsilon, False, grad)
    elif Kind is PoissonRateFullKind:
        return closs_grad_poisson_rate(p, y, <floating>kind.epsilon, True, grad)
    else:
        return closs_grad_prob_bce(p, y, q, grad)


# ---------------------------------------------------------------------------
# Block loops: one contiguous run of at most BLOCK elements of one row.

# Where q and w come from: read from their arrays, or the constant 1 when
# the loss has no pos_weight and no elementwise weight (the common case).
# As a fused type the choice is made at compile time, so the ones are folded
# away instead of being two more streams read and multiplied -- the same
# bits as multiplying by ones.
cdef struct GivenStreams:
    char unused

cdef struct UnitStreams:
    char unused

ctypedef fused Streams:
    GivenStreams
    UnitStreams


cdef inline floating _stream(Streams streams, const floating* v, Py_ssize_t i) noexcept nogil:
    if Streams is UnitStreams:
        return <floating>1
    else:
        return v[i]


cdef inline floating staged_exp(Kind kind, floating p) noexcept nogil:
    """The exponential a kind computes ahead of its loss and gradient, or 0."""
    if Kind is LogitBCEKind:
        return exp_minus_abs(p)
    else:
        return 0


cdef inline floating _staged_value(Kind kind, const floating* staged, Py_ssize_t k) noexcept nogil:
    if Kind is LogitBCEKind:
        return staged[k]
    else:
        return 0


cdef inline bint _memory_bound(Kind kind) noexcept nogil:
    """The five kinds without transcendentals, whose loops run at memory speed
    (a constant for each specialisation)."""
    return (Kind is L2Kind or Kind is L1Kind or Kind is HuberKind or Kind is HingeKind
            or Kind is SquaredHingeKind)


cdef inline floating _grad_value(Kind kind, floating g) noexcept nogil:
    """g as stored by the vector loop: NaN as the one quiet NaN (one_nan) for the
    kinds with transcendentals, where two NaNs meet in one operation and the
    compiler picks the operand order per loop.  The five memory-bound kinds
    store g as it is: the extra select costs L2Loss a third of its speed."""
    if _memory_bound(kind):
        return g
    return one_nan(g)


cdef extern from *:
    void __builtin_prefetch(const void* address) noexcept nogil


cdef inline void _prefetch_stage(const floating* p, const floating* y) noexcept nogil:
    """Ask for the cache lines of p and y that the stage PREFETCH_AHEAD elements
    on will read (a prefetch never faults, past the end of an array too)."""
    cdef Py_ssize_t offset
    for offset in range(0, STAGE * sizeof(floating), 64):
        __builtin_prefetch(<const char*>(p + PREFETCH_AHEAD) + offset)
        __builtin_prefetch(<const char*>(y + PREFETCH_AHEAD) + offset)


# Whether a block loop also writes the gradient; as a fused type, the loss-only
# loop is compiled without the gradient's code.
cdef struct LossOnly:
    char unused

cdef struct LossAndGrad:
    char unused

ctypedef fused Output:
    LossOnly
    LossAndGrad


# The logit BCE's per-element work is one long dependency chain (an exp,
# then a log1p and divisions on its result): in a single loop the CPU can
# keep only two or three elements' chains in flight and stalls on latency.
# Its exps are therefore computed ahead, STAGE elements at a time, in a loop
# of their own, and the loss loop reads them back: the same operations in
# the same order, so the same bits, about 1.4x faster.  Other kinds skip the
# staging loop at compile time.
#
# The same long loop bodies keep the out-of-order window a few cache lines
# deep, and the hardware prefetcher does not always run further ahead (on a
# 2-core AMD EPYC VM the from-probability BCE forward read 2 GB/s on one
# thread): every kind with transcendentals prefetches pred and label one
# PREFETCH_AHEAD ahead per stage.  Nothing computed changes.

cdef inline double _block_loss(Kind kind, Streams streams, Output output, const floating* p,
                               const floating* y, const floating* q, const floating* w,
                               Py_ssize_t n, floating grad_scale, floating* g) noexcept nogil:
    """sum_j l(p_j, y_j) * w_j in a fixed order, and with LossAndGrad also
    g_j = grad_scale * w_j * dl/dp_j in the same pass.

    NaNs in the loss and in the gradient's tail are stored as the one quiet
    NaN (one_nan; for the vector loop's gradient see _grad_value): which of two
    NaN operands an operation keeps is the compiler's choice, and differs
    between loops.
    """
    cdef floating acc[LANES]
    cdef floating staged[STAGE]
    cdef floating d
    cdef Py_ssize_t chunk, start, stop, c, i, j, n_vec = n - n % LANES
    cdef double total
    lanes_fill(acc, LANES, 0)
    for chunk in range((n_vec + STAGE - 1) // STAGE):
        start = chunk * STAGE
        stop = min(start + <Py_ssize_t>STAGE, n_vec)
        if not _memory_bound(kind):
            _prefetch_stage(p + start, y + start)
        if Kind is LogitBCEKind:
            for i in range(start, stop):
                staged[i - start] = staged_exp(kind, p[i])
        for c in range(start // LANES, stop // LANES):
            i = c * LANES
            for j in range(LANES):
                acc[j] += (closs_grad(kind, p[i + j], y[i + j], _stream(streams, q, i + j),
                                      _staged_value(kind, staged, i - start + j), &d)
                           * _stream(streams, w, i + j))
                if Output is LossAndGrad:
                    g[i + j] = _grad_value(kind, grad_scale * _stream(streams, w, i + j) * d)
    total = lanes_sum(acc, LANES, 0.0)
    for i in range(n_vec, n):
        total += closs_grad(kind, p[i], y[i], _stream(streams, q, i), staged_exp(kind, p[i]),
                            &d) * _stream(streams, w, i)
        if Output is LossAndGrad:
            g[i] = one_nan(grad_scale * _stream(streams, w, i) * d)
    return total


# ---------------------------------------------------------------------------
# Driver.

cdef struct Operand:
    const void* data
    Py_ssize_t row_stride     # elements between rows: M, or 0 if rows share it
    Py_ssize_t block_stride   # BLOCK, or 0 for the built-in block of ones

cdef struct Job:
    Py_ssize_t n_rows
    Py_ssize_t n_cols
    Py_ssize_t n_blocks       # work items per row
    const void* pred
    const void* label
    Operand aux               # BCE pos_weight
    Operand weight            # elementwise sample weight
    double scale
    const double* row_weight  # NULL: all ones
    const double* out_grad    # NULL: all ones
    void* out                 # NULL: no loss wanted
    void* grad                # NULL: no gradient wanted
    double* partial           # n_rows * n_blocks block sums when n_blocks > 1


cdef float _ONES_F32[BLOCK]
cdef double _ONES_F64[BLOCK]
for _i in range(BLOCK):
    _ONES_F32[_i] = 1.0
    _ONES_F64[_i] = 1.0


cdef inline double _row_scale(const Job* job, Py_ssize_t row) noexcept nogil:
    return job.scale if job.row_weight == NULL else job.scale * job.row_weight[row]


cdef inline void _work_item(Kind kind, const floating* pred, const Job* job,
                            Py_ssize_t item) noexcept nogil:
    cdef Py_ssize_t row = item // job.n_blocks
    cdef Py_ssize_t block = item % job.n_blocks
    cdef Py_ssize_t start = block * BLOCK
    cdef Py_ssize_t n = min(<Py_ssize_t>BLOCK, job.n_cols - start)
    cdef Py_ssize_t at = row * job.n_cols + start
    cdef const floating* q = (<const floating*>job.aux.data + row * job.aux.row_stride
                              + block * job.aux.block_stride)
    cdef const floating* w = (<const floating*>job.weight.data + row * job.weight.row_stride
                              + block * job.weight.block_stride)
    cdef double row_scale = _row_scale(job, row)
    cdef double s
    cdef const floating* y = <const floating*>job.label + at
    cdef floating* g = <floating*>job.grad + at
    cdef bint unit = job.aux.block_stride == 0 and job.weight.block_stride == 0
    cdef floating grad_scale
    cdef GivenStreams given
    cdef UnitStreams ones
    cdef LossOnly loss_only
    cdef LossAndGrad loss_and_grad
    if job.grad == NULL:
        if unit:
            s = _block_loss(kind, ones, loss_only, pred + at, y, q, w, n, 0, g)
        else:
            s = _block_loss(kind, given, loss_only, pred + at, y, q, w, n, 0, g)
    else:
        grad_scale = <floating>(row_scale * (1.0 if job.out_grad == NULL else job.out_grad[row]))
        if unit:
            s = _block_loss(kind, ones, loss_and_grad, pred + at, y, q, w, n, grad_scale, g)
        else:
            s = _block_loss(kind, given, loss_and_grad, pred + at, y, q, w, n, grad_scale, g)
    if job.n_blocks > 1:
        job.partial[item] = s
    elif job.out != NULL:
        (<floating*>job.out)[row] = <floating>one_nan(row_scale * s)


cdef void _run(Kind kind, const floating* pred, const Job* job, int n_threads) noexcept nogil:
    cdef Py_ssize_t item, row, block
    cdef Py_ssize_t n_items = job.n_rows * job.n_blocks
    cdef double s
    if n_threads > 1:
        for item in prange(n_items, schedule="static", num_threads=n_threads):
            _work_item(kind, pred, job, item)
    else:
        for item in range(n_items):
            _work_item(kind, pred, job, item)
    if job.n_blocks > 1 and job.out != NULL:
        for row in range(job.n_rows):
            s = 0.0
            for block in range(job.n_blocks):
                s += job.partial[row * job.n_blocks + block]
            (<floating*>job.out)[row] = <floating>one_nan(_row_scale(job, row) * s)


cdef void _dispatch(int kind_id, double param0, double param1, const floating* pred,
                    const Job* job, int n_threads) noexcept nogil:
    cdef L2Kind l2
    cdef L1Kind l1
    cdef HuberKind huber
    cdef HingeKind hinge
    cdef SquaredHingeKind squared_hinge
    cdef LogitBCEKind logit_bce
    cdef ProbBCEKind prob_bce
    cdef PoissonLogitsKind poisson_logits
    cdef PoissonLogitsFullKind poisson_logits_full
    cdef PoissonRateKind poisson_rate
    cdef PoissonRateFullKind poisson_rate_full
    if kind_id == KIND_L2:
        _run(l2, pred, job, n_threads)
    elif kind_id == KIND_L1:
        _run(l1, pred, job, n_threads)
    elif kind_id == KIND_HUBER:
        huber.rho = param0
        huber.inv_rho = 1.0 / param0
        _run(huber, pred, job, n_threads)
    elif kind_id == KIND_HINGE:
        hinge.margin = param0
        _run(hinge, pred, job, n_threads)
    elif kind_id == KIND_SQUARED_HINGE:
        squared_hinge.margin = param0
        _run(squared_hinge, pred, job, n_threads)
    elif kind_id == KIND_LOGIT_BCE:
        logit_bce.label_scale = param0
        logit_bce.label_shift = param1
        _run(logit_bce, pred, job, n_threads)
    elif kind_id == KIND_POISSON_LOGITS:      # param0 (epsilon) applies to rates only
        _run(poisson_logits, pred, job, n_threads)
    elif kind_id == KIND_POISSON_LOGITS_FULL:
        _run(poisson_logits_full, pred, job, n_threads)
    elif kind_id == KIND_POISSON_RATE:
        poisson_rate.epsilon = param0
        _run(poisson_rate, pred, job, n_threads)
    elif kind_id == KIND_POISSON_RATE_FULL:
        poisson_rate_full.epsilon = param0
        _run(poisson_rate_full, pred, job, n_threads)
    else:
        _run(prob_bce, pred, job, n_threads)


cdef Operand _operand(object arr, str name, int typenum, Py_ssize_t n_rows,
                      Py_ssize_t n_cols) except *:
    """A per-element operand: (1 or n_rows, n_cols) of the compute dtype, or None (ones)."""
    cdef Operand op
    if arr is None:
        op.data = (<const void*>_ONES_F32 if typenum == cnp.NPY_FLOAT32
                   else <const void*>_ONES_F64)
        op.row_stride = 0
        op.block_stride = 0
        return op
    op.data = array_data(arr, "elementwise", name, typenum, 2, ANY, n_cols, ANY, 0)
    if cnp.PyArray_DIM(<cnp.ndarray>arr, 0) not in (1, n_rows):
        raise ValueError(f"elementwise: {name} must have 1 or {n_rows} rows, got shape "
                         f"{arr.shape}")
    op.row_stride = n_cols if cnp.PyArray_DIM(<cnp.ndarray>arr, 0) > 1 else 0
    op.block_stride = BLOCK
    return op


def elementwise(*, int kind_id, double param0, double param1, pred, label, aux, weight,
                double scale, row_weight, out_grad, out, grad, int n_threads):
    """Run one elementwise loss; see the module docstring for the contract.

    pred, label           : (N, M) C-contiguous, float32 or float64 (the same).
    aux, weight           : (1 or N, M) C-contiguous of that dtype, or None (ones).
    row_weight, out_grad  : (N,) C-contiguous float64, or None (ones).
    out                   : (N,) of the dtype or None.
    grad                  : (N, M) of the dtype or None.

    Every array is checked against this contract (TypeError or ValueError).
    """
    cdef int typenum = float_typenum(pred, "elementwise", "pred")
    cdef Job job
    cdef cnp.ndarray partial
    if not 0 <= kind_id <= KIND_POISSON_RATE_FULL:
        raise ValueError(f"elementwise: unknown kind_id {kind_id}")
    job.pred = array_data(pred, "elementwise", "pred", typenum, 2, ANY, ANY, ANY, 0)
    job.n_rows = cnp.PyArray_DIM(<cnp.ndarray>pred, 0)
    job.n_cols = cnp.PyArray_DIM(<cnp.ndarray>pred, 1)
    job.n_blocks = (job.n_cols + BLOCK - 1) // BLOCK
    job.label = array_data(label, "elementwise", "label", typenum, 2, job.n_rows, job.n_cols,
                           ANY, 0)
    job.aux = _operand(aux, "aux", typenum, job.n_rows, job.n_cols)
    job.weight = _operand(weight, "weight", typenum, job.n_rows, job.n_cols)
    job.scale = scale
    job.row_weight = <const double*>array_data(row_weight, "elementwise", "row_weight",
                                               cnp.NPY_FLOAT64, 1, job.n_rows, ANY, ANY,
                                               OPTIONAL)
    job.out_grad = <const double*>array_data(out_grad, "elementwise", "out_grad",
                                             cnp.NPY_FLOAT64, 1, job.n_rows, ANY, ANY,
                                             OPTIONAL)
    job.out = array_data(out, "elementwise", "out", typenum, 1, job.n_rows, ANY, ANY,
                         OPTIONAL | WRITABLE)
    job.grad = array_data(grad, "elementwise", "grad", typenum, 2, job.n_rows, job.n_cols,
                          ANY, OPTIONAL | WRITABLE)
    job.partial = NULL
    if job.n_blocks > 1:
        partial = np.empty(job.n_rows * job.n_blocks)
        job.partial = <double*>cnp.PyArray_DATA(partial)
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            _dispatch(kind_id, param0, param1, <const float*>job.pred, &job, n_threads)
        else:
            _dispatch(kind_id, param0, param1, <const double*>job.pred, &job, n_threads)


include "_elementwise_fast.pxi"
