import dataclasses
import json
import os
import signal
import sys
import time

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from kgrec.errors import ConfigError, KgrecError, TrainingInterrupted
from kgrec.models import RecBatch
from kgrec.train import build_model, load_data, prepare, train
from kgrec.train.module import RecommenderModule
from kgrec.train.plots import read_metrics_csv
from kgrec.train.run import _fit, warm_items
from kgrec.train.saved import evaluate_run, load_run
from tests.conftest import tiny_config, with_late_joiners


def full_train_losses(module: RecommenderModule) -> dict[str, float]:
    """Each task's loss on all training interactions (eval mode, fixed negatives/triples)."""
    model = module.model
    model.eval()
    generator = torch.Generator().manual_seed(0)
    user, item, rating = module.train_user, module.train_item, module.train_rating
    head, rel, tail = module.kg_triples
    batch = RecBatch(user=user, pos_item=item, rating=rating,
                     neg_items=module.sampler.sample(user, 1, generator),
                     kg_head=head, kg_rel=rel, kg_tail=tail,
                     kg_neg_tail=torch.randint(0, model.sizes.num_nodes, (len(head), 1), generator=generator))  # fmt: skip
    with torch.no_grad():
        losses = {k: float(v) for k, v in model.compute_losses(batch).items()}
    model.train()
    return losses


@pytest.mark.parametrize("kg_loss", ["softplus", "softmax"])
def test_one_epoch_lowers_every_task_loss(clustered_dataset, kg_loss):
    config = tiny_config(clustered_dataset, "model.tasks=[retrieval,rating,like,kg]", "model.rating_autorec_units=8",
                         f"model.kg_loss={kg_loss}")  # fmt: skip
    prepared = prepare(config, progress=False)
    from kgrec.train import build_model

    g = prepared.graph
    module = RecommenderModule(build_model(config, prepared), prepared.dataset, config,
                               tuple(torch.as_tensor(a) for a in (g.head, g.relation, g.tail)))  # fmt: skip
    before = full_train_losses(module)
    optimizer = module.configure_optimizers()
    for step, batch in enumerate(module.train_dataloader()):
        module.on_train_batch_start(batch, step)
        loss = module.model.joint_loss(module.model.compute_losses(RecBatch(
            user=batch[0], pos_item=batch[1], rating=batch[2],
            neg_items=module.sampler.sample(batch[0], 1, torch.Generator().manual_seed(step)),
            kg_head=module.kg_triples[0], kg_rel=module.kg_triples[1], kg_tail=module.kg_triples[2],
            kg_neg_tail=torch.randint(0, module.model.sizes.num_nodes, (len(module.kg_triples[0]), 1)),
        )))[0]  # fmt: skip
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = full_train_losses(module)
    assert set(before) == {"retrieval", "rating", "like", "kg"}
    for task in before:
        assert after[task] < before[task], (task, before[task], after[task])


def test_evaluation_scores_in_float32_inside_a_bf16_autocast(clustered_dataset, monkeypatch):
    # validation during GPU training runs under bf16 autocast; bf16 scores tie near the top-K cut-off
    config = tiny_config(clustered_dataset, "model.tasks=[retrieval,rating]")
    prepared = prepare(config, progress=False)
    from kgrec.train import build_model
    from kgrec.train import module as module_file

    model = build_model(config, prepared)
    evaluate_split = module_file.evaluate_split
    seen = []

    def spy(score, *args, **kwargs):
        seen.append(score(torch.arange(3)).dtype)
        return evaluate_split(score, *args, **kwargs)

    monkeypatch.setattr(module_file, "evaluate_split", spy)
    plain = module_file.evaluate(model, prepared.dataset, "valid", config)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = module_file.evaluate(model, prepared.dataset, "valid", config)
    assert seen == [torch.float32, torch.float32]
    assert autocast == plain


def test_train_writes_a_complete_run_folder(clustered_dataset, tmp_path):
    config = tiny_config(clustered_dataset, "model.rating_autorec_units=8")
    metrics = train(config, tmp_path / "run")
    run = tmp_path / "run"
    for name in ("manifest.json", "config.yaml", "model.safetensors", "vectors.safetensors", "id_maps.json",
                 "metrics.json", "curves.png", "graph", "checkpoints/last.ckpt"):  # fmt: skip
        assert (run / name).exists(), name
    saved = json.loads((run / "metrics.json").read_text())
    for key in ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "hit@10", "mrr@10", "precision@10", "rmse", "mae", "auc"):
        assert key in saved["test"], key
    assert saved["epochs"] == metrics["epochs"] and saved["train_seconds"] > 0
    vectors = load_file(str(run / "vectors.safetensors"))
    assert vectors["user"].shape == (40, 16) and vectors["item"].shape == (60, 16)
    # checkpoints load with torch.load(weights_only=True): no arbitrary pickle
    torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    # re-evaluating the saved run reproduces the metrics
    again = evaluate_run(run)
    for key in ("ndcg@10", "rmse", "auc"):
        assert again["test"][key] == pytest.approx(saved["test"][key], abs=1e-6), key
    loaded = load_run(run)
    assert torch.allclose(loaded.model.item_vectors(), vectors["item"], atol=1e-5)
    ndcg = read_metrics_csv(run / "logs")["valid/ndcg@10"]
    assert saved["best_epoch"] == max(ndcg, key=lambda pair: pair[1])[0]  # the kept checkpoint's epoch


def test_pcgrad_trains_logs_its_conflicts_and_refuses_fp16(clustered_dataset, tmp_path):
    config = tiny_config(clustered_dataset, "model.tasks=[retrieval,rating,like,kg]", "model.loss_mode=pcgrad")
    metrics = train(config, tmp_path / "run")
    assert metrics["test"]["ndcg@10"] > 0
    shares = [value for _, value in read_metrics_csv(tmp_path / "run" / "logs")["train/pcgrad_conflicts"]]
    assert len(shares) == metrics["epochs"] and all(0 <= s <= 1 for s in shares)
    fp16 = tiny_config(clustered_dataset, "model.loss_mode=pcgrad", "train.precision=16-mixed")
    with pytest.raises(ConfigError, match="fp16"):
        train(fp16, tmp_path / "fp16")


