"""One record per image, and its Arrow schema. A manifest is a Parquet file of these rows.

Labels are strings: ``"real"``, ``"fake"`` or ``"unknown"``. Numeric targets for detectors follow scikit-learn's
convention used everywhere in gendetect: **1 means fake**, 0 means real (see :func:`label_to_int`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gendetect.errors import DataSchemaError

if TYPE_CHECKING:
    import pyarrow as pa

LABELS = ("real", "fake", "unknown")
REAL_GENERATOR = "real"  # the ``generator`` value of real images


@dataclass
class ImageRecord:
    """Provenance and file facts of one image."""

    path: str  # path of the file (absolute, or relative to the manifest's ``root``)
    label: str = "unknown"  # "real" | "fake" | "unknown"
    generator: str | None = None  # model that made a fake ("stylegan", "sd-1.5"); "real" for real photos
    source: str | None = None  # dataset or subset the image came from ("cnndetection-gallery/biggan")
    caption: str | None = None  # text prompt or caption paired with the image
    subject: str | None = None  # subject or category ("airplane", a COCO supercategory)
    split: str | None = None  # "train" | "val" | "trainval" | "test" or None
    sha256: str | None = None  # hex digest of the file bytes
    format: str | None = None  # container format as Pillow names it: "JPEG", "PNG", "WEBP", ...
    width: int | None = None  # pixels, after EXIF orientation
    height: int | None = None  # pixels, after EXIF orientation
    mode: str | None = None  # Pillow mode of the file before conversion ("RGB", "CMYK", "I;16", "P", ...)
    jpeg_quality: int | None = None  # IJG-equivalent quality estimated from the quantisation tables; JPEG only
    has_exif: bool | None = None  # whether the file carries EXIF metadata
    file_size: int | None = None  # bytes
    status: str = "ok"  # "ok" | "error" (unreadable) | "no-signal" (read, but the no-signal guard applies)
    error: str | None = None  # why not, when status != "ok"
    extra: dict[str, Any] = field(default_factory=dict)  # any other columns of the source (kept, stored as JSON)

    def to_row(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        row["extra"] = json.dumps(self.extra, sort_keys=True, default=str) if self.extra else None
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ImageRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in row.items() if k in known}
        extra = kwargs.pop("extra", None)
        kwargs["extra"] = json.loads(extra) if isinstance(extra, str) and extra else dict(extra or {})
        for k, v in row.items():  # unknown columns survive as extras
            if k not in known and v is not None:
                kwargs["extra"][k] = v
        rec = cls(**kwargs)
        rec.label = normalise_label(rec.label)
        return rec


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("path", pa.string()),
            ("label", pa.string()),
            ("generator", pa.string()),
            ("source", pa.string()),
            ("caption", pa.string()),
            ("subject", pa.string()),
            ("split", pa.string()),
            ("sha256", pa.string()),
            ("format", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("mode", pa.string()),
            ("jpeg_quality", pa.int16()),
            ("has_exif", pa.bool_()),
            ("file_size", pa.int64()),
            ("status", pa.string()),
            ("error", pa.string()),
            ("extra", pa.string()),
        ]
    )


def __getattr__(name: str) -> Any:
    # SCHEMA is built on first use: pyarrow is needed for manifests, not to list and scan image files (issue 17)
    if name == "SCHEMA":
        globals()["SCHEMA"] = schema = _schema()
        return schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_LABEL_ALIASES = {
    "real": "real",
    "0": "real",
    "0_real": "real",
    "nature": "real",
    "natural": "real",
    "authentic": "real",
    "fake": "fake",
    "1": "fake",
    "1_fake": "fake",
    "ai": "fake",
    "generated": "fake",
    "synthetic": "fake",
    "unknown": "unknown",
    "": "unknown",
    "none": "unknown",
    "nan": "unknown",
}


def normalise_label(value: Any) -> str:
    """Map the spellings datasets use (0/1, ai/nature, real/fake) to ``"real" | "fake" | "unknown"``."""
    if value is None:
        return "unknown"
    key = str(value).strip().lower()
    if key.endswith(".0"):  # 0.0 / 1.0 from CSV readers
        key = key[:-2]
    try:
        return _LABEL_ALIASES[key]
    except KeyError:
        raise DataSchemaError(
            f"Unknown label {value!r}; expected one of real/fake/unknown (also accepted: 0/1, nature/ai)."
        ) from None


def label_to_int(label: str) -> int:
    """``"fake"`` -> 1, ``"real"`` -> 0; anything else raises."""
    if label == "fake":
        return 1
    if label == "real":
        return 0
    raise DataSchemaError(f"Label {label!r} has no numeric target; only real/fake images can train or evaluate.")
