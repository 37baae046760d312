"""What every evidence check shares: the :class:`Finding` it reports, the file it reads, the registry it is in.

A check reads one file (a path or its bytes) through an :class:`EvidenceContext`, which opens the file once and
decodes its pixels only when a check asks for them, and returns zero or more :class:`Finding`. A check whose
optional library is missing is *skipped*: it reports no finding, and :func:`~gendetect.evidence.collect` records
why in :attr:`EvidenceReport.skipped`, so a scan without the ``evidence`` extra works and says what it did not look
at.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import sys
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from PIL import Image

from gendetect.errors import ImageLoadError
from gendetect.imageio import (
    DEFAULT_MAX_PIXELS,
    Source,
    allow_large_png_text,
    read_bytes,
    recording_warnings,
    source_name,
    to_rgb,
)
from gendetect.registry import Registry

logger = logging.getLogger(__name__)

Strength = Literal["conclusive", "strong", "weak", "info"]
STRENGTHS: tuple[str, ...] = ("conclusive", "strong", "weak", "info")
"""How much a finding weighs, most first (see :mod:`gendetect.evidence.policy` for what each does to a verdict):

* ``conclusive``: decides the verdict on its own: a validated C2PA declaration of AI origin, a watermark match;
* ``strong``: specific but unsigned (anyone can write or strip it): generator parameters, an XMP IPTC declaration;
* ``weak``: a hint: a generator's name as the EXIF Software, a manifest that no longer validates;
* ``info``: context that never changes a verdict: camera make and model, editing software.
"""

EXTRA_HINT = "pip install 'gendetect[evidence]'"


@dataclass(frozen=True)
class Finding:
    """One thing a check found in a file.

    Attributes:
        check: the registry name of the check that found it (``"parameters"``, ``"c2pa"``, ``"watermark"``...).
        kind: what it is: ``"generator-parameters"``, ``"ai-declaration"``, ``"capture-declaration"``,
            ``"generator-software"``, ``"camera"``, ``"software"``, ``"watermark"``, ``"c2pa-manifest"``,
            ``"c2pa-invalid"``, ``"c2pa-reference"``...
        strength: one of :data:`STRENGTHS`.
        indicates: ``"fake"`` (points to a generated image), ``"real"`` (points to a camera capture) or ``None``.
        summary: a few words for a table cell, e.g. ``"A1111 parameters (Steps 20, Seed 42)"``.
        reason: one or two sentences a person can act on, including what the finding does *not* prove.
        signed: whether the statement is covered by a cryptographic signature that validated.
        details: JSON-serialisable facts (each key has one type across all checks, so rows stack into Parquet).
    """

    check: str
    kind: str
    strength: Strength
    indicates: Literal["fake", "real"] | None
    summary: str
    reason: str
    signed: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        keys = ("check", "kind", "strength", "indicates", "summary", "reason", "signed")
        details = {k: v for k, v in (d.get("details") or {}).items() if v is not None}  # Parquet pads missing keys
        return cls(**{k: d[k] for k in keys if k in d}, details=details)


class EvidenceContext:
    """One file as the checks see it: its bytes, its header (nothing decoded) and, on demand, its pixels.

    Args:
        source: a path or the file's bytes.
        image: the decoded RGB image when the caller already has it (the scan does not decode twice then).
        max_pixels: checks that need pixels decode at most this many (``watermark`` has its own, lower cap).
    """

    def __init__(
        self, source: Source, *, image: Image.Image | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> None:
        self.source = source
        self.name = source_name(source)
        self.max_pixels = max_pixels
        self._image = image
        self._data: bytes | None = None
        self._header: Image.Image | None = None
        self._header_error: str | None = None

    @property
    def data(self) -> bytes:
        """The file's bytes (read once). Raises :class:`ImageLoadError` when unreadable."""
        if self._data is None:
            self._data = read_bytes(self.source)
        return self._data

    @property
    def header(self) -> Image.Image | None:
        """The file opened by Pillow without decoding pixels (``im.info``, EXIF, XMP), or ``None`` if unreadable."""
        if self._header is None and self._header_error is None:
            try:
                allow_large_png_text()  # as the pixel decoder does: a large workflow chunk is not a broken file
                with recording_warnings(fresh=True):  # dropped, for this thread only (the pixel decoder reports them)
                    self._header = Image.open(io.BytesIO(self.data))
            except (OSError, ImageLoadError, ValueError, Image.DecompressionBombError) as e:
                self._header_error = str(e)
        return self._header

    @property
    def format(self) -> str | None:
        return self.header.format if self.header is not None else None

    def image(self) -> Image.Image:
        """The decoded RGB pixels as stored (no EXIF rotation), decoded once, with the decompression-bomb guard.

        The header image is decoded in place, so a check that already made Pillow read the whole file (the PNG
        chunks after the pixel data) costs no second decode.
        """
        if self._image is None:
            im = self.header
            if im is None:
                raise ImageLoadError(f"{self.name}: not an image Pillow can open ({self._header_error})")
            w, h = im.size
            if w * h > self.max_pixels:
                raise ImageLoadError(f"{self.name}: {w}×{h} is above the {self.max_pixels} pixel limit")
            try:
                with recording_warnings(fresh=True):
                    im.load()
                self._image = to_rgb(im)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
                raise ImageLoadError(f"{self.name}: cannot decode: {e}") from e
        return self._image


class Check(ABC):
    """An evidence check: reads a file, returns findings. Subclasses set ``name`` and implement :meth:`run`.

    ``requires`` lists the importable modules the check needs; when one is missing the check is skipped with a
    message naming the ``evidence`` extra, and the scan goes on.
    """

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    needs_pixels: ClassVar[bool] = False  # decodes the image (the only checks that cost more than a header read)

    def unavailable(self) -> str | None:
        """Why the check cannot run here (a missing library), or ``None`` when it can."""
        # a module already imported is there (and find_spec raises ValueError for cv2, whose __spec__ is None)
        missing = [m for m in self.requires if m not in sys.modules and importlib.util.find_spec(m) is None]
        if missing:
            return f"needs {', '.join(missing)} ({EXTRA_HINT})"
        return None

    @abstractmethod
    def run(self, ctx: EvidenceContext) -> list[Finding]:
        """The findings in ``ctx``'s file; an empty list when there are none. Raise :class:`Skip` to skip."""


class Skip(Exception):
    """Raised by a check that does not apply to this file (too small, unsupported format); the message says why."""


CHECKS: Registry[Check] = Registry("evidence check")
"""Every evidence check, by name. ``gendetect.evidence`` registers ``parameters``, ``exif``, ``xmp``, ``c2pa`` and
``watermark``; a plug-in adds its own with ``@CHECKS.register("name")``."""