def test_gradnorm_trains_logs_its_weights_keeps_their_sum_and_refuses_fp16(clustered_dataset, tmp_path):
    config = tiny_config(clustered_dataset, "model.tasks=[retrieval,rating,like,kg]", "model.loss_mode=gradnorm",
                         "model.loss_weights={retrieval: 1, rating: 0.5, like: 0.5, kg: 0}")  # fmt: skip
    metrics = train(config, tmp_path / "run")
    assert metrics["test"]["ndcg@10"] > 0
    logged = read_metrics_csv(tmp_path / "run" / "logs")
    assert "train/weight/kg" not in logged  # weighted 0: out of the sum and of the balancing
    per_epoch = [[value for _, value in logged[f"train/weight/{t}"]] for t in ("retrieval", "rating", "like")]
    assert all(len(values) == metrics["epochs"] for values in per_epoch)
    assert any(abs(values[-1] - start) > 0.01 for values, start in zip(per_epoch, (1, 0.5, 0.5), strict=True))
    weights = load_run(tmp_path / "run").model.joint_loss.effective_weights()
    assert weights["kg"] == 0 and sum(weights.values()) == pytest.approx(2.0, abs=1e-5)
    fp16 = tiny_config(clustered_dataset, "model.loss_mode=gradnorm", "train.precision=16-mixed")
    with pytest.raises(ConfigError, match="fp16"):
        train(fp16, tmp_path / "fp16")


@pytest.mark.parametrize("negatives", [[], ["model.retrieval_loss=sampled_softmax", "train.shared_negatives=12"]],
                         ids=["full softmax", "shared negatives"])  # fmt: skip
def test_learns_the_clusters_far_above_chance(clustered_dataset, tmp_path, negatives):
    config = tiny_config(clustered_dataset, "train.max_epochs=15", "model.tasks=[retrieval]",
                         "model.use_graph=false", "model.id_dropout=0", "train.lr=0.01", *negatives)  # fmt: skip
    metrics = train(config, tmp_path / "run")
    # Chance: a user's ~1 test item is one of ~47 unseen candidates, so hit@10 ~ 10/47 = 0.21;
    # a quarter of test items are low-rated items outside the user's cluster (unpredictable).
    assert metrics["test"]["hit@10"] > 0.5


class Crash(L.Callback):
    def __init__(self, at_epoch: int) -> None:
        self.at_epoch = at_epoch

    def on_train_epoch_end(self, trainer, module):
        if trainer.current_epoch == self.at_epoch:
            raise RuntimeError("simulated crash")


# With BPR and ID-only users, valid hit@20 falls at epoch 1 on this data (the defaults, full
# softmax and history users, keep improving), so the plateau schedule decays the learning rate
# for epoch 2: the decay an epoch-1 checkpoint must carry for the crash below.
SLOW_LEARNER = ["model.retrieval_loss=bpr", "model.user_encoder=id"]
PLATEAU = [
    "train.lr_decay=0.5", "train.lr_patience=0", "eval.monitor=hit@20", "train.weight_decay=1e-4",
    "model.loss_weights={retrieval: 1.0, rating: 0.1, like: 0.1, kg: 0.1}", *SLOW_LEARNER,
]  # fmt: skip


# the EASE teacher is refitted on resume (lambda chosen on valid again); it must teach the same
TEACHER = ["model.retrieval_loss=full_softmax", "model.distill_weight=1"]
# negatives shared by a batch, drawn per step: the resumed run must draw the same ones
SHARED = ["model.retrieval_loss=sampled_softmax", "train.shared_negatives=16", "model.distill_weight=1"]
# learned loss weights and each task's first loss, L(0): the resumed run must carry both on
GRADNORM = ["model.tasks=[retrieval,rating,like,kg]", "model.loss_mode=gradnorm"]


@pytest.mark.parametrize("variant", [[], PLATEAU, TEACHER, SHARED, GRADNORM],
                         ids=["constant", "plateau", "teacher", "shared", "gradnorm"])  # fmt: skip
def test_resume_after_a_crash_reproduces_the_uninterrupted_weights(clustered_dataset, tmp_path, variant):
    config = tiny_config(clustered_dataset, "train.max_epochs=4", "train.patience=100", *variant)
    train(config, tmp_path / "straight")
    if variant is PLATEAU:  # the learning rate decays right after the crash point: the resumed run must too
        lrs = [lr for _, lr in read_metrics_csv(tmp_path / "straight" / "logs")["lr"]]
        assert len(lrs) == 4 and lrs[1] == pytest.approx(2e-3) and lrs[2] == pytest.approx(1e-3), lrs
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, tmp_path / "crashed", callbacks=[Crash(at_epoch=1)])
    assert not (tmp_path / "crashed" / "metrics.json").exists()
    metrics = train(config, tmp_path / "crashed")
    assert metrics["resumed"]
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "crashed" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    if variant is GRADNORM:  # L(0) is saved (so the resumed run keeps the first step's), and the weights moved
        assert torch.isfinite(a["joint_loss.initial_losses"]).all()
        assert not torch.allclose(a["joint_loss.task_weights"], torch.tensor([1.0, 0.1, 0.1, 0.1]), atol=1e-3)


