"""A complete detector: feature extractor + fitted detector + decision threshold, saved as one directory.

A saved pipeline (a *model*) is a directory with

* ``config.json``: the extractor and detector configs, the threshold and how it was chosen, a summary of the
  training data, validation metrics and the provenance (library versions, time);
* ``model.safetensors``: the detector's fitted arrays;
* optionally ``MODEL_CARD.md``.

``load_model()`` with no argument returns the embedded default detector shipped inside the package.

Example:
    >>> from gendetect import load_model, scan
    >>> model = load_model()                                  # doctest: +SKIP
    >>> [row.p_fake for row in scan(["photo.jpg"], model)]    # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from safetensors.numpy import load_file, save_file

from gendetect.calibration import Calibrator, calibrator_from_config
from gendetect.detectors import Detector, detector_from_config
from gendetect.errors import ModelFormatError
from gendetect.features import FeatureExtractor, extractor_from_config
from gendetect.features.extract import FeatureItem, Source, iter_features
from gendetect.imageio import DEFAULT_MAX_PIXELS, is_image_path
from gendetect.provenance import provenance

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "MODEL_CARD.md"
FORMAT_VERSION = 1
DEFAULT_MODEL = "default"


class DetectionPipeline:
    """Images -> P(fake) -> verdict.

    Args:
        extractor: turns an RGB image into a feature vector.
        detector: a fitted :class:`~gendetect.detectors.Detector` on those features.
        threshold: an image is called fake when ``P(fake) > threshold``.
        info: what the model records about itself: ``name``, ``threshold_rule``, ``training``, ``validation``...
        uncertain_from: optional abstain band: an image with ``uncertain_from < P(fake) <= threshold`` is called
            ``"uncertain"`` instead of real (chosen on validation data by ``train_pipeline``).
        calibrator: optional map from the detector's P(fake) to a calibrated P(fake), applied before the threshold.
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        detector: Detector,
        threshold: float = 0.5,
        info: dict[str, Any] | None = None,
        uncertain_from: float | None = None,
        calibrator: Calibrator | None = None,
    ) -> None:
        self.extractor = extractor
        self.detector = detector
        self.threshold = float(threshold)
        self.info = dict(info or {})
        self.uncertain_from = None if uncertain_from is None else float(uncertain_from)
        self.calibrator = calibrator

    @property
    def name(self) -> str:
        return str(self.info.get("name") or f"{self.extractor.name}+{self.detector.name}")

    @property
    def version(self) -> str:
        """Content hash of what decides a score: extractor and detector configs, threshold, band and weights."""
        h = hashlib.sha256()
        core = {
            "extractor": self.extractor.get_config(),
            "detector": self.detector.get_config(),
            "threshold": self.threshold,
            "uncertain_from": self.uncertain_from,
            "calibration": self.calibrator.get_config() if self.calibrator else None,
        }
        h.update(json.dumps(core, sort_keys=True, default=_json_default).encode())
        for key, arr in sorted(self.detector.state_dict().items()):
            h.update(key.encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:12]

    # -- scoring ---------------------------------------------------------------------------------------------
    def predict_proba_features(self, X: np.ndarray) -> np.ndarray:
        """``(N,)`` P(fake) for feature rows ``X`` ``(N, dim)`` (calibrated when the model has a calibrator)."""
        p = self.detector.predict_proba(np.asarray(X, dtype=np.float64))[:, 1]
        return self.calibrator(p) if self.calibrator is not None else p

    def predict_proba(self, images: Sequence[Image.Image]) -> np.ndarray:
        """``(N,)`` P(fake) of decoded RGB images."""
        return self.predict_proba_features(self.extractor.extract_batch(list(images)))

    def verdict(self, p_fake: float, threshold: float | None = None) -> str:
        """``"fake"`` above the threshold, ``"uncertain"`` inside the abstain band below it, else ``"real"``."""
        thr = self.threshold if threshold is None else threshold
        if p_fake > thr:
            return "fake"
        if self.uncertain_from is not None and self.uncertain_from < thr and p_fake > self.uncertain_from:
            return "uncertain"
        return "real"

    # -- persistence -----------------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "extractor": self.extractor.get_config(),
            "detector": self.detector.get_config(),
            "threshold": self.threshold,
            "uncertain_from": self.uncertain_from,
            "calibration": self.calibrator.get_config() if self.calibrator is not None else None,
            **{k: v for k, v in self.info.items() if k not in ("name", "path")},
        }

    def save(self, path: str | os.PathLike, *, card: str | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (+ ``MODEL_CARD.md``) into directory ``path``."""
        state = dict(self.detector.state_dict())
        if self.calibrator is not None:
            state.update(self.calibrator.state_dict())
        return write_model_dir(path, self.get_config(), state, card=card)

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | None = None) -> DetectionPipeline:
        """Load a model directory; ``device`` ("cpu", "cuda") overrides the extractor's, when it has one."""
        path = Path(path)
        if not path.is_dir():
            raise ModelFormatError(
                f"Model {str(path)!r} not found: expected a directory with {CONFIG_FILE} and {WEIGHTS_FILE} "
                "(as written by `gendetect train -o DIR`), or omit --model to use the embedded default."
            )
        for required in (CONFIG_FILE, WEIGHTS_FILE):
            if not (path / required).is_file():
                raise ModelFormatError(f"{path} is not a gendetect model: {required} is missing.")
        try:
            config = json.loads((path / CONFIG_FILE).read_text())
            state = load_file(str(path / WEIGHTS_FILE))
        except (json.JSONDecodeError, OSError, ValueError) as e:
            raise ModelFormatError(f"{path} is not a readable gendetect model: {e}") from e
        if config.get("format_version") != FORMAT_VERSION or "extractor" not in config or "detector" not in config:
            raise ModelFormatError(
                f"{path / CONFIG_FILE} is not a gendetect model config (format_version {FORMAT_VERSION} with "
                "'extractor' and 'detector'); a detector saved on its own loads with Detector.load()."
            )
        ext_config = config["extractor"]
        if device is not None and "device" in ext_config.get("params", {}):
            ext_config = {**ext_config, "params": {**ext_config["params"], "device": device}}
        extractor = extractor_from_config(ext_config)
        detector = detector_from_config(config["detector"]).load_state_dict(state)
        calibrator = calibrator_from_config(config.get("calibration"), state)
        own = ("format_version", "extractor", "detector", "threshold", "uncertain_from", "calibration")
        info = {k: v for k, v in config.items() if k not in own}
        info["path"] = str(path)
        return cls(
            extractor,
            detector,
            config["threshold"],
            info,
            uncertain_from=config.get("uncertain_from"),
            calibrator=calibrator,
        )

    def __repr__(self) -> str:
        return f"DetectionPipeline({self.extractor!r}, {self.detector!r}, threshold={self.threshold:.4g})"


def write_model_dir(
    path: str | os.PathLike, config: dict[str, Any], state: dict[str, np.ndarray], *, card: str | None = None
) -> Path:
    """Write a model directory from its config (extractor and detector configs, threshold...) and arrays.

    :meth:`DetectionPipeline.save` uses it; so do importers that convert foreign checkpoints without building the
    extractor (its weights may not be on this machine).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path / WEIGHTS_FILE))
    config = {"format_version": FORMAT_VERSION, **config}
    config.setdefault("provenance", provenance())
    (path / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True, default=_json_default) + "\n")
    if card is not None:
        (path / CARD_FILE).write_text(card)
    return path


def default_model_path() -> Path:
    """Directory of the embedded default model inside the installed package."""
    return Path(str(resources.files("gendetect") / "models" / DEFAULT_MODEL))


def load_model(
    model: str | os.PathLike | DetectionPipeline | None = None, *, device: str | None = None
) -> DetectionPipeline:
    """Load a saved model directory; ``None`` or ``"default"`` gives the embedded default detector.

    ``device`` ("cpu", "cuda") runs a torch extractor there; weight-free extractors ignore it.
    """
    if isinstance(model, DetectionPipeline):
        return model
    if model is None or str(model) == DEFAULT_MODEL:
        path = default_model_path()
        if not (path / CONFIG_FILE).exists():
            raise ModelFormatError(
                f"The embedded default model is missing from {path}; reinstall gendetect or run `make default-model`."
            )
        return DetectionPipeline.load(path, device=device)
    if not Path(os.fspath(model)).exists():
        from gendetect.zoo import is_zoo_name, load_zoo_model  # a published detector by name (gendetect models list)

        if is_zoo_name(os.fspath(model)):
            return load_zoo_model(os.fspath(model), device=device)
    return DetectionPipeline.load(model, device=device)


# -- scanning --------------------------------------------------------------------------------------------------
@dataclass
class ScanRow:
    """One scanned input. ``status`` is ``"ok"`` or ``"error"``; an error row says why in ``error``."""

    path: str
    status: str = "ok"
    p_fake: float | None = None
    verdict: str | None = None  # "fake" | "uncertain" | "real" | None on error
    error: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    mode: str | None = None
    jpeg_quality: int | None = None
    sha256: str | None = None
    model: str | None = None
    threshold: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        return {**d, **extra}


def expand_inputs(paths: Iterable[str | os.PathLike], *, recursive: bool = True) -> tuple[list[str], list[ScanRow]]:
    """Resolve files and folders into the image files to scan, plus error rows for inputs that give none.

    A folder contributes its image files (by extension, recursively); an explicit file is always scanned, whatever
    its extension, so a non-image named on the command line gets an error row. A missing path or a folder without
    images gets an error row of its own: nothing is dropped silently.
    """
    from gendetect.data.readers import list_images

    files: list[str] = []
    problems: list[ScanRow] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            try:
                found = list_images(path, recursive=recursive)
            except OSError as e:
                problems.append(ScanRow(str(path), status="error", error=f"cannot list folder: {e.strerror or e}"))
                continue
            if not found:
                problems.append(ScanRow(str(path), status="error", error="folder contains no image files"))
            _warn_skipped(path, recursive, len(found))
            files.extend(str(f) for f in found)
        elif path.exists():
            files.append(str(path))
        else:
            problems.append(ScanRow(str(path), status="error", error="no such file or directory"))
    return files, problems


def _warn_skipped(folder: Path, recursive: bool, n_images: int) -> None:
    """Say how many files of a folder were not scanned because their names are not image names."""
    pattern = "**/*" if recursive else "*"
    others = [
        p
        for p in folder.glob(pattern)
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and not is_image_path(p)
    ]
    if others:
        logger.warning(
            "%s: %d file(s) without an image extension were not scanned (e.g. %s); name them on the command line "
            "to scan them anyway",
            folder,
            len(others),
            others[0].name,
        )


def scan(
    sources: Iterable[Source],
    model: DetectionPipeline | str | os.PathLike | None = None,
    *,
    jobs: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    threshold: float | None = None,
    captions: Sequence[str | None] | None = None,
) -> Iterator[ScanRow]:
    """Score image files (or bytes) one by one; yields exactly one :class:`ScanRow` per source, in order.

    Args:
        sources: image paths or raw bytes. Use :func:`expand_inputs` to turn folders into files.
        model: a pipeline, a model directory, or ``None`` for the embedded default.
        jobs: worker processes for decoding and feature extraction.
        max_pixels: larger images are refused (decompression-bomb guard) with an error row.
        threshold: override the model's decision threshold on P(fake).
        captions: one caption (or None) per source, for models whose features use captions (Coccomini's
            ``with_text``); see :func:`find_captions`.
    """
    pipeline = load_model(model)
    thr = pipeline.threshold if threshold is None else float(threshold)
    sources = list(sources)
    use = pipeline.extractor.uses_captions and captions is not None
    items = iter_features(
        sources, pipeline.extractor, jobs=jobs, max_pixels=max_pixels, captions=list(captions) if use else None
    )
    for i, item in enumerate(items):
        row = _row(item, pipeline, thr)
        if pipeline.extractor.uses_captions:
            row.extra["has_caption"] = bool(use and captions[i])
        yield row


def find_captions(files: Sequence[str], manifest: str | os.PathLike | None = None) -> list[str | None]:
    """Captions for image files: from a manifest (CSV/JSONL/Parquet with ``path`` or ``file`` and ``caption``
    columns), else from a sidecar text file next to each image (``photo.jpg`` -> ``photo.txt``), else None."""
    by_path: dict[str, str] = {}
    if manifest is not None:
        from gendetect.data.readers import read_records

        by_path = {str(Path(r.path).resolve()): r.caption for r in read_records(manifest, probe=False) if r.caption}
    out: list[str | None] = []
    for f in files:
        caption = by_path.get(str(Path(f).resolve()))
        sidecar = Path(f).with_suffix(".txt")
        if caption is None and sidecar.is_file():
            caption = sidecar.read_text(encoding="utf-8", errors="replace").strip() or None
        out.append(caption)
    return out


def _row(item: FeatureItem, pipeline: DetectionPipeline, threshold: float) -> ScanRow:
    row = ScanRow(item.path, model=pipeline.name, threshold=threshold)
    if item.info is not None:
        for k in ("format", "width", "height", "mode", "jpeg_quality", "sha256"):
            setattr(row, k, getattr(item.info, k, None))
    if not item.ok:
        row.status, row.error = "error", item.error
        return row
    p = float(pipeline.predict_proba_features(item.features[None, :])[0])
    row.p_fake = p
    row.verdict = pipeline.verdict(p, threshold)
    return row


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


__all__ = [
    "DetectionPipeline",
    "ScanRow",
    "default_model_path",
    "expand_inputs",
    "find_captions",
    "is_image_path",
    "load_model",
    "scan",
]
