"""Server hardening (issue 16, items 13-19): limits checked before the body is read, streamed multipart caps, jobs
confined to their root, 4xx for odd input, Host/origin rules, persistent bounded jobs, offline /docs, CSV escaping.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
from fastapi.testclient import TestClient

from gendetect.data.synthetic import synthetic_image
from gendetect.output import spreadsheet_safe
from gendetect.server import jobs as jobs_module
from gendetect.server.app import ServerSettings, create_app
from gendetect.server.security import allowed_host_set, is_loopback, normalise_origin, split_host
from gendetect.server.store import ResultStore


def _png(seed: int = 0, size: int = 64) -> bytes:
    buf = io.BytesIO()
    synthetic_image("real" if seed % 2 else "fake", size, seed=seed).save(buf, "PNG")
    return buf.getvalue()


def _settings(tmp_path: Path, **kw: Any) -> ServerSettings:
    base: dict[str, Any] = {"db_url": f"sqlite:///{tmp_path / 'results.sqlite'}", "evidence": False}
    base.update(kw)
    return ServerSettings(**base)


@pytest.fixture(scope="module")
def pipeline():
    from gendetect.pipeline import load_model

    return load_model()


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "sub").mkdir(parents=True)
    for i in range(2):
        (r / "sub" / f"{i}.png").write_bytes(_png(i))
    return r


# -- raw ASGI helpers: see exactly how much of a body the app reads ---------------------------------------------
def _asgi(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> dict:
    """Run one request through the ASGI app; returns status, body and how many body chunks were read."""
    state = {"read": 0, "status": None, "body": b""}
    queue = list(chunks)

    async def receive() -> dict:
        if not queue:
            return {"type": "http.request", "body": b"", "more_body": False}
        state["read"] += 1
        chunk = queue.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            state["status"] = message["status"]
        elif message["type"] == "http.response.body":
            state["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    return state


def _multipart(parts: list[tuple[str, str, bytes]], boundary: str = "XyZ") -> bytes:
    out = b""
    for field, name, data in parts:
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode()


# -- 13: token and size before the body; streamed caps; the 'file' field --------------------------------------
def test_wrong_token_is_refused_before_reading_the_body(tmp_path: Path, pipeline: Any) -> None:
    app = create_app(pipeline, _settings(tmp_path, token="s3cret"))
    body = _multipart([("files", "a.png", _png(1))])
    headers = [(b"content-type", b"multipart/form-data; boundary=XyZ"), (b"content-length", str(len(body)).encode())]
    state = _asgi(app, "POST", "/v1/detect", headers, [body])
    assert state["status"] == 401 and state["read"] == 0
    ok = _asgi(app, "POST", "/v1/detect", [*headers, (b"authorization", b"Bearer s3cret")], [body])
    assert ok["status"] == 200 and json.loads(ok["body"])["results"][0]["status"] == "ok"


def test_declared_oversize_body_is_refused_before_reading(tmp_path: Path, pipeline: Any) -> None:
    app = create_app(pipeline, _settings(tmp_path, max_request_bytes=10_000))
    headers = [(b"content-type", b"multipart/form-data; boundary=XyZ"), (b"content-length", str(2**30).encode())]
    state = _asgi(app, "POST", "/v1/detect", headers, [b"x" * 1000] * 5)
    assert state["status"] == 413 and state["read"] == 0
    assert "limit" in json.loads(state["body"])["detail"]
    # a JSON route has a small limit of its own
    state = _asgi(app, "POST", "/v1/jobs", [(b"content-length", str(2 * 2**20).encode())], [b"{}"])
    assert state["status"] == 413 and state["read"] == 0


def test_chunked_body_is_cut_off_while_streaming(tmp_path: Path, pipeline: Any) -> None:
    app = create_app(pipeline, _settings(tmp_path, max_request_bytes=50_000, max_upload_bytes=40_000))
    body = _multipart([("files", "big.png", b"\0" * 200_000)])
    chunks = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    state = _asgi(app, "POST", "/v1/detect", [(b"content-type", b"multipart/form-data; boundary=XyZ")], chunks)
    assert state["status"] == 413
    assert state["read"] < len(chunks) // 2  # stopped at the limit, not after the whole body


def test_too_many_parts_stop_the_stream_at_the_cap(tmp_path: Path, pipeline: Any) -> None:
    app = create_app(pipeline, _settings(tmp_path, max_batch=3))
    parts = [("files", f"{i}.png", b"\0" * 10_000) for i in range(100)]
    body = _multipart(parts)
    chunks = [body[i : i + 10_000] for i in range(0, len(body), 10_000)]
    headers = [(b"content-type", b"multipart/form-data; boundary=XyZ"), (b"content-length", str(len(body)).encode())]
    state = _asgi(app, "POST", "/v1/detect", headers, chunks)
    assert state["status"] == 413 and "more than 3 files" in json.loads(state["body"])["detail"]
    assert state["read"] <= 6  # 100 chunks were offered: parsing stopped at the 4th part


def test_single_file_field_and_unknown_field(tmp_path: Path, pipeline: Any) -> None:
    client = TestClient(create_app(pipeline, _settings(tmp_path)))
    r = client.post("/v1/detect", files={"file": ("x.png", _png(2), "image/png")})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["status"] == "ok"
    r = client.post("/v1/detect", files={"image": ("x.png", _png(2), "image/png")})
    assert r.status_code == 400 and "'files'" in r.json()["detail"]
    r = client.post("/v1/detect", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 415


def test_a_file_part_without_a_filename_is_named_as_such(tmp_path: Path, pipeline: Any) -> None:
    """``curl -F 'file=<x.png'`` sends the bytes as a text field (no ``filename``): the answer says so and how to
    send a file, instead of a form-field size limit."""
    client = TestClient(create_app(pipeline, _settings(tmp_path)))
    for field in ("file", "files"):
        for data in (_png(2), b"tiny"):  # larger and smaller than the 64 KiB a text field may have
            r = client.post("/v1/detect", files={field: ("", data)})  # httpx leaves the filename out
            assert r.status_code == 400, r.text
            detail = r.json()["detail"]
            assert f"{field!r} has no filename" in detail and "text field" in detail and f"-F {field}=@x.png" in detail
    body = b'--XyZ\r\nContent-Disposition: form-data; name="file"\r\n\r\n' + _png(2) + b"\r\n--XyZ--\r\n"
    r = client.post("/v1/detect", content=body, headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert r.status_code == 400 and "no filename" in r.json()["detail"]
    r = client.post("/v1/explain", files={"file": ("", _png(2))})
    assert r.status_code == 400 and "no filename" in r.json()["detail"]
    # other text fields are still ignored, and a part with a filename is a file
    r = client.post("/v1/detect", data={"note": "hi"}, files={"file": ("x.png", _png(2), "image/png")})
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "ok"
    # so is a part with only an RFC 5987 filename* (clients send non-ASCII names so), decoded
    body = (
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''na%C3%AFve%20photo.png\r\n\r\n"
        + _png(2)
        + b"\r\n--XyZ--\r\n"
    )
    r = client.post("/v1/detect", content=body, headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["filename"] == "na\u00efve photo.png"


def test_oversize_file_in_a_batch_is_reported_per_item(tmp_path: Path, pipeline: Any) -> None:
    client = TestClient(create_app(pipeline, _settings(tmp_path, max_upload_bytes=30_000)))
    files = [("files", ("ok.png", _png(1), "image/png")), ("files", ("big.png", b"\0" * 40_000, "image/png"))]
    r = client.post("/v1/detect", files=files)
    assert r.status_code == 200
    ok, big = r.json()["results"]
    assert ok["status"] == "ok" and big["status"] == "error" and "upload limit" in big["error"]


# -- 14: jobs never leave their root -------------------------------------------------------------------------
def _wait(client: TestClient, job_id: str) -> dict:
    for _ in range(400):
        status = client.get(f"/v1/jobs/{job_id}").json()
        if status["status"] in ("finished", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_symlinks_out_of_the_root_are_refused_per_item_and_never_opened(
    tmp_path: Path, root: Path, pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(_png(7))
    (outside / "deep.png").write_bytes(_png(8))
    os.symlink(outside / "secret.png", root / "sub" / "link.png")  # file link leaving the root
    os.symlink(outside, root / "dirlink")  # folder link leaving the root
    os.symlink(root / "sub" / "0.png", root / "inside.png")  # link that stays inside: fine
    opened: list[str] = []
    real_scan = jobs_module.scan_paths

    def spy(inputs: Any, *a: Any, **kw: Any) -> Any:
        opened.extend(str(s) for s in inputs.files)  # every file the job's scan opens
        return real_scan(inputs, *a, **kw)

    monkeypatch.setattr(jobs_module, "scan_paths", spy)
    client = TestClient(create_app(pipeline, _settings(tmp_path, allow_root=root)))
    job = client.post("/v1/jobs", json={"paths": ["."]}).json()
    assert _wait(client, job["id"])["status"] == "finished"
    rows = {r["path"]: r for r in client.get(f"/v1/jobs/{job['id']}/results").json()["rows"]}
    assert set(rows) == {"sub/0.png", "sub/1.png", "sub/link.png", "inside.png"}  # dirlink is not followed
    assert rows["sub/link.png"]["status"] == "error" and rows["sub/link.png"]["p_fake"] is None
    assert "outside the allowed root" in rows["sub/link.png"]["error"]
    assert rows["inside.png"]["status"] == "ok"
    assert not any(str(outside) in p for p in opened)
    # the folder link named directly is refused as a whole
    assert client.post("/v1/jobs", json={"paths": ["dirlink"]}).status_code == 403


def test_results_have_no_absolute_server_paths(tmp_path: Path, root: Path, pipeline: Any) -> None:
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    client = TestClient(create_app(pipeline, _settings(tmp_path, allow_root=root)))
    job = client.post("/v1/jobs", json={"paths": [".", "missing.png", str(root / "sub")]}).json()
    _wait(client, job["id"])
    as_json = client.get(f"/v1/jobs/{job['id']}/results").text
    as_csv = client.get(f"/v1/jobs/{job['id']}/results?format=csv").text
    for text in (as_json, as_csv):
        assert str(tmp_path) not in text and str(root) not in text
    paths = [r["path"] for r in json.loads(as_json)["rows"]]
    assert "broken.jpg" in paths and "missing.png" in paths and paths.count("sub/0.png") == 2


def test_non_utf8_names_in_job_results(tmp_path: Path, root: Path, pipeline: Any) -> None:
    name = os.fsdecode(b"caf\xe9-=x.png")
    (root / name).write_bytes(_png(4))
    client = TestClient(create_app(pipeline, _settings(tmp_path, allow_root=root)))
    job = client.post("/v1/jobs", json={"paths": ["."]}).json()
    _wait(client, job["id"])
    rows = {r["path"]: r for r in client.get(f"/v1/jobs/{job['id']}/results").json()["rows"]}
    row = rows["caf\\xe9-=x.png"]
    assert row["status"] == "ok" and bytes.fromhex(row["path_bytes"]) == b"caf\xe9-=x.png"
    csv_text = client.get(f"/v1/jobs/{job['id']}/results?format=csv").text
    assert "caf\\xe9-=x.png" in csv_text


# -- 15: 4xx, never 500 ----------------------------------------------------------------------------------------
def test_non_ascii_token_and_nul_path_get_4xx(tmp_path: Path, root: Path, pipeline: Any) -> None:
    client = TestClient(create_app(pipeline, _settings(tmp_path, token="s3cret", allow_root=root)))
    for raw in ("Bearer ünïcode".encode(), b"Bearer \xff\xfe", "Bearer s3crét".encode()):
        r = client.get("/v1/models", headers={"Authorization": raw})
        assert r.status_code == 401, raw
    auth = {"Authorization": "Bearer s3cret"}
    r = client.post("/v1/jobs", json={"paths": ["sub/\x000.png"]}, headers=auth)
    assert r.status_code == 400 and "NUL" in r.json()["detail"]
    r = client.post(
        "/v1/jobs", content=b'{"paths": ["a\\u0000b"]}', headers={**auth, "content-type": "application/json"}
    )
    assert r.status_code == 400
    assert client.get("/v1/jobs/%00", headers=auth).status_code == 404


# -- 16: Host and origin ---------------------------------------------------------------------------------------
def _network_client(app: Any, base_url: str) -> TestClient:
    # a peer address other than the TestClient's own marker, so that the Host check applies as for uvicorn
    return TestClient(app, base_url=base_url, client=("127.0.0.1", 50000))


def test_host_header_is_checked_without_a_token(tmp_path: Path, pipeline: Any) -> None:
    app = create_app(pipeline, _settings(tmp_path, allowed_hosts=("gendetect.lan",)))
    for url in ("http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000", "http://gendetect.lan"):
        assert _network_client(app, url).get("/healthz").status_code == 200, url
    r = _network_client(app, "http://rebind.attacker.example:8000").get("/healthz")
    assert r.status_code == 400 and "--allowed-host" in r.json()["detail"]
    # with a token, any Host may be used (the token is what a rebinding page cannot send)
    with_token = create_app(pipeline, _settings(tmp_path, token="t"))
    assert _network_client(with_token, "http://any.example").get("/healthz").status_code == 200


def test_cross_origin_posts_are_refused_unless_allowed(tmp_path: Path, pipeline: Any) -> None:
    files = [("files", ("a.png", _png(1), "image/png"))]
    app = create_app(pipeline, _settings(tmp_path))
    client = _network_client(app, "http://127.0.0.1:8000")
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Referer": "http://evil.example/page.html"},
    ):
        r = client.post("/v1/detect", files=files, headers=headers)
        assert r.status_code == 403 and "cross-origin" in r.json()["detail"], headers
    assert client.get("/v1/models", headers={"Origin": "http://evil.example"}).status_code == 200  # reads are fine
    for headers in ({"Origin": "http://127.0.0.1:8000"}, {"Sec-Fetch-Site": "same-origin"}, {}):
        assert client.post("/v1/detect", files=files, headers=headers).status_code == 200, headers

    allowed = create_app(pipeline, _settings(tmp_path, cors_origins=("https://app.example",)))
    client = _network_client(allowed, "http://127.0.0.1:8000")
    r = client.post("/v1/detect", files=files, headers={"Origin": "https://app.example"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example"
    assert client.post("/v1/detect", files=files, headers={"Origin": "https://other.example"}).status_code == 403


def test_non_loopback_without_token_warns(tmp_path: Path, pipeline: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gendetect.server.app"):
        create_app(pipeline, _settings(tmp_path, bind_host="0.0.0.0"))
    assert any("without a token" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gendetect.server.app"):
        create_app(pipeline, _settings(tmp_path, bind_host="127.0.0.1"))
        create_app(pipeline, _settings(tmp_path, bind_host="0.0.0.0", token="t"))
    assert not any("without a token" in r.getMessage() for r in caplog.records)


def test_serve_banner_warns_and_passes_the_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn
    from click.testing import CliRunner

    from gendetect.cli import main

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setenv("GENDETECT_CACHE", str(tmp_path))
    args = ["serve", "--host", "0.0.0.0", "--allowed-host", "box.lan", "--cors-origin", "https://a.example"]
    result = CliRunner().invoke(main, [*args, "--max-jobs", "3", "--job-workers", "2"])
    assert result.exit_code == 0, result.output
    assert "WARNING" in result.output and "without a token" in result.output
    settings = seen["app"].state.settings
    assert settings.allowed_hosts == ("box.lan",) and settings.cors_origins == ("https://a.example",)
    assert settings.max_active_jobs == 3 and settings.job_workers == 2 and settings.bind_host == "0.0.0.0"


def test_host_and_origin_helpers() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    assert split_host("[::1]:8000") == "::1" and split_host("Example.COM:80") == "example.com"
    assert allowed_host_set("0.0.0.0") == {"localhost", "127.0.0.1", "::1"}
    assert "10.0.0.5" in allowed_host_set("10.0.0.5", ["box.lan:8000"]) and "box.lan" in allowed_host_set(
        None, ["box.lan:8000"]
    )
    assert normalise_origin("HTTPS://App.Example:443/") == "https://app.example"


# -- 17: persistent, bounded, evicted jobs ---------------------------------------------------------------------
def test_jobs_survive_a_restart_and_unfinished_ones_are_marked_failed(
    tmp_path: Path, root: Path, pipeline: Any
) -> None:
    settings = _settings(tmp_path, allow_root=root)
    client = TestClient(create_app(pipeline, settings))
    job = client.post("/v1/jobs", json={"paths": ["."]}).json()
    assert _wait(client, job["id"])["status"] == "finished"
    # a job a killed server left running
    store = ResultStore(settings.db_url)
    store.create_job("killed0000000000", 5, "v")
    store.set_job_status("killed0000000000", "running")
    store.append_job_rows("killed0000000000", 0, [{"path": "a.png", "status": "ok", "verdict": "real"}], counts={})

    restarted = TestClient(create_app(pipeline, settings))
    again = restarted.get(f"/v1/jobs/{job['id']}").json()
    assert again["status"] == "finished" and again["done"] == 2 and sum(again["counts"].values()) == 2
    assert len(restarted.get(f"/v1/jobs/{job['id']}/results").json()["rows"]) == 2
    killed = restarted.get("/v1/jobs/killed0000000000").json()
    assert killed["status"] == "failed" and "submit it again" in killed["error"]
    assert [r["path"] for r in restarted.get("/v1/jobs/killed0000000000/results").json()["rows"]] == ["a.png"]


def test_queue_limit_gives_429_and_the_pool_is_bounded(
    tmp_path: Path, root: Path, pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    running: list[str] = []
    real_scan = jobs_module.scan_paths

    def slow_scan(sources: Any, *a: Any, **kw: Any) -> Any:
        running.append(threading.current_thread().name)
        gate.wait(10)
        return real_scan(sources, *a, **kw)

    monkeypatch.setattr(jobs_module, "scan_paths", slow_scan)
    app = create_app(pipeline, _settings(tmp_path, allow_root=root, job_workers=1, max_active_jobs=2))
    client = TestClient(app)
    first = client.post("/v1/jobs", json={"paths": ["sub"]})
    second = client.post("/v1/jobs", json={"paths": ["sub"]})
    assert first.status_code == 202 and second.status_code == 202
    third = client.post("/v1/jobs", json={"paths": ["sub"]})
    assert third.status_code == 429 and third.headers["retry-after"]
    time.sleep(0.2)
    assert len(running) == 1 and client.get(f"/v1/jobs/{second.json()['id']}").json()["status"] == "queued"
    gate.set()
    assert _wait(client, first.json()["id"])["status"] == "finished"
    assert _wait(client, second.json()["id"])["status"] == "finished"
    assert client.post("/v1/jobs", json={"paths": ["sub"]}).status_code == 202  # room again
    app.state.jobs.shutdown()


def test_shutdown_marks_unfinished_jobs_failed(
    tmp_path: Path, root: Path, pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    real_scan = jobs_module.scan_paths

    def slow_scan(sources: Any, *a: Any, **kw: Any) -> Any:
        gate.wait(10)
        return real_scan(sources, *a, **kw)

    monkeypatch.setattr(jobs_module, "scan_paths", slow_scan)
    settings = _settings(tmp_path, allow_root=root, job_workers=1)
    with TestClient(create_app(pipeline, settings)) as client:  # the lifespan runs: shutdown at the end
        running = client.post("/v1/jobs", json={"paths": ["sub"]}).json()["id"]
        queued = client.post("/v1/jobs", json={"paths": ["sub"]}).json()["id"]
        threading.Timer(0.3, gate.set).start()
    store = ResultStore(settings.db_url)
    for job_id in (running, queued):
        job = store.get_job(job_id)
        assert job["status"] == "failed" and "shut down" in job["error"], job


def test_old_jobs_are_evicted(tmp_path: Path) -> None:
    import datetime as dt

    store = ResultStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    for i in range(5):
        store.create_job(f"job{i}", 1, "v")
        store.append_job_rows(f"job{i}", 0, [{"path": f"{i}.png"}], counts={"real": 1}, status="finished")
        time.sleep(0.01)
    store.create_job("active", 1, "v")  # never evicted
    assert store.evict_jobs(keep=2) == 3
    assert store.count_jobs() == 3 and store.get_job("job4") is not None and store.get_job("job0") is None
    assert list(store.iter_job_rows("job0")) == []
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    assert store.evict_jobs(older_than=future) == 2 and store.get_job("active") is not None


# -- 18: offline docs and documented responses -----------------------------------------------------------------
def test_docs_are_served_from_local_files(tmp_path: Path, pipeline: Any) -> None:
    client = TestClient(create_app(pipeline, _settings(tmp_path)))
    html = client.get("/docs").text
    assert "/static/docs/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    js = client.get("/static/docs/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert client.get("/static/docs/swagger-ui.css").status_code == 200


def test_openapi_documents_the_json(tmp_path: Path, pipeline: Any) -> None:
    spec = TestClient(create_app(pipeline, _settings(tmp_path))).get("/openapi.json").json()

    def schema(path: str, method: str, code: str = "200") -> str:
        content = spec["paths"][path][method]["responses"][code]["content"]["application/json"]["schema"]
        return json.dumps(content)

    assert "DetectResponse" in schema("/v1/detect", "post")
    assert "JobSummary" in schema("/v1/jobs", "post", "202") and "JobSummary" in schema("/v1/jobs/{job_id}", "get")
    assert "JobResults" in schema("/v1/jobs/{job_id}/results", "get")
    assert "ModelInfo" in schema("/v1/models", "get") and "Health" in schema("/healthz", "get")
    item = spec["components"]["schemas"]["DetectItem"]["properties"]
    assert {"p_fake", "verdict", "verdict_source", "findings", "sha256"} <= set(item)
    body = spec["paths"]["/v1/detect"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"files", "file"} <= set(body["properties"])


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.enable_socket
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it with apt-get)")
def test_docs_render_offline_in_a_browser(tmp_path: Path, pipeline: Any) -> None:
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    import uvicorn

    app = create_app(pipeline, _settings(tmp_path))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    outside: list[str] = []
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page()

            def only_local(route: Any) -> None:  # offline: every request that leaves 127.0.0.1 fails
                if route.request.url.startswith(f"http://127.0.0.1:{port}/"):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_local)
            page.goto(f"http://127.0.0.1:{port}/docs")
            page.wait_for_function("document.body.innerText.includes('DetectResponse')", timeout=15_000)
            text = page.inner_text("body")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert "/v1/jobs" in text and "DetectResponse" in text
    assert outside == []


# -- 19: CSV cells never start a formula -----------------------------------------------------------------------
def test_csv_escapes_formula_cells(tmp_path: Path, root: Path, pipeline: Any) -> None:
    for name in ("=HYPERLINK(1).png", "+x.png", "-x.png", "@x.png"):
        (root / name).write_bytes(_png(3))
    client = TestClient(create_app(pipeline, _settings(tmp_path, allow_root=root)))
    job = client.post("/v1/jobs", json={"paths": ["."]}).json()
    _wait(client, job["id"])
    import csv

    rows = list(csv.DictReader(io.StringIO(client.get(f"/v1/jobs/{job['id']}/results?format=csv").text)))
    paths = {r["path"] for r in rows}
    assert {"'=HYPERLINK(1).png", "'+x.png", "'-x.png", "'@x.png", "sub/0.png"} <= paths
    for r in rows:
        for v in r.values():
            assert not v.startswith(("=", "+", "-", "@")), (r, v)
    assert spreadsheet_safe("=1+1") == "'=1+1" and spreadsheet_safe(-0.5) == -0.5 and spreadsheet_safe("a=b") == "a=b"
