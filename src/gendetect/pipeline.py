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

import functools
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from gendetect.atomic import user_mode
from gendetect.calibration import CALIBRATORS, Calibrator
from gendetect.config import CONFIG_FILE, WEIGHTS_FILE
from gendetect.detectors import DETECTORS, Detector
from gendetect.errors import ModelFormatError
from gendetect.features import EXTRACTORS, FeatureExtractor
from gendetect.features.extract import FeatureItem, Source, iter_features
from gendetect.imageio import DEFAULT_MAX_PIXELS, is_image_path, source_list
from gendetect.provenance import provenance

logger = logging.getLogger(__name__)

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
    @property
    def tiled(self) -> bool:
        """True when the extractor cuts images into tiles (``tiles``): scores are aggregated from tile scores."""
        return bool(getattr(self.extractor, "tiled", False))

    def predict_proba_features(self, X: np.ndarray) -> np.ndarray:
        """``(N,)`` P(fake) for feature rows ``X`` ``(N, dim)`` (calibrated when the model has a calibrator)."""
        p = self.detector.predict_proba(np.asarray(X, dtype=np.float64))[:, 1]
        return self.calibrator(p) if self.calibrator is not None else p

    def signal_of(self, features: np.ndarray) -> tuple[int, int, str | None]:
        """``(tiles, tiles with signal, the no-signal guard's reason or None)`` of one image's feature vector.

        An untiled model judges every image: ``(1, 1, None)``.
        """
        if not self.tiled:
            return 1, 1, None
        from gendetect.features.periodic import split_tiles, unpack_tiles

        _, signal, _ = split_tiles(unpack_tiles(np.asarray(features, np.float32), self.extractor.tile_width))
        n_signal = int(signal.sum())
        return len(signal), n_signal, no_signal_reason(len(signal), n_signal)

    def score_tile_rows(self, rows: np.ndarray) -> TileScores:
        """Score the tiles of one image: ``rows`` ``(n, tile_width)`` from ``TiledFeatures.extract_tiles``, or the
        packed vector ``extract_one`` gives.

        The rule (the ``tiled`` detector's): every tile with forensic signal is scored, and the image's log-odds
        aggregates its tiles' log-odds by the detector's ``aggregate`` (the mean by default; the median or a
        trimmed mean). Not a maximum, so that a large photo with many tiles is not more likely to be called fake
        than a small one. The calibrator, when there is one, maps the aggregated
        P(fake). An image without any tile with signal has no score: the no-signal guard (:func:`no_signal_reason`).
        """
        from gendetect.features.periodic import split_tiles, unpack_tiles

        width = self.extractor.tile_width
        rows = np.asarray(rows, np.float32)
        rows = unpack_tiles(rows, width) if rows.ndim == 1 else rows
        boxes, signal, _ = split_tiles(rows)
        logit = np.full(len(boxes), np.nan)
        if signal.any():
            logit[signal] = self.detector.tile_decision(rows[signal])
        p_image = None
        reason = no_signal_reason(len(boxes), int(signal.sum()))
        if reason is None:
            p = np.asarray([1.0 / (1.0 + np.exp(-self.detector.image_decision(logit[signal])))])
            p_image = float((self.calibrator(p) if self.calibrator is not None else p)[0])
        return TileScores(
            boxes=boxes, signal=signal, p_fake=1.0 / (1.0 + np.exp(-logit)), p_image=p_image, reason=reason
        )

    def score_tiles(self, image: Image.Image) -> TileScores:
        """Per-tile and whole-image P(fake) of one decoded RGB image (a one-tile result for untiled models)."""
        image = _as_rgb(image)
        if self.tiled:
            return self.score_tile_rows(self.extractor.extract_tiles(image))
        p = float(self.predict_proba([image])[0])
        box = np.asarray([[0, 0, image.width, image.height]])
        return TileScores(boxes=box, signal=np.ones(1, bool), p_fake=np.asarray([p]), p_image=p, reason=None)

    def predict_proba(self, images: Sequence[Image.Image]) -> np.ndarray:
        """``(N,)`` P(fake) of decoded images (NaN for an image a tiled model finds no signal in).

        Images in any PIL mode (CMYK, 16-bit, palette, alpha...) are converted as :func:`scan` converts files.
        """
        images = [_as_rgb(im) for im in images]
        if self.tiled:
            scores = [self.score_tiles(im).p_image for im in images]
            return np.asarray([np.nan if p is None else p for p in scores], dtype=np.float64)
        return self.predict_proba_features(self.extractor.extract_batch(list(images)))

    def verdict(self, p_fake: float, threshold: float | None = None) -> str:
        """``"fake"`` above the threshold, ``"uncertain"`` inside the abstain band below it, else ``"real"``."""
        thr = self.threshold if threshold is None else threshold
        if p_fake > thr:
            return "fake"
        band = self.band_start(thr)
        if band is not None and p_fake > band:
            return "uncertain"
        return "real"

    def band_start(self, threshold: float | None = None) -> float | None:
        """Where the ``uncertain`` band starts under ``threshold`` (default: the model's): ``uncertain_from``, or
        None when the model has no band or the threshold is at or below it (then nothing is uncertain)."""
        thr = self.threshold if threshold is None else threshold
        return self.uncertain_from if self.uncertain_from is not None and self.uncertain_from < thr else None

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
        except (json.JSONDecodeError, OSError, ValueError, SafetensorError) as e:
            raise ModelFormatError(
                f"{path} is not a readable gendetect model: {e} (a damaged {CONFIG_FILE} or {WEIGHTS_FILE}; save or "
                "copy the model again)"
            ) from e
        if config.get("format_version") != FORMAT_VERSION or "extractor" not in config or "detector" not in config:
            raise ModelFormatError(
                f"{path / CONFIG_FILE} is not a gendetect model config (format_version {FORMAT_VERSION} with "
                "'extractor' and 'detector'); a detector saved on its own loads with Detector.load()."
            )
        ext_config = config["extractor"]
        if device is not None and "device" in ext_config.get("params", {}):
            ext_config = {**ext_config, "params": {**ext_config["params"], "device": device}}
        extractor = EXTRACTORS.from_config(ext_config)
        detector = DETECTORS.from_config(config["detector"]).load_state_dict(state)
        cal_config = config.get("calibration")
        calibrator = CALIBRATORS.from_config(cal_config).load_state_dict(state) if cal_config else None
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
    user_mode(path / WEIGHTS_FILE)
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


