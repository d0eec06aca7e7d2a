# The kernels of _pairwise.pyx compiled with AVX-512 (F, BW, DQ, VL); see _elementwise_avx2.pyx.
include "_pairwise.pyx"
