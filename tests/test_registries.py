"""Every entry of every registry builds, and every component that saves comes back with the same outputs.

The registries are found, not listed: the package's source is scanned for module-level ``NAME = Registry(...)``
assignments (a cheap AST pass, so nothing heavy is imported to find them), their modules and parent packages are
imported (which registers the built-ins, as users see them), and every entry becomes a test case. A new registry, or
a new entry, is covered without editing this file; one that cannot be built with its defaults fails here until it
gets tiny parameters in ``TINY`` (or a stated reason in ``NEEDS``).

Components that save (extractors, detectors, calibrators) are fitted on tiny data, saved, loaded through their
registry and must give the same outputs. Entries that need real weights are skipped with the reason.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import gendetect
from gendetect.registry import Registry

SRC = Path(gendetect.__file__).resolve().parent


def _registry_sites() -> list[tuple[str, str]]:
    """``(module, attribute)`` of every module-level ``X = Registry(...)`` / ``X: T = Registry(...)``."""
    sites = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        for node in ast.parse(path.read_text()).body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            call = value.func if isinstance(value, ast.Call) else None
            if isinstance(call, ast.Name) and call.id == "Registry":
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                sites += [(module, t.id) for t in targets if isinstance(t, ast.Name)]
    return sites


def _load(module: str, attr: str) -> Registry:
    parts = module.split(".")
    for i in range(2, len(parts) + 1):  # parent packages first: their __init__ registers the built-ins
        importlib.import_module(".".join(parts[:i]))
    return getattr(importlib.import_module(module), attr)


SITES = _registry_sites()
REGISTRIES = {f"{m}:{a}": _load(m, a) for m, a in SITES}
CASES = [(site, name) for site, reg in REGISTRIES.items() for name in reg.list()]

IMAGE = Image.fromarray(
    (np.random.default_rng(0).integers(0, 256, (96, 128, 3)) * np.linspace(0.3, 1, 128)[None, :, None]).astype(np.uint8)
)
TINY_CNN = {"arch": "test_resnet", "pretrained": "scratch", "batch_size": 8, "epochs": 1, "patience": 0}
TILE_WIDTH = 7 + 4  # the tiled detector's slot: the 7 tile-meta values, then 4 features

# (registry kind, entry name) -> parameters of a tiny instance
TINY: dict[tuple[str, str], dict[str, Any]] = {
    ("extractor", "openclip"): {"model": "test-tiny-clip", "pretrained": "random"},
    ("extractor", "hf-clip"): {"model": "test-tiny-clip", "pretrained": "random"},
    ("extractor", "timm"): {"model": "test_vit", "pretrained": "random"},
    ("detector", "cnn"): TINY_CNN,
    ("detector", "disentangle"): {"semantic_dim": 4, "residual_dim": 2, "epochs": 2, "batch_size": 16},
    ("detector", "hgb"): {"max_iter": 10, "min_samples_leaf": 2},
    ("detector", "mlp"): {"hidden": [8], "max_iter": 50},
    ("detector", "tiled"): {"base": {"name": "logistic", "params": {}}, "tile_width": TILE_WIDTH},
    ("zoo network", "npr-resnet"): {"layers": [1, 1]},
    ("zoo network", "cnndetection-resnet"): {"layers": [1, 1, 1, 1]},
    ("zoo network", "commfor-vit"): {"model": "test_vit"},
}
# (registry kind, entry name) -> why it is not built here
NEEDS: dict[tuple[str, str], str] = {
    ("extractor", "dnf"): "needs a diffusers model (weights); test_dnf.py builds it on a dummy DDPM",
    ("extractor", "zoo-net"): "needs a published detector's checkpoint; test_zoo.py builds it on converted dummies",
    ("zoo network", "code-vit"): "loads its own checkpoint format only (no weight-free build); see test_zoo.py",
    ("zoo network", "rine"): "loads its own checkpoint format only (no weight-free build); see test_zoo.py",
}


def _params(kind: str, name: str) -> dict[str, Any]:
    if (kind, name) in NEEDS:
        pytest.skip(f"{kind} {name!r} {NEEDS[kind, name]}")
    return dict(TINY.get((kind, name), {}))


def _seed() -> None:
    """Random-weight test models draw the same weights after each call."""
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.manual_seed(0)


def _create(registry: Registry, name: str, **overrides: Any) -> Any:
    """``registry.create`` with the tiny parameters; a missing optional package skips with its name."""
    _seed()
    try:
        return registry.create(name, **{**_params(registry.kind, name), **overrides})
    except ImportError as e:  # MissingDependencyError included: it names the extra
        pytest.skip(f"{registry.kind} {name!r} needs an optional package that is not installed: {e}")


# -- tiny data ------------------------------------------------------------------------------------------------------
def _rows(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows a detector of this name takes, and labels (1 = fake) it can learn."""
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 20)
    if name == "cnn":  # flattened (3, 16, 16) maps
        y = y[:16]
        X = rng.normal(size=(len(y), 3, 16, 16)) + 0.8 * y[:, None, None, None]
        return X.reshape(len(y), -1).astype(np.float32), y
    if name == "tiled":  # two tile slots per image, both with signal (meta column 4)
        slots = np.zeros((len(y), 2, TILE_WIDTH))
        slots[:, :, 4] = 1.0
        slots[:, :, 7:] = rng.normal(size=(len(y), 2, 4)) + 1.5 * y[:, None, None]
        return slots.reshape(len(y), -1), y
    return rng.normal(size=(len(y), 8)) + 1.5 * y[:, None], y


