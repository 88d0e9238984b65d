"""Tiny random BERTs saved as local model folders, and an isolated $KGREC_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

WORDS = [
    "toy", "story", "golden", "eye", "four", "rooms", "film", "movie", "animated", "animation",
    "children", "comedy", "drama", "war", "action", "thriller", "for", "the", "a", "of", "and",
    "genres", "list", "1995", "1993", "(", ")", ".", ",", ":", "'", "s",
]  # fmt: skip


def make_tiny_bert(folder: Path, seed: int) -> Path:
    """A 2-layer, 32-d random BERT with a small word-level vocabulary, saved to ``folder``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"abcdefghijklmnopqrstuvwxyz0123456789"]
    vocab += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(dict.fromkeys(vocab)),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Two tiny BERT folders with different random weights."""
    root = tmp_path_factory.mktemp("models")
    return str(make_tiny_bert(root / "tiny-a", seed=1)), str(make_tiny_bert(root / "tiny-b", seed=2))


@pytest.fixture
def tiny_model(tiny_models: tuple[str, str]) -> str:
    return tiny_models[0]


@pytest.fixture(autouse=True)
def kgrec_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own $KGREC_HOME, so caches never leak between tests or into ~/.cache."""
    home = tmp_path / "kgrec-home"
    monkeypatch.setenv("KGREC_HOME", str(home))
    return home
