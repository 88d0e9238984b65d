"""An audit of the text-vector cache: a disk that fills up while the cache is written, and a
model folder whose tokenizer files change under the same path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from kgrec.text import TextCacheWarning, TextConfig, TextEncoder, encode_items

TEXTS = ["toy story", "the war film", "a comedy for children"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs RLIMIT_FSIZE and SIGXFSZ")
def test_full_disk_while_writing_the_cache_warns_and_returns_the_vectors(tiny_model: str, tmp_path: Path) -> None:
    # safetensors reports a failed write as SafetensorError, not OSError: the run died with a
    # traceback after encoding everything, where a full disk should only cost the cache.
    import resource
    import signal

    config = TextConfig(model=tiny_model, device="cpu", cache_dir=str(tmp_path / "cache"))
    encoder = TextEncoder.from_config(config)
    expected = encoder.encode(TEXTS, progress=False)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (256, limit[1]))  # a file may not grow past 256 bytes
    try:
        with pytest.warns(TextCacheWarning, match="could not write text cache"):
            vectors = encode_items(TEXTS, config, encoder=encoder, progress=False)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, handler)
    assert torch.equal(vectors, expected)
    assert list((tmp_path / "cache").iterdir()) == []  # neither a cache file nor a temporary left behind


def _tiny_roberta(folder: Path) -> Path:
    """A 1-layer random RoBERTa whose byte-level BPE tokenizer is read from vocab.json and
    merges.txt (no tokenizer.json), as in many models saved by older tokenizers."""
    from transformers import RobertaConfig, RobertaModel

    folder.mkdir()
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    merged = ["to", "Ġto", "st", "or", "Ġst", "toy", "Ġtoy"]
    tokens = special + list("abcdefghijklmnopqrstuvwxyz") + ["Ġ"] + merged
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    merges = ["t o", "Ġ to", "s t", "o r", "Ġ st", "to y", "Ġto y"]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    config = RobertaConfig(
        vocab_size=len(tokens), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=72, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    RobertaModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


def test_changed_bpe_merges_of_a_model_folder_are_a_cache_miss(tmp_path: Path) -> None:
    # The fingerprint hashed vocab.txt but not vocab.json / merges.txt (nor SentencePiece
    # models): a folder whose BPE tokenizer changed kept its key and got the old vectors back.
    folder = _tiny_roberta(tmp_path / "roberta")
    config = TextConfig(model=str(folder), device="cpu", max_length=32)
    before = encode_items(TEXTS, config, progress=False)
    merges = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
    kept = [m for m in merges if m not in ("to y", "Ġto y")]
    (folder / "merges.txt").write_text("\n".join(kept) + "\n", encoding="utf-8")
    fresh = TextEncoder.from_config(config).encode(TEXTS, progress=False)
    assert not torch.allclose(fresh[0], before[0], atol=1e-4)  # "toy" is no longer one token
    assert torch.allclose(encode_items(TEXTS, config, progress=False), fresh, atol=1e-6)
