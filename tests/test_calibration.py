"""Calibrators are components: built by name, config = ``__init__`` arguments, learned state in ``_`` attributes
saved as arrays; models of the former layout (temperature in the config), the embedded default among them, load
and score as before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gendetect.calibration import CALIBRATORS, TemperatureCalibrator, create_calibrator, list_calibrators
from gendetect.data.synthetic import synthetic_image
from gendetect.errors import ModelFormatError, NotFittedError, UnknownNameError
from gendetect.pipeline import default_model_path, load_model
from gendetect.registry import Registry


def _scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 2000)
    y = (rng.uniform(size=z.size) < 1 / (1 + np.exp(-z))).astype(int)
    return 1 / (1 + np.exp(-3 * z)), y  # logits 3x too large


def test_calibrators_are_a_registry_of_configurable_components() -> None:
    assert isinstance(CALIBRATORS, Registry) and list_calibrators() == ["isotonic", "temperature"]
    p, y = _scores()
    cal = create_calibrator("temperature").fit(p, y)
    assert cal.get_config() == {"name": "temperature", "params": {}}  # learned state is not config
    assert cal.temperature_ == pytest.approx(3.0, rel=0.15) and cal.temperature == cal.temperature_
    assert set(cal.state_dict()) == {"calibration.temperature"}
    with pytest.raises(UnknownNameError, match="Did you mean 'isotonic'"):
        create_calibrator("isotonik")


@pytest.mark.parametrize("name", ["temperature", "isotonic"])
def test_an_unfitted_calibrator_refuses_to_calibrate(name: str) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        create_calibrator(name)(np.array([0.2, 0.8]))
    with pytest.raises(ModelFormatError, match="calibration"):
        CALIBRATORS.from_config({"name": name, "params": {}}).load_state_dict({})


def test_the_former_layout_with_the_temperature_in_the_config_still_loads() -> None:
    p = np.clip(_scores()[0], 1e-7, 1 - 1e-7)
    old = CALIBRATORS.from_config({"name": "temperature", "params": {"temperature": 2.5}}).load_state_dict({})
    assert isinstance(old, TemperatureCalibrator) and old.temperature_ == 2.5
    logit = np.log(p) - np.log1p(-p)
    np.testing.assert_allclose(old(p), 1 / (1 + np.exp(-logit / 2.5)), rtol=1e-9)


def test_a_model_dir_in_the_former_layout_loads_and_scores_as_before_then_saves_in_the_new_layout(
    tmp_path: Path,
) -> None:
    """The embedded default rewritten the way models were saved before calibrators had learned state (the
    temperature in config.json, no calibration arrays) loads, scores with the former formula, and re-saves in the
    new layout."""
    import shutil

    from safetensors.numpy import load_file, save_file

    current = load_model()
    temperature = float(current.calibrator.temperature_)
    old_dir = tmp_path / "former"
    shutil.copytree(default_model_path(), old_dir)
    config = json.loads((old_dir / "config.json").read_text())
    assert config["calibration"] == {"name": "temperature", "params": {}}  # the new layout, as shipped
    config["calibration"] = {"name": "temperature", "params": {"temperature": temperature}}
    (old_dir / "config.json").write_text(json.dumps(config))
    tensors = load_file(str(old_dir / "model.safetensors"))
    save_file(
        {k: v for k, v in tensors.items() if not k.startswith("calibration.")}, str(old_dir / "model.safetensors")
    )

    model = load_model(old_dir)
    assert model.calibrator.temperature_ == temperature
    images = [synthetic_image(label, 300, seed=i) for i, label in enumerate(["real", "fake"])]
    X = np.stack([model.extractor.extract_one(im) for im in images])
    raw = model.detector.predict_proba(X)[:, 1]
    assert np.all(np.abs(raw - 0.5) > 0.05)  # textured images: scores a temperature changes
    logit = np.log(np.clip(raw, 1e-7, 1 - 1e-7)) - np.log1p(-np.clip(raw, 1e-7, 1 - 1e-7))
    expected = 1 / (1 + np.exp(-logit / temperature))  # the former TemperatureCalibrator's formula
    np.testing.assert_array_equal(model.predict_proba_features(X), expected)
    np.testing.assert_array_equal(current.predict_proba_features(X), expected)

    model.save(tmp_path / "resaved")
    resaved = json.loads((tmp_path / "resaved" / "config.json").read_text())
    assert resaved["calibration"] == {"name": "temperature", "params": {}}
    again = load_model(tmp_path / "resaved")
    assert again.calibrator.temperature_ == temperature
    np.testing.assert_array_equal(again.predict_proba_features(X), expected)
