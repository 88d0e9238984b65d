"""Reference recommenders to calibrate the evaluation against: most-popular, EASE (item- and
user-based), and for ratings the mean rating and the user + item biases."""

from kgrec.baselines.base import Recommender
from kgrec.baselines.biases import BiasBaseline, rating_reference, tune_biases
from kgrec.baselines.ease import EASE
from kgrec.baselines.popularity import MostPopular
from kgrec.baselines.reference import MAX_EASE_ITEMS, REFERENCE_KS, reference_metrics, with_reference_ks
from kgrec.baselines.tuning import TuneResult, tune_on_valid
from kgrec.baselines.user_ease import UserEASE

__all__ = [
    "BiasBaseline",
    "EASE",
    "MAX_EASE_ITEMS",
    "MostPopular",
    "REFERENCE_KS",
    "Recommender",
    "TuneResult",
    "UserEASE",
    "rating_reference",
    "reference_metrics",
    "tune_biases",
    "tune_on_valid",
    "with_reference_ks",
]
