"""Warm start (``train.init_from``): a finished run's weights carried into a new model, rows by id."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

from kgrec.errors import ConfigError
from kgrec.train import build_model, check_before_training, prepare, train
from kgrec.train.warm_start import dataset_row_tokens, row_axis, warm_start
from tests.conftest import tiny_config

VARIANTS = {
    "rgcn with bases": [],
    "rgcn without bases": ["model.graph_bases=null"],
    "compgcn": ["model.graph_kind=compgcn"],
    "kgat": ["model.graph_kind=kgat"],
    "collaborative graph, user graph vectors": ["graph.users=true", "model.user_encoder=id+history+graph"],
    "uncertainty weights": ["model.tasks=[retrieval,rating,like,kg]", "model.loss_mode=uncertainty"],
}


@pytest.fixture(scope="module")
def first_run(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("warm") / "first"
    train(tiny_config(clustered_dataset, "train.max_epochs=1"), out)
    return out


def changed_dataset(clustered: Path, folder: Path) -> Path:
    """The clustered data with a new user 'newcomer' and a new item i60 (rated by u1 and the
    newcomer, linked to a new entity e60 of a new relation), both listed first, so that every
    other user and item moves one row down."""
    data = Path(shutil.copytree(clustered, folder / clustered.name))
    header, *rows = (data / "clusters.inter").read_text().splitlines()
    extra = ["newcomer\ti1\t5\t9001", "newcomer\ti5\t4\t9002", "newcomer\ti60\t5\t9003", "u1\ti60\t4\t9004"]
    (data / "clusters.inter").write_text("\n".join([header, *extra, *rows]) + "\n")
    header, *rows = (data / "clusters.item").read_text().splitlines()
    (data / "clusters.item").write_text("\n".join([header, "i60\tFilm 60\tComedy", *rows]) + "\n")
    with open(data / "clusters.kg", "a") as handle:
        handle.write("e60\tfilm.genre\tg0\ne60\tfilm.sequel_of\te1\n")
    with open(data / "clusters.link", "a") as handle:
        handle.write("i60\te60\n")
    return data


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_tensor_whose_rows_are_users_items_nodes_or_relations_is_declared(clustered_dataset, variant):
    """A new row table missing from ROW_AXES would be copied by position, to other users' rows."""
    config = tiny_config(clustered_dataset, *VARIANTS[variant])
    prepared = prepare(config, progress=False)
    model = build_model(config, prepared)
    tokens = dataset_row_tokens(prepared.dataset, prepared.graph)
    # users (40), items (60) and nodes are longer than any layer's width here (at most 32), so a
    # tensor with that many rows is a table of them; the few relations are told by name
    lengths = {len(rows): axis for axis, rows in tokens.items() if axis in ("user", "item", "node")}
    assert len(lengths) == 3 and min(lengths) > 32, lengths
    bases = model.graph_encoder.num_bases if model.graph_encoder is not None else None
    for name, tensor in model.state_dict().items():
        if bases and re.fullmatch(r"graph_encoder\.layers\.\d+\.weight", name):
            assert tensor.shape[0] == bases  # an R-GCN's bases, not relations: copied whole
        elif tensor.dim() and tensor.shape[0] in lengths:
            assert row_axis(name) == lengths[tensor.shape[0]], name
        elif re.search(r"rel|comp", name) and not re.search(r"\.loop_rel$|\.w_rel\.|\.rel_update", name):
            assert row_axis(name) in ("relation", "encoder_relation"), name


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_on_the_same_data_every_tensor_is_carried(clustered_dataset, tmp_path, variant):
    config = tiny_config(clustered_dataset, "train.max_epochs=1", *VARIANTS[variant])
    train(config, tmp_path / "run")
    prepared = prepare(config, progress=False)
    model = build_model(config, prepared)
    report = warm_start(model, tmp_path / "run", dataset_row_tokens(prepared.dataset, prepared.graph))
    saved = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert report.carried == report.tensors == len(saved) and not report.not_carried
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, saved[name], rtol=0, atol=0, msg=name)
    model.eval()
    with torch.no_grad():  # the carried model is the run's: the same vectors as it saved
        item_vectors = model.item_vectors(model.encode())
    torch.testing.assert_close(item_vectors, load_file(str(tmp_path / "run" / "vectors.safetensors"))["item"], rtol=1e-5, atol=1e-5)


