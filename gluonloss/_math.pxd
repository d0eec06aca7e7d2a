# Scalar numeric helpers shared by every kernel module.
#
# Each helper is an inline ``noexcept nogil`` function over the fused type
# ``floating``.  exp, log and log1p on [0, 1] are our own, in float32 and
# float64, written branch-free -- selects instead of jumps, bit manipulation
# instead of frexp/ldexp -- so that GCC vectorises the loops that call them;
# libm's calls are opaque and keep a loop scalar, which costs 5-10x.  They
# are checked against libm in tests/test_math.py (within 1 ulp).
#
# Special values are handled explicitly: NaN in gives NaN out, and the IEEE
# results for 0 and +-inf are produced by selects, not left to luck.
#
# The coefficients are standard minimax fits: float32 exp uses the
# polynomial published with Cephes' expf, float32 log the one of
# FreeBSD/musl's logf (Lg1..Lg4); float64 exp and log use fdlibm's (P1..P5
# with its rational form, Lg1..Lg7), each for the reduced range used below.
#
# Integer work on float64 bits stays within what SSE2/AVX2 can do on vectors
# (add, shift, and/or of int64): int64 <-> double conversions, which they
# lack, are done with the 1.5 * 2**52 rounding constant instead.

from libc.math cimport fabs, fabsf, INFINITY, NAN
from libc.stdint cimport int32_t, int64_t

from cython cimport floating


cdef extern from *:
    """
    #include <string.h>
    /* Bit casts through memcpy: well defined, and GCC vectorises them. */
    static inline int32_t gluonloss_f32_bits(float x)
        { int32_t i; memcpy(&i, &x, 4); return i; }
    static inline float gluonloss_f32_from_bits(int32_t i)
        { float x; memcpy(&x, &i, 4); return x; }
    static inline int64_t gluonloss_f64_bits(double x)
        { int64_t i; memcpy(&i, &x, 8); return i; }
    static inline double gluonloss_f64_from_bits(int64_t i)
        { double x; memcpy(&x, &i, 8); return x; }
    """
    int32_t _f32_bits "gluonloss_f32_bits"(float f) noexcept nogil
    float _f32_from_bits "gluonloss_f32_from_bits"(int32_t i) noexcept nogil
    int64_t _f64_bits "gluonloss_f64_bits"(double f) noexcept nogil
    double _f64_from_bits "gluonloss_f64_from_bits"(int64_t i) noexcept nogil


cdef inline float _pow2f(int32_t n) noexcept nogil:
    """2**n for -126 <= n <= 127, built from its IEEE bits."""
    return _f32_from_bits((n + 127) << 23)


cdef inline float _expf_poly(float xc, float* n) noexcept nogil:
    """exp(r) for xc = n ln2 + r, |r| <= ln2/2, and n; NaN gives NaN."""
    # n = round(x / ln2) with the 1.5 * 2**23 trick (SSE2 has no round).
    cdef float shifted = xc * <float>1.44269504088896341 + <float>12582912.0
    n[0] = shifted - <float>12582912.0
    # Cody-Waite: ln2 split so that n * hi is exact.
    cdef float r = (xc - n[0] * <float>0.693359375) - n[0] * <float>-2.12194440e-4
    cdef float poly = (((((<float>1.9875691500e-4 * r + <float>1.3981999507e-3) * r
                          + <float>8.3334519073e-3) * r + <float>4.1665795894e-2) * r
                        + <float>1.6666665459e-1) * r + <float>5.0000001201e-1)
    return poly * r * r + r + <float>1.0


cdef inline float _expf(float x) noexcept nogil:
    """exp(x) in float32, vectorisable (max error about 1 ulp)."""
    # Clamp so that n stays within [-150, 128]: below -104 the result
    # rounds to 0, above 88.8 the scaling overflows to +inf as it should.
    # Written "not (x > c)" so that a NaN passes both clamps and carries
    # through the arithmetic to the result (no select at the end).
    cdef float xc = x if not x > <float>88.8 else <float>88.8
    xc = xc if not xc < <float>-104.0 else <float>-104.0
    cdef float n
    cdef float er = _expf_poly(xc, &n)
    # Scale in two steps so that subnormal results come out right.
    cdef int32_t k = <int32_t>n
    cdef int32_t k1 = k >> 1
    return er * _pow2f(k1) * _pow2f(k - k1)


