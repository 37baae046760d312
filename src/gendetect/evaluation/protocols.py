"""Evaluation protocols, each one function of a :class:`ProtocolConfig` returning a JSON-ready report.

==================  ==========================================================================================
protocol            what it answers
==================  ==========================================================================================
``per-generator``   how a trained model does on each generator's fakes against their own reals (+ bootstrap CIs)
``per-subject``     the same, per subject or category
``robustness``      how the model's scores survive delivery chains (JPEG, WebP, resize, blur, crop, chains)
``cross-generator`` train on one generator's set, test on every other: the transfer matrix (Coccomini)
``logo``            leave one generator out: train on the rest, test on the held-out one at the trained threshold
``generator-count`` train on 1, 2, 4... generators, test on the unseen ones (Community Forensics)
``audit``           can file facts (format, size, JPEG quality, EXIF), a frame, a caption strip or the content
                    (illustration vs photo) alone separate real from fake?
``captions``        the same detector with and without the caption's text embedding (Coccomini)
``feature-comparison`` linear and kNN probes on each extractor, per generator, with and without text (COCOFake)
``disentangle``     COCOFake's semantic/residual split: where the signal lies, per generator and subject
==================  ==========================================================================================

The first three score with an existing model. The training protocols take an extractor and detector recipe
(by default the model's own) and choose every threshold on out-of-fold validation scores of their training part,
never on the test part. A *generator set* is a generator's fakes and the reals of the same source
(``cnndetection-gallery/biggan``); when reals are not paired with generators, the pool of reals is split in two
halves, one for training and one for testing, so no real image is on both sides.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from gendetect.data.records import ImageRecord
from gendetect.data.summary import select_splits, targets
from gendetect.detectors import DETECTORS
from gendetect.errors import DataSchemaError
from gendetect.evaluation.audit import shortcut_audit
from gendetect.evaluation.grouping import generator_pairs
from gendetect.evaluation.metrics import (
    average_precision,
    binary_metrics,
    bootstrap_ci,
    enough_for_ci,
    expected_calibration_error,
    roc_auc,
    roc_curve,
)
from gendetect.evaluation.perturbations import DEFAULT_CHAINS, expand_chains, parse_chain
from gendetect.evaluation.report import item_rows, score_records
from gendetect.features import EXTRACTORS
from gendetect.imageio import load_image
from gendetect.pipeline import DEFAULT_MODEL, DetectionPipeline, load_model
from gendetect.provenance import provenance
from gendetect.registry import Registry
from gendetect.runs import Recipe, RunConfig

logger = logging.getLogger(__name__)

PROTOCOLS: Registry[Callable[..., dict[str, Any]]] = Registry("protocol")


@dataclass(frozen=True)
class ProtocolConfig(RunConfig):
    """Everything a protocol run depends on; saved in its report so the run can be repeated exactly.

    A run config like :class:`~gendetect.runs.TrainRun`: ``from_dict`` refuses unknown keys (listing the valid
    ones), ``to_dict`` writes it back, and ``gendetect evaluate --config FILE --set KEY=VALUE`` reads it
    (:func:`gendetect.runs.load_run`).
    """

    _kind: ClassVar[str] = "protocol config"

    protocol: str = "per-generator"  # a name in PROTOCOLS
    data: str | None = None  # labelled folder or manifest
    split: str | None = None  # keep only these splits (comma-separated)
    exclude_split: str | None = None  # drop these splits (comma-separated), e.g. "test"
    layout: str = "auto"
    model: str | None = None  # model directory; None: the embedded default
    extractor: dict[str, Any] | None = None  # training protocols: {"name", "params"}; None: the model's
    detector: dict[str, Any] | None = None  # training protocols: {"name", "params"}; None: the model's
    target_fpr: float = 0.01  # thresholds keep validation FPR on reals at or below this
    n_folds: int = 5
    chains: list[str] = field(default_factory=lambda: list(DEFAULT_CHAINS))  # robustness
    counts: list[int] | None = None  # generator-count: training set sizes (default 1, 2, 4, ...)
    repeats: int = 3  # generator-count: random draws per size
    n_boot: int = 1000  # bootstrap replicates for confidence intervals
    seed: int = 0
    jobs: int = 1
    store: str | None = None  # feature store folder: read cached features, add new ones
    extractors: list[dict[str, Any]] | None = None  # feature-comparison: extractor configs to compare


# -- shared helpers ----------------------------------------------------------------------------------------------
def generator_sets(records: Sequence[ImageRecord]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each fake generator: ``(fake indices, real indices for training, real indices for testing)``.

    Paired reals (same source) serve both roles, each set being trained and tested separately; an unpaired pool
    of reals is split in halves so that no real image is used for training and testing across sets.
    """
    out = {}
    for g, (fakes, reals, paired) in generator_pairs(records).items():
        out[g] = (fakes, reals, reals) if paired else (fakes, reals[0::2], reals[1::2])
    return out


