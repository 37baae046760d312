"""Protocols on tiny synthetic sets whose answers are known, calibration, the shortcut audit and the reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gendetect.calibration import IsotonicCalibrator, TemperatureCalibrator
from gendetect.cli import main
from gendetect.data.readers import read_records
from gendetect.data.synthetic import make_synthetic_dataset
from gendetect.detectors import DETECTORS
from gendetect.errors import DataSchemaError, GendetectError, UnknownNameError
from gendetect.evaluation.audit import shortcut_audit
from gendetect.evaluation.protocols import ProtocolConfig, run_protocol
from gendetect.evaluation.render import write_report
from gendetect.features import EXTRACTORS
from gendetect.pipeline import load_model
from gendetect.training import train_pipeline

RECIPE = {
    "extractor": {"name": "npr", "params": {"crop": 64, "n_crops": 1}},
    "detector": {"name": "logistic", "params": {"C": 1.0}},
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three generators with the up-sampling trace and one ('null') whose fakes are drawn like the reals."""
    root = tmp_path_factory.mktemp("protocols")
    return make_synthetic_dataset(
        root, n_per_class=10, size=64, generators=("up-a", "up-b", "up-c"), null_generators=("null",)
    )


@pytest.fixture(scope="module")
def model_dir(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    records = [r for r in read_records(tree) if r.source != f"{tree.name}/null"]
    pipeline = train_pipeline(
        records, EXTRACTORS.from_config(RECIPE["extractor"]), DETECTORS.from_config(RECIPE["detector"]), n_folds=3
    )
    return pipeline.save(tmp_path_factory.mktemp("model") / "m")


def _cfg(protocol: str, tree: Path, **kw) -> ProtocolConfig:  # noqa: ANN003
    return ProtocolConfig(protocol=protocol, data=str(tree), n_folds=3, n_boot=100, **{**RECIPE, **kw})


def test_cross_generator_matrix_has_the_known_structure(tree: Path) -> None:
    report = run_protocol(_cfg("cross-generator", tree))
    m = report["matrix"]
    auc = np.array(m["auc"], dtype=float)
    names = m["train"]
    up = [names.index(g) for g in ("up-a", "up-b", "up-c")]
    null = names.index("null")
    assert (auc[np.ix_(up, up)] > 0.9).all()  # the same trace transfers between up-sampling generators
    assert (np.abs(auc[up, null] - 0.5) < 0.3).all()  # nothing to find in the null generator's fakes
    assert report["config"]["protocol"] == "cross-generator" and report["recipe"]["detector"]["name"] == "logistic"


def test_logo_and_generator_count(tree: Path) -> None:
    logo = run_protocol(_cfg("logo", tree))
    assert all(logo["metrics"][g]["auc"] > 0.9 for g in ("up-a", "up-b", "up-c"))
    assert abs(logo["metrics"]["null"]["auc"] - 0.5) < 0.3
    curve = run_protocol(_cfg("generator-count", tree, counts=[1, 2], repeats=2))["curve"]
    assert set(curve) == {1, 2} and all(0 <= c["mean_auc"] <= 1 for c in curve.values())


def test_per_generator_and_robustness_with_a_model(tree: Path, model_dir: Path) -> None:
    per = run_protocol(_cfg("per-generator", tree, model=str(model_dir), extractor=None, detector=None))
    assert per["metrics"]["up-a"]["auc"] > 0.9 and abs(per["metrics"]["null"]["auc"] - 0.5) < 0.3
    lo, hi = per["metrics"]["all"]["auc_ci"]
    assert lo <= per["metrics"]["all"]["auc"] <= hi
    assert {"false_positives", "false_negatives"} <= set(per["worst"])

    rob = run_protocol(_cfg("robustness", tree, model=str(model_dir), chains=["none", "jpeg:95", "resize:0.5"]))
    records = [r for r in read_records(tree) if r.source != f"{tree.name}/null"]
    assert set(rob["metrics"]) == {"none", "jpeg:95", "resize:0.5"}
    up_auc = {
        c: np.mean(
            [
                rob["figures"]["robustness"]["values"][i][j]
                for j, g in enumerate(rob["figures"]["robustness"]["cols"])
                if g != "null"
            ]
        )
        for i, c in enumerate(rob["figures"]["robustness"]["rows"])
    }
    assert up_auc["none"] > 0.9
    assert up_auc["resize:0.5"] < up_auc["none"] - 0.2  # halving the image erases the 2x up-sampling trace
    assert records  # the tree was read


def test_robustness_takes_the_benign_chains_that_calibrate_the_default(tree: Path, model_dir: Path) -> None:
    from gendetect.augment import BENIGN
    from gendetect.evaluation.perturbations import expand_chains, parse_chain

    chain = parse_chain("camera-mhc+jpeg:75")
    assert chain.spec == "camera-mhc+jpeg:75" and parse_chain(chain.spec).spec == chain.spec
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    other = Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    step = parse_chain("benign:jpeg").steps[0]
    first, again = np.asarray(parse_chain("benign:jpeg")(photo)), np.asarray(step(photo))
    assert np.array_equal(first, again)  # seeded from the pixels: a rerun sees the same copies
    assert np.array_equal(first, np.asarray(BENIGN.create("jpeg")(photo, step.seed_for(photo))))
    assert step.seed_for(photo) != step.seed_for(other)  # each image its own draws, not one JPEG quality for all
    assert parse_chain("jpeg").spec == "jpeg:75" and parse_chain("benign:jpeg").spec == "benign:jpeg"
    assert parse_chain("upscale-x2-bicubic")(photo).size == (128, 96)
    assert expand_chains(["benign:camera-*", "camera-mhc"]) == ["camera-bilinear", "camera-mhc", "camera-raw"]
    every = expand_chains(["benign:*"])
    assert len(every) == len(BENIGN.list()) - 1 and "none" not in every and "benign:jpeg" in every
    with pytest.raises(UnknownNameError, match=r"camera-mhc.*social-1080"):  # the message lists both kinds
        parse_chain("camera-foo")
    with pytest.raises(GendetectError, match="no benign chain matches"):
        expand_chains(["benign:zz*"])
    # a pattern inside a longer chain: one chain per match, two patterns every pair
    cams = ["camera-bilinear", "camera-mhc", "camera-raw"]
    assert expand_chains(["benign:camera-*+jpeg:75"]) == [f"{c}+jpeg:75" for c in cams]
    pairs = expand_chains(["resize:0.5+benign:camera-m*+benign:upscale-x2-*"])
    assert pairs == ["resize:0.5+camera-mhc+upscale-x2-bicubic", "resize:0.5+camera-mhc+upscale-x2-lanczos"]
    assert all(parse_chain(s).spec == s for s in [*every, *pairs])  # a report's chain specs rebuild the chains
    with pytest.raises(GendetectError, match="no benign chain matches 'benign:zz\\*'"):
        expand_chains(["jpeg:75+benign:zz*"])
    assert expand_chains(["benign : camera-* + jpeg:75"]) == [f"{c}+jpeg:75" for c in cams]  # spaces as parse_chain
    with pytest.raises(UnknownNameError, match=r"'' in chain '\+jpeg:75'"):  # an empty step is an error, not dropped
        expand_chains(["+jpeg:75"])
    with pytest.raises(UnknownNameError, match=r"'foo' in chain 'benign:camera-\*\+foo'"):  # as the user wrote it
        expand_chains(["benign:camera-*+foo"])
    with pytest.raises(GendetectError, match="matches only 'none'"):
        expand_chains(["benign:non*"])
    with pytest.raises(GendetectError, match="more than 200 chains"):  # 25 x 25 passes over the data
        expand_chains(["benign:*+benign:*"])

    # one chain in two spellings is one row (two would have doubled its feature rows against the labels)
    assert expand_chains(["camera-mhc", "benign:camera-mhc", "jpeg", "jpeg:75"]) == ["camera-mhc", "jpeg:75"]
    assert expand_chains(["none", "benign:none", "none+benign:camera-m*", "camera-mhc+none"]) == ["none", "camera-mhc"]

    chains = ["benign:upscale-x2-*", "social-1080", "upscale-x2-bicubic"]
    rob = run_protocol(_cfg("robustness", tree, model=str(model_dir), chains=chains))
    assert list(rob["metrics"]) == ["none", "upscale-x2-bicubic", "upscale-x2-lanczos", "social-1080"]
    means = [m["mean_p_fake_real"] for m in rob["metrics"].values()]
    assert len(set(means)) == len(means)  # each chain made other copies than the clean row


def test_evaluate_rejects_an_unknown_chain_before_any_work(tree: Path, tmp_path: Path) -> None:
    # the model does not exist: a chain error here means the chain was checked before the model was loaded
    args = ["evaluate", "--protocol", "robustness", "--data", str(tree), "--model", str(tmp_path / "absent")]
    result = CliRunner().invoke(main, [*args, "--chain", "phone-upscal"])
    assert result.exit_code != 0 and "Did you mean 'phone-upscale'" in result.output, result.output
    assert "absent" not in result.output


def test_evaluate_names_a_missing_model_before_reading_the_data(tmp_path: Path) -> None:
    """An unlabelled folder and a misspelt --model: the model is what is wrong, whatever the data holds."""
    from gendetect.data.synthetic import synthetic_image

    synthetic_image("real", 64, seed=1).save(tmp_path / "a.png")  # a plain folder: label unknown
    result = CliRunner().invoke(main, ["evaluate", "--data", str(tmp_path), "--model", "nope"])
    assert result.exit_code == 1 and "Model 'nope' not found" in result.output, result.output
    assert "labelled" not in result.output
    # a published detector's name passes the name check without loading its weights (absent here)
    with pytest.raises(DataSchemaError, match="no labelled images"):
        run_protocol(ProtocolConfig(data=str(tmp_path), model="univfd"))


def test_no_labelled_images_says_how_to_label_a_folder(tmp_path: Path) -> None:
    from gendetect.data.synthetic import synthetic_image

    synthetic_image("real", 64, seed=1).save(tmp_path / "a.png")
    result = CliRunner().invoke(main, ["evaluate", "--data", str(tmp_path)])
    assert result.exit_code == 1 and "no labelled images for protocol 'per-generator'" in result.output
    assert "1 image in" in result.output and "none labelled real or fake" in result.output
    assert all(w in result.output for w in ("labels.csv", "0_real/", "1_fake/", "fake/<generator>/")), result.output
    with pytest.raises(DataSchemaError, match="split selection .* keeps none of the 1 image in"):
        run_protocol(ProtocolConfig(data=str(tmp_path), split="test"))


def test_per_subject(tmp_path: Path, model_dir: Path) -> None:
    from gendetect.data.synthetic import synthetic_image

    for subject in ("cats", "cars"):
        for i in range(4):
            for label, folder in (("real", "0_real"), ("fake", "1_fake")):
                p = tmp_path / "gen" / subject / folder / f"{i}.png"
                p.parent.mkdir(parents=True, exist_ok=True)
                synthetic_image(label, 64, seed=i + 10 * (subject == "cats")).save(p)
    report = run_protocol(ProtocolConfig(protocol="per-subject", data=str(tmp_path), model=str(model_dir), n_boot=50))
    assert {"cats", "cars", "all"} == set(report["metrics"])
    assert report["metrics"]["cats"]["n_real"] == 4


def test_shortcut_audit_flags_a_biased_set(tmp_path: Path) -> None:
    biased = make_synthetic_dataset(
        tmp_path / "biased", n_per_class=12, size=48, generators=("g",), fmt="JPEG", fake_fmt="PNG", null_generators=()
    )
    result = shortcut_audit(read_records(biased))
    assert result["flagged"] and result["auc"] > 0.9 and "SHORTCUT WARNING" in result["message"]
    assert result["per_feature"]["is_png"] == 1.0
    fair = make_synthetic_dataset(tmp_path / "fair", n_per_class=12, size=48, generators=("g",), fmt="PNG")
    assert not shortcut_audit(read_records(fair))["flagged"]


def test_train_records_the_audit_and_cli_warns(tmp_path: Path) -> None:
    biased = make_synthetic_dataset(
        tmp_path / "b", n_per_class=12, size=48, generators=("g",), fmt="JPEG", fake_fmt="PNG"
    )
    result = CliRunner().invoke(
        main, ["train", "--data", str(biased), "--extractor", "pixel-stats", "--folds", "3", "-o", str(tmp_path / "m")]
    )
    assert result.exit_code == 0, result.output
    assert "SHORTCUT WARNING" in result.stderr
    assert json.loads((tmp_path / "m" / "config.json").read_text())["audit"]["flagged"] is True


def test_temperature_calibration_recovers_the_temperature() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 5000)
    y = (rng.uniform(size=5000) < 1 / (1 + np.exp(-z))).astype(int)
    overconfident = 1 / (1 + np.exp(-3 * z))  # logits 3x too large
    cal = TemperatureCalibrator().fit(overconfident, y)
    assert cal.temperature == pytest.approx(3.0, rel=0.15)


