from pathlib import Path

import pytest
import yaml

from kgrec.errors import ConfigError
from kgrec.train import RunConfig, load_config
from kgrec.train.config import config_yaml
from kgrec.utils.config import from_dict, to_dict


def test_defaults_file_and_overrides_stack(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  trunk: ple\ntrain:\n  max_epochs: 7\n")
    config = load_config(path, ["train.max_epochs=3", "model.tasks=[retrieval,kg]"])
    assert config.model.trunk == "ple"  # file beats default
    assert config.train.max_epochs == 3  # command line beats file
    assert config.model.tasks == ("retrieval", "kg")
    assert config.train.lr == 2e-3  # default kept


SHIPPED_CONFIGS = sorted((Path(__file__).parents[2] / "scripts" / "configs").glob("*.yaml"))
SOURCE_ML100K = Path(__file__).parents[2] / "scripts" / "configs" / "ml-100k.yaml"


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    """Every config in scripts/configs passes the same checks as a user's (keys, types, values)."""
    config = load_config(path, [])
    assert config.model.tasks


def test_shipped_configs_are_found():
    assert {p.name for p in SHIPPED_CONFIGS} >= {"ml-100k.yaml", "ml-1m.yaml", "bookcrossing.yaml", "ifashion.yaml"}


# Settings that grow with the data stay off in the defaults (README "Defaults").
OPT_IN = {("model", "distill_weight"), ("model", "distill_temperature"), ("model", "rating_autorec_units")}
# Configs for catalogues where the full softmax is what a step costs (README "Defaults"): their
# retrieval loss is not the default's.
LARGE_CATALOGUE = {"ifashion.yaml"}
# Configs for click-through on items new at test time: no retrieval tower (README: Pairs labelled 0).
CLICK_THROUGH = {"dkn.yaml"}


def test_defaults_are_the_settings_every_shipped_config_shares():
    import yaml

    defaults = to_dict(RunConfig())
    files = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in SHIPPED_CONFIGS
             if path.name not in LARGE_CATALOGUE | CLICK_THROUGH]
    shared = {
        (section, key): values[0]
        for section, fields in files[0].items()
        for key in fields
        if len(values := [f.get(section, {}).get(key, "missing") for f in files]) and all(v == values[0] for v in values)
    }
    assert ("model", "retrieval_loss") in shared and ("train", "weight_decay") in shared
    for (section, key), value in shared.items():
        if (section, key) not in OPT_IN:
            assert defaults[section][key] == (list(value) if isinstance(value, tuple) else value), (section, key)


def test_unknown_key_names_the_key_the_closest_field_and_the_choices():
    with pytest.raises(ConfigError, match=r"unknown key 'train.epochs' \(did you mean 'max_epochs'\?\); expected one of: .*max_epochs"):
        load_config(None, ["train.epochs=3"])
    with pytest.raises(ConfigError, match=r"unknown key 'train.qqq'; expected one of"):  # nothing close
        load_config(None, ["train.qqq=3"])


def test_errors_about_a_key_of_the_file_say_where_it_is_written(tmp_path):
    path = tmp_path / "run.yaml"

    def error(text: str, *overrides: str) -> str:
        path.write_text(text)
        with pytest.raises(ConfigError) as raised:
            load_config(path, list(overrides))
        return str(raised.value)

    assert error("train:\n  lr: 0.001\nmodel:\n  dimm: 3\n").startswith(f"{path}:4:3: unknown key 'model.dimm' (did you mean 'dim'?)")
    assert error("model:\n  dim: big\n") == f"{path}:2:3: model.dim: expected int, found 'big'"
    assert error("model:\n  dim: big\n", "model.dim=bigger") == "model.dim: expected int, found 'bigger'"  # typed, not written
    assert error("model:\n  tasks: [rating]\n", "model.dimm=3").startswith("unknown key 'model.dimm'")
    assert error("model:\n  trunk_hidden: [64, x]\n").startswith(f"{path}:2:22: model.trunk_hidden[1]: expected int")  # the item itself
    # the checks a config runs on itself name their key (ConfigError.key), which need not lead the message
    assert error("model:\n  dim: 8\n  tasks: [retrieval, ratingg]\n").startswith(f"{path}:3:3: model.tasks: expected a non-empty subset")
    assert error("model:\n  dim: 8\n  graph_layers: -1\n").startswith(f"{path}:3:3: model.dim >= 1 and model.graph_layers")
    assert error("train:\n  teacher_perplexity: 20\nmodel:\n  distill_weight: 1\n  distill_temperature: 0.5\n").startswith(
        f"{path}:5:3: train.teacher_perplexity=")  # across sections
    assert error("eval:\n  monitor: auc\nmodel:\n  tasks: [retrieval]\n").startswith(f"{path}:2:3: eval.monitor 'auc' needs the like task")
    assert error("model:\n  use_item_id: false\n  use_text: false\n  use_graph: false\n").startswith(f"{path}:1:1: model: at least one")
    assert error("data:\n  seed: 1\n  ratios: [0.5, 0.5, 0.5]\n").startswith(f"{path}:3:3: data: split ratios (0.5, 0.5, 0.5)")
    assert error("data:\n  cold_item_share: 1.5\n").startswith(f"{path}:2:3: data: cold_item_share 1.5")


