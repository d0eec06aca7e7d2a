# The kernels of _elementwise.pyx, compiled again with AVX2 (see setup.py) and
# chosen at import by gluonloss._dispatch.  No FMA contraction: every
# operation rounds exactly as in the baseline build, so all builds give
# bitwise identical results (tests/test_dispatch.py checks it).
include "_elementwise.pyx"
