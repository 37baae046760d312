"""Turn the folder layouts people use into :class:`~gendetect.data.records.ImageRecord` lists.

========================  ===================================================================================
layout                    shape
========================  ===================================================================================
``labels-csv``            a folder with ``labels.csv`` (``file,label,generator[,split,caption,subject,source]``),
                          or a folder whose sub-folders each have one (the layout of ``../shared/data``)
``cnndetection``          ``0_real/`` and ``1_fake/`` anywhere below the root: ``<root>/0_real``,
                          ``<root>/<generator>/0_real``, ``<root>/<generator>/<category>/0_real``
``real-fake``             ``<root>/real/**`` plus ``<root>/fake/<generator>/**``
``genimage``              ``<root>/<generator>/{train,val}/{ai,nature}/**`` (GenImage)
``manifest``              a ``.csv`` / ``.jsonl`` / ``.parquet`` file with a ``path`` (or ``file``) column
``folder``                anything else: every image below the root, label ``unknown``
========================  ===================================================================================

Conventions: real images get ``generator="real"``. ``source`` names the subset an image belongs to, the same for a
generator's fakes and the reals collected with them (``"cnndetection-gallery/biggan"``), so evaluation can compare
each generator's fakes with their own reals. Paths are stored absolute. A file that cannot be read becomes a
record with ``status="error"``; it is never dropped.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gendetect.data.records import REAL_GENERATOR, ImageRecord, normalise_label
from gendetect.errors import DataSchemaError, ImageLoadError
from gendetect.imageio import is_image_path, probe_image

logger = logging.getLogger(__name__)

LAYOUTS = ("auto", "labels-csv", "cnndetection", "real-fake", "genimage", "manifest", "folder")
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".parquet")
_REAL_DIRS = {"0_real", "real", "nature"}
_FAKE_DIRS = {"1_fake", "fake", "ai"}


def list_images(root: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """Image files (by extension) below ``root``, sorted; hidden files and folders are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise DataSchemaError(f"{root} is not a folder")
    out: list[Path] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            out.extend(Path(dirpath) / f for f in filenames if not f.startswith(".") and is_image_path(f))
    else:
        out = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".") and is_image_path(p)]
    return sorted(out)


def _raise(e: OSError) -> None:
    raise e


# -- layout detection ------------------------------------------------------------------------------------------
def detect_layout(root: str | os.PathLike) -> str:
    """Guess the layout of ``root`` (see the module docstring)."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() in MANIFEST_SUFFIXES:
            return "manifest"
        return "folder"
    if (root / "labels.csv").is_file():
        return "labels-csv"
    subdirs = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    names = {d.name.lower() for d in subdirs}
    if subdirs and all((d / "labels.csv").is_file() for d in subdirs):
        return "labels-csv"
    if names & {"0_real", "1_fake"} or _has_dir(root, {"0_real", "1_fake"}, depth=3):
        return "cnndetection"
    if "real" in names and "fake" in names:
        return "real-fake"
    if any((d / split / kind).is_dir() for d in subdirs for split in ("train", "val") for kind in ("ai", "nature")):
        return "genimage"
    return "folder"


def _has_dir(root: Path, names: set[str], depth: int) -> bool:
    if depth == 0:
        return False
    for d in root.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            if d.name.lower() in names or _has_dir(d, names, depth - 1):
                return True
    return False


# -- readers ---------------------------------------------------------------------------------------------------
def read_records(
    path: str | os.PathLike, *, layout: str = "auto", probe: bool = True, hash: bool = True, jobs: int = 8
) -> list[ImageRecord]:
    """Records for every image under ``path`` (a folder, one image, or a manifest file).

    Args:
        layout: one of :data:`LAYOUTS`; ``"auto"`` detects it.
        probe: read each file's header for format, size, mode, JPEG quality (and sha256 when ``hash``).
        jobs: threads used for probing.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataSchemaError(f"{path} does not exist")
    if layout not in LAYOUTS:
        raise DataSchemaError(f"Unknown layout {layout!r}; valid layouts: {', '.join(LAYOUTS)}.")
    if layout == "auto":
        layout = detect_layout(path)
    if path.is_file() and layout != "manifest":
        records = [ImageRecord(path=str(path.resolve()))]
    else:
        reader = {
            "labels-csv": _read_labels_csv_tree,
            "cnndetection": _read_cnndetection,
            "real-fake": _read_real_fake,
            "genimage": _read_genimage,
            "manifest": _read_manifest_file,
            "folder": _read_folder,
        }[layout]
        records = reader(path)
    if probe:
        probe_records(records, hash=hash, jobs=jobs)
    logger.info("%s: %d records (layout %s)", path, len(records), layout)
    return records


def probe_records(records: list[ImageRecord], *, hash: bool = True, jobs: int = 8) -> list[ImageRecord]:
    """Fill the file facts of each record from its header; unreadable files get ``status="error"``."""

    def one(rec: ImageRecord) -> None:
        try:
            info = probe_image(rec.path, hash=hash)
        except ImageLoadError as e:
            rec.status, rec.error = "error", str(e)
            return
        rec.format, rec.width, rec.height, rec.mode = info.format, info.width, info.height, info.mode
        rec.jpeg_quality, rec.has_exif, rec.file_size = info.jpeg_quality, info.has_exif, info.file_size
        if hash:
            rec.sha256 = info.sha256

    if jobs > 1 and len(records) > 16:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, records))
    else:
        for rec in records:
            one(rec)
    return records


def _read_folder(root: Path) -> list[ImageRecord]:
    return [ImageRecord(path=str(p.resolve()), source=root.name) for p in list_images(root)]


