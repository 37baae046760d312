"""End to end: start `gendetect serve` on 127.0.0.1 and check images through the page in headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

from PIL import Image

from gendetect.data.synthetic import synthetic_image  # noqa: E402
from gendetect.output import spreadsheet_safe
from gendetect.server.app import ServerSettings, create_app  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "out"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(tmp_path: Path):  # noqa: ANN201
    import uvicorn

    app = create_app(None, ServerSettings(db_url=f"sqlite:///{tmp_path / 'results.sqlite'}"))
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


NEEDS_CHROMIUM = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it with apt-get)"
)


@pytest.mark.enable_socket
@NEEDS_CHROMIUM
def test_page_checks_two_images(server: str, tmp_path: Path) -> None:
    images = []
    for i, label in enumerate(("real", "fake")):
        path = tmp_path / f"{label}-{i}.png"
        synthetic_image(label, 128, seed=i).save(path)
        images.append(path)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(server + "/")
        page.wait_for_selector("#card >> text=Trained on")
        card = page.inner_text("#card")
        assert "gendetect-default-v10" in card and "unknown data" not in card
        assert "leave-one-family-out" in card and "worst processing chain" in card
        page.set_input_files("#files", [str(p) for p in images])
        page.wait_for_function("document.querySelectorAll('#results .verdict').length === 2", timeout=30_000)
        verdicts = {
            page.get_attribute(f"#results .item >> nth={i}", "data-filename"): page.inner_text(
                f"#results .item >> nth={i} >> .verdict"
            )
            for i in range(2)
        }
        assert set(verdicts) == {p.name for p in images}
        for text in verdicts.values():
            assert text.split(" · ")[0] in ("real", "uncertain", "fake") and "P(fake)" in text
        assert page.is_enabled("#download-json")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "browser-test.png"), full_page=True)
        page.screenshot(path=str(tmp_path / "page.png"))
        browser.close()
    assert (tmp_path / "page.png").stat().st_size > 1000


def _wait_checked(page: Any, n: int) -> None:
    """Until the page has ``n`` result boxes and its status line says the batch is done."""
    page.wait_for_function(
        f"document.querySelectorAll('#results .item').length === {n}"
        f" && document.getElementById('status').textContent === '{n} image(s) checked.'",
        timeout=30_000,
    )


def _verdicts(page: Any) -> dict[str, str]:
    items = page.query_selector_all("#results .item")
    return {item.get_attribute("data-filename"): item.query_selector(".verdict").inner_text() for item in items}


def _check_on_page(server: str, paths: list[Path], downloads: tuple[str, ...] = ()) -> tuple[dict[str, str], dict]:
    """Upload ``paths`` through the page and wait for the batch; the verdict line of each file by name, and the
    text of each download button's file (``"csv"``, ``"json"``)."""
    got: dict[str, str] = {}
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(server + "/")
        page.wait_for_selector("#card >> text=Trained on")
        page.set_input_files("#files", [str(path) for path in paths])
        _wait_checked(page, len(paths))
        verdicts = _verdicts(page)
        bars = {
            name: page.query_selector(f'#results .item[data-filename="{name}"] .bar') is not None for name in verdicts
        }
        for kind in downloads:
            assert page.is_enabled(f"#download-{kind}")
            with page.expect_download() as download:
                page.click(f"#download-{kind}")
            got[kind] = Path(download.value.path()).read_bytes().decode("utf-8")
        browser.close()
    return {name: f"{text}{' [bar]' if bars[name] else ''}" for name, text in verdicts.items()}, got


def _save(tmp_path: Path, images: dict[str, Image.Image]) -> list[Path]:
    for name, im in images.items():
        im.save(tmp_path / name)
    return [tmp_path / name for name in images]


