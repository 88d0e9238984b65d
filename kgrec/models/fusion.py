"""Item and user representations: text adaptor, item fusion with ID dropout, user encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.models._sparse import SparseOperator, product_dtype
from kgrec.models.config import USER_PARTS

ITEM_MODALITIES = ("id", "text", "graph")


def drops_ids(p: float, training: bool) -> bool:
    """Whether ID dropout of probability ``p`` drops IDs now: while training when ``p > 0``, and at
    ``p = 1`` always, since an ID that never trained is never used (after training it had entered
    every prediction at its random start)."""
    return p >= 1.0 or (training and p > 0)


class MoEAdaptor(nn.Module):
    r"""Mixture-of-experts adaptor over frozen text vectors, from Hou et al., `"Towards Universal
    Sequence Representation Learning for Recommender Systems" <https://arxiv.org/abs/2206.05941>`_
    (UniSRec, KDD 2022):

    .. math::
        \tilde{\mathbf{x}}_k = (\mathrm{dropout}(\mathbf{x}) - \mathbf{b}_k)\,\mathbf{W}_k, \qquad
        \mathbf{g} = \mathrm{softmax}\!\big(\mathbf{x} \mathbf{W}_g
            + \boldsymbol{\epsilon} \odot (\mathrm{softplus}(\mathbf{x} \mathbf{W}_n) + 10^{-2})\big),
        \qquad
        \mathbf{v} = \sum_{k=1}^{K} g_k \tilde{\mathbf{x}}_k

    Each expert is a parametric whitening (learned centre :math:`\mathbf{b}_k`, projection
    :math:`\mathbf{W}_k`); :math:`\boldsymbol{\epsilon} \sim \mathcal{N}(0, \mathbf{I})` is added
    to the gate logits during training only (``noisy_gating``).

    Args:
        in_dim: text vector size :math:`t` (e.g. 384 for MiniLM).
        out_dim: output size :math:`d`.
        num_experts: :math:`K`. (default: ``8``)
        dropout: dropout on the text vector (training only). (default: ``0.2``)
        noisy_gating: add gate noise while training. (default: ``True``)
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_experts: int = 8,
        dropout: float = 0.2,
        noisy_gating: bool = True,
    ) -> None:
        super().__init__()
        if num_experts < 1:
            raise ValueError(f"num_experts: expected >= 1, got {num_experts}")
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.num_experts = num_experts
        self.dropout = dropout
        self.noisy_gating = noisy_gating
        self.centers = nn.Parameter(torch.empty(num_experts, in_dim))  # b_k
        self.weight = nn.Parameter(torch.empty(num_experts, in_dim, out_dim))  # W_k
        self.gate = nn.Parameter(torch.empty(in_dim, num_experts))  # W_g
        self.noise = nn.Parameter(torch.empty(in_dim, num_experts)) if noisy_gating else None  # W_n
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.centers)
        nn.init.normal_(self.weight, std=0.02)  # as UniSRec's PWLayer
        nn.init.zeros_(self.gate)
        if self.noise is not None:
            nn.init.zeros_(self.noise)

    def gates(self, x: Tensor) -> Tensor:
        """Expert weights :math:`\\mathbf{g}`, ``(n, K)``."""
        logits = x @ self.gate  # (n, K)
        if self.noise is not None and self.training:
            std = F.softplus(x @ self.noise) + 1e-2
            logits = logits + torch.randn_like(logits) * std
        return logits.softmax(-1)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``(n, t)`` -> ``(n, d)``."""
        g = self.gates(x)  # (n, K)
        xd = F.dropout(x, self.dropout, self.training)
        experts = torch.einsum("nkt,ktd->nkd", xd.unsqueeze(1) - self.centers, self.weight)  # (n, K, d)
        return (g.unsqueeze(-1) * experts).sum(1)  # (n, d)

    def extra_repr(self) -> str:
        return f"{self.in_dim}, {self.out_dim}, num_experts={self.num_experts}, dropout={self.dropout}"


class ItemFusion(nn.Module):
    r"""Combines an item's ID embedding, adapted text vector and graph vector into one vector.

    With :math:`\mathcal{M}_i` the modalities available for item :math:`i` (its ID embedding
    :math:`\mathbf{e}_i` is absent for a cold item, and dropped with probability :math:`p` while
    training -- *ID dropout*, so the model also learns to represent items from content alone):

    .. math::
        \texttt{gate}:\ \mathbf{h}_i = \sum_{m \in \mathcal{M}_i} \alpha_{im} \mathbf{v}_{im},
        \quad \boldsymbol{\alpha}_i = \mathrm{softmax}_{m \in \mathcal{M}_i}
        \big(\mathbf{W}_g [\mathbf{v}_{i1}; \dots; \mathbf{v}_{iM}] + \mathbf{c}\big)

    .. math::
        \texttt{concat}:\ \mathbf{h}_i = \mathbf{W} [\mathbf{v}_{i1}; \dots; \mathbf{v}_{iM}] + \mathbf{c},
        \qquad
        \texttt{sum}:\ \mathbf{h}_i = \sum_{m \in \mathcal{M}_i} \mathbf{v}_{im}

    where an absent modality enters the concatenations as zeros. The gate is a per-item scalar
    weight per modality (readable as "how much of this item comes from text"). With a single
    modality the fusion is the identity and has no parameters. ID dropout follows DropoutNet
    (Volkovs et al., NeurIPS 2017).

    Args:
        dim: size :math:`d` of every input vector and of the output.
        modalities: the inputs used, a subset of ``("id", "text", "graph")`` in that order.
        kind: ``"gate"``, ``"concat"`` or ``"sum"``. (default: ``"gate"``)
        id_dropout: probability :math:`p` of dropping an item's ID embedding while training;
            at :math:`p = 1` the ID embedding never trains, so it is left out after training too.
            (default: ``0.0``)
    """

    def __init__(
        self,
        dim: int,
        modalities: Sequence[str] = ITEM_MODALITIES,
        kind: Literal["gate", "concat", "sum"] = "gate",
        id_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        mods = tuple(m for m in ITEM_MODALITIES if m in modalities)
        if not mods or len(mods) != len(tuple(modalities)):
            raise ValueError(f"modalities: expected a non-empty subset of {ITEM_MODALITIES}, got {modalities!r}")
        if kind not in ("gate", "concat", "sum"):
            raise ValueError(f"kind: expected 'gate', 'concat' or 'sum', got {kind!r}")
        if not 0.0 <= id_dropout <= 1.0:
            raise ValueError(f"id_dropout: expected a probability in [0, 1], got {id_dropout}")
        if id_dropout > 0 and (mods == ("id",) or "id" not in mods):
            raise ValueError(
                f"id_dropout={id_dropout} needs the 'id' modality and at least one other "
                f"(text or graph) to fall back on, got modalities={mods}"
            )
        self.dim = dim
        self.modalities = mods
        self.kind = kind
        self.id_dropout = id_dropout
        m = len(mods)
        self.gate = nn.Linear(m * dim, m) if kind == "gate" and m > 1 else None
        self.proj = nn.Linear(m * dim, dim) if kind == "concat" and m > 1 else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.gate is not None:  # start from the uniform mixture
            nn.init.zeros_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)
        if self.proj is not None:
            self.proj.reset_parameters()

    def id_keep_mask(self, n: int, device: torch.device | str | None = None) -> Tensor:
        """``(n,)`` bool, ``False`` for the items whose ID embedding ID dropout drops this step
        (all ``True`` outside training, all ``False`` at ``id_dropout`` 1: an ID embedding that
        never trained is never used). Pass it, and'ed with the warm items, as ``id_mask`` with
        ``drop_ids=False`` to drop the same items elsewhere too (their graph-node embeddings)."""
        if self.id_dropout >= 1.0:  # no draw: none is kept
            return torch.zeros(n, dtype=torch.bool, device=device)
        if drops_ids(self.id_dropout, self.training):
            return torch.rand(n, device=device) >= self.id_dropout
        return torch.ones(n, dtype=torch.bool, device=device)

    def _inputs(
        self,
        id_emb: Tensor | None,
        text: Tensor | None,
        graph: Tensor | None,
        id_mask: Tensor | None,
        drop_ids: bool = True,
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Per-modality vectors ``(n, d)`` (absent ones as zeros) and availability masks ``(n,)``."""
        given = {"id": id_emb, "text": text, "graph": graph}
        for name, v in given.items():
            if v is not None and name not in self.modalities:
                raise ValueError(f"{name}: this fusion was built without the {name!r} modality")
        present = [given[m] for m in self.modalities if given[m] is not None]
        if not present:
            raise ValueError(f"no input given; expected some of {self.modalities}")
        ref = present[0]
        n = ref.size(0)
        vecs: list[Tensor] = []
        masks: list[Tensor] = []
        for m in self.modalities:
            v = given[m]
            if v is None:
                vecs.append(ref.new_zeros(n, self.dim))
                masks.append(torch.zeros(n, dtype=torch.bool, device=ref.device))
                continue
            if v.shape != (n, self.dim):
                raise ValueError(f"{m}: expected shape ({n}, {self.dim}), got {tuple(v.shape)}")
            mask = torch.ones(n, dtype=torch.bool, device=v.device)
            if m == "id":
                masked = False
                if id_mask is not None:
                    if id_mask.shape != (n,):
                        raise ValueError(f"id_mask: expected shape ({n},), got {tuple(id_mask.shape)}")
                    mask, masked = id_mask.to(device=v.device, dtype=torch.bool), True
                if drop_ids and drops_ids(self.id_dropout, self.training):
                    mask, masked = mask & self.id_keep_mask(n, v.device), True
                if masked:
                    v = v * mask.unsqueeze(-1).to(v.dtype)  # dropped / missing IDs contribute zeros
            vecs.append(v)
            masks.append(mask)
        return vecs, masks

    def _alpha(self, vecs: list[Tensor], masks: list[Tensor]) -> Tensor:
        avail = torch.stack(masks, dim=-1)  # (n, M)
        logits = self.gate(torch.cat(vecs, dim=-1)).masked_fill(~avail, float("-inf"))
        return torch.nan_to_num(logits.softmax(-1), nan=0.0)  # a row with nothing available -> 0

    def forward(
        self,
        id_emb: Tensor | None = None,
        text: Tensor | None = None,
        graph: Tensor | None = None,
        id_mask: Tensor | None = None,
        drop_ids: bool = True,
    ) -> Tensor:
        """Fused item vectors ``(n, d)``.

        Args:
            id_emb: ``(n, d)`` ID embeddings, or ``None`` when no item has one (cold items).
            text: ``(n, d)`` adapted text vectors, or ``None`` when absent.
            graph: ``(n, d)`` graph vectors, or ``None`` when absent.
            id_mask: ``(n,)`` bool, ``True`` where the item has a (trained) ID embedding.
                (default: all ``True`` when ``id_emb`` is given)
            drop_ids: apply ID dropout while training; ``False`` when ``id_mask`` already holds
                a mask from :meth:`id_keep_mask`. (default: ``True``)
        """
        vecs, masks = self._inputs(id_emb, text, graph, id_mask, drop_ids)
        if len(vecs) == 1:
            return vecs[0]
        if self.kind == "sum":
            return torch.stack(vecs).sum(0)
        if self.kind == "concat":
            return self.proj(torch.cat(vecs, dim=-1))  # (n, d)
        alpha = self._alpha(vecs, masks)  # (n, M)
        return torch.einsum("nm,mnd->nd", alpha, torch.stack(vecs))  # (n, d)

    def gate_weights(
        self,
        id_emb: Tensor | None = None,
        text: Tensor | None = None,
        graph: Tensor | None = None,
        id_mask: Tensor | None = None,
    ) -> Tensor:
        """The modality weights :math:`\\boldsymbol{\\alpha}`, ``(n, M)`` in ``modalities`` order
        (``kind="gate"`` with two or more modalities only)."""
        if self.gate is None:
            raise ValueError("gate_weights: this fusion has no gate (kind != 'gate' or a single modality)")
        return self._alpha(*self._inputs(id_emb, text, graph, id_mask))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, modalities={self.modalities}, kind={self.kind!r}, id_dropout={self.id_dropout}"


