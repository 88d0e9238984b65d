"""Audit of the relational graph encoder against naive per-edge loops, in float64.

The graph has a duplicate edge, a self-loop, a relation without edges, a node that only sends
and an isolated node; the references below walk it edge by edge.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from kgrec.models import CompGCNLayer, KGATLayer, RelationalAdjacency, RelationalGraphEncoder, RGCNLayer

N, R = 8, 4  # relation 3 has no edge, node 7 none at all, node 6 only sends
EDGES = [(0, 1, 0), (0, 1, 0), (2, 1, 0), (3, 1, 1), (2, 2, 1), (4, 0, 2), (5, 0, 0), (6, 3, 1), (1, 4, 2), (3, 5, 0)]
F64 = {"rtol": 1e-12, "atol": 1e-12}


@pytest.fixture
def tiny() -> tuple[torch.Tensor, torch.Tensor]:
    """``(edge_index (2, E), edge_type (E,))`` of :data:`EDGES` (source, target, relation)."""
    e = torch.tensor(EDGES)
    return e[:, :2].T.contiguous(), e[:, 2].contiguous()


def _edges(edge_index: torch.Tensor, edge_type: torch.Tensor) -> list[tuple[int, int, int]]:
    return list(zip(*edge_index.tolist(), edge_type.tolist(), strict=True))


def _rows(rows: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(rows)


def _ref_pool(x, edge_index, edge_type, norm):
    """``{(i, r): m_p}`` by the docstring of RelationalAdjacency."""
    edges = _edges(edge_index, edge_type)
    deg = [max(1, sum(1 for _, i, _ in edges if i == n)) for n in range(x.size(0))]
    count: dict[tuple[int, int], int] = {}
    for _, i, r in edges:
        count[(i, r)] = count.get((i, r), 0) + 1
    pooled: dict[tuple[int, int], torch.Tensor] = {}
    for j, i, r in edges:
        c = 1.0 / count[(i, r)] if norm == "mean" else 1.0 / (deg[i] * deg[j]) ** 0.5
        pooled[(i, r)] = pooled.get((i, r), 0) + c * x[j]
    return pooled


def _ref_rgcn(layer: RGCNLayer, x, edge_index, edge_type):
    if layer.comp is None:
        theta = list(layer.weight)
    else:
        theta = [sum(layer.comp[r, b] * layer.weight[b] for b in range(layer.num_bases)) for r in range(layer.num_relations)]
    out = [x[i] @ layer.root + layer.bias for i in range(x.size(0))]
    count: dict[tuple[int, int], int] = {}
    for _, i, r in _edges(edge_index, edge_type):
        count[(i, r)] = count.get((i, r), 0) + 1
    for j, i, r in _edges(edge_index, edge_type):
        out[i] = out[i] + (x[j] @ theta[r]) / count[(i, r)]
    return _rows(out)


def _ref_compgcn(layer: CompGCNLayer, x, rel, edge_index, edge_type):
    edges = _edges(edge_index, edge_type)
    deg = [max(1, sum(1 for _, i, _ in edges if i == n)) for n in range(x.size(0))]
    out = [layer.w_self(layer.compose(x[i], layer.loop_rel[0])) + layer.bias for i in range(x.size(0))]
    for j, i, r in edges:
        w = layer.w_out if r < layer.num_forward else layer.w_in
        out[i] = out[i] + w(layer.compose(x[j], rel[r])) / (deg[i] * deg[j]) ** 0.5
    return _rows(out), layer.w_rel(rel) if layer.w_rel is not None else rel


def _ref_kgat(layer: KGATLayer, x, edge_index, edge_type):
    edges = _edges(edge_index, edge_type)
    w, e = layer.rel_weight, layer.rel_embedding
    alpha = [None] * len(edges)
    neighbours = []
    for i in range(x.size(0)):
        incoming = [k for k, (_, t, _) in enumerate(edges) if t == i]
        if not incoming:
            neighbours.append(torch.zeros_like(x[i]))
            continue
        logits = torch.stack([(x[edges[k][0]] @ w[edges[k][2]]) @ torch.tanh(x[i] @ w[edges[k][2]] + e[edges[k][2]])
                              for k in incoming])  # fmt: skip
        weights = torch.softmax(logits, 0)
        for k, a in zip(incoming, weights, strict=True):
            alpha[k] = a
        neighbours.append(sum(a * x[edges[k][0]] for k, a in zip(incoming, weights, strict=True)))
    m = _rows(neighbours)
    out = F.leaky_relu(layer.w_sum(x + m)) + F.leaky_relu(layer.w_product(x * m))
    return out, torch.stack(alpha)


def _assert_same_grads(out, ref, inputs: dict[str, torch.Tensor]) -> None:
    """The module's gradients (through its custom sparse backward) equal the loop's."""
    upstream = torch.randn_like(out)
    names = [k for k, v in inputs.items() if v.requires_grad]
    ours = torch.autograd.grad(out, [inputs[k] for k in names], upstream, allow_unused=True, retain_graph=True)
    theirs = torch.autograd.grad(ref, [inputs[k] for k in names], upstream, allow_unused=True, retain_graph=True)
    for name, a, b in zip(names, ours, theirs, strict=True):
        a = torch.zeros_like(inputs[name]) if a is None else a
        b = torch.zeros_like(inputs[name]) if b is None else b
        torch.testing.assert_close(a, b, **F64, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("norm", ["mean", "sym"])
def test_pooling_is_exact_in_float64(tiny, norm) -> None:
    """The pooling weights are computed in the features' dtype (they were float32, off by ~1e-8)."""
    x = torch.randn(N, 3, dtype=torch.float64)
    adj = RelationalAdjacency(*tiny, N, R)
    ref = _ref_pool(x, *tiny, norm)
    expected = _rows([ref[(i, r)] for i, r in zip(adj.pair_dst.tolist(), adj.pair_rel.tolist(), strict=True)])
    torch.testing.assert_close(adj.pool(x, norm), expected, **F64)
    assert adj.operator(norm, torch.float64).csr.dtype == torch.float64


