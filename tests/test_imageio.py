"""Decoding: every unusual mode becomes correct 8-bit RGB; every broken input raises ImageLoadError with a reason."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from gendetect.errors import ImageLoadError
from gendetect.imageio import estimate_jpeg_quality, is_image_path, load_image, load_image_with_info, probe_image


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:  # noqa: ANN003
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _photo(w: int = 96, h: int = 64) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 128)], axis=2).astype(np.uint8)
    return Image.fromarray(arr)


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A PNG whose header claims ``width x height`` but carries a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt,kw", [("PNG", {}), ("JPEG", {"quality": 95}), ("WEBP", {"lossless": True})])
def test_rgb_roundtrip(fmt: str, kw: dict) -> None:
    src = _photo()
    im, info = load_image_with_info(_encode(src, fmt, **kw))
    assert im.mode == "RGB" and im.size == (96, 64)
    assert info.format == fmt and info.width == 96 and info.height == 64 and len(info.sha256) == 64
    assert np.abs(np.asarray(im, int) - np.asarray(src, int)).mean() < 3


def test_cmyk_jpeg_becomes_rgb_with_close_colours() -> None:
    src = _photo()
    im, info = load_image_with_info(_encode(src.convert("CMYK"), "JPEG", quality=95))
    assert info.mode == "CMYK" and im.mode == "RGB"
    assert np.abs(np.asarray(im, int) - np.asarray(src, int)).mean() < 8


def test_cmyk_with_icc_profile_uses_it() -> None:
    src = _photo().convert("CMYK")
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    # An (RGB) profile on a CMYK image is invalid: conversion must fall back, not crash.
    im = load_image(_encode(src, "JPEG", quality=95, icc_profile=profile))
    assert im.mode == "RGB"


def test_16_bit_is_rescaled_not_clipped() -> None:
    ramp = np.linspace(0, 65535, 64 * 96).reshape(64, 96).astype(np.uint16)
    im, info = load_image_with_info(_encode(Image.fromarray(ramp), "PNG"))
    arr = np.asarray(im)
    assert info.mode.startswith("I") and im.mode == "RGB"
    assert arr.min() == 0 and arr.max() == 255
    assert abs(float(arr.mean()) - 127.5) < 2  # a clipped conversion would be almost all 255


def test_alpha_and_transparent_palette_are_composited_on_white() -> None:
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    assert np.asarray(load_image(_encode(rgba, "PNG")))[0, 0].tolist() == [255, 255, 255]
    half = Image.new("RGBA", (8, 8), (0, 0, 0, 128))
    assert 120 <= np.asarray(load_image(_encode(half, "PNG")))[0, 0, 0] <= 135
    la = Image.new("LA", (8, 8), (0, 0))
    assert np.asarray(load_image(_encode(la, "PNG")))[0, 0].tolist() == [255, 255, 255]
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    assert np.asarray(load_image(_encode(pal, "PNG", transparency=0)))[0, 0].tolist() == [255, 255, 255]
    opaque_pal = _photo().convert("P", palette=Image.ADAPTIVE)
    assert load_image(_encode(opaque_pal, "PNG")).mode == "RGB"


def test_exif_orientation_is_applied() -> None:
    src = _photo(96, 64)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(src, "JPEG", quality=95, exif=exif)
    im, info = load_image_with_info(data)
    assert im.size == (64, 96) and (info.width, info.height) == (64, 96) and info.has_exif
    assert (probe_image(data).width, probe_image(data).height) == (64, 96)
    expected = np.asarray(src.transpose(Image.Transpose.ROTATE_270), int)
    assert np.abs(np.asarray(im, int) - expected).mean() < 3


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    arr = np.asarray(load_image(buf.getvalue()))
    assert arr[0, 0, 0] > 200 and arr[0, 0, 2] < 50


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "empty file"),
        (b"just some text, not pixels", "not an image"),
        (os.urandom(4096), "not an image"),
    ],
)
def test_broken_bytes(data: bytes, reason: str) -> None:
    with pytest.raises(ImageLoadError, match=reason):
        load_image(data)


def test_truncated_jpeg() -> None:
    data = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), np.uint8)), "JPEG")
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_decompression_bomb_is_refused_before_decoding() -> None:
    t0 = time.perf_counter()
    with pytest.raises(ImageLoadError, match="limit"):
        load_image(png_bomb())
    assert time.perf_counter() - t0 < 1.0  # refused from the header, nothing allocated
    with pytest.raises(ImageLoadError, match="limit"):
        load_image(_encode(_photo(100, 100), "PNG"), max_pixels=5_000)


def test_long_thin_and_tiny_images_load() -> None:
    assert load_image(_encode(Image.new("RGB", (8000, 4), "white"), "PNG")).size == (8000, 4)
    assert load_image(_encode(Image.new("RGB", (1, 1)), "PNG")).size == (1, 1)


def test_path_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageLoadError, match="directory"):
        load_image(tmp_path)
    locked = tmp_path / "locked.png"
    locked.write_bytes(_encode(_photo(), "PNG"))
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(ImageLoadError, match="permission denied"):
            load_image(locked)
    finally:
        locked.chmod(0o644)


@pytest.mark.parametrize("quality", [30, 50, 75, 90, 95, 100])
def test_jpeg_quality_estimate(quality: int) -> None:
    data = _encode(_photo(), "JPEG", quality=quality)
    assert abs(probe_image(data).jpeg_quality - quality) <= 1
    assert estimate_jpeg_quality(Image.open(io.BytesIO(data))) == probe_image(data).jpeg_quality


def test_quality_is_none_for_lossless() -> None:
    assert probe_image(_encode(_photo(), "PNG")).jpeg_quality is None


def test_is_image_path() -> None:
    assert is_image_path("a/B.JPG") and is_image_path("x.webp") and not is_image_path("notes.txt")
