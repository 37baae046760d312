"""Issue 16, scan half: no input hangs or crashes a scan, every input gets a row, nothing lies about the output."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image, ImageFile, features

from gendetect import DetectionPipeline, expand_inputs, scan
from gendetect.cli import main
from gendetect.errors import ImageLoadError
from gendetect.imageio import load_image, load_image_with_info, probe_image, read_bytes

posix_only = pytest.mark.skipif(os.name != "posix", reason="FIFOs and byte file names are POSIX")


@pytest.fixture()
def alarm() -> Iterator[None]:
    """Fail a test that blocks (a FIFO read) after 20 s instead of hanging the suite."""

    def boom(*_: object) -> None:
        raise TimeoutError("blocked for 20 s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _rgb(size: int = 48, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


# -- 1. FIFOs, devices, sockets ----------------------------------------------------------------------------------
@posix_only
def test_fifo_named_like_an_image_gets_an_error_row_not_a_hang(
    stats_model: DetectionPipeline, tmp_path: Path, alarm: None
) -> None:
    _rgb().save(tmp_path / "a.png")
    os.mkfifo(tmp_path / "x.jpg")
    files, problems = expand_inputs([tmp_path, tmp_path / "x.jpg"])
    rows = [r for r in scan(files, stats_model, evidence=False)]
    assert len(rows) == 3 and not problems  # the folder's two entries, and the FIFO named on its own
    fifo = [r for r in rows if r.path.endswith("x.jpg")]
    assert len(fifo) == 2 and all(r.status == "error" and "FIFO" in r.error for r in fifo)
    with pytest.raises(ImageLoadError, match="FIFO"):
        probe_image(tmp_path / "x.jpg", hash=False)


@posix_only
def test_devices_and_sockets_are_not_read(tmp_path: Path, alarm: None) -> None:
    with pytest.raises(ImageLoadError, match="character device"):
        read_bytes("/dev/zero")  # would never end
    import socket

    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s.png"))
        with pytest.raises(ImageLoadError, match="socket"):
            load_image(tmp_path / "s.png")
    finally:
        sock.close()


def test_file_size_guard(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"\0" * 5000)
    with pytest.raises(ImageLoadError, match="above the limit"):
        read_bytes(big, max_bytes=1000)


# -- 2. every decoder error is an error row ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("avif: decode failed"),
        Image.DecompressionBombError("frame too big"),
        struct.error("unpack"),
        ZeroDivisionError("division by zero"),
        MemoryError(),
        SyntaxError("bad"),
        EOFError(),
        LookupError("unexpected"),  # not in any list: still an error for this file only
    ],
)
def test_any_decoder_exception_becomes_an_image_load_error(exc: BaseException, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(self: Image.Image) -> None:
        raise exc

    monkeypatch.setattr(ImageFile.ImageFile, "load", explode)
    with pytest.raises(ImageLoadError, match="<bytes>"):
        load_image_with_info(_encode(_rgb(), "PNG"))


# -- 3. non-UTF-8 file names -------------------------------------------------------------------------------------
@posix_only
@pytest.mark.parametrize("suffix", ["csv", "tsv", "parquet", "json", "jsonl"])
def test_non_utf8_file_names_are_written_escaped_with_their_bytes(suffix: str, tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9.png"
    try:
        Path(os.fsdecode(raw)).write_bytes(_encode(_rgb(), "PNG"))
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses non-UTF-8 names")
    out = tmp_path / f"r.{suffix}"
    result = CliRunner().invoke(main, ["scan", str(tmp_path), "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    if suffix == "parquet":
        rows = pq.read_table(out).to_pylist()
    elif suffix in ("csv", "tsv"):
        rows = list(csv.DictReader(out.open(newline="", encoding="utf-8"), delimiter="," if suffix == "csv" else "\t"))
    elif suffix == "json":
        rows = json.loads(out.read_text(encoding="utf-8"))
    else:
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    (row,) = rows
    assert row["status"] == "ok" and row["path"].endswith("caf\\xe9.png")
    assert bytes.fromhex(row["path_bytes"]) == raw


@posix_only
def test_non_utf8_names_in_a_sharded_scan_and_its_rerun(tmp_path: Path) -> None:
    images = tmp_path / "in"
    images.mkdir()
    raw = os.fsencode(images) + b"/caf\xe9.png"
    try:
        Path(os.fsdecode(raw)).write_bytes(_encode(_rgb(), "PNG"))
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses non-UTF-8 names")
    _rgb(seed=1).save(images / "ok.png")
    out = tmp_path / "r.csv"
    for _ in range(2):  # the rerun resumes from the shards instead of failing on them
        result = CliRunner().invoke(main, ["scan", str(images), "--engine", "local", "-o", str(out), "--no-progress"])
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
        assert sorted(r["status"] for r in rows) == ["ok", "ok"]
        assert {bytes.fromhex(r["path_bytes"]) for r in rows if r["path_bytes"]} == {raw}


# -- 4. the table shows names literally --------------------------------------------------------------------------
def test_table_escapes_rich_markup_in_paths(tmp_path: Path) -> None:
    (tmp_path / "mk[").mkdir()
    _rgb().save(tmp_path / "mk[" / "b].png")
    _rgb().save(tmp_path / "[bold]x.png")
    result = CliRunner().invoke(main, ["scan", str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "mk[/b].png" in result.stdout and "[bold]x.png" in result.stdout


# -- 5. memory of high-bit-depth images --------------------------------------------------------------------------
_MEMORY_CHILD = textwrap.dedent(
    """
    import sys
    import PIL.PngImagePlugin
    from gendetect.imageio import load_image
    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key + ":")) * 1024
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current resident size: imports do not count
    before = status("VmRSS")
    im = load_image(sys.argv[1])
    print((status("VmHWM") - before) / (im.width * im.height), status("VmHWM") > before, im.mode, im.size[0])
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_16_bit_png_peak_memory_is_a_few_bytes_per_pixel(tmp_path: Path) -> None:
    side = 3000
    row = np.linspace(0, 65535, side).astype(np.uint16)
    Image.fromarray(np.ascontiguousarray(np.broadcast_to(row, (side, side)))).save(
        tmp_path / "g16.png", compress_level=1
    )
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(tmp_path / "g16.png")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    per_pixel, grew, mode, width = out.stdout.split()
    assert mode == "RGB" and int(width) == side
    # 2 (decoded I;16) + 1 (grey) + 3 (RGB) bytes per pixel plus small bands; the float64 path took ~26.
    assert grew == "True" and float(per_pixel) < 12, out.stdout  # 6 + fixed band overhead (~3 at 9 Mpx)


