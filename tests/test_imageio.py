"""Decoding: every unusual mode becomes correct 8-bit RGB; every broken input raises ImageLoadError with a reason."""

from __future__ import annotations

import io
import os
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from gendetect.errors import ImageLoadError
from gendetect.imageio import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    estimate_jpeg_quality,
    is_image_path,
    load_image,
    load_image_with_info,
    probe_image,
    to_rgb,
)


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _photo(w: int = 96, h: int = 64) -> Image.Image:
    """A smooth colour gradient: every pixel differs, so orientation and colour errors show."""
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 128)], axis=2).astype(np.uint8)
    return Image.fromarray(arr)


def _diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, int) - np.asarray(b, int)).mean())


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A PNG whose header claims ``width x height`` but carries a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# -- ordinary files --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt,kw", [("PNG", {}), ("JPEG", {"quality": 95}), ("WEBP", {"lossless": True})])
def test_rgb_roundtrip(fmt: str, kw: dict, tmp_path: Path) -> None:
    src = _photo()
    data = _encode(src, fmt, **kw)
    im, info = load_image_with_info(data)
    assert im.mode == "RGB" and im.size == (96, 64)
    assert (info.format, info.width, info.height, info.mode, info.file_size) == (fmt, 96, 64, "RGB", len(data))
    assert info.has_exif is False and len(info.sha256) == 64
    assert _diff(im, src) < 3
    path = tmp_path / f"img.{fmt.lower()}"
    path.write_bytes(data)
    from_path, info_path = load_image_with_info(path)
    assert info_path == info and np.array_equal(np.asarray(from_path), np.asarray(im))
    assert probe_image(path) == info  # the header gives the same facts, hash included


def test_probe_without_hash_reads_the_header_only(tmp_path: Path) -> None:
    data = _encode(_photo(), "JPEG", quality=90)
    path = tmp_path / "a.jpg"
    path.write_bytes(data[: len(data) // 2])  # truncated: the header is intact, the pixels are not
    info = probe_image(path, hash=False)
    assert (info.format, info.width, info.height, info.jpeg_quality, info.sha256) == ("JPEG", 96, 64, 90, None)
    assert info.file_size == len(data) // 2
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(path)


# -- modes -----------------------------------------------------------------------------------------------------
def test_cmyk_jpeg_becomes_rgb_with_close_colours() -> None:
    src = _photo()
    im, info = load_image_with_info(_encode(src.convert("CMYK"), "JPEG", quality=95))
    assert info.mode == "CMYK" and im.mode == "RGB"
    assert _diff(im, src) < 8


def test_cmyk_uses_its_embedded_icc_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    # No CMYK profile ships with LittleCMS, so the transform is stubbed: this checks the embedded profile is used.
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _encode(_photo().convert("CMYK"), "JPEG", quality=95, icc_profile=profile)
    calls = []

    def profile_to_profile(im: Image.Image, src: ImageCms.ImageCmsProfile, dst: object, outputMode: str) -> Image.Image:
        calls.append((im.mode, src.tobytes(), outputMode))
        return Image.new("RGB", im.size, (1, 2, 3))

    monkeypatch.setattr(ImageCms, "profileToProfile", profile_to_profile)
    im = load_image(data)
    assert calls == [("CMYK", profile, "RGB")] and im.getpixel((0, 0)) == (1, 2, 3)


def test_cmyk_with_unusable_icc_profile_falls_back() -> None:
    src = _photo()
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # an RGB profile on CMYK data
    im = load_image(_encode(src.convert("CMYK"), "JPEG", quality=95, icc_profile=profile))
    assert im.mode == "RGB" and _diff(im, src) < 8


def test_16_bit_png_is_rescaled_not_clipped() -> None:
    ramp = np.linspace(0, 65535, 64 * 96).reshape(64, 96).astype(np.uint16)
    im, info = load_image_with_info(_encode(Image.fromarray(ramp), "PNG"))
    arr = np.asarray(im)
    assert info.mode.startswith("I") and im.mode == "RGB"
    assert arr.min() == 0 and arr.max() == 255
    assert abs(float(arr.mean()) - 127.5) < 2  # a clipped conversion would be almost all 255
    assert np.array_equal(arr[..., 0], np.round(ramp / 65535 * 255).astype(np.uint8))


@pytest.mark.parametrize("mode", ["I;16B", "I;16L"])
def test_16_bit_byte_orders(mode: str) -> None:
    ramp = np.linspace(0, 65535, 32 * 16).reshape(16, 32).astype(np.uint16)
    im = Image.frombytes(mode, (32, 16), ramp.astype(">u2" if mode.endswith("B") else "<u2").tobytes())
    arr = np.asarray(to_rgb(im))
    assert arr.min() == 0 and arr.max() == 255


def test_32_bit_and_float_tiffs() -> None:
    ints = Image.fromarray(np.linspace(0, 65535, 256).reshape(16, 16).astype(np.int32))
    assert np.asarray(load_image(_encode(ints, "TIFF"))).max() == 255
    unit = Image.fromarray(np.linspace(0, 1, 256).reshape(16, 16).astype(np.float32))
    arr = np.asarray(load_image(_encode(unit, "TIFF")))
    assert arr.min() == 0 and arr.max() == 255
    wide = Image.fromarray(np.linspace(-5, 300, 256).reshape(16, 16).astype(np.float32))
    arr = np.asarray(to_rgb(wide))
    assert arr.min() == 0 and arr.max() == 255


def test_alpha_and_transparent_palette_are_composited_on_white() -> None:
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    assert load_image(_encode(rgba, "PNG")).getpixel((0, 0)) == (255, 255, 255)
    half = Image.new("RGBA", (8, 8), (0, 0, 0, 128))
    assert 120 <= load_image(_encode(half, "PNG")).getpixel((0, 0))[0] <= 135
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0] * 256)
    im, info = load_image_with_info(_encode(pal, "PNG", transparency=0))
    assert info.mode == "P" and im.getpixel((0, 0)) == (255, 255, 255)
    opaque_pal = _photo().convert("P", palette=Image.Palette.ADAPTIVE)
    assert load_image(_encode(opaque_pal, "PNG")).mode == "RGB"
    colour_key = Image.new("RGB", (8, 8), (10, 20, 30))
    assert load_image(_encode(colour_key, "PNG", transparency=(10, 20, 30))).getpixel((0, 0)) == (255, 255, 255)


