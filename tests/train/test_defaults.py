"""Defaults that fit the data: fields left at their defaults that the dataset cannot feed."""

import json

import pytest
import yaml

from kgrec.errors import ConfigError
from kgrec.graph import build_graph, load_recipe
from kgrec.train import load_config, load_data, prepare, train
from kgrec.train.defaults import fit_defaults
from tests.conftest import tiny_config

CLICKS = "user_id:token|item_id:token\n" + "\n".join(
    f"u{u}|i{(u * 7 + k * 3) % 24}" for u in range(24) for k in range(8)
)
CATEGORIES = "item_id:token|title:token_seq|category:token_seq\n" + "\n".join(
    f"i{i}|Product {i}|{['shoes', 'hats', 'bags'][i % 3]}" for i in range(24)
)


def test_clicks_alone_train_the_retrieval_tower_on_item_ids(atomic):
    data = load_data(load_config(None, [f"data.path={atomic(name='clicks', inter=CLICKS)}"]))
    config, notes = fit_defaults(load_config(None, [f"data.path={data.path}"]), data)
    model = config.model
    assert model.tasks == ("retrieval",) and not model.use_text and not model.use_graph
    assert model.id_dropout == 0 and model.loss_weights == {"retrieval": 1.0}
    assert notes == [
        "clicks has no ratings: the rating and like towers are off",
        "clicks has no item columns (no clicks.item): the text input is off",
        "clicks has no KG triples and no multi-valued item columns: the graph input and the kg tower are off",
        "item IDs are the only item input, with nothing to fall back on: no ID dropout",
        "clicks has 144 training pairs: train.batch_size 64, so that an epoch takes 3 steps (2048 would make 1)",
    ]


def test_multi_valued_item_columns_keep_the_graph_and_the_kg_tower(atomic):
    data = load_data(load_config(None, [f"data.path={atomic(name='shop', inter=CLICKS, item=CATEGORIES)}"]))
    config, notes = fit_defaults(load_config(None, [f"data.path={data.path}"]), data)
    assert config.model.tasks == ("retrieval", "kg") and config.model.use_text and config.model.use_graph
    assert config.model.id_dropout == 0.1 and notes[0] == "shop has no ratings: the rating and like towers are off"
    assert notes[1:] == ["shop has 144 training pairs: train.batch_size 64, so that an epoch takes 3 steps (2048 would make 1)"]


def test_data_that_feeds_every_default_leaves_the_config_as_it_is(clustered_dataset):
    config = load_config(None, [f"data.path={clustered_dataset}", "data.name=clusters", "train.batch_size=2048"])
    assert fit_defaults(config, load_data(config)) == (config, [])  # the batch size given: data this small would fit it


def test_a_dataset_folder_is_recorded_under_its_own_name(clustered_dataset):
    """From the loaded config on: it showed ``name='ml-100k'`` (the name fetched without a path)
    until fitted to the data, so a config printed before training named another dataset."""
    config = load_config(None, [f"data.path={clustered_dataset}", "train.batch_size=128"])
    fitted, notes = fit_defaults(config, load_data(config))
    assert fitted.data.name == "clusters" and config.data.name == "clusters" and notes == []
    assert fitted.data == load_config(None, [f"data.path={clustered_dataset}", "data.name=clusters"]).data
    assert load_config(None, []).data.name == "ml-100k"  # no path: the dataset fetched


def test_values_the_user_gave_are_kept_and_then_refused_with_the_reason(atomic):
    config = load_config(None, [f"data.path={atomic(name='clicks', inter=CLICKS)}", "model.tasks=[retrieval,like]"])
    data = load_data(config)
    kept, _ = fit_defaults(config, data)
    assert kept.model.tasks == ("retrieval", "like")
    with pytest.raises(ConfigError, match=r"model.tasks has like but clicks has no rating column; drop them \(--set model.tasks=\[retrieval\]\)"):
        prepare(kept, data, progress=False)
    kg = load_config(None, [f"data.path={data.path}", "model.tasks=[retrieval,kg]"])  # what the message above suggested once
    with pytest.raises(ConfigError, match=r"^the kg task needs the graph's relations, but the graph \(built from the recipe of "
                                          r"clicks\) has no triples .*; --set model.tasks=\[retrieval\]$"):
        prepare(fit_defaults(kg, data)[0], data, progress=False)
    raw_ids = load_config(None, [f"data.path={data.path}", "text.template={item_id}"])
    assert fit_defaults(raw_ids, data)[0].model.use_text  # a template asks for text, from the raw ids


