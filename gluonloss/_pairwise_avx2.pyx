# The kernels of _pairwise.pyx, compiled a second time with -mavx2 (see
# setup.py) and chosen at import by gluonloss._dispatch when the CPU has AVX2.
# No FMA: every operation rounds exactly as in the baseline build.
include "_pairwise.pyx"
