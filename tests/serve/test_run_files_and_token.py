"""Edge cases of ``kgrec serve`` in process (TestClient): the run folder deleted while serving,
tokens with spaces around them or beyond ASCII, a port out of range."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def run(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kgrec.train import train
    from tests.conftest import tiny_config

    folder = tmp_path_factory.mktemp("serve_edge") / "run"
    train(tiny_config(clustered_dataset, "train.max_epochs=1"), folder)
    return folder


def _client(run: Path, tmp_path: Path, token: str | None = "t"):
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    copy = shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs"))
    return TestClient(create_app(Recommender.open(copy), token=token), raise_server_exceptions=False), copy


def test_a_run_folder_deleted_while_serving_answers_503_not_500(run, tmp_path):
    auth = {"Authorization": "Bearer t"}
    client, copy = _client(run, tmp_path)
    assert client.delete("/items/i1", headers=auth).status_code == 200  # the run now has a catalog of changes
    shutil.rmtree(copy)
    for response in (client.get("/health"), client.post("/recommend", json={"user": "u1"}), client.get("/items/i2"),
                     client.delete("/items/i2", headers=auth)):  # fmt: skip
        assert response.status_code == 503 and "cannot be read" in response.json()["detail"], response.text
        assert str(tmp_path) not in response.text  # the server's paths stay in its log
    assert client.get("/health").json()["status"] == "catalog unreadable"

    client, copy = _client(run, tmp_path / "unchanged")  # no change saved: reads go on from memory, writes cannot
    shutil.rmtree(copy)
    assert client.post("/recommend", json={"user": "u1", "k": 3}).status_code == 200
    response = client.delete("/items/i2", headers=auth)
    assert response.status_code == 503 and "run's files cannot be read or written" in response.json()["detail"], response.text
    assert str(tmp_path) not in response.text


@pytest.mark.parametrize(
    ("token", "sent", "status"),
    [
        ("t\n", b"Bearer t", 200),  # a token read from a file or a secret, its line break kept
        ("  t ", b"Bearer t", 200),
        ("p\u00e4ssw\u00f6rd", "Bearer p\u00e4ssw\u00f6rd".encode(), 200),  # a UTF-8 token, sent as curl sends it
        (" \n", b"Bearer x", 403),  # a blank token is none
    ],
)
def test_the_token_is_what_a_client_can_send(run, tmp_path, token, sent, status):
    client, _ = _client(run, tmp_path, token=token)
    response = client.delete("/items/i1", headers={"Authorization": sent})
    assert response.status_code == status, response.text


@pytest.mark.parametrize("port", ["0", "70000", "-1"])
def test_a_port_out_of_range_stops_serve_before_it_loads(run, monkeypatch, capsys, port):
    import uvicorn

    from kgrec.cli.main import main

    ports = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: ports.append(kwargs["port"]))
    assert main(["serve", str(run), "--no-warm-up", "--port", port]) == 2  # 70000 served on 4464, saying 70000
    assert ports == [] and f"--port must be from 1 to 65535, got {port}" in capsys.readouterr().err