def _store(config: ProtocolConfig, extractor: Any) -> Any:
    from gendetect.features.store import FeatureStore

    return FeatureStore(config.store, extractor) if config.store else None


def _recipe(config: ProtocolConfig) -> tuple[Any, Any]:
    """The extractor and an unfitted detector the training protocols use: the config's, else the model's."""
    if config.extractor is not None and config.detector is not None:
        return Recipe(config.extractor, config.detector).build()
    model = load_model(config.model)
    recipe = Recipe(config.extractor or model.extractor.get_config(), config.detector or model.detector.get_config())
    return (recipe.build_extractor() if config.extractor else model.extractor), recipe.build_detector()


def _fit(
    X: np.ndarray, records: list[ImageRecord], extractor: Any, detector: Any, config: ProtocolConfig
) -> DetectionPipeline:
    from gendetect.training import train_pipeline

    y = targets(records)
    folds = max(2, min(config.n_folds, int(np.bincount(y, minlength=2).min())))
    return train_pipeline(
        records,
        extractor,
        detector,
        target_fpr=config.target_fpr,
        n_folds=folds,
        seed=config.seed,
        features=(X, list(records), []),
        allow_test_split=True,
        audit=False,
    )


def _metrics_with_ci(y: np.ndarray, s: np.ndarray, threshold: float, n_boot: int, seed: int) -> dict[str, Any]:
    m = binary_metrics(y, s, threshold)
    if n_boot and enough_for_ci(y):
        m["auc_ci"] = bootstrap_ci(roc_auc, y, s, n_boot=n_boot, seed=seed)
        m["ap_ci"] = bootstrap_ci(average_precision, y, s, n_boot=n_boot, seed=seed)
    elif n_boot:
        m["auc_ci"] = m["ap_ci"] = TOO_FEW  # fewer than MIN_PER_CLASS_FOR_CI per class: no interval
    return m


def _roc(y: np.ndarray, s: np.ndarray) -> dict[str, list[float]]:
    fpr, tpr, _ = roc_curve(y, s)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


def _scored(config: ProtocolConfig, records: list[ImageRecord]) -> tuple[DetectionPipeline, np.ndarray, list, list]:
    model = load_model(config.model)
    scores, kept, failed = score_records(model, records, jobs=config.jobs, store=_store(config, model.extractor))
    return model, scores, kept, failed


def _worst(records: list[ImageRecord], scores: np.ndarray, threshold: float, k: int = 6) -> dict[str, list]:
    y = targets(records)
    fp = [i for i in np.argsort(-scores) if y[i] == 0 and scores[i] > threshold][:k]
    fn = [i for i in np.argsort(scores) if y[i] == 1 and scores[i] <= threshold][:k]

    def rows(idx: list[int]) -> list[dict[str, Any]]:
        return [{"path": records[i].path, "generator": records[i].generator, "p_fake": float(scores[i])} for i in idx]

    return {"false_positives": rows(fp), "false_negatives": rows(fn)}


def _histogram(y: np.ndarray, s: np.ndarray, bins: int = 20) -> dict[str, list]:
    edges = np.linspace(0, 1, bins + 1)
    return {
        "edges": edges.tolist(),
        "real": np.histogram(s[y == 0], edges)[0].tolist(),
        "fake": np.histogram(s[y == 1], edges)[0].tolist(),
    }


def _base(config: ProtocolConfig, records: list[ImageRecord], failed: list[ImageRecord]) -> dict[str, Any]:
    from gendetect.data.summary import data_summary

    return {
        "protocol": config.protocol,
        "config": config.to_dict(),
        "data": data_summary(records, failed),
        "audit": shortcut_audit(records),
        "provenance": provenance(),
        "tables": [],
        "figures": {},
    }


def _table(title: str, columns: list[str], rows: list[list[Any]], note: str | None = None) -> dict[str, Any]:
    return {"title": title, "columns": columns, "rows": rows, "note": note}


TOO_FEW = "too few"  # in place of a bootstrap interval for a group with fewer than 5 reals or 5 fakes
_COLS = ["n_real", "n_fake", "acc_real", "acc_fake", "acc", "ap", "auc", "eer", "tpr_at_1fpr", "tpr_at_01fpr"]


def _metric_rows(metrics: dict[str, dict[str, Any]]) -> list[list[Any]]:
    names = [k for k in metrics if k != "all"] + (["all"] if "all" in metrics else [])
    rows = []
    for name in names:
        m = metrics[name]
        ci = m.get("auc_ci")
        cell = ci if isinstance(ci, str) else f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else None
        rows.append([name, *[m.get(c) for c in _COLS], cell])
    return rows


