"""Relational graph encoder: learned node embeddings refined by R-GCN, CompGCN or KGAT layers.

The knowledge graph numbers its nodes so that ``0 .. n_items-1`` are the items, then the other
entities, then (optionally) the users. The encoder knows nothing of that: it maps a
multi-relational graph (``edge_index`` ``(2, E)``, ``edge_type`` ``(E,)``) to one vector per node.

R-GCN and CompGCN aggregate over **(node, relation) pairs** first and transform afterwards. For each
target node ``i`` and relation ``r`` with at least one edge ``j -r-> i``, a constant sparse
operator (values fixed by the graph) pools the neighbours' features into one row; only those
``P <= E`` rows are then transformed relation by relation. The result is exactly the layer's
formula (both are linear in the neighbour features for a fixed relation), but the learned
transform runs on ``P`` rows instead of ``E`` messages or ``|R| * N`` nodes. On ml-100k with
inverse and user edges (N = 35.7k, E = 343k, P = 70k, |R| = 50, d = 64) two R-GCN layers take
0.15 s forward + backward on 2 CPU cores against 1.7 s for PyG's ``RGCNConv`` (a loop over
relations, each transforming all N nodes); ``FastRGCNConv`` materialises an ``(E, d, d)``
weight tensor (3.3 GB here). On a random graph of the same size (P close to E) the gain is 4x.

KGAT's attention weighs each edge by both of its ends, so its layer works per edge (an ``(E,)``
softmax and an ``(E, d)`` message); its relation transforms still run once per (node, relation)
pair on either side.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.models._sparse import SparseOperator, product_dtype

Norm = Literal["mean", "sym"]


class RelationalAdjacency:
    r"""Precomputed (node, relation) pair structure of a multi-relational graph.

    For every pair :math:`p = (i, r)` with :math:`\mathcal{N}_r(i) \neq \emptyset` it stores the
    target ``pair_dst[p] = i`` and relation ``pair_rel[p] = r``; pairs are sorted by relation,
    so the pairs of relation ``r`` are one contiguous block of ``rel_sizes[r]`` rows. It also
    builds the constant pooling operators

    .. math::
        \texttt{mean}:\ \mathbf{m}_p = \frac{1}{|\mathcal{N}_r(i)|}
            \sum_{j \in \mathcal{N}_r(i)} \mathbf{x}_j, \qquad
        \texttt{sym}:\ \mathbf{m}_p = \sum_{j \in \mathcal{N}_r(i)}
            \frac{\mathbf{x}_j}{\sqrt{\deg(i)\,\deg(j)}}

    with :math:`\deg` the in-degree over all relations (clamped to at least 1).

    Build it once per graph (the encoder caches it); it is not a module and holds no parameters.

    Args:
        edge_index: ``(2, E)`` int64 ``[source; target]`` node ids (messages flow source -> target).
        edge_type: ``(E,)`` int64 relation ids in ``[0, num_relations)``.
        num_nodes: number of nodes ``N``; ids must be in ``[0, N)``.
        num_relations: number of relations ``|R|``.
    """

    def __init__(self, edge_index: Tensor, edge_type: Tensor, num_nodes: int, num_relations: int) -> None:
        _check_graph(edge_index, edge_type, num_nodes, num_relations)
        self.num_nodes = int(num_nodes)
        self.num_relations = int(num_relations)
        self.num_edges = int(edge_type.numel())
        if edge_index.is_inference() and not torch.is_inference_mode_enabled():
            edge_index = edge_index.clone()  # a normal tensor: autograd cannot save inference tensors
        src, dst = edge_index[0], edge_index[1]
        key = edge_type * self.num_nodes + dst  # relation-major, so unique() sorts by relation
        pairs, edge_pair, counts = torch.unique(key, sorted=True, return_inverse=True, return_counts=True)
        self.pair_rel = pairs // self.num_nodes  # (P,)
        self.pair_dst = pairs % self.num_nodes  # (P,)
        self.pair_count = counts  # (P,) |N_r(i)|
        self.rel_sizes: list[int] = torch.bincount(self.pair_rel, minlength=self.num_relations).tolist()
        self._src = src
        self._dst = dst
        self._edge_pair = edge_pair  # (E,) pair of each edge
        self._ops: dict[tuple[str, torch.dtype], SparseOperator] = {}
        self._row_sums: dict[tuple[str, torch.dtype], Tensor] = {}
        self._source_pairs: tuple[Tensor, list[int], Tensor] | None = None

    @property
    def num_pairs(self) -> int:
        return int(self.pair_dst.numel())

    @property
    def device(self) -> torch.device:
        return self.pair_dst.device

    @property
    def edge_pair(self) -> Tensor:
        """``(E,)`` the (target, relation) pair of each edge."""
        return self._edge_pair

    def _edge_values(self, norm: Norm, dtype: torch.dtype) -> Tensor:
        """``(E,)`` the pooling weight of each edge, computed in ``dtype`` (float64 stays exact)."""
        if norm == "mean":
            return 1.0 / self.pair_count[self._edge_pair].to(dtype)
        if norm == "sym":
            deg = torch.bincount(self._dst, minlength=self.num_nodes).clamp(min=1).to(dtype)
            return (deg[self._dst] * deg[self._src]).rsqrt()
        raise ValueError(f"norm: expected 'mean' or 'sym', got {norm!r}")

    def operator(self, norm: Norm = "mean", dtype: torch.dtype = torch.float32) -> SparseOperator:
        """The ``(P, N)`` pooling operator for ``norm`` (built once per dtype, then cached; half
        precision shares the fp32 one, see :func:`~kgrec.models._sparse.product_dtype`)."""
        dtype = product_dtype(dtype)
        key = (norm, dtype)
        if key not in self._ops:
            values = self._edge_values(norm, dtype)
            self._ops[key] = SparseOperator(
                torch.stack([self._edge_pair, self._src]), values, (self.num_pairs, self.num_nodes)
            )
            self._row_sums[key] = torch.zeros(self.num_pairs, dtype=dtype, device=self.device).index_add_(
                0, self._edge_pair, values
            )
        return self._ops[key]

    @property
    def edge_src(self) -> Tensor:
        """``(E,)`` the source node of each edge, in the order given."""
        return self._src

    @property
    def edge_dst(self) -> Tensor:
        """``(E,)`` the target node of each edge, in the order given."""
        return self._dst

    def source_pairs(self) -> tuple[Tensor, list[int], Tensor]:
        """The (node, relation) pairs on the sending side: ``(Q,)`` source node of each
        pair :math:`(j, r)` with an edge ``j -r-> i``, sorted by relation, the number of pairs of
        each relation, and ``(E,)`` the pair of each edge (built once, then cached)."""
        if self._source_pairs is None:
            key = self.pair_rel[self._edge_pair] * self.num_nodes + self._src
            pairs, edge_pair = torch.unique(key, sorted=True, return_inverse=True)
            sizes = torch.bincount(pairs // self.num_nodes, minlength=self.num_relations).tolist()
            self._source_pairs = (pairs % self.num_nodes, sizes, edge_pair)
        return self._source_pairs

    def pool(self, x: Tensor, norm: Norm = "mean") -> Tensor:
        """``(N, d)`` node features -> ``(P, d)`` pooled neighbour features per pair."""
        return self.operator(norm, x.dtype) @ x

    def row_sums(self, norm: Norm = "mean", dtype: torch.dtype = torch.float32) -> Tensor:
        """``(P,)`` sum of the pooling weights of each pair (1 for ``mean``)."""
        self.operator(norm, dtype)
        return self._row_sums[(norm, product_dtype(dtype))]

    def __repr__(self) -> str:
        return (
            f"RelationalAdjacency(num_nodes={self.num_nodes}, num_relations={self.num_relations}, "
            f"num_edges={self.num_edges}, num_pairs={self.num_pairs})"
        )


def _check_graph(edge_index: Tensor, edge_type: Tensor, num_nodes: int, num_relations: int) -> None:
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index: expected shape (2, E), got {tuple(edge_index.shape)}")
    if edge_type.shape != (edge_index.size(1),):
        raise ValueError(f"edge_type: expected shape ({edge_index.size(1)},), got {tuple(edge_type.shape)}")
    if edge_index.dtype != torch.long or edge_type.dtype != torch.long:
        raise ValueError(
            f"edge_index and edge_type: expected int64, got {edge_index.dtype} and {edge_type.dtype}"
        )
    if edge_type.numel() == 0:
        return
    if int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes:
        raise ValueError(
            f"edge_index: node ids must be in [0, {num_nodes}), got "
            f"[{int(edge_index.min())}, {int(edge_index.max())}]"
        )
    if int(edge_type.min()) < 0 or int(edge_type.max()) >= num_relations:
        raise ValueError(
            f"edge_type: relation ids must be in [0, {num_relations}), got "
            f"[{int(edge_type.min())}, {int(edge_type.max())}]"
        )


def _version(t: Tensor) -> int | None:
    """``t``'s in-place version counter; ``None`` for an inference tensor, which has none."""
    return None if t.is_inference() else t._version


