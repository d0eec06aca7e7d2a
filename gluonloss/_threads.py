"""How many OpenMP threads the kernels use.

By default the kernels follow OpenMP's own setting, so ``OMP_NUM_THREADS``
and ``threadpoolctl.threadpool_limits(n, user_api="openmp")`` both apply.
:func:`set_num_threads` overrides that for the whole process, and
:class:`num_threads` does so for a ``with`` block.  Results never depend on
the thread count: work is split by the data's shape alone.
"""
from __future__ import annotations

import threading
from typing import Literal

from gluonloss import _openmp
from gluonloss._validation import check_int

# Below this many elements a parallel region costs more than it saves.
PARALLEL_MIN_ELEMENTS = 1 << 15

_explicit = None
# A count for the calling Python thread only: Dask block tasks run their
# kernels on one thread each (Dask runs the blocks in parallel).
_this_thread = threading.local()


def set_num_threads(n: int | None) -> None:
    """Use ``n`` threads in every kernel, for the whole process.

    Parameters
    ----------
    n : int or None
        Number of OpenMP threads, >= 1.  None returns to OpenMP's own
        setting (``OMP_NUM_THREADS``, threadpoolctl, or the core count).

    Raises
    ------
    ValueError
        If ``n`` < 1.
    TypeError
        If ``n`` is not an integer.

    See Also
    --------
    num_threads : the same for a ``with`` block.
    get_num_threads : the count in effect.

    Notes
    -----
    Results are bitwise identical for every thread count; only speed
    changes.  Calls on fewer than 32768 elements always run on one thread.

    Examples
    --------
    >>> import gluonloss as gl
    >>> gl.set_num_threads(1)
    >>> gl.get_num_threads()
    1
    >>> gl.set_num_threads(None)       # back to OpenMP's default
    """
    global _explicit
    if n is not None:
        n = check_int(n, "n")
        if n < 1:
            raise ValueError(f"the number of threads must be >= 1, got {n}")
    _explicit = n


def get_num_threads() -> int:
    """The number of threads a large call will use.

    Returns
    -------
    int
        The count set by :func:`set_num_threads` or :class:`num_threads`,
        else OpenMP's maximum (which follows ``OMP_NUM_THREADS`` and
        threadpoolctl).

    Examples
    --------
    >>> import gluonloss as gl
    >>> with gl.num_threads(3):
    ...     gl.get_num_threads()
    3
    """
    n = getattr(_this_thread, "n", None)
    if n is not None:
        return n
    return _explicit if _explicit is not None else _openmp.max_threads()


class one_thread_unless_set:
    """Context manager: calls from this Python thread use one thread, unless
    :func:`set_num_threads` chose a count explicitly."""

    def __enter__(self):
        self._saved = getattr(_this_thread, "n", None)
        if _explicit is None:
            _this_thread.n = 1
        return self

    def __exit__(self, *exc_info):
        _this_thread.n = self._saved
        return False


class num_threads:
    """Context manager setting the thread count for a ``with`` block.

    On exit the previous setting (explicit or OpenMP's default) returns.
    The setting is process-wide, like :func:`set_num_threads`.

    Parameters
    ----------
    n : int or None
        As for :func:`set_num_threads`.

    Examples
    --------
    >>> import numpy as np, gluonloss as gl
    >>> pred, label = np.zeros((4, 3)), np.ones((4, 3))
    >>> with gl.num_threads(1):
    ...     out = gl.L1Loss()(pred, label)
    >>> out
    array([1., 1., 1., 1.])
    """

    def __init__(self, n: int | None) -> None:
        self._n = n
        self._saved: int | None = None

    def __enter__(self) -> num_threads:
        self._saved = _explicit
        set_num_threads(self._n)
        return self

    def __exit__(self, *exc_info: object) -> Literal[False]:
        set_num_threads(self._saved)
        return False


def threads_for(n_elements: int) -> int:
    """Threads for a kernel call over ``n_elements`` elements."""
    return 1 if n_elements < PARALLEL_MIN_ELEMENTS else get_num_threads()
