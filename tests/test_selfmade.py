"""Self-made fakes (gendetect.augment.selfmade): cascades, the decoder zoo, matched post-processing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from gendetect.augment import SELFMADE, DecoderZoo, list_selfmade, make_selfmade_set, matched_pair, train_decoder_zoo
from gendetect.augment.selfmade import MATCHED_POSTS, SelfmadeSample
from gendetect.data.synthetic import synthetic_image
from gendetect.errors import GendetectError, ModelFormatError, UnknownNameError

CASCADES = [f"cascade-x{f}-{up}" for f in (2, 4, 8) for up in ("nearest", "tconv", "nearest-conv")]


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return synthetic_image("real", 192, seed=1)


def _bytes(image: Image.Image) -> bytes:
    return np.asarray(image).tobytes() + repr(image.size).encode()


def phase_contrast(image: Image.Image, period: int) -> float:
    """How much residual energy depends on the position modulo ``period`` (0 for a stationary image).

    The coefficient of variation of the per-phase means of |horizontal difference| (by x mod period), |vertical
    difference| (by y mod period) and |Laplacian| (by both), the largest of the three.
    """
    y = np.asarray(image.convert("L"), np.float64)
    dx, dy = np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0))
    lap = np.abs(4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:])
    p = period
    nx, ny = dx.shape[1] // p * p, dy.shape[0] // p * p
    h, w = lap.shape[0] // p * p, lap.shape[1] // p * p
    maps = [
        dx[:, :nx].reshape(dx.shape[0], -1, p).mean(axis=(0, 1)),
        dy[:ny].reshape(-1, p, dy.shape[1]).mean(axis=(0, 2)),
        lap[:h, :w].reshape(h // p, p, w // p, p).mean(axis=(0, 2)),
    ]
    return max(float(m.std() / m.mean()) for m in maps)


def test_registry_lists_the_cascades() -> None:
    assert list_selfmade("cascade-*") == sorted(CASCADES)


@pytest.mark.parametrize("name", CASCADES)
def test_cascade_keeps_size_and_is_deterministic(name: str, photo: Image.Image) -> None:
    odd = photo.crop((0, 0, 101, 77))
    method = SELFMADE.create(name)
    a, b = method(odd, seed=3), method(odd, seed=3)
    assert a.size == odd.size and a.mode == "RGB"
    assert _bytes(a) == _bytes(b)
    others = {_bytes(method(odd, seed=s)) for s in range(4, 10)}
    assert len(others | {_bytes(a)}) > 1
    assert _bytes(a) != _bytes(odd)


@pytest.mark.parametrize("name", CASCADES)
def test_cascade_leaves_a_periodic_trace_at_its_factor(name: str, photo: Image.Image) -> None:
    factor = int(name.split("-x")[1].split("-")[0])
    fake = SELFMADE.create(name)(photo, seed=0)
    assert phase_contrast(photo, factor) < 0.05  # the real image has none
    assert phase_contrast(fake, factor) > max(0.15, 3 * phase_contrast(photo, factor))


def test_cascade_down_can_be_fixed(photo: Image.Image) -> None:
    area = SELFMADE.create("cascade-x2-nearest", down="area")
    assert {_bytes(area(photo, seed=s)) for s in range(4)} == {_bytes(area(photo, seed=0))}
    with pytest.raises(GendetectError, match="area or bicubic"):
        SELFMADE.create("cascade-x2-nearest", down="lanczos")(photo)


@pytest.fixture(scope="module")
def smooth() -> list[Image.Image]:
    """Smooth photos (blurred synthetic scenes): a tiny decoder learns them in a few dozen steps."""
    return [synthetic_image("real", 64, seed=s).filter(ImageFilter.GaussianBlur(1.5)) for s in range(3)]


@pytest.fixture(scope="module")
def zoo(smooth: list[Image.Image]) -> DecoderZoo:
    pytest.importorskip("torch")
    return train_decoder_zoo(smooth, n_models=2, seed=0, steps=40, patch=32, batch_size=4, widths=(8,))


def _psnr(a: Image.Image, b: Image.Image) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-9)))


def test_zoo_reconstructs_like_the_input(zoo: DecoderZoo, smooth: list[Image.Image]) -> None:
    test = synthetic_image("real", 64, seed=9).filter(ImageFilter.GaussianBlur(1.5)).crop((0, 0, 61, 50))
    assert len(zoo) == 2 and len(set(zoo.names)) == 2
    assert len({(c.kind, c.stages, c.up, c.activation) for c in zoo.configs}) > 1  # random architectures
    grey = Image.new("RGB", test.size, (128, 128, 128))
    l1 = zoo.info["l1_first_last"]  # held-out patch error before and after training
    assert all(last <= 1.05 * first for first, last in l1) and any(last < 0.9 * first for first, last in l1)
    for k in range(len(zoo)):
        rec = zoo.reconstruct(test, k)
        assert rec.size == test.size and rec.mode == "RGB"
        assert _psnr(rec, test) > 22, (zoo.configs[k], _psnr(rec, test))
        assert _psnr(rec, test) > _psnr(grey, test) + 5
        assert _bytes(rec) != _bytes(test)


def test_zoo_is_deterministic_per_seed(zoo: DecoderZoo, smooth: list[Image.Image]) -> None:
    again = train_decoder_zoo(smooth, n_models=1, seed=0, steps=40, patch=32, batch_size=4, widths=(8,))
    other = train_decoder_zoo(smooth, n_models=1, seed=1, steps=40, patch=32, batch_size=4, widths=(8,))
    assert again.configs[0] == zoo.configs[0]
    assert _bytes(again.reconstruct(smooth[0], 0)) == _bytes(zoo.reconstruct(smooth[0], 0))
    assert _bytes(other.reconstruct(smooth[0], 0)) != _bytes(zoo.reconstruct(smooth[0], 0))


def test_zoo_save_load_round_trips_exactly(zoo: DecoderZoo, smooth: list[Image.Image], tmp_path) -> None:
    zoo.save(tmp_path / "zoo")
    assert sorted(p.name for p in (tmp_path / "zoo").iterdir()) == ["config.json", "model.safetensors"]
    loaded = DecoderZoo.load(tmp_path / "zoo")
    assert loaded.configs == zoo.configs and loaded.names == zoo.names
    for k in range(len(zoo)):
        assert _bytes(loaded.reconstruct(smooth[1], k)) == _bytes(zoo.reconstruct(smooth[1], k))
    (tmp_path / "zoo" / "model.safetensors").rename(tmp_path / "zoo" / "weights.safetensors")  # the former name
    legacy = DecoderZoo.load(tmp_path / "zoo")
    assert _bytes(legacy.reconstruct(smooth[1], 0)) == _bytes(zoo.reconstruct(smooth[1], 0))
    with pytest.raises(ModelFormatError, match="not a decoder zoo"):
        DecoderZoo.load(tmp_path / "missing")


@pytest.mark.parametrize("seed", range(10))
def test_matched_pair_shares_size_and_compression(photo: Image.Image, seed: int) -> None:
    fake = SELFMADE.create("cascade-x2-tconv")(photo, seed=seed)
    r, f, spec = matched_pair(photo, fake, seed=seed)
    r2, f2, spec2 = matched_pair(photo, fake, seed=seed)
    assert spec == spec2 and _bytes(r) == _bytes(r2) and _bytes(f) == _bytes(f2)
    assert r.size == f.size and r.format == f.format and r.format in ("PNG", "JPEG", "WEBP")
    if r.format == "JPEG":
        assert r.quantization == f.quantization
    assert "~" not in spec and "|" not in spec


def test_matched_pair_covers_its_posts(photo: Image.Image) -> None:
    fake = SELFMADE.create("cascade-x2-nearest")(photo, seed=0)
    formats = {matched_pair(photo, fake, seed=s)[0].format for s in range(40)}
    assert formats == {"PNG", "JPEG", "WEBP"}
    with pytest.raises(GendetectError, match="one size"):
        matched_pair(photo, fake.crop((0, 0, 10, 10)), seed=0)
    assert len(MATCHED_POSTS) >= 5


def test_make_selfmade_set(photo: Image.Image, zoo: DecoderZoo) -> None:
    reals = [photo.crop((i * 8, 0, i * 8 + 96, 96)) for i in range(8)]
    samples = make_selfmade_set(reals, seed=2, zoo=zoo)
    again = make_selfmade_set(reals, seed=2, zoo=zoo)
    assert len(samples) == 16 and all(isinstance(s, SelfmadeSample) for s in samples)
    assert [s.label for s in samples] == ["real", "fake"] * 8
    assert [s.pair for s in samples] == [i // 2 for i in range(16)]
    for real, fake in zip(samples[::2], samples[1::2]):
        assert real.image.size == fake.image.size and real.post == fake.post
        assert real.generator == "real" and fake.generator.startswith("selfmade:")
    assert len({s.generator for s in samples[1::2]}) == 8  # methods used in turn
    assert all(_bytes(a.image) == _bytes(b.image) for a, b in zip(samples, again))
    other = make_selfmade_set(reals, seed=3, zoo=zoo)
    assert any(_bytes(a.image) != _bytes(b.image) for a, b in zip(samples, other))
    only = make_selfmade_set(reals[:2], seed=0, methods=[zoo.names[0]], zoo=zoo, match=False)
    assert [s.generator for s in only] == ["real", f"selfmade:{zoo.names[0]}"] * 2 and only[0].post == ""
    assert _bytes(only[0].image) == _bytes(reals[0])
    with pytest.raises(UnknownNameError, match="cascade-x2-tconv"):
        make_selfmade_set(reals, seed=0, methods=["cascade-x3-tconv"])
