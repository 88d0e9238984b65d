"""Training: typed run config, Lightning module, EASE teacher, run folder (``kgrec train``)."""

from typing import TYPE_CHECKING

from kgrec.train.config import (
    DataSection,
    EvalSection,
    GraphSection,
    RunConfig,
    TrainSection,
    load_config,
    load_data,
)
from kgrec.train.defaults import fit_defaults
from kgrec.utils.lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use (torch): reading a config or a split needs none of it
    from kgrec.train.run import Prepared, build_model, check_before_training, prepare, train
    from kgrec.train.saved import evaluate_run
    from kgrec.train.teacher import EaseTeacher

__all__ = [
    "DataSection",
    "EaseTeacher",
    "EvalSection",
    "GraphSection",
    "Prepared",
    "RunConfig",
    "TrainSection",
    "build_model",
    "check_before_training",
    "evaluate_run",
    "fit_defaults",
    "load_config",
    "load_data",
    "prepare",
    "train",
]

__getattr__ = lazy_exports(__name__, __all__, ("run", "teacher", "saved"))
