"""The ``Example:`` blocks of the library's docstrings run as doctests (STYLE.md: examples are tested).

Modules are found by a text scan for ``>>>`` (nothing is imported to collect them), so a new example is collected
without editing this file; each module is imported only by its own test. A module whose optional extra is not
installed is skipped with the reason. Examples that need weights or files mark themselves ``# doctest: +SKIP``.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gendetect"


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


MODULES = sorted(_module(p) for p in SRC.rglob("*.py") if ">>>" in p.read_text() and p.name != "__main__.py")


def test_the_examples_are_found() -> None:
    assert {"gendetect.registry", "gendetect.config", "gendetect.calibration", "gendetect.presets"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ImportError as e:  # an optional extra that is not installed (MissingDependencyError names it)
        pytest.skip(f"{name} needs an optional package that is not installed: {e}")
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    assert tests, f"{name} has '>>>' but no doctest was found in its docstrings"
    failures: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test, out=failures.append)
    assert runner.failures == 0, "".join(failures)
