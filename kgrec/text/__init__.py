"""Item texts and their transformer vectors.

``item_texts`` writes one text per item from a template over the item columns;
``TextEncoder`` (tokenizer + transformer + mean pooling) turns texts into vectors;
``encode_items`` / ``encode_dataset`` do the same through a disk cache, so each text is
encoded once per model. The default model, sentence-transformers/all-MiniLM-L6-v2 (384-d),
is loaded offline and only after its weights pass a pinned sha256 check (``resolve_model``).
"""

from typing import TYPE_CHECKING

from kgrec.text.config import DEFAULT_MODEL, TextConfig
from kgrec.text.resolve import DEFAULT_MODEL_SHA256, file_sha256, model_fingerprint, resolve_model
from kgrec.text.templates import default_template, item_texts, template_fields
from kgrec.utils.lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use (torch, transformers): item texts and configs need neither
    from kgrec.text.cache import TextCacheWarning, cache_file, cache_key, encode_dataset, encode_items
    from kgrec.text.encoder import TextEncoder, TextTruncatedWarning, mean_pool

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_SHA256",
    "TextCacheWarning",
    "TextConfig",
    "TextEncoder",
    "TextTruncatedWarning",
    "cache_file",
    "cache_key",
    "default_template",
    "encode_dataset",
    "encode_items",
    "file_sha256",
    "item_texts",
    "mean_pool",
    "model_fingerprint",
    "resolve_model",
    "template_fields",
]

__getattr__ = lazy_exports(__name__, __all__, ("cache", "encoder"))