def test_an_uncertainty_run_interrupted_before_loss_weights_had_their_own_optimizer_group_resumes(clustered_dataset, tmp_path):
    uncertainty = ["model.tasks=[retrieval,rating,like,kg]", "model.loss_mode=uncertainty", *PLATEAU[:2]]
    config = tiny_config(clustered_dataset, "train.max_epochs=3", "train.patience=100", *uncertainty)
    train(config, tmp_path / "straight")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, tmp_path / "crashed", callbacks=[Crash(at_epoch=1)])
    # rewrite last.ckpt as an earlier kgrec wrote it: one group for all the model's parameters,
    # numbered in model.parameters() order, the s_m among them (the scheduler's lists per group)
    last = tmp_path / "crashed" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    names = [name for name, _ in build_model(config, prepare(config, progress=False)).named_parameters()]
    (optimizer,) = checkpoint["optimizer_states"]
    kept, weights, *others = optimizer["param_groups"]
    assert others == [] and len(weights["params"]) == 1 and weights["weight_decay"] == 0.0
    is_loss = [name == "joint_loss.log_vars" for name in names]
    new_ids = iter(kept["params"])
    old_of = {next(new_ids) if not loss else weights["params"][0]: old for old, loss in enumerate(is_loss)}
    optimizer["state"] = {old_of[i]: state for i, state in optimizer["state"].items()}
    optimizer["param_groups"] = [{**kept, "params": list(range(len(names)))}]
    (scheduler,) = checkpoint["lr_schedulers"]
    scheduler["min_lrs"], scheduler["_last_lr"] = scheduler["min_lrs"][:1], scheduler["_last_lr"][:1]
    torch.save(checkpoint, last)

    metrics = train(config, tmp_path / "crashed")
    assert metrics["resumed"]
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "crashed" / "model.safetensors"))
    assert not torch.allclose(a["joint_loss.log_vars"], torch.zeros(4))  # the s_m were trained
    for key in a:  # Adam's moments went back to their parameters, the s_m's group undecayed
        assert torch.allclose(a[key], b[key], atol=1e-6), key


class SlowFirstEpoch(L.Callback):
    def on_train_epoch_end(self, trainer, module):
        if trainer.current_epoch == 0:
            time.sleep(1.0)


class FitSeconds(L.Callback):
    def on_fit_start(self, trainer, module):
        self.started = time.perf_counter()

    def on_fit_end(self, trainer, module):
        self.seconds = time.perf_counter() - self.started


def test_a_resumed_run_counts_the_training_time_of_both_parts(clustered_dataset, tmp_path, recwarn):
    config = tiny_config(clustered_dataset, "train.max_epochs=3", "train.patience=100")
    with pytest.raises(RuntimeError, match="simulated crash"):  # last.ckpt holds epoch 0, slept 1 s
        train(config, tmp_path / "run", callbacks=[SlowFirstEpoch(), Crash(at_epoch=1)])
    resumed = FitSeconds()
    recwarn.clear()
    metrics = train(config, tmp_path / "run", callbacks=[resumed])
    assert [str(w.message) for w in recwarn if "Checkpoint directory" in str(w.message)] == []  # resuming is no surprise
    assert metrics["resumed"] and metrics["epochs"] == 3
    assert metrics["train_seconds"] - resumed.seconds >= 0.99  # epoch 0's second, from before the crash
    # train_seconds is rounded to 0.01 s and seconds_per_epoch to 0.001 s: they differ by up to 0.005 / 3 + 0.0005
    assert metrics["seconds_per_epoch"] == pytest.approx(metrics["train_seconds"] / 3, abs=2.2e-3)


class SlowStart(L.Callback):
    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 0:
            time.sleep(1.0)


def test_max_minutes_stops_at_the_first_epoch_end_past_the_limit_and_metrics_say_what_stopped_training(clustered_dataset, tmp_path):
    config = tiny_config(clustered_dataset, "train.max_epochs=5", "train.patience=100", "train.max_minutes=0.01")  # 0.6 s
    metrics = train(config, tmp_path / "timed", callbacks=[SlowStart()])
    assert metrics["epochs"] == 1 and metrics["stopped_by"] == "max_minutes"
    assert metrics["test"]["ndcg@10"] > 0 and (tmp_path / "timed" / "manifest.json").exists()
    untimed = train(dataclasses.replace(config, train=dataclasses.replace(config.train, max_minutes=0, max_epochs=2)),
                    tmp_path / "untimed")  # fmt: skip
    assert untimed["epochs"] == 2 and untimed["stopped_by"] == "max_epochs"
    frozen = tiny_config(clustered_dataset, "train.max_epochs=5", "train.patience=0", "train.lr=1e-12")  # valid never improves
    stopped = train(frozen, tmp_path / "stopped")
    assert stopped["epochs"] == 2 and stopped["stopped_by"] == "early_stopping"
    with pytest.raises(ConfigError, match="train.max_minutes"):
        tiny_config(clustered_dataset, "train.max_minutes=-1")


class RecordLastCheckpoint(L.Callback):
    """Records the epoch ``last.ckpt`` holds at the start of every epoch."""

    def __init__(self, path) -> None:
        self.path, self.held = path, []

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch > 0:
            self.held.append(torch.load(self.path, map_location="cpu", weights_only=True)["epoch"])


def test_last_checkpoint_holds_every_finished_epoch_improving_or_not(clustered_dataset, tmp_path):
    config = tiny_config(
        clustered_dataset, "train.max_epochs=5", "train.patience=100", "eval.monitor=hit@20", *SLOW_LEARNER
    )
    record = RecordLastCheckpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    train(config, tmp_path / "run", callbacks=[record])
    hit20 = [v for _, v in read_metrics_csv(tmp_path / "run" / "logs")["valid/hit@20"]]
    assert any(b <= max(hit20[: i + 1]) for i, b in enumerate(hit20[1:])), hit20  # some epoch did not improve
    assert record.held == [0, 1, 2, 3]  # a resume never redoes a finished epoch


