"""Pretrained representations on tiny random-weight models: the resolver's offline error, CLIP and timm
extractors, presets, the UnivFD head import, and train -> evaluate -> scan end to end. No network."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

torch = pytest.importorskip("torch", reason="the 'clip' extra (torch) is not installed")
pytest.importorskip("open_clip", reason="the 'clip' extra (open_clip_torch) is not installed")

from gendetect.cli import main  # noqa: E402
from gendetect.data.readers import read_records  # noqa: E402
from gendetect.data.synthetic import make_synthetic_dataset  # noqa: E402
from gendetect.detectors import DETECTORS  # noqa: E402
from gendetect.errors import UnknownNameError, WeightsNotFoundError  # noqa: E402
from gendetect.features import EXTRACTORS, create_extractor, list_extractors  # noqa: E402
from gendetect.hub import resolve_weights  # noqa: E402
from gendetect.pipeline import load_model, scan  # noqa: E402
from gendetect.presets import get_preset, import_univfd_head  # noqa: E402

from .conftest import SHARED_DATA  # noqa: E402

TINY_CLIP = {"model": "test-tiny-clip", "pretrained": "random"}
UNIVFD_HEAD = SHARED_DATA.parent / "weights" / "univfd" / "fc_weights.pth"


def _images(n: int = 3) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (20 + 40 * i, 50 + 10 * i, 3), dtype=np.uint8)) for i in range(n)]


def test_lazy_registration_lists_torch_extractors_without_importing_torch_models() -> None:
    assert {"openclip", "timm"} <= set(list_extractors())


@pytest.mark.parametrize("spec", ["hf-hub:openai/clip-vit-large-patch14", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"])
def test_resolver_fails_fast_and_says_how_to_fetch(spec: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(WeightsNotFoundError) as e:
        resolve_weights(spec, filename="open_clip_model.safetensors", what="CLIP weights")
    assert time.perf_counter() - t0 < 5
    msg = str(e.value)
    assert "offline" in msg and "hf download" in msg and "open_clip_model.safetensors" in msg
    assert "GENDETECT_CACHE" in msg


def test_resolver_finds_local_files_and_the_gendetect_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"x")
    assert resolve_weights(f) == f
    assert resolve_weights(tmp_path, filename="w.safetensors") == f
    cached = tmp_path / "cache" / "org--repo" / "model.safetensors"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"y")
    monkeypatch.setenv("GENDETECT_CACHE", str(tmp_path / "cache"))
    assert resolve_weights("hf-hub:org/repo", filename="model.safetensors") == cached
    with pytest.raises(WeightsNotFoundError, match="neither an existing file"):
        resolve_weights("./nope/not-here.bin")


def test_missing_real_clip_weights_never_fall_back_to_random() -> None:
    with pytest.raises(WeightsNotFoundError, match="ViT-B-32/openai"):
        create_extractor("openclip", model="ViT-B-32", pretrained="openai")


def test_tiny_clip_features_are_deterministic_and_config_roundtrips() -> None:
    torch.manual_seed(0)
    ext = create_extractor("openclip", **TINY_CLIP)
    feats = ext.extract_batch(_images())
    assert feats.shape == (3, ext.dim) and feats.dtype == np.float32 and np.isfinite(feats).all()
    np.testing.assert_array_equal(feats, ext.extract_batch(_images()))
    # one image alone equals its row of the batch up to float rounding (torch picks other kernels per batch size)
    np.testing.assert_allclose(ext.extract_one(_images()[1]), feats[1], rtol=1e-5, atol=1e-6)
    assert ext.encode_text(["a photo of a cat", "a dog"]).shape == (2, ext.dim)
    rebuilt = EXTRACTORS.from_config(ext.get_config())  # random weights differ, the architecture does not
    assert rebuilt.dim == ext.dim and rebuilt.get_config() == ext.get_config()


def test_center_crop_never_resizes() -> None:
    ext = create_extractor("openclip", **TINY_CLIP)
    big = Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    h, w = ext._size
    centre = big.crop(((400 - w) // 2, (300 - h) // 2, (400 - w) // 2 + w, (300 - h) // 2 + h))
    np.testing.assert_array_equal(ext.extract_one(big), ext.extract_one(centre))
    normalised = create_extractor("openclip", **TINY_CLIP, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(normalised.extract_batch(_images()), axis=1), 1.0, rtol=1e-5)


def test_timm_tiny_vit() -> None:
    ext = create_extractor("timm", model="test_vit", pretrained="random")
    feats = ext.extract_batch(_images())
    assert feats.shape == (3, ext.dim) and np.isfinite(feats).all()
    with pytest.raises(WeightsNotFoundError, match="resnet50"):
        create_extractor("timm", model="resnet50.a1_in1k")


def test_presets() -> None:
    univfd = get_preset("univfd")
    assert univfd["extractor"]["params"]["model"] == "ViT-L-14" and univfd["detector"]["name"] == "logistic"
    assert univfd["extractor"]["params"]["preprocess"] == "center-crop"
    assert get_preset("coccomini")["extractor"]["params"]["normalize"] is True
    with pytest.raises(UnknownNameError, match="univfd"):
        get_preset("unifd")


@pytest.mark.shared_data
def test_official_univfd_head_imports_exactly(tmp_path: Path) -> None:
    if not UNIVFD_HEAD.exists():
        pytest.skip(f"{UNIVFD_HEAD} is absent")
    out = import_univfd_head(UNIVFD_HEAD, tmp_path / "univfd")
    config = json.loads((out / "config.json").read_text())
    assert config["extractor"]["params"]["model"] == "ViT-L-14" and config["threshold"] == 0.5
    from safetensors.numpy import load_file

    detector = DETECTORS.from_config(config["detector"]).load_state_dict(load_file(str(out / "model.safetensors")))
    official = torch.load(UNIVFD_HEAD, map_location="cpu", weights_only=True)
    w, b = official["weight"].double().numpy(), official["bias"].double().numpy()
    np.testing.assert_array_equal(detector.coef_, w.ravel())  # values survive bit for bit
    x = np.random.default_rng(0).normal(size=(8, 768))
    np.testing.assert_allclose(detector.decision_function(x), (x @ w.T + b).ravel(), rtol=0, atol=1e-9)
    result = CliRunner().invoke(main, ["import", "univfd", str(UNIVFD_HEAD), "-o", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    # scanning needs the CLIP backbone, which is not here: a clear error, not random weights
    with pytest.raises(WeightsNotFoundError, match="ViT-L-14"):
        load_model(out)


def test_train_evaluate_scan_with_tiny_clip(tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "data", n_per_class=8, size=64, generators=("g1", "g2"))
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(root),
            "--extractor",
            "openclip",
            "-e",
            "model=test-tiny-clip",
            "-e",
            "pretrained=random",
            "--detector",
            "logistic",
            "--folds",
            "2",
            "-o",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 0, result.output
    model = load_model(tmp_path / "m")
    assert model.extractor.get_config()["params"]["model"] == "test-tiny-clip"
    rows = list(scan([str(p) for p in sorted((root / "g1" / "1_fake").iterdir())][:3], model))
    assert [r.status for r in rows] == ["ok"] * 3
    result = CliRunner().invoke(
        main, ["evaluate", "--model", str(tmp_path / "m"), "--data", str(root), "--json", "--bootstrap", "0"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["all"]["n_fake"] == 16
    assert len(read_records(root)) == 32


def test_hf_clip_tiny_and_the_real_loading_path(tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="transformers is not installed")
    ext = create_extractor("hf-clip", model="test-tiny-clip", pretrained="random")
    feats = ext.extract_batch(_images())
    assert feats.shape == (3, ext.dim) and np.isfinite(feats).all()
    # save the tiny model as a checkpoint folder, then load it through the real loading code
    ext._net.save_pretrained(tmp_path / "ckpt")
    from transformers import CLIPImageProcessor

    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        tmp_path / "ckpt"
    )
    loaded = create_extractor("hf-clip", model=str(tmp_path / "ckpt"))
    np.testing.assert_allclose(loaded.extract_batch(_images()), feats, rtol=1e-5, atol=1e-6)
    with pytest.raises(WeightsNotFoundError, match="clip-vit-large-patch14"):
        create_extractor("hf-clip", model="openai/clip-vit-large-patch14")


def test_hf_clip_missing_weights_name_every_file_with_one_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline with an empty cache: one error lists all three checkpoint files and one command fetches them all
    (not one round trip per file); with one file cached, the others. Never random weights."""
    pytest.importorskip("transformers", reason="transformers is not installed")
    repo = "openai/clip-vit-large-patch14"
    cache = tmp_path / "cache"
    monkeypatch.setenv("GENDETECT_CACHE", str(cache))

    def fetch_lines() -> tuple[str, list[str]]:
        with pytest.raises(WeightsNotFoundError) as e:
            create_extractor("hf-clip", model=repo)
        msg = str(e.value)
        return msg, [line.split() for line in msg.splitlines() if "hf download" in line]

    msg, commands = fetch_lines()
    assert "3 of 3 files missing" in msg and "offline" in msg and "GENDETECT_CACHE" in msg
    files = ["config.json", "model.safetensors", "preprocessor_config.json"]
    for f in files:
        assert f"- {f} not found" in msg, msg
    assert commands == [["hf", "download", repo, *files, "--local-dir", str(cache / "openai--clip-vit-large-patch14")]]
    (cache / "openai--clip-vit-large-patch14").mkdir(parents=True)
    (cache / "openai--clip-vit-large-patch14" / "config.json").write_text("{}")
    msg, commands = fetch_lines()
    assert "2 of 3 files missing" in msg and "- config.json" not in msg
    assert [c[3:5] for c in commands] == [["model.safetensors", "preprocessor_config.json"]]


