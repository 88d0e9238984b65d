"""Training: typed run config, Lightning module, EASE teacher, run folder (``kgrec train``)."""

from kgrec.train.config import DataSection, EvalSection, GraphSection, RunConfig, TrainSection, load_config
from kgrec.train.defaults import fit_defaults
from kgrec.train.run import Prepared, build_model, check_before_training, load_data, prepare, train
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
    "fit_defaults",
    "load_config",
    "load_data",
    "prepare",
    "train",
]
