"""Training on a CUDA GPU (bf16 autocast) and bringing the run back to the CPU.

Skipped without a GPU (CI has none); ``scripts/check_gpu.sh`` runs them on one.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch

from kgrec.train import train
from kgrec.train.saved import evaluate_run, load_run
from tests.conftest import tiny_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

GPU = ("train.accelerator=auto", "train.devices=1")  # auto must pick the GPU, and bf16


class Seen(L.Callback):
    """Records the device of the weights and the precision while training."""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.device = next(module.model.parameters()).device.type
        self.precision = trainer.precision


def test_auto_trains_on_the_gpu_in_bf16_and_learns(clustered_dataset, tmp_path):
    seen = Seen()
    config = tiny_config(clustered_dataset, *GPU, "train.max_epochs=15", "model.tasks=[retrieval]",
                         "model.use_graph=false", "model.id_dropout=0", "train.lr=0.01")  # fmt: skip
    metrics = train(config, tmp_path / "run", callbacks=[seen])
    assert (seen.device, seen.precision) == ("cuda", "bf16-mixed")
    assert metrics["test"]["hit@10"] > 0.5  # the CPU test's bar (tests/train/test_run.py)


def test_multi_task_gpu_run_reloads_on_the_cpu(clustered_dataset, tmp_path):
    config = tiny_config(clustered_dataset, *GPU, "model.tasks=[retrieval,rating,like,kg]",
                         "model.rating_autorec_units=8", "model.user_encoder=id+history",
                         "model.retrieval_loss=bpr", "train.max_epochs=3")  # fmt: skip
    metrics = train(config, tmp_path / "run")
    for part in ("valid", "test"):
        assert all(v == v and abs(v) < float("inf") for v in metrics[part].values()), metrics[part]
    again = evaluate_run(tmp_path / "run")  # on the CPU, from the saved files
    for key in ("ndcg@10", "rmse", "auc"):
        assert again["test"][key] == pytest.approx(metrics["test"][key], abs=1e-5), key
    loaded = load_run(tmp_path / "run")
    assert next(loaded.model.parameters()).device.type == "cpu"


def test_joint_fine_tuning_on_the_gpu(clustered_dataset, tiny_models, monkeypatch, tmp_path):
    monkeypatch.setenv("KGREC_HOME", str(tmp_path / "home"))
    config = tiny_config(clustered_dataset, *GPU, "model.use_text=true", f"text.model={tiny_models[0]}",
                         "text.finetune_layers=1", "text.finetune_lr=0.01", "train.max_epochs=2")  # fmt: skip
    train(config, tmp_path / "run")
    from kgrec.text import TextEncoder, item_texts

    before = TextEncoder(tiny_models[0], device="cpu").transformer.state_dict()
    after = TextEncoder(str(tmp_path / "run" / "text-encoder"), device="cpu").transformer.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".layer.1." in k for k in changed)
    assert all(v.dtype == torch.float32 for v in after.values())  # saved in fp32, not bf16
    loaded = load_run(tmp_path / "run")
    fresh = TextEncoder(loaded.config.text.model, device="cpu").encode(
        item_texts(loaded.dataset, loaded.config.text), progress=False
    )
    assert torch.allclose(fresh, loaded.text, atol=1e-4)  # the run's vectors = the saved encoder's on the CPU


def test_negative_sampler_moves_its_keys_to_the_gpu_once():
    from kgrec.train.sampling import NegativeSampler

    sampler = NegativeSampler(torch.tensor([0, 0, 1]), torch.tensor([1, 2, 0]), n_items=5)
    user = torch.tensor([0, 1], device="cuda")
    assert sampler.is_positive(user, torch.tensor([1, 1], device="cuda")).tolist() == [True, False]
    keys = sampler.keys
    assert keys.is_cuda
    assert sampler.is_positive(user, torch.tensor([2, 0], device="cuda")).tolist() == [True, True]
    assert sampler.keys is keys  # not copied again


@pytest.mark.parametrize("table_limit", [2**26, 0], ids=["table", "per-batch"])
def test_teacher_scores_on_the_gpu_match_the_cpu(clustered_split, table_limit):
    from kgrec.train.teacher import EaseTeacher
    from tests.train.conftest import fit_ease

    ease = fit_ease(clustered_split)
    users = torch.tensor([5, 1, 5, 0])
    expected = EaseTeacher(ease, table_limit=table_limit).scores(users)
    teacher = EaseTeacher(ease, table_limit=table_limit).to("cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        got = teacher.scores(users.cuda())
    assert got.dtype == torch.float32 and got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), expected)


def test_ease_and_its_teacher_on_the_gpu_score_as_on_the_cpu(clustered_split):
    from kgrec.baselines import EASE
    from kgrec.train.teacher import EaseTeacher

    ds = clustered_split
    cpu = EASE(50.0).fit(ds.train, ds.n_users, ds.n_items)
    gpu = EASE(50.0, device="cuda").fit(ds.train, ds.n_users, ds.n_items)
    assert gpu.weight.is_cuda and not gpu.history.is_cuda
    torch.testing.assert_close(gpu.weight.cpu(), cpu.weight, atol=1e-5, rtol=1e-4)
    users, items = torch.tensor([3, 0, 3, 7]), torch.tensor([1, 5, 9, 30])
    torch.testing.assert_close(gpu.score(users).cpu(), cpu.score(users), atol=1e-5, rtol=1e-4)
    for table_limit in (2**26, 0):  # a table of all users, or each batch's rows
        on_cpu = EaseTeacher(cpu, table_limit=table_limit, perplexity=5.0)
        on_gpu = EaseTeacher(gpu, table_limit=table_limit, perplexity=5.0)  # calibrated on the GPU
        assert on_gpu.device.type == "cuda" and on_gpu.beta.is_cuda
        torch.testing.assert_close(on_gpu.scores(users).cpu(), on_cpu.scores(users), atol=1e-4, rtol=1e-3)
        torch.testing.assert_close(on_gpu.scores(users, items).cpu(), on_cpu.scores(users, items), atol=1e-4, rtol=1e-3)


def test_session_weighted_and_user_ease_teacher_on_the_gpu_scores_as_on_the_cpu(clustered_split):
    from kgrec.train.teacher import EaseTeacher

    ds = clustered_split
    options = dict(reg=50.0, session_hours=24.0, user_weight=1.0, user_reg=50.0)
    cpu, gpu = EaseTeacher.fit(ds, **options), EaseTeacher.fit(ds, device="cuda", **options)
    assert gpu.device.type == "cuda" and gpu.user_model.table.is_cuda
    users = torch.tensor([3, 0, 3, 7])
    torch.testing.assert_close(gpu.scores(users.cuda()).cpu(), cpu.scores(users), atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("loss", [["model.retrieval_loss=full_softmax"],
                                  ["model.retrieval_loss=sampled_softmax", "train.shared_negatives=16"]])  # fmt: skip
def test_a_distilled_gpu_run_fits_its_teacher_on_the_gpu(clustered_dataset, tmp_path, monkeypatch, loss):
    from kgrec.train.teacher import EaseTeacher

    devices = []
    fit = EaseTeacher.fit.__func__

    def recording_fit(cls, *args, **kwargs):
        devices.append(torch.device(kwargs["device"]).type)
        return fit(cls, *args, **kwargs)

    monkeypatch.setattr(EaseTeacher, "fit", classmethod(recording_fit))
    config = tiny_config(clustered_dataset, *GPU, "model.tasks=[retrieval]", "model.distill_weight=1",
                         "model.distill_temperature=1", "train.teacher_perplexity=5", "train.teacher_reg=50",
                         "train.max_epochs=2", *loss)  # fmt: skip
    metrics = train(config, tmp_path / "run")
    assert devices == ["cuda"] and metrics["test"]["ndcg@10"] > 0


def test_the_ddp_probe_for_unused_parameters_runs_on_the_gpu_with_the_teacher_there(clustered_dataset):
    from kgrec.train import build_model, prepare
    from kgrec.train.module import RecommenderModule
    from kgrec.train.run import _ddp_strategy

    config = tiny_config(clustered_dataset, *GPU, "model.tasks=[retrieval,rating,like]", "model.distill_weight=1",
                         "model.loss_weights={retrieval: 1, rating: 0.1, like: 0}")  # fmt: skip
    prepared = prepare(config, progress=False)
    module = RecommenderModule(build_model(config, prepared), prepared.dataset, config, teacher_device="cuda")
    assert module.teacher is not None and module.teacher.device.type == "cuda"
    assert _ddp_strategy("ddp", module, torch.device("cuda", 0)) == "ddp_find_unused_parameters_true"
    assert next(module.model.parameters()).device.type == "cuda" and module.teacher.device.type == "cuda"
