"""Build a real/fake training set from captions: plan jobs, run them in shards, write images and a Parquet manifest.

:func:`generate_dataset` turns captions x generators x ``per_caption`` (or, in systematic mode, model ids x
``per_model``) into **jobs**: small JSON dicts that fix everything about one output image -- generator, caption,
seed, sampling settings and target file format -- before any model is loaded. Seeds come from a hash of (base seed,
generator, caption id, k), never from the order, so adding captions or generators leaves existing images unchanged.
In systematic mode each model renders the ``per_model`` captions that rank first by a hash of (base seed, model,
caption id): new captions only take the place of those they outrank, the other images stay as they were (while
``per_model`` does not exceed the number of captions).
Each real image a caption pairs with is a job too (a ``real`` row; re-encoded losslessly with ``format="lossless"``).

Jobs are sorted by generator and cut into shards run by :func:`gendetect.scale.runner.run_shards` on the ``local``
engine or on Ray (one generator pipeline loaded per worker, one GPU per actor with ``device="cuda"``). A killed run
resumes from its committed shards with no duplicates; per-item failures (NSFW filter hits, out of memory, a model
that is not a usable text-to-image pipeline) are rows with ``status="error"`` and the reason.

Output folder::

    out/images/shard-00000/<generator>--<caption id>--<k>.{png,jpg}   fakes (and re-encoded reals)
    out/shards/shard-00000.{parquet,done.json}, plan.json             the engine's committed shards (resume)
    out/manifest.parquet                                               ImageRecords, real and fake: train on it
    out/failures.parquet                                               the error rows, when there are any

Format control (``format``), so that a detector cannot learn "PNG means fake":

* ``"match-real"``: each fake takes its paired real's format, JPEG quality and size (resized to cover and centre-
  cropped); a fake without a paired real draws a real at random (seeded) and takes that one's. JPEG and PNG reals
  are kept as they are; a real in any other format (WEBP, GIF, TIFF...) is re-encoded as PNG, like its fakes.
* ``"lossless"``: fakes are PNG and every real is re-encoded as PNG into the output (its JPEG history stays in its
  pixels; compare within matched subsets when that matters). Fakes still take their paired real's size.
* ``"auto"`` (default): ``"match-real"`` when the captions pair with real images, else ``"lossless"`` -- fakes
  never get a format of their own that the reals do not share.

A real given by URL is probed once downloaded (its facts are cached in ``out/downloads/``): its fakes resolve their
target format and size from it when they are encoded, by the same rules.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gendetect.atomic import atomic_write
from gendetect.data.records import REAL_GENERATOR, ImageRecord
from gendetect.errors import GendetectError
from gendetect.generation.captions import CaptionItem, read_captions
from gendetect.generation.generators import Generated, GeneratorSpec, TextToImage, get_generator, load_generator
from gendetect.runs import GenerateRun, Sampling
from gendetect.scale.options import EngineOptions
from gendetect.scale.runner import Shard, ShardTask, run_shards

logger = logging.getLogger(__name__)

FORMAT_POLICIES = ("auto", "match-real", "lossless")
MANIFEST = "manifest.parquet"
FAILURES = "failures.parquet"
IMAGES_DIR = "images"
DOWNLOADS_DIR = "downloads"
PLAN_VERSION = 2
SHARD_SIZE = 64  # jobs per shard when no EngineOptions are given
KEPT_FORMATS = ("JPEG", "MPO", "PNG")  # real formats stored as they are under "match-real"; others become PNG


SamplingSpace = Sampling  # the former name of gendetect.runs.Sampling (systematic mode's randomised settings)


def _hash_seed(*parts: Any) -> int:
    """A 63-bit seed from the parts' text (stable across runs, machines and Python versions)."""
    h = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "big") & (2**63 - 1)


def _slug(text: str, n: int = 48) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.")
    if len(s) > n:
        s = s[: n - 9] + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return s or hashlib.sha256(text.encode()).hexdigest()[:8]


def _split(key: str, seed: int, test_fraction: float) -> str:
    u = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 2**32
    return "test" if u < test_fraction else "train"


