"""Training edge cases found in an audit: resuming a run interrupted after training had ended,
a rating or like tower that diverges, selecting on AUC with one label in valid, a large seed."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import kgrec.train.run as run_module
from kgrec.errors import ConfigError
from kgrec.train import train
from tests.conftest import tiny_config

SUMMARY = ("epochs", "best_epoch", "stopped_by")


class _CutInSave(Exception):
    """Stands for a Ctrl+C (or a crash) once training has ended: in the test evaluation, the save or the plot."""


def _interrupt_while_saving(monkeypatch) -> dict:
    """Make the next run stop in ``save_run``; the returned dict gets the metrics and weights it would have saved."""
    seen: dict = {}

    def cut(out, config, prepared, model, metrics, sources, text_encoder=None):  # save_run's signature
        seen.update(metrics=metrics, state={k: v.detach().clone() for k, v in model.state_dict().items()})
        raise _CutInSave

    monkeypatch.setattr(run_module, "save_run", cut)
    return seen


class SlowStart(L.Callback):
    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 0:
            time.sleep(1.0)


def test_a_run_early_stopping_ended_resumes_without_training_more_epochs(clustered_dataset, tmp_path, monkeypatch):
    # BPR with ID-only users: valid hit@20 stops improving within a few epochs on this data, and
    # improves again later, so a resumed run that trained on would keep another epoch.
    config = tiny_config(clustered_dataset, "train.max_epochs=8", "train.patience=1", "eval.monitor=hit@20",
                         "model.retrieval_loss=bpr", "model.user_encoder=id")  # fmt: skip
    seen = _interrupt_while_saving(monkeypatch)
    with pytest.raises(_CutInSave):
        train(config, tmp_path / "run")
    assert seen["metrics"]["stopped_by"] == "early_stopping" and seen["metrics"]["epochs"] < 8
    monkeypatch.undo()
    metrics = train(config, tmp_path / "run")
    assert metrics["resumed"]
    assert {k: metrics[k] for k in SUMMARY} == {k: seen["metrics"][k] for k in SUMMARY}
    assert metrics["test"] == seen["metrics"]["test"]
    saved = load_file(str(tmp_path / "run" / "model.safetensors"))
    for key, value in seen["state"].items():
        assert torch.equal(saved[key], value), key


def test_a_run_max_minutes_ended_resumes_with_its_epoch_count(clustered_dataset, tmp_path, monkeypatch):
    config = tiny_config(clustered_dataset, "train.max_epochs=5", "train.patience=100", "train.max_minutes=0.01")  # 0.6 s
    seen = _interrupt_while_saving(monkeypatch)
    with pytest.raises(_CutInSave):
        train(config, tmp_path / "run", callbacks=[SlowStart()])
    assert seen["metrics"]["epochs"] == 1 and seen["metrics"]["stopped_by"] == "max_minutes"
    monkeypatch.undo()
    metrics = train(config, tmp_path / "run")
    assert metrics["resumed"]
    assert {k: metrics[k] for k in SUMMARY} == {k: seen["metrics"][k] for k in SUMMARY}


@pytest.mark.parametrize("task", ["rating", "like"])
def test_a_diverged_rating_or_like_run_says_to_lower_the_learning_rate(clustered_dataset, tmp_path, task):
    # the retrieval and kg towers' NaN scores already said so; the rating and like towers' were a ValueError
    config = tiny_config(clustered_dataset, f"model.tasks=[{task}]", "train.lr=1e8", "train.max_epochs=2")
    with pytest.raises(ConfigError, match=r"train.lr: training diverged in epoch 0: .*lower train.lr"):
        train(config, tmp_path / "run")


def _given_split(root: Path, valid_rating: int | None = None, n_users: int = 12, n_items: int = 24) -> Path:
    """A folder with its own split: each user rates 6 items in train and one each in valid and
    test (ratings 1-5 at random; every valid rating ``valid_rating`` when given)."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    head = "user_id:token\titem_id:token\trating:float"
    parts: dict[str, list[str]] = {"train": [head], "valid": [head], "test": [head]}
    for u in range(n_users):
        items = rng.permutation(n_items)
        parts["train"] += [f"u{u}\ti{i}\t{rng.integers(1, 6)}" for i in items[:6]]
        parts["valid"].append(f"u{u}\ti{items[6]}\t{valid_rating or rng.integers(1, 6)}")
        parts["test"].append(f"u{u}\ti{items[7]}\t{rng.integers(1, 6)}")
    for part, lines in parts.items():
        (root / f"{root.name}.{part}.inter").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("settings", [["model.tasks=[like]"], ["model.tasks=[retrieval,like]", "eval.monitor=auc"]])
def test_selecting_on_auc_when_every_valid_rating_is_a_like_is_refused_before_training(tmp_path, settings):
    # it was a KeyError: 'auc' from the first validation, after the graph, the text and the teacher
    data = _given_split(tmp_path / "likes", valid_rating=5)
    with pytest.raises(ConfigError, match=r"eval.monitor auc: every valid rating of likes is >= 4.*") as raised:
        train(tiny_config(data, "eval.ks=[5,10]", *settings), tmp_path / "run")
    assert raised.value.key == "eval.monitor"
    assert not (tmp_path / "run").exists()


def test_a_seed_as_large_as_a_nanosecond_timestamp_trains(clustered_dataset, tmp_path):
    # torch takes seeds up to 2**64 - 1; the epoch's shuffle multiplied this one past that (an overflow after the teacher)
    config = tiny_config(clustered_dataset, "train.seed=1733000000000000000", "train.max_epochs=1")
    assert train(config, tmp_path / "run")["epochs"] == 1