cdef inline float _expf_nonpositive_exact(float x) noexcept nogil:
    """exp(x) for x <= 0 (or NaN) in float32: _expf's results, fewer steps.

    n <= 0 here, so 2**(n + 24) is a normal number: er * 2**(n + 24) is
    exact and the one rounding happens in the final * 2**-24 -- the same
    result as _expf's two-step scaling, subnormals included.
    """
    cdef float xc = x if not x < <float>-104.0 else <float>-104.0   # NaN passes
    cdef float n
    cdef float er = _expf_poly(xc, &n)
    return er * _pow2f(<int32_t>n + 24) * <float>5.9604644775390625e-08   # 2**-24


cdef inline float _log1pf_reduced(float f, float k, float tail) noexcept nogil:
    """k*ln2 + log1p(f) + tail for f in [sqrt(1/2)-1, sqrt(2)-1], tail tiny."""
    cdef float s = f / (<float>2.0 + f)
    cdef float z = s * s
    cdef float w = z * z
    cdef float t1 = w * (<float>0.40000972152 + w * <float>0.24279078841)
    cdef float t2 = z * (<float>0.66666662693 + w * <float>0.28498786688)
    cdef float hfsq = <float>0.5 * f * f
    # log1p(f) = f - (hfsq - s*(hfsq + R)): f is exact, the rest is small.
    return k * <float>0.693359375 - (
        (hfsq - (s * (hfsq + t1 + t2) + (k * <float>-2.12194440e-4 + tail))) - f)


cdef inline float _logf(float x) noexcept nogil:
    """log(x) in float32, vectorisable, IEEE results for 0, <0, inf, NaN."""
    cdef bint subnormal = x < <float>1.17549435e-38
    cdef int32_t bits = _f32_bits(x * <float>8388608.0 if subnormal else x)
    cdef int32_t bias = <int32_t>150 if subnormal else <int32_t>127   # int32: keeps it vectorisable
    cdef int32_t e = ((bits >> 23) & 0xff) - bias
    cdef float mant = _f32_from_bits((bits & 0x007fffff) | 0x3f800000)   # [1, 2)
    cdef bint high = mant > <float>1.41421356
    cdef float m = mant * <float>0.5 if high else mant   # m in [0.707, 1.414]
    cdef float k = <float>e + (<float>1.0 if high else <float>0.0)
    cdef float res = _log1pf_reduced(m - <float>1.0, k, <float>0.0)
    res = res if x < INFINITY else x                 # +inf and NaN
    res = res if x != 0 else -INFINITY
    return NAN if x < 0 else res


cdef inline float _log1pf_unit(float e, float u, float inv_u) noexcept nogil:
    """log1p(e) for e in [0, 1] (or NaN) in float32, vectorisable.

    u = 1 + e and inv_u = 1 / u are passed in: callers that also need the
    sigmoid 1/(1 + e) then pay for one division, not two.
    """
    # u - 1 is exact, so tail is the rounding error of 1 + e, divided by u.
    cdef float tail = (e - (u - <float>1.0)) * inv_u
    cdef bint high = u > <float>1.41421356
    cdef float m = u * <float>0.5 if high else u
    return _log1pf_reduced(m - <float>1.0, <float>1.0 if high else <float>0.0, tail)


# ---------------------------------------------------------------------------
# float64

cdef extern from *:
    """
    #define GLUONLOSS_ROUNDER 6755399441055744.0        /* 1.5 * 2**52 */
    #define GLUONLOSS_LN2_HI 6.93147180369123816490e-01  /* low 21 bits zero: n * hi exact */
    #define GLUONLOSS_LN2_LO 1.90821492927058770002e-10
    """
    const double _ROUNDER "GLUONLOSS_ROUNDER"
    const double _LN2_HI "GLUONLOSS_LN2_HI"
    const double _LN2_LO "GLUONLOSS_LN2_LO"


cdef inline int64_t _small_int_f64(double n) noexcept nogil:
    """An integer-valued double (|n| < 2**51) as int64, without cvttpd2qq."""
    return _f64_bits(n + _ROUNDER) - _f64_bits(_ROUNDER)


