"""Readers for each layout, manifests round-trip with provenance, describe warns about confounds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from gendetect.cli.render import print_description
from gendetect.data.manifest import describe, read_manifest, read_manifest_metadata, write_manifest
from gendetect.data.readers import detect_layout, list_images, read_records
from gendetect.data.records import ImageRecord
from gendetect.data.synthetic import synthetic_image, write_labels_csv
from gendetect.errors import DataSchemaError


def _img(path: Path, label: str = "real", fmt: str | None = None, seed: int = 0, size: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic_image(label, size, seed=seed).save(path, format=fmt)
    return path


def _by_name(records: list[ImageRecord]) -> dict[str, ImageRecord]:
    return {Path(r.path).name: r for r in records}


def _facts(r: ImageRecord) -> tuple:
    return (r.label, r.generator, r.source)


# -- layouts ---------------------------------------------------------------------------------------------------
def test_cnndetection_nested_per_generator(tmp_path: Path) -> None:
    root = tmp_path / "cnn"
    _img(root / "progan" / "airplane" / "0_real" / "r.png")
    _img(root / "progan" / "airplane" / "1_fake" / "f.png", "fake")
    _img(root / "stylegan" / "0_real" / "r2.png")
    _img(root / "stylegan" / "1_fake" / "f2.png", "fake")
    assert detect_layout(root) == "cnndetection"
    recs = _by_name(read_records(root))
    assert (*_facts(recs["r.png"]), recs["r.png"].subject) == ("real", "real", "cnn/progan", "airplane")
    assert (*_facts(recs["f.png"]), recs["f.png"].subject) == ("fake", "progan", "cnn/progan", "airplane")
    assert _facts(recs["r2.png"]) == ("real", "real", "cnn/stylegan")
    assert _facts(recs["f2.png"]) == ("fake", "stylegan", "cnn/stylegan") and recs["f2.png"].subject is None
    assert all(Path(r.path).is_absolute() and r.status == "ok" and r.format == "PNG" for r in recs.values())


def test_cnndetection_flat(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    _img(root / "0_real" / "a.png")
    _img(root / "1_fake" / "b.png", "fake")
    recs = _by_name(read_records(root))
    assert _facts(recs["a.png"]) == ("real", "real", "flat")
    assert _facts(recs["b.png"]) == ("fake", "flat", "flat")


def test_real_fake_layout(tmp_path: Path) -> None:
    root = tmp_path / "rf"
    _img(root / "real" / "x" / "a.jpg", fmt="JPEG")
    _img(root / "fake" / "sdxl" / "b.png", "fake")
    _img(root / "fake" / "c.png", "fake")
    assert detect_layout(root) == "real-fake"
    recs = _by_name(read_records(root))
    assert _facts(recs["a.jpg"]) == ("real", "real", "rf")
    assert _facts(recs["b.png"]) == ("fake", "sdxl", "rf")
    assert _facts(recs["c.png"]) == ("fake", "unknown", "rf")


def test_genimage_layout(tmp_path: Path) -> None:
    root = tmp_path / "genimage"
    _img(root / "midjourney" / "train" / "ai" / "a.png", "fake")
    _img(root / "midjourney" / "train" / "nature" / "b.jpg", fmt="JPEG")
    _img(root / "midjourney" / "val" / "ai" / "c.png", "fake")
    _img(root / "sdv4" / "imagenet_ai_0419_sdv4" / "val" / "nature" / "d.jpg", fmt="JPEG")  # GenImage nests deeper
    assert detect_layout(root) == "genimage"
    recs = _by_name(read_records(root))
    assert (*_facts(recs["a.png"]), recs["a.png"].split) == ("fake", "midjourney", "genimage/midjourney", "train")
    assert (*_facts(recs["b.jpg"]), recs["b.jpg"].split) == ("real", "real", "genimage/midjourney", "train")
    assert recs["c.png"].split == "val"
    assert (*_facts(recs["d.jpg"]), recs["d.jpg"].split) == ("real", "real", "genimage/sdv4", "val")
    one = _by_name(read_records(root / "midjourney"))  # one generator's folder on its own
    assert _facts(one["a.png"]) == ("fake", "midjourney", "midjourney")


def test_folder_layout_and_single_file(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    _img(root / "a.png")
    _img(root / "deeper" / "b.webp", fmt="WEBP")
    assert detect_layout(root) == "folder"
    recs = _by_name(read_records(root))
    assert {r.label for r in recs.values()} == {"unknown"} and recs["b.webp"].format == "WEBP"
    (single,) = read_records(root / "a.png")
    assert single.label == "unknown" and single.width == 48 and len(single.sha256) == 64


def test_labels_csv_with_extras(tmp_path: Path) -> None:
    _img(tmp_path / "imgs" / "a.png")
    _img(tmp_path / "imgs" / "b.png", "fake")
    write_labels_csv(
        tmp_path,
        [
            {"file": "imgs/a.png", "label": "0", "generator": "real", "split": "trainval", "caption": "", "seed": ""},
            {"file": "imgs/b.png", "label": "1", "generator": "sd-1.5", "split": "test", "caption": "a cat", "seed": 7},
        ],
    )
    assert detect_layout(tmp_path) == "labels-csv"
    recs = _by_name(read_records(tmp_path))
    a, b = recs["a.png"], recs["b.png"]
    assert (a.label, a.generator, a.split, a.caption, a.source, a.extra) == (
        "real",
        "real",
        "trainval",
        None,
        tmp_path.name,
        {},
    )
    assert (b.label, b.generator, b.split, b.caption, b.extra) == ("fake", "sd-1.5", "test", "a cat", {"seed": "7"})


def test_labels_csv_pairs_reals_named_after_their_subset(tmp_path: Path) -> None:
    gallery = tmp_path / "data" / "gallery"
    for gen in ("biggan", "crn"):
        _img(gallery / gen / "0_real" / "r.jpg", fmt="JPEG")
        _img(gallery / gen / "1_fake" / "f.jpg", "fake", fmt="JPEG")
    write_labels_csv(
        gallery,
        [
            {"file": f"{gen}/{d}/{n}.jpg", "label": label, "generator": gen, "subject": "dog"}
            for gen in ("biggan", "crn")
            for d, n, label in (("0_real", "r", "real"), ("1_fake", "f", "fake"))
        ],
    )
    photos = tmp_path / "data" / "photos"
    _img(photos / "p.jpg", fmt="JPEG")
    _img(photos / "g.jpg", "fake", fmt="JPEG")
    _img(photos / "q.jpg", fmt="JPEG")
    write_labels_csv(
        photos,
        [
            {"file": "p.jpg", "label": "real", "generator": "real", "source": ""},
            {"file": "g.jpg", "label": "fake", "generator": "", "source": ""},
            {"file": "q.jpg", "label": "real", "generator": "canon eos", "source": "flickr"},
        ],
    )
    root = tmp_path / "data"
    assert detect_layout(root) == "labels-csv"  # every sub-folder has its labels.csv
    recs = read_records(root)
    by = {(Path(r.path).parent.parent.name, Path(r.path).name): r for r in recs}
    assert _facts(by[("biggan", "r.jpg")]) == ("real", "real", "gallery/biggan")
    assert _facts(by[("biggan", "f.jpg")]) == ("fake", "biggan", "gallery/biggan")
    assert _facts(by[("crn", "r.jpg")]) == ("real", "real", "gallery/crn") and by[("crn", "r.jpg")].subject == "dog"
    photo = {Path(r.path).name: r for r in recs if "photos" in r.path}
    assert _facts(photo["p.jpg"]) == ("real", "real", "photos")
    assert _facts(photo["g.jpg"]) == ("fake", "unknown", "photos")
    assert _facts(photo["q.jpg"]) == ("real", "real", "flickr") and photo["q.jpg"].extra == {
        "listed_generator": "canon eos"
    }


def test_jsonl_and_csv_manifests(tmp_path: Path) -> None:
    _img(tmp_path / "imgs" / "a.png")
    _img(tmp_path / "imgs" / "b.png", "fake")
    lines = [
        {"path": "imgs/a.png", "label": 0, "subject": "cat"},
        {"path": str(tmp_path / "imgs" / "b.png"), "label": "ai", "generator": "glide", "prompt": "a cat", "seed": 3},
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    assert detect_layout(tmp_path / "m.jsonl") == "manifest"
    recs = _by_name(read_records(tmp_path / "m.jsonl"))
    assert (recs["a.png"].label, recs["a.png"].subject, recs["a.png"].format, recs["a.png"].source) == (
        "real",
        "cat",
        "PNG",
        "m",
    )
    assert (recs["b.png"].label, recs["b.png"].generator, recs["b.png"].caption) == ("fake", "glide", "a cat")
    assert recs["b.png"].extra == {"seed": 3}
    (tmp_path / "m.csv").write_text("file,label\nimgs/a.png,real\nimgs/missing.png,fake\n")
    csv_recs = _by_name(read_records(tmp_path / "m.csv"))
    assert csv_recs["a.png"].path == str(tmp_path / "imgs" / "a.png")
    assert csv_recs["missing.png"].status == "error" and "no such file" in csv_recs["missing.png"].error


def test_malformed_manifests(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("name,label\na.png,real\n")
    with pytest.raises(DataSchemaError, match="'file' or 'path'"):
        read_records(tmp_path / "bad.csv")
    (tmp_path / "odd.csv").write_text("path,label\na.png,real\nb.png,maybe\n")
    with pytest.raises(DataSchemaError, match=r"row 2: Unknown label 'maybe'"):
        read_records(tmp_path / "odd.csv")
    (tmp_path / "broken.jsonl").write_text('{"path": "a.png"}\n{not json\n')
    with pytest.raises(DataSchemaError, match=r"broken.jsonl:2: not valid JSON"):
        read_records(tmp_path / "broken.jsonl")
    with pytest.raises(DataSchemaError, match="does not exist"):
        read_records(tmp_path / "nowhere")
    with pytest.raises(DataSchemaError, match="Unknown layout 'weird'"):
        read_records(tmp_path, layout="weird")


def test_broken_files_are_error_records_not_dropped(tmp_path: Path) -> None:
    _img(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "sub" / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("ignored: not an image extension")
    (tmp_path / ".hidden.png").write_bytes(b"")
    _img(tmp_path / ".cache" / "thumb.png")
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "broken.jpg", "empty.png"]
    assert [p.name for p in list_images(tmp_path, recursive=False)] == ["a.png"]
    recs = _by_name(read_records(tmp_path))
    assert recs["a.png"].label == "unknown" and recs["a.png"].status == "ok"
    assert recs["broken.jpg"].status == "error" and "not an image" in recs["broken.jpg"].error
    assert recs["empty.png"].status == "error" and "empty file" in recs["empty.png"].error


def test_many_files_are_probed_in_threads_in_order(tmp_path: Path) -> None:
    for i in range(40):
        _img(tmp_path / "0_real" / f"{i:02d}.png", seed=i, size=16 + i)
    recs = read_records(tmp_path, jobs=4)
    assert [Path(r.path).name for r in recs] == [f"{i:02d}.png" for i in range(40)]
    assert [r.width for r in recs] == [16 + i for i in range(40)]
    assert len({r.sha256 for r in recs}) == 40
    assert all(r.sha256 is None for r in read_records(tmp_path, hash=False))
    assert all(r.format is None for r in read_records(tmp_path, probe=False))


# -- manifests -------------------------------------------------------------------------------------------------
def test_manifest_roundtrip_with_provenance(tmp_path: Path) -> None:
    _img(tmp_path / "d" / "0_real" / "a.png")
    _img(tmp_path / "d" / "1_fake" / "b.png", "fake")
    (tmp_path / "d" / "1_fake" / "c.png").write_bytes(b"broken")
    records = read_records(tmp_path / "d")
    records[0].extra = {"seed": 3, "tags": ["x"]}
    path = write_manifest(records, tmp_path / "out" / "m.parquet", metadata={"root": "d", "layout": "auto"})
    assert [p.name for p in path.parent.iterdir()] == ["m.parquet"]  # no temporary file left behind
    back = read_manifest(path)
    assert [r.to_row() for r in back] == [r.to_row() for r in records]
    meta = read_manifest_metadata(path)
    assert (meta["root"], meta["layout"], meta["kind"], meta["n_records"], meta["n_errors"]) == (
        "d",
        "auto",
        "manifest",
        3,
        1,
    )
    assert meta["labels"] == {"real": 1, "fake": 2} and meta["generators"] == {"d": 2}
    assert "versions" in meta and "created" in meta
    again = read_records(path)  # a Parquet manifest keeps its stored facts; only the broken file is probed again
    assert [r.to_row() for r in again] == [r.to_row() for r in records]


def test_manifest_relative_paths_and_errors(tmp_path: Path) -> None:
    _img(tmp_path / "imgs" / "a.png")
    path = write_manifest([ImageRecord("imgs/a.png", "real", "real")], tmp_path / "m.parquet")
    (rec,) = read_records(path)
    assert rec.path == str(tmp_path / "imgs" / "a.png") and rec.format == "PNG"
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataSchemaError, match="not a readable Parquet manifest"):
        read_manifest(tmp_path / "junk.parquet")
    with pytest.raises(DataSchemaError, match="do not fit the manifest schema"):
        write_manifest([ImageRecord("a.png", width="wide")], tmp_path / "bad.parquet")  # type: ignore[arg-type]


# -- describe --------------------------------------------------------------------------------------------------
def test_describe_warns_about_format_confound(tmp_path: Path) -> None:
    for i in range(4):
        _img(tmp_path / "0_real" / f"r{i}.jpg", fmt="JPEG", seed=i)
        _img(tmp_path / "1_fake" / f"f{i}.png", "fake", seed=i)
    summary = describe(read_records(tmp_path))
    assert summary["labels"] == {"real": 4, "fake": 4}
    assert summary["formats"] == {"real": {"JPEG": 4}, "fake": {"PNG": 4}}
    assert summary["jpeg_quality"]["real"]["median"] == 75 and "fake" not in summary["jpeg_quality"]
    assert any(
        w.startswith("file format: all reals are JPEG and all fakes are PNG") and "learn the file format" in w
        for w in summary["warnings"]
    )
    json.dumps(summary)  # --json output
    console = Console(record=True, width=120)
    print_description(summary, console)
    text = console.export_text()
    assert "by format" in text and "warning: file format" in text


def test_describe_warns_about_size_quality_and_exif(tmp_path: Path) -> None:
    reals = [
        ImageRecord(
            f"r{i}.jpg", "real", "real", format="JPEG", width=1024 + i, height=768, jpeg_quality=95, has_exif=True
        )
        for i in range(6)
    ]
    fakes = [
        ImageRecord(f"f{i}.jpg", "fake", "sd", format="JPEG", width=512, height=512, jpeg_quality=75, has_exif=False)
        for i in range(6)
    ]
    fakes.append(ImageRecord("x.jpg", "fake", "sd", status="error", error="x.jpg: empty file"))
    summary = describe(reals + fakes)
    text = " | ".join(summary["warnings"])
    assert "1 of 13 files could not be read" in text
    assert "100% of fakes but 0% of reals are exactly 512×512" in text
    assert "median long side is 1026 px for reals and 512 px for fakes" in text
    assert "JPEG quality: the median is 95 for real JPEGs and 75 for fake ones" in text
    assert "100% of reals but 0% of fakes carry EXIF" in text
    assert "file format" not in text
    assert summary["errors"] == {"fake": 1} and summary["sizes"]["fake"] == {"512-1023": 6}


def test_describe_quiet_when_balanced(tmp_path: Path) -> None:
    for i in range(4):
        _img(tmp_path / "0_real" / f"r{i}.png", seed=i)
        _img(tmp_path / "1_fake" / f"f{i}.png", "fake", seed=i)
    assert describe(read_records(tmp_path))["warnings"] == []


# -- the shared data sets --------------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_shared_data_layout(shared_data: Path) -> None:
    assert detect_layout(shared_data) == "labels-csv"
    recs = read_records(shared_data)
    assert all(r.status == "ok" for r in recs)
    gallery = [r for r in recs if (r.source or "").startswith("cnndetection-gallery/")]
    assert Counter(r.label for r in gallery) == {"real": 200, "fake": 200}
    assert len({r.generator for r in gallery if r.label == "fake"}) == 10
    assert {r.generator for r in gallery if r.label == "real"} == {"real"}
    # each generator's 20 fakes are paired with the 20 reals of the same subset
    assert Counter(r.source for r in gallery if r.label == "real") == Counter(
        r.source for r in gallery if r.label == "fake"
    )
    assert set(Counter(r.source for r in gallery).values()) == {40}
    wright = [r for r in recs if r.source == "wright-photos"]
    assert Counter(r.split for r in wright) == {"trainval": 40, "test": 20}
    assert Counter(r.label for r in wright) == {"real": 30, "fake": 30}
    assert {r.format for r in gallery + wright} == {"JPEG"}
    assert {r.jpeg_quality for r in gallery} == {75} and all(r.has_exif for r in wright)
    assert describe(gallery)["warnings"] == [] and describe(wright)["warnings"] == []


def test_cocofake_layout_links_fakes_to_captions_and_reals(tmp_path: Path) -> None:
    import json

    from gendetect.data.readers import pair_split

    for i in range(6):
        _img(tmp_path / "real" / f"{100 + i}.jpg", fmt="JPEG", seed=i)
        for k in range(2):
            _img(tmp_path / "fake" / "sd-1.4" / f"{100 + i}_{k}.png", "fake", seed=10 * i + k)
    captions = {
        "annotations": [
            {"image_id": 100 + i, "caption": f"caption {k} of {100 + i}"} for i in range(6) for k in range(5)
        ]
    }
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    assert detect_layout(tmp_path) == "cocofake"
    recs = read_records(tmp_path)
    by_name = _by_name(recs)
    fake = by_name["103_1.png"]
    assert (fake.label, fake.generator, fake.caption) == ("fake", "sd-1.4", "caption 1 of 103")
    assert fake.extra["pair_id"] == "103" and by_name["103.jpg"].caption == "caption 0 of 103"
    pair_split(recs, test_fraction=0.5, seed=0)
    for pid in {r.extra["pair_id"] for r in recs}:
        assert len({r.split for r in recs if r.extra["pair_id"] == pid}) == 1  # a real and its fakes stay together
    assert {r.split for r in recs} == {"train", "test"}
