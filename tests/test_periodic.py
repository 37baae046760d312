"""Periodic up-sampling features, whole-image tiling, the no-signal guard and the numpy-predicted boosted trees."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gendetect.detectors import Detector, create_detector
from gendetect.features import create_extractor
from gendetect.features.periodic import (
    TILE_META,
    periodic_spectrum,
    split_tiles,
    tile_boxes,
    tile_graphic,
    tile_signal,
    unpack_tiles,
)
from gendetect.pipeline import DetectionPipeline, ScanRow, no_signal_reason, scan


def _noise(side: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(128, 20, (side, side)).astype(np.float32)


def _upsampled(side: int, factor: int, seed: int = 0) -> np.ndarray:
    """Nearest up-sampling by ``factor`` followed by a 3x3 smoothing: a decoder-like periodic trace."""
    small = _noise(side // factor, seed)
    up = np.repeat(np.repeat(small, factor, 0), factor, 1)
    k = np.array([0.25, 0.5, 0.25], np.float32)
    up = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 1, up)
    return np.apply_along_axis(lambda c: np.convolve(c, k, "same"), 0, up)


def test_periodic_spectrum_is_the_same_wherever_the_crop_starts():
    x = _upsampled(320, 8)
    a = periodic_spectrum(x[16:272, 16:272])
    b = periodic_spectrum(x[19:275, 21:277])  # another phase of the 8x8 grid
    # relative magnitudes agree (the log floor of 1e-4 makes near-zero components noisy in log space)
    np.testing.assert_allclose(np.exp(a), np.exp(b), atol=0.05)
    strong = np.exp(a) > 0.05
    assert strong.sum() >= 3 and np.allclose(a[strong], b[strong], atol=0.2)
    assert a.shape == (165,)


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_periodic_spectrum_sees_upsampling_that_noise_lacks(factor):
    clean = periodic_spectrum(_noise(256, 1))
    up = periodic_spectrum(_upsampled(256, factor, 1))
    # the strongest relative periodic component stands far above what plain noise shows
    assert up.max() > clean.max() + 2.0


def test_tile_boxes_cover_the_whole_image_and_respect_the_cap():
    boxes = tile_boxes(1000, 1500, 256, max_tiles=64)
    covered = np.zeros((1000, 1500), bool)
    for top, left, side in boxes:
        assert side == 256 and 0 <= top <= 1000 - side and 0 <= left <= 1500 - side
        covered[top : top + side, left : left + side] = True
    assert covered.all()
    big = tile_boxes(3000, 4000, 256, max_tiles=64)  # a 12 MP photo: thinned, but spread over its extent
    assert len(big) <= 64
    tops = sorted({t for t, _, _ in big})
    lefts = sorted({x for _, x, _ in big})
    assert tops[0] == 0 and tops[-1] == 3000 - 256 and lefts[0] == 0 and lefts[-1] == 4000 - 256
    assert tile_boxes(50, 50, 256, 64) == []  # too small
    small = tile_boxes(100, 180, 256, 64)
    assert len(small) == 4 and {b[2] for b in small} == {96}  # the largest multiple of 8 that fits, overlapping


def test_tile_signal_separates_texture_from_flat_and_text():
    photo = _noise(128)
    assert tile_signal(photo)[0] > 5
    flat = np.full((128, 128), 200, np.float32)
    assert tile_signal(flat) == (0.0, 1.0)
    page = Image.new("L", (256, 128), 255)
    ImageDraw.Draw(page).text((10, 10), "Generated text only\nno photo here", fill=0)
    texture, flat_share = tile_signal(np.asarray(page, np.float32))
    assert texture < 1.0 and flat_share > 0.6


def _image(side: int, seed: int) -> Image.Image:
    return Image.fromarray(np.clip(_noise(side, seed), 0, 255).astype(np.uint8)).convert("RGB")


def _tiled_pipeline(threshold: float = 0.5) -> DetectionPipeline:
    ext = create_extractor("tiles", tile=64, max_tiles=16)
    images = [_image(100 + 10 * i, i) for i in range(8)]
    X = np.stack([ext.extract_one(im) for im in images])
    y = np.arange(8) % 2
    det = create_detector(
        "tiled", base={"name": "hgb", "params": {"max_iter": 10, "min_samples_leaf": 2}}, tile_width=ext.tile_width
    ).fit(X, y)
    return DetectionPipeline(ext, det, threshold, uncertain_from=0.4)


def test_tiled_extractor_rows_and_pipeline_aggregation():
    pipe = _tiled_pipeline()
    image = _image(200, 0)
    rows = pipe.extractor.extract_tiles(image)
    assert rows.shape == (len(tile_boxes(200, 200, 64, 16)), len(TILE_META) + pipe.extractor._base.dim)
    packed = pipe.extractor.extract_one(image)
    assert packed.shape == (pipe.extractor.dim,)
    np.testing.assert_array_equal(unpack_tiles(packed, pipe.extractor.tile_width), rows)
    boxes, signal, feats = split_tiles(rows)
    assert signal.all() and boxes.shape == (len(rows), 4)
    scores = pipe.score_tiles(image)
    z = pipe.detector.base_.decision_function(feats.astype(np.float64))
    expected = 1 / (1 + np.exp(-z.mean()))  # the documented rule: mean of the tiles' log-odds
    assert scores.p_image == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(scores.p_fake, 1 / (1 + np.exp(-z)))
    assert pipe.predict_proba([image])[0] == pytest.approx(expected)
    # the generic feature path (packed vectors, as the feature store, training and evaluation use) agrees
    assert pipe.predict_proba_features(packed[None, :])[0] == pytest.approx(expected)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("RGB", (300, 300), (255, 255, 255)),  # blank
        lambda: Image.new("RGB", (300, 200), (40, 90, 160)),  # flat colour
        lambda: Image.new("RGB", (40, 40), (10, 20, 30)),  # tiny
    ],
)
def test_no_signal_images_are_uncertain_with_a_reason_never_fake(tmp_path, make):
    pipe = _tiled_pipeline(threshold=0.0)  # a threshold that would call anything with a score fake
    path = tmp_path / "x.png"
    make().save(path)
    (row,) = scan([str(path)], pipe)
    assert isinstance(row, ScanRow) and row.status == "ok"
    assert row.verdict == "uncertain" and row.p_fake is None
    assert row.reason and row.reason.startswith("no signal")


def test_text_only_image_is_uncertain(tmp_path):
    page = Image.new("RGB", (400, 300), "white")
    d = ImageDraw.Draw(page)
    for i in range(12):
        d.text((10, 10 + 22 * i), "Lorem ipsum dolor sit amet, consectetur adipiscing elit", fill="black")
    page.save(tmp_path / "page.png")
    (row,) = scan([str(tmp_path / "page.png")], _tiled_pipeline(threshold=0.0))
    assert row.verdict == "uncertain" and "no signal" in row.reason



def _page(width: int = 600, height: int = 400, paper=(255, 255, 255), ink=(0, 0, 0)) -> Image.Image:
    page = Image.new("RGB", (width, height), paper)
    d = ImageDraw.Draw(page)
    for i in range(height // 20):
        d.text((8, 4 + 20 * i), "Invoice 1024: total amount due within thirty days of receipt", fill=ink)
    return page


def _jpeg_file(image: Image.Image, path, quality: int):
    image.save(path, "JPEG", quality=quality)
    return str(path)


def test_tile_graphic_sees_text_through_jpeg_and_not_skies_or_texture(tmp_path):
    page = _page()
    jpeg = Image.open(_jpeg_file(page, tmp_path / "p.jpg", 50)).convert("L")
    luma = np.asarray(jpeg, np.float32)[:256, :256]
    assert tile_signal(luma)[1] <= 0.6  # ringing: the flat-pixel test alone takes the JPEG page for texture
    background, marks = tile_graphic(luma)
    assert background >= 0.55 and marks >= 0.03
    sky = np.clip(np.linspace(150, 170, 256)[:, None] + np.random.default_rng(0).normal(0, 2, (256, 256)), 0, 255)
    assert tile_graphic(sky)[1] < 0.03  # near one level, but no marks on it
    assert tile_graphic(_noise(256))[0] < 0.55  # texture has no dominant level


@pytest.mark.parametrize(
    ("kind", "quality"),
    [("page", 40), ("page", 60), ("page", 75), ("page", 95), ("page x2 nearest", 60), ("page x2 nearest", 95),
     ("dark screen", 75), ("dark screen", 95)],  # below q75 a dark screen's JPEG noise can hide its background
)
def test_text_saved_as_jpeg_is_uncertain_never_fake(tmp_path, kind, quality):
    make = {
        "page": _page,
        "page x2 nearest": lambda: _page().resize((1200, 800), Image.NEAREST),  # a period-2 trace, still not fake
        "dark screen": lambda: _page(paper=(30, 30, 36), ink=(200, 200, 180)),
    }[kind]
    (row,) = scan([_jpeg_file(make(), tmp_path / "page.jpg", quality)], _tiled_pipeline(threshold=0.0))
    assert row.status == "ok" and row.verdict == "uncertain" and row.p_fake is None
    assert row.reason.startswith("no signal")


def test_graphic_check_can_be_turned_off_and_keeps_photo_tiles():
    ext = create_extractor("tiles", tile=64, max_tiles=16)
    off = create_extractor("tiles", tile=64, max_tiles=16, graphic_check=False)
    assert ext.get_config()["params"]["graphic_check"] is True  # recorded, so caches keyed by it differ
    assert ext.config_id != off.config_id
    photo = _image(200, 0)
    np.testing.assert_array_equal(ext.extract_tiles(photo), off.extract_tiles(photo))
    buf = io.BytesIO()
    _page().save(buf, "JPEG", quality=75)
    page = Image.open(buf).convert("RGB")
    assert not split_tiles(ext.extract_tiles(page))[1].any()
    assert split_tiles(off.extract_tiles(page))[1].any()  # without the check, the JPEG page had "signal"

def test_evaluation_leaves_no_signal_images_out_and_counts_them(tmp_path):
    """Evaluation agrees with scan: an image without forensic signal is not scored (at 0.5 or anything else);
    it is counted and listed as uncertain with its reason, and the caller's record stays usable."""
    from gendetect.data.records import ImageRecord
    from gendetect.evaluation.report import evaluate_pipeline

    pipe = _tiled_pipeline()
    recs = []
    for i in range(4):
        _image(160, 10 + i).save(tmp_path / f"t{i}.png")
        recs.append(ImageRecord(str(tmp_path / f"t{i}.png"), "fake" if i % 2 else "real", "g" if i % 2 else "real"))
    Image.new("RGB", (300, 300), "white").save(tmp_path / "blank.png")
    blank = ImageRecord(str(tmp_path / "blank.png"), "real", "real")
    report = evaluate_pipeline(pipe, [*recs, blank])
    assert report["data"]["n_images"] == 4 and report["data"]["n_no_signal"] == 1
    assert report["data"]["n_unreadable"] == 0
    assert report["metrics"]["all"]["n_real"] == 2 and report["metrics"]["all"]["n_fake"] == 2
    (row,) = [r for r in report["items"] if r["path"].endswith("blank.png")]
    assert row["verdict"] == "uncertain" and row["reason"].startswith("no signal") and "p_fake" not in row
    assert blank.status == "ok"


