"""Dataset generation with tiny random diffusers pipelines (32 px, saved to a tmp folder and loaded back through the
real path: ``diffusers:<folder>`` -> resolve_snapshot -> model_index.json probe -> DiffusionPipeline.from_pretrained)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

pytest.importorskip("diffusers")
pytest.importorskip("torch")

from PIL import Image

from gendetect.data.manifest import describe, read_manifest_metadata
from gendetect.data.readers import read_records
from gendetect.data.records import ImageRecord
from gendetect.errors import GendetectError, UnknownNameError, WeightsNotFoundError
from gendetect.generation import (
    CaptionItem,
    SamplingSpace,
    generate_dataset,
    get_generator,
    list_generators,
    load_generator,
    plan_jobs,
    read_captions,
)
from gendetect.runs import GenerateRun
from gendetect.scale.options import EngineOptions
from tests.diffusers_dummies import save_tiny_sd_pipeline

QUALITIES = (60, 75, 90)
SIZES = ((48, 40), (40, 40), (56, 48))  # (width, height) of the three reals


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny convolutions run fastest on one thread, and a shared 2-core box can make two threads 100x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sd_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture
def coco(tmp_path: Path) -> Path:
    """A COCO captions JSON (3 images x 2 captions), its real JPEGs (different qualities and sizes), instances."""
    images, anns = [], []
    for i, (q, (w, h)) in enumerate(zip(QUALITIES, SIZES)):
        arr = (np.random.default_rng(i).random((h, w, 3)) * 255).astype("uint8")
        Image.fromarray(arr).save(tmp_path / f"{i:012d}.jpg", quality=q)
        images.append({"id": i, "file_name": f"{i:012d}.jpg", "license": 1})
        anns += [
            {"id": 100 + 2 * i, "image_id": i, "caption": f"A photo of thing {i}."},
            {"id": 101 + 2 * i, "image_id": i, "caption": f"Another view of thing {i}."},
        ]
    licenses = [{"id": 1, "name": "Attribution License", "url": "http://creativecommons.org/licenses/by/2.0/"}]
    path = tmp_path / "captions_val2017.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "licenses": licenses}))
    inst = {
        "categories": [
            {"id": 1, "name": "cat", "supercategory": "animal"},
            {"id": 2, "name": "car", "supercategory": "vehicle"},
        ],
        "annotations": [
            {"image_id": 0, "category_id": 1, "area": 10.0},
            {"image_id": 0, "category_id": 2, "area": 50.0},
            {"image_id": 1, "category_id": 1, "area": 5.0},
        ],
    }
    (tmp_path / "instances_val2017.json").write_text(json.dumps(inst))
    return path


def tiny(folder: Path, **kw):
    return get_generator(f"diffusers:{folder}", steps=2, **kw)


def _rows(records: list[ImageRecord]) -> list[dict]:
    out = []
    for r in records:
        row = r.to_row()
        row["path"] = Path(r.path).name
        out.append(row)
    return out


# -- captions ----------------------------------------------------------------------------------------------------
def test_read_coco_captions_with_subjects_and_licence(coco: Path) -> None:
    items = read_captions(coco, instances=coco.parent / "instances_val2017.json")
    assert len(items) == 6
    first = items[0]
    assert (first.caption_id, first.pair_id, first.caption) == ("100", "0", "A photo of thing 0.")
    assert first.real_path == str((coco.parent / "000000000000.jpg").resolve())
    assert first.subject == "vehicle"  # the supercategory covering the larger area
    assert items[2].subject == "animal" and items[4].subject is None
    assert first.license == "Attribution License"
    assert len(read_captions(coco, captions_per_image=1)) == 3


def test_read_tsv_txt_csv(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    tsv = tmp_path / "wit.tsv"
    tsv.write_text(
        "caption\timage_path\tcategory\nA bridge at night\ta.jpg\tarchitecture\nA url\thttp://x/y.jpg\tart\n"
    )
    items = read_captions(tsv)
    assert [(i.caption, i.subject) for i in items] == [("A bridge at night", "architecture"), ("A url", "art")]
    assert items[0].pair_id.startswith("a-") and items[1].pair_id.startswith("y-")  # stem + hash of the path
    assert items[0].real_path == str((tmp_path / "a.jpg").resolve()) and items[1].real_path == "http://x/y.jpg"
    txt = tmp_path / "p.txt"
    txt.write_text("# prompts\na red bus\n\na red bus\na dog\n")
    ids = [i.caption_id for i in read_captions(txt)]
    assert len(ids) == 3 and len(set(ids)) == 3 and ids[1] == ids[0] + "-2"
    assert read_captions(txt)[0].real_path is None
    csv = tmp_path / "p.csv"
    csv.write_text("prompt,subject\na cat,animal\n")
    assert [(i.caption, i.subject) for i in read_captions(csv)] == [("a cat", "animal")]
    (tmp_path / "bad.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(GendetectError, match="no caption column"):
        read_captions(tmp_path / "bad.csv")


def test_table_caption_ids_unique_and_pairs_keyed_on_id_or_path(tmp_path: Path) -> None:
    # several captions per image: image_id is the pair, never the caption id (they used to share id, seed and file)
    csv = tmp_path / "t.csv"
    csv.write_text("image_id,caption,image_path\n7,a cat,a/001.jpg\n7,a cat,a/001.jpg\n8,a dog,b/001.png\n")
    items = read_captions(csv)
    assert len({i.caption_id for i in items}) == 3 and [i.pair_id for i in items] == ["7", "7", "8"]
    (tmp_path / "ids.csv").write_text("id,caption\n5,a\n5,b\n5-2,c\n")
    assert [i.caption_id for i in read_captions(tmp_path / "ids.csv")] == ["5", "5-2", "5-2-2"]
    # without an id column, two files with one stem are two images
    (tmp_path / "p.csv").write_text("caption,image_path\nx,a/001.jpg\ny,b/001.png\nz,./a/001.jpg\n")
    pairs = [i.pair_id for i in read_captions(tmp_path / "p.csv")]
    assert pairs[0] != pairs[1] and pairs[0] == pairs[2]


# -- registry ----------------------------------------------------------------------------------------------------
def test_registry_entries_and_draws() -> None:
    for name in ("sd14", "sd15", "sd20", "sd21", "sdxl", "pixart", "kandinsky", "deepfloyd-if", "glide"):
        assert name in list_generators()
    spec = get_generator(
        "sd21", steps=(10, 20), guidance=(2.0, 8.0), scheduler=("ddim", "euler"), resolution=[256, 512]
    )
    draws = [spec.draw(s) for s in range(20)]
    assert draws[3] == spec.draw(3)
    assert all(10 <= d["steps"] <= 20 and 2.0 <= d["guidance"] <= 8.0 for d in draws)
    assert {d["scheduler"] for d in draws} == {"ddim", "euler"} and {d["height"] for d in draws} == {256, 512}
    assert get_generator("diffusers:org/repo@v1").revision == "v1"
    with pytest.raises(UnknownNameError, match="sd14"):
        get_generator("sd-14")
    with pytest.raises(UnknownNameError, match="scheduler"):
        get_generator("sd14", scheduler="nope").validate()


def test_glide_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "glide_text2im", None)
    with pytest.raises(ImportError, match="pip install git\\+https://github.com/openai/glide-text2im"):
        load_generator(get_generator("glide"))


def test_missing_weights_offline_raise_with_fetch_command() -> None:
    with pytest.raises(WeightsNotFoundError, match="hf download CompVis/stable-diffusion-v1-4"):
        load_generator(get_generator("sd14"))


# -- builds ------------------------------------------------------------------------------------------------------
def test_build_from_coco_manifest_and_determinism(coco: Path, tiny_sd: Path, tmp_path: Path) -> None:
    gen = tiny(tiny_sd)
    res = generate_dataset(
        GenerateRun(captions=coco, generators=[gen], per_caption=1), tmp_path / "out", EngineOptions(shard_size=4)
    )
    recs = res.records
    assert len(recs) == 3 + 6 and all(r.status == "ok" for r in recs)
    reals, fakes = [r for r in recs if r.label == "real"], [r for r in recs if r.label == "fake"]
    assert {r.generator for r in reals} == {"real"} and {r.generator for r in fakes} == {gen.name}
    f = fakes[0]
    assert f.caption == "A photo of thing 0." and f.source == "coco:captions_val2017"
    assert f.extra["pair_id"] == "0" and f.extra["real_path"] == reals[0].path
    assert f.extra["model_id"] == str(tiny_sd.resolve()) and f.extra["pipeline_class"] == "StableDiffusionPipeline"
    assert f.extra["steps"] == 2 and f.extra["scheduler"] == "default" and f.extra["guidance"] == 7.5
    assert f.extra["generated_size"] == [32, 32] and isinstance(f.extra["seed"], int)
    assert reals[0].extra["license"] == "Attribution License"
    assert f.split == reals[0].split  # a real and its fakes share a split
    assert Path(f.path).is_file() and Path(f.path).parent.name == "shard-00001"  # shard 0 holds the reals
    # the manifest is a training set: read back through the normal reader
    back = read_records(res.manifest)
    assert [(r.label, r.generator, r.caption) for r in back] == [(r.label, r.generator, r.caption) for r in recs]
    assert read_manifest_metadata(res.manifest)["generation"]["format_applied"] == "match-real"
    # seeds come from (caption id, generator, k): the same build twice -> the same bytes
    again = generate_dataset(
        GenerateRun(captions=coco, generators=[gen], per_caption=1), tmp_path / "out2", EngineOptions(shard_size=4)
    )
    assert _rows(again.records) == _rows(recs)
    assert Path(again.records[5].path).read_bytes() == Path(recs[5].path).read_bytes()
    # a different seed changes the fakes
    other = generate_dataset(
        GenerateRun(captions=coco, generators=[gen], per_caption=1, seed=1),
        tmp_path / "out3",
        EngineOptions(shard_size=4),
    )
    assert other.records[5].sha256 != recs[5].sha256


def test_resume_after_kill(coco: Path, tiny_sd: Path, tmp_path: Path) -> None:
    gen = tiny(tiny_sd)
    ref = generate_dataset(
        GenerateRun(captions=coco, generators=[gen], per_caption=2), tmp_path / "ref", EngineOptions(shard_size=4)
    )

    def kill(index: int) -> None:
        if index == 1:
            raise KeyboardInterrupt("killed")

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(
            GenerateRun(captions=coco, generators=[gen], per_caption=2),
            out,
            EngineOptions(shard_size=4),
            _on_shard=kill,
        )
    done = sorted(p.name for p in (out / "shards").glob("*.done.json"))
    assert done == ["shard-00000.done.json"] and not (out / "manifest.parquet").exists()
    seen: list[int] = []
    res = generate_dataset(
        GenerateRun(captions=coco, generators=[gen], per_caption=2),
        out,
        EngineOptions(shard_size=4),
        _on_shard=seen.append,
    )
    assert seen == [1, 2, 3]  # shard 0 is not redone
    assert len(res.records) == 3 + 12
    assert len({r.extra["job_id"] for r in res.records}) == len(res.records)  # no duplicates
    assert _rows(res.records) == _rows(ref.records)
    n_files = sum(1 for p in (out / "images").rglob("*") if p.is_file())
    assert n_files == 12
    with pytest.raises(GendetectError, match="another run"):
        generate_dataset(
            GenerateRun(captions=coco, generators=[gen], per_caption=2, seed=5), out, EngineOptions(shard_size=4)
        )


def test_format_matching_and_describe(coco: Path, tiny_sd: Path, tmp_path: Path) -> None:
    gen = tiny(tiny_sd)
    matched = generate_dataset(
        GenerateRun(captions=coco, generators=[gen], format="match-real"), tmp_path / "m", EngineOptions(shard_size=16)
    )
    by_pair = {r.extra["pair_id"]: r for r in matched.records if r.label == "real"}
    for f in (r for r in matched.records if r.label == "fake"):
        real = by_pair[f.extra["pair_id"]]
        assert (f.format, f.jpeg_quality, f.width, f.height) == ("JPEG", real.jpeg_quality, real.width, real.height)
    assert sorted(r.jpeg_quality for r in by_pair.values()) == list(QUALITIES)
    assert describe(matched.records)["warnings"] == []

    lossless = generate_dataset(
        GenerateRun(captions=coco, generators=[gen], format="lossless"), tmp_path / "l", EngineOptions(shard_size=16)
    )
    assert {(r.label, r.format) for r in lossless.records} == {("real", "PNG"), ("fake", "PNG")}
    real = next(r for r in lossless.records if r.label == "real")
    assert Path(real.path).is_relative_to(tmp_path / "l") and real.extra["original_path"].endswith(".jpg")
    assert describe(lossless.records)["warnings"] == []

    # a set built the usual way (JPEG reals, PNG fakes of another size) is flagged
    naive = [r for r in matched.records if r.label == "real"] + [
        ImageRecord(f"/x/{i}.png", "fake", "g", format="PNG", width=32, height=32, mode="RGB", has_exif=False)
        for i in range(6)
    ]
    warnings = " ".join(describe(naive)["warnings"])
    assert "file format" in warnings and "image size" in warnings


def _save(path: Path, size: tuple[int, int], seed: int, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype("uint8")).save(path, **kw)
    return path


def _assert_fakes_match_reals(records: list[ImageRecord]) -> None:
    reals = {r.extra["pair_id"]: r for r in records if r.label == "real"}
    fakes = [r for r in records if r.label == "fake"]
    assert all(r.status == "ok" for r in records) and fakes
    for f in fakes:
        real = reals[f.extra["pair_id"]]
        assert (f.format, f.jpeg_quality, f.width, f.height) == (
            real.format,
            real.jpeg_quality,
            real.width,
            real.height,
        )
    assert describe(records)["warnings"] == []


def test_captions_of_one_image_and_same_stem_reals_keep_their_own_files(tiny_sd: Path, tmp_path: Path) -> None:
    _save(tmp_path / "a" / "001.jpg", (40, 48), 0, quality=80)
    _save(tmp_path / "b" / "001.png", (48, 40), 1)
    csv = tmp_path / "c.csv"
    csv.write_text("image_id,caption,image_path\n7,a red cat,a/001.jpg\n7,a cat on a mat,a/001.jpg\n,a dog,b/001.png\n")
    res = generate_dataset(
        GenerateRun(captions=csv, generators=[tiny(tiny_sd)]), tmp_path / "out", EngineOptions(shard_size=16)
    )
    reals = [r for r in res.records if r.label == "real"]
    fakes = [r for r in res.records if r.label == "fake"]
    assert len(reals) == 2 and {Path(r.path).name for r in reals} == {"001.jpg", "001.png"}
    assert len(fakes) == 3 and len({r.path for r in fakes}) == 3 and all(Path(r.path).is_file() for r in fakes)
    assert len({r.extra["seed"] for r in fakes}) == 3
    assert sorted(r.format for r in fakes) == ["JPEG", "JPEG", "PNG"]
    _assert_fakes_match_reals(res.records)


def test_url_and_webp_reals_share_their_fakes_format(tiny_sd: Path, tmp_path: Path) -> None:
    jpg = _save(tmp_path / "src" / "photo.jpg", (44, 36), 2, quality=70)
    _save(tmp_path / "c.webp", (40, 48), 3, quality=80)
    tsv = tmp_path / "wit.tsv"
    tsv.write_text(f"caption\timage_url\nfrom a url\t{jpg.as_uri()}\na webp\tc.webp\n")
    gen = tiny(tiny_sd)
    res = generate_dataset(GenerateRun(captions=tsv, generators=[gen]), tmp_path / "m", EngineOptions(shard_size=16))
    reals = {Path(r.extra["original_path"]).suffix: r for r in res.records if r.label == "real"}
    assert (reals[".jpg"].format, reals[".jpg"].jpeg_quality) == ("JPEG", 70)  # fetched into the output, as it was
    assert reals[".webp"].format == "PNG" and Path(reals[".webp"].path).is_relative_to(tmp_path / "m")
    assert all(Path(r.path).is_relative_to(tmp_path / "m") for r in reals.values())
    assert read_manifest_metadata(res.manifest)["generation"]["format_applied"] == "match-real"
    _assert_fakes_match_reals(res.records)
    lossless = generate_dataset(
        GenerateRun(captions=tsv, generators=[gen], format="lossless"), tmp_path / "l", EngineOptions(shard_size=16)
    )
    assert {r.format for r in lossless.records} == {"PNG"}
    assert sum(1 for p in (tmp_path / "l" / "images").rglob("*") if p.is_file()) == 4  # no raw download left over
    _assert_fakes_match_reals(lossless.records)


def test_describe_ks_on_quality_and_pixel_counts() -> None:
    rng = np.random.default_rng(0)

    def rec(label: str, q: int, side: int) -> ImageRecord:
        return ImageRecord("/x", label, label, format="JPEG", width=side, height=side, jpeg_quality=q, mode="RGB")

    reals = [rec("real", int(q), int(s)) for q, s in zip(rng.integers(70, 100, 60), rng.integers(400, 600, 60))]
    fakes = [rec("fake", int(q), int(s)) for q, s in zip(rng.integers(78, 86, 60), rng.integers(480, 520, 60))]
    warnings = describe(reals + fakes)["warnings"]
    assert any("KS" in w and "JPEG quality" in w for w in warnings)
    assert any("KS" in w and "pixel counts" in w for w in warnings)
    assert not any("KS" in w for w in describe(reals + reals)["warnings"])


def test_systematic_mode_records_and_skips_failing_models(coco: Path, tiny_sd: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text('{"_class_name": "StableDiffusionImg2ImgPipeline"}')
    no_index = tmp_path / "no-index"
    no_index.mkdir()
    models = tmp_path / "models.txt"
    models.write_text(f"# community models\n{tiny_sd}\n{broken}\n{no_index}\nnobody/no-such-model\n{tiny_sd}\n")
    space = SamplingSpace(steps=(1, 3), guidance=(1.0, 9.0), scheduler=("default", "ddim", "euler", "dpm++2m"))
    res = generate_dataset(
        GenerateRun(captions=coco, models=models, per_model=3, sampling=space),
        tmp_path / "out",
        EngineOptions(shard_size=3),
    )
    fakes = [r for r in res.records if r.label == "fake"]
    assert len(fakes) == 4 * 3  # the duplicate line is dropped
    ok = [r for r in fakes if r.status == "ok"]
    assert {r.generator for r in ok} == {f"diffusers:{tiny_sd}"} and len(ok) == 3
    assert {(r.extra["steps"], r.extra["scheduler"], r.extra["guidance"]) for r in ok}.__len__() > 1  # randomised
    assert set(res.failed_models) == {f"diffusers:{p}" for p in (broken, no_index, "nobody/no-such-model")}
    assert "not text-to-image" in res.failed_models[f"diffusers:{broken}"]
    assert "model_index.json" in res.failed_models[f"diffusers:{no_index}"]
    assert "offline" in res.failed_models["diffusers:nobody/no-such-model"]
    failures = pq.read_table(tmp_path / "out" / "failures.parquet").to_pylist()
    assert len(failures) == 9 and all(f["status"] == "error" for f in failures)


def test_systematic_model_failing_every_image_is_a_failed_model(
    coco: Path, tiny_sd: Path, tmp_path: Path, monkeypatch
) -> None:
    from gendetect.generation import generators as gmod

    real_generate = gmod.DiffusersGenerator.generate

    def broken_b(self, prompts, seeds, **kw):
        if self.spec.name.endswith("tiny-b"):
            raise RuntimeError("expected all tensors to be on the same device")
        return real_generate(self, prompts, seeds, **kw)

    monkeypatch.setattr(gmod.DiffusersGenerator, "generate", broken_b)
    (tmp_path / "tiny-b").symlink_to(tiny_sd, target_is_directory=True)
    res = generate_dataset(
        GenerateRun(captions=coco, models=[str(tiny_sd), str(tmp_path / "tiny-b")], per_model=2), tmp_path / "out"
    )
    assert list(res.failed_models) == [f"diffusers:{tmp_path / 'tiny-b'}"]
    why = res.failed_models[f"diffusers:{tmp_path / 'tiny-b'}"]
    assert "every image failed" in why and "same device" in why
    assert res.counts["fakes"] == 2 and res.counts["failed_models"] == 1


def test_generator_in_both_generators_and_models_is_refused(coco: Path, tiny_sd: Path, tmp_path: Path) -> None:
    with pytest.raises(GendetectError, match="both as a generator and in the models"):
        generate_dataset(
            GenerateRun(captions=coco, generators=[f"diffusers:{tiny_sd}"], models=[str(tiny_sd)]), tmp_path / "out"
        )
    with pytest.raises(GendetectError, match="given twice"):
        generate_dataset(
            GenerateRun(captions=coco, generators=f"diffusers:{tiny_sd},diffusers:{tiny_sd}"), tmp_path / "out"
        )
    assert not (tmp_path / "out").exists()


def test_systematic_captions_stay_when_captions_are_added() -> None:
    spec = get_generator("diffusers:org/model", steps=(10, 20))
    caps = [CaptionItem(f"c{i}", f"prompt {i}", "txt:p") for i in range(40)]

    def sys_jobs(captions: list[CaptionItem]) -> dict[str, dict]:
        jobs = plan_jobs(captions, [], systematic=[spec], per_model=8)
        return {j["id"]: j for j in jobs}

    before, after = sys_jobs(caps), sys_jobs(caps + [CaptionItem(f"n{i}", f"new {i}", "txt:p") for i in range(4)])
    assert len(before) == len(after) == 8
    new = [j for j in after.values() if j["caption_id"].startswith("n")]
    kept = [i for i in after if i in before]
    assert len(kept) == 8 - len(new) and all(after[i] == before[i] for i in kept)  # the others are unchanged
    with pytest.raises(GendetectError, match="caption ids must be unique"):
        plan_jobs(caps + caps[:1], [spec])


def test_nsfw_and_oom_are_rows_not_crashes(coco: Path, tiny_sd: Path, tmp_path: Path, monkeypatch) -> None:
    from gendetect.generation import generators as gmod

    real_generate = gmod.DiffusersGenerator.generate

    def flaky(self, prompts, seeds, **kw):
        if any("thing 1" in p for p in prompts):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")
        outs = real_generate(self, prompts, seeds, **kw)
        for p, o in zip(prompts, outs):
            o.nsfw = "Another view of thing 2" in p
        return outs

    monkeypatch.setattr(gmod.DiffusersGenerator, "generate", flaky)
    res = generate_dataset(
        GenerateRun(captions=coco, generators=[tiny(tiny_sd)], batch_size=4),
        tmp_path / "out",
        EngineOptions(shard_size=16),
    )
    errors = {r.caption: r.error for r in res.records if r.status == "error"}
    assert set(errors) == {"A photo of thing 1.", "Another view of thing 1.", "Another view of thing 2."}
    assert errors["A photo of thing 1."].startswith("out of memory") and "nsfw" in errors["Another view of thing 2."]
    assert res.counts["fakes"] == 3


def test_cli_generate_and_list(coco: Path, tiny_sd: Path, tmp_path: Path) -> None:
    from gendetect.cli import main

    runner = CliRunner()
    out = tmp_path / "out"
    args = [
        "data",
        "generate",
        "--captions",
        str(coco),
        "--generators",
        f"diffusers:{tiny_sd}",
        "--per-caption",
        "1",
        "--limit",
        "2",
        "--lossless",
        "--no-progress",
        "-o",
        str(out),
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    recs = read_records(out / "manifest.parquet")
    assert len(recs) == 1 + 2 and {r.format for r in recs} == {"PNG"}
    listing = runner.invoke(main, ["list", "generators", "sd*"])
    assert listing.exit_code == 0 and "CompVis/stable-diffusion-v1-4" in listing.output
    bad = runner.invoke(main, ["data", "generate", "--captions", str(coco), "--generators", "sd-14", "-o", str(out)])
    assert bad.exit_code != 0 and "Did you mean" in bad.output
    # a named generator whose weights are missing stops the run with the fetch command (systematic mode skips it)
    args = ["data", "generate", "--captions", str(coco), "--generators", "sd14", "-o", str(tmp_path / "o2")]
    missing = runner.invoke(main, [*args, "--no-progress"])
    assert missing.exit_code != 0 and "hf download CompVis/stable-diffusion-v1-4" in missing.output
