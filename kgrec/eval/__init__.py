"""Evaluation: full-ranking top-K metrics, rating errors and AUC, KG link prediction, interaction matrices."""

from kgrec.eval.linkpred import link_prediction_metrics
from kgrec.eval.matrix import as_csr, dense_rows, interaction_matrix
from kgrec.eval.pointwise import auc, mae, rmse
from kgrec.eval.ranking import (
    METRICS,
    ScoreFn,
    Shard,
    cold_candidates,
    evaluate_ranking,
    evaluate_split,
    known_users_negatives,
    known_users_part,
)

__all__ = [
    "METRICS",
    "ScoreFn",
    "Shard",
    "as_csr",
    "auc",
    "cold_candidates",
    "dense_rows",
    "evaluate_ranking",
    "evaluate_split",
    "interaction_matrix",
    "known_users_negatives",
    "known_users_part",
    "link_prediction_metrics",
    "mae",
    "rmse",
]