def test_every_check_of_the_config_sections_names_its_key():
    """`locate` finds a check's key from ConfigError.key alone, so every raise in the sections' own
    checks must pass one."""
    import ast
    import inspect

    import kgrec.models.config
    import kgrec.text.config
    import kgrec.train.config

    for module in (kgrec.models.config, kgrec.text.config, kgrec.train.config):
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and getattr(node.exc.func, "id", "") == "ConfigError":
                assert any(k.arg == "key" for k in node.exc.keywords), f"{module.__name__}:{node.lineno}: ConfigError without key="


def test_invalid_yaml_points_at_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  trunk: [ple\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+:\d+: not valid YAML"):
        load_config(path)


def test_config_round_trips_through_a_dict():
    config = load_config(None, ["model.trunk=mmoe", "data.ratios=[0.7,0.15,0.15]"])
    assert from_dict(RunConfig, to_dict(config)) == config


def test_switching_a_tower_off_keeps_the_other_weights_and_refuses_unknown_tasks():
    weighted = ["model.loss_weights={retrieval: 1.0, rating: 0.1, like: 0.1, kg: 0.1}"]
    config = load_config(None, [*weighted, "model.tasks=[retrieval,kg]"])
    assert config.model.loss_weights == {"retrieval": 1.0, "kg": 0.1}
    with pytest.raises(ConfigError, match=r"model.loss_weights: unknown tasks \['ratings'\]"):
        load_config(None, ["model.loss_weights={ratings: 0.1}"])


def test_overrides_of_text_fields_keep_the_text_typed():
    config = load_config(None, ["data.path=/data/my #1 copy", "text.template={movie_title}", "data.name=no",
                                "graph.recipe=null", "text.model='quoted'", "train.devices=2"])  # fmt: skip
    assert config.data.path == "/data/my #1 copy" and config.text.template == "{movie_title}"
    assert config.data.name == "no" and config.graph.recipe is None and config.text.model == "quoted"
    assert config.train.devices == 2  # int | str: parsed
    config = load_config(None, ["text.template=#{movie_title}", 'text.model="Heat": the film', "data.path="])
    assert config.text.template == "#{movie_title}" and config.text.model == '"Heat": the film'
    assert config.data.path is None


def test_mapping_values_are_converted_and_checked():
    config = load_config(None, ["model.loss_weights={retrieval: 1, rating: 1e-4}", "model.loss_weights.like=0.5"])
    assert config.model.loss_weights == {"retrieval": 1.0, "rating": 1e-4, "like": 0.5}
    with pytest.raises(ConfigError, match="model.loss_weights.rating: expected float, found 'abc'"):
        load_config(None, ["model.loss_weights={rating: abc}"])


def test_error_metrics_and_the_lists_popularity_and_gini_rank_lower_first():
    from kgrec.train.config import monitor_mode

    assert [monitor_mode(m) for m in ("rmse", "mae", "popularity@10", "gini@20")] == ["min"] * 4
    assert [monitor_mode(m) for m in ("ndcg@10", "auc", "coverage@10", "tail@10", "kg_mrr")] == ["max"] * 5


@pytest.mark.parametrize(("override", "message"), [
    ("train.lr=-1", "train.lr: expected a positive learning rate, got -1.0"),
    ("train.lr=nan", "train.lr: expected a positive learning rate, got nan"),
    ("train.weight_decay=-0.1", "train.weight_decay: expected an L2 weight >= 0"),
    ("train.batch_size=0", "train.batch_size: expected at least 1 interaction per step"),
    ("train.max_epochs=0", "train.max_epochs: expected at least 1 epoch"),
    ("train.num_negatives=0", "train.num_negatives: expected at least 1 negative"),
    ("eval.ks=[]", r"eval.ks: expected distinct cut-offs >= 1, e.g. \[10, 20\], got \[\]"),
    ("eval.ks=[0,10]", r"eval.ks: expected distinct cut-offs >= 1"),
    ("eval.ks=[10,10]", r"eval.ks: expected distinct cut-offs >= 1"),
    ("eval.batch_size=0", "eval.batch_size: expected at least 1 user per batch"),
])  # fmt: skip
def test_values_training_cannot_use_are_refused_when_the_config_loads(override, message):
    with pytest.raises(ConfigError, match=message) as error:
        load_config(None, [override])
    assert error.value.key == override.split("=")[0]


def test_a_dataset_s_config_is_found_by_its_name(tmp_path, monkeypatch):
    from kgrec.train.config import SOURCE_CONFIGS, find_config_file

    monkeypatch.chdir(tmp_path)  # no scripts/configs here: kgrec's own are found
    assert find_config_file() == SOURCE_CONFIGS / "ml-100k.yaml"  # data.name's default, fetched
    assert find_config_file([f"data.path={tmp_path / 'ml-100k'}"]) == SOURCE_CONFIGS / "ml-100k.yaml"
    assert find_config_file(["data.path=data/ml-1m/"]) == SOURCE_CONFIGS / "ml-1m.yaml"
    assert find_config_file(["data.path=data/shop"]) is None  # the built-in defaults
    (tmp_path / "scripts" / "configs").mkdir(parents=True)
    (tmp_path / "scripts" / "configs" / "shop.yaml").write_text("model:\n  dim: 8\n")
    assert find_config_file(["data.path=data/shop"]) == Path("scripts/configs/shop.yaml")  # the working folder's first


def test_kgrec_train_without_config_uses_the_dataset_s_and_says_so(capsys):
    from kgrec.cli.main import main

    assert main(["train", "--print-config"]) == 0  # ml-100k, fetched: scripts/configs/ml-100k.yaml
    out, err = capsys.readouterr()
    assert err.startswith("config: ") and "ml-100k.yaml (the dataset's, found by its name; --config none" in err
    assert yaml.safe_load(out) == yaml.safe_load(config_yaml(load_config(SOURCE_ML100K)))
    assert main(["train", "--print-config", "--config", "none"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and yaml.safe_load(out) == yaml.safe_load(config_yaml(load_config(None)))


@pytest.mark.parametrize(("recbole", "ours"), [("learning_rate", "train.lr"), ("epochs", "train.max_epochs"),
                                               ("stopping_step", "train.patience"), ("embedding_size", "model.dim"),
                                               ("topk", "eval.ks"), ("valid_metric", "eval.monitor")])  # fmt: skip
def test_recbole_names_are_told_kgrecs(recbole, ours, tmp_path):
    """A RecBole user's keys were "unknown key 'learning_rate'; expected one of: data, eval, ..."."""
    with pytest.raises(ConfigError, match=rf"^unknown key '{recbole}': that is RecBole's name; kgrec's is {ours} "):
        load_config(None, [f"{recbole}=1"])
    written = tmp_path / "recbole.yaml"
    written.write_text(f"{recbole}: 1\n")
    with pytest.raises(ConfigError, match=rf"recbole.yaml:1:1: unknown key '{recbole}': that is RecBole's name"):
        load_config(written)
    section, field = ours.split(".")
    assert hasattr(getattr(load_config(None), section), field)  # the name told is kgrec's


def test_no_recbole_name_is_a_field_of_a_kgrec_section():
    """Those get the sections holding them (``seed``: data.seed or train.seed), not one of them."""
    import dataclasses

    from kgrec.train.config import RECBOLE_NAMES

    config = load_config(None)
    fields = {f.name for s in dataclasses.fields(config) if dataclasses.is_dataclass(v := getattr(config, s.name))
              for f in dataclasses.fields(v)}  # fmt: skip
    assert not fields & set(RECBOLE_NAMES)


def test_the_monitor_is_read_in_any_letter_case():
    """RecBole writes NDCG@10: it was refused as an unknown metric."""
    assert load_config(None, ["eval.monitor=NDCG@10"]).eval.monitor == "ndcg@10"
    assert load_config(None, ["eval.monitor=Recall@20"]).eval.monitor == "recall@20"
