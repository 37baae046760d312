"""Evidence beyond pixels: what the file itself says about its origin, and how that changes a verdict.

Checks (registry :data:`CHECKS`): ``parameters`` (generator settings in text chunks), ``exif`` (camera and
software), ``xmp`` (IPTC digital source type, creator tool), ``c2pa`` (signed manifests) and ``watermark``
(Stable Diffusion's invisible DWT-DCT mark). :func:`collect` runs them on one file; :func:`~.policy.fuse` combines
the findings with the pixel verdict (the policy is documented in :mod:`gendetect.evidence.policy`).

Example:
    >>> import io
    >>> from PIL import Image, PngImagePlugin
    >>> info = PngImagePlugin.PngInfo()
    >>> info.add_text("parameters", "a cat\\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 64x64")
    >>> buf = io.BytesIO()
    >>> Image.new("RGB", (64, 64)).save(buf, "PNG", pnginfo=info)
    >>> report = collect(buf.getvalue(), checks=["parameters"])
    >>> [(f.kind, f.strength) for f in report.findings]
    [('generator-parameters', 'strong')]
    >>> fuse("real", report.findings).verdict, fuse("real", report.findings).source
    ('fake', 'metadata')
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from gendetect.evidence import (
    c2pa as _c2pa,  # noqa: F401 - registers the check
    metadata as _metadata,  # noqa: F401 - registers the checks
    watermark as _watermark,  # noqa: F401 - registers the check
)
from gendetect.evidence.base import CHECKS, STRENGTHS, Check, EvidenceContext, Finding, Skip
from gendetect.evidence.policy import VERDICT_SOURCES, FusedVerdict, fuse, summarize
from gendetect.imageio import DEFAULT_MAX_PIXELS

logger = logging.getLogger(__name__)

DEFAULT_CHECKS = ("parameters", "exif", "xmp", "c2pa", "watermark")


@dataclass
class EvidenceReport:
    """The findings of every check that ran, and why the others were skipped (``{check: reason}``)."""

    findings: list[Finding] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def fused(self, pixel_verdict: str | None) -> FusedVerdict:
        return fuse(pixel_verdict, self.findings)

    def row_fields(self, pixel_verdict: str | None) -> dict[str, Any]:
        """The scan-row columns: ``verdict``, ``verdict_source``, ``findings`` (list of dicts), ``evidence`` (text),
        plus ``pixel_verdict`` and ``evidence_skipped`` (``"check: reason"`` strings)."""
        fused = self.fused(pixel_verdict)
        return {
            "verdict": fused.verdict,
            "verdict_source": fused.source,
            "findings": [f.to_dict() for f in self.findings],
            "evidence": summarize(self.findings),
            "pixel_verdict": pixel_verdict,
            "evidence_rule": fused.rule,
            "evidence_skipped": [f"{k}: {v}" for k, v in self.skipped.items()],
        }


def resolve_checks(checks: Sequence[str] | None = None) -> list[Check]:
    """Check instances by name (default: :data:`DEFAULT_CHECKS`); an unknown name lists the valid ones."""
    return [CHECKS.create(name) for name in (DEFAULT_CHECKS if checks is None else checks)]


def collect(
    source: Any,
    *,
    image: Image.Image | None = None,
    checks: Sequence[str] | Sequence[Check] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> EvidenceReport:
    """Run the evidence checks on one file (a path or its bytes); never raises for a bad file or a missing library.

    Args:
        source: the file's path or bytes.
        image: its decoded RGB pixels when already at hand (the watermark check reuses them).
        checks: check names or instances; default every check in :data:`DEFAULT_CHECKS`.
        max_pixels: decompression-bomb guard for checks that decode pixels.
    """
    if checks is None or all(isinstance(c, str) for c in checks):
        instances = resolve_checks(checks)  # type: ignore[arg-type]
    else:
        instances = list(checks)  # type: ignore[arg-type]
    ctx = EvidenceContext(source, image=image, max_pixels=max_pixels)
    report = EvidenceReport()
    for check in instances:
        why = check.unavailable()
        if why is not None:
            report.skipped[check.name] = why
            continue
        try:
            report.findings.extend(check.run(ctx))
        except Skip as e:
            report.skipped[check.name] = str(e)
        except Exception as e:
            logger.debug("evidence check %s failed on %s", check.name, ctx.name, exc_info=True)
            report.skipped[check.name] = f"failed: {type(e).__name__}: {e}"
    return report


__all__ = [
    "CHECKS",
    "DEFAULT_CHECKS",
    "STRENGTHS",
    "VERDICT_SOURCES",
    "Check",
    "EvidenceContext",
    "EvidenceReport",
    "Finding",
    "FusedVerdict",
    "Skip",
    "collect",
    "fuse",
    "resolve_checks",
    "summarize",
]