def test_16_bit_conversion_is_exact_in_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    from gendetect import imageio

    monkeypatch.setattr(imageio, "_BAND_PIXELS", 100)  # many bands on a small image
    ramp = np.linspace(0, 65535, 96 * 64).reshape(64, 96).astype(np.uint16)
    arr = np.asarray(load_image(_encode(Image.fromarray(ramp), "PNG")))
    assert np.array_equal(arr[..., 0], np.round(ramp / 65535 * 255).astype(np.uint8))
    wide = Image.fromarray(np.linspace(-5, 300, 96 * 64).reshape(64, 96).astype(np.float32))
    arr = np.asarray(imageio.to_rgb(wide))
    assert arr.min() == 0 and arr.max() == 255


# -- 6. unlistable folders, unreadable files ---------------------------------------------------------------------
def test_unlistable_subfolder_gets_an_error_row_and_the_scan_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ok").mkdir()
    (tmp_path / "locked").mkdir()
    _rgb().save(tmp_path / "ok" / "a.png")
    _rgb().save(tmp_path / "locked" / "b.png")
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if Path(os.fsdecode(path)).name == "locked":
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    files, problems = expand_inputs([tmp_path])
    assert [Path(f).name for f in files] == ["a.png"]
    (p,) = problems
    assert p.path.endswith("locked") and p.error == "cannot list folder: Permission denied"


def test_an_unreadable_file_named_on_the_command_line_gets_an_error_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "secret.png"
    _rgb().save(target)
    monkeypatch.setattr(os, "access", lambda *a, **k: False)  # what click's readable check asks
    real_open = os.open

    def deny(path: object, *args: object, **kw: object) -> int:
        if Path(os.fsdecode(path)) == target:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kw)

    monkeypatch.setattr(os, "open", deny)
    result = CliRunner().invoke(main, ["scan", str(target), "--format", "jsonl", "--no-progress"])
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["status"] == "error" and "permission denied" in row["error"]
    assert result.exit_code == 1  # every row is an error, but it is a row, not a refused command


# -- 8. streamed output, Ctrl-C ----------------------------------------------------------------------------------
def _fake_scan(n_before_interrupt: int, out: Path | None = None) -> object:
    from gendetect.pipeline import ScanRow

    def fake(files: list[str], *_: object, **__: object) -> Iterator[ScanRow]:
        for i, f in enumerate(files):
            if i == n_before_interrupt:
                raise KeyboardInterrupt
            if out is not None and i == 2:  # rows 0 and 1 are already on disk while row 2 is being scored
                from gendetect.atomic import temp_path

                assert len(temp_path(out).read_text().splitlines()) == 2
            yield ScanRow(f, p_fake=0.1, verdict="real", model="m", threshold=0.5)

    return fake


