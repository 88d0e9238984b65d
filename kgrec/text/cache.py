"""A disk cache of text vectors, so each distinct text is encoded once per model.

One safetensors file per *model key*, ``CACHE_DIR/<model>-<key>.safetensors``, where the key
is a sha256 over the model id, its weight/tokenizer fingerprint, ``max_length``, the pooling
and ``normalize``. The file holds ``hashes`` ``(N, 32) uint8`` (sha256 of each UTF-8 text) and
``vectors`` ``(N, dim) float32``, row by row. Lookups hash the texts; only texts missing from
the file are encoded, then merged into it (re-read just before writing, so concurrent runs
lose at most each other's additions) and written atomically. A file that cannot be read or
does not match its key is ignored with a :class:`TextCacheWarning` and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from kgrec.data.dataset import Dataset
from kgrec.text.config import TextConfig
from kgrec.text.encoder import POOLING, TextEncoder, check_texts
from kgrec.text.resolve import model_fingerprint
from kgrec.text.templates import item_texts
from kgrec.utils.io import atomic_path

CACHE_FORMAT = 1


class TextCacheWarning(UserWarning):
    """A cache file was unreadable or stale and is being rebuilt."""


def encode_items(
    texts: Sequence[str],
    config: TextConfig | None = None,
    *,
    encoder: TextEncoder | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Vectors ``(N, dim)`` float32 for ``texts``, encoding only those not in the disk cache.

    Args:
        texts: the texts, e.g. :func:`~kgrec.text.item_texts`; duplicates are encoded once.
        config: model, batch size, cache folder ... (default :class:`TextConfig()`).
        encoder: an already loaded encoder to use instead of building one from ``config``
            (its model, ``max_length`` and ``normalize`` then define the cache key). An
            encoder with trainable parameters, or one ever unfrozen or given a state dict
            (:attr:`TextEncoder.weights_changed`), bypasses the cache: its weights may no
            longer be the ones on disk.
        progress: show a progress bar while encoding.

    The model is loaded only when some text is missing from the cache.
    """
    config = config or TextConfig()
    texts = list(texts)
    check_texts(texts)
    use_cache = config.cache and (
        encoder is None or not (encoder.weights_changed or encoder.trainable_parameters())
    )
    if not use_cache or not texts:
        encoder = encoder or TextEncoder.from_config(config)
        return encoder.encode(texts, batch_size=config.batch_size, progress=progress)

    if encoder is not None:
        model, fingerprint, max_length, normalize = (
            encoder.model_name, encoder.fingerprint, encoder.max_length, encoder.normalize
        )  # fmt: skip
    else:
        model, fingerprint = config.model, model_fingerprint(config.model)
        max_length, normalize = config.max_length, config.normalize
    key = cache_key(model, fingerprint, max_length, normalize)
    path = cache_file(config.cache_path(), model, key)
    hashes = [hashlib.sha256(t.encode("utf-8")).digest() for t in texts]
    cached = _read(path, key)
    todo = {h: t for h, t in zip(hashes, texts, strict=True) if h not in cached}  # distinct missing texts
    if todo:
        encoder = encoder or TextEncoder.from_config(config)
        vectors = encoder.encode(list(todo.values()), batch_size=config.batch_size, progress=progress)
        fresh = dict(zip(todo, vectors, strict=True))
        # Re-read just before writing, to keep what a concurrent run added meanwhile.
        _write(path, key, {**_read(path, key, quiet=True), **cached, **fresh})
        cached.update(fresh)
    return torch.stack([cached[h] for h in hashes])


def encode_dataset(
    dataset: Dataset, config: TextConfig | None = None, *, progress: bool = True
) -> torch.Tensor:
    """Text vectors ``(I, dim)`` of every item of ``dataset``, aligned with ``dataset.items``."""
    config = config or TextConfig()
    return encode_items(item_texts(dataset, config), config, progress=progress)


def cache_key(model: str, fingerprint: str, max_length: int, normalize: bool) -> str:
    """Hex sha256 identifying what a cached vector depends on besides its text."""
    payload = {
        "format": CACHE_FORMAT,
        "model": model,
        "fingerprint": fingerprint,
        "max_length": max_length,
        "pooling": POOLING,
        "normalize": normalize,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cache_file(cache_dir: Path, model: str, key: str) -> Path:
    """``cache_dir/<readable model name>-<key[:16]>.safetensors``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("._")[-60:] or "model"
    return Path(cache_dir) / f"{slug}-{key[:16]}.safetensors"


def _read(path: Path, key: str, quiet: bool = False) -> dict[bytes, torch.Tensor]:
    """The cached vectors by text hash; ``{}`` (with a warning) when the file is unusable."""
    if not path.exists():
        return {}
    try:
        hashes, vectors = _load(path, key)
    except Exception as error:  # any corruption: never crash, rebuild
        if not quiet:
            warnings.warn(
                f"ignoring text cache {path} ({error}); it will be rebuilt", TextCacheWarning, stacklevel=3
            )
        return {}
    return {bytes(h): v for h, v in zip(hashes.numpy(), vectors, strict=True)}


def _load(path: Path, key: str) -> tuple[torch.Tensor, torch.Tensor]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        if metadata.get("key") != key:
            raise ValueError("its key does not match the model")
        hashes, vectors = handle.get_tensor("hashes"), handle.get_tensor("vectors")
    if hashes.dtype != torch.uint8 or hashes.ndim != 2 or hashes.shape[1] != 32:
        raise ValueError(f"bad hashes tensor {tuple(hashes.shape)} {hashes.dtype}")
    if vectors.dtype != torch.float32 or vectors.ndim != 2 or len(vectors) != len(hashes):
        raise ValueError(f"bad vectors tensor {tuple(vectors.shape)} {vectors.dtype}")
    if not torch.isfinite(vectors).all():
        raise ValueError("non-finite vectors")
    return hashes, vectors


def _write(path: Path, key: str, vectors: dict[bytes, torch.Tensor]) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    hashes = torch.from_numpy(np.frombuffer(b"".join(vectors), dtype=np.uint8).reshape(-1, 32).copy())
    matrix = torch.stack(list(vectors.values())).float().contiguous()
    metadata = {"key": key, "format": str(CACHE_FORMAT), "pooling": POOLING}
    try:
        with atomic_path(path) as tmp:
            save_file({"hashes": hashes, "vectors": matrix}, str(tmp), metadata=metadata)
    except (OSError, SafetensorError) as error:  # a full or read-only disk costs speed, not the run
        # (safetensors reports its own write failures, a full disk included, as SafetensorError)
        warnings.warn(f"could not write text cache {path}: {error}", TextCacheWarning, stacklevel=3)
