"""Audit of the rating and like towers' answers for items added after training: a run with no
tower to score them (``model.tasks=[kg]``) takes them as any run without the retrieval tower
does, and the refusals of an added item the towers cannot score give advice that works (a
removed id is not taken again) in the words of the caller (``DELETE /items/ID`` over HTTP)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kgrec.errors import RetrievalError

TOKEN = "audit-token"


def _train(data: Path, out: Path, *overrides: str) -> Path:
    from kgrec.train import train
    from tests.conftest import tiny_config

    train(tiny_config(data, "train.max_epochs=1", *overrides), out)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return out


@pytest.fixture(scope="module")
def kg_run(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The KG task alone: no retrieval vectors, no rating or like tower (no fused vectors kept)."""
    return _train(clustered_dataset, tmp_path_factory.mktemp("runs") / "kg", "model.tasks=[kg]")


@pytest.fixture(scope="module")
def affinity_run(
    clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory, tiny_models: tuple[str, str], text_home: None
) -> Path:
    """The rating and like towers alone, with text (a tiny BERT), graph and the like tower's text affinity."""
    return _train(
        clustered_dataset, tmp_path_factory.mktemp("runs") / "affinity", "model.tasks=[rating, like]",
        "model.use_text=true", f"text.model={tiny_models[0]}", "model.user_encoder=id+history",
        "model.like_text_affinity=true",
    )  # fmt: skip


def _new_items(path: Path, *ids: str, header: str = "item_id:token\ttitle:token\tclass:token_seq") -> Path:
    columns = header.count("\t") + 1
    rows = ["\t".join([item, f"Film {item}", "Comedy"][:columns]) for item in ids]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _links(path: Path, *ids: str) -> Path:
    path.write_text("\n".join(["item_id:token\tentity_id:token", *(f"{item}\td0_0" for item in ids)]) + "\n")
    return path


def _drop_fused(run: Path) -> None:
    """``added.safetensors`` as a kgrec that kept no fused vectors saved it."""
    from safetensors.numpy import load_file, save_file

    stored = run / "catalog" / "added.safetensors"
    save_file({k: v for k, v in load_file(str(stored)).items() if k != "fused"}, str(stored))


def test_a_run_with_no_tower_to_score_added_items_adds_them_for_predict(kg_run: Path, tmp_path: Path):
    from kgrec.retrieval import Recommender

    run = Path(shutil.copytree(kg_run, tmp_path / "run"))
    rec = Recommender.open(run)
    assert rec.add_items(_new_items(tmp_path / "new.item", "n1"), _links(tmp_path / "new.link", "n1")) == ["n1"]
    added, trained = Recommender.open(run).predict("u0", ["n1", "i0"])  # was: ValueError, cannot reshape (1, 16) to (1, 0)
    assert (added.item_id, added.rating, added.like, added.score) == ("n1", None, None, None)
    assert (trained.rating, trained.like, trained.score) == (None, None, None)


def test_the_refusal_of_an_item_added_without_fused_vectors_advises_a_new_id(affinity_run: Path, tmp_path: Path):
    from kgrec.retrieval import Recommender

    run = Path(shutil.copytree(affinity_run, tmp_path / "run"))
    Recommender.open(run).add_items(_new_items(tmp_path / "new.item", "n1"))
    _drop_fused(run)
    rec = Recommender.open(run)
    with pytest.raises(RetrievalError, match="'n1' was added before .* add it again under a new id"):
        rec.predict("u0", ["n1"])
    rec.remove_items(["n1"])  # the advice, followed: the same id is not taken again
    with pytest.raises(RetrievalError, match="'n1' was removed; add it under a new id"):
        rec.add_items(_new_items(tmp_path / "again.item", "n1"))
    rec.add_items(_new_items(tmp_path / "renamed.item", "n1b"))
    assert 0.0 < rec.predict("u0", ["n1b"])[0].like < 1.0


def test_the_refusal_of_an_added_item_without_text_advises_a_new_id(affinity_run: Path, tmp_path: Path):
    from kgrec.retrieval import Recommender

    run = Path(shutil.copytree(affinity_run, tmp_path / "run"))
    rec = Recommender.open(run)
    bare = _new_items(tmp_path / "bare.item", "n1", header="item_id:token")  # no column the text template reads
    rec.add_items(bare, _links(tmp_path / "bare.link", "n1"), pathways=["graph"])
    with pytest.raises(RetrievalError, match="'n1' has no text vector .* add it again with its text under a new id"):
        rec.predict("u0", ["n1"])


def test_over_http_the_refusal_names_the_request_not_the_command(affinity_run: Path, tmp_path: Path):
    from fastapi.testclient import TestClient

    from kgrec.retrieval import Recommender
    from kgrec.serve.app import create_app

    run = Path(shutil.copytree(affinity_run, tmp_path / "run"))
    Recommender.open(run).add_items(_new_items(tmp_path / "new.item", "n1"))
    _drop_fused(run)
    client = TestClient(create_app(Recommender.open(run), token=TOKEN), raise_server_exceptions=False)
    response = client.post("/predict", json={"user": "u0", "items": ["n1"]})
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert "DELETE /items/ID" in detail and "kgrec" not in detail
