# The kernels of _elementwise.pyx, compiled a second time with -mavx2 (see
# setup.py) and chosen at import by gluonloss._dispatch when the CPU has AVX2.
# No FMA: every operation rounds exactly as in the baseline build, so both
# give bitwise identical results (tests/test_dispatch.py checks it).
include "_elementwise.pyx"
