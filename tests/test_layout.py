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


@pytest.mark.parametrize("package", ["data", "features", "scale", "augment"])
def test_lower_layers_never_import_training(package):
    offenders = {
        str(p.relative_to(SRC)): sorted(m for m in _imports(p) if m.startswith("gendetect.training"))
        for p in (SRC / package).rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_the_old_junction_modules_are_gone():
    assert not (SRC / "training.py").exists() and not (SRC / "trainer.py").exists()
    assert (SRC / "training" / "pipeline.py").is_file() and (SRC / "training" / "torch_loop.py").is_file()
