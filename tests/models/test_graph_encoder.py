from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import RGCNConv
from torch_geometric.utils import softmax

from kgrec.models import CompGCNLayer, KGATLayer, RelationalAdjacency, RelationalGraphEncoder, RGCNLayer

from .conftest import N_NODES, N_REL


@pytest.mark.parametrize("num_bases", [None, 2])
def test_rgcn_layer_matches_pyg_rgcnconv(graph, num_bases) -> None:
    edge_index, edge_type = graph
    x = torch.randn(N_NODES, 5)
    ours = RGCNLayer(5, 3, N_REL, num_bases=num_bases)
    ref = RGCNConv(5, 3, N_REL, num_bases=num_bases, aggr="mean")
    with torch.no_grad():
        ref.weight.copy_(ours.weight)
        if num_bases is not None:
            ref.comp.copy_(ours.comp)
        ref.root.copy_(ours.root)
        ours.bias.normal_()
        ref.bias.copy_(ours.bias)
    adj = RelationalAdjacency(edge_index, edge_type, N_NODES, N_REL)
    torch.testing.assert_close(ours(x, adj), ref(x, edge_index, edge_type), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("composition", ["sub", "mult"])
def test_compgcn_layer_matches_edgewise_formula(graph, composition) -> None:
    edge_index, edge_type = graph
    # forward relations 0..3 plus their inverses 4..7
    ei = torch.cat([edge_index, edge_index.flip(0)], 1)
    et = torch.cat([edge_type, edge_type + N_REL])
    layer = CompGCNLayer(5, 3, 2 * N_REL, composition=composition, num_forward=N_REL)
    with torch.no_grad():
        layer.bias.normal_()
    x, rel = torch.randn(N_NODES, 5), torch.randn(2 * N_REL, 5)
    out, rel_out = layer(x, rel, RelationalAdjacency(ei, et, N_NODES, 2 * N_REL))

    deg = torch.bincount(ei[1], minlength=N_NODES).clamp(min=1).float()
    expected = layer.w_self(layer.compose(x, layer.loop_rel)) + layer.bias
    for (j, i), r in zip(ei.T.tolist(), et.tolist(), strict=True):
        w = layer.w_out if r < N_REL else layer.w_in
        msg = w(layer.compose(x[j], rel[r])) / (deg[i] * deg[j]).sqrt()
        expected = expected.index_add(0, torch.tensor([i]), msg.unsqueeze(0))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rel_out, layer.w_rel(rel))


def test_kgat_layer_matches_edgewise_formula(graph) -> None:
    edge_index, edge_type = graph
    layer = KGATLayer(5, 3, N_REL, relation_channels=4)
    x = torch.randn(N_NODES, 5)
    adj = RelationalAdjacency(edge_index, edge_type, N_NODES, N_REL)
    out = layer(x, adj)

    w, e = layer.rel_weight, layer.rel_embedding
    logits = torch.stack([(x[j] @ w[r]) @ torch.tanh(x[i] @ w[r] + e[r]) for (j, i), r in zip(edge_index.T.tolist(), edge_type.tolist(), strict=True)])
    neighbours = torch.zeros_like(x)
    attention = torch.zeros(len(logits))
    for i in range(N_NODES):
        incoming = edge_index[1] == i
        if incoming.any():
            attention[incoming] = torch.softmax(logits[incoming], 0)
            neighbours[i] = attention[incoming] @ x[edge_index[0, incoming]]
    leaky = torch.nn.functional.leaky_relu
    expected = leaky(layer.w_sum(x + neighbours)) + leaky(layer.w_product(x * neighbours))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer.attention(x, adj), attention.detach(), rtol=1e-5, atol=1e-6)  # per edge, in order


