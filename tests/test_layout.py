"""Imports point down the pipeline: data -> features -> detectors -> pipeline -> training/evaluation -> serve/scale."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gendetect"


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize("package", ["data", "features", "detectors", "scale", "augment"])
def test_lower_layers_never_import_training(package):
    offenders = {
        str(p.relative_to(SRC)): sorted(m for m in _imports(p) if m.startswith("gendetect.training"))
        for p in (SRC / package).rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_the_old_junction_modules_are_gone():
    assert not (SRC / "training.py").exists() and not (SRC / "trainer.py").exists()
    assert (SRC / "training" / "pipeline.py").is_file() and (SRC / "training" / "torch_loop.py").is_file()


def test_the_torch_loop_lives_with_the_detectors_and_training_re_exports_it():
    from gendetect.detectors import torch_loop
    from gendetect.training import torch_loop as training_torch_loop

    for name in training_torch_loop.__all__:
        assert getattr(training_torch_loop, name) is getattr(torch_loop, name)


def test_no_component_bypasses_its_registry():
    """One way from a saved config to a component: ``REGISTRY.from_config`` (no ``*_from_config`` helpers)."""
    offenders = sorted(
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name.endswith("_from_config") and node.col_offset == 0
    )
    assert not offenders


@pytest.mark.parametrize("package", ["data", "features", "detectors", "scale"])
def test_lower_layers_never_import_the_run_configs(package):
    offenders = {
        str(p.relative_to(SRC)): sorted(
            m for m in _imports(p) if m == "gendetect.runs" or m.startswith("gendetect.cli")
        )
        for p in (SRC / package).rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_the_run_configs_sit_below_the_cli_and_import_little_at_the_top():
    tree = ast.parse((SRC / "runs.py").read_text())
    top = {
        n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("gendetect")
    }
    assert top == {"gendetect.errors"}  # the rest inside the functions: evaluation and generation import runs.py
    assert not any(m.startswith(("gendetect.cli", "gendetect.server")) for m in _imports(SRC / "runs.py"))


def test_no_cli_module_is_over_400_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (SRC / "cli").glob("*.py")}
    assert sizes and not {k: v for k, v in sizes.items() if v > 400}