class CtrlC(L.Callback):
    """Sends this process SIGINT, as Ctrl+C in a terminal does, after batch 0 of an epoch."""

    def __init__(self, at_epoch: int) -> None:
        self.at_epoch = at_epoch

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.current_epoch == self.at_epoch and batch_idx == 0:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize(("at_epoch", "hint"), [(0, "no epoch had finished"), (2, r"holds the first 2 epochs; run the same command")])
def test_ctrl_c_raises_a_keyboard_interrupt_that_says_how_to_resume(clustered_dataset, tmp_path, at_epoch, hint):
    config = tiny_config(clustered_dataset, "train.max_epochs=3", "train.patience=100")
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match=hint) as raised:  # a KeyboardInterrupt, not Lightning's sys.exit(1)
        train(config, tmp_path / "run", callbacks=[CtrlC(at_epoch)])
    assert raised.value.rank_zero  # one process: global rank 0, which reports it
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl+C works again afterwards (a notebook)
    metrics = train(config, tmp_path / "run")
    assert metrics["resumed"] == (at_epoch > 0) and metrics["epochs"] == 3


def test_ctrl_c_on_a_rank_above_zero_is_marked_so_that_only_rank_zero_reports_it(tmp_path):
    class RankOneTrainer:  # what _fit reads of a Lightning trainer on DDP rank 1
        is_global_zero = False

        def fit(self, module, ckpt_path=None):
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                sys.exit(1)  # what Lightning does on Ctrl+C

    with pytest.raises(TrainingInterrupted, match="no epoch had finished") as raised:
        _fit(RankOneTrainer(), None, tmp_path / "last.ckpt", resume=False)
    assert raised.value.rank_zero is False


def test_a_resumed_run_prints_the_best_so_far_over_both_parts(clustered_dataset, tmp_path, capsys):
    config = tiny_config(clustered_dataset, "train.max_epochs=4", "train.patience=100", "eval.monitor=hit@20",
                         "train.progress=true")  # fmt: skip
    with pytest.raises(TrainingInterrupted):
        train(config, tmp_path / "run", callbacks=[CtrlC(at_epoch=2)])
    capsys.readouterr()
    train(config, tmp_path / "run")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    valid = [v for _, v in read_metrics_csv(tmp_path / "run" / "logs")["valid/hit@20"]]
    assert [line.split()[1] for line in lines] == ["2/3", "3/3"]  # the resumed part: epochs 2 and 3
    best = max(valid[:3])
    assert f"(best {best:.4f}, epoch {valid.index(best)})" in lines[0], (lines[0], valid)


class Exit(L.Callback):
    def on_train_epoch_end(self, trainer, module):
        sys.exit(3)


def test_other_exits_during_training_are_not_reported_as_ctrl_c(clustered_dataset, tmp_path):
    with pytest.raises(SystemExit) as raised:  # Lightning marks the trainer interrupted for any exception
        train(tiny_config(clustered_dataset), tmp_path / "run", callbacks=[Exit()])
    assert raised.value.code == 3 and not isinstance(raised.value, KeyboardInterrupt)


def test_train_runs_outside_the_main_thread(clustered_dataset, tmp_path):
    import threading

    config = tiny_config(clustered_dataset, "train.max_epochs=1")
    results: list = []
    thread = threading.Thread(target=lambda: results.append(train(config, tmp_path / "run")))
    thread.start()
    thread.join()
    assert len(results) == 1 and results[0]["epochs"] == 1  # signal handlers are main-thread only


def test_output_to_a_file_gets_one_line_per_epoch_with_the_best_so_far(clustered_dataset, tmp_path, capsys):
    import re

    config = tiny_config(clustered_dataset, "train.max_epochs=3", "train.patience=100", "train.progress=true")
    train(config, tmp_path / "run")  # pytest's captured stdout is not a terminal
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    valid = [v for _, v in read_metrics_csv(tmp_path / "run" / "logs")["valid/ndcg@10"]]
    assert len(lines) == len(valid) == 3
    for epoch, (line, value) in enumerate(zip(lines, valid, strict=True)):  # 0-based, as the logs
        best = max(valid[: epoch + 1])
        expected = rf"epoch {epoch}/2  train/loss \d+\.\d{{4}}  valid/ndcg@10 {value:.4f} \(best {best:.4f}, epoch {valid.index(best)}\)  \d+\.\d s"
        assert re.fullmatch(expected, line), (line, expected)


def test_a_long_epoch_prints_its_progress_on_the_way(clustered_dataset, tmp_path, capsys):
    import re

    from kgrec.train.epoch_log import EpochLines

    config = tiny_config(clustered_dataset, "train.max_epochs=1", "train.batch_size=32")
    every_step = EpochLines("valid/ndcg@10", logs=tmp_path / "run" / "logs", every=0)  # as if each step took minutes
    train(config, tmp_path / "run", callbacks=[every_step])
    out = capsys.readouterr().out.splitlines()
    steps = [line for line in out if " step " in line]
    total = -(-len(load_data(config).train) // 32)
    assert total > 2 and len(steps) == total - 1  # every step but the last, which the epoch's line follows
    for done, line in enumerate(steps, start=1):
        pattern = rf"epoch 0/0  step {done}/{total}  train/loss \d+\.\d{{4}}  \d+\.\d\d s/step, about \d+\.\d min left in the epoch"
        assert re.fullmatch(pattern, line), (line, pattern)
    assert out.index(steps[-1]) < len(out) - 1 and out[out.index(steps[-1]) + 1].startswith("epoch 0/0  train/loss")


def test_finished_run_is_not_overwritten_by_accident(clustered_dataset, tmp_path):
    config = tiny_config(clustered_dataset, "train.max_epochs=1")
    train(config, tmp_path / "run")
    with pytest.raises(KgrecError, match="already holds a finished run"):
        train(config, tmp_path / "run")


def test_overwrite_removes_everything_the_previous_run_left(clustered_dataset, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(clustered_dataset, "train.max_epochs=1"), run)
    with pytest.raises(RuntimeError):  # a second run with another config is interrupted ...
        train(tiny_config(clustered_dataset, "train.max_epochs=3", "model.tasks=[rating]"), run, overwrite=True,
              callbacks=[Crash(at_epoch=1)])  # fmt: skip
    for gone in ("manifest.json", "metrics.json", "vectors.safetensors", "model.safetensors"):
        assert not (run / gone).exists(), gone  # ... and leaves nothing of the first one to load
    with pytest.raises(RuntimeError):
        train(tiny_config(clustered_dataset, "train.max_epochs=3"), run, overwrite=True, callbacks=[Crash(at_epoch=0)])
    metrics = train(tiny_config(clustered_dataset, "train.max_epochs=3"), run, overwrite=True)
    assert not metrics["resumed"] and metrics["epochs"] == 3
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]  # no -v1 copies
    assert [p.name for p in (run / "logs").glob("part-*")] == ["part-0"]