# -- scoring protocols -------------------------------------------------------------------------------------------
@PROTOCOLS.register("per-generator")
def per_generator(config: ProtocolConfig, records: list[ImageRecord]) -> dict[str, Any]:
    model, scores, kept, failed = _scored(config, records)
    report = _base(config, kept, failed)
    y = targets(kept)
    metrics: dict[str, dict[str, Any]] = {}
    rocs = {}
    for g, (fakes, reals, _) in generator_pairs(kept).items():
        idx = np.r_[reals, fakes].astype(int)
        metrics[g] = _metrics_with_ci(y[idx], scores[idx], model.threshold, config.n_boot, config.seed)
        rocs[g] = _roc(y[idx], scores[idx])
    metrics["all"] = _metrics_with_ci(y, scores, model.threshold, config.n_boot, config.seed)
    metrics["all"]["ece"] = expected_calibration_error(y, scores) if len(y) else math.nan
    rocs["all"] = _roc(y, scores)
    report.update(
        model=model.name,
        threshold=model.threshold,
        metrics=metrics,
        items=item_rows(kept, scores, failed),
        worst=_worst(kept, scores, model.threshold),
    )
    report["tables"].append(
        _table(
            f"{model.name} at threshold {model.threshold:.4g}",
            ["generator", *_COLS, "auc 95% CI"],
            _metric_rows(metrics),
        )
    )
    report["figures"] = {"roc": rocs, "histogram": _histogram(y, scores)}
    return report


@PROTOCOLS.register("per-subject")
def per_subject(config: ProtocolConfig, records: list[ImageRecord]) -> dict[str, Any]:
    model, scores, kept, failed = _scored(config, records)
    report = _base(config, kept, failed)
    y = targets(kept)
    subjects = sorted({str(r.subject) for r in kept})
    metrics = {}
    for subj in subjects:
        idx = np.array([i for i, r in enumerate(kept) if str(r.subject) == subj])
        metrics[subj] = _metrics_with_ci(y[idx], scores[idx], model.threshold, config.n_boot, config.seed)
    metrics["all"] = binary_metrics(y, scores, model.threshold)
    note = None if any(r.subject for r in kept) else "no record has a subject: every image is in 'None'"
    report.update(model=model.name, threshold=model.threshold, metrics=metrics)
    report["tables"].append(_table("by subject", ["subject", *_COLS, "auc 95% CI"], _metric_rows(metrics), note))
    return report


@PROTOCOLS.register("robustness")
def robustness(config: ProtocolConfig, records: list[ImageRecord]) -> dict[str, Any]:
    model = load_model(config.model)
    chains = [parse_chain(c) for c in expand_chains(config.chains)]  # one per distinct chain: rows keyed by spec
    if "none" not in [c.spec for c in chains]:  # the clean baseline row is always there, first
        chains.insert(0, parse_chain("none"))
    ok: list[ImageRecord] = []
    failed: list[ImageRecord] = []
    feats: dict[str, list[np.ndarray]] = {c.spec: [] for c in chains}
    for rec in records:
        try:
            image = load_image(rec.path)
        except Exception as e:  # noqa: BLE001 - recorded per item
            rec.status, rec.error = "error", str(e)
            failed.append(rec)
            continue
        ok.append(rec)
        for chain in chains:
            feats[chain.spec].append(model.extractor.extract_one(chain(image)))
    report = _base(config, ok, failed)
    y = targets(ok)
    gens = generator_pairs(ok)
    per_chain, per_gen_auc = {}, {}
    for chain in chains:
        # images the no-signal guard leaves unscored after this chain are counted, not scored at 0.5
        X = np.stack(feats[chain.spec]) if ok else np.zeros((0, 1))
        judged = np.asarray([model.signal_of(x)[2] is None for x in X], dtype=bool)
        s = np.full(len(X), np.nan)
        if judged.any():
            s[judged] = model.predict_proba_features(X[judged])
        yj, sj = y[judged], s[judged]
        per_chain[chain.spec] = binary_metrics(yj, sj, model.threshold)
        per_chain[chain.spec]["mean_p_fake_real"] = float(sj[yj == 0].mean()) if (yj == 0).any() else None
        per_chain[chain.spec]["no_signal"] = int((~judged).sum())

        per_gen_auc[chain.spec] = {}
        for g, (f, r, _) in gens.items():
            idx = np.r_[r, f].astype(int)
            idx = idx[judged[idx]]
            per_gen_auc[chain.spec][g] = roc_auc(y[idx], s[idx])
    report.update(model=model.name, threshold=model.threshold, metrics=per_chain)
    cols = ["acc_real", "acc_fake", "acc", "ap", "auc", "tpr_at_1fpr", "mean_p_fake_real", "no_signal"]
    report["tables"].append(
        _table(
            f"{model.name} under delivery chains (threshold {model.threshold:.4g})",
            ["chain", *cols],
            [[c, *[m.get(k) for k in cols]] for c, m in per_chain.items()],
        )
    )
    gnames = sorted(gens)
    report["tables"].append(
        _table(
            "AUC per chain and generator",
            ["chain", *gnames],
            [[c, *[per_gen_auc[c][g] for g in gnames]] for c in per_gen_auc],
        )
    )
    report["figures"]["robustness"] = {
        "rows": list(per_gen_auc),
        "cols": gnames,
        "values": [[per_gen_auc[c][g] for g in gnames] for c in per_gen_auc],
        "title": "AUC per delivery chain (rows) and generator (columns)",
    }
    return report


