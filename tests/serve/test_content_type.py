"""A JSON body sent without a JSON content type (curl's ``-d`` sends a form type): the 422 says
which header is missing, and the body is still not read as JSON (a browser's plain form cannot
post a write)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def client(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app
    from kgrec.train import train
    from tests.conftest import tiny_config

    folder = tmp_path_factory.mktemp("serve_type") / "run"
    train(tiny_config(clustered_dataset, "train.max_epochs=1"), folder)
    copy = shutil.copytree(folder, folder.parent / "served", ignore=shutil.ignore_patterns("checkpoints", "logs"))
    return TestClient(create_app(Recommender.open(copy), token="t"), raise_server_exceptions=False)


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_body_without_a_json_type_is_told_which_header_to_send(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/recommend", content=b'{"user": "u1"}', headers=headers)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body"]  # FastAPI's list of errors, as the README says
    assert "Content-Type: application/json" in error["msg"], error
    assert (repr(content_type) if content_type else "without one") in error["msg"]


def test_a_write_without_a_json_type_is_refused_too(client):
    response = client.post("/items", content=b'{"items": []}', headers={"content-type": "text/plain",
                                                                        "Authorization": "Bearer t"})  # fmt: skip
    assert response.status_code == 422 and "Content-Type: application/json" in response.json()["detail"][0]["msg"]


def test_json_with_its_type_and_schema_errors_keep_fastapis_messages(client):
    assert client.post("/recommend", json={"user": "u1"}).status_code == 200
    assert client.post("/recommend", content=b'{"user": "u1"}',
                       headers={"content-type": "application/json; charset=utf-8"}).status_code == 200  # fmt: skip
    response = client.post("/recommend", json={"user": "u1", "k": "ten"})
    assert response.status_code == 422
    assert "Content-Type" not in response.text and response.json()["detail"][0]["loc"] == ["body", "k"]
