"""Scanning: one row per input, in order, whatever the input; unusual modes are scored, broken files explained."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gendetect import DetectionPipeline, expand_inputs, load_model, scan
from gendetect.errors import ModelFormatError


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` (a decompression bomb) but holds almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


def _rgb(size: tuple[int, int] = (64, 48), seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _bad_files(folder: Path) -> dict[str, str]:
    """Write broken inputs; return ``{file name: expected words in its error}``."""
    buf = io.BytesIO()
    _rgb((256, 256)).save(buf, "JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    (folder / "not_an_image.jpg").write_text("hello, I am text")
    (folder / "empty.png").write_bytes(b"")
    (folder / "bomb.png").write_bytes(_png_header_only(20_000, 20_000))
    (folder / "random.webp").write_bytes(os.urandom(2000))
    return {"truncated.jpg": "", "not_an_image.jpg": "", "empty.png": "", "bomb.png": "limit", "random.webp": ""}


def _unusual_files(folder: Path) -> list[str]:
    base = _rgb((80, 60), seed=1)
    base.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    Image.fromarray((np.linspace(0, 65535, 80 * 60).reshape(60, 80)).astype(np.uint16)).save(folder / "gray16.png")
    base.convert("P", palette=Image.ADAPTIVE).save(folder / "palette.png")
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "alpha.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    base.save(folder / "rotated.jpg", quality=95, exif=exif)
    base.convert("L").save(folder / "gray.webp", lossless=True)
    _rgb((8, 8)).save(folder / "tiny.png")
    return ["cmyk.jpg", "gray16.png", "palette.png", "alpha.png", "rotated.jpg", "gray.webp", "tiny.png"]


def test_every_input_gets_one_row_in_order(stats_model: DetectionPipeline, tmp_path: Path) -> None:
    good = [tmp_path / f"good_{i:02d}.png" for i in range(6)]
    for i, p in enumerate(good):
        _rgb(seed=i).save(p)
    bad = _bad_files(tmp_path)
    unusual = _unusual_files(tmp_path)
    files, problems = expand_inputs([tmp_path])
    assert not problems
    rows = list(scan(files, stats_model))
    assert [r.path for r in rows] == files
    by_name = {Path(r.path).name: r for r in rows}
    for name, words in bad.items():
        row = by_name[name]
        assert row.status == "error" and row.p_fake is None and row.verdict is None, name
        assert row.error and words in row.error, (name, row.error)
    for name in unusual + [p.name for p in good]:
        row = by_name[name]
        assert row.status == "ok", (name, row.error)
        assert 0.0 <= row.p_fake <= 1.0 and row.verdict in ("real", "fake")
        assert row.model == "test-stats" and row.threshold == 0.5
    assert (by_name["rotated.jpg"].width, by_name["rotated.jpg"].height) == (60, 80)  # EXIF orientation applied
    assert by_name["cmyk.jpg"].mode == "CMYK" and by_name["gray16.png"].mode.startswith("I")


def test_thousand_files_with_ten_bad_give_thousand_rows(stats_model: DetectionPipeline, tmp_path: Path) -> None:
    small = _rgb((16, 16))
    paths = []
    for i in range(1000):
        p = tmp_path / f"{i:04d}.png"
        if i % 100 == 7:
            p.write_bytes(b"\x89PNG\r\n\x1a\n broken")
        else:
            small.save(p)
        paths.append(str(p))
    rows = list(scan(paths, stats_model))
    assert len(rows) == 1000
    assert sum(r.status == "error" for r in rows) == 10
    assert [r.path for r in rows] == paths


def test_worker_processes_give_the_same_rows(stats_model: DetectionPipeline, tmp_path: Path) -> None:
    for i in range(12):
        _rgb(seed=i).save(tmp_path / f"{i:02d}.png")
    (tmp_path / "broken.png").write_bytes(b"nope")
    files, _ = expand_inputs([tmp_path])
    one = [r.to_dict() for r in scan(files, stats_model, jobs=1)]
    two = [r.to_dict() for r in scan(files, stats_model, jobs=2)]
    assert one == two


def test_missing_paths_and_empty_folders_are_reported(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("no images here")
    files, problems = expand_inputs([tmp_path / "empty", tmp_path / "docs", tmp_path / "nope.jpg"])
    assert files == []
    errors = {Path(p.path).name: p.error for p in problems}
    assert errors == {
        "empty": "folder contains no image files",
        "docs": "folder contains no image files",
        "nope.jpg": "no such file or directory",
    }


def test_explicit_non_image_file_is_scanned_and_explained(stats_model: DetectionPipeline, tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("plain text")
    files, problems = expand_inputs([p])
    assert files == [str(p)] and not problems
    (row,) = scan(files, stats_model)
    assert row.status == "error" and "image" in row.error


def test_bytes_inputs(stats_model: DetectionPipeline) -> None:
    buf = io.BytesIO()
    _rgb().save(buf, "PNG")
    rows = list(scan([buf.getvalue(), b"garbage"], stats_model))
    assert [r.status for r in rows] == ["ok", "error"]


def test_threshold_override(stats_model: DetectionPipeline, tmp_path: Path) -> None:
    _rgb().save(tmp_path / "a.png")
    (row,) = scan([tmp_path / "a.png"], stats_model, threshold=1.0)
    assert row.verdict == "real" and row.threshold == 1.0
    (row,) = scan([tmp_path / "a.png"], stats_model, threshold=-1.0)
    assert row.verdict == "fake"


def test_pipeline_save_load_roundtrip(stats_model: DetectionPipeline, tmp_path: Path) -> None:
    stats_model.save(tmp_path / "m", card="# card\n")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["MODEL_CARD.md", "config.json", "model.safetensors"]
    loaded = load_model(tmp_path / "m")
    X = np.random.default_rng(1).normal(size=(5, 12))
    np.testing.assert_array_equal(loaded.predict_proba_features(X), stats_model.predict_proba_features(X))
    assert loaded.threshold == 0.5 and loaded.name == "test-stats"
    assert loaded.extractor.get_config() == stats_model.extractor.get_config()


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="not found"):
        load_model(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(ModelFormatError, match="model.safetensors is missing"):
        load_model(tmp_path / "half")


def test_uncertain_band(stats_model: DetectionPipeline) -> None:
    banded = DetectionPipeline(stats_model.extractor, stats_model.detector, 0.8, uncertain_from=0.6)
    assert [banded.verdict(p) for p in (0.5, 0.6, 0.7, 0.8, 0.9)] == ["real", "real", "uncertain", "uncertain", "fake"]
    assert banded.verdict(0.7, threshold=0.65) == "fake"
    assert banded.verdict(0.55, threshold=0.5) == "fake" and stats_model.verdict(0.7) == "fake"


def test_every_row_carries_the_rule_its_verdict_follows_from(stats_model: DetectionPipeline, tmp_path: Path) -> None:
    """``threshold`` and ``uncertain_from`` on every row, so that a consumer re-derives each verdict from ``p_fake``;
    a ``--threshold`` at or below the band's start leaves no band."""
    banded = DetectionPipeline(stats_model.extractor, stats_model.detector, 0.55, uncertain_from=0.45)
    files = []
    for i in range(12):
        _rgb(seed=i).save(tmp_path / f"{i:02d}.png")
        files.append(str(tmp_path / f"{i:02d}.png"))
    files.append(str(tmp_path / "missing.png"))

    def derived(r):
        if r.p_fake > r.threshold:
            return "fake"
        return "uncertain" if r.uncertain_from is not None and r.p_fake > r.uncertain_from else "real"

    for thr, band in ((None, 0.45), (0.5, 0.45), (0.4, None)):
        rows = list(scan(files, banded, threshold=thr, evidence=False))
        assert all(r.uncertain_from == band and r.threshold == (0.55 if thr is None else thr) for r in rows)
        ok = [r for r in rows if r.status == "ok"]
        assert ok and all(r.verdict == derived(r) for r in ok)
    assert "uncertain_from" in rows[0].to_dict()