def test_the_grouped_softmax_sums_to_one_per_group_and_survives_large_logits() -> None:
    logits = torch.tensor([1000.0, 999.0, -5.0, 3.0, 3.0])
    groups = torch.tensor([0, 0, 2, 1, 1])
    weights = softmax(logits, groups, num_nodes=4)  # PyG's grouped softmax, which KGATLayer.attention uses
    assert torch.isfinite(weights).all()
    torch.testing.assert_close(weights, torch.tensor([1 / (1 + torch.e**-1), 1 / (1 + torch.e), 1.0, 0.5, 0.5]))


@pytest.mark.parametrize(("kind", "composition"), [("rgcn", "mult"), ("compgcn", "sub"), ("compgcn", "mult"), ("kgat", "mult")])
def test_encoder_gives_one_vector_per_node_with_finite_gradients(graph, kind, composition) -> None:
    enc = RelationalGraphEncoder(N_NODES, N_REL, dim=8, num_layers=2, kind=kind, num_bases=3,
                                 composition=composition, dropout=0.1)
    out = enc(*graph)
    assert out.shape == (N_NODES, 8)
    out.square().sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_kgat_encoder_attention_is_each_layers_attention_averaged_over_the_layers(graph) -> None:
    enc = RelationalGraphEncoder(N_NODES, N_REL, dim=8, num_layers=2, kind="kgat")
    edges, alpha = enc.attention(*graph)
    adj = enc.prepare(*graph)
    assert edges.shape == (2, 2 * graph[1].numel()) and alpha.shape == (2 * graph[1].numel(),)  # inverses included
    torch.testing.assert_close(edges, torch.stack([adj.edge_src, adj.edge_dst]))
    h0 = enc.embedding.weight.detach()
    first = enc.layers[0].attention(h0, adj)
    second = enc.layers[1].attention(enc.layers[0](h0, adj), adj)
    torch.testing.assert_close(alpha, (first + second) / 2)
    per_node = torch.zeros(N_NODES).index_add_(0, edges[1], alpha)  # each node's incoming weights sum to 1
    torch.testing.assert_close(per_node[torch.unique(edges[1])], torch.ones(len(torch.unique(edges[1]))))
    with pytest.raises(ValueError, match="kind='kgat' encoder with layers has attention, this one is 'rgcn'"):
        RelationalGraphEncoder(N_NODES, N_REL, dim=8).attention(*graph)


def test_encoder_builds_the_adjacency_once_per_graph(graph) -> None:
    enc = RelationalGraphEncoder(N_NODES, N_REL, dim=8)
    adj = enc.prepare(*graph)
    enc(*graph)
    assert enc.prepare(*graph) is adj
    edge_index = graph[0].clone()
    assert enc.prepare(edge_index, graph[1]) is not adj  # another tensor: rebuilt
    assert adj.num_relations == 2 * N_REL  # inverses added


@pytest.mark.parametrize("kind", ["rgcn", "compgcn", "kgat"])
def test_new_nodes_get_vectors_from_their_neighbours(graph, kind) -> None:
    edge_index, edge_type = graph
    enc = RelationalGraphEncoder(N_NODES, N_REL, dim=8, kind=kind).eval()
    new = N_NODES  # a new item node linked to entity 6 with relation 0
    ei = torch.cat([edge_index, torch.tensor([[new], [6]])], 1)
    et = torch.cat([edge_type, torch.tensor([0])])
    out = enc(ei, et, x=enc.extended_embeddings(1))
    assert out.shape == (N_NODES + 1, 8)
    assert out[new].abs().sum() > 0


def test_encoder_rejects_out_of_range_relations(graph) -> None:
    enc = RelationalGraphEncoder(N_NODES, N_REL, dim=8)
    with pytest.raises(ValueError, match="edge_type"):
        enc(graph[0], graph[1] + N_REL)


def test_repr_names_kind_and_sizes() -> None:
    enc = RelationalGraphEncoder(N_NODES, N_REL, dim=8, kind="compgcn")
    assert "compgcn" in repr(enc) and f"num_nodes={N_NODES}" in repr(enc)
    assert "num_bases=" in repr(RGCNLayer(4, 4, 3, num_bases=2))
