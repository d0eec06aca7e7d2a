"""OpenMP queries, safe when the package was built without OpenMP."""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define GLUONLOSS_HAVE_OPENMP 1
    #else
    #define GLUONLOSS_HAVE_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    bint GLUONLOSS_HAVE_OPENMP
    int omp_get_max_threads() nogil


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return GLUONLOSS_HAVE_OPENMP


def max_threads():
    """OpenMP's current default team size (OMP_NUM_THREADS, threadpoolctl)."""
    return omp_get_max_threads()