def test_isotonic_calibration_roundtrips_with_the_model(tree: Path, tmp_path: Path) -> None:
    records = [r for r in read_records(tree) if r.source != f"{tree.name}/null"]
    pipe = train_pipeline(
        records,
        EXTRACTORS.from_config(RECIPE["extractor"]),
        DETECTORS.from_config(RECIPE["detector"]),
        n_folds=3,
        calibration="isotonic",
    )
    assert isinstance(pipe.calibrator, IsotonicCalibrator) and "ece" in pipe.info["validation"]["all"]
    loaded = load_model(pipe.save(tmp_path / "cal"))
    X = np.random.default_rng(0).normal(size=(6, pipe.extractor.dim))
    np.testing.assert_allclose(loaded.predict_proba_features(X), pipe.predict_proba_features(X))
    assert loaded.get_config()["calibration"]["name"] == "isotonic"


def test_reports_render(tree: Path, tmp_path: Path) -> None:
    report = run_protocol(_cfg("cross-generator", tree))
    paths = write_report(report, tmp_path / "rep")
    html = paths["html"].read_text()
    assert "<table>" in html and "data:image/png;base64," in html and "cross-generator AUC" in html
    md = paths["md"].read_text()
    assert "| train \\ test |" in md and '"protocol": "cross-generator"' in md
    assert json.loads(paths["json"].read_text())["matrix"]["train"]


def test_cli_protocol_and_config(tree: Path, tmp_path: Path, model_dir: Path) -> None:
    config = tmp_path / "cfg.json"
    config.write_text(
        json.dumps(
            {
                "protocol": "robustness",
                "data": str(tree),
                "model": str(model_dir),
                "chains": ["none", "blur:2"],
                "n_boot": 0,
            }
        )
    )
    result = CliRunner().invoke(main, ["evaluate", "--config", str(config), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "blur:2" in result.stdout and (tmp_path / "out" / "report.html").exists()
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["config"]["chains"] == ["none", "blur:2"]
    bad = CliRunner().invoke(main, ["evaluate", "--data", str(tree), "--protocol", "cross-genrator"])
    assert bad.exit_code == 1 and "cross-generator" in bad.output
