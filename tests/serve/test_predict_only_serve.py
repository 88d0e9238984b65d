"""The service over a run trained without the retrieval tower (``model.tasks=[rating, like]``):
``POST /predict`` answers (``score`` null), the other queries answer 409 saying why, ``GET
/health`` names them as unavailable; items are added and removed for ``/predict`` (no index). The server refused to start on such a run
(``Recommender.open``: no vectors.safetensors)."""

from __future__ import annotations

from pathlib import Path

import pytest

TOKEN = "t0ken"


@pytest.fixture(scope="module")
def predict_only(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    import torch
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app
    from kgrec.train import train
    from tests.conftest import tiny_config

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = tmp_path_factory.mktemp("serve") / "rating-like"
        train(tiny_config(clustered_dataset, "train.max_epochs=2", "model.tasks=[rating, like]"), run)
        recommender = Recommender.open(run)  # as kgrec serve opens it
        client = TestClient(create_app(recommender, token=TOKEN, warmed=recommender.warm_up()),
                            raise_server_exceptions=False)  # fmt: skip
        yield client, run
    finally:
        torch.set_num_threads(threads)


def test_predict_answers_with_a_null_retrieval_score(predict_only):
    from kgrec.retrieval import Recommender
    from kgrec.serve.app import Predictions

    client, run = predict_only
    response = client.post("/predict", json={"user": "u1", "items": ["i5", "i0"]})
    assert response.status_code == 200, response.text
    Predictions.model_validate_json(response.text, strict=True)  # the schema declares score nullable
    predictions = response.json()["predictions"]
    assert predictions == [p.to_dict() for p in Recommender.open(run).predict("u1", ["i5", "i0"])]
    assert all(p["score"] is None and 0 < p["like"] < 1 and 1 <= p["rating"] <= 5 for p in predictions)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/recommend", {"user": "u1"}),
        ("POST", "/recommend", {"liked": ["i1"]}),
        ("POST", "/similar", {"item": "i1"}),
        ("POST", "/search", {"text": "comedy"}),
    ],
)
def test_the_other_queries_answer_409_saying_the_run_answers_predict_only(predict_only, method, path, body):
    client, run = predict_only
    response = client.request(method, path, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 409, response.text
    assert response.json() == {"detail": "this run was trained without the retrieval tower (model.tasks=[rating, like]), "
                                         "so it answers predict only; retrain with 'retrieval' in model.tasks to "
                                         "recommend, find similar items or search"}  # fmt: skip
    assert not (run / "index").exists() and not (run / "catalog").exists()


def test_health_is_ok_and_names_the_kinds_it_does_not_answer(predict_only):
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    client, run = predict_only
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["items"] == 60 and health["users"] == 40
    assert set(health["unavailable"]) == {"recommend", "similar", "new user"}
    assert health["predict_only"].startswith("this run was trained without the retrieval tower (model.tasks=[rating, like])")
    no_warm_up = TestClient(create_app(Recommender.open(run)))  # the reason does not wait for a warm-up
    assert no_warm_up.get("/health").json()["predict_only"] == health["predict_only"]
    assert client.get("/items/i1").json()["title"] == "Film 1"


def test_items_are_added_for_predict_and_removed(predict_only, tmp_path: Path):
    import shutil

    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    _, run = predict_only
    copy = Path(shutil.copytree(run, tmp_path / "run"))
    client = TestClient(create_app(Recommender.open(copy), token=TOKEN), raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = {"items": [{"item_id": "n1", "title": "New film"}], "links": [{"item_id": "n1", "entity_id": "d0_0"}]}
    response = client.post("/items", json=body, headers=auth)  # was 409: predict only
    assert response.status_code == 201, response.text
    [answer] = client.post("/predict", json={"user": "u1", "items": ["n1"]}).json()["predictions"]
    assert 1 <= answer["rating"] <= 5 and 0 < answer["like"] < 1 and answer["score"] is None
    assert client.delete("/items/n1", headers=auth).status_code == 200
    assert client.post("/predict", json={"user": "u1", "items": ["n1"]}).status_code == 404
    assert not (copy / "index").exists()
