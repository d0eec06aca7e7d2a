# The kernels of _elementwise.pyx compiled with AVX-512 (F, BW, DQ, VL); see _elementwise_avx2.pyx.
include "_elementwise.pyx"
