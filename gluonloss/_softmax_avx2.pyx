# The kernels of _softmax.pyx compiled with AVX2; see _elementwise_avx2.pyx.
include "_softmax.pyx"