def _glorot(t: Tensor) -> None:
    """Glorot-uniform on the last two dimensions (PyG's ``glorot``)."""
    bound = (6.0 / (t.size(-2) + t.size(-1))) ** 0.5
    nn.init.uniform_(t, -bound, bound)


def _relation_blocks(pooled: Tensor, adj: RelationalAdjacency) -> tuple[Tensor, ...]:
    """Split ``(P, d)`` pair rows into one block per relation (views; cheap backward)."""
    return pooled.split(adj.rel_sizes)


class RGCNLayer(nn.Module):
    r"""The relational graph convolution of Schlichtkrull et al., `"Modeling Relational Data with
    Graph Convolutional Networks" <https://arxiv.org/abs/1703.06103>`_ (ESWC 2018):

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{\Theta}_{\textrm{root}} \mathbf{x}_i
        + \sum_{r \in \mathcal{R}} \sum_{j \in \mathcal{N}_r(i)}
        \frac{1}{|\mathcal{N}_r(i)|} \mathbf{\Theta}_r \mathbf{x}_j + \mathbf{b},
        \qquad
        \mathbf{\Theta}_r = \sum_{b=1}^{B} a_{rb} \mathbf{V}_b

    (basis decomposition when ``num_bases`` is set, else one free :math:`\mathbf{\Theta}_r` per
    relation). Same math and parameter layout as PyG's ``RGCNConv(aggr="mean")``; computed
    as :math:`\sum_{p=(i,r)} \mathbf{\Theta}_r \mathbf{m}_p` over the pooled pairs of
    :class:`RelationalAdjacency` (see the module docstring for why).

    Args:
        in_channels: input feature size.
        out_channels: output feature size.
        num_relations: number of relations :math:`|\mathcal{R}|`.
        num_bases: number of bases :math:`B`, or ``None`` for full per-relation weights.
        bias: learn the additive bias :math:`\mathbf{b}`. (default: ``True``)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_relations: int,
        num_bases: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_bases is not None and num_bases < 1:
            raise ValueError(f"num_bases: expected a positive int or None, got {num_bases}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_relations = num_relations
        self.num_bases = num_bases
        if num_bases is not None:
            self.weight = nn.Parameter(torch.empty(num_bases, in_channels, out_channels))  # V_b
            self.comp = nn.Parameter(torch.empty(num_relations, num_bases))  # a_rb
        else:
            self.weight = nn.Parameter(torch.empty(num_relations, in_channels, out_channels))
            self.register_parameter("comp", None)
        self.root = nn.Parameter(torch.empty(in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _glorot(self.weight)  # as PyG's RGCNConv: fan from the last two dims
        if self.comp is not None:
            _glorot(self.comp)
        _glorot(self.root)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def relation_weights(self) -> Tensor:
        """:math:`\\mathbf{\\Theta}_r` for every relation, ``(R, in, out)``."""
        if self.comp is None:
            return self.weight
        flat = self.comp @ self.weight.view(self.num_bases, -1)  # (R, in*out)
        return flat.view(self.num_relations, self.in_channels, self.out_channels)

    def forward(self, x: Tensor, adj: RelationalAdjacency) -> Tensor:
        """``x`` ``(N, in)`` -> ``(N, out)``."""
        if adj.num_relations != self.num_relations:
            raise ValueError(f"adj: expected {self.num_relations} relations, got {adj.num_relations}")
        pooled = adj.pool(x, "mean")  # (P, in): mean over N_r(i)
        blocks = _relation_blocks(pooled, adj)
        msgs = torch.cat([m @ w for m, w in zip(blocks, self.relation_weights().unbind(0), strict=True)])  # (P, out)
        out = x @ self.root  # (N, out)
        if self.bias is not None:
            out = out + self.bias
        return out.index_add(0, adj.pair_dst, msgs.to(out.dtype))  # bf16 autocast: dtypes may differ

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"num_relations={self.num_relations}, num_bases={self.num_bases})"
        )


class CompGCNLayer(nn.Module):
    r"""The composition-based convolution of Vashishth et al., `"Composition-based Multi-Relational
    Graph Convolutional Networks" <https://arxiv.org/abs/1911.03082>`_ (ICLR 2020):

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{W}_{S}\, \phi(\mathbf{x}_i, \mathbf{z}_{\top})
        + \sum_{(j, r) \in \mathcal{N}(i)} \frac{1}{\sqrt{\deg(i)\deg(j)}}
          \mathbf{W}_{\lambda(r)}\, \phi(\mathbf{x}_j, \mathbf{z}_r) + \mathbf{b},
        \qquad
        \mathbf{z}^{\prime}_r = \mathbf{W}_{\textrm{rel}}\, \mathbf{z}_r

    with composition :math:`\phi(\mathbf{x}, \mathbf{z}) = \mathbf{x} - \mathbf{z}` (``sub``,
    TransE-like) or :math:`\mathbf{x} \odot \mathbf{z}` (``mult``, DistMult-like), a self-loop
    relation :math:`\mathbf{z}_{\top}`, and direction-specific weights
    :math:`\mathbf{W}_{\lambda(r)}`: :math:`\mathbf{W}_O` for relations ``r < num_forward``,
    :math:`\mathbf{W}_I` for the inverse relations ``r >= num_forward``. Both compositions are
    affine in :math:`\mathbf{x}_j` for a fixed :math:`r`, so the sum is computed on the pooled
    (node, relation) pairs of :class:`RelationalAdjacency` (``sym`` norm).

    Compact variant: no batch norm, the non-linearity is applied by the encoder.

    Args:
        in_channels: input feature size (nodes and relations).
        out_channels: output feature size (nodes and relations).
        num_relations: number of relations :math:`|\mathcal{R}|` (inverses included).
        composition: ``"sub"`` or ``"mult"``. (default: ``"mult"``)
        num_forward: relations ``>= num_forward`` are inverses and use :math:`\mathbf{W}_I`;
            ``None`` means all relations use :math:`\mathbf{W}_O`. (default: ``None``)
        bias: learn the additive bias :math:`\mathbf{b}`. (default: ``True``)
        update_relations: learn :math:`\mathbf{W}_{\textrm{rel}}`; ``False`` on a last layer,
            whose relation output nobody reads (it returns ``rel`` unchanged). (default: ``True``)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_relations: int,
        composition: Literal["sub", "mult"] = "mult",
        num_forward: int | None = None,
        bias: bool = True,
        update_relations: bool = True,
    ) -> None:
        super().__init__()
        if composition not in ("sub", "mult"):
            raise ValueError(f"composition: expected 'sub' or 'mult', got {composition!r}")
        if num_forward is not None and not 0 < num_forward <= num_relations:
            raise ValueError(f"num_forward: expected an int in [1, {num_relations}] or None, got {num_forward}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_relations = num_relations
        self.composition = composition
        self.num_forward = num_relations if num_forward is None else num_forward
        self.w_out = nn.Linear(in_channels, out_channels, bias=False)  # W_O: forward relations
        self.w_in = (
            nn.Linear(in_channels, out_channels, bias=False) if self.num_forward < num_relations else None
        )  # W_I: inverse relations
        self.w_self = nn.Linear(in_channels, out_channels, bias=False)  # W_S
        self.w_rel = nn.Linear(in_channels, out_channels, bias=False) if update_relations else None
        self.loop_rel = nn.Parameter(torch.empty(1, in_channels))  # z_T
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.w_out, self.w_in, self.w_self, self.w_rel):
            if lin is not None:
                nn.init.xavier_uniform_(lin.weight)
        nn.init.xavier_uniform_(self.loop_rel)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def compose(self, x: Tensor, z: Tensor) -> Tensor:
        r""":math:`\phi(\mathbf{x}, \mathbf{z})` (broadcasting)."""
        return x - z if self.composition == "sub" else x * z

    def forward(self, x: Tensor, rel: Tensor, adj: RelationalAdjacency) -> tuple[Tensor, Tensor]:
        """``x`` ``(N, in)``, ``rel`` ``(R, in)`` -> ``(N, out)``, ``(R, out)``."""
        if adj.num_relations != self.num_relations or rel.size(0) != self.num_relations:
            raise ValueError(
                f"adj and rel: expected {self.num_relations} relations, got {adj.num_relations} and {rel.size(0)}"
            )
        pooled = adj.pool(x, "sym")  # (P, in): sum_j x_j / sqrt(deg_i deg_j)
        z = rel[adj.pair_rel]  # (P, in)
        if self.composition == "sub":  # sum_j c_ij (x_j - z_r) = m_p - (sum_j c_ij) z_r
            msgs = pooled - adj.row_sums("sym", x.dtype).unsqueeze(-1) * z
        else:  # sum_j c_ij (x_j * z_r) = m_p * z_r
            msgs = pooled * z
        n_fwd = sum(adj.rel_sizes[: self.num_forward])
        fwd, inv = msgs.split([n_fwd, msgs.size(0) - n_fwd])  # pairs are sorted by relation
        parts = [self.w_out(fwd)]
        if self.w_in is not None:
            parts.append(self.w_in(inv))
        msgs = torch.cat(parts)  # (P, out)
        out = self.w_self(self.compose(x, self.loop_rel))  # (N, out)
        if self.bias is not None:
            out = out + self.bias
        rel_out = self.w_rel(rel) if self.w_rel is not None else rel
        return out.index_add(0, adj.pair_dst, msgs.to(out.dtype)), rel_out

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"num_relations={self.num_relations}, composition={self.composition!r})"
        )