@dataclass
class TileScores:
    """What a model saw in one image: per-tile boxes ``(n, 4)`` int ``(x0, y0, x1, y1)``, which tiles carried
    forensic signal ``(n,)`` bool, tile P(fake) ``(n,)`` float (NaN without signal), the image's P(fake) (None when
    the no-signal guard applies) and that guard's reason."""

    boxes: np.ndarray
    signal: np.ndarray
    p_fake: np.ndarray
    p_image: float | None
    reason: str | None = None


def no_signal_reason(n_tiles: int, n_signal: int) -> str | None:
    """Why an image cannot be judged by pixel forensics, or None when it can.

    An image smaller than the model's smallest tile (64 px by default) has no tile at all; an image whose every
    tile is flat, blank or text-like (see :func:`gendetect.features.periodic.tile_signal`) has no tile with
    signal. Such images get the verdict ``uncertain``, never ``fake``.
    """
    if n_tiles == 0:
        return "no signal: the image is too small for pixel forensics"
    if n_signal == 0:
        return "no signal: the image is flat, blank or text-like, so there is no texture to measure"
    return None


# -- scanning --------------------------------------------------------------------------------------------------
@dataclass
class ScanRow:
    """One scanned input. ``status`` is ``"ok"`` or ``"error"``; an error row says why in ``error``.

    Every row of one scan has the same keys (:func:`scan_columns`; None where a value does not apply, e.g. the
    score of an error row), so that JSON, JSONL, CSV and Parquet consumers see one schema.
    """

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
    uncertain_from: float | None = None  # the band's lower edge: the verdict follows from p_fake and these two
    reason: str | None = None  # why the verdict is "uncertain" without a score (the no-signal guard)
    verdict_source: str | None = None  # "provenance" | "watermark" | "metadata" | "pixels" (gendetect.evidence)
    findings: list[dict[str, Any]] = field(default_factory=list)  # evidence Finding.to_dict()s, JSON-serialisable
    evidence: str | None = None  # the strongest findings in a few words, for tables and CSV
    n_frames: int | None = None  # frames or pages in the file (1 for a still image); only the first is judged
    warnings: list[str] = field(default_factory=list)  # what the decoder warned about the file ("Corrupt EXIF data")
    extra: dict[str, Any] = field(default_factory=dict)  # the run's other columns (scan_columns), then any others

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        return {**d, **extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScanRow:
        """The row back from :meth:`to_dict` (e.g. read from a shard file): unknown keys go to ``extra``.

        ``ScanRow.from_dict(row.to_dict()).to_dict() == row.to_dict()``, keys in the same order.
        """
        own = {f.name for f in fields(cls)} - {"extra"}
        row = cls(**{k: v for k, v in d.items() if k in own})
        row.extra = {k: v for k, v in d.items() if k not in own}
        return row

    def stamp(self, pipeline: DetectionPipeline, threshold: float | None = None) -> ScanRow:
        """Record the model and the rule that judged (or would have judged) this row: its name, ``threshold``
        (default: the model's) and where the ``uncertain`` band starts, so that the verdict can be re-derived from
        ``p_fake``: ``fake`` above ``threshold``, ``uncertain`` above ``uncertain_from`` (when set), else ``real``."""
        thr = pipeline.threshold if threshold is None else float(threshold)
        self.model, self.threshold, self.uncertain_from = pipeline.name, thr, pipeline.band_start(thr)
        return self

    @classmethod
    def problem(cls, path: str, error: str) -> ScanRow:
        """The row of an input that was not scored (missing, unreadable, refused), with the reason."""
        return cls(str(path), status="error", error=error)

    def conform(self, columns: Sequence[str]) -> ScanRow:
        """Give the row each key of ``columns`` (:func:`scan_columns`) in ``extra``, in that order, None where it
        has no value: an error row gets the keys a scored row of the same scan has."""
        self.extra = {**{k: self.extra.get(k) for k in columns}, **self.extra}
        return self


def scan_columns(pipeline: DetectionPipeline, evidence: bool | Sequence[str] = True) -> tuple[str, ...]:
    """The keys every row of a scan with this model and ``evidence`` setting carries beyond :class:`ScanRow`'s
    fields (in :attr:`ScanRow.extra`): ``tiles`` and ``signal_tiles`` for a tiled model, ``pixel_verdict``,
    ``evidence_rule`` and ``evidence_skipped`` when the evidence is read, ``has_caption`` for a caption-aware model.
    """
    columns: list[str] = ["tiles", "signal_tiles"] if pipeline.tiled else []
    if evidence is not False:
        columns += _evidence_columns()
    if pipeline.extractor.uses_captions:
        columns.append("has_caption")
    return tuple(columns)


@functools.cache
def _evidence_columns() -> tuple[str, ...]:
    from gendetect.evidence import EvidenceReport

    own = {f.name for f in fields(ScanRow)}
    return tuple(k for k in EvidenceReport().row_fields(None) if k not in own)


def expand_inputs(
    paths: Iterable[str | os.PathLike], *, recursive: bool = True, skipped: dict[str, int] | None = None
) -> tuple[list[str], list[ScanRow]]:
    """Resolve files and folders into the image files to scan, plus error rows for inputs that give none.

    A folder contributes its image files (by extension, recursively), including image files gendetect cannot
    decode (SVG, camera RAW), which get an error row saying why; a sub-folder that cannot be listed gets an error
    row and the rest of the folder is still scanned. An explicit file is always scanned, whatever its name or kind
    (hidden, not an image, unreadable, a FIFO), so that it gets a row. A missing path or a folder without images
    gets an error row of its own: nothing is dropped silently.

    Args:
        skipped: when given, counts of what folders held that was not scanned are added to it: ``"hidden"``
            (names starting with ``.``; a hidden folder counts once), ``"not an image name"`` and ``"folder link
            (not followed)"``.
    """
    import stat

    from gendetect.data.readers import walk_images

    files: list[str] = []
    problems: list[ScanRow] = []
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    for p in paths:
        path = Path(p).expanduser() if isinstance(p, str | os.PathLike) else Path(p)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            problems.append(ScanRow(str(path), status="error", error="no such file or directory"))
            continue
        except OSError as e:  # permission denied on a parent folder, a symlink loop, a name too long...
            problems.append(ScanRow(str(path), status="error", error=f"cannot access: {e.strerror or e}"))
            continue
        if not stat.S_ISDIR(st.st_mode):
            files.append(str(path))
            continue
        listing = walk_images(path, recursive=recursive, image_like=True)
        for folder, reason in listing.unlistable:
            problems.append(ScanRow(str(folder), status="error", error=f"cannot list folder: {reason}"))
        if not listing.images and not listing.unlistable:
            problems.append(ScanRow(str(path), status="error", error="folder contains no image files"))
        _warn_skipped(path, listing)
        if skipped is not None:
            for key, n in (
                ("hidden", listing.hidden),
                ("not an image name", listing.not_images),
                ("folder link (not followed)", listing.folder_links),
            ):
                if n:
                    skipped[key] = skipped.get(key, 0) + n
        files.extend(str(f) for f in listing.images)
    return files, problems


@dataclass
class ScanInputs:
    """What a scan will read: the files to score, and a row for every input that gives no file.

    Args:
        files: image files to scan, in order.
        problems: error rows (:meth:`ScanRow.problem`) for inputs that were refused before scanning: missing paths,
            folders without images, sub-folders that cannot be listed, a server's confinement refusals...
        names: the path each file's row shows (default: the file's path), e.g. a path relative to a server root.
        skipped: counts of what folders held that was not scanned (``"hidden"``, ``"not an image name"``,
            ``"folder link (not followed)"``).
    """

    files: list[str] = field(default_factory=list)
    problems: list[ScanRow] = field(default_factory=list)
    names: list[str] | None = None
    skipped: dict[str, int] = field(default_factory=dict)

    @classmethod
    def expand(cls, paths: Iterable[str | os.PathLike] | str | os.PathLike, *, recursive: bool = True) -> ScanInputs:
        """Files and folders resolved by :func:`expand_inputs` (one str or Path is one input)."""
        skipped: dict[str, int] = {}
        files, problems = expand_inputs(paths, recursive=recursive, skipped=skipped)
        return cls(files, problems, None, skipped)

    @property
    def total(self) -> int:
        """Rows the scan gives: one per file plus one per problem."""
        return len(self.files) + len(self.problems)


def _warn_skipped(folder: Path, listing: Any) -> None:
    """Say how many entries of a folder were not scanned, and why (not an image name; hidden)."""
    if listing.not_images:
        logger.warning(
            "%s: %d file(s) without an image extension were not scanned (e.g. %s); name them on the command line "
            "to scan them anyway",
            folder,
            listing.not_images,
            listing.examples.get("not_images"),
        )
    if listing.folder_links:
        logger.warning(
            "%s: %d link(s) to folders were not followed (e.g. %s); name the folder on the command line to scan it",
            folder,
            listing.folder_links,
            listing.examples.get("folder_links"),
        )
    if listing.hidden:
        logger.info(
            "%s: %d hidden file(s) or folder(s) were not scanned (e.g. %s); name them on the command line to scan "
            "them anyway",
            folder,
            listing.hidden,
            listing.examples.get("hidden"),
        )


SCORE_BATCH = 64  # feature rows scored per call of the detector, at most
SCORE_PIXELS = 4_000_000  # image pixels per call, at most: large photos are scored (and their rows written) one by one


def scan(
    sources: Iterable[Source] | Source,
    model: DetectionPipeline | str | os.PathLike | None = None,
    *,
    jobs: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    threshold: float | None = None,
    captions: Sequence[str | None] | None = None,
    evidence: bool | Sequence[str] = True,
    batch_size: int = SCORE_BATCH,
) -> Iterator[ScanRow]:
    """Score image files (or bytes); yields exactly one :class:`ScanRow` per source, in order, all with the same keys.

    The scoring core of every scan: :func:`gendetect.scale.scan_paths` (the CLI's ``scan``, the server's jobs),
    the sharded engines' shards, the server's uploads and :func:`detect` all end here. Decoding and feature
    extraction run per image (in ``jobs`` worker processes); the detector scores up to ``batch_size`` feature rows
    per call (:func:`score_items`), and the rows of a batch are yielded together. A batch is scored once it holds
    ``batch_size`` images or ``SCORE_PIXELS`` pixels, so that the rows of large photos, slow to decode and extract,
    stream out one by one while small images share a call. The batches depend on the inputs alone, never on timing,
    so a rerun scores every image in the same company and gives the same bits (some detectors' matrix products
    differ in the last bit with the batch's size). On a ``KeyboardInterrupt`` during extraction the items already
    extracted are scored and yielded before the interrupt is raised again, so a writer keeps their rows.

    Args:
        sources: image paths or raw bytes; one path (str or Path) or one ``bytes`` is one input. Use
            :func:`expand_inputs` (or :func:`gendetect.scale.scan_paths`) to turn folders into files.
        model: a pipeline, a model directory, or ``None`` for the embedded default.
        jobs: worker processes for decoding and feature extraction.
        max_pixels: larger images are refused (decompression-bomb guard) with an error row.
        threshold: override the model's decision threshold on P(fake).
        captions: one caption (or None) per source, for models whose features use captions (Coccomini's
            ``with_text``); see :func:`find_captions`.
        evidence: read what the file says about its origin (metadata, C2PA, watermark; :mod:`gendetect.evidence`)
            and fuse it with the pixel verdict (``findings``, ``verdict_source``); a list names the checks to run;
            ``False`` reports the pixel verdict alone.
        batch_size: feature rows per call of the detector.
    """
    pipeline = load_model(model)
    thr = pipeline.threshold if threshold is None else float(threshold)
    # one path or one image's bytes is one input, not a sequence of characters or bytes
    sources = source_list(sources)
    use = pipeline.extractor.uses_captions and captions is not None
    on_file = None if evidence is False else _EvidenceFn(None if evidence is True else tuple(evidence), max_pixels)
    items = iter_features(
        sources,
        pipeline.extractor,
        jobs=jobs,
        max_pixels=max_pixels,
        captions=list(captions) if use else None,
        item_fn=on_file,  # the evidence checks run next to decoding, in the workers with --jobs N
    )
    done = 0
    columns = scan_columns(pipeline, evidence)

    def rows_of(batch: list[FeatureItem]) -> Iterator[ScanRow]:
        nonlocal done
        for row, it in zip(score_items(batch, pipeline, thr), batch):
            if row.status == "ok":
                fuse_evidence(row, sources[done], evidence, max_pixels, report=it.extra)
            if pipeline.extractor.uses_captions:
                row.extra["has_caption"] = bool(use and captions[done])
            done += 1
            yield row.conform(columns)  # an error row has the keys of a scored one

    batch: list[FeatureItem] = []
    pixels = 0
    while True:
        try:
            item = next(items, None)
        except KeyboardInterrupt:
            yield from rows_of(batch)  # what was extracted before the interrupt is not lost
            raise
        if item is not None:
            batch.append(item)
            if item.info is not None:
                pixels += (item.info.width or 0) * (item.info.height or 0)
            if len(batch) < max(1, batch_size) and pixels < SCORE_PIXELS:
                continue
        yield from rows_of(batch)
        batch, pixels = [], 0
        if item is None:
            return


def score_items(items: Sequence[FeatureItem], pipeline: DetectionPipeline, threshold: float) -> list[ScanRow]:
    """The rows of a batch of extracted items: file facts, then P(fake) and the pixel verdict.

    One call of the detector scores every item with features (``predict_proba_features`` on an ``(n, dim)``
    array). An item that failed keeps its error; an image a tiled model finds no forensic signal in gets the
    verdict ``uncertain`` with its reason and no score (:func:`no_signal_reason`).
    """
    rows = [ScanRow(item.path).stamp(pipeline, threshold) for item in items]
    scored: list[int] = []
    for i, (row, item) in enumerate(zip(rows, items)):
        row.warnings = list(item.warnings)
        if item.info is not None:
            for k in ("format", "width", "height", "mode", "jpeg_quality", "sha256", "n_frames"):
                setattr(row, k, getattr(item.info, k, None))
        if not item.ok:
            row.status, row.error = "error", item.error
            continue
        if pipeline.tiled:
            n_tiles, n_signal, reason = pipeline.signal_of(item.features)
            row.extra["tiles"], row.extra["signal_tiles"] = n_tiles, n_signal
            if reason is not None:
                row.verdict, row.reason = "uncertain", reason
                continue
        scored.append(i)
    if scored:
        p = pipeline.predict_proba_features(np.stack([items[i].features for i in scored]))
        for i, p_fake in zip(scored, p):
            rows[i].p_fake = float(p_fake)
            rows[i].verdict = pipeline.verdict(rows[i].p_fake, threshold)
    return rows


@dataclass(frozen=True)
class _EvidenceFn:
    """Picklable ``collect(source)`` for :func:`iter_features`'s ``item_fn``."""

    checks: tuple[str, ...] | None
    max_pixels: int

    def __call__(self, source: Source) -> Any:
        from gendetect.evidence import collect

        return collect(source, checks=None if self.checks is None else list(self.checks), max_pixels=self.max_pixels)


def fuse_evidence(
    row: ScanRow,
    source: Source,
    evidence: bool | Sequence[str] = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    report: Any = None,
) -> None:
    """Fuse the file's evidence into a scored ``row``, in place (verdict, verdict_source, findings, evidence).

    ``report`` is the :class:`~gendetect.evidence.EvidenceReport` when it was collected already (next to decoding);
    otherwise the checks run here on ``source`` (its path or bytes). ``evidence=False`` marks the pixel verdict as
    the row's (``verdict_source="pixels"``); a list names the checks. See :mod:`gendetect.evidence`.
    """
    if evidence is False:
        row.verdict_source = "pixels"
        return
    from gendetect.evidence import collect
    from gendetect.imageio import recording_warnings

    if report is None or isinstance(report, Exception):  # not collected next to decoding (or it failed there)
        with recording_warnings() as caught:  # what Pillow says reading the file again goes to the row too
            report = collect(source, checks=None if evidence is True else list(evidence), max_pixels=max_pixels)
        row.warnings = [*(row.warnings or []), *(w for w in caught if w not in (row.warnings or []))]
    fields = report.row_fields(row.verdict)
    row.verdict, row.verdict_source = fields.pop("verdict"), fields.pop("verdict_source")
    row.findings, row.evidence = fields.pop("findings"), fields.pop("evidence")
    row.extra.update(fields)


def detect(
    image: Image.Image | Source,
    model: DetectionPipeline | str | os.PathLike | None = None,
    **options: Any,
) -> ScanRow:
    """Judge one image: a path, raw bytes, or a PIL image in any mode. Returns its :class:`ScanRow`.

    A PIL image is converted exactly as :func:`scan` converts a decoded file (:func:`gendetect.imageio.to_rgb`:
    CMYK, 16-bit, palette, alpha on white...); it has no file, so no file evidence (metadata, C2PA) is read from
    it. ``options`` are :func:`scan`'s (``threshold``, ``evidence``, ``max_pixels``...).

    Example:
        >>> from PIL import Image
        >>> from gendetect import detect
        >>> detect(Image.new("RGB", (300, 300), "white")).verdict   # doctest: +SKIP
        'uncertain'
    """
    if isinstance(image, Image.Image):
        import io

        from gendetect.imageio import to_rgb

        buf = io.BytesIO()
        to_rgb(image).save(buf, "PNG")  # lossless: the pixels the model sees are the converted pixels
        options.setdefault("evidence", False)
        row = next(iter(scan([buf.getvalue()], model, **options)))
        row.path = "<image>"
        return row
    return next(iter(scan([image], model, **options)))


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


def _as_rgb(image: Image.Image) -> Image.Image:
    """An RGB image the way :func:`gendetect.imageio.load_image` makes one from a file."""
    if image.mode == "RGB":
        return image
    from gendetect.imageio import to_rgb

    return to_rgb(image)


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
    "ScanInputs",
    "ScanRow",
    "TileScores",
    "default_model_path",
    "detect",
    "expand_inputs",
    "find_captions",
    "fuse_evidence",
    "is_image_path",
    "load_model",
    "scan",
    "scan_columns",
    "score_items",
]