def test_rows_follow_their_ids_and_new_ids_keep_their_initialisation(clustered_dataset, first_run, tmp_path):
    data = changed_dataset(clustered_dataset, tmp_path)
    config = tiny_config(data)
    prepared = prepare(config, progress=False)
    model = build_model(config, prepared)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    report = warm_start(model, first_run, dataset_row_tokens(prepared.dataset, prepared.graph))
    saved = load_file(str(first_run / "model.safetensors"))
    old = prepare(tiny_config(clustered_dataset), progress=False)
    ds, state = prepared.dataset, model.state_dict()
    users, old_users = [str(u) for u in ds.users], [str(u) for u in old.dataset.users]
    items, old_items = [str(i) for i in ds.items], [str(i) for i in old.dataset.items]
    assert users.index("u5") != old_users.index("u5") and items.index("i7") != old_items.index("i7")  # rows moved
    for name, table, old_ids, ids in [("user_encoder.id_embedding.weight", "user", old_users, users),
                                      ("item_embedding.weight", "item", old_items, items),
                                      ("towers.rating.item_bias.weight", "item", old_items, items)]:  # fmt: skip
        for token in ("u5", "u39") if table == "user" else ("i7", "i59"):
            torch.testing.assert_close(state[name][ids.index(token)], saved[name][old_ids.index(token)])
        new = "newcomer" if table == "user" else "i60"
        torch.testing.assert_close(state[name][ids.index(new)], fresh[name][ids.index(new)])
    nodes = dataset_row_tokens(ds, prepared.graph)["node"]
    old_nodes = dataset_row_tokens(old.dataset, old.graph)["node"]
    g = "graph_encoder.embedding.weight"
    for token in ("1:d2_1", "0:i7"):
        torch.testing.assert_close(state[g][nodes.index(token)], saved[g][old_nodes.index(token)])
    assert report.rows["user"] == (40, 41) and report.rows["item"] == (60, 61)
    assert report.rows["relation"][0] == report.rows["relation"][1] - 1  # film.sequel_of is new
    assert report.carried == report.tensors
    assert "users 40 of 41 by id; items 60 of 61 by id" in report.note()


def test_what_cannot_be_carried_is_named_and_left_as_initialised(clustered_dataset, first_run):
    config = tiny_config(clustered_dataset, "model.dim=8")
    prepared = prepare(config, progress=False)
    model = build_model(config, prepared)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    report = warm_start(model, first_run, dataset_row_tokens(prepared.dataset, prepared.graph))
    assert report.carried < report.tensors
    assert "user_encoder.id_embedding.weight (shape (40, 16) in the run, (40, 8) here)" in report.not_carried
    torch.testing.assert_close(model.state_dict()["user_encoder.id_embedding.weight"], fresh["user_encoder.id_embedding.weight"])
    assert "left as initialised: " in report.note()


