"""Config input that is almost right: YAML keys that are not names, values the model cannot be
built with, ``--set`` values that fit no type of a field that takes several."""

from __future__ import annotations

import pytest

from kgrec.cli.main import main
from kgrec.errors import ConfigError
from kgrec.train import load_config


def error(path=None, *overrides: str) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        load_config(path, list(overrides))
    return raised.value


def test_a_key_yaml_reads_as_a_boolean_null_or_number_is_refused_where_it_is_written(tmp_path, capsys):
    """`true:`, `no:`, `null:`, `3:` are keys of another type than text: at the top level they were
    an AttributeError or TypeError traceback; inside a section, placed at the section's line."""
    path = tmp_path / "my.yaml"
    path.write_text("model:\n  dim: 8\ntrue: 1\n")
    assert str(error(path)).startswith(f"{path}:3:1: unknown key 'True'; expected one of: data, eval")
    path.write_text("model:\n  dim: 8\nfoo: 1\nno: 2\n")  # keys of mixed types: sorting them failed
    assert str(error(path)).startswith(f"{path}:4:1: unknown key 'False'")
    path.write_text("model:\n  dim: 8\n  null: 1\n")
    assert str(error(path)).startswith(f"{path}:3:3: unknown key 'model.None'")
    path.write_text("train:\n  lr: 0.01\n  3: 1\n")
    assert str(error(path)).startswith(f"{path}:3:3: unknown key 'train.3'")
    path.write_text("true: 1\n")
    assert main(["train", "--config", str(path), "--print-config"]) == 2
    assert capsys.readouterr().err == f"kgrec: error: {path}:1:1: unknown key 'True'; expected one of: data, eval, graph, model, text, train\n"


@pytest.mark.parametrize(("override", "message"), [
    ("model.text_dropout=1.5", "model.text_dropout: expected a probability in [0, 1], got 1.5"),
    ("model.graph_dropout=-0.1", "model.graph_dropout: expected a probability in [0, 1], got -0.1"),
    ("model.trunk_dropout=2", "model.trunk_dropout: expected a probability in [0, 1], got 2.0"),
    ("model.tower_dropout=.nan", "model.tower_dropout: expected a probability in [0, 1], got nan"),
    ("model.retrieval_temperature=0", "model.retrieval_temperature: expected > 0, got 0.0"),
    ("model.init_std=-1", "model.init_std: expected >= 0, got -1.0"),
    ("model.num_experts=0", "model.num_experts: expected >= 1, got 0"),
    ("model.text_experts=0", "model.text_experts: expected >= 1, got 0"),
    ("model.ple_levels=0", "model.ple_levels: expected >= 1, got 0"),
    ("model.num_task_experts=0", "model.num_task_experts: expected >= 1, got 0"),
    ("model.num_shared_experts=-1", "model.num_shared_experts: expected >= 0, got -1"),
    ("model.graph_bases=0", "model.graph_bases: expected >= 1 or null, got 0"),
    ("model.trunk_hidden=[64,0]", "model.trunk_hidden: expected layer sizes >= 1, got [64, 0]"),
    ("model.tower_hidden=[-8]", "model.tower_hidden: expected layer sizes >= 1, got [-8]"),
    ("model.loss_weights={retrieval: 1, rating: -1}", "model.loss_weights: expected weights >= 0, got {'retrieval': 1.0, 'rating': -1.0}"),
    ("text.finetune_lr=-1", "text.finetune_lr: expected a positive learning rate, got -1.0"),
    ("train.teacher_reg=.inf", "train.teacher_reg: expected a positive, finite L2 weight or null, got inf"),
    ("train.teacher_user_reg=.inf", "train.teacher_user_reg: expected a positive, finite L2 weight or null, got inf"),
    ("train.seed=18446744073709551616", "train.seed: expected an integer from -2**63 to 2**64 - 1, got 18446744073709551616"),
    ("data.seed=-1", "data: seed -1: expected an integer from 0 to 2**64 - 1"),
])  # fmt: skip
def test_values_the_model_cannot_be_built_or_trained_with_are_refused_when_the_config_loads(override, message):
    """They were a torch ValueError / RuntimeError traceback once the graph was built and the text
    encoded (a negative text.finetune_lr trained the text encoder uphill without a word)."""
    raised = error(None, override)
    assert str(raised) == message
    assert raised.key == override.partition("=")[0]


def test_a_check_of_the_model_says_where_the_config_file_writes_the_key(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("model:\n  dim: 8\n  trunk_dropout: 1.5\n")
    assert str(error(path)) == f"{path}:3:3: model.trunk_dropout: expected a probability in [0, 1], got 1.5"


@pytest.mark.parametrize(("override", "message"), [
    ("train.deterministic=1", "train.deterministic: expected bool or str, found 1"),
    ("train.deterministic=null", "train.deterministic: expected bool or str, found None"),
    ("train.devices=[0,1]", "train.devices: expected int or str, found [0, 1]"),
    ("train.devices=1.5", "train.devices: expected int or str, found 1.5"),
    ("train.precision=16.0", "train.precision: expected str or int, found 16.0"),
    ("train.precision=null", "train.precision: expected str or int, found None"),
    ("train.teacher_recency_hours=true", "train.teacher_recency_hours: expected float, str or null, found True"),
])  # fmt: skip
def test_a_value_that_fits_no_type_of_a_field_names_every_type_it_takes(override, message):
    """Only the first type was named (`train.deterministic: expected bool, found 1`), as though
    `warn` or `auto` were not values of the field."""
    assert str(error(None, override)) == message


def test_a_section_given_as_a_mapping_sets_its_fields_and_keeps_the_others(tmp_path):
    """`--set "model={trunk: ple}"` had replaced the whole section: every field the config file
    set (here dim 32) went back to its default without a word."""
    path = tmp_path / "my.yaml"
    path.write_text("model:\n  dim: 32\n  trunk: mmoe\ntrain:\n  lr: 0.01\n")
    config = load_config(path, ["model={trunk: ple}"])
    assert (config.model.dim, config.model.trunk, config.train.lr) == (32, "ple", 0.01)
    config = load_config(path, ["model={trunk: ple}", "model.dim=16", "model={graph_layers: 1}"])
    assert (config.model.dim, config.model.trunk, config.model.graph_layers) == (16, "ple", 1)  # in order, each kept
    assert load_config(None, ["model={trunk: ple}", "model={dim: 16}"]).model.trunk == "ple"
    assert load_config(path, ["model.loss_weights={rating: 1}"]).model.loss_weights == {"rating": 1.0}  # a value: replaced
    assert str(error(path, "model=5")).endswith("model: expected a mapping, found int")