def test_la_and_l_and_1() -> None:
    im, info = load_image_with_info(_encode(Image.new("LA", (8, 8), (0, 0)), "PNG"))
    assert info.mode == "LA" and im.getpixel((0, 0)) == (255, 255, 255)
    assert load_image(_encode(Image.new("LA", (8, 8), (40, 255)), "PNG")).getpixel((0, 0)) == (40, 40, 40)
    assert load_image(_encode(Image.new("L", (8, 8), 77), "PNG")).getpixel((0, 0)) == (77, 77, 77)
    assert load_image(_encode(Image.new("1", (8, 8), 1), "PNG")).getpixel((0, 0)) == (255, 255, 255)


def test_lab_and_ycbcr() -> None:
    rgb = Image.new("RGB", (4, 4), (200, 30, 40))
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    lab = ImageCms.applyTransform(rgb, to_lab)
    back = load_image(_encode(lab, "TIFF"))
    assert np.abs(np.subtract(back.getpixel((0, 0)), (200, 30, 40))).max() <= 3
    assert np.abs(np.subtract(to_rgb(rgb.convert("YCbCr")).getpixel((0, 0)), (200, 30, 40))).max() <= 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(_photo(96, 64), "PNG", exif=exif)
    im, info = load_image_with_info(data)
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    assert np.array_equal(np.asarray(im), np.asarray(expected))
    assert (info.width, info.height) == im.size and info.has_exif
    assert (probe_image(data).width, probe_image(data).height) == im.size


def test_exif_orientation_6_jpeg() -> None:
    src = _photo(96, 64)
    exif = Image.Exif()
    exif[0x0112] = 6
    im, info = load_image_with_info(_encode(src, "JPEG", quality=95, exif=exif))
    assert im.size == (64, 96) and (info.width, info.height) == (64, 96) and info.has_exif
    assert _diff(im, src.transpose(Image.Transpose.ROTATE_270)) < 3


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(buf.getvalue())).n_frames == 2
    r, _, b = load_image(buf.getvalue()).getpixel((0, 0))
    assert r > 200 and b < 50


# -- broken input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "empty file"),
        (b"just some text, not pixels", "not an image or unsupported format"),
        (np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "not an image"),
    ],
)
def test_broken_bytes(data: bytes, reason: str, tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match=reason):
        load_image(data)
    path = tmp_path / "photo.jpg"  # the extension promises a JPEG
    path.write_bytes(data)
    with pytest.raises(ImageLoadError, match=reason) as caught:
        probe_image(path)
    assert str(path) in str(caught.value)


