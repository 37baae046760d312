"""The one loop that turns image files into feature vectors, shared by ``scan``, ``train`` and ``evaluate``.

Every input yields exactly one :class:`FeatureItem`, in input order: either features plus the file facts, or an
error message. A corrupt file, a non-image or a decompression bomb becomes an error item; the loop goes on.

With ``jobs > 1`` decoding and extraction run in worker processes (the weight-free extractors are pure numpy and
scale with cores). Extractors that batch on an accelerator set ``batched = True``; then workers only decode and
the parent extracts in batches.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from gendetect.errors import ImageLoadError
from gendetect.features.base import FeatureExtractor, extractor_from_config
from gendetect.imageio import DEFAULT_MAX_PIXELS, ImageInfo, load_image_with_info

logger = logging.getLogger(__name__)

Source = str | os.PathLike | bytes


@dataclass
class FeatureItem:
    """The outcome for one input: ``features`` ``(dim,)`` float32 and ``info``, or ``error``."""

    path: str
    features: np.ndarray | None = None
    info: ImageInfo | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _name(source: Source, i: int) -> str:
    return f"<bytes #{i}>" if isinstance(source, bytes | bytearray) else str(source)


def _decode(source: Source, max_pixels: int) -> tuple[Image.Image | None, ImageInfo | None, str | None]:
    try:
        image, info = load_image_with_info(source, max_pixels=max_pixels)
        return image, info, None
    except ImageLoadError as e:
        return None, None, str(e)


def _extract_one(
    extractor: FeatureExtractor, image: Image.Image, caption: str | None = None
) -> tuple[np.ndarray | None, str | None]:
    try:
        if extractor.uses_captions:
            feats = np.asarray(extractor.extract_batch_with_captions([image], [caption])[0], dtype=np.float32)
        else:
            feats = np.asarray(extractor.extract_one(image), dtype=np.float32)
    except Exception as e:  # noqa: BLE001 - one bad image must not end a scan of thousands; the error is recorded
        logger.debug("feature extraction failed", exc_info=True)
        return None, f"feature extraction failed: {type(e).__name__}: {e}"
    if not np.isfinite(feats).all():
        return None, "feature extraction produced non-finite values"
    return feats, None


# -- worker-process side ------------------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(extractor_config: dict[str, Any] | None, max_pixels: int) -> None:
    # Numeric libraries must not each spawn one thread per core inside every worker.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    _WORKER["extractor"] = extractor_from_config(extractor_config) if extractor_config else None
    _WORKER["max_pixels"] = max_pixels


_Result = tuple[np.ndarray | None, ImageInfo | None, str | None, Image.Image | None]


def _work(args: tuple[int, Source]) -> _Result:
    return _process(args[1], _WORKER["extractor"], _WORKER["max_pixels"])


def _process(source: Source, extractor: FeatureExtractor | None, max_pixels: int) -> _Result:
    image, info, error = _decode(source, max_pixels)
    if error is not None:
        return None, None, error, None
    if extractor is None:  # batched extractor: the parent extracts
        return None, info, None, image
    feats, error = _extract_one(extractor, image)
    return feats, info, error, None


def iter_features(
    sources: Iterable[Source],
    extractor: FeatureExtractor,
    *,
    jobs: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    batch_size: int = 32,
    captions: Sequence[str | None] | None = None,
) -> Iterator[FeatureItem]:
    """Yield one :class:`FeatureItem` per source, in order.

    Args:
        sources: file paths or raw bytes.
        extractor: any :class:`FeatureExtractor`.
        jobs: worker processes; 1 runs in this process, 0 or less uses every core.
        max_pixels: images with more pixels (per their header) are refused before decoding.
        batch_size: batch size for extractors with ``batched = True``.
        captions: one caption (or None) per source, for caption-aware extractors (``uses_captions``).
    """
    if jobs <= 0:
        jobs = os.cpu_count() or 1
    sources = list(sources)
    names = [_name(s, i) for i, s in enumerate(sources)]
    caps = list(captions) if captions is not None else [None] * len(sources)
    if len(caps) != len(sources):
        raise ValueError(f"{len(caps)} captions for {len(sources)} sources")
    batched = bool(getattr(extractor, "batched", False)) or extractor.uses_captions
    indexed = enumerate(sources)

    if jobs == 1:
        inline = None if batched else extractor
        results: Iterable = (_process(source, inline, max_pixels) for _, source in indexed)
        yield from _collect(results, iter(names), extractor, batched, batch_size, caps)
        return

    config = None if batched else extractor.get_config()
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(config, max_pixels)) as pool:
        results = pool.map(_work, indexed, chunksize=4 if not batched else 1)
        yield from _collect(results, iter(names), extractor, batched, batch_size, caps)


def _collect(
    results: Iterable,
    names: Iterator[str],
    extractor: FeatureExtractor,
    batched: bool,
    batch_size: int,
    captions: list[str | None],
) -> Iterator[FeatureItem]:
    if not batched:
        for name, (feats, info, error, _) in zip(names, results):
            yield FeatureItem(name, feats, info, error)
        return
    pending: list[tuple[FeatureItem, Image.Image | None, str | None]] = []
    for name, caption, (_, info, error, image) in zip(names, captions, results):
        pending.append((FeatureItem(name, None, info, error), image, caption))
        if sum(im is not None for _, im, _ in pending) >= batch_size:
            yield from _flush(pending, extractor)
            pending = []
    yield from _flush(pending, extractor)


def _flush(
    pending: list[tuple[FeatureItem, Image.Image | None, str | None]], extractor: FeatureExtractor
) -> Iterator[FeatureItem]:
    images = [im for _, im, _ in pending if im is not None]
    caps = [cap for _, im, cap in pending if im is not None]
    try:
        feats = extractor.extract_batch_with_captions(images, caps) if images else np.zeros((0, extractor.dim))
        batch_error = None
    except Exception as e:  # noqa: BLE001 - fall back to one-by-one so a single bad image is isolated
        logger.debug("batch extraction failed, retrying per image", exc_info=True)
        batch_error = e
    j = 0
    for item, im, cap in pending:
        if im is not None:
            if batch_error is None:
                item.features = np.asarray(feats[j], dtype=np.float32)
            else:
                item.features, item.error = _extract_one(extractor, im, cap)
            j += 1
        yield item


def extract_features(
    sources: Sequence[Source],
    extractor: FeatureExtractor,
    *,
    jobs: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Any = None,
    captions: Sequence[str | None] | None = None,
) -> tuple[np.ndarray, list[FeatureItem]]:
    """Features of every source as one ``(N, dim)`` float32 array (NaN rows for failed items) plus the items.

    ``progress`` is an optional callable ``progress(iterator, total) -> iterator`` (e.g. a rich ``track``).
    """
    it: Iterable[FeatureItem] = iter_features(sources, extractor, jobs=jobs, max_pixels=max_pixels, captions=captions)
    if progress is not None:
        it = progress(it, len(sources))
    items = list(it)
    X = np.full((len(items), extractor.dim), np.nan, dtype=np.float32)
    for i, item in enumerate(items):
        if item.ok:
            X[i] = item.features
    return X, items
