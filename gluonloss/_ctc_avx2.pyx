# The kernels of _ctc.pyx compiled with AVX2; see _elementwise_avx2.pyx.
include "_ctc.pyx"
