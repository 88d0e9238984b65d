"""Text queries, new-user query vectors and the exact search beside FAISS, audited: bad query
vectors and ``k`` on every path of ``nearest``, and a catalog left without any item with text."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from kgrec.errors import RetrievalError
from kgrec.retrieval.catalog import AddedItem, Catalog
from kgrec.retrieval.index import IndexConfig, VectorIndex
from kgrec.retrieval.nearest import nearest
from kgrec.retrieval.text_query import text_space

PATHS = {  # allowed share, cosine, exact_max: the FAISS path and the three exact ones
    "index": (1.0, False, 0),
    "restrictive filter": (0.1, False, 1000),
    "cosine, small catalog": (1.0, True, 1000),
    "cosine, index": (1.0, True, 0),
}


def search(query: np.ndarray, k: object, path: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """``nearest`` over 50 random 4-d items, along ``path`` (:data:`PATHS`)."""
    share, cosine, exact_max = PATHS[path]
    vectors = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    index = VectorIndex.build(vectors, np.arange(50), IndexConfig(kind="flat"))
    allowed = np.arange(50) < 50 * share
    centre = vectors.mean(0) if cosine else None
    return nearest(index, vectors, np.ones(50, bool), query, k, allowed, None, cosine, centre,  # type: ignore[arg-type]
                   exact_max=exact_max)  # fmt: skip


@pytest.mark.parametrize("path", list(PATHS))
def test_a_query_vector_with_nan_or_inf_is_refused_on_every_path(path: str):
    """Only FAISS refused it: a filtered or cosine query, scored exactly, answered a NaN query with
    no item at all, as if none qualified (``recommend_for_new_user(..., where=...)`` with a
    broken model said ``[]``)."""
    assert len(search(np.ones(4, np.float32), 3, path)[0][0]) == 3
    for bad in (np.nan, np.inf):
        query = np.asarray([[1, 1, 1, 1], [1, bad, 0, 0]], np.float32)
        with pytest.raises(RetrievalError, match=r"queries: row 1 is not finite"):
            search(query, 3, path)


@pytest.mark.parametrize("path", list(PATHS))
def test_a_query_vector_of_another_width_is_refused_on_every_path(path: str):
    """Scored exactly, a 3-wide query on 4-d items stopped in numpy's broadcast or matmul traceback."""
    with pytest.raises(RetrievalError, match=r"queries: expected shape \(B, 4\), got \(1, 3\)"):
        search(np.ones((1, 3), np.float32), 3, path)


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("k", [0, -2, 2.5, True])
def test_k_that_is_not_a_positive_integer_is_refused_on_every_path(path: str, k: object):
    """The exact paths answered ``k=0`` and ``k=-2`` with ``[]`` and ``k=2.5`` with a numpy
    TypeError, where FAISS refused them all."""
    with pytest.raises(RetrievalError, match="k must be a positive integer"):
        search(np.ones(4, np.float32), k, path)


def test_a_catalog_without_any_item_with_text_left_says_so_to_text_queries_alone():
    """With its trained items removed and only items added without text left, the text space
    itself failed, "cannot build an index over an empty catalog" of a catalog that still held
    items: for a text query, and for ``similar`` of an added item too, which reads ``has_text``."""
    base = Catalog(["a", "b"], ["A", "B"], np.eye(2, 4, dtype=np.float32), {}, {}, n_base=2, text_dim=3)
    added = [AddedItem("x", "X", via=("graph",)), AddedItem("y", "Y", via=("graph",))]  # no text
    catalog = base.with_added(added, np.ones((2, 4), np.float32)).with_removed(["a", "b"])
    run = SimpleNamespace(text=torch.ones(2, 3))
    assert text_space(run, base).index.count == 2  # type: ignore[arg-type]
    space = text_space(run, catalog)  # type: ignore[arg-type]
    assert space.has_text.tolist() == [True, True, False, False]
    with pytest.raises(RetrievalError, match="no item left in the catalog has text") as error:
        space.index  # noqa: B018
    assert "empty catalog" not in str(error.value)
