"""Queries on a trained run: seen items, filters, exactness, explanations, catalog changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kgrec.errors import NotFoundError, RetrievalError
from kgrec.graph import ENTITY, ITEM
from kgrec.retrieval import Recommender
from kgrec.retrieval.explain import reads_as_a_name
from kgrec.retrieval.recommender import INDEX_DIR

CLUSTERS = ["Comedy", "Drama", "Action", "Horror"]  # item i has genre CLUSTERS[i % 4]


@pytest.fixture(scope="module")
def rec(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    import shutil

    copy = Path(shutil.copytree(trained_run, tmp_path_factory.mktemp("rec") / "run"))
    return Recommender.open(copy)


def seen_items(rec: Recommender, user: str) -> set[str]:
    ds = rec.run.dataset
    u = ds.user_index(user)
    return {str(ds.items[i]) for part in (ds.train, ds.valid, ds.test) for i in part.item[part.user == u]}


def test_index_is_built_on_first_use_then_reused(rec: Recommender):
    manifest = json.loads((rec.path / INDEX_DIR / "manifest.json").read_text())
    assert manifest["kind"] == "flat" and manifest["count"] == 60 and manifest["metric"] == "inner_product"
    again = Recommender.open(rec.path)
    assert json.loads((rec.path / INDEX_DIR / "manifest.json").read_text()) == manifest
    assert again.index.count == 60


def test_seen_items_are_never_returned(rec: Recommender):
    users = [str(u) for u in rec.run.dataset.users]
    for user, results in zip(users, rec.recommend_batch(users, k=20, explain=False), strict=True):
        assert len(results) == 20
        assert not {r.item_id for r in results} & seen_items(rec, user)


def test_recommend_equals_brute_force_over_unseen_items(rec: Recommender):
    user = "u5"
    u = rec.run.dataset.user_index(user)
    scores = rec.catalog.vectors @ rec.user_vectors[u]
    unseen = [i for i in np.argsort(-scores, kind="stable") if str(rec.catalog.tokens[i]) not in seen_items(rec, user)]
    got = rec.recommend(user, k=8, explain=False)
    assert [r.item_id for r in got] == [rec.catalog.tokens[i] for i in unseen[:8]]
    np.testing.assert_allclose([r.score for r in got], scores[unseen[:8]], rtol=1e-5)


def test_batch_equals_one_by_one(rec: Recommender):
    users = ["u0", "u1", "u7"]
    batch = rec.recommend_batch(users, k=5, explain=False)
    assert batch == [rec.recommend(u, k=5, explain=False) for u in users]


def test_where_returns_exactly_k_items_that_match(rec: Recommender):
    results = rec.recommend("u2", k=5, where=["class=Horror"])  # u2 likes Action (cluster 2)
    assert len(results) == 5
    assert all(rec.catalog.row(rec.catalog.position(r.item_id))["class"] == ["Horror"] for r in results)
    assert not {r.item_id for r in results} & seen_items(rec, "u2")
    # case-insensitive, and != drops
    assert [r.item_id for r in rec.recommend("u2", k=5, where=["class=horror"])] == [r.item_id for r in results]
    assert all("Horror" not in rec.catalog.row(rec.catalog.position(r.item_id))["class"]
               for r in rec.recommend("u2", k=30, where=["class!=Horror"]))  # fmt: skip


def test_where_with_fewer_qualifying_items_returns_them_all(rec: Recommender):
    qualifying = 15 - len([i for i in seen_items(rec, "u3") if int(i[1:]) % 4 == 0])  # Comedy items u3 has not seen
    results = rec.recommend("u3", k=40, where=["class=Comedy"])
    assert len(results) == qualifying


def test_predict_on_the_test_pairs_reproduces_the_runs_test_rmse_and_auc(rec: Recommender, trained_run: Path):
    from kgrec.eval.pointwise import auc, rmse

    test = rec.run.dataset.test
    users, items = rec.run.dataset.users, rec.catalog.tokens
    predicted = [rec.predict(str(users[u]), [items[i]])[0] for u, i in zip(test.user, test.item, strict=True)]
    metrics = json.loads((trained_run / "metrics.json").read_text())["test"]
    assert rmse([p.rating for p in predicted], test.rating) == pytest.approx(metrics["rmse"], abs=1e-5)
    assert auc([p.like for p in predicted], test.rating >= 4) == pytest.approx(metrics["auc"], abs=1e-5)
    # the retrieval score is recommend()'s, and the order given is kept
    top = rec.recommend("u3", k=3, explain=False)
    both = rec.predict("u3", [top[2].item_id, top[0].item_id])
    assert [p.item_id for p in both] == [top[2].item_id, top[0].item_id]
    assert [p.score for p in both] == pytest.approx([top[2].score, top[0].score], rel=1e-5)
    assert all(1 <= p.rating <= 5 and 0 < p.like < 1 for p in both)
    with pytest.raises(NotFoundError, match="unknown item 'nothing'"):
        rec.predict("u3", ["i1", "nothing"])


def test_exclude_and_unknown_columns(rec: Recommender):
    first = rec.recommend("u1", k=3, explain=False)
    again = rec.recommend("u1", k=3, exclude=[first[0].item_id], explain=False)
    assert first[0].item_id not in {r.item_id for r in again} and again[0].item_id == first[1].item_id
    with pytest.raises(RetrievalError, match="unknown column 'genre'.*class"):
        rec.recommend("u1", where=["genre=Comedy"])
    with pytest.raises(RetrievalError, match="expected COLUMN=VALUE"):
        rec.recommend("u1", where=["Comedy"])


def centred_cosine_ranking(rec: Recommender, item: str) -> tuple[list[str], np.ndarray]:
    """Brute force: every other item by cosine of the vectors minus the trained items' mean."""
    centred = rec.catalog.vectors - rec.catalog.vectors[: rec.catalog.n_base].mean(0)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    cos = unit @ unit[rec.catalog.position(item)]
    cos[rec.catalog.position(item)] = -np.inf
    order = np.argsort(-cos, kind="stable")
    return [rec.catalog.tokens[i] for i in order], cos[order]


def test_similar_leaves_the_item_out_and_ranks_by_centred_cosine(rec: Recommender):
    results = rec.similar("i4", k=10)
    assert "i4" not in {r.item_id for r in results} and len(results) == 10
    ranking, cos = centred_cosine_ranking(rec, "i4")
    assert [r.item_id for r in results] == ranking[:10]
    np.testing.assert_allclose([r.score for r in results], cos[:10], rtol=1e-5, atol=1e-6)


