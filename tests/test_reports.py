"""What the reports say: no interval for tiny groups, the false-positive matrix, the clean robustness row, rendered
Markdown in the HTML page and the misses among the worst cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gendetect.data.readers import read_records
from gendetect.data.synthetic import make_synthetic_dataset
from gendetect.detectors import DETECTORS
from gendetect.evaluation.metrics import enough_for_ci
from gendetect.evaluation.protocols import TOO_FEW, ProtocolConfig, _metric_rows, _metrics_with_ci, run_protocol
from gendetect.evaluation.render import markdown_to_html, to_html, to_markdown, write_report
from gendetect.evaluation.report import save_report
from gendetect.features import EXTRACTORS
from gendetect.training import train_pipeline

RECIPE = {
    "extractor": {"name": "npr", "params": {"crop": 64, "n_crops": 1}},
    "detector": {"name": "logistic", "params": {"C": 1.0}},
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two generators with the up-sampling trace and one ('null') whose fakes are drawn like the reals."""
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("reports"),
        n_per_class=8,
        size=64,
        generators=("up-a", "up-b"),
        null_generators=("null",),
    )


@pytest.fixture(scope="module")
def model_dir(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    records = [r for r in read_records(tree) if r.source != f"{tree.name}/null"]
    pipeline = train_pipeline(
        records,
        EXTRACTORS.from_config(RECIPE["extractor"]),
        DETECTORS.from_config(RECIPE["detector"]),
        n_folds=3,
        audit=False,
    )
    return pipeline.save(tmp_path_factory.mktemp("model") / "m")


def test_no_interval_below_five_per_class() -> None:
    rng = np.random.default_rng(0)
    small_y, big_y = np.r_[np.zeros(4), np.ones(6)].astype(int), np.r_[np.zeros(5), np.ones(5)].astype(int)
    assert not enough_for_ci(small_y) and enough_for_ci(big_y)
    small = _metrics_with_ci(small_y, rng.uniform(size=10), 0.5, n_boot=50, seed=0)
    big = _metrics_with_ci(big_y, rng.uniform(size=10), 0.5, n_boot=50, seed=0)
    assert small["auc_ci"] == TOO_FEW == "too few" and small["ap_ci"] == TOO_FEW
    lo, hi = big["auc_ci"]
    assert 0 <= lo <= hi <= 1
    rows = _metric_rows({"tiny": small, "all": big})
    assert rows[0][-1] == "too few" and rows[1][-1].startswith("[")
    table = {"title": "t", "columns": ["g", "ci"], "rows": [[rows[0][0], rows[0][-1]]]}
    assert "| tiny | too few |" in to_markdown({"protocol": "x", "tables": [table]})


def test_cross_generator_has_a_false_positive_matrix(tree: Path) -> None:
    report = run_protocol(ProtocolConfig(protocol="cross-generator", data=str(tree), n_folds=3, n_boot=0, **RECIPE))
    m = report["matrix"]
    fpr = np.array(m["fpr"], dtype=float)
    assert fpr.shape == (len(m["train"]), len(m["test"]))
    assert np.nanmin(fpr) >= 0 and np.nanmax(fpr) <= 1
    # reals are drawn alike everywhere: a threshold set for <= 1% FPR on one set's reals stays low on the others
    assert np.nanmean(fpr) < 0.3
    titles = [t["title"] for t in report["tables"]]
    auc_at = titles.index("cross-generator AUC")
    assert titles[auc_at + 1].startswith("cross-generator false-positive rate")  # beside the AUC matrix
    assert "row model's own threshold" in report["tables"][auc_at + 1]["note"]
    assert report["figures"]["cross_generator_fpr"]["lower_is_better"] is True


def test_robustness_always_has_the_clean_row(tree: Path, model_dir: Path) -> None:
    cfg = ProtocolConfig(protocol="robustness", data=str(tree), model=str(model_dir), chains=["jpeg:90"], n_boot=0)
    report = run_protocol(cfg)
    assert list(report["metrics"]) == ["none", "jpeg:90"]
    assert report["tables"][0]["rows"][0][0] == "none"
    assert report["figures"]["robustness"]["rows"][0] == "none"


def test_worst_false_negatives_are_the_misses(tree: Path, model_dir: Path, tmp_path: Path) -> None:
    cfg = ProtocolConfig(protocol="per-generator", data=str(tree), model=str(model_dir), n_boot=0)
    report = run_protocol(cfg)
    labels = {r.path: r.label for r in read_records(tree)}
    fn, fp = report["worst"]["false_negatives"], report["worst"]["false_positives"]
    assert fn, "the null generator's fakes look like reals: some must be missed"
    assert all(labels[it["path"]] == "fake" and it["p_fake"] <= report["threshold"] for it in fn)
    assert [it["p_fake"] for it in fn] == sorted(it["p_fake"] for it in fn)  # the lowest-scored fakes first
    assert all(labels[it["path"]] == "real" for it in fp) and not {it["path"] for it in fn} & {it["path"] for it in fp}
    paths = write_report(report, tmp_path / "r")
    md = paths["md"].read_text()
    assert "## Worst false negatives" in md and Path(fn[0]["path"]).name in md
    assert "Worst false negatives" in paths["html"].read_text()


def test_html_renders_the_markdown() -> None:
    report = {
        "protocol": "audit",
        "model": "m <b>",
        "threshold": 0.5,
        "data": {"n_images": 10, "n_unreadable": 0, "labels": {"real": 5, "fake": 5}, "fingerprint": "abc"},
        "audit": {
            "auc": 0.9,
            "flagged": True,
            "message": "SHORTCUT WARNING: file facts",
            "warnings": ["SHORTCUT WARNING: file facts", "SHORTCUT WARNING (border): frames"],
            "border": {"auc": 0.99, "baseline_auc": 0.5, "warn": True},
        },
        "tables": [{"title": "t", "columns": ["a", "b"], "rows": [["x", 0.5]], "note": "see **this**"}],
        "figures": {},
        "config": {},
        "provenance": {},
    }
    page = to_html(report)
    pytest.importorskip("markdown", reason="the 'report' extra is not installed")
    assert "<strong>Model <strong>" not in page and "**" not in page  # no raw Markdown left
    assert "<blockquote class='warn'>" in page and page.count("<strong>SHORTCUT WARNING") == 2
    assert "<td>border / frame</td>" in page  # the audit table is an HTML table
    assert "<strong>this</strong>" in page  # notes too
    assert "m &lt;b&gt;" in page or "m &lt;b>" in page  # raw HTML from the data is escaped, not injected
    assert markdown_to_html("# T") == "<h1>T</h1>"


def test_audit_protocol_reports_the_pixel_checks(tree: Path, tmp_path: Path) -> None:
    report = run_protocol(ProtocolConfig(protocol="audit", data=str(tree)))
    pixel = report["tables"][1]
    assert [row[0] for row in pixel["rows"]] == ["border", "text_strip", "content"]
    assert all(row[3] == "no" for row in pixel["rows"])  # synthetic data: no frame, caption or art
    md = write_report(report, tmp_path)["md"].read_text()
    assert "| border / frame |" in md and "| text_strip |" in md


def test_html_without_the_markdown_package_shows_preformatted_text(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "markdown", None)  # import markdown now raises ImportError
    out = markdown_to_html("**bold** <script>")
    assert out.startswith("<pre>**bold** &lt;script>") and "gendetect[report]" in out


def _strict(text: str) -> object:
    def refuse(name: str) -> None:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_written_reports_are_strict_json(tmp_path: Path) -> None:
    report = {
        "protocol": "per-generator",
        "model": "m",
        "threshold": np.float32(0.5),
        "data": {"n_images": np.int64(4), "n_unreadable": 0, "labels": {"real": 2, "fake": 2}, "fingerprint": "f"},
        "metrics": {"all": {"auc": math.nan, "ratio": math.inf, "low": -math.inf, "flag": np.bool_(True)}},
        "tables": [],
        "figures": {},
        "config": {},
        "provenance": {},
    }
    for text in (
        save_report(report, tmp_path / "a.json").read_text(),
        write_report(report, tmp_path)["json"].read_text(),
    ):
        got = _strict(text)
        assert got["metrics"]["all"] == {"auc": None, "ratio": None, "low": None, "flag": True}  # type: ignore[index]
        assert got["threshold"] == 0.5 and got["data"]["n_images"] == 4  # type: ignore[index]
