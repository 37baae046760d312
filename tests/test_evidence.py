"""Evidence beyond pixels: metadata, IPTC XMP, signed C2PA, watermarks, the fusion policy and the scan outputs.

Every fixture is made here (a test CA signs the C2PA manifests; ``invisible-watermark`` embeds the watermarks),
except the real tool outputs in ``../shared/data/provenance-examples``. Each has a stripped copy, which must fall
back to the pixel verdict.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter, PngImagePlugin

from gendetect.errors import UnknownNameError
from gendetect.evidence import CHECKS, DEFAULT_CHECKS, Finding, collect, fuse
from gendetect.evidence.base import Check, EvidenceContext
from gendetect.evidence.watermark import MATCH_BER, SDXL_MESSAGE, block_scores, decode, int_to_bits, message_bits

A1111 = (
    "a lighthouse at dusk, oil painting\nNegative prompt: blurry\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234567, Size: 512x512, Model hash: 6ce0161689, "
    'Model: v1-5-pruned-emaonly, Version: v1.6.0, Lora hashes: "x: 1, y: 2"'
)
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


# -- fixtures made here ------------------------------------------------------------------------------------------
def photo(size: tuple[int, int] = (320, 288), seed: int = 0) -> Image.Image:
    """A textured, photo-like RGB image (blurred noise over a gradient), big enough for a watermark."""
    rng = np.random.default_rng(seed)
    w, h = size
    noise = Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2))
    grad = np.linspace(40, 200, w)[None, :, None] * np.ones((h, 1, 3))
    arr = 0.5 * np.asarray(noise, dtype=float) + 0.5 * grad
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def save(im: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def png_with_text(chunks: dict[str, str], im: Image.Image | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    for k, v in chunks.items():
        info.add_text(k, v)
    return save(im or photo(), "PNG", pnginfo=info)


def jpeg_with_exif(make: str = "", model: str = "", software: str = "", user_comment: bytes | None = None) -> bytes:
    exif = Image.Exif()
    for tag, value in ((0x010F, make), (0x0110, model), (0x0131, software)):
        if value:
            exif[tag] = value
    if user_comment is not None:
        exif.get_ifd(0x8769)[0x9286] = user_comment
    return save(photo(), "JPEG", quality=92, exif=exif)


def xmp_packet(source_type: str | None = None, creator_tool: str | None = None) -> bytes:
    attrs = ""
    if source_type:
        attrs += f' Iptc4xmpExt:DigitalSourceType="{IPTC}{source_type}"'
    if creator_tool:
        attrs += f' xmp:CreatorTool="{creator_tool}"'
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        f'xmlns:xmp="http://ns.adobe.com/xap/1.0/"{attrs}/>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def with_xmp(fmt: str, packet: bytes) -> bytes:
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", packet.decode())
        return save(photo(), "PNG", pnginfo=info)
    return save(photo(), fmt, xmp=packet, quality=92)


def strip(data: bytes) -> bytes:
    """A stripped copy: the same pixels, re-saved with no metadata at all (what most upload pipelines do)."""
    im = Image.open(io.BytesIO(data))
    fmt = im.format
    clean = Image.frombytes("RGB", im.size, im.convert("RGB").tobytes())
    return save(clean, fmt, **({"quality": 92} if fmt == "JPEG" else {}))


def fake_findings(data: bytes, checks: list[str] | None = None) -> list[Finding]:
    return [f for f in collect(data, checks=checks).findings if f.indicates == "fake"]


# -- C2PA signing with a certificate made in the test ------------------------------------------------------------
@pytest.fixture(scope="session")
def c2pa_signer():
    c2pa = pytest.importorskip("c2pa", reason="the 'evidence' extra (c2pa-python) is not installed")
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gendetect tests"),
            ]
        )

    now = datetime.datetime.now(datetime.timezone.utc)
    usage = {
        "content_commitment": False,
        "key_encipherment": False,
        "data_encipherment": False,
        "key_agreement": False,
        "encipher_only": False,
        "decipher_only": False,
    }
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("gendetect test CA"))
        .issuer_name(name("gendetect test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, **usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("gendetect test signer"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **usage), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + ca.public_bytes(pem)
    private = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    settings = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})

    def sign(source: bytes, mime: str, action: str, source_type: str, generator: str) -> bytes:
        manifest = {
            "claim_generator_info": [{"name": generator, "version": "1.0"}],
            "title": "test image",
            "assertions": [
                {
                    "label": "c2pa.actions",
                    "data": {"actions": [{"action": action, "digitalSourceType": IPTC + source_type}]},
                }
            ],
        }
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, private, None))
        out = io.BytesIO()
        with c2pa.Builder(manifest, context=settings) as builder:
            builder.sign(signer, mime, io.BytesIO(source), out)
        return out.getvalue()

    sign.ca_pem = ca.public_bytes(pem)  # type: ignore[attr-defined]
    return sign


# -- the registry and degradation -----------------------------------------------------------------------------------
def test_registry_names_every_check_and_rejects_unknown_ones() -> None:
    assert set(DEFAULT_CHECKS) <= set(CHECKS.list())
    with pytest.raises(UnknownNameError, match="Valid evidence check names: .*watermark"):
        collect(png_with_text({}), checks=["watermarks"])


def test_a_missing_library_skips_its_check_and_the_rest_still_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "c2pa" else real(n, *a))
    monkeypatch.delitem(sys.modules, "c2pa", raising=False)  # as if never imported (monkeypatch puts it back)
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` fails: the watermark check reads with numpy
    report = collect(png_with_text({"parameters": A1111}))
    assert "gendetect[evidence]" in report.skipped["c2pa"] and "watermark" not in report.skipped
    assert [f.kind for f in report.findings] == ["generator-parameters"]


def test_a_failing_check_is_recorded_not_raised() -> None:
    class Broken(Check):
        name = "broken"

        def run(self, ctx: EvidenceContext) -> list[Finding]:
            raise RuntimeError("boom")

    report = collect(png_with_text({}), checks=[Broken()])
    assert report.findings == [] and report.skipped == {"broken": "failed: RuntimeError: boom"}
    assert "not an image" in collect(b"not an image", checks=["parameters"]).skipped["parameters"]


# -- generator parameters -------------------------------------------------------------------------------------------
def test_a1111_parameters_in_png_make_the_verdict_fake_by_metadata() -> None:
    (f,) = fake_findings(png_with_text({"parameters": A1111}))
    assert (f.check, f.kind, f.strength, f.signed) == ("parameters", "generator-parameters", "strong", False)
    assert f.details["seed"] == "1234567" and f.details["steps"] == "20" and "lighthouse" in f.details["prompt"]
    assert f.details["model"] == "v1-5-pruned-emaonly" and "unsigned" in f.reason
    fused = fuse("real", [f])
    assert (fused.verdict, fused.source) == ("fake", "metadata")


def test_a1111_parameters_in_jpeg_user_comment() -> None:
    comment = b"UNICODE\x00" + A1111.encode("utf-16-be")
    (f,) = fake_findings(jpeg_with_exif(user_comment=comment))
    assert f.details["key"] == "EXIF UserComment" and f.details["sampler"] == "Euler a"


def test_novelai_fooocus_and_comfyui_webp() -> None:
    novel = png_with_text(
        {
            "Software": "NovelAI",
            "Source": "NovelAI Diffusion V3 7BCCAA2C",
            "Comment": json.dumps({"steps": 28, "seed": 99, "sampler": "k_euler"}),
            "Description": "a fox",
        }
    )
    tools = {f.details["tool"] for f in fake_findings(novel, ["parameters"])}
    assert "NovelAI" in tools
    fooocus = png_with_text(
        {
            "parameters": json.dumps({"Prompt": "a fox", "Seed": 5, "Steps": 30, "Version": "Fooocus v2.5"}),
            "fooocus_scheme": "fooocus",
        }
    )
    assert [f.details["tool"] for f in fake_findings(fooocus, ["parameters"])] == ["Fooocus"]
    graph = {
        "3": {"class_type": "KSampler", "inputs": {"seed": 7, "steps": 12}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}},
    }
    exif = Image.Exif()
    exif[0x0110] = "prompt:" + json.dumps(graph)
    (f,) = fake_findings(save(photo(), "WEBP", exif=exif, lossless=True), ["parameters", "exif"])
    assert f.details["tool"] == "ComfyUI" and f.details["model"] == "sdxl.safetensors" and f.details["seed"] == "7"


def test_plain_text_chunks_are_not_parameters() -> None:
    data = png_with_text({"parameters": "Steps to reproduce: none", "Comment": "holiday", "Title": "Beach, 2019"})
    assert fake_findings(data) == []


@pytest.mark.shared_data
def test_real_tool_outputs_in_shared_data(shared_data: Path) -> None:
    folder = shared_data / "provenance-examples"
    with (folder / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 10
    for r in rows:
        data = (folder / r["file"]).read_bytes()
        found = [f for f in fake_findings(data, ["parameters"]) if f.kind == "generator-parameters"]
        expected = "ComfyUI" if "workflow" in r["copy"] else "InvokeAI"
        assert found and found[0].details["tool"].startswith(expected), (r["file"], found)
        assert fuse("real", found).source == "metadata"
        stripped = strip(data)
        assert fake_findings(stripped) == [], r["file"]
        assert fuse("real", collect(stripped).findings).source == "pixels"


# -- EXIF and XMP ------------------------------------------------------------------------------------------------------
def test_exif_camera_is_context_and_never_makes_a_verdict_real() -> None:
    report = collect(jpeg_with_exif("Canon", "Canon EOS R5", "Adobe Photoshop 25.0"), checks=["exif"])
    kinds = {f.kind: f for f in report.findings}
    assert kinds["camera"].indicates == "real" and kinds["camera"].strength == "info"
    assert kinds["software"].indicates is None
    assert (fuse("fake", report.findings).verdict, fuse("fake", report.findings).source) == ("fake", "pixels")
    assert fuse("uncertain", report.findings).verdict == "uncertain"


def test_a_generator_named_as_software_is_a_weak_hint() -> None:
    (f,) = fake_findings(jpeg_with_exif(software="Stable Diffusion web UI"), ["exif"])
    assert (f.kind, f.strength) == ("generator-software", "weak")
    assert (fuse("real", [f]).verdict, fuse("real", [f]).source) == ("uncertain", "metadata")
    assert (fuse("fake", [f]).verdict, fuse("fake", [f]).source) == ("fake", "pixels")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize(
    ("source_type", "kind", "indicates", "fused"),
    [
        ("trainedAlgorithmicMedia", "ai-declaration", "fake", ("fake", "metadata")),
        ("compositeWithTrainedAlgorithmicMedia", "ai-declaration", "fake", ("fake", "metadata")),
        ("digitalCapture", "capture-declaration", "real", ("real", "pixels")),
        ("algorithmicMedia", "synthetic-declaration", "fake", ("uncertain", "metadata")),
    ],
)
def test_iptc_digital_source_type_in_xmp(fmt: str, source_type: str, kind: str, indicates: str, fused: tuple) -> None:
    pytest.importorskip("defusedxml", reason="XMP needs the 'evidence' extra (defusedxml)")
    data = with_xmp(fmt, xmp_packet(source_type, creator_tool="Adobe Photoshop 25.0"))
    report = collect(data, checks=["xmp"])
    (f,) = [f for f in report.findings if f.kind == kind]
    assert f.details["digital_source_type"] == source_type and f.indicates == indicates and not f.signed
    got = fuse("real", report.findings)
    assert (got.verdict, got.source) == fused
    assert any(f.kind == "software" and "Photoshop" in f.summary for f in report.findings)
    assert fuse("real", collect(strip(data)).findings).source == "pixels"


# -- C2PA ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_signed_c2pa_ai_declaration_is_conclusive(c2pa_signer, fmt: str, mime: str) -> None:
    data = c2pa_signer(save(photo(), fmt), mime, "c2pa.created", "trainedAlgorithmicMedia", "Test Image Generator")
    (f,) = fake_findings(data, ["c2pa"])
    assert (f.kind, f.strength, f.signed) == ("ai-declaration", "conclusive", True)
    assert f.details["validation_state"] == "Valid" and f.details["trusted"] is False
    assert f.details["claim_generator"].startswith("Test Image Generator")
    assert "c2pa.created (trainedAlgorithmicMedia)" in f.details["actions"]
    assert "gendetect test signer" in f.details["signer"]
    for pixels in ("real", "uncertain", "fake"):
        got = fuse(pixels, [f])
        assert (got.verdict, got.source) == ("fake", "provenance")
    stripped = strip(data)
    assert collect(stripped, checks=["c2pa"]).findings == []
    assert fuse("real", collect(stripped).findings).source == "pixels"


def test_c2pa_trust_anchors_make_the_state_trusted(
    c2pa_signer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = c2pa_signer(save(photo(), "PNG"), "image/png", "c2pa.created", "trainedAlgorithmicMedia", "Gen")
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(c2pa_signer.ca_pem)
    monkeypatch.setenv("GENDETECT_C2PA_TRUST_ANCHORS", str(anchors))
    (f,) = fake_findings(data, ["c2pa"])
    assert f.details["validation_state"] == "Trusted" and f.details["trusted"] is True


def test_signed_capture_manifest_is_evidence_but_not_proof(c2pa_signer) -> None:
    data = c2pa_signer(save(photo(), "JPEG", quality=92), "image/jpeg", "c2pa.created", "digitalCapture", "Test Camera")
    (f,) = collect(data, checks=["c2pa"]).findings
    assert (f.kind, f.indicates, f.signed, f.strength) == ("capture-declaration", "real", True, "strong")
    assert (fuse("fake", [f]).verdict, fuse("fake", [f]).source) == ("fake", "pixels")
    params = Finding("parameters", "generator-parameters", "strong", "fake", "A1111 parameters", "…")
    got = fuse("real", [f, params])  # unsigned generator metadata contradicted by a signed capture
    assert (got.verdict, got.source) == ("uncertain", "metadata")


def test_c2pa_manifest_of_an_edited_file_does_not_validate(c2pa_signer) -> None:
    data = bytearray(c2pa_signer(save(photo(), "PNG"), "image/png", "c2pa.created", "trainedAlgorithmicMedia", "Gen"))
    idat = data.find(b"IDAT")
    data[idat + 40] ^= 0xFF  # change the pixels after signing, keep the manifest
    (f,) = collect(bytes(data), checks=["c2pa"]).findings
    assert f.kind == "c2pa-invalid" and f.details["validation_state"] == "Invalid" and f.strength == "weak"
    assert any("mismatch" in c for c in f.details["failures"]) and "edited after signing" in f.reason
    assert fuse("real", [f]).verdict == "uncertain"


def test_stripped_manifest_referenced_in_xmp_is_reported() -> None:
    pytest.importorskip("c2pa")
    pytest.importorskip("defusedxml")
    packet = xmp_packet().replace(
        b'xmlns:xmp="http://ns.adobe.com/xap/1.0/"',
        b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dcterms="http://purl.org/dc/terms/" '
        b'dcterms:provenance="self#jumbf=/c2pa/urn:uuid:1234"',
    )
    (f,) = collect(with_xmp("JPEG", packet), checks=["c2pa"]).findings
    assert f.kind == "c2pa-stripped" and f.indicates is None


# -- watermarks -----------------------------------------------------------------------------------------------------------
def _embed(rgb: np.ndarray, style: str) -> np.ndarray:
    imwatermark = pytest.importorskip("imwatermark", reason="invisible-watermark (the reference encoder) is missing")
    enc = imwatermark.WatermarkEncoder()
    if style == "sd1":  # CompVis scripts/txt2img.py put_watermark
        enc.set_watermark("bytes", b"StableDiffusionV1")
        return enc.encode(np.ascontiguousarray(rgb[..., ::-1]), "dwtDct")[..., ::-1]
    enc.set_watermark("bits", list(int_to_bits(SDXL_MESSAGE)))
    arr = rgb.astype(np.float32) if style == "sdxl-diffusers" else np.ascontiguousarray(rgb[..., ::-1], np.float32)
    out = enc.encode(arr, "dwtDct")
    out = out if style == "sdxl-diffusers" else out[..., ::-1]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def test_block_decoder_equals_imwatermark() -> None:
    imwatermark = pytest.importorskip("imwatermark")
    import pywt

    from gendetect.evidence.watermark import haar_approximation

    rng = np.random.default_rng(1)
    for dtype in (np.float64, np.float32):
        x = (rng.random((64, 88)) * 255).astype(dtype)
        ref = pywt.dwt2(x, "haar")[0]
        assert np.array_equal(ref, haar_approximation(x)) and ref.dtype == haar_approximation(x).dtype
    rgb = (rng.random((256, 264, 3)) * 255).astype(np.uint8)
    for f in (False, True):
        assert np.array_equal(
            block_scores(rgb[..., ::-1], float_input=f), block_scores(rgb, float_input=f, order="rgb-image")
        )
    for shape in ((256, 260, 3), (301, 412, 3)):
        img = (rng.random(shape) * 255).astype(np.uint8)
        for n_bits in (32, 48, 136):
            ref = imwatermark.WatermarkDecoder("bits", n_bits).decode(img, "dwtDct")
            assert np.array_equal(np.asarray(ref, int), message_bits(block_scores(img), n_bits)[0])
            ref = imwatermark.WatermarkDecoder("bits", n_bits).decode(img.astype(np.float32), "dwtDct")
            assert np.array_equal(np.asarray(ref, int), message_bits(block_scores(img, float_input=True), n_bits)[0])


def test_numpy_yuv_equals_opencv_for_every_colour() -> None:
    """The U plane without OpenCV is OpenCV's, bit for bit: every 8-bit colour, as uint8 and as float32, in both
    channel orders; and on an odd width, so that pixels OpenCV leaves to its scalar loop (which does not fuse the
    multiply-adds) would show if they were converted otherwise."""
    cv2 = pytest.importorskip("cv2")
    from gendetect.evidence.watermark import u_plane

    v = np.arange(2**24, dtype=np.uint32)
    every = np.stack([v >> 16, (v >> 8) & 255, v & 255], axis=-1).astype(np.uint8).reshape(4096, 4096, 3)
    odd = (np.random.default_rng(2).random((37, 413, 3)) * 255).astype(np.uint8)
    for order, code in (("bgr", cv2.COLOR_BGR2YUV), ("rgb-image", cv2.COLOR_RGB2YUV)):
        for img in (every, odd):
            for a in (img, img.astype(np.float32)):
                ref, got = cv2.cvtColor(a, code)[..., 1], u_plane(a, order)
                assert got.dtype == ref.dtype and np.array_equal(got, ref), (order, a.dtype, a.shape)


@pytest.mark.parametrize("style", ["sd1", "sdxl-diffusers"])
def test_watermark_reads_the_same_bits_without_opencv(monkeypatch: pytest.MonkeyPatch, style: str) -> None:
    rgb = _embed(np.asarray(photo((512, 384), seed=5)), style)  # the reference encoder needs OpenCV itself
    with_cv2 = [block_scores(rgb, float_input=f, order=o) for f in (False, True) for o in ("bgr", "rgb-image")]
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now fails, as in the core install
    without = [block_scores(rgb, float_input=f, order=o) for f in (False, True) for o in ("bgr", "rgb-image")]
    assert all(np.array_equal(a, b) for a, b in zip(with_cv2, without))
    (f,) = fake_findings(save(Image.fromarray(rgb), "PNG"), ["watermark"])
    assert f.details["watermark"] == ("sd1" if style == "sd1" else "sdxl")


@pytest.mark.parametrize(("style", "name"), [("sd1", "sd1"), ("sdxl-diffusers", "sdxl"), ("sdxl-sgm", "sdxl")])
def test_watermarked_image_is_fake_by_watermark_and_a_resized_copy_falls_back(style: str, name: str) -> None:
    pytest.importorskip("cv2")
    rgb = np.asarray(photo((512, 384), seed=3))
    data = save(Image.fromarray(_embed(rgb, style)), "PNG")
    (f,) = fake_findings(data, ["watermark"])
    assert f.details["watermark"] == name and f.details["bit_error_rate"] <= MATCH_BER[name]
    got = fuse("real", [f])
    assert (got.verdict, got.source) == ("fake", "watermark")
    assert fake_findings(save(photo((512, 384), seed=3), "PNG"), ["watermark"]) == []  # the same image unmarked
    im = Image.open(io.BytesIO(data))
    resized = save(im.resize((384, 288), Image.Resampling.BICUBIC), "PNG")  # the mark does not survive resizing
    assert fake_findings(resized) == []
    assert fuse("real", collect(resized).findings).source == "pixels"


def test_watermark_needs_256x256_pixels() -> None:
    pytest.importorskip("cv2")
    assert "smaller than 256" in collect(save(photo((200, 200)), "PNG"), checks=["watermark"]).skipped["watermark"]
    with pytest.raises(Exception, match="smaller than 256"):
        decode(np.zeros((100, 100, 3), np.uint8))


# -- the scan, its outputs, the server ---------------------------------------------------------------------------------------
@pytest.fixture()
def evidence_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    a1111 = png_with_text({"parameters": A1111})
    (folder / "a1111.png").write_bytes(a1111)
    (folder / "a1111-stripped.png").write_bytes(strip(a1111))
    (folder / "camera.jpg").write_bytes(jpeg_with_exif("Canon", "Canon EOS R5"))
    (folder / "plain.png").write_bytes(save(photo(), "PNG"))
    return folder


def test_scan_rows_carry_findings_and_fused_verdicts(evidence_folder: Path) -> None:
    import pyarrow as pa

    from gendetect.pipeline import expand_inputs, scan

    files, _ = expand_inputs([evidence_folder])
    rows = {Path(r.path).name: r for r in scan(files)}
    a = rows["a1111.png"]
    assert (a.verdict, a.verdict_source) == ("fake", "metadata") and "A1111" in a.evidence
    assert a.findings[0]["kind"] == "generator-parameters" and a.extra["pixel_verdict"] in ("real", "uncertain", "fake")
    s = rows["a1111-stripped.png"]
    assert s.verdict_source == "pixels" and s.findings == [] and s.verdict == s.extra["pixel_verdict"]
    assert rows["camera.jpg"].verdict_source == "pixels" and "camera: Canon" in rows["camera.jpg"].evidence
    dicts = [r.to_dict() for r in rows.values()]
    json.dumps(dicts)
    table = pa.Table.from_pylist(dicts)  # nested findings stack into one Parquet schema
    assert table.column("verdict_source").to_pylist().count("metadata") == 1
    off = list(scan(files, evidence=False))
    assert all(r.verdict_source == "pixels" and r.findings == [] for r in off)


def test_cli_scan_names_the_evidence_in_every_format(evidence_folder: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gendetect.cli import main

    runner = CliRunner()
    table = runner.invoke(main, ["scan", str(evidence_folder), "--no-progress"])
    assert table.exit_code == 0, table.output
    assert "(metadata)" in table.output and "A1111" in table.output
    out = runner.invoke(main, ["scan", str(evidence_folder / "a1111.png"), "--format", "json", "--no-progress"])
    (row,) = json.loads(out.stdout)
    assert row["verdict_source"] == "metadata" and row["findings"][0]["details"]["seed"] == "1234567"
    csv_out = runner.invoke(main, ["scan", str(evidence_folder), "--format", "csv", "--no-progress"])
    assert "verdict_source" in csv_out.stdout.splitlines()[0] and "A1111" in csv_out.stdout
    pq_path = tmp_path / "out.parquet"
    assert runner.invoke(main, ["scan", str(evidence_folder), "-o", str(pq_path), "--no-progress"]).exit_code == 0
    import pyarrow.parquet as pq

    rows = pq.read_table(pq_path).to_pylist()
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name["a1111.png"]["verdict_source"] == "metadata"
    findings = by_name["a1111.png"]["findings"]
    findings = json.loads(findings) if isinstance(findings, str) else findings  # gendetect.output: nested as JSON
    assert Finding.from_dict(findings[0]).details["tool"].startswith("A1111")
    off = runner.invoke(main, ["scan", str(evidence_folder / "a1111.png"), "--format", "json", "--no-evidence"])
    assert json.loads(off.stdout)[0]["verdict_source"] == "pixels"


def test_detect_endpoint_returns_findings(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from gendetect.server.app import ServerSettings, create_app

    client = TestClient(create_app(None, ServerSettings(db_url=f"sqlite:///{tmp_path / 'r.sqlite'}")))
    data = png_with_text({"parameters": A1111})
    for _ in range(2):  # the second answer comes from the result store; the evidence is read again
        r = client.post("/v1/detect", files=[("files", ("a.png", data, "image/png"))])
        assert r.status_code == 200, r.text
        (item,) = r.json()["results"]
        assert item["verdict"] == "fake" and item["verdict_source"] == "metadata"
        assert item["findings"][0]["kind"] == "generator-parameters" and "A1111" in item["evidence"]
    r = client.post("/v1/detect", files=[("files", ("s.png", strip(data), "image/png"))])
    (item,) = r.json()["results"]
    assert item["verdict_source"] == "pixels" and item["findings"] == []


def test_sharded_scan_carries_the_evidence_and_honours_no_evidence(evidence_folder: Path, tmp_path: Path) -> None:
    from gendetect.pipeline import expand_inputs
    from gendetect.scale import run_scan

    files, _ = expand_inputs([evidence_folder])
    rows = {Path(r["path"]).name: r for r in run_scan(files, None, tmp_path / "on", shard_size=2)}
    assert (
        rows["a1111.png"]["verdict_source"] == "metadata" and rows["a1111-stripped.png"]["verdict_source"] == "pixels"
    )
    off = run_scan(files, None, tmp_path / "off", shard_size=2, evidence=False)
    assert {r["verdict_source"] for r in off} == {"pixels"}


def test_findings_of_every_check_stack_into_one_arrow_table(c2pa_signer) -> None:
    """Each details key keeps one type across checks, so the shard writer's ``pa.Table.from_pylist`` never fails."""
    import pyarrow as pa

    pytest.importorskip("defusedxml")
    pytest.importorskip("cv2")
    files = [
        png_with_text({"parameters": A1111}),
        jpeg_with_exif("Canon", "Canon EOS R5", "Adobe Photoshop 25.0"),
        with_xmp("JPEG", xmp_packet("trainedAlgorithmicMedia", "Adobe Firefly")),
        c2pa_signer(save(photo(), "PNG"), "image/png", "c2pa.created", "trainedAlgorithmicMedia", "Gen"),
        save(Image.fromarray(_embed(np.asarray(photo((512, 384), seed=3)), "sdxl-diffusers")), "PNG"),
    ]
    rows = [{"findings": [f.to_dict() for f in collect(d).findings]} for d in files]
    checks = {f["check"] for r in rows for f in r["findings"]}
    assert checks == {"parameters", "exif", "xmp", "c2pa", "watermark"}
    table = pa.Table.from_pylist(rows * 2)
    back = [Finding.from_dict(f) for r in table.to_pylist() for f in r["findings"]]
    assert {f.check for f in back} == checks and all(v is not None for f in back for v in f.details.values())


