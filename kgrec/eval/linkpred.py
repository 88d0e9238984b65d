r"""Knowledge-graph link prediction: filtered ranks of held-out triples among all nodes.

Each held-out triple :math:`(h, r, t)` asks two questions, :math:`(h, r, ?)` and
:math:`(?, r, t)`. The answer is ranked among every node of the graph after the other true
answers (any known triple: training, valid or test) are taken out, the *filtered* setting of
Bordes et al. (2013). Ties count half (the "realistic" rank, as PyKEEN reports):

.. math::
    \mathrm{rank} = 1 + |\{n : s_n > s_{\mathrm{answer}}\}| + \tfrac12 |\{n \ne \mathrm{answer} : s_n = s_{\mathrm{answer}}\}|

where :math:`n` runs over the nodes left after filtering (the answer is never its own rival,
whether or not ``known`` lists the asked triple), and :math:`-\infty` scores tie with each
other as any equal scores do. The rank is averaged over both questions of every triple into
``kg_mrr`` (mean of :math:`1/\mathrm{rank}`) and ``kg_hits@k`` (share of ranks :math:`\le k`).
Scores are compared at their own precision (float32, or float64 when given) and NaN scores are
refused (:class:`~kgrec.eval.ranking.NaNScoresError`): NaN compares false with everything, so
it would rank every answer first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from kgrec.eval.ranking import NaNScoresError

ScoreAll = Callable[[Tensor, Tensor, str], Tensor]  # (known ends (B,), relations (B,), "tail"|"head") -> (B, N)


def link_prediction_metrics(
    score: ScoreAll,
    triples: np.ndarray,
    known: np.ndarray,
    ks: Sequence[int] = (1, 3, 10),
    batch_size: int = 256,
) -> dict[str, float]:
    """``kg_mrr`` and ``kg_hits@k`` of ``triples`` (see the module docstring).

    Args:
        score: scores of every node as the missing end, given the known ends' node ids, the
            relation ids and which end is missing (``"tail"`` or ``"head"``).
        triples: ``(T, 3)`` ``(head, relation, tail)`` rows to rank.
        known: ``(K, 3)`` every true triple (filtered out of the candidates); the asked
            ``triples`` are filtered from their own questions whether it holds them or not.
        ks: cut-offs of ``kg_hits@k``.
        batch_size: questions scored at once (memory ``batch_size x N``).

    Raises:
        NaNScoresError: ``score`` returned NaN.
    """
    triples, known = np.asarray(triples, dtype=np.int64), np.asarray(known, dtype=np.int64)
    if len(triples) == 0:
        return {}
    ranks = [_ranks(score, triples, known, predict, batch_size) for predict in ("tail", "head")]
    rank = torch.cat(ranks)
    metrics = {"kg_mrr": float((1.0 / rank).mean())}
    metrics.update({f"kg_hits@{k}": float((rank <= k).float().mean()) for k in ks})
    return metrics


def _ranks(score: ScoreAll, triples: np.ndarray, known: np.ndarray, predict: str, batch_size: int) -> Tensor:
    given, answer = (0, 2) if predict == "tail" else (2, 0)
    width = int(max(known[:, 1].max(initial=0), triples[:, 1].max())) + 1
    known_keys = known[:, given] * width + known[:, 1]
    order = np.argsort(known_keys, kind="stable")
    known_keys, known_answers = known_keys[order], known[order, answer]
    out = []
    for start in range(0, len(triples), batch_size):
        batch = triples[start : start + batch_size]
        scores = score(torch.as_tensor(batch[:, given]), torch.as_tensor(batch[:, 1]), predict).cpu()
        scores = scores if scores.dtype == torch.float64 else scores.float()
        if torch.isnan(scores).any():  # NaN > x and NaN == x are false: it would rank the answer first
            raise NaNScoresError("link prediction: the scores hold NaN: expected real numbers (-inf allowed)")
        rows = np.arange(len(batch))
        target = scores[rows, batch[:, answer]]
        # Every true answer of each question (the asked one included) leaves the candidates: a
        # mask, not -inf scores, so that a -inf answer does not tie with the filtered nodes.
        keys = batch[:, given] * width + batch[:, 1]
        left, right = np.searchsorted(known_keys, keys, "left"), np.searchsorted(known_keys, keys, "right")
        lengths = right - left
        positions = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) + np.repeat(left, lengths)
        rival = torch.ones(scores.shape, dtype=torch.bool)
        rival[np.repeat(rows, lengths), known_answers[positions]] = False
        rival[rows, batch[:, answer]] = False
        greater = ((scores > target[:, None]) & rival).sum(1)
        ties = ((scores == target[:, None]) & rival).sum(1)
        out.append(1.0 + greater.double() + 0.5 * ties.double())
    return torch.cat(out)