def test_prepare_of_a_config_not_fitted_to_clicks_says_to_fit_it(atomic):
    """From Python, ``prepare(load_config(...))`` on data without ratings said only to drop the
    towers with ``--set``; the default tasks were never chosen, so fitting is the fix."""
    config = load_config(None, [f"data.path={atomic(name='clicks', inter=CLICKS)}"])
    data = load_data(config)
    with pytest.raises(ConfigError, match=r"clicks has no rating column; fit the config to the data first, config, "
                                          r"notes = fit_defaults\(config, dataset\), as train\(\) does, or drop them"):  # fmt: skip
        prepare(config, data, progress=False)
    fitted, _ = fit_defaults(config, data)
    assert prepare(fitted, data, progress=False).sizes.num_items == data.n_items  # the README's flow


def test_train_on_clicks_with_categories_writes_the_config_it_trained(atomic, tmp_path, capsys):
    data = atomic(name="shop", inter=CLICKS, item=CATEGORIES)
    metrics = train(tiny_config(data, "train.max_epochs=2"), tmp_path / "run")
    assert "note: shop has no ratings: the rating and like towers are off" in capsys.readouterr().err
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"]["tasks"] == ["retrieval", "kg"]
    assert "ndcg@10" in metrics["test"] and "rmse" not in metrics["test"]
    graph = json.loads((tmp_path / "run" / "graph" / "manifest.json").read_text())
    assert graph["counts"]["relations"] == 1  # item.category


def test_under_ddp_only_rank_zero_prints_the_notes(atomic, tmp_path, capsys, monkeypatch):
    from kgrec.utils.ranks import RANK_VARIABLES

    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOCAL_RANK", "1")
    data = atomic(name="shop", inter=CLICKS, item=CATEGORIES)
    train(tiny_config(data, "train.max_epochs=1"), tmp_path / "run")
    assert "note:" not in capsys.readouterr().err


def test_print_config_with_data_shows_what_train_would_train(atomic, capsys):
    from kgrec.cli.main import main

    data = atomic(name="shop", inter=CLICKS, item=CATEGORIES)
    assert main(["train", "--data", str(data), "--print-config"]) == 0
    captured = capsys.readouterr()
    assert yaml.safe_load(captured.out)["model"]["tasks"] == ["retrieval", "kg"]
    assert captured.err == ("config: the built-in defaults (no scripts/configs/ file for this dataset)\n"
                            "note: shop has no ratings: the rating and like towers are off\n"
                            "note: shop has 144 training pairs: train.batch_size 64, so that an epoch takes 3 steps "
                            "(2048 would make 1)\n")  # fmt: skip