def test_overwrite_checks_the_config_against_the_data_before_it_removes_the_run(clustered_dataset, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(clustered_dataset, "train.max_epochs=1"), run)
    before = (run / "model.safetensors").read_bytes()
    for bad, message in (("eval.ks=[10,5000]", r"eval.ks: cut-off 5000 is beyond the \d+ items"),
                         ("data.ratios=[0.9,0.0,0.1]", "the valid part is empty, so training has nothing to choose its epoch on"),
                         ("data.ratios=[0.8,0.2,0.0]", r"the test part is empty, .* give it a share \(data.ratios\)")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            train(tiny_config(clustered_dataset, "train.max_epochs=1", bad), run, overwrite=True)
        assert (run / "manifest.json").is_file() and (run / "model.safetensors").read_bytes() == before
    bad = tiny_config(clustered_dataset, "train.max_epochs=1", "eval.ks=[10,5000]")
    with pytest.raises(ConfigError, match="eval.ks: cut-off 5000"):  # prepared data is checked too
        train(bad, run, overwrite=True, prepared=prepare(tiny_config(clustered_dataset), progress=False))
    if not torch.cuda.is_available():
        with pytest.raises(Exception, match="gpu"):  # Lightning's own check of the trainer
            train(tiny_config(clustered_dataset, "train.max_epochs=1", "train.accelerator=gpu"), run, overwrite=True)
    assert (run / "manifest.json").is_file() and (run / "model.safetensors").read_bytes() == before


def test_a_folder_with_its_own_split_is_used_as_given_and_the_run_says_so(clustered_dataset, tmp_path, capsys):
    from kgrec.data import export_split

    folder = export_split(load_data(tiny_config(clustered_dataset, "data.seed=5")), tmp_path / "split" / "clusters")
    train(tiny_config(folder, "train.max_epochs=1", "data.seed=9", "data.split=temporal"), tmp_path / "run")
    assert "clusters holds its own split (clusters.train/valid/test.inter), used as it is: data.split=temporal, " \
           "data.seed=9 do not apply" in capsys.readouterr().err
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]["split"] == "given"
    assert evaluate_run(tmp_path / "run")["test"]  # the recorded config loads the same data back
    with pytest.raises(KgrecError, match="split 'given' needs clusters.train.inter"):
        load_data(tiny_config(clustered_dataset, "data.split=given"))


def test_a_run_on_a_folders_own_split_interrupted_before_given_was_recorded_resumes(clustered_dataset, tmp_path):
    from kgrec.data import export_split

    folder = export_split(load_data(tiny_config(clustered_dataset)), tmp_path / "split" / "clusters")
    config = tiny_config(folder, "train.max_epochs=3")
    with pytest.raises(RuntimeError):
        train(config, tmp_path / "run", callbacks=[Crash(at_epoch=1)])
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    saved["data"]["split"] = "ratio"  # what kgrec recorded before it noted a folder's own split
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(saved))
    assert train(config, tmp_path / "run")["resumed"]


def test_prepared_data_must_come_from_the_same_config(clustered_dataset, tmp_path):
    prepared = prepare(tiny_config(clustered_dataset), progress=False)
    with pytest.raises(ConfigError, match=r"prepared data differs from the config in data.seed: prepare\(config\) again"):
        train(tiny_config(clustered_dataset, "data.seed=7"), tmp_path / "run", prepared=prepared)
    assert not (tmp_path / "run").exists()


def test_a_folder_of_other_files_or_a_file_is_refused_as_out(clustered_dataset, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds other files and no kgrec run"):
        train(tiny_config(clustered_dataset, "train.max_epochs=1"), tmp_path)
    with pytest.raises(ConfigError, match="is a file"):
        train(tiny_config(clustered_dataset, "train.max_epochs=1"), tmp_path / "notes.txt")
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / ".DS_Store").write_text("")  # dot files do not make a folder someone else's
    train(tiny_config(clustered_dataset, "train.max_epochs=1"), hidden)


def test_overwrite_refuses_to_clear_the_graph_it_would_train_on(clustered_dataset, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(clustered_dataset, "train.max_epochs=1"), run)
    config = tiny_config(clustered_dataset, "train.max_epochs=1", f"graph.path={run / 'graph'}")
    with pytest.raises(ConfigError, match="inside --out"):
        train(config, run, overwrite=True)
    assert (run / "manifest.json").is_file()  # nothing was removed


def test_resume_with_another_config_is_refused(clustered_dataset, tmp_path):
    with pytest.raises(RuntimeError):
        train(tiny_config(clustered_dataset), tmp_path / "run", callbacks=[Crash(at_epoch=1)])
    with pytest.raises(KgrecError, match=r"differs in: model.dim"):
        train(tiny_config(clustered_dataset, "model.dim=8"), tmp_path / "run")


