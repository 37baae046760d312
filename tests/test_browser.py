"""End to end: start `gendetect serve` on 127.0.0.1 and check two images through the page in headless Chromium."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

from gendetect.data.synthetic import synthetic_image  # noqa: E402
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


@pytest.mark.enable_socket
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it with apt-get)")
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
        assert "gendetect-default-v9" in card and "unknown data" not in card
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
