"""Reference recommenders to calibrate the evaluation against: most-popular and EASE."""

from kgrec.baselines.base import Recommender
from kgrec.baselines.ease import EASE
from kgrec.baselines.popularity import MostPopular
from kgrec.baselines.tuning import TuneResult, tune_on_valid

__all__ = ["EASE", "MostPopular", "Recommender", "TuneResult", "tune_on_valid"]