class KGATLayer(nn.Module):
    r"""The attentive embedding propagation of KGAT, Wang et al., `"KGAT: Knowledge Graph
    Attention Network for Recommendation" <https://arxiv.org/abs/1905.07854>`_ (KDD 2019):

    .. math::
        \pi(i, r, j) = (\mathbf{W}_r \mathbf{x}_j)^{\top}
            \tanh(\mathbf{W}_r \mathbf{x}_i + \mathbf{e}_r), \qquad
        \alpha_{irj} = \operatorname{softmax}_{(r, j) \in \mathcal{N}(i)} \pi(i, r, j),
        \qquad
        \mathbf{m}_i = \sum_{(r, j) \in \mathcal{N}(i)} \alpha_{irj} \mathbf{x}_j,

    .. math::
        \mathbf{x}^{\prime}_i = \mathrm{LeakyReLU}\big(\mathbf{W}_1 (\mathbf{x}_i + \mathbf{m}_i)\big)
        + \mathrm{LeakyReLU}\big(\mathbf{W}_2 (\mathbf{x}_i \odot \mathbf{m}_i)\big)

    (KGAT's bi-interaction aggregator; :math:`\mathbf{m}_i = 0` for a node without
    neighbours). A neighbour counts by how well it fits the node under the relation that joins
    them (a TransR-style score in relation ``r``'s space), so an item can listen to its
    director more than to its decade. KGAT refreshes the attention once per epoch, without
    gradients; here it is computed in the forward pass and learned end to end, as in GAT.
    :math:`\mathbf{W}_r \mathbf{x}` is computed once per (node, relation) pair on each side of
    the edges, not once per edge (:meth:`RelationalAdjacency.source_pairs`). :meth:`attention`
    returns :math:`\alpha` per edge; :meth:`RelationalGraphEncoder.attention` averages it over the
    layers for the explanations, which order shared KG neighbours by it.

    Args:
        in_channels: input feature size.
        out_channels: output feature size.
        num_relations: number of relations :math:`|\mathcal{R}|` (inverses included).
        relation_channels: size of each relation's space (:math:`\mathbf{W}_r`, :math:`\mathbf{e}_r`).
            (default: ``in_channels``)
    """

    def __init__(
        self, in_channels: int, out_channels: int, num_relations: int, relation_channels: int | None = None
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_relations = num_relations
        self.relation_channels = relation_channels or in_channels
        self.rel_weight = nn.Parameter(torch.empty(num_relations, in_channels, self.relation_channels))  # W_r
        self.rel_embedding = nn.Parameter(torch.empty(num_relations, self.relation_channels))  # e_r
        self.w_sum = nn.Linear(in_channels, out_channels)  # W_1
        self.w_product = nn.Linear(in_channels, out_channels)  # W_2
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _glorot(self.rel_weight)
        _glorot(self.rel_embedding)
        for lin in (self.w_sum, self.w_product):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def _projected(self, x: Tensor, nodes: Tensor, sizes: list[int]) -> Tensor:
        r""":math:`\mathbf{W}_r \mathbf{x}_n` for (node, relation) pairs sorted by relation."""
        blocks = x.index_select(0, nodes).split(sizes)
        return torch.cat([b @ w for b, w in zip(blocks, self.rel_weight.unbind(0), strict=True)])

    def attention(self, x: Tensor, adj: RelationalAdjacency) -> Tensor:
        r"""``(E,)`` :math:`\alpha_{irj}` of every edge ``j -r-> i`` of ``adj``, summing to 1 over
        each node's incoming edges (in float32 for half-precision ``x``, else in ``x``'s dtype)."""
        if adj.num_relations != self.num_relations:
            raise ValueError(f"adj: expected {self.num_relations} relations, got {adj.num_relations}")
        source_nodes, source_sizes, source_of_edge = adj.source_pairs()
        # index_select, not x[index]: its backward is an index_add, where x[index]'s is a slower index_put
        receiving = self._projected(x, adj.pair_dst, adj.rel_sizes) + self.rel_embedding.index_select(0, adj.pair_rel)
        sending = self._projected(x, source_nodes, source_sizes)  # (Q, r)
        logits = (sending.index_select(0, source_of_edge) * torch.tanh(receiving).index_select(0, adj.edge_pair)).sum(-1)
        from torch_geometric.utils import softmax  # here: PyG takes seconds to import, and only KGAT needs it

        logits = logits.to(product_dtype(logits.dtype))  # bf16 -> fp32; float64 stays float64
        return softmax(logits, adj.edge_dst, num_nodes=adj.num_nodes)  # (E,): over each node's incoming edges

    def forward(self, x: Tensor, adj: RelationalAdjacency) -> Tensor:
        """``x`` ``(N, in)`` -> ``(N, out)``."""
        alpha = self.attention(x, adj)
        messages = alpha.unsqueeze(-1).to(x.dtype) * x.index_select(0, adj.edge_src)  # (E, in)
        neighbours = torch.zeros_like(x).index_add(0, adj.edge_dst, messages)  # (N, in)
        return F.leaky_relu(self.w_sum(x + neighbours)) + F.leaky_relu(self.w_product(x * neighbours))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, num_relations={self.num_relations})"


