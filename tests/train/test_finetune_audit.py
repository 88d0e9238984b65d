"""Joint fine-tuning of the text encoder (``text.finetune_layers``): float32 validation vectors,
the refusals before training, and the run folder's own ``text-encoder/``."""

from __future__ import annotations

import shutil

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

from kgrec.errors import ConfigError
from kgrec.text import TextEncoder, item_texts
from kgrec.train import build_model, check_before_training, prepare, train
from kgrec.train.module import RecommenderModule
from tests.conftest import tiny_config

TUNED = ["model.use_text=true", "text.finetune_layers=1", "text.finetune_lr=0.01", "train.max_epochs=1"]


@pytest.fixture(autouse=True)
def kgrec_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KGREC_HOME", str(tmp_path / "home"))


def _module(clustered_dataset, tiny_model: str, *overrides: str) -> tuple[RecommenderModule, list[str]]:
    config = tiny_config(clustered_dataset, *TUNED, f"text.model={tiny_model}", *overrides)
    prepared = prepare(config, progress=False)
    encoder = TextEncoder(tiny_model, device="cpu")
    encoder.unfreeze_top_layers(1)
    texts = item_texts(prepared.dataset, config.text)
    return RecommenderModule(build_model(config, prepared), prepared.dataset, config, None, encoder, texts), texts


def test_the_fine_tuned_layers_have_their_own_adam_group_and_the_frozen_ones_none(clustered_dataset, tiny_models):
    module, _ = _module(clustered_dataset, tiny_models[0], "train.lr=0.003")
    groups = module.configure_optimizers().param_groups
    ids = [id(p) for group in groups for p in group["params"]]
    assert len(ids) == len(set(ids))  # no parameter in two groups
    assert groups[0]["lr"] == 0.003 and groups[-1]["lr"] == 0.01  # train.lr, text.finetune_lr
    assert [id(p) for p in groups[-1]["params"]] == [id(p) for p in module.text_encoder.trainable_parameters()]
    assert {id(p) for p in module.model.parameters()} | {id(p) for p in groups[-1]["params"]} == set(ids)
    frozen = {id(p) for p in module.text_encoder.parameters() if not p.requires_grad}
    assert frozen and not frozen & set(ids)


