"""Build gluonloss's wheel, install it into a fresh virtual environment and run
the MXNet conformance kit against the installed copy, from outside the source tree.

    python tools/check_wheel.py                 # build, install, check (exit 1 on failure)
    python tools/check_wheel.py --wheel dist/gluonloss-0.1.0-*.whl   # skip the build

Steps, all in a temporary folder that is removed afterwards:

1. ``pip wheel --no-deps`` of the repository (compiles the kernels, about two
   minutes), unless ``--wheel`` names one;
2. ``python -m venv`` and ``pip install`` of the wheel alone (NumPy and SciPy come
   from the package index as its dependencies);
3. from an empty folder, with ``python -P`` so that nothing but the installed
   package can be imported: ``gluonloss.testing.check`` over every recorded case,
   values and gradients, with the compiled losses and with ``gluonloss.reference``.

It fails when any case fails, when the fixtures are not found in the installed
package, or when gluonloss is imported from anywhere but the new environment.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs inside the fresh environment.
CHECK = r"""
import collections, importlib.resources, sys
import gluonloss
from gluonloss import reference, testing

environment = sys.argv[1]
for where in (gluonloss.__file__, str(importlib.resources.files("gluonloss") / "_conformance")):
    if not where.startswith(environment):
        sys.exit(f"gluonloss was found outside the fresh environment: {where}")

def runner(module):
    def run(case):
        loss = getattr(module, case.loss)(**case.params)
        return loss.value_and_gradient(*case.inputs.values(), **case.kwargs,
                                       out_grad=case.out_grad)
    return run

every_case = testing.cases()
counts = collections.Counter((case.loss, case.source.split(":")[0]) for case in every_case)
print(f"gluonloss {gluonloss.__version__} from {gluonloss.__file__}")
print(f"{len(every_case)} recorded cases:")
for (loss, source), count in sorted(counts.items()):
    print(f"  {loss:30s} {source:26s} {count:4d}")
ok = True
for name, module in (("compiled", gluonloss), ("reference", reference)):
    result = testing.check(runner(module))
    print(f"{name}: {result}")
    ok &= bool(result) and len(result.passed) == len(every_case) \
        and result.gradients_checked == len(every_case)
sys.exit(0 if ok else 1)
"""


def run(command, **kwargs):
    print("+", " ".join(map(str, command)), flush=True)
    subprocess.run([str(c) for c in command], check=True, **kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help="check this wheel instead of building one")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (its path is printed)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="gluonloss-wheel-"))
    try:
        if args.wheel:
            wheel = args.wheel.resolve()
        else:
            run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                 "--wheel-dir", tmp / "dist", ROOT])
            (wheel,) = (tmp / "dist").glob("gluonloss-*.whl")
        venv = tmp / "venv"
        run([sys.executable, "-m", "venv", venv])
        python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        run([python, "-m", "pip", "install", "--quiet", wheel])
        outside = tmp / "elsewhere"
        outside.mkdir()
        environment = subprocess.run(
            [str(python), "-c", "import sys; print(sys.prefix)"], check=True,
            capture_output=True, text=True).stdout.strip()
        result = subprocess.run([str(python), "-P", "-c", CHECK, environment], cwd=outside)
        return result.returncode
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