# -- how each kind of entry is built and checked ---------------------------------------------------------------------
def _check_extractor(registry: Registry, name: str, tmp_path: Path) -> None:
    ext = _create(registry, name)
    feats = ext.extract_batch([IMAGE, IMAGE.crop((0, 0, 80, 72))])
    assert feats.shape == (2, ext.dim) and feats.dtype == np.float32
    saved = json.loads(json.dumps(ext.get_config()))  # what a model's config.json holds
    assert saved == ext.get_config() and saved["name"] == name
    _seed()
    rebuilt = registry.from_config(saved)
    np.testing.assert_allclose(rebuilt.extract_batch([IMAGE, IMAGE.crop((0, 0, 80, 72))]), feats, rtol=1e-5, atol=1e-6)


def _check_detector(registry: Registry, name: str, tmp_path: Path) -> None:
    from gendetect.detectors import Detector

    det = _create(registry, name)
    config = det.get_config()
    assert registry.from_config(config).get_config() == config  # unfitted: the config is the __init__ arguments
    X, y = _rows(name)
    det.fit(X, y)
    scores = det.decision_function(X)
    assert scores.shape == (len(y),) and np.isfinite(scores).all()
    assert scores[y == 1].mean() > scores[y == 0].mean()  # it learned which side is fake
    det.save(tmp_path / name)
    assert (tmp_path / name / "model.safetensors").is_file()
    loaded = Detector.load(tmp_path / name)
    assert type(loaded) is type(det) and loaded.get_params() == det.get_params()
    np.testing.assert_allclose(loaded.decision_function(X), scores, rtol=1e-6, atol=1e-5)


def _check_calibration(registry: Registry, name: str, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    cal = _create(registry, name)
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 50)
    p = np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.2, len(y)), 0.01, 0.99)
    out = cal.fit(p, y)(p)
    assert out.shape == p.shape and np.all((out >= 0) & (out <= 1))
    save_file(cal.state_dict(), str(tmp_path / "model.safetensors"))
    config = json.loads(json.dumps(cal.get_config()))
    loaded = registry.from_config(config).load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    np.testing.assert_array_equal(loaded(p), out)


def _check_preset(registry: Registry, name: str, tmp_path: Path) -> None:
    import inspect

    from gendetect.detectors import DETECTORS
    from gendetect.features import EXTRACTORS

    recipe = registry.create(name)
    assert set(recipe) >= {"extractor", "detector"}
    recipe["detector"]["name"] = "changed"
    assert registry.create(name)["detector"]["name"] != "changed"  # each call is a fresh copy
    recipe = registry.create(name)
    DETECTORS.from_config(recipe["detector"])  # builds: detectors need no weights until fitted
    try:
        cls = EXTRACTORS.get(recipe["extractor"]["name"])  # the extractor needs weights: its params must fit it
    except ImportError as e:
        pytest.skip(f"preset {name!r}: its extractor needs an optional package that is not installed: {e}")
    accepted = set(inspect.signature(cls.__init__).parameters)
    assert set(recipe["extractor"].get("params", {})) <= accepted


def _check_perturbation(registry: Registry, name: str, tmp_path: Path) -> None:
    out = _create(registry, name)(IMAGE)
    assert isinstance(out, Image.Image) and out.mode == "RGB"