def _read_cnndetection(root: Path) -> list[ImageRecord]:
    records = []
    for p in list_images(root):
        parts = p.relative_to(root).parts
        label_idx = next((i for i, part in enumerate(parts[:-1]) if part.lower() in ("0_real", "1_fake")), None)
        if label_idx is None:
            logger.debug("skipping %s: not under 0_real/ or 1_fake/", p)
            records.append(ImageRecord(path=str(p.resolve()), source=root.name))
            continue
        label = "real" if parts[label_idx].lower() == "0_real" else "fake"
        above = parts[:label_idx]
        gen_dir = above[0] if above else root.name
        subject = above[1] if len(above) > 1 else None
        records.append(
            ImageRecord(
                path=str(p.resolve()),
                label=label,
                generator=REAL_GENERATOR if label == "real" else gen_dir,
                source=f"{root.name}/{gen_dir}" if above else root.name,
                subject=subject,
            )
        )
    return records


def _read_real_fake(root: Path) -> list[ImageRecord]:
    records = []
    for p in list_images(root):
        parts = p.relative_to(root).parts
        top = parts[0].lower()
        if top == "real":
            records.append(ImageRecord(str(p.resolve()), "real", REAL_GENERATOR, root.name))
        elif top == "fake":
            gen = parts[1] if len(parts) > 2 else "unknown"
            records.append(ImageRecord(str(p.resolve()), "fake", gen, root.name))
        else:
            records.append(ImageRecord(str(p.resolve()), source=root.name))
    return records


def _read_genimage(root: Path) -> list[ImageRecord]:
    records = []
    for p in list_images(root):
        parts = p.relative_to(root).parts
        lowered = [x.lower() for x in parts[:-1]]
        gen = parts[0]
        split = next((x for x in lowered if x in ("train", "val", "test")), None)
        kind = next((x for x in lowered if x in ("ai", "nature")), None)
        label = {"ai": "fake", "nature": "real", None: "unknown"}[kind]
        records.append(
            ImageRecord(
                path=str(p.resolve()),
                label=label,
                generator=REAL_GENERATOR if label == "real" else gen,
                source=f"{root.name}/{gen}",
                split=split,
            )
        )
    return records


def _read_labels_csv_tree(root: Path) -> list[ImageRecord]:
    if (root / "labels.csv").is_file():
        return read_labels_csv(root / "labels.csv")
    records = []
    for sub in sorted(d for d in root.iterdir() if d.is_dir() and (d / "labels.csv").is_file()):
        records.extend(read_labels_csv(sub / "labels.csv"))
    return records


_KNOWN_COLUMNS = {"file", "path", "label", "generator", "source", "caption", "subject", "category", "split"}


def read_labels_csv(csv_path: str | os.PathLike) -> list[ImageRecord]:
    """Records from a ``labels.csv`` whose ``file`` column is relative to the CSV's folder.

    When a real image's ``generator`` names a subset that also holds fakes (as in CNNDetection galleries, where
    each generator's folder has its own reals), that subset becomes its ``source``.
    """
    csv_path = Path(csv_path)
    rows = _read_table_rows(csv_path)
    return _rows_to_records(rows, csv_path.parent, dataset=csv_path.parent.name)


def _rows_to_records(rows: list[dict], base: Path, dataset: str) -> list[ImageRecord]:
    if rows and not ({"file", "path"} & set(rows[0])):
        raise DataSchemaError(f"manifest for {base} has no 'file' or 'path' column; columns: {sorted(rows[0])}")
    fake_gens = {str(r.get("generator")) for r in rows if _label(r) == "fake"}
    records = []
    for r in rows:
        rel = r.get("path") or r.get("file")
        path = Path(str(rel)).expanduser()
        if not path.is_absolute():
            path = base / path
        label = _label(r)
        gen = r.get("generator")
        gen = None if gen in (None, "") else str(gen)
        source = r.get("source") or None
        if label == "real":
            if source is None and gen not in (None, REAL_GENERATOR) and gen in fake_gens:
                source = f"{dataset}/{gen}"
            gen = REAL_GENERATOR
        elif label == "fake" and source is None and len(fake_gens) > 1 and gen:
            source = f"{dataset}/{gen}"
        subject = r.get("subject") or r.get("category") or None
        extra = {k: v for k, v in r.items() if k not in _KNOWN_COLUMNS and v not in (None, "")}
        records.append(
            ImageRecord(
                path=str(path.resolve()),
                label=label,
                generator=gen,
                source=source or dataset,
                caption=r.get("caption") or None,
                subject=subject,
                split=r.get("split") or None,
                extra=extra,
            )
        )
    return records


def _label(row: dict) -> str:
    return normalise_label(row.get("label"))


def _read_table_rows(path: Path) -> list[dict]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as f:
                return list(csv.DictReader(f))
        if suffix == ".jsonl":
            rows = []
            with path.open(encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as e:
                            raise DataSchemaError(f"{path}:{n}: not valid JSON: {e}") from e
            return rows
    except OSError as e:
        raise DataSchemaError(f"cannot read manifest {path}: {e}") from e
    raise DataSchemaError(f"{path}: manifests are .csv, .jsonl or .parquet")


def _read_manifest_file(path: Path) -> list[ImageRecord]:
    if path.suffix.lower() == ".parquet":
        from gendetect.data.manifest import read_manifest

        return read_manifest(path)
    return _rows_to_records(_read_table_rows(path), path.parent, dataset=path.stem)


def records_from_paths(paths: Iterable[str | os.PathLike]) -> list[ImageRecord]:
    """Unlabelled records for explicit files."""
    return [ImageRecord(path=str(Path(p).resolve())) for p in paths]