@PROTOCOLS.register("audit")
def audit(config: ProtocolConfig, records: list[ImageRecord]) -> dict[str, Any]:
    ok = [r for r in records if r.status == "ok"]
    report = _base(config, ok, [r for r in records if r.status != "ok"])
    a = report["audit"]
    report["tables"].append(
        _table(
            "shortcut audit: separation of real and fake by file facts alone",
            ["file fact", "AUC (either direction)"],
            [[k, v] for k, v in a["per_feature"].items()] + [["all (random forest, CV)", a["auc"]]],
            a["message"],
        )
    )
    pixel = [(k, a[k]) for k in ("border", "text_strip", "content") if k in a]
    if pixel:
        report["tables"].append(
            _table(
                "shortcut audit: pixel checks (frame, caption strips, illustration vs photo)",
                ["check", "AUC", "AUC inside the picture", "warns", "images"],
                [
                    [k, c.get("auc"), c.get("baseline_auc"), "yes" if c.get("warn") else "no", c.get("n")]
                    for k, c in pixel
                ],
                " ".join(c["message"] for _, c in pixel),
            )
        )
    return report


# -- training protocols ------------------------------------------------------------------------------------------
@dataclass
class _Setup:
    """What every training protocol starts from: the recipe, features, targets, generator sets and a report."""

    extractor: Any
    detector: Any
    X: np.ndarray
    kept: list[ImageRecord]
    y: np.ndarray
    sets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    report: dict[str, Any]


def _training_setup(config: ProtocolConfig, records: list[ImageRecord]) -> _Setup:
    from gendetect.features.featurize import featurize

    extractor, detector = _recipe(config)
    X, kept, failed = featurize(records, extractor, jobs=config.jobs, store=_store(config, extractor))
    if len({r.generator for r in kept if r.label == "fake"}) < 2:
        raise DataSchemaError(f"protocol {config.protocol!r} needs fakes from at least 2 generators")
    report = _base(config, kept, failed)
    report["recipe"] = Recipe.of(extractor, detector).to_dict()
    return _Setup(extractor, detector, X, kept, targets(kept), generator_sets(kept), report)


