"""Benign processing chains (gendetect.augment.benign): determinism, sizes, JPEG history, the demosaic trace."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gendetect.augment import BENIGN, benign_chain, list_benign, random_benign
from gendetect.augment.benign import BenignError, bayer_mosaic, bilinear_demosaic, malvar_demosaic
from gendetect.data.synthetic import synthetic_image
from gendetect.errors import UnknownNameError
from gendetect.features import create_extractor
from gendetect.features.forensic import luminance, period2_phase_features


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A 128 x 96 'real' image: smooth scene plus per-pixel noise, no up-sampling or demosaic trace."""
    return synthetic_image("real", 128, seed=3).crop((0, 0, 128, 96))


def _bytes(image: Image.Image) -> bytes:
    return np.asarray(image).tobytes() + repr(image.size).encode()


def _is_random(name: str) -> bool:
    spec = BENIGN.create(name).spec
    return "~" in spec or "|" in spec or "crop" in spec or "demosaic" in spec


REQUIRED = [
    "upscale-x1.5-bicubic", "upscale-x1.5-lanczos", "upscale-x2-bicubic", "upscale-x2-lanczos", "downscale-x0.5",
    "downscale-x0.75", "crop", "jpeg", "double-jpeg", "double-jpeg-resized", "webp", "denoise-median",
    "denoise-bilateral", "sharpen", "tone", "colour", "screenshot", "social-1080", "phone-upscale", "camera-bilinear",
    "camera-mhc", "camera-raw",
]  # fmt: skip


def test_registry_holds_the_issue_chains() -> None:
    assert set(REQUIRED) <= set(list_benign())
    assert list_benign("upscale-*") == [n for n in list_benign() if n.startswith("upscale-")]


@pytest.mark.parametrize("name", sorted(set(list_benign()) - {"social-1080"}))
def test_chain_is_deterministic_rgb_and_seed_dependent(name: str, photo: Image.Image) -> None:
    chain = BENIGN.create(name)
    a, spec_a = chain.apply(photo, seed=1)
    b, spec_b = chain.apply(photo, seed=1)
    assert a.mode == "RGB" and min(a.size) >= 16
    assert _bytes(a) == _bytes(b) and spec_a == spec_b
    if _is_random(name):
        others = {_bytes(chain(photo, seed=s)) for s in range(2, 7)}
        assert len(others | {_bytes(a)}) > 1, f"{name}: five seeds gave the same output"


def test_sizes(photo: Image.Image) -> None:
    assert BENIGN.create("upscale-x2-lanczos")(photo).size == (256, 192)
    assert BENIGN.create("upscale-x1.5-bicubic")(photo).size == (192, 144)
    assert BENIGN.create("downscale-x0.5")(photo, seed=0).size == (64, 48)
    w, h = BENIGN.create("crop")(photo, seed=0).size
    assert w < 128 and h < 96
    assert max(BENIGN.create("social-1080")(photo, seed=0).size) == 1080
    assert BENIGN.create("phone-upscale")(photo, seed=0).size == (256, 192)
    assert BENIGN.create("phone-upscale", scale=3)(photo, seed=0).size == (384, 288)


def test_applied_spec_resolves_ranges(photo: Image.Image) -> None:
    _, applied = BENIGN.create("jpeg").apply(photo, seed=5)
    q = int(applied.split(":")[1].split(",")[0])
    assert 60 <= q <= 95 and "~" not in applied


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    m = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16) * np.sqrt(2 / 8)
    m[0] /= np.sqrt(2)
    return m


def _quantisation_fit(image: Image.Image, table: list[int]) -> float:
    """Mean distance to the nearest multiple of the JPEG luma quantiser, over the DCT coefficients of 8 x 8 blocks.

    A decoded JPEG's coefficients sit near multiples (distance ~0.09 after rounding to 8-bit pixels); any
    other image's are spread evenly (~0.25).
    """
    y = np.asarray(image.convert("YCbCr"), np.float64)[..., 0] - 128  # Pillow's conversion is libjpeg's
    h, w = y.shape[0] // 8 * 8, y.shape[1] // 8 * 8
    blocks = y[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)
    d = _dct_matrix()
    coef = d @ blocks @ d.T
    q = np.asarray(table, np.float64).reshape(8, 8)
    ratio = coef / q
    keep = np.abs(ratio) > 0.5  # zero coefficients say nothing: keep those a quantiser would have kept
    keep[..., 0, 0] = False  # DC carries the level shift
    return float(np.abs(ratio - np.round(ratio))[keep].mean())


def test_jpeg_chains_leave_a_quantisation_history(photo: Image.Image) -> None:
    big = photo.resize((256, 192))
    out, applied = benign_chain("jpeg:80").apply(big)
    assert applied == "jpeg:80,420"
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=80)
    table = Image.open(io.BytesIO(buf.getvalue())).quantization[0]
    assert _quantisation_fit(out, table) < 0.15
    assert _quantisation_fit(big, table) > 0.2
    assert _quantisation_fit(BENIGN.create("sharpen")(big, seed=0), table) > 0.2  # no JPEG in that chain
    for name in ("camera-mhc", "social-1080", "double-jpeg"):
        img, spec = BENIGN.create(name).apply(big, seed=0)
        q = int(spec.split("jpeg:")[-1].split(",")[0])
        ref = io.BytesIO()
        img.save(ref, "JPEG", quality=q)
        assert _quantisation_fit(img, Image.open(ref).quantization[0]) < 0.15, name