def test_no_signal_reason_rules():
    assert no_signal_reason(0, 0).startswith("no signal: the image is too small")
    assert "flat" in no_signal_reason(4, 0)
    assert no_signal_reason(4, 1) is None


def test_hgb_predicts_with_numpy_exactly_like_sklearn(tmp_path):
    """The numpy trees equal scikit-learn's, fitted on the values snapped to our unweighted quantile bins, on the
    training rows and on new rows (which go the way their bin went)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from gendetect.detectors.boosting import quantile_snap

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    y = (X[:, 0] + X[:, 1] ** 2 + 0.3 * rng.normal(size=400) > 1).astype(int)
    params = {"max_iter": 30, "learning_rate": 0.1, "max_leaf_nodes": 7, "min_samples_leaf": 10, "max_features": 1.0}
    det = create_detector("hgb", **params).fit(X, y)
    ref = HistGradientBoostingClassifier(
        **params, l2_regularization=1.0, class_weight="balanced", early_stopping=False, random_state=0
    )
    Xs, edges = quantile_snap(X)
    assert all(len(e) <= 255 for e in edges) and len(np.unique(Xs[:, 0])) <= 255 < len(np.unique(X[:, 0]))
    with threadpool_limits(1):
        ref.fit(Xs, y)
    np.testing.assert_allclose(det.decision_function(X), ref.decision_function(Xs), atol=1e-10)
    Xt = np.clip(rng.normal(size=(50, 6)), X.min(axis=0), X.max(axis=0))  # new values inside the training range
    Xt_snapped = np.stack([e[np.searchsorted(e, Xt[:, j])] for j, e in enumerate(edges)], axis=1)
    np.testing.assert_allclose(det.decision_function(Xt), ref.decision_function(Xt_snapped), atol=1e-10)
    det.save(tmp_path / "d")
    again = Detector.load(tmp_path / "d")
    np.testing.assert_array_equal(again.decision_function(Xt), det.decision_function(Xt))


def test_quantile_snap_keeps_order_nan_and_few_values():
    from gendetect.detectors.boosting import quantile_snap

    col = np.r_[np.linspace(0, 1, 1000), np.nan]
    few = np.r_[np.repeat([3.0, 1.0, 2.0], 300), [2.0] * 101]
    Xs, (e1, e2) = quantile_snap(np.c_[col, few])
    assert np.isnan(Xs[-1, 0]) and len(e1) <= 255
    assert np.all(np.diff(Xs[:-1, 0]) >= 0)  # monotone: snapping never reorders values
    assert np.all(Xs[:-1, 0] >= col[:-1])  # each value goes to the upper edge of its bin
    np.testing.assert_array_equal(e2, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(Xs[:, 1], few)  # few distinct values: unchanged


def test_hgb_sample_weight_changes_the_fit():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] > 0).astype(int)
    w = np.where(X[:, 1] > 0, 5.0, 0.2)
    a = create_detector("hgb", max_iter=10).fit(X, y).decision_function(X)
    b = create_detector("hgb", max_iter=10).fit(X, y, sample_weight=w).decision_function(X)
    assert not np.allclose(a, b)


def test_hgb_seed_bagging_is_the_mean_of_the_seeds_log_odds(tmp_path):
    """``n_seeds=k`` predicts the mean log-odds of k single fits with seeds random_state, random_state + 1, ...,
    stored as one model (saved and loaded like any other); one seed is the single fit itself."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 8))
    y = (X[:, 0] + X[:, 3] - X[:, 5] + 0.5 * rng.normal(size=300) > 0).astype(int)
    params = {"max_iter": 15, "max_features": 0.5, "random_state": 4}
    singles = [create_detector("hgb", **{**params, "random_state": 4 + k}).fit(X, y).decision_function(X)
               for k in range(3)]
    assert not np.allclose(singles[0], singles[1])  # the seeds draw different features
    bagged = create_detector("hgb", **params, n_seeds=3).fit(X, y)
    np.testing.assert_allclose(bagged.decision_function(X), np.mean(singles, axis=0), atol=1e-10)
    assert len(bagged.tree_roots_) == 3 * 15
    one = create_detector("hgb", **params, n_seeds=1).fit(X, y)
    np.testing.assert_array_equal(one.decision_function(X), singles[0])
    bagged.save(tmp_path / "b")
    np.testing.assert_array_equal(Detector.load(tmp_path / "b").decision_function(X), bagged.decision_function(X))
    with pytest.raises(ValueError, match="n_seeds"):
        create_detector("hgb", n_seeds=0).fit(X, y)