def test_similar_through_the_index_equals_exact_scoring(rec: Recommender, monkeypatch: pytest.MonkeyPatch):
    exact = [(r.item_id, r.score) for r in rec.similar("i7", k=5, explain=False)]
    monkeypatch.setattr("kgrec.retrieval.recommender.EXACT_SUBSET_MAX", 0)  # the path of catalogs over 65k items
    through_index = [(r.item_id, r.score) for r in rec.similar("i7", k=5, explain=False)]
    assert [i for i, _ in through_index] == [i for i, _ in exact]
    np.testing.assert_allclose([s for _, s in through_index], [s for _, s in exact], rtol=1e-5, atol=1e-6)


def test_ivfpq_results_carry_exact_scores_in_exact_order(run_copy: Path):
    """An IVF-PQ index without ``refine`` scores by PQ codes (user 196's top film on ml-100k at
    9.61 against 10.81 exact); the catalog holds the exact vectors, so the returned items are
    rescored and ordered by them."""
    from kgrec.retrieval import IndexConfig

    rec = Recommender.open(run_copy)
    rec.build_index(IndexConfig(kind="ivfpq", nlist=1, pq_m=2, pq_bits=2), save=False)
    user = "u5"
    got = rec.recommend(user, k=8, explain=False)
    exact = rec.catalog.vectors @ rec.user_vectors[rec.run.dataset.user_index(user)]
    positions = [rec.catalog.position(r.item_id) for r in got]
    np.testing.assert_allclose([r.score for r in got], exact[positions], rtol=1e-5)
    assert [r.score for r in got] == sorted((r.score for r in got), reverse=True)


def test_new_user_from_liked_items(rec: Recommender):
    liked = ["i0", "i4", "i8"]  # Comedy
    results = rec.recommend_for_new_user(liked=liked, k=10)
    assert len(results) == 10 and not {r.item_id for r in results} & set(liked)
    comedy = sum(int(r.item_id[1:]) % 4 == 0 for r in results)
    assert comedy >= 5, [r.item_id for r in results]  # chance: 2.5
    assert all(r.explanation is not None and r.explanation.text for r in results)


def test_explanation_paths_are_valid_paths_of_the_graph(rec: Recommender):
    kg = rec.run.graph
    triples = set(zip(kg.head.tolist(), kg.relation.tolist(), kg.tail.tolist(), strict=True))
    checked = 0
    for user in ("u0", "u1", "u2", "u3"):
        u = rec.run.dataset.user_index(user)
        history = {int(i) for i in rec.run.dataset.train.item[rec.run.dataset.train.user == u]}
        for result in rec.recommend(user, k=10):
            assert result.explanation is not None and result.explanation.text
            for path in result.explanation.paths:
                nodes, hops = path.path.nodes, path.path.hops
                assert nodes[0] in history and nodes[-1] == rec.catalog.position(result.item_id)
                assert len(hops) == len(nodes) - 1 and len(hops) <= 3
                for hop, a, b in zip(hops, nodes, nodes[1:], strict=False):
                    assert (hop.source, hop.target) == (a, b) and hop.relations
                    for r in hop.relations:
                        assert ((a, r, b) if hop.forward else (b, r, a)) in triples
                checked += 1
    assert checked > 0


def test_similar_explanations_use_the_graph(rec: Recommender):
    result = rec.similar("i0", k=3)[0]
    assert result.explanation.kind == "kg_path"
    assert result.explanation.paths[0].path.nodes[0] == rec.catalog.position("i0")
    assert "Film 0" in result.explanation.text


def test_similar_explanations_count_the_users_who_liked_both(rec: Recommender):
    train = rec.run.dataset.train
    liked = train.rating >= rec.run.config.model.like_threshold if train.rating is not None else np.ones(len(train.user), bool)
    fans = {i: set(train.user[liked & (train.item == i)].tolist()) for i in range(rec.catalog.n_base)}
    source = rec.catalog.position("i2")
    counted = 0
    for result in rec.similar("i2", k=8):
        target = rec.catalog.position(result.item_id)
        why = result.explanation
        if fans[source] and fans[target]:
            assert why.co_liked == (len(fans[source] & fans[target]), len(fans[source]))
            if why.co_liked[0]:
                assert why.text.endswith(f"liked by {why.co_liked[0]} of the {why.co_liked[1]} users who liked {rec.catalog.titles[source]}")
            else:  # no user liked both: no words for it (it read as a reason)
                assert "users who liked" not in why.text
            assert result.to_dict()["explanation"]["co_liked"] == {"both": why.co_liked[0], "query": why.co_liked[1]}
            counted += 1
        else:
            assert why.co_liked is None
    assert counted >= 4


def test_recommend_explanations_count_the_users_who_liked_the_history_item_and_the_result(rec: Recommender):
    train = rec.run.dataset.train
    liked = train.rating >= rec.run.config.model.like_threshold
    fans = {i: set(train.user[liked & (train.item == i)].tolist()) for i in range(rec.catalog.n_base)}
    counted = 0
    for user in ("u0", "u5", "u9"):
        for result in rec.recommend(user, k=5):
            why = result.explanation
            anchor = rec.catalog.position(why.related_items[0])  # the history item the words start from
            target = rec.catalog.position(result.item_id)
            if fans[anchor] and fans[target]:
                assert why.co_liked == (len(fans[anchor] & fans[target]), len(fans[anchor]))
                title = rec.catalog.titles[anchor]
                if why.co_liked[0]:
                    assert why.text.endswith(f"liked by {why.co_liked[0]} of the {why.co_liked[1]} users who liked {title}")
                else:
                    assert "users who liked" not in why.text
                counted += 1
            else:
                assert why.co_liked is None
    assert counted >= 10


def test_entities_whose_id_reads_as_a_name_are_shown_as_named(rec: Recommender):
    """A KG whose entity ids are labels ("Jane Campion", as MIND's Wikidata labels are) needs no
    "no name in the KG" note; codes (m.0343h, Q42, g2) keep it."""
    import dataclasses

    from kgrec.retrieval.explain import Explainer

    codes = ("m.0343h", "m.0kprd8", "m.0lsxr", "g.11b6vx3w5q", "Q42", "12345", "g2", "N12345")  # Freebase, Wikidata ...
    assert [reads_as_a_name(t) for t in ("Elizabeth II", "São Paulo", "e.e. cummings", *codes)] == [True] * 3 + [False] * 8
    kg = rec.run.graph
    results = rec.similar("i5", k=5)
    coded = [v for r in results for p in r.explanation.paths for v in p.path.nodes[1:-1] if kg.node_type[v] == ENTITY]
    assert coded and all("(no name in the KG" in r.explanation.text for r in results if r.explanation.paths)
    names = kg.names.copy()
    names[coded] = [f"Director {str(n).upper()}" for n in names[coded]]  # ids that read as names
    renamed = dataclasses.replace(kg, names=names, keys=names.copy())
    explainer = Explainer(renamed, rec.catalog, centre=rec.item_centre)
    source = rec.catalog.position("i5")
    for result in results:
        why = explainer.for_similar(source, rec.catalog.position(result.item_id))
        assert "(no name in the KG" not in why.text and (not why.paths or "Director " in why.text), why.text