# -- planning --------------------------------------------------------------------------------------------------
def _real_facts(source: str | bytes) -> dict[str, Any] | None:
    """Format, JPEG quality and size of a local real image (a path or its bytes); None when unreadable."""
    from gendetect.errors import ImageLoadError
    from gendetect.imageio import probe_image

    try:
        info = probe_image(source, hash=False)
    except (ImageLoadError, OSError):
        return None
    return {"format": info.format, "quality": info.jpeg_quality, "width": info.width, "height": info.height}


def _keeps(real_format: str | None, policy: str) -> bool:
    """Whether a real of this format is stored as it is (else re-encoded as PNG) under ``policy``."""
    return policy == "match-real" and real_format in KEPT_FORMATS


def _target(facts: dict[str, Any], policy: str) -> dict[str, Any]:
    """What a fake paired with a real of these facts is saved as: the real's format family and size.

    JPEG reals (kept under "match-real") give JPEG fakes at their quality; every other real ends up PNG (kept, or
    re-encoded by :func:`_keeps`), and so do its fakes.
    """
    fmt = "JPEG" if _keeps(facts["format"], policy) and facts["format"] in ("JPEG", "MPO") else "PNG"
    return {
        "format": fmt,
        "quality": facts["quality"] if fmt == "JPEG" else None,
        "width": facts["width"],
        "height": facts["height"],
    }


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def _url_facts(url: str, out_dir: Path, data: bytes | None = None) -> dict[str, Any]:
    """The facts of a real given by URL, downloaded (or taken from ``data``) and probed once per output folder."""
    cache = out_dir / DOWNLOADS_DIR / f"{hashlib.sha256(url.encode()).hexdigest()[:24]}.json"
    if data is None and cache.is_file():
        return json.loads(cache.read_text())
    facts = _real_facts(data if data is not None else _download(url))
    if facts is None:
        raise ValueError(f"{url} is not a readable image")
    _write(cache, json.dumps(facts).encode())
    return facts


