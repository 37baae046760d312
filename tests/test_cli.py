"""The CLI is a thin layer: each command works through CliRunner and library errors become one clear line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from gendetect.cli import main
from gendetect.data.synthetic import make_synthetic_dataset, synthetic_image


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    (folder / "sub").mkdir()
    synthetic_image("real", 128, seed=1).save(folder / "a.jpg", quality=92)
    synthetic_image("fake", 128, seed=2).save(folder / "sub" / "b.png")
    (folder / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    return folder


def test_scan_one_image_shows_probability_verdict_and_model(runner: CliRunner, photos: Path) -> None:
    result = runner.invoke(main, ["scan", str(photos / "a.jpg")])
    assert result.exit_code == 0, result.output
    assert "a.jpg" in result.stdout and ("real" in result.stdout or "fake" in result.stdout)
    assert (
        "1 row: 1 judged (" in result.stderr and "gendetect-default" in result.stderr and "P(fake) >" in result.stderr
    )


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_scan_folder_recursively_in_each_format(runner: CliRunner, photos: Path, fmt: str) -> None:
    result = runner.invoke(main, ["scan", str(photos), "--format", fmt, "--no-progress"])
    assert result.exit_code == 0, result.output
    if fmt == "json":
        rows = json.loads(result.stdout)
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in result.stdout.splitlines()]
    else:
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sorted(Path(r["path"]).name for r in rows) == ["a.jpg", "b.png", "broken.jpg"]
    broken = next(r for r in rows if r["path"].endswith("broken.jpg"))
    assert broken["status"] == "error" and broken["error"]
    ok = [r for r in rows if r["status"] == "ok"]
    assert all(0 <= float(r["p_fake"]) <= 1 for r in ok)
    assert "3 rows: 2 judged (" in result.stderr and "), 1 error " in result.stderr  # an error is not judged


def test_scan_to_parquet_records_provenance(runner: CliRunner, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.parquet"
    result = runner.invoke(main, ["scan", str(photos), "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 3
    assert {"path", "p_fake", "verdict", "status", "error", "sha256", "model", "threshold"} <= set(table.column_names)
    assert "versions" in json.loads(table.schema.metadata[b"gendetect"])


def _read_rows(path: Path, fmt: str) -> tuple[list[str], list[dict]]:
    """``(columns in order, rows)`` of a results file."""
    if fmt == "parquet":
        table = pq.read_table(path)
        return table.column_names, table.to_pylist()
    text = path.read_text(encoding="utf-8")
    if fmt in ("csv", "tsv"):
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
        rows = list(reader)
        return list(reader.fieldnames or []), rows
    rows = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
    keys = {tuple(r) for r in rows}
    assert len(keys) == 1, f"rows with different keys: {sorted(keys)}"  # one schema, in the same order
    return list(next(iter(keys))), rows


@pytest.mark.parametrize(
    "fmt,engine",
    [
        ("json", None),
        ("jsonl", None),
        ("csv", None),
        ("tsv", None),
        ("parquet", None),
        ("csv", "local"),
        ("parquet", "local"),
    ],
)
def test_error_rows_have_the_columns_of_scored_rows_in_every_format(
    runner: CliRunner, tmp_path: Path, fmt: str, engine: str | None
) -> None:
    """The default model (tiled, evidence read): an error row has ``tiles``, ``pixel_verdict``... as null, even when
    the rows that fix a CSV's columns (its first 64) are all errors."""
    data = tmp_path / "in"
    data.mkdir()
    for i in range(65):
        (data / f"{i:03d}_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    synthetic_image("real", 128, seed=1).save(data / "zz_photo.png")
    out = tmp_path / f"r.{fmt}"
    args = ["scan", str(data), str(tmp_path / "missing.png"), "-o", str(out), "--no-progress"]
    result = runner.invoke(main, [*args, *(["--engine", engine] if engine else [])])
    assert result.exit_code == 0, result.output
    assert "appeared after the first row" not in result.output  # no column was dropped
    columns, rows = _read_rows(out, fmt)
    assert len(rows) == 67 and [r["status"] for r in rows].count("ok") == 1
    expected = {"tiles", "signal_tiles", "pixel_verdict", "evidence_rule", "evidence_skipped", "n_frames", "warnings"}
    assert expected <= set(columns), columns
    ok = next(r for r in rows if r["status"] == "ok")
    broken, missing = rows[0], rows[-1]
    assert missing["error"] == "no such file or directory" and broken["status"] == "error"
    assert int(ok["tiles"]) >= 1 and int(ok["n_frames"]) == 1
    for row in (broken, missing):
        assert row["tiles"] in (None, "") and row["pixel_verdict"] in (None, "") and row["n_frames"] in (None, "")
    if fmt == "parquet":
        import pyarrow as pa

        schema = pq.read_schema(out)
        assert schema.field("tiles").type == pa.int64() and schema.field("n_frames").type == pa.int64()


def test_a_sharded_scan_writes_the_rows_and_schema_of_a_streamed_one(runner: CliRunner, tmp_path: Path) -> None:
    """``--engine local`` keeps its rows in shard files; what it writes must not differ from a streamed scan's: the
    same Parquet schema (types fixed, lists as JSON text) whatever the files, and each row's own findings (Arrow
    would infer one struct from every file's findings and pad each one's details with the others' keys)."""
    from PIL.PngImagePlugin import PngInfo

    data = tmp_path / "in"
    data.mkdir()
    synthetic_image("real", 128, seed=1).save(data / "a_photo.png")
    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 128x128, Model: sd15")
    synthetic_image("fake", 128, seed=2).save(data / "b_sd.png", pnginfo=info)
    info = PngInfo()
    info.add_text("Software", "Adobe Photoshop 25.0")
    synthetic_image("real", 128, seed=3).save(data / "c_edited.png", pnginfo=info)
    (data / "d_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    out = {}
    for engine in (None, "local"):
        for fmt in ("parquet", "jsonl"):
            path = out[engine, fmt] = tmp_path / f"{engine or 'stream'}.{fmt}"
            args = ["scan", str(data), "-o", str(path), "--no-progress", *(["--engine", engine] if engine else [])]
            result = runner.invoke(main, args)
            assert result.exit_code == 0, result.output
    streamed, sharded = pq.read_schema(out[None, "parquet"]), pq.read_schema(out["local", "parquet"])
    assert [(f.name, f.type) for f in sharded] == [(f.name, f.type) for f in streamed]
    assert str(sharded.field("findings").type) == "string" and str(sharded.field("warnings").type) == "string"
    a, b = ([json.loads(line) for line in out[k, "jsonl"].read_text().splitlines()] for k in (None, "local"))
    assert a == b
    assert any(r["findings"] for r in a) and all(isinstance(r["findings"], list) for r in a)
    assert pq.read_table(out["local", "parquet"]).to_pylist() == pq.read_table(out[None, "parquet"]).to_pylist()


def test_a_sharded_parquet_rerun_removes_the_older_meta_file(runner: CliRunner, tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    for i in range(3):
        synthetic_image("real", 96, seed=i).save(data / f"{i}.png")
    out = tmp_path / "r.parquet"
    result = runner.invoke(main, ["scan", str(data), "--engine", "local", "-o", str(out), "--no-progress", "--meta"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.parquet.meta.json").read_text())["files"] == 3
    result = runner.invoke(main, ["scan", str(data / "0.png"), "--engine", "local", "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "r.parquet.meta.json").exists()  # it described the results this run replaced


def test_the_summary_counts_errors_apart_from_the_judged_rows(runner: CliRunner, photos: Path, tmp_path: Path) -> None:
    import re

    result = runner.invoke(main, ["scan", str(photos), str(tmp_path / "missing.png"), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    verdicts = [r["verdict"] for r in rows if r["status"] == "ok"]
    line = next(line for line in result.stderr.splitlines() if "judged" in line)
    m = re.match(r"(\d+) rows: (\d+) judged \((\d+) fake, (\d+) uncertain, (\d+) real\), (\d+) errors  \(model ", line)
    assert m, line
    n, judged, fake, uncertain, real, errors = map(int, m.groups())
    assert (n, judged, errors) == (4, 2, 2) and judged == len(verdicts) and errors == len(rows) - len(verdicts)
    assert (fake, uncertain, real) == tuple(verdicts.count(v) for v in ("fake", "uncertain", "real"))
    assert "scanned" not in line  # the old wording counted errors as scanned


def test_scan_meta_writes_the_runs_metadata_beside_the_results(runner: CliRunner, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    args = ["scan", str(photos), "-o", str(out), "--no-evidence", "--max-pixels", "5000000", "--threshold", "0.7"]
    result = runner.invoke(main, [*args, "--meta"])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())  # the results file is still a plain list of rows
    assert isinstance(rows, list) and len(rows) == 3
    sidecar = tmp_path / "results.json.meta.json"
    meta = json.loads(sidecar.read_text())
    from importlib.metadata import version

    assert meta["kind"] == "scan" and meta["gendetect"] == version("gendetect") and "numpy" in meta["versions"]
    assert meta["model"]["name"] == rows[0]["model"] and meta["model"]["threshold"] == rows[0]["threshold"] == 0.7
    assert meta["model"]["uncertain_from"] == rows[0]["uncertain_from"] and meta["model"]["version"]
    options = meta["options"]
    assert options["evidence"] is False and options["max_pixels"] == 5_000_000 and options["threshold"] == 0.7
    assert options["recursive"] is True and options["engine"] is None and meta["inputs"] == [str(photos)]
    assert meta["rows"] == 3 and sum(meta["counts"].values()) == 3 and meta["counts"]["error"] == 1
    assert meta["started"] <= meta["finished"] and meta["complete"] is True
    assert meta["output"] == {"path": str(out), "format": "json"}
    assert "run metadata written to" in result.stderr
    # without --meta: no sidecar, and the older one (it described the file this run replaces) is removed
    result = runner.invoke(main, args)
    assert result.exit_code == 0 and out.exists() and not sidecar.exists()
    # --meta needs a file to sit beside
    result = runner.invoke(main, ["scan", str(photos), "--meta"])
    assert result.exit_code == 2 and "--meta needs -o" in result.output


def test_scan_parquet_footer_records_the_runs_options(runner: CliRunner, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    result = runner.invoke(main, ["scan", str(photos), "-o", str(out), "--no-evidence", "--max-pixels", "5000000"])
    assert result.exit_code == 0, result.output
    meta = json.loads(pq.read_metadata(out).metadata[b"gendetect"])
    assert meta["options"]["max_pixels"] == 5_000_000 and meta["options"]["evidence"] is False
    assert meta["model"]["name"].startswith("gendetect-default") and meta["complete"] is True and meta["rows"] == 3


def test_scan_of_only_bad_inputs_exits_non_zero(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["scan", str(tmp_path / "missing.jpg"), "--format", "json"])
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)
    assert row["error"] == "no such file or directory"


def test_unknown_model_is_one_clear_line(runner: CliRunner, photos: Path, tmp_path: Path) -> None:
    result = runner.invoke(main, ["scan", str(photos), "-m", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "Error: Model" in result.output and "not found" in result.output and "Traceback" not in result.output


def test_unknown_extractor_lists_valid_names(runner: CliRunner, photos: Path, tmp_path: Path) -> None:
    result = runner.invoke(main, ["train", "--data", str(photos), "--extractor", "spectrun", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert "Did you mean 'spectrum'" in result.output and "npr" in result.output


def test_list(runner: CliRunner) -> None:
    result = runner.invoke(main, ["list", "extractors"])
    assert result.exit_code == 0 and {"spectrum", "npr"} <= set(result.stdout.split())
    result = runner.invoke(main, ["list", "detectors"])
    assert set(result.stdout.split()) >= {"knn", "logistic", "mlp"}
    result = runner.invoke(main, ["list", "chains"])
    first = [line.split()[0] for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and {"jpeg:75", "resize:0.5", "camera-mhc", "social-1080", "benign:jpeg"} <= set(first)
    assert "benign" not in first and "benign:none" not in first  # the wrapper is not a chain of its own
    camera = [
        line.split()[0] for line in runner.invoke(main, ["list", "chains", "benign:camera-*"]).stdout.splitlines()
    ]
    assert camera == ["camera-bilinear", "camera-mhc", "camera-raw"]  # the --chain spelling of a pattern

    from gendetect.evaluation.perturbations import parse_chain

    for name in first:  # every listed name is a valid --chain
        parse_chain(name)


@pytest.mark.parametrize(
    ("kind", "pattern", "listed"),
    [
        ("detectors", "x*", "logistic"),
        ("chains", "zzz", "camera-mhc"),
        ("generators", "zzz", "sd15"),
        ("extractors", "zzz", "npr"),
    ],
)
def test_list_pattern_matching_nothing_is_a_usage_error_listing_the_names(
    runner: CliRunner, kind: str, pattern: str, listed: str
) -> None:
    result = runner.invoke(main, ["list", kind, pattern])
    assert result.exit_code == 2, result.output  # a usage error, as an unknown KIND is
    assert result.stdout == "" and f"no {kind} match {pattern!r}" in result.stderr and listed in result.stderr
    assert "Did you mean" not in result.stderr


def test_list_misspelt_name_suggests_the_close_one(runner: CliRunner) -> None:
    result = runner.invoke(main, ["list", "detectors", "lgistic"])
    assert result.exit_code == 2 and "Did you mean 'logistic'?" in result.stderr and "knn" in result.stderr


def test_model_shows_the_defaults_test_rows_band_and_chains(runner: CliRunner) -> None:
    """Everything the default's card reports is in ``gendetect model``: test figures, the band, each chain."""
    from gendetect.pipeline import default_model_path

    config = json.loads((default_model_path() / "config.json").read_text())
    result = runner.invoke(main, ["model"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"auc_all_test {config['test']['auc_all_test']:.3f}" in out
    assert f"tpr_at_threshold {config['test']['tpr_at_threshold']:.3f}" in out
    band = config["validation"]["band"]
    assert f"fake_or_uncertain {band['fake_or_uncertain']:.3f}" in out and "per_chain_uncertain" in out
    assert "test: per_family" in out and "fake|unc" in out and "verdicts" in out
    lines = [line.split() for line in out.splitlines()]
    photoreal = f"{config['validation']['photoreal_auc']:.3f}"
    assert any(w[:1] == ["photoreal_auc"] and photoreal in w for w in lines)
    chains = config["validation"]["per_chain_fpr"]
    worst = min(chains, key=lambda c: chains[c]["acc_real"])
    fpr = f"{1 - chains[worst]['acc_real']:.3f}"  # shown as a false-positive rate beside the accuracy
    assert any(w[:1] == [worst] and f"{chains[worst]['acc_real']:.3f}" in w and fpr in w for w in lines)
    kandinsky = next(line for line in out.splitlines() if line.strip().startswith("Kandinsky"))
    verdicts = config["test"]["per_family"]["Kandinsky 2.1"]["verdicts"]
    assert ", ".join(f"{k} {v}" for k, v in verdicts.items()) in kandinsky
    # a temperature keeps the model's midpoint: the score is not called the probability for the user's stream
    assert "calibrated score (temperature" in " ".join(out.split()) and "calibrated probability" not in out


def test_data_index_describe_train_evaluate(runner: CliRunner, tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "data", n_per_class=10, size=96, generators=("g1", "g2"))
    manifest = tmp_path / "manifest.parquet"
    result = runner.invoke(main, ["data", "index", str(root), "-o", str(manifest)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(manifest).num_rows == 40

    result = runner.invoke(main, ["data", "describe", str(manifest), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert json.dumps(summary).count("g1") >= 1

    model = tmp_path / "models" / "mine"
    result = runner.invoke(
        main,
        [
            "train",
            "--data",
            str(manifest),
            "--extractor",
            "npr",
            "--detector",
            "logistic",
            "-p",
            "C=0.5",
            "--folds",
            "3",
            "-o",
            str(model),
        ],
    )
    assert result.exit_code == 0, result.output
    config = json.loads((model / "config.json").read_text())
    assert config["detector"] == {"name": "logistic", "params": {**config["detector"]["params"], "C": 0.5}}
    assert config["extractor"]["name"] == "npr" and config["training"]["n_images"] == 40

    report_path = tmp_path / "report.json"
    result = runner.invoke(main, ["evaluate", "--model", str(model), "--data", str(root), "-o", str(report_path)])
    assert result.exit_code == 0, result.output
    for name in ("g1", "g2", "all", "auc", "acc_real"):
        assert name in result.stdout
    report = json.loads(report_path.read_text())
    assert report["metrics"]["all"]["auc"] > 0.9 and report["metrics"]["all"]["n_fake"] == 20

    result = runner.invoke(main, ["model", str(model)])
    assert result.exit_code == 0 and "threshold" in result.stdout


def test_train_excludes_test_split(runner: CliRunner, tmp_path: Path) -> None:
    root = tmp_path / "set"
    (root / "imgs").mkdir(parents=True)
    rows = []
    for i in range(16):
        label = "fake" if i % 2 else "real"
        synthetic_image(label, 64, seed=i).save(root / "imgs" / f"{i}.png")
        rows.append(
            {
                "file": f"imgs/{i}.png",
                "label": label,
                "generator": "g" if i % 2 else "real",
                "split": "test" if i >= 12 else "trainval",
            }
        )
    from gendetect.data.synthetic import write_labels_csv

    write_labels_csv(root, rows)
    result = runner.invoke(
        main, ["train", "--data", str(root), "--extractor", "pixel-stats", "--folds", "2", "-o", str(tmp_path / "m")]
    )
    assert result.exit_code == 0, result.output
    assert "excluding 4 records with split 'test'" in result.stderr
    assert json.loads((tmp_path / "m" / "config.json").read_text())["training"]["n_images"] == 12


def test_train_records_its_threshold_quantile_and_in_sample_asks_for_the_other(
    runner: CliRunner, tmp_path: Path
) -> None:
    root = tmp_path / "set"
    make_synthetic_dataset(root, n_per_class=8, size=64, generators=("g",), fmt="PNG")
    rules = {}
    for flags in ([], ["--in-sample"], ["--set", "conformal=false"]):
        out = tmp_path / f"m{len(rules)}"
        result = runner.invoke(
            main, ["train", "--data", str(root), "--extractor", "pixel-stats", "--folds", "2", "-o", str(out), *flags]
        )
        assert result.exit_code == 0, result.output
        rules[" ".join(flags)] = json.loads((out / "config.json").read_text())["threshold_rule"]
    assert rules[""]["conformal"] is True and "conformal" in rules[""]["rule"]
    assert rules["--in-sample"]["conformal"] is False and "conformal" not in rules["--in-sample"]["rule"]
    assert rules["--set conformal=false"]["conformal"] is False


def test_every_command_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for command in (
        "gendetect scan",
        "gendetect data index",
        "gendetect data describe",
        "gendetect train",
        "gendetect evaluate",
        "gendetect list",
        "gendetect model",
        "gendetect serve",
    ):
        assert command in readme, command


@pytest.mark.parametrize("threshold", [None, "0.3"])
def test_scan_rows_of_missing_inputs_carry_the_rule_as_scored_rows_do(
    runner: CliRunner, photos: Path, tmp_path: Path, threshold: str | None
) -> None:
    out = tmp_path / "rows.jsonl"
    args = ["scan", str(photos / "a.jpg"), str(tmp_path / "missing.png"), "-o", str(out), "--no-evidence"]
    result = runner.invoke(main, args + (["--threshold", threshold] if threshold else []))
    assert result.exit_code == 0, result.output
    scored, missing = (json.loads(line) for line in out.read_text().splitlines())
    assert missing["status"] == "error" and scored["status"] == "ok"
    rule = ("model", "threshold", "uncertain_from")
    assert [missing[k] for k in rule] == [scored[k] for k in rule]
    assert scored["model"].startswith("gendetect-default")
    if threshold:  # a --threshold below the band's start leaves no band
        assert scored["threshold"] == 0.3 and scored["uncertain_from"] is None
    else:
        assert scored["uncertain_from"] is not None and scored["uncertain_from"] < scored["threshold"]
