"""Warm start (``train.init_from``): what an audit found carried wrongly or silently."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kgrec.errors import ConfigError
from kgrec.train import build_model, prepare, train
from kgrec.train.warm_start import dataset_row_tokens, warm_start
from tests.conftest import tiny_config


def relations_reordered(clustered: Path, folder: Path) -> Path:
    """The clustered data with its KG's 'film.genre' triples listed first: the graph numbers its
    relations in the order it meets them, so the two relations swap ids."""
    data = Path(shutil.copytree(clustered, folder / clustered.name))
    header, *rows = (data / "clusters.kg").read_text().splitlines()
    rows.sort(key=lambda row: "film.genre" not in row)
    (data / "clusters.kg").write_text("\n".join([header, *rows]) + "\n")
    return data


@pytest.mark.parametrize("encoder", [["model.graph_bases=null"], ["model.graph_kind=compgcn"], ["model.graph_kind=kgat"]],
                         ids=["rgcn", "compgcn", "kgat"])  # fmt: skip
def test_without_inverse_relations_the_encoder_relations_follow_their_names(clustered_dataset, tmp_path, encoder):
    """With model.graph_add_inverse=false the encoder has one row per relation, not two: its
    relation tables were copied by position, each relation taking another's weights."""
    config = ["model.graph_add_inverse=false", *encoder]
    train(tiny_config(clustered_dataset, "train.max_epochs=1", *config), tmp_path / "run")
    data = relations_reordered(clustered_dataset, tmp_path / "new")
    prepared = prepare(tiny_config(data, *config), progress=False)
    old = prepare(tiny_config(clustered_dataset, *config), progress=False)
    names, old_names = list(prepared.graph.relation_names), list(old.graph.relation_names)
    assert names == old_names[::-1]  # the relations swapped ids
    model = build_model(tiny_config(data, *config), prepared)
    report = warm_start(model, tmp_path / "run", dataset_row_tokens(prepared.dataset, prepared.graph))
    saved, state = load_file(str(tmp_path / "run" / "model.safetensors")), model.state_dict()
    tables = [n for n in state if n.startswith("graph_encoder.") and n != "graph_encoder.embedding.weight"
              and state[n].dim() and state[n].shape[0] == len(names)]  # fmt: skip
    assert tables
    for name in tables:
        for relation in names:
            torch.testing.assert_close(state[name][names.index(relation)], saved[name][old_names.index(relation)], msg=name)
    assert report.carried == report.tensors


def test_a_text_adaptor_learned_on_another_text_model_is_named(clustered_dataset, tiny_models, monkeypatch, tmp_path):
    """The text adaptor maps the vectors of the run's text.model: carried onto another
    transformer's vectors of the same width, it was carried without a word."""
    monkeypatch.setenv("KGREC_HOME", str(tmp_path / "home"))
    first, other = tiny_models
    train(tiny_config(clustered_dataset, "train.max_epochs=1", "model.use_text=true", f"text.model={first}"), tmp_path / "run")

    def note(text_model: str) -> str:
        config = tiny_config(clustered_dataset, "model.use_text=true", f"text.model={text_model}")
        prepared = prepare(config, progress=False)
        tokens = dataset_row_tokens(prepared.dataset, prepared.graph)
        return warm_start(build_model(config, prepared), tmp_path / "run", tokens, text_model=text_model).note()

    assert f"text.model {first} (the run's item texts were encoded by it, here by {other}" in note(other)
    assert "text.model" not in note(first)


def test_a_run_config_that_cannot_be_read_is_refused_in_one_line_before_any_work(clustered_dataset, tmp_path):
    """The run's config.yaml tells how its encoder numbers relations and which text.model it read."""
    train(tiny_config(clustered_dataset, "train.max_epochs=1"), tmp_path / "run")
    (tmp_path / "run" / "config.yaml").write_text("model: [")
    with pytest.raises(ConfigError, match=r"^train.init_from: .*config.yaml.*not valid YAML.*restore the file or retrain that run$"):
        train(tiny_config(clustered_dataset, f"train.init_from={tmp_path / 'run'}"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