def plan_jobs(
    captions: Sequence[CaptionItem],
    generators: Sequence[GeneratorSpec],
    *,
    per_caption: int = 1,
    systematic: Sequence[GeneratorSpec] = (),
    per_model: int = 1,
    format: str = "auto",
    seed: int = 0,
    test_fraction: float = 0.2,
) -> list[dict[str, Any]]:
    """The jobs of a build, in run order: reals first, then each generator's fakes (one generator per stretch).

    Args:
        captions: what to generate from.
        generators: each makes ``per_caption`` fakes of every caption.
        per_caption: fakes per caption and generator (COCOFake: 1 per caption, 5 captions per image).
        systematic: generators that each make ``per_model`` fakes of the captions ranked first by a seeded hash of
            (model, caption id) -- a random draw that adding captions does not reshuffle.
        per_model: fakes per systematic generator.
        format: one of :data:`FORMAT_POLICIES`.
        seed: base seed of every draw.
        test_fraction: share of real images (with every fake of their captions) put in the ``test`` split.

    Returns:
        JSON-able job dicts (``kind`` "real" or "fake"); see the module docstring.

    Raises:
        GendetectError: an unknown format policy, repeated caption ids or a generator named twice.
    """
    if format not in FORMAT_POLICIES:
        raise GendetectError(f"Unknown format policy {format!r}; valid: {', '.join(FORMAT_POLICIES)}.")
    dup_ids = [cid for cid, n in Counter(c.caption_id for c in captions).items() if n > 1]
    if dup_ids:
        raise GendetectError(
            f"caption ids must be unique (fakes are named and seeded by them); repeated: {', '.join(dup_ids[:5])}"
        )
    dup_gens = [g for g, n in Counter(s.name for s in [*generators, *systematic]).items() if n > 1]
    if dup_gens:
        raise GendetectError(f"generator named more than once: {', '.join(dup_gens)}")
    reals: dict[str, dict[str, Any]] = {}
    for c in captions:
        if not (c.real_path and c.pair_id):
            continue
        if c.pair_id not in reals:
            reals[c.pair_id] = {
                "path": c.real_path,
                "caption": c.caption,
                "subject": c.subject,
                "license": c.license,
                "source": c.source,
            }
        elif reals[c.pair_id]["path"] != c.real_path:
            logger.warning(
                "image id %s names two files, %s and %s; the first is its real",
                c.pair_id,
                reals[c.pair_id]["path"],
                c.real_path,
            )
    format = _resolve_policy(format, bool(reals))
    # local reals are probed now; a URL real is probed when downloaded (its fakes resolve their target then)
    facts = {pid: _real_facts(r["path"]) for pid, r in reals.items() if "://" not in r["path"]}
    pool = [pid for pid, r in reals.items() if "://" in r["path"] or facts.get(pid)]
    in_pool = set(pool)
    if format == "match-real" and not pool:
        logger.warning("format 'match-real' but no readable paired real images: fakes are saved as PNG")

    def target(c: CaptionItem, job_seed: int) -> dict[str, Any]:
        if not pool:
            return {"format": "PNG", "quality": None, "width": None, "height": None}
        pid = c.pair_id if c.pair_id in in_pool else pool[int(np.random.default_rng(job_seed).integers(len(pool)))]
        if pid in facts:
            return _target(facts[pid], format)
        return {"real_url": reals[pid]["path"], "policy": format}  # resolved after download (_url_facts)

    def split_of(c: CaptionItem) -> str:
        return _split(c.pair_id or c.caption_id, seed, test_fraction)

    jobs: list[dict[str, Any]] = []
    for pid, r in reals.items():
        jobs.append(
            {
                "kind": "real",
                "id": f"real--{_slug(pid)}",
                "generator": REAL_GENERATOR,
                "pair_id": pid,
                "real_path": r["path"],
                "caption": r["caption"],
                "subject": r["subject"],
                "license": r["license"],
                "source": r["source"],
                "split": _split(pid, seed, test_fraction),
                "policy": format,
            }
        )

    def fake(spec: GeneratorSpec, c: CaptionItem, k: int) -> dict[str, Any]:
        job_seed = _hash_seed(seed, spec.name, c.caption_id, k)
        return {
            "kind": "fake",
            "id": f"{_slug(spec.name.removeprefix('diffusers:'), 40)}--{_slug(c.caption_id)}--{k}",
            "generator": spec.name,
            "caption_id": c.caption_id,
            "k": k,
            "caption": c.caption,
            "pair_id": c.pair_id,
            "real_path": c.real_path,
            "subject": c.subject,
            "source": c.source,
            "split": split_of(c),
            "seed": job_seed,
            **spec.draw(job_seed),
            "target": target(c, job_seed),
        }

    for spec in generators:
        jobs.extend(fake(spec, c, k) for c in captions for k in range(per_caption))
    for spec in systematic:
        # captions ranked by a hash of (seed, model, caption id): each caption's rank ignores the others, so adding
        # captions never reshuffles the ones a model already rendered (beyond those the new ones outrank)
        ranked = sorted(captions, key=lambda c: (_hash_seed(seed, spec.name, "caption", c.caption_id), c.caption_id))
        for i in range(per_model):
            jobs.append(fake(spec, ranked[i % len(ranked)], i // len(ranked)))
    return jobs


def _resolve_policy(format: str, has_reals: bool) -> str:
    if format == "auto":
        return "match-real" if has_reals else "lossless"
    return format


# -- the shard task ----------------------------------------------------------------------------------------------
def _classify_error(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    if "out of memory" in text.lower() or isinstance(e, MemoryError):
        return f"out of memory: {text}"
    return text


def _fit(im: Any, width: int, height: int) -> Any:
    """Resize ``im`` to cover ``width`` x ``height`` (Lanczos) and centre-crop to exactly that size."""
    from PIL import Image

    if im.size == (width, height):
        return im
    scale = max(width / im.width, height / im.height)
    w, h = max(width, round(im.width * scale)), max(height, round(im.height * scale))
    im = im.resize((w, h), Image.Resampling.LANCZOS)
    left, top = (w - width) // 2, (h - height) // 2
    return im.crop((left, top, left + width, top + height))


def _encode(im: Any, fmt: str, quality: int | None) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        im.save(buf, "JPEG", quality=int(quality or 90))
    else:
        im.save(buf, "PNG")  # no timestamp chunks: same pixels -> same bytes
    return buf.getvalue()


def _facts(data: bytes) -> dict[str, Any]:
    from gendetect.imageio import probe_image

    info = probe_image(data, hash=True)
    return {
        "format": info.format,
        "width": info.width,
        "height": info.height,
        "mode": info.mode,
        "jpeg_quality": info.jpeg_quality,
        "has_exif": info.has_exif,
        "file_size": info.file_size,
        "sha256": info.sha256,
    }


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)


class GenerateTask(ShardTask):
    """Make the images of one shard of jobs; keeps one generator loaded at a time (jobs come sorted by generator).

    Args:
        specs: generator name -> spec, for every generator the jobs name.
        device: torch device of the pipelines ("cpu", "cuda"); a cuda device reserves one GPU per Ray actor.
        batch_size: prompts per pipeline call (jobs with the same generator and settings are batched).
        plan_info: the run's identity (stored in ``plan.json``).
        skip_unusable: generators (systematic mode) whose load failure is recorded as error rows and skipped; any
            other generator that cannot be loaded (e.g. missing weights) stops the run with the error.
        on_shard: test hook called with each shard's index before it runs.
    """

    def __init__(
        self,
        specs: dict[str, GeneratorSpec],
        *,
        device: str | None = None,
        batch_size: int = 1,
        plan_info: dict[str, Any] | None = None,
        skip_unusable: Sequence[str] = (),
        on_shard: Callable[[int], None] | None = None,
    ) -> None:
        self.specs, self.device, self.batch_size = specs, device, max(1, batch_size)
        self.skip_unusable = frozenset(skip_unusable)
        self.plan_info = plan_info or {}
        self.on_shard = on_shard
        self.num_gpus = 1.0 if device and device.startswith("cuda") else 0.0
        self._loaded: tuple[str, TextToImage | None, str | None] | None = None  # (name, model, load error)

    def plan(self) -> dict[str, Any]:
        return {"task": "generate", "version": PLAN_VERSION, **self.plan_info}

    def __getstate__(self) -> dict[str, Any]:  # workers load their own pipelines
        return {**self.__dict__, "_loaded": None}

    def _model(self, name: str) -> tuple[TextToImage | None, str | None]:
        if self._loaded is not None and self._loaded[0] == name:
            return self._loaded[1], self._loaded[2]
        if self._loaded is not None and self._loaded[1] is not None:
            self._loaded[1].close()
        self._loaded = None
        t0 = time.perf_counter()
        try:
            model, err = load_generator(self.specs[name], device=self.device), None
            logger.info("loaded generator %s in %.1fs", name, time.perf_counter() - t0)
        except ImportError:
            raise  # a missing package is the whole run's problem, not one model's
        except Exception as e:  # a model that cannot be used is recorded and skipped (systematic mode)
            if name not in self.skip_unusable:
                raise  # a generator the user named: fail loudly, with the loader's fix
            model, err = None, f"model unusable: {_classify_error(e)}"
            logger.warning("generator %s skipped: %s", name, err)
        self._loaded = (name, model, err)
        return model, err

    def run(self, shard: Shard, out_dir: Path) -> list[dict[str, Any]]:
        if self.on_shard is not None:
            self.on_shard(shard.index)
        folder = Path(out_dir) / IMAGES_DIR / f"shard-{shard.index:05d}"
        rows: list[dict[str, Any] | None] = [None] * len(shard.items)
        fakes: list[tuple[int, dict[str, Any]]] = []
        for i, job in enumerate(shard.items):
            if job["kind"] == "real":
                rows[i] = self._real(job, folder, Path(out_dir))
            else:
                fakes.append((i, job))
        # batch consecutive fakes of one generator with identical settings
        key = lambda j: (j["generator"], j["scheduler"], j["steps"], j["guidance"], j["height"], j["width"])
        batch: list[tuple[int, dict[str, Any]]] = []
        for i, job in fakes:
            if batch and (key(batch[0][1]) != key(job) or len(batch) >= self.batch_size):
                self._fakes(batch, rows, folder, Path(out_dir))
                batch = []
            batch.append((i, job))
        if batch:
            self._fakes(batch, rows, folder, Path(out_dir))
        return [r for r in rows if r is not None]

    # -- reals
    def _real(self, job: dict[str, Any], folder: Path, out_dir: Path) -> dict[str, Any]:
        from gendetect.errors import ImageLoadError
        from gendetect.imageio import load_image_with_info, probe_image

        rec = _base_record(job)
        src = job["real_path"]
        try:
            url = "://" in src
            data = _download(src) if url else Path(src).read_bytes()
            real_format = probe_image(data, hash=False).format
            if url:  # its fakes read these facts (format, size) to match it
                _url_facts(src, out_dir, data)
            if not _keeps(real_format, job["policy"]):  # lossless, or a format other than JPEG/PNG: PNG, as its fakes
                im, _ = load_image_with_info(data, hash=False)
                data = _encode(im, "PNG", None)
                dest = folder / f"{job['id']}.png"
                _write(dest, data)
                rec.path = os.path.relpath(dest, out_dir)
                rec.extra["original_path"] = src
            elif url:  # a URL (WIT): fetch once into the output
                dest = folder / f"{job['id']}.{'png' if real_format == 'PNG' else 'jpg'}"
                _write(dest, data)
                rec.path = os.path.relpath(dest, out_dir)
                rec.extra["original_path"] = src
            else:
                rec.path = os.path.relpath(src, out_dir) if Path(src).is_relative_to(out_dir) else str(Path(src))
            for k, v in _facts(data).items():
                setattr(rec, k, v)
        except (ImageLoadError, OSError, ValueError) as e:
            rec.path = job["real_path"]
            rec.status, rec.error = "error", f"real image unreadable: {e}"
        return rec.to_row()

    # -- fakes
    def _fakes(self, batch: list[tuple[int, dict[str, Any]]], rows: list[Any], folder: Path, out_dir: Path) -> None:
        first = batch[0][1]
        model, err = self._model(first["generator"])
        targets = {i: self._resolve_target(job, out_dir) for i, job in batch}
        todo = [(i, job) for i, job in batch if not isinstance(targets[i], str)]
        outputs: dict[int, Generated] = {
            i: Generated(None, error=f"paired real image unavailable: {targets[i]}")
            for i, _ in batch
            if isinstance(targets[i], str)
        }
        if model is None:
            outputs.update({i: Generated(None, error=err) for i, _ in todo})
        elif todo:
            outputs.update(zip([i for i, _ in todo], self._call(model, [j for _, j in todo])))
        for i, job in batch:
            t = targets[i]
            rows[i] = self._fake_row(job, outputs[i], model, folder, out_dir, t if isinstance(t, dict) else None)

    @staticmethod
    def _resolve_target(job: dict[str, Any], out_dir: Path) -> dict[str, Any] | str:
        """The job's target format and size; for a real given by URL, read from its probed download (or why not)."""
        t = job["target"]
        if "real_url" not in t:
            return t
        try:
            return _target(_url_facts(t["real_url"], out_dir), t["policy"])
        except Exception as e:  # noqa: BLE001 - a fake whose real cannot be fetched is an error row, not a crash
            return f"{t['real_url']}: {e}"

    def _call(self, model: TextToImage, jobs: list[dict[str, Any]]) -> list[Generated]:
        j = jobs[0]
        settings = {k: j[k] for k in ("scheduler", "steps", "guidance", "height", "width")}
        try:
            return model.generate([x["caption"] for x in jobs], [x["seed"] for x in jobs], **settings)
        except Exception as e:  # noqa: BLE001 - per-item failures are rows, never fatal
            if len(jobs) > 1:  # retry one by one: only the culprit fails (and a smaller batch may fit in memory)
                _free_cuda()
                return [self._call(model, [x])[0] for x in jobs]
            _free_cuda()
            return [Generated(None, error=_classify_error(e))]

    def _fake_row(
        self,
        job: dict[str, Any],
        out: Generated,
        model: TextToImage | None,
        folder: Path,
        out_dir: Path,
        t: dict[str, Any] | None,
    ) -> dict[str, Any]:
        rec = _base_record(job)
        rec.extra.update({k: job[k] for k in ("seed", "steps", "guidance", "scheduler", "caption_id", "k")})
        rec.extra["resolution"] = [job["height"], job["width"]] if job["height"] else None
        if model is not None:
            rec.extra.update(model.info)
        else:
            spec = self.specs[job["generator"]]
            rec.extra.update({"model_id": spec.repo, "revision": spec.revision})
        ext = "jpg" if t and t["format"] == "JPEG" else "png"
        dest = folder / f"{job['id']}.{ext}"
        rec.path = os.path.relpath(dest, out_dir)
        if out.image is None or out.nsfw or t is None:
            rec.status = "error"
            rec.error = "nsfw filter hit (the pipeline blacked out the image)" if out.nsfw else out.error
            rec.extra["failure"] = rec.error
            return rec.to_row()
        im = out.image
        rec.extra["generated_size"] = [im.height, im.width]
        if t["width"] and t["height"]:
            im = _fit(im, int(t["width"]), int(t["height"]))
        data = _encode(im, t["format"], t["quality"])
        _write(dest, data)
        for k, v in _facts(data).items():
            setattr(rec, k, v)
        rec.extra["target"] = t
        return rec.to_row()


def _free_cuda() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def _base_record(job: dict[str, Any]) -> ImageRecord:
    real = job["kind"] == "real"
    extra: dict[str, Any] = {"job_id": job["id"], "pair_id": job.get("pair_id")}
    if not real:
        extra["real_path"] = job.get("real_path")
    if job.get("license"):
        extra["license"] = job["license"]
    return ImageRecord(
        path="",
        label="real" if real else "fake",
        generator=job["generator"],
        source=job.get("source"),
        caption=job.get("caption"),
        subject=job.get("subject"),
        split=job.get("split"),
        has_exif=False,
        extra={k: v for k, v in extra.items() if v is not None},
    )


# -- the entry point ---------------------------------------------------------------------------------------------
@dataclass
class GenerationResult:
    """What :func:`generate_dataset` made."""

    out_dir: Path
    manifest: Path  # out_dir/manifest.parquet
    records: list[ImageRecord]  # the manifest's rows (paths absolute)
    failed_models: dict[str, str] = field(default_factory=dict)  # generator -> why it was skipped
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, Any]:
        ok = [r for r in self.records if r.status == "ok"]
        per_gen: dict[str, int] = {}
        for r in ok:
            if r.label == "fake":
                per_gen[str(r.generator)] = per_gen.get(str(r.generator), 0) + 1
        return {
            "reals": sum(r.label == "real" for r in ok),
            "fakes": sum(r.label == "fake" for r in ok),
            "errors": len(self.records) - len(ok),
            "fakes_per_generator": per_gen,
            "failed_models": len(self.failed_models),
        }


def read_models_file(path: str | os.PathLike) -> list[str]:
    """Model ids of a systematic run: one per line (``ORG/REPO[@REV]`` or a local folder); ``#`` comments skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise GendetectError(f"cannot read the models file {path}: {e}") from e
    ids = [ln.split("#", 1)[0].strip() for ln in lines]
    return list(dict.fromkeys(i for i in ids if i))


def generate_dataset(
    run: GenerateRun,
    out_dir: str | os.PathLike,
    engine: EngineOptions | None = None,
    *,
    captions: Sequence[CaptionItem] | None = None,
    _on_shard: Callable[[int], None] | None = None,
) -> GenerationResult:
    """Generate a real/fake dataset from captions into ``out_dir``; resumable, deterministic.

    Args:
        run: what to generate (:class:`~gendetect.runs.GenerateRun`): the caption file, ``generators`` (names such
            as ``"sd14,sd21"`` or ``diffusers:ORG/REPO[@REV]``, or specs; each makes ``per_caption`` fakes of every
            caption), systematic ``models`` (hub ids / local folders, or a models file; each is probed for a usable
            text-to-image pipeline -- failures, and models whose every image fails, are recorded in
            ``failed_models`` -- and makes ``per_model`` fakes from captions drawn by a seeded hash, with settings
            drawn from ``sampling``; a name may not be both a generator and a model), ``real_root``, ``instances``,
            ``captions_per_image``, ``format`` (``"auto"``, ``"match-real"`` or ``"lossless"``, see the module
            docstring), ``limit``, ``seed`` (with the same inputs, the same seed gives the same images, byte for
            byte, on one device), ``test_fraction`` (share of real images, with all their fakes, in the ``test``
            split), ``device`` and ``batch_size`` (prompts per pipeline call).
        out_dir: output folder (images, engine shards, ``manifest.parquet``). Rerunning into it resumes; a different
            plan (other captions, generators, seed or format) is refused.
        engine: where the shards run (:class:`~gendetect.scale.options.EngineOptions`; default: the local engine in
            shards of 64 jobs); its ``progress(done_shards, total_shards)`` is called on the local engine.
        captions: caption items to use instead of ``run.captions``' file.

    Returns:
        A :class:`GenerationResult`; its ``records`` are those of ``out_dir/manifest.parquet``.

    Raises:
        GendetectError: nothing to generate, an unknown generator or scheduler, a generator named twice (or both in
            ``generators`` and ``models``), or an output folder of another run.
    """
    from gendetect.data.manifest import read_manifest, write_manifest

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    engine = engine if engine is not None else EngineOptions(shard_size=SHARD_SIZE)
    if captions is not None:
        caption_file, items = None, list(captions)
    elif run.captions is not None:
        caption_file = run.captions
        items = read_captions(
            run.captions, real_root=run.real_root, instances=run.instances, captions_per_image=run.captions_per_image
        )
    else:
        raise GendetectError("no captions: set 'captions' (a caption file) in the run, or pass caption items")
    if run.limit is not None:
        items = items[: run.limit]
    if not items:
        raise GendetectError("no captions to generate from; check the caption file (and --limit)")
    specs = [g if isinstance(g, GeneratorSpec) else get_generator(g) for g in run.generators]
    models = read_models_file(run.models) if isinstance(run.models, str) else run.models
    space = run.sampling
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise GendetectError(f"generator given twice in generators: {', '.join(twice)}; name each once")
    model_names = list(dict.fromkeys(m if m.startswith("diffusers:") else f"diffusers:{m}" for m in (models or [])))
    both = [m for m in model_names if m in names]
    if both:
        raise GendetectError(
            f"{', '.join(both)} is given both as a generator and in the models (systematic mode); a model is either "
            "rendered for every caption (generators) or sampled (models): remove it from one of them"
        )
    systematic = [
        get_generator(
            m, steps=space.steps, guidance=space.guidance, scheduler=space.scheduler, resolution=space.resolution
        )
        for m in model_names
    ]
    if not specs and not systematic:
        raise GendetectError("no generators: pass generators (e.g. sd14,sd21) and/or a models file (systematic mode)")
    all_specs = {s.name: s for s in [*specs, *systematic]}
    for s in all_specs.values():
        s.validate()
    jobs = plan_jobs(
        items,
        specs,
        per_caption=run.per_caption,
        systematic=systematic,
        per_model=run.per_model,
        format=run.format,
        seed=run.seed,
        test_fraction=run.test_fraction,
    )
    policy = next((j["policy"] for j in jobs if j["kind"] == "real"), _resolve_policy(run.format, False))
    plan_info = {
        "captions": caption_file,
        "n_captions": len(items),
        "generators": {name: s.to_dict() for name, s in all_specs.items()},
        "per_caption": run.per_caption,
        "per_model": run.per_model,
        "format": run.format,
        "seed": run.seed,
        "test_fraction": run.test_fraction,
    }
    task = GenerateTask(
        all_specs,
        device=run.device,
        batch_size=run.batch_size,
        plan_info=plan_info,
        skip_unusable=[s.name for s in systematic],
        on_shard=_on_shard,
    )
    logger.info(
        "%d jobs (%d reals) in shards of %d", len(jobs), sum(j["kind"] == "real" for j in jobs), engine.shard_size
    )
    rows = run_shards(
        task,
        jobs,
        out_dir,
        engine,
        group_by=lambda job: job["generator"],  # one generator per shard: one model per (GPU) actor
    )
    records = [ImageRecord.from_row(r) for r in rows]
    failed: dict[str, str] = {}
    for r in records:
        if r.status != "ok" and (r.error or "").startswith("model unusable"):
            failed.setdefault(str(r.generator), str(r.error))
    by_gen: dict[str, list[ImageRecord]] = {}
    for r in records:
        by_gen.setdefault(str(r.generator), []).append(r)
    for s in systematic:  # a model that loads but fails on every image is no more usable than one that does not load
        mine = by_gen.get(s.name, [])
        if s.name not in failed and mine and all(r.status != "ok" for r in mine):
            failed[s.name] = f"every image failed ({len(mine)}); first error: {mine[0].error}"
    meta = {
        "kind": "generated",
        "generation": {**plan_info, "format_applied": policy, "failed_models": failed, "device": run.device},
    }
    manifest = write_manifest(records, out_dir / MANIFEST, metadata=meta)
    errors = [r for r in records if r.status != "ok"]
    if errors:
        write_manifest(errors, out_dir / FAILURES, metadata={"kind": "generation-failures"})
    elif (out_dir / FAILURES).exists():
        (out_dir / FAILURES).unlink()
    logger.info("%d records (%d errors, %d models skipped) in %s", len(records), len(errors), len(failed), manifest)
    return GenerationResult(out_dir, manifest, read_manifest(manifest), failed, time.perf_counter() - t0)
