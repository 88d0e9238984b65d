"""Free-text queries of a run: the text encoder's vector of a query, and the catalog's own text
vectors it is compared with (``search``, a new user's ``likes_text``)."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from kgrec.errors import RetrievalError
from kgrec.retrieval.catalog import Catalog
from kgrec.retrieval.index import IndexConfig, VectorIndex

if TYPE_CHECKING:
    import torch

    from kgrec.text import TextEncoder
    from kgrec.train.saved import LoadedRun


@dataclass(frozen=True)
class TextSpace:
    """The catalog in the text encoder's space: unit ``vectors`` ``(n, t)`` by catalog position
    (zeros for items without text), ``has_text`` ``(n,)`` bool, the catalog's ``active`` ``(n,)``
    bool, and an exact :attr:`index` over the active items with text."""

    vectors: np.ndarray
    has_text: np.ndarray
    active: np.ndarray

    @cached_property
    def index(self) -> VectorIndex:
        """The exact index over the active items with text, built at its first use (``similar`` of
        an added item reads ``vectors`` and ``has_text`` alone); :class:`RetrievalError` when
        none is left (the index would say "an empty catalog" of one that still holds items)."""
        ids = np.flatnonzero(self.has_text & self.active)
        if not len(ids):
            raise RetrievalError(
                "no item left in the catalog has text to compare a text with: the items with text were removed, "
                "and those added without the text template's columns have none"
            )
        return VectorIndex.build(self.vectors[ids], ids, IndexConfig(kind="flat"))


def text_space(run: LoadedRun, catalog: Catalog) -> TextSpace:
    """The :class:`TextSpace` of ``catalog``: the run's text vectors of its trained items and the
    encoder's vectors of the items added since. Callers encode their query with
    :meth:`TextQueries.vector` first, which refuses a run without text."""
    vectors = np.concatenate([run.text.numpy(), catalog.added_encoded]).astype(np.float32)
    has_text = np.isfinite(vectors).all(1)
    vectors[~has_text] = 0.0
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return TextSpace(vectors, has_text, catalog.active.copy())


def check_query_text(text: object) -> str:
    """``text`` when it is a string with words; :class:`RetrievalError` saying what is wrong
    otherwise (not a string, empty, no letter or digit)."""
    if not isinstance(text, str):  # a list or a number said "the query text is empty"
        raise RetrievalError(f"the query text: expected a string of words, e.g. \"animated film for children\", "
                             f"got {type(text).__name__} {text!r:.60}")  # fmt: skip
    if not text.strip():
        raise RetrievalError("the query text is empty: give some words, e.g. \"animated film for children\"")
    if not re.search(r"[^\W_]", text):  # "???", "...": the encoder would rank items for it all the same
        shown = text.strip() if len(text.strip()) <= 60 else text.strip()[:60] + "..."  # not a megabyte of "?" back
        raise RetrievalError(
            f"the query text {shown!r} has no words (no letter or digit, in any script): give some "
            "words, e.g. \"animated film for children\""
        )
    return text


class TextQueries:
    """A run's text encoder, loaded at the first query, and its catalog's :class:`TextSpace`,
    built at the first query on each catalog."""

    def __init__(self, run: LoadedRun) -> None:
        self.run = run
        self._encoder: TextEncoder | None = None
        self._space: TextSpace | None = None
        self._space_of: Catalog | None = None  # the catalog ``_space`` was built from

    def vector(self, text: str) -> torch.Tensor:
        """The run's text encoder applied to ``text``: ``(1, t)``."""
        text = check_query_text(text)
        model = self.run.model
        if model.text_adaptor is None or self.run.text is None:
            raise RetrievalError(
                "this run was trained without text (model.use_text=false), so it has nothing to compare a text "
                "query with; retrain with model.use_text=true on items with text columns (NAME.item)"
            )
        if self._encoder is None:
            from kgrec.text import TextEncoder

            self._encoder = TextEncoder.from_config(self.run.config.text)
        vector = _encode(self._encoder, text.strip())  # (1, t)
        if vector.shape[1] != model.sizes.text_dim:
            raise RetrievalError(
                f"the text encoder gives {vector.shape[1]}-d vectors, the model reads {model.sizes.text_dim}-d: "
                f"the run's text model ({self.run.config.text.model}) changed"
            )
        return vector

    def space(self, catalog: Catalog) -> TextSpace:
        """:func:`text_space` of ``catalog``, kept while queries are on the same catalog."""
        if self._space is None or self._space_of is not catalog:
            self._space, self._space_of = text_space(self.run, catalog), catalog
        return self._space


def _encode(encoder: TextEncoder, text: str) -> torch.Tensor:
    """The encoder's vector ``(1, t)`` of one query text; a text cut at the token limit is said
    so in words about the query (the encoder's own warning speaks of the item template)."""
    from kgrec.text import TextTruncatedWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vector = encoder.encode([text], progress=False)
    for warning in caught:
        if issubclass(warning.category, TextTruncatedWarning):
            warnings.warn(f"the query text is longer than the text model reads ({encoder.max_length} tokens): only "
                          "its start counts", TextTruncatedWarning, stacklevel=4)  # fmt: skip
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return vector
