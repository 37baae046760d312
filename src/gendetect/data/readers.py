"""Turn the folder layouts people use into :class:`~gendetect.data.records.ImageRecord` lists.

================  ==========================================================================================
layout            shape
================  ==========================================================================================
``labels-csv``    a folder with ``labels.csv`` (``file,label,generator`` plus optional ``split``, ``caption``,
                  ``subject``/``category``, ``source``; other columns go to ``extra``), or a folder whose
                  sub-folders each have one (the layout of ``../shared/data``)
``cnndetection``  ``0_real/`` and ``1_fake/`` anywhere below the root: ``<root>/{0_real,1_fake}``,
                  ``<root>/<generator>/{0_real,1_fake}``, ``<root>/<generator>/<category>/{0_real,1_fake}``
``real-fake``     ``<root>/real/**`` plus ``<root>/fake/<generator>/**`` (images directly in ``fake/``: generator
                  ``"unknown"``)
``cocofake``      ``real/<id>.jpg`` + ``fake/<generator>/<id>_<k>.png`` + ``captions.json`` (COCOFake): each fake
                  linked to caption ``k`` of image ``id`` and to that real image (``extra["pair_id"]``)
``genimage``      ``<root>/<generator>/**/{train,val}/{ai,nature}/**`` (GenImage)
``manifest``      a ``.csv`` / ``.jsonl`` / ``.parquet`` file with a ``path`` (or ``file``) column; relative paths
                  are resolved against the manifest's folder
``folder``        anything else: every image below the root, label ``"unknown"``
================  ==========================================================================================

Conventions:

* real images get ``generator="real"`` (:data:`~gendetect.data.records.REAL_GENERATOR`);
* ``source`` names the subset an image belongs to, the **same** for a generator's fakes and the reals collected
  with them (``"cnndetection-gallery/biggan"``), so that evaluation can compare each generator's fakes with their
  own reals (:func:`gendetect.evaluation.grouping.generator_pairs`). Layouts whose reals are shared by all generators
  (``real-fake``, a flat ``cnndetection`` folder) give every image the root folder's name;
* paths are stored absolute;
* with ``probe=True`` each file's header is read for its format, size, mode, JPEG quality, EXIF and sha256. A file
  that cannot be read becomes a record with ``status="error"`` and the reason in ``error``: never dropped.

Example:
    >>> records = read_records("data/cnndetection-gallery")  # doctest: +SKIP
    >>> records[0].label, records[0].generator, records[0].source  # doctest: +SKIP
    ('real', 'real', 'cnndetection-gallery/cyclegan')
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gendetect.data.records import REAL_GENERATOR, ImageRecord, normalise_label
from gendetect.errors import DataSchemaError, ImageLoadError
from gendetect.imageio import DEFAULT_MAX_PIXELS, is_image_like_path, is_image_path, probe_image
from gendetect.registry import Registry

logger = logging.getLogger(__name__)

LAYOUT_READERS: Registry[Callable[[Path], list[ImageRecord]]] = Registry("layout")
"""The readers of the layouts of the module docstring, by name: ``reader(root) -> records``. A plug-in adds its own
with ``@LAYOUT_READERS.register("name")`` (``detect_layout`` only detects the built-in ones)."""
CAPTIONS_JSON = "captions.json"
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".parquet")
LABELS_CSV = "labels.csv"
UNKNOWN_GENERATOR = "unknown"  # the generator of fakes whose generator is not known

_CNN_DIRS = {"0_real": "real", "1_fake": "fake"}
_GENIMAGE_DIRS = {"nature": "real", "ai": "fake"}
_SPLIT_DIRS = {"train", "val", "test"}
_SEARCH_DEPTH = 4  # how deep layout detection looks for 0_real/1_fake or {train,val}/{ai,nature} folders


def _absolute(path: str | os.PathLike) -> Path:
    """``path`` made absolute and normalised (``..`` removed) without resolving symbolic links."""
    return Path(os.path.abspath(Path(path).expanduser()))


# -- listing ---------------------------------------------------------------------------------------------------
def _visible(name: str) -> bool:
    return not name.startswith(".")


@dataclass
class Listing:
    """What :func:`walk_images` found in a folder: the image files, and what it left out and why."""

    images: list[Path] = field(default_factory=list)  # sorted
    hidden: int = 0  # hidden files and folders (name starts with "."): skipped, a hidden folder counts once
    not_images: int = 0  # visible files whose names are not image names
    folder_links: int = 0  # visible symbolic links to folders: not followed
    examples: dict[str, str] = field(default_factory=dict)  # "hidden" / "not_images" / "folder_links" -> a name
    unlistable: list[tuple[Path, str]] = field(default_factory=list)  # folders that could not be listed, and why


def walk_images(root: str | os.PathLike, *, recursive: bool = True, image_like: bool = False) -> Listing:
    """List the image files under ``root``, counting what is skipped; a folder that cannot be listed is recorded
    in :attr:`Listing.unlistable` and the walk goes on.

    ``image_like=True`` also lists image files gendetect does not decode (SVG, camera RAW...: see
    :data:`~gendetect.imageio.IMAGE_LIKE_EXTENSIONS`), so that a scan gives them an error row saying why. Entries
    that are not regular files but carry an image name (a FIFO ``x.jpg``) are listed too: reading them gives an
    error, never a hang. Symbolic links to folders are not followed (a link can point outside the folder, or back
    into it), but counted in :attr:`Listing.folder_links`, so that a scan says what it did not read.
    """
    root = Path(root)
    wanted = is_image_like_path if image_like else is_image_path
    out = Listing()

    def note(kind: str, name: str) -> None:
        out.examples.setdefault(kind, name)

    def failed(e: OSError) -> None:
        out.unlistable.append((Path(e.filename) if e.filename else root, e.strerror or str(e)))

    for dirpath, dirnames, filenames in os.walk(root, onerror=failed):
        for d in dirnames:
            if not _visible(d):
                out.hidden += 1
                note("hidden", d + "/")
            elif os.path.islink(os.path.join(dirpath, d)):
                out.folder_links += 1
                note("folder_links", d + "/")
        dirnames[:] = sorted(d for d in dirnames if _visible(d)) if recursive else []
        for f in filenames:
            if not _visible(f):
                out.hidden += 1
                note("hidden", f)
            elif wanted(f):
                out.images.append(Path(dirpath) / f)
            else:
                out.not_images += 1
                note("not_images", f)
    out.images.sort()
    return out


def list_images(root: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """Image files (by extension, see :data:`~gendetect.imageio.IMAGE_EXTENSIONS`) in ``root``, sorted.

    Hidden files and folders (names starting with ``.``) are skipped; symbolic links to files are listed, links to
    folders are not followed. (A scan uses :func:`walk_images`, which goes on past unlistable folders.)

    Raises:
        DataSchemaError: ``root`` is not a folder, or a folder below it cannot be listed.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataSchemaError(f"{root} is not a folder")
    listing = walk_images(root, recursive=recursive)
    if listing.unlistable:
        folder, reason = listing.unlistable[0]
        raise DataSchemaError(f"cannot list {folder}: {reason}")
    return listing.images


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(d for d in folder.iterdir() if _visible(d.name) and d.is_dir())
    except OSError as e:
        raise DataSchemaError(f"cannot list {folder}: {e.strerror or e}") from e


