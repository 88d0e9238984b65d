r"""``similar(item)`` of an item added after training: the model's centred cosine blended with the
text encoder's.

An added item's retrieval vector comes from its text and graph without any interaction, and
alone it lists items that share little with it: on ml-100k's held-out items, 63% of such a
list shared a genre with the item, 89% for the blend, which also listed twice as many of the
items its held-out likes point to (``scripts/bench_coldstart.py``).
"""

from __future__ import annotations

import numpy as np

from kgrec.retrieval.catalog import Catalog
from kgrec.retrieval.nearest import Found, top_k
from kgrec.retrieval.text_query import TextSpace

# this weight on the centred model cosine, the rest on the text encoder's cosine (chosen on the
# valid half of scripts/bench_coldstart.py's new items)
NEW_ITEM_SIMILAR_MODEL_WEIGHT = 0.25


def similar_to_added_item(
    catalog: Catalog,
    centre: np.ndarray,
    space: TextSpace,
    source: int,
    k: int,
    allowed: np.ndarray | None = None,
) -> Found:
    r"""The ``k`` items most like an item added after training (catalog position ``source``, left
    out), among ``allowed`` ``(n,)`` active items: positions and scores, exact.

    .. math::
        s_i = w \cos(\mathbf{x}_q - \bar{\mathbf{x}}, \mathbf{x}_i - \bar{\mathbf{x}})
        + (1 - w) \cos(\mathbf{t}_q, \mathbf{t}_i)

    with :math:`w` = :data:`NEW_ITEM_SIMILAR_MODEL_WEIGHT`, :math:`\mathbf{x}` the retrieval
    vectors, :math:`\bar{\mathbf{x}}` their ``centre`` and :math:`\mathbf{t}` the text encoder's
    (``space``; items without text: the first cosine alone). One pass over the catalog per query.
    """
    allowed = catalog.active.copy() if allowed is None else allowed & catalog.active
    allowed[source] = False
    candidates = np.flatnonzero(allowed)
    centred = catalog.vectors[candidates] - centre
    query = catalog.vectors[source] - centre
    model = centred @ query / np.maximum(np.linalg.norm(centred, axis=1) * np.linalg.norm(query), 1e-12)
    w = NEW_ITEM_SIMILAR_MODEL_WEIGHT
    text, has_text = space.vectors, space.has_text
    scores = np.where(has_text[candidates], w * model + (1 - w) * (text[candidates] @ text[source]), model)
    top = top_k(scores, k)
    return candidates[top], scores[top].astype(np.float32)
