"""Audit of the metrics on tricky cases: NaN and -inf scores, the filtered setting of link
prediction, float64 scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.data import Interactions
from kgrec.eval import as_csr, evaluate_ranking, link_prediction_metrics
from kgrec.eval.ranking import NaNScoresError

TRIPLES = np.array([[0, 0, 1], [3, 0, 4]])


def constant(value: float, n_nodes: int = 5):
    return lambda known, rel, predict: torch.full((len(known), n_nodes), value)


def test_link_prediction_refuses_nan_scores_instead_of_ranking_them_first():
    # NaN compares false with everything: no node counted above the answer, rank 1, MRR 1.0 for
    # a diverged kg tower (which a KG-only run would then keep as its best checkpoint)
    with pytest.raises(NaNScoresError, match="NaN"):
        link_prediction_metrics(constant(float("nan")), TRIPLES, TRIPLES)

    def one_nan(known, rel, predict):  # only a rival is NaN: it must not drop out of the ranking
        scores = torch.zeros(len(known), 5)
        scores[:, 2] = float("nan")
        return scores

    with pytest.raises(NaNScoresError):
        link_prediction_metrics(one_nan, TRIPLES, TRIPLES)


def test_link_prediction_never_counts_the_answer_as_its_own_tie():
    # every node scores alike: of the 5 nodes, 4 others tie with the answer -> rank 1 + 4/2 = 3,
    # whether or not `known` lists the asked triples, and for -inf scores as for finite ones
    expected = {"kg_mrr": pytest.approx(1 / 3), "kg_hits@1": 0.0, "kg_hits@3": 1.0, "kg_hits@10": 1.0}
    assert link_prediction_metrics(constant(0.0), TRIPLES, TRIPLES) == expected
    assert link_prediction_metrics(constant(0.0), TRIPLES, TRIPLES[:1]) == expected
    assert link_prediction_metrics(constant(0.0), TRIPLES, np.zeros((0, 3), dtype=np.int64)) == expected
    assert link_prediction_metrics(constant(float("-inf")), TRIPLES, TRIPLES) == expected


def test_link_prediction_filters_other_true_answers_from_every_tie_and_win():
    # (0, r, ?) answer 1; (0, r, 2) is true too and scores higher: filtered, so rank 1.
    # (?, r, 1) answer 0, the only true head: every node scores -inf, 4 rivals tie: 1 + 4/2 = 3.
    def score(known, rel, predict):
        if predict == "tail":
            return torch.tensor([[0.0, 1.0, 5.0, 0.0, 0.0]] * len(known))
        return torch.full((len(known), 5), float("-inf"))

    triples = np.array([[0, 0, 1]])
    known = np.array([[0, 0, 1], [0, 0, 2]])
    metrics = link_prediction_metrics(score, triples, known, ks=(1,))
    assert metrics["kg_mrr"] == pytest.approx((1 + 1 / 3) / 2)
    assert metrics["kg_hits@1"] == 0.5


def test_float64_scores_are_ranked_at_their_own_precision():
    # the relevant item outscores the rest by 1e-12: equal once rounded to float32, where the
    # tie order (not the model) would decide which item comes first
    n_users, n_items = 6, 50
    relevant = [3, 11, 17, 29, 38, 47]
    scores = torch.ones(n_users, n_items, dtype=torch.float64)
    scores[torch.arange(n_users), relevant] += 1e-12
    target = Interactions(user=np.arange(n_users), item=np.array(relevant))
    out = evaluate_ranking(lambda users: scores[users], target, None, n_users, n_items, ks=(1,))
    assert out["hit@1"] == 1.0 and out["ndcg@1"] == 1.0


def test_an_empty_list_is_left_out_of_popularity_and_tail_share():
    # user 1's list is empty (every item scores -inf, as a user without a line in eval-lists);
    # user 0 lists item 3 (popularity 1, in the tail). The mean listed popularity is 1 and the
    # tail share 1: the empty list holds no item to describe, not items of popularity 0.
    scores = torch.tensor([[0.0, 1, 2, 3], [float("-inf")] * 4])
    target = Interactions(user=np.array([0, 1]), item=np.array([3, 0]))
    out = evaluate_ranking(lambda users: scores[users], target, None, 2, 4, ks=(1,), popularity=torch.tensor([9, 5, 3, 1]))
    assert out["popularity@1"] == 1.0 and out["tail@1"] == 1.0
    assert out["hit@1"] == 0.5 and out["n_users"] == 2  # the empty list still counts as a miss


@pytest.mark.parametrize("fmt", ["csc", "coo"])
def test_a_scipy_matrix_in_another_format_is_read_by_its_rows_not_transposed(fmt):
    # a CSC matrix also has indptr / indices, over columns: it was read as CSR, so a square
    # exclusion matrix came out transposed (and a COO one failed with a TypeError)
    sparse = pytest.importorskip("scipy.sparse")
    dense = np.array([[0, 1, 0], [0, 0, 0], [1, 0, 1]])
    matrix = sparse.csr_matrix(dense).asformat(fmt)
    assert as_csr(matrix, 3, 3).to_dense().tolist() == dense.tolist()
    scores = torch.tensor([[1.0, 3, 2], [3, 2, 1], [1, 3, 2]])
    target = Interactions(user=np.array([0, 2]), item=np.array([2, 1]))
    out = evaluate_ranking(lambda users: scores[users], target, matrix, 3, 3, ks=(1,))
    assert out["hit@1"] == 1.0  # item 1 left out for user 0, items 0 and 2 for user 2
