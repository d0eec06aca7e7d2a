# The kernels of _softmax.pyx compiled with AVX-512 (F, BW, DQ, VL); see _elementwise_avx2.pyx.
include "_softmax.pyx"