def test_files_without_image_names_are_reported_not_silently_skipped(tmp_path: Path, caplog) -> None:
    _rgb().save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("x")
    with caplog.at_level("WARNING"):
        files, problems = expand_inputs([tmp_path])
    assert [Path(f).name for f in files] == ["a.png"] and not problems
    assert "1 file(s) without an image extension were not scanned (e.g. notes.txt)" in caplog.text


def _counting_features(monkeypatch, fail_after: int | None = None) -> list[int]:
    """Wrap the scan's feature iterator: count the items it has handed over, and raise ``KeyboardInterrupt`` (as
    Ctrl-C would, while the next image is being extracted) after ``fail_after`` of them."""
    import gendetect.pipeline as gp

    real = gp.iter_features
    handed = [0]

    def counting(*args, **kwargs):
        for item in real(*args, **kwargs):
            if fail_after is not None and handed[0] == fail_after:
                raise KeyboardInterrupt
            handed[0] += 1
            yield item

    monkeypatch.setattr(gp, "iter_features", counting)
    return handed


def _pngs(n: int, size: tuple[int, int] = (64, 64)) -> list[bytes]:
    out = []
    for i in range(n):
        buf = io.BytesIO()
        _rgb(size, seed=i).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def test_rows_of_large_images_stream_out_one_by_one(stats_model: DetectionPipeline, monkeypatch) -> None:
    import gendetect.pipeline as gp

    handed = _counting_features(monkeypatch)
    monkeypatch.setattr(gp, "SCORE_PIXELS", 100 * 100)  # each image is larger: a call of its own
    seen = [handed[0] for row in scan(_pngs(4, (120, 100)), stats_model, batch_size=64, evidence=False)]
    assert seen == [1, 2, 3, 4], "a row waited for the next image (or for the batch to fill)"


