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


cdef extern from *:
    """
    #define GLUONLOSS_STRING_(x) #x
    #define GLUONLOSS_STRING(x) GLUONLOSS_STRING_(x)
    #if defined(__clang__)
    #define GLUONLOSS_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #define GLUONLOSS_COMPILER "gcc " __VERSION__
    #elif defined(_MSC_VER)
    #define GLUONLOSS_COMPILER "msvc " GLUONLOSS_STRING(_MSC_FULL_VER)
    #else
    #define GLUONLOSS_COMPILER "unknown"
    #endif
    """
    const char* GLUONLOSS_COMPILER


def compiler():
    """``(name, version)`` of the C compiler that built this module, from its
    own predefined macros (so it holds wherever the module was built)."""
    name, _, version = GLUONLOSS_COMPILER.decode("utf-8", "replace").partition(" ")
    return name, version.strip() or None