def test_close_items_explanations_show_the_score_similar_gives(rec: Recommender):
    from kgrec.retrieval.catalog import Catalog
    from kgrec.retrieval.explain import Explainer

    c = rec.catalog  # without a graph and columns only closeness is left to explain
    no_columns = Catalog(c.tokens, c.titles, c.vectors, {}, {}, c.n_base)
    explainer = Explainer(None, no_columns, centre=rec.item_centre)
    for result in rec.similar("i5", k=4, explain=False):
        why = explainer.for_similar(rec.catalog.position("i5"), rec.catalog.position(result.item_id))
        assert why.kind == "similar_items" and f"(cosine {result.score:.2f})" in why.text, (why.text, result.score)


def items_linked_to(rec: Recommender, node: int) -> int:
    """Catalog items with an edge to graph node ``node``: base items from the stored triples,
    added items from their recorded links."""
    kg = rec.run.graph
    base = {h for h, t in zip(kg.head.tolist(), kg.tail.tolist(), strict=True) if t == node and kg.node_type[h] == ITEM}
    base |= {t for h, t in zip(kg.head.tolist(), kg.tail.tolist(), strict=True) if h == node and kg.node_type[t] == ITEM}
    return len(base) + sum(any(linked == node for _, linked, _ in a.links) for a in rec.catalog.added)


def assert_unnamed_nodes_say_how_many_items_link_to_them(rec: Recommender, results) -> int:
    kg, shown = rec.run.graph, 0
    for result in results:
        for path in result.explanation.paths:
            for v in path.path.nodes[1:-1]:
                if v >= kg.n_nodes or kg.node_type[v] != ENTITY or kg.names[v] != kg.keys[v] or reads_as_a_name(kg.names[v]):
                    continue  # named: shown as it is
                n = items_linked_to(rec, v)
                assert f" {kg.names[v]} (no name in the KG; {n} items link to it) " in path.text, (n, path.text)
                shown += 1
    return shown


def test_unnamed_entities_in_explanations_say_how_many_items_link_to_them(rec: Recommender):
    assert assert_unnamed_nodes_say_how_many_items_link_to_them(rec, rec.similar("i0", k=5) + rec.recommend("u0", k=5))


def test_a_user_with_no_training_interaction_is_refused_with_what_to_give_instead(clustered_dataset, tmp_path):
    from kgrec.train import train
    from tests.conftest import tiny_config, with_late_joiners

    data = with_late_joiners(clustered_dataset, tmp_path)  # cut by time, u36-u39 come after the cut
    train(tiny_config(data, "data.split=global_temporal", "train.max_epochs=1"), tmp_path / "run")
    rec = Recommender.open(tmp_path / "run")
    trained = set(rec.run.dataset.train.user.tolist())
    new = [str(u) for i, u in enumerate(rec.run.dataset.users) if i not in trained]
    assert new and set(new) <= {"u36", "u37", "u38", "u39"}
    assert rec.trained_users() == [str(u) for i, u in enumerate(rec.run.dataset.users) if i in trained]  # what --all-users serves
    with pytest.raises(RetrievalError, match=f"user '{new[0]}' has no training interactions.*--liked"):
        rec.recommend(new[0])
    assert len(rec.recommend("u0", k=3)) == 3
    assert len(rec.recommend_for_new_user(liked=["i0", "i4"], k=3)) == 3  # what the message offers works


def test_a_kgat_run_orders_shared_neighbours_by_attention_and_says_how_much(clustered_dataset, tmp_path, rec):
    from kgrec.train import train
    from tests.conftest import tiny_config

    train(tiny_config(clustered_dataset, "model.graph_kind=kgat", "train.max_epochs=2"), tmp_path / "run")
    kgat = Recommender.open(tmp_path / "run")
    explainer = kgat.explainer
    results = kgat.similar("i0", k=5) + kgat.recommend("u0", k=5)
    two_hops = [p for r in results for p in r.explanation.paths if len(p.path.nodes) == 3]
    assert two_hops and all(0 < p.attention <= 1 and p.to_dict()["attention"] == p.attention for p in two_hops)
    # i0 and i12 share their genre g0 (15 items) and their director d0_0 (5 items)
    a, b = (explainer.node_of(kgat.catalog.position(i)) for i in ("i0", "i12"))
    paths = explainer.paths_between(a, b, 5)
    middles = [p.nodes[1] for p in paths if len(p.nodes) == 3]
    weights = [float(explainer.attention_into(a, [c])[0] * explainer.attention_into(b, [c])[0]) for c in middles]
    assert len(middles) == 2 and weights == sorted(weights, reverse=True) and min(weights) > 0
    plain_rule = explainer.without_attention()  # the default rule on the same run: the director (5 items) first
    assert explainer.has_attention and not plain_rule.has_attention
    director = int(np.flatnonzero(kgat.run.graph.keys.astype(str) == "d0_0")[0])
    assert [p.nodes[1] for p in plain_rule.paths_between(a, b, 5) if len(p.nodes) == 3][0] == director
    # an R-GCN run weighs no edge above another: no attention, the least connected neighbour first
    plain = [p for r in rec.similar("i0", k=5) for p in r.explanation.paths]
    assert plain and all(p.attention is None and "attention" not in p.to_dict() for p in plain)


def test_bad_input_raises_clear_errors(rec: Recommender):
    with pytest.raises(RetrievalError, match="unknown user 'nobody'.*--liked"):
        rec.recommend("nobody")
    with pytest.raises(RetrievalError, match="unknown item 'i999'") as unknown:
        rec.similar("i999")
    assert "did you mean" not in str(unknown.value)  # no title holds "i999"
    with pytest.raises(RetrievalError, match="unknown item '7 film'") as by_title:
        rec.similar("7 film")  # no title is this: the titles holding its words
    assert str(by_title.value).endswith('did you mean i7 "Film 7" or i17 "Film 17" or i27 "Film 27" or i37 "Film 37" or i47 "Film 47"')
    with pytest.raises(RetrievalError, match="k must be a positive integer"):
        rec.recommend("u0", k=0)
    with pytest.raises(RetrievalError, match="larger than the catalog"):
        rec.recommend("u0", k=61)
    with pytest.raises(RetrievalError, match="trained without text"):
        rec.search("comedy")
    with pytest.raises(RetrievalError, match="needs liked items"):
        rec.recommend_for_new_user()


