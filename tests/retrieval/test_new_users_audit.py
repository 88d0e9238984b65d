"""New users and cold-start items at their edges (an audit): each test failed before its fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgrec.errors import RetrievalError
from kgrec.retrieval import Recommender


def write(path: Path, text: str) -> Path:
    path.write_text(text.replace("|", "\t").strip() + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def small_catalog_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 items, 30 users, trained with a ``history`` user part (``eval.ks=[5]``: the default
    cut-offs 10 and 20 are beyond the catalog)."""
    from kgrec.train import train
    from tests.conftest import tiny_config

    root = tmp_path_factory.mktemp("data") / "small"
    root.mkdir()
    rng = np.random.default_rng(0)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(30):
        for t, i in enumerate(rng.choice(8, size=5, replace=False)):
            lines.append(f"u{u}\ti{i}\t{rng.choice([3, 4, 5])}\t{u * 10 + t}")
    (root / "small.inter").write_text("\n".join(lines) + "\n")
    (root / "small.item").write_text("item_id:token\ttitle:token\n" + "".join(f"i{i}\tFilm {i}\n" for i in range(8)))
    out = tmp_path_factory.mktemp("runs") / "small"
    overrides = ("eval.ks=[5]", "model.user_encoder=id+history", "model.use_graph=false", "model.id_dropout=0")
    train(tiny_config(root, *overrides), out)
    return out


def test_a_new_user_is_served_by_a_run_whose_catalog_has_fewer_than_ten_items(small_catalog_run: Path):
    # the prior's choice ranked its simulated new users by NDCG@10, a cut-off beyond 8 items:
    # every new-user query (and the server's warm-up) raised a ValueError traceback
    rec = Recommender.open(small_catalog_run)
    results = rec.recommend_for_new_user(liked=["i0"], k=3, explain=False)
    assert len(results) == 3 and "i0" not in {r.item_id for r in results}
    choice = rec.new_user_prior()
    assert choice.users > 0 and set(choice.ndcg) and all(0.0 <= v <= 1.0 for v in choice.ndcg.values())
    assert "new user" in rec.warm_up().seconds


def test_an_added_item_linked_to_an_entity_the_graph_lacks_is_refused_naming_that_entity(run_copy: Path, tmp_path: Path):
    # the graph-only run: an item whose one link names no graph entity (a typo) was refused with
    # "have no link to the graph ... (link them to graph entities: --link FILE)", which the user had given
    items = write(tmp_path / "n.item", "item_id:token|title:token\nn0|A\nn1|B")
    link = write(tmp_path / "n.link", "item_id:token|entity_id:token\nn0|e0x\nn1|f1")
    kg = write(tmp_path / "n.kg", "head_id:token|relation_id:token|tail_id:token\nf1|film.genre|g1")
    rec = Recommender.open(run_copy)
    with pytest.raises(RetrievalError, match=r"^new item 'n0' is linked to 'e0x', which is neither an entity of the run's graph"):
        rec.add_items(items, link, kg)
    assert not rec.catalog.added and rec.catalog.n_active == 60  # nothing was added


def test_adding_items_reads_each_column_once_not_once_per_item(trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # each added item's columns were read by converting the whole column again: adding m items
    # cost m x m (20,000 graph-linked items took 505 s to embed on the graph-only run, 5,000 took 22 s)
    import kgrec.retrieval.coldstart as coldstart
    from kgrec.retrieval import embed_new_items, read_new_items

    calls = []
    real = coldstart._column_values
    monkeypatch.setattr(coldstart, "_column_values", lambda column, kind: calls.append(kind) or real(column, kind))
    rec = Recommender.open(trained_run)
    counts = []
    for m in (3, 30):
        rows = "".join(f"\nb{j}|B {j}|Comedy" for j in range(m))
        items = write(tmp_path / f"n{m}.item", "item_id:token|title:token|class:token_seq" + rows)
        link = write(tmp_path / f"n{m}.link", "item_id:token|entity_id:token" + "".join(f"\nb{j}|be{j}" for j in range(m)))
        kg = write(tmp_path / f"n{m}.kg", "head_id:token|relation_id:token|tail_id:token" + "".join(f"\nbe{j}|film.genre|g0" for j in range(m)))
        calls.clear()
        embedded = embed_new_items(rec.run, read_new_items(items, link, kg), rec.catalog)
        counts.append(len(calls))
        assert [a.features for a in embedded.items] == [{"title": f"B {j}", "class": ["Comedy"]} for j in range(m)]
    assert counts[0] == counts[1]  # as many column reads for 30 items as for 3


@pytest.mark.parametrize("text", [["horror"], 5])
def test_a_query_text_that_is_not_a_string_is_named_as_such(trained_run: Path, text):
    # it said "the query text is empty", for a list of words too
    rec = Recommender.open(trained_run)
    with pytest.raises(RetrievalError, match=rf"^the query text: expected a string of words.*got {type(text).__name__}"):
        rec.recommend_for_new_user(likes_text=text)
