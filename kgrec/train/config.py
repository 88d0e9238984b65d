"""The run configuration: typed sections ``data``, ``graph``, ``text``, ``model``, ``train``, ``eval``.

Loaded from YAML (``scripts/configs/ml-100k.yaml`` is the default for ml-100k) and overridable
field by field: ``--set model.trunk=ple --set train.max_epochs=5``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kgrec.errors import ConfigError
from kgrec.models import ModelConfig
from kgrec.text import TextConfig
from kgrec.utils.config import apply_overrides, from_dict, load_yaml


@dataclass
class DataSection:
    """Which dataset and how to split it.

    Attributes:
        path: dataset folder ``NAME/`` (atomic files). ``None``: fetch ``name``.
        name: dataset fetched when ``path`` is ``None`` (``ml-100k``).
        split: ``ratio``, ``temporal`` or ``cold_item`` (see :class:`kgrec.data.SplitConfig`).
        ratios: train / valid / test shares for ``ratio``.
        cold_item_share: share of items held out by ``cold_item``.
        seed: split seed.
    """

    path: str | None = None
    name: str = "ml-100k"
    split: Literal["ratio", "temporal", "cold_item"] = "ratio"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    cold_item_share: float = 0.1
    seed: int = 2026


@dataclass
class GraphSection:
    """Where the knowledge graph comes from.

    Attributes:
        path: a graph built by ``kgrec graph build``; ``None`` builds it from the data with
            ``recipe``.
        recipe: graph recipe (YAML) used when ``path`` is ``None``; ``None``: the recipe
            ``graphs/NAME.yaml`` shipped for the dataset, else Freebase triples only.
        users: join users to the graph through ``interacted`` edges (training split only).
    """

    path: str | None = None
    recipe: str | None = None
    users: bool = False


@dataclass
class TrainSection:
    """Optimisation and hardware.

    Attributes:
        max_epochs: upper bound on epochs; early stopping usually ends sooner.
        batch_size: training interactions per step.
        lr: Adam learning rate; ``weight_decay`` its L2 term.
        patience: epochs without a better validation metric before stopping.
        seed: seeds weights and, per epoch, the sampling (so a resumed run repeats the
            uninterrupted one).
        accelerator, devices, strategy: passed to Lightning (``auto`` picks the GPU when there
            is one; ``devices=2, strategy=ddp`` trains on two GPUs).
        precision: ``auto`` = bf16 autocast on GPU, fp32 on CPU; or any Lightning precision.
        kg_batch_size: KG triples per step for the link-prediction tower.
        num_negatives: negatives per positive for BPR / sampled losses.
        grad_clip: gradient-norm clip (0 = off).
        progress: show a progress bar.
    """

    max_epochs: int = 100
    batch_size: int = 2048
    lr: float = 2e-3
    weight_decay: float = 0.0
    patience: int = 8
    seed: int = 2026
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    precision: str = "auto"
    kg_batch_size: int = 4096
    num_negatives: int = 1
    grad_clip: float = 0.0
    progress: bool = True


@dataclass
class EvalSection:
    """Evaluation: full ranking over all items.

    Attributes:
        ks: cut-offs for Recall/NDCG/Hit/MRR/Precision.
        batch_size: users scored per batch (bounds memory on large catalogues).
        monitor: validation metric for early stopping and model selection (never test).
    """

    ks: tuple[int, ...] = (10, 20)
    batch_size: int = 1024
    monitor: str = "ndcg@10"


@dataclass
class RunConfig:
    """Everything a training run needs; saved resolved as ``RUN_DIR/config.yaml``."""

    data: DataSection = field(default_factory=DataSection)
    graph: GraphSection = field(default_factory=GraphSection)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalSection = field(default_factory=EvalSection)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Defaults < YAML file < ``section.field=value`` overrides."""
    data = load_yaml(path) if path is not None else {}
    data = apply_overrides(data, list(overrides or []))
    config = from_dict(RunConfig, data)
    if config.eval.monitor.split("@")[0] not in ("recall", "ndcg", "hit", "mrr", "precision"):
        raise ConfigError(f"eval.monitor '{config.eval.monitor}': expected e.g. ndcg@10 or recall@20")
    return config