def _check_image_method(registry: Registry, name: str, tmp_path: Path) -> None:
    method = _create(registry, name)
    first, again = method(IMAGE, seed=0), method(IMAGE, seed=0)
    assert isinstance(first, Image.Image) and np.array_equal(np.asarray(first), np.asarray(again))  # seeded


def _check_benign_op(registry: Registry, name: str, tmp_path: Path) -> None:
    op = _create(registry, name)
    rng = np.random.default_rng(0)
    assert isinstance(op.apply(IMAGE, op.draw(rng), rng), Image.Image)


def _check_evidence(registry: Registry, name: str, tmp_path: Path) -> None:
    import io

    from gendetect.evidence import collect

    check = _create(registry, name)
    why = check.unavailable()
    if why:
        pytest.skip(f"evidence check {name!r} {why}")
    buf = io.BytesIO()
    IMAGE.save(buf, "PNG")
    report = collect(buf.getvalue(), checks=[check])
    assert report.findings == [] or all(f.kind for f in report.findings)  # a plain PNG: runs, claims nothing odd


def _check_generator(registry: Registry, name: str, tmp_path: Path) -> None:
    spec = _create(registry, name)
    spec.validate()
    assert spec.name == name and json.dumps(spec.to_dict())


def _check_zoo_entry(registry: Registry, name: str, tmp_path: Path) -> None:
    from gendetect.errors import WeightsNotFoundError
    from gendetect.zoo import load_zoo_model

    entry = registry.get(name)
    assert entry.name == name and entry.files
    with pytest.raises(WeightsNotFoundError):  # an empty cache, offline: fails at once, never random weights
        load_zoo_model(name)


def _check_zoo_network(registry: Registry, name: str, tmp_path: Path) -> None:
    params = _params(registry.kind, name)
    spec = registry.get(name)
    net = spec.build(**params)
    assert sum(p.numel() for p in net.parameters()) > 0 and callable(spec.convert)


def _check_callable(registry: Registry, name: str, tmp_path: Path) -> None:
    assert callable(registry.get(name))


def _check_default(registry: Registry, name: str, tmp_path: Path) -> None:
    """A registry nobody wrote a rule for: its entries must resolve, and classes build with their defaults."""
    entry = registry.get(name)
    if isinstance(entry, type):
        _create(registry, name)
    else:
        assert entry is not None


CHECKS: dict[str, Callable[[Registry, str, Path], None]] = {
    "extractor": _check_extractor,
    "detector": _check_detector,
    "calibration": _check_calibration,
    "preset": _check_preset,
    "perturbation": _check_perturbation,
    "self-made fake method": _check_image_method,
    "benign chain": _check_image_method,
    "benign operation": _check_benign_op,
    "evidence check": _check_evidence,
    "generator": _check_generator,
    "published detector": _check_zoo_entry,
    "zoo network": _check_zoo_network,
    "protocol": _check_callable,  # functions of a run config: the protocol tests run them
    "layout": _check_callable,  # readers of a folder: test_readers.py reads each layout
    "engine": _check_callable,  # run shards: test_scale.py runs them
}


def test_the_registries_are_found() -> None:
    kinds = {reg.kind for reg in REGISTRIES.values()}
    assert {"extractor", "detector", "calibration", "preset", "perturbation", "benign chain", "generator"} <= kinds
    assert all(isinstance(reg, Registry) for reg in REGISTRIES.values())


def test_no_registry_is_missed() -> None:
    """Every :class:`Registry` a module holds is one the source scan found (none defined in an unusual way)."""
    found = {id(reg) for reg in REGISTRIES.values()}
    missed = []
    for info in pkgutil.walk_packages(gendetect.__path__, "gendetect."):
        if info.name.endswith(".__main__"):  # runs the CLI when imported
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
        missed += [
            f"{info.name}:{k}" for k, v in vars(module).items() if isinstance(v, Registry) and id(v) not in found
        ]
    assert not missed


@pytest.mark.parametrize(("site", "name"), CASES, ids=[f"{REGISTRIES[s].kind}:{n}" for s, n in CASES])
def test_every_entry_builds(site: str, name: str, tmp_path: Path) -> None:
    registry = REGISTRIES[site]
    CHECKS.get(registry.kind, _check_default)(registry, name, tmp_path)
