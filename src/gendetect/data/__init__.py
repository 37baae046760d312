"""Image records, manifests and dataset layout readers.

Example:
    >>> from gendetect.data import describe, read_records, write_manifest
    >>> records = read_records("data/my-set")  # doctest: +SKIP
    >>> write_manifest(records, "my-set.parquet", metadata={"root": "data/my-set"})  # doctest: +SKIP
    >>> describe(records)["warnings"]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gendetect._lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use (see __getattr__): listing image files must not load pyarrow
    from gendetect.data.manifest import (
        confound_warnings as confound_warnings,
        describe as describe,
        read_manifest as read_manifest,
        read_manifest_metadata as read_manifest_metadata,
        write_manifest as write_manifest,
    )
    from gendetect.data.readers import (
        LAYOUTS as LAYOUTS,
        detect_layout as detect_layout,
        list_images as list_images,
        probe_records as probe_records,
        read_labels_csv as read_labels_csv,
        read_records as read_records,
    )
    from gendetect.data.records import (
        LABELS as LABELS,
        REAL_GENERATOR as REAL_GENERATOR,
        SCHEMA as SCHEMA,
        ImageRecord as ImageRecord,
        label_to_int as label_to_int,
        normalise_label as normalise_label,
    )

_HOME = {
    **dict.fromkeys(
        ("confound_warnings", "describe", "read_manifest", "read_manifest_metadata", "write_manifest"),
        "gendetect.data.manifest",
    ),
    **dict.fromkeys(
        ("LAYOUTS", "detect_layout", "list_images", "probe_records", "read_labels_csv", "read_records"),
        "gendetect.data.readers",
    ),
    **dict.fromkeys(
        ("LABELS", "REAL_GENERATOR", "SCHEMA", "ImageRecord", "label_to_int", "normalise_label"),
        "gendetect.data.records",
    ),
}


__getattr__, __dir__ = lazy_exports(__name__, _HOME)


__all__ = [
    "LABELS",
    "LAYOUTS",
    "REAL_GENERATOR",
    "SCHEMA",
    "ImageRecord",
    "confound_warnings",
    "describe",
    "detect_layout",
    "label_to_int",
    "list_images",
    "normalise_label",
    "probe_records",
    "read_labels_csv",
    "read_manifest",
    "read_manifest_metadata",
    "read_records",
    "write_manifest",
]
