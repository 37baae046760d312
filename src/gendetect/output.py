"""Writing scan rows: the one module that turns result rows into JSONL, CSV, TSV, JSON, Parquet or a table.

The CLI (``gendetect scan -o FILE``) and the server use it. Guarantees:

* **Streamed.** :class:`RowWriter` writes each row as it arrives: JSONL, CSV and TSV line by line (flushed), JSON
  as one array element per line, Parquet as a row group every ``row_group_size`` rows. The table is rendered at
  the end (it needs every row for its column widths).
* **Atomic.** A file destination is written under a hidden temporary name in the same folder
  (:func:`gendetect.atomic.atomic_path`) and renamed into place when the writer closes. An older file at that path
  is removed when the writer opens, so it can never be mistaken for the result of this run; a run killed hard
  (``kill -9``) therefore leaves no file at the path, and its rows so far in the temporary file.
* **Interrupted runs finish their file.** When the ``with`` block ends with an exception (``KeyboardInterrupt``
  included), the rows written so far are completed into a valid file (a closed JSON array, a Parquet footer),
  renamed into place, and :attr:`RowWriter.complete` is False. Parquet files carry the provenance in their schema
  metadata (key ``gendetect``, as before) and, in the file's footer metadata
  (``pyarrow.parquet.read_metadata(path).metadata[b"gendetect"]``), the same plus ``"complete"`` (false for an
  interrupted run) and ``"rows"``. The caller says so (the CLI on stderr, exit code 130 for Ctrl-C).
* **Paths as the OS gives them.** A file name that is not valid UTF-8 is written as an escaped text path
  (undecodable bytes as ``\\xNN``, :func:`escape_path`) plus the file name's raw bytes as lowercase hex in the
  ``path_bytes`` column (empty for every UTF-8 name), so no writer ever fails on it and the exact name can be
  recovered (``bytes.fromhex``).
* **Spreadsheet-safe text.** In CSV and TSV, a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return gets a leading ``'`` so that a spreadsheet shows it instead of evaluating it as a formula. CSV
  lines end with CRLF (RFC 4180), TSV lines with LF (a carriage return inside a TSV cell is written ``\\r``).
* **One schema.** Scan rows of one run all have the same keys (:func:`gendetect.pipeline.scan_columns`), and the
  columns every scan row can have get fixed Parquet types, so an error row has the columns of a scored one.
* **Run metadata beside the rows.** :func:`write_meta` writes a run's metadata to ``FILE.meta.json``
  (:func:`meta_path`) next to the results (``gendetect scan -o FILE --meta``); a writer opening ``FILE`` removes
  an older ``FILE.meta.json``, which described the file it replaces.

Example:
    >>> import io
    >>> buf = io.StringIO()
    >>> write_rows([{"path": "=cmd.png", "p_fake": 0.25}], buf, "csv")
    1
    >>> buf.getvalue().splitlines()
    ['path,path_bytes,p_fake', "'=cmd.png,,0.25"]
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np

from gendetect.atomic import atomic_path
from gendetect.errors import GendetectError

logger = logging.getLogger(__name__)

FORMATS = ("table", "json", "jsonl", "csv", "tsv", "parquet")
"""Every output format, as ``--format`` names them."""

SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".txt": "table",
}
"""File suffix -> format, for ``-o FILE`` without ``--format``."""

TEXT_FORMATS = ("jsonl", "csv", "tsv", "json", "table")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
DEFAULT_ROW_GROUP_SIZE = 1024

# Arrow types of the columns every scan row has, so that a first row group of error rows (all-null scores) does
# not fix a null type that later scores could not be written under.
_KNOWN_TYPES = {
    "path": "string",
    "path_bytes": "string",
    "status": "string",
    "p_fake": "float64",
    "verdict": "string",
    "error": "string",
    "format": "string",
    "width": "int64",
    "height": "int64",
    "mode": "string",
    "jpeg_quality": "int64",
    "sha256": "string",
    "model": "string",
    "threshold": "float64",
    "uncertain_from": "float64",
    "has_caption": "bool",
    "reason": "string",
    "verdict_source": "string",
    "evidence": "string",
    "pixel_verdict": "string",
    "evidence_rule": "string",
    "evidence_skipped": "string",  # lists as JSON text, as every nested value
    "findings": "string",
    "warnings": "string",
    "n_frames": "int64",
    "tiles": "int64",
    "signal_tiles": "int64",
}


# the columns of scan rows whose values are lists: JSON text in Parquet (streamed or sharded) and in scan shards
JSON_COLUMNS = ("findings", "warnings", "evidence_skipped")


def scan_arrow_types() -> dict[str, Any]:
    """The Arrow type of each column every scan row can have (``_KNOWN_TYPES``), for writers other than
    :class:`RowWriter` (the sharded engines' final table) so that every scan's Parquet has the same schema."""
    import pyarrow as pa

    return {k: pa.type_for_alias(v) for k, v in _KNOWN_TYPES.items()}


def nested_as_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with each list or dict value as JSON text, as Parquet holds them: a scan shard then has one flat
    schema whatever its files held (Arrow would infer a struct from the findings of all of them, and pad each
    finding's details with the keys of the others')."""
    return {
        k: json.dumps(json_safe(v), ensure_ascii=False, allow_nan=False) if isinstance(v, (list, dict)) else v
        for k, v in row.items()
    }


def nested_from_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`nested_as_json` for the list columns of scan rows (``JSON_COLUMNS``): their JSON text
    back to lists (values that are already lists, from older shards, are kept)."""
    out = dict(row)
    for k in JSON_COLUMNS:
        v = out.get(k)
        if isinstance(v, str):
            try:
                out[k] = json.loads(v)
            except ValueError:
                pass
    return out


class OutputFormatError(GendetectError, ValueError):
    """An output path or format gendetect cannot write; the message lists the formats it can."""


def output_format(path: str | os.PathLike | None, fmt: str | None = None) -> str:
    """The format to write: ``fmt`` when given, else from ``path``'s suffix, else ``"table"``.

    Raises:
        OutputFormatError: ``fmt`` is not a format, ``path`` has a suffix no writer knows (``.xlsx``), or Parquet
            is asked for without a file.
    """
    if fmt is not None:
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise OutputFormatError(f"unknown output format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    elif path is not None:
        suffix = Path(path).suffix.lower()
        fmt = SUFFIXES.get(suffix)
        if fmt is None:
            known = ", ".join(f"{s} ({f})" for s, f in SUFFIXES.items())
            raise OutputFormatError(
                f"cannot tell the output format of {os.fsdecode(path)!r} from its suffix {suffix or '(none)'!r}; "
                f"use one of {known}, or pass --format ({', '.join(FORMATS)})"
            )
    else:
        fmt = "table"
    if fmt == "parquet" and path is None:
        raise OutputFormatError("Parquet output needs a file: -o FILE.parquet")
    return fmt


# -- making values writable ----------------------------------------------------------------------------------
def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def escape_path(path: str | os.PathLike | bytes) -> tuple[str, str | None]:
    """``(text, raw)`` for a path as the OS gave it: ``raw`` is the hex of its bytes when they are not valid
    UTF-8 (else None), ``text`` a printable form with each undecodable byte written ``\\xNN``.

    Example:
        >>> escape_path(b"caf\\xe9.png")
        ('caf\\\\xe9.png', '636166e92e706e67')
        >>> escape_path("café.png")
        ('café.png', None)
    """
    raw = path if isinstance(path, bytes) else os.fsencode(path)
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), raw.hex()


def _safe_text(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes of a file name inside a message) escaped as ``\\xNN``."""
    if not _has_surrogates(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def json_safe(value: Any) -> Any:
    """``value`` made writable as strict JSON, CSV and Parquet: NaN and infinities become None, numpy scalars and
    arrays Python numbers and lists, paths text, undecodable file-name bytes ``\\xNN`` escapes, bytes hex."""
    if isinstance(value, str):
        return _safe_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, Mapping):
        return {_safe_text(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, os.PathLike):
        return escape_path(value)[0]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return _safe_text(str(value))


def safe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One result row ready for any writer: :func:`json_safe` values, and ``path`` split into an escaped
    ``path`` plus ``path_bytes`` (hex of the raw name when it is not UTF-8, else None) right after it."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key == "path" and value is not None:
            text, raw = escape_path(value)
            out["path"], out["path_bytes"] = text, raw or row.get("path_bytes")  # an escaped row keeps its bytes
        elif key != "path_bytes":
            out[_safe_text(str(key))] = json_safe(value)
    if "path" in row and row["path"] is None:
        out["path_bytes"] = None
    return out


def spreadsheet_safe(cell: Any) -> Any:
    """A CSV/TSV cell that a spreadsheet shows as text: ``=1+2`` -> ``'=1+2`` (numbers are left alone)."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_START):
        return "'" + cell
    return cell


def _text_cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    return spreadsheet_safe(value)


# -- the writer ----------------------------------------------------------------------------------------------
class RowWriter:
    """Write result rows as they arrive, to a file (atomically) or a text stream; use it as a context manager.

    Args:
        dest: a file path, an open text stream (``sys.stdout``), or None for stdout.
        fmt: one of :data:`FORMATS`; see :func:`output_format`.
        columns: the leading columns, in order (``path_bytes`` is added after ``path``); the other keys of the first
            ``schema_rows`` rows follow in first-seen order. CSV, TSV and Parquet hold those rows back until their
            columns are known; a key that first appears later is dropped from them (with one warning), JSON keeps
            it. Nested values (lists, dicts) are JSON text in CSV, TSV and Parquet.
        metadata: a JSON-able dict stored in Parquet's ``gendetect`` key (with ``complete`` and ``rows`` added).
        row_group_size: rows per Parquet row group (the unit that reaches the disk).
        render_table: ``render_table(rows, stream) -> None`` for the ``table`` format (default: :func:`render_table`).

    Attributes:
        rows_written: rows written so far.
        complete: after closing: True when the ``with`` block ended normally.
        path: the final file path (None for a stream).
    """

    def __init__(
        self,
        dest: str | os.PathLike | IO[str] | None,
        fmt: str,
        *,
        columns: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
        schema_rows: int = 64,
        render_table: Any = None,
    ) -> None:
        if fmt not in FORMATS:
            raise OutputFormatError(f"unknown output format {fmt!r}; valid formats: {', '.join(FORMATS)}")
        self.fmt = fmt
        self.path: Path | None = None
        self._stream: IO[str] | None = None
        if dest is None or hasattr(dest, "write"):
            if fmt == "parquet":
                raise OutputFormatError("Parquet output needs a file: -o FILE.parquet")
            self._stream = dest if dest is not None else sys.stdout  # type: ignore[assignment]
        else:
            self.path = Path(dest)  # type: ignore[arg-type]
        self._leading = _with_path_bytes(list(columns or []))
        self._columns: list[str] | None = None
        self._schema_rows = max(1, int(schema_rows))
        self._pending: list[dict[str, Any]] = []  # rows held back until the columns are known (CSV, TSV)
        self._metadata = dict(metadata or {})
        self._row_group_size = max(1, int(row_group_size))
        self._render_table = render_table
        self._tmp: Path | None = None
        self._rename = contextlib.ExitStack()  # holds atomic_path(path) while the file is written
        self._file: IO[Any] | None = None
        self._csv: Any = None
        self._buffer: list[dict[str, Any]] = []
        self._parquet: Any = None
        self._schema: Any = None
        self._dropped: set[str] = set()
        self._cache: dict[str, Any] = {}
        self._opened = self._closed = False
        self.rows_written = 0
        self.complete = False

    # context manager ------------------------------------------------------------------------------------------
    def __enter__(self) -> RowWriter:  # noqa: PYI034 - typing_extensions is not a dependency
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(complete=exc_type is None)

    # lifecycle ------------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Start the output: remove an older file at the path, open the temporary file, write any header."""
        if self._opened:
            return
        self._opened = True
        if self.path is not None:
            try:
                self._open_path()
            except (OSError, OutputFormatError) as e:  # a folder that cannot be made, no permission, a file in the way
                self._closed = True  # nothing to finish: the run stops before its first row
                self._rename.pop_all()  # no rename into place
                if self._tmp is not None:
                    self._tmp.unlink(missing_ok=True)
                if isinstance(e, OutputFormatError):
                    raise
                raise OutputFormatError(f"cannot write {os.fsdecode(self.path)}: {e.strerror or e}") from e
        else:
            self._file = self._stream
        if self.fmt == "json":
            self._write_text("[")

    def _open_path(self) -> None:
        assert self.path is not None
        above = self.path.parent
        while not above.exists() and above != above.parent:
            above = above.parent
        if above.exists() and not above.is_dir():
            raise OutputFormatError(
                f"cannot write {os.fsdecode(self.path)}: {os.fsdecode(above)} is a file, not a folder"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)  # missing folders are made, as for any output path
        if self.path.is_dir():
            raise OutputFormatError(f"{os.fsdecode(self.path)} is a folder; -o needs a file name")
        self._tmp = self._rename.enter_context(atomic_path(self.path))
        if self.path.exists() or self.path.is_symlink():
            logger.info("removing the older %s: it is replaced by this run's results", self.path)
            self.path.unlink()
        remove_older_meta(self.path)  # it described the file removed above
        if self.fmt != "parquet":
            self._file = open(self._tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
        else:  # the Parquet writer opens it at the first row group: find out now that it can
            open(self._tmp, "wb").close()

    def write(self, row: Mapping[str, Any]) -> None:
        """Write one row (a dict, e.g. ``ScanRow.to_dict()``); text formats reach the file at once."""
        if not self._opened:
            self.open()
        if self._closed:
            raise ValueError("RowWriter is closed")
        row = safe_row(row)
        if self.fmt in ("csv", "tsv"):
            if self._columns is None:
                self._pending.append(row)
                if len(self._pending) >= self._schema_rows:
                    self._flush_pending()
            else:
                self._write_delimited(row)
        elif self.fmt == "jsonl":
            self._write_text(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
        elif self.fmt == "json":
            sep = "," if self.rows_written else ""
            self._write_text(f"{sep}\n  " + json.dumps(row, ensure_ascii=False, allow_nan=False))
        else:  # parquet, table: buffered
            self._buffer.append(row)
            if self.fmt == "parquet" and len(self._buffer) >= self._row_group_size:
                self._flush_parquet()
        self.rows_written += 1

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Write every row of ``rows``; returns how many."""
        n = 0
        for row in rows:
            self.write(row)
            n += 1
        return n

    def close(self, *, complete: bool = True) -> None:
        """Finish the output (a closed JSON array, the table, the Parquet footer) and rename it into place.

        ``complete=False`` marks an interrupted run: the file still holds every row written, and is valid.
        """
        if self._closed:
            return
        if not self._opened:
            self.open()
        self._closed = True
        self.complete = complete
        try:
            if self.fmt in ("csv", "tsv"):
                self._flush_pending()
            elif self.fmt == "json":
                self._write_text("\n]\n" if self.rows_written else "]\n")
            elif self.fmt == "table":
                self._finish_table()
            elif self.fmt == "parquet":
                self._finish_parquet()
        finally:
            if self.path is not None and self._file is not None:
                self._file.close()
            if self.path is not None and self._tmp is not None and self._tmp.exists():
                self._rename.close()  # renamed into place even after an exception: the partial file is valid

    # formats --------------------------------------------------------------------------------------------------
    def _write_text(self, text: str) -> None:
        assert self._file is not None
        self._file.write(text)
        self._file.flush()

    def _fix_columns(self, rows: list[dict[str, Any]]) -> None:
        if self._columns is None:
            columns = dict.fromkeys(self._leading)
            for r in rows:
                columns.update(dict.fromkeys(r))
            self._columns = _with_path_bytes(list(columns))

    def _flush_pending(self) -> None:
        self._fix_columns(self._pending)
        for row in self._pending:
            self._write_delimited(row)
        if self._csv is None:  # no rows at all: still a header
            self._write_delimited(None)
        self._pending = []

    def _keep(self, row: dict[str, Any]) -> dict[str, Any]:
        assert self._columns is not None
        extra = set(row) - set(self._columns) - self._dropped
        if extra:
            self._dropped |= extra
            logger.warning("columns %s appeared after the first row and are not written", ", ".join(sorted(extra)))
        return {c: row.get(c) for c in self._columns}

    def _write_delimited(self, row: dict[str, Any] | None) -> None:
        assert self._file is not None and self._columns is not None
        if self._csv is None:
            # CSV ends lines with CRLF (RFC 4180), so that a carriage return inside a cell is quoted, not a break.
            tsv = self.fmt == "tsv"
            self._csv = csv.writer(self._file, delimiter="\t" if tsv else ",", lineterminator="\n" if tsv else "\r\n")
            self._csv.writerow([spreadsheet_safe(c) for c in self._columns])
        if row is not None:
            cells = ["" if v is None else _text_cell(v) for v in self._keep(row).values()]
            if self.fmt == "tsv":  # TSV lines end with LF: a carriage return inside a cell is written as \r
                cells = [c.replace("\r", "\\r") if isinstance(c, str) else c for c in cells]
            self._csv.writerow(cells)
        self._file.flush()

    def _finish_table(self) -> None:
        render = self._render_table or render_table
        if self.path is None:
            render(self._buffer, None if self._stream is sys.stdout else self._stream)
        else:
            render(self._buffer, self._file)

    def _arrow_schema(self, rows: list[dict[str, Any]]) -> Any:
        import pyarrow as pa

        assert self._columns is not None
        known = scan_arrow_types()
        fields = []
        for col in self._columns:
            if col in known:
                typ = known[col]
            else:
                try:
                    typ = pa.array([r.get(col) for r in rows]).type
                except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                    typ = pa.string()
                if pa.types.is_null(typ) or pa.types.is_nested(typ):
                    typ = pa.string()  # nested values as JSON text: a later row cannot break a struct schema
            fields.append(pa.field(col, typ))
        return pa.schema(fields)

    def _column(self, values: list[Any], field: Any) -> Any:
        import pyarrow as pa

        if pa.types.is_string(field.type):
            return pa.array(
                [None if v is None else v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values],
                type=field.type,
            )
        try:
            return pa.array(values, type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            logger.warning("column %s: values that do not fit its type %s are written as null", field.name, field.type)
            out = []
            for v in values:
                try:
                    pa.array([v], type=field.type)
                    out.append(v)
                except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                    out.append(None)
            return pa.array(out, type=field.type)

    def _metadata_bytes(self, **final: Any) -> bytes:
        from gendetect.provenance import provenance

        if "provenance" not in self._cache:
            self._cache["provenance"] = provenance(kind="scan")
        return json.dumps(json_safe({**self._cache["provenance"], **self._metadata, **final})).encode()

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._parquet is None:
            self._fix_columns(self._buffer or [{"path": None}])
            self._schema = self._arrow_schema(self._buffer).with_metadata({b"gendetect": self._metadata_bytes()})
            assert self._tmp is not None
            self._parquet = pq.ParquetWriter(self._tmp, self._schema)
        if not self._buffer:
            return
        kept = [self._keep(r) for r in self._buffer]
        arrays = [self._column([r[f.name] for r in kept], f) for f in self._schema]
        self._parquet.write_table(pa.Table.from_arrays(arrays, schema=self._schema))
        self._buffer = []

    def _finish_parquet(self) -> None:
        self._flush_parquet()
        final = self._metadata_bytes(complete=self.complete, rows=self.rows_written)
        self._parquet.add_key_value_metadata({"gendetect": final.decode()})
        self._parquet.close()


META_SUFFIX = ".meta.json"
"""What :func:`meta_path` adds to a results file's name."""


def meta_path(output: str | os.PathLike) -> Path:
    """Where the metadata of the results file ``output`` goes: ``results.csv`` -> ``results.csv.meta.json``."""
    output = Path(output)
    return output.with_name(output.name + META_SUFFIX)


def remove_older_meta(output: str | os.PathLike) -> None:
    """Remove ``output``'s metadata file (:func:`meta_path`) left by an earlier run: it describes the results this
    run replaces."""
    older = meta_path(output)
    if older.is_file() or older.is_symlink():
        logger.info("removing the older %s: it described the results this run replaces", older)
        older.unlink()


def write_meta(path: str | os.PathLike, meta: Mapping[str, Any]) -> Path:
    """Write a run's metadata (e.g. :meth:`gendetect.scale.ScanRun.metadata`) as strict, indented JSON to ``path``,
    atomically (a temporary file renamed into place); returns the path."""
    from gendetect.atomic import atomic_write

    text = json.dumps(json_safe(dict(meta)), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    try:
        return atomic_write(path, text)
    except OSError as e:
        raise OutputFormatError(f"cannot write {os.fsdecode(path)}: {e.strerror or e}") from e


def _with_path_bytes(columns: list[str]) -> list[str]:
    if "path" in columns and "path_bytes" not in columns:
        columns.insert(columns.index("path") + 1, "path_bytes")
    return columns


def write_rows(
    rows: Iterable[Mapping[str, Any]],
    dest: str | os.PathLike | IO[str] | None,
    fmt: str | None = None,
    **kwargs: Any,
) -> int:
    """Write ``rows`` to ``dest`` (a path, a text stream, or None for stdout) in one go; returns the row count.

    ``fmt`` defaults to the path's suffix (:func:`output_format`). Keyword arguments go to :class:`RowWriter`.
    """
    fmt = output_format(dest if not hasattr(dest, "write") else None, fmt) if fmt is None else fmt
    with RowWriter(dest, fmt, **kwargs) as writer:
        writer.write_many(rows)
    return writer.rows_written


# -- the table -----------------------------------------------------------------------------------------------
_TABLE_ROOM = 60
"""Columns :func:`render_table` keeps for P(fake), verdict, format, size and the start of the note beside a path."""


def render_table(rows: list[dict[str, Any]], stream: IO[str] | None = None) -> None:
    """Print rows as a rich table to ``stream`` (None: the terminal, full width) with every path shown literally
    (rich markup in file names, ``[bold]x.png``, is escaped, not interpreted) and in full: on one line when the
    longest path leaves room for the other columns (the note wraps instead), else folded over lines, never cut."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    if stream is None:
        console = Console() if sys.stdout.isatty() else Console(file=sys.stdout, width=160)
    else:
        console = Console(file=stream, width=160, force_terminal=False, color_system=None)
    longest = max((cell_len(str(r.get("path") or "")) for r in rows), default=0)
    # rich narrows the widest column first, which is the path: folded mid-name although the note could wrap
    path_on_one_line = longest + _TABLE_ROOM <= console.width
    table = Table(show_edge=False, header_style="bold")
    for col, justify in (
        ("path", "left"),
        ("P(fake)", "right"),
        ("verdict", "left"),
        ("format", "left"),
        ("size", "right"),
        ("note", "left"),
    ):
        no_wrap = col == "path" and path_on_one_line
        table.add_column(col, justify=justify, overflow="fold", no_wrap=no_wrap)  # type: ignore[arg-type]
    for r in rows:
        size = f"{r['width']}×{r.get('height')}" if r.get("width") else ""
        fmt = escape(str(r.get("format") or ""))
        if r.get("jpeg_quality"):
            fmt += f" q{r['jpeg_quality']}"
        path = escape(str(r.get("path") or ""))
        if r.get("status") == "ok":
            style = {"fake": "red", "uncertain": "yellow"}.get(r.get("verdict") or "", "green")
            verdict = f"[{style}]{escape(str(r.get('verdict')))}[/{style}]"
            if r.get("verdict_source") not in (None, "pixels"):
                verdict += f" [dim]({escape(str(r['verdict_source']))})[/dim]"
            p = r.get("p_fake")
            note = escape(str(r.get("evidence") or r.get("reason") or ""))
            table.add_row(path, "" if p is None else f"{p:.3f}", verdict, fmt, size, note)
        else:
            table.add_row(path, "", "[yellow]error[/yellow]", fmt, size, escape(str(r.get("error") or "")))
    console.print(table)


__all__ = [
    "FORMATS",
    "JSON_COLUMNS",
    "SUFFIXES",
    "OutputFormatError",
    "RowWriter",
    "escape_path",
    "json_safe",
    "meta_path",
    "nested_as_json",
    "nested_from_json",
    "output_format",
    "remove_older_meta",
    "render_table",
    "safe_row",
    "scan_arrow_types",
    "spreadsheet_safe",
    "write_meta",
    "write_rows",
]
