"""A streaming multipart reader for ``/v1/detect``: files go to memory, each capped, and the count of parts and the
total size are checked while the body streams in, so that no request can make the server hold or spool more than
its limits.

Starlette's own ``request.form()`` caps the number of parts but not the size of a file part, which it spools to a
temporary file; reading the parts here with python-multipart's callback parser keeps every byte in memory under a
known bound (``max_files x max_file_bytes``, and ``max_total_bytes`` in all) and skips the spooling.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import unquote

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

FILE_FIELDS = ("files", "file")  # the multipart field names that carry images


class UploadError(Exception):
    """The request cannot be read as an upload; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass
class Upload:
    """One file part. ``data`` is empty when the part passed ``max_file_bytes`` (``too_large``)."""

    field: str
    filename: str | None
    data: bytearray = field(default_factory=bytearray)
    size: int = 0  # bytes received for this part, also past the cap
    too_large: bool = False


@dataclass(frozen=True)
class UploadLimits:
    max_files: int  # file parts per request
    max_file_bytes: int  # per file part; a larger one is reported per item, its bytes dropped
    max_total_bytes: int  # the whole body
    max_fields: int = 16  # non-file parts (ignored, but counted)
    max_field_bytes: int = 64 * 1024  # per non-file part


_FILENAME_STAR = re.compile(rb"""(?:^|;)\s*filename\*\s*=\s*([^;]+)""", re.IGNORECASE)


def _extended_filename(disposition: bytes) -> str | None:
    """The RFC 5987 ``filename*=charset'lang'percent-encoded`` of a Content-Disposition (which
    ``parse_options_header`` drops), decoded; None when there is none."""
    m = _FILENAME_STAR.search(disposition)
    if m is None:
        return None
    charset, _, rest = m.group(1).strip().strip(b'"').decode("ascii", "replace").partition("'")
    _, _, encoded = rest.partition("'")
    try:
        return unquote(encoded, encoding=charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset
        return unquote(encoded, errors="replace")


class _Collector:
    """python-multipart callbacks that build :class:`Upload` objects under :class:`UploadLimits`."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.files: list[Upload] = []
        self.n_fields = 0
        self._headers: dict[bytes, bytes] = {}
        self._name = b""
        self._value = b""
        self._current: Upload | None = None
        self._field_size = 0
        self._is_file = False

    def on_part_begin(self) -> None:
        self._headers = {}
        self._current = None
        self._field_size = 0
        self._is_file = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._name.lower()] = self._value
        self._name, self._value = b"", b""

    def on_headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        name = options.get(b"name")
        if name is None:
            raise UploadError(400, 'a multipart part has no Content-Disposition "name"')
        field_name = name.decode("utf-8", "replace")
        if b"filename" not in options and (extended := _extended_filename(disposition)) is not None:
            options[b"filename"] = extended.encode("utf-8")
        if b"filename" not in options:
            if field_name in FILE_FIELDS:  # curl -F 'file=<x.png' sends the file's bytes as a text field
                raise UploadError(
                    400,
                    f"the multipart part {field_name!r} has no filename, so it was read as a text field, not a file; "
                    f"send the image as a file (curl -F {field_name}=@x.png, not -F '{field_name}=<x.png')",
                )
            self.n_fields += 1
            if self.n_fields > self.limits.max_fields:
                raise UploadError(413, f"more than {self.limits.max_fields} form fields")
            return
        if field_name not in FILE_FIELDS:
            raise UploadError(400, f"unexpected file field {field_name!r}; send images as 'files' (or 'file')")
        if len(self.files) >= self.limits.max_files:
            raise UploadError(
                413, f"more than {self.limits.max_files} files in one request; the limit is {self.limits.max_files}"
            )
        self._is_file = True
        self._current = Upload(field_name, options[b"filename"].decode("utf-8", "replace"))
        self.files.append(self._current)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        if not self._is_file:
            self._field_size += n
            if self._field_size > self.limits.max_field_bytes:
                raise UploadError(413, f"a form field is larger than {self.limits.max_field_bytes} bytes")
            return
        up = self._current
        assert up is not None
        up.size += n
        if up.too_large:
            return
        if up.size > self.limits.max_file_bytes:
            up.too_large = True
            up.data = bytearray()  # drop what was kept: the item is reported as too large
            return
        up.data += memoryview(data)[start:end]

    def on_part_end(self) -> None:
        self._current = None

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a Content-Type header; :class:`UploadError` (415/400) when there is none."""
    kind, params = parse_options_header(content_type or "")
    if kind != b"multipart/form-data":
        raise UploadError(415, f"send images as multipart/form-data (field 'files' or 'file'), not {content_type!r}")
    boundary = params.get(b"boundary")
    if not boundary:
        raise UploadError(400, "multipart/form-data without a boundary")
    return boundary


async def read_uploads(content_type: str | None, chunks: AsyncIterator[bytes], limits: UploadLimits) -> list[Upload]:
    """Parse a multipart body as it streams in; stop at the first broken limit with :class:`UploadError`."""
    collector = _Collector(limits)
    parser = MultipartParser(boundary_of(content_type), collector.callbacks())  # type: ignore[arg-type]
    total = 0
    try:
        async for chunk in chunks:
            total += len(chunk)
            if total > limits.max_total_bytes:
                raise UploadError(413, f"request body larger than the {limits.max_total_bytes} byte limit")
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except FormParserError as e:
        raise UploadError(400, f"malformed multipart body: {e}") from e
    return collector.files


__all__ = ["FILE_FIELDS", "Upload", "UploadError", "UploadLimits", "boundary_of", "read_uploads"]