class RelationalGraphEncoder(nn.Module):
    r"""Learned node embeddings refined by relational GNN layers.

    .. math::
        \mathbf{h}^{(0)} = \mathbf{E}, \qquad
        \mathbf{h}^{(l+1)} = \sigma_l\!\left(\mathrm{Conv}_l\big(\mathrm{dropout}(\mathbf{h}^{(l)})\big)\right),
        \qquad
        \mathbf{h} = \frac{1}{L+1} \sum_{l=0}^{L} \mathbf{h}^{(l)} \ \ (\texttt{combine="mean"})
        \ \text{ or } \ \mathbf{h}^{(L)} \ \ (\texttt{"last"})

    with :math:`\mathrm{Conv}_l` an :class:`RGCNLayer` (``kind="rgcn"``), a
    :class:`CompGCNLayer` (``kind="compgcn"``, which also carries relation embeddings
    :math:`\mathbf{z}^{(l)}`) or a :class:`KGATLayer` (``kind="kgat"``, whose bi-interaction
    aggregator is its own non-linearity: no :math:`\sigma_l`), :math:`\sigma_l` = ``activation``
    on every layer but the last, and
    the layer mean as in LightGCN (He et al., SIGIR 2020) / KGAT (Wang et al., KDD 2019).

    With ``add_inverse=True`` every edge ``j -r-> i`` also gets its reverse ``i -(r+R)-> j``, so
    heads hear from tails (items from their actors, users from their items). Set it to ``False``
    when the graph was built with inverses already.

    Args:
        num_nodes: number of nodes :math:`N` (one learned embedding each).
        num_relations: number of relations :math:`R` in ``edge_type`` (before inverses).
        dim: embedding and hidden size. (default: ``64``)
        num_layers: number of GNN layers :math:`L`. (default: ``2``)
        kind: ``"rgcn"``, ``"compgcn"`` or ``"kgat"``. (default: ``"rgcn"``)
        num_bases: R-GCN basis count, ``None`` for full per-relation weights. (default: ``8``)
        composition: CompGCN composition, ``"sub"`` or ``"mult"``. (default: ``"mult"``)
        dropout: dropout on each layer's input (training only). (default: ``0.0``)
        add_inverse: add reversed edges with relation ``r + R``. (default: ``True``)
        combine: ``"mean"`` or ``"last"``. (default: ``"mean"``)
        activation: ``"tanh"``, ``"relu"``, ``"leaky_relu"`` or ``"none"``. (default: ``"tanh"``)
        init_std: std of the normal init of node embeddings. (default: ``0.1``)
    """

    def __init__(
        self,
        num_nodes: int,
        num_relations: int,
        dim: int = 64,
        num_layers: int = 2,
        kind: Literal["rgcn", "compgcn", "kgat"] = "rgcn",
        num_bases: int | None = 8,
        composition: Literal["sub", "mult"] = "mult",
        dropout: float = 0.0,
        add_inverse: bool = True,
        combine: Literal["mean", "last"] = "mean",
        activation: Literal["tanh", "relu", "leaky_relu", "none"] = "tanh",
        init_std: float = 0.1,
    ) -> None:
        super().__init__()
        if kind not in ("rgcn", "compgcn", "kgat"):
            raise ValueError(f"kind: expected 'rgcn', 'compgcn' or 'kgat', got {kind!r}")
        if combine not in ("mean", "last"):
            raise ValueError(f"combine: expected 'mean' or 'last', got {combine!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if num_nodes < 1 or num_relations < 1 or num_layers < 0:
            raise ValueError(
                f"num_nodes, num_relations >= 1 and num_layers >= 0 expected, got "
                f"{num_nodes}, {num_relations}, {num_layers}"
            )
        self.num_nodes = num_nodes
        self.num_relations = num_relations
        self.dim = dim
        self.num_layers = num_layers
        self.kind = kind
        self.dropout = dropout
        self.add_inverse = add_inverse
        self.combine = combine
        self.activation = activation
        self.init_std = init_std
        total_rel = 2 * num_relations if add_inverse else num_relations
        self.total_relations = total_rel
        if num_bases is not None and num_bases >= total_rel:
            num_bases = None  # more bases than relations: plain per-relation weights
        self.num_bases = num_bases

        self.embedding = nn.Embedding(num_nodes, dim)
        self.layers = nn.ModuleList()
        for k in range(num_layers):
            if kind == "rgcn":
                self.layers.append(RGCNLayer(dim, dim, total_rel, num_bases=num_bases))
            elif kind == "kgat":
                self.layers.append(KGATLayer(dim, dim, total_rel))
            else:
                self.layers.append(
                    CompGCNLayer(
                        dim, dim, total_rel, composition=composition,
                        num_forward=num_relations if add_inverse else None,
                        update_relations=k < num_layers - 1,
                    )
                )
        if kind == "compgcn" and num_layers > 0:
            self.relation_embedding = nn.Parameter(torch.empty(total_rel, dim))  # z^(0)
        else:
            self.register_parameter("relation_embedding", None)
        self._adj_key: tuple | None = None  # (edge_index, edge_type, versions, num_nodes, built in inference mode)
        self._adj: RelationalAdjacency | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.init_std)
        for layer in self.layers:
            layer.reset_parameters()
        if self.relation_embedding is not None:
            nn.init.xavier_uniform_(self.relation_embedding)

    def prepare(self, edge_index: Tensor, edge_type: Tensor, num_nodes: int | None = None) -> RelationalAdjacency:
        """The :class:`RelationalAdjacency` for this graph (inverses added when configured).

        Cached on the identity (and in-place version) of ``edge_index`` / ``edge_type``, so
        calling :meth:`forward` every step with the same tensors builds it once. One built under
        ``torch.inference_mode`` is built again outside it (autograd cannot save its tensors).
        Inference tensors (made under ``torch.inference_mode``) track no version, so a graph
        of them is built again on every call.
        """
        n = self.num_nodes if num_nodes is None else int(num_nodes)
        key = self._adj_key
        versions = (_version(edge_index), _version(edge_type))
        fresh = (
            key is not None and key[0] is edge_index and key[1] is edge_type
            and None not in versions and key[2] == versions and key[3] == n
            and (not key[4] or torch.is_inference_mode_enabled())
        )
        if self._adj is None or not fresh:
            _check_graph(edge_index, edge_type, n, self.num_relations)
            edge_index_in, edge_type_in = edge_index, edge_type
            if self.add_inverse:
                edge_type_all = torch.cat([edge_type, edge_type + self.num_relations])
                edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
            else:
                edge_type_all = edge_type
            self._adj = RelationalAdjacency(edge_index, edge_type_all, n, self.total_relations)
            self._adj_key = (edge_index_in, edge_type_in, versions, n, torch.is_inference_mode_enabled())
        return self._adj

    def forward(self, edge_index: Tensor, edge_type: Tensor, x: Tensor | None = None) -> Tensor:
        """Node vectors ``(N, dim)``.

        Args:
            edge_index: ``(2, E)`` int64 ``[head; tail]``.
            edge_type: ``(E,)`` int64 in ``[0, num_relations)``.
            x: optional ``(N', dim)`` input features replacing the learned embeddings, e.g. the
                embeddings with zero rows appended for new (cold) nodes: ``N'`` may exceed
                ``num_nodes``. (default: the learned embeddings)
        """
        h = self.embedding.weight if x is None else x  # (N, d)
        if h.size(-1) != self.dim:
            raise ValueError(f"x: expected {self.dim} columns, got {h.size(-1)}")
        if not self.layers:
            return h
        adj = self.prepare(edge_index, edge_type, h.size(0))
        rel = self.relation_embedding
        outs = [h]
        for k, layer in enumerate(self.layers):
            h = F.dropout(h, self.dropout, self.training)
            if self.kind == "compgcn":
                h, rel = layer(h, rel, adj)
            else:
                h = layer(h, adj)
            if k < self.num_layers - 1 and self.kind != "kgat":
                h = _ACTIVATIONS[self.activation](h)
            outs.append(h)
        if self.combine == "last":
            return h
        return torch.stack(outs).mean(0)  # (N, d)

    @torch.no_grad()
    def attention(self, edge_index: Tensor, edge_type: Tensor) -> tuple[Tensor, Tensor]:
        r"""KGAT's attention on the graph, for explanations: ``(2, E')`` ``[source; target]`` of
        every edge the layers read (inverses included) and ``(E',)``
        :math:`\bar\alpha_{irj} = \frac{1}{L} \sum_l \alpha^{(l)}_{irj}`, each edge's
        :meth:`KGATLayer.attention` averaged over the layers (evaluated on the learned embeddings,
        without dropout): how much node ``i`` listens to ``j`` through ``r``."""
        if self.kind != "kgat" or not self.layers:
            raise ValueError(f"attention: a kind='kgat' encoder with layers has attention, this one is {self.kind!r} "
                             f"with {self.num_layers} layers")  # fmt: skip
        adj = self.prepare(edge_index, edge_type)
        h = self.embedding.weight
        total = torch.zeros(adj.num_edges, dtype=product_dtype(h.dtype), device=h.device)
        for layer in self.layers:
            total += layer.attention(h, adj)
            h = layer(h, adj)
        return torch.stack([adj.edge_src, adj.edge_dst]), total / len(self.layers)

    def extended_embeddings(self, num_new: int) -> Tensor:
        """The learned embeddings with ``num_new`` zero rows appended, ``(N + num_new, dim)``:
        pass as ``x`` to encode new nodes from their neighbours only."""
        w = self.embedding.weight
        return torch.cat([w, w.new_zeros(num_new, self.dim)])

    def embeddings_without(self, keep: Tensor) -> Tensor:
        """The learned embeddings with the first ``len(keep)`` rows zeroed where ``keep`` (bool) is
        ``False``, ``(N, dim)``: pass as ``x`` to encode those nodes from their neighbours only, as
        new nodes are. Gradients reach only the kept rows."""
        w = self.embedding.weight
        k = keep.numel()
        return torch.cat([w[:k] * keep.unsqueeze(-1).to(w.dtype), w[k:]])

    def extra_repr(self) -> str:
        return (
            f"num_nodes={self.num_nodes}, num_relations={self.num_relations}, dim={self.dim}, "
            f"kind={self.kind!r}, num_layers={self.num_layers}, add_inverse={self.add_inverse}, "
            f"combine={self.combine!r}, dropout={self.dropout}"
        )


_ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "none": lambda t: t,
}
