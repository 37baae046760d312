"""The shortcut audit's pixel checks: frames, caption strips and content, on synthetic sets and the shared data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gendetect.data.readers import read_records
from gendetect.data.records import ImageRecord
from gendetect.data.synthetic import make_synthetic_dataset, synthetic_image
from gendetect.evaluation.audit import (
    audit_warnings,
    border_features,
    illustration_score,
    photoreal,
    pixel_audit,
    procedural_illustration,
    shortcut_audit,
)
from tests.conftest import SHARED_DATA


def _write(images: list[tuple[Image.Image, str]], root: Path) -> list[ImageRecord]:
    recs = []
    for i, (im, label) in enumerate(images):
        p = root / label / f"{i:03d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        im.save(p)
        recs.append(ImageRecord(path=str(p), label=label, generator="g" if label == "fake" else "real", format="PNG"))
    return recs


def _framed(im: Image.Image, colour: tuple[int, int, int], pad: int = 12) -> Image.Image:
    out = Image.new("RGB", (im.width + 2 * pad, im.height + 2 * pad), colour)
    out.paste(im, (pad, pad))
    return out


def _captioned(im: Image.Image, text: str | None) -> Image.Image:
    """The picture on top, a black panel below it holding ``text`` (or nothing), like the wright cards."""
    out = Image.new("RGB", (im.width, im.height * 3 // 2), (0, 0, 0))
    out.paste(im, (0, 0))
    if text:
        d = ImageDraw.Draw(out)
        for k, line in enumerate(text.split("\n")):
            d.text((4, im.height + 4 + 12 * k), line, fill=(255, 255, 255))
    return out


def test_border_check_flags_a_frame_and_passes_frameless_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    colours = [(255, 255, 0), (0, 0, 255), (255, 0, 255), (0, 160, 0)]
    # the same kind of picture in both classes: only the frame differs (grey for reals, a colour for fakes)
    framed = [(_framed(synthetic_image("real", 64, seed=i), (128, 128, 128)), "real") for i in range(16)]
    framed += [
        (_framed(synthetic_image("real", 64, seed=100 + i), colours[rng.integers(4)]), "fake") for i in range(16)
    ]
    result = pixel_audit(_write(framed, tmp_path / "framed"), checks=("border",))["border"]
    assert result["warn"] and result["auc"] > 0.9, result
    assert "centre crops inside the frame" in result["message"]
    # no frames, but the classes differ everywhere (the up-sampling trace): not a border leak
    plain = make_synthetic_dataset(tmp_path / "plain", n_per_class=16, size=64, generators=("g",))
    result = pixel_audit(read_records(plain), checks=("border",))["border"]
    assert not result["warn"], result


def test_border_features_see_the_frame_not_the_picture() -> None:
    pic = synthetic_image("real", 64, seed=3)
    outer, centre = border_features(_framed(pic, (10, 200, 30)))
    assert outer[:3] == pytest.approx(np.array([10, 200, 30]) / 255, abs=1e-6)  # the 2 px ring's mean colour
    assert outer[5] == 1.0  # flat
    assert centre[5] < 1.0  # the picture's own ring is not


def test_text_strip_check_flags_a_caption_for_one_class(tmp_path: Path) -> None:
    images = [(_captioned(synthetic_image("real", 64, seed=i), None), "real") for i in range(16)]
    images += [
        (_captioned(synthetic_image("real", 64, seed=50 + i), "Generated using\nmodel X, prompt\nused: a cat"), "fake")
        for i in range(16)
    ]
    result = pixel_audit(_write(images, tmp_path / "cards"), checks=("text_strip",))["text_strip"]
    assert result["warn"] and result["auc"] > 0.9, result
    assert "crop off the caption panel" in result["message"]
    blank = [(_captioned(synthetic_image("real", 64, seed=i), None), "real" if i % 2 else "fake") for i in range(32)]
    assert not pixel_audit(_write(blank, tmp_path / "blank"), checks=("text_strip",))["text_strip"]["warn"]


def test_illustration_score_separates_flat_art_from_photo_like_images() -> None:
    art = illustration_score([procedural_illustration(seed) for seed in range(1000, 1010)])
    photos = illustration_score([synthetic_image(label, 128, seed=s) for s in range(5) for label in ("real", "fake")])
    assert art.shape == (10,) and photos.shape == (10,)
    assert art.min() > photos.max() and np.median(art) > 0.8 and np.median(photos) < 0.2
    arr = np.asarray(procedural_illustration(1000))  # arrays work as well as PIL images
    assert illustration_score([arr])[0] == pytest.approx(art[0])
    assert photoreal([synthetic_image("real", 96, seed=1), procedural_illustration(1001)]).tolist() == [True, False]


def test_content_check_reports_illustration_fractions(tmp_path: Path) -> None:
    images = [(synthetic_image("real", 96, seed=i), "real") for i in range(12)]
    images += [(procedural_illustration(2000 + i), "fake") for i in range(12)]
    result = pixel_audit(_write(images, tmp_path), checks=("content",))["content"]
    assert result["warn"] and result["auc"] > 0.9
    assert result["illustration_fraction"]["fake"] > 0.8 and result["illustration_fraction"]["real"] < 0.2
    assert "photoreal-only" in result["message"]


def test_shortcut_audit_keeps_its_keys_and_collects_warnings(tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "s", n_per_class=10, size=48, generators=("g",))
    records = read_records(root)
    a = shortcut_audit(records)
    assert {"auc", "margin", "flagged", "message", "per_feature", "n"} <= set(a)
    assert {"border", "text_strip", "content"} <= set(a)
    assert a["warnings"] == [] and a["flagged_checks"] == []
    no_pixels = shortcut_audit(records, pixels=False)
    assert "border" not in no_pixels and no_pixels["auc"] == a["auc"]
    assert audit_warnings({"flagged": True, "message": "old style"}) == ["old style"]
    assert audit_warnings({"flagged": False, "message": "fine"}) == [] and audit_warnings(None) == []


def test_pixel_checks_cap_the_number_of_images(tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "s", n_per_class=20, size=32, generators=("g",))
    result = pixel_audit(read_records(root), max_images=12, checks=("border",))
    assert result["border"]["n"] == 12


def test_unreadable_images_are_skipped(tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "s", n_per_class=6, size=32, generators=("g",))
    records = read_records(root)
    records.append(ImageRecord(path=str(tmp_path / "missing.png"), label="fake"))
    assert pixel_audit(records, checks=("content",))["content"]["n"] == 12


@pytest.mark.skipif(not (SHARED_DATA / "cnndetection-gallery").is_dir(), reason="needs ../shared/data")
def test_border_check_catches_the_cnndetection_frames() -> None:
    records = read_records(SHARED_DATA / "cnndetection-gallery", hash=False)
    result = pixel_audit(records, checks=("border",), max_images=200)["border"]
    assert result["warn"] and result["auc"] > 0.95, result


@pytest.mark.skipif(not (SHARED_DATA / "wright-photos").is_dir(), reason="needs ../shared/data")
def test_text_strip_check_catches_the_wright_captions() -> None:
    records = read_records(SHARED_DATA / "wright-photos", hash=False)
    result = pixel_audit(records, checks=("text_strip",))["text_strip"]
    assert result["warn"] and result["auc"] > 0.9, result


def test_model_scan_and_server_show_the_stored_audit(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gendetect.cli import main
    from gendetect.detectors import DETECTORS
    from gendetect.features import EXTRACTORS
    from gendetect.training import train_pipeline

    pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
    from gendetect.server.app import card_summary

    images = [(_framed(synthetic_image("real", 48, seed=i), (128, 128, 128)), "real") for i in range(12)]
    images += [(_framed(synthetic_image("fake", 48, seed=50 + i), (255, 255, 0)), "fake") for i in range(12)]
    records = _write(images, tmp_path / "data")
    pipeline = train_pipeline(
        records,
        EXTRACTORS.from_config({"name": "pixel-stats", "params": {}}),
        DETECTORS.from_config({"name": "logistic", "params": {}}),
        n_folds=3,
    )
    assert pipeline.info["audit"]["flagged_checks"] == ["border"]
    model_dir = pipeline.save(tmp_path / "m")
    runner = CliRunner()
    shown = runner.invoke(main, ["model", str(model_dir)])
    assert shown.exit_code == 0, shown.output
    assert "audit warning" in shown.stdout and "centre crops inside the frame" in shown.stdout
    assert "validation" in shown.stdout and "AUC" in shown.stdout and "uncalibrated score" in shown.stdout
    as_json = runner.invoke(main, ["model", str(model_dir), "--json"])
    assert "border" in json.loads(as_json.stdout)["audit_warnings"][0]
    scanned = runner.invoke(main, ["scan", str(tmp_path / "data" / "fake"), "-m", str(model_dir), "--format", "csv"])
    assert scanned.exit_code == 0, scanned.output
    assert scanned.stderr.count("SHORTCUT WARNING (border)") == 1  # once, not per image
    assert "SHORTCUT" not in scanned.stdout
    card = card_summary(pipeline)  # what /v1/models serves to the page
    assert card["calibrated"] is False and len(card["audit_warnings"]) == 1
    assert card["validation_groups"]["all"]["n_real"] == 12


def test_unknown_pixel_check_lists_the_valid_ones() -> None:
    from gendetect.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="border, text_strip, content"):
        pixel_audit([], checks=("frames",))
