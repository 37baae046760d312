"""Weight-free forensic extractors: any size, deterministic, see up-sampling traces, ignore the file format."""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gendetect import load_model
from gendetect.errors import UnknownNameError
from gendetect.features import EXTRACTORS, create_extractor, list_extractors
from gendetect.features.forensic import comb_relative_peaks, period2_phase_features
from gendetect.imageio import load_image

FORENSIC = ["spectrum", "npr", "saturation", "noise", "forensic"]
# every registered forensic extractor, plus the optional feature groups switched on
VARIANTS: list[tuple[str, dict[str, Any]]] = [(name, {}) for name in FORENSIC] + [
    ("npr", {"phase_dft": True}),
    ("spectrum", {"peaks": False, "jpeg_notch": False}),
    ("forensic", {"parts": ["npr", "saturation"], "part_params": {"npr": {"phase_dft": True}}}),
    ("forensic", {"parts": ["periodic", "npr", "noise"], "part_params": {"npr": {"phase_dft": True}}}),
]
VARIANT_IDS = [f"{n}{p}" if p else n for n, p in VARIANTS]
# the extractors that look for up-sampling traces
TRACE_VARIANTS = [("spectrum", {}), ("npr", {}), ("npr", {"phase_dft": True})]


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


def _reencode(im: Image.Image, fmt: str, quality: int = 95) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return load_image(buf.getvalue())


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    data = pytest.importorskip("skimage.data", reason="scikit-image ships the real photographs these tests use")
    return [Image.fromarray(getattr(data, name)()) for name in ("astronaut", "coffee", "chelsea")]


def test_registered() -> None:
    assert set(FORENSIC) <= set(list_extractors())