def test_kgrec_train_starts_from_the_run_and_says_what_it_carried(clustered_dataset, first_run, tmp_path, capsys):
    from kgrec.cli.main import main

    code = main(["train", "--data", str(clustered_dataset), "--out", str(tmp_path / "warm"),
                 *[a for o in tiny_config_overrides("train.max_epochs=1") for a in ("--set", o)],
                 "--set", f"train.init_from={first_run}"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0 and f"note: warm start from {first_run}: " in err and "users 40 of 40 by id" in err
    assert f"init_from: {first_run}" in (tmp_path / "warm" / "config.yaml").read_text()


def test_init_from_that_is_not_a_finished_run_is_refused_before_any_work(clustered_dataset, tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(ConfigError, match=r"train.init_from: .*half: not a finished kgrec run \(no manifest.json\)"):
        train(tiny_config(clustered_dataset, f"train.init_from={tmp_path / 'half'}"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match=r"train.init_from: expected a run folder or null"):
        tiny_config(clustered_dataset, "train.init_from=' '")


def tiny_config_overrides(*extra: str) -> list[str]:
    from tests.conftest import TINY_OVERRIDES

    return [*TINY_OVERRIDES, *extra]


def test_a_run_on_other_data_is_noted(clustered_dataset, first_run):
    config = tiny_config(clustered_dataset)
    prepared = prepare(config, progress=False)
    report = warm_start(build_model(config, prepared), first_run, dataset_row_tokens(prepared.dataset, prepared.graph), "shop")
    assert "tensors (the run trained on clusters: its ids are matched as they are)" in report.note()


def test_an_interrupted_warm_run_resumes_without_the_run_it_started_from(clustered_dataset, first_run, tmp_path):
    """A resume continues from its own checkpoint: the run named by init_from may be gone."""
    source = Path(shutil.copytree(first_run, tmp_path / "source"))
    config = tiny_config(clustered_dataset, "train.max_epochs=3", f"train.init_from={source}")

    class CrashInSecondEpoch(L.Callback):  # the first epoch's checkpoint is written by then
        def on_train_epoch_end(self, trainer, module):
            if trainer.current_epoch == 1:
                raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, tmp_path / "run", callbacks=[CrashInSecondEpoch()])
    shutil.rmtree(source)
    assert train(config, tmp_path / "run")["resumed"] is True


def test_gradnorm_records_its_first_losses_afresh_and_carries_its_weights(clustered_dataset, tmp_path):
    config = tiny_config(clustered_dataset, "train.max_epochs=1", "model.tasks=[retrieval,rating,like,kg]", "model.loss_mode=gradnorm")
    train(config, tmp_path / "run")
    prepared = prepare(config, progress=False)
    model = build_model(config, prepared)
    report = warm_start(model, tmp_path / "run", dataset_row_tokens(prepared.dataset, prepared.graph))
    saved = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert report.not_carried == ["joint_loss.initial_losses (GradNorm's first losses, recorded afresh)"]
    assert torch.isnan(model.state_dict()["joint_loss.initial_losses"]).all()  # set by the first step
    torch.testing.assert_close(model.state_dict()["joint_loss.task_weights"], saved["joint_loss.task_weights"])


def test_a_run_missing_the_graph_its_manifest_lists_is_refused_before_any_work(clustered_dataset, first_run, tmp_path):
    """Without graph/ the graph's rows were silently left as initialised, 'as one model has no graph'."""
    run = Path(shutil.copytree(first_run, tmp_path / "copied"))
    shutil.rmtree(run / "graph")
    with pytest.raises(ConfigError, match=r"train.init_from: .*copied: graph missing \(the run's manifest.json lists it\)"):
        train(tiny_config(clustered_dataset, f"train.init_from={run}"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:500])


BROKEN = {
    "id_maps.json not JSON": ("id_maps.json", lambda p: p.write_text("{"), r"id_maps.json: not readable \(Expecting"),
    "id_maps.json a list": ("id_maps.json", lambda p: p.write_text("[]"), r"id_maps.json: expected a JSON object with"),
    "id_maps.json without items": ("id_maps.json", lambda p: p.write_text('{"users": []}'), r"id_maps.json: expected"),
    "model.safetensors garbage": ("model.safetensors", lambda p: p.write_bytes(b"garbage" * 10), r"model.safetensors: not readable"),
    "model.safetensors cut short": ("model.safetensors", truncated, r"model.safetensors: not readable"),
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_an_unreadable_id_map_or_weights_file_is_refused_in_one_line_before_any_work(clustered_dataset, first_run, tmp_path, broken):
    """These were a JSONDecodeError, KeyError, TypeError or SafetensorError traceback, after the data and graph were built."""
    name, damage, message = BROKEN[broken]
    run = Path(shutil.copytree(first_run, tmp_path / "copied"))
    damage(run / name)
    with pytest.raises(ConfigError, match=rf"^train.init_from: .*{message}.*restore the file or retrain that run$"):
        train(tiny_config(clustered_dataset, f"train.init_from={run}"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_fine_tuned_transformer_left_behind_is_named_unless_text_model_is_it(clustered_dataset, tiny_models, monkeypatch, tmp_path):
    """The run's text-encoder/ is not in its weights: a warm start encodes the texts with text.model
    (here the transformer before fine-tuning), under a text adaptor that learned on the fine-tuned one."""
    monkeypatch.setenv("KGREC_HOME", str(tmp_path / "home"))
    text = ["model.use_text=true", f"text.model={tiny_models[0]}", "text.finetune_layers=1", "text.finetune_lr=0.01"]
    train(tiny_config(clustered_dataset, "train.max_epochs=1", *text), tmp_path / "run")

    def note(*overrides: str) -> str:
        config = tiny_config(clustered_dataset, *text, *overrides)
        prepared = prepare(config, progress=False)
        model = build_model(config, prepared)
        tokens = dataset_row_tokens(prepared.dataset, prepared.graph)
        return warm_start(model, tmp_path / "run", tokens, text_model=config.text.model).note()

    left = f"left as initialised: text-encoder/ (the transformer the run fine-tuned: the item texts are encoded by text.model; text.model={tmp_path / 'run' / 'text-encoder'} starts from it)"
    assert left in note() and left in note("text.finetune_layers=0")
    assert "text-encoder" not in note(f"text.model={tmp_path / 'run' / 'text-encoder'}")


def test_user_feature_embeddings_are_named_as_left_as_initialised(clustered_dataset, tmp_path):
    data = Path(shutil.copytree(clustered_dataset, tmp_path / "data" / clustered_dataset.name))
    (data / "clusters.user").write_text("user_id:token\ttaste:token\n" + "".join(f"u{u}\tcluster{u % 4}\n" for u in range(40)))
    config = tiny_config(data, "train.max_epochs=1", "model.user_encoder=id+history+features")
    train(config, tmp_path / "run")
    carried = train(tiny_config(data, "train.max_epochs=1", "model.user_encoder=id+history+features", f"train.init_from={tmp_path / 'run'}"), tmp_path / "warm")
    assert carried["epochs"] == 1
    prepared = prepare(config, progress=False)
    report = warm_start(build_model(config, prepared), tmp_path / "run", dataset_row_tokens(prepared.dataset, prepared.graph))
    assert report.not_carried == ["user_encoder.feature_embedding.weight (its rows are user feature tokens: the run does not save their ids)"]
    assert report.carried == report.tensors - 1


def test_init_from_the_out_folder_with_overwrite_starts_from_its_weights(clustered_dataset, first_run, tmp_path):
    """--overwrite clears the folder only after the weights were read from it."""
    run = Path(shutil.copytree(first_run, tmp_path / "run"))
    before = load_file(str(run / "model.safetensors"))

    class FirstWeights(L.Callback):
        def on_train_start(self, trainer, module):
            self.state = {k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}

    seen = FirstWeights()
    train(tiny_config(clustered_dataset, "train.max_epochs=1", f"train.init_from={run}"), run, overwrite=True, callbacks=[seen])
    for name, tensor in before.items():
        torch.testing.assert_close(seen.state[name], tensor, rtol=0, atol=0, msg=name)
    assert (run / "manifest.json").is_file() and not torch.equal(load_file(str(run / "model.safetensors"))["item_embedding.weight"], before["item_embedding.weight"])


def test_init_from_the_out_folder_with_overwrite_under_ddp_is_refused_before_the_run_is_cleared(clustered_dataset, first_run, tmp_path):
    """Under DDP the other ranks read the weights after rank 0 has cleared the folder: refused
    while the run is still whole. (Two CPU processes: the trainer is only built, none started.)"""
    run = Path(shutil.copytree(first_run, tmp_path / "run"))
    files = sorted(p.relative_to(run) for p in run.rglob("*"))
    ddp = ("train.accelerator=cpu", "train.devices=2", "train.strategy=ddp")
    with pytest.raises(ConfigError, match=r"^train.init_from is --out \(.*run\), which --overwrite clears while the other 1 of the 2 training processes"):
        train(tiny_config(clustered_dataset, *ddp, f"train.init_from={run}"), run, overwrite=True)
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == files
    check_before_training(tiny_config(clustered_dataset, *ddp, f"train.init_from={run}"), tmp_path / "elsewhere", overwrite=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_model_on_the_gpu_takes_the_rows_of_a_run_read_on_the_cpu(clustered_dataset, first_run):
    config = tiny_config(clustered_dataset)
    prepared = prepare(config, progress=False)
    model = build_model(config, prepared).cuda()
    report = warm_start(model, first_run, dataset_row_tokens(prepared.dataset, prepared.graph))
    assert report.carried == report.tensors
    saved = load_file(str(first_run / "model.safetensors"))
    torch.testing.assert_close(model.item_embedding.weight.cpu(), saved["item_embedding.weight"], rtol=0, atol=0)