def test_small_images_share_a_call_in_batches_that_do_not_depend_on_timing(
    stats_model: DetectionPipeline, monkeypatch
) -> None:
    handed = _counting_features(monkeypatch)
    seen = [handed[0] for row in scan(_pngs(5), stats_model, batch_size=3, evidence=False)]
    assert seen == [3, 3, 3, 5, 5]  # two calls of the detector: a full batch, then the rest


def test_an_interrupt_keeps_the_rows_already_extracted(stats_model: DetectionPipeline, monkeypatch) -> None:
    _counting_features(monkeypatch, fail_after=3)  # the batch (64 images, 4 Mpx) would wait for all of them
    got = []
    with pytest.raises(KeyboardInterrupt):
        for row in scan(_pngs(6), stats_model, batch_size=64, evidence=False):
            got.append(row)  # noqa: PERF402 - the rows before the interrupt, one by one
    assert [r.status for r in got] == ["ok"] * 3


def test_links_to_folders_are_counted_and_named_not_silently_skipped(tmp_path: Path, caplog) -> None:
    from gendetect.pipeline import ScanInputs

    shared = tmp_path / "share"
    shared.mkdir()
    _rgb().save(shared / "b.png")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _rgb().save(inbox / "a.png")
    (inbox / "mounted").symlink_to(shared, target_is_directory=True)
    with caplog.at_level("WARNING"):
        inputs = ScanInputs.expand([inbox])
    assert [Path(f).name for f in inputs.files] == ["a.png"]  # not followed: it may lead outside the folder
    assert inputs.skipped == {"folder link (not followed)": 1}
    assert "1 link(s) to folders were not followed (e.g. mounted/)" in caplog.text
    # named on the command line, the link is scanned like its folder
    assert [Path(f).name for f in ScanInputs.expand([inbox / "mounted"]).files] == ["b.png"]


