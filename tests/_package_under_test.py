"""Running a fresh Python interpreter on the gluonloss under test.

A subprocess started from an empty folder would import whichever
``gluonloss`` its environment finds first: an installed copy, when the tests
run against an in-place build, or nothing at all.  :func:`run_python` puts the
folder that holds the imported package first on ``PYTHONPATH`` and checks,
in the same environment, that the child imports that very package.
"""
import os
import subprocess
import sys
from pathlib import Path

import gluonloss

PACKAGE_DIR = Path(gluonloss.__file__).resolve().parent


def child_environment():
    """``os.environ`` with the package's parent folder first on PYTHONPATH."""
    env = dict(os.environ)
    paths = [str(PACKAGE_DIR.parent)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                         if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_python(args, cwd, timeout=300, extra_env=None):
    """``python *args`` in ``cwd`` (a completed process, output captured as
    text), after checking that the child imports the package under test;
    ``extra_env`` adds variables to the child's environment."""
    env = {**child_environment(), **(extra_env or {})}
    where = subprocess.run(
        [sys.executable, "-c", "import gluonloss; print(gluonloss.__file__)"], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=timeout)
    assert where.returncode == 0, where.stderr
    imported = Path(where.stdout.strip()).resolve().parent
    assert imported == PACKAGE_DIR, f"the child imports {imported}, not {PACKAGE_DIR}"
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