@pytest.mark.enable_socket
@NEEDS_CHROMIUM
def test_images_without_a_score_are_shown_and_do_not_stop_the_batch(server: str, tmp_path: Path) -> None:
    """A 1x1 and a flat image are ``ok`` with ``p_fake: null`` (no signal): each is shown as uncertain with its
    reason and no bar, and every image after them is still shown."""
    images = {
        "photo.png": synthetic_image("real", 128, seed=1),
        "one.png": Image.new("RGB", (1, 1), "white"),
        "flat.png": Image.new("RGB", (256, 256), (128, 128, 128)),
        "later.png": synthetic_image("fake", 128, seed=2),
    }
    verdicts, _ = _check_on_page(server, _save(tmp_path, images))
    assert set(verdicts) == set(images)
    assert verdicts["one.png"] == "uncertain · no signal: the image is too small for pixel forensics"
    assert verdicts["flat.png"].startswith("uncertain · no signal: the image is flat")
    assert not verdicts["flat.png"].endswith("[bar]")
    for name in ("photo.png", "later.png"):
        assert "P(fake)" in verdicts[name] and verdicts[name].endswith("[bar]")


@pytest.mark.enable_socket
@NEEDS_CHROMIUM
def test_csv_download_escapes_formulas_as_the_cli_does(server: str, tmp_path: Path) -> None:
    """The page's CSV follows the CLI's rule (:func:`gendetect.output.spreadsheet_safe`): a text cell starting
    with ``=``, ``+``, ``-`` or ``@`` gets a leading ``'``; and it has the ``reason`` and ``pixel_verdict`` columns."""
    images = {name: synthetic_image("real", 96, seed=i) for i, name in enumerate(("=1+1.png", "+x.png", "@x.png"))}
    images["-one.png"] = Image.new("RGB", (1, 1), "white")
    _, got = _check_on_page(server, _save(tmp_path, images), ("csv", "json"))
    text, results = got["csv"], json.loads(got["json"])
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")  # CRLF, as the CLI writes CSV
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert sorted(r["filename"] for r in rows) == sorted("'" + name for name in images)
    for row in rows:
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in row.values()), row
    one = next(r for r in rows if r["filename"] == "'-one.png")
    assert one["reason"].startswith("no signal: ") and one["p_fake"] == "" and one["pixel_verdict"] == "uncertain"
    for row, result in zip(rows, results):
        for col in ("filename", "status", "verdict", "reason", "verdict_source", "pixel_verdict", "sha256"):
            value = result.get(col)
            assert row[col] == ("" if value is None else spreadsheet_safe(value)), (col, row, result)
        assert float(row["p_fake"] or "nan") == pytest.approx(result["p_fake"] or float("nan"), nan_ok=True)


@pytest.mark.enable_socket
@NEEDS_CHROMIUM
def test_one_result_that_cannot_be_drawn_does_not_stop_the_others(server: str, tmp_path: Path) -> None:
    """The page draws each result on its own: a malformed one (here ``findings`` that is not a list, and a missing
    one) gets an error box, and the other results, the status line and the download buttons still work."""
    names = ["bad.png", "good.png", "missing.png"]
    for i, name in enumerate(names):
        synthetic_image("real", 96, seed=i).save(tmp_path / name)
    good = {"status": "ok", "p_fake": 0.25, "verdict": "real", "threshold": 0.7, "verdict_source": "pixels"}
    body = {"model": "m", "version": "v", "results": [{**good, "filename": "bad.png", "findings": 5}, good]}
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.route("**/v1/detect", lambda route: route.fulfill(json=body))  # the server never sends such rows
        page.goto(server + "/")
        page.wait_for_selector("#card >> text=Trained on")
        page.set_input_files("#files", [str(tmp_path / name) for name in names])
        _wait_checked(page, len(names))
        verdicts = _verdicts(page)
        assert page.is_enabled("#download-csv") and page.is_enabled("#download-json")
        browser.close()
    assert verdicts["bad.png"].startswith("error: this result cannot be shown")
    assert verdicts["good.png"].startswith("real · P(fake)") and "0.250" in verdicts["good.png"]
    assert verdicts["missing.png"] == "error: the server sent no result for this file"
