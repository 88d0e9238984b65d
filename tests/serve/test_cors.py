"""CORS, opt-in (`kgrec serve --cors-origin ORIGIN`): a browser page of another origin may call the
service only when its origin is named; without the option nothing changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kgrec.cli.main import main

PAGE = "https://app.example.com"
PREFLIGHT = {"Origin": PAGE, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}  # fmt: skip


@pytest.fixture(scope="module")
def served(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kgrec.train import train
    from tests.conftest import tiny_config

    folder = tmp_path_factory.mktemp("serve_cors") / "run"
    train(tiny_config(clustered_dataset, "train.max_epochs=1"), folder)
    return Path(shutil.copytree(folder, folder.parent / "served", ignore=shutil.ignore_patterns("checkpoints", "logs")))


def _client(run: Path, origins: list[str]):
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    return TestClient(create_app(Recommender.open(run), token="t", cors_origins=origins), raise_server_exceptions=False)


def test_a_named_origin_gets_the_cors_headers_and_others_do_not(served):
    client = _client(served, [PAGE])
    preflight = client.options("/recommend", headers=PREFLIGHT)
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == PAGE
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    answer = client.post("/recommend", json={"user": "u1", "k": 3}, headers={"Origin": PAGE})
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == PAGE
    other = client.post("/recommend", json={"user": "u1", "k": 3}, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    assert client.options("/recommend", headers={**PREFLIGHT, "Origin": "https://evil.example"}).status_code == 400


def test_without_the_option_there_are_no_cors_headers(served):
    client = _client(served, [])
    assert client.options("/recommend", headers=PREFLIGHT).status_code == 405
    answer = client.post("/recommend", json={"user": "u1", "k": 3}, headers={"Origin": PAGE})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("origin", ["app.example.com", "https://app.example.com/", "https://app.example.com/page"])
def test_an_origin_a_browser_never_sends_is_refused_before_serving(served, origin, capsys, monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: pytest.fail("uvicorn started"))
    assert main(["serve", str(served), "--cors-origin", origin]) == 2
    assert "expected scheme://host[:port]" in capsys.readouterr().err