@PROTOCOLS.register("cross-generator")
def cross_generator(config: ProtocolConfig, records: list[ImageRecord]) -> dict[str, Any]:
    from gendetect.training import out_of_fold_scores

    st = _training_setup(config, records)
    extractor, detector, X, kept, y, sets, report = (st.extractor, st.detector, st.X, st.kept, st.y, st.sets, st.report)
    names = list(sets)
    auc = np.full((len(names), len(names)), np.nan)
    ap = np.full_like(auc, np.nan)
    acc_fake = np.full_like(auc, np.nan)
    fpr = np.full_like(auc, np.nan)
    skipped = []
    for i, g in enumerate(names):
        f_tr, r_tr, _ = sets[g]
        train_idx = np.r_[r_tr, f_tr].astype(int)
        if min(len(f_tr), len(r_tr)) < 2:  # too small to train and choose a threshold: the row stays empty
            skipped.append(g)
            continue
        model = _fit(X[train_idx], [kept[k] for k in train_idx], extractor, detector, config)
        for j, h in enumerate(names):
            f_te, _, r_te = sets[h]
            test_idx = np.r_[r_te, f_te].astype(int)
            if len(np.unique(y[test_idx])) < 2:
                continue
            if i == j:  # same set: out-of-fold scores, never a model's own training images
                n_min = int(np.bincount(y[test_idx], minlength=2).min())
                s, _ = out_of_fold_scores(
                    detector,
                    X[test_idx],
                    y[test_idx],
                    None,
                    n_folds=max(2, min(config.n_folds, n_min)),
                    seed=config.seed,
                )
            else:
                s = model.predict_proba_features(X[test_idx])
            auc[i, j], ap[i, j] = roc_auc(y[test_idx], s), average_precision(y[test_idx], s)
            acc_fake[i, j] = float(np.mean(s[y[test_idx] == 1] > model.threshold))
            fpr[i, j] = float(np.mean(s[y[test_idx] == 0] > model.threshold))
    report["matrix"] = {
        "train": names,
        "test": names,
        "auc": auc.tolist(),
        "ap": ap.tolist(),
        "acc_fake": acc_fake.tolist(),
        "fpr": fpr.tolist(),
        "fpr_threshold": "each row model's own threshold (<= target FPR on out-of-fold scores of its training reals)",
    }
    note = (
        "rows: the generator set trained on; columns: the generator set tested on; diagonal: out-of-fold. "
        "acc_fake is at each row model's own validation threshold (<= target FPR on its reals)."
    )
    if skipped:
        note += f" Not trained on (fewer than 2 real or fake images): {', '.join(skipped)}."
    report["tables"].append(
        _table(
            "cross-generator AUC", ["train \\ test", *names], [[g, *auc[i].tolist()] for i, g in enumerate(names)], note
        )
    )
    report["tables"].append(
        _table(
            "cross-generator false-positive rate on the test set's reals",
            ["train \\ test", *names],
            [[g, *fpr[i].tolist()] for i, g in enumerate(names)],
            f"reals of the column's set called fake at the row model's own threshold, chosen for <= "
            f"{config.target_fpr:g} FPR on out-of-fold scores of its training reals (diagonal: out-of-fold)",
        )
    )
    report["tables"].append(
        _table("cross-generator AP", ["train \\ test", *names], [[g, *ap[i].tolist()] for i, g in enumerate(names)])
    )
    report["tables"].append(
        _table(
            "cross-generator accuracy on fakes at the trained threshold",
            ["train \\ test", *names],
            [[g, *acc_fake[i].tolist()] for i, g in enumerate(names)],
        )
    )
    report["figures"]["cross_generator"] = {
        "rows": names,
        "cols": names,
        "values": auc.tolist(),
        "title": "AUC: train on row, test on column",
    }
    report["figures"]["cross_generator_fpr"] = {
        "rows": names,
        "cols": names,
        "values": fpr.tolist(),
        "title": "FPR on the column's reals at the row model's threshold",
        "lower_is_better": True,
    }
    return report


@PROTOCOLS.register("logo")
def leave_one_generator_out(config: ProtocolConfig, records: list[ImageRecord]) -> dict[str, Any]:
    st = _training_setup(config, records)
    extractor, detector, X, kept, y, sets, report = (st.extractor, st.detector, st.X, st.kept, st.y, st.sets, st.report)
    metrics = {}
    all_s, all_y = [], []
    for g, (f_te, _, r_te) in sets.items():
        test_idx = np.r_[r_te, f_te].astype(int)
        held = set(test_idx.tolist())
        train_idx = np.array(
            [
                i
                for i in range(len(kept))
                if i not in held and not (kept[i].label == "fake" and str(kept[i].generator) == g)
            ],
            dtype=int,
        )
        model = _fit(X[train_idx], [kept[k] for k in train_idx], extractor, detector, config)
        s = model.predict_proba_features(X[test_idx])
        metrics[g] = _metrics_with_ci(y[test_idx], s, model.threshold, config.n_boot, config.seed)
        metrics[g]["threshold"] = model.threshold
        all_s.append(s)
        all_y.append(y[test_idx])
    mean = {c: float(np.nanmean([m[c] for m in metrics.values()])) for c in ("acc_real", "acc_fake", "ap", "auc")}
    report["metrics"] = metrics
    report["mean"] = mean
    report["tables"].append(
        _table(
            "leave one generator out (each row: trained on all the others)",
            ["held-out", *_COLS, "auc 95% CI"],
            _metric_rows(metrics),
            f"mean AUC {mean['auc']:.3f}, mean AP {mean['ap']:.3f}, mean accuracy on real "
            f"{mean['acc_real']:.3f} and on fake {mean['acc_fake']:.3f}",
        )
    )
    report["figures"]["roc"] = {g: _roc(yy, ss) for g, yy, ss in zip(metrics, all_y, all_s)}
    return report


