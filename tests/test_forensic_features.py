"""Weight-free forensic extractors: any size, deterministic, see up-sampling traces, ignore the file format."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gendetect import load_model
from gendetect.errors import UnknownNameError
from gendetect.features import create_extractor, extractor_from_config, list_extractors
from gendetect.imageio import load_image

FORENSIC = ["spectrum", "npr", "saturation", "forensic"]


def _noise(h: int, w: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = np.asarray(
        Image.fromarray(rng.integers(0, 256, (max(h // 8, 1), max(w // 8, 1), 3), np.uint8)).resize(
            (w, h), Image.BICUBIC
        ),
        np.float32,
    )
    return Image.fromarray(np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8))


def _upsampled(h: int, w: int, seed: int) -> Image.Image:
    return _noise(h // 2, w // 2, seed).resize((w, h), Image.NEAREST)


def _reencode(im: Image.Image, fmt: str) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return load_image(buf.getvalue())


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    data = pytest.importorskip("skimage.data", reason="scikit-image ships the real photographs these tests use")
    return [Image.fromarray(getattr(data, name)()) for name in ("astronaut", "coffee", "chelsea")]


def test_registered() -> None:
    assert set(FORENSIC) <= set(list_extractors())


@pytest.mark.parametrize("name", FORENSIC)
@pytest.mark.parametrize("size", [(1, 1), (16, 16), (63, 200), (256, 256), (700, 1000)])
def test_any_size_gives_finite_fixed_length_features(name: str, size: tuple[int, int]) -> None:
    ext = create_extractor(name)
    f = ext.extract_one(_noise(*size))
    assert f.shape == (ext.dim,) and f.dtype == np.float32 and np.isfinite(f).all()


def test_large_image_is_cheap_and_cropped_not_resized() -> None:
    big = Image.new("RGB", (6000, 4000), (90, 120, 150))
    ext = create_extractor("npr", n_crops=1, crop=256)
    # the feature of the image is the feature of its native-resolution centre crop
    centre = big.crop((3000 - 128, 2000 - 128, 3000 + 128, 2000 + 128))
    np.testing.assert_array_equal(ext.extract_one(big), ext.extract_one(centre))


@pytest.mark.parametrize("name", FORENSIC)
def test_deterministic_and_config_roundtrip(name: str) -> None:
    ext = create_extractor(name, crop=128)
    rebuilt = extractor_from_config(ext.get_config())
    im = _noise(300, 200, seed=3)
    np.testing.assert_array_equal(ext.extract_one(im), rebuilt.extract_one(im))
    assert rebuilt.get_config() == ext.get_config() and rebuilt.dim == ext.dim


@pytest.mark.parametrize("name", ["spectrum", "npr"])
def test_up_sampling_trace_separates_classes(name: str) -> None:
    """2x nearest up-sampling (a generator's trace) moves the features far more than a change of content does."""
    ext = create_extractor(name, crop=128, n_crops=1)
    plain = np.stack([ext.extract_one(_noise(128, 128, seed=s)) for s in range(8)])
    upsampled = np.stack([ext.extract_one(_upsampled(128, 128, seed=s)) for s in range(8)])
    between = np.linalg.norm(plain.mean(0) - upsampled.mean(0))
    within = max(plain.std(0).mean(), upsampled.std(0).mean()) * np.sqrt(ext.dim)
    assert between > 3 * within


@pytest.mark.parametrize("name", ["spectrum", "npr", "forensic"])
def test_png_and_jpeg95_are_closer_than_an_up_sampled_copy(name: str, photos: list[Image.Image]) -> None:
    ext = create_extractor(name)
    for photo in photos:
        png = ext.extract_one(_reencode(photo, "PNG"))
        jpg = ext.extract_one(_reencode(photo, "JPEG"))
        w, h = photo.size
        up = ext.extract_one(photo.resize((w // 2, h // 2), Image.BILINEAR).resize((w, h), Image.NEAREST))
        assert np.linalg.norm(png - jpg) < 0.5 * np.linalg.norm(png - up)


def test_saturation_ignores_format_but_sees_clipping(photos: list[Image.Image]) -> None:
    ext = create_extractor("saturation")
    for photo in photos:
        png = ext.extract_one(_reencode(photo, "PNG"))
        jpg = ext.extract_one(_reencode(photo, "JPEG"))
        arr = np.asarray(photo, np.float32)
        brighter = ext.extract_one(Image.fromarray(np.clip(arr * 1.4, 0, 255).astype(np.uint8)))  # clips highlights
        assert np.linalg.norm(png - jpg) < 0.5 * np.linalg.norm(png - brighter)


def test_default_model_verdict_does_not_follow_the_format(photos: list[Image.Image]) -> None:
    model = load_model()
    for photo in photos:
        p_png, p_jpg = model.predict_proba([_reencode(photo, "PNG"), _reencode(photo, "JPEG")])
        assert abs(p_png - p_jpg) < 0.1
        assert (p_png > model.threshold) == (p_jpg > model.threshold)


def test_default_model_scores_any_size(photos: list[Image.Image]) -> None:
    model = load_model()
    sizes = [(64, 64), (100, 3000), (8000, 120)]
    images = [photos[0].crop((0, 0, 64, 64))] + [Image.new("RGB", s, (10, 200, 30)) for s in sizes[1:]]
    p = model.predict_proba(images)
    assert p.shape == (3,) and np.isfinite(p).all() and ((0 <= p) & (p <= 1)).all()


def test_unknown_extractor_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError) as e:
        create_extractor("spectra")
    assert "spectrum" in str(e.value) and "npr" in str(e.value)