def test_an_item_may_be_named_by_its_title(run_copy: Path):
    rec = Recommender.open(run_copy)
    by_id = rec.similar("i7", k=5, explain=False)
    assert rec.similar("Film 7", k=5, explain=False) == by_id == rec.similar(" film  7 ", k=5, explain=False)
    assert rec.recommend_for_new_user(liked=["film 7", "i8"], k=5, explain=False) == rec.recommend_for_new_user(
        liked=["i7", "i8"], k=5, explain=False
    )
    assert "i7" not in {r.item_id for r in rec.recommend("u0", k=20, exclude=["Film 7"], explain=False)}
    assert [p.item_id for p in rec.predict("u0", ["Film 3", "i4"])] == ["i3", "i4"]
    assert rec.remove_items(["Film 9", "i9", "i10"]) == ["i9", "i10"]  # ids, each once
    with pytest.raises(RetrievalError, match="item 'i9' was removed"):
        rec.similar("Film 9")
    from kgrec.retrieval.catalog import Catalog

    titles = ["Film 7" if t in ("i3", "i9") else n for t, n in zip(rec.catalog.tokens, rec.catalog.titles, strict=True)]
    renamed = Catalog(rec.catalog.tokens, titles, rec.catalog.vectors, {}, {}, rec.catalog.n_base, removed=["i9"])
    with pytest.raises(RetrievalError, match="""'film 7' is the title of 2 items, i3 "Film 7" and i7 "Film 7"; give its id"""):
        renamed.position("film 7")
    assert renamed.position("i7") == rec.catalog.position("i7")  # an id wins
    assert renamed.with_removed(["i3"]).position("Film 7") == renamed.position("i7")  # among the active items first


def test_one_id_may_be_an_integer_and_ids_pasted_with_spaces_are_found(run_copy: Path):
    from kgrec.retrieval.recommender import _ids

    assert _ids(1682) == ["1682"] and _ids(np.int64(7)) == ["7"] and _ids([50, "181"]) == ["50", "181"]  # not 'not iterable'
    rec = Recommender.open(run_copy)
    assert rec.similar(" i7 ", k=3, explain=False) == rec.similar("i7", k=3, explain=False)
    assert rec.recommend(" u0", k=3, explain=False) == rec.recommend("u0", k=3, explain=False)


def test_remove_items_persists(run_copy: Path):
    rec = Recommender.open(run_copy)
    top = rec.recommend("u0", k=3, explain=False)
    rec.remove_items([top[0].item_id])
    assert top[0].item_id not in {r.item_id for r in rec.recommend("u0", k=3, explain=False)}
    again = Recommender.open(run_copy)
    assert again.catalog.n_active == 59 and again.index.count == 59
    assert top[0].item_id not in {r.item_id for r in again.similar("i1", k=59 - 1, explain=False)}
    with pytest.raises(RetrievalError, match="was removed"):
        again.similar(top[0].item_id)


def test_catalog_changes_of_another_process_are_taken_up_and_built_on(run_copy: Path, tmp_path: Path):
    """A server's Recommender and ``kgrec add-items`` / ``remove-items`` on the same run: each
    change builds on the other's, and the server sees them on refresh()."""
    server, command = Recommender.open(run_copy), Recommender.open(run_copy)
    assert not server.refresh()  # nothing changed since it opened
    command.add_items(*write_new_items(tmp_path))
    gone = server.recommend("u0", k=1, explain=False)[0].item_id
    command.remove_items([gone])
    assert server.refresh() and server.catalog.n_active == 63 and server.index.count == 63
    assert server.similar("n0", k=3, explain=False) and gone not in {r.item_id for r in server.recommend("u0", k=5, explain=False)}
    server.remove_items(["n1"])  # made on top of the other process's changes ...
    command.remove_items(["n2"])  # ... and so is this one, after the server's
    final = Recommender.open(run_copy)
    assert {"n0", "n3"} <= set(final.catalog.tokens[i] for i in final.catalog.active_ids())
    assert set(final.catalog.removed_tokens()) == {gone, "n1", "n2"}
    assert final.catalog.n_active == 61 and final.index.count == 61


def test_added_items_come_with_notes_on_what_the_graph_could_not_reach(text_run: Path, tmp_path: Path):
    import shutil

    rec = Recommender.open(shutil.copytree(text_run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs")))
    added = rec.add_items(*write_new_items(tmp_path))
    assert added == ["n0", "n1", "n2", "n3"]
    assert added.notes == ["KG triples of relation film.unknown_relation were left out: the model was trained on the run's "
                           "graph's relations only (`kgrec graph stats GRAPH` lists them)"]  # fmt: skip
    lonely = tmp_path / "lonely.item"
    lonely.write_text("item_id:token\ttitle:token\tclass:token_seq\nx1\tSpace Film\tScience_Fiction\n", encoding="utf-8")
    notes = rec.add_items(lonely).notes  # a genre the graph does not have, and no link
    assert notes == ["1 new item ('x1') got the text pathway alone: nothing links them to the run's graph (no link to a "
                     "graph entity, no KG triple, no attribute value the graph has); their similar items and "
                     "explanations come from text only"]  # fmt: skip


def test_two_catalog_changes_at_once_wait_for_each_other(run_copy: Path, tmp_path: Path, monkeypatch):
    """A removal asked for while another add is embedding its items waits for it, then builds
    on it: neither change is lost (the later save used to undo the earlier one)."""
    import threading

    from kgrec.retrieval import recommender as module

    server, command = Recommender.open(run_copy), Recommender.open(run_copy)
    embedding, release = threading.Event(), threading.Event()
    real = module.embed_new_items

    def slow_embed(*args, **kwargs):
        embedding.set()
        assert release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "embed_new_items", slow_embed)
    adding = threading.Thread(target=server.add_items, args=write_new_items(tmp_path))
    adding.start()
    assert embedding.wait(10)
    removing = threading.Thread(target=command.remove_items, args=("i5",))
    removing.start()
    removing.join(0.5)
    assert removing.is_alive()  # it waits for the add ...
    release.set()
    adding.join(10)
    removing.join(10)
    final = Recommender.open(run_copy)  # ... and both changes are saved
    assert "i5" in final.catalog.removed_tokens() and {"n0", "n1", "n2", "n3"} <= set(final.catalog.tokens)
    assert final.catalog.n_active == 63 and final.index.count == 63


def test_a_refresh_between_another_process_catalog_and_index_saves_builds_the_index_in_memory(run_copy: Path, tmp_path: Path):
    server, command = Recommender.open(run_copy), Recommender.open(run_copy)
    index_files = {p.name: p.read_bytes() for p in (run_copy / "index").iterdir()}
    command.add_items(*write_new_items(tmp_path))
    for name, data in index_files.items():  # the other process saved its catalog, not yet its index
        (run_copy / "index" / name).write_bytes(data)
    assert server.refresh() and server.index.count == 64 and server.similar("n0", k=3, explain=False)
    assert {p.name: p.read_bytes() for p in (run_copy / "index").iterdir()} == index_files  # left to its writer


def test_changed_vectors_are_refused_until_the_index_is_rebuilt(run_copy: Path):
    from safetensors.numpy import load_file, save_file

    Recommender.open(run_copy)  # builds the index
    vectors = load_file(str(run_copy / "vectors.safetensors"))
    vectors["item"] = vectors["item"] * 2
    save_file(vectors, str(run_copy / "vectors.safetensors"))
    with pytest.raises(RetrievalError, match="does not match this run.*kgrec index build"):
        Recommender.open(run_copy)
    rec = Recommender.open(run_copy, rebuild=True)
    assert rec.index.count == 60


def test_a_failed_index_update_stops_queries_until_the_index_is_rebuilt(run_copy: Path, monkeypatch):
    rec = Recommender.open(run_copy)
    removed = rec.recommend("u0", k=1, explain=False)[0].item_id

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(rec.index), "remove", fail)
    with pytest.raises(RetrievalError, match="updating its index failed.*disk full.*kgrec index build"):
        rec.remove_items([removed])
    with pytest.raises(RetrievalError, match="updating its index failed"):
        rec.recommend("u0", k=3, explain=False)  # not answered from an index that still holds the item
    monkeypatch.undo()
    with pytest.raises(RetrievalError, match="does not match this run.*kgrec index build"):
        Recommender.open(run_copy)  # the catalog on disk lost the item, the index did not
    assert not rec.refresh() and rec.index_error is not None  # the stale index saved before: still refused
    rebuilt = Recommender.open(run_copy, rebuild=True)
    assert rebuilt.index.count == 59
    assert removed not in {r.item_id for r in rebuilt.recommend("u0", k=59, explain=False)}
    # the object that failed (a server) takes up the index `kgrec index build` saved: it answered
    # "rebuild the index" until a restart, the repair done
    assert rec.refresh() and rec.index_error is None and rec.index.count == 59
    assert removed not in {r.item_id for r in rec.recommend("u0", k=59, explain=False)}