def test_webp_and_png_outputs_are_what_they_say(photo: Image.Image) -> None:
    assert BENIGN.create("webp")(photo, seed=0).format == "WEBP"
    shot = BENIGN.create("screenshot")(photo, seed=0)
    assert shot.format == "PNG"
    assert BENIGN.create("camera-raw")(photo, seed=0).format == "PNG"


def test_demosaic_reproduces_flat_and_linear_images() -> None:
    yy, xx = np.mgrid[0:32, 0:32]
    ramp = np.stack([0.01 * xx + 0.005 * yy, 0.3 + 0.004 * xx, 0.8 - 0.01 * yy], -1).astype(np.float32)
    for demosaic in (bilinear_demosaic, malvar_demosaic):
        assert np.abs(demosaic(bayer_mosaic(ramp)) - ramp)[3:-3, 3:-3].max() < 1e-5


def test_malvar_beats_bilinear_when_channels_correlate() -> None:
    grey = np.asarray(synthetic_image("real", 96, seed=0).convert("L").convert("RGB"), np.float32) / 255
    raw = bayer_mosaic(grey)
    err = {f.__name__: np.abs(f(raw) - grey)[4:-4, 4:-4].mean() for f in (bilinear_demosaic, malvar_demosaic)}
    assert err["malvar_demosaic"] < 0.8 * err["bilinear_demosaic"]


def _green_checkerboard(image: Image.Image) -> float:
    """Diagonal period-2 component of the 2 x 2 phase means of |Laplacian| of the green channel, relative."""
    g = np.asarray(image, np.float32)[..., 1]
    lap = np.abs(4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:])
    h, w = lap.shape[0] // 2 * 2, lap.shape[1] // 2 * 2
    m = lap[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(0, 2))
    return float(abs(m[0, 0] - m[0, 1] - m[1, 0] + m[1, 1]) / (4 * m.mean()))


@pytest.mark.parametrize("method", ["bilinear", "mhc"])
def test_camera_simulation_leaves_a_period2_trace(photo: Image.Image, method: str) -> None:
    """Demosaicing makes a pixel's residual depend on its 2 x 2 Bayer phase: real cameras look 'up-sampled'."""
    noise_only = benign_chain("noise:2+png")(photo, seed=0)  # the same kind of image without a mosaic
    camera = benign_chain(f"demosaic:{method},0.001,0.001+png")(photo, seed=0)
    assert _green_checkerboard(camera) > 10 * _green_checkerboard(noise_only)
    assert _green_checkerboard(camera) > 0.01

    # npr's phase_dft features (logs of relative period-2 DFT magnitudes; log(1e-3) ~ -6.9 means none) see it
    def strength(logs: np.ndarray) -> float:
        return float(np.exp(logs).sum())

    p_cam = period2_phase_features(luminance(np.asarray(camera)))
    p_ref = period2_phase_features(luminance(np.asarray(noise_only)))
    assert strength(p_cam) > 3 * strength(p_ref)
    npr = create_extractor("npr", crop=96, n_crops=1, phase_dft=True)
    assert strength(npr.extract_one(camera)[-9:]) > 3 * strength(npr.extract_one(noise_only)[-9:])


def test_camera_trace_survives_camera_jpeg(photo: Image.Image) -> None:
    big = photo.resize((256, 192), Image.Resampling.BOX)
    ref = BENIGN.create("jpeg")(big, seed=0)
    cam = BENIGN.create("camera-bilinear")(big, seed=0)
    assert _green_checkerboard(cam) > 5 * _green_checkerboard(ref)


def test_random_benign(photo: Image.Image) -> None:
    a, name_a = random_benign(photo, seed=4)
    b, name_b = random_benign(photo, seed=4)
    assert name_a == name_b and _bytes(a) == _bytes(b) and name_a in list_benign() and name_a != "none"
    names = {random_benign(photo, seed=s, names=["jpeg", "webp"])[1] for s in range(12)}
    assert names == {"jpeg", "webp"}


def test_bad_specs_say_what_is_valid(photo: Image.Image) -> None:
    with pytest.raises(UnknownNameError, match="Valid benign operation names"):
        benign_chain("jpg:80")
    with pytest.raises(UnknownNameError, match="benign chain"):
        benign_chain("upscale-x3")
    with pytest.raises(BenignError, match="lo <= hi"):
        benign_chain("jpeg:90~60")
    with pytest.raises(BenignError, match="resampling filter"):
        benign_chain("resize:2,cubic")(photo)
    with pytest.raises(BenignError, match="needs values for scale"):
        benign_chain("resize:{scale}")