def test_tile_aggregates_follow_their_documented_rules():
    from gendetect.detectors.tiled import aggregate_logits

    z = np.array([5.0, -1.0, 0.0, 1.0, 2.0, 40.0, 3.0, -7.0])
    image = np.array([0, 0, 0, 0, 0, 0, 0, 0])
    assert aggregate_logits(z, image, 1, "mean")[0] == pytest.approx(z.mean())
    assert aggregate_logits(z, image, 1, "median")[0] == pytest.approx(np.median(z))
    # trimmed: the middle half of 8 tiles (2 dropped at each end) -> mean of [0, 1, 2, 3]
    assert aggregate_logits(z, image, 1, "trimmed")[0] == pytest.approx(1.5)
    # fewer than 4 tiles: the trimmed mean is the mean; an image without tiles gets NaN
    two = aggregate_logits(np.array([1.0, 4.0]), np.array([1, 1]), 3, "trimmed")
    assert np.isnan(two[0]) and two[1] == pytest.approx(2.5) and np.isnan(two[2])
    # one outlying tile moves the mean, not the robust rules
    out = np.r_[np.zeros(9), 50.0]
    ones = np.zeros(10, int)
    assert aggregate_logits(out, ones, 1, "mean")[0] == pytest.approx(5.0)
    assert aggregate_logits(out, ones, 1, "median")[0] == 0 == aggregate_logits(out, ones, 1, "trimmed")[0]
    with pytest.raises(ValueError, match="valid: mean, median, trimmed"):
        aggregate_logits(z, image, 1, "max")


