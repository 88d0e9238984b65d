"""The disk cache of text vectors: hits, keys, corruption."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kgrec.text import TextCacheWarning, TextConfig, TextEncoder, encode_items

TEXTS = ["toy story", "the war film", "a comedy for children"]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Records the texts of every TextEncoder.encode call (and every model load as 'load')."""
    seen: list[list[str]] = []
    encode, init = TextEncoder.encode, TextEncoder.__init__

    def counting_encode(self, texts, *args, **kwargs):
        seen.append(list(texts))
        return encode(self, texts, *args, **kwargs)

    def counting_init(self, *args, **kwargs):
        seen.append(["load"])
        init(self, *args, **kwargs)

    monkeypatch.setattr(TextEncoder, "encode", counting_encode)
    monkeypatch.setattr(TextEncoder, "__init__", counting_init)
    return seen


def test_second_run_encodes_nothing_and_loads_no_model(tiny_model: str, calls: list) -> None:
    config = TextConfig(model=tiny_model, device="cpu")
    first = encode_items(TEXTS, config, progress=False)
    assert calls == [["load"], TEXTS]
    calls.clear()
    second = encode_items(TEXTS, config, progress=False)
    assert calls == []
    assert torch.equal(first, second)


def test_only_missing_texts_are_encoded_once(tiny_model: str, calls: list) -> None:
    config = TextConfig(model=tiny_model, device="cpu")
    encode_items(TEXTS[:2], config, progress=False)
    calls.clear()
    vectors = encode_items([TEXTS[2], TEXTS[0], TEXTS[2]], config, progress=False)
    assert calls == [["load"], [TEXTS[2]]]
    assert torch.equal(vectors[0], vectors[2])


def test_cached_vectors_equal_fresh_ones(tiny_model: str) -> None:
    config = TextConfig(model=tiny_model, device="cpu")
    encode_items(TEXTS, config, progress=False)
    cached = encode_items(TEXTS, config, progress=False)
    fresh = TextEncoder.from_config(config).encode(TEXTS, progress=False)
    assert torch.allclose(cached, fresh, atol=1e-6)


def test_cache_is_keyed_by_model(tiny_models: tuple[str, str], calls: list) -> None:
    a = encode_items(TEXTS, TextConfig(model=tiny_models[0], device="cpu"), progress=False)
    calls.clear()
    b = encode_items(TEXTS, TextConfig(model=tiny_models[1], device="cpu"), progress=False)
    assert calls == [["load"], TEXTS]
    assert not torch.allclose(a, b)


@pytest.mark.filterwarnings("ignore::kgrec.text.TextTruncatedWarning")  # max_length=4 cuts the texts, as meant
def test_cache_is_keyed_by_max_length_and_normalize(tiny_model: str, calls: list) -> None:
    encode_items(TEXTS, TextConfig(model=tiny_model, device="cpu"), progress=False)
    for config in (
        TextConfig(model=tiny_model, device="cpu", max_length=4),
        TextConfig(model=tiny_model, device="cpu", normalize=False),
    ):
        calls.clear()
        encode_items(TEXTS, config, progress=False)
        assert calls[-1] == TEXTS


def test_corrupt_cache_is_ignored_with_a_warning_and_rebuilt(
    tiny_model: str, tmp_path: Path, calls: list
) -> None:
    config = TextConfig(model=tiny_model, device="cpu", cache_dir=str(tmp_path / "cache"))
    expected = encode_items(TEXTS, config, progress=False)
    (file,) = (tmp_path / "cache").glob("*.safetensors")
    file.write_bytes(b"not a safetensors file")
    calls.clear()
    with pytest.warns(TextCacheWarning, match="rebuilt"):
        again = encode_items(TEXTS, config, progress=False)
    assert calls == [["load"], TEXTS]
    assert torch.allclose(again, expected, atol=1e-6)
    calls.clear()
    encode_items(TEXTS, config, progress=False)
    assert calls == []


def test_trainable_encoder_bypasses_the_cache(tiny_model: str, calls: list) -> None:
    config = TextConfig(model=tiny_model, device="cpu")
    encode_items(TEXTS, config, progress=False)
    encoder = TextEncoder.from_config(config)
    encoder.unfreeze_top_layers(1)
    calls.clear()
    encode_items(TEXTS, config, encoder=encoder, progress=False)
    assert calls == [TEXTS]


def test_empty_input_gives_an_empty_matrix(tiny_model: str) -> None:
    assert encode_items([], TextConfig(model=tiny_model, device="cpu"), progress=False).shape == (0, 32)
