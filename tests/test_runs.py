"""Run configs (gendetect.runs): round trips, unknown keys, files, --set, and --config on the commands."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gendetect.cli import main
from gendetect.data.records import ImageRecord
from gendetect.data.synthetic import make_synthetic_dataset
from gendetect.errors import DataSchemaError, GendetectError, UnknownNameError
from gendetect.evaluation.protocols import ProtocolConfig
from gendetect.runs import (
    FeaturesRun,
    GenerateRun,
    Recipe,
    Sampling,
    TrainRun,
    apply_sets,
    engine_options,
    load_run,
    read_config,
)
from gendetect.scale.options import EngineOptions

CONFIGS = [
    Recipe(),
    Recipe({"name": "npr", "params": {"crop": 64}}, {"name": "knn", "params": {"k": 3}}, "temperature"),
    TrainRun(),
    TrainRun(data="d", preset="forensic", target_fpr=0.05, folds=3, split="train,val", store="s", jobs=2),
    TrainRun(recipe=Recipe(detector={"name": "logistic", "params": {"C": 0.5}}), uncertain_fpr=0.0),
    FeaturesRun(),
    FeaturesRun(data="d", preset="univfd", store="s", layout="genimage", jobs=0),
    Sampling(),
    Sampling(steps=(1, 3), guidance=(1.0, 2.0), scheduler=("ddim",), resolution=[64, [32, 48]]),
    GenerateRun(),
    GenerateRun(
        captions="c.json",
        generators=("sd14", "sd21"),
        per_caption=2,
        models=("org/a", "org/b"),
        sampling=Sampling(steps=(2, 4)),
        format="match-real",
        limit=5,
        seed=3,
        device="cuda",
        batch_size=4,
    ),
    GenerateRun(captions="c.txt", models="models.txt"),
    ProtocolConfig(),
    ProtocolConfig(protocol="logo", data="d", extractor={"name": "npr", "params": {}}, chains=["jpeg:90"], n_boot=0),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_to_dict_from_dict_round_trip_through_json(config) -> None:
    d = json.loads(json.dumps(config.to_dict()))
    again = type(config).from_dict(d)
    assert again == config
    assert again.to_dict() == config.to_dict()


@pytest.mark.parametrize("cls", [Recipe, TrainRun, FeaturesRun, GenerateRun, Sampling, ProtocolConfig])
def test_an_unknown_key_lists_the_valid_ones(cls) -> None:
    with pytest.raises(DataSchemaError, match=r"Unknown .* keys \['nope'\]; valid keys: \[") as e:
        cls.from_dict({"nope": 1})
    for f in dataclasses.fields(cls):
        assert repr(f.name) in str(e.value)


def test_unknown_keys_inside_nested_configs_are_errors_too() -> None:
    with pytest.raises(DataSchemaError, match=r"Unknown recipe keys \['extracter'\]"):
        TrainRun.from_dict({"recipe": {"extracter": "npr"}})
    with pytest.raises(DataSchemaError, match=r"Unknown sampling keys \['step'\]"):
        GenerateRun.from_dict({"sampling": {"step": [1, 2]}})
    with pytest.raises(DataSchemaError, match="is a name or"):
        Recipe.from_dict({"detector": {"name": "knn", "parms": {}}})


def test_configs_are_frozen() -> None:
    with pytest.raises(AttributeError):
        TrainRun().folds = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ProtocolConfig().protocol = "logo"  # type: ignore[misc]


def test_recipe_names_presets_and_overrides() -> None:
    assert Recipe.from_dict({"extractor": "npr"}).extractor == {"name": "npr", "params": {}}
    assert Recipe.from_dict({"calibration": "none"}).calibration is None
    preset = Recipe.from_preset("forensic")
    run = TrainRun.from_dict({"preset": "forensic"})
    assert run.recipe == preset and TrainRun(preset="forensic").recipe == preset
    # a part of a recipe given with a preset replaces the preset's part; params alone update the preset's params
    run = TrainRun.from_dict({"preset": "forensic", "recipe": {"detector": {"params": {"C": 0.5}}}})
    assert run.recipe.extractor == preset.extractor
    assert run.recipe.detector == {"name": preset.detector["name"], "params": {**preset.detector["params"], "C": 0.5}}
    run = TrainRun.from_dict({"preset": "forensic", "recipe": {"detector": "knn"}})
    assert run.recipe.detector == {"name": "knn", "params": {}} and run.recipe.extractor == preset.extractor
    # override: another component starts with no parameters; parameters update after
    r = preset.override(detector="knn", detector_params={"k": 3}, extractor_params={"crop": 64})
    assert r.detector == {"name": "knn", "params": {"k": 3}}
    assert r.extractor == {"name": preset.extractor["name"], "params": {**preset.extractor["params"], "crop": 64}}
    assert preset == Recipe.from_preset("forensic")  # the original is unchanged
    assert FeaturesRun(preset="univfd").extractor == Recipe.from_preset("univfd").extractor
    with pytest.raises(UnknownNameError, match="forensic"):
        Recipe.from_preset("forensik")


def test_recipe_builds_and_checks_its_components() -> None:
    recipe = Recipe({"name": "npr", "params": {}}, {"name": "logistic", "params": {"C": 0.5}})
    extractor, detector = recipe.build()
    assert extractor.name == "npr" and detector.get_config()["params"]["C"] == 0.5
    assert Recipe.of(extractor, detector) == recipe.replace(
        extractor=extractor.get_config(), detector=detector.get_config()
    )
    with pytest.raises(UnknownNameError, match="logistic"):
        Recipe(detector="logistik").check()


def test_generate_run_reads_names_and_refuses_objects_from_files() -> None:
    run = GenerateRun.from_dict({"generators": "sd14, sd21", "models": ["a", "b"], "sampling": {"steps": [1, 3]}})
    assert run.generators == ("sd14", "sd21") and run.models == ("a", "b") and run.sampling.steps == (1, 3)
    assert GenerateRun(captions=Path("c.json")).captions == "c.json"
    with pytest.raises(DataSchemaError, match="generators are names"):
        GenerateRun.from_dict({"generators": [{"name": "x"}]})


def test_select_is_the_one_split_filter(tmp_path: Path) -> None:
    records = [
        ImageRecord(f"{i}.png", "real" if i % 2 else "fake", "real" if i % 2 else "g", split=s)
        for i, s in enumerate(["train", "TRAIN", "val", "test", None, "test"])
    ]
    kept, n_test = TrainRun().select(records)
    assert [r.path for r in kept] == ["0.png", "1.png", "2.png", "4.png"] and n_test == 2
    kept, n_test = TrainRun(split="train,test").select(records)
    assert [r.path for r in kept] == ["0.png", "1.png"] and n_test == 2


# -- files and overrides -----------------------------------------------------------------------------------------
def test_read_config_json_yaml_and_bad_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"folds": 3}')
    assert read_config(tmp_path / "a.json") == {"folds": 3}
    pytest.importorskip("yaml")
    (tmp_path / "a.yaml").write_text("folds: 3\nrecipe:\n  detector: knn\n")
    assert read_config(tmp_path / "a.yaml") == {"folds": 3, "recipe": {"detector": "knn"}}
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(DataSchemaError, match="mapping"):
        read_config(tmp_path / "list.json")
    (tmp_path / "bad.json").write_text("{folds: 3")
    with pytest.raises(DataSchemaError, match="not valid JSON"):
        read_config(tmp_path / "bad.json")
    with pytest.raises(DataSchemaError, match="cannot read"):
        read_config(tmp_path / "missing.json")


def test_apply_sets() -> None:
    base = {"recipe": {"detector": "knn"}, "folds": 5}
    out = apply_sets(base, ["folds=3", "recipe.detector.params.k=7", "name=my model", "split=null", "x.y=[1, 2]"])
    assert out == {
        "recipe": {"detector": {"name": "knn", "params": {"k": 7}}},
        "folds": 3,
        "name": "my model",
        "split": None,
        "x": {"y": [1, 2]},
    }
    assert base == {"recipe": {"detector": "knn"}, "folds": 5}  # a copy
    for bad in ("folds", "=3", "a..b=1", "folds.x=1"):
        with pytest.raises(DataSchemaError, match="--set"):
            apply_sets(base, [bad])


def test_load_run_precedence(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"data": "file", "folds": 3, "jobs": 2, "name": "from-file", "engine": {"workers": 2}}))
    with pytest.raises(DataSchemaError, match=r"Unknown train run keys \['engine'\]"):  # not a sharded run
        load_run(TrainRun, path)
    path.write_text(json.dumps({"data": "file", "folds": 3, "jobs": 2, "name": "from-file"}))
    run, engine = load_run(TrainRun, path, ["folds=4", "jobs=3"], {"jobs": 8, "name": None})
    assert (run.data, run.folds, run.jobs, run.name) == ("file", 4, 8, "from-file") and engine == {}
    assert run.target_fpr == TrainRun().target_fpr  # defaults where nothing is said

    path.write_text(json.dumps({"captions": "c.txt", "engine": {"shard_size": 8, "workers": 2}}))
    run, section = load_run(GenerateRun, path, ["engine.address=auto"], with_engine=True)
    assert run.captions == "c.txt" and section == {"shard_size": 8, "workers": 2, "address": "auto"}
    opts = engine_options(section, {"engine": "local", "shard_size": 64, "workers": None}, {"workers": 4})
    assert opts == EngineOptions(engine="local", address="auto", workers=4, shard_size=8)
    with pytest.raises(GendetectError, match="valid"):
        engine_options({"shards": 3}, {})


# -- --config on the commands ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("runs") / "data", n_per_class=8, size=64, generators=("g1", "g2")
    )


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_train_with_a_config_file_and_overrides(dataset: Path, tmp_path: Path, suffix: str) -> None:
    config = {
        "data": str(dataset),
        "recipe": {"extractor": "pixel-stats", "detector": {"name": "logistic", "params": {"C": 0.5}}},
        "folds": 2,
        "target_fpr": 0.05,
        "uncertain_fpr": 0.2,
        "name": "from-file",
    }
    path = tmp_path / f"train{suffix}"
    if suffix == ".yaml":
        yaml = pytest.importorskip("yaml")
        path.write_text(yaml.safe_dump(config))
    else:
        path.write_text(json.dumps(config))
    model = tmp_path / "model"
    args = ["train", "--config", str(path), "--set", "recipe.detector.params.C=0.25", "--target-fpr", "0.1"]
    result = CliRunner().invoke(main, [*args, "--no-progress", "-o", str(model)])
    assert result.exit_code == 0, result.output
    saved = json.loads((model / "config.json").read_text())
    assert saved["extractor"]["name"] == "pixel-stats"
    assert saved["detector"]["name"] == "logistic" and saved["detector"]["params"]["C"] == 0.25  # --set over the file
    rule = saved["threshold_rule"]
    assert rule["target_fpr"] == 0.1 and rule["uncertain_fpr"] == 0.2  # the option given wins; the default does not
    assert saved["name"] == "from-file" and saved["training"]["data"] == str(dataset)
    assert saved["training"]["n_images"] == 32


def test_train_config_errors_are_one_line(dataset: Path, tmp_path: Path) -> None:
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"data": str(dataset), "fold": 2}))
    result = CliRunner().invoke(main, ["train", "--config", str(path), "-o", str(tmp_path / "m")])
    assert result.exit_code == 1 and "Unknown train run keys ['fold']" in result.output and "'folds'" in result.output
    result = CliRunner().invoke(main, ["train", "-o", str(tmp_path / "m")])
    assert result.exit_code == 2 and "--data" in result.output


def test_features_extract_with_a_config_file_and_an_override(dataset: Path, tmp_path: Path) -> None:
    path = tmp_path / "features.json"
    store = tmp_path / "store"
    path.write_text(
        json.dumps({"data": str(dataset), "extractor": "npr", "store": str(store), "engine": {"shard_size": 5}})
    )
    result = CliRunner().invoke(
        main, ["features", "extract", "--config", str(path), "--extractor", "pixel-stats", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "32 images stored (32 new)" in result.output
    folders = [p.name for p in store.iterdir() if p.is_dir()]
    assert len(folders) == 1 and folders[0].startswith("pixel-stats")  # the option beat the file's extractor
    shards = list((store / folders[0]).rglob("*.npy"))
    assert len(shards) == 7  # 32 images in shards of 5, from the file's engine section


def test_data_generate_reads_the_config_and_engine_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gendetect import generation

    seen = {}

    def fake_generate(run, out_dir, engine):
        seen.update(run=run, out_dir=out_dir, engine=engine)
        raise GendetectError("stop here")

    monkeypatch.setattr(generation, "generate_dataset", fake_generate)
    captions = tmp_path / "prompts.txt"
    captions.write_text("a cat\na dog\n")
    path = tmp_path / "gen.json"
    path.write_text(
        json.dumps(
            {
                "captions": str(captions),
                "generators": "sd14,sd21",
                "seed": 7,
                "limit": 1,
                "sampling": {"steps": [2, 4]},
                "engine": {"shard_size": 8, "workers": 2},
            }
        )
    )
    args = ["data", "generate", "--config", str(path), "--seed", "9", "--set", "per_caption=3", "--lossless"]
    result = CliRunner().invoke(main, [*args, "--workers", "3", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "stop here" in result.output
    run, engine = seen["run"], seen["engine"]
    assert run.generators == ("sd14", "sd21") and run.limit == 1 and run.sampling.steps == (2, 4)
    assert run.seed == 9 and run.per_caption == 3 and run.format == "lossless"
    assert (engine.shard_size, engine.workers, engine.engine) == (8, 3, "local")


def test_evaluate_with_a_config_file_and_an_override(dataset: Path, tmp_path: Path) -> None:
    path = tmp_path / "protocol.json"
    path.write_text(
        json.dumps(
            {
                "protocol": "cross-generator",
                "data": str(dataset),
                "extractor": {"name": "pixel-stats", "params": {}},
                "detector": {"name": "logistic", "params": {}},
                "n_folds": 2,
                "n_boot": 0,
            }
        )
    )
    report_path = tmp_path / "report.json"
    args = ["evaluate", "--config", str(path), "--set", "detector.params.C=0.5", "-o", str(report_path)]
    result = CliRunner().invoke(main, [*args, "--protocol", "logo"])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["config"]["protocol"] == "logo" and report["config"]["n_folds"] == 2
    assert report["recipe"] == {
        "extractor": report["recipe"]["extractor"],
        "detector": {"name": "logistic", "params": {**report["recipe"]["detector"]["params"], "C": 0.5}},
        "calibration": None,
    }
    assert report["recipe"]["extractor"]["name"] == "pixel-stats"
