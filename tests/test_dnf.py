"""Diffusion Noise Features on tiny random diffusers models saved to disk and loaded through the real path.

The three checks of the issue: replaying the recorded noise through the DDIM scheduler gives back the input; steps=1
makes exactly one UNet call per image; (in test_cnn.py) the CNN learns a synthetic task. Plus the latent (Stable
Diffusion) path, offline errors, feature-store caching, ``features show`` and a raw-image scan with a dnf+cnn model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")

import torch
from click.testing import CliRunner
from PIL import Image

from gendetect.cli import main
from gendetect.data.readers import read_records
from gendetect.data.synthetic import make_synthetic_dataset, synthetic_image
from gendetect.errors import ModelFormatError, WeightsNotFoundError
from gendetect.features import EXTRACTORS, create_extractor
from gendetect.features.featurize import featurize
from gendetect.features.store import FeatureStore


def save_tiny_ddpm(path: Path, seed: int = 0) -> Path:
    """A tiny pixel-space DDPM repository (diffusers dummy-component style): ``unet/``, ``scheduler/``,
    ``model_index.json``, as ``google/ddpm-*`` repositories are laid out. 32 px, UNet channels (4, 8)."""
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(4, 8),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=2,
        attention_head_dim=2,
    )
    # the real repositories ship a DDPM scheduler config with clip_sample=True: the extractor must cope
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000, clip_sample=True)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_ddpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_ddpm(tmp_path_factory.mktemp("models") / "tiny-ddpm")


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return [synthetic_image(label, 40, seed=i) for i, label in enumerate(["real", "fake", "real"])]


def _replay(ext, inv) -> torch.Tensor:
    sched = ext.sampling_scheduler()
    x = inv.inverted
    for t, eps in zip(sched.timesteps, reversed(inv.noise)):
        x = sched.step(eps, t, x).prev_sample
    return x


@pytest.mark.parametrize("steps", [1, 5])
def test_replaying_recorded_noise_returns_the_input(tiny_ddpm: Path, images: list, steps: int) -> None:
    ext = create_extractor("dnf", model=str(tiny_ddpm), steps=steps)
    assert ext.model_kind == "pixel" and ext.map_shape == (3, 32, 32)
    inv = ext.invert(images)
    assert len(inv.noise) == steps and inv.timesteps[0] == 0 and inv.timesteps == sorted(inv.timesteps)
    assert not torch.allclose(inv.inverted, inv.start)  # the inversion went somewhere
    torch.testing.assert_close(_replay(ext, inv), inv.start, atol=1e-4, rtol=0)


def test_steps_1_is_one_unet_call_per_image_at_the_first_timestep(tiny_ddpm: Path, images: list) -> None:
    ext = create_extractor("dnf", model=str(tiny_ddpm), steps=1, batch_size=1, normalize="none")
    unet = ext._load()["unet"]
    calls: list[tuple[int, int]] = []
    forward = unet.forward

    def counting(sample, timestep, *args, **kwargs):
        calls.append((int(sample.shape[0]), int(timestep)))
        return forward(sample, timestep, *args, **kwargs)

    unet.forward = counting
    X = ext.extract_batch(images)
    assert calls == [(1, 0)] * len(images) and ext.unet_calls == len(images) == ext.unet_images
    # the authors' DNF: the noise the UNet estimates for the clean image at t = 0
    with torch.no_grad():
        direct = forward(ext.pixels(images[:1]), 0).sample[0].numpy()
    np.testing.assert_allclose(X[0].reshape(3, 32, 32), direct, atol=1e-5)

    calls.clear()
    ext.batch_size = 8
    ext.extract_batch(images)
    assert calls == [(len(images), 0)]  # batched: one call for the batch, still one estimate per image
    ext.steps = 4  # (a new extractor would be built from a config; counting is all that matters here)
    calls.clear()
    ext.extract_batch(images)
    assert [t for _, t in calls] == [0, 250, 500, 750]


def test_map_options_shape_and_normalisation(tiny_ddpm: Path, images: list) -> None:
    every = create_extractor("dnf", model=str(tiny_ddpm), steps=3, record="all", size=16)
    assert every.map_shape == (9, 16, 16) and every.dim == 9 * 16 * 16
    X = every.extract_batch(images)
    assert X.shape == (3, every.dim) and X.min() >= 0 and X.max() <= 1 and np.isclose(X[0].max(), 1)
    std = create_extractor("dnf", model=str(tiny_ddpm), steps=2, record="mean", normalize="standard")
    Xs = std.extract_batch(images)
    np.testing.assert_allclose(Xs.mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(Xs.std(axis=1), 1, atol=1e-3)
    again = EXTRACTORS.from_config(std.get_config())  # a saved config rebuilds the same extractor
    np.testing.assert_allclose(again.extract_batch(images[:1]), Xs[:1], atol=1e-4)
    with pytest.raises(ValueError, match="multiple of 2"):
        create_extractor("dnf", model=str(tiny_ddpm), size=33)
    with pytest.raises(ValueError, match="record"):
        create_extractor("dnf", model=str(tiny_ddpm), record="first")


def test_missing_weights_say_how_to_fetch_them(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="hf download nobody/no-such-ddpm"):
        create_extractor("dnf", model="nobody/no-such-ddpm")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match="no diffusion UNet"):
        create_extractor("dnf", model=str(tmp_path / "empty"))


def test_hub_id_resolves_from_the_gendetect_cache(tiny_ddpm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import shutil

    shutil.copytree(tiny_ddpm, Path(os.environ["GENDETECT_CACHE"]) / "google--ddpm-tiny")
    ext = create_extractor("dnf", model="google/ddpm-tiny")
    assert ext.map_shape == (3, 32, 32) and ext.extract_batch([synthetic_image("real", 32)]).shape == (1, 3072)


def test_feature_store_caches_dnf_maps(tiny_ddpm: Path, tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "data", n_per_class=3, size=32)
    records = read_records(root)
    first = create_extractor("dnf", model=str(tiny_ddpm), steps=2)
    X1, kept, failed = featurize(records, first, store=FeatureStore(tmp_path / "store", first))
    assert len(kept) == 6 and not failed and first.unet_images == 12
    second = create_extractor("dnf", model=str(tiny_ddpm), steps=2)
    X2, _, _ = featurize(read_records(root), second, store=FeatureStore(tmp_path / "store", second))
    assert second.unet_calls == 0  # every map came from the store
    np.testing.assert_array_equal(X1, X2)
    other = create_extractor("dnf", model=str(tiny_ddpm), steps=3)
    assert other.config_id != first.config_id  # the key holds the whole DNF config


def test_features_show_writes_a_png_next_to_the_image(tiny_ddpm: Path, tmp_path: Path) -> None:
    img = tmp_path / "photo.jpg"
    synthetic_image("fake", 48).save(img, quality=90)
    runner = CliRunner()
    result = runner.invoke(main, ["features", "show", str(img), "-e", f"model={tiny_ddpm}", "-e", "steps=2"])
    assert result.exit_code == 0, result.output
    png = tmp_path / "photo.jpg.dnf.png"
    assert str(png) in result.output
    with Image.open(png) as im:
        assert im.size == (32, 32) and im.mode == "RGB"
    result = runner.invoke(main, ["features", "show", str(img), "--extractor", "rgb", "-e", "size=24"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "photo.jpg.rgb.png").size == (24, 24)
    result = runner.invoke(main, ["features", "show", str(img), "--extractor", "pixel-stats"])
    assert result.exit_code == 2 and "not maps" in result.output


def test_train_and_scan_raw_images_with_a_dnf_cnn_model(tiny_ddpm: Path, tmp_path: Path) -> None:
    """The two commands of the issue's "done means", on the tiny model: train, then scan a raw JPEG."""
    data = make_synthetic_dataset(tmp_path / "data", n_per_class=8, size=40)
    runner = CliRunner()
    args = ["train", "--preset", "dnf", "--data", str(data), "-o", str(tmp_path / "model")]
    args += ["-e", f"model={tiny_ddpm}", "-e", "size=32", "-p", "arch=test_resnet", "-p", "epochs=2"]
    args += ["-p", "batch_size=4", "-p", 'augment={"flip": true}', "--store", str(tmp_path / "store")]
    args += ["-p", "pretrained=imagenet-or-scratch"]  # offline, the preset's 'imagenet' alone is an error
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["extractor"]["name"] == "dnf" and config["detector"]["name"] == "cnn"
    assert config["detector"]["params"]["checkpoint_dir"] == "auto"
    assert config["threshold_rule"]["scheme"].startswith("held-out")  # one CNN fit, not 5 extra CV fits
    # ImageNet weights or, as asked, from scratch: offline they are missing, and the config says so
    assert config["detector"]["training"]["init"].startswith("scratch (ImageNet weights")

    raw = tmp_path / "raw.jpg"
    synthetic_image("fake", 57, seed=99).save(raw, quality=85)  # odd size, JPEG: never converted in advance
    result = runner.invoke(main, ["scan", "--model", str(tmp_path / "model"), str(raw), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["status"] == "ok" and 0 <= rows[0]["p_fake"] <= 1 and rows[0]["verdict"] in ("real", "fake")
    # evaluation on a raw folder inverts and classifies the same way
    result = runner.invoke(
        main, ["evaluate", "--model", str(tmp_path / "model"), "--data", str(data), "--json", "--bootstrap", "10"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"]["n_unreadable"] == 0


# -- latent (Stable Diffusion) models ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.diffusers_dummies import save_tiny_sd_pipeline

    return save_tiny_sd_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


def test_latent_model_inverts_in_latent_space(tiny_sd: Path, images: list) -> None:
    ext = create_extractor("dnf", model=str(tiny_sd), steps=3)
    assert ext.model_kind == "latent" and ext.map_shape == (3, 32, 32)  # decoded through the VAE
    inv = ext.invert(images)
    assert inv.start.shape == (3, 4, 16, 16) and ext.unet_calls == 3
    torch.testing.assert_close(_replay(ext, inv), inv.start, atol=1e-4, rtol=0)
    X = ext.extract_batch(images)
    assert X.shape == (3, 3 * 32 * 32) and np.isfinite(X).all()

    latent = create_extractor("dnf", model=str(tiny_sd), steps=1, output="latent", batch_size=2)
    assert latent.map_shape == (4, 16, 16)
    assert latent.extract_batch(images).shape == (3, 4 * 16 * 16)
    assert latent.unet_calls == 2 and latent.unet_images == 3  # batches of 2: one call per batch, one step each
    with pytest.raises(ValueError, match="multiple of 4"):
        create_extractor("dnf", model=str(tiny_sd), size=34)
    with pytest.raises(ModelFormatError, match="UNet2DConditionModel"):
        create_extractor("dnf", model=str(tiny_sd), kind="pixel")
