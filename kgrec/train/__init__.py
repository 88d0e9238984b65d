"""Training: typed run config, Lightning module, run folder (``kgrec train``)."""

from kgrec.train.config import DataSection, EvalSection, GraphSection, RunConfig, TrainSection, load_config
from kgrec.train.run import Prepared, build_model, load_data, prepare, train

__all__ = [
    "DataSection",
    "EvalSection",
    "GraphSection",
    "Prepared",
    "RunConfig",
    "TrainSection",
    "build_model",
    "load_config",
    "load_data",
    "prepare",
    "train",
]