def test_a1111_parameters_in_a_compressed_text_chunk_of_megabytes_are_read() -> None:
    """Pillow refuses a zTXt/iTXt chunk that decompresses to more than 1 MiB (its MAX_TEXT_CHUNK), which made a
    ComfyUI workflow or a long prompt an unreadable file; gendetect reads chunks up to 16 MiB."""
    long_prompt = "a lighthouse at dusk, " * 100_000  # 2.2 MB of prompt above the settings line
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", long_prompt + "\n" + A1111.strip().splitlines()[-1], zip=True)
    data = save(photo(), "PNG", pnginfo=info)
    assert len(data) < 1_000_000  # compressed: Pillow's per-chunk limit is about what it decompresses to
    (f,) = fake_findings(data)
    assert f.kind == "generator-parameters" and f.details["seed"] == "1234567"


def test_a1111_settings_line_longer_than_the_limit_is_not_parsed() -> None:
    from gendetect.evidence.metadata import A1111_SETTINGS_LINE, parse_a1111

    settings = A1111.strip().splitlines()[-1]
    assert parse_a1111(settings)["Steps"] == "20"
    assert parse_a1111(settings + ", Note: " + "x" * A1111_SETTINGS_LINE) is None
    # keys are at most 64 characters (what bounds the parse): a longer one parses as its last 64 characters, and
    # the fields around it still parse
    fields = parse_a1111(settings + ", " + "k" * 80 + ": v")
    assert fields["Steps"] == "20" and fields["k" * 64] == "v" and ("k" * 80) not in fields


def test_metadata_json_longer_than_the_limit_is_not_parsed() -> None:
    """A 16 MiB chunk of ``[{},{},...]`` is a few kB compressed and would cost gigabytes as Python objects."""
    from gendetect.evidence.metadata import JSON_LIMIT, _json

    assert _json('{"a": 1}') == {"a": 1}
    assert _json("[" + "{}," * (JSON_LIMIT // 3) + "{}]") is None


def test_large_png_text_is_allowed_only_where_pillow_has_its_default(monkeypatch) -> None:
    from PIL import ImageFile

    from gendetect.imageio import PNG_TEXT_CHUNK, allow_large_png_text

    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_CHUNK", ImageFile.SAFEBLOCK)
    allow_large_png_text()
    assert PngImagePlugin.MAX_TEXT_CHUNK == PNG_TEXT_CHUNK
    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_CHUNK", 4096)  # an application's own, stricter limit
    allow_large_png_text()
    assert PngImagePlugin.MAX_TEXT_CHUNK == 4096
