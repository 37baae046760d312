"""The default-model script's chain sweep and per-chain threshold rule (``scripts/train_default.py``), on
synthetic views: no images, no features."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from gendetect.evaluation.metrics import threshold_for_fpr

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_default.py"


@pytest.fixture(scope="module")
def td():
    spec = importlib.util.spec_from_file_location("train_default_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _items(td, n_real: int = 10, n_fake: int = 4):
    items = [
        td.Item(f"real{i}.png", 0, "real", f"src{i}", f"reals-{i % 5}", "trainval", "whole") for i in range(n_real)
    ]
    items += [td.Item(f"fake{i}.png", 1, "sd1", "modern-fakes", "sd1", "trainval", "whole") for i in range(n_fake)]
    items.append(td.Item("test-real.png", 0, "real", "t", "test", "test", "whole"))
    return items


def test_sweep_puts_every_trainval_real_through_every_chain_once(td) -> None:
    items = _items(td)
    views = td.plan_views(items, seed=0)
    sweep = td.sweep_views(items, views, seed=0)
    for i, it in enumerate(items):
        mine = {td.chain_of(v) for v in views + sweep if v.item == i and v.kind in ("processed", "chain-sweep")}
        if it.label == 0 and it.split == "trainval":
            assert mine == set(td.CHAIN_POOL)  # the random draw plus the sweep cover every chain
        drawn = [v.chain for v in views if v.item == i and v.kind == "processed"]
        assert not {v.chain for v in sweep if v.item == i} & set(drawn)  # no chain twice
    assert all(v.label == 0 and items[v.item].split == "trainval" for v in sweep)  # never a fake, never a test row
    # deterministic, and never a training row
    again = td.sweep_views(items, views, seed=0)
    assert [(v.item, v.chain, v.seed) for v in again] == [(v.item, v.chain, v.seed) for v in sweep]
    all_views = views + sweep
    rows = td.train_rows(all_views, items, "all", np.ones(len(all_views), bool))
    assert not any(all_views[k].kind == "chain-sweep" for k in rows)
    # unless the rule asks for it, and then only inside the mask (the fit's groups)
    mask = np.asarray([items[v.item].group != "reals-0" for v in all_views])
    rows = td.train_rows(all_views, items, "sweep", mask)
    swept = {all_views[k].item for k in rows if all_views[k].kind == "chain-sweep"}
    assert swept == {i for i, it in enumerate(items) if it.label == 0 and it.split == "trainval"
                     and it.group != "reals-0"}


def test_fake_sweep_puts_every_trainval_fake_through_every_chain_and_comes_last(td) -> None:
    items = _items(td)
    views = td.plan_views(items, seed=0)
    views += td.sweep_views(items, views, seed=0)
    fakes = td.sweep_views(items, views, seed=0, label=1)
    for i, it in enumerate(items):
        mine = {v.chain for v in views + fakes if v.item == i and v.kind in ("processed", "fake-sweep")}
        if it.label == 1:
            assert mine == set(td.CHAIN_POOL)
    assert all(v.label == 1 and v.kind == "fake-sweep" for v in fakes)
    all_views = views + fakes
    trainval = np.ones(len(all_views), bool)
    assert not any(all_views[k].kind == "fake-sweep" for k in td.train_rows(all_views, items, "sweep", trainval))
    rows = td.train_rows(all_views, items, "sweep+fake-sweep", trainval)
    assert {all_views[k].item for k in rows if all_views[k].kind == "fake-sweep"} == {10, 11, 12, 13}
    # a candidate without the rule is fitted on the views before the fake sweep: the same objects every time
    feats = [np.zeros((1, 3), np.float32) for _ in all_views]
    v1, f1, m1 = td._before_fake_sweep(all_views, feats, trainval)
    v2, f2, _ = td._before_fake_sweep(all_views, feats, trainval)
    assert v1 == views and len(f1) == len(m1) == len(views) and v1 is v2 and f1 is f2
    with pytest.raises(AssertionError, match="must come last"):
        td._before_fake_sweep(fakes[:1] + views, feats, trainval)


def test_real_weight_scales_only_the_reals_tiles_and_defaults_to_none(td) -> None:
    w = np.array([0.5, 0.25, 0.25, 1.0])
    y = np.array([0, 1, 1, 0])
    assert td.row_weights({"det": "hgb"}, w, y) is w  # every other candidate fits on exactly the weights it did
    np.testing.assert_allclose(td.row_weights({"real_weight": 3.0}, w, y), [1.5, 0.25, 0.25, 3.0])
    assert all(c.get("real_weight", 1.0) > 0 for c in td.CANDIDATES.values())
    assert all(c["det"] == "hgb" for c in td.CANDIDATES.values() if "real_weight" in c)
    with pytest.raises(ValueError, match="real_weight"):  # never silently dropped
        td.fit({"det": "logistic", "params": {}, "real_weight": 3.0}, np.zeros((4, 2)), y, w)



def test_family_balance_gives_each_generated_family_equal_weight_and_leaves_the_rest(td) -> None:
    # tiles: two reals, a self-made fake, three tiles of family "sd1", one of "kolors"
    w = np.array([1.0, 0.5, 0.5, 1 / 3, 1 / 3, 1 / 3, 1.0])
    y = np.array([0, 0, 1, 1, 1, 1, 1])
    fam = np.array(["", "", "", "sd1", "sd1", "sd1", "kolors"], dtype=object)
    out = td.row_weights({"family_balance": True}, w, y, fam)
    np.testing.assert_allclose(out[:3], w[:3])  # reals and self-made fakes keep their weights
    assert out[3:6].sum() == pytest.approx(out[6]) == pytest.approx(w[3:].sum() / 2)  # total kept, shared alike
    np.testing.assert_allclose(w, [1.0, 0.5, 0.5, 1 / 3, 1 / 3, 1 / 3, 1.0])  # the caller's array is not changed
    both = td.row_weights({"family_balance": True, "real_weight": 3.0}, w, y, fam)
    np.testing.assert_allclose(both[:2], [3.0, 1.5])
    np.testing.assert_allclose(both[3:], out[3:])
    with pytest.raises(ValueError, match="family"):  # never balanced on nothing
        td.row_weights({"family_balance": True}, w, y)
    with pytest.raises(ValueError, match="family_balance"):
        td.fit({"det": "logistic", "params": {}, "family_balance": True}, np.zeros((7, 2)), y, w, fam)


def test_tile_families_names_generated_fakes_only(td) -> None:
    items = _items(td, n_real=1, n_fake=1)
    views = [td.View(0, 0, "none", 0, items[0].path, "whole", "original"),
             td.View(1, 1, "none", 0, items[1].path, "whole", "original"),
             td.View(0, 1, "none", 0, "selfmade.png", "whole", "selfmade")]
    assert td.tile_families(views, items, np.array([0, 1, 1, 2])).tolist() == ["", items[1].group, items[1].group, ""]

def test_threshold_neighbours_count_only_validation_reals_at_or_near_the_threshold(td) -> None:
    items = _items(td, n_real=3, n_fake=1)
    items[1].source = items[0].source
    views = [td.View(i, it.label, "original", 0, it.path, "whole", "original") for i, it in enumerate(items)]
    views.append(td.View(0, 0, "jpeg", 0, items[0].path, "whole", "processed"))
    #                  real0  real1  real2  fake   test-real  real0 as JPEG
    scores = np.array([2.1, 1.6, 0.0, 9.0, 5.0, np.nan])
    trainval = np.array([it.split == "trainval" for it in (items[v.item] for v in views)])
    hot = td.threshold_neighbours(scores, views, items, trainval, thr=2.0, width=0.5)
    assert hot["n"] == 2 and hot["width"] == 0.5  # real2 is far below; the fake, the test real and the unscored view never count
    assert hot["sources"] == {"src0": 2}
    assert hot["images"] == {"real0.png": 1, "real1.png": 1}
    for it in items:
        it.path = f"/data/shared/{it.path}"
    named = td.threshold_neighbours(scores, views, items, trainval, thr=2.0, root=Path("/data/shared"))
    assert named["images"] == {"real0.png": 1, "real1.png": 1}  # relative to the data folder, not the machine


def test_per_chain_rule_holds_each_chain_and_estimates_on_unseen_folds(td) -> None:
    items = _items(td, n_real=200, n_fake=50)
    views = td.plan_views(items, seed=1)
    views += td.sweep_views(items, views, seed=1)
    rng = np.random.default_rng(0)
    scores = rng.normal(size=len(views))
    chains = np.asarray([td.chain_of(v) for v in views], dtype=object)
    scores[chains == "screenshot"] += 1.0  # the chain that draws the false alarms
    labels = np.asarray([v.label for v in views])
    scores[labels == 1] += 2.0
    trainval = np.asarray([items[v.item].split == "trainval" for v in views])
    r = td.per_chain_rule(scores, views, items, trainval)
    real = trainval & (labels == 0)
    for c in set(chains[real]):
        assert np.mean(scores[real & (chains == c)] > r["threshold"]) <= td.MAX_FPR
    # the screenshot chain sets the threshold, well above the pooled 1% point
    assert r["threshold"] == threshold_for_fpr(
        scores[real & (chains == "screenshot")], td.MAX_FPR, conformal=td.CONFORMAL
    )
    assert r["threshold"] > threshold_for_fpr(scores[real], td.MAX_FPR)
    # the held-out estimate counts every real view once, each against a threshold set without its fold
    assert sum(m["n"] for m in r["held_out"].values()) == real.sum()
    assert r["worst_held_out_fpr"] == max(m["fpr"] for m in r["held_out"].values())
    orig_fake = trainval & (labels == 1) & np.asarray([v.kind == "original" for v in views])
    assert r["tpr_originals"] == pytest.approx(np.mean(scores[orig_fake] > r["threshold"]))


def test_jpeg_pair_agreement_counts_verdict_changes_per_class(td) -> None:
    items = _items(td, n_real=6, n_fake=4)
    views = td.plan_views(items, seed=2)
    scores = np.zeros(len(views))
    ok = np.ones(len(views), bool)
    pairs = [k for k, v in enumerate(views) if v.kind == "jpeg-pair"]
    assert pairs  # every lossless (.png) image has its JPEG copy
    fake_pair = next(k for k in pairs if views[k].label == 1)
    real_pair = next(k for k in pairs if views[k].label == 0)
    scores[fake_pair] = -1.0  # this fake's original is "uncertain" (0 > band -0.5), its JPEG copy "real"
    scores[real_pair] = 2.0  # this real's JPEG copy is called fake
    ok[next(k for k in pairs if views[k].label == 0 and k != real_pair)] = False  # unscored: not counted
    r = td.jpeg_pair_agreement(scores, views, ok, thr=1.0, band=-0.5)
    n_real = sum(views[k].label == 0 for k in pairs) - 1
    n_fake = sum(views[k].label == 1 for k in pairs)
    assert r["real"]["n"] == n_real and r["fake"]["n"] == n_fake
    assert r["real"]["flips"] == {"uncertain -> fake": 1} and r["fake"]["flips"] == {"uncertain -> real": 1}
    assert r["real"]["same_verdict"] == pytest.approx((n_real - 1) / n_real)


def test_features_cache_key_follows_the_bytes_not_the_name_or_mtime(td, tmp_path) -> None:
    """A re-materialised ``../shared`` (same bytes, new mtimes) or another checkout finds its cached features;
    a file with one changed byte, or another chain of the same file, does not."""
    import os

    a = tmp_path / "a.png"
    a.write_bytes(b"\x89PNG" + bytes(range(256)) * 5000)
    b = tmp_path / "elsewhere" / "b.png"
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    os.utime(b, ns=(10**18, 10**18))
    c = tmp_path / "c.png"
    c.write_bytes(a.read_bytes()[:-1] + b"\x00")

    def key(path, chain="jpeg", seed=3):
        return td.cache_key(td.View(0, 0, chain, seed, str(path), "whole", "processed"), {})

    assert key(a) == key(b)
    assert key(c) != key(a)
    assert key(a, chain="webp") != key(a) and key(a, seed=4) != key(a)


def test_features_digest_sees_any_changed_value(td) -> None:
    feats = [np.zeros((2, 3), np.float32), None, np.ones((1, 3), np.float32)]
    d = td.features_digest(feats)
    assert td.features_digest(feats) == d  # the same list: the same digest
    changed = [feats[0].copy(), None, feats[2].copy()]
    changed[2][0, 1] = 1.0001
    assert td.features_digest(changed) != d
    assert td.features_digest([feats[0], feats[2], None]) != d  # order and missing views count


def test_card_reports_the_model_comparison_kept_in_the_repo(td, monkeypatch, tmp_path) -> None:
    # the study is a separate command: its figures live in the repo, so that a rebuild of the card on a
    # fresh clone reports them instead of "not measured"
    assert td.STUDY.is_file(), f"{td.STUDY} is missing: python benchmarks/cnn_residual_study.py writes it"
    r = json.loads(td.STUDY.read_text())
    text = "\n".join(td.model_comparison())
    assert f"`{r['command']}`" in text and r["created"] and r["versions"]
    for m, x in r["models"].items():
        assert f"| {m} | {x['mean_auc']:.3f} | {x['tpr_at_1pct_fpr']:.3f} |" in text
    monkeypatch.setattr(td, "STUDY", tmp_path / "absent.json")
    assert "Not measured" in "\n".join(td.model_comparison())


def test_every_training_file_has_the_licence_of_its_origin(td) -> None:
    shared = SCRIPT.parents[2] / "shared" / "data"
    if not (shared / "modern-fakes" / "labels.csv").is_file():
        pytest.skip(f"{shared} is absent: the licences are read from its labels and folders")
    items = td.collect(shared)
    known = set(td.ORIGIN_LICENCES.values()) | set(td.FOLDER_LICENCES.values())
    unknown = {(i.source, i.licence) for i in items if i.split == "trainval" and i.licence not in known}
    assert not unknown  # a new origin must be added to ORIGIN_LICENCES before it trains the default
    assert {i.licence for i in items if i.source == "cnndetection"} == {"CC BY-NC-SA 4.0"}
    assert {i.licence for i in items if i.family == "kolors"} == {td.ORIGIN_LICENCES["Kwai-Kolors/Kolors"]}
    assert {i.licence for i in items if i.label == 0 and i.source.startswith("real-photos")} == {
        td.FOLDER_LICENCES["real-photos"]  # the SD repository's photos too: its licence is the model's, not theirs
    }


def test_family_licences_count_original_trainval_images_per_family(td) -> None:
    items = _items(td, n_real=3, n_fake=2)
    for it in items:
        it.licence = "MIT" if it.label else ""
    views = [td.View(i, it.label, "none", 0, it.path, it.region, "original") for i, it in enumerate(items)]
    views.append(td.View(0, 0, "jpeg", 1, items[0].path, "whole", "processed"))  # a view is not another image
    trainval = np.asarray([items[v.item].split == "trainval" for v in views])
    assert td.family_licences(items, views, trainval) == {"real": {"unknown": 3}, "sd1": {"MIT": 2}}
    by_source = td.family_licences(items, views, trainval, by_source=True)
    assert by_source["sd1 (modern-fakes)"] == {"MIT": 2} and by_source["real (src0)"] == {"unknown": 1}


def test_choose_applies_the_floor_then_the_auc_margin_then_the_per_chain_tpr(td) -> None:
    def row(auc, selfmade, tpr, worst=0.01):
        return {"mean_family_auc": auc, "tpr_selfmade": selfmade, "tpr_per_chain_rule": tpr, "worst_chain_fpr": worst}

    results = {
        "best auc, below the self-made floor": row(0.95, td.SELFMADE_FLOOR - 0.01, 0.5),
        "leader": row(0.90, 0.4, 0.10),
        "inside the margin, more fakes at the rule": row(0.90 - td.TIE + 0.001, 0.4, 0.12),
        "outside the margin": row(0.90 - td.TIE - 0.001, 0.4, 0.30),
    }
    assert td.choose(results) == "inside the margin, more fakes at the rule"
    # a tie at the rule goes to the lower worst-chain FPR
    results["same fakes, fewer false positives"] = row(0.899, 0.4, 0.12, worst=0.005)
    assert td.choose(results) == "same fakes, fewer false positives"
    # when no candidate reaches the floor, the floor is not applied
    assert td.choose({"a": row(0.8, 0.0, 0.1), "b": row(0.85, 0.0, 0.05)}) == "b"


def test_choose_on_the_shipped_models_record_names_a_known_candidate(td) -> None:
    from gendetect.pipeline import load_model

    selection = load_model().info["selection"]
    assert td.choose(selection) in td.CANDIDATES
