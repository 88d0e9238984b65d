"""The run configuration: typed sections ``data``, ``graph``, ``text``, ``model``, ``train``, ``eval``.

Loaded from YAML (``scripts/configs/ml-100k.yaml`` is the default for ml-100k: :func:`find_config_file`) and overridable
field by field: ``--set model.trunk=ple --set train.max_epochs=5``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from kgrec.data import Dataset, SplitConfig, SplitStrategy, fetch, load_dataset
from kgrec.data.dataset import dataset_name
from kgrec.errors import ConfigError
from kgrec.models import ModelConfig
from kgrec.text import TextConfig
from kgrec.utils.config import apply_overrides, from_dict, given_keys, load_yaml, locate, to_dict
from kgrec.utils.names import closest


@dataclass
class DataSection:
    """Which dataset and how to split it.

    Attributes:
        path: dataset folder ``NAME/`` (atomic files). ``None``: fetch ``name``.
        name: dataset fetched when ``path`` is ``None`` (``ml-100k``); with a ``path``, its
            folder's name (what :func:`load_config` sets when the name is not given).
        split: ``ratio``, ``temporal``, ``global_temporal``, ``cold_item`` or ``given`` (see
            :class:`kgrec.data.SplitConfig`); a folder holding ``NAME.train/valid/test.inter``
            is used as it is, and its run records ``given``.
        ratios: train / valid / test shares for ``ratio``.
        cold_item_share: share of items held out by ``cold_item``.
        seed: split seed.
    """

    path: str | None = None
    name: str = "ml-100k"
    split: SplitStrategy = "ratio"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    cold_item_share: float = 0.1
    seed: int = 2026

    def __post_init__(self) -> None:
        try:
            self.split_config()
        except ConfigError as error:  # checked here, where the config file's keys are known
            raise ConfigError(f"data: {error}", key=f"data.{_DATA_KEYS.get(error.key or '', error.key)}") from None

    def split_config(self) -> SplitConfig:
        """The split these fields ask for."""
        return SplitConfig(strategy=self.split, ratios=self.ratios, cold_item_share=self.cold_item_share, seed=self.seed)


_DATA_KEYS = {"strategy": "split"}  # SplitConfig's field -> DataSection's


@dataclass
class GraphSection:
    """Where the knowledge graph comes from.

    Attributes:
        path: a graph built by ``kgrec graph build``; ``None`` builds it from the data with
            ``recipe``.
        recipe: graph recipe (YAML) used when ``path`` is ``None``; ``None``: the recipe
            ``graphs/NAME.yaml`` shipped for the dataset, else Freebase triples only.
        users: join users to the graph through ``interacted`` edges (training split only).
        kg_holdout: share of the graph's node pairs held out of it, every triple between
            them, to measure the kg tower's link prediction on their triples (half valid,
            half test; ``kgrec.graph.hold_out_triples``, seeded by ``data.seed``); ``0``: none.
    """

    path: str | None = None
    recipe: str | None = None
    users: bool = False
    kg_holdout: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.kg_holdout <= 0.5:
            raise ConfigError(f"graph.kg_holdout: expected a share in [0, 0.5], got {self.kg_holdout}", key="graph.kg_holdout")


@dataclass
class TrainSection:
    """Optimisation and hardware.

    Attributes:
        max_epochs: upper bound on epochs; early stopping usually ends sooner.
        max_minutes: ``> 0``: also stop at the first epoch end past this many minutes of
            training (Lightning's ``Timer``; a resumed run counts its earlier parts); the best
            epoch so far is kept and tested as after early stopping. ``0``: no time limit.
        batch_size: training interactions per step.
        lr: Adam learning rate; ``weight_decay`` its L2 term.
        lr_decay: when the validation metric has not improved for more than ``lr_patience``
            epochs, the learning rate is multiplied by this factor (``ReduceLROnPlateau``);
            ``1.0`` keeps it constant. Only with a validation metric (``eval.monitor``).
        patience: epochs without a better validation metric before stopping.
        seed: seeds weights and, per epoch, the sampling (so a resumed run repeats the
            uninterrupted one).
        accelerator, devices, strategy: passed to Lightning (``auto`` picks the GPU when there
            is one; ``devices=2, strategy=ddp`` trains on two GPUs).
        precision: ``auto`` = bf16 autocast on GPU, fp32 on CPU; or any Lightning precision.
        deterministic: PyTorch's deterministic algorithms (Lightning's ``deterministic``), so
            that a seeded run repeats bit for bit on the same machine: ``auto`` = on for the CPU,
            where they cost nothing measurable (without them, the backward of gathering rows
            sums in thread order), off on a GPU; ``true``, ``false``, or ``warn`` (a GPU kernel
            without a deterministic form warns instead of failing).
        kg_batch_size: KG triples per step for the link-prediction tower.
        num_negatives: negatives per positive for BPR / sampled losses.
        shared_negatives: ``> 0``: the ``sampled_softmax`` retrieval loss draws this many items
            once per step, uniformly without replacement from the items with training
            interactions, as the negatives of every row of the batch (``num_negatives`` is then
            not used), and the teacher's term (``model.distill_weight``) is computed over the same
            items: a ``(B, K)`` product per step instead of ``full_softmax``'s ``(B, I)``, for
            catalogues where that is the cost of a step
            (:meth:`~kgrec.models.towers.RetrievalTower.shared_softmax_loss`).
        grad_clip: gradient-norm clip (0 = off).
        progress: show progress: a bar in a terminal, one line per epoch when output goes to a file or pipe.
        init_from: a finished run folder whose weights this run starts from (a warm start,
            :mod:`kgrec.train.warm_start`): users, items, graph nodes and relations by id, the
            other tensors by name and shape; new ids and what cannot be carried keep their
            initialisation. ``null``: a fresh start.
        teacher_reg: L2 weight of the EASE teacher that ``model.distill_weight`` > 0 distils into
            the retrieval tower (:mod:`kgrec.train.teacher`); ``None`` picks it on valid.
        teacher_standardize: standardise the teacher's scores per user (zero mean, unit standard
            deviation over the items it ranks), so that ``model.distill_temperature`` is relative
            to each user's score spread instead of absolute.
        teacher_perplexity: scale each user's teacher scores so that their softmax spreads over
            this many items (``exp`` of its entropy; :func:`~kgrec.train.teacher.calibrate_perplexity`),
            the same breadth of target for every user on any dataset (``model.distill_temperature``
            must then be 1); ``null`` keeps one temperature for all, ``model.distill_temperature``.
            Calibrated scores are blind to scale and shift, so ``teacher_standardize`` then
            changes nothing.
        teacher_session_hours: fit the teacher as session-weighted EASE: a pair of items counts
            ``exp(-|t_i - t_j| / tau)`` for each user who interacted with both, ``tau`` this many
            hours, instead of 1 (:class:`~kgrec.baselines.EASE`; needs timestamps); ``null``: plain EASE.
        teacher_user_weight: ``> 0`` blends user-based EASE (:class:`~kgrec.baselines.UserEASE`)
            into the teacher with this weight (:func:`~kgrec.train.teacher.blend`; at most 20k users).
        teacher_user_reg: its L2 weight; ``null`` picks it on valid.
        teacher_recency_hours: score with a recency-weighted history: each of a user's training
            items counts ``f + (1 - f) exp(-(t_last - t) / tau)``, ``t_last`` the user's latest
            training time and ``tau`` this many hours (:class:`~kgrec.baselines.EASE`; needs
            timestamps), so the teacher ranks what follows the user's last items. For time-ordered
            splits (``data.split=temporal``); ``null``: every item counts 1; ``auto``: chosen on
            valid with ``teacher_reg`` (:data:`~kgrec.train.teacher.RECENCY_GRID`, null included).
        teacher_recency_floor: ``f``, the weight old items fade to.
    """

    max_epochs: int = 40
    max_minutes: float = 0.0
    batch_size: int = 2048
    lr: float = 2e-3
    weight_decay: float = 1e-4
    lr_decay: float = 1.0
    lr_patience: int = 2
    patience: int = 5
    seed: int = 2026
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    precision: str | int = "auto"  # a YAML file's `precision: 32` is an int; kept as the string "32"
    deterministic: bool | str = "auto"
    kg_batch_size: int = 4096
    num_negatives: int = 1
    shared_negatives: int = 0
    grad_clip: float = 0.0
    progress: bool = True
    init_from: str | None = None
    teacher_reg: float | None = None
    teacher_standardize: bool = False
    teacher_perplexity: float | None = None
    teacher_session_hours: float | None = None
    teacher_user_weight: float = 0.0
    teacher_user_reg: float | None = None
    teacher_recency_hours: float | str | None = None
    teacher_recency_floor: float = 0.05

    def __post_init__(self) -> None:
        if not 0 <= self.max_minutes < math.inf:
            raise ConfigError(f"train.max_minutes: expected >= 0 minutes (0: no limit), got {self.max_minutes}", key="train.max_minutes")
        self._check_trainer_settings()
        if not 0.0 < self.lr_decay <= 1.0:
            raise ConfigError(f"train.lr_decay: expected a factor in (0, 1], got {self.lr_decay}", key="train.lr_decay")
        if self.teacher_reg is not None and not 0 < self.teacher_reg < math.inf:
            raise ConfigError(f"train.teacher_reg: expected a positive, finite L2 weight or null, got {self.teacher_reg}", key="train.teacher_reg")
        if self.teacher_perplexity is not None and not self.teacher_perplexity >= 1:
            raise ConfigError(f"train.teacher_perplexity: expected a number of items >= 1 or null, got {self.teacher_perplexity}", key="train.teacher_perplexity")
        if self.teacher_session_hours is not None and not self.teacher_session_hours > 0:
            raise ConfigError(f"train.teacher_session_hours: expected a positive number of hours or null, got {self.teacher_session_hours}", key="train.teacher_session_hours")
        recency = self.teacher_recency_hours
        if recency is not None and recency != "auto" and not (isinstance(recency, float | int) and recency > 0):
            raise ConfigError(f"train.teacher_recency_hours: expected a positive number of hours, auto or null, got {recency!r}", key="train.teacher_recency_hours")
        if not 0 <= self.teacher_recency_floor <= 1:
            raise ConfigError(f"train.teacher_recency_floor: expected a weight in [0, 1], got {self.teacher_recency_floor}", key="train.teacher_recency_floor")
        if not self.teacher_user_weight >= 0:
            raise ConfigError(f"train.teacher_user_weight: expected a weight >= 0 (0: off), got {self.teacher_user_weight}", key="train.teacher_user_weight")
        if self.teacher_user_reg is not None and not 0 < self.teacher_user_reg < math.inf:
            raise ConfigError(f"train.teacher_user_reg: expected a positive, finite L2 weight or null, got {self.teacher_user_reg}", key="train.teacher_user_reg")
        for name, low, inclusive, what in _TRAIN_BOUNDS:
            value = getattr(self, name)
            if not (value >= low if inclusive else value > low):  # NaN fails both
                raise ConfigError(f"train.{name}: expected {what}, got {value}", key=f"train.{name}")
        if not -(2**63) <= self.seed < 2**64:  # torch's seed range (a traceback once the data was loaded)
            raise ConfigError(f"train.seed: expected an integer from -2**63 to 2**64 - 1, got {self.seed}", key="train.seed")
        if self.lr_patience < 0:
            raise ConfigError(f"train.lr_patience: expected >= 0 epochs, got {self.lr_patience}", key="train.lr_patience")
        if self.init_from is not None and not str(self.init_from).strip():
            raise ConfigError("train.init_from: expected a run folder or null, got an empty path", key="train.init_from")
        if self.shared_negatives < 0:
            raise ConfigError(f"train.shared_negatives: expected a number of items >= 0, got {self.shared_negatives}", key="train.shared_negatives")

    def _check_trainer_settings(self) -> None:
        """Refuse the values of ``accelerator``, ``devices`` and ``precision`` that Lightning
        refuses (with a traceback, and only once the data is loaded and the teacher fitted), here
        where the config file's keys are known; ``precision`` becomes a string. What depends on
        the machine (a GPU asked for where there is none) is checked when training starts."""
        self.precision = str(self.precision)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"train.precision: expected one of {', '.join(PRECISIONS)}, got {self.precision!r}"
                              f"{closest(self.precision, PRECISIONS)}", key="train.precision")  # fmt: skip
        if self.accelerator not in ACCELERATORS:
            raise ConfigError(f"train.accelerator: expected one of {', '.join(ACCELERATORS)}, got {self.accelerator!r}"
                              f"{closest(self.accelerator, ACCELERATORS)}", key="train.accelerator")  # fmt: skip
        if self.deterministic not in (True, False, "auto", "warn"):
            raise ConfigError(f"train.deterministic: expected auto, true, false or warn, got {self.deterministic!r}",
                              key="train.deterministic")  # fmt: skip
        devices = self.devices
        if not (devices == "auto" or (isinstance(devices, int) and (devices >= 1 or devices == -1))
                or (isinstance(devices, str) and re.fullmatch(r"-1|\d+(,\d+)*,?", devices.replace(" ", "")))):  # fmt: skip
            raise ConfigError(f"train.devices: expected a number of devices >= 1, -1 or auto (every GPU), or GPU "
                              f"indices such as '0,1', got {devices!r}", key="train.devices")  # fmt: skip


# What Lightning's Trainer takes (lightning.fabric.connector's precision inputs and the
# accelerator registry), named here so that a config is checked without importing Lightning.
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "32", "16", "bf16", "64",
              "transformer-engine", "transformer-engine-float16")  # fmt: skip
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")

_TRAIN_BOUNDS = (  # field, lower bound, bound allowed, what is expected
    ("max_epochs", 1, True, "at least 1 epoch"),
    ("batch_size", 1, True, "at least 1 interaction per step"),
    ("lr", 0, False, "a positive learning rate"),
    ("weight_decay", 0, True, "an L2 weight >= 0"),
    ("patience", 0, True, "a number of epochs >= 0"),
    ("kg_batch_size", 1, True, "at least 1 triple per step"),
    ("num_negatives", 1, True, "at least 1 negative per positive"),
    ("grad_clip", 0, True, "a norm >= 0 (0: off)"),
)


@dataclass
class EvalSection:
    """Evaluation: full ranking over all items.

    Attributes:
        ks: cut-offs for Recall/NDCG/Hit/MRR/Precision.
        batch_size: users scored per batch (bounds memory on large catalogues).
        monitor: validation metric for early stopping and model selection (never test):
            a ranking metric such as ``ndcg@10`` (needs the retrieval task), ``rmse`` / ``mae``
            (rating task; lower is better), ``auc`` (like task) or ``kg_mrr`` / ``kg_hits@k``
            (kg task with ``graph.kg_holdout``); ``auto`` picks ``ndcg@10`` with the retrieval
            task, else ``rmse``, else ``auc``, else ``kg_mrr``; a KG-only run without held-out
            triples has none (``null``: it trains ``max_epochs`` and keeps the last epoch).
    """

    ks: tuple[int, ...] = (10, 20)
    batch_size: int = 1024
    monitor: str | None = "auto"

    def __post_init__(self) -> None:
        self.ks = tuple(self.ks)
        if not self.ks or any(not isinstance(k, int) or k < 1 for k in self.ks) or len(set(self.ks)) != len(self.ks):
            raise ConfigError(f"eval.ks: expected distinct cut-offs >= 1, e.g. [10, 20], got {list(self.ks)}", key="eval.ks")
        if not self.batch_size >= 1:
            raise ConfigError(f"eval.batch_size: expected at least 1 user per batch, got {self.batch_size}", key="eval.batch_size")


@dataclass
class RunConfig:
    """Everything a training run needs; saved resolved as ``RUN_DIR/config.yaml``.

    ``given`` (not a config field: not written to ``config.yaml``, not compared, not shown by
    ``--print-config``) records the dotted fields (``model.like_threshold``) that the config file
    or the overrides gave a value, whatever the value, as :func:`load_config` read them:
    :func:`~kgrec.train.fit_defaults` changes none of them, so a value written out wins even where
    it is the default. It is kept by ``dataclasses.replace``; a ``RunConfig`` built directly gives
    none unless told (``RunConfig(model=..., given=frozenset({"model.like_threshold"}))``).
    """

    data: DataSection = field(default_factory=DataSection)
    graph: GraphSection = field(default_factory=GraphSection)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalSection = field(default_factory=EvalSection)
    # An InitVar, not a field: dataclasses.fields() (to_dict, from_dict, ==, repr) leave it out,
    # and dataclasses.replace passes the instance's value on (getattr(config, "given")).
    given: InitVar[frozenset[str]] = frozenset()

    def __post_init__(self, given: frozenset[str] = frozenset()) -> None:
        self.given = frozenset(given)
        if self.train.shared_negatives and self.model.retrieval_loss != "sampled_softmax":
            raise ConfigError(
                f"train.shared_negatives={self.train.shared_negatives} are negatives of the sampled_softmax retrieval "
                f"loss; model.retrieval_loss is {self.model.retrieval_loss} (set it to sampled_softmax, or "
                "train.shared_negatives=0)",
                key="train.shared_negatives",
            )
        if self.train.teacher_perplexity is not None and self.model.distill_weight > 0 and self.model.distill_temperature != 1:
            raise ConfigError(
                f"train.teacher_perplexity={self.train.teacher_perplexity:g} sets each user's temperature; "
                f"model.distill_temperature must be 1, got {self.model.distill_temperature:g}",
                key="model.distill_temperature",
            )


def config_yaml(config: RunConfig) -> str:
    """``config`` as the YAML a run folder keeps (``RUN_DIR/config.yaml``) and :func:`load_config`
    reads back: every field, in declaration order."""
    import yaml

    return yaml.safe_dump(to_dict(config), sort_keys=False)


def changed_fields(before: dict, now: dict) -> list[str]:
    """The ``section.field`` names whose values differ between two configs as plain dicts
    (``to_dict`` or read from YAML), sorted."""
    return sorted(
        f"{section}.{key}"
        for section in set(before) | set(now)
        for key in set(before.get(section) or {}) | set(now.get(section) or {})
        if (before.get(section) or {}).get(key) != (now.get(section) or {}).get(key)
    )


def plain_config(config: RunConfig) -> dict:
    """``config`` as plain JSON values (tuples as lists), as a saved ``config.yaml`` or a
    recorded request reads back, so the two compare equal."""
    return json.loads(json.dumps(to_dict(config)))


def with_defaults(recorded: dict) -> dict:
    """A config recorded as a plain dict by an earlier kgrec, with the fields it did not know
    yet at their defaults: a field is added with a default that keeps the old behaviour, so it
    changes no run (a recorded field that no longer exists stays, and so still differs)."""
    defaults = plain_config(RunConfig())
    sections = {name: {**fields, **(recorded.get(name) or {})} for name, fields in defaults.items()}
    return {**recorded, **sections}


SOURCE_CONFIGS = Path(__file__).resolve().parents[2] / "scripts" / "configs"  # the configs beside kgrec's source tree
INSTALLED_CONFIGS = Path(__file__).resolve().parents[1] / "_configs"  # the same files in an installed wheel


def find_config_file(overrides: list[str] | None = None) -> Path | None:
    """The config file of the dataset that ``overrides`` name (``data.path``'s folder name, else
    ``data.name``: ml-100k by default), for ``kgrec train`` without ``--config``:
    ``scripts/configs/NAME.yaml`` in the working folder, else kgrec's own (beside its source
    tree, or its copy in an installed wheel, ``kgrec/_configs/``); ``None`` when none exists (the
    built-in defaults), as :func:`kgrec.graph.find_recipe_file` finds a dataset's graph recipe."""
    data = load_config(None, overrides).data
    name = dataset_name(data.path) if data.path else data.name
    candidates = [Path("scripts") / "configs" / f"{name}.yaml", SOURCE_CONFIGS / f"{name}.yaml", INSTALLED_CONFIGS / f"{name}.yaml"]
    return next((p for p in candidates if p.is_file()), None)