def test_a_run_interrupted_before_a_config_field_existed_resumes_with_that_field_at_its_default(clustered_dataset, tmp_path):
    with pytest.raises(RuntimeError):
        train(tiny_config(clustered_dataset, "train.max_epochs=3"), tmp_path / "run", callbacks=[Crash(at_epoch=1)])
    saved = tmp_path / "run" / "config.yaml"
    older = yaml.safe_load(saved.read_text())
    del older["graph"]["kg_holdout"], older["model"]["kg_loss"]  # as an earlier kgrec wrote it
    saved.write_text(yaml.safe_dump(older))
    with pytest.raises(KgrecError, match=r"differs in: model.kg_loss"):
        train(tiny_config(clustered_dataset, "train.max_epochs=3", "model.kg_loss=softmax"), tmp_path / "run")
    metrics = train(tiny_config(clustered_dataset, "train.max_epochs=3"), tmp_path / "run")
    assert metrics["resumed"] and metrics["epochs"] == 3


def test_valid_and_test_interactions_never_reach_graph_or_training(clustered_dataset):
    config = tiny_config(clustered_dataset, "graph.users=true", "model.user_encoder=id+history",
                         "model.rating_autorec_units=4")  # fmt: skip
    prepared = prepare(config, progress=False)
    ds, g = prepared.dataset, prepared.graph
    interacted = g.relation_id("interacted")
    mask = g.relation == interacted
    edges = set(zip((g.head[mask] - g.user_offset).tolist(), g.tail[mask].tolist(), strict=True))
    train_pairs = set(zip(ds.train.user.tolist(), ds.train.item.tolist(), strict=True))
    held_out = set(zip(ds.valid.user.tolist(), ds.valid.item.tolist(), strict=True))
    held_out |= set(zip(ds.test.user.tolist(), ds.test.item.tolist(), strict=True))
    assert edges == train_pairs and not (edges & held_out)
    for name in ("history", "ratings"):  # the model's matrix side inputs
        pairs = set(map(tuple, getattr(prepared.side, name).coalesce().indices().T.tolist()))
        assert pairs == train_pairs, name
    module = RecommenderModule(torch.nn.Module(), ds, config)  # type: ignore[arg-type]
    samples = set(zip(module.train_user.tolist(), module.train_item.tolist(), strict=True))
    assert samples == train_pairs
    keys = module.sampler.keys.numpy()
    assert set(keys.tolist()) == {u * ds.n_items + i for u, i in train_pairs}
    assert np.isin([u * ds.n_items + i for u, i in held_out], keys).sum() == 0


def test_text_cache_is_hit_on_a_second_run(clustered_dataset, tiny_models, monkeypatch, tmp_path):
    monkeypatch.setenv("KGREC_HOME", str(tmp_path / "home"))
    from kgrec.text import encoder as encoder_module

    config = tiny_config(clustered_dataset, "model.use_text=true", f"text.model={tiny_models[0]}")
    first = prepare(config, progress=False)
    calls = []
    original = encoder_module.TextEncoder.encode
    monkeypatch.setattr(encoder_module.TextEncoder, "encode", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    second = prepare(config, progress=False)
    assert calls == [] and torch.equal(first.text, second.text)


def test_joint_fine_tuning_trains_only_the_top_layers_and_is_saved(clustered_dataset, tiny_models, monkeypatch, tmp_path):
    monkeypatch.setenv("KGREC_HOME", str(tmp_path / "home"))
    config = tiny_config(clustered_dataset, "model.use_text=true", f"text.model={tiny_models[0]}",
                         "text.finetune_layers=1", "text.finetune_lr=0.01", "train.max_epochs=2")  # fmt: skip
    train(config, tmp_path / "run")
    from kgrec.text import TextEncoder, item_texts

    before = TextEncoder(tiny_models[0]).transformer.state_dict()
    after = TextEncoder(str(tmp_path / "run" / "text-encoder")).transformer.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".layer.1." in k for k in changed)  # top layer only; embeddings, layer 0 frozen
    loaded = load_run(tmp_path / "run")
    assert loaded.config.text.model == str(tmp_path / "run" / "text-encoder")
    fresh = TextEncoder(loaded.config.text.model).encode(item_texts(loaded.dataset, loaded.config.text), progress=False)
    assert torch.allclose(fresh, loaded.text, atol=1e-5)  # saved vectors come from the fine-tuned encoder