cdef inline double _exp_f64(double x) noexcept nogil:
    """exp(x) in float64, vectorisable (fdlibm's method, < 1 ulp)."""
    cdef double xc = x if x < 709.8 else 709.8
    xc = xc if xc > -745.2 else -745.2
    cdef double n = (xc * 1.44269504088896338700 + _ROUNDER) - _ROUNDER
    cdef double hi = xc - n * _LN2_HI
    cdef double lo = n * _LN2_LO
    cdef double r = hi - lo
    cdef double t = r * r
    cdef double c = r - t * (
        1.66666666666666019037e-01 + t * (
            -2.77777777770155933842e-03 + t * (
                6.61375632143793436117e-05 + t * (
                    -1.65339022054652515390e-06 + t * 4.13813679705723846039e-08))))
    cdef double y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    # Scale by 2**n in two steps at both ends of the range, so that results
    # near overflow stay finite and subnormal results come out right.
    cdef bint deep = n < -1020.0
    cdef bint high = n > 1020.0
    cdef double n_main = n + 54.0 if deep else (n - 1.0 if high else n)
    cdef double post = 5.5511151231257827e-17 if deep else (2.0 if high else 1.0)
    cdef double res = y * _f64_from_bits((_small_int_f64(n_main) + 1023) << 52) * post
    return res if x == x else x


cdef inline double _log1p_f64_reduced(double f, double k, double tail) noexcept nogil:
    """k*ln2 + log1p(f) + tail for f in [sqrt(1/2)-1, sqrt(2)-1], tail tiny."""
    cdef double s = f / (2.0 + f)
    cdef double z = s * s
    cdef double w = z * z
    cdef double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01
                                                          + w * 1.531383769920937332e-01))
    cdef double t2 = z * (6.666666666666735130e-01 + w * (
        2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)))
    cdef double hfsq = 0.5 * f * f
    return k * _LN2_HI - ((hfsq - (s * (hfsq + t1 + t2) + (k * _LN2_LO + tail))) - f)


cdef inline double _log_f64(double x) noexcept nogil:
    """log(x) in float64, vectorisable, IEEE results for 0, <0, inf, NaN."""
    cdef bint subnormal = x < 2.2250738585072014e-308
    cdef int64_t bits = _f64_bits(x * 18014398509481984.0 if subnormal else x)   # 2**54
    # The biased exponent as a double: 2**52 + e has e in its low bits.
    cdef double e = _f64_from_bits(((bits >> 52) & <int64_t>0x7ff)
                                   | <int64_t>0x4330000000000000) - 4503599627370496.0
    cdef double mant = _f64_from_bits((bits & <int64_t>0x000fffffffffffff)
                                      | <int64_t>0x3ff0000000000000)   # [1, 2)
    cdef bint high = mant > 1.4142135623730951
    cdef double m = mant * 0.5 if high else mant
    cdef double k = e - (1077.0 if subnormal else 1023.0) + (1.0 if high else 0.0)
    cdef double res = _log1p_f64_reduced(m - 1.0, k, 0.0)
    res = res if x < INFINITY else x                 # +inf and NaN
    res = res if x != 0 else -INFINITY
    return NAN if x < 0 else res


cdef inline double _log1p_f64_unit(double e, double u, double inv_u) noexcept nogil:
    """log1p(e) for e in [0, 1] (or NaN) in float64, given u = 1 + e, inv_u = 1/u."""
    cdef double tail = (e - (u - 1.0)) * inv_u
    cdef bint high = u > 1.4142135623730951
    cdef double m = u * 0.5 if high else u
    return _log1p_f64_reduced(m - 1.0, 1.0 if high else 0.0, tail)


# ---------------------------------------------------------------------------
# exp on (-inf, 0], for softmax: exp(x - max).  In float32: no overflow to
# guard against and one scaling step (float64 reuses _exp_f64).  Results
# below the smallest normal number (x < -87.3 in float32, x < -708.3 in
# float64) are flushed to 0, which no softmax sum or gradient can tell apart
# (they sit next to a term equal to 1); float32 never forms a subnormal, so
# no slow microcode assists either.

