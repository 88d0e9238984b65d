"""Audit of kgrec.train.defaults (fit_defaults): what it fits, what it says, and that a fitted config
read back from the run folder fits to itself."""

import pytest

from kgrec.errors import ConfigError
from kgrec.train import load_config, load_data, prepare
from kgrec.train.config import config_yaml
from kgrec.train.defaults import fit_defaults
from tests.conftest import TOY_INTER, TOY_ITEM, TOY_KG, TOY_LINK
from tests.train.test_defaults import CATEGORIES, CLICKS, _rated


def _fit(path, *overrides):
    config = load_config(None, [f"data.path={path}", *overrides])
    data = load_data(config)
    return (*fit_defaults(config, data), data)


def _read_back(fitted, tmp_path):
    """``fitted`` as the run folder keeps it (``config.yaml``), read and fitted again."""
    saved = tmp_path / "config.yaml"
    saved.write_text(config_yaml(fitted))
    config = load_config(saved)
    return fit_defaults(config, load_data(config))


def _inverse_recipe(tmp_path):
    recipe = tmp_path / "inverse.yaml"
    recipe.write_text("inverse: true\n")
    return recipe


@pytest.mark.parametrize(("holdout", "monitor"), [("0.2", "kg_mrr"), ("0", None)])
def test_a_like_tower_switched_off_takes_the_auto_monitor_along(atomic, tmp_path, holdout, monitor):
    """``model.tasks=[like, kg]`` on ratings all alike: ``auto`` had resolved to ``auc`` at load, and
    the like tower went, so the run folder's ``config.yaml`` named a monitor no task reports (read
    back: "eval.monitor 'auc' needs the like task")."""
    path = atomic(name="alike", inter=_rated([3]), item=CATEGORIES)
    fitted, notes, _ = _fit(path, "model.tasks=[like, kg]", f"graph.kg_holdout={holdout}")
    assert fitted.model.tasks == ("kg",) and fitted.eval.monitor == monitor
    assert notes[-1].startswith("eval.monitor (auto) follows model.tasks ['kg']: ")
    assert _read_back(fitted, tmp_path) == (fitted, [])
    given, _, _ = _fit(path, "model.tasks=[like, kg]", f"graph.kg_holdout={holdout}", "eval.monitor=auc")
    assert given.eval.monitor == "auc"  # a monitor given is kept (and then refused with its reason)


def test_a_config_whose_only_task_is_like_is_refused_with_the_reason(atomic):
    """Switching the like tower off emptied ``model.tasks``: "expected a non-empty subset ..., got []"."""
    path = atomic(name="alike", inter=_rated([3]))
    with pytest.raises(ConfigError, match=r"^every training rating of alike is 3, so the like tower has nothing to tell "
                                          r"a like from, and model.tasks \['like'\] has no other task") as error:  # fmt: skip
        _fit(path, "model.tasks=[like]")
    assert error.value.key == "model.tasks"
    assert _fit(path, "model.tasks=[like]", "model.like_threshold=3")[0].model.tasks == ("like",)  # a threshold given: kept


def test_a_kg_tower_without_the_graph_input_gets_no_second_set_of_reverse_edges(toy_dataset, tmp_path):
    """The kg tower (and a graph user part) runs the graph encoder too: with ``model.use_graph=false``
    a recipe's ``r.inv`` still met the encoder's own reverse edges, four edge types of a relation."""
    recipe = _inverse_recipe(tmp_path)
    for overrides in (["model.use_graph=false", "model.id_dropout=0"], ["model.tasks=[kg]"]):
        fitted, notes, _ = _fit(toy_dataset, f"graph.recipe={recipe}", *overrides)
        assert "kg" in fitted.model.tasks and not fitted.model.graph_add_inverse, overrides
        assert any(n.startswith("the recipe adds inverse relations (inverse: true)") for n in notes)
    plain, _, _ = _fit(toy_dataset, f"graph.recipe={recipe}", "model.use_graph=false", "model.id_dropout=0",
                       "model.tasks=[retrieval, rating]")  # fmt: skip
    assert plain.model.graph_add_inverse  # no graph at all: nothing to fit


def test_a_run_without_a_graph_is_not_stopped_by_a_recipe_it_does_not_read(atomic, tmp_path):
    """The recipe was resolved (and refused: KG triples that clicks lacks) even where nothing reads
    the graph, so a config that prepare() trains failed in fit_defaults."""
    path = atomic(name="clicks", inter=CLICKS)
    overrides = [f"graph.recipe={_inverse_recipe(tmp_path)}", "model.use_graph=false", "model.tasks=[retrieval]",
                 "model.use_text=false", "model.id_dropout=0"]  # fmt: skip
    fitted, notes, data = _fit(path, *overrides)
    assert fitted.model.tasks == ("retrieval",) and fitted.model.graph_add_inverse
    assert prepare(fitted, data, progress=False).graph is None
    with pytest.raises(ConfigError, match=r"recipe uses KG triples \(kg: true\) but dataset 'clicks' has no clicks.kg"):
        _fit(path, overrides[0], "model.tasks=[retrieval]")  # the graph input at its default: read, and refused