def test_caption_fusion_train_store_and_scan(tmp_path: Path) -> None:
    """Images identical in distribution, captions that carry the label: only the with_text features can tell."""
    from gendetect.data.synthetic import synthetic_image, write_labels_csv
    from gendetect.features.featurize import featurize
    from gendetect.features.store import FeatureStore
    from gendetect.training import train_pipeline

    rows = []
    for i in range(16):
        label = "fake" if i % 2 else "real"
        synthetic_image("real", 48, seed=i).save(tmp_path / f"{i}.png")  # same image process for both labels
        caption = "an illustration made by a computer" if label == "fake" else "a street photograph at noon"
        rows.append({"file": f"{i}.png", "label": label, "generator": "g" if i % 2 else "real", "caption": caption})
    write_labels_csv(tmp_path, rows)
    records = read_records(tmp_path)
    with_text = create_extractor("openclip", **TINY_CLIP, with_text=True)
    assert with_text.uses_captions and with_text.dim == 2 * create_extractor("openclip", **TINY_CLIP).dim
    model = train_pipeline(records, with_text, DETECTORS.from_config({"name": "logistic", "params": {}}), n_folds=2)
    assert model.info["validation"]["all"]["auc"] > 0.9

    store = FeatureStore(tmp_path / "store", with_text)
    X1, _, _ = featurize(records, with_text, store=store)
    records[0].caption = "something else entirely"  # a different caption is a different stored feature
    X2, _, _ = featurize(records, with_text, store=FeatureStore(tmp_path / "store", with_text))
    assert not np.allclose(X1[0], X2[0]) and np.allclose(X1[1:], X2[1:])

    model.save(tmp_path / "m")
    (tmp_path / "1.txt").write_text("an illustration made by a computer")  # sidecar caption
    result = CliRunner().invoke(
        main, ["scan", str(tmp_path / "1.png"), str(tmp_path / "2.png"), "-m", str(tmp_path / "m"), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    scanned = json.loads(result.stdout)
    assert [r["has_caption"] for r in scanned] == [True, False]
    assert get_preset("coccomini-text")["extractor"]["params"]["with_text"] is True


def test_caption_protocol_compares_with_and_without_text(tmp_path: Path) -> None:
    from gendetect.data.synthetic import synthetic_image, write_labels_csv
    from gendetect.evaluation.protocols import ProtocolConfig, run_protocol

    rows = []
    for i in range(24):
        label = "fake" if i % 2 else "real"
        synthetic_image("real", 48, seed=i).save(tmp_path / f"{i}.png")
        caption = "an illustration made by a computer" if label == "fake" else "a street photograph at noon"
        rows.append(
            {
                "file": f"{i}.png",
                "label": label,
                "generator": "g" if i % 2 else "real",
                "caption": caption,
                "source": f"s{i % 3}",
            }
        )
    write_labels_csv(tmp_path, rows)
    report = run_protocol(
        ProtocolConfig(
            protocol="captions",
            data=str(tmp_path),
            n_folds=3,
            extractor={"name": "openclip", "params": TINY_CLIP},
            detector={"name": "logistic", "params": {}},
        )
    )
    aucs = report["metrics"]
    assert aucs["image + caption"]["all"]["auc"] > 0.9  # the caption carries the label here
    assert aucs["image only"]["all"]["auc"] < aucs["image + caption"]["all"]["auc"]
    assert report["n_with_caption"] == 24


def test_device_override_when_loading(tmp_path: Path) -> None:
    from gendetect.pipeline import DetectionPipeline

    ext = create_extractor("openclip", **TINY_CLIP)
    rng = np.random.default_rng(0)
    det = DETECTORS.from_config({"name": "logistic", "params": {}}).fit(
        rng.normal(size=(10, ext.dim)), np.r_[np.zeros(5), np.ones(5)]
    )
    DetectionPipeline(ext, det).save(tmp_path / "m")
    assert load_model(tmp_path / "m", device="cpu").extractor.device == "cpu"
    assert load_model(device="cuda").extractor.get_config()["name"] == "tiles"  # weight-free: no device to set
