"""The library's one-image and string-input behaviour (issue 18's API traps)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import gendetect
from gendetect import detect, expand_inputs, load_model, scan


@pytest.fixture()
def photo(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (160, 200, 3), dtype=np.uint8)).save(path)
    return path


def test_a_string_is_one_input_not_its_characters(photo):
    rows = list(scan(str(photo), evidence=False))
    assert len(rows) == 1 and rows[0].path == str(photo) and rows[0].status == "ok"
    assert len(list(scan(photo, evidence=False))) == 1  # a Path too


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_one_image_s_bytes_are_one_input_not_its_byte_values(photo, wrap):
    data = wrap(photo.read_bytes())
    rows = list(scan(data, evidence=False))
    assert len(rows) == 1 and rows[0].status == "ok" and rows[0].path == "<bytes #0>"
    assert rows[0].p_fake == pytest.approx(detect(photo, evidence=False).p_fake)


def test_explain_takes_every_source_kind_scan_takes(photo):
    from gendetect.explain import explain

    by_view = explain(memoryview(photo.read_bytes()), evidence=True)
    assert by_view.path == "<bytes>" and by_view.p_fake == pytest.approx(explain(photo, evidence=True).p_fake)


def test_expand_inputs_expands_the_home_folder(tmp_path, monkeypatch, photo):
    monkeypatch.setenv("HOME", str(photo.parent))
    files, problems = expand_inputs(["~/photo.png"])
    assert files == [str(photo)] and problems == []
    files, _ = expand_inputs("~")  # one folder given as a string
    assert str(photo) in files


def test_detect_one_path_bytes_or_image(photo):
    by_path = detect(photo, evidence=False)
    by_bytes = detect(photo.read_bytes(), evidence=False)
    by_image = detect(Image.open(photo))
    assert by_path.p_fake == pytest.approx(by_bytes.p_fake) == pytest.approx(by_image.p_fake)
    assert by_image.path == "<image>"


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "P", "RGBA", "LA", "L", "F"])
def test_every_pil_mode_is_converted_like_scan_converts_it(photo, mode):
    model = load_model()
    im = Image.open(photo).convert("RGB")
    if mode == "I;16":
        converted = Image.fromarray((np.asarray(im.convert("L"), np.uint16) * 257)).convert("I;16")
    elif mode == "F":
        converted = Image.fromarray(np.asarray(im.convert("L"), np.float32))
    else:
        converted = im.convert(mode)
    p = model.predict_proba([converted])
    assert p.shape == (1,) and (np.isnan(p[0]) or 0.0 <= p[0] <= 1.0)
    assert detect(converted).status == "ok"


def test_the_curated_api_exports_the_entry_points():
    for name in ("detect", "train_pipeline", "run_protocol", "generate_dataset", "scan", "load_model"):
        assert name in gendetect.__all__ and callable(getattr(gendetect, name))


def test_evidence_collected_in_workers_equals_the_single_process_scan(tmp_path):
    from PIL import PngImagePlugin

    rng = np.random.default_rng(1)
    paths = []
    for i in range(4):
        info = PngImagePlugin.PngInfo()
        if i % 2:
            info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Model: sd15")
        p = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(p, pnginfo=info)
        paths.append(str(p))
    one = [r.to_dict() for r in scan(paths, jobs=1)]
    two = [r.to_dict() for r in scan(paths, jobs=2)]
    assert one == two
    assert [r["verdict_source"] for r in one] == ["pixels", "metadata", "pixels", "metadata"]
