"""The one loop that turns image files into feature vectors, shared by ``scan``, ``train`` and ``evaluate``.

Every input yields exactly one :class:`FeatureItem`, in input order: either features plus the file facts, or an
error message. A corrupt file, a non-image or a decompression bomb becomes an error item; the loop goes on.

With ``jobs > 1`` decoding and extraction run in a :class:`WorkerPool` (the weight-free extractors are pure numpy
and scale with cores). Extractors that batch on an accelerator set ``batched = True``; then workers only decode and
the parent extracts in batches.

The pool is started once per run, after the model is loaded: on Linux its workers are forked from the parent and
inherit the loaded extractor (no re-import, no re-load), with the parent's objects frozen out of the garbage
collector (``gc.freeze``) so that the workers do not copy the pages the collector would touch. Items travel in small
chunks with a bounded number in flight, so memory does not grow with the number of inputs, and results come back in
input order. A worker that dies (a decoder crash, the OOM killer) breaks the pool: its lost items are retried one at
a time in a fresh pool, and an item that kills a worker again gets an error row; the run goes on.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import gc
import itertools
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
from PIL import Image

from gendetect.errors import ImageLoadError
from gendetect.features.base import EXTRACTORS, FeatureExtractor
from gendetect.imageio import (
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    Source,
    load_image_with_info,
    recording_warnings,
    source_name,
)

logger = logging.getLogger(__name__)

CRASH_ERROR = (
    "a worker process died while reading this file, and again when it was retried alone in a fresh worker "
    "(a decoder crash or the out-of-memory killer); scan it with --jobs 1 to see the error"
)


@dataclass
class FeatureItem:
    """The outcome for one input: ``features`` ``(dim,)`` float32 and ``info``, or ``error``."""

    path: str
    features: np.ndarray | None = None
    info: ImageInfo | None = None
    error: str | None = None
    extra: Any = None  # what ``item_fn`` returned for this source (computed where the item was decoded)
    warnings: list[str] = field(default_factory=list)  # what the decoder (and item_fn) warned about this file

    @property
    def ok(self) -> bool:
        return self.error is None


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


# (features, info, error, decoded image for the parent to extract, item_fn's result, warnings raised reading the file)
_Result = tuple[np.ndarray | None, ImageInfo | None, str | None, Image.Image | None, Any, list[str]]
ItemFn = Callable[[Source], Any]


def _process(
    source: Source, extractor: FeatureExtractor | None, max_pixels: int, item_fn: ItemFn | None = None
) -> _Result:
    with recording_warnings() as caught:  # what Pillow says about this file goes to its row, not bare to stderr
        image, info, error = _decode(source, max_pixels)
        extra = _call(item_fn, source) if error is None else None  # item_fn reads the file again (evidence)
    if error is not None:
        return None, None, error, None, None, caught
    if extractor is None:  # batched extractor: the parent extracts
        return None, info, None, image, extra, caught
    feats, error = _extract_one(extractor, image)
    return feats, info, error, None, extra, caught


def _call(item_fn: ItemFn | None, source: Source) -> Any:
    if item_fn is None:
        return None
    try:
        return item_fn(source)
    except Exception as e:  # noqa: BLE001 - the hook's failure is the item's extra, never the scan's end
        logger.debug("item_fn failed on %s", source, exc_info=True)
        return e


# -- the allocator ---------------------------------------------------------------------------------------------
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_TUNED: list[bool] = []


def tune_allocator(mmap_threshold: int = 32 * 2**20, trim_threshold: int = 128 * 2**20) -> bool:
    """Keep glibc from returning and re-faulting the per-crop temporaries of every image (issue 17).

    By default glibc serves blocks above 128 KiB with ``mmap`` and trims the heap when 128 KiB are free at its top,
    so the megabyte-sized arrays the extractors make per crop are unmapped on free and page-faulted back on the next
    image: thousands of page faults and a third of the CPU time per small image went to the kernel. This raises
    both thresholds: blocks up to ``mmap_threshold`` come from the heap, which keeps up to ``trim_threshold`` bytes
    of free memory for reuse. A bounded, one-off cost, not growth: whole decoded photos (above 32 MiB) are still
    mapped and returned.

    Only the CLI and worker processes call this (never on import). Does nothing, and returns False, off glibc, when
    the user set ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``/``GLIBC_TUNABLES`` themselves, or with
    ``GENDETECT_MALLOC_TUNE=0``.
    """
    if _TUNED:
        return _TUNED[0]
    ok = False
    user_set = any(v in os.environ for v in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"))
    if (
        sys.platform.startswith("linux")
        and _glibc()
        and not user_set
        and os.environ.get("GENDETECT_MALLOC_TUNE", "1") != "0"
    ):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            ok = bool(libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(
                libc.mallopt(M_TRIM_THRESHOLD, int(trim_threshold))
            )
        except (OSError, AttributeError):  # no libc to load, or one without mallopt
            ok = False
    _TUNED.append(ok)
    logger.debug("allocator thresholds %s", "raised" if ok else "left at their defaults")
    return ok


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        return False


# -- worker-process side ------------------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(extractor_config: dict[str, Any] | None, inherit: bool) -> None:
    """Worker initialiser. Forked workers inherit the parent's extractor (``inherit``); spawned ones rebuild it."""
    # Numeric libraries must not each spawn one thread per core inside every worker.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if inherit:  # forked: numpy's BLAS pool already exists, and the variables above come too late for it
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(1)
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            pass
    tune_allocator()
    if not inherit:
        _WORKER["extractor"] = EXTRACTORS.from_config(extractor_config) if extractor_config else None


