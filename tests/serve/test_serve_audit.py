"""What a client of ``kgrec serve`` sees, in process (TestClient): answers that keep the server's
paths and errors in its log."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def run(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kgrec.train import train
    from tests.conftest import tiny_config

    folder = tmp_path_factory.mktemp("serve_audit") / "run"
    train(tiny_config(clustered_dataset, "train.max_epochs=1"), folder)
    return folder


def _client(run: Path, tmp_path: Path):
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    copy = shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs"))
    rec = Recommender.open(copy)
    return TestClient(create_app(rec, token="t"), raise_server_exceptions=False), rec, copy


def test_a_failed_index_update_keeps_the_server_path_and_error_in_its_log(run, tmp_path, monkeypatch, capsys):
    client, rec, copy = _client(run, tmp_path)

    def fail(*args, **kwargs):
        raise OSError(f"disk full writing {copy}/index/secret.tmp")

    monkeypatch.setattr(type(rec.index), "add", fail)
    body = {"items": [{"item_id": "new", "title": "New"}], "links": [{"item_id": "new", "entity_id": "d0_0"}]}
    answers = [client.post("/items", json=body, headers={"Authorization": "Bearer t"}),
               client.post("/recommend", json={"user": "u1", "k": 3}), client.get("/health")]  # fmt: skip
    for response in answers:
        assert response.status_code == 503, response.text
        detail = response.json()["detail"]
        assert "kgrec index build RUN_DIR" in detail, detail  # the repair is still named
        assert str(copy) not in response.text and "disk full" not in response.text, response.text
    assert answers[2].json()["status"] == "index out of date"
    log = capsys.readouterr().err
    assert f"disk full writing {copy}" in log and f"kgrec index build {copy}" in log  # the operator's log has both
    assert log.count("the index is out of date") == 1  # once, not on every request and /health poll
    monkeypatch.undo()
    from kgrec.retrieval import Recommender

    Recommender.open(copy, rebuild=True)  # `kgrec index build RUN_DIR` in another process
    assert client.get("/health").status_code == 200  # taken up without a restart (it stayed 503)
    assert client.post("/recommend", json={"user": "u1", "k": 3}).status_code == 200