def history_matrix(
    users: Tensor,
    items: Tensor,
    num_users: int,
    num_items: int,
    norm: Literal["mean", "sym", "none"] = "mean",
) -> Tensor:
    r"""The normalised user-item history matrix :math:`\mathbf{A}` (sparse COO, ``(U, I)``).

    .. math::
        \texttt{mean}: A_{ui} = \frac{1}{|\mathcal{I}_u|}, \qquad
        \texttt{sym}: A_{ui} = \frac{1}{\sqrt{|\mathcal{I}_u|\,|\mathcal{U}_i|}}, \qquad
        \texttt{none}: A_{ui} = 1

    for each (deduplicated) training interaction :math:`(u, i)`. Build it from the **training**
    split only.

    Args:
        users: ``(nnz,)`` int64 user indices.
        items: ``(nnz,)`` int64 item indices.
        num_users: :math:`U`.
        num_items: :math:`I`.
        norm: ``"mean"``, ``"sym"`` or ``"none"``. (default: ``"mean"``)
    """
    if users.shape != items.shape or users.dim() != 1:
        raise ValueError(f"users and items: expected equal 1-d shapes, got {tuple(users.shape)} and {tuple(items.shape)}")
    for name, idx, size in (("users", users, num_users), ("items", items, num_items)):
        if idx.numel() and not 0 <= int(idx.min()) <= int(idx.max()) < size:  # unchecked below
            raise ValueError(f"{name}: expected indices in [0, {size}), got [{int(idx.min())}, {int(idx.max())}]")
    ones = torch.ones(users.numel(), dtype=torch.float32, device=users.device)
    a = torch.sparse_coo_tensor(
        torch.stack([users, items]), ones, (num_users, num_items), check_invariants=False
    ).coalesce()
    idx = a.indices()
    a_vals = torch.ones(idx.size(1), dtype=torch.float32, device=users.device)  # deduplicated
    deg_u = torch.bincount(idx[0], minlength=num_users).clamp(min=1).float()
    deg_i = torch.bincount(idx[1], minlength=num_items).clamp(min=1).float()
    if norm == "mean":
        vals = a_vals / deg_u[idx[0]]
    elif norm == "sym":
        vals = a_vals / (deg_u[idx[0]] * deg_i[idx[1]]).sqrt()
    elif norm == "none":
        vals = a_vals
    else:
        raise ValueError(f"norm: expected 'mean', 'sym' or 'none', got {norm!r}")
    return torch.sparse_coo_tensor(idx, vals, (num_users, num_items), check_invariants=False).coalesce()


