# The kernel of _ctc.pyx, compiled a second time with -mavx2 (see setup.py)
# and chosen at import by gluonloss._dispatch when the CPU has AVX2.
include "_ctc.pyx"
