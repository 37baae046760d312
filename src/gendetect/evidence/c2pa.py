"""C2PA manifests (Content Credentials), read and validated with the official ``c2pa-python`` bindings.

The reader runs offline: remote manifests and OCSP revocation are never fetched. It validates the signature, the
hash that binds the manifest to these exact bytes, and, when trust anchors are configured (a PEM bundle in
``$GENDETECT_C2PA_TRUST_ANCHORS``), the signer's certificate chain. ``validation_state`` is then

* ``Trusted``: signature and bindings valid, and the signer chains to a configured anchor;
* ``Valid``: signature and bindings valid, signer not checked against a trust list (none configured, or not on it);
* ``Invalid``: something does not validate; the failure codes say what (``assertion.dataHash.mismatch``: the file
  was edited after signing).

The check reports the claim generator, the signer, every action (``c2pa.created`` with its ``digitalSourceType``)
in the active manifest and its ingredients, and the IPTC assertion when there is one. A file that references a
manifest in its XMP (``dcterms:provenance``) but no longer embeds one had its manifest stripped.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

from gendetect.evidence.base import CHECKS, Check, EvidenceContext, Finding, Skip
from gendetect.evidence.metadata import (
    AI_SOURCE_TYPES,
    CAPTURE_SOURCE_TYPES,
    _xmp_values,
    source_type_name,
)

logger = logging.getLogger(__name__)

TRUST_ENV = "GENDETECT_C2PA_TRUST_ANCHORS"
_MIME = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "AVIF": "image/avif",
    "HEIF": "image/heif",
    "GIF": "image/gif",
}
_CONTEXTS: dict[str, Any] = {}


def reader_settings() -> dict[str, Any]:
    """Offline reader settings (no remote manifests, no OCSP), plus the PEM trust anchors of the env variable."""
    settings: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    anchors = os.environ.get(TRUST_ENV)
    if anchors:
        try:
            pem = Path(anchors).read_text(encoding="utf-8")
        except OSError as e:
            logger.warning(
                "%s=%s is unreadable (%s); C2PA signers are not checked against a trust list", TRUST_ENV, anchors, e
            )
        else:
            settings["verify"]["verify_trust"] = True
            settings["trust"] = {"trust_anchors": pem}
    return settings


def _context() -> Any:
    import c2pa

    key = os.environ.get(TRUST_ENV, "")
    if key not in _CONTEXTS:
        _CONTEXTS[key] = c2pa.Context.from_dict(reader_settings())
    return _CONTEXTS[key]


def _agent(action: dict[str, Any]) -> str:
    agent = action.get("softwareAgent") or action.get("software_agent") or ""
    if isinstance(agent, dict):
        agent = " ".join(str(agent.get(k, "")) for k in ("name", "version")).strip()
    return str(agent)


def _claim_generator(manifest: dict[str, Any]) -> str:
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info:
        return ", ".join(" ".join(str(i.get(k, "")) for k in ("name", "version")).strip() for i in info if i)
    return str(manifest.get("claim_generator") or "")


def summarise_store(store: dict[str, Any]) -> dict[str, Any]:
    """The facts of a manifest store (``Reader.json()``) that the findings need."""
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest") or "", {})
    actions, source_types = [], []
    for label, m in manifests.items():
        for a in m.get("assertions") or []:
            data = a.get("data") or {}
            if str(a.get("label", "")).startswith("c2pa.actions"):
                for act in data.get("actions") or []:
                    entry = {"manifest": label, "action": str(act.get("action", "")), "agent": _agent(act)}
                    if act.get("digitalSourceType"):
                        entry["digital_source_type"] = source_type_name(str(act["digitalSourceType"]))
                        source_types.append((entry["digital_source_type"], label == store.get("active_manifest")))
                    actions.append(entry)
            elif str(a.get("label", "")).startswith("stds.iptc"):
                for v in _xmp_values(data, "Iptc4xmpExt:DigitalSourceType") + _xmp_values(data, "DigitalSourceType"):
                    source_types.append((source_type_name(v), label == store.get("active_manifest")))
    results = store.get("validation_results") or {}
    failures = []
    for part in [results.get("activeManifest") or {}, *(results.get("ingredientDeltas") or [])]:
        block = part.get("validationDeltas", part) if isinstance(part, dict) else {}
        failures += [str(f.get("code")) for f in (block.get("failure") or []) if isinstance(f, dict)]
    for status in store.get("validation_status") or []:  # older readers
        if isinstance(status, dict) and status.get("code"):
            failures.append(str(status["code"]))
    sig = active.get("signature_info") or {}
    return {
        "state": str(store.get("validation_state") or ("Invalid" if failures else "Valid")),
        "claim_generator": _claim_generator(active),
        "signer": ", ".join(str(sig[k]) for k in ("common_name", "issuer") if sig.get(k)),
        "signed_at": str(sig.get("time") or ""),
        "title": str(active.get("title") or ""),
        "actions": actions,
        "source_types": source_types,
        "failures": list(dict.fromkeys(failures)),
        "n_manifests": len(manifests),
    }


def findings_from_store(store: dict[str, Any], check: str = "c2pa") -> list[Finding]:
    """The findings of one manifest store (a dict as ``Reader.json()`` returns it)."""
    s = summarise_store(store)
    valid = s["state"] in ("Valid", "Trusted")
    trusted = s["state"] == "Trusted"
    who = s["claim_generator"] or "an unnamed tool"
    signer = s["signer"] or "an unnamed signer"
    details = {
        "validation_state": s["state"],
        "trusted": trusted,
        "claim_generator": s["claim_generator"],
        "signer": s["signer"],
        "signed_at": s["signed_at"],
        "actions": [
            f"{a['action']}" + (f" ({a['digital_source_type']})" if "digital_source_type" in a else "")
            for a in s["actions"]
        ],
        "failures": s["failures"],
    }
    types = [t for t, _ in s["source_types"]]
    ai = [t for t in types if t in AI_SOURCE_TYPES]
    capture = [t for t in types if t in CAPTURE_SOURCE_TYPES]
    trust_note = (
        "the signer chains to a configured trust anchor"
        if trusted
        else "the signer's certificate was not checked against a trust list (set $GENDETECT_C2PA_TRUST_ANCHORS)"
    )
    if not valid:
        codes = ", ".join(s["failures"][:4]) or "unknown failure"
        edited = any("dataHash.mismatch" in c or "hash" in c.lower() for c in s["failures"])
        what = "the file was edited after signing" if edited else "the manifest or its signature is broken or forged"
        if ai:
            return [
                Finding(
                    check,
                    "c2pa-invalid",
                    "weak",
                    "fake",
                    f"C2PA invalid, declares {ai[0]}",
                    f"A C2PA manifest from {who} declares {ai[0]} but does not validate ({codes}): {what}. "
                    "A declaration that no longer validates is an unsigned hint.",
                    details={**details, "digital_source_type": ai[0]},
                )
            ]
        return [
            Finding(
                check,
                "c2pa-invalid",
                "info",
                None,
                "C2PA manifest invalid",
                f"A C2PA manifest from {who} does not validate ({codes}): {what}. What it says cannot be relied on.",
                details=details,
            )
        ]
    if ai:
        return [
            Finding(
                check,
                "ai-declaration",
                "conclusive",
                "fake",
                f"C2PA ({s['state']}): {ai[0]} by {who}",
                f"A C2PA manifest signed by {signer} ({who}) declares the image {AI_SOURCE_TYPES[ai[0]]} "
                f"(digitalSourceType {ai[0]}); the signature and the hash of these bytes validate, and {trust_note}.",
                signed=True,
                details={**details, "digital_source_type": ai[0]},
            )
        ]
    if capture:
        return [
            Finding(
                check,
                "capture-declaration",
                "strong",
                "real",
                f"C2PA ({s['state']}): {capture[0]} by {who}",
                f"A C2PA manifest signed by {signer} ({who}) declares the image {CAPTURE_SOURCE_TYPES[capture[0]]} "
                f"(digitalSourceType {capture[0]}); the signature validates and {trust_note}. Camera-origin "
                "evidence, but not on its own proof that the scene is real: a camera can photograph a screen.",
                signed=True,
                details={**details, "digital_source_type": capture[0]},
            )
        ]
    acts = ", ".join(details["actions"][:5]) or "no actions"
    return [
        Finding(
            check,
            "c2pa-manifest",
            "info",
            None,
            f"C2PA ({s['state']}) by {who}",
            f"A valid C2PA manifest signed by {signer} ({who}) records {acts}, without declaring AI origin or a "
            f"capture; {trust_note}.",
            signed=True,
            details=details,
        )
    ]


@CHECKS.register("c2pa")
class C2paCheck(Check):
    """Embedded C2PA manifests: validation, claim generator, actions and their digital source types."""

    name = "c2pa"
    requires = ("c2pa",)

    def run(self, ctx: EvidenceContext) -> list[Finding]:
        import c2pa

        fmt = ctx.format
        mime = _MIME.get(fmt or "")
        if fmt is not None and mime is None:
            raise Skip(f"C2PA is not read from {fmt} files")
        if b"jumb" not in ctx.data and b"c2pa" not in ctx.data:
            # every embedded manifest store is a JUMBF superbox ("jumb") labelled "c2pa": without either byte string
            # there is nothing for the reader to find, and the reader costs milliseconds per file
            return self._stripped(ctx)
        try:
            reader = c2pa.Reader.try_create(mime, io.BytesIO(ctx.data), context=_context())
        except c2pa.C2paError as e:
            text = str(e)
            if "NotSupported" in type(e).__name__ or "unsupported" in text.lower():
                raise Skip(f"C2PA reader does not support this file ({text})") from e
            if "remote" in text.lower():
                return [
                    Finding(
                        self.name,
                        "c2pa-remote",
                        "info",
                        None,
                        "C2PA manifest is remote (not fetched)",
                        f"The file points to a remote C2PA manifest, which gendetect does not fetch (offline): {text}",
                    )
                ]
            return [
                Finding(
                    self.name,
                    "c2pa-invalid",
                    "info",
                    None,
                    "C2PA data unreadable",
                    f"The file has C2PA data that cannot be read ({text}): damaged, or edited after signing.",
                    details={"failures": [text[:200]]},
                )
            ]
        if reader is None:
            return self._stripped(ctx)
        with reader:
            store = json.loads(reader.json())
        return findings_from_store(store, self.name)

    def _stripped(self, ctx: EvidenceContext) -> list[Finding]:
        im = ctx.header
        try:
            xmp = im.getxmp() if im is not None else {}
        except (OSError, ValueError, SyntaxError, TypeError, KeyError):
            xmp = {}
        refs = _xmp_values(xmp, "provenance")
        if not refs:
            return []
        if refs[0].lower().startswith(("http://", "https://")):
            return [
                Finding(
                    self.name,
                    "c2pa-remote",
                    "info",
                    None,
                    "C2PA manifest is remote (not fetched)",
                    f"The XMP points to a remote C2PA manifest ({refs[0][:100]}), which gendetect does not fetch "
                    "(it runs offline); its content and validity are unknown.",
                    details={"reference": refs[0][:300]},
                )
            ]
        return [
            Finding(
                self.name,
                "c2pa-stripped",
                "info",
                None,
                "C2PA manifest stripped",
                f"The XMP references a C2PA manifest ({refs[0][:100]}) that is no longer in the file: it was removed, "
                "typically by re-saving. What it said is unknown; its absence proves nothing.",
                details={"reference": refs[0][:300]},
            )
        ]
