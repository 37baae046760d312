"""Format agreement (issue 14): PNG and JPEG copies of the same pixels, and what changes between them."""

import numpy as np
from PIL import Image

from gendetect.evaluation.agreement import format_agreement, reencode


class _PngLover:
    """A stand-in detector that learned "lossless means fake": P(fake) 0.9 when the pixels survived exactly."""

    def __init__(self, reference: np.ndarray) -> None:
        self.reference = reference

    def predict_proba(self, images):
        return np.asarray([0.9 if np.array_equal(np.asarray(im), self.reference) else 0.1 for im in images])

    def verdict(self, p: float) -> str:
        return "fake" if p >= 0.5 else "real"


def _noise(seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8))


def test_reencode_png_is_lossless_and_jpeg_is_not():
    image = _noise()
    assert np.array_equal(np.asarray(reencode(image, "PNG")), np.asarray(image))
    assert not np.array_equal(np.asarray(reencode(image, "JPEG", 95)), np.asarray(image))


def test_a_format_shortcut_shows_as_disagreement():
    image = _noise()
    r = format_agreement(_PngLover(np.asarray(image)), [image, image], quality=95)
    assert r["n"] == 2 and r["same_verdict"] == 0.0
    assert r["flips"] == {"fake -> real": 2}
    assert abs(r["mean_abs_dp"] - 0.8) < 1e-9 and abs(r["max_abs_dp"] - 0.8) < 1e-9


def test_an_unscored_copy_counts_as_uncertain_not_as_a_difference():
    class NoSignal(_PngLover):
        def predict_proba(self, images):
            return np.asarray([np.nan, 0.2])

    r = format_agreement(NoSignal(np.zeros(1)), [_noise(1)])
    assert r["same_verdict"] == 0.0 and r["flips"] == {"uncertain -> real": 1}
    assert np.isnan(r["mean_abs_dp"])  # no image had two scores
