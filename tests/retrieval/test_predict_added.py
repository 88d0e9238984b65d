"""The rating and like towers score items added after training (``predict`` on an added item
was refused), and a run without the retrieval tower takes added items for ``predict`` (its
``add_items`` was refused): the catalog keeps each added item's fused vector."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from kgrec.cli.main import main
from kgrec.errors import RetrievalError


def _train(data: Path, out: Path, *overrides: str) -> Path:
    from kgrec.train import train
    from tests.conftest import tiny_config

    train(tiny_config(data, "train.max_epochs=2", *overrides), out)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return out


@pytest.fixture(scope="module")
def content_run(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory, text_home: None) -> Path:
    """Items seen through their text alone (no item ID, no graph, no item bias, no AutoRec), the
    like tower with its text affinity: a trained item and a copy of its row added after training
    must get the same answers from every tower."""
    return _train(
        clustered_dataset, tmp_path_factory.mktemp("runs") / "content", "model.tasks=[retrieval, rating, like]",
        "model.use_text=true", "model.use_graph=false", "model.use_item_id=false", "model.id_dropout=0",
        "model.tower_biases=false", "model.rating_autorec_units=0", "model.user_encoder=id+history",
        "model.like_text_affinity=true",
    )  # fmt: skip


@pytest.fixture(scope="module")
def towers_run(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory, text_home: None) -> Path:
    """The rating and like towers alone (no retrieval tower), with text and graph."""
    return _train(clustered_dataset, tmp_path_factory.mktemp("runs") / "towers", "model.tasks=[rating, like]",
                  "model.use_text=true")  # fmt: skip


def _copy_rows(data: Path, items: dict[str, str], path: Path) -> Path:
    """A .item file with the rows of the dataset's ``items`` (old id -> new id) under new ids."""
    lines = (data / "clusters.item").read_text().splitlines()
    rows = {line.split("\t")[0]: line for line in lines[1:]}
    path.write_text("\n".join([lines[0], *(new + rows[old][len(old):] for old, new in items.items())]) + "\n")
    return path


def test_an_added_copy_of_a_trained_item_gets_its_rating_like_and_score(
    content_run: Path, clustered_dataset: Path, tmp_path: Path
):
    from kgrec.retrieval import Recommender

    run = Path(shutil.copytree(content_run, tmp_path / "run"))
    rec = Recommender.open(run)
    rec.add_items(_copy_rows(clustered_dataset, {"i3": "copy3", "i8": "copy8"}, tmp_path / "new.item"))
    for user in ("u0", "u3", "u5"):  # u3 has i3's cluster, u0 i8's
        original = rec.predict(user, ["i3", "i8"])
        copied = rec.predict(user, ["copy3", "copy8"])
        for a, b in zip(original, copied, strict=True):
            assert b.rating == pytest.approx(a.rating, rel=1e-4)
            assert b.like == pytest.approx(a.like, rel=1e-4)
            assert b.score == pytest.approx(a.score, rel=1e-4, abs=1e-5)
    pairs = rec.predict_pairs(["u0", "u3", "u3"], ["copy8", "i3", "copy3"])  # trained and added, mixed
    assert [p.item_id for p in pairs] == ["copy8", "i3", "copy3"]
    assert pairs[1].like == pytest.approx(pairs[2].like, rel=1e-4)
    again = Recommender.open(run).predict("u3", ["copy3"])[0]  # the fused vectors were saved with the catalog
    assert again.like == pytest.approx(rec.predict("u3", ["copy3"])[0].like, rel=1e-6)
    from kgrec.retrieval.catalog import AddedItem

    c = rec.catalog  # an item added without a text vector (a row without the template's columns, graph pathway)
    rec.catalog = c.with_added([AddedItem("bare", "Bare", {})], c.vectors[-1:], None, None, c.added_fused[-1:])
    with pytest.raises(RetrievalError, match="'bare' has no text vector .* the like tower reads the text affinity"):
        rec.predict("u3", ["bare"])


def test_a_run_without_the_retrieval_tower_adds_items_for_predict(
    towers_run: Path, clustered_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from kgrec.retrieval import Recommender

    run = Path(shutil.copytree(towers_run, tmp_path / "run"))
    new = tmp_path / "new.item"
    new.write_text("item_id:token\ttitle:token\tclass:token_seq\nn1\tFilm New\tComedy\nn2\tFilm Other\tHorror\n")
    assert main(["add-items", str(run), "--items", str(new)]) == 0
    assert "added 2 items" in capsys.readouterr().out and not (run / "index").exists()
    assert main(["predict", str(run), "--user", "u0", "--items", "n1", "i0", "--json"]) == 0
    import json

    found = json.loads(capsys.readouterr().out)
    assert [p["item_id"] for p in found] == ["n1", "i0"]
    for p in found:
        assert 1.0 <= p["rating"] <= 5.0 and 0.0 < p["like"] < 1.0 and p["score"] is None
    rec = Recommender.open(run)
    assert rec.predict_only is not None and rec.index is None
    likes = [p.like for p in rec.predict("u0", ["n1", "n2"])]
    assert likes[0] != likes[1]  # two texts, two answers
    assert rec.remove_items(["n2"]) == ["n2"]
    with pytest.raises(RetrievalError, match="n2"):
        Recommender.open(run).predict("u0", ["n2"])


def test_items_added_before_fused_vectors_were_kept_are_refused_by_name(
    towers_run: Path, tmp_path: Path
):
    from safetensors.numpy import load_file, save_file

    from kgrec.retrieval import Recommender

    run = Path(shutil.copytree(towers_run, tmp_path / "run"))
    new = tmp_path / "new.item"
    new.write_text("item_id:token\ttitle:token\tclass:token_seq\nn1\tFilm New\tComedy\n")
    Recommender.open(run).add_items(new)
    stored = run / "catalog" / "added.safetensors"
    tensors = load_file(str(stored))
    assert tensors["fused"].shape == (1, 16) and np.isfinite(tensors["fused"]).all()
    save_file({k: v for k, v in tensors.items() if k != "fused"}, str(stored))  # as an older kgrec saved it
    rec = Recommender.open(run)
    with pytest.raises(RetrievalError, match="'n1' was added before the catalog kept the vectors"):
        rec.predict("u0", ["i0", "n1"])
    assert rec.predict("u0", ["i0"])[0].like is not None  # trained items as before