@pytest.mark.parametrize("rule", ["median", "trimmed"])
def test_tiled_detector_aggregate_is_used_by_every_path_and_saved(tmp_path, rule):
    from gendetect.detectors.tiled import aggregate_logits

    pipe = _tiled_pipeline()
    det = create_detector("tiled", base=pipe.detector.base, tile_width=pipe.extractor.tile_width, aggregate=rule)
    det.base_, det.classes_, det.n_features_in_ = pipe.detector.base_, pipe.detector.classes_, pipe.extractor.dim
    robust = DetectionPipeline(pipe.extractor, det, 0.5)
    image = _image(300, 3)
    rows = robust.extractor.extract_tiles(image)
    z = det.tile_decision(rows)
    expected = aggregate_logits(z, np.zeros(len(z), int), 1, rule)[0]
    assert not np.isclose(expected, z.mean())  # the rule matters for this image
    assert robust.score_tiles(image).p_image == pytest.approx(1 / (1 + np.exp(-expected)))
    packed = robust.extractor.extract_one(image)[None, :]
    assert robust.predict_proba_features(packed)[0] == pytest.approx(1 / (1 + np.exp(-expected)))
    robust.save(tmp_path / "m")
    again = DetectionPipeline.load(tmp_path / "m")
    assert again.detector.aggregate == rule
    assert again.predict_proba_features(packed)[0] == pytest.approx(robust.predict_proba_features(packed)[0])