@pytest.mark.parametrize("num_bases", [None, 2])
def test_rgcn_layer_matches_the_edge_loop_in_float64(tiny, num_bases) -> None:
    layer = RGCNLayer(3, 2, R, num_bases=num_bases).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(N, 3, dtype=torch.float64, requires_grad=True)
    out = layer(x, RelationalAdjacency(*tiny, N, R))
    ref = _ref_rgcn(layer, x, *tiny)
    torch.testing.assert_close(out, ref, **F64)
    _assert_same_grads(out, ref, {"x": x, **dict(layer.named_parameters())})
    torch.testing.assert_close(out[7], x[7] @ layer.root + layer.bias, **F64)  # isolated: root + bias


@pytest.mark.parametrize("composition", ["sub", "mult"])
@pytest.mark.parametrize("num_forward", [None, 2])
def test_compgcn_layer_matches_the_edge_loop_in_float64(tiny, composition, num_forward) -> None:
    layer = CompGCNLayer(3, 2, R, composition=composition, num_forward=num_forward).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(N, 3, dtype=torch.float64, requires_grad=True)
    rel = torch.randn(R, 3, dtype=torch.float64, requires_grad=True)
    out, rel_out = layer(x, rel, RelationalAdjacency(*tiny, N, R))
    ref, ref_rel = _ref_compgcn(layer, x, rel, *tiny)
    torch.testing.assert_close(out, ref, **F64)
    torch.testing.assert_close(rel_out, ref_rel, **F64)
    _assert_same_grads(out, ref, {"x": x, "rel": rel, **dict(layer.named_parameters())})


def test_kgat_layer_matches_the_edge_loop_in_float64(tiny) -> None:
    """The attention stays in float64 for float64 features (it was cast to float32)."""
    layer = KGATLayer(3, 2, R, relation_channels=4).double()
    x = torch.randn(N, 3, dtype=torch.float64, requires_grad=True)
    adj = RelationalAdjacency(*tiny, N, R)
    out = layer(x, adj)
    ref, ref_alpha = _ref_kgat(layer, x, *tiny)
    alpha = layer.attention(x, adj)
    assert alpha.dtype == torch.float64
    torch.testing.assert_close(alpha, ref_alpha, **F64)
    torch.testing.assert_close(out, ref, **F64)
    _assert_same_grads(out, ref, {"x": x, **dict(layer.named_parameters())})


def _encoder_ref(enc: RelationalGraphEncoder, edge_index, edge_type):
    ei = torch.cat([edge_index, edge_index.flip(0)], 1) if enc.add_inverse else edge_index
    et = torch.cat([edge_type, edge_type + enc.num_relations]) if enc.add_inverse else edge_type
    act = {"tanh": torch.tanh, "relu": F.relu, "leaky_relu": F.leaky_relu, "none": lambda t: t}[enc.activation]
    h, rel = enc.embedding.weight, enc.relation_embedding
    outs = [h]
    for k, layer in enumerate(enc.layers):
        if enc.kind == "rgcn":
            h = _ref_rgcn(layer, h, ei, et)
        elif enc.kind == "compgcn":
            h, rel = _ref_compgcn(layer, h, rel, ei, et)
        else:
            h = _ref_kgat(layer, h, ei, et)[0]
        if k < enc.num_layers - 1 and enc.kind != "kgat":
            h = act(h)
        outs.append(h)
    return h if enc.combine == "last" else sum(outs) / len(outs)


@pytest.mark.parametrize(("kind", "num_layers", "combine", "add_inverse"), [
    ("rgcn", 2, "mean", True), ("rgcn", 1, "last", False), ("compgcn", 2, "mean", True), ("compgcn", 1, "mean", True),
    ("compgcn", 2, "last", False), ("kgat", 2, "mean", True), ("kgat", 1, "last", False), ("rgcn", 0, "mean", True),
])  # fmt: skip
def test_encoder_matches_the_layer_loops_in_float64(tiny, kind, num_layers, combine, add_inverse) -> None:
    enc = RelationalGraphEncoder(N, R, dim=3, num_layers=num_layers, kind=kind, num_bases=2, combine=combine,
                                 add_inverse=add_inverse, composition="sub").double()  # fmt: skip
    out = enc(*tiny)
    torch.testing.assert_close(out, _encoder_ref(enc, *tiny), **F64)