@PROTOCOLS.register("generator-count")
def generator_count(config: ProtocolConfig, records: list[ImageRecord]) -> dict[str, Any]:
    st = _training_setup(config, records)
    extractor, detector, X, kept, y, sets, report = (st.extractor, st.detector, st.X, st.kept, st.y, st.sets, st.report)
    names = list(sets)
    counts = config.counts or [k for k in (1, 2, 4, 8, 16, 32, 64) if k < len(names)]
    rng = np.random.default_rng(config.seed)
    rows, curve = [], {}
    for k in counts:
        if not 1 <= k < len(names):
            raise DataSchemaError(f"generator-count: {k} training generators leaves none to test (have {len(names)})")
        aucs = []
        for _ in range(config.repeats):
            chosen = set(rng.choice(names, size=k, replace=False).tolist())
            train_idx = np.unique(np.concatenate([np.r_[sets[g][1], sets[g][0]] for g in chosen]).astype(int))
            model = _fit(X[train_idx], [kept[i] for i in train_idx], extractor, detector, config)
            per = []
            for h in names:
                if h in chosen:
                    continue
                f_te, _, r_te = sets[h]
                idx = np.array([i for i in np.r_[r_te, f_te].astype(int) if i not in set(train_idx.tolist())])
                if len(np.unique(y[idx])) == 2:
                    per.append(roc_auc(y[idx], model.predict_proba_features(X[idx])))
            aucs.append(float(np.mean(per)))
        curve[k] = {"mean_auc": float(np.mean(aucs)), "std_auc": float(np.std(aucs)), "runs": aucs}
        rows.append([k, curve[k]["mean_auc"], curve[k]["std_auc"], config.repeats])
    report["curve"] = curve
    report["tables"].append(
        _table(
            "AUC on unseen generators against the number of training generators",
            ["training generators", "mean AUC", "std", "draws"],
            rows,
        )
    )
    report["figures"]["generator_count"] = {
        "x": list(curve),
        "mean": [c["mean_auc"] for c in curve.values()],
        "std": [c["std_auc"] for c in curve.values()],
    }
    return report


def _takes_text(spec: dict[str, Any]) -> bool:
    """Whether an extractor config can add the caption's text embedding (``with_text``), without building it."""
    return "with_text" in EXTRACTORS.get(spec["name"])._param_names()


