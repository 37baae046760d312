"""``gendetect explain``: the per-region score map, the residual spectrum with its up-sampling peaks, the findings."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from gendetect.explain import explain, residual_spectrum

A1111 = "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 256x256"


def _noise(size: int = 256, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8))


def _png(im: Image.Image, text: dict[str, str] | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    buf = io.BytesIO()
    im.save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


class Untiled:
    """A model without ``score_tiles``: one whole-image tile from ``predict_proba``."""

    name, threshold = "stub", 0.5

    def __init__(self, p: float) -> None:
        self.p = p

    def predict_proba(self, images: list) -> np.ndarray:
        return np.full(len(images), self.p)

    def verdict(self, p: float) -> str:
        return "fake" if p > self.threshold else "real"


class Tiled(Untiled):
    """Four tiles: the left half scores fake, the right half real."""

    def score_tiles(self, image: Image.Image) -> SimpleNamespace:
        w, h = image.size
        boxes = np.array(
            [[0, 0, w // 2, h // 2], [w // 2, 0, w, h // 2], [0, h // 2, w // 2, h], [w // 2, h // 2, w, h]]
        )
        return SimpleNamespace(boxes=boxes, p_fake=np.array([0.95, 0.05, 0.9, np.nan]), p_image=0.7)


def test_periodic_traces_show_as_spectrum_peaks() -> None:
    plain = np.asarray(_noise(256), dtype=float)
    x = np.arange(256)
    for period, key in ((2, "1/2"), (4, "1/4"), (8, "1/8")):
        # a decoder's up-sampling trace: a faint pattern repeating every `period` pixels
        trace = 6 * np.cos(2 * np.pi * x / period)[None, :, None] * np.ones((256, 1, 3))
        traced = Image.fromarray(np.clip(plain * 0.8 + trace + 20, 0, 255).astype(np.uint8))
        _, p_plain = residual_spectrum(Image.fromarray(plain.astype(np.uint8)))
        log_mag, p_trace = residual_spectrum(traced)
        assert log_mag.shape == (128, 128) and set(p_trace) == {"1/2", "1/4", "1/8"}
        assert p_plain[key] < 3 and p_trace[key] > 3 * p_plain[key], (key, p_plain, p_trace)


def test_untiled_model_gets_one_tile_and_findings_are_fused(tmp_path: Path) -> None:
    ex = explain(_png(_noise(), {"parameters": A1111}), Untiled(0.2), name="cat.png")
    assert ex.boxes.tolist() == [[0, 0, 256, 256]] and ex.pixel_verdict == "real"
    assert (ex.verdict, ex.verdict_source) == ("fake", "metadata") and ex.findings[0]["kind"] == "generator-parameters"
    paths = ex.write(tmp_path / "out")
    assert sorted(p.name for p in paths) == ["explanation.md", "findings.json", "score_map.png", "spectrum.png"]
    data = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert data["tiles"] == [{"box": [0, 0, 256, 256], "p_fake": 0.2}] and data["verdict_source"] == "metadata"
    md = (tmp_path / "out" / "explanation.md").read_text()
    assert "**Verdict: fake**" in md and "A1111" in md and "![score map](score_map.png)" in md
    plain = explain(_png(_noise()), Untiled(0.2), evidence=False)
    assert plain.verdict_source == "pixels" and plain.findings == []


def test_score_map_tints_each_tile_by_its_score() -> None:
    grey = Image.new("RGB", (256, 256), (128, 128, 128))
    ex = explain(_png(grey), Tiled(0.7), evidence=False)
    assert len(ex.boxes) == 4 and ex.p_fake == 0.7 and ex.verdict == "fake"
    m = np.asarray(ex.score_map, dtype=int)
    assert m.shape[0] > 256  # the legend strip below
    fake_px, real_px, none_px = m[100, 20], m[100, 236], m[236, 236]
    assert fake_px[0] > fake_px[1] + 40 and real_px[1] > real_px[0] + 40  # red vs green tint
    assert abs(int(none_px[0]) - int(none_px[1])) < 10  # no signal: grey
    assert ex.to_dict()["tiles"][3]["p_fake"] is None


def test_cli_explain_writes_the_folder(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gendetect.cli import main

    img = tmp_path / "cat.png"
    img.write_bytes(_png(_noise(), {"parameters": A1111}))
    r = CliRunner().invoke(main, ["explain", str(img), "-o", str(tmp_path / "why")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "why" / "score_map.png").is_file() and (tmp_path / "why" / "spectrum.png").is_file()
    assert json.loads((tmp_path / "why" / "findings.json").read_text())["verdict_source"] == "metadata"


def test_explain_endpoint_returns_pictures_and_findings(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from gendetect.server.app import ServerSettings, create_app

    client = TestClient(create_app(None, ServerSettings(db_url=f"sqlite:///{tmp_path / 'r.sqlite'}")))
    r = client.post("/v1/explain", files=[("file", ("cat.png", _png(_noise(), {"parameters": A1111}), "image/png"))])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verdict_source"] == "metadata" and body["findings"][0]["check"] == "parameters"
    assert body["images"]["score_map"].startswith("data:image/png;base64,") and "spectrum" in body["images"]
    assert client.post("/v1/explain", files=[("file", ("x.png", b"nope", "image/png"))]).status_code == 422
    page = client.get("/").text
    assert "/v1/explain" in page and "renderEvidence" in page