def test_eval_encoding_is_float32_in_batches_of_text_batch_size_even_under_autocast(clustered_dataset, tiny_models):
    module, texts = _module(clustered_dataset, tiny_models[0], "text.batch_size=16")
    encoder = module.text_encoder
    rows = []
    hook = encoder.transformer.register_forward_hook(lambda _m, args, kwargs, out: rows.append(len(kwargs["input_ids"])), with_kwargs=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what validation runs inside with train.precision=bf16-mixed
        module.encode_texts(training=False)
    hook.remove()
    expected = encoder.encode(texts, batch_size=16, progress=False)
    assert rows == [16, 16, 16, 12]  # 60 items, text.batch_size at a time (all 60 in one batch before)
    assert module.model.text.dtype == torch.float32 and not module.model.text.requires_grad
    assert torch.equal(module.model.text, expected)  # as the run's queries encode: no bf16 rounding


class KeepValidationText(L.Callback):
    def __init__(self) -> None:
        self.text: torch.Tensor | None = None
        self.dropout: set[bool] = set()

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.dropout.add(any(m.training for m in module.text_encoder.modules()))

    def on_validation_epoch_end(self, trainer, module):
        self.text = module.model.text.detach().float().cpu().clone()


def test_validation_under_bf16_sees_the_text_vectors_the_run_saves(clustered_dataset, tiny_models, tmp_path):
    """With bf16 autocast (a GPU's default, forced here on the CPU) validation encoded the item
    texts in bf16, so the kept epoch was chosen on vectors 2e-4 away from the float32 ones the
    run saves in text.safetensors and its queries compute."""
    config = tiny_config(clustered_dataset, *TUNED, f"text.model={tiny_models[0]}", "train.precision=bf16-mixed")
    seen = KeepValidationText()
    train(config, tmp_path / "run", callbacks=[seen])
    saved = load_file(str(tmp_path / "run" / "text.safetensors"))["text"]  # the one epoch's weights
    assert seen.text is not None and torch.equal(seen.text, saved)
    assert seen.dropout == {False}  # the transformer trains in eval mode: no dropout, frozen layers included


def _run_with_text_encoder(tiny_model: str, run):
    """A folder laid out as a run that fine-tuned its encoder (the encoder is all that matters here)."""
    shutil.copytree(tiny_model, run / "text-encoder")
    (run / "manifest.json").write_text("{}\n", encoding="utf-8")
    return run / "text-encoder"


@pytest.mark.parametrize("layers", ["text.finetune_layers=0", "text.finetune_layers=1"])
def test_a_text_model_inside_the_out_that_overwrite_clears_is_refused(clustered_dataset, tiny_models, tmp_path, layers):
    """`--set text.model=RUN/text-encoder --out RUN --overwrite` (to fine-tune further in place, or
    encode with it frozen) removed the folder it read: frozen, the finished run's text queries
    failed (`text model folder not found`); fine-tuned, an interrupted run could not resume."""
    run = tmp_path / "run"
    encoder = _run_with_text_encoder(tiny_models[0], run)
    config = tiny_config(clustered_dataset, "model.use_text=true", f"text.model={encoder}", layers)
    with pytest.raises(ConfigError, match=r"^text.model .*text-encoder is inside --out .*, which --overwrite clears") as error:
        check_before_training(config, run, overwrite=True)
    assert error.value.key == "text.model"
    with pytest.raises(ConfigError, match="which --overwrite clears"):
        train(config, run, overwrite=True)
    assert (encoder / "model.safetensors").is_file()  # nothing was removed
    copy = shutil.copytree(encoder, tmp_path / "run-text-encoder")
    check_before_training(tiny_config(clustered_dataset, "model.use_text=true", f"text.model={copy}", layers), run, overwrite=True)
    check_before_training(config, tmp_path / "elsewhere", overwrite=True)  # another --out: nothing is cleared


def test_too_many_finetune_layers_are_refused_before_any_data_is_read(clustered_dataset, tiny_models, tmp_path, monkeypatch):
    """The tiny BERT has 2 layers: 3 was refused only after the graph was built and every item
    text encoded, without the key (`finetune_layers must be between 0 and 2 ...`)."""
    config = tiny_config(clustered_dataset, *TUNED, f"text.model={tiny_models[0]}", "text.finetune_layers=3")
    with pytest.raises(ConfigError, match=r"^text.finetune_layers must be between 0 and 2 for .*tiny-a .*got 3$") as error:
        check_before_training(config, tmp_path / "run")
    assert error.value.key == "text.finetune_layers"
    monkeypatch.setattr("kgrec.train.run.load_data", lambda *a, **k: pytest.fail("read the data before refusing"))
    with pytest.raises(ConfigError, match="text.finetune_layers must be between 0 and 2"):
        train(config, tmp_path / "run")
    check_before_training(tiny_config(clustered_dataset, *TUNED, f"text.model={tiny_models[0]}", "text.finetune_layers=2"), tmp_path / "run")
    check_before_training(tiny_config(clustered_dataset, f"text.model={tiny_models[0]}", "text.finetune_layers=3"), tmp_path / "run")  # no text


def test_finetune_layers_without_text_says_it_has_no_effect(clustered_dataset, tiny_models, tmp_path, capsys):
    config = tiny_config(clustered_dataset, f"text.model={tiny_models[0]}", "text.finetune_layers=1", "train.max_epochs=1")
    train(config, tmp_path / "run")
    assert "note: text.finetune_layers=1 has no effect: model.use_text is false" in capsys.readouterr().err
    assert not (tmp_path / "run" / "text-encoder").exists()


def test_a_layer_count_unread_before_training_is_refused_with_its_key_as_the_model_loads(clustered_dataset, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setattr("kgrec.text.encoder.finetunable_layers", lambda model: None)  # a model not buildable from its config
    config = tiny_config(clustered_dataset, *TUNED, f"text.model={tiny_models[0]}", "text.finetune_layers=3")
    with pytest.raises(ConfigError, match=r"^text.finetune_layers must be between 0 and 2 for .*got 3$") as error:
        train(config, tmp_path / "run")
    assert error.value.key == "text.finetune_layers" and not (tmp_path / "run").exists()
