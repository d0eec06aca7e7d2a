"""How many OpenMP threads the kernels use.

By default the kernels follow OpenMP's own setting, so ``OMP_NUM_THREADS``
and ``threadpoolctl.threadpool_limits(n, user_api="openmp")`` both apply.
:func:`set_num_threads` overrides that for the whole process, and
:class:`num_threads` does so for a ``with`` block.  Results never depend on
the thread count: work is split by the data's shape alone.
"""
from gluonloss import _openmp
from gluonloss._validation import check_int

# Below this many elements a parallel region costs more than it saves.
PARALLEL_MIN_ELEMENTS = 1 << 15

_explicit = None


def set_num_threads(n):
    """Use ``n`` threads in every kernel; ``None`` returns to OpenMP's default."""
    global _explicit
    if n is not None:
        n = check_int(n, "n")
        if n < 1:
            raise ValueError(f"the number of threads must be >= 1, got {n}")
    _explicit = n


def get_num_threads():
    """The number of threads a large call will use."""
    return _explicit if _explicit is not None else _openmp.max_threads()


class num_threads:
    """Context manager: ``with gluonloss.num_threads(1): ...``."""

    def __init__(self, n):
        self._n = n
        self._saved = None

    def __enter__(self):
        self._saved = _explicit
        set_num_threads(self._n)
        return self

    def __exit__(self, *exc_info):
        set_num_threads(self._saved)
        return False


def threads_for(n_elements):
    """Threads for a kernel call over ``n_elements`` elements."""
    return 1 if n_elements < PARALLEL_MIN_ELEMENTS else get_num_threads()
