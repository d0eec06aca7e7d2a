"""Sphinx configuration for the gluonloss documentation.

Build from the repository root with the package installed (the compiled
kernels are not in the source tree):

    python -P -m sphinx -W --keep-going -b html docs docs/_build/html

``-P`` keeps the current folder off ``sys.path``, and nothing here adds the
repository to it, so autodoc and the plots import the installed package.
"""
import csv
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList

import gluonloss

project = "gluonloss"
author = "the gluonloss authors"
copyright = "2026, the gluonloss authors"
release = gluonloss.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",   # bundles MathJax: formulas render without a network
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
]
# No intersphinx: the build must not need the network (CI may have none).

# Only reStructuredText is part of the site; the developer notes in
# docs/design.md and docs/softmax.md stay plain markdown for the repository.
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build", "*.md"]
templates_path = ["_templates"]

html_theme = "furo"
html_title = f"gluonloss {release}"

# autodoc / autosummary / numpydoc
autosummary_generate = True
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# Fail the -W build when a parameter is undocumented, unknown or out of order, a
# Returns section is missing, or a public object has no docstring.
numpydoc_validation_checks = {"PR01", "PR02", "PR03", "PR06", "RT01", "GL08"}

# Figures are drawn at build time from gluonloss itself.
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.dpi": 110, "font.size": 9, "axes.grid": True,
                 "grid.alpha": 0.3}
plot_pre_code = "import numpy as np\nimport matplotlib.pyplot as plt\nimport gluonloss as gl\n"



# -- the benchmark tables ----------------------------------------------------
# docs/data/benchmarks.csv is the one source of the performance page's tables
# and of its plot; this directive renders one family's rows and the commands
# that reproduce them.

BENCHMARKS = Path(__file__).parent / "data" / "benchmarks.csv"
TABLE_COLUMNS = ["loss", "shape", "gluonloss fwd", "gluonloss f+g", "NumPy f+g", "peer",
                 "peer fwd", "peer f+g", "peer/gl fwd", "peer/gl f+g"]
# Columns whose value is the same on every row of a family go above the table.
SHARED_COLUMNS = ["shape", "peer"]
HEADERS = {"gluonloss fwd": "gl fwd", "gluonloss f+g": "gl f+g", "NumPy f+g": "NumPy f+g",
           "peer/gl fwd": "speed-up fwd", "peer/gl f+g": "speed-up f+g"}


class BenchmarkTable(Directive):
    """``.. benchmark-table:: family``: that family's rows of benchmarks.csv."""

    required_arguments = 1
    option_spec = {"caption": directives.unchanged}

    def run(self):
        family = self.arguments[0]
        with open(BENCHMARKS, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r["family"] == family]
        if not rows:
            raise self.error(f"no rows of family {family!r} in {BENCHMARKS.name}")
        shared = [c for c in SHARED_COLUMNS if len({r[c] for r in rows}) == 1]
        columns = [c for c in TABLE_COLUMNS if c not in shared and any(r[c] for r in rows)]
        lines = ["; ".join(f"{c.capitalize()}: {rows[0][c]}" for c in shared) + ".", ""] * bool(
            shared)
        lines += [".. list-table:: " + self.options.get("caption", ""),
                  "   :header-rows: 1", ""]
        header = [HEADERS.get(c, c) for c in columns]
        for cells in [header] + [[r[c] or "—" for c in columns] for r in rows]:
            lines.append("   * - " + cells[0])
            lines += ["     - " + cell for cell in cells[1:]]
        commands = list(dict.fromkeys(r["command"] for r in rows))
        lines += ["", "Reproduce with:", "", ".. code-block:: console", ""]
        lines += ["   $ " + command for command in commands]
        self.state.document.settings.record_dependencies.add(str(BENCHMARKS))
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=str(BENCHMARKS)), self.content_offset,
                                container)
        return container.children


def setup(app):
    app.add_directive("benchmark-table", BenchmarkTable)
