"""The text encoder on a CUDA GPU gives the CPU's vectors. Skipped without a GPU."""

from __future__ import annotations

import pytest
import torch

from kgrec.text import TextEncoder

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TEXTS = ["Toy Story (1995). Genres: Animation", "a much longer text " * 20, "x", ""]


def test_gpu_and_cpu_vectors_agree(tiny_model):
    gpu = TextEncoder(tiny_model)  # device=None picks CUDA when there is one
    assert gpu.device.type == "cuda"
    cpu = TextEncoder(tiny_model, device="cpu")
    a = gpu.encode(TEXTS, batch_size=2, progress=False)
    assert a.device.type == "cpu" and a.dtype == torch.float32
    assert torch.allclose(a, cpu.encode(TEXTS, batch_size=3, progress=False), atol=1e-4)
