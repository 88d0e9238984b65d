"""The multi-task model's hyper-parameters (:class:`ModelConfig`) and the data sizes it is built
for (:class:`ModelSizes`): plain dataclasses, checked on construction, that a YAML ``model:``
section fills (:mod:`kgrec.train.config`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from kgrec.errors import ConfigError
from kgrec.utils.names import closest

# The choices of the model's parts, here rather than beside the modules (which import them) so that
# reading a config loads no torch.
USER_PARTS: tuple[str, ...] = ("id", "history", "graph", "features")  # kgrec.models.fusion.UserEncoder
LOSS_MODES: tuple[str, ...] = ("fixed", "uncertainty", "pcgrad", "gradnorm")  # kgrec.models.losses.JointLoss
TRUNK_KINDS: tuple[str, ...] = ("identity", "shared_bottom", "mmoe", "ple")  # kgrec.models.trunk.build_trunk
REC_TASKS: tuple[str, ...] = ("retrieval", "rating", "like")
TASKS: tuple[str, ...] = (*REC_TASKS, "kg")
#: The joint loss's default weights: retrieval leads, the other towers regularise it.
DEFAULT_LOSS_WEIGHTS: dict[str, float] = {"retrieval": 1.0, "rating": 0.1, "like": 0.1, "kg": 0.1}

_CHOICES: dict[str, tuple[str, ...]] = {
    "graph_kind": ("rgcn", "compgcn", "kgat"),
    "graph_composition": ("sub", "mult"),
    "graph_combine": ("mean", "last"),
    "graph_activation": ("tanh", "relu", "leaky_relu", "none"),
    "fusion": ("gate", "concat", "sum"),
    "trunk": TRUNK_KINDS,
    "retrieval_loss": ("bpr", "sampled_softmax", "full_softmax"),
    "kg_score": ("distmult", "transe"),
    "kg_loss": ("softplus", "margin", "softmax"),
    "loss_mode": LOSS_MODES,
}

# What the modules require of a field: field, lower bound, bound allowed (ModelConfig._check_module_settings).
_MODULE_BOUNDS: tuple[tuple[str, float, bool], ...] = (
    ("retrieval_temperature", 0, False),  # kgrec.models.towers.RetrievalTower
    ("init_std", 0, True),  # torch.nn.init.normal_
    ("text_experts", 1, True),  # kgrec.models.fusion.MoEAdaptor
    ("num_experts", 1, True),  # kgrec.models.trunk: MMoE
    ("ple_levels", 1, True),  # PLE
    ("num_shared_experts", 0, True),
    ("num_task_experts", 1, True),
)


@dataclass
class ModelConfig:
    """Hyper-parameters of :class:`MultiTaskRecommender` (data sizes are :class:`ModelSizes`).

    Item side: ``use_item_id`` / ``use_text`` / ``use_graph`` pick the modalities fused into an
    item vector (``fusion``), with ``id_dropout`` (see :class:`~kgrec.models.fusion.ItemFusion`);
    with ``id_dropout_graph`` an item whose ID is dropped also loses its own graph-node embedding
    for that step, so its graph vector comes from its neighbours alone, as a new item's does
    (:meth:`MultiTaskRecommender.encode`); ``id_dropout_private`` (with ``id_dropout_graph``)
    drops the entities that only that item links to as well (side input ``private_owner``).
    User side: ``user_encoder`` is a ``+``-joined subset of ``id``, ``history``, ``graph``,
    ``features`` (``graph`` needs user nodes in the graph; ``features`` reads the columns
    ``user_features`` of ``NAME.user``, every usable one when ``None``); ``user_id_dropout``
    drops a user's ID vector with that probability while training, so that users unknown at
    training (:meth:`MultiTaskRecommender.new_user_vector`) look like users the trunk has
    seen (see :class:`~kgrec.models.fusion.UserEncoder`). ``trunk`` is one of
    ``identity``, ``shared_bottom``, ``mmoe``, ``ple``; the user and the item side each get one. ``tasks`` is a
    subset of ``retrieval``, ``rating``, ``like``, ``kg``; ``loss_weights`` / ``loss_mode``
    (with ``gradnorm_alpha``) configure :class:`~kgrec.models.losses.JointLoss` (weights of tasks not in ``tasks`` are
    dropped, so a tower can be switched off without editing them). ``rating_autorec_units`` > 0
    adds an item-based AutoRec term with that many hidden units to the rating tower
    (:class:`~kgrec.models.autorec.ItemAutoRec`; needs the training ratings as a side input).
    ``distill_weight`` > 0 adds a teacher's ranking to the retrieval loss, with that weight and
    the teacher's scores softened by ``distill_temperature``
    (:meth:`~kgrec.models.towers.RetrievalTower.distillation_loss`; batches then carry
    ``teacher_scores``). The kg tower scores triples with ``kg_score`` and learns with
    ``kg_loss`` against a sampled tail (``softplus``, ``margin``) or every node (``softmax``;
    see :class:`~kgrec.models.towers.KGLinkTower`).

    The defaults are the settings the shipped configs (``scripts/configs/``) share: full-softmax
    retrieval (``B x I`` logits per step; ``sampled_softmax`` or ``bpr`` for catalogues of
    hundreds of thousands of items), ID + history users and retrieval-led loss weights. What
    grows with the data stays off: the EASE teacher (``I^2`` memory) and the AutoRec term
    (``2 x users x units`` parameters).

    ``like_text_affinity`` adds to the like tower's logit the cosine of the item's text vector
    to the user's training items' (:meth:`MultiTaskRecommender.text_affinity`), a
    content prior for items the tower has few or no interactions of (new news titles).
    """

    dim: int = 64
    # item side
    use_item_id: bool = True
    use_text: bool = True
    text_experts: int = 8
    text_dropout: float = 0.2
    use_graph: bool = True
    graph_kind: str = "rgcn"
    graph_layers: int = 2
    graph_bases: int | None = 8
    graph_composition: str = "mult"
    graph_dropout: float = 0.0
    graph_add_inverse: bool = True
    graph_combine: str = "mean"
    graph_activation: str = "tanh"
    fusion: str = "gate"
    id_dropout: float = 0.1
    id_dropout_graph: bool = False
    id_dropout_private: bool = False
    # user side
    user_encoder: str = "id+history"
    user_id_dropout: float = 0.0
    user_features: tuple[str, ...] | None = None
    history_exclude_target: bool = True
    # trunks (same architecture on the user and the item side)
    trunk: str = "mmoe"
    trunk_hidden: tuple[int, ...] = (128,)
    trunk_dropout: float = 0.0
    trunk_residual: bool = True
    num_experts: int = 4
    ple_levels: int = 1
    num_shared_experts: int = 2
    num_task_experts: int = 1
    # towers
    tasks: tuple[str, ...] = ("retrieval", "rating", "like", "kg")
    retrieval_loss: str = "full_softmax"
    retrieval_temperature: float = 1.0
    retrieval_normalize: bool = False
    distill_weight: float = 0.0
    distill_temperature: float = 0.05
    tower_hidden: tuple[int, ...] = (64,)
    tower_dropout: float = 0.0
    tower_biases: bool = True
    rating_autorec_units: int = 0
    like_threshold: float = 4.0
    like_text_affinity: bool = False
    kg_score: str = "distmult"
    kg_loss: str = "softplus"
    kg_margin: float = 1.0
    # joint loss
    loss_mode: str = "fixed"
    gradnorm_alpha: float = 1.5
    loss_weights: dict[str, float] | None = field(default_factory=lambda: dict(DEFAULT_LOSS_WEIGHTS))
    # initialisation
    init_std: float = 0.1

    def __post_init__(self) -> None:
        self.tasks = tuple(self.tasks)
        self.trunk_hidden = tuple(int(h) for h in self.trunk_hidden)
        self.tower_hidden = tuple(int(h) for h in self.tower_hidden)
        for name, choices in _CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(f"model.{name}: expected one of {list(choices)}, got {value!r}{closest(str(value), choices)}",
                    key=f"model.{name}",
                )
        if not self.tasks or any(t not in TASKS for t in self.tasks) or len(set(self.tasks)) != len(self.tasks):
            hint = next((closest(str(t), TASKS) for t in self.tasks if t not in TASKS), "")
            raise ConfigError(f"model.tasks: expected a non-empty subset of {list(TASKS)}, got {list(self.tasks)}{hint}", key="model.tasks")
        parts = self.user_parts
        if not parts or any(p not in USER_PARTS for p in parts) or len(set(parts)) != len(parts):
            raise ConfigError(
                f"model.user_encoder: expected a '+'-joined subset of {', '.join(USER_PARTS)}, got {self.user_encoder!r}",
                key="model.user_encoder",
            )
        if self.user_features is not None:
            self.user_features = tuple(str(c) for c in self.user_features)
        if not self.item_modalities:
            raise ConfigError("model: at least one of use_item_id, use_text, use_graph must be true", key="model")
        if not 0.0 <= self.id_dropout <= 1.0:
            raise ConfigError(f"model.id_dropout: expected a probability in [0, 1], got {self.id_dropout}", key="model.id_dropout")
        if self.id_dropout > 0 and (not self.use_item_id or self.item_modalities == ("id",)):
            raise ConfigError(
                "model.id_dropout > 0 needs use_item_id and use_text or use_graph (something to fall back on); "
                "set id_dropout: 0",
                key="model.id_dropout",
            )
        if self.id_dropout_private and not (self.id_dropout_graph and self.id_dropout > 0 and self.use_graph):
            raise ConfigError("model.id_dropout_private extends id_dropout_graph; set id_dropout_graph: true "
                              "(with id_dropout > 0 and use_graph)", key="model.id_dropout_private")  # fmt: skip
        if not 0.0 <= self.user_id_dropout <= 1.0:
            raise ConfigError(f"model.user_id_dropout: expected a probability in [0, 1], got {self.user_id_dropout}", key="model.user_id_dropout")
        if self.user_id_dropout > 0 and ("id" not in parts or len(parts) == 1):
            raise ConfigError(f"model.user_id_dropout > 0 needs the 'id' user part and another to fall back on "
                              f"(e.g. user_encoder: id+history), got {self.user_encoder!r}; set user_id_dropout: 0", key="model.user_id_dropout")  # fmt: skip
        if self.distill_weight < 0 or self.distill_temperature <= 0:
            raise ConfigError(
                f"model.distill_weight >= 0 and model.distill_temperature > 0 expected, "
                f"got {self.distill_weight}, {self.distill_temperature}",
                key="model.distill_weight" if self.distill_weight < 0 else "model.distill_temperature",
            )
        if self.distill_weight > 0 and "retrieval" not in self.tasks:
            raise ConfigError("model.distill_weight > 0 teaches the retrieval tower, which model.tasks leaves out; "
                              "set distill_weight: 0", key="model.distill_weight")  # fmt: skip
        if self.like_text_affinity and not ("like" in self.tasks and self.use_text and "history" in self.user_parts):
            raise ConfigError("model.like_text_affinity adds the cosine of an item's text to the user's training items' "
                              "to the like tower's logit: it needs like in model.tasks, use_text and the history user "
                              f"part (user_encoder: {self.user_encoder!r}); set like_text_affinity: false",
                              key="model.like_text_affinity")  # fmt: skip
        if self.gradnorm_alpha < 0:
            raise ConfigError(f"model.gradnorm_alpha: expected >= 0, got {self.gradnorm_alpha}", key="model.gradnorm_alpha")
        if self.rating_autorec_units < 0:
            raise ConfigError(f"model.rating_autorec_units: expected >= 0, got {self.rating_autorec_units}", key="model.rating_autorec_units")
        if self.dim < 1 or self.graph_layers < 0:
            raise ConfigError(f"model.dim >= 1 and model.graph_layers >= 0 expected, got {self.dim}, {self.graph_layers}",
                              key="model.dim" if self.dim < 1 else "model.graph_layers")  # fmt: skip
        self._check_module_settings()
        # What the checks above let through: NaN passes a `x < low` check and inf an open-ended
        # one (`--set model.kg_margin=nan` reads as a float NaN, which trains on NaN losses).
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):  # float fields, optional ones too
                raise ConfigError(f"model.{f.name}: expected a finite number, got {value}", key=f"model.{f.name}")
        if self.loss_weights is not None:
            unknown = sorted(set(self.loss_weights) - set(TASKS))
            if unknown:
                raise ConfigError(f"model.loss_weights: unknown tasks {unknown}; expected some of {list(TASKS)}", key="model.loss_weights")
            if not all(w >= 0 for w in self.loss_weights.values()):  # NaN fails too
                raise ConfigError(f"model.loss_weights: expected weights >= 0, got {self.loss_weights}", key="model.loss_weights")
            if math.inf in self.loss_weights.values():
                raise ConfigError(f"model.loss_weights: expected finite weights, got {self.loss_weights}", key="model.loss_weights")
            # The weights of towers switched off are dropped: `--set model.tasks=[rating]` works
            # with a config file that weighs every tower.
            self.loss_weights = {t: w for t, w in self.loss_weights.items() if t in self.tasks}

    def _check_module_settings(self) -> None:
        """Refuse the values the model's modules refuse (a torch ``ValueError`` or
        ``RuntimeError`` once the graph is built and the text encoded), here where the config
        file's keys are known: dropout probabilities, the retrieval temperature, the
        initialisation's spread, expert and level counts, layer sizes."""
        for name in ("text_dropout", "graph_dropout", "trunk_dropout", "tower_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:  # NaN fails too
                raise ConfigError(f"model.{name}: expected a probability in [0, 1], got {value}", key=f"model.{name}")
        for name, low, inclusive in _MODULE_BOUNDS:
            value = getattr(self, name)
            if not (value >= low if inclusive else value > low):
                raise ConfigError(f"model.{name}: expected {'>=' if inclusive else '>'} {low}, got {value}", key=f"model.{name}")
        if self.graph_bases is not None and self.graph_bases < 1:
            raise ConfigError(f"model.graph_bases: expected >= 1 or null, got {self.graph_bases}", key="model.graph_bases")
        for name in ("trunk_hidden", "tower_hidden"):
            sizes = getattr(self, name)
            if any(h < 1 for h in sizes):
                raise ConfigError(f"model.{name}: expected layer sizes >= 1, got {list(sizes)}", key=f"model.{name}")

    @property
    def item_modalities(self) -> tuple[str, ...]:
        return tuple(m for m, on in (("id", self.use_item_id), ("text", self.use_text), ("graph", self.use_graph)) if on)

    @property
    def user_parts(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.user_encoder.split("+") if p.strip())

    @property
    def rec_tasks(self) -> tuple[str, ...]:
        """The enabled tasks that go through the trunks (all but ``kg``)."""
        return tuple(t for t in self.tasks if t in REC_TASKS)

    @property
    def needs_graph(self) -> bool:
        return self.use_graph or "kg" in self.tasks or "graph" in self.user_parts

    @classmethod
    def bpr_mf(cls, dim: int = 64, **overrides: Any) -> ModelConfig:
        """BPR-MF: ID embeddings, identity trunks, the retrieval tower with the BPR loss."""
        base = dict(
            dim=dim, use_item_id=True, use_text=False, use_graph=False, id_dropout=0.0,
            user_encoder="id", trunk="identity", tasks=("retrieval",), retrieval_loss="bpr",
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelConfig:
        """From a plain mapping (e.g. the ``model:`` section of a YAML file); unknown keys fail."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"model: unknown keys {unknown}; expected some of {sorted(known)}", key="model")
        return cls(**dict(values))

    def with_changes(self, **changes: Any) -> ModelConfig:
        """A validated copy with some fields changed."""
        return replace(self, **changes)


@dataclass
class ModelSizes:
    """Data-derived sizes a :class:`MultiTaskRecommender` is built for (store beside the config).

    Attributes:
        num_users: users ``U`` (dataset user index ``0 .. U-1``).
        num_items: items ``I`` (dataset item index; graph nodes ``0 .. I-1`` are these items).
        num_nodes: graph nodes ``N`` (0 without a graph).
        num_relations: graph relations ``R`` in ``edge_type`` (0 without a graph).
        text_dim: size of the frozen item text vectors (0 without text).
        user_node_offset: graph node id of user 0 when users are graph nodes, else ``None``.
        rating_mean: training mean rating (initial global bias of the rating tower).
        rating_range: ``(low, high)`` clamp for predicted ratings, or ``None``.
        num_user_features: user feature tokens ``F`` (``features`` user part; 0 without).
    """

    num_users: int
    num_items: int
    num_nodes: int = 0
    num_relations: int = 0
    text_dim: int = 0
    user_node_offset: int | None = None
    rating_mean: float = 0.0
    rating_range: tuple[float, float] | None = None
    num_user_features: int = 0

    def __post_init__(self) -> None:
        if self.rating_range is not None:
            self.rating_range = (float(self.rating_range[0]), float(self.rating_range[1]))
