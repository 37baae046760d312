"""Every name a package exports resolves, and the lazy re-exports (``gendetect._lazy``) behave like plain imports."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gendetect
from gendetect._lazy import lazy_exports

PACKAGES = ("gendetect", "gendetect.data", "gendetect.scale")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_name_in_all_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__ == sorted(set(module.__all__), key=module.__all__.index)  # no duplicates
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module)


def test_every_curated_name_imports_in_a_fresh_interpreter() -> None:
    """``from gendetect import X`` for each X in ``__all__``, in a process that has imported nothing else."""
    code = "import gendetect\nfor n in gendetect.__all__:\n    exec(f'from gendetect import {n}')\nprint('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_curated_names_are_the_defining_modules_objects() -> None:
    from gendetect.pipeline import scan
    from gendetect.runs import TrainRun

    assert gendetect.scan is scan and gendetect.TrainRun is TrainRun


def test_unknown_names_raise_attribute_error_naming_the_package() -> None:
    for package in PACKAGES:
        with pytest.raises(AttributeError, match=rf"module '{package}' has no attribute 'nope'"):
            importlib.import_module(package).nope  # noqa: B018 - the look-up is the test


def test_lazy_exports_imports_on_first_use_and_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    module = type(sys)("lazy_probe")
    monkeypatch.setitem(sys.modules, "lazy_probe", module)
    calls: list[str] = []
    real = importlib.import_module

    def counting(name: str, *args: object) -> object:
        calls.append(name)
        return real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib, "import_module", counting)
    getattr_, dir_ = lazy_exports("lazy_probe", {"dumps": "json"})
    module.__getattr__ = getattr_  # type: ignore[attr-defined]
    assert "dumps" in dir_() and calls == []
    import json

    assert module.dumps is json.dumps and calls == ["json"]
    assert module.dumps is json.dumps and calls == ["json"]  # stored on the module: no second import
    with pytest.raises(AttributeError):
        module.loads  # noqa: B018 - not exported


def test_scale_reaches_its_submodules_through_the_package() -> None:
    from gendetect.scale import engines, options

    assert engines.__name__ == "gendetect.scale.engines" and options.EngineOptions is gendetect.scale.EngineOptions


def _readme_block(heading: str) -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index(heading) :]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_python_api_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's first library example (scan, train from a TrainRun and from a config file, evaluate with
    run_protocol + ProtocolConfig as `gendetect evaluate` does), on tiny synthetic data at the paths it names."""
    from gendetect.data.synthetic import make_synthetic_dataset

    make_synthetic_dataset(tmp_path / "data" / "train", n_per_class=12, size=64, generators=("up1", "up2"))
    make_synthetic_dataset(tmp_path / "data" / "heldout", n_per_class=8, size=64, generators=("up1",), seed=1)
    (tmp_path / "train.json").write_text(json.dumps({"data": "data/train", "folds": 2}))
    pictures = tmp_path / "Pictures"
    pictures.mkdir()
    shutil.copy(next((tmp_path / "data" / "heldout").rglob("*.png")), pictures / "one.png")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    code = _readme_block("## Python API\n")
    assert "run_protocol(ProtocolConfig(" in code and "train(TrainRun(" in code
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert (tmp_path / "models" / "mine" / "config.json").is_file()
    assert (tmp_path / "models" / "from-config" / "config.json").is_file()
    report = json.loads((tmp_path / "reports" / "mine" / "report.json").read_text())
    assert report["protocol"] == "per-generator" and report["config"]["model"] == "models/mine"
    assert namespace["run"].target_fpr == 0.05  # type: ignore[attr-defined]


def test_every_name_the_readme_run_config_example_imports_exists() -> None:
    code = _readme_block("**Run configs.**")
    for line in code.splitlines():
        if line.startswith("from "):
            module, _, names = line[5:].partition(" import ")
            for name in names.split(","):
                assert getattr(importlib.import_module(module), name.strip()) is not None, (module, name)
