"""What the ``scripts/bench_*.py`` that train kgrec share: one training run, thrown away after."""

import tempfile
from pathlib import Path

from kgrec.models import ModelConfig
from kgrec.train import load_config, train


def train_seed(config_file: str, seed: int, overrides: list[str], model: ModelConfig | None = None) -> dict:
    """Train ``config_file`` with ``overrides`` and training seed ``seed`` (no progress bar) in a
    temporary folder, deleted afterwards; ``model`` replaces the config's model section. Returns
    the run's metrics (``metrics.json``)."""
    config = load_config(config_file, [*overrides, "train.progress=false", f"train.seed={seed}"])
    if model is not None:
        config.model = model
    with tempfile.TemporaryDirectory() as out:
        return train(config, Path(out) / "run")
