import numpy as np
import pytest
import torch

from kgrec.eval import link_prediction_metrics

# Five nodes, one relation. Scores of every node as the missing end, per (known end, side).
TAIL_SCORES = {0: [0.0, 0.9, 0.5, 0.9, 0.1], 3: [0.2, 0.2, 0.2, 0.0, 0.2]}
HEAD_SCORES = {1: [0.3, 0.0, 0.3, 0.8, 0.1], 4: [0.9, 0.1, 0.2, 0.5, 0.0]}


def score(known, rel, predict):
    table = TAIL_SCORES if predict == "tail" else HEAD_SCORES
    return torch.tensor([table[int(k)] for k in known])


def test_filtered_ranks_with_ties_counted_half():
    triples = np.array([[0, 0, 1], [3, 0, 4]])
    known = np.array([[0, 0, 1], [3, 0, 4], [0, 0, 3]])  # (0, r, 3) is true too: filtered for (0, r, ?)
    # (0, r, ?) answer 1 (0.9): node 3 ties at 0.9 but is a true answer, filtered -> rank 1.
    # (?, r, 1) answer 0 (0.3): node 3 scores higher, node 2 ties -> 1 + 1 + 0.5 = 2.5.
    # (3, r, ?) answer 4 (0.2): nodes 0, 1, 2 tie -> 1 + 1.5 = 2.5.
    # (?, r, 4) answer 3 (0.5): node 0 scores higher -> 2.
    ranks = np.array([1, 2.5, 2.5, 2])
    metrics = link_prediction_metrics(score, triples, known, ks=(1, 2, 3), batch_size=1)
    assert metrics["kg_mrr"] == pytest.approx(np.mean(1 / ranks))
    assert (metrics["kg_hits@1"], metrics["kg_hits@2"], metrics["kg_hits@3"]) == (0.25, 0.5, 1.0)
    assert link_prediction_metrics(score, triples, known, ks=(1, 2, 3), batch_size=64) == metrics


def test_no_triples_give_no_metrics():
    assert link_prediction_metrics(score, np.zeros((0, 3), dtype=np.int64), np.array([[0, 0, 1]])) == {}