class UserEncoder(nn.Module):
    r"""User vectors from an ID embedding, the user's history, a graph vector and/or the
    user's features:

    .. math::
        \mathbf{h}_u = \underbrace{\mathbf{e}_u}_{\texttt{id}}
        + \underbrace{\textstyle\sum_{i} A_{ui}\, \mathbf{h}_i
            - [\![\text{exclude}]\!]\, A_{u t}\, \mathbf{h}_{t}}_{\texttt{history}}
        + \underbrace{\mathbf{g}_u}_{\texttt{graph}}
        + \underbrace{\textstyle\sum_{f} M_{uf}\, \mathbf{e}_f}_{\texttt{features}}

    summing the selected ``parts``. :math:`\mathbf{M}` averages the user's feature tokens
    (``gender=F``, ``occupation=writer``, ``age=q2/5``: :func:`~kgrec.data.features.feature_tokens`)
    and :math:`\mathbf{e}_f` is a learned vector per token, the embedding bag of a YouTube-DNN /
    DSSM user tower (Covington et al., RecSys 2016); it gives users who share features nearby
    vectors. :math:`\mathbf{A}` is a normalised history matrix
    (:func:`history_matrix`) and :math:`\mathbf{h}_i` the fused item vectors, so the history
    part is a FISM / NAIS-style item aggregate (Kabbur et al., KDD 2013) and gives vectors to
    users without a trained ID. While training, pass the target item :math:`t` as
    ``exclude_items``: its own vector is then removed from the aggregate, as in FISM, so the model
    cannot score a positive by its presence in the history (held-out items never are).

    A user the model has not seen has no ID vector, so its :math:`\mathbf{e}_u` is zero
    (:meth:`~kgrec.models.MultiTaskRecommender.new_user_vector`). With ``id_dropout``
    :math:`p > 0` training drops each row's :math:`\mathbf{e}_u` with probability :math:`p`
    (DropoutNet, Volkovs et al., NeurIPS 2017), so that the trunk also learns users made of
    their other parts alone.

    Args:
        num_users: :math:`U`.
        dim: vector size :math:`d`.
        parts: a subset of ``("id", "history", "graph", "features")``. (default: ``("id",)``)
        init_std: std of the normal init of ID and feature embeddings. (default: ``0.1``)
        num_features: feature tokens :math:`F` (``features`` part). (default: ``0``)
        id_dropout: probability :math:`p` of dropping a user's ID vector while training; needs
            the ``id`` part and another. At :math:`p = 1` the ID vector never trains, so it is
            left out after training too. (default: ``0.0``)
    """

    def __init__(
        self,
        num_users: int,
        dim: int,
        parts: Sequence[str] = ("id",),
        init_std: float = 0.1,
        num_features: int = 0,
        id_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        parts = tuple(parts)
        if not parts or any(p not in USER_PARTS for p in parts) or len(set(parts)) != len(parts):
            raise ValueError(f"parts: expected a non-empty subset of {USER_PARTS}, got {parts!r}")
        if not 0.0 <= id_dropout <= 1.0:
            raise ValueError(f"id_dropout: expected a probability in [0, 1], got {id_dropout}")
        if id_dropout > 0 and ("id" not in parts or len(parts) == 1):
            raise ValueError(f"id_dropout={id_dropout} needs the 'id' part and another to fall back on, got {parts}")
        self.id_dropout = id_dropout
        self.num_users = num_users
        self.dim = dim
        self.parts = tuple(p for p in USER_PARTS if p in parts)
        self.init_std = init_std
        if "features" in parts and num_features < 1:
            raise ValueError(f"the 'features' part needs num_features >= 1, got {num_features}")
        self.num_features = num_features if "features" in parts else 0
        self.id_embedding = nn.Embedding(num_users, dim) if "id" in parts else None
        self.feature_embedding = nn.Embedding(num_features, dim) if "features" in parts else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for emb in (self.id_embedding, self.feature_embedding):
            if emb is not None:
                nn.init.normal_(emb.weight, std=self.init_std)

    def forward(
        self,
        users: Tensor | None = None,
        item_vectors: Tensor | None = None,
        history: SparseOperator | None = None,
        graph_vectors: Tensor | None = None,
        exclude_items: Tensor | None = None,
        features: SparseOperator | None = None,
    ) -> Tensor:
        r"""User vectors ``(B, d)`` for ``users`` ``(B,)`` (all ``U`` users when ``None``).

        Args:
            users: ``(B,)`` int64 user indices, or ``None`` for every user.
            item_vectors: ``(I, d)`` item vectors (``history`` part).
            history: the ``(U, I)`` history matrix as a :class:`SparseOperator` (``history`` part).
            graph_vectors: ``(U, d)`` graph vectors of all users (``graph`` part).
            exclude_items: ``(B,)`` int64, an item per row whose own contribution is removed
                from the history aggregate (training targets). (default: ``None``)
            features: the ``(U, F)`` feature matrix :math:`\mathbf{M}` as a
                :class:`SparseOperator` (``features`` part).
        """
        out: Tensor | None = None
        if "id" in self.parts:
            emb = self.id_embedding.weight if users is None else self.id_embedding(users)
            if drops_ids(self.id_dropout, self.training):
                if self.id_dropout >= 1.0:  # no draw: none is kept (a draw in eval moved the caller's random state)
                    keep = torch.zeros(emb.size(0), 1, dtype=torch.bool, device=emb.device)
                else:
                    keep = torch.rand(emb.size(0), 1, device=emb.device) >= self.id_dropout
                emb = emb * keep.to(emb.dtype)
            out = emb
        if "history" in self.parts:
            if item_vectors is None or history is None:
                raise ValueError("the 'history' part needs item_vectors and history")
            if history.shape != (self.num_users, item_vectors.size(0)):
                raise ValueError(
                    f"history: expected shape ({self.num_users}, {item_vectors.size(0)}), got {history.shape}"
                )
            if item_vectors.shape[1:] != (self.dim,):
                raise ValueError(f"item_vectors: expected shape (I, {self.dim}), got {tuple(item_vectors.shape)}")
            vecs = item_vectors.to(product_dtype(item_vectors.dtype))  # bf16: remove the target in fp32
            agg = history @ vecs  # (U, d)
            if users is not None:
                agg = agg[users]  # (B, d)
            if exclude_items is not None:
                rows = users if users is not None else torch.arange(self.num_users, device=agg.device)
                a_ut = history.values_at(rows, exclude_items).to(agg.dtype)  # (B,)
                agg = agg - a_ut.unsqueeze(-1) * vecs[exclude_items]
            if agg.dtype != item_vectors.dtype and not torch.is_autocast_enabled(agg.device.type):
                agg = agg.to(item_vectors.dtype)  # a model held in bf16 (as SparseOperator's products)
            out = agg if out is None else out + agg
        if "graph" in self.parts:
            g = _required("graph", "graph_vectors", graph_vectors, (self.num_users, self.dim))
            g = g if users is None else g[users]
            out = g if out is None else out + g
        if "features" in self.parts:
            m = _required("features", "features", features, (self.num_users, self.num_features))
            f = m @ self.feature_embedding.weight  # (U, d)
            f = f if users is None else f[users]
            out = f if out is None else out + f
        assert out is not None
        return out

    def extra_repr(self) -> str:
        features = f", num_features={self.num_features}" if self.num_features else ""
        dropout = f", id_dropout={self.id_dropout}" if self.id_dropout else ""
        return f"num_users={self.num_users}, dim={self.dim}, parts={self.parts}{features}{dropout}"


def _required(part: str, name: str, value: Any, shape: tuple[int, int]) -> Any:
    """``value`` (a tensor or :class:`SparseOperator`), which user part ``part`` needs, checked
    to be given and of ``shape``."""
    if value is None:
        raise ValueError(f"the '{part}' part needs {name}")
    if tuple(value.shape) != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {tuple(value.shape)}")
    return value