def test_truncated_jpeg() -> None:
    data = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), np.uint8)), "JPEG")
    with pytest.raises(ImageLoadError, match="truncated or corrupt file"):
        load_image(data[: len(data) // 2])


def test_path_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageLoadError, match="no such file"):
        probe_image(tmp_path / "missing.jpg", hash=False)
    with pytest.raises(ImageLoadError, match="directory"):
        load_image(tmp_path)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    for hash_ in (True, False):
        with pytest.raises(ImageLoadError, match="empty file"):
            probe_image(empty, hash=hash_)


def test_unreadable_path(tmp_path: Path) -> None:
    locked = tmp_path / "locked.png"
    locked.write_bytes(_encode(_photo(), "PNG"))
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: file permissions are not enforced")
        with pytest.raises(ImageLoadError, match="cannot read file: permission denied"):
            load_image(locked)
    finally:
        locked.chmod(0o644)


# -- size limits -----------------------------------------------------------------------------------------------
def test_decompression_bomb_is_refused_before_decoding() -> None:
    t0 = time.perf_counter()
    with pytest.raises(ImageLoadError, match=r"20000×20000 = 400\.0 Mpx, above the limit of 120 Mpx"):
        load_image(png_bomb())  # also above Pillow's own guard (~179 Mpx), which fires first
    with pytest.raises(ImageLoadError, match=r"11000×11000 = 121\.0 Mpx, above the limit"):
        probe_image(png_bomb(11_000, 11_000))  # below Pillow's guard: only ours refuses it
    assert time.perf_counter() - t0 < 1.0  # refused from the header: 1.2 GB was never allocated
    with pytest.raises(ImageLoadError, match="limit"):
        load_image(_encode(_photo(100, 100), "PNG"), max_pixels=5_000)


def test_raised_limit_is_honoured_past_pillows_guard() -> None:
    info = probe_image(png_bomb(), max_pixels=500_000_000)
    assert (info.width, info.height, info.format) == (20_000, 20_000, "PNG")
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's global guard was not switched off


def test_large_photos_pass_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow warns above ~89 Mpx; below our limit that must stay quiet
        assert probe_image(png_bomb(8_000, 8_000)).width == 8_000
        assert probe_image(png_bomb(10_000, 10_000)).height == 10_000
    assert 10_000 * 10_000 < DEFAULT_MAX_PIXELS < 20_000 * 20_000


def test_long_thin_and_tiny_images_load() -> None:
    assert load_image(_encode(Image.new("RGB", (8000, 100), "white"), "PNG")).size == (8000, 100)
    assert load_image(_encode(Image.new("RGB", (1, 1)), "PNG")).size == (1, 1)


# -- JPEG quality ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("quality", [10, 30, 50, 75, 90, 95, 100])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_jpeg_quality_estimate(quality: int, mode: str) -> None:
    data = _encode(_photo().convert(mode), "JPEG", quality=quality)
    assert abs(probe_image(data).jpeg_quality - quality) <= 1
    assert estimate_jpeg_quality(Image.open(io.BytesIO(data))) == probe_image(data).jpeg_quality


def test_jpeg_quality_default_and_non_jpeg() -> None:
    assert probe_image(_encode(_photo(), "JPEG")).jpeg_quality == 75  # Pillow's default
    assert probe_image(_encode(_photo(), "PNG")).jpeg_quality is None
    assert estimate_jpeg_quality(Image.open(io.BytesIO(_encode(_photo(), "WEBP", quality=80)))) is None


def test_is_image_path() -> None:
    assert is_image_path("a/B.JPG") and is_image_path("x.webp") and is_image_path(Path("y.tiff"))
    assert not is_image_path("notes.txt") and not is_image_path("drawing.svg")  # SVG is listed, but not decoded
    assert is_image_path("photo.heic")  # through the pillow-heif plug-in (the heif extra)
    assert all(ext == ext.lower() and ext.startswith(".") for ext in IMAGE_EXTENSIONS)


def test_center_box_is_the_one_centring_rule() -> None:
    from gendetect.features.rgb import center_crop
    from gendetect.imageio import center_box

    assert center_box(7, 4, (2, 4)) == (1, 1, 5, 3)  # floor: the left/top margin is the smaller half
    assert center_box(3, 10, (4, 4)) == (0, 3, 3, 7)  # wider than the image: clipped to it
    arr = np.arange(5 * 8 * 3, dtype=np.uint8).reshape(5, 8, 3)
    np.testing.assert_array_equal(center_crop(Image.fromarray(arr), (2, 3)), arr[1:3, 2:5])
    assert center_crop(Image.fromarray(arr), (9, 10)).shape == (9, 10, 3)  # smaller images are padded, not clipped


def test_tensor_center_crop_uses_the_same_box() -> None:
    torch = pytest.importorskip("torch", reason="the 'clip' extra (torch) is not installed")
    from gendetect.detectors.torch_loop import center_crop

    x = torch.arange(2 * 3 * 7 * 9).reshape(2, 3, 7, 9)
    assert torch.equal(center_crop(x, 4), x[..., 1:5, 2:6])  # the box center_box gives a 9 x 7 image
    assert center_crop(x, 8).shape == (2, 3, 7, 8)  # taller than the image: only the wide side is cropped
    assert center_crop(x, None) is x and center_crop(x, 10) is x


@pytest.mark.parametrize("bits", [10, 12, 14])
def test_16_bit_png_holding_fewer_bits_fills_the_8_bit_range(bits: int) -> None:
    """A sensor's or scanner's 10-14-bit data in a 16-bit PNG maps its own depth to 0-255, not to 0-16."""
    top = 2**bits - 1
    ramp = np.linspace(0, top, 64 * 96).reshape(64, 96).astype(np.uint16)
    arr = np.asarray(load_image(_encode(Image.fromarray(ramp), "PNG")))
    assert arr.min() == 0 and arr.max() == 255
    assert np.array_equal(arr[..., 0], np.round(ramp / top * 255).astype(np.uint8))


def test_png_whose_text_chunks_are_too_large_is_named_as_such() -> None:
    from PIL import PngImagePlugin

    from gendetect.imageio import PNG_TEXT_CHUNK

    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", "{}" + " " * (PNG_TEXT_CHUNK + 1), zip=True)  # compresses to a few kB
    data = _encode(Image.new("RGB", (32, 32), "gray"), "PNG", pnginfo=info)
    with pytest.raises(ImageLoadError, match="text chunks .*metadata, not pixels.* larger than gendetect reads"):
        load_image(data)


def test_a_png_with_a_damaged_header_says_it_starts_as_a_png() -> None:
    data = bytearray(_encode(Image.new("RGB", (16, 16), "gray"), "PNG"))
    data[29] ^= 0xFF  # a byte of the IHDR chunk's CRC
    with pytest.raises(ImageLoadError, match=r"unsupported format \(it starts as a PNG file; damaged, or a kind"):
        load_image(bytes(data))
    with pytest.raises(ImageLoadError, match=r"not an image or unsupported format$"):
        load_image(b"hello, I am text")


def test_the_pixel_limit_message_never_reads_as_equal_sizes() -> None:
    data = _encode(Image.new("RGB", (400, 300), "gray"), "PNG")
    with pytest.raises(ImageLoadError, match=r"400×300 = 120,000 pixels, above the limit of 100,000 pixels"):
        load_image(data, max_pixels=100_000)


# -- what the decoder says about a file ------------------------------------------------------------------------
def _jpeg_with_broken_exif() -> bytes:
    """A JPEG whose EXIF names a Make tag of 200 bytes stored past the end of the block: Pillow warns, and reads on."""
    ifd = struct.pack("<2sHI", b"II", 42, 8) + struct.pack("<H", 1) + struct.pack("<HHII", 0x010F, 2, 200, 1000)
    return _encode(_photo(), "JPEG", quality=90, exif=b"Exif\x00\x00" + ifd + struct.pack("<I", 0))


def test_a_decoder_warning_outside_a_scan_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "camera.jpg"
    path.write_bytes(_jpeg_with_broken_exif())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_image_with_info(path)
    texts = [str(w.message) for w in caught]
    assert texts and all(t.startswith(f"{path}: ") for t in texts), texts  # never a bare "Tag data larger than..."
    assert any("larger than file" in t for t in texts)
    assert all(issubclass(w.category, UserWarning) for w in caught)


def test_a_warning_raised_again_with_the_file_name_keeps_its_category() -> None:
    from gendetect import imageio

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with imageio._named_warnings("x.tif"):
            warnings.warn("a runtime warning from a decoder", RuntimeWarning)
    assert [(str(w.message), w.category) for w in caught] == [
        ("x.tif: a runtime warning from a decoder", RuntimeWarning)
    ]


def test_recording_warnings_keeps_each_threads_warnings_apart() -> None:
    import threading

    from gendetect.imageio import recording_warnings

    before = (warnings.showwarning, list(warnings.filters))
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    got: dict[str, list[str]] = {}

    def a() -> None:
        with recording_warnings() as caught:
            a_in.set()
            b_in.wait(5)
            warnings.warn("from a")
        got["a"] = caught
        a_out.set()

    def b() -> None:
        a_in.wait(5)
        with recording_warnings() as caught:
            b_in.set()
            a_out.wait(5)  # a has left: the window stays open for b
            warnings.warn("from b")
            warnings.warn("from b")  # each text once
        got["b"] = caught

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert got == {"a": ["from a"], "b": ["from b"]}
    assert (warnings.showwarning, list(warnings.filters)) == before  # restored once the last thread left


def test_another_threads_catch_warnings_across_a_window_breaks_nothing() -> None:
    # a thread that is not recording (a library's own catch_warnings in a server thread) enters while the window
    # is open and leaves after it closed: its exit puts the window's hook and filters back. The next window must
    # not take the hook for the handler in place (it would call itself), and warnings must still be shown
    import threading

    from gendetect.imageio import recording_warnings

    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with warnings.catch_warnings():
            entered.set()
            release.wait(5)

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        t = threading.Thread(target=other)
        with recording_warnings():
            t.start()
            entered.wait(5)
        release.set()
        t.join(5)
        with recording_warnings() as caught:
            warnings.warn("a deprecation", DeprecationWarning)  # not recorded: shown by the handler in place
            warnings.warn("Corrupt EXIF data")
        warnings.warn("after", FutureWarning)
    assert caught == ["Corrupt EXIF data"]
    assert [str(w.message) for w in shown] == ["a deprecation", "after"]


def test_a_thread_that_starts_recording_puts_back_what_another_threads_catch_warnings_took() -> None:
    # another thread's catch_warnings began before the window opened and ends while a job keeps it open: its exit
    # puts back the handler and filters it saved, without the hook. A file read after that must still be recorded
    import threading

    from gendetect.imageio import recording_warnings

    entered, opened, exited, stop = (threading.Event() for _ in range(4))

    def other() -> None:
        with warnings.catch_warnings():
            entered.set()
            opened.wait(5)
        exited.set()

    def job() -> None:
        with recording_warnings():
            opened.set()
            stop.wait(10)

    t, j = threading.Thread(target=other), threading.Thread(target=job)
    t.start()
    entered.wait(5)
    j.start()
    exited.wait(5)
    try:
        with recording_warnings() as caught:
            warnings.warn("Corrupt EXIF data, read after the other thread's exit")
    finally:
        stop.set()
        j.join(5)
        t.join(5)
    assert caught == ["Corrupt EXIF data, read after the other thread's exit"]


def test_a_handler_that_chains_to_the_hook_does_not_recurse() -> None:
    from gendetect.imageio import recording_warnings

    before = warnings.showwarning
    try:
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("always")
            with recording_warnings():
                previous = warnings.showwarning  # the hook

                def app_handler(*args: object, **kw: object) -> None:  # "log, then forward to what I replaced"
                    previous(*args, **kw)

                warnings.showwarning = app_handler
            with recording_warnings():  # takes app_handler for the handler in place; it calls the hook back
                warnings.warn("not a decoder's", FutureWarning)
        assert [str(w.message) for w in shown] == ["not a decoder's"]
    finally:
        warnings.showwarning = before


def test_other_threads_filters_keep_working_while_one_thread_records() -> None:
    import threading

    from gendetect.imageio import recording_warnings

    inside, done = threading.Event(), threading.Event()

    def record() -> None:
        with recording_warnings():
            inside.set()
            done.wait(5)

    t = threading.Thread(target=record)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        t.start()
        inside.wait(5)
        try:
            with pytest.raises(RuntimeWarning):
                np.log(np.float64(-1.0))  # this thread's "error" filter is not overridden by the window
        finally:
            done.set()
            t.join(5)


@pytest.mark.parametrize("fmt,kw", [("GIF", {}), ("PNG", {}), ("WEBP", {"lossless": True}), ("TIFF", {})])
def test_frames_are_counted_and_the_first_is_decoded(fmt: str, kw: dict) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    data = _encode(frames[0], fmt, save_all=True, append_images=frames[1:], **kw)
    im, info = load_image_with_info(data)
    assert info.n_frames == 3 and probe_image(data).n_frames == 3
    assert im.getpixel((8, 8)) == (255, 0, 0)  # counting the frames did not move the decoder off the first one
    assert load_image_with_info(_encode(frames[0], fmt, **kw))[1].n_frames == 1