# -- one schema, decoder warnings, frames ----------------------------------------------------------------------
def _jpeg_with_broken_exif(seed: int = 0) -> bytes:
    """A JPEG whose EXIF Make tag points past the end of its block: Pillow warns "Tag data larger than file"."""
    ifd = struct.pack("<2sHI", b"II", 42, 8) + struct.pack("<H", 1) + struct.pack("<HHII", 0x010F, 2, 200, 1000)
    buf = io.BytesIO()
    _rgb((96, 64), seed).save(buf, "JPEG", quality=90, exif=b"Exif\x00\x00" + ifd + struct.pack("<I", 0))
    return buf.getvalue()


def test_every_row_of_a_scan_has_the_same_keys(stats_model: DetectionPipeline, tmp_path: Path) -> None:
    from gendetect.scale import scan_paths

    (tmp_path / "a_broken.png").write_bytes(b"not a png")
    _rgb().save(tmp_path / "b.png")
    for evidence in (True, False):
        rows = [r.to_dict() for r in scan_paths([tmp_path, tmp_path / "missing.jpg"], stats_model, evidence=evidence)]
        assert [r["status"] for r in rows] == ["error", "ok", "error"]
        assert len({tuple(r) for r in rows}) == 1, [list(r) for r in rows]  # the same keys, in the same order
        error = rows[0]
        assert error["p_fake"] is None and error["n_frames"] is None and error["warnings"] == []
        if evidence:
            assert error["pixel_verdict"] is None and error["evidence_rule"] is None and rows[1]["evidence_rule"]


def test_decoder_warnings_go_to_the_row_and_the_log_with_the_file_name(
    stats_model: DetectionPipeline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import warnings

    for name in ("a.jpg", "b.jpg"):  # the same warning text twice: Python's default filter shows it once
        (tmp_path / name).write_bytes(_jpeg_with_broken_exif())
    _rgb().save(tmp_path / "c.png")
    files, _ = expand_inputs([tmp_path])
    with warnings.catch_warnings(record=True) as bare, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        rows = [r.to_dict() for r in scan(files, stats_model)]
    assert [str(w.message) for w in bare] == []  # nothing reaches stderr without the file's name
    a, b, c = rows
    assert a["status"] == "ok" and any("larger than file" in w for w in a["warnings"])
    assert b["warnings"] == a["warnings"] and c["warnings"] == []  # every file, every time: rows are deterministic
    logged = [r.getMessage() for r in caplog.records if "larger than file" in r.getMessage()]
    assert any(m.startswith(str(tmp_path / "a.jpg")) for m in logged)
    assert any(m.startswith(str(tmp_path / "b.jpg")) for m in logged)
    assert [r.to_dict() for r in scan(files, stats_model, jobs=2)] == rows  # worker processes: the same rows


def test_rows_say_how_many_frames_the_file_has(stats_model: DetectionPipeline, tmp_path: Path) -> None:
    frames = [_rgb((80, 64), seed) for seed in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=40)
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:], duration=40)
    frames[0].save(tmp_path / "pages.tif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "still.png")
    with Image.open(tmp_path / "anim.gif") as gif:
        gif.convert("RGB").save(tmp_path / "gif_frame0.png")  # the GIF's first frame, as decoded, as a still image
    (tmp_path / "zz_broken.gif").write_bytes(b"GIF89a broken")
    rows = {Path(r.path).name: r for r in scan(sorted(str(p) for p in tmp_path.iterdir()), stats_model)}
    frames_of = {name: r.n_frames for name, r in rows.items()}
    assert frames_of == {
        "anim.gif": 3,
        "anim.png": 3,
        "pages.tif": 3,
        "still.png": 1,
        "gif_frame0.png": 1,
        "zz_broken.gif": None,
    }
    assert rows["anim.gif"].p_fake == rows["gif_frame0.png"].p_fake  # judged on its first frame
    assert rows["anim.png"].p_fake == rows["still.png"].p_fake == rows["pages.tif"].p_fake
