# The kernels of _softmax.pyx compiled with -mavx2 (no FMA); see _elementwise_avx2.pyx.
include "_softmax.pyx"
