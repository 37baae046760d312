"""Caption sources for dataset generation: COCO caption JSON, WIT-style TSV, plain prompt lists (.txt / .csv).

Each source becomes a list of :class:`CaptionItem`: a stable id, unique within the file (generation seeds derive from
it, never from the order), the caption, and when the source pairs the caption with a photograph, that real image
(``pair_id``, ``real_path``), its subject category and licence. ``pair_id`` is the image's id where the source gives
one (COCO image id, an ``image_id`` column), else ``<file stem>-<hash of the resolved path or URL>``: two images
never share one because their file names do (``a/001.jpg``, ``b/001.png``).

Example:
    >>> import json, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "captions.json").write_text(json.dumps({
    ...     "images": [{"id": 7, "file_name": "000000000007.jpg"}],
    ...     "annotations": [{"id": 70, "image_id": 7, "caption": "A cat on a mat."}]}))
    >>> [(c.caption_id, c.pair_id, c.caption) for c in read_captions(d / "captions.json")]
    [('70', '7', 'A cat on a mat.')]
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from gendetect.errors import DataSchemaError

logger = logging.getLogger(__name__)

CAPTION_FORMATS = ("auto", "coco", "wit", "txt", "csv")

# column names accepted in TSV/CSV caption tables, in order of preference
_CAPTION_COLS = ("caption", "caption_reference_description", "caption_alt_text_description", "prompt", "text")
_IMAGE_COLS = ("image_path", "path", "image", "file_name", "image_url", "url")
_CATEGORY_COLS = ("category", "subject", "supercategory", "tag", "tags")
_LICENSE_COLS = ("license", "licence")
_ID_COLS = ("caption_id", "id")  # the caption's own id (an image id is not one: an image has several captions)
_PAIR_COLS = ("image_id", "pair_id")  # the real image's id, shared by its captions


@dataclass(frozen=True)
class CaptionItem:
    """One caption to generate from."""

    caption_id: str  # stable unique id (COCO annotation id, table id, or a hash of the prompt); seeds derive from it
    caption: str  # the text prompt
    source: str  # caption source kind and name, e.g. "coco:captions_val2017"
    pair_id: str | None = None  # id of the real image the caption describes (COCO image id); None for prompts
    real_path: str | None = None  # path or URL of that real image, when known
    subject: str | None = None  # subject category (COCO supercategory, WIT tag)
    license: str | None = None  # licence of the real image, when the source says

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_captions(
    path: str | os.PathLike,
    *,
    kind: str = "auto",
    real_root: str | os.PathLike | None = None,
    instances: str | os.PathLike | None = None,
    captions_per_image: int | None = None,
) -> list[CaptionItem]:
    """Read a caption file into :class:`CaptionItem` s, in file order.

    Args:
        path: a COCO captions JSON (``captions_train2017.json``, or ``{"<image id>": ["caption", ...]}``), a
            WIT-style ``.tsv`` (columns caption, image path or URL, category; optionally ``caption_id``/``id`` and the
            image's ``image_id``), a ``.txt`` (one prompt per line; blank lines and ``#`` comments skipped) or a
            ``.csv`` with a ``caption``/``prompt`` column (and the same optional columns). Repeated ids get ``-2``,
            ``-3``... suffixes.
        kind: one of :data:`CAPTION_FORMATS`; ``"auto"`` picks by suffix.
        real_root: folder of the real images (COCO ``file_name`` s, relative TSV/CSV paths); default: the caption
            file's folder for tables, and for COCO ``<caption folder>/<file_name>`` only if that file exists.
        instances: a COCO instances JSON (``instances_train2017.json``) whose annotations give each image a subject:
            the supercategory covering the largest area.
        captions_per_image: keep at most this many captions of each real image (COCO has five); None keeps all.

    Raises:
        DataSchemaError: unreadable file, unknown kind, or a table without a caption column.
    """
    path = Path(path).expanduser()
    if kind not in CAPTION_FORMATS:
        raise DataSchemaError(f"Unknown caption format {kind!r}; valid formats: {', '.join(CAPTION_FORMATS)}.")
    if not path.is_file():
        raise DataSchemaError(f"caption file {path} does not exist")
    if kind == "auto":
        kind = {".json": "coco", ".tsv": "wit", ".txt": "txt", ".csv": "csv"}.get(path.suffix.lower(), "")
        if not kind:
            raise DataSchemaError(
                f"cannot tell the caption format of {path.name}; use .json (COCO), .tsv (WIT), .txt or .csv, or pass "
                "the format explicitly"
            )
    root = Path(real_root).expanduser() if real_root is not None else None
    if kind == "coco":
        items = _read_coco(path, root, instances)
    elif kind == "wit":
        items = _read_table(path, root, delimiter="\t", kind="wit")
    elif kind == "csv":
        items = _read_table(path, root, delimiter=",", kind="csv")
    else:
        items = _read_txt(path)
    if captions_per_image is not None:
        seen: Counter[str] = Counter()
        kept = []
        for it in items:
            key = it.pair_id or it.caption_id
            if seen[key] < captions_per_image:
                kept.append(it)
            seen[key] += 1
        items = kept
    logger.info("%s: %d captions (%s)", path, len(items), kind)
    return items


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataSchemaError(f"cannot read {path}: {e}") from e


def _coco_subjects(instances: str | os.PathLike) -> dict[str, str]:
    """image id -> supercategory covering the largest total area in a COCO instances JSON."""
    data = _load_json(Path(instances))
    supercat = {c["id"]: c.get("supercategory") or c.get("name") for c in data.get("categories", [])}
    areas: dict[str, Counter[str]] = {}
    for ann in data.get("annotations", []):
        cat = supercat.get(ann.get("category_id"))
        if cat:
            areas.setdefault(str(ann["image_id"]), Counter())[cat] += float(ann.get("area", 1.0))
    return {img: max(sorted(c), key=lambda k: c[k]) for img, c in areas.items()}


def _read_coco(path: Path, root: Path | None, instances: str | os.PathLike | None) -> list[CaptionItem]:
    data = _load_json(path)
    source = f"coco:{path.stem}"
    subjects = _coco_subjects(instances) if instances is not None else {}
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        licenses = {lic.get("id"): lic.get("name") for lic in data.get("licenses", []) if isinstance(lic, dict)}
        images = {str(im["id"]): im for im in data.get("images", []) if isinstance(im, dict) and "id" in im}
        items, per_image, used = [], Counter(), set()
        for ann in data["annotations"]:
            try:
                image_id, caption = str(ann["image_id"]), str(ann["caption"]).strip()
            except (KeyError, TypeError) as e:
                raise DataSchemaError(f"{path}: a caption annotation lacks image_id or caption: {ann!r}") from e
            n = per_image[image_id]
            per_image[image_id] += 1
            im = images.get(image_id, {})
            file_name = im.get("file_name") or (f"{int(image_id):012d}.jpg" if image_id.isdigit() else None)
            items.append(
                CaptionItem(
                    caption_id=_unique(str(ann["id"]) if "id" in ann else f"{image_id}_{n}", used),
                    caption=caption,
                    source=source,
                    pair_id=image_id,
                    real_path=_real_path(file_name, root, path.parent, require=root is None),
                    subject=subjects.get(image_id),
                    license=licenses.get(im.get("license")) if im.get("license") is not None else None,
                )
            )
        return items
    if isinstance(data, dict):  # {"<image id>": ["caption", ...]}, as the cocofake layout's captions.json
        items = []
        for image_id, caps in data.items():
            for n, caption in enumerate([caps] if isinstance(caps, str) else caps):
                items.append(
                    CaptionItem(
                        f"{image_id}_{n}",
                        str(caption).strip(),
                        source,
                        pair_id=str(image_id),
                        real_path=_find_real(str(image_id), root),
                        subject=subjects.get(str(image_id)),
                    )
                )
        return items
    raise DataSchemaError(f"{path}: expected COCO caption annotations or a {{image id: [captions]}} object")


def _real_path(name: str | None, root: Path | None, default_root: Path, require: bool) -> str | None:
    if not name:
        return None
    if "://" in name:
        return name
    p = Path(name).expanduser()
    if not p.is_absolute():
        p = (root or default_root) / p
    if require and not p.exists():  # no --real-root: pair only with reals that are really there
        return None
    return str(p.resolve())


def _find_real(image_id: str, root: Path | None) -> str | None:
    if root is None:
        return None
    for ext in (".jpg", ".jpeg", ".png", ".webp"):
        for stem in (image_id, f"{int(image_id):012d}" if image_id.isdigit() else image_id):
            if (root / f"{stem}{ext}").is_file():
                return str((root / f"{stem}{ext}").resolve())
    return None


def _pick(row: dict[str, str], names: tuple[str, ...]) -> str | None:
    lower = {k.strip().lower(): v for k, v in row.items() if k}
    for n in names:
        v = lower.get(n)
        if v is not None and str(v).strip():
            return str(v).strip()
    return None


def _read_table(path: Path, root: Path | None, *, delimiter: str, kind: str) -> list[CaptionItem]:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter=delimiter))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataSchemaError(f"cannot read caption table {path}: {e}") from e
    if rows and _pick({k: "x" for k in rows[0]}, _CAPTION_COLS) is None:
        raise DataSchemaError(
            f"{path} has no caption column; columns: {', '.join(rows[0])}; expected one of {', '.join(_CAPTION_COLS)}"
        )
    items: list[CaptionItem] = []
    used: set[str] = set()
    repeated = 0
    for n, row in enumerate(rows, 2):
        caption = _pick(row, _CAPTION_COLS)
        if not caption:
            logger.warning("%s: line %d has an empty caption; skipped", path, n)
            continue
        image = _pick(row, _IMAGE_COLS)
        real = _real_path(image, root, path.parent, require=False) if image else None
        given = _pick(row, _ID_COLS)
        cid = _unique(given or _text_hash(caption), used)
        if given and cid != given:
            repeated += 1
        pair = _pick(row, _PAIR_COLS) or (_path_id(image) if image else None)
        items.append(
            CaptionItem(
                caption_id=cid,
                caption=caption,
                source=f"{kind}:{path.stem}",
                pair_id=pair,
                real_path=real,
                subject=_pick(row, _CATEGORY_COLS),
                license=_pick(row, _LICENSE_COLS),
            )
        )
    if repeated:
        logger.warning("%s: %d captions repeat an id of an earlier line; suffixed -2, -3...", path, repeated)
    return items


def _text_hash(text: str, n: int = 12) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def _unique(cid: str, used: set[str]) -> str:
    """``cid``, or ``cid-2``, ``cid-3``... when an earlier item took it (repeated prompts, repeated table ids)."""
    out, n = cid, 1
    while out in used:
        n += 1
        out = f"{cid}-{n}"
    used.add(out)
    return out


def _path_id(image: str) -> str:
    """The pair id of a real image known only by its path or URL: its stem plus a hash of the whole (normalised) path
    or URL as the table gives it, so ``a/001.jpg`` and ``b/001.png`` differ and moving the data keeps the ids."""
    if "://" in image:
        key, name = image, urlsplit(image).path
    else:
        key = name = PurePosixPath(os.path.normpath(image).replace("\\", "/")).as_posix()
    stem = PurePosixPath(name).stem
    h = _text_hash(key, 10)
    return f"{stem}-{h}" if stem else h


def _read_txt(path: Path) -> list[CaptionItem]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataSchemaError(f"cannot read prompts {path}: {e}") from e
    used: set[str] = set()
    return [
        CaptionItem(_unique(_text_hash(line.strip()), used), line.strip(), f"txt:{path.stem}")
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    ]
