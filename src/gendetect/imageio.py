"""Read any image file into 8-bit RGB, safely, and describe the file it came from.

Every decoder path in gendetect goes through :func:`load_image_with_info` (or :func:`probe_image` for the header
alone):

* the file is read once; its sha256 is taken from those bytes (a file above :data:`STREAM_FROM_BYTES` is hashed in
  chunks and decoded from the file itself, so a 150 MB PNG does not also sit in memory as bytes);
* the pixel count in the header is checked against ``max_pixels`` **before** decoding, so a 20,000 x 20,000
  decompression bomb is refused in microseconds without allocating gigabytes. Pillow's own global guard
  (``PIL.Image.MAX_IMAGE_PIXELS``) is left untouched; when it fires first, the size is still reported, and an
  explicitly raised ``max_pixels`` is honoured;
* the first frame of an animation (GIF, APNG, WebP, multi-page TIFF) is used;
* EXIF orientation is applied, so ``width``/``height`` and the pixels are as a viewer shows them;
* any mode becomes 8-bit ``RGB`` (:func:`to_rgb`): CMYK through its embedded ICC profile when there is one,
  16-bit and float greyscale rescaled (not clipped) to 8 bits, palette and alpha images composited on white;
* the image is never resized: forensic traces live at native resolution.

Anything that goes wrong raises :class:`~gendetect.errors.ImageLoadError` whose message names the file and the
reason ("no such file", "not an image or unsupported format", "truncated or corrupt file: ...", ...). Every
exception a decoder raises on hostile input (``RuntimeError`` from AVIF, ``DecompressionBombError`` from a GIF
frame, ``struct.error``, ``ZeroDivisionError``, ``MemoryError``...) is turned into one at a single boundary, so a
scan gives the file an error row and goes on.

Hardening (issue 16):

* only regular files are opened: a FIFO, device or socket named ``x.jpg`` gets an error instead of blocking the
  scan (the path is ``stat``-ed first, then opened with ``O_NONBLOCK`` and ``fstat``-ed again); files above
  :data:`DEFAULT_MAX_FILE_BYTES` are refused before reading;
* truncated images are errors: Pillow's ``LOAD_TRUNCATED_IMAGES`` is kept off, and a JPEG whose file is too small
  to hold the pixels its header declares (at least one bit per 8x8 block) is refused before decoding;
* float images with NaN or infinite pixels are errors, not grey images;
* peak memory is a function of the pixel count: 8-bit images cost their decoded size (3-4 bytes per pixel) plus the
  RGB result; 16-bit, 32-bit and float greyscale is rescaled in bands of about a million pixels, so the peak is the
  decoded image (2 or 4 bytes per pixel) + 1 byte of grey + 3 bytes of RGB per pixel (about 6 bytes per pixel for
  a 16-bit PNG, 8 for a float TIFF), plus one more copy of the decoded image when EXIF rotates it;
* HEIC/HEIF are read through the optional ``pillow-heif`` plug-in (``pip install 'gendetect[heif]'``), registered
  the first time such a file is met; AVIF through Pillow >= 11.3; SVG is refused with "vector images are not
  scanned".

Example:
    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO()
    >>> Image.new("LA", (4, 3), (0, 0)).save(buf, "PNG")  # fully transparent black
    >>> im, info = load_image_with_info(buf.getvalue())
    >>> im.mode, im.size, im.getpixel((0, 0)), info.mode, info.format
    ('RGB', (4, 3), (255, 255, 255), 'LA', 'PNG')
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import stat
import struct
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from gendetect.errors import ImageLoadError
from gendetect.limits import DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS

logger = logging.getLogger(__name__)

# Suffixes of the formats a stock Pillow wheel reads, with no plug-in. HEIC/HEIF are left out on purpose: Pillow
# needs the separate pillow-heif plug-in for them. AVIF needs Pillow >= 11.3; an older Pillow reports those files as
# "unsupported format" (an error record) rather than skipping them silently.
IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".mpo",
        ".png",
        ".apng",
        ".webp",
        ".avif",
        ".gif",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".jp2",
        ".j2k",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".tga",
        ".ico",
        ".heic",
        ".heif",
        ".hif",
    }
)

# Suffixes of image files gendetect does not decode. A scan lists them anyway, so they get an error row that says
# why, instead of being skipped silently.
IMAGE_LIKE_EXTENSIONS = frozenset(
    {
        ".svg",
        ".svgz",
        ".jxl",
        ".psd",
        ".xcf",
        ".exr",
        ".hdr",
        ".eps",
        ".raw",
        ".dng",
        ".cr2",
        ".cr3",
        ".nef",
        ".nrw",
        ".arw",
        ".orf",
        ".rw2",
        ".raf",
        ".pef",
        ".srw",
    }
)
_RAW_HINT = "camera RAW files are not decoded; convert it to TIFF or PNG to scan it"
_UNSUPPORTED_HINTS = {
    ".jxl": "JPEG XL needs a Pillow JPEG XL plug-in; convert it to PNG to scan it",
    ".psd": "convert it to PNG or TIFF to scan it",
    ".xcf": "GIMP files are not decoded; export a PNG to scan it",
    ".exr": "OpenEXR is not decoded; convert it to a 16-bit TIFF or PNG to scan it",
    ".hdr": "Radiance HDR is not decoded; convert it to TIFF or PNG to scan it",
    ".eps": "PostScript needs Ghostscript; rasterise it to PNG to scan it",
    **{s: _RAW_HINT for s in (".raw", ".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".orf", ".rw2", ".raf", ".pef")},
    ".srw": _RAW_HINT,
}

# Errors Pillow's decoders raise on malformed input (beyond its own UnidentifiedImageError, an OSError subclass).
# RuntimeError: the AVIF and HEIF plug-ins; ArithmeticError: divisions by header fields that are zero.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    RuntimeError,
    ArithmeticError,
    AttributeError,
    AssertionError,
)

# HEIF brands (ISO/IEC 23008-12) that the pillow-heif plug-in reads; AVIF ("avif", "avis") is Pillow's own.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"})
_HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif"})
_heif_lock = threading.Lock()
_heif_state: dict[str, bool] = {}

_EXIF_ORIENTATION = 0x0112
# EXIF orientation -> the transpose that undoes it (the table ImageOps.exif_transpose uses).
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

Source = str | os.PathLike | bytes | bytearray | memoryview


def center_box(width: int, height: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the central ``(h, w)`` window of a ``width`` x ``height`` image (PIL's box
    order; slice rows ``top:bottom`` and columns ``left:right`` of an array). The left/top margin is the smaller half;
    a window larger than the image is clipped to it. The one centring rule of the PIL and tensor crops.

    Example:
        >>> center_box(7, 4, (2, 4))
        (1, 1, 5, 3)
        >>> center_box(3, 10, (4, 4))
        (0, 3, 3, 7)
    """
    h, w = size
    left, top = max((width - w) // 2, 0), max((height - h) // 2, 0)
    return left, top, min(left + w, width), min(top + h, height)


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` has an image file extension (case-insensitive; see :data:`IMAGE_EXTENSIONS`)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_image_like_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an image file, decodable or not (:data:`IMAGE_EXTENSIONS` or
    :data:`IMAGE_LIKE_EXTENSIONS`): what a folder scan lists, so that undecodable images get an error row."""
    suffix = Path(path).suffix.lower()
    return suffix in IMAGE_EXTENSIONS or suffix in IMAGE_LIKE_EXTENSIONS


@dataclass
class ImageInfo:
    """Facts about an image file, as recorded in manifests and scan results."""

    format: str | None  # container format as Pillow names it: "JPEG", "PNG", "WEBP", "MPO" (camera JPEG), ...
    width: int  # pixels, after EXIF orientation
    height: int  # pixels, after EXIF orientation
    mode: str  # Pillow mode of the file before conversion: "RGB", "CMYK", "I;16", "P", "LA", ...
    jpeg_quality: int | None  # IJG-equivalent quality estimated from the quantisation tables; None unless JPEG
    has_exif: bool  # whether the file carries EXIF metadata
    file_size: int  # bytes
    sha256: str | None  # hex digest of the file's bytes; None when hashing was not asked for
    n_frames: int | None = None  # frames or pages in the file (1 for a still image; only the first is decoded);
    # None when counting them failed on a damaged later frame

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_bytes_source(source: object) -> bool:
    """Whether ``source`` is an image's bytes (``bytes``, ``bytearray`` or ``memoryview``), not a path."""
    return isinstance(source, bytes | bytearray | memoryview)


def source_name(source: Source, index: int | None = None) -> str:
    """How rows and messages name a source: a path as text; bytes as ``<bytes>``, or ``<bytes #i>`` given their
    ``index`` among the sources of a call.

    Example:
        >>> source_name("a/b.png"), source_name(b"..."), source_name(memoryview(b"..."), 3)
        ('a/b.png', '<bytes>', '<bytes #3>')
    """
    if is_bytes_source(source):
        return "<bytes>" if index is None else f"<bytes #{index}>"
    return str(source)


def source_list(sources: Iterable[Source] | Source) -> list[Source]:
    """``sources`` as a list, where one path (str or ``os.PathLike``) or one image's bytes (``bytes``,
    ``bytearray``, ``memoryview``) is one source, never a sequence of characters or byte values.

    Example:
        >>> source_list("x.png"), len(source_list(memoryview(b"abc"))), source_list(["a.png", "b.png"])
        (['x.png'], 1, ['a.png', 'b.png'])
    """
    if isinstance(sources, str | os.PathLike) or is_bytes_source(sources):
        return [sources]  # type: ignore[list-item]
    return list(sources)  # type: ignore[arg-type]


# -- reading files ---------------------------------------------------------------------------------------------
def _os_error(path: Path, e: OSError) -> ImageLoadError:
    if isinstance(e, FileNotFoundError):
        return ImageLoadError(f"{path}: no such file")
    if isinstance(e, IsADirectoryError):
        return ImageLoadError(f"{path}: is a directory, not an image file")
    if isinstance(e, PermissionError):
        return ImageLoadError(f"{path}: cannot read file: permission denied")
    return ImageLoadError(f"{path}: cannot read file: {e.strerror or e}")


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory, not an image file"
    kind = {
        stat.S_ISFIFO(mode): "a FIFO (named pipe)",
        stat.S_ISSOCK(mode): "a socket",
        stat.S_ISCHR(mode): "a character device",
        stat.S_ISBLK(mode): "a block device",
    }.get(True, "not a regular file")
    return f"is {kind}, not a regular file: only regular files are read"


def _check_regular(path: Path, st: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ImageLoadError(f"{path}: {_file_kind(st.st_mode)}")
    if st.st_size > max_bytes:
        raise ImageLoadError(
            f"{path}: file is {st.st_size / 2**20:.0f} MiB, above the limit of {max_bytes / 2**20:.0f} MiB for one "
            "image file"
        )


def _open_regular(path: Path, max_bytes: int) -> tuple[int, os.stat_result]:
    """Open ``path`` for reading if, and only if, it is a regular file: ``(fd, stat)``.

    The path is ``stat``-ed before opening (opening a device or a FIFO can block or have side effects), then
    opened with ``O_NONBLOCK`` (so a FIFO swapped in between cannot block either) and ``fstat``-ed again.
    """
    try:
        _check_regular(path, os.stat(path), max_bytes)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise _os_error(path, e) from e
    try:
        st = os.fstat(fd)
        _check_regular(path, st, max_bytes)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_bytes(source: Source, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """The bytes of ``source`` (a path, or bytes returned as they are).

    Only regular files are read: a FIFO, socket or device gets an :class:`ImageLoadError` at once instead of
    blocking, and so does a file above ``max_bytes`` (also when it grows past it while being read).

    Raises:
        ImageLoadError: the path does not exist, is a folder or not a regular file, is too large or cannot be read;
            the message says which.
    """
    if is_bytes_source(source):
        return bytes(source)
    path = Path(source)
    fd, st = _open_regular(path, max_bytes)
    chunks: list[bytes] = []
    total = 0
    try:
        with os.fdopen(fd, "rb", buffering=0) as f:
            while True:
                chunk = f.read(max(st.st_size - total, 0) + 65536)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if total > max_bytes:
                    raise ImageLoadError(f"{path}: file grew past the limit of {max_bytes / 2**20:.0f} MiB while read")
    except OSError as e:
        raise _os_error(path, e) from e
    return b"".join(chunks) if len(chunks) != 1 else chunks[0]


@contextmanager
def _open_file(path: Path) -> Iterator[IO[bytes]]:
    fd, _ = _open_regular(path, DEFAULT_MAX_FILE_BYTES)
    try:
        f = os.fdopen(fd, "rb")
    except OSError as e:
        os.close(fd)
        raise _os_error(path, e) from e
    with f:
        yield f


def _open_unguarded(fp: IO[bytes]) -> ImageFile.ImageFile | None:
    """Open ``fp``'s header the way :func:`PIL.Image.open` does, minus Pillow's global pixel-count guard.

    Only used after that guard refused an image, so that the caller can report the size and apply its own limit
    (which may be higher than Pillow's when the user asked for it). Nothing is decoded here.
    """
    fp.seek(0)
    prefix = fp.read(16)
    for fmt in list(Image.ID):
        factory, accept = Image.OPEN[fmt]
        verdict = accept(prefix) if accept else True
        if isinstance(verdict, str) or not verdict:
            continue
        fp.seek(0)
        try:
            return factory(fp, "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue
    return None


def _mpx(pixels: int) -> str:
    return f"{pixels / 1e6:.4g} Mpx"


def _open(fp: IO[bytes], name: str, max_pixels: int) -> ImageFile.ImageFile:
    """Open the header of ``fp`` and check its pixel count against ``max_pixels``; nothing is decoded.

    Called inside :func:`_named_warnings`, which ignores Pillow's ``DecompressionBombWarning``: between Pillow's
    warning and error thresholds, ``max_pixels`` decides.
    """
    try:
        im: ImageFile.ImageFile | None = Image.open(fp)  # type: ignore[assignment]
    except Image.DecompressionBombError as e:
        try:
            im = _open_unguarded(fp)
        except _DECODE_ERRORS:
            im = None
        if im is None:  # not expected: Pillow just parsed this header
            raise ImageLoadError(f"{name}: image is above Pillow's decompression-bomb limit: {e}") from e
    except UnidentifiedImageError as e:
        fmt = _signature(fp)  # the file says what it is, but its header does not parse
        hint = f"it starts as a {fmt} file; damaged, or a kind of {fmt} Pillow cannot decode" if fmt else None
        hint = hint or _UNSUPPORTED_HINTS.get(Path(name).suffix.lower())
        raise ImageLoadError(f"{name}: not an image or unsupported format" + (f" ({hint})" if hint else "")) from e
    except _DECODE_ERRORS as e:
        raise ImageLoadError(f"{name}: {_text_limit(e) or f'truncated or corrupt file: {e}'}") from e
    w, h = im.size
    if w <= 0 or h <= 0:
        raise ImageLoadError(f"{name}: invalid image size {w}×{h}")
    if w * h > max_pixels:
        size, limit = f"{w * h / 1e6:.1f} Mpx", _mpx(max_pixels)
        if f"{w * h / 1e6:.1f}" == f"{max_pixels / 1e6:.1f}" or w * h < 100_000:  # "0.1 Mpx above 0.1 Mpx"
            size, limit = f"{w * h:,} pixels", f"{max_pixels:,} pixels"
        raise ImageLoadError(
            f"{name}: image is {w}×{h} = {size}, above the limit of {limit} (--max-pixels);"
            " it may be a decompression bomb. Raise the limit to read it anyway."
        )
    return im


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)


def _signature(fp: IO[bytes]) -> str | None:
    """The format whose magic bytes open ``fp`` (PNG, JPEG, GIF, WebP), or None."""
    try:
        fp.seek(0)
        head = fp.read(12)
    except (OSError, ValueError):
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((fmt for magic, fmt in _SIGNATURES if head.startswith(magic)), None)


class _NonFinitePixels(ValueError):
    """A float image holds NaN or infinite pixels."""


def _describe(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


@contextmanager
def _decoder_errors(name: str) -> Iterator[None]:
    """The one decode boundary: whatever a decoder raises on a hostile file becomes an :class:`ImageLoadError`.

    The usual suspects get a plain reason; anything else (a decoder bug) is still an error for this one file,
    logged at debug level with its traceback, never an exception that ends a scan of thousands.
    """
    try:
        yield
    except ImageLoadError:
        raise
    except MemoryError as e:
        raise ImageLoadError(f"{name}: not enough memory to decode this image") from e
    except Image.DecompressionBombError as e:
        raise ImageLoadError(f"{name}: image is above Pillow's decompression-bomb limit: {e}") from e
    except _NonFinitePixels as e:
        raise ImageLoadError(f"{name}: {e}") from e
    except _DECODE_ERRORS as e:
        raise ImageLoadError(f"{name}: {_text_limit(e) or f'truncated or corrupt file: {_describe(e)}'}") from e
    except Exception as e:  # the decode boundary: one hostile file must not abort a scan
        logger.debug("decoder failed on %s", name, exc_info=True)
        raise ImageLoadError(f"{name}: decoder failed: {_describe(e)}") from e


def _is_svg(head: bytes, name: str) -> bool:
    if Path(name).suffix.lower() in (".svg", ".svgz"):
        return True
    head = head[:4096].lstrip()
    return head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head)


def _register_heif(name: str) -> None:
    """Register pillow-heif's opener once per process (lazily: importing it costs time and memory)."""
    with _heif_lock:
        if _heif_state.get("registered"):
            return
        try:
            import pillow_heif
        except ImportError as e:
            raise ImageLoadError(
                f"{name}: HEIC/HEIF image: reading it needs the pillow-heif plug-in: pip install 'gendetect[heif]'"
            ) from e
        pillow_heif.register_heif_opener()
        _heif_state["registered"] = True


def _prepare(head: bytes, name: str) -> None:
    """Checks on the first bytes before Pillow sees the file: SVG is refused, HEIF needs its plug-in; large PNG text
    chunks are allowed (:func:`allow_large_png_text`)."""
    allow_large_png_text()
    if _is_svg(head, name):
        raise ImageLoadError(f"{name}: vector images are not scanned (SVG); rasterise it to PNG to scan it")
    is_heif = head[4:8] == b"ftyp" and (head[8:12] in _HEIF_BRANDS or Path(name).suffix.lower() in _HEIF_SUFFIXES)
    if is_heif or (Path(name).suffix.lower() in _HEIF_SUFFIXES and head[4:8] == b"ftyp"):
        _register_heif(name)


def _keep_truncated_images_off() -> None:
    """Pillow's ``LOAD_TRUNCATED_IMAGES`` pads a truncated file with grey and calls it fine; gendetect refuses such
    files, so the flag is turned off again when another library turned it on (with one warning)."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        logger.warning(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES was turned on (by another library?); gendetect turns it off: "
            "truncated images are errors, not images padded with grey"
        )
        ImageFile.LOAD_TRUNCATED_IMAGES = False


PNG_TEXT_CHUNK = 16 * 2**20  # the most one PNG text chunk may decompress to (Pillow's own limit is 1 MiB)


def allow_large_png_text() -> None:
    """Let one PNG text chunk decompress to :data:`PNG_TEXT_CHUNK` bytes; called before every decode.

    A ComfyUI workflow, an XMP packet or other metadata in a compressed text chunk (zTXt, iTXt) is often larger
    than the 1 MiB Pillow reads per chunk, and Pillow then refuses the whole file, pixels and metadata alike.
    Pillow's limit on all text chunks together (``MAX_TEXT_MEMORY``, 64 MiB) is kept, so a file's text still costs
    at most that much memory; the metadata check parses at most ``evidence.metadata.JSON_LIMIT`` of it as JSON.
    Like ``LOAD_TRUNCATED_IMAGES`` (:func:`_keep_truncated_images_off`), this is Pillow's process-wide setting: it
    is changed only while it has Pillow's default value, so a limit the application chose is left alone.
    """
    from PIL import PngImagePlugin

    if PngImagePlugin.MAX_TEXT_CHUNK == ImageFile.SAFEBLOCK:  # Pillow's default, not a limit someone chose
        PngImagePlugin.MAX_TEXT_CHUNK = PNG_TEXT_CHUNK


def _text_limit(e: BaseException) -> str | None:
    """The reason for a PNG refused for the size of its text chunks (Pillow's ``MAX_TEXT_*`` errors), else None."""
    if isinstance(e, ValueError) and "MAX_TEXT" in str(e):
        return (
            f"its PNG text chunks (metadata, not pixels) are larger than gendetect reads ({PNG_TEXT_CHUNK >> 20} "
            "MiB per chunk, 64 MiB in all), so the image was not decoded"
        )
    return None


_ARITHMETIC_SOF = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_sof(data: bytes) -> int | None:
    """The start-of-frame marker (0xC0-0xCF) of a JPEG, read from the segments before its first scan."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return marker
        if marker == 0xDA:  # start of scan: no frame header before it
            return None
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _check_jpeg_size(im: Image.Image, data: bytes, name: str, size: int | None = None) -> None:
    """Refuse a JPEG too small to hold the pixels its header declares (libjpeg pads the rest and says nothing).

    A Huffman-coded JPEG spends at least one bit per 8x8 block of the first component (a DC code, in baseline
    and in progressive files alike), so ``bytes * 8 < blocks`` means the data ended early. Arithmetic-coded files
    (rare) can go below that and are not checked.
    """
    if im.format not in ("JPEG", "MPO"):
        return
    w, h = im.size
    blocks = math.ceil(w / 8) * math.ceil(h / 8)
    size = len(data) if size is None else size  # ``data`` may be the file's head only (a streamed large file)
    if size * 8 >= blocks or _jpeg_sof(data) in _ARITHMETIC_SOF:
        return
    raise ImageLoadError(
        f"{name}: truncated JPEG: {size:,} bytes cannot hold the {w}×{h} pixels its header declares (at least "
        f"{blocks // 8:,} bytes are needed)"
    )


def _frame_count(im: ImageFile.ImageFile, name: str) -> int | None:
    """Frames (GIF, APNG, WebP) or pages (TIFF) in the opened file, before any is decoded, and the file back at its
    first frame; None when the count fails on a damaged later frame (the first one is still read)."""
    try:
        n = int(getattr(im, "n_frames", 1) or 1)
    except (*_DECODE_ERRORS, ArithmeticError) as e:
        logger.debug("%s: cannot count its frames: %s", name, e)
        n = None
    if im.tell() != 0:
        im.seek(0)  # a failure here is the file's error (the decode boundary)
    return n


# -- warnings raised while a file is read ----------------------------------------------------------------------
# Pillow reports damage it can read past ("Corrupt EXIF data", "Possibly corrupt EXIF MakerNote data", "Truncated
# File Read"...) as a UserWarning. Left alone, it reaches stderr without the file's name, and Python's default
# filter shows each text once per process, so which file's warning is seen would depend on the order of the files.
# While a file is read (recording_warnings), such warnings go to a list of that file's instead.
#
# The warnings machinery is process-wide and not thread-safe, and a server reads files in several threads, so the
# window that is open while any thread records changes as little as it can and restores nothing wholesale:
# * ``showwarning`` becomes a hook that hands a warning to the recording thread's list, and every other warning
#   (other categories, other threads) to the handler that was in place. It is put back only if it is still the
#   hook; the hook is never taken for the handler in place, and a handler that calls the hook back (one that
#   chains to what it replaced) reaches Python's own, so that it can never recurse;
# * filters are added for the decoders' modules only (``_WINDOW_FILTERS``: Pillow's warnings "always", so that each
#   file's are recorded whatever was seen before), at the end of the list, where they apply only to warnings no
#   other filter matches, and removed by value, so that other threads' and the application's own filters
#   ("error", "ignore") keep working. The exception is Pillow's ``DecompressionBombWarning``: gendetect's
#   ``max_pixels`` decides what is too large, so while any thread records it is ignored first, for every thread;
# * another thread's ``catch_warnings`` that began before the window opened puts back, when it ends, the handler
#   and filters it saved: every thread that starts recording puts the hook and any missing filter back.
_RECORDED_WARNINGS = (UserWarning, RuntimeWarning)  # what decoders say about a file; deprecations are about code
_DECODER_MODULES = r"(PIL|pillow_heif)(\.|$)"
_warn_lock = threading.Lock()
_warn_local = threading.local()
_warn_window: dict[str, Any] = {"depth": 0, "show": None}


def _window_filters() -> tuple[list[tuple], list[tuple]]:
    """The filter entries the window adds (as :func:`warnings.filterwarnings` builds them): first in the list,
    Pillow's ``DecompressionBombWarning`` ignored (``max_pixels`` decides, whatever filter is in place); last,
    Pillow's other warnings "always"."""
    import re

    modules = re.compile(_DECODER_MODULES)
    front = [("ignore", None, Image.DecompressionBombWarning, modules, 0)]
    return front, [("always", None, category, modules, 0) for category in _RECORDED_WARNINGS]


_WINDOW_FRONT, _WINDOW_BACK = _window_filters()
_WINDOW_FILTERS = [*_WINDOW_FRONT, *_WINDOW_BACK]


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    sink = getattr(_warn_local, "sink", None)
    if sink is not None and issubclass(category, _RECORDED_WARNINGS):
        if issubclass(category, Image.DecompressionBombWarning):
            return  # the file's max_pixels decides, not Pillow's default
        text = " ".join(str(message).split())
        if text and text not in sink:
            sink.append(text)
            _warn_local.categories[text] = category
        return
    show = _warn_window["show"]
    if show is None or show is _show_warning or getattr(_warn_local, "showing", False):
        show = warnings._showwarning_orig  # type: ignore[attr-defined]  # a handler that called the hook back
    _warn_local.showing = True
    try:
        show(message, category, filename, lineno, file, line)
    finally:
        _warn_local.showing = False


def _open_window() -> None:
    """Install the hook and the filters, or put back what another thread's ``catch_warnings`` took away."""
    if warnings.showwarning is not _show_warning:
        _warn_window["show"] = warnings.showwarning
        warnings.showwarning = _show_warning
    warnings.filters[:0] = [f for f in _WINDOW_FRONT if f not in warnings.filters]
    # last: any filter of the application's or another thread's comes first
    warnings.filters.extend(f for f in _WINDOW_BACK if f not in warnings.filters)
    warnings._filters_mutated()  # type: ignore[attr-defined]  # forget which texts were shown once


def _close_window() -> None:
    if warnings.showwarning is _show_warning and _warn_window["show"] is not None:
        warnings.showwarning = _warn_window["show"]
    warnings.filters[:] = [f for f in warnings.filters if f not in _WINDOW_FILTERS]
    warnings._filters_mutated()  # type: ignore[attr-defined]


def _reset_after_fork() -> None:
    """A worker forked while another thread held the lock or recorded starts with neither."""
    global _warn_lock, _warn_local
    _warn_lock = threading.Lock()
    _warn_local = threading.local()
    _warn_window["depth"] = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


@contextmanager
def recording_warnings(*, fresh: bool = False) -> Iterator[list[str]]:
    """Record the warnings (``UserWarning``, ``RuntimeWarning``) this thread raises inside the block, instead of
    printing them: the list of their texts, in order, each text once. Pillow's are recorded whether or not they
    were raised before; other modules' follow the filters in place (a warning shown once per process is recorded
    the first time only).

    The per-file boundary of a scan (:func:`gendetect.features.extract.iter_features`) reads each file inside one,
    so that the file's row lists what Pillow said about it (``warnings``). A block inside another one adds to the
    outer list, unless ``fresh``: then it has its own (to silence this thread's warnings without touching the
    filters every thread shares, record them and drop the list). Pillow's ``DecompressionBombWarning`` is ignored
    while any thread records, in every thread (``max_pixels`` decides). Other warnings of other threads are shown
    as before, and their filters keep working.

    Example:
        >>> import warnings
        >>> with recording_warnings() as caught:
        ...     warnings.warn("Corrupt EXIF data.  Expecting to read 2 bytes but only got 0.")
        >>> caught
        ['Corrupt EXIF data. Expecting to read 2 bytes but only got 0.']
    """
    outer = getattr(_warn_local, "sink", None)
    if outer is not None and not fresh:
        yield outer
        return
    outer_categories = getattr(_warn_local, "categories", None)
    sink: list[str] = []
    _warn_local.categories = {}
    with _warn_lock:
        _open_window()  # the first thread opens it; each later one puts back what may have been taken
        _warn_window["depth"] += 1
    _warn_local.sink = sink
    try:
        yield sink
    finally:
        _warn_local.sink, _warn_local.categories = outer, outer_categories
        with _warn_lock:
            _warn_window["depth"] -= 1
            if _warn_window["depth"] == 0:
                _close_window()


@contextmanager
def _named_warnings(name: str) -> Iterator[None]:
    """Around one file's decode: inside :func:`recording_warnings` (a scan), its warnings go to that list; alone,
    they are recorded and raised again afterwards with the file's name in front (``"x.jpg: Corrupt EXIF data..."``),
    in their own category (a ``DecompressionBombWarning`` apart, which ``max_pixels`` decides)."""
    if getattr(_warn_local, "sink", None) is not None:
        yield
        return
    caught: list[str] = []
    categories: dict[str, type[Warning]] = {}
    try:
        with recording_warnings() as caught:
            categories = _warn_local.categories
            yield
    finally:
        for text in caught:
            warnings.warn(f"{name}: {text}", categories.get(text, UserWarning), stacklevel=4)


def _exif_info(im: Image.Image) -> tuple[bool, int]:
    """``(has EXIF, orientation 1-8)``; a malformed EXIF block counts as none rather than failing the image."""
    try:
        exif = im.getexif()
        orientation = int(exif.get(_EXIF_ORIENTATION, 1) or 1)
    except (*_DECODE_ERRORS, ArithmeticError) as e:
        logger.debug("ignoring unreadable EXIF block: %s", e)
        return False, 1
    return len(exif) > 0, orientation if orientation in _ORIENTATION_TRANSPOSE else 1


def _info(im: ImageFile.ImageFile, size: int, sha256: str | None) -> tuple[ImageInfo, int]:
    """The file facts of an opened image, and its EXIF orientation (1 when none)."""
    has_exif, orientation = _exif_info(im)
    w, h = im.size
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees
        w, h = h, w
    info = ImageInfo(
        format=im.format,
        width=w,
        height=h,
        mode=im.mode,
        jpeg_quality=estimate_jpeg_quality(im),
        has_exif=has_exif,
        file_size=size,
        sha256=sha256,
    )
    return info, orientation


def load_image_with_info(
    source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS, hash: bool = True
) -> tuple[Image.Image, ImageInfo]:
    """Decode ``source`` to an 8-bit ``RGB`` image at native resolution, plus facts about the file.

    Args:
        source: a path, or the file's bytes.
        max_pixels: refuse images whose header claims more than this many pixels (width x height), before
            decoding anything.
        hash: compute the sha256 of the file's bytes (``info.sha256``; ``None`` otherwise).

    Returns:
        ``(image, info)``: a loaded ``RGB`` image, EXIF orientation applied, and its :class:`ImageInfo`.

    Raises:
        ImageLoadError: the file is missing or unreadable, not an image, truncated or corrupt, or too large.
    """
    name = source_name(source)
    if isinstance(source, str | os.PathLike) and _file_size(source) > STREAM_FROM_BYTES:
        # a large file: hashed in chunks and decoded from the file itself, never held whole in memory (issue 17)
        with _open_file(Path(source)) as f:
            size = os.fstat(f.fileno()).st_size
            digest = _sha256_of(f) if hash else None
            head = f.read(_HEAD_BYTES)
            f.seek(0)
            return _decode_opened(f, head, size, digest, name, max_pixels)
    data = read_bytes(source)
    if not data:
        raise ImageLoadError(f"{name}: empty file")
    digest = hashlib.sha256(data).hexdigest() if hash else None
    return _decode_opened(io.BytesIO(data), data, len(data), digest, name, max_pixels)


STREAM_FROM_BYTES = 16 * 2**20  # files larger than this are decoded from the file instead of a copy of its bytes
_HEAD_BYTES = 2**20  # what the JPEG checks read of a streamed file (the segments before its first scan)


def _file_size(path: str | os.PathLike) -> int:
    try:
        return os.stat(path).st_size
    except (OSError, ValueError):
        return 0  # the regular read path reports the error


def _sha256_of(f: IO[bytes], chunk: int = 2**20) -> str:
    """sha256 of a whole file, read sequentially in chunks; leaves the file at its start."""
    h = hashlib.sha256()
    f.seek(0)
    while block := f.read(chunk):
        h.update(block)
    f.seek(0)
    return h.hexdigest()


def _decode_opened(
    fp: IO[bytes], head: bytes, size: int, digest: str | None, name: str, max_pixels: int
) -> tuple[Image.Image, ImageInfo]:
    """Decode the image file open as ``fp`` (``head``: its first bytes, or all of them; ``size``: its length)."""
    if size == 0:
        raise ImageLoadError(f"{name}: empty file")
    with _decoder_errors(name), _named_warnings(name):
        _prepare(head[:4096], name)
        im = _open(fp, name, max_pixels)
        info, orientation = _info(im, size, digest)
        _check_jpeg_size(im, head, name, size)
        _keep_truncated_images_off()
        info.n_frames = _frame_count(im, name)
        try:
            im.load()  # at its first frame (_frame_count goes back to it); decode it now so that damage raises here
            if orientation != 1:
                im = im.transpose(_ORIENTATION_TRANSPOSE[orientation])
            rgb = to_rgb(im)
        except MemoryError as e:
            raise ImageLoadError(f"{name}: not enough memory to decode a {info.width}×{info.height} image") from e
    return rgb, info


def load_image(source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``source`` (a path or bytes) to an 8-bit ``RGB`` image; see :func:`load_image_with_info`."""
    return load_image_with_info(source, max_pixels=max_pixels, hash=False)[0]


def probe_image(source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS, hash: bool = True) -> ImageInfo:
    """:class:`ImageInfo` from the file's header alone, without decoding pixels: fast enough to index collections.

    With ``hash=False`` and a path, only the header is read from disk (and, for an animated GIF, the rest of the
    file to count its frames). A file that passes here can still turn out truncated when decoded;
    :func:`load_image_with_info` finds that out.

    Raises:
        ImageLoadError: as :func:`load_image_with_info`, except for damage past the header.
    """
    name = source_name(source)
    if hash or not isinstance(source, str | os.PathLike):
        data = read_bytes(source)
        if not data:
            raise ImageLoadError(f"{name}: empty file")
        digest = hashlib.sha256(data).hexdigest() if hash else None
        with _decoder_errors(name), _named_warnings(name):
            _prepare(data[:4096], name)
            return _probed(_open(io.BytesIO(data), name, max_pixels), len(data), digest, name)
    with _open_file(Path(source)) as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise ImageLoadError(f"{name}: empty file")
        with _decoder_errors(name), _named_warnings(name):
            _prepare(f.read(4096), name)
            f.seek(0)
            return _probed(_open(f, name, max_pixels), size, None, name)


def _probed(im: ImageFile.ImageFile, size: int, digest: str | None, name: str) -> ImageInfo:
    info = _info(im, size, digest)[0]
    info.n_frames = _frame_count(im, name)
    return info


# -- mode conversion -------------------------------------------------------------------------------------------
def _on_white(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _image_cms() -> Any:
    """Pillow's LittleCMS binding, or ``None`` in a Pillow built without it."""
    try:
        from PIL import ImageCms
    except ImportError:
        return None
    return ImageCms


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    icc, cms = im.info.get("icc_profile"), _image_cms()
    if icc and cms is not None:
        try:
            src = cms.ImageCmsProfile(io.BytesIO(icc))
            return cms.profileToProfile(im, src, cms.createProfile("sRGB"), outputMode="RGB")
        except (cms.PyCMSError, OSError, ValueError) as e:
            logger.debug("embedded ICC profile not usable (%s); converting CMYK naively", e)
    return im.convert("RGB")


def _lab_to_rgb(im: Image.Image) -> Image.Image:
    cms = _image_cms()
    if cms is not None:
        try:
            transform = cms.buildTransform(cms.createProfile("LAB"), cms.createProfile("sRGB"), "LAB", "RGB")
            return cms.applyTransform(im, transform)
        except (cms.PyCMSError, OSError, ValueError) as e:
            logger.debug("LAB to sRGB transform failed (%s); converting naively", e)
    return im.convert("RGB")


_BAND_PIXELS = 1 << 20  # pixels per band when converting high-bit-depth images (8 MiB of float64 temporaries)


def _bands(im: Image.Image) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(first row, end row, float64 pixels)`` of ``im`` in bands of about :data:`_BAND_PIXELS` pixels."""
    w, h = im.size
    step = max(1, _BAND_PIXELS // max(w, 1))
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        yield y0, y1, np.asarray(im.crop((0, y0, w, y1)), dtype=np.float64)


def _high_depth_to_rgb(im: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float greyscale to 8 bits by rescaling the value range (never by clipping).

    Integer data maps the bit depth it fills (8, 10, 12, 14 or 16 bits: the smallest that holds its largest value)
    to 0-255; float data in [0, 1] maps that range; anything else (negative values, wider ranges) is stretched
    from its minimum to its maximum.

    The image is read in bands of about a million pixels, so that the float temporaries stay small: the peak is
    the decoded image plus 1 byte (grey) and 3 bytes (RGB) per pixel, whatever the image size.

    Raises:
        ValueError: the image holds NaN or infinite pixels (a float file that is damaged or not an image).
    """
    w, h = im.size
    lo, hi, bad = math.inf, -math.inf, 0
    for _, _, arr in _bands(im):  # first pass: the value range, and whether every pixel is finite
        finite = np.isfinite(arr)
        if not finite.all():
            bad += int(arr.size - np.count_nonzero(finite))
            arr = arr[finite]
        if arr.size:
            lo, hi = min(lo, float(arr.min())), max(hi, float(arr.max()))
    if bad:
        raise _NonFinitePixels(
            f"{bad:,} of {w * h:,} pixels are NaN or infinite (a damaged float image, or not an image)"
        )
    if not math.isfinite(lo):
        lo = hi = 0.0
    if im.mode == "F" and lo >= 0.0 and hi <= 1.0:
        lo, scale = 0.0, 1.0  # normalised float data
    elif lo >= 0.0 and hi <= 255.0:
        lo, scale = 0.0, 255.0  # 8-bit data in a wide mode
    elif im.mode != "F" and lo >= 0.0 and hi <= 65535.0:
        # integer data of 10, 12, 14 or 16 bits (a sensor's or scanner's depth in a 16-bit file, or 16-bit data in
        # the 32-bit mode older Pillow reads 16-bit PNGs in): the depth it fills maps to 8 bits, so 12-bit data is
        # not crushed into 16 levels, and the image's tones keep their ratios
        lo, scale = 0.0, float(next(2**b - 1 for b in (10, 12, 14, 16) if hi <= 2**b - 1))
    else:
        scale = max(hi - lo, 1e-12)  # anything else: stretch the range that is there
    grey = np.empty((h, w), dtype=np.uint8)
    for y0, y1, arr in _bands(im):
        arr -= lo
        arr *= 255.0 / scale
        np.round(arr, out=arr)
        np.clip(arr, 0, 255, out=arr)
        grey[y0:y1] = arr
    return Image.fromarray(grey, "L").convert("RGB")


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert an image of any Pillow mode to 8-bit ``RGB``.

    * alpha (``RGBA``, ``LA``, ``PA``, a palette or colour key with ``transparency``) is composited on white;
    * ``CMYK`` goes through its embedded ICC profile when it has a usable one, else Pillow's plain conversion;
    * ``I;16*``, ``I`` and ``F`` are rescaled to 0-255 (a full 16-bit range maps to the full 8-bit range);
    * ``L``, ``1``, ``P``, ``YCbCr``, ``HSV`` and ``LAB`` are converted to RGB.

    RGB images with an embedded ICC profile (Display P3, Adobe RGB) are returned as they are: detectors see the
    file's pixel values, not a colour-managed rendering.
    """
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return im
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode in ("P", "L", "1", "RGB") and "transparency" in im.info):
        return _on_white(im)
    if mode == "CMYK":
        return _cmyk_to_rgb(im)
    if mode == "LAB":
        return _lab_to_rgb(im)
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_rgb(im)
    return im.convert("RGB")


# -- JPEG quality ----------------------------------------------------------------------------------------------
# The example tables of ITU-T T.81 Annex K that libjpeg (IJG) scales by quality, in natural (row-major) order.
_IJG_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.float64,
).ravel()
_IJG_CHROMA = np.array(
    [
        [17, 18, 24, 47, 99, 99, 99, 99],
        [18, 21, 26, 66, 99, 99, 99, 99],
        [24, 26, 56, 99, 99, 99, 99, 99],
        [47, 66, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
    ],
    dtype=np.float64,
).ravel()


def _ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """libjpeg's ``jpeg_quality_scaling``: ``base`` scaled for ``quality`` (1-100), entries clipped to 1-255."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((base * scale + 50) / 100), 1, 255)


_QUALITIES = np.arange(1, 101)
_IJG_LUMA_TABLES = np.stack([_ijg_table(_IJG_LUMA, int(q)) for q in _QUALITIES])  # (100, 64)
_IJG_CHROMA_TABLES = np.stack([_ijg_table(_IJG_CHROMA, int(q)) for q in _QUALITIES])  # (100, 64)


def estimate_jpeg_quality(im: Image.Image) -> int | None:
    """IJG-equivalent quality (1-100) of a JPEG from its quantisation tables; ``None`` for other formats.

    The file's luminance (and, when present, chrominance) table is compared entry by entry with libjpeg's standard
    tables scaled for each quality 1-100; the quality with the least squared error wins (ties go to the lower
    quality). Files written by libjpeg-based encoders (Pillow, OpenCV, most web tools) get their exact setting
    back; files with custom tables (some cameras, Photoshop) get the nearest IJG equivalent.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> buf = io.BytesIO()
        >>> Image.new("RGB", (8, 8)).save(buf, "JPEG", quality=83)
        >>> estimate_jpeg_quality(Image.open(buf))
        83
    """
    tables = getattr(im, "quantization", None)
    if im.format not in ("JPEG", "MPO") or not tables:
        return None
    keys = sorted(tables)
    luma = np.asarray(tables[keys[0]], dtype=np.float64)
    if luma.shape != (64,):
        return None  # 8x8 tables only; anything else is not a baseline/progressive JPEG we can compare
    err = ((_IJG_LUMA_TABLES - luma) ** 2).sum(axis=1)
    if len(keys) > 1:
        chroma = np.asarray(tables[keys[1]], dtype=np.float64)
        if chroma.shape == (64,):
            err += ((_IJG_CHROMA_TABLES - chroma) ** 2).sum(axis=1)
    return int(_QUALITIES[int(np.argmin(err))])
