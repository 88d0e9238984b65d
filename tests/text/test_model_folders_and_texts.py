"""Edge cases of the text encoder and its cache: broken model folders, odd texts, tuned encoders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from kgrec.errors import KgrecError
from kgrec.text import TextConfig, TextEncoder, encode_items


def _copy(tiny_model: str, tmp_path: Path, name: str, drop: tuple[str, ...] = ()) -> Path:
    folder = tmp_path / name
    shutil.copytree(tiny_model, folder)
    for file in drop:
        (folder / file).unlink()
    return folder


def test_model_folder_without_tokenizer_is_refused(tiny_model: str, tmp_path: Path) -> None:
    # transformers would build a tokenizer that knows only [CLS], [SEP], [UNK] ...: every word
    # becomes [UNK], so every text of the same length gets the same vector.
    folder = _copy(tiny_model, tmp_path, "no-tokenizer", drop=("tokenizer.json", "tokenizer_config.json", "vocab.txt"))
    with pytest.raises(KgrecError, match="no tokenizer"):
        TextEncoder(str(folder), device="cpu")


def test_truncated_model_weights_give_one_line_kgrec_error(tiny_model: str, tmp_path: Path) -> None:
    folder = _copy(tiny_model, tmp_path, "truncated")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(KgrecError, match="could not load text model") as error:
        TextEncoder(str(folder), device="cpu")
    assert "\n" not in str(error.value)


def test_folder_that_is_not_a_model_is_named_as_such(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello\n", encoding="utf-8")
    with pytest.raises(KgrecError, match="not a model folder") as error:
        encode_items(["toy story"], TextConfig(model=str(folder), device="cpu", cache=False), progress=False)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("cache", [True, False])
def test_text_with_a_lone_surrogate_is_refused_by_index(tiny_model: str, cache: bool) -> None:
    config = TextConfig(model=tiny_model, device="cpu", cache=cache)
    with pytest.raises(KgrecError, match=r"text 1 .*surrogate"):
        encode_items(["toy story", "caf\udce9"], config, progress=False)


def test_encoder_tuned_then_frozen_does_not_write_the_cache(tiny_model: str) -> None:
    config = TextConfig(model=tiny_model, device="cpu", max_length=64)  # the tiny BERT's own limit
    tuned = TextEncoder.from_config(config)
    with torch.no_grad():
        for parameter in tuned.unfreeze_top_layers(1):
            parameter.add_(0.1)
    tuned.unfreeze_top_layers(0)  # frozen again, but its weights are no longer those on disk
    encode_items(["toy story"], config, encoder=tuned, progress=False)
    cached = encode_items(["toy story"], config, progress=False)
    fresh = TextEncoder.from_config(config).encode(["toy story"], progress=False)
    assert torch.allclose(cached, fresh, atol=1e-6)


def test_encoder_with_loaded_weights_does_not_write_the_cache(tiny_models: tuple[str, str]) -> None:
    config = TextConfig(model=tiny_models[0], device="cpu", max_length=64)
    other = TextEncoder(tiny_models[1], max_length=64, device="cpu")
    encoder = TextEncoder.from_config(config)
    encoder.load_state_dict(other.state_dict())  # e.g. a fine-tuned checkpoint
    encode_items(["toy story"], config, encoder=encoder, progress=False)
    cached = encode_items(["toy story"], config, progress=False)
    fresh = TextEncoder.from_config(config).encode(["toy story"], progress=False)
    assert torch.allclose(cached, fresh, atol=1e-6)
