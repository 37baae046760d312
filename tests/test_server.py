"""The HTTP API through FastAPI's test client: good, bad, oversized and corrupt uploads, auth, store, jobs."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from gendetect.data.synthetic import synthetic_image  # noqa: E402
from gendetect.pipeline import load_model  # noqa: E402
from gendetect.server.app import ServerSettings, create_app  # noqa: E402


def _png(seed: int = 0, size: int = 96) -> bytes:
    buf = io.BytesIO()
    synthetic_image("real" if seed % 2 else "fake", size, seed=seed).save(buf, "PNG")
    return buf.getvalue()


def _bomb() -> bytes:
    from tests.test_imageio import png_bomb

    return png_bomb()


@pytest.fixture()
def client(tmp_path: Path) -> TestClient:
    (tmp_path / "root" / "sub").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "root" / "sub" / f"{i}.png").write_bytes(_png(i))
    (tmp_path / "root" / "broken.jpg").write_bytes(b"nope")
    (tmp_path / "secret.png").write_bytes(_png(9))
    settings = ServerSettings(
        db_url=f"sqlite:///{tmp_path / 'results.sqlite'}",
        allow_root=tmp_path / "root",
        max_upload_bytes=200_000,
        max_batch=4,
    )
    return TestClient(create_app(None, settings))


def test_health_models_page_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    (model,) = client.get("/v1/models").json()
    assert model["id"] == load_model().name == "gendetect-default-v10" and 0 < model["threshold"] < 1
    card = model["card"]
    assert card["target_fpr"] == 0.01 and card["n_training_images"] == 930
    # what the page shows must come from the card the default-model script writes, not read as "unknown"
    assert card["trained_on"].startswith("453 real and 477 generated images from 15 generator families")
    assert "CC BY-NC-SA 4.0" in card["trained_on"]  # the non-commercial terms of CNNDetection's files (since v9)
    assert 0.5 < card["validation_mean_family_auc"] < 1 and 0 <= card["validation_worst_chain_fpr"] < 0.05
    assert {"flux1", "kolors", "sd1"} <= set(card["validation_groups"])
    assert all(0 <= g["auc"] <= 1 for g in card["validation_groups"].values())
    page = client.get("/")
    assert page.status_code == 200 and "Drop images here" in page.text
    assert "/v1/detect" in client.get("/openapi.json").json()["paths"]


def test_card_words_name_the_training_data_and_its_licences() -> None:
    from gendetect.server.app import _data_words

    training = {"images_per_family": {"real": 3, "sd1": 2, "kolors": 1}}
    assert _data_words(training).startswith("3 real and 3 generated images from 2 generator families")
    assert "licences" not in _data_words(training) and _data_words({}) is None
    training["licences_per_family"] = {"real": {"MIT": 2, "unknown": 1}, "sd1": {"Apache-2.0": 2}}
    words = _data_words(training)
    assert words.endswith("licences of the files: Apache-2.0, MIT") and "unknown" not in words


def test_detect_one_and_many(client: TestClient) -> None:
    r = client.post("/v1/detect", files=[("files", ("a.png", _png(1), "image/png"))])
    assert r.status_code == 200, r.text
    (item,) = r.json()["results"]
    assert item["status"] == "ok" and 0 <= item["p_fake"] <= 1 and item["verdict"] in ("real", "uncertain", "fake")
    assert len(item["sha256"]) == 64 and item["model"] == "gendetect-default-v10" and item["version"]
    assert item["cached"] is False

    files = [("files", (f"{i}.png", _png(i), "image/png")) for i in range(2)]
    files.append(("files", ("bad.jpg", b"not a jpeg", "image/jpeg")))
    r = client.post("/v1/detect", files=files)
    assert r.status_code == 200
    statuses = [x["status"] for x in r.json()["results"]]
    assert statuses == ["ok", "ok", "error"]
    assert "not an image" in r.json()["results"][2]["error"]


def test_second_upload_is_answered_from_the_store(client: TestClient) -> None:
    data = _png(5)
    first = client.post("/v1/detect", files=[("files", ("x.png", data, "image/png"))]).json()["results"][0]
    second = client.post("/v1/detect", files=[("files", ("y.png", data, "image/png"))]).json()["results"][0]
    assert first["cached"] is False and second["cached"] is True
    assert second["p_fake"] == pytest.approx(first["p_fake"]) and second["sha256"] == first["sha256"]
    assert client.app.state.store.count() == 1


def _jpeg(seed: int = 0, size: int = 256, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    synthetic_image("real", size, seed=seed).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _a1111_png(seed: int = 0) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 128x128")
    buf = io.BytesIO()
    synthetic_image("real", 128, seed=seed).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _detect(client: TestClient, name: str, data: bytes) -> dict:
    r = client.post("/v1/detect", files=[("files", (name, data, "application/octet-stream"))])
    assert r.status_code == 200, r.text
    return r.json()["results"][0]


def test_a_stored_answer_has_the_fields_of_a_fresh_one(client: TestClient) -> None:
    for data in (_jpeg(7), _a1111_png(8)):
        first, second = _detect(client, "x.jpg", data), _detect(client, "again.jpg", data)
        assert first["cached"] is False and second["cached"] is True
        assert list(second) == list(first)  # the same keys, in the same order
        assert {**second, "cached": False, "filename": "x.jpg"} == first
    jpeg = _detect(client, "x.jpg", _jpeg(7))
    assert jpeg["mode"] == "RGB" and jpeg["jpeg_quality"] == 90 and jpeg["tiles"] >= jpeg["signal_tiles"] > 0
    # the evidence is read again from the upload: the metadata still decides, over the stored pixel verdict
    png = _detect(client, "y.png", _a1111_png(8))
    assert png["cached"] is True and png["verdict"] == "fake" and png["verdict_source"] == "metadata"
    assert png["pixel_verdict"] in ("real", "uncertain", "fake") and png["findings"]


def test_the_pixel_limit_applies_to_answers_from_the_store(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'results.sqlite'}"
    data = _jpeg(3, size=256)  # 65,536 pixels
    assert _detect(TestClient(create_app(None, ServerSettings(db_url=db))), "a.jpg", data)["status"] == "ok"
    strict = TestClient(create_app(None, ServerSettings(db_url=db, max_pixels=50_000)))
    fresh = TestClient(
        create_app(None, ServerSettings(db_url=f"sqlite:///{tmp_path / 'new.sqlite'}", max_pixels=50_000))
    )
    for c in (strict, fresh):
        r = c.post("/v1/detect", files=[("files", ("a.jpg", data, "image/jpeg"))])
        assert r.status_code == 422 and "above the limit" in r.json()["detail"], r.text
    refused = [
        c.post(
            "/v1/detect",
            files=[("files", (n, d, "image/jpeg")) for n, d in (("a.jpg", data), ("b.jpg", _jpeg(4, 128)))],
        ).json()["results"]
        for c in (strict, fresh)
    ]
    assert refused[0] == refused[1]  # per item in a batch: the same error as a server that never saw the image
    assert refused[0][0]["status"] == "error" and refused[0][1]["status"] == "ok"
    # under a limit that lets it through, the stored answer is used again
    assert _detect(TestClient(create_app(None, ServerSettings(db_url=db))), "a.jpg", data)["cached"] is True


def test_an_older_store_is_opened_and_its_uploads_are_scored_again(tmp_path: Path) -> None:
    """A store written before the pixel rows were kept (a "results" table of five fields) still opens; an upload
    it holds is scored once more, so that the answer has every field, and is stored in full from then on."""
    import sqlite3

    path = tmp_path / "old.sqlite"
    data = _jpeg(5)
    version = load_model().version
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE results (sha256 VARCHAR(64) NOT NULL, model_version VARCHAR(128) NOT NULL, p_fake FLOAT "
            "NOT NULL, verdict VARCHAR(16) NOT NULL, threshold FLOAT NOT NULL, format VARCHAR(16), width INTEGER, "
            "height INTEGER, filename VARCHAR(512), created DATETIME NOT NULL, PRIMARY KEY (sha256, model_version))"
        )
        db.execute(
            "INSERT INTO results VALUES (?, ?, 0.5, 'uncertain', 0.5, 'JPEG', 256, 256, 'old.jpg', '2024-01-01')",
            (hashlib.sha256(data).hexdigest(), version),
        )
    client = TestClient(create_app(None, ServerSettings(db_url=f"sqlite:///{path}")))
    first, second = _detect(client, "x.jpg", data), _detect(client, "x.jpg", data)
    assert first["cached"] is False and first["jpeg_quality"] == 90 and "tiles" in first
    assert second["cached"] is True and {**second, "cached": False} == first
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM results").fetchone() == (1,)  # left as it was


@pytest.mark.parametrize(
    "name,data,status,words",
    [
        ("corrupt.jpg", b"\xff\xd8\xff\xe0 broken", 422, "corrupt"),
        ("text.png", b"hello", 422, "not an image"),
        ("empty.png", b"", 400, "empty"),
        ("big.png", b"\0" * 300_000, 413, "upload limit"),
        ("bomb.png", None, 422, "limit"),
    ],
)
def test_bad_single_uploads_get_4xx_with_reason(
    client: TestClient, name: str, data: bytes | None, status: int, words: str
) -> None:
    r = client.post("/v1/detect", files=[("files", (name, _bomb() if data is None else data, "image/png"))])
    assert r.status_code == status, r.text
    assert words in r.json()["detail"] and name in r.json()["detail"]


def test_too_many_files_and_no_files(client: TestClient) -> None:
    files = [("files", (f"{i}.png", _png(i), "image/png")) for i in range(5)]
    assert client.post("/v1/detect", files=files).status_code == 413
    assert client.post("/v1/detect").status_code == 422  # FastAPI: required field missing


def test_unusual_modes_are_scored(client: TestClient) -> None:
    buf = io.BytesIO()
    Image.open(io.BytesIO(_png(3))).convert("CMYK").save(buf, "JPEG", quality=95)
    r = client.post("/v1/detect", files=[("files", ("cmyk.jpg", buf.getvalue(), "image/jpeg"))])
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "ok"


def test_token(tmp_path: Path) -> None:
    app = create_app(None, ServerSettings(token="s3cret", db_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    client = TestClient(app)
    files = [("files", ("a.png", _png(1), "image/png"))]
    assert client.get("/healthz").status_code == 200  # health stays open
    assert client.get("/v1/models").status_code == 401
    assert client.post("/v1/detect", files=files, headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.post("/v1/detect", files=files, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200


def _wait(client: TestClient, job_id: str) -> dict:
    for _ in range(200):
        status = client.get(f"/v1/jobs/{job_id}").json()
        if status["status"] in ("finished", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_job_progress_and_results(client: TestClient) -> None:
    r = client.post("/v1/jobs", json={"paths": ["."]})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["total"] == 4
    status = _wait(client, job["id"])
    assert status["status"] == "finished" and status["done"] == 4
    assert sum(status["counts"].values()) == 4 and status["counts"]["error"] == 1
    rows = client.get(f"/v1/jobs/{job['id']}/results").json()["rows"]
    assert len(rows) == 4
    csv_text = client.get(f"/v1/jobs/{job['id']}/results?format=csv").text
    assert csv_text.splitlines()[0].startswith("path,") and len(csv_text.splitlines()) == 5
    assert client.get("/v1/jobs/nope").status_code == 404


@pytest.mark.parametrize("path", ["../secret.png", "/etc/passwd", "sub/../../secret.png"])
def test_job_paths_are_confined_to_the_root(client: TestClient, path: str) -> None:
    r = client.post("/v1/jobs", json={"paths": [path]})
    assert r.status_code == 403 and "outside the allowed root" in r.json()["detail"]


def test_jobs_disabled_without_root(tmp_path: Path) -> None:
    client = TestClient(create_app(None, ServerSettings(db_url=f"sqlite:///{tmp_path / 'db.sqlite'}")))
    r = client.post("/v1/jobs", json={"paths": ["."]})
    assert r.status_code == 403 and "--allow-root" in r.json()["detail"]