def write_new_items(folder: Path) -> tuple[Path, Path, Path]:
    """One new item per genre cluster, linked to a new entity with that cluster's genre and director."""
    items = ["item_id:token\ttitle:token\tclass:token_seq"]
    items += [f"n{c}\tNew Film {c}\t{genre}" for c, genre in enumerate(CLUSTERS)]
    link = ["item_id:token\tentity_id:token"] + [f"n{c}\tne{c}" for c in range(4)]
    kg = ["head_id:token\trelation_id:token\ttail_id:token"]
    kg += [f"ne{c}\tfilm.genre\tg{c}" for c in range(4)] + [f"ne{c}\tfilm.directed_by\td{c}_0" for c in range(4)]
    kg += ["ne0\tfilm.unknown_relation\tg1"]
    paths = []
    for ext, lines in (("item", items), ("link", link), ("kg", kg)):
        path = folder / f"new.{ext}"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1], paths[2]


def test_added_cold_items_are_retrievable_and_rank_above_random_for_their_neighbours(run_copy: Path, tmp_path: Path):
    rec = Recommender.open(run_copy)
    centre = rec.item_centre.copy()
    added = rec.add_items(*write_new_items(tmp_path))
    assert added == ["n0", "n1", "n2", "n3"] and rec.index.count == 64
    record = {a.item_id: a for a in rec.catalog.added}
    assert record["n1"].via == ("graph",) and record["n1"].anchor is None and record["n1"].links
    # retrievable: each new item comes back by a filter on its own title, and through similar()
    ds = rec.run.dataset
    for c in range(4):
        users = [u for u in ds.users if int(str(u)[1:]) % 4 == c]
        ranks = []
        for user in users:
            scores = rec.catalog.vectors @ rec.user_vectors[ds.user_index(user)]
            new = scores[rec.catalog.position(f"n{c}")]
            ranks.append(float((scores > new).mean()))  # 0 = top, 0.5 = random
        assert np.mean(ranks) < 0.35, (c, np.mean(ranks))
    results = rec.recommend("u1", k=64 - len(seen_items(rec, "u1")), where=["title=New Film 1"])
    assert [r.item_id for r in results] == ["n1"]
    assert results[0].explanation.kind == "kg_path"  # through the new item's own links
    # persisted: a fresh open sees the added items, and similar() on a new item works
    again = Recommender.open(run_copy)
    assert again.catalog.n_active == 64 and again.index.count == 64
    assert [r.item_id for r in again.similar("n2", k=5)] == centred_cosine_ranking(again, "n2")[0][:5]
    assert all(r.explanation.co_liked is None for r in again.similar("n2", k=5))  # no training likes of its own
    np.testing.assert_array_equal(again.item_centre, centre)  # similar()'s centre: the trained items only
    with pytest.raises(RetrievalError, match="already in the catalog"):
        again.add_items(*write_new_items(tmp_path))


def test_text_search_returns_items_whose_text_matches(text_run: Path):
    rec = Recommender.open(text_run)
    for genre in CLUSTERS:
        results = rec.search(f"a {genre.lower()} film", k=10)
        matching = sum(rec.catalog.row(rec.catalog.position(r.item_id))["class"] == [genre] for r in results)
        assert matching >= 8, (genre, [r.item_id for r in results])
        assert results[0].explanation.kind == "text_match" and genre in results[0].explanation.text

def test_text_search_ranks_by_cosine_with_the_text_encoders_item_vectors(text_run: Path):
    rec = Recommender.open(text_run)
    items = rec.run.text.numpy()
    items = items / np.linalg.norm(items, axis=1, keepdims=True)
    for query in ("a horror film", "Film 17", "comedy"):
        t = rec.text_vector(query).numpy()[0]
        expected = items @ (t / np.linalg.norm(t))
        results = rec.search(query, k=5, explain=False)
        found = [rec.catalog.position(r.item_id) for r in results]
        assert found == np.argsort(-expected, kind="stable")[:5].tolist(), query
        np.testing.assert_allclose([r.score for r in results], expected[found], rtol=1e-5, atol=1e-6)
    assert rec.search("Film 17", k=1, explain=False)[0].item_id == "i17"  # a title finds its item
    [top] = rec.search("scary", k=1)  # no word of any item's text: the explanation gives the score
    assert top.explanation.kind == "text_score"
    assert top.explanation.text == f"no query word in its title or columns; text-encoder cosine {top.score:.3f}"


def test_new_users_through_the_history_encoder(text_run: Path):
    rec = Recommender.open(text_run)
    assert "history" in rec.run.model.config.user_parts
    for liked, genre in ((["i3", "i7", "i11"], 3), (["i1", "i5"], 1)):
        results = rec.recommend_for_new_user(liked=liked, k=10, explain=False)
        assert sum(int(r.item_id[1:]) % 4 == genre for r in results) >= 7
    by_text = rec.recommend_for_new_user(likes_text="horror films", k=10)
    assert sum(int(r.item_id[1:]) % 4 == 3 for r in by_text) >= 7  # Horror
    assert by_text[0].explanation.kind == "text_match"
    # the query vector itself: its inner products rank what recommend_for_new_user returns
    vector = rec.new_user_vector(liked=["i3", "i7"])
    scores = rec.catalog.vectors @ vector
    scores[[rec.catalog.position("i3"), rec.catalog.position("i7")]] = -np.inf
    expected = [rec.catalog.tokens[i] for i in np.argsort(-scores, kind="stable")[:5]]
    assert [r.item_id for r in rec.recommend_for_new_user(liked=["i3", "i7"], k=5, explain=False)] == expected
    with pytest.raises(RetrievalError, match="needs liked items"):
        rec.new_user_vector()


