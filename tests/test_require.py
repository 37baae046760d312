"""errors.require: the one optional-import guard (issue 18 item 6)."""

from __future__ import annotations

import json
import os.path
import sys

import pytest

from gendetect.errors import GendetectError, MissingDependencyError, require


def test_present_module_is_returned() -> None:
    assert require("json", "clip", "the test") is json
    assert require("os.path", "clip", "the test") is os.path  # a dotted name returns the submodule


def test_missing_module_names_package_extra_and_purpose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "open_clip", None)  # importing it now raises ImportError
    with pytest.raises(MissingDependencyError) as info:
        require("open_clip", "clip", "the openclip extractor")
    msg = str(info.value)
    assert msg.startswith("The openclip extractor needs open_clip_torch")  # the pip name, not the import name
    assert msg.endswith("pip install 'gendetect[clip]'")
    assert isinstance(info.value, GendetectError) and isinstance(info.value, ImportError)  # CLI one-liner; old catches
    assert isinstance(info.value.__cause__, ImportError)


def test_missing_submodule_names_the_top_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "no_such_pkg_for_tests", None)
    with pytest.raises(
        MissingDependencyError, match=r"^The ray engine needs no_such_pkg_for_tests, .*gendetect\[ray\]"
    ):
        require("no_such_pkg_for_tests.data", "ray", "the ray engine")


def test_install_command_replaces_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "glide_text2im", None)
    with pytest.raises(MissingDependencyError, match=r"needs glide-text2im, .*: pip install git\+https://x$") as info:
        require("glide_text2im.download", None, "glide", install="pip install git+https://x")
    assert "gendetect[" not in str(info.value)


def test_require_torch_and_diffusers_name_their_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    from gendetect.features.torch_base import require_diffusers, require_torch

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r"needs torch, .*gendetect\[clip\]"):
        require_torch()
    with pytest.raises(MissingDependencyError, match=r"needs torch, .*gendetect\[diffusion\]"):
        require_diffusers()


def test_an_extractor_guard_goes_through_require(monkeypatch: pytest.MonkeyPatch) -> None:
    from gendetect.features import clip

    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(MissingDependencyError, match=r"^CLIP extractors need.*open_clip_torch.*gendetect\[clip\]"):
        clip._open_clip()


@pytest.mark.parametrize("missing", ["uvicorn", "fastapi", "sqlalchemy"])
def test_serve_without_the_extra_says_so_once(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    from click.testing import CliRunner

    from gendetect.cli import main

    monkeypatch.setitem(sys.modules, missing, None)  # importing it now raises ImportError
    for name in [m for m in sys.modules if m.startswith("gendetect.server")]:
        parent, _, child = name.rpartition(".")
        if hasattr(sys.modules.get(parent), child):  # the package attribute comes back after the test too
            monkeypatch.setattr(sys.modules[parent], child, getattr(sys.modules[parent], child))
        monkeypatch.delitem(sys.modules, name)  # imported afresh, without the missing module
    result = CliRunner().invoke(main, ["serve", "--port", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.count("pip install 'gendetect[serve]'") == 1, result.output
    assert "Install the extra" not in result.output and f"needs {missing}" in result.output
