"""Pick the fastest build of a kernel module that this CPU can run.

Each kernel module is compiled for baseline x86-64 (SSE2) and, on x86-64,
twice more: with AVX2 as ``<name>_avx2`` and with AVX-512 (F, BW, DQ, VL) as
``<name>_avx512``.  All builds execute the same IEEE operations in the same
order (no fused multiply-adds, no reassociation), so they give bitwise
identical results; the wider builds only do more at once.

``GLUONLOSS_KERNELS`` chooses: ``auto`` (the default: the widest build the CPU
runs), or ``baseline``, ``avx2`` or ``avx512`` to force one.  Forcing a build
this CPU cannot run, or that was not compiled here, raises ImportError at
``import gluonloss`` rather than crashing on an illegal instruction later.
"""
from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType

#: The builds, narrowest first, with the CPU features each one needs.
BUILDS: dict[str, tuple[str, ...]] = {
    "baseline": (),
    "avx2": ("AVX2",),
    "avx512": ("AVX2", "AVX512F", "AVX512BW", "AVX512DQ", "AVX512VL"),
}
#: Every CPU feature gluonloss looks at.
FEATURES: tuple[str, ...] = BUILDS["avx512"]
ENVIRONMENT_VARIABLE = "GLUONLOSS_KERNELS"


@functools.cache
def cpu_features() -> dict[str, bool]:
    """``{feature: present}`` for :data:`FEATURES`, from NumPy's CPU detection
    (which also checks that the OS saves the wide registers)."""
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # NumPy 2, 1
        try:
            detected = importlib.import_module(module).__cpu_features__
        except (ImportError, AttributeError):
            continue
        return {feature: bool(detected.get(feature, False)) for feature in FEATURES}
    return dict.fromkeys(FEATURES, False)


def cpu_runs(build: str) -> bool:
    """Whether this CPU has every feature ``build`` needs."""
    features = cpu_features()
    return all(features[feature] for feature in BUILDS[build])


def _module_name(name: str, build: str) -> str:
    return f"gluonloss.{name}" if build == "baseline" else f"gluonloss.{name}_{build}"


def requested_build() -> str:
    """The value of ``GLUONLOSS_KERNELS`` (``auto`` when unset), checked."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "auto").strip().lower() or "auto"
    if value != "auto" and value not in BUILDS:
        raise ImportError(f"{ENVIRONMENT_VARIABLE}={value!r} is not one of "
                          f"{', '.join(['auto', *BUILDS])}")
    return value


def load_kernels(name: str) -> ModuleType:
    """The build of ``gluonloss.<name>`` chosen by ``GLUONLOSS_KERNELS``."""
    requested = requested_build()
    if requested != "auto":
        if not cpu_runs(requested):
            missing = [f for f in BUILDS[requested] if not cpu_features()[f]]
            raise ImportError(f"{ENVIRONMENT_VARIABLE}={requested} but this CPU lacks "
                              f"{', '.join(missing)}")
        try:
            return importlib.import_module(_module_name(name, requested))
        except ImportError as error:
            raise ImportError(f"{ENVIRONMENT_VARIABLE}={requested} but gluonloss was built "
                              f"without its {requested} kernels ({error})") from error
    for build in reversed(BUILDS):
        if cpu_runs(build):
            try:
                return importlib.import_module(_module_name(name, build))
            except ImportError:  # not compiled on this platform
                continue
    return importlib.import_module(_module_name(name, "baseline"))


def build_of(module: ModuleType) -> str:
    """``'baseline'``, ``'avx2'`` or ``'avx512'``: the build a loaded kernel module is."""
    for build in ("avx512", "avx2"):
        if module.__name__.endswith(f"_{build}"):
            return build
    return "baseline"