def test_a_new_users_text_decides_what_the_history_encoder_recommends(text_run: Path, tmp_path: Path):
    """Each text brings its own genre, and items added through the text pathway alone do not
    outrank the catalogue for every text (the model's text pathway applied to the query text
    did both wrong: one list for every text, the text-only items first)."""
    import shutil

    copy = Path(shutil.copytree(text_run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs")))
    rec = Recommender.open(copy)
    rec.add_items(*write_new_items(tmp_path), pathways="text")
    for text, genre in (("horror films", 3), ("comedy films", 0), ("action films", 2)):
        results = rec.recommend_for_new_user(likes_text=text, k=10, explain=False)
        trained = [r for r in results if r.item_id.startswith("i")]
        assert sum(int(r.item_id[1:]) % 4 == genre for r in trained) >= 0.7 * len(trained), text
        added = [r.item_id for r in results[:5] if r.item_id.startswith("n")]
        assert added in ([], [f"n{genre}"]), (text, added)  # at most the added film of that genre
    # the text's part of the history: the trained items search() ranks first, as liked items
    import torch

    from kgrec.retrieval.recommender import TEXT_FEEDBACK_ITEMS

    stand_ins = [r.item_id for r in rec.search("horror films", k=TEXT_FEEDBACK_ITEMS + 4, explain=False) if r.item_id.startswith("i")]
    positions = [rec.catalog.position(t) for t in stand_ins[:TEXT_FEEDBACK_ITEMS]]
    with torch.no_grad():
        expected = rec.run.model.new_user_vector(rec._encoded.items[positions].mean(0, keepdim=True), rec.new_user_prior().prior)
    assert np.allclose(rec.new_user_vector(likes_text="horror films"), expected[0].numpy(), atol=1e-5)


def test_unnamed_entities_count_added_items_too(run_copy: Path, tmp_path: Path):
    rec = Recommender.open(run_copy)
    rec.add_items(*write_new_items(tmp_path))
    results = rec.similar("n2", k=5)
    assert assert_unnamed_nodes_say_how_many_items_link_to_them(rec, results)
    genre = rec.run.graph.keys.tolist().index("g2")  # New Film 2's genre: counted with the base items
    assert sum(any(linked == genre for _, linked, _ in a.links) for a in rec.catalog.added) == 1
    assert any(f"g2 (no name in the KG; {items_linked_to(rec, genre)} items" in r.explanation.text for r in results)


def test_text_run_adds_items_with_text_and_graph(text_run: Path, tmp_path: Path):
    import shutil

    copy = Path(shutil.copytree(text_run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs")))
    rec = Recommender.open(copy)
    rec.add_items(*write_new_items(tmp_path))
    assert {a.via for a in rec.catalog.added} == {("text", "graph")}
    found = rec.search("horror", k=16, where=["class=Horror"])  # 15 Horror items + n3, all in text space
    assert len(found) == 16 and "n3" in {r.item_id for r in found}
    # the text encoder's vectors of added items are saved with the catalog and searched after a reopen
    again = Recommender.open(copy)
    np.testing.assert_array_equal(again.catalog.added_encoded, rec.catalog.added_encoded)
    assert again.search("New Film 2", k=1, explain=False)[0].item_id == "n2"


def test_a_new_user_who_likes_an_added_item_and_a_text(text_run: Path, tmp_path: Path):
    import shutil

    copy = Path(shutil.copytree(text_run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs")))
    rec = Recommender.open(copy)
    rec.add_items(*write_new_items(tmp_path))

    def genres(text: str | None) -> list[str]:
        results = rec.recommend_for_new_user(liked=["n0"], likes_text=text, k=10, explain=False)
        assert "n0" not in {r.item_id for r in results}
        return [rec.catalog.row(rec.catalog.position(r.item_id))["class"][0] for r in results]

    assert genres(None).count("Horror") <= 1 and genres(None).count("Comedy") >= 8  # New Film 0 is a comedy
    with_text = genres("horror films")
    assert with_text.count("Horror") >= 3 and with_text.count("Comedy") >= 3
    # the definition: an added item, like a text, counts as one liked item shared by the trained
    # items similar() ranks first for it, read by the history encoder beside the trained items liked
    import torch

    from kgrec.retrieval.recommender import TEXT_FEEDBACK_ITEMS

    stand_ins = [r.item_id for r in rec.similar("n0", k=TEXT_FEEDBACK_ITEMS + 4, explain=False) if r.item_id.startswith("i")]
    items = rec._model_encoded().items
    parts = [items[[rec.catalog.position("i5")]], items[[rec.catalog.position(t) for t in stand_ins[:TEXT_FEEDBACK_ITEMS]]].mean(0, keepdim=True)]
    with torch.no_grad():
        expected = rec.run.model.new_user_vector(torch.cat(parts), rec.new_user_prior().prior)[0].numpy()
    assert np.allclose(rec.new_user_vector(["n0", "i5", "i5"]), expected, atol=1e-5)  # an item liked twice counts once


def test_added_items_of_a_catalog_without_text_encoder_vectors_are_left_out_of_search(text_run: Path, tmp_path: Path):
    import shutil

    from safetensors.numpy import load_file, save_file

    copy = Path(shutil.copytree(text_run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs")))
    Recommender.open(copy).add_items(*write_new_items(tmp_path))
    stored = copy / "catalog" / "added.safetensors"
    tensors = load_file(str(stored))
    save_file({"item": tensors["item"]}, str(stored))  # as a catalog written before 'encoded' existed
    rec = Recommender.open(copy)
    assert rec.catalog.n_active == 64 and np.isnan(rec.catalog.added_encoded).all()
    found = {r.item_id for r in rec.search("New Film 2", k=63, explain=False)}
    assert len(found) == 60 and not found & {"n0", "n1", "n2", "n3"}  # the base items only


def test_added_items_can_be_embedded_through_one_pathway(text_run: Path, tmp_path: Path):
    import shutil

    from kgrec.retrieval.coldstart import embed_new_items, read_new_items

    copy = Path(shutil.copytree(text_run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs")))
    rec = Recommender.open(copy)
    files = write_new_items(tmp_path)
    with pytest.raises(RetrievalError, match=r"pathways: expected one or more of \['text', 'graph'\], got \['txt'\]"):
        rec.add_items(*files, pathways=["txt"])
    both = embed_new_items(rec.run, read_new_items(*files), rec.catalog).vectors
    text_only = embed_new_items(rec.run, read_new_items(*files), rec.catalog, use=("text",)).vectors
    rec.add_items(*files, pathways="text")  # a name, or a list of names
    assert {a.via for a in rec.catalog.added} == {("text",)}
    added = rec.catalog.vectors[[rec.catalog.position(f"n{c}") for c in range(4)]]
    np.testing.assert_allclose(added, text_only, rtol=1e-5, atol=1e-6)
    assert not np.allclose(added, both, atol=1e-3)  # the graph pathway did not contribute


def test_added_items_without_a_column_the_text_template_needs_are_refused_at_the_file(text_run: Path, tmp_path: Path):
    from kgrec.errors import DataError

    rec = Recommender.open(text_run)
    items = tmp_path / "plain.item"
    items.write_text("item_id:token\ttitle:token\tcolour:token\nq0\tRed Film\tred\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"plain.item:1: the run's text template .* needs column\(s\) class; the file has title, colour"):
        rec.add_items(items)
    with pytest.raises(RetrievalError, match=r"no link to the graph and the text pathway is not asked for"):
        rec.add_items(items, pathways=["graph"])
    assert rec.catalog.n_active == 60  # nothing was added


def test_added_values_must_keep_their_column_type(rec: Recommender):
    from kgrec.retrieval.catalog import AddedItem

    vector = np.zeros((1, rec.catalog.dim), np.float32)
    with pytest.raises(RetrievalError, match=r"item 'n1': column 'class' holds lists of tokens .* got 'Drama'"):
        rec.catalog.with_added([AddedItem("n1", "N1", {"class": "Drama"})], vector)
    dated = rec.catalog.with_added([AddedItem("n1", "N1", {"year": 1999.0})], vector)
    with pytest.raises(RetrievalError, match=r"column 'year' holds numbers .* got '1999' \(in a .item file, declare it 'year:float'\)"):
        dated.with_added([AddedItem("n2", "N2", {"year": "1999"})], vector)
    dated = dated.with_added([AddedItem("n2", "N2", {"year": 2001.0, "class": None})], vector)
    assert dated.where_mask(["year=2001"]).sum() == 1  # filters on the column keep working
    scored = dated.with_added([AddedItem("n3", "N3", {"scores": [0.5, 1.0]})], vector)  # a float_seq column
    scored = scored.with_added([AddedItem("n4", "N4", {"scores": []})], vector)  # an empty list fits any list column
    assert scored.feature_types["scores"] == "float_seq"
    with pytest.raises(RetrievalError, match=r"column 'scores' holds lists of numbers .* got \['a'\]"):
        scored.with_added([AddedItem("n5", "N5", {"scores": ["a"]})], vector)
    assert dated.unmatched_filters(["year=1990", "class=Dram", "class!=Dramaa", "year=2001"]) == [
        "year=1990 matches no item (values from 1999 to 2001)",  # a number: the column's range
        "class=Dram matches no item (did you mean 'Drama'?)",
    ]  # a negated filter, and one that matches, are not the reason
    assert dated.unmatched_filters(["year=2001", "year=1999"]) == [  # each matches an item, none both
        "each filter matches items, but no item matches all of them (year=2001: 1, year=1999: 1 items)"
    ]
    assert dated.unmatched_filters(["year=2001", "year!=1999"]) == []  # n2 passes both: not the filters


def test_similar_of_an_added_item_blends_the_text_encoders_cosine(text_run: Path, tmp_path: Path):
    import shutil

    from kgrec.retrieval.recommender import NEW_ITEM_SIMILAR_MODEL_WEIGHT as w

    copy = Path(shutil.copytree(text_run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs")))
    rec = Recommender.open(copy)
    rec.add_items(*write_new_items(tmp_path))
    # brute force: w * centred cosine of the retrieval vectors + (1 - w) * cosine of the text encoder's vectors
    by_model, cos = centred_cosine_ranking(rec, "n2")
    model = dict(zip(by_model, cos, strict=True))
    text = np.concatenate([rec.run.text.numpy(), rec.catalog.added_encoded])
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    blend = {t: w * model[t] + (1 - w) * float(text[i] @ text[rec.catalog.position("n2")])
             for i, t in enumerate(rec.catalog.tokens) if t != "n2"}  # fmt: skip
    expected = sorted(blend, key=lambda t: -blend[t])[:10]
    results = rec.similar("n2", k=10)
    assert [r.item_id for r in results] == expected
    np.testing.assert_allclose([r.score for r in results], [blend[t] for t in expected], rtol=1e-5, atol=1e-6)
    assert 0 < w < 1 and [r.item_id for r in results] != by_model[:10]
    # filters still apply, and trained items keep the centred cosine alone
    drama = rec.similar("n2", k=5, where=["class=Drama"], exclude=["n1"], explain=False)
    assert [r.item_id for r in drama] == [t for t in expected + sorted(blend, key=lambda t: -blend[t])[10:]
                                          if t != "n1" and rec.catalog.row(rec.catalog.position(t))["class"] == ["Drama"]][:5]  # fmt: skip
    assert [r.item_id for r in rec.similar("i5", k=8, explain=False)] == centred_cosine_ranking(rec, "i5")[0][:8]
    # batches: the same lists and explanations as one query each, an added item among trained ones
    items = ["i5", "n2", "i0", "i5", "n1"]
    batched = list(rec.iter_similar(items, k=4, where=["class!=Horror"], batch_size=2))
    single = [rec.similar(item, k=4, where=["class!=Horror"]) for item in items]
    assert [[(r.item_id, r.explanation) for r in b] for b in batched] == [[(r.item_id, r.explanation) for r in s] for s in single]
    np.testing.assert_allclose([r.score for b in batched for r in b], [r.score for s in single for r in s], rtol=1e-6)
    assert batched[1][0].explanation.text != batched[0][0].explanation.text  # each explained from its own item


def test_similar_of_an_added_item_without_text_is_the_centred_cosine(run_copy: Path, tmp_path: Path):
    rec = Recommender.open(run_copy)  # a run without text: nothing to blend
    rec.add_items(*write_new_items(tmp_path))
    ranking, cos = centred_cosine_ranking(rec, "n2")
    results = rec.similar("n2", k=10, explain=False)
    assert [r.item_id for r in results] == ranking[:10]
    np.testing.assert_allclose([r.score for r in results], cos[:10], rtol=1e-5, atol=1e-6)
    trained, added = rec.predict("u1", ["i1", "n2"])  # the towers score an added item too (it was refused)
    assert added.score == pytest.approx(float(rec.catalog.vectors[rec.catalog.position("n2")] @ rec.user_vectors[rec.user_index("u1")]), rel=1e-5)
    assert 1.0 <= added.rating <= 5.0 and 0.0 < added.like < 1.0 and added.rating != trained.rating


def test_a_user_who_rated_nothing_highly_is_explained_by_their_best_rated_items(rec: Recommender):
    from kgrec.retrieval.catalog import Catalog
    from kgrec.retrieval.explain import Explainer, HistoryItem

    c = rec.catalog
    explainer = Explainer(None, Catalog(c.tokens, c.titles, c.vectors, {}, {}, c.n_base), centre=rec.item_centre)
    target = c.position("i5")
    history = [HistoryItem(c.position("i9"), 1.0), HistoryItem(c.position("i1"), 3.0), HistoryItem(c.position("i13"), 1.0)]
    why = explainer.for_user(history, target)  # a like is >= 4: none here
    assert "Film 1 " in why.text + " " and "Film 9" not in why.text and "Film 13" not in why.text, why.text


def test_explanation_paths_never_pass_through_a_removed_item(rec: Recommender):
    from kgrec.retrieval.explain import Explainer

    c = rec.catalog.with_removed(["i3"])
    explainer = Explainer(rec.run.graph, c, centre=rec.item_centre)
    i3, i4 = c.position("i3", allow_removed=True), c.position("i4")
    # the nodes a path may not pass through (this graph joins items through entities only, so the
    # two-hop search is checked by this mask; on ml-100k an item linked to another item's entity
    # led a path through a removed film)
    assert explainer._removed(np.asarray([i3, i4, rec.run.graph.n_nodes - 1])).tolist() == [True, False, False]


def test_close_items_explanations_of_a_blended_list_state_the_blended_score(rec: Recommender):
    from kgrec.retrieval.catalog import Catalog
    from kgrec.retrieval.explain import Explainer

    c = rec.catalog
    explainer = Explainer(None, Catalog(c.tokens, c.titles, c.vectors, {}, {}, c.n_base), centre=rec.item_centre)
    why = explainer.for_similar(c.position("i5"), c.position("i9"), blended_score=0.4567)
    assert why.kind == "similar_items" and "in the model's item space and by text (score 0.46)" in why.text


def test_opening_a_run_and_recommending_load_neither_pyg_nor_lightning_nor_transformers(trained_run: Path, tmp_path: Path):
    """A query needs the run's vectors, data and graph: PyG (KGAT's softmax, ``to_pyg``),
    Lightning, transformers and pandas (which pyarrow imports when handed a Python scalar)
    stay unloaded, which takes seconds off every CLI query."""
    import shutil
    import subprocess
    import sys

    run = shutil.copytree(trained_run, tmp_path / "run")  # the index is built and saved on open
    probe = (f"import sys; from kgrec.retrieval import Recommender; rec = Recommender.open({str(run)!r}); "
             "assert rec.recommend('u0', k=3); "
             "print(sorted(m for m in ('torch_geometric', 'lightning', 'transformers', 'pandas') if m in sys.modules))")  # fmt: skip
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_known_users_and_similar_items_are_answered_without_building_the_model(trained_run: Path, tmp_path: Path, monkeypatch):
    """They read the saved vectors: the model (and its side inputs, a second on ml-100k) is
    built on first use, by a new user's query here."""
    import shutil

    import kgrec.train.saved

    built = []
    real = kgrec.train.saved.MultiTaskRecommender
    monkeypatch.setattr(kgrec.train.saved, "MultiTaskRecommender", lambda *a, **k: built.append(1) or real(*a, **k))
    rec = Recommender.open(shutil.copytree(trained_run, tmp_path / "run"))
    assert rec.recommend("u0", k=3) and rec.similar("i0", k=3) and rec.recommend_batch(["u1", "u2"], k=3)
    assert built == []
    assert rec.recommend_for_new_user(liked=["i0"], k=3) and built == [1]
    assert rec.recommend_for_new_user(liked=["i1"], k=3) and built == [1]  # built once


def test_after_a_warm_up_no_query_loads_anything(text_run: Path, monkeypatch):
    """warm_up answers one query of each kind, so that the model, its encoding, the text encoder
    and the new-user prior are there before the first user asks: afterwards, building any of them
    again fails the test, and every kind of query still answers."""
    import kgrec.retrieval.recommender as module
    import kgrec.text
    import kgrec.train.saved

    rec = Recommender.open(text_run)
    done = rec.warm_up()
    assert list(done.seconds) == ["recommend", "similar", "predict", "search", "new user"] and not done.errors
    assert all(s >= 0 for s in done.seconds.values()) and "search" in str(done)

    def loads(*args, **kwargs):
        raise AssertionError("a query loaded something after the warm-up")

    monkeypatch.setattr(kgrec.train.saved, "MultiTaskRecommender", loads)
    monkeypatch.setattr(kgrec.text.TextEncoder, "from_config", loads)
    monkeypatch.setattr(module, "choose_history_prior", loads)
    monkeypatch.setattr(rec.run.model, "encode", loads)
    assert rec.recommend("u0", k=3) and rec.similar("i0", k=3) and rec.predict("u0", ["i1"])
    assert rec.search("comedy", k=3) and rec.recommend_for_new_user(liked=["i0"], likes_text="comedy", k=3)


def test_a_warm_up_runs_only_the_queries_a_run_supports_and_names_what_failed(trained_run: Path, text_run: Path, monkeypatch):
    import kgrec.text
    from kgrec.errors import KgrecError

    no_text = Recommender.open(trained_run).warm_up()
    assert list(no_text.seconds) == ["recommend", "similar", "predict", "new user"] and not no_text.errors

    def offline(*args, **kwargs):
        raise KgrecError("text model 'x' is not on this machine")

    monkeypatch.setattr(kgrec.text.TextEncoder, "from_config", offline)
    done = Recommender.open(text_run).warm_up()
    assert done.errors == {"search": "text model 'x' is not on this machine"}
    assert list(done.seconds) == ["recommend", "similar", "predict", "new user"]
    assert "search failed: text model 'x'" in str(done)


def test_a_plain_string_is_one_id_or_one_filter_never_its_characters(run_copy: Path):
    """``remove_items("i12")`` removes item i12, not items i, 1 and 2."""
    rec = Recommender.open(run_copy)
    assert rec.remove_items("i12") == ["i12"] and rec.catalog.removed_tokens() == ["i12"]
    assert [r.item_id for r in rec.recommend("u0", 5, exclude="i1")] == [
        r.item_id for r in rec.recommend("u0", 5, exclude=["i1"])
    ]
    assert rec.recommend("u0", 5, where="class=Action") == rec.recommend("u0", 5, where=["class=Action"])
    assert [p.item_id for p in rec.predict("u0", "i13")] == ["i13"]
    assert [r.item_id for r in rec.recommend_for_new_user("i13", k=3)] == [
        r.item_id for r in rec.recommend_for_new_user(["i13"], k=3)
    ]
    assert len(rec.recommend_batch("u0", 3)) == 1 and len(list(rec.iter_similar("i13", 3))) == 1
