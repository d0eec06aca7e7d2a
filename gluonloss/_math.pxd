# Scalar numeric helpers shared by every kernel module.
#
# Each helper is an inline ``noexcept nogil`` function over the fused type
# ``floating``.  The float64 versions call libm (correctly rounded or nearly
# so).  The float32 versions are written branch-free -- selects instead of
# jumps, bit manipulation instead of frexp/ldexp -- so that GCC vectorises the
# loops that call them; libm's expf/log1pf are opaque calls that keep a loop
# scalar and cost about 10x more.  They are checked against libm in
# tests/test_math.py (all within 2 ulp).
#
# Special values are handled explicitly: NaN in gives NaN out, and the IEEE
# results for 0 and +-inf are produced by selects, not left to luck.
#
# The coefficients are standard minimax fits: the exp polynomial is the one
# published with Cephes' expf, the log polynomial the one of FreeBSD/musl's
# logf (Lg1..Lg4), both for the reduced ranges used below.

from libc.math cimport exp, fabs, fabsf, log, log1p, INFINITY, NAN
from libc.stdint cimport int32_t

from cython cimport floating


cdef extern from *:
    """
    #include <string.h>
    /* Bit casts through memcpy: well defined, and GCC vectorises them. */
    static inline int32_t gluonloss_f32_bits(float f) { int32_t i; memcpy(&i, &f, 4); return i; }
    static inline float gluonloss_f32_from_bits(int32_t i) { float f; memcpy(&f, &i, 4); return f; }
    """
    int32_t _f32_bits "gluonloss_f32_bits"(float f) noexcept nogil
    float _f32_from_bits "gluonloss_f32_from_bits"(int32_t i) noexcept nogil


cdef inline float _pow2f(int32_t n) noexcept nogil:
    """2**n for -126 <= n <= 127, built from its IEEE bits."""
    return _f32_from_bits((n + 127) << 23)


cdef inline float _expf(float x) noexcept nogil:
    """exp(x) in float32, vectorisable (max error about 1 ulp)."""
    # Clamp so that n stays within [-150, 128]: below -104 the result
    # rounds to 0, above 88.8 the scaling overflows to +inf as it should.
    cdef float xc = x if x < <float>88.8 else <float>88.8
    xc = xc if xc > <float>-104.0 else <float>-104.0
    # n = round(x / ln2) with the 1.5 * 2**23 trick (SSE2 has no round).
    cdef float shifted = xc * <float>1.44269504088896341 + <float>12582912.0
    cdef float n = shifted - <float>12582912.0
    # Cody-Waite: ln2 split so that n * hi is exact.
    cdef float r = (xc - n * <float>0.693359375) - n * <float>-2.12194440e-4
    cdef float poly = (((((<float>1.9875691500e-4 * r + <float>1.3981999507e-3) * r
                          + <float>8.3334519073e-3) * r + <float>4.1665795894e-2) * r
                        + <float>1.6666665459e-1) * r + <float>5.0000001201e-1)
    cdef float er = poly * r * r + r + <float>1.0
    # Scale in two steps so that subnormal results come out right.
    cdef int32_t k = <int32_t>n
    cdef int32_t k1 = k >> 1
    cdef float res = er * _pow2f(k1) * _pow2f(k - k1)
    return res if x == x else x


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


cdef inline floating vexp(floating x) noexcept nogil:
    if floating is float:
        return _expf(x)
    else:
        return exp(x)


cdef inline floating vlog(floating x) noexcept nogil:
    if floating is float:
        return _logf(x)
    else:
        return log(x)


cdef inline floating log1p_unit(floating e, floating u, floating inv_u) noexcept nogil:
    """log1p(e) for e in [0, 1], given u = 1 + e and inv_u = 1/u; NaN propagates."""
    if floating is float:
        return _log1pf_unit(e, u, inv_u)
    else:
        return log1p(e)


cdef inline floating vabs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline floating sign_or_nan(floating d) noexcept nogil:
    """sign(d) with sign(0) = 0 and sign(NaN) = NaN."""
    cdef floating s = <floating>1.0 if d > 0 else <floating>-1.0
    s = s if d != 0 else <floating>0.0
    return s if d == d else d


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