def _work_chunk(sources: list[Source], max_pixels: int, item_fn: ItemFn | None = None) -> list[_Result]:
    extractor = _WORKER.get("extractor")
    return [_process(source, extractor, max_pixels, item_fn) for source in sources]


def _ping() -> int:
    return os.getpid()


class WorkerPool:
    """Worker processes that decode images and extract features with one extractor, for a whole run.

    Start it after the model is loaded; every :func:`iter_features` call with the same extractor and ``jobs > 1``
    made while it is open (``with pool:``) uses it, so the sharded engine keeps one pool across its shards.

    Args:
        extractor: the loaded extractor. Forked workers inherit it; elsewhere they rebuild it from its config.
        jobs: worker processes (0 or less: every core).
        extract: False for batched extractors: the workers only decode and the parent extracts.
        chunk_size: items per task sent to a worker (amortises the inter-process hop).
        in_flight: tasks queued per worker; bounds memory whatever the number of inputs.
    """

    _open: ClassVar[list[WorkerPool]] = []  # pools inside a ``with`` block, innermost last

    def __init__(
        self,
        extractor: FeatureExtractor,
        jobs: int,
        *,
        extract: bool | None = None,
        chunk_size: int | None = None,
        in_flight: int = 4,
    ) -> None:
        self.extractor = extractor
        self.jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
        batched = bool(getattr(extractor, "batched", False)) or extractor.uses_captions
        self.extract = (not batched) if extract is None else extract
        self.chunk_size = chunk_size or (4 if self.extract else 1)
        self.in_flight = max(1, in_flight) * self.jobs
        self.restarts = 0
        self._executor: ProcessPoolExecutor | None = None
        methods = multiprocessing.get_all_start_methods()
        self._fork = sys.platform.startswith("linux") and "fork" in methods

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> WorkerPool:
        """Start the workers now (idempotent)."""
        if self._executor is not None:
            return self
        tune_allocator()  # before the fork: the workers inherit the settings
        if self._fork:
            _WORKER["extractor"] = self.extractor if self.extract else None
            ctx = multiprocessing.get_context("fork")
            config = None
        else:
            ctx = multiprocessing.get_context()
            config = self.extractor.get_config() if self.extract else None
        gc.collect()
        gc.freeze()  # the parent's objects move to a generation the workers' collector never touches
        try:
            self._executor = ProcessPoolExecutor(
                max_workers=self.jobs, mp_context=ctx, initializer=_init_worker, initargs=(config, self._fork)
            )
            # the first submit launches every worker (for fork); wait until they are up before unfreezing
            for f in [self._executor.submit(_ping) for _ in range(self.jobs)]:
                f.result()
        except BrokenProcessPool:
            logger.warning("worker pool failed to start; items will be retried in a fresh pool")
        finally:
            gc.unfreeze()
        return self

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _restart(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self.restarts += 1
        self.start()

    def __enter__(self) -> Self:
        self.start()
        WorkerPool._open.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self in WorkerPool._open:
            WorkerPool._open.remove(self)
        self.close()

    @classmethod
    def active(cls, extractor: FeatureExtractor) -> WorkerPool | None:
        """The innermost open pool for this extractor, if any."""
        for pool in reversed(cls._open):
            if pool.extractor is extractor:
                return pool
        return None

    # -- work -------------------------------------------------------------------------------------------------
    def imap(
        self, sources: Iterable[Source], max_pixels: int = DEFAULT_MAX_PIXELS, item_fn: ItemFn | None = None
    ) -> Iterator[_Result]:
        """One result per source, in order; at most ``in_flight`` chunks are queued at a time. ``item_fn`` (a
        picklable callable) runs on each decoded source in the worker; its result is the last field."""
        self.start()
        pending: collections.deque[tuple[Future | None, list[Source]]] = collections.deque()
        it = iter(sources)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self.in_flight:
                    chunk = list(_take(it, self.chunk_size))
                    if not chunk:
                        exhausted = True
                        break
                    pending.append((self._submit(chunk, max_pixels, item_fn), chunk))
                if not pending:
                    return
                future, chunk = pending.popleft()
                try:
                    if future is None:
                        raise BrokenProcessPool("the pool was already broken")
                    results = future.result()
                except BrokenProcessPool:
                    lost = [(future, chunk), *pending]
                    pending.clear()
                    yield from self._recover(lost, max_pixels, item_fn)
                    continue
                yield from results
        finally:
            for future, _ in pending:
                if future is not None:
                    future.cancel()

    def _submit(self, chunk: list[Source], max_pixels: int, item_fn: ItemFn | None = None) -> Future | None:
        if self._executor is None:
            return None
        try:
            return self._executor.submit(_work_chunk, chunk, max_pixels, item_fn)
        except BrokenProcessPool:  # broken between two submits: the caller recovers
            return None

    def _recover(
        self, lost: list[tuple[Future | None, list[Source]]], max_pixels: int, item_fn: ItemFn | None
    ) -> Iterator[_Result]:
        """Results of the chunks in flight when a worker died: finished ones as they are, the others retried one
        item at a time in a fresh pool, so the item that kills a worker is known exactly."""
        n_items = sum(len(chunk) for _, chunk in lost)
        logger.warning("a worker process died; retrying its %d queued item(s) one by one in a fresh pool", n_items)
        self._restart()
        for future, chunk in lost:
            done = future is not None and future.done() and not future.cancelled() and future.exception() is None
            if done:
                yield from future.result()
                continue
            for source in chunk:
                yield self._retry_one(source, max_pixels, item_fn)

    def _retry_one(self, source: Source, max_pixels: int, item_fn: ItemFn | None) -> _Result:
        for attempt in range(2):
            future = self._submit([source], max_pixels, item_fn)
            try:
                if future is None:
                    raise BrokenProcessPool("the pool was already broken")
                return future.result()[0]
            except BrokenProcessPool:
                self._restart()
                if attempt == 0 and future is None:  # the fresh pool itself had not started: one more go
                    continue
                break
        logger.warning("%s: a worker died on it again; recording an error row", source)
        return None, None, CRASH_ERROR, None, None, []


def _take(it: Iterator[Source], n: int) -> Iterator[Source]:
    for _ in range(n):
        try:
            yield next(it)
        except StopIteration:
            return


def iter_features(
    sources: Iterable[Source],
    extractor: FeatureExtractor,
    *,
    jobs: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    batch_size: int = 32,
    captions: Sequence[str | None] | None = None,
    pool: WorkerPool | None = None,
    item_fn: ItemFn | None = None,
) -> Iterator[FeatureItem]:
    """Yield one :class:`FeatureItem` per source, in order, streaming (sources may be a generator).

    Args:
        sources: file paths or raw bytes (``bytes``, ``bytearray`` or ``memoryview``).
        extractor: any :class:`FeatureExtractor`.
        jobs: worker processes; 1 runs in this process, 0 or less uses every core.
        max_pixels: images with more pixels (per their header) are refused before decoding.
        batch_size: batch size for extractors with ``batched = True``.
        captions: one caption (or None) per source, for caption-aware extractors (``uses_captions``).
        pool: a started :class:`WorkerPool` to use (by default an open pool for this extractor, else a new one
            for this call when ``jobs > 1``).
        item_fn: optional per-file work done next to decoding, in the worker (e.g. reading a file's metadata or
            watermark), so that it runs on every core instead of in this process: ``item_fn(source)`` for each
            decodable source, its result (or the exception it raised) in :attr:`FeatureItem.extra`. It must be
            picklable (a module-level function or a ``functools.partial`` of one).
    """
    if jobs <= 0:
        jobs = os.cpu_count() or 1
    if captions is not None and isinstance(sources, Sequence) and len(captions) != len(sources):
        raise ValueError(f"{len(captions)} captions for {len(sources)} sources")
    batched = bool(getattr(extractor, "batched", False)) or extractor.uses_captions
    named = _Named(sources)
    caps: Iterable[str | None] = captions if captions is not None else itertools.repeat(None)

    if pool is None and jobs > 1:
        pool = WorkerPool.active(extractor)
    if pool is None and jobs == 1:
        inline = None if batched else extractor
        results: Iterable = (_process(source, inline, max_pixels, item_fn) for source in named)
        yield from _collect(results, named.names(), extractor, batched, batch_size, caps)
        return
    if pool is not None:
        results = pool.imap(named, max_pixels, item_fn)
        yield from _collect(results, named.names(), extractor, batched, batch_size, caps)
        return
    with WorkerPool(extractor, jobs, extract=not batched) as own:
        results = own.imap(named, max_pixels, item_fn)
        yield from _collect(results, named.names(), extractor, batched, batch_size, caps)


class _Named:
    """Iterates the sources once, keeping the name of each one taken until its result is collected."""

    def __init__(self, sources: Iterable[Source]) -> None:
        self._sources = sources
        self._names: collections.deque[str] = collections.deque()

    def __iter__(self) -> Iterator[Source]:
        for i, source in enumerate(self._sources):
            self._names.append(source_name(source, i))
            yield bytes(source) if isinstance(source, memoryview) else source  # a memoryview does not pickle

    def names(self) -> Iterator[str]:
        """Names in order; each is available once its source has been taken (pull the result first)."""
        while self._names:
            yield self._names.popleft()


def _collect(
    results: Iterable,
    names: Iterator[str],
    extractor: FeatureExtractor,
    batched: bool,
    batch_size: int,
    captions: Iterable[str | None],
) -> Iterator[FeatureItem]:
    # results first in each zip: a name is known once its source has been taken, i.e. once its result is pulled
    if not batched:
        for (feats, info, error, _, extra, caught), name in zip(results, names):
            _log_warnings(name, caught)
            yield FeatureItem(name, feats, info, error, extra, caught)
        return
    pending: list[tuple[FeatureItem, Image.Image | None, str | None]] = []
    for (_, info, error, image, extra, caught), name, caption in zip(results, names, captions):
        _log_warnings(name, caught)
        pending.append((FeatureItem(name, None, info, error, extra, caught), image, caption))
        if sum(im is not None for _, im, _ in pending) >= batch_size:
            yield from _flush(pending, extractor)
            pending = []
    yield from _flush(pending, extractor)


def _log_warnings(name: str, caught: list[str]) -> None:
    """Each warning raised while a file was read, on the log with the file's name (in input order, in the parent)."""
    for text in caught:
        logger.warning("%s: %s", name, text)


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