def found_config_line(found: Path | None) -> str:
    """``config: scripts/configs/ml-100k.yaml (the dataset's, found by its name; ...)``: what
    ``kgrec train`` and ``scripts/train.py`` say on stderr of the config
    :func:`find_config_file` found, or of the built-in defaults when it found none."""
    if found is None:
        return "config: the built-in defaults (no scripts/configs/ file for this dataset)"
    return f"config: {found} (the dataset's, found by its name; --config none for the built-in defaults)"


#: RecBole's names of the settings kgrec has under another name (a RecBole config's top-level
#: keys): an unknown key that is one of them is told kgrec's. Names kgrec has in a section of
#: its own (``seed``, ``weight_decay``, ``device``) get the sections that have them instead.
RECBOLE_NAMES = {
    "learning_rate": "train.lr", "epochs": "train.max_epochs", "stopping_step": "train.patience",
    "train_batch_size": "train.batch_size", "eval_batch_size": "eval.batch_size", "embedding_size": "model.dim",
    "topk": "eval.ks", "valid_metric": "eval.monitor", "data_path": "data.path", "dataset": "data.name",
    "gpu_id": "train.devices",
}  # fmt: skip


def _recbole_name(data: dict[str, Any]) -> None:
    """Refuse a top-level key that is RecBole's name of a kgrec setting, naming kgrec's (it was
    "unknown key 'learning_rate'; expected one of: data, eval, ...", with no hint)."""
    for key in data:
        if str(key) in RECBOLE_NAMES:
            ours = RECBOLE_NAMES[str(key)]
            raise ConfigError(f"unknown key '{key}': that is RecBole's name; kgrec's is {ours} (--set {ours}=..., "
                              f"or {ours.split('.')[1]}: under {ours.split('.')[0]}: in a config file)", key=str(key))  # fmt: skip


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Defaults < YAML file < ``section.field=value`` overrides. The config's ``given`` records the
    fields the file and the overrides set (:class:`RunConfig`), which
    :func:`~kgrec.train.fit_defaults` then keeps as they are."""
    data = load_yaml(path) if path is not None else {}
    data = apply_overrides(data, list(overrides or []))
    try:
        _recbole_name(data)
        config = from_dict(RunConfig, data)
        config.given = given_keys(RunConfig, data)  # what the file and the overrides set: fit_defaults keeps it
        if config.data.path and "data.name" not in config.given:  # a folder names its dataset, not ml-100k
            config.data = dataclasses.replace(config.data, name=dataset_name(config.data.path))
        config.eval.monitor = resolve_monitor(config)
    except ConfigError as error:  # a key of the file: say where it is written
        raise locate(error, path, overrides) from None
    return config


def load_data(config: RunConfig) -> Dataset:
    """The dataset of ``config.data`` (fetched by name when no path is given), split."""
    data = config.data
    path = Path(data.path).expanduser() if data.path else fetch(data.name)
    return load_dataset(path, data.split_config())


RANKING_METRICS = ("recall", "ndcg", "hit", "mrr", "precision")
SUMMARY_METRICS = ("ndcg@10", "recall@20", "hit@10", "coverage@10", "rmse", "auc", "kg_mrr", "kg_hits@10")  # one-line reports
LOWER_IS_BETTER = ("rmse", "mae", "popularity", "gini")  # by name, before any @K


def resolve_monitor(config: RunConfig) -> str | None:
    """``config.eval.monitor`` checked against the enabled tasks, ``auto`` resolved (see
    :class:`EvalSection`); ``None`` for a run with no validation metric (KG only)."""
    tasks, monitor = config.model.tasks, config.eval.monitor
    link_prediction = "kg" in tasks and config.graph.kg_holdout > 0
    if monitor in (None, "auto"):
        if "retrieval" in tasks:
            return "ndcg@10" if 10 in config.eval.ks else f"ndcg@{min(config.eval.ks)}"
        if "rating" in tasks or "like" in tasks:
            return "rmse" if "rating" in tasks else "auc"
        return "kg_mrr" if link_prediction else None
    monitor = monitor.lower()  # RecBole writes NDCG@10, Recall@20
    name, _, k = monitor.partition("@")
    needs = {"rmse": "rating", "mae": "rating", "auc": "like"}.get(name)
    if name in RANKING_METRICS and k.isdigit() and int(k) in config.eval.ks:
        needs = "retrieval"
    if monitor in ("kg_mrr", "kg_hits@1", "kg_hits@3", "kg_hits@10"):
        if not link_prediction:
            raise ConfigError(f"eval.monitor '{monitor}' needs the kg task and held-out triples (graph.kg_holdout > 0)", key="eval.monitor")
        return monitor
    if needs is None:
        raise ConfigError(
            f"eval.monitor '{monitor}': expected auto, rmse, mae, auc, kg_mrr, kg_hits@1/3/10 or a ranking "
            f"metric at one of eval.ks {list(config.eval.ks)}, e.g. ndcg@{config.eval.ks[0]}",
            key="eval.monitor",
        )
    if needs not in tasks:
        raise ConfigError(
            f"eval.monitor '{monitor}' needs the {needs} task, which model.tasks {list(tasks)} leaves out; "
            "set eval.monitor=auto",
            key="eval.monitor",
        )
    return monitor


def monitor_mode(monitor: str) -> str:
    """``"min"`` for error metrics and the lists' popularity and Gini, ``"max"`` for the others."""
    return "min" if monitor.partition("@")[0] in LOWER_IS_BETTER else "max"