def _text_variants(
    config: ProtocolConfig, records: list[ImageRecord], spec: dict[str, Any]
) -> list[tuple[bool, np.ndarray, list[ImageRecord], list[ImageRecord]]]:
    """``[(with_text, X, kept, failed), ...]`` for an extractor config: one variant, or image-only and image+text.

    A caption-capable extractor runs once, with the caption: its rows are the L2-normalised image embedding then
    the caption embedding, so the image-only variant is the first half of the same rows. The two variants then
    differ by the caption alone, and the image network runs once.
    """
    from gendetect.features.featurize import featurize

    if not _takes_text(spec):
        extractor = EXTRACTORS.from_config(spec)
        return [(False, *featurize(records, extractor, jobs=config.jobs, store=_store(config, extractor)))]
    extractor = EXTRACTORS.from_config({**spec, "params": {**spec.get("params", {}), "with_text": True}})
    X, kept, failed = featurize(records, extractor, jobs=config.jobs, store=_store(config, extractor))
    return [(False, X[:, : X.shape[1] // 2], kept, failed), (True, X, kept, failed)]


@PROTOCOLS.register("captions")
def caption_ablation(config: ProtocolConfig, records: list[ImageRecord]) -> dict[str, Any]:
    """The same detector with and without the caption's text embedding (Coccomini), compared out of fold.

    The extractor must take ``with_text`` (``openclip``). Both variants are scored with the same source-grouped
    cross-validation, per generator and overall.
    """
    from gendetect.evaluation.grouping import per_generator_metrics
    from gendetect.training import out_of_fold_scores

    base_extractor, detector = _recipe(config)
    cfg = base_extractor.get_config()
    if not _takes_text(cfg):
        raise DataSchemaError(
            f"protocol 'captions' needs an extractor with a with_text option (openclip); got {cfg['name']!r}"
        )
    variants = {}
    report: dict[str, Any] | None = None
    for with_text, X, kept, failed in _text_variants(config, records, cfg):
        if report is None:
            report = _base(config, kept, failed)
            report["n_with_caption"] = sum(bool(r.caption) for r in kept)
        y = targets(kept)
        scores, scheme = out_of_fold_scores(
            detector, X, y, [str(r.source) for r in kept], n_folds=config.n_folds, seed=config.seed
        )
        variants["image + caption" if with_text else "image only"] = per_generator_metrics(kept, scores, 0.5)
    assert report is not None
    names = [k for k in variants["image only"] if k != "all"] + ["all"]
    rows = [
        [
            g,
            variants["image only"][g]["auc"],
            variants["image + caption"][g]["auc"],
            variants["image only"][g]["ap"],
            variants["image + caption"][g]["ap"],
        ]
        for g in names
    ]
    report["metrics"] = variants
    report["recipe"] = Recipe(cfg, detector.get_config()).to_dict()
    report["tables"].append(
        _table(
            "with and without the caption's text embedding (out-of-fold)",
            ["generator", "AUC image only", "AUC image + caption", "AP image only", "AP image + caption"],
            rows,
            f"{report['n_with_caption']} of {report['data']['n_images']} images have a caption; images without one get "
            f"a zero text embedding. Scores: {scheme}.",
        )
    )
    return report


def _groups(records: Sequence[ImageRecord]) -> list[str]:
    """CV groups: a real and the fakes made from its captions share ``pair_id``; else the source."""
    return [str(r.extra.get("pair_id") or r.source) for r in records]


@PROTOCOLS.register("feature-comparison")
def feature_comparison(config: ProtocolConfig, records: list[ImageRecord]) -> dict[str, Any]:
    """The same probes (linear and kNN) on each extractor, per generator, with and without caption text.

    Extractors come from ``config.extractors`` (default: the weight-free ones plus the model's). Extractors with
    a ``with_text`` option are also run with the caption's text embedding concatenated. Scores are out of fold,
    grouped by ``pair_id`` (COCOFake pairs) or source, so no image is scored by a probe that saw its pair.
    """
    from gendetect.evaluation.grouping import per_generator_metrics
    from gendetect.training import out_of_fold_scores

    specs = list(config.extractors or [])
    if not specs:
        specs = [{"name": n, "params": {"crop": 224}} for n in ("spectrum", "npr", "saturation")]
        specs.append(load_model(config.model).extractor.get_config())
    probes = {"linear": {"name": "logistic", "params": {"C": 0.1}}, "knn": {"name": "knn", "params": {"k": 5}}}
    report: dict[str, Any] | None = None
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for spec, (text, X, kept, failed) in ((sp, v) for sp in specs for v in _text_variants(config, records, sp)):
        if report is None:
            report = _base(config, kept, failed)
        y = targets(kept)
        label = spec["name"] + (" + text" if text else "")
        if spec.get("params"):
            label += " " + ",".join(
                f"{k}={v}" for k, v in sorted(spec["params"].items()) if k not in ("with_text", "normalize")
            )
        for probe, pconf in probes.items():
            scores, _ = out_of_fold_scores(
                DETECTORS.from_config(pconf), X, y, _groups(kept), n_folds=config.n_folds, seed=config.seed
            )
            results[f"{label.strip()} / {probe}"] = per_generator_metrics(kept, scores, 0.5)
    assert report is not None
    gens = [g for g in next(iter(results.values())) if g != "all"] + ["all"]
    report["metrics"] = results
    for metric, title in (("ap", "AP"), ("acc", "accuracy at P(fake) > 0.5")):
        report["tables"].append(
            _table(
                f"feature comparison: {title}, out of fold",
                ["extractor / probe", *gens],
                [[name, *[m[g][metric] for g in gens]] for name, m in results.items()],
                "rows: extractor (with the caption's text embedding where marked) and probe; columns: generators",
            )
        )
    report["figures"]["feature_comparison"] = {
        "rows": list(results),
        "cols": gens,
        "values": [[m[g]["ap"] for g in gens] for m in results.values()],
        "title": "AP per extractor/probe (rows) and generator (columns)",
    }
    return report


@PROTOCOLS.register("disentangle")
def disentangle(config: ProtocolConfig, records: list[ImageRecord]) -> dict[str, Any]:
    """COCOFake's analysis: where the detection signal lies (semantic vs residual part), per generator and subject,
    and the semantic part's caption retrieval accuracy. Out of fold, grouped by pair."""
    from sklearn.model_selection import GroupKFold

    from gendetect.evaluation.grouping import per_generator_metrics
    from gendetect.features.featurize import featurize

    base_extractor, _ = _recipe(config)
    spec = base_extractor.get_config()
    if "with_text" not in spec["params"]:
        raise DataSchemaError(
            f"protocol 'disentangle' needs an extractor with with_text (openclip); got {spec['name']!r}"
        )
    extractor = EXTRACTORS.from_config({**spec, "params": {**spec["params"], "with_text": True}})
    X, kept, failed = featurize(records, extractor, jobs=config.jobs, store=_store(config, extractor))
    report = _base(config, kept, failed)
    y = targets(kept)
    det_conf = (
        config.detector
        if config.detector and config.detector["name"] == "disentangle"
        else {"name": "disentangle", "params": {}}
    )
    groups = _groups(kept)
    folds = GroupKFold(n_splits=min(config.n_folds, len(set(groups))))
    decision, sem_scores, res_scores = np.zeros(len(y)), np.zeros(len(y)), np.zeros(len(y))
    retrieval: list[float] = []
    for tr, te in folds.split(X, y, groups):
        if len(np.unique(y[tr])) < 2:
            continue
        det = DETECTORS.from_config(det_conf).fit(X[tr], y[tr])
        decision[te] = det.predict_proba(X[te])[:, 1]
        s_tr, r_tr = det.parts(X[tr])
        s_te, r_te = det.parts(X[te])
        for part_tr, part_te, out in ((s_tr, s_te, sem_scores), (r_tr, r_te, res_scores)):
            probe = DETECTORS.from_config({"name": "logistic", "params": {"C": 1.0}}).fit(part_tr, y[tr])
            out[te] = probe.predict_proba(part_te)[:, 1]
        retrieval.append(det.retrieval_accuracy(X[te]))
    parts = {
        "detector (residual part)": per_generator_metrics(kept, decision, 0.5),
        "probe on semantic part": per_generator_metrics(kept, sem_scores, 0.5),
        "probe on residual part": per_generator_metrics(kept, res_scores, 0.5),
    }
    gens = [g for g in parts["detector (residual part)"] if g != "all"] + ["all"]
    report["metrics"] = parts
    report["retrieval_accuracy"] = float(np.nanmean(retrieval)) if retrieval else None
    report["tables"].append(
        _table(
            "where the detection signal lies: AUC, out of fold",
            ["scores", *gens],
            [[name, *[m[g]["auc"] for g in gens]] for name, m in parts.items()],
            f"semantic-part caption retrieval top-1 accuracy (within each held-out fold): "
            f"{report['retrieval_accuracy']:.3f}"
            if retrieval
            else None,
        )
    )
    subjects = sorted({str(r.subject) for r in kept})
    if len(subjects) > 1:
        rows = []
        for subj in subjects:
            idx = np.array([i for i, r in enumerate(kept) if str(r.subject) == subj])
            rows.append([subj, len(idx), roc_auc(y[idx], decision[idx])])
        report["tables"].append(_table("detector AUC per subject", ["subject", "images", "auc"], rows))
    report["recipe"] = Recipe.of(extractor, det_conf).to_dict()
    return report


def run_protocol(config: ProtocolConfig, records: list[ImageRecord] | None = None) -> dict[str, Any]:
    """Run ``config.protocol`` on ``records`` (read from ``config.data`` when not given).

    The protocol and model names are checked before the data is read, so a misspelt ``--model`` is reported as
    such whatever the data holds.
    """
    fn = PROTOCOLS.get(config.protocol)
    _check_model_name(config.model)
    if records is None:
        if config.data is None:
            raise DataSchemaError("a protocol needs data: set 'data' in the config or pass --data")
        from gendetect.data.readers import read_records

        records = read_records(config.data, layout=config.layout)
    selected = select_splits(records, config.split, config.exclude_split)
    labelled = [r for r in selected if r.label in ("real", "fake")]
    if not labelled:
        raise DataSchemaError(_no_labelled_images(config, len(records), len(selected)))
    return fn(config, labelled)


def _check_model_name(model: str | None) -> None:
    """Raise the usual "Model ... not found" error now when ``model`` names nothing: no folder and no published
    detector. Reads no file and loads no weights (those are checked when the model loads)."""
    if model is None or str(model) == DEFAULT_MODEL or Path(model).is_dir():
        return
    from gendetect.zoo import is_zoo_name

    if not is_zoo_name(model):
        load_model(model)  # neither a folder nor a published name: fails at once, with load_model's own message


def _no_labelled_images(config: ProtocolConfig, n_read: int, n_selected: int) -> str:
    """Why no image is left to evaluate, and how to label a folder (the layouts of :mod:`gendetect.data.readers`)."""
    where = f" in {config.data}" if config.data else ""

    def images(n: int) -> str:
        return f"{n} image{'' if n == 1 else 's'}"

    if n_read and not n_selected:
        return (
            f"no images left for protocol {config.protocol!r}: the split selection (split={config.split!r}, "
            f"exclude_split={config.exclude_split!r}) keeps none of the {images(n_read)}{where}."
        )
    found = f"{images(n_selected)}{where}, none labelled real or fake" if n_selected else f"no images{where}"
    return (
        f"no labelled images for protocol {config.protocol!r}: {found}. Label a folder with a labels.csv "
        "(columns file,label,generator; label real or fake, also 0/1) or with sub-folders: 0_real/ and 1_fake/ (also "
        "below one folder per generator), or real/ and fake/<generator>/. `gendetect data describe DIR` shows what "
        "is read; --layout picks a layout."
    )


def list_protocols() -> list[str]:
    return PROTOCOLS.list()


__all__ = ["PROTOCOLS", "ProtocolConfig", "generator_sets", "list_protocols", "run_protocol"]
