"""Train and evaluate end to end on procedural images: the up-sampling trace must be learnt (AUC close to 1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gendetect import create_detector, create_extractor, load_model
from gendetect.data.readers import read_records
from gendetect.data.synthetic import make_synthetic_dataset
from gendetect.errors import DataSchemaError
from gendetect.evaluation.grouping import per_generator_metrics
from gendetect.evaluation.report import evaluate_pipeline, save_report
from gendetect.training import train_pipeline


@pytest.fixture(scope="module")
def synthetic_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    return make_synthetic_dataset(root, n_per_class=12, size=96, generators=("gan-a", "gan-b", "gan-c"), fmt="PNG")


@pytest.mark.parametrize("extractor", ["spectrum", "npr"])
def test_train_then_evaluate_reaches_auc_near_one(synthetic_tree: Path, tmp_path: Path, extractor: str) -> None:
    records = read_records(synthetic_tree)
    assert {r.generator for r in records} == {"real", "gan-a", "gan-b", "gan-c"}
    pipeline = train_pipeline(records, create_extractor(extractor), create_detector("logistic"), n_folds=3)
    val = pipeline.info["validation"]
    assert val["all"]["auc"] > 0.95
    assert set(val) == {"all", "gan-a", "gan-b", "gan-c"}
    rule = pipeline.info["threshold_rule"]
    assert rule["target_fpr"] == 0.01 and "sources" in rule["scheme"]
    assert pipeline.info["training"]["labels"] == {"real": 36, "fake": 36}

    pipeline.save(tmp_path / "model")
    report = evaluate_pipeline(tmp_path / "model", read_records(synthetic_tree))
    assert report["metrics"]["all"]["auc"] > 0.95
    assert report["metrics"]["all"]["n_real"] == 36 and report["metrics"]["all"]["n_fake"] == 36
    assert len(report["items"]) == 72
    save_report(report, tmp_path / "report.json")
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["model"] == pipeline.name and "versions" in saved["provenance"]


def test_test_split_is_refused(synthetic_tree: Path) -> None:
    records = read_records(synthetic_tree)
    records[0].split = "test"
    with pytest.raises(DataSchemaError, match="test"):
        train_pipeline(records, create_extractor("pixel-stats"), create_detector("logistic"))


def test_threshold_is_the_conformal_quantile_unless_asked_for_the_in_sample_one(synthetic_tree: Path) -> None:
    records = read_records(synthetic_tree)
    fitted = {
        conformal: train_pipeline(
            records,
            create_extractor("pixel-stats"),
            create_detector("logistic"),
            n_folds=3,
            target_fpr=0.1,
            uncertain_fpr=None,
            conformal=conformal,
        )
        for conformal in (True, False)
    }
    # 36 validation reals at a 10% target: in-sample lets floor(3.6) = 3 through, the conformal quantile
    # 36 - ceil(37 * 0.9) = 2 (one fewer), so that the target holds for the next real
    through = {c: round(36 * (1 - p.info["validation"]["all"]["acc_real"])) for c, p in fitted.items()}
    assert through == {True: 2, False: 3}
    assert fitted[True].threshold > fitted[False].threshold
    assert fitted[True].info["threshold_rule"]["conformal"] is True
    assert "conformal" in fitted[True].info["threshold_rule"]["rule"]
    assert fitted[False].info["threshold_rule"]["conformal"] is False


def test_too_few_reals_for_a_conformal_threshold_say_so(synthetic_tree: Path, caplog: pytest.LogCaptureFixture) -> None:
    records = read_records(synthetic_tree)
    with caplog.at_level("WARNING", logger="gendetect.training.pipeline"):
        p = train_pipeline(
            records, create_extractor("pixel-stats"), create_detector("logistic"), n_folds=3, uncertain_fpr=None
        )
    # 36 reals at 1%: no threshold among them guarantees 1% (98 needed), so the highest real score, said so
    assert p.info["validation"]["all"]["acc_real"] == 1.0
    assert "too few" in p.info["threshold_rule"]["rule"] and "too few for a conformal" in caplog.text


def test_unreadable_training_images_are_counted_not_hidden(synthetic_tree: Path, tmp_path: Path) -> None:
    records = read_records(synthetic_tree)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    extra = type(records[0])(path=str(broken), label="fake", generator="gan-a", source=records[-1].source)
    pipeline = train_pipeline(
        [*records, extra], create_extractor("pixel-stats"), create_detector("logistic"), n_folds=3
    )
    assert pipeline.info["training"]["n_unreadable"] == 1
    assert pipeline.info["training"]["n_images"] == len(records)


def test_per_generator_pairs_fakes_with_reals_of_their_source() -> None:
    from gendetect.data.records import ImageRecord

    recs = [
        ImageRecord("r1", "real", "real", "set/a"),
        ImageRecord("f1", "fake", "a", "set/a"),
        ImageRecord("r2", "real", "real", "set/b"),
        ImageRecord("f2", "fake", "b", "set/b"),
        ImageRecord("f3", "fake", "c", "elsewhere"),
    ]
    scores = np.array([0.1, 0.9, 0.95, 0.2, 0.5])
    m = per_generator_metrics(recs, scores, threshold=0.5)
    assert m["a"]["auc"] == 1.0 and m["a"]["n_real"] == 1 and m["a"]["reals_from"] == "same source"
    assert m["b"]["auc"] == 0.0
    assert m["c"]["n_real"] == 2 and m["c"]["reals_from"] == "all sources"
    assert m["all"]["n_real"] == 2 and m["all"]["n_fake"] == 3


def test_embedded_default_model_loads_and_records_its_provenance() -> None:
    model = load_model()
    config = model.get_config()
    assert config["threshold_rule"]["target_fpr"] <= 0.01
    assert config["training"]["n_images"] > 0 and "versions" in config["provenance"]
    assert 0.0 < model.threshold < 1.0