def test_tiled_pipeline_saves_and_loads(tmp_path):
    pipe = _tiled_pipeline()
    pipe.save(tmp_path / "m")
    again = DetectionPipeline.load(tmp_path / "m")
    assert again.tiled and again.version == pipe.version
    image = _image(150, 3)
    assert again.score_tiles(image).p_image == pytest.approx(pipe.score_tiles(image).p_image)


def test_tiled_model_trains_through_the_generic_path_and_scans(tmp_path):
    """`gendetect train --extractor tiles --detector tiled` works like any recipe: folds, threshold, save, scan."""
    from gendetect.data.readers import read_records
    from gendetect.data.synthetic import make_synthetic_dataset
    from gendetect.training import train_pipeline

    root = make_synthetic_dataset(tmp_path / "d", n_per_class=12, size=160, generators=("a", "b"))
    ext = create_extractor("tiles", tile=64, max_tiles=9)
    det = create_detector("tiled", base={"name": "logistic", "params": {"C": 0.1}}, tile_width=ext.tile_width)
    pipe = train_pipeline(read_records(root), ext, det, audit=False)
    assert pipe.info["validation"]["all"]["auc"] > 0.9  # the 2x up-sampling trace is what `periodic` sees
    pipe.save(tmp_path / "m")
    fake = next((root / "a" / "1_fake").iterdir())
    (row,) = scan([str(fake)], DetectionPipeline.load(tmp_path / "m"))
    assert row.status == "ok" and row.extra["signal_tiles"] == row.extra["tiles"] == 9
    assert 0.0 <= row.p_fake <= 1.0


def test_server_applies_the_no_signal_guard(tmp_path):
    pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
    import io

    from fastapi.testclient import TestClient

    from gendetect.server.app import ServerSettings, create_app

    client = TestClient(create_app(_tiled_pipeline(threshold=0.0), ServerSettings(db_url=f"sqlite:///{tmp_path}/r.db")))
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), "white").save(buf, "PNG")
    r = client.post("/v1/detect", files={"file": ("blank.png", buf.getvalue(), "image/png")})
    assert r.status_code == 200, r.text
    (item,) = r.json()["results"]
    assert item["verdict"] == "uncertain" and item["p_fake"] is None and item["reason"].startswith("no signal")
