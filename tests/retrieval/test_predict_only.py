"""Predict only: a run trained without the retrieval tower (``model.tasks=[rating]``) opens and
answers ``predict`` (Python and ``kgrec predict``), every query that searches says why it cannot;
``kgrec predict`` and ``Recommender.open(run, predict_only=True)`` read, build and save no index.
Each was refused: ``Recommender.open`` raised "no vectors.safetensors" on such a run, and
``kgrec predict`` built and saved ``RUN_DIR/index`` it never used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kgrec.cli.main import main

TRAINED_WITHOUT = "trained without the retrieval tower (model.tasks=[rating])"


def _train(data: Path, out: Path, *overrides: str) -> Path:
    from kgrec.train import train
    from tests.conftest import tiny_config

    train(tiny_config(data, "train.max_epochs=2", *overrides), out)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return out


@pytest.fixture(scope="module")
def rating_run(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only run of the rating tower alone: no vectors.safetensors."""
    return _train(clustered_dataset, tmp_path_factory.mktemp("runs") / "rating", "model.tasks=[rating]")


@pytest.fixture(scope="module")
def full_run(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with the retrieval tower (and the rating and like towers), no index saved yet; tests copy it."""
    return _train(clustered_dataset, tmp_path_factory.mktemp("runs") / "full", "train.max_epochs=1", "model.tasks=[retrieval, rating, like]")


@pytest.fixture
def full_copy(full_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(full_run, tmp_path / "full"))


def _files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*"))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_run_without_the_retrieval_tower_opens_and_predicts(rating_run: Path):
    from kgrec.retrieval import Recommender

    before = _files(rating_run)
    rec = Recommender.open(rating_run)  # raised: no vectors.safetensors, so nothing to search
    assert TRAINED_WITHOUT in rec.predict_only and rec.index is None
    predictions = rec.predict("u1", ["i5", "Film 2"])
    assert [p.item_id for p in predictions] == ["i5", "i2"]
    for p in predictions:
        assert 1.0 <= p.rating <= 5.0 and p.like is None and p.score is None  # no like tower, no retrieval tower
        assert p.to_dict() == {"item_id": p.item_id, "title": p.title, "rating": round(p.rating, 6), "like": None,
                               "score": None}  # fmt: skip
    assert _files(rating_run) == before  # no index, no catalog written


def test_every_query_that_searches_says_the_run_answers_predict_only(rating_run: Path, tmp_path: Path):
    from kgrec.errors import PredictOnlyError, RetrievalError
    from kgrec.retrieval import Recommender

    rec = Recommender.open(rating_run)
    before = _files(rating_run)
    queries = {
        "recommend": lambda: rec.recommend("u1", 3),
        "recommend_batch": lambda: rec.recommend_batch(["u1", "u2"], 3),
        "similar": lambda: rec.similar("i1", 3),
        "search": lambda: rec.search("comedy", 3),
        "new user": lambda: rec.recommend_for_new_user(liked=["i1"], k=3),
        "new user vector": lambda: rec.new_user_vector(liked=["i1"]),
        "build_index": lambda: rec.build_index(),
    }
    for name, query in queries.items():
        with pytest.raises(PredictOnlyError) as raised:
            query()
        message = str(raised.value)
        assert isinstance(raised.value, RetrievalError), name
        assert TRAINED_WITHOUT in message and "answers predict only" in message, (name, message)
        assert "retrain with 'retrieval' in model.tasks" in message, (name, message)
    with pytest.raises(PredictOnlyError, match="answers predict only"):
        Recommender.open(rating_run, rebuild=True)  # kgrec index build
    assert rec.predict("u1", ["i1"])[0].rating is not None  # still answers
    assert _files(rating_run) == before


def test_the_warm_up_of_a_predict_only_run_answers_predict_and_names_the_others(rating_run: Path):
    from kgrec.retrieval import Recommender

    warmed = Recommender.open(rating_run).warm_up()
    assert list(warmed.seconds) == ["predict"]
    assert set(warmed.errors) == {"recommend", "similar", "new user"}  # what GET /health lists as unavailable
    [why] = set(warmed.errors.values())
    assert TRAINED_WITHOUT in why and "answers predict only" in why
    assert str(warmed).endswith(f"; recommend, similar, new user failed: {why}")  # kgrec serve's line: the reason once


def test_predict_only_opens_no_index_and_scores_as_the_full_recommender(full_copy: Path):
    from kgrec.errors import PredictOnlyError
    from kgrec.retrieval import Recommender

    rec = Recommender.open(full_copy, predict_only=True)
    assert rec.index is None and "predict_only=True" in rec.predict_only
    assert not (full_copy / "index").exists()  # none read, built or saved
    predicted = rec.predict("u1", ["i5", "i0"])
    with pytest.raises(PredictOnlyError, match="opened with predict_only=True"):
        rec.recommend("u1", 3)
    full = Recommender.open(full_copy)  # builds and saves the index
    assert full.predict_only is None and (full_copy / "index").is_dir()
    assert [p.to_dict() for p in predicted] == [p.to_dict() for p in full.predict("u1", ["i5", "i0"])]
    assert all(p.score is not None for p in predicted)


def test_a_predict_only_recommender_takes_up_catalog_changes_without_an_index(full_copy: Path):
    from kgrec.retrieval import Recommender

    rec = Recommender.open(full_copy, predict_only=True)
    Recommender.open(full_copy).remove_items(["i3"])  # another process changes the catalog
    assert rec.refresh() and not rec.catalog.active[rec.catalog.position("i3", allow_removed=True)]
    assert rec.index is None  # the catalog alone: no index built for it


def test_kgrec_predict_on_a_run_without_the_retrieval_tower(rating_run: Path, capsys):
    from kgrec.retrieval import Recommender

    expected = Recommender.open(rating_run).predict("u1", ["i5", "i0"])
    code, out, err = run_cli(capsys, "predict", rating_run, "--user", "u1", "--items", "i5", "i0", "--json")
    assert code == 0, err  # was: kgrec: error: ... no vectors.safetensors, so nothing to search
    assert json.loads(out) == [p.to_dict() for p in expected]
    assert all(row["score"] is None and row["like"] is None for row in json.loads(out))
    code, out, _ = run_cli(capsys, "predict", rating_run, "--user", "u1", "--items", "i5", "i0")
    assert code == 0 and out.splitlines() == [
        f"{p.title}  [{p.item_id}]  rating {p.rating:.2f}  like -  score -" for p in expected
    ]
    assert not (rating_run / "index").exists()


def test_kgrec_predict_builds_no_index(full_copy: Path, capsys):
    code, out, err = run_cli(capsys, "predict", full_copy, "--user", "u1", "--items", "i5", "i0", "--json")
    assert code == 0, err
    assert not (full_copy / "index").exists()  # was: built and saved, though predict never searches it
    assert [row["item_id"] for row in json.loads(out)] == ["i5", "i0"]
    assert all(isinstance(row["score"], float) for row in json.loads(out))


@pytest.mark.parametrize(
    "argv",
    [
        ["recommend", "{run}", "--user", "u1"],
        ["recommend", "{run}", "--all-users"],
        ["recommend", "{run}", "--liked", "i1"],
        ["similar", "{run}", "--item", "i1"],
        ["index", "build", "{run}"],
    ],
)
def test_other_commands_on_such_a_run_say_it_answers_predict_only(argv, rating_run: Path, capsys):
    code, out, err = run_cli(capsys, *[a.format(run=rating_run) for a in argv])
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"kgrec: error: this run was {TRAINED_WITHOUT}, so it answers predict only; retrain with "
                          "'retrieval' in model.tasks"), err  # was: no vectors.safetensors, so nothing to search


@pytest.fixture(scope="module")
def text_runs(clustered_dataset: Path, tiny_models: tuple[str, str], tmp_path_factory: pytest.TempPathFactory):
    """The rating tower alone, and the retrieval + rating towers, each with the same (frozen) tiny
    text encoder: both hold the same text vectors, which ``search`` compares."""
    text = ["model.use_text=true", f"text.model={tiny_models[0]}", "train.max_epochs=1"]
    root = tmp_path_factory.mktemp("runs")
    return (_train(clustered_dataset, root / "rating-text", *text, "model.tasks=[rating]"),
            _train(clustered_dataset, root / "full-text", *text, "model.tasks=[retrieval, rating]"))  # fmt: skip


def test_a_predict_only_run_with_text_answers_search_as_a_full_run_does(text_runs, capsys):
    """``search`` compares the text encoder's vectors, not the retrieval tower's: it raised
    PredictOnlyError on a run without the retrieval tower, and on one opened predict-only."""
    from kgrec.errors import PredictOnlyError
    from kgrec.retrieval import Recommender

    rating, full = text_runs
    rec = Recommender.open(rating)
    assert rec.predict_only.startswith(f"this run was {TRAINED_WITHOUT}, so it answers predict and search only; "
                                       "retrain with 'retrieval' in model.tasks to recommend or find similar items")
    expected = [r.to_dict() for r in Recommender.open(full).search("film 3", 5)]
    assert len(expected) == 5
    assert [r.to_dict() for r in rec.search("film 3", 5)] == expected
    opened = Recommender.open(full, predict_only=True)
    assert "answers predict and search only" in opened.predict_only
    assert [r.to_dict() for r in opened.search("film 3", 5)] == expected
    with pytest.raises(PredictOnlyError, match="to recommend or find similar items$"):
        rec.similar("i1", 3)
    assert "search" in Recommender.open(rating).warm_up().seconds  # kgrec serve's warm-up answers it too
    code, out, err = run_cli(capsys, "search", rating, "film 3", "-k", "5", "--json")
    assert code == 0, err
    assert [row["item_id"] for row in json.loads(out)] == [row["item_id"] for row in expected]


def test_eval_baselines_of_a_rating_only_run_sets_its_rmse_beside_the_rating_baselines(rating_run: Path, capsys):
    """``kgrec eval --baselines`` refused a run without the retrieval tower ("ranks nothing to set
    beside the baselines"), though the rating baselines need no ranking."""
    code, out, err = run_cli(capsys, "eval", rating_run, "--baselines", "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert "baselines" not in metrics and set(metrics["rating_baselines"]) == {
        "mean rating", next(n for n in metrics["rating_baselines"] if n.startswith("user + item biases"))}
    code, out, err = run_cli(capsys, "eval", rating_run, "--baselines")
    assert code == 0, err
    assert "test ratings (same split)" in out and "(lower is better)" in out.splitlines()[-1]
    assert "ndcg@10" not in out  # no ranking table: the run ranks nothing