def test_a_recipe_allow_pattern_that_matches_nothing_gets_the_note_graph_build_prints(clustered_dataset, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text('allow: ["film.*", "flim.*"]\n')
    config = load_config(None, [f"data.path={clustered_dataset}", f"graph.recipe={recipe}"])
    _, notes = fit_defaults(config, load_data(config))
    assert any(n.startswith("recipe allow pattern 'flim.*' matches none of the KG relations") for n in notes), notes


def _rated(scale: list[float]) -> str:
    return "user_id:token|item_id:token|rating:float\n" + "\n".join(
        f"u{u}|i{(u * 7 + k * 3) % 24}|{scale[(u + k) % len(scale)]}" for u in range(24) for k in range(8)
    )


@pytest.mark.parametrize(
    ("scale", "threshold", "note"),
    [
        ([1, 2, 3, 4, 5], 4.0, None),  # the default, no note
        ([0, 1], 0.75, "ratings run from 0 to 1: a like is a rating >= 0.75"),
        ([2, 4, 6, 8, 10], 8.0, "ratings run from 2 to 10: a like is a rating >= 8"),
        ([-1, 0, 1], 0.5, "ratings run from -1 to 1: a like is a rating >= 0.5"),
    ],
)
def test_the_like_threshold_fits_the_rating_scale(atomic, scale, threshold, note):
    data = load_data(load_config(None, [f"data.path={atomic(name='rated', inter=_rated(scale))}"]))
    config, notes = fit_defaults(load_config(None, [f"data.path={data.path}"]), data)
    assert config.model.like_threshold == threshold and "like" in config.model.tasks
    assert [n for n in notes if "like" in n] == ([f"rated's training {note} (model.like_threshold: three quarters of the way "
                                                   "up, as 4 is on 1-5)"] if note else [])  # fmt: skip
    kept = load_config(None, [f"data.path={data.path}", "model.like_threshold=3"])  # given: kept, then checked
    assert fit_defaults(kept, data)[0].model.like_threshold == 3.0
    if max(scale) < 3:
        with pytest.raises(ConfigError, match=r"model.like_threshold: no training rating of rated is >= 3 \(they run from "
                                              r"-?\d+ to 1\), so the like tower would see one label only"):
            prepare(fit_defaults(kept, data)[0], data, progress=False)


def test_the_like_threshold_fits_the_scale_without_a_like_tower_too(atomic):
    """Explanations call a rating from the threshold up "rated highly": with ``model.tasks`` given
    without ``like`` it stayed 4, so 4 of 10 was a high rating."""
    data = load_data(load_config(None, [f"data.path={atomic(name='rated', inter=_rated([2, 4, 6, 8, 10]))}"]))
    config, notes = fit_defaults(load_config(None, [f"data.path={data.path}", "model.tasks=[retrieval, rating]"]), data)
    assert config.model.like_threshold == 8.0 and config.model.tasks == ("retrieval", "rating")
    assert "rated's training ratings run from 2 to 10: a like is a rating >= 8 (model.like_threshold" in notes[0]
    same = load_data(load_config(None, [f"data.path={atomic(name='same', inter=_rated([1]))}"]))
    config, notes = fit_defaults(load_config(None, [f"data.path={same.path}", "model.tasks=[retrieval, rating]"]), same)
    assert config.model.like_threshold == 4.0 and config.model.tasks == ("retrieval", "rating")
    assert not any("like" in n for n in notes)  # no tower to turn off, and no threshold could tell a like


def test_ratings_all_alike_switch_the_like_tower_off(atomic):
    data = load_data(load_config(None, [f"data.path={atomic(name='rated', inter=_rated([1]))}"]))
    config, notes = fit_defaults(load_config(None, [f"data.path={data.path}"]), data)
    assert "like" not in config.model.tasks and "rating" in config.model.tasks
    assert "every training rating of rated is 1: the like tower is off (nothing to tell a like from)" in notes


def test_a_training_part_too_small_for_the_default_batch_gets_20_steps_an_epoch(clustered_dataset):
    """At 2,048 pairs a step, a few thousand training pairs made 2-3 steps an epoch: too few for
    the rating and like towers to learn before early stopping (a 7k-rating shop: like AUC 0.52)."""
    config = load_config(None, [f"data.path={clustered_dataset}", "data.name=clusters"])
    data = load_data(config)
    fitted, notes = fit_defaults(config, data)
    assert len(data.train) == 440 and fitted.train.batch_size == 64  # 440 // 20 = 22 -> 16, raised to 64
    assert notes == ["clusters has 440 training pairs: train.batch_size 64, so that an epoch takes 7 steps (2048 would make 1)"]
    assert fit_defaults(fitted, data) == (fitted, [])  # fitted already: nothing more
    given = load_config(None, [f"data.path={clustered_dataset}", "data.name=clusters", "train.batch_size=2048"])
    assert fit_defaults(given, data)[0].train.batch_size == 2048  # a batch size written out is kept


def test_a_recipe_with_inverse_relations_turns_the_encoders_own_reverse_edges_off(clustered_dataset, tmp_path):
    """With ``inverse: true`` the graph holds ``r.inv``, and the encoder's reverse edges of ``r``
    and of ``r.inv`` made four edge types of one relation (two of them the same edges)."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("inverse: true\n")
    config = load_config(None, [f"data.path={clustered_dataset}", f"graph.recipe={recipe}"])
    fitted, notes = fit_defaults(config, load_data(config))
    assert not fitted.model.graph_add_inverse
    assert any(n.startswith("the recipe adds inverse relations (inverse: true), so the graph encoder adds no") for n in notes)
    given = load_config(None, [f"data.path={clustered_dataset}", f"graph.recipe={recipe}", "model.graph_add_inverse=true"])
    assert fit_defaults(given, load_data(given))[0].model.graph_add_inverse  # a value given is kept


def test_a_graph_given_by_path_that_holds_inverse_relations_turns_the_encoders_own_reverse_edges_off(
    clustered_dataset, tmp_path
):
    """``--graph`` names a graph built with ``inverse: true``: its manifest's recipe says so (the
    fit looked at recipes only, so such a graph still got four edge types per relation)."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("inverse: true\n")
    data = load_data(load_config(None, [f"data.path={clustered_dataset}"]))
    build_graph(data, load_recipe(recipe)).save(tmp_path / "inverse")
    build_graph(data).save(tmp_path / "plain")
    config = load_config(None, [f"data.path={clustered_dataset}", f"graph.path={tmp_path / 'inverse'}"])
    fitted, notes = fit_defaults(config, data)
    assert not fitted.model.graph_add_inverse
    assert f"the graph {tmp_path / 'inverse'} holds inverse relations (inverse: true), so the graph encoder" in notes[0]
    plain = load_config(None, [f"data.path={clustered_dataset}", f"graph.path={tmp_path / 'plain'}"])
    assert fit_defaults(plain, data)[0].model.graph_add_inverse

