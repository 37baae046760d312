"""Bounded fuzzing of the scan path: mutated PNG, JPEG, GIF, WebP, TIFF, BMP (and AVIF) files, seeded, scanned the
way ``gendetect scan`` scans them. Every file gets exactly one row and nothing escapes. (benchmarks/fuzz_decode.py
runs the same kind of mutations by the ten thousand and counts what escapes.)"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, features

from gendetect import DetectionPipeline, expand_inputs, scan
from gendetect.output import write_rows

N_MUTANTS = 240  # about 2 s on one core


def _seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    rgb = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    out: dict[str, bytes] = {}

    def save(name: str, im: Image.Image, fmt: str, **kw: object) -> None:
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        out[name] = buf.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6
    save("jpg", rgb, "JPEG", quality=85, exif=exif)
    save("png", rgb, "PNG")
    save("png16.png", Image.fromarray(rng.integers(0, 65535, (24, 32), dtype=np.uint16)), "PNG")
    save("gif", rgb.convert("P"), "GIF", save_all=True, append_images=[rgb.rotate(90).convert("P")])
    save("webp", rgb, "WEBP", quality=80)
    save("tif", rgb, "TIFF", compression="tiff_deflate")
    save("float.tif", Image.fromarray(rng.random((24, 32), dtype=np.float32)), "TIFF")
    save("bmp", rgb, "BMP")
    if features.check("avif"):
        save("avif", rgb, "AVIF", quality=60)
    return out


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        n, move = len(buf), int(rng.integers(0, 5))
        if n < 2:
            break
        if move == 0:  # flip bytes anywhere
            for i in rng.integers(0, n, int(rng.integers(1, 9))):
                buf[int(i)] = int(rng.integers(0, 256))
        elif move == 1:  # hit the header: sizes and offsets
            for i in rng.integers(0, min(n, 64), int(rng.integers(1, 5))):
                buf[int(i)] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF]))
        elif move == 2:  # truncate
            del buf[int(rng.integers(1, n)) :]
        elif move == 3:  # insert random bytes
            i = int(rng.integers(0, n))
            buf[i:i] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        else:  # an extreme 32-bit field
            i = int(rng.integers(0, max(1, n - 4)))
            buf[i : i + 4] = int(rng.choice([0, 0xFFFFFFFF, 0x7FFFFFFF, 0x10000])).to_bytes(4, "big")
    return bytes(buf)


def test_mutated_files_each_get_one_row(stats_model: DetectionPipeline, tmp_path: Path) -> None:
    seeds = _seeds()
    names = sorted(seeds)
    rng = np.random.default_rng(2026)
    for i in range(N_MUTANTS):
        name = names[i % len(names)]
        suffix = name if "." in name else f"x.{name}"
        (tmp_path / f"{i:04d}-{suffix}").write_bytes(_mutate(seeds[name], rng))
    files, problems = expand_inputs([tmp_path])
    assert len(files) == N_MUTANTS and not problems
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about many damaged files; rows are what count
        rows = list(scan(files, stats_model, max_pixels=4_000_000))
    assert [r.path for r in rows] == files  # one row per file, in order, nothing raised
    assert {r.status for r in rows} <= {"ok", "error"}
    errors = [r for r in rows if r.status == "error"]
    assert errors and all(r.error for r in errors) and len(errors) < len(rows)
    for r in rows:
        if r.status == "ok":
            assert r.p_fake is not None and 0.0 <= r.p_fake <= 1.0
    assert write_rows([r.to_dict() for r in rows], tmp_path / "rows.parquet") == N_MUTANTS


def test_mutated_bytes_through_worker_processes(stats_model: DetectionPipeline) -> None:
    seeds = _seeds()
    rng = np.random.default_rng(11)
    data = [_mutate(seeds[name], rng) for name in sorted(seeds) for _ in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = list(scan(data, stats_model, jobs=2, evidence=False))
    assert len(rows) == len(data) and {r.status for r in rows} <= {"ok", "error"}
