r"""The multi-task recommender: graph + text + ID item vectors, two trunks, task towers.

Per training step (one :meth:`MultiTaskRecommender.encode`, shared by every tower):

.. math::
    \mathbf{N} = \mathrm{GNN}(\mathcal{G}) \in \mathbb{R}^{N \times d}, \qquad
    \mathbf{h}_i = \mathrm{fuse}\big(\mathbf{e}_i,\ \mathrm{adapt}(\mathbf{t}_i),\ \mathbf{N}_i\big),
    \qquad \{\mathbf{z}^t_i\}_t = \mathrm{Trunk}_{\textrm{item}}(\mathbf{h}_i)
    \quad \text{for all items } i

.. math::
    \mathbf{h}_u = \mathrm{UserEncoder}(u), \qquad
    \{\mathbf{z}^t_u\}_t = \mathrm{Trunk}_{\textrm{user}}(\mathbf{h}_u)

then ``retrieval`` scores :math:`\langle \mathbf{z}^{ret}_u, \mathbf{z}^{ret}_i \rangle`, ``rating`` and
``like`` read :math:`[\mathbf{z}_u; \mathbf{z}_i; \mathbf{z}_u \odot \mathbf{z}_i]` of their own
task representations (``rating`` optionally adds an item-based AutoRec term over the training
ratings, :class:`~kgrec.models.autorec.ItemAutoRec`), and ``kg`` scores triples on :math:`\mathbf{N}` (so the KG loss trains the
same graph encoder the items read). Each piece can be switched off: ``ModelConfig.bpr_mf()`` is
item and user ID embeddings + the retrieval tower with BPR, i.e. BPR-MF (Rendle et al., 2009).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.errors import ConfigError
from kgrec.models._sparse import SparseOperator
from kgrec.models.autorec import ItemAutoRec
from kgrec.models.config import REC_TASKS, ModelConfig, ModelSizes
from kgrec.models.fusion import ItemFusion, MoEAdaptor, UserEncoder, drops_ids
from kgrec.models.graph_encoder import RelationalGraphEncoder
from kgrec.models.losses import JointLoss
from kgrec.models.towers import KGLinkTower, LikeTower, RatingTower, RetrievalTower, as_index, at_least_fp32
from kgrec.models.trunk import Trunk, build_trunk


@dataclass
class SideInputs:
    """Fixed data tensors the model reads every step; not learned, not in the ``state_dict``
    (re-:meth:`~MultiTaskRecommender.attach` them after loading a checkpoint).

    Attributes:
        edge_index: ``(2, E)`` int64 ``[head; tail]`` graph edges (training interactions only).
        edge_type: ``(E,)`` int64 relation ids.
        text: ``(I, t)`` frozen item text vectors.
        history: ``(U, I)`` sparse normalised training history
            (:func:`~kgrec.models.fusion.history_matrix`), for the ``history`` user part.
        user_features: ``(U, F)`` sparse user-feature matrix, each row a mean over the user's
            feature tokens (:func:`~kgrec.models.fusion.history_matrix` over (user, token)
            pairs), for the ``features`` user part.
        ratings: ``(U, I)`` sparse training ratings (the rating values), for the rating tower's
            AutoRec term (``rating_autorec_units``).
        warm_items: ``(I,)`` bool, items with training interactions. The others (cold items of
            a cold-start split) never had a trained ID embedding, so their vectors come from
            text and graph alone, as for items added after training; nor are they used as
            retrieval negatives.
        item_log_q: ``(I,)`` log-probability of each item under the negative sampler, for the
            logQ correction of the ``sampled_softmax`` loss (omit for uniform sampling).
        private_owner: ``(N,)`` int64, for each entity node that one item alone links to that
            item, else ``-1`` (:func:`kgrec.graph.private_owner`), for ``id_dropout_private``.
    """

    edge_index: Tensor | None = None
    edge_type: Tensor | None = None
    text: Tensor | None = None
    history: Tensor | None = None
    user_features: Tensor | None = None
    ratings: Tensor | None = None
    item_log_q: Tensor | None = None
    warm_items: Tensor | None = None
    private_owner: Tensor | None = None


@dataclass
class RecBatch:
    """One training batch. Row ``b`` is a training interaction ``(user[b], pos_item[b])``; the
    KG fields are an independent batch of triples.

    Attributes:
        user: ``(B,)`` int64 user indices.
        pos_item: ``(B,)`` int64 interacted item indices.
        neg_items: ``(B, K)`` int64 negatives sampled against the user's training positives
            (``bpr`` / ``sampled_softmax`` retrieval).
        rating: ``(B,)`` float ratings (``rating`` task; ``like`` labels default to
            ``rating >= like_threshold``).
        like: ``(B,)`` float 0/1 labels (``like`` task), overriding the rating threshold.
        retrieval_mask: ``(B,)`` bool, rows that count as retrieval positives (e.g. only liked
            items); default all rows.
        like_neg_user, like_neg_item: ``(Bn,)`` int64 pairs labelled negative in the data (an
            impression without a click: a ``label`` 0 row), an independent batch: the ``like``
            task's loss is taken over the interaction rows and these, labelled 0.
        kg_head, kg_rel, kg_tail: ``(Bk,)`` int64 true triples (node and relation ids).
        kg_neg_tail: ``(Bk, K')`` int64 corrupted tails.
        shared_items: ``(K,)`` int64 items drawn once for the whole batch (uniformly, without
            replacement, from the items with training interactions): every row's negatives for
            the ``sampled_softmax`` retrieval loss instead of ``neg_items``
            (:meth:`~kgrec.models.towers.RetrievalTower.shared_softmax_loss`), and the items the
            teacher's term is computed over.
        teacher_scores: ``(B, I)`` a teacher's scores of every item for ``user[b]`` (``(B, K)``,
            of the ``shared_items``, when those are given), ``-inf`` for the items it does not
            rank (the user's training items); needed when ``distill_weight`` > 0.
    """

    user: Tensor | None = None
    pos_item: Tensor | None = None
    neg_items: Tensor | None = None
    rating: Tensor | None = None
    like: Tensor | None = None
    retrieval_mask: Tensor | None = None
    like_neg_user: Tensor | None = None
    like_neg_item: Tensor | None = None
    kg_head: Tensor | None = None
    kg_rel: Tensor | None = None
    kg_tail: Tensor | None = None
    kg_neg_tail: Tensor | None = None
    shared_items: Tensor | None = None
    teacher_scores: Tensor | None = None

    def to(self, device: torch.device | str) -> RecBatch:
        """A copy with every tensor on ``device``."""
        return RecBatch(**{f.name: _to(getattr(self, f.name), device) for f in fields(self)})

    def with_int64_indices(self) -> RecBatch:
        """This batch with its index fields as int64 (any integer dtype is accepted: ``int32``
        from numpy or a data loader; ``nn.Embedding`` takes int32 and int64 only, and
        ``F.cross_entropy`` int64 only); itself when they already are. Float or bool indices:
        ``TypeError`` naming the field."""
        changed = {name: as_index(f"batch.{name}", value) for name in INDEX_FIELDS
                   if (value := getattr(self, name)) is not None and value.dtype != torch.long}  # fmt: skip
        return RecBatch(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changed}) if changed else self


INDEX_FIELDS = ("user", "pos_item", "neg_items", "like_neg_user", "like_neg_item", "kg_head", "kg_rel", "kg_tail",
                 "kg_neg_tail", "shared_items")  # fmt: skip


def _to(t: Tensor | None, device: torch.device | str) -> Tensor | None:
    return None if t is None else t.to(device, non_blocking=True)


def check_indices(*checks: tuple[str, Tensor | None, int]) -> None:
    """Refuse, with a ``ValueError`` naming it, the first ``(name, index, size)`` whose integer
    ``index`` has a value outside ``[0, size)``: a negative index would silently read the row
    ``size + index`` (``-1`` the last user), one too large fails as a bare ``IndexError`` (on a
    GPU a device-side assert). One host sync for all the checks; empty or ``None`` ones pass."""
    given = [(name, t, size) for name, t, size in checks if t is not None and t.numel()]
    if not given:
        return
    bounds = torch.stack([torch.stack([t.min(), t.max()]) for _, t, _ in given]).tolist()  # (n, 2)
    for (name, _, size), (low, high) in zip(given, bounds, strict=True):
        if low < 0 or high >= size:
            raise ValueError(f"{name}: index out of range [{low}, {high}]: expected indices in [0, {size})")


@dataclass
class HistoryPrior:
    """What a new user's history is shrunk toward: the mean training user's history part
    ``mean`` ``(1, d)`` (:meth:`MultiTaskRecommender.mean_history`), counting for ``weight``
    liked items (:meth:`MultiTaskRecommender.new_user_vectors`)."""

    mean: Tensor
    weight: float


@dataclass
class Encoded:
    """Whole-catalogue work of one step, shared by all towers.

    Attributes:
        nodes: ``(N, d)`` graph-encoder node vectors, or ``None`` without a graph.
        items: ``(I, d)`` fused item vectors :math:`\\mathbf{h}_i`.
        item_z: ``{task: (I, d)}`` item-trunk representations.
    """

    nodes: Tensor | None
    items: Tensor
    item_z: dict[str, Tensor] = field(default_factory=dict)


class MultiTaskRecommender(nn.Module):
    """Item fusion (ID, text, graph) -> user / item trunks -> retrieval, rating, like and KG towers.

    See the module docstring for the computation. Build with a :class:`ModelConfig`, the data's
    :class:`ModelSizes` and its :class:`SideInputs` (or :meth:`attach` them later).

    Training: ``losses = model(batch)`` (a dict ``{task: loss}``), or
    ``total, logs = model.loss(batch)`` through the configured :class:`JointLoss`.
    Full ranking: :meth:`user_vectors` / :meth:`item_vectors` (dot product), :meth:`score_all`.
    For repeated inference calls compute ``enc = model.encode()`` once (under ``model.eval()``
    and ``torch.no_grad()``) and pass ``encoded=enc``.

    Parameter groups for loss balancing: :meth:`shared_parameters`, :meth:`task_parameters`,
    :meth:`loss_parameters` partition :meth:`parameters`.
    """

    def __init__(self, config: ModelConfig, sizes: ModelSizes, side: SideInputs | None = None) -> None:
        super().__init__()
        self.config = config
        self.sizes = sizes
        c, d = config, config.dim
        if c.use_text and sizes.text_dim < 1:
            raise ConfigError("model.use_text is true but the data has no text vectors (sizes.text_dim = 0)")
        if c.needs_graph and (sizes.num_nodes < sizes.num_items or sizes.num_relations < 1):
            raise ConfigError(
                "model: use_graph, the kg task or a graph user part needs a graph whose first "
                f"num_items nodes are the items (got num_nodes={sizes.num_nodes}, "
                f"num_items={sizes.num_items}, num_relations={sizes.num_relations})"
            )
        if "graph" in c.user_parts and sizes.user_node_offset is None:
            raise ConfigError("model.user_encoder has 'graph' but the graph has no user nodes (user_node_offset)")
        if "features" in c.user_parts and sizes.num_user_features < 1:
            raise ConfigError("model.user_encoder has 'features' but the data has no user feature tokens "
                              "(sizes.num_user_features = 0)")  # fmt: skip

        self.item_embedding = nn.Embedding(sizes.num_items, d) if c.use_item_id else None
        self.text_adaptor = (
            MoEAdaptor(sizes.text_dim, d, num_experts=c.text_experts, dropout=c.text_dropout) if c.use_text else None
        )
        self.graph_encoder = (
            RelationalGraphEncoder(
                sizes.num_nodes, sizes.num_relations, d, num_layers=c.graph_layers, kind=c.graph_kind,
                num_bases=c.graph_bases, composition=c.graph_composition, dropout=c.graph_dropout,
                add_inverse=c.graph_add_inverse, combine=c.graph_combine, activation=c.graph_activation,
                init_std=c.init_std,
            )
            if c.needs_graph
            else None
        )
        self.item_fusion = ItemFusion(d, c.item_modalities, kind=c.fusion, id_dropout=c.id_dropout)
        self.user_encoder = UserEncoder(
            sizes.num_users, d, c.user_parts, init_std=c.init_std, num_features=sizes.num_user_features,
            id_dropout=c.user_id_dropout,
        )
        self.user_trunk: Trunk | None = None
        self.item_trunk: Trunk | None = None
        if c.rec_tasks:
            trunk_args = dict(
                hidden=c.trunk_hidden, dropout=c.trunk_dropout, residual=c.trunk_residual,
                num_experts=c.num_experts, num_levels=c.ple_levels,
                num_shared_experts=c.num_shared_experts, num_task_experts=c.num_task_experts,
            )
            self.user_trunk = build_trunk(c.trunk, d, c.rec_tasks, **trunk_args)
            self.item_trunk = build_trunk(c.trunk, d, c.rec_tasks, **trunk_args)
        self.towers = nn.ModuleDict()
        n_users_b = sizes.num_users if c.tower_biases else None
        n_items_b = sizes.num_items if c.tower_biases else None
        if "retrieval" in c.tasks:
            self.towers["retrieval"] = RetrievalTower(
                c.retrieval_loss, temperature=c.retrieval_temperature, normalize=c.retrieval_normalize
            )
        if "rating" in c.tasks:
            self.towers["rating"] = RatingTower(
                d, n_users_b, n_items_b, hidden=c.tower_hidden, dropout=c.tower_dropout,
                global_mean=sizes.rating_mean, rating_range=sizes.rating_range,
                autorec=ItemAutoRec(sizes.num_users, c.rating_autorec_units) if c.rating_autorec_units else None,
            )
        if "like" in c.tasks:
            self.towers["like"] = LikeTower(d, n_users_b, n_items_b, hidden=c.tower_hidden, dropout=c.tower_dropout,
                                            affinity=c.like_text_affinity)  # fmt: skip
        if "kg" in c.tasks:
            self.towers["kg"] = KGLinkTower(
                sizes.num_relations, d, score=c.kg_score, loss=c.kg_loss, margin=c.kg_margin
            )
        self.joint_loss = JointLoss(c.tasks, c.loss_weights, mode=c.loss_mode, alpha=c.gradnorm_alpha)

        for name in ("edge_index", "edge_type", "text", "item_log_q", "warm_items", "_history_indices",
                     "_history_values", "_ratings_indices", "_ratings_values", "_user_features_indices",
                     "_user_features_values", "_private_nodes", "_private_items"):
            self.register_buffer(name, None, persistent=False)
        self.reset_parameters()
        if side is not None:
            self.attach(side)

    # ------------------------------------------------------------------ setup
    def reset_parameters(self) -> None:
        if self.item_embedding is not None:
            nn.init.normal_(self.item_embedding.weight, std=self.config.init_std)
        for m in (self.text_adaptor, self.graph_encoder, self.item_fusion, self.user_encoder,
                  self.user_trunk, self.item_trunk, self.joint_loss, *self.towers.values()):
            if m is not None:
                m.reset_parameters()

    def attach(self, side: SideInputs) -> MultiTaskRecommender:
        """Set the fixed data tensors (moved to the model's device); fields left ``None`` are kept."""
        s = self.sizes
        device, dtype = self._device(), self._float_dtype()
        if side.edge_index is not None or side.edge_type is not None:
            if side.edge_index is None or side.edge_type is None:
                raise ValueError("side: edge_index and edge_type go together")
            if side.edge_index.dim() != 2 or side.edge_index.size(0) != 2:
                raise ValueError(f"side.edge_index: expected shape (2, E), got {tuple(side.edge_index.shape)}")
            self.edge_index = side.edge_index.to(device, torch.long)
            self.edge_type = side.edge_type.to(device, torch.long)
        if side.text is not None:
            if side.text.shape != (s.num_items, s.text_dim):
                raise ValueError(f"side.text: expected shape ({s.num_items}, {s.text_dim}), got {tuple(side.text.shape)}")
            self.text = side.text.detach().to(device, dtype)
        for name in ("history", "ratings", "user_features"):
            matrix = getattr(side, name)
            if matrix is None:
                continue
            if tuple(matrix.shape) != self._side_shape(name):
                raise ValueError(f"side.{name}: expected shape {self._side_shape(name)}, got {tuple(matrix.shape)}")
            coo = matrix.to_sparse_coo().coalesce() if matrix.is_sparse_csr else matrix.coalesce()
            setattr(self, f"_{name}_indices", coo.indices().to(device))  # (2, nnz)
            setattr(self, f"_{name}_values", coo.values().to(device, dtype))  # (nnz,)
        if side.item_log_q is not None:
            if side.item_log_q.shape != (s.num_items,):
                raise ValueError(f"side.item_log_q: expected shape ({s.num_items},), got {tuple(side.item_log_q.shape)}")
            self.item_log_q = side.item_log_q.to(device, dtype)
        if side.warm_items is not None:
            if side.warm_items.shape != (s.num_items,):
                raise ValueError(f"side.warm_items: expected shape ({s.num_items},), got {tuple(side.warm_items.shape)}")
            self.warm_items = side.warm_items.to(device, torch.bool)
        if side.private_owner is not None:
            if side.private_owner.shape != (s.num_nodes,):
                raise ValueError(f"side.private_owner: expected shape ({s.num_nodes},), got {tuple(side.private_owner.shape)}")
            owner = side.private_owner.to(device, torch.long)
            check_indices(("side.private_owner", owner[owner >= 0], s.num_items))  # item ids, -1 for none
            self._private_nodes = (owner >= 0).nonzero().squeeze(1)  # entities one item alone links to
            self._private_items = owner[self._private_nodes]  # that item
        return self  # missing inputs are reported when first needed, so attach() can go piecewise

    def _device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def _float_dtype(self) -> torch.dtype:
        """The parameters' floating dtype (float32 unless the model was cast, e.g. ``model.double()``),
        which :meth:`attach` gives the floating side inputs, as a cast after attaching does."""
        p = next((p for p in self.parameters() if p.is_floating_point()), None)
        return p.dtype if p is not None else torch.float32

    def _side_shape(self, name: str) -> tuple[int, int]:
        s = self.sizes
        return (s.num_users, s.num_user_features) if name == "user_features" else (s.num_users, s.num_items)

    def _sparse_side(self, name: str, transpose: bool = False) -> SparseOperator | None:
        """Side input ``name`` (``history`` or ``ratings``, ``(U, I)``; ``user_features``,
        ``(U, F)``) as a :class:`SparseOperator` (transposed with ``transpose``), built once per
        attach() or device move (and again outside ``torch.inference_mode`` when it was built
        inside, since autograd cannot save its tensors)."""
        indices, values = getattr(self, f"_{name}_indices"), getattr(self, f"_{name}_values")
        if indices is None:
            return None
        cache: dict = self.__dict__.setdefault("_operator_cache", {})
        cached = cache.get(name)
        inference = torch.is_inference_mode_enabled()
        if cached is None or cached[0] is not indices or cached[1] is not values or (cached[3] and not inference):
            shape = self._side_shape(name)
            op = SparseOperator(indices.flip(0), values, shape[::-1]) if transpose else SparseOperator(indices, values, shape)
            cached = cache[name] = (indices, values, op, inference)
        return cached[2]

    def _history(self) -> SparseOperator | None:
        return self._sparse_side("history")

    def _user_features(self) -> SparseOperator | None:
        if "features" not in self.config.user_parts:
            return None
        if self._user_features_indices is None:
            raise ValueError("the 'features' user part needs side input 'user_features': call "
                             "model.attach(SideInputs(user_features=...))")  # fmt: skip
        return self._sparse_side("user_features")

    def _item_ratings(self) -> SparseOperator | None:
        """The ``(I, U)`` training ratings for the rating tower's AutoRec term (``None`` without it)."""
        if self.towers["rating"].autorec is None:
            return None
        if self._ratings_indices is None:
            raise ValueError("the rating tower's AutoRec term needs side input 'ratings': call model.attach(SideInputs(ratings=...))")
        return self._sparse_side("ratings", transpose=True)

    def _require(self, name: str, why: str) -> Tensor:
        t = getattr(self, name)
        if t is None:
            raise ValueError(f"{why} needs side input '{name}': call model.attach(SideInputs({name}=...))")
        return t

    # ------------------------------------------------------------------ encoding
    def encode_graph(
        self,
        edge_index: Tensor | None = None,
        edge_type: Tensor | None = None,
        num_new_nodes: int = 0,
        keep_nodes: Tensor | None = None,
    ) -> Tensor:
        """Graph-encoder node vectors ``(N + num_new_nodes, d)``.

        Defaults to the attached graph. For new (cold) items or entities, pass a graph whose new
        nodes are numbered ``N .. N + num_new_nodes - 1``: they start from zero embeddings and
        take their vectors from their neighbours. ``keep_nodes`` ``(n,)`` bool over the first
        ``n`` nodes (the items first) encodes the nodes where it is ``False`` the same way, from
        their neighbours (training with ``id_dropout_graph``).
        """
        if self.graph_encoder is None:
            raise ValueError("encode_graph: this model has no graph encoder")
        if num_new_nodes and keep_nodes is not None:
            raise ValueError("encode_graph: num_new_nodes and keep_nodes do not go together")
        ei = self._require("edge_index", "the graph encoder") if edge_index is None else edge_index
        et = self._require("edge_type", "the graph encoder") if edge_type is None else edge_type
        x = None
        if num_new_nodes:
            x = self.graph_encoder.extended_embeddings(num_new_nodes)
        elif keep_nodes is not None:
            x = self.graph_encoder.embeddings_without(keep_nodes)
        return self.graph_encoder(ei, et, x=x)

    def graph_attention(self) -> tuple[Tensor, Tensor] | None:
        """KGAT's attention on the attached graph, ``([source; target], alpha)`` per edge
        (:meth:`~kgrec.models.graph_encoder.RelationalGraphEncoder.attention`); ``None`` for the
        other graph encoders, which weigh no edge above another."""
        encoder = self.graph_encoder
        if encoder is None or encoder.kind != "kgat" or not encoder.layers:
            return None
        return encoder.attention(self._require("edge_index", "attention"), self._require("edge_type", "attention"))

    def encode(self) -> Encoded:
        r"""The whole-catalogue part of a step: graph once, all items fused and through the trunk.

        While training with ``id_dropout_graph``, the items :math:`\mathcal{D}` whose ID embedding
        is dropped this step are encoded as new items are (:meth:`cold_item_vectors`): their
        node embeddings enter the graph encoder as zeros, :math:`\mathbf{h}^{(0)}_i = \mathbf{0}`
        for :math:`i \in \mathcal{D}`, so their graph vectors come from their neighbours alone.
        Without it the item's own node embedding, a second ID vector, stands in for the dropped
        ID, and the model never learns the content-only vectors that cold items get. With
        ``id_dropout_private`` the entities :math:`\mathcal{P}_i` that item :math:`i \in
        \mathcal{D}` alone links to enter as zeros too, :math:`\mathbf{h}^{(0)}_e = \mathbf{0}`
        for :math:`e \in \mathcal{P}_i`: trained through one item only, their embeddings are
        that item's ID by another name, and a new item has no such trained entities.
        """
        c = self.config
        id_mask = self.warm_items if self.item_embedding is not None else None
        keep = None  # id_dropout > 0 implies an ID embedding (ModelConfig checks it)
        if c.id_dropout_graph and c.use_graph and drops_ids(c.id_dropout, self.training):
            keep = self.item_fusion.id_keep_mask(self.sizes.num_items, self._device())  # (I,)
            id_mask = keep if id_mask is None else id_mask & keep
        keep_nodes = self._without_private_entities(keep) if keep is not None and c.id_dropout_private else keep
        nodes = self.encode_graph(keep_nodes=keep_nodes) if self.graph_encoder is not None else None
        items = self.item_fusion(
            id_emb=self.item_embedding.weight if self.item_embedding is not None else None,
            text=self._adapted_text(self._require("text", "use_text")) if self.text_adaptor is not None else None,
            graph=nodes[: self.sizes.num_items] if self.config.use_graph else None,
            id_mask=id_mask,
            drop_ids=keep is None,  # else already in id_mask
        )  # (I, d)
        item_z = self.item_trunk(items) if self.item_trunk is not None else {}
        return Encoded(nodes=nodes, items=items, item_z=item_z)

    def _without_private_entities(self, keep: Tensor) -> Tensor:
        """``(N,)`` bool: ``keep`` ``(I,)`` over the items, extended to the entities private to
        an item (``False`` where that item is dropped) and ``True`` for every other node."""
        if self._private_nodes is None:
            raise ValueError("model.id_dropout_private needs side input 'private_owner': call "
                             "model.attach(SideInputs(private_owner=...))")  # fmt: skip
        nodes = torch.ones(self.sizes.num_nodes, dtype=torch.bool, device=keep.device)
        nodes[: keep.numel()] = keep
        nodes[self._private_nodes] = keep[self._private_items]
        return nodes

    def _adapted_text(self, text: Tensor) -> Tensor:
        """Text vectors ``(n, t)`` through the adaptor, ``(n, d)``, read on the adaptor's device
        and in its dtype (a no-op for the attached text; a float32 vector for a float64 model)."""
        w = self.text_adaptor.weight
        return self.text_adaptor(text.to(w.device, w.dtype))  # (n, d)

    def _user_repr(self, users: Tensor | None, enc: Encoded, exclude_items: Tensor | None = None) -> dict[str, Tensor]:
        graph_users = None
        if "graph" in self.config.user_parts:
            off = self.sizes.user_node_offset
            graph_users = enc.nodes[off : off + self.sizes.num_users]
        h_u = self.user_encoder(
            users, item_vectors=enc.items, history=self._history(), graph_vectors=graph_users,
            exclude_items=exclude_items, features=self._user_features(),
        )  # (B, d)
        if self.user_trunk is None:
            raise ValueError("this model has no recommendation task (only 'kg')")
        return self.user_trunk(h_u)

    # ------------------------------------------------------------------ training
    def compute_losses(self, batch: RecBatch, encoded: Encoded | None = None) -> dict[str, Tensor]:
        """``{task: scalar loss}`` for the enabled tasks present in ``batch`` (``kg`` is skipped
        when the batch has no triples; the other tasks require their fields)."""
        c = self.config
        batch = batch.with_int64_indices()
        s, checks = self.sizes, []
        if c.rec_tasks:
            checks += [("batch.user", batch.user, s.num_users)]
            checks += [("batch.like_neg_user", batch.like_neg_user, s.num_users)]
            checks += [(f"batch.{f}", getattr(batch, f), s.num_items)
                       for f in ("pos_item", "neg_items", "shared_items", "like_neg_item")]  # fmt: skip
        if "kg" in c.tasks:
            checks += [(f"batch.{f}", getattr(batch, f), s.num_nodes) for f in ("kg_head", "kg_tail", "kg_neg_tail")]
            checks += [("batch.kg_rel", batch.kg_rel, s.num_relations)]
        check_indices(*checks)
        enc = self.encode() if encoded is None else encoded
        losses: dict[str, Tensor] = {}
        if c.rec_tasks:
            if batch.user is None or batch.pos_item is None:
                raise ValueError(f"batch: user and pos_item are required by the tasks {list(c.rec_tasks)}")
            users, items = batch.user, batch.pos_item  # (B,)
            exclude = items if c.history_exclude_target and "history" in c.user_parts else None
            z_u = self._user_repr(users, enc, exclude)  # {task: (B, d)}
            if "retrieval" in c.tasks:
                rows = batch.retrieval_mask
                q, pos, neg = z_u["retrieval"], items, batch.neg_items
                if rows is not None:
                    q, pos = q[rows], pos[rows]
                    neg = neg[rows] if neg is not None else None
                tower = self.towers["retrieval"]
                scores = None  # (B, I), or (B, K) of the shared items: shared with the teacher's term
                if c.distill_weight > 0:
                    if batch.teacher_scores is None:
                        raise ValueError("batch.teacher_scores: required when model.distill_weight > 0")
                    items_z = enc.item_z["retrieval"]
                    scores = tower.score_all(q, items_z if batch.shared_items is None else items_z[batch.shared_items])
                if batch.shared_items is not None:
                    if c.retrieval_loss != "sampled_softmax":
                        raise ValueError(f"batch.shared_items: negatives of the sampled_softmax loss, not {c.retrieval_loss}")
                    n = int(self.warm_items.sum()) if self.warm_items is not None else self.sizes.num_items
                    losses["retrieval"] = tower.shared_softmax_loss(
                        q, enc.item_z["retrieval"], pos, batch.shared_items, n, scores=scores
                    )
                else:
                    losses["retrieval"] = tower.loss(
                        q, enc.item_z["retrieval"], pos, neg, self.item_log_q, candidates=self.warm_items, scores=scores
                    )  # items never seen in training are not pushed down as negatives
                if scores is not None:
                    teacher = batch.teacher_scores if rows is None else batch.teacher_scores[rows]
                    losses["retrieval"] = losses["retrieval"] + c.distill_weight * tower.distillation_loss(
                        scores, teacher, c.distill_temperature
                    )
            if "rating" in c.tasks:
                if batch.rating is None:
                    raise ValueError("batch.rating: required by the rating task")
                tower = self.towers["rating"]
                pred = tower(
                    z_u["rating"], enc.item_z["rating"][items], users, items,
                    ratings=self._item_ratings(), leave_out=True,
                )  # batch rows are training interactions: their own ratings leave the AutoRec input
                losses["rating"] = tower.loss(pred, batch.rating)
            if "like" in c.tasks:
                label = batch.like
                if label is None:
                    if batch.rating is None:
                        raise ValueError("batch.like (or batch.rating): required by the like task")
                    label = (batch.rating >= c.like_threshold).float()
                tower = self.towers["like"]
                profiles = self.text_profiles() if c.like_text_affinity else None  # once for both calls below
                # batch rows are training interactions: the item leaves its user's side of the affinity
                affinity = self.text_affinity(users, items, own=True, profiles=profiles) if profiles is not None else None
                logits = tower(z_u["like"], enc.item_z["like"][items], users, items, affinity=affinity)
                if (neg_users := batch.like_neg_user) is not None:  # pairs labelled negative in the data
                    if batch.like_neg_item is None or batch.like_neg_item.shape != neg_users.shape:
                        raise ValueError("batch.like_neg_user and batch.like_neg_item: two (Bn,) index tensors")
                    neg_items = batch.like_neg_item
                    affinity = self.text_affinity(neg_users, neg_items, profiles=profiles) if profiles is not None else None
                    neg = tower(self._user_repr(neg_users, enc)["like"], enc.item_z["like"][neg_items], neg_users, neg_items,
                                affinity=affinity)  # fmt: skip
                    logits, label = torch.cat([logits, neg]), torch.cat([label.to(logits.dtype), neg.new_zeros(len(neg))])
                losses["like"] = tower.loss(logits, label)
        if "kg" in c.tasks and batch.kg_head is not None:
            if batch.kg_rel is None or batch.kg_tail is None or batch.kg_neg_tail is None:
                raise ValueError("batch: kg_head, kg_rel, kg_tail and kg_neg_tail go together")
            nodes = enc.nodes
            tower = self.towers["kg"]
            if tower.loss_kind == "softmax":  # every node is a negative: the sampled tails are not used
                losses["kg"] = tower.softmax_loss(nodes, batch.kg_head, batch.kg_rel, batch.kg_tail)
            else:
                head = nodes[batch.kg_head]  # (Bk, d)
                pos = tower(head, batch.kg_rel, nodes[batch.kg_tail])  # (Bk,)
                neg = tower(head, batch.kg_rel, nodes[batch.kg_neg_tail])  # (Bk, K')
                losses["kg"] = tower.loss(pos, neg)
        return losses

    def forward(self, batch: RecBatch) -> dict[str, Tensor]:
        """Same as :meth:`compute_losses`."""
        return self.compute_losses(batch)

    def loss(self, batch: RecBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """``(total, logs)`` through the configured :class:`JointLoss`."""
        return self.joint_loss(self.compute_losses(batch))

    # ------------------------------------------------------------------ inference
    def _retrieval(self) -> RetrievalTower:
        if "retrieval" not in self.towers:
            raise ValueError("this model has no retrieval tower (add 'retrieval' to model.tasks)")
        return self.towers["retrieval"]  # type: ignore[return-value]

    def item_vectors(self, encoded: Encoded | None = None) -> Tensor:
        """Retrieval-space vectors of all items, ``(I, d)``: rank by ``user_vectors() @ item_vectors().T``."""
        enc = self.encode() if encoded is None else encoded
        return self._retrieval().item_vectors(enc.item_z["retrieval"])

    def user_vectors(self, users: Tensor | None = None, encoded: Encoded | None = None) -> Tensor:
        """Retrieval-space vectors of ``users`` ``(B,)``, or of all users, ``(B | U, d)``.
        Indices outside ``[0, U)`` (negative ones too) are refused with a ``ValueError``."""
        tower = self._retrieval()
        users = None if users is None else self._users(users)
        enc = self.encode() if encoded is None else encoded
        return tower.user_vectors(self._user_repr(users, enc)["retrieval"])

    def score_all(self, users: Tensor, encoded: Encoded | None = None) -> Tensor:
        """Dot-product scores of ``users`` ``(B,)`` against every item, ``(B, I)``
        (= ``user_vectors(users) @ item_vectors().T``; the temperature is left out)."""
        enc = self.encode() if encoded is None else encoded
        return self.user_vectors(users, enc) @ self.item_vectors(enc).T

    def _users(self, users: Tensor) -> Tensor:
        """``users`` as int64 indices in ``[0, U)`` (:func:`check_indices`)."""
        users = as_index("users", users)
        check_indices(("users", users, self.sizes.num_users))
        return users

    def _pair(self, task: str, users: Tensor, items: Tensor, encoded: Encoded | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(users, items, z_u, z_i)``: the checked int64 indices and their ``task`` representations."""
        if task not in self.towers:
            raise ValueError(f"this model has no {task} tower (add {task!r} to model.tasks)")
        users, items = as_index("users", users), as_index("items", items)
        check_indices(("users", users, self.sizes.num_users), ("items", items, self.sizes.num_items))
        enc = self.encode() if encoded is None else encoded
        return users, items, self._user_repr(users, enc)[task], enc.item_z[task][items]

    def predict_rating(self, users: Tensor, items: Tensor, encoded: Encoded | None = None) -> Tensor:
        """Predicted ratings ``(B,)`` of ``(users[b], items[b])``, clamped to ``rating_range``
        (indices outside ``[0, U)`` / ``[0, I)`` are refused with a ``ValueError``)."""
        users, items, z_u, z_i = self._pair("rating", users, items, encoded)
        return self.towers["rating"].predict(z_u, z_i, users, items, ratings=self._item_ratings())

    def predict_like(self, users: Tensor, items: Tensor, encoded: Encoded | None = None) -> Tensor:
        """Like probabilities ``(B,)`` of ``(users[b], items[b])`` (indices as :meth:`predict_rating`)."""
        users, items, z_u, z_i = self._pair("like", users, items, encoded)
        affinity = self.text_affinity(users, items) if self.config.like_text_affinity else None
        return self.towers["like"].predict(z_u, z_i, users, items, affinity=affinity)

    def text_profiles(self) -> tuple[Tensor, Tensor]:
        r"""``(centred, sums)`` for :meth:`text_affinity`: the centred unit text vectors
        :math:`\mathbf{c}_i` ``(I, t)`` and each user's sum over their training items ``(U, t)``."""
        if self.text is None or self._history_indices is None:
            raise ValueError("text_affinity needs side inputs 'text' and 'history': call model.attach(SideInputs(...))")
        text = F.normalize(self.text.float(), dim=1)
        centred = text - text.mean(0, keepdim=True)  # (I, t)
        rows, cols = self._history_indices  # training (user, item) pairs
        sums = torch.zeros(self.sizes.num_users, centred.size(1), device=centred.device).index_add_(0, rows, centred[cols])
        return centred, sums

    def text_affinity(
        self, users: Tensor, items: Tensor, own: bool = False, profiles: tuple[Tensor, Tensor] | None = None
    ) -> Tensor:
        r"""Content affinity :math:`a_{ui}` ``(B,)`` of ``(users[b], items[b])``: the cosine of the
        item's text vector to the sum of the user's training items' (``model.like_text_affinity``),

        .. math::
            \mathbf{c}_i = \frac{\mathbf{t}_i}{\lVert \mathbf{t}_i \rVert} - \frac{1}{I}
            \sum_j \frac{\mathbf{t}_j}{\lVert \mathbf{t}_j \rVert}, \qquad
            a_{ui} = \cos\Big(\sum_{j \in \mathcal{I}_u} \mathbf{c}_j
            \;[-\, \mathbf{c}_i], \; \mathbf{c}_i\Big)

        over the model's text vectors :math:`\mathbf{t}` (the fine-tuned encoder's while it
        trains, with ``text.finetune_layers``) and the training history
        :math:`\mathcal{I}_u`; centring takes out what every item's text shares. ``own``: each
        pair is a training interaction, whose item leaves the user's sum (:math:`-\mathbf{c}_i`),
        so the tower does not learn from an item's likeness to itself; 0 for a user with no other
        training item. ``profiles``: :meth:`text_profiles`, computed here when not given (a
        training step shares one between its interactions and its negatives)."""
        centred, sums = self.text_profiles() if profiles is None else profiles
        user_side = sums[users] - centred[items] if own else sums[users]  # (B, t)
        return F.cosine_similarity(user_side, centred[items], dim=1)

    def fuse_cold_items(self, text: Tensor | None, graph: Tensor | None = None) -> Tensor:
        r"""Fused vectors :math:`\mathbf{h}_i` ``(n, d)`` (before the trunk) of items without an ID
        embedding, from their text vectors ``(n, t)`` and/or graph vectors ``(n, d)`` (see
        :meth:`encode_graph`)."""
        if text is None and graph is None:
            raise ValueError("fuse_cold_items: give text and/or graph vectors")
        if text is not None and self.text_adaptor is None:
            raise ValueError("fuse_cold_items: this model does not use text (model.use_text)")
        if graph is not None and not self.config.use_graph:
            raise ValueError("fuse_cold_items: this model does not use graph vectors (model.use_graph)")
        return self.item_fusion(id_emb=None, text=self._adapted_text(text) if text is not None else None, graph=graph)

    def cold_item_vectors(self, text: Tensor | None, graph: Tensor | None = None) -> Tensor:
        """Retrieval-space vectors ``(n, d)`` of items without an ID embedding, from their text
        vectors ``(n, t)`` and/or graph vectors ``(n, d)`` (see :meth:`encode_graph`)."""
        return self.fused_item_vectors(self.fuse_cold_items(text, graph))

    def fused_item_vectors(self, fused: Tensor) -> Tensor:
        """Retrieval-space vectors ``(n, d)`` of items with fused vectors ``fused`` ``(n, d)``
        (rows of ``encode().items`` or of :meth:`fuse_cold_items`) through the item trunk."""
        tower = self._retrieval()
        return tower.item_vectors(self.item_trunk(fused)["retrieval"])  # type: ignore[misc]

    def predict_cold(
        self, users: Tensor, fused: Tensor, text: Tensor | None = None, encoded: Encoded | None = None
    ) -> dict[str, Tensor]:
        r"""What the rating and like towers say of user ``users[b]`` and an item without an ID
        embedding (one added after training) whose fused vector is ``fused[b]`` ``(B, d)``
        (:meth:`fuse_cold_items`): ``{"rating": (B,), "like": (B,)}``, one key per tower the
        model has. The item has no trained bias and no training ratings, so :math:`b_i = 0` and
        the rating tower's AutoRec term is 0 (what it is for any item without ratings); with
        ``model.like_text_affinity`` the like tower reads :meth:`text_affinity` of the item's
        text vector ``text[b]`` ``(B, t)``, centred by the training items' mean, as a trained
        item's is. Users are checked as :meth:`predict_rating` checks them."""
        if not self.config.rec_tasks or self.item_trunk is None:
            raise ValueError("this model has no recommendation task (only 'kg')")
        users = self._users(users)
        if fused.dim() != 2 or fused.size(0) != users.numel():
            raise ValueError(f"fused: expected ({users.numel()}, d), one row per user, got {tuple(fused.shape)}")
        enc = self.encode() if encoded is None else encoded
        z_u, z_i = self._user_repr(users, enc), self.item_trunk(fused)
        out: dict[str, Tensor] = {}
        if "rating" in self.towers:
            out["rating"] = self.towers["rating"].predict(z_u["rating"], z_i["rating"], users, None)
        if "like" in self.towers:
            affinity = None
            if self.config.like_text_affinity:
                if text is None:
                    raise ValueError("text: the like tower's text affinity (model.like_text_affinity) needs the items' text vectors")
                centred, sums = self.text_profiles()
                unit = F.normalize(text.to(centred.device).float(), dim=1)
                own = unit - F.normalize(self.text.float(), dim=1).mean(0, keepdim=True)  # type: ignore[union-attr]
                affinity = F.cosine_similarity(sums[users], own, dim=1)
            out["like"] = self.towers["like"].predict(z_u["like"], z_i["like"], users, None, affinity=affinity)
        return out

    def new_user_vector(self, liked: Tensor, prior: HistoryPrior | None = None) -> Tensor:
        """Retrieval-space vector ``(1, d)`` of a user unknown at training time whose history is
        the items with fused vectors ``liked`` ``(n, d)`` (rows of ``encode().items`` or of
        :meth:`fuse_cold_items`); :meth:`new_user_vectors` of one user."""
        if liked.size(0) == 0:
            raise ValueError("new_user_vector: give at least one liked item")
        return self.new_user_vectors(liked.sum(0, keepdim=True), liked.new_full((1,), liked.size(0)), prior)

    def new_user_vectors(self, sums: Tensor, counts: Tensor, prior: HistoryPrior | None = None) -> Tensor:
        r"""Retrieval-space vectors ``(B, d)`` of users unknown at training time, from the sums
        ``(B, d)`` of their liked items' fused vectors and how many items each liked ``(B,)``:
        the ``history`` user part through the user trunk (a new user has no ID or graph vector,
        so those parts are zero), with the history part

        .. math::
            \mathbf{h}_u = \frac{\sum_{i \in L_u} \mathbf{h}_i + k\, \bar{\mathbf{h}}}{|L_u| + k}

        shrunk toward the mean training user's :math:`\bar{\mathbf{h}}` (:meth:`mean_history`)
        with the weight :math:`k` of ``prior``, or the plain mean (:math:`k = 0`) without it."""
        if "history" not in self.config.user_parts:
            raise ValueError("new_user_vector: the model has no history user part (model.user_encoder)")
        tower = self._retrieval()
        if bool((counts < 1).any()):
            raise ValueError("new_user_vectors: every user needs at least one liked item")
        counts = counts.to(sums.dtype)[:, None]
        if prior is None:
            h = sums / counts
        elif math.isinf(prior.weight):
            h = prior.mean.to(sums.dtype).expand_as(sums)
        else:
            h = (sums + prior.weight * prior.mean.to(sums.dtype)) / (counts + prior.weight)
        z = self.user_trunk(h)["retrieval"]  # type: ignore[misc]
        return tower.user_vectors(z)

    def mean_history(self, encoded: Encoded | None = None) -> Tensor:
        r"""The mean training user's history part ``(1, d)``, what a new user's history is shrunk
        toward (:meth:`new_user_vectors`): :math:`\bar{\mathbf{h}} = \frac{1}{U} \sum_u
        \frac{1}{n_u} \sum_{i \in \mathcal{I}_u} \mathbf{h}_i` over the :math:`U` users with
        training items (a ``ValueError`` when there are none: the mean of nothing is NaN), in the
        items' dtype, float32 at least."""
        if "history" not in self.config.user_parts:
            raise ValueError("mean_history: the model has no history user part (model.user_encoder)")
        history = self._history()
        if history is None:
            raise ValueError("mean_history needs side input 'history': call model.attach(SideInputs(history=...))")
        items = at_least_fp32((self.encode() if encoded is None else encoded).items)  # (I, d)
        counts = history.csr.crow_indices().diff()  # (U,) n_u
        if not bool((counts > 0).any()):
            raise ValueError("mean_history: no user has a training item in the history side input")
        return (history @ items)[counts > 0].mean(0, keepdim=True)  # rows of a mean-normalised history

    # ------------------------------------------------------------------ parameter groups
    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        """Parameters only ``task`` uses: its trunk branches (both sides) and its tower."""
        if task not in self.config.tasks:
            raise KeyError(f"task: expected one of {list(self.config.tasks)}, got {task!r}")
        if task in REC_TASKS:
            yield from self.user_trunk.task_parameters(task)
            yield from self.item_trunk.task_parameters(task)
        yield from self.towers[task].parameters()

    def loss_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the loss weighting (uncertainty :math:`s_m`, GradNorm :math:`w_m`)."""
        return self.joint_loss.parameters()

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter that is neither a task's nor the loss weighting's (embeddings, graph
        encoder, text adaptor, fusion, shared trunk parts)."""
        exclude = {id(p) for t in self.config.tasks for p in self.task_parameters(t)}
        exclude |= {id(p) for p in self.loss_parameters()}
        for p in self.parameters():
            if id(p) not in exclude:
                yield p

    def extra_repr(self) -> str:
        s = self.sizes
        return f"users={s.num_users}, items={s.num_items}, nodes={s.num_nodes}, tasks={list(self.config.tasks)}"
