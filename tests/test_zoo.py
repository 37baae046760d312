"""The zoo of published detectors without their real weights: format-faithful checkpoints (the official key names
and wrappers, random values, tiny depth, saved as the authors save them), strict converters, end-to-end scans of
exported model directories, independent reference forward passes, raw-URL weights, and the offline errors.

Real weights: ``pytest -m slow tests/test_zoo.py`` runs each entry whose files are in the cache
(``gendetect models pull NAME``) on a few images of ``../shared/data``."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

torch = pytest.importorskip("torch", reason="the 'clip' extra (torch) is not installed")
pytest.importorskip("timm", reason="the 'clip' extra (timm) is not installed")
torchvision = pytest.importorskip("torchvision", reason="torchvision is not installed")

from torch.nn import functional as F  # noqa: E402
from torchvision import transforms as T  # noqa: E402
from torchvision.models.resnet import Bottleneck, ResNet  # noqa: E402

from gendetect.cli import main  # noqa: E402
from gendetect.errors import ModelFormatError, UnknownNameError, WeightsNotFoundError  # noqa: E402
from gendetect.hub import fetch_url, resolve_url, url_cache_root  # noqa: E402
from gendetect.pipeline import load_model  # noqa: E402
from gendetect.zoo import ZOO, export_model, get_entry, list_entries  # noqa: E402

from .conftest import SHARED_DATA  # noqa: E402

IMAGENET = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
UNIVFD_HEAD = SHARED_DATA.parent / "weights" / "univfd" / "fc_weights.pth"


def _images(tmp_path: Path, sizes: tuple[tuple[int, int], ...] = ((70, 90), (64, 64))) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate(sizes):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def _randomise(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Random values in every float tensor (BatchNorm statistics stay positive), as a trained checkpoint has."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for k, v in state.items():
        if not v.is_floating_point():
            out[k] = v
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(v.shape, generator=g) * 0.1
    return out


def _scan_dir(model_dir: Path, images: list[Path]) -> list[dict]:
    result = CliRunner().invoke(main, ["scan", *map(str, images), "--model", str(model_dir), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["status"] for r in rows] == ["ok"] * len(images)
    return rows


# -- the registry and the CLI ----------------------------------------------------------------------------------
def test_models_list_show_and_unknown_names() -> None:
    assert {"univfd", "npr", "cnndetection", "cnndetection-0.1", "commfor"} <= set(list_entries())
    result = CliRunner().invoke(main, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(listed) == set(ZOO.list()) and all(r["cached"] == "no" for r in listed.values())
    shown = CliRunner().invoke(main, ["models", "show", "npr"])
    assert shown.exit_code == 0 and "unverified:" in shown.output and "NPR.pth" in shown.output
    assert "cached checkpoint: no" in shown.output
    for name in ZOO.list():  # every card names its licence, preprocessing and what was (not) verified
        e = get_entry(name)
        assert e.licence and e.preprocessing and e.verified and e.unverified and e.files
    with pytest.raises(UnknownNameError, match="npr"):
        get_entry("nrp")


def test_the_readme_documents_the_zoo() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    commands = ("models list", "models show", "models pull", "models export", "evaluate --compare-models")
    assert "## Published detectors (model zoo)" in readme
    for command in commands:
        assert f"gendetect {command}" in readme, command
    for name in ZOO.list():  # every entry has a row in the table
        assert f"| `{name}` |" in readme, name


@pytest.mark.parametrize("name", sorted(ZOO.list()))
def test_offline_scan_fails_fast_naming_the_missing_weights(name: str, tmp_path: Path) -> None:
    image = _images(tmp_path, ((32, 32),))[0]
    t0 = time.perf_counter()
    result = CliRunner().invoke(main, ["scan", str(image), "--model", name])
    assert time.perf_counter() - t0 < 15
    assert result.exit_code != 0
    for f in get_entry(name).files:
        assert Path(f.filename).name in result.output, result.output
        if f.url:
            assert f.url in result.output and "curl -L" in result.output and "sha256sum" in result.output
    assert f"gendetect models pull {name}" in result.output
    with pytest.raises(WeightsNotFoundError):
        load_model(name)


def test_pull_honours_offline_mode_and_names_the_url() -> None:
    result = CliRunner().invoke(main, ["models", "pull", "npr"])
    assert result.exit_code != 0 and "offline" in result.output and get_entry("npr").files[0].url in result.output


def test_a_network_never_runs_without_its_weights(tmp_path: Path) -> None:
    from gendetect.features import create_extractor

    ext = create_extractor("zoo-net", arch="npr-resnet", weights=str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsNotFoundError, match="missing.pth"):
        ext.extract_batch([Image.new("RGB", (32, 32))])


# -- raw URLs with a sha256 -------------------------------------------------------------------------------------
def test_raw_url_files_resolve_from_the_cache_and_verify_sha256(tmp_path: Path) -> None:
    src = tmp_path / "published.bin"
    src.write_bytes(b"weights" * 100)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    url = src.as_uri()  # file:// goes through urllib without a socket
    with pytest.raises(WeightsNotFoundError, match="curl -L") as e:
        resolve_url(url, filename="x/published.bin", sha256=digest)
    assert str(url_cache_root() / "x" / "published.bin") in str(e.value) and digest in str(e.value)
    with pytest.raises(WeightsNotFoundError, match="offline"):
        fetch_url(url, filename="x/published.bin", sha256=digest)  # HF_HUB_OFFLINE=1 in every test
    got = fetch_url(url, filename="x/published.bin", sha256=digest, offline=False)
    assert got.read_bytes() == src.read_bytes() and resolve_url(url, filename="x/published.bin", sha256=digest) == got
    with pytest.raises(WeightsNotFoundError, match="expected"):
        fetch_url(url, filename="x/other.bin", sha256="0" * 64, offline=False)
    assert not list((url_cache_root() / "x").glob("*other.bin*"))  # a bad download never lands, nor its part file
    with pytest.raises(WeightsNotFoundError, match="failed"):
        fetch_url((tmp_path / "gone.bin").as_uri(), filename="x/gone.bin", offline=False)
    assert not list((url_cache_root() / "x").glob("*gone.bin*"))
    got.write_bytes(b"tampered")
    with pytest.raises(WeightsNotFoundError, match="sha256"):
        resolve_url(url, filename="x/published.bin", sha256=digest)


# -- NPR ---------------------------------------------------------------------------------------------------------
def _official_npr_state(layers: tuple[int, int] = (1, 1)) -> dict[str, torch.Tensor]:
    """NPR's key layout built from torchvision's ResNet, not from our code: stem conv1 made 3x3, layer1/layer2
    kept, layer3/layer4/fc dropped, fc1 512 -> 1 added; a bare state dict, as NPR.pth is."""
    tv = ResNet(Bottleneck, [layers[0], layers[1], 1, 1]).state_dict()
    state = {k: v for k, v in tv.items() if k.startswith(("bn1.", "layer1.", "layer2."))}
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    state["fc1.weight"], state["fc1.bias"] = torch.zeros(1, 512), torch.zeros(1)
    return _randomise(state)


def _npr_reference(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """NPR's forward written from the paper with torchvision modules carrying the checkpoint's weights."""
    tv = ResNet(Bottleneck, [1, 1, 1, 1])
    tv.load_state_dict({k: v for k, v in state.items() if k.startswith(("bn1.", "layer1.", "layer2."))}, strict=False)
    tv.eval()
    half = F.interpolate(x, scale_factor=0.5, mode="nearest")
    npr = x - F.interpolate(half, scale_factor=2, mode="nearest")
    h = F.conv2d(npr * 2 / 3, state["conv1.weight"], stride=2, padding=1)
    h = tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(h)))))
    return F.linear(h.mean(dim=(2, 3)), state["fc1.weight"], state["fc1.bias"])


def test_npr_official_checkpoint_converts_strictly_and_scans(tmp_path: Path) -> None:
    state = _official_npr_state()
    torch.save(state, tmp_path / "NPR.pth")
    entry = get_entry("npr").with_params(arch_params={"layers": [1, 1]}, resize=64)
    out = export_model(entry, tmp_path / "npr", paths={"checkpoint": tmp_path / "NPR.pth"})
    assert (out / "network.safetensors").is_file() and "unverified" in (out / "MODEL_CARD.md").read_text()
    images = _images(tmp_path)
    rows = _scan_dir(out, images)
    with torch.no_grad():  # the authors' transform: Resize((64, 64)) (256 in the real entry), ImageNet Normalize
        x = torch.stack([IMAGENET(T.ToTensor()(T.Resize((64, 64))(Image.open(p).convert("RGB")))) for p in images])
        ref = torch.sigmoid(_npr_reference(state, x)).ravel().numpy()
    np.testing.assert_allclose([r["p_fake"] for r in rows], ref, rtol=1e-4, atol=1e-5)

    broken = dict(state)
    broken["fc2.weight"] = torch.zeros(1)
    torch.save(broken, tmp_path / "extra.pth")
    with pytest.raises(ModelFormatError, match="unexpected"):
        export_model(entry, tmp_path / "x", paths={"checkpoint": tmp_path / "extra.pth"})
    del broken["fc2.weight"], broken["layer2.0.conv3.weight"]
    torch.save(broken, tmp_path / "missing.pth")
    with pytest.raises(ModelFormatError, match="missing"):
        export_model(entry, tmp_path / "y", paths={"checkpoint": tmp_path / "missing.pth"})
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "dp.pth")  # DataParallel's prefix
    export_model(entry, tmp_path / "dp", paths={"checkpoint": tmp_path / "dp.pth"})


def test_npr_without_resize_crops_odd_sides_to_even(tmp_path: Path) -> None:
    torch.save(_official_npr_state(), tmp_path / "NPR.pth")
    entry = get_entry("npr").with_params(arch_params={"layers": [1, 1]}, resize=None, even=True)
    out = export_model(entry, tmp_path / "npr", paths={"checkpoint": tmp_path / "NPR.pth"})
    _scan_dir(out, _images(tmp_path, ((33, 47), (40, 40))))


# -- CNNDetection ----------------------------------------------------------------------------------------------
def test_cnndetection_official_checkpoint_matches_the_demo_forward(tmp_path: Path) -> None:
    official = ResNet(Bottleneck, [1, 1, 1, 1], num_classes=1)  # resnet50(num_classes=1) at depth 1 per stage
    official.load_state_dict(_randomise(official.state_dict()))
    official.eval()
    checkpoint = {"model": official.state_dict(), "optimizer": {"state": {}, "param_groups": []}, "total_steps": 7}
    torch.save(checkpoint, tmp_path / "blur_jpg_prob0.5.pth")
    entry = get_entry("cnndetection").with_params(arch_params={"layers": [1, 1, 1, 1]})
    out = export_model(entry, tmp_path / "cnn", paths={"checkpoint": tmp_path / "blur_jpg_prob0.5.pth"})
    images = _images(tmp_path)  # two sizes: no resize, no crop, one image at a time
    rows = _scan_dir(out, images)
    demo = T.Compose([T.ToTensor(), IMAGENET])  # demo.py's transform, whole image
    with torch.no_grad():
        ref = [official(demo(Image.open(p).convert("RGB"))[None]).sigmoid().item() for p in images]
    np.testing.assert_allclose([r["p_fake"] for r in rows], ref, rtol=1e-4, atol=1e-6)
    assert rows[0]["model"] == "cnndetection"


# -- Community Forensics ---------------------------------------------------------------------------------------
def test_commfor_hub_checkpoint_matches_its_transform(tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    vit = timm.create_model("test_vit", pretrained=False, num_classes=1)  # 160 px stand-in for ViT-S/16 384
    vit.load_state_dict(_randomise(vit.state_dict()))
    vit.eval()
    save_file({f"vit.{k}": v.contiguous() for k, v in vit.state_dict().items()}, str(tmp_path / "model.safetensors"))
    entry = get_entry("commfor").with_params(arch_params={"model": "test_vit"}, resize=176, crop=160)
    out = export_model(entry, tmp_path / "commfor", paths={"checkpoint": tmp_path / "model.safetensors"})
    images = _images(tmp_path, ((150, 200), (300, 180)))
    rows = _scan_dir(out, images)
    official = T.Compose([T.Resize(176), T.CenterCrop(160), T.ToTensor(), IMAGENET])  # models.py, scaled down
    with torch.no_grad():
        ref = [torch.sigmoid(vit(official(Image.open(p).convert("RGB"))[None])).item() for p in images]
    np.testing.assert_allclose([r["p_fake"] for r in rows], ref, rtol=1e-4, atol=1e-6)


# -- UnivFD ------------------------------------------------------------------------------------------------------
def test_univfd_head_on_tiny_clip_is_the_linear_head(tmp_path: Path) -> None:
    pytest.importorskip("open_clip", reason="open_clip_torch is not installed")
    from gendetect.features import create_extractor

    dim = create_extractor("openclip", model="test-tiny-clip", pretrained="random").dim
    fc = torch.nn.Linear(dim, 1)
    torch.save(fc.state_dict(), tmp_path / "fc_weights.pth")  # validate.py: model.fc.load_state_dict(...)
    entry = get_entry("univfd").with_params(model="test-tiny-clip", pretrained="random")
    out = export_model(entry, tmp_path / "univfd", paths={"head": tmp_path / "fc_weights.pth"})
    model = load_model(out)
    ims = [Image.open(p).convert("RGB") for p in _images(tmp_path)]
    feats = model.extractor.extract_batch(ims)
    w, b = fc.weight.detach().double().numpy(), fc.bias.detach().double().numpy()
    np.testing.assert_allclose(model.predict_proba(ims), 1 / (1 + np.exp(-(feats @ w.T + b).ravel())), rtol=1e-6)
    torch.save({"weight": torch.zeros(2, dim), "bias": torch.zeros(2)}, tmp_path / "two.pth")
    with pytest.raises(ModelFormatError, match="1-output"):
        export_model(entry, tmp_path / "bad", paths={"head": tmp_path / "two.pth"})


@pytest.mark.shared_data
def test_the_real_univfd_head_converts_bit_for_bit(tmp_path: Path) -> None:
    if not UNIVFD_HEAD.exists():
        pytest.skip(f"{UNIVFD_HEAD} is absent")
    entry = get_entry("univfd")
    assert hashlib.sha256(UNIVFD_HEAD.read_bytes()).hexdigest() == entry.files[0].sha256
    out = export_model(entry, tmp_path / "univfd", paths={"head": UNIVFD_HEAD})
    from safetensors.numpy import load_file

    official = torch.load(UNIVFD_HEAD, map_location="cpu", weights_only=True)
    state = load_file(str(out / "model.safetensors"))
    np.testing.assert_array_equal(state["coef_"], official["weight"].double().numpy().ravel())
    np.testing.assert_array_equal(state["intercept_"], official["bias"].double().numpy())
    config = json.loads((out / "config.json").read_text())
    assert config["extractor"]["params"]["model"] == "ViT-L-14" and config["threshold"] == 0.5
    with pytest.raises(WeightsNotFoundError, match="ViT-L-14"):  # the backbone is not here: no random weights
        load_model(out)


# -- compare side by side ----------------------------------------------------------------------------------------
def test_evaluate_compare_models_reports_each_and_survives_missing_weights(tmp_path: Path) -> None:
    from gendetect.data.synthetic import make_synthetic_dataset

    root = make_synthetic_dataset(tmp_path / "data", n_per_class=4, size=64, generators=("g1", "g2"))
    torch.save(_official_npr_state(), tmp_path / "NPR.pth")
    entry = get_entry("npr").with_params(arch_params={"layers": [1, 1]}, resize=64)
    tiny = export_model(entry, tmp_path / "tiny-npr", paths={"checkpoint": tmp_path / "NPR.pth"})
    result = CliRunner().invoke(
        main, ["evaluate", "--compare-models", f"default,{tiny},npr", "--data", str(root), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    models = report["models"]
    assert list(models) == ["default", str(tiny), "npr"]
    assert "not on this machine" in models["npr"]["error"]
    for name in ("default", str(tiny)):
        m = models[name]
        assert set(m["per_generator"]) == {"g1", "g2"} and 0 <= m["auc"] <= 1 and 0 <= m["fpr_real"] <= 1
    assert models["default"]["auc"] > 0.9  # the synthetic set is easy for the forensic default
    assert report["tables"][1]["columns"] == ["model", "g1", "g2"]


# -- real weights (deselected by default) ------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(ZOO.list()))
def test_real_weights_give_fakes_higher_p_fake(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    real_cache = os.environ.get("GENDETECT_REAL_CACHE")  # the autouse fixture empties GENDETECT_CACHE
    if real_cache:
        monkeypatch.setenv("GENDETECT_CACHE", real_cache)
    entry = get_entry(name)
    if not all(entry.status().values()):
        pytest.skip(f"{name}: weights not in the cache (gendetect models pull {name}; GENDETECT_REAL_CACHE=DIR)")
    from gendetect.data.readers import read_records

    model = load_model(name)
    records = read_records(SHARED_DATA / "cnndetection-gallery")  # GAN-era fakes: every entry should see them
    fakes = [r.path for r in records if r.label == "fake"][::20][:8]
    reals = [r.path for r in records if r.label == "real"][::20][:8]
    p_fake = model.predict_proba([Image.open(p).convert("RGB") for p in fakes])
    p_real = model.predict_proba([Image.open(p).convert("RGB") for p in reals])
    assert np.isfinite(p_fake).all() and p_fake.mean() > p_real.mean()


# -- CoDE ----------------------------------------------------------------------------------------------------------
def _official_code_files(folder: Path, hidden: int = 32, layers: int = 2, heads: int = 2) -> dict[str, Path]:
    """aimagelab/CoDE's files at a tiny size: a ViTModel config.json, model.safetensors with the key names of the
    2024 upload (transformers 4.x: encoder.layer.N.attention.attention.query...), and the joblib-pickled
    LogisticRegression head, as linear_training.py saves it."""
    import joblib
    from safetensors.torch import save_file
    from sklearn.linear_model import LogisticRegression

    folder.mkdir(parents=True, exist_ok=True)
    inter, patch, size = 2 * hidden, 8, 32
    config = {
        "model_type": "vit",
        "architectures": ["ViTModel"],
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": inter,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "image_size": size,
        "patch_size": patch,
        "num_channels": 3,
        "qkv_bias": True,
    }
    (folder / "config.json").write_text(json.dumps(config))
    g = torch.Generator().manual_seed(0)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.2

    n_tokens = (size // patch) ** 2 + 1
    sd = {
        "embeddings.cls_token": r(1, 1, hidden),
        "embeddings.position_embeddings": r(1, n_tokens, hidden),
        "embeddings.patch_embeddings.projection.weight": r(hidden, 3, patch, patch),
        "embeddings.patch_embeddings.projection.bias": r(hidden),
        "layernorm.weight": 1 + r(hidden),
        "layernorm.bias": r(hidden),
        "pooler.dense.weight": r(hidden, hidden),
        "pooler.dense.bias": r(hidden),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            sd[f"{p}attention.attention.{n}.weight"] = r(hidden, hidden)
            sd[f"{p}attention.attention.{n}.bias"] = r(hidden)
        sd[p + "attention.output.dense.weight"], sd[p + "attention.output.dense.bias"] = r(hidden, hidden), r(hidden)
        sd[p + "intermediate.dense.weight"], sd[p + "intermediate.dense.bias"] = r(inter, hidden), r(inter)
        sd[p + "output.dense.weight"], sd[p + "output.dense.bias"] = r(hidden, inter), r(hidden)
        for n in ("layernorm_before", "layernorm_after"):
            sd[f"{p}{n}.weight"], sd[f"{p}{n}.bias"] = 1 + r(hidden), r(hidden)
    save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, hidden)), np.r_[np.zeros(20), np.ones(20)].astype(int)
    head = folder / "linear_tot_classifier_epoch-32.sav"
    joblib.dump(LogisticRegression(C=0.316, class_weight="balanced").fit(X, y), head)
    return {"config": folder / "config.json", "checkpoint": folder / "model.safetensors", "head": head}


def _vit_cls_reference(sd: dict[str, torch.Tensor], x: torch.Tensor, heads: int, layers: int) -> torch.Tensor:
    """ViT's CLS output written out from the 2024 key names: patch embedding, pre-norm blocks, final layernorm."""
    w, b = sd["embeddings.patch_embeddings.projection.weight"], sd["embeddings.patch_embeddings.projection.bias"]
    h = F.conv2d(x, w, b, stride=8).flatten(2).transpose(1, 2)
    h = torch.cat([sd["embeddings.cls_token"].expand(len(x), -1, -1), h], 1) + sd["embeddings.position_embeddings"]
    d = h.shape[-1]
    for i in range(layers):
        p = f"encoder.layer.{i}."
        ln = F.layer_norm(h, (d,), sd[p + "layernorm_before.weight"], sd[p + "layernorm_before.bias"], 1e-12)
        q, k, v = (
            F.linear(ln, sd[f"{p}attention.attention.{n}.weight"], sd[f"{p}attention.attention.{n}.bias"])
            .view(len(x), -1, heads, d // heads)
            .transpose(1, 2)
            for n in ("query", "key", "value")
        )
        att = torch.softmax(q @ k.transpose(-1, -2) / (d // heads) ** 0.5, -1) @ v
        att = att.transpose(1, 2).reshape(len(x), -1, d)
        h = h + F.linear(att, sd[p + "attention.output.dense.weight"], sd[p + "attention.output.dense.bias"])
        ln = F.layer_norm(h, (d,), sd[p + "layernorm_after.weight"], sd[p + "layernorm_after.bias"], 1e-12)
        mid = F.gelu(F.linear(ln, sd[p + "intermediate.dense.weight"], sd[p + "intermediate.dense.bias"]))
        h = h + F.linear(mid, sd[p + "output.dense.weight"], sd[p + "output.dense.bias"])
    return F.layer_norm(h, (d,), sd["layernorm.weight"], sd["layernorm.bias"], 1e-12)[:, 0]


def test_code_official_files_convert_and_match_an_independent_vit(tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="transformers is not installed")
    import joblib
    from safetensors.torch import load_file

    files = _official_code_files(tmp_path / "CoDE")
    entry = get_entry("code").with_params(crop=32)
    out = export_model(entry, tmp_path / "code", paths=files)
    images = _images(tmp_path, ((40, 50), (24, 36)))  # the second is smaller than the crop: zero-padded
    rows = _scan_dir(out, images)
    official = T.Compose([T.CenterCrop(32), T.ToTensor(), IMAGENET])  # validate_d3.py, at the tiny size
    x = torch.stack([official(Image.open(p).convert("RGB")) for p in images])
    with torch.no_grad():
        feats = _vit_cls_reference(load_file(str(files["checkpoint"])), x, heads=2, layers=2).numpy()
    ref = joblib.load(files["head"]).predict_proba(feats)[:, 1]
    np.testing.assert_allclose([r["p_fake"] for r in rows], ref, rtol=1e-4, atol=1e-5)
    assert load_model(out).extractor.dim == 32


def test_code_head_pickle_is_read_without_running_code(tmp_path: Path) -> None:
    import pickle

    from gendetect.zoo.entries import read_sklearn_linear

    class Evil:
        def __reduce__(self) -> tuple:
            return (print, ("owned",))

    (tmp_path / "evil.sav").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ModelFormatError, match="refusing .*print: not a numpy array"):  # Ray swaps print for its own
        read_sklearn_linear(tmp_path / "evil.sav")


# -- RINE ------------------------------------------------------------------------------------------------------------
def _official_rine_head(blocks: int, width: int, nproj: int, proj_dim: int) -> dict[str, torch.Tensor]:
    """RINE's checkpoint layout (the non-CLIP state dict of its Model): alpha, proj1/proj2 Linears at Sequential
    indices 1, 4, ... (after a leading Dropout), head Linears at 0, 3, 6."""
    g = torch.Generator().manual_seed(0)
    sd = {"alpha": torch.randn(1, blocks, proj_dim, generator=g)}
    for name, first in (("proj1", width), ("proj2", proj_dim)):
        for i in range(nproj):
            sd[f"{name}.{1 + 3 * i}.weight"] = torch.randn(proj_dim, first if i == 0 else proj_dim, generator=g) * 0.3
            sd[f"{name}.{1 + 3 * i}.bias"] = torch.randn(proj_dim, generator=g) * 0.1
    for idx, out_dim in ((0, proj_dim), (3, proj_dim), (6, 1)):
        sd[f"head.{idx}.weight"] = torch.randn(out_dim, proj_dim, generator=g) * 0.3
        sd[f"head.{idx}.bias"] = torch.randn(out_dim, generator=g) * 0.1
    return sd


def test_rine_head_on_tiny_clip_matches_a_hand_written_forward(tmp_path: Path) -> None:
    pytest.importorskip("open_clip", reason="open_clip_torch is not installed")
    from gendetect.features.clip import OpenClipExtractor

    sd = _official_rine_head(blocks=2, width=64, nproj=2, proj_dim=16)  # test-tiny-clip: 2 blocks of width 64
    torch.save(sd, tmp_path / "model_4class_trainable.pth")
    tiny = {"clip_model": "test-tiny-clip", "pretrained": "random", "nproj": 2, "proj_dim": 16}
    entry = get_entry("rine").with_params(arch_params=tiny, crop=32)
    out = export_model(entry, tmp_path / "rine", paths={"checkpoint": tmp_path / "model_4class_trainable.pth"})
    images = _images(tmp_path, ((40, 50), (33, 35)))
    _scan_dir(out, images)  # end to end through the CLI (its random tiny CLIP differs from the one below)

    torch.manual_seed(0)
    model = load_model(out)
    model.extractor._load()  # the tiny CLIP is built (randomly, seeded) now, as the reference below
    torch.manual_seed(0)
    visual = OpenClipExtractor(model="test-tiny-clip", pretrained="random")._net.visual.eval()
    tokens: list[torch.Tensor] = []
    for block in visual.transformer.resblocks:  # the CLS token after each block's ln_2, as RINE's hooks take it
        block.ln_2.register_forward_hook(lambda _m, _i, o: tokens.append(o[:, 0]))
    clip_norm = T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
    x = torch.stack([clip_norm(T.ToTensor()(T.CenterCrop(32)(Image.open(p).convert("RGB")))) for p in images])
    with torch.no_grad():
        visual(x)
        h = torch.stack(tokens, dim=1)
        for i in (1, 4):
            h = F.relu(F.linear(h, sd[f"proj1.{i}.weight"], sd[f"proj1.{i}.bias"]))
        z = (torch.softmax(sd["alpha"], dim=1) * h).sum(1)
        for i in (1, 4):
            z = F.relu(F.linear(z, sd[f"proj2.{i}.weight"], sd[f"proj2.{i}.bias"]))
        z = F.relu(F.linear(z, sd["head.0.weight"], sd["head.0.bias"]))
        z = F.relu(F.linear(z, sd["head.3.weight"], sd["head.3.bias"]))
        ref = torch.sigmoid(F.linear(z, sd["head.6.weight"], sd["head.6.bias"])).ravel().numpy()
    got = model.predict_proba([Image.open(p).convert("RGB") for p in images])
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
    assert (out / "network.safetensors").stat().st_size < 100_000  # the head only, not CLIP
