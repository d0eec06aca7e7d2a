# The kernels of _pairwise.pyx compiled with AVX2; see _elementwise_avx2.pyx.
include "_pairwise.pyx"
