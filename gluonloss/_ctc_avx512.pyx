# The kernels of _ctc.pyx compiled with AVX-512 (F, BW, DQ, VL); see _elementwise_avx2.pyx.
include "_ctc.pyx"