@pytest.mark.parametrize("kind", ["rgcn", "compgcn", "kgat"])
def test_encoder_gradients_pass_gradcheck_for_every_parameter(tiny, kind) -> None:
    enc = RelationalGraphEncoder(N, R, dim=3, num_layers=2, kind=kind, num_bases=2).double()
    with torch.no_grad():  # zero biases put the isolated node on LeakyReLU's kink, where no gradient is
        for name, p in enc.named_parameters():
            if name.endswith("bias"):
                p.normal_()
    names, params = zip(*[(k, v.detach().requires_grad_()) for k, v in enc.named_parameters()], strict=True)

    def run(*values):
        return functional_call(enc, dict(zip(names, values, strict=True)), tiny)

    assert torch.autograd.gradcheck(run, params)


def test_encoder_attention_keeps_the_model_dtype(tiny) -> None:
    enc = RelationalGraphEncoder(N, R, dim=3, kind="kgat").double()
    _, alpha = enc.attention(*tiny)
    assert alpha.dtype == torch.float64


@pytest.mark.parametrize("kind", ["rgcn", "compgcn", "kgat"])
@pytest.mark.parametrize("add_inverse", [True, False])
def test_encoder_takes_a_graph_made_under_inference_mode(tiny, kind, add_inverse) -> None:
    """Inference tensors have no version counter (reading it raised); their graph is rebuilt
    each call, so an in-place edit is seen, and it also trains outside inference mode."""
    enc = RelationalGraphEncoder(N, R, dim=4, kind=kind, add_inverse=add_inverse)
    expected = enc(*tiny).detach()
    with torch.inference_mode():
        edge_index, edge_type = tiny[0].clone(), tiny[1].clone()
        torch.testing.assert_close(enc(edge_index, edge_type), expected)
        edge_type[0] = 3
        changed = enc(edge_index, edge_type)
    assert not torch.allclose(changed, expected)
    torch.testing.assert_close(enc(*tiny).detach(), expected)
    enc(edge_index, edge_type).square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)


def test_the_cached_adjacency_follows_the_graph(tiny) -> None:
    """Another tensor, an in-place edit, or more feature rows: each builds the graph again."""
    enc = RelationalGraphEncoder(N, R, dim=4)
    edge_index, edge_type = tiny[0].clone(), tiny[1].clone()
    first = enc(edge_index, edge_type).detach()
    adj = enc.prepare(edge_index, edge_type)
    edge_index[1, 0] = 7
    assert enc.prepare(edge_index, edge_type) is not adj
    assert not torch.allclose(enc(edge_index, edge_type), first)
    torch.testing.assert_close(enc(*tiny).detach(), first)
    assert enc(*tiny, x=enc.extended_embeddings(2)).shape == (N + 2, 4)
    assert enc.prepare(*tiny).num_nodes == N


@pytest.mark.parametrize("kind", ["rgcn", "compgcn", "kgat"])
def test_a_graph_without_edges_gives_the_self_terms(kind) -> None:
    enc = RelationalGraphEncoder(N, R, dim=4, kind=kind)
    empty = torch.empty(2, 0, dtype=torch.long), torch.empty(0, dtype=torch.long)
    out = enc(*empty)
    out.square().sum().backward()
    assert out.shape == (N, 4) and torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)


@pytest.mark.parametrize(("edge_index", "edge_type", "match"), [
    (torch.tensor([[0], [N]]), torch.tensor([0]), "node ids"),
    (torch.tensor([[-1], [0]]), torch.tensor([0]), "node ids"),
    (torch.tensor([[0], [1]]), torch.tensor([-1]), "relation ids"),
    (torch.tensor([[0], [1]], dtype=torch.int32), torch.tensor([0]), "int64"),
    (torch.tensor([0, 1]), torch.tensor([0]), "shape"),
])  # fmt: skip
def test_bad_graphs_get_a_clear_error(edge_index, edge_type, match) -> None:
    with pytest.raises(ValueError, match=match):
        RelationalGraphEncoder(N, R, dim=4)(edge_index, edge_type)
    with pytest.raises(ValueError, match=match):
        RelationalAdjacency(edge_index, edge_type, N, R)


@pytest.mark.parametrize("kind", ["rgcn", "compgcn", "kgat"])
def test_bf16_autocast_follows_fp32_and_is_deterministic(tiny, kind) -> None:
    enc = RelationalGraphEncoder(N, R, dim=8, kind=kind, num_bases=2)
    ref = enc(*tiny)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = enc(*tiny), enc(*tiny)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a.float(), ref, rtol=0.05, atol=0.02)
    a.float().square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters())