def test_ctrl_c_finishes_the_output_with_the_scored_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gendetect.pipeline

    for i in range(6):
        _rgb(seed=i).save(tmp_path / f"{i}.png")
    out = tmp_path / "out" / "r.jsonl"
    out.parent.mkdir()
    out.write_text('{"old": "result"}\n')
    monkeypatch.setattr(gendetect.pipeline, "scan", _fake_scan(4, out))
    result = CliRunner().invoke(main, ["scan", str(tmp_path), "-o", str(out), "--no-progress", "--no-recursive"])
    assert result.exit_code == 130, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(r["path"]).name for r in rows] == ["0.png", "1.png", "2.png", "3.png"]
    assert "interrupted: 4 of 6 files were scored" in result.stderr and "partial" in result.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.jsonl"]  # no temporary file left


def test_ctrl_c_with_meta_says_the_results_are_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gendetect.pipeline

    for i in range(4):
        _rgb(seed=i).save(tmp_path / f"{i}.png")
    out = tmp_path / "out" / "r.csv"
    monkeypatch.setattr(gendetect.pipeline, "scan", _fake_scan(2))
    result = CliRunner().invoke(main, ["scan", str(tmp_path), "-o", str(out), "--no-progress", "--meta"])
    assert result.exit_code == 130, result.output
    meta = json.loads((tmp_path / "out" / "r.csv.meta.json").read_text())
    assert meta["complete"] is False and meta["rows"] == 2 and meta["counts"]["real"] == 2 and meta["files"] == 4


@posix_only
def test_sigint_on_a_real_scan_leaves_a_valid_partial_file(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(300):
        _rgb(96, seed=i).save(images / f"{i:03d}.png")
    out = tmp_path / "r.csv"
    # a suite started in the background (`make test &`) ignores SIGINT, and a child inherits that: Python then
    # installs no KeyboardInterrupt handler, the signal is ignored and the scan finishes (the skip below). A handled
    # signal is reset to the default in the child, so the child starts as from a terminal
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gendetect.cli", "scan", str(images), "-o", str(out), "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    tmp = tmp_path / f".r.csv.tmp{proc.pid}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if tmp.exists() and len(tmp.read_bytes().splitlines()) > 3:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the scan finished before it could be interrupted")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0 and "interrupted" not in err and len(out.read_text().splitlines()) == 301:
        pytest.skip("the scan finished between the last poll and the signal (a loaded machine)")
    assert proc.returncode == 130, err
    rows = list(csv.DictReader(out.open(newline="")))
    assert 3 <= len(rows) < 300 and all(r["status"] == "ok" for r in rows)
    assert "interrupted" in err and "partial" in err and not tmp.exists()


# -- 9. files that get no row ------------------------------------------------------------------------------------
def test_hidden_files_are_counted_and_named_files_always_get_a_row(tmp_path: Path) -> None:
    _rgb().save(tmp_path / "a.png")
    _rgb().save(tmp_path / ".hidden.png")
    (tmp_path / ".cache").mkdir()
    _rgb().save(tmp_path / ".cache" / "c.png")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (tmp_path / "photo.cr2").write_bytes(b"II*\x00 raw-ish")
    skipped: dict[str, int] = {}
    files, problems = expand_inputs([tmp_path, tmp_path / ".hidden.png", tmp_path / "notes.txt"], skipped=skipped)
    names = [Path(f).name for f in files]
    assert names == ["a.png", "drawing.svg", "photo.cr2", ".hidden.png", "notes.txt"] and not problems
    assert skipped == {"hidden": 2, "not an image name": 1}
    result = CliRunner().invoke(main, ["scan", str(tmp_path), "--format", "jsonl", "--no-progress"])
    rows = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert "vector images are not scanned" in rows["drawing.svg"]["error"]
    assert rows["photo.cr2"]["status"] == "error" and "RAW" in rows["photo.cr2"]["error"]
    assert "not scanned: 2 hidden, 1 not an image name" in result.stderr


def test_heic_is_read_through_pillow_heif() -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    buf = io.BytesIO()
    pillow_heif.from_pillow(_rgb(64)).save(buf, quality=90)
    im, info = load_image_with_info(buf.getvalue())
    assert info.format == "HEIF" and im.size == (64, 64) and im.mode == "RGB"


def test_heic_without_the_plug_in_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from gendetect import imageio

    monkeypatch.setattr(imageio, "_heif_state", {})
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # import fails
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    with pytest.raises(ImageLoadError, match=r"pillow-heif.*gendetect\[heif\]"):
        load_image(data)


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF codec")
def test_avif_is_read() -> None:
    im, info = load_image_with_info(_encode(_rgb(64), "AVIF", quality=80))
    assert info.format == "AVIF" and im.size == (64, 64)


