"""Reference recommenders to calibrate the evaluation against: most-popular, EASE (item- and
user-based)."""

from kgrec.baselines.base import Recommender
from kgrec.baselines.ease import EASE
from kgrec.baselines.popularity import MostPopular
from kgrec.baselines.reference import MAX_EASE_ITEMS, reference_metrics
from kgrec.baselines.tuning import TuneResult, tune_on_valid
from kgrec.baselines.user_ease import UserEASE

__all__ = [
    "EASE",
    "MAX_EASE_ITEMS",
    "MostPopular",
    "Recommender",
    "TuneResult",
    "UserEASE",
    "reference_metrics",
    "tune_on_valid",
]
