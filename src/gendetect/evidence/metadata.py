"""Unsigned metadata: generator parameters in text chunks, EXIF Software/Make/Model, XMP CreatorTool and IPTC.

Everything here is read with Pillow's own metadata readers without decoding pixels (``im.info`` for PNG/WebP text
chunks, ``im.getexif()`` for EXIF, ``im.getxmp()`` for XMP, which needs ``defusedxml``). None of it is signed:
any of it can be written by anyone and is removed by most re-encoders, screenshots and upload pipelines, so a
file without it proves nothing, and a file with it proves only what someone wrote into it. The fusion policy
(:mod:`gendetect.evidence.policy`) weighs it accordingly.

Checks:

* ``parameters``: the settings that Stable Diffusion front ends write next to the pixels: A1111 / Forge / SD.Next
  ``parameters`` (PNG text, or EXIF UserComment in JPEG/WebP), ComfyUI ``prompt`` / ``workflow`` (PNG text, or EXIF
  Make/Model in its WebP files), InvokeAI ``sd-metadata`` / ``Dream`` / ``invokeai_metadata``, NovelAI
  (``Software: NovelAI`` + ``Comment`` JSON), Fooocus (``fooocus_scheme`` / JSON ``parameters``) and Midjourney
  (``Description`` with a Job ID);
* ``exif``: ``Make``/``Model`` (a camera named), ``Software`` (an editor, or a generator's name);
* ``xmp``: ``xmp:CreatorTool`` and ``Iptc4xmpExt:DigitalSourceType`` (the IPTC vocabulary). (Its
  ``dcterms:provenance``, a reference to a C2PA manifest, is read by the ``c2pa`` check to tell a stripped manifest.)
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from PIL import Image

from gendetect.evidence.base import CHECKS, Check, EvidenceContext, Finding, Skip

logger = logging.getLogger(__name__)

# -- the IPTC digital source type vocabulary (https://cv.iptc.org/newscodes/digitalsourcetype/) ---------------------
IPTC_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
AI_SOURCE_TYPES = {
    "trainedAlgorithmicMedia": "created by a trained model (generative AI)",
    "compositeWithTrainedAlgorithmicMedia": "a composite that includes generative-AI content",
}
SYNTHETIC_SOURCE_TYPES = {  # not a camera capture, but not declared to be generative AI either
    "algorithmicMedia": "created by an algorithm without training data",
    "compositeSynthetic": "a composite including synthetic elements",
}
CAPTURE_SOURCE_TYPES = {
    "digitalCapture": "captured by a digital camera",
    "computationalCapture": "captured by a camera with computational processing",
    "negativeFilm": "scanned from a film negative",
    "positiveFilm": "scanned from a film positive",
    "print": "scanned from a print",
}


def source_type_name(value: str) -> str:
    """``"http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"`` -> ``"trainedAlgorithmicMedia"``."""
    return value.strip().rstrip("/").rsplit("/", 1)[-1]


def source_type_finding(check: str, value: str, *, signed: bool, where: str) -> Finding | None:
    """The finding for one IPTC digital source type, shared by the ``xmp`` and ``c2pa`` checks."""
    name = source_type_name(value)
    details = {"digital_source_type": name, "where": where}
    if name in AI_SOURCE_TYPES:
        if signed:
            reason = (
                f"{where} declares the image {AI_SOURCE_TYPES[name]} (IPTC digitalSourceType {name}), "
                "and its signature validates."
            )
        else:
            reason = (
                f"{where} declares the image {AI_SOURCE_TYPES[name]} (IPTC digitalSourceType {name}). It is not "
                "signed: whoever wrote the file could have written anything, but tools that write it are the "
                "generators themselves."
            )
        return Finding(
            check,
            "ai-declaration",
            "conclusive" if signed else "strong",
            "fake",
            f"{where}: {name}",
            reason,
            signed=signed,
            details=details,
        )
    if name in SYNTHETIC_SOURCE_TYPES:
        return Finding(
            check,
            "synthetic-declaration",
            "weak",
            "fake",
            f"{where}: {name}",
            f"{where} declares the image {SYNTHETIC_SOURCE_TYPES[name]} (IPTC digitalSourceType {name}): not a "
            "photograph, though not declared generative AI.",
            signed=signed,
            details=details,
        )
    if name in CAPTURE_SOURCE_TYPES:
        reason = f"{where} declares the image {CAPTURE_SOURCE_TYPES[name]} (IPTC digitalSourceType {name})."
        reason += (
            " The signature validates: camera-origin evidence, but not on its own proof that the scene is real."
            if signed
            else " It is unsigned, so it is context only."
        )
        return Finding(
            check,
            "capture-declaration",
            "strong" if signed else "info",
            "real",
            f"{where}: {name}",
            reason,
            signed=signed,
            details=details,
        )
    return Finding(
        check,
        "source-type",
        "info",
        None,
        f"{where}: {name}",
        f"{where} gives the IPTC digitalSourceType {name}.",
        signed=signed,
        details=details,
    )


# -- generator names, for free-text fields (EXIF Software, XMP CreatorTool, PNG Software/Source) ----------------------
GENERATOR_NAMES = re.compile(
    r"stable[ -]?diffusion|novelai|midjourney|dall[-·. ]?e|adobe firefly|\bimagen\b|comfyui|invokeai|automatic1111|"
    r"fooocus|diffusionbee|draw things|leonardo\.ai|ideogram|dreamstudio|nightcafe|craiyon|bing image creator|"
    r"image creator from designer|\bgpt-4o\b|\bgpt-image|chatgpt|\bsora\b|\bflux\.?1|\bsdxl\b|gemini",
    re.IGNORECASE,
)


def generator_name(text: str) -> str | None:
    m = GENERATOR_NAMES.search(text or "")
    return m.group(0) if m else None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value) if value is not None else ""


def _short(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# -- parameters ------------------------------------------------------------------------------------------------------
# a key of at most 64 characters: each match attempt is then bounded, so a long line without colons costs linear
# time (an unbounded lazy key made it quadratic: a 5 MB line took minutes)
_A1111_FIELD = re.compile(r'\s*([\w][\w \-/]{0,63}?):\s*("(?:\\.|[^"\\])*"|[^,]*)(?:,|$)')
A1111_SETTINGS_LINE = 64 * 1024  # characters; a longer last line is not an A1111 settings line


def parse_a1111(text: str) -> dict[str, str] | None:
    """The settings line of A1111-style ``parameters`` (``Steps: 20, Sampler: Euler a, ...``), or ``None``.

    A last line longer than :data:`A1111_SETTINGS_LINE` characters is not one (the settings line of a real file
    is a few hundred), so a file's megabytes of text cost linear time at most.
    """
    lines = text.strip().splitlines()
    if not lines or len(lines[-1]) > A1111_SETTINGS_LINE:
        return None
    fields = {k.strip(): v.strip().strip('"') for k, v in _A1111_FIELD.findall(lines[-1])}
    if "Steps" not in fields or not ({"Sampler", "Seed", "CFG scale"} & fields.keys()):
        return None
    prompt_lines = [ln for ln in lines[:-1] if not ln.startswith("Negative prompt:")]
    fields["prompt"] = " ".join(prompt_lines).strip()
    return fields


JSON_LIMIT = 2 * 2**20  # characters of metadata text parsed as JSON; a parsed object costs many times its text


def _json(text: str) -> Any:
    """``text`` parsed as JSON, or None: not JSON, or longer than :data:`JSON_LIMIT` (a 16 MiB text chunk of
    ``[{},{},...]``, a few kB compressed, would cost gigabytes parsed)."""
    if len(text) > JSON_LIMIT:
        logger.debug("metadata text of %d characters not parsed as JSON (limit %d)", len(text), JSON_LIMIT)
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError, ValueError):
        return None


def _comfy_summary(graph: dict[str, Any]) -> dict[str, Any] | None:
    """Models, sampler settings and prompt of a ComfyUI API graph (``prompt`` chunk), or ``None`` if it is not one."""
    nodes = [n for n in graph.values() if isinstance(n, dict) and "class_type" in n]
    if not nodes:
        return None
    models, seeds, steps, texts = [], [], [], []
    for n in nodes:
        inputs = n.get("inputs") or {}
        for key in ("ckpt_name", "unet_name", "model_name", "lora_name"):
            if isinstance(inputs.get(key), str):
                models.append(inputs[key])
        if "Sampler" in str(n["class_type"]):
            for key, out in (("seed", seeds), ("noise_seed", seeds), ("steps", steps)):
                if isinstance(inputs.get(key), int | float):
                    out.append(int(inputs[key]))
        if "TextEncode" in str(n["class_type"]) and isinstance(inputs.get("text"), str):
            texts.append(inputs["text"])
    return {
        "tool": "ComfyUI",
        "model": ", ".join(dict.fromkeys(models)),
        "seed": str(seeds[0]) if seeds else "",
        "steps": str(steps[0]) if steps else "",
        "prompt": texts[0] if texts else "",
        "nodes": str(len(nodes)),
    }


def _dream_summary(text: str) -> dict[str, Any] | None:
    """InvokeAI / lstein ``dream.py`` command line (``"prompt" -s 50 -S 42 -W 512 -H 512 -C 7.5 -A k_lms``)."""
    if not re.search(r"(^|\s)-s\s?\d+", text) or not re.search(r"(^|\s)-[SWHCA]\s?\S", text):
        return None
    seed = re.search(r"(?:^|\s)-S\s?(\d+)", text)
    steps = re.search(r"(?:^|\s)-s\s?(\d+)", text)
    prompt = re.split(r"\s-[a-zA-Z]", " " + text, maxsplit=1)[0].strip().strip('"')
    return {
        "tool": "InvokeAI (dream)",
        "seed": seed.group(1) if seed else "",
        "steps": steps.group(1) if steps else "",
        "prompt": prompt,
    }


def _user_comment(raw: Any) -> str:
    """EXIF UserComment: an 8-byte charset header (``UNICODE\\0``, ``ASCII\\0\\0\\0``) then the text."""
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, bytes) or len(raw) < 8:
        return ""
    head, body = raw[:8], raw[8:]
    if head.startswith(b"UNICODE"):
        # piexif (used by A1111) writes UTF-16 big-endian; some writers use little-endian: pick the one that reads.
        candidates = [body.decode(enc, errors="replace") for enc in ("utf-16-be", "utf-16-le")]
        return max(candidates, key=lambda s: sum(c.isascii() and c.isprintable() for c in s))
    return body.decode("utf-8", errors="replace").strip("\x00 ")


def _text_chunks(im: Image.Image, ctx: EvidenceContext) -> dict[str, str]:
    """PNG/WebP/GIF text chunks. PNG chunks after the pixel data are read too (that decodes the image once)."""
    chunks = {str(k): _text(v) for k, v in im.info.items() if isinstance(v, str | bytes) and k != "icc_profile"}
    if im.format == "PNG":
        w, h = im.size
        if w * h <= ctx.max_pixels:
            try:
                text = im.text  # type: ignore[attr-defined]  # Pillow reads the trailing chunks here
                chunks.update({str(k): _text(v) for k, v in text.items()})
            except (OSError, ValueError, SyntaxError) as e:
                logger.debug("%s: cannot read trailing PNG chunks: %s", ctx.name, e)
    return chunks


def _generator_parameters(chunks: dict[str, str], exif: dict[int, Any]) -> list[dict[str, Any]]:
    """Every set of generator parameters found, as ``{"tool", "key", "model", "seed", "steps", "prompt", ...}``."""
    found: list[dict[str, Any]] = []
    params = chunks.get("parameters")
    user_comment = _user_comment(exif.get(0x9286)) if 0x9286 in exif else ""
    for key, text in (("parameters", params), ("EXIF UserComment", user_comment)):
        if not text:
            continue
        a1111 = parse_a1111(text)
        if a1111 is not None:
            found.append(
                {
                    "tool": "A1111-style (AUTOMATIC1111 / Forge / SD.Next)",
                    "key": key,
                    "model": a1111.get("Model", a1111.get("Model hash", "")),
                    "seed": a1111.get("Seed", ""),
                    "steps": a1111.get("Steps", ""),
                    "sampler": a1111.get("Sampler", ""),
                    "prompt": a1111.get("prompt", ""),
                    "version": a1111.get("Version", ""),
                }
            )
            continue
        obj = _json(text)
        if isinstance(obj, dict) and ({"Prompt", "prompt"} & obj.keys()) and len(obj) >= 3:
            tool = "Fooocus" if "fooocus" in json.dumps(obj).lower() or "fooocus_scheme" in chunks else "JSON"
            found.append(
                {
                    "tool": tool,
                    "key": key,
                    "model": str(obj.get("Base Model", obj.get("base_model", ""))),
                    "seed": str(obj.get("Seed", obj.get("seed", ""))),
                    "steps": str(obj.get("Steps", obj.get("steps", ""))),
                    "prompt": str(obj.get("Prompt", obj.get("prompt", ""))),
                }
            )
    comfy_sources = [("prompt", chunks.get("prompt"))]
    for tag, prefix in ((0x0110, "prompt:"), (0x010F, "prompt:")):  # ComfyUI's WebP saver puts the graph in EXIF
        value = _text(exif.get(tag))
        if value.lower().startswith(prefix):
            comfy_sources.append((f"EXIF {prefix.rstrip(':')}", value[len(prefix) :]))
    for key, text in comfy_sources:
        graph = _json(text) if text else None
        summary = _comfy_summary(graph) if isinstance(graph, dict) else None
        if summary is not None:
            found.append({**summary, "key": key})
            break
    else:
        workflow = _json(chunks.get("workflow", "")) if chunks.get("workflow") else None
        if isinstance(workflow, dict) and isinstance(workflow.get("nodes"), list):
            found.append({"tool": "ComfyUI", "key": "workflow", "nodes": str(len(workflow["nodes"]))})
    for key in ("sd-metadata", "invokeai_metadata"):
        meta = _json(chunks.get(key, "")) if chunks.get(key) else None
        if isinstance(meta, dict):
            image = meta.get("image") if isinstance(meta.get("image"), dict) else meta
            model = meta.get("model_weights") or meta.get("model_id") or meta.get("model") or ""
            if isinstance(model, dict):
                model = model.get("name") or model.get("model_name") or ""
            prompt = image.get("prompt", "")
            if isinstance(prompt, list) and prompt and isinstance(prompt[0], dict):
                prompt = prompt[0].get("prompt", "")
            found.append(
                {
                    "tool": "InvokeAI",
                    "key": key,
                    "model": str(model),
                    "seed": str(image.get("seed", "")),
                    "steps": str(image.get("steps", "")),
                    "prompt": str(prompt),
                }
            )
            break
    else:
        dream = _dream_summary(chunks["Dream"]) if chunks.get("Dream") else None
        if dream is not None:
            found.append({**dream, "key": "Dream"})
    software = chunks.get("Software", "")
    comment = _json(chunks.get("Comment", "")) if chunks.get("Comment") else None
    if "novelai" in software.lower() and isinstance(comment, dict):
        found.append(
            {
                "tool": "NovelAI",
                "key": "Comment",
                "model": chunks.get("Source", ""),
                "seed": str(comment.get("seed", "")),
                "steps": str(comment.get("steps", "")),
                "prompt": chunks.get("Description", str(comment.get("prompt", ""))),
            }
        )
    description = chunks.get("Description", "")
    if re.search(r"Job ID:\s*[0-9a-f]{8}-", description):
        found.append({"tool": "Midjourney", "key": "Description", "prompt": description.split("Job ID:")[0]})
    return found


@CHECKS.register("parameters")
class ParametersCheck(Check):
    """Generator parameters that Stable Diffusion front ends and services write into the file."""

    name = "parameters"

    def run(self, ctx: EvidenceContext) -> list[Finding]:
        im = ctx.header
        if im is None:
            raise Skip("not an image Pillow can open")
        chunks = _text_chunks(im, ctx)
        exif = _exif(im)
        out = []
        for p in _generator_parameters(chunks, exif):
            bits = [f"{k} {p[k]}" for k in ("seed", "steps") if p.get(k)]
            summary = f"{p['tool']} parameters" + (f" ({', '.join(bits)})" if bits else "")
            what = []
            if p.get("model"):
                what.append(f"model {_short(p['model'], 80)}")
            if p.get("prompt"):
                what.append(f"prompt “{_short(p['prompt'], 80)}”")
            reason = (
                f"The file carries the generation settings that {p['tool']} writes ({p['key']}"
                + (f": {'; '.join(what)}" if what else "")
                + "). They are unsigned: easy to strip, and possible to forge."
            )
            details = {k: _short(str(v), 300) for k, v in p.items() if v not in ("", None)}
            out.append(Finding(self.name, "generator-parameters", "strong", "fake", summary, reason, details=details))
        return out


# -- EXIF ------------------------------------------------------------------------------------------------------------
def _exif(im: Image.Image) -> dict[int, Any]:
    """IFD0 tags plus the Exif sub-IFD (UserComment, DateTimeOriginal...), as ``{tag: value}``; {} when unreadable."""
    try:
        exif = im.getexif()
        tags = dict(exif.items())
        tags.update(exif.get_ifd(0x8769).items())
    except (OSError, ValueError, SyntaxError, TypeError, KeyError, ArithmeticError) as e:
        logger.debug("ignoring unreadable EXIF: %s", e)
        return {}
    return tags


@CHECKS.register("exif")
class ExifCheck(Check):
    """EXIF ``Make``/``Model`` (a camera named) and ``Software`` (an editor or a generator)."""

    name = "exif"

    def run(self, ctx: EvidenceContext) -> list[Finding]:
        im = ctx.header
        if im is None:
            raise Skip("not an image Pillow can open")
        tags = _exif(im)
        out: list[Finding] = []
        make, model = _text(tags.get(0x010F)).strip("\x00 "), _text(tags.get(0x0110)).strip("\x00 ")
        if make.lower().startswith(("prompt:", "workflow:")) or model.lower().startswith(("prompt:", "workflow:")):
            make = model = ""  # ComfyUI's WebP graph, reported by the parameters check
        software = _text(tags.get(0x0131)).strip("\x00 ")
        if not software and im.format == "PNG":
            software = _text(im.info.get("Software", "")).strip()
        if make or model:
            camera = " ".join(dict.fromkeys(x for x in (make, model) if x))
            out.append(
                Finding(
                    self.name,
                    "camera",
                    "info",
                    "real",
                    f"camera: {_short(camera, 60)}",
                    f"EXIF names a camera ({camera}). EXIF is unsigned and survives many edits, and is easy to copy "
                    "onto any image: context, not proof of a capture.",
                    details={"make": make, "model": model, "datetime_original": _text(tags.get(0x9003))},
                )
            )
        if software:
            gen = generator_name(software)
            if gen is not None:
                out.append(
                    Finding(
                        self.name,
                        "generator-software",
                        "weak",
                        "fake",
                        f"software: {_short(software, 60)}",
                        f"The file's Software field names a generator ({software}). A name alone is a weak, "
                        "unsigned hint.",
                        details={"software": software, "generator": gen},
                    )
                )
            else:
                out.append(
                    Finding(
                        self.name,
                        "software",
                        "info",
                        None,
                        f"software: {_short(software, 60)}",
                        f"Last written by {software}: the pixels may have been edited or re-encoded since capture "
                        "or generation.",
                        details={"software": software},
                    )
                )
        return out


# -- XMP -------------------------------------------------------------------------------------------------------------
def _xmp_values(node: Any, key: str) -> list[str]:
    """Every string under ``key`` anywhere in Pillow's XMP dict (attributes, elements, rdf:resource, rdf:li)."""
    out: list[str] = []

    def strings(v: Any) -> None:
        if isinstance(v, str):
            if v.strip():
                out.append(v.strip())
        elif isinstance(v, dict):
            for x in v.values():
                strings(x)
        elif isinstance(v, list):
            for x in v:
                strings(x)

    def walk(n: Any) -> None:
        if isinstance(n, dict):
            for k, v in n.items():
                if k == key:
                    strings(v)
                else:
                    walk(v)
        elif isinstance(n, list):
            for x in n:
                walk(x)

    walk(node)
    return list(dict.fromkeys(out))