# -- 10. damaged images are not "ok" -----------------------------------------------------------------------------
def _jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(_encode(_rgb(16), "JPEG", quality=90))
    i = data.find(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_jpeg_declaring_far_more_pixels_than_it_holds_is_truncated() -> None:
    with pytest.raises(ImageLoadError, match="truncated JPEG"):
        load_image(_jpeg_declaring(10_000, 10_000))
    assert load_image(_encode(_rgb(16), "JPEG")).size == (16, 16)
    flat = Image.new("RGB", (4000, 3000), (128, 128, 128))  # the most compressible honest JPEG
    assert load_image(_encode(flat, "JPEG", quality=5)).size == (4000, 3000)


def test_load_truncated_images_is_kept_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as another library might
    data = _encode(_rgb(256), "JPEG", quality=90)
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("fill", [np.nan, np.inf])
def test_float_tiff_with_non_finite_pixels_is_an_error(fill: float) -> None:
    arr = np.full((16, 16), fill, dtype=np.float32)
    with pytest.raises(ImageLoadError, match="256 of 256 pixels are NaN or infinite"):
        load_image(_encode(Image.fromarray(arr), "TIFF"))
    arr[:8] = 0.5
    with pytest.raises(ImageLoadError, match="128 of 256"):
        load_image(_encode(Image.fromarray(arr), "TIFF"))


# -- 11. output paths that do not lie ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["res.xlsx", "res", "res.parq"])
def test_unknown_output_suffix_is_refused_before_work(name: str, tmp_path: Path) -> None:
    _rgb().save(tmp_path / "a.png")
    result = CliRunner().invoke(main, ["scan", str(tmp_path / "a.png"), "-o", str(tmp_path / name)])
    assert result.exit_code == 2 and ".csv" in result.output and ".tsv" in result.output
    assert "judged" not in result.output and not (tmp_path / name).exists()


def test_tsv_output(tmp_path: Path) -> None:
    _rgb(96).save(tmp_path / "a.png")  # above the default model's 64 px no-signal limit, so it gets a score
    out = tmp_path / "r.tsv"
    result = CliRunner().invoke(main, ["scan", str(tmp_path), "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    (row,) = csv.DictReader(out.open(newline=""), delimiter="\t")
    assert row["status"] == "ok" and 0 <= float(row["p_fake"]) <= 1


@pytest.mark.parametrize("name", ["r.html", "r.md"])
def test_evaluate_to_a_report_file_writes_that_file(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gendetect.evaluation import protocols

    report = {
        "protocol": "per-generator",
        "tables": [{"title": "overall", "columns": ["group", "auc"], "rows": [["all", 0.9]]}],
        "data": {"n_unreadable": 0},
    }
    monkeypatch.setattr(protocols, "run_protocol", lambda config: report)  # the writing is under test, not the metrics
    out = tmp_path / name
    result = CliRunner().invoke(main, ["evaluate", "--data", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "per-generator" in out.read_text()  # a file, not a folder named r.html


def test_evaluate_output_suffixes(tmp_path: Path) -> None:
    from gendetect.cli.evaluate import _report_kind

    assert _report_kind(Path("r.html")) == "html" and _report_kind(Path("r.md")) == "md"
    assert _report_kind(Path("r.json")) == "json" and _report_kind(Path("reports")) == "folder"
    result = CliRunner().invoke(main, ["evaluate", "--data", str(tmp_path), "-o", str(tmp_path / "r.xlsx")])
    assert result.exit_code == 2 and "FILE.html" in result.output


# -- 12. options validated before work ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "-p", "C=abc"], "C='abc' is not a float"),
        (["train", "-p", "foo=1"], "no parameter 'foo'; valid: C,"),
        (["train", "--detector", "knn", "-p", "k=2.5"], "is not a int"),
        (["scan", "--threshold", "2"], "not in the range"),
        (["evaluate", "--protocol", "robustness", "--chain", "jpeg:500"], "jpeg takes 1 to 100"),
        (["evaluate", "--protocol", "robustness", "--chain", "resize:0"], "out of range"),
    ],
)
def test_bad_options_fail_at_once(args: list[str], message: str, tmp_path: Path) -> None:
    _rgb().save(tmp_path / "a.png")
    if args[0] == "scan":
        args = [*args, str(tmp_path)]
    else:
        args = [*args, "--data", str(tmp_path)] + (["-o", str(tmp_path / "m")] if args[0] == "train" else [])
    t = time.perf_counter()
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert time.perf_counter() - t < 5


def test_corrupt_weights_give_a_clear_error(tmp_path: Path) -> None:
    from gendetect.pipeline import default_model_path

    model = tmp_path / "model"
    model.mkdir()
    for f in default_model_path().iterdir():
        if f.is_file():
            (model / f.name).write_bytes(f.read_bytes())
    (model / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    _rgb().save(tmp_path / "a.png")
    result = CliRunner().invoke(main, ["scan", str(tmp_path / "a.png"), "-m", str(model)])
    assert result.exit_code == 1 and "not a readable gendetect model" in result.output
    assert "SafetensorError" not in result.output and isinstance(result.exception, SystemExit)
