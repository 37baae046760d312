"""How findings and the pixel detector's verdict combine into the verdict a scan reports (the fusion policy).

The rules, first match wins (``verdict_source`` in brackets):

1. **Signed or embedded proof of generation** (a ``conclusive`` finding that indicates fake): a C2PA manifest that
   validates and declares AI origin (``trainedAlgorithmicMedia`` or ``compositeWithTrainedAlgorithmicMedia``) makes
   the verdict ``fake`` [``provenance``]; a watermark match makes it ``fake`` [``watermark``]; whatever the pixels say.
2. **Unsigned but specific declarations** (``strong``, indicates fake): generator parameters in the file (A1111,
   ComfyUI, InvokeAI, NovelAI, Fooocus, Midjourney) or an XMP IPTC ``DigitalSourceType`` of AI origin make the
   verdict ``fake`` [``metadata``], *unless* signed evidence of a camera origin contradicts them (a validated C2PA
   capture manifest); then the verdict is ``uncertain`` (or ``fake`` if the pixels say fake) [``metadata``].
   Why fake and not merely uncertain: these fields are written by the generators themselves and hold the prompt,
   seed and model; the common way to hide a generated image is to strip them, not to write them, and a pixel
   detector misses many modern generators. The risk is the opposite forgery, generator metadata written onto a
   real photo to discredit it; that is why the verdict names its source (``metadata``), each finding says it is
   unsigned, and signed camera evidence overrides it.
3. **Hints** (``weak``, indicates fake: a generator named in EXIF Software or XMP CreatorTool, a C2PA manifest that
   declares AI origin but no longer validates): a pixel verdict of ``real`` becomes ``uncertain`` [``metadata``];
   other verdicts stand [``pixels``].
4. Otherwise the pixel verdict stands [``pixels``]. Evidence of a camera origin (EXIF make/model, a capture
   manifest) is shown but never turns a verdict into ``real``: a camera can photograph a screen, and EXIF is easy
   to copy.

What the policy cannot do: metadata and C2PA manifests are removed by most re-encoders, screenshots and upload
pipelines, and the watermark by JPEG re-compression and resizing; a file with no findings is judged on its pixels
alone, and the absence of evidence proves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gendetect.evidence.base import Finding

VERDICT_SOURCES = ("provenance", "watermark", "metadata", "pixels")


@dataclass(frozen=True)
class FusedVerdict:
    """The reported verdict, which evidence decided it, and the rule that applied (one sentence)."""

    verdict: str | None
    source: str
    rule: str


def fuse(pixel_verdict: str | None, findings: Sequence[Finding]) -> FusedVerdict:
    """Apply the policy above to a pixel verdict (``"fake"``, ``"uncertain"``, ``"real"`` or ``None``)."""
    fake = [f for f in findings if f.indicates == "fake"]
    signed_real = [f for f in findings if f.indicates == "real" and f.signed and f.strength in ("conclusive", "strong")]
    conclusive = [f for f in fake if f.strength == "conclusive"]
    if conclusive:
        f = next((f for f in conclusive if f.check != "watermark"), conclusive[0])
        source = "watermark" if f.check == "watermark" else "provenance"
        return FusedVerdict("fake", source, f"fake by {f.summary}, whatever the pixels say")
    strong = [f for f in fake if f.strength == "strong"]
    if strong:
        f = strong[0]
        if signed_real:
            verdict = "fake" if pixel_verdict == "fake" else "uncertain"
            return FusedVerdict(
                verdict, "metadata", f"{verdict}: unsigned {f.summary} contradicts signed {signed_real[0].summary}"
            )
        return FusedVerdict("fake", "metadata", f"fake by unsigned {f.summary}")
    weak = [f for f in fake if f.strength == "weak"]
    if weak and pixel_verdict == "real":
        return FusedVerdict("uncertain", "metadata", f"uncertain: pixels say real, but {weak[0].summary}")
    return FusedVerdict(
        pixel_verdict,
        "pixels",
        "the pixel detector's verdict"
        + ("; the file's evidence does not change it" if findings else "; the file says nothing about its origin"),
    )


def summarize(findings: Sequence[Finding], *, limit: int = 3) -> str:
    """A short text for a table cell: the strongest findings first, e.g. ``"C2PA (Valid): trained... ; camera: X"``."""
    order = {s: i for i, s in enumerate(("conclusive", "strong", "weak", "info"))}
    ranked = sorted(findings, key=lambda f: (order.get(f.strength, 9), f.indicates is None))
    text = "; ".join(f.summary for f in ranked[:limit])
    if len(ranked) > limit:
        text += f"; +{len(ranked) - limit} more"
    return text
