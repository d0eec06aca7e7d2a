"""``gluonloss.show_config()``: what it prints and returns, and that it tells the truth."""
import json
import sys

import pytest

import gluonloss as gl
from _package_under_test import PACKAGE_DIR
from gluonloss import _config, _dispatch, ctc, elementwise, pairwise, softmax

KEYS = ["version", "kernels", "kernels_requested", "cpu_features", "openmp", "num_threads",
        "compiler"]


def test_dicts_mode_returns_every_key_and_prints_nothing(capsys):
    config = gl.show_config(mode="dicts")
    assert capsys.readouterr().out == ""
    assert list(config) == KEYS
    assert config["version"] == gl.__version__
    assert config["kernels"] in _dispatch.BUILDS
    assert config["kernels_requested"] in ("auto", *_dispatch.BUILDS)
    assert config["cpu_features"] == _dispatch.cpu_features()
    assert list(config["cpu_features"]) == list(_dispatch.FEATURES)
    assert isinstance(config["openmp"], bool)
    assert config["num_threads"] == gl.get_num_threads()
    assert list(config["compiler"]) == ["name", "version", "command", "flags"]


def test_kernels_is_the_build_of_every_loaded_kernel_module():
    builds = {_dispatch.build_of(m) for m in (elementwise._elementwise, softmax._softmax,
                                              pairwise._pairwise, ctc._ctc)}
    assert builds == {gl.show_config(mode="dicts")["kernels"]}


def test_num_threads_follows_the_setting():
    with gl.num_threads(3):
        assert gl.show_config(mode="dicts")["num_threads"] == 3
    with gl.num_threads(1):
        assert gl.show_config(mode="dicts")["num_threads"] == 1


def test_stdout_mode_prints_every_value_and_returns_none(capsys):
    assert gl.show_config() is None
    assert gl.show_config(mode="stdout") is None
    text = capsys.readouterr().out
    config = gl.show_config(mode="dicts")
    lines = text.splitlines()
    assert lines[0] == f"gluonloss {gl.__version__}"
    assert f"  kernels: {config['kernels']}" in lines
    assert f"  num_threads: {config['num_threads']}" in lines
    assert f"  openmp: {'yes' if config['openmp'] else 'no'}" in lines
    for feature, present in config["cpu_features"].items():
        assert f"    {feature}: {'yes' if present else 'no'}" in lines
    assert f"    name: {config['compiler']['name']}" in lines


@pytest.mark.parametrize("mode", ["dict", "", None, 1, "STDOUT"])
def test_bad_mode_is_refused(mode):
    with pytest.raises(ValueError, match="mode must be 'stdout' or 'dicts'"):
        gl.show_config(mode=mode)


def test_compiler_flags_are_those_of_the_build_in_use():
    config = gl.show_config(mode="dicts")
    compiler = config["compiler"]
    if sys.platform.startswith("linux"):
        assert compiler["name"] in ("gcc", "clang")
        assert compiler["version"][0].isdigit()
    info_file = PACKAGE_DIR / "_build_info.json"
    if not info_file.exists():
        assert compiler["flags"] is None and compiler["command"] is None
        return
    info = json.loads(info_file.read_text())
    assert compiler["flags"] == " ".join(info["flags"][config["kernels"]])
    assert compiler["command"] == " ".join(info["command"])
    # No build fuses multiplies and adds (the builds must round alike).
    if compiler["name"] in ("gcc", "clang"):
        assert "-ffp-contract=off" in compiler["flags"].split()
        assert "-ffast-math" not in compiler["flags"].split()
    if config["kernels"] == "avx512":
        assert "-mavx512f" in compiler["flags"].split()


def test_missing_or_broken_build_record_reads_as_unknown(monkeypatch, tmp_path):
    class Files:
        def __init__(self, text):
            self.text = text

        def joinpath(self, name):
            return self

        def read_text(self):
            if self.text is None:
                raise FileNotFoundError("_build_info.json")
            return self.text

    for text in (None, "not json", "[1, 2]"):
        monkeypatch.setattr(_config.resources, "files", lambda package, text=text: Files(text))
        compiler = gl.show_config(mode="dicts")["compiler"]
        assert (compiler["command"], compiler["flags"]) == (None, None)
        assert compiler["name"]