@pytest.mark.parametrize(("name", "params"), VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("size", [(1, 1), (16, 16), (63, 200), (256, 256), (700, 1000), (1000, 700)])
def test_any_size_gives_finite_fixed_length_features(name: str, params: dict, size: tuple[int, int]) -> None:
    ext = create_extractor(name, **params)
    f = ext.extract_one(_noise(*size))
    assert f.shape == (ext.dim,) and f.dtype == np.float32 and np.isfinite(f).all()


@pytest.mark.parametrize(("name", "params"), VARIANTS, ids=VARIANT_IDS)
def test_flat_and_large_images_are_finite(name: str, params: dict) -> None:
    """A flat image has no residual at all: every ratio and log must still be finite."""
    ext = create_extractor(name, **params)
    for im in (Image.new("RGB", (3000, 3000), (40, 80, 120)), Image.new("RGB", (40, 33), (255, 255, 255))):
        f = ext.extract_one(im)
        assert f.shape == (ext.dim,) and f.dtype == np.float32 and np.isfinite(f).all()


def test_large_image_is_cheap_and_cropped_not_resized() -> None:
    big = Image.new("RGB", (6000, 4000), (90, 120, 150))
    ext = create_extractor("npr", n_crops=1, crop=256)
    # the feature of the image is the feature of its native-resolution centre crop
    centre = big.crop((3000 - 128, 2000 - 128, 3000 + 128, 2000 + 128))
    np.testing.assert_array_equal(ext.extract_one(big), ext.extract_one(centre))


@pytest.mark.parametrize("name", ["spectrum", "npr"])
def test_features_of_an_image_are_the_mean_of_its_native_crops(name: str) -> None:
    """Several crops are averaged; each is cut at native resolution (a resize would change them)."""
    im = _noise(512, 512, seed=5)
    ext = create_extractor(name, crop=128, n_crops=5, **({"phase_dft": True} if name == "npr" else {}))
    boxes = [(192, 192), (64, 64), (64, 320), (320, 64), (320, 320)]  # centre, then quadrant centres (top, left)
    crops = [ext.extract_one(im.crop((x, y, x + 128, y + 128))) for y, x in boxes]
    np.testing.assert_allclose(ext.extract_one(im), np.mean(crops, axis=0), rtol=1e-5, atol=1e-5)


def test_8000px_image_is_well_under_a_second() -> None:
    big = Image.new("RGB", (8000, 8000), (90, 120, 150))
    ext = create_extractor("forensic", part_params={"npr": {"phase_dft": True}})
    ext.extract_one(big)  # warm the FFT geometry cache
    t0 = time.perf_counter()
    ext.extract_one(big)
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize(("name", "params"), VARIANTS, ids=VARIANT_IDS)
def test_deterministic_and_config_roundtrip(name: str, params: dict) -> None:
    ext = create_extractor(name, crop=128, **params)
    rebuilt = EXTRACTORS.from_config(ext.get_config())
    im = _noise(300, 200, seed=3)
    np.testing.assert_array_equal(ext.extract_one(im), rebuilt.extract_one(im))
    np.testing.assert_array_equal(ext.extract_one(im), ext.extract_one(im.copy()))
    assert rebuilt.get_config() == ext.get_config() and rebuilt.dim == ext.dim


def test_optional_groups_change_the_dimension() -> None:
    assert create_extractor("npr", phase_dft=True).dim == create_extractor("npr").dim + 9
    assert create_extractor("spectrum").dim == create_extractor("spectrum", peaks=False).dim + 8
    fused = create_extractor("forensic", parts=["npr"], part_params={"npr": {"phase_dft": True}})
    assert fused.dim == create_extractor("npr", phase_dft=True).dim


@pytest.mark.parametrize(("name", "params"), TRACE_VARIANTS, ids=["spectrum", "npr", "npr+phase_dft"])
def test_up_sampling_trace_separates_classes(name: str, params: dict) -> None:
    """2x nearest up-sampling (a generator's trace) moves the features far more than a change of content does."""
    ext = create_extractor(name, crop=128, n_crops=1, **params)
    plain = np.stack([ext.extract_one(_noise(128, 128, seed=s)) for s in range(8)])
    upsampled = np.stack([ext.extract_one(_upsampled(128, 128, seed=s)) for s in range(8)])
    between = np.linalg.norm(plain.mean(0) - upsampled.mean(0))
    within = max(plain.std(0).mean(), upsampled.std(0).mean()) * np.sqrt(ext.dim)
    assert between > 3 * within


def _linear_up2(v: np.ndarray) -> np.ndarray:
    """2x up-sampling by linear interpolation (what bilinear layers and many transposed convolutions do)."""
    for axis in (0, 1):
        v = np.moveaxis(v, axis, 0)
        out = np.empty((2 * v.shape[0] - 1, *v.shape[1:]))
        out[0::2], out[1::2] = v, 0.5 * (v[:-1] + v[1:])
        v = np.moveaxis(out, 0, axis)
    return v


def test_period2_phase_features_see_up_sampling_wherever_the_crop_starts() -> None:
    rng = np.random.default_rng(0)
    plain = rng.normal(128, 20, (129, 129))
    up = _linear_up2(rng.normal(128, 20, (66, 66)))[:129, :129]
    f_plain = period2_phase_features(plain)
    assert f_plain.shape == (9,) and (f_plain < -2).all()  # no phase dependence: near log(1e-3)
    for shift in (0, 1):  # the 2 x 2 cell may start on an even or odd pixel
        f_up = period2_phase_features(up[shift:, shift:])
        assert (f_up[[0, 1, 3, 7]] > -1.5).all()  # Laplacian both ways, d2x horizontally, d2y vertically
    np.testing.assert_allclose(period2_phase_features(up[:-1, :-1]), period2_phase_features(up[1:, 1:]), atol=0.05)


def test_comb_relative_peaks_flat_for_noise_and_large_for_a_periodic_pattern() -> None:
    rng = np.random.default_rng(0)
    n = 128
    window = np.outer(np.hanning(n), np.hanning(n))
    noise = np.mean(
        [comb_relative_peaks(np.abs(np.fft.rfft2(rng.normal(size=(n, n)) * window)) ** 2) for _ in range(20)], 0
    )
    assert np.abs(noise).max() < 0.5
    periodic = rng.normal(size=(n, n)) + 3 * np.cos(np.pi * np.arange(n))[None, :]  # a peak at fx = 1/2
    peaks = comb_relative_peaks(np.abs(np.fft.rfft2(periodic * window)) ** 2)
    assert peaks[1] > 3  # (0, 4/8): the horizontal 1/2 peak
    assert np.abs(peaks[[0, 2, 3, 4, 5]]).max() < 1.5  # the others stay near noise


@pytest.mark.parametrize(
    ("name", "params"),
    # saturation is blind to up-sampling (see test_saturation_ignores_format...); noise measures what JPEG removes
    [v for v in VARIANTS if v[0] not in ("saturation", "noise") and "noise" not in v[1].get("parts", ())],
    ids=[i for i, v in zip(VARIANT_IDS, VARIANTS) if v[0] not in ("saturation", "noise")
         and "noise" not in v[1].get("parts", ())],
)
def test_png_and_jpeg95_are_closer_than_an_up_sampled_copy(name: str, params: dict, photos: list[Image.Image]) -> None:
    """The same pixels as PNG and as JPEG q95 give close features; a 2x up-sampled copy does not."""
    ext = create_extractor(name, **params)
    for photo in photos:
        png = ext.extract_one(_reencode(photo, "PNG"))
        jpg = ext.extract_one(_reencode(photo, "JPEG"))
        w, h = photo.size
        up = ext.extract_one(photo.resize((w // 2, h // 2), Image.BILINEAR).resize((w, h), Image.NEAREST))
        assert np.linalg.norm(png - jpg) < 0.5 * np.linalg.norm(png - up)

        def cosine(a: np.ndarray, b: np.ndarray) -> float:
            return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

        assert cosine(png, jpg) > cosine(png, up)


def test_saturation_ignores_format_but_sees_clipping(photos: list[Image.Image]) -> None:
    ext = create_extractor("saturation")
    for photo in photos:
        png = ext.extract_one(_reencode(photo, "PNG"))
        jpg = ext.extract_one(_reencode(photo, "JPEG"))
        arr = np.asarray(photo, np.float32)
        brighter = ext.extract_one(Image.fromarray(np.clip(arr * 1.4, 0, 255).astype(np.uint8)))  # clips highlights
        assert np.linalg.norm(png - jpg) < 0.5 * np.linalg.norm(png - brighter)


def test_saturation_matches_its_reference_formula(photos: list[Image.Image]) -> None:
    """The embedded default model was trained on these exact numbers: a faster implementation must not move them."""
    ext = create_extractor("saturation", crop=224, n_crops=1)
    rgb = np.asarray(photos[0])[100:324, 150:374]
    a = rgb.astype(np.float32) / 255.0
    hi, lo = a.max(axis=2), a.min(axis=2)
    sat = (hi - lo) / np.maximum(hi, 1e-3)
    n = float(hi.size)
    clip_hi, clip_lo = rgb >= 254, rgb <= 1
    shares = [clip_hi.any(axis=2).mean(), clip_lo.all(axis=2).mean(), *clip_hi.mean((0, 1)), *clip_lo.mean((0, 1))]
    reference = np.concatenate(
        [
            np.log(np.histogram(sat, bins=16, range=(0.0, 1.0))[0] / n + 1e-4),
            np.log(np.histogram(hi, bins=16, range=(0.0, 1.0))[0] / n + 1e-4),
            np.log(np.asarray(shares) + 1e-4),
        ]
    ).astype(np.float32)
    np.testing.assert_array_equal(ext.extract_one(Image.fromarray(rgb)), reference)


@pytest.mark.parametrize(
    "name",
    [
        "astronaut",
        pytest.param("coffee", marks=pytest.mark.xfail(strict=True, reason=(
            "v10 (v9's trees) calls the PNG `uncertain` (P 0.52, band from 0.49) and the JPEG copies `real` "
            "(0.19-0.29): the `noise` part reads the noise JPEG removes. The card measures it out-of-group: 93% of lossless "
            "validation reals keep their verdict as JPEG (v5: 96%), none moves to `fake` (#14)"))),
        "chelsea",
    ],
)
def test_default_model_verdict_does_not_follow_the_format(name: str) -> None:
    """A real photo as PNG and as JPEG at q95, q85 and q75 gets one verdict, and it is never `fake`.

    The verdict is what a user sees. P(fake) itself moves: the `noise` part (since v4) sees the sensor noise JPEG
    removes, so a lossless real photo can score higher than its JPEG copy (the coffee photo: v4 0.64 -> 0.34,
    v5 0.71 -> 0.30, v6 0.77 -> 0.35, v7 0.51 -> 0.19, v8 0.58 -> 0.20, v9 0.52 -> 0.21 at q95; v3 without
    `noise` moved less than 0.1). The model card quantifies it on validation (the JPEG shift per class; verdict
    agreement of every lossless image and its JPEG copy)."""
    data = pytest.importorskip("skimage.data", reason="scikit-image ships the real photographs these tests use")
    photo = Image.fromarray(getattr(data, name)())
    model = load_model()
    copies = [_reencode(photo, "PNG")] + [_reencode(photo, "JPEG", q) for q in (95, 85, 75)]
    p = model.predict_proba(copies)
    assert np.all(p <= model.threshold), p  # never fake, whatever the format
    verdicts = {model.verdict(x) for x in p}
    assert len(verdicts) == 1, (verdicts, p)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_default_model_calls_camera_demosaic_real_and_nearest_upsampling_not(name: str) -> None:
    """Demosaicing leaves a period-2 trace like 2x up-sampling's (#14): the default must have learnt it as real.

    Each photo through the camera simulations (RGGB mosaic, noise, bilinear or Malvar-He-Cutler demosaic,
    sharpening, JPEG; or developed to PNG), two seeds each, is called `real`; the same photo halved and
    up-sampled 2x with nearest neighbours (the last stage of many decoders) is not, and scores far above them
    (v9: camera copies 0.07-0.34, nearest 2x 0.84-0.90)."""
    from gendetect.augment import BENIGN

    data = pytest.importorskip("skimage.data", reason="scikit-image ships the real photographs these tests use")
    photo = Image.fromarray(getattr(data, name)())
    model = load_model()
    cameras = [BENIGN.create(c)(photo, seed=s) for c in ("camera-bilinear", "camera-mhc", "camera-raw") for s in (0, 1)]
    w, h = photo.size
    half = photo.resize((w // 2, h // 2), Image.Resampling.BICUBIC)
    nearest = half.resize((w // 2 * 2, h // 2 * 2), Image.Resampling.NEAREST)
    p_cam = model.predict_proba(cameras)
    p_up = float(model.predict_proba([nearest])[0])
    assert {model.verdict(x) for x in p_cam} == {"real"}, p_cam
    assert model.verdict(p_up) != "real" and p_up > p_cam.max() + 0.3, (p_up, p_cam)


@pytest.mark.parametrize("quality", [45, 60, 95])
def test_default_model_never_calls_a_dark_small_text_screenshot_fake(quality: int) -> None:
    """The known gap of the graphic check: a dark-theme screenshot of small text keeps enough JPEG noise on its
    background to be scored below about q75, and 2x up-scaled by bicubic at any quality (v9: `real`, P 0.06-0.09),
    and 2x up-scaled by nearest below q75 (`uncertain` 0.56 at q45, `real` 0.39-0.44 at q30 and q60). Scored or
    not, it is never `fake`."""
    from PIL import ImageDraw

    screen = Image.new("RGB", (900, 600), (30, 30, 36))
    draw = ImageDraw.Draw(screen)
    for i in range(45):
        draw.text((10, 6 + 13 * i), f"def f{i}(x): return x * {i} + compute(x, y={i})  # dark text", fill=(200, 210, 190))
    copies = [screen, *(screen.resize((1800, 1200), r) for r in (Image.Resampling.NEAREST, Image.Resampling.BICUBIC))]
    model = load_model()
    p = model.predict_proba([_reencode(c, "JPEG", quality) for c in copies])
    assert all(np.isnan(x) or model.verdict(x) != "fake" for x in p), p
    assert not np.isnan(p[2])  # the gap is real: the bicubic up-scale is scored, so this asserts a verdict


def test_default_model_scores_any_size(photos: list[Image.Image]) -> None:
    model = load_model()
    rng = np.random.default_rng(0)
    textured = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in [(100, 3000), (8000, 120)]]
    images = [photos[0].crop((100, 100, 164, 164)), *textured]
    p = model.predict_proba(images)
    assert p.shape == (3,) and np.isfinite(p).all() and ((0 <= p) & (p <= 1)).all()
    # no texture, or below 64 px: no score (NaN); a scan calls such images "uncertain" with a reason
    flat = model.predict_proba([Image.new("RGB", (100, 3000), (10, 200, 30)), photos[0].crop((0, 0, 40, 40))])
    assert np.isnan(flat).all()


@pytest.mark.parametrize("bad", ["spectra", "nope"])
def test_unknown_extractor_lists_valid_names(bad: str) -> None:
    with pytest.raises(UnknownNameError) as e:
        create_extractor(bad)
    assert "spectrum" in str(e.value) and "npr" in str(e.value)


# -- noise-level features ----------------------------------------------------------------------------------------
def _smooth_scene(side: int = 256, seed: int = 0) -> np.ndarray:
    """A smooth RGB scene spanning dark to bright (a horizontal ramp with soft colour blobs), float 0-255."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(20, 235, side, dtype=np.float32)[None, :, None] * np.ones((side, side, 3), np.float32)
    blobs = np.asarray(Image.fromarray(rng.integers(0, 40, (4, 4, 3), np.uint8)).resize((side, side), Image.BICUBIC))
    return ramp * 0.85 + blobs


def _noise_features(arr: np.ndarray) -> np.ndarray:
    return create_extractor("noise", crop=256, n_crops=1).extract_one(
        Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8))
    )


@pytest.mark.parametrize("sigma", [2.0, 6.0])
def test_noise_level_estimates_added_gaussian_noise(sigma: float) -> None:
    """The overall sigma (luma, Immerkaer) recovers the noise of a smooth scene, grey noise shared by R, G, B."""
    rng = np.random.default_rng(1)
    scene = _smooth_scene()
    grey = rng.normal(0, sigma, scene.shape[:2])[..., None]
    f = _noise_features(scene + grey)
    bins = create_extractor("noise").bins
    assert np.exp(f[bins]) == pytest.approx(sigma, rel=0.25)
    # the same noise in every channel: residuals correlate fully, no chroma residual
    assert min(f[bins + 4 : bins + 7]) > 0.95


def test_noise_level_sees_signal_dependent_noise_and_independent_channels() -> None:
    """Shot-noise-like noise (variance grows with brightness) rises across the brightness bins; noise of the
    same strength everywhere does not. Independent noise per channel decorrelates the channel residuals."""
    rng = np.random.default_rng(2)
    scene = _smooth_scene()
    shot = scene + rng.normal(0, 1, scene.shape) * np.sqrt(scene / 8.0)
    flat = scene + rng.normal(0, 3.5, scene.shape)
    bins = create_extractor("noise").bins
    f_shot, f_flat = _noise_features(shot), _noise_features(flat)
    slope = lambda f: np.polyfit(np.arange(bins), f[:bins], 1)[0]
    assert slope(f_shot) > 0.1 and abs(slope(f_flat)) < 0.05
    assert max(f_flat[bins + 4 : bins + 7]) < 0.3  # independent channel noise: low correlations
