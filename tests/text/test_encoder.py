"""TextEncoder on a tiny random BERT: shapes, pooling, fine-tuning switches."""

from __future__ import annotations

import pytest
import torch

from kgrec.errors import ConfigError
from kgrec.text import TextEncoder, mean_pool

SHORT = "toy story"
LONG = "an animated film for children and a comedy of the war , action and drama ( 1995 )"


@pytest.fixture(scope="module")
def encoder(tiny_models: tuple[str, str]) -> TextEncoder:
    return TextEncoder(tiny_models[0], max_length=32, device="cpu")


def test_encode_returns_float32_matrix_of_dim(encoder: TextEncoder) -> None:
    vectors = encoder.encode([SHORT, LONG, "drama"], batch_size=2, progress=False)
    assert encoder.dim == 32
    assert vectors.shape == (3, 32) and vectors.dtype == torch.float32
    assert not vectors.requires_grad and not vectors.is_inference()
    assert torch.allclose(vectors.norm(dim=1), torch.ones(3), atol=1e-5)


def test_mean_pooling_ignores_padding(encoder: TextEncoder) -> None:
    alone = encoder.encode([SHORT], progress=False)
    batched = encoder.encode([SHORT, LONG], batch_size=2, progress=False)
    assert torch.allclose(alone[0], batched[0], atol=1e-5)


def test_mean_pool_is_the_masked_average() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])  # (1, 3, 2), last is padding
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_encoder_is_frozen_by_default(encoder: TextEncoder) -> None:
    assert encoder.trainable_parameters() == []
    assert not encoder.training


def test_unfreeze_top_layers_trains_only_the_top_layers(tiny_model: str) -> None:
    encoder = TextEncoder(tiny_model, device="cpu")
    params = encoder.unfreeze_top_layers(1)
    assert params and all(p.requires_grad for p in params)
    batch = encoder.tokenize([SHORT, LONG])
    encoder.train()
    encoder(**batch).sum().backward()
    with_grad = {n for n, p in encoder.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert with_grad and all(n.startswith("transformer.encoder.layer.1.") for n in with_grad)
    assert encoder.unfreeze_top_layers(0) == [] and encoder.trainable_parameters() == []


def test_unfreeze_more_layers_than_exist_is_refused(encoder: TextEncoder) -> None:
    with pytest.raises(ConfigError, match="between 0 and 2"):
        encoder.unfreeze_top_layers(3)


def test_encode_restores_training_mode(tiny_model: str) -> None:
    encoder = TextEncoder(tiny_model, device="cpu")
    encoder.train()
    encoder.encode([SHORT], progress=False)
    assert encoder.training


def test_texts_cut_at_the_token_limit_are_counted_in_a_warning(tiny_models: tuple[str, str]) -> None:
    """Truncation at ``max_length`` was silent: a long first column pushed the others out."""
    import warnings

    from kgrec.text import TextTruncatedWarning

    short = TextEncoder(tiny_models[0], max_length=8, device="cpu")
    with pytest.warns(TextTruncatedWarning, match=r"^1 of 2 texts reach the limit of 8 tokens and are cut there"):
        short.encode([SHORT, LONG], progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TextTruncatedWarning)
        TextEncoder(tiny_models[0], max_length=64, device="cpu").encode([SHORT, LONG], progress=False)  # nothing cut