def _find_dir(root: Path, match: Callable[[Path], bool], depth: int = _SEARCH_DEPTH) -> bool:
    """Whether a folder at most ``depth`` levels below ``root`` satisfies ``match`` (breadth first)."""
    queue = deque([(root, 0)])
    while queue:
        folder, level = queue.popleft()
        if level >= depth:
            continue
        for d in _subdirs(folder):
            if match(d):
                return True
            queue.append((d, level + 1))
    return False


def _is_genimage_leaf(d: Path) -> bool:
    return d.name.lower() in _GENIMAGE_DIRS and d.parent.name.lower() in _SPLIT_DIRS


# -- layout detection ------------------------------------------------------------------------------------------
def detect_layout(root: str | os.PathLike) -> str:
    """The layout of ``root`` (one of :data:`LAYOUTS` but ``"auto"``; see the module docstring).

    A ``.csv``/``.jsonl``/``.parquet`` file is a ``manifest``, any other file a one-image ``folder``.
    """
    root = Path(root)
    if root.is_file():
        return "manifest" if root.suffix.lower() in MANIFEST_SUFFIXES else "folder"
    if (root / LABELS_CSV).is_file():
        return "labels-csv"
    subdirs = _subdirs(root)
    names = {d.name.lower() for d in subdirs}
    if subdirs and all((d / LABELS_CSV).is_file() for d in subdirs):
        return "labels-csv"
    if names & _CNN_DIRS.keys():
        return "cnndetection"
    if {"real", "fake"} <= names:
        return "cocofake" if (root / CAPTIONS_JSON).is_file() else "real-fake"
    if _find_dir(root, lambda d: d.name.lower() in _CNN_DIRS):
        return "cnndetection"
    if _find_dir(root, _is_genimage_leaf):
        return "genimage"
    return "folder"


