"""The CNN detector and the generic training loop: learning, saving, ImageNet init (an error when missing, or a
fallback only when asked for), the base-class contract (float32 rows, self-validation), resume."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("timm")

import torch
from sklearn.metrics import roc_auc_score

from gendetect.data.readers import read_records
from gendetect.data.synthetic import make_synthetic_dataset, synthetic_image
from gendetect.detectors import Detector, create_detector
from gendetect.detectors.cnn import infer_input_shape
from gendetect.detectors.torch_loop import AugmentConfig, CheckpointMismatchError, augment_batch
from gendetect.errors import WeightsNotFoundError
from gendetect.features import create_extractor
from gendetect.training import train_pipeline

TINY = {"arch": "test_resnet", "pretrained": "none", "batch_size": 8, "lr": 2e-3, "patience": 0}


def rgb_data(n_per_class: int, size: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    ext = create_extractor("rgb", size=size)
    labels = ["real", "fake"] * n_per_class
    X = np.stack([ext.extract_one(synthetic_image(lab, size, seed=offset + i)) for i, lab in enumerate(labels)])
    return X, np.array([lab == "fake" for lab in labels], dtype=int)


@pytest.fixture(scope="module")
def train_set() -> tuple[np.ndarray, np.ndarray]:
    return rgb_data(40, 64, 0)


@pytest.fixture(scope="module")
def test_set() -> tuple[np.ndarray, np.ndarray]:
    return rgb_data(30, 64, 10_000)


def test_cnn_learns_the_synthetic_task_in_a_few_epochs(train_set: tuple, test_set: tuple, tmp_path: Path) -> None:
    X, y = train_set
    det = create_detector("cnn", epochs=6, **TINY).fit(X, y)
    Xt, yt = test_set
    assert np.mean(det.predict(Xt) == yt) >= 0.9
    assert roc_auc_score(yt, det.decision_function(Xt)) >= 0.97
    assert len(det.history_) == 6 and {"train_loss", "val_loss", "val_acc"} <= set(det.history_[0])

    det.save(tmp_path / "det")  # config.json + safetensors, no pickle
    loaded = Detector.load(tmp_path / "det")
    np.testing.assert_allclose(loaded.decision_function(Xt), det.decision_function(Xt), atol=1e-5)
    saved = json.loads((tmp_path / "det" / "config.json").read_text())
    assert saved["training"]["init"] == "scratch (pretrained='none')" and loaded.init_ == det.init_


def test_missing_imagenet_weights_are_an_error_naming_them_and_the_fix(train_set: tuple) -> None:
    X, y = train_set
    with pytest.raises(WeightsNotFoundError) as e:
        create_detector("cnn", **{**TINY, "pretrained": "imagenet"}, epochs=1).fit(X[:16], y[:16])
    msg = str(e.value)
    assert "timm/test_resnet.r160_in1k" in msg and "hf download timm/test_resnet.r160_in1k" in msg
    assert "pretrained='imagenet-or-scratch'" in msg and "pretrained='scratch'" in msg


def test_scratch_is_asked_for_and_stated(train_set: tuple) -> None:
    X, y = train_set
    det = create_detector("cnn", **{**TINY, "pretrained": "scratch"}, epochs=1).fit(X[:16], y[:16])
    assert det.init_ == "scratch (pretrained='scratch')" and det.get_config()["training"]["init"] == det.init_


def test_imagenet_or_scratch_trains_from_scratch_with_a_stated_warning(
    train_set: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    X, y = train_set
    with caplog.at_level(logging.WARNING, logger="gendetect.detectors.cnn"):
        det = create_detector("cnn", **{**TINY, "pretrained": "imagenet-or-scratch"}, epochs=1).fit(X[:16], y[:16])
    assert "FROM SCRATCH" in caplog.text and "hf download timm/test_resnet.r160_in1k" in caplog.text
    assert det.init_.startswith("scratch (ImageNet weights timm/test_resnet.r160_in1k not found")
    assert det.get_config()["training"]["init"] == det.init_  # written into the saved config: never silent


def test_imagenet_weights_from_the_cache_initialise_the_network(train_set: tuple) -> None:
    import timm
    from safetensors.torch import save_file

    ref = timm.create_model("test_resnet", pretrained=False)  # stands in for the hub's ImageNet weights
    folder = Path(os.environ["GENDETECT_CACHE"]) / "timm--test_resnet.r160_in1k"
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(folder / "model.safetensors"))
    X, y = train_set
    four = np.concatenate([X.reshape(-1, 3, 64, 64), X.reshape(-1, 3, 64, 64)[:, :1]], axis=1).reshape(len(X), -1)
    det = create_detector("cnn", **{**TINY, "pretrained": "imagenet"}, epochs=0)
    det.fit(four, y)  # 4-channel maps (latent DNF): the first convolution is adapted from the RGB one
    assert det.init_.startswith("imagenet (model.safetensors of timm/test_resnet.r160_in1k")
    stem = det.net_.net.conv1[0].weight.detach()
    assert stem.shape[1] == 4
    torch.testing.assert_close(stem[:, 1], ref.conv1[0].weight[:, 1].detach() * 3 / 4)  # timm's adapt_input_conv


def test_training_resumes_after_a_kill_and_ends_as_an_uninterrupted_run(train_set: tuple, tmp_path: Path) -> None:
    X, y = train_set[0][:32], train_set[1][:32]
    params = {**TINY, "epochs": 4, "checkpoint_dir": str(tmp_path / "ckpt")}

    def kill_after_epoch_1(epoch: int, record: dict) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    first = create_detector("cnn", **params)
    first.epoch_callbacks = [kill_after_epoch_1]
    with pytest.raises(KeyboardInterrupt):
        first.fit(X, y)
    meta = json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())
    assert meta["epoch"] == 1 and not meta["finished"]

    seen: list[int] = []
    resumed = create_detector("cnn", **params)
    resumed.epoch_callbacks = [lambda epoch, record: seen.append(epoch)]
    resumed.fit(X, y)
    assert seen == [2, 3] and len(resumed.history_) == 4  # it went on at epoch 2

    straight = create_detector("cnn", **{**params, "checkpoint_dir": str(tmp_path / "other")}).fit(X, y)
    assert [h["train_loss"] for h in resumed.history_] == pytest.approx([h["train_loss"] for h in straight.history_])
    np.testing.assert_allclose(resumed.decision_function(X), straight.decision_function(X), atol=1e-5)

    again = create_detector("cnn", **params)
    again.epoch_callbacks = [lambda epoch, record: seen.append(epoch)]
    again.fit(X, y)  # a finished run is loaded, not retrained
    assert seen == [2, 3]
    with pytest.raises(CheckpointMismatchError, match="another training run"):
        create_detector("cnn", **params).fit(X[:30], y[:30])


def test_train_pipeline_fits_a_self_validating_detector_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gendetect.detectors.cnn import CNNDetector

    fits: list[int] = []
    original = CNNDetector._fit
    monkeypatch.setattr(CNNDetector, "_fit", lambda self, X, t: (fits.append(len(X)), original(self, X, t)))
    records = read_records(make_synthetic_dataset(tmp_path / "d", n_per_class=10, size=64))
    pipeline = train_pipeline(records, create_extractor("rgb", size=64), create_detector("cnn", epochs=2, **TINY))
    assert fits == [20]  # no cross-validation refits
    rule = pipeline.info["threshold_rule"]
    assert rule["scheme"].startswith("held-out 20% stratified validation split") and rule["n_real_validation"] == 2
    assert pipeline.info["validation"]["all"]["n_real"] + pipeline.info["validation"]["all"]["n_fake"] == 4


def test_the_base_class_carries_the_contract(train_set: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    from gendetect.detectors.cnn import CNNDetector

    # no fit/decision_function of its own: float32 rows and self-validation are declared to the base class
    assert "fit" not in vars(CNNDetector) and "decision_function" not in vars(CNNDetector)
    assert CNNDetector.input_dtype is np.float32 and Detector.input_dtype is np.float64
    seen: list[np.dtype] = []
    original_fit, original_decision = CNNDetector._fit, CNNDetector._decision
    monkeypatch.setattr(CNNDetector, "_fit", lambda self, X, t: (seen.append(X.dtype), original_fit(self, X, t))[1])
    monkeypatch.setattr(CNNDetector, "_decision", lambda self, X: (seen.append(X.dtype), original_decision(self, X))[1])
    X, y = train_set[0][:16], train_set[1][:16]
    det = create_detector("cnn", epochs=1, **TINY).fit(X.astype(np.float64), y)
    det.decision_function(X[:4].astype(np.float64))
    assert seen == [np.float32, np.float32]
    index, scores, scheme = det.held_out()
    assert det.validates_itself and len(index) == len(scores) and set(index) < set(range(16))
    assert np.all((scores >= 0) & (scores <= 1)) and scheme.startswith("held-out 20%")
    assert not create_detector("cnn", val_fraction=0).validates_itself
    logistic = create_detector("logistic").fit(X, y)
    assert not logistic.validates_itself
    with pytest.raises(Exception, match="no validation split of its own"):
        logistic.held_out()


def test_augmentations() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 40, 40) * 255
    cfg = AugmentConfig(flip=True, crop=32, blur_prob=1.0, blur_sigma=(1.0, 2.0), jpeg_prob=1.0, jpeg_quality=(50, 60))
    out = augment_batch(x, cfg, gen)
    assert out.shape == (6, 3, 32, 32) and not torch.equal(out, x[..., 4:36, 4:36])
    same = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(out, same)  # deterministic given the generator: what makes resume exact
    with pytest.raises(ValueError, match="JPEG augmentation needs 3-channel"):
        augment_batch(torch.rand(2, 4, 8, 8), AugmentConfig(jpeg_prob=1.0), gen)
    with pytest.raises(ValueError, match="unknown augmentation"):
        AugmentConfig.from_dict({"rotate": 1})
    assert infer_input_shape(3 * 64 * 64) == (3, 64, 64) and infer_input_shape(4 * 16 * 16) == (4, 16, 16)
    with pytest.raises(ValueError, match="input_shape"):
        infer_input_shape(7 * 5 * 3)
