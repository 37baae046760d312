"""Readers for each layout, manifests round-trip with provenance, describe warns about confounds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from gendetect.data.manifest import describe, read_manifest, read_manifest_metadata, write_manifest
from gendetect.data.readers import detect_layout, list_images, read_records
from gendetect.data.synthetic import synthetic_image, write_labels_csv
from gendetect.errors import DataSchemaError


def _img(path: Path, label: str = "real", fmt: str | None = None, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic_image(label, 48, seed=seed).save(path, format=fmt)
    return path


def _by_name(records: list) -> dict:
    return {Path(r.path).name: r for r in records}


def test_cnndetection_nested_per_generator(tmp_path: Path) -> None:
    _img(tmp_path / "progan" / "airplane" / "0_real" / "r.png")
    _img(tmp_path / "progan" / "airplane" / "1_fake" / "f.png", "fake")
    _img(tmp_path / "stylegan" / "0_real" / "r2.png")
    _img(tmp_path / "stylegan" / "1_fake" / "f2.png", "fake")
    assert detect_layout(tmp_path) == "cnndetection"
    recs = _by_name(read_records(tmp_path))
    assert (recs["r.png"].label, recs["r.png"].generator, recs["r.png"].subject) == ("real", "real", "airplane")
    assert (recs["f.png"].label, recs["f.png"].generator) == ("fake", "progan")
    assert recs["f.png"].source == recs["r.png"].source == f"{tmp_path.name}/progan"
    assert recs["f2.png"].generator == "stylegan" and recs["r2.png"].source == f"{tmp_path.name}/stylegan"


def test_cnndetection_flat(tmp_path: Path) -> None:
    _img(tmp_path / "0_real" / "a.png")
    _img(tmp_path / "1_fake" / "b.png", "fake")
    recs = _by_name(read_records(tmp_path))
    assert recs["a.png"].label == "real" and recs["b.png"].label == "fake"
    assert recs["b.png"].generator == tmp_path.name


def test_real_fake_layout(tmp_path: Path) -> None:
    _img(tmp_path / "real" / "x" / "a.jpg", fmt="JPEG")
    _img(tmp_path / "fake" / "sdxl" / "b.png", "fake")
    _img(tmp_path / "fake" / "c.png", "fake")
    assert detect_layout(tmp_path) == "real-fake"
    recs = _by_name(read_records(tmp_path))
    assert (recs["a.jpg"].label, recs["a.jpg"].generator) == ("real", "real")
    assert (recs["b.png"].label, recs["b.png"].generator) == ("fake", "sdxl")
    assert recs["c.png"].generator == "unknown"


def test_genimage_layout(tmp_path: Path) -> None:
    _img(tmp_path / "midjourney" / "train" / "ai" / "a.png", "fake")
    _img(tmp_path / "midjourney" / "train" / "nature" / "b.jpg", fmt="JPEG")
    _img(tmp_path / "midjourney" / "val" / "ai" / "c.png", "fake")
    assert detect_layout(tmp_path) == "genimage"
    recs = _by_name(read_records(tmp_path))
    assert (recs["a.png"].label, recs["a.png"].generator, recs["a.png"].split) == ("fake", "midjourney", "train")
    assert (recs["b.jpg"].label, recs["b.jpg"].generator) == ("real", "real")
    assert recs["c.png"].split == "val"


def test_labels_csv_with_extras(tmp_path: Path) -> None:
    _img(tmp_path / "imgs" / "a.png")
    _img(tmp_path / "imgs" / "b.png", "fake")
    write_labels_csv(
        tmp_path,
        [
            {"file": "imgs/a.png", "label": "0", "generator": "real", "split": "trainval", "caption": "", "seed": ""},
            {
                "file": "imgs/b.png",
                "label": "1",
                "generator": "sd-1.5",
                "split": "test",
                "caption": "a cat",
                "seed": "7",
            },
        ],
    )
    assert detect_layout(tmp_path) == "labels-csv"
    recs = _by_name(read_records(tmp_path))
    assert (recs["a.png"].label, recs["a.png"].split, recs["a.png"].caption) == ("real", "trainval", None)
    b = recs["b.png"]
    assert (b.label, b.generator, b.split, b.caption, b.extra) == ("fake", "sd-1.5", "test", "a cat", {"seed": "7"})


def test_jsonl_and_csv_manifests(tmp_path: Path) -> None:
    _img(tmp_path / "a.png")
    _img(tmp_path / "b.png", "fake")
    (tmp_path / "m.jsonl").write_text(
        json.dumps({"path": "a.png", "label": "real"})
        + "\n"
        + json.dumps({"path": "b.png", "label": "ai", "generator": "glide"})
        + "\n"
    )
    recs = _by_name(read_records(tmp_path / "m.jsonl"))
    assert recs["b.png"].label == "fake" and recs["b.png"].generator == "glide" and recs["a.png"].format == "PNG"
    (tmp_path / "bad.csv").write_text("name,label\na.png,real\n")
    with pytest.raises(DataSchemaError, match="'file' or 'path'"):
        read_records(tmp_path / "bad.csv")
    (tmp_path / "odd.csv").write_text("path,label\na.png,maybe\n")
    with pytest.raises(DataSchemaError, match="Unknown label 'maybe'"):
        read_records(tmp_path / "odd.csv")


def test_unlabelled_folder_keeps_broken_files_as_errors(tmp_path: Path) -> None:
    _img(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored: not an image extension")
    (tmp_path / ".hidden.png").write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "broken.jpg"]
    recs = _by_name(read_records(tmp_path))
    assert recs["a.png"].label == "unknown" and recs["a.png"].status == "ok"
    assert recs["broken.jpg"].status == "error" and "not an image" in recs["broken.jpg"].error


def test_manifest_roundtrip_with_provenance(tmp_path: Path) -> None:
    _img(tmp_path / "d" / "0_real" / "a.png")
    _img(tmp_path / "d" / "1_fake" / "b.png", "fake")
    records = read_records(tmp_path / "d")
    records[0].extra = {"seed": 3}
    path = write_manifest(records, tmp_path / "m.parquet", metadata={"root": "d"})
    back = read_manifest(path)
    assert [r.to_row() for r in back] == [r.to_row() for r in records]
    meta = read_manifest_metadata(path)
    assert meta["root"] == "d" and meta["n_records"] == 2 and "versions" in meta
    assert [r.path for r in read_records(path)] == [r.path for r in records]


def test_describe_warns_about_format_confound(tmp_path: Path) -> None:
    for i in range(4):
        _img(tmp_path / "0_real" / f"r{i}.jpg", fmt="JPEG", seed=i)
        _img(tmp_path / "1_fake" / f"f{i}.png", "fake", seed=i)
    summary = describe(read_records(tmp_path))
    assert summary["labels"] == {"real": 4, "fake": 4}
    assert summary["formats"]["real"] == {"JPEG": 4} and summary["formats"]["fake"] == {"PNG": 4}
    assert any("format confound" in w for w in summary["warnings"])


def test_describe_quiet_when_balanced(tmp_path: Path) -> None:
    for i in range(4):
        _img(tmp_path / "0_real" / f"r{i}.png", seed=i)
        _img(tmp_path / "1_fake" / f"f{i}.png", "fake", seed=i)
    assert describe(read_records(tmp_path))["warnings"] == []


@pytest.mark.shared_data
def test_shared_data_layout(shared_data: Path) -> None:
    recs = read_records(shared_data)
    gallery = [r for r in recs if (r.source or "").startswith("cnndetection-gallery")]
    assert Counter(r.label for r in gallery) == {"real": 200, "fake": 200}
    assert len({r.generator for r in gallery if r.label == "fake"}) == 10
    # every gallery generator's fakes are paired with the 20 reals of the same subset
    assert all(v == 20 for v in Counter(r.source for r in gallery if r.label == "real").values())
    wright = [r for r in recs if r.source == "wright-photos"]
    assert Counter(r.split for r in wright) == {"trainval": 40, "test": 20}
    assert {r.format for r in gallery + wright} == {"JPEG"} and all(r.status == "ok" for r in recs)
    assert {r.jpeg_quality for r in gallery} == {75}