@CHECKS.register("xmp")
class XmpCheck(Check):
    """XMP ``CreatorTool`` and the IPTC ``DigitalSourceType``."""

    name = "xmp"
    requires = ("defusedxml",)

    def run(self, ctx: EvidenceContext) -> list[Finding]:
        im = ctx.header
        if im is None:
            raise Skip("not an image Pillow can open")
        try:
            xmp = im.getxmp()
        except (OSError, ValueError, SyntaxError, TypeError, KeyError) as e:  # malformed XML is not a scan error
            logger.debug("%s: unreadable XMP: %s", ctx.name, e)
            return []
        if not xmp:
            return []
        out: list[Finding] = []
        for value in _xmp_values(xmp, "DigitalSourceType"):
            f = source_type_finding(self.name, value, signed=False, where="XMP (IPTC)")
            if f is not None:
                out.append(f)
        for tool in _xmp_values(xmp, "CreatorTool"):
            gen = generator_name(tool)
            if gen is not None:
                out.append(
                    Finding(
                        self.name,
                        "generator-software",
                        "weak",
                        "fake",
                        f"creator tool: {_short(tool, 60)}",
                        f"XMP CreatorTool names a generator ({tool}). A name alone is a weak, unsigned hint.",
                        details={"software": tool, "generator": gen},
                    )
                )
            else:
                out.append(
                    Finding(
                        self.name,
                        "software",
                        "info",
                        None,
                        f"creator tool: {_short(tool, 60)}",
                        f"XMP says the file was made or last saved with {tool}.",
                        details={"software": tool},
                    )
                )
        return out