# -- entry point -----------------------------------------------------------------------------------------------
def read_records(
    path: str | os.PathLike,
    *,
    layout: str = "auto",
    probe: bool = True,
    hash: bool = True,
    jobs: int = 8,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[ImageRecord]:
    """Records for every image under ``path``: a folder, one image file, or a manifest file.

    Args:
        path: a folder in one of the layouts of the module docstring, an image, or a ``.csv``/``.jsonl``/``.parquet``
            manifest.
        layout: one of :data:`LAYOUTS`; ``"auto"`` detects it (:func:`detect_layout`).
        probe: read each file's header for format, size, mode, JPEG quality and EXIF (and the sha256 of its bytes
            when ``hash``); unreadable files get ``status="error"``. Records read from a Parquet manifest keep the
            facts stored there; only those without them are probed.
        hash: with ``probe``, record each file's sha256 (reads every file in full).
        jobs: threads used for probing.
        max_pixels: images larger than this are recorded as errors (see :func:`~gendetect.imageio.probe_image`).

    Returns:
        One record per image, in a stable order (sorted paths for folders, row order for manifests).

    Raises:
        DataSchemaError: ``path`` does not exist, the layout is unknown, or a manifest is malformed.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataSchemaError(f"{path} does not exist")
    if layout != "auto" and layout not in LAYOUT_READERS:
        valid = ", ".join(("auto", *LAYOUT_READERS))
        raise DataSchemaError(f"Unknown layout {layout!r}; valid layouts: {valid}.")
    if layout == "auto":
        layout = detect_layout(path)
    if layout == "manifest":
        if not path.is_file():
            raise DataSchemaError(f"layout 'manifest' needs a .csv, .jsonl or .parquet file; {path} is a folder")
        records = LAYOUT_READERS.get(layout)(path)
    elif path.is_file():
        records = [ImageRecord(path=str(_absolute(path)), source=_absolute(path).parent.name or None)]
    else:
        records = LAYOUT_READERS.get(layout)(_absolute(path))
    if probe:
        stored = layout == "manifest" and path.suffix.lower() == ".parquet"
        todo = [r for r in records if _needs_probe(r, hash)] if stored else records
        probe_records(todo, hash=hash, jobs=jobs, max_pixels=max_pixels)
    logger.info("%s: %d records (layout %s)", path, len(records), layout)
    return records


def _needs_probe(rec: ImageRecord, hash: bool) -> bool:
    return rec.status != "ok" or rec.format is None or (hash and rec.sha256 is None)


def probe_records(
    records: list[ImageRecord], *, hash: bool = True, jobs: int = 8, max_pixels: int = DEFAULT_MAX_PIXELS
) -> list[ImageRecord]:
    """Fill each record's file facts from its header, in place; unreadable files get ``status="error"``.

    Returns:
        ``records``, for chaining.
    """

    def one(rec: ImageRecord) -> None:
        try:
            info = probe_image(rec.path, hash=hash, max_pixels=max_pixels)
        except ImageLoadError as e:
            rec.status, rec.error = "error", str(e)
            return
        rec.format, rec.width, rec.height, rec.mode = info.format, info.width, info.height, info.mode
        rec.jpeg_quality, rec.has_exif, rec.file_size = info.jpeg_quality, info.has_exif, info.file_size
        if hash:
            rec.sha256 = info.sha256
        rec.status, rec.error = "ok", None

    if jobs > 1 and len(records) > 16:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="gendetect-probe") as pool:
            list(pool.map(one, records))
    else:
        for rec in records:
            one(rec)
    return records


def records_from_paths(paths: Iterable[str | os.PathLike]) -> list[ImageRecord]:
    """Unlabelled records for explicit files (not probed)."""
    return [ImageRecord(path=str(_absolute(p))) for p in paths]


# -- folder layouts --------------------------------------------------------------------------------------------
@LAYOUT_READERS.register("folder")
def _read_folder(root: Path) -> list[ImageRecord]:
    return [ImageRecord(path=str(p), source=root.name) for p in list_images(root)]


@LAYOUT_READERS.register("cnndetection")
def _read_cnndetection(root: Path) -> list[ImageRecord]:
    records = []
    for p in list_images(root):
        parts = p.relative_to(root).parts[:-1]
        idx = next((i for i, part in enumerate(parts) if part.lower() in _CNN_DIRS), None)
        if idx is None:
            logger.debug("%s is not below a 0_real/ or 1_fake/ folder: label unknown", p)
            records.append(ImageRecord(path=str(p), source=root.name))
            continue
        label = _CNN_DIRS[parts[idx].lower()]
        above = parts[:idx]  # (), (generator,) or (generator, category, ...)
        generator = above[0] if above else root.name
        records.append(
            ImageRecord(
                path=str(p),
                label=label,
                generator=REAL_GENERATOR if label == "real" else generator,
                source=f"{root.name}/{generator}" if above else root.name,
                subject="/".join(above[1:]) or None,
            )
        )
    return records


@LAYOUT_READERS.register("real-fake")
def _read_real_fake(root: Path) -> list[ImageRecord]:
    records = []
    for p in list_images(root):
        parts = p.relative_to(root).parts
        top = parts[0].lower()
        if top == "real":
            rec = ImageRecord(path=str(p), label="real", generator=REAL_GENERATOR, source=root.name)
        elif top == "fake":
            generator = parts[1] if len(parts) > 2 else UNKNOWN_GENERATOR
            rec = ImageRecord(path=str(p), label="fake", generator=generator, source=root.name)
        else:
            rec = ImageRecord(path=str(p), source=root.name)
        records.append(rec)
    return records


def load_captions(path: str | os.PathLike) -> dict[str, list[str]]:
    """Captions per image id from ``{"<id>": ["caption", ...]}`` or COCO's ``{"annotations": [{"image_id",
    "caption"}, ...]}`` (``captions_train2017.json``); ids become strings, captions keep their file order."""
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataSchemaError(f"cannot read captions {path}: {e}") from e
    out: dict[str, list[str]] = {}
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        for ann in data["annotations"]:
            out.setdefault(str(ann["image_id"]), []).append(str(ann["caption"]).strip())
        return out
    if isinstance(data, dict):
        return {str(k): [v] if isinstance(v, str) else [str(c) for c in v] for k, v in data.items()}
    raise DataSchemaError(f"{path}: expected a {{id: [captions]}} object or COCO annotations")


@LAYOUT_READERS.register("cocofake")
def _read_cocofake(root: Path) -> list[ImageRecord]:
    """COCOFake-style pairs: ``real/<id>.jpg``, ``fake/<generator>/<id>_<k>.png`` and ``captions.json``.

    Each fake is linked to the caption it was generated from (caption ``k`` of image ``id``) and to the real
    image that caption describes (``extra["pair_id"]``); the real gets its first caption.
    """
    captions = load_captions(root / CAPTIONS_JSON)
    records = []
    for p in list_images(root):
        parts = p.relative_to(root).parts
        stem = p.stem
        if parts[0].lower() == "real":
            caps = captions.get(stem, [])
            records.append(
                ImageRecord(
                    str(p.resolve()),
                    "real",
                    REAL_GENERATOR,
                    root.name,
                    caption=caps[0] if caps else None,
                    extra={"pair_id": stem},
                )
            )
        elif parts[0].lower() == "fake":
            gen = parts[1] if len(parts) > 2 else UNKNOWN_GENERATOR
            pair_id, _, k = stem.rpartition("_")
            if not pair_id or not k.isdigit():
                pair_id, k = stem, "0"
            caps = captions.get(pair_id, [])
            caption = caps[int(k)] if int(k) < len(caps) else None
            records.append(
                ImageRecord(
                    str(p.resolve()),
                    "fake",
                    gen,
                    root.name,
                    caption=caption,
                    extra={"pair_id": pair_id, "caption_index": int(k)},
                )
            )
        else:
            records.append(ImageRecord(str(p.resolve()), source=root.name))
    return records


def pair_split(records: list[ImageRecord], test_fraction: float = 0.2, seed: int = 0) -> list[ImageRecord]:
    """Set ``split`` to "train" or "test" so that a real image and every fake made from its captions fall on
    the same side (grouped by ``extra["pair_id"]``, else by the file name). Deterministic for a seed."""
    import hashlib

    for r in records:
        key = str(r.extra.get("pair_id") or Path(r.path).stem)
        u = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 2**32
        r.split = "test" if u < test_fraction else "train"
    return records


@LAYOUT_READERS.register("genimage")
def _read_genimage(root: Path) -> list[ImageRecord]:
    records = []
    for p in list_images(root):
        parts = p.relative_to(root).parts[:-1]
        lowered = [x.lower() for x in parts]
        # the {ai,nature} folder right below a {train,val,test} folder gives the label; the latter the split
        idx = next(
            (i for i in range(1, len(parts)) if lowered[i] in _GENIMAGE_DIRS and lowered[i - 1] in _SPLIT_DIRS), None
        )
        label = _GENIMAGE_DIRS[lowered[idx]] if idx is not None else "unknown"
        split = lowered[idx - 1] if idx is not None else None
        if idx == 1 or not parts:  # <root>/{train,val}/{ai,nature}: the root is one generator's folder
            subset, source = root.name, root.name
        else:
            subset, source = parts[0], f"{root.name}/{parts[0]}"
        generator = REAL_GENERATOR if label == "real" else subset if label == "fake" else None
        records.append(ImageRecord(path=str(p), label=label, generator=generator, source=source, split=split))
    return records


# -- labels.csv and manifests ----------------------------------------------------------------------------------
@LAYOUT_READERS.register("labels-csv")
def _read_labels_csv_tree(root: Path) -> list[ImageRecord]:
    if (root / LABELS_CSV).is_file():
        return read_labels_csv(root / LABELS_CSV)
    records: list[ImageRecord] = []
    for sub in _subdirs(root):
        if (sub / LABELS_CSV).is_file():
            records.extend(read_labels_csv(sub / LABELS_CSV))
        else:
            logger.warning("%s has no %s; skipped", sub, LABELS_CSV)
    return records


def read_labels_csv(csv_path: str | os.PathLike) -> list[ImageRecord]:
    """Records of a ``labels.csv`` whose ``file`` column is relative to the CSV's folder.

    The folder's name is the dataset name. When the ``generator`` column of real rows names a subset that also
    holds fakes (as in CNNDetection galleries, where each generator's folder has its own reals), reals and fakes of
    that subset get ``source="<dataset>/<subset>"``; otherwise ``source`` is the ``source`` column, or the dataset.
    A real row's other ``generator`` values (such as "unspecified") are kept in ``extra["listed_generator"]``.
    """
    csv_path = _absolute(csv_path)
    return _rows_to_records(_read_table_rows(csv_path), csv_path, dataset=csv_path.parent.name)


_PATH_COLUMNS = ("path", "file", "filename")
_KNOWN_COLUMNS = {*_PATH_COLUMNS, "label", "generator", "source", "caption", "prompt", "subject", "category", "split"}


def _text(value: Any) -> str | None:
    """A cell as text; empty cells and nulls as ``None``."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _rows_to_records(rows: list[Mapping[str, Any]], table: Path, dataset: str) -> list[ImageRecord]:
    """Records from manifest rows; relative paths are resolved against ``table``'s folder."""
    if not rows:
        return []
    path_column = next((c for c in _PATH_COLUMNS if c in rows[0]), None)
    if path_column is None:
        raise DataSchemaError(
            f"{table} has no 'file' or 'path' column (columns: {', '.join(map(str, rows[0]))}); "
            "each row needs the image's path, absolute or relative to the manifest's folder"
        )
    labels = []
    for n, row in enumerate(rows, 1):
        try:
            labels.append(normalise_label(row.get("label")))
        except DataSchemaError as e:
            raise DataSchemaError(f"{table}: row {n}: {e}") from e
    generators = [_text(row.get("generator")) for row in rows]
    fake_gens = {g for g, lab in zip(generators, labels) if lab == "fake"}
    real_sets = {g for g, lab in zip(generators, labels) if lab == "real"} - {None, REAL_GENERATOR}
    paired = fake_gens & real_sets  # subsets whose reals are listed by the name of the subset
    base = table.parent
    records = []
    for n, (row, label, gen) in enumerate(zip(rows, labels, generators), 1):
        rel = _text(row.get(path_column))
        if rel is None:
            raise DataSchemaError(f"{table}: row {n} has an empty {path_column!r}")
        source = _text(row.get("source"))
        extra = {k: v for k, v in row.items() if k not in _KNOWN_COLUMNS and _text(v) is not None}
        if gen in paired and source is None:
            source = f"{dataset}/{gen}"
        if label == "real":
            if gen not in (None, REAL_GENERATOR) and gen not in paired:
                extra["listed_generator"] = gen  # e.g. "real (source not stated)": kept, not lost
            gen = REAL_GENERATOR
        elif label == "fake" and gen is None:
            gen = UNKNOWN_GENERATOR
        records.append(
            ImageRecord(
                path=str(_absolute(base / Path(rel).expanduser())),  # an absolute path replaces ``base``
                label=label,
                generator=gen,
                source=source or dataset,
                caption=_text(row.get("caption")) or _text(row.get("prompt")),
                subject=_text(row.get("subject")) or _text(row.get("category")),
                split=_text(row.get("split")),
                extra=extra,
            )
        )
    return records


def _read_table_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``.csv`` (with a header) or ``.jsonl`` (one object per line) file."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise DataSchemaError(f"{path}: manifests are .csv, .jsonl or .parquet files")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            if suffix == ".csv":
                return [dict(row) for row in csv.DictReader(f)]
            rows = []
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataSchemaError(f"{path}:{n}: not valid JSON: {e}") from e
                if not isinstance(row, dict):
                    raise DataSchemaError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
                rows.append(row)
            return rows
    except UnicodeDecodeError as e:
        raise DataSchemaError(f"{path} is not UTF-8 text: {e}") from e
    except OSError as e:
        raise DataSchemaError(f"cannot read manifest {path}: {e.strerror or e}") from e


@LAYOUT_READERS.register("manifest")
def _read_manifest_file(path: Path) -> list[ImageRecord]:
    path = _absolute(path)
    if path.suffix.lower() == ".parquet":
        from gendetect.data.manifest import read_manifest  # manifest imports records only; no cycle at import

        return read_manifest(path)
    # a labels.csv names its folder's dataset; any other manifest its own file name
    dataset = path.parent.name if path.name.lower() == LABELS_CSV else path.stem
    return _rows_to_records(_read_table_rows(path), path, dataset=dataset)


LAYOUTS = ("auto", *LAYOUT_READERS)  # the layout names read_records takes (the built-in ones; see LAYOUT_READERS)
