"""Reference recommenders to calibrate the evaluation against: most-popular, EASE (item- and
user-based)."""

from kgrec.baselines.base import Recommender
from kgrec.baselines.ease import EASE
from kgrec.baselines.popularity import MostPopular
from kgrec.baselines.tuning import TuneResult, tune_on_valid
from kgrec.baselines.user_ease import UserEASE

__all__ = ["EASE", "MostPopular", "Recommender", "TuneResult", "UserEASE", "tune_on_valid"]
