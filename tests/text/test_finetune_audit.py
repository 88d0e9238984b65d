"""Which parameters fine-tuning trains, for transformers whose layer list lives under other names
(BERT ``encoder.layer``, DistilBERT ``transformer.layer``, MPNet ``encoder.layer`` next to its
relative attention bias), and the layer count read from a model's config alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from kgrec.errors import KgrecError
from kgrec.text import TextEncoder
from kgrec.text.encoder import finetunable_layers

SMALL = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)


def _model(tiny_model: str, folder: Path, kind: str, weights: bool = True) -> Path:
    """A 3-layer random ``kind`` model with the tiny BERT's tokenizer (config only unless ``weights``)."""
    import transformers as T

    specs = {
        "distilbert": (T.DistilBertConfig, T.DistilBertModel, dict(dim=32, n_layers=3, n_heads=2, hidden_dim=64, max_position_embeddings=64)),
        "mpnet": (T.MPNetConfig, T.MPNetModel, dict(num_hidden_layers=3, **SMALL)),
        "albert": (T.AlbertConfig, T.AlbertModel, dict(num_hidden_layers=3, embedding_size=16, **SMALL)),
    }
    config_class, model_class, sizes = specs[kind]
    shutil.copytree(tiny_model, folder)
    (folder / "model.safetensors").unlink()
    vocab = len((folder / "vocab.txt").read_text(encoding="utf-8").split())
    config = config_class(vocab_size=vocab, **sizes)
    if weights:
        torch.manual_seed(0)
        model_class(config).save_pretrained(folder, safe_serialization=True)
    else:
        config.save_pretrained(folder)
    return folder


def test_finetunable_layers_reads_the_layer_count_from_the_config_alone(tiny_model: str, tmp_path: Path) -> None:
    assert finetunable_layers(tiny_model) == 2
    assert finetunable_layers(str(_model(tiny_model, tmp_path / "distil", "distilbert", weights=False))) == 3
    assert finetunable_layers(str(_model(tiny_model, tmp_path / "mpnet", "mpnet", weights=False))) == 3
    with pytest.raises(KgrecError, match="cannot find the layer stack"):  # ALBERT shares one layer across its depth
        finetunable_layers(str(_model(tiny_model, tmp_path / "albert", "albert", weights=False)))


@pytest.mark.parametrize(("kind", "stack"), [("bert", "encoder.layer"), ("distilbert", "transformer.layer"), ("mpnet", "encoder.layer")])
def test_only_the_top_layers_train_and_the_rest_stay_bit_identical(tiny_model: str, tmp_path: Path, kind: str, stack: str) -> None:
    folder = tiny_model if kind == "bert" else str(_model(tiny_model, tmp_path / kind, kind))
    encoder = TextEncoder(folder, device="cpu", max_length=32)
    layers = 2 if kind == "bert" else 3
    with pytest.raises(KgrecError, match=f"between 0 and {layers}"):
        encoder.unfreeze_top_layers(layers + 1)
    trained = encoder.unfreeze_top_layers(2)
    top = tuple(f"transformer.{stack}.{i}." for i in range(layers - 2, layers))
    names = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert names and all(n.startswith(top) for n in names)  # embeddings, lower layers, BERT's pooler: frozen
    assert {n for n in (n for n, _ in encoder.named_parameters()) if n.startswith(top)} == names
    before = {n: p.detach().clone() for n, p in encoder.named_parameters()}
    optimizer = torch.optim.Adam(trained, lr=0.01, weight_decay=0.1)
    batch = encoder.tokenize(["toy story", "an animated film for children"])
    for _ in range(2):
        optimizer.zero_grad()
        encoder(**batch).sum().backward()
        optimizer.step()
    for name, parameter in encoder.named_parameters():
        if name in names:
            assert not torch.equal(parameter, before[name]), name
        else:
            assert parameter.grad is None and torch.equal(parameter, before[name]), name