def test_cold_item_split_scores_held_out_items_from_text_and_graph(clustered_dataset, tmp_path):
    config = tiny_config(clustered_dataset, "data.split=cold_item", "data.cold_item_share=0.2", "train.max_epochs=4")
    metrics = train(config, tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    warm = loaded.model.warm_items
    assert warm is not None and int((~warm).sum()) == 12  # 20% of 60 items never seen in training
    before = loaded.model.item_vectors()
    with torch.no_grad():
        loaded.model.item_embedding.weight[~warm] += 5.0  # a cold item's ID row must not matter
    after = loaded.model.item_vectors()
    assert torch.allclose(before[~warm], after[~warm], atol=1e-5)
    with torch.no_grad():
        loaded.model.item_embedding.weight[warm] += 5.0  # ... while a warm item's ID row does
    assert not torch.allclose(before[warm], loaded.model.item_vectors()[warm])
    assert metrics["valid"]["ndcg@10"] > 0.0


def test_a_global_time_split_trains_and_evaluates_only_the_users_seen_in_training(clustered_dataset, tmp_path):
    # the fixture's users rate one after another: cut by time, valid and test hold only new users
    with pytest.raises(ConfigError, match="none of the 52 valid interactions is by a user seen in training"):
        prepare(tiny_config(clustered_dataset, "data.split=global_temporal"))
    data = with_late_joiners(clustered_dataset, tmp_path)
    metrics = train(tiny_config(data, "data.split=global_temporal"), tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    ds = loaded.dataset
    assert ds.split == "global_temporal(0.8, 0.1, 0.1)"
    assert ds.train.timestamp.max() < ds.valid.timestamp.min() and ds.valid.timestamp.max() < ds.test.timestamp.min()
    seen = np.isin(ds.test.user, ds.train.user)
    assert 0 < seen.sum() < len(seen)  # some test users are new
    with torch.no_grad():
        predicted = loaded.model.predict_rating(torch.as_tensor(ds.test.user), torch.as_tensor(ds.test.item)).numpy()
    errors = (predicted - ds.test.rating) ** 2
    assert metrics["test"]["rmse"] == pytest.approx(float(np.sqrt(errors[seen].mean())), rel=1e-4)  # the known users only
    assert metrics["test"]["rmse"] != pytest.approx(float(np.sqrt(errors.mean())), rel=1e-3)
    assert metrics["valid"]["ndcg@10"] > 0.0


@pytest.mark.parametrize(
    ("item_parts", "masked"),
    [
        ([], True),
        (["model.use_item_id=false", "model.id_dropout=0"], True),
        (["model.use_text=false", "model.use_graph=false", "model.id_dropout=0"], False),
    ],
)
def test_cold_items_leave_the_negatives_unless_the_model_is_id_only(clustered_dataset, item_parts, masked):
    config = tiny_config(clustered_dataset, "data.split=cold_item", "data.cold_item_share=0.2", *item_parts)
    dataset = load_data(config)
    warm = warm_items(dataset, config.model)
    if not masked:  # ID only: nothing to score a new item with, the split's items stay plain IDs
        assert warm is None
        return
    assert warm is not None and int((~warm).sum()) == 12
    assert not dataset.train.has_item(dataset.n_items)[(~warm).numpy()].any()


def test_a_cold_item_split_for_a_model_without_text_or_graph_is_refused(clustered_dataset):
    """It trained, the held-out items scored by ID vectors no interaction shaped (they served as
    negatives too): a test NDCG@10 that measured nothing, without a word."""
    config = tiny_config(clustered_dataset, "data.split=cold_item", "data.cold_item_share=0.2", "model.use_text=false",
                         "model.use_graph=false", "model.id_dropout=0")  # fmt: skip
    with pytest.raises(ConfigError, match=r"split cold_item: the held-out items .* set model.use_text=true or "
                                          r"model.use_graph=true, or use data.split=ratio") as raised:  # fmt: skip
        prepare(config, progress=False)
    assert raised.value.key == "model.use_text"


def test_shared_negatives_are_distinct_items_with_training_interactions(clustered_dataset):
    config = tiny_config(clustered_dataset, "data.split=cold_item", "data.cold_item_share=0.2",
                         "model.retrieval_loss=sampled_softmax", "train.shared_negatives=30")  # fmt: skip
    prepared = prepare(config, progress=False)
    module = RecommenderModule(build_model(config, prepared), prepared.dataset, config)
    warm = prepared.dataset.train.has_item(prepared.dataset.n_items)
    drawn = [module.shared_items(torch.Generator().manual_seed(step)) for step in range(2)]
    for items in drawn:
        assert len(items) == 30 and len(items.unique()) == 30 and warm[items.numpy()].all()
    assert not torch.equal(drawn[0], drawn[1])  # a new draw each step
    everything = tiny_config(clustered_dataset, "model.retrieval_loss=sampled_softmax", "train.shared_negatives=1000")
    prepared = prepare(everything, progress=False)  # a ratio split: every item has training interactions
    module = RecommenderModule(build_model(everything, prepared), prepared.dataset, everything)
    assert sorted(module.shared_items(torch.Generator()).tolist()) == list(range(prepared.dataset.n_items))


def test_shared_negatives_need_the_sampled_softmax(clustered_dataset):
    with pytest.raises(ConfigError, match="shared_negatives=8 are negatives of the sampled_softmax"):
        tiny_config(clustered_dataset, "train.shared_negatives=8")  # the default loss is full_softmax
    with pytest.raises(ConfigError, match="train.shared_negatives: expected a number of items >= 0"):
        tiny_config(clustered_dataset, "model.retrieval_loss=sampled_softmax", "train.shared_negatives=-1")


@pytest.mark.parametrize(("tasks", "monitor"), [("[rating]", "rmse"), ("[like]", "auc"), ("[kg]", None)])
def test_single_task_runs_select_on_their_own_metric(clustered_dataset, tmp_path, tasks, monitor):
    config = tiny_config(clustered_dataset, f"model.tasks={tasks}", "model.user_encoder=id", "eval.monitor=auto")
    metrics = train(config, tmp_path / "run")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["eval"]["monitor"] == monitor  # "auto" resolved and recorded
    if monitor is not None:
        assert monitor in metrics["valid"] and metrics["best_epoch"] is not None
    assert "ndcg@10" not in metrics["valid"]
    assert load_run(tmp_path / "run").model.config.tasks == tuple(tasks.strip("[]").split(","))
    if tasks == "[rating]":  # the rating baselines alone (it was refused: "ranks nothing")
        assert set(evaluate_run(tmp_path / "run", baselines=True)) == {"valid", "test", "rating_baselines"}
        return
    with pytest.raises(KgrecError, match="without the retrieval and rating towers, so it ranks and rates nothing"):
        evaluate_run(tmp_path / "run", baselines=True)


@pytest.mark.parametrize(("tasks", "monitor", "values"), [
    ("[retrieval]", "ndcg@10", [0.10, 0.20, 0.20, 0.19, 0.25]),  # higher is better: 2 flat epochs
    ("[rating]", "rmse", [1.00, 0.90, 0.95, 0.91, 0.80]),  # lower is better: 2 epochs worse than 0.90
])  # fmt: skip
def test_learning_rate_decays_after_lr_patience_epochs_without_improvement(clustered_dataset, tasks, monitor, values):
    config = tiny_config(clustered_dataset, f"model.tasks={tasks}", "model.user_encoder=id",
                         "train.lr_decay=0.5", "train.lr_patience=1")  # fmt: skip
    prepared = prepare(config, progress=False)
    from kgrec.train import build_model

    module = RecommenderModule(build_model(config, prepared), prepared.dataset, config)
    setup = module.configure_optimizers()
    assert setup["lr_scheduler"]["monitor"] == f"valid/{monitor}"
    scheduler, lrs = setup["lr_scheduler"]["scheduler"], []
    for value in values:
        scheduler.step(value)
        lrs.append(setup["optimizer"].param_groups[0]["lr"])
    assert lrs == pytest.approx([2e-3, 2e-3, 2e-3, 1e-3, 1e-3])
    constant = tiny_config(clustered_dataset, f"model.tasks={tasks}", "model.user_encoder=id")
    assert isinstance(RecommenderModule(build_model(constant, prepared), prepared.dataset, constant)
                      .configure_optimizers(), torch.optim.Adam)  # fmt: skip


def test_bad_learning_rate_schedule_is_refused(clustered_dataset):
    for override in ("train.lr_decay=0", "train.lr_decay=1.5", "train.lr_patience=-1"):
        with pytest.raises(ConfigError, match=override.split("=")[0]):
            tiny_config(clustered_dataset, override)


def test_monitor_must_come_from_an_enabled_task(clustered_dataset):
    with pytest.raises(ConfigError, match="eval.monitor"):
        tiny_config(clustered_dataset, "model.tasks=[rating]", "eval.monitor=ndcg@10")
    with pytest.raises(ConfigError, match="eval.monitor"):
        tiny_config(clustered_dataset, "eval.monitor=loss")


def test_held_out_kg_triples_measure_the_kg_tower_and_never_reach_training(clustered_dataset, tmp_path):
    config = tiny_config(clustered_dataset, "model.tasks=[kg]", "graph.kg_holdout=0.2", "eval.monitor=auto")
    assert config.eval.monitor == "kg_mrr"
    metrics = train(config, tmp_path / "run")
    for part in ("valid", "test"):
        assert set(metrics[part]) == {"kg_mrr", "kg_hits@1", "kg_hits@3", "kg_hits@10"}
        assert 0 < metrics[part]["kg_mrr"] <= 1
    run = load_run(tmp_path / "run")
    held = run.kg_heldout
    asked = {tuple(t) for t in np.concatenate([held.valid, held.test]).tolist()}
    pairs = {(min(h, t), max(h, t)) for h, _, t in asked}
    trained = {(min(h, t), max(h, t)) for h, t in zip(run.graph.head.tolist(), run.graph.tail.tolist(), strict=True)}
    assert asked and not pairs & trained  # neither the saved graph nor the model's edges hold them
    edges = {(min(a, b), max(a, b)) for a, b in run.model.edge_index.T.tolist()}
    assert edges and not pairs & edges
    again = evaluate_run(tmp_path / "run")
    assert again["test"]["kg_mrr"] == pytest.approx(metrics["test"]["kg_mrr"], abs=1e-6)


def test_kg_metrics_need_the_kg_tower_and_held_out_triples(clustered_dataset):
    with pytest.raises(ConfigError, match="needs the kg task and held-out triples"):
        tiny_config(clustered_dataset, "eval.monitor=kg_mrr")
    with pytest.raises(ConfigError, match="add kg to model.tasks"):
        prepare(tiny_config(clustered_dataset, "model.tasks=[retrieval]", "graph.kg_holdout=0.1"), progress=False)
    with pytest.raises(ConfigError, match=r"graph.kg_holdout: expected a share in \[0, 0.5\]"):
        tiny_config(clustered_dataset, "graph.kg_holdout=0.7")


def test_id_dropout_private_gets_the_graph_private_entities_as_a_side_input(clustered_dataset):
    from kgrec.graph import private_owner

    config = tiny_config(clustered_dataset, "model.id_dropout_graph=true", "model.id_dropout_private=true")
    prepared = prepare(config, progress=False)
    owner = prepared.side.private_owner
    assert owner is not None and torch.equal(owner, torch.as_tensor(private_owner(prepared.graph)))
    model = build_model(config, prepared).train()
    assert torch.isfinite(model.encode().items).all()
    assert prepare(tiny_config(clustered_dataset), progress=False).side.private_owner is None  # off: not computed



def test_a_seeded_cpu_run_repeats_bit_for_bit(tmp_path):
    """On two threads the backward of gathering rows (``z[items]``) sums in thread order, so two
    runs of one seed drifted apart (ml-100k: up to 1e-3 on the weights after an epoch).
    ``train.deterministic: auto`` turns PyTorch's deterministic algorithms on for the CPU. The
    data is large enough for a batch's gathers to be split over threads (the clustered data is not)."""
    rng = np.random.default_rng(0)
    users, items = np.repeat(np.arange(1500), 30), rng.integers(0, 600, 1500 * 30)
    rows = [f"u{u}\ti{i}\t{r}" for u, i, r in zip(users, items, rng.integers(1, 6, len(users)), strict=True)]
    data = tmp_path / "big"
    data.mkdir()
    (data / "big.inter").write_text("user_id:token\titem_id:token\trating:float\n" + "\n".join(rows) + "\n")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        weights = []
        for run in ("a", "b"):
            config = tiny_config(data, "train.max_epochs=1", "model.dim=64", "train.batch_size=2048")
            train(config, tmp_path / run)
            weights.append(load_file(str(tmp_path / run / "model.safetensors")))
    finally:
        torch.set_num_threads(threads)
    assert [name for name in weights[0] if not torch.equal(weights[0][name], weights[1][name])] == []


@pytest.mark.parametrize(("setting", "during"), [("auto", True), ("false", False)])
def test_deterministic_algorithms_are_on_while_training_on_the_cpu_and_the_callers_setting_comes_back(
    clustered_dataset, tmp_path, setting, during
):
    class Flag(L.Callback):
        def on_train_start(self, trainer, module):
            self.during = torch.are_deterministic_algorithms_enabled()

    seen = Flag()
    assert not torch.are_deterministic_algorithms_enabled()
    train(tiny_config(clustered_dataset, "train.max_epochs=1", f"train.deterministic={setting}"), tmp_path / "run", callbacks=[seen])
    assert seen.during is during
    assert not torch.are_deterministic_algorithms_enabled()  # Lightning had left them on for the whole process
