"""The documentation: docstring examples and the examples of the docs/ pages
run and print what they say, every public name is in the API reference, and
every public method documents its parameters and results."""
import doctest
import inspect
import re
from pathlib import Path

import pytest

import gluonloss
import gluonloss._base
import gluonloss._config
import gluonloss._threads
import gluonloss.ctc
import gluonloss.elementwise
import gluonloss.pairwise
import gluonloss.reference
import gluonloss.softmax
import gluonloss.testing

MODULES = [gluonloss, gluonloss._base, gluonloss._config, gluonloss._threads,
           gluonloss.elementwise, gluonloss.reference, gluonloss.softmax, gluonloss.pairwise,
           gluonloss.ctc, gluonloss.testing]
DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.rst"))
# Pages that teach by example; the others (api, performance) hold none.
PAGES_WITH_EXAMPLES = {"index.rst", "quickstart.rst", "guide.rst", "gradients.rst", "threads.rst",
                       "compatibility.rst", "conformance.rst", "dask.rst"}
# Pages whose examples port a loss to another framework: skipped without it.
PAGES_NEEDING = {"conformance.rst": "torch"}
# Submodules documented on the API page: each one's __all__.
SUBMODULES = {"testing": gluonloss.testing}
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
LOSS_METHODS = ("forward", "gradient", "value_and_gradient")


def public_losses():
    for name in gluonloss.__all__:
        obj = getattr(gluonloss, name)
        if isinstance(obj, type) and issubclass(obj, gluonloss.Loss):
            yield name, obj


@pytest.fixture(autouse=True)
def _default_threads():
    # The examples change the process-wide thread count; never leak it.
    yield
    gluonloss.set_num_threads(None)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=FLAGS)
    assert result.failed == 0
    assert result.attempted > 0


def test_the_docs_pages_are_found():
    assert PAGES_WITH_EXAMPLES <= {page.name for page in PAGES}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples(page):
    if page.name in PAGES_NEEDING:
        pytest.importorskip(PAGES_NEEDING[page.name])
    result = doctest.testfile(str(page), module_relative=False, optionflags=FLAGS,
                              encoding="utf-8")
    assert result.failed == 0
    if page.name in PAGES_WITH_EXAMPLES:
        assert result.attempted > 0


def test_every_loss_class_has_math_and_an_example():
    for name, obj in public_losses():
        if obj is not gluonloss.Loss:
            assert ".. math::" in obj.__doc__, name
            assert ">>>" in obj.__doc__, name


def test_every_public_method_documents_parameters_and_returns():
    for name, obj in public_losses():
        for method in LOSS_METHODS:
            doc = inspect.getdoc(getattr(obj, method))
            for section in ("Parameters\n----------", "Returns\n-------"):
                assert section in doc, f"{name}.{method}: no {section.splitlines()[0]}"
    for func in (gluonloss.set_num_threads, gluonloss.get_num_threads, gluonloss.num_threads):
        assert ">>>" in inspect.getdoc(func), func.__name__


def documented_names(api_text):
    """Names the API page documents: autosummary entries and py: directives,
    ``name`` for the package's own and ``submodule.name`` for a submodule's."""
    names = set()
    for block in re.findall(r"^\.\. autosummary::\n((?:[ \t]+.*\n|\n)+)", api_text, re.M):
        names.update(line.strip() for line in block.splitlines()
                     if line.strip() and not line.strip().startswith(":"))
    names.update(re.findall(r"^\.\. (?:py:class|py:function|auto\w+):: (?:gluonloss\.)?([\w.]+)",
                            api_text, re.M))
    return names


def test_every_public_name_is_in_the_api_reference():
    documented = {name for name in documented_names((DOCS / "api.rst").read_text(encoding="utf-8"))
                  if "." not in name}
    missing = set(gluonloss.__all__) - documented
    assert not missing, f"public names missing from docs/api.rst: {sorted(missing)}"
    unknown = documented - set(gluonloss.__all__)
    assert not unknown, f"docs/api.rst documents names that are not public: {sorted(unknown)}"


def test_api_templates_exist():
    # autosummary falls back to its bare default template, silently, when
    # :template: names no file: the methods would vanish from the pages.
    templates = re.findall(r":template: (\S+)", (DOCS / "api.rst").read_text(encoding="utf-8"))
    assert templates
    for template in templates:
        assert (DOCS / "_templates" / template).is_file(), template


@pytest.mark.parametrize("name", sorted(SUBMODULES))
def test_every_public_name_of_a_submodule_is_in_the_api_reference(name):
    documented = {entry.split(".", 1)[1]
                  for entry in documented_names((DOCS / "api.rst").read_text(encoding="utf-8"))
                  if entry.startswith(name + ".")}
    assert documented == set(SUBMODULES[name].__all__)
