"""Pick the fastest build of a kernel module that this CPU can run.

Each kernel module is compiled for baseline x86-64 (SSE2) and, on x86-64, a
second time with AVX2 as ``<name>_avx2``.  Both execute the same IEEE
operations in the same order, so they give bitwise identical results; AVX2
only does twice as many at once.  ``GLUONLOSS_KERNELS=baseline`` forces the
baseline build.
"""
import importlib
import os
from types import ModuleType


def cpu_has_avx2() -> bool:
    """Whether NumPy's CPU feature detection reports AVX2."""
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # NumPy 2, 1
        try:
            features = importlib.import_module(module).__cpu_features__
        except (ImportError, AttributeError):
            continue
        return bool(features.get("AVX2", False))
    return False


def load_kernels(name: str) -> ModuleType:
    """The module ``gluonloss.<name>``, or its AVX2 build where usable."""
    if os.environ.get("GLUONLOSS_KERNELS", "auto") != "baseline" and cpu_has_avx2():
        try:
            return importlib.import_module(f"gluonloss.{name}_avx2")
        except ImportError:  # not built on this platform
            pass
    return importlib.import_module(f"gluonloss.{name}")
