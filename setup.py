"""Build the Cython kernels, with OpenMP when the compiler supports it.

Environment switches:
  GLUONLOSS_DEBUG=1   bounds checks and wraparound on, -O0 -g (for test runs
                      under a debugger or sanitizer).
  GLUONLOSS_NATIVE=1  add -march=native (opt-in: the default build must run
                      on any x86-64).
"""
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNEL_MODULES = ["_elementwise", "_openmp", "_vmath", "_softmax", "_pairwise", "_ctc"]
# Compiled twice more on x86-64, as <name>_avx2 and <name>_avx512;
# gluonloss._dispatch picks the build at import.  -ffp-contract=off (in every
# build) keeps the compiler from fusing a*b+c into one FMA, which AVX-512F
# has: every build rounds each operation alike, so all give identical bits.
WIDE_MODULES = ["_elementwise", "_softmax", "_pairwise", "_ctc"]
ISA_FLAGS = {
    "avx2": ["-mavx2"],
    "avx512": ["-mavx2", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl",
               "-mprefer-vector-width=512"],
}

DEBUG = os.environ.get("GLUONLOSS_DEBUG", "") not in ("", "0")
NATIVE = os.environ.get("GLUONLOSS_NATIVE", "") not in ("", "0")

OPENMP_PROBE = r"""
#include <omp.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    printf("%d\n", n);
    return n > 0 ? 0 : 1;
}
"""


def openmp_flags():
    """Compile and run a tiny OpenMP program; return the flags that worked."""
    if sys.platform == "win32":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        exe = os.path.join(tmp, "probe")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        for compile_flags, link_flags in candidates:
            try:
                subprocess.run(cc + compile_flags + [src, "-o", exe] + link_flags,
                               check=True, capture_output=True, timeout=120)
                subprocess.run([exe], check=True, capture_output=True, timeout=60)
            except (OSError, subprocess.SubprocessError):
                continue
            return compile_flags, link_flags
    warnings.warn("gluonloss: the C compiler cannot build OpenMP programs; "
                  "building serial kernels (results are the same, just single-threaded).",
                  stacklevel=2)
    return [], []


def extensions():
    omp_compile, omp_link = openmp_flags()
    if sys.platform == "win32":
        base = ["/O2"]
    elif DEBUG:
        base = ["-O0", "-g"]
    else:
        # -fno-trapping-math lets GCC turn `a if c else b` into vector selects
        # (it only gives up FP exception flags; values, NaN and inf are
        # unchanged).  Never -ffast-math: it breaks NaN/inf handling.
        base = ["-O3", "-fno-trapping-math", "-fno-math-errno", "-ffp-contract=off"]
        if NATIVE:
            base.append("-march=native")
    def extension(name, isa_flags=()):
        return Extension(
            f"gluonloss.{name}",
            [f"gluonloss/{name}.pyx"],
            include_dirs=[numpy.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
            extra_compile_args=base + list(isa_flags) + omp_compile,
            extra_link_args=omp_link,
        )

    modules = [extension(name) for name in KERNEL_MODULES]
    if platform.machine().lower() in ("x86_64", "amd64") and sys.platform != "win32" and not NATIVE:
        modules += [extension(f"{name}_{isa}", flags)
                    for isa, flags in ISA_FLAGS.items() for name in WIDE_MODULES]
    return modules


DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "nonecheck": False,
    "embedsignature": True,
}

BUILD_INFO = "_build_info.json"


def build_of(extension_name):
    """The kernel build an extension belongs to (as gluonloss._dispatch.build_of)."""
    for isa in ISA_FLAGS:
        if extension_name.endswith(f"_{isa}"):
            return isa
    return "baseline"


class BuildExtWithInfo(build_ext):
    """build_ext that also writes gluonloss/_build_info.json next to the modules:
    the compiler command and the flags of each kernel build, read by
    gluonloss.show_config() (so a wheel reports how it was built, wherever it
    is installed; the compiler's name and version come from the modules)."""

    def build_extensions(self):
        super().build_extensions()
        command = list(getattr(self.compiler, "compiler_so", None) or [])
        flags = {}
        for extension in self.extensions:
            flags.setdefault(build_of(extension.name.rsplit(".", 1)[-1]),
                             list(extension.extra_compile_args))
        info = {"compiler_type": self.compiler.compiler_type,
                "command": command,
                "flags": flags}
        path = self._build_info_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(info, f, indent=1, sort_keys=True)

    def _build_info_path(self):
        return os.path.join(self.build_lib, "gluonloss", BUILD_INFO)

    def get_outputs(self):
        return [*super().get_outputs(), self._build_info_path()]

    def copy_extensions_to_source(self):
        super().copy_extensions_to_source()
        package_dir = self.get_finalized_command("build_py").get_package_dir("gluonloss")
        shutil.copyfile(self._build_info_path(), os.path.join(package_dir, BUILD_INFO))


setup(ext_modules=cythonize(extensions(), compiler_directives=DIRECTIVES,
                            annotate=DEBUG),
      cmdclass={"build_ext": BuildExtWithInfo})