def test_an_item_file_of_ids_alone_is_not_called_missing(atomic):
    items = "item_id:token\n" + "\n".join(f"i{i}" for i in range(24))
    fitted, notes, _ = _fit(atomic(name="shop", inter=CLICKS, item=items))
    assert not fitted.model.use_text
    assert "shop has no item columns (shop.item has only item_id): the text input is off" in notes
    _, notes, _ = _fit(atomic(name="clicks", inter=CLICKS))
    assert "clicks has no item columns (no clicks.item): the text input is off" in notes


def test_a_recipe_asking_for_no_relations_is_named_not_the_data(toy_dataset, tmp_path):
    """The toy data has KG triples and a multi-valued column; the note said it had neither."""
    recipe = tmp_path / "bare.yaml"
    recipe.write_text("kg: false\n")
    fitted, notes, _ = _fit(toy_dataset, f"graph.recipe={recipe}")
    assert not fitted.model.use_graph and "kg" not in fitted.model.tasks
    assert f"the graph recipe {recipe} asks for no relations (no kg, attributes or users): the graph input and the " \
           "kg tower are off" in notes  # fmt: skip
    assert not any("has no KG triples" in n for n in notes)


def test_data_seed_is_not_said_to_not_apply_where_it_seeds_the_kg_holdout(atomic):
    rows = TOY_INTER.strip().splitlines()
    header, body = rows[0], rows[1:]
    path = atomic(name="given", train_inter="\n".join([header, *body[:6]]), valid_inter="\n".join([header, body[6]]),
                  test_inter="\n".join([header, body[7]]), item=TOY_ITEM, kg=TOY_KG, link=TOY_LINK)  # fmt: skip
    fitted, notes, _ = _fit(path, "data.split=temporal", "data.seed=7", "graph.kg_holdout=0.2")
    assert fitted.data.split == "given" and fitted.data.seed == 7
    assert [n for n in notes if "own split" in n] == [
        "given holds its own split (given.train/valid/test.inter), used as it is: data.split=temporal does not apply"
    ]
    _, notes, _ = _fit(path, "data.split=temporal", "data.seed=7")  # no hold-out: the seed does nothing
    assert any(n.endswith("data.split=temporal, data.seed=7 do not apply") for n in notes)


def test_item_ids_switched_off_with_nothing_left_to_fit_are_refused_naming_them(atomic):
    """``model.use_item_id=false`` on clicks: fitting took the text and graph inputs too, and the
    model's check said "at least one of use_item_id, use_text, use_graph must be true"."""
    path = atomic(name="clicks", inter=CLICKS)
    with pytest.raises(ConfigError, match=r"^model.use_item_id is false, and clicks has neither item columns nor "
                                          r"relations") as error:  # fmt: skip
        _fit(path, "model.use_item_id=false", "model.id_dropout=0")
    assert error.value.key == "model.use_item_id"
    kept, _, _ = _fit(path, "model.use_item_id=false", "model.id_dropout=0", "text.template={item_id}")
    assert kept.model.use_text and not kept.model.use_graph  # a template asks for text from the raw ids


@pytest.mark.parametrize(
    ("files", "overrides"),
    [
        (dict(name="alike", inter=_rated([3]), item=CATEGORIES), ["model.tasks=[like, kg]", "graph.kg_holdout=0.2"]),
        (dict(name="alike", inter=_rated([3]), item=CATEGORIES), ["model.tasks=[rating, like]"]),
        (dict(name="toy", inter=TOY_INTER, item=TOY_ITEM, kg=TOY_KG, link=TOY_LINK), ["model.use_graph=false", "model.id_dropout=0", "INVERSE"]),
        (dict(name="half", inter=_rated([0.5, 1.5, 2.5, 3.5, 5])), ["model.tasks=[retrieval, rating]"]),
        (dict(name="neg", inter=_rated([-3, -1, 0, 2])), []),
    ],
)
def test_the_run_folders_config_fits_to_itself(atomic, tmp_path, files, overrides):
    overrides = [f"graph.recipe={_inverse_recipe(tmp_path)}" if o == "INVERSE" else o for o in overrides]
    fitted, notes, data = _fit(atomic(**files), *overrides)
    assert notes
    assert fit_defaults(fitted, data) == (fitted, [])
    assert _read_back(fitted, tmp_path) == (fitted, [])