cdef inline float _expf_nonpositive(float x) noexcept nogil:
    """exp(x) for x <= 0 (-inf gives 0, NaN gives NaN), 0 below -87.33."""
    # "not (x < c)": a NaN passes the clamp and the flush and stays NaN.
    cdef float xc = x if not x < <float>-87.33 else <float>-87.33
    cdef float n                                                # in [-126, 0]
    cdef float res = _expf_poly(xc, &n) * _pow2f(<int32_t>n)
    return res if not x < <float>-87.33 else <float>0.0


cdef inline double _exp_f64_nonpositive(double x) noexcept nogil:
    """exp(x) for x <= 0 (-inf gives 0, NaN gives NaN), 0 below -708.3."""
    return 0.0 if x < -708.3 else _exp_f64(x)


# ---------------------------------------------------------------------------
# Fused front ends: each picks its float32 or float64 version at compile time.

cdef inline floating vexp(floating x) noexcept nogil:
    return _expf(x) if floating is float else _exp_f64(x)


cdef inline floating vexp_nonpositive_exact(floating x) noexcept nogil:
    """exp(x) for x <= 0 or NaN, exactly vexp(x) (subnormal results kept)."""
    return _expf_nonpositive_exact(x) if floating is float else _exp_f64(x)


cdef inline floating vexp_nonpositive(floating x) noexcept nogil:
    """exp(x) for x <= 0, flushing results below the smallest normal to 0."""
    return _expf_nonpositive(x) if floating is float else _exp_f64_nonpositive(x)


cdef inline floating vlog(floating x) noexcept nogil:
    return _logf(x) if floating is float else _log_f64(x)


cdef inline floating log1p_unit(floating e, floating u, floating inv_u) noexcept nogil:
    """log1p(e) for e in [0, 1], given u = 1 + e and inv_u = 1/u; NaN propagates."""
    return _log1pf_unit(e, u, inv_u) if floating is float else _log1p_f64_unit(e, u, inv_u)


cdef inline floating vabs(floating x) noexcept nogil:
    return fabsf(x) if floating is float else fabs(x)


cdef inline floating sign_or_nan(floating d) noexcept nogil:
    """sign(d) with sign(0) = 0 and sign(NaN) = NaN."""
    cdef floating s = <floating>1.0 if d > 0 else <floating>-1.0
    s = s if d != 0 else <floating>0.0
    return s if d == d else d


cdef inline floating one_nan(floating v) noexcept nogil:
    """v, or the one quiet NaN when v is NaN.

    Where two NaNs meet in one operation, x86 keeps the first operand's, and
    which operand comes first is the compiler's choice, which differs between
    the kernel builds: a kernel that stores such results through this gives
    the same bits in every build.
    """
    return v if v == v else <floating>NAN


cdef inline floating zero_unless_nan(floating t) noexcept nogil:
    """0, or NaN when t is NaN: the gradient of a branch that is switched off."""
    return <floating>0.0 if t == t else t


cdef inline floating mul_zero_wins(floating c, floating a) noexcept nogil:
    """c * a, but exactly 0 when c == 0 even for a = +-inf.

    Used for terms like (1 - y) * |p| whose limit is 0 when the coefficient
    vanishes; callers make sure a NaN in ``a`` still reaches the result
    through another term.
    """
    return <floating>0.0 if c == 0 else c * a


# ---------------------------------------------------------------------------
# log on the normal numbers only, for hot loops that know their argument is
# finite, positive and normal (CTC's log-sum-exp: a sum in [1, 3]): no
# subnormal scaling, no special-value selects.  float64 uses _log_f64.

cdef inline float _logf_normal(float x) noexcept nogil:
    """log(x) for finite, positive, normal x: _logf without its special cases."""
    cdef int32_t bits = _f32_bits(x)
    cdef int32_t e = ((bits >> 23) & 0xff) - 127
    cdef float mant = _f32_from_bits((bits & 0x007fffff) | 0x3f800000)   # [1, 2)
    cdef bint high = mant > <float>1.41421356
    cdef float m = mant * <float>0.5 if high else mant
    cdef float k = <float>e + (<float>1.0 if high else <float>0.0)
    return _log1pf_reduced(m - <float>1.0, k, <float>0.0)


cdef inline floating log_normal(floating x) noexcept nogil:
    """log(x) for finite, positive, normal x only (garbage otherwise, even for NaN)."""
    return _logf_normal(x) if floating is float else _log_f64(x)
