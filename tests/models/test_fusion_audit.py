"""Audit of ``kgrec.models.fusion`` and ``kgrec.models._sparse`` against float64 loop / dense
references: the sparse operator (duplicates, empty rows, gradients), the history matrix, the MoE
adaptor, item fusion with ID dropout, and the user encoder; and the edge cases (out-of-range
indices, bf16 history exclusion, mis-sized item vectors)."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from kgrec.models import ItemFusion, MoEAdaptor, UserEncoder, history_matrix
from kgrec.models._sparse import SparseOperator

F64 = torch.float64


def _dense(indices: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """``A`` with duplicate entries summed, by a loop."""
    a = torch.zeros(shape, dtype=values.dtype)
    for (r, c), v in zip(indices.t().tolist(), values.tolist(), strict=True):
        a[r, c] += v
    return a


def _history_reference(users: list[int], items: list[int], num_users: int, num_items: int, norm: str) -> torch.Tensor:
    pairs = set(zip(users, items, strict=True))
    deg_u = {u: sum(1 for p in pairs if p[0] == u) for u in range(num_users)}
    deg_i = {i: sum(1 for p in pairs if p[1] == i) for i in range(num_items)}
    a = torch.zeros(num_users, num_items, dtype=F64)
    for u, i in pairs:
        a[u, i] = {"mean": 1 / deg_u[u], "sym": (deg_u[u] * deg_i[i]) ** -0.5, "none": 1.0}[norm]
    return a


# ------------------------------------------------------------------ SparseOperator
IDX = torch.tensor([[0, 0, 3, 3, 0, 1], [1, 1, 0, 4, 2, 4]])  # (0, 1) twice, row 2 and column 3 empty
VAL = torch.tensor([1.0, 2.0, 3.0, 4.0, -5.0, 0.5], dtype=F64)


def test_sparse_operator_equals_the_dense_product_with_duplicates_summed() -> None:
    op = SparseOperator(IDX, VAL, (4, 5))
    a = _dense(IDX, VAL, (4, 5))
    x = torch.randn(5, 3, dtype=F64)
    torch.testing.assert_close(op @ x, a @ x)
    torch.testing.assert_close(op.csr_t.to_dense(), a.t())
    torch.testing.assert_close(op @ x.t().contiguous().t(), a @ x)  # a non-contiguous x
    assert op.nnz == 5 and op.shape == (4, 5)
    uncoalesced = torch.sparse_coo_tensor(IDX, VAL, (4, 5), check_invariants=True)
    for m in (uncoalesced, uncoalesced.coalesce().to_sparse_csr()):
        torch.testing.assert_close(SparseOperator.from_sparse(m) @ x, a @ x)


def test_sparse_operator_gradient_is_the_transpose_product() -> None:
    op = SparseOperator(IDX, VAL, (4, 5))
    x = torch.randn(5, 3, dtype=F64, requires_grad=True)
    assert gradcheck(lambda x: op @ x, (x,))
    g = torch.randn(4, 3, dtype=F64)
    (op @ x).backward(g)
    torch.testing.assert_close(x.grad, _dense(IDX, VAL, (4, 5)).t() @ g)


def test_sparse_operator_casts_itself_to_float64_features() -> None:
    op = SparseOperator(IDX, VAL.float(), (4, 5))
    x = torch.randn(5, 2, dtype=F64, requires_grad=True)
    y = op @ x
    assert y.dtype == F64
    torch.testing.assert_close(y, _dense(IDX, VAL.float(), (4, 5)).double() @ x)
    assert gradcheck(lambda x: op @ x, (x,))
    assert op.to(dtype=F64).csr.dtype == F64


@pytest.mark.parametrize("shape", [(3, 4), (0, 4), (3, 0), (0, 0)])
def test_an_empty_sparse_operator_gives_zeros_and_zero_gradients(shape) -> None:
    op = SparseOperator(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), shape)
    x = torch.randn(shape[1], 2, requires_grad=True)
    y = op @ x
    assert y.shape == (shape[0], 2) and (y == 0).all()
    y.sum().backward()
    assert x.grad is not None and (x.grad == 0).all()
    rows = torch.zeros(2 if shape[0] else 0, dtype=torch.long)
    assert (op.values_at(rows, rows) == 0).all()


def test_values_at_reads_summed_entries_and_zero_elsewhere() -> None:
    op = SparseOperator(IDX, VAL, (4, 5))
    a = _dense(IDX, VAL, (4, 5))
    rows, cols = torch.meshgrid(torch.arange(4), torch.arange(5), indexing="ij")
    torch.testing.assert_close(op.values_at(rows.flatten(), cols.flatten()), a.flatten())
    assert op.values_at(torch.tensor([0, 0]), torch.tensor([1, 1])).tolist() == [3.0, 3.0]


def test_sparse_operator_refuses_out_of_range_indices() -> None:
    # Unchecked, a column past the end aliased (0, 2) onto (1, 0) of a 2 x 2 matrix while
    # coalescing: A[0, 2] = 1 and A[1, 0] = 2 became a single entry of 3; a negative or too-large
    # row index corrupted the heap in the COO -> CSR conversion (the process aborted).
    with pytest.raises(ValueError, match="columns in"):
        SparseOperator(torch.tensor([[0, 1], [2, 0]]), torch.tensor([1.0, 2.0]), (2, 2))


# ------------------------------------------------------------------ history_matrix
@pytest.mark.parametrize("norm", ["mean", "sym", "none"])
def test_history_matrix_matches_a_loop_reference(norm) -> None:
    users, items = [0, 0, 0, 2, 2, 3, 0], [1, 2, 4, 2, 0, 2, 1]  # (0, 1) twice; user 1, item 3 empty
    a = history_matrix(torch.tensor(users), torch.tensor(items), 4, 5, norm=norm)
    assert a.is_coalesced() and a.dtype == torch.float32 and a._nnz() == 6
    torch.testing.assert_close(a.to_dense().double(), _history_reference(users, items, 4, 5, norm))


def test_history_matrix_of_no_interactions_is_empty() -> None:
    none = torch.zeros(0, dtype=torch.long)
    a = history_matrix(none, none, 3, 2)
    assert a.shape == (3, 2) and a._nnz() == 0


def test_history_matrix_refuses_out_of_range_indices() -> None:
    # Unchecked, item 2 of 2 made the pair (1, 2) alias (2, 0) of a 2 x 2 matrix: a valid-looking
    # COO tensor with an entry outside it, which later conversions read or write out of bounds.
    with pytest.raises(ValueError, match="items"):
        history_matrix(torch.tensor([0, 1]), torch.tensor([0, 2]), 2, 2)
    with pytest.raises(ValueError, match="users"):
        history_matrix(torch.tensor([0, -1]), torch.tensor([0, 1]), 2, 2)


# ------------------------------------------------------------------ MoEAdaptor
def _moe_reference(a: MoEAdaptor, x: torch.Tensor, eps: torch.Tensor | None) -> torch.Tensor:
    out = torch.zeros(x.size(0), a.out_dim, dtype=F64)
    for n in range(x.size(0)):
        logits = x[n] @ a.gate
        if eps is not None:
            logits = logits + eps[n] * (torch.log1p(torch.exp(x[n] @ a.noise)) + 1e-2)
        g = torch.exp(logits - logits.max())
        g = g / g.sum()
        for k in range(a.num_experts):
            out[n] += g[k] * ((x[n] - a.centers[k]) @ a.weight[k])
    return out


def test_moe_adaptor_matches_the_formula_in_float64() -> None:
    torch.manual_seed(0)
    a = MoEAdaptor(5, 3, num_experts=3, dropout=0.0).double()
    with torch.no_grad():
        for p in a.parameters():
            p.normal_()
    x = torch.randn(4, 5, dtype=F64)
    torch.testing.assert_close(a.eval()(x), _moe_reference(a, x, None))
    torch.manual_seed(1)
    out = a.train()(x)  # the gate noise is the first draw
    torch.manual_seed(1)
    torch.testing.assert_close(out, _moe_reference(a, x, torch.randn(4, 3, dtype=F64)))


# ------------------------------------------------------------------ ItemFusion
def _fusion_reference(f: ItemFusion, vecs: list[torch.Tensor], avail: torch.Tensor) -> torch.Tensor:
    n, m = avail.shape
    out = torch.zeros(n, f.dim, dtype=F64)
    for i in range(n):
        v = [vecs[k][i] if avail[i, k] else torch.zeros(f.dim, dtype=F64) for k in range(m)]
        if f.kind == "sum":
            out[i] = sum(v)
        elif f.kind == "concat":
            out[i] = f.proj.weight @ torch.cat(v) + f.proj.bias
        else:
            logits = f.gate.weight @ torch.cat(v) + f.gate.bias
            present = [k for k in range(m) if avail[i, k]]
            if present:
                w = torch.exp(logits[present] - logits[present].max())
                out[i] = sum(wk / w.sum() * v[k] for wk, k in zip(w, present, strict=True))
    return out


@pytest.mark.parametrize("kind", ["gate", "concat", "sum"])
def test_item_fusion_matches_the_formula_in_float64(kind) -> None:
    torch.manual_seed(0)
    f = ItemFusion(3, kind=kind).double().eval()
    with torch.no_grad():
        for p in f.parameters():
            p.normal_()
    vecs = [torch.randn(4, 3, dtype=F64) for _ in range(3)]
    id_mask = torch.tensor([True, False, True, False])
    avail = torch.stack([id_mask, torch.ones(4, dtype=torch.bool), torch.ones(4, dtype=torch.bool)], 1)
    torch.testing.assert_close(f(*vecs, id_mask=id_mask), _fusion_reference(f, vecs, avail))
    no_graph = avail.clone()
    no_graph[:, 2] = False
    torch.testing.assert_close(f(vecs[0], vecs[1], None, id_mask=id_mask), _fusion_reference(f, vecs, no_graph))
    if kind == "gate":
        assert gradcheck(lambda *v: f(*v, id_mask=id_mask), tuple(v.requires_grad_() for v in vecs))


def test_a_gate_row_with_nothing_available_is_zero_with_zero_gradients() -> None:
    f = ItemFusion(3, modalities=("id", "text"))
    with torch.no_grad():
        f.gate.weight.normal_()
    id_emb = torch.randn(2, 3, requires_grad=True)
    out = f(id_emb, None, id_mask=torch.tensor([False, True]))  # item 0: no ID and no text
    assert (out[0] == 0).all()
    torch.testing.assert_close(out[1], id_emb[1])
    out.sum().backward()
    assert torch.isfinite(f.gate.weight.grad).all() and torch.isfinite(id_emb.grad).all()


def test_item_id_dropout_drops_whole_ids_with_probability_p_in_training_only() -> None:
    torch.manual_seed(0)
    f = ItemFusion(2, kind="sum", id_dropout=0.3).train()
    id_emb, text = torch.randn(2000, 2), torch.randn(2000, 2)
    out = f(id_emb, text)
    dropped = torch.isclose(out, text).all(1)
    kept = torch.isclose(out, text + id_emb).all(1)
    assert (dropped ^ kept).all() and 0.25 < dropped.float().mean() < 0.35
    mask = f.id_keep_mask(2000)
    assert mask.dtype == torch.bool and 0.65 < mask.float().mean() < 0.75
    torch.testing.assert_close(f(id_emb, text, id_mask=mask, drop_ids=False)[~mask], text[~mask])  # no second draw
    f.eval()
    torch.testing.assert_close(f(id_emb, text), text + id_emb)
    assert f.id_keep_mask(5).all()
    zero = ItemFusion(2, kind="sum", id_dropout=0.0).train()
    torch.testing.assert_close(zero(id_emb, text), text + id_emb)


# ------------------------------------------------------------------ UserEncoder
def test_user_encoder_matches_a_float64_reference_with_every_part() -> None:
    torch.manual_seed(0)
    users, items = [0, 0, 0, 2, 2, 0], [1, 2, 3, 2, 0, 1]  # user 1 has no history
    hist = history_matrix(torch.tensor(users), torch.tensor(items), 3, 4)
    feats = history_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 3, 2)
    history = SparseOperator(hist.indices(), hist.values().double(), (3, 4))
    features = SparseOperator(feats.indices(), feats.values().double(), (3, 2))
    enc = UserEncoder(3, 2, parts=("id", "history", "graph", "features"), num_features=2).double()
    item_vecs, graph = torch.randn(4, 2, dtype=F64, requires_grad=True), torch.randn(3, 2, dtype=F64)
    rows, exclude = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 3, 0, 0])
    a = _history_reference(users, items, 3, 4, "mean")
    m = _history_reference([0, 1, 1], [0, 0, 1], 3, 2, "mean")
    e, f = enc.id_embedding.weight, enc.feature_embedding.weight
    ref = torch.stack([
        e[u] + sum(a[u, i] * item_vecs[i] for i in range(4) if i != t) + graph[u] + m[u] @ f
        for u, t in zip(rows.tolist(), exclude.tolist(), strict=True)
    ])  # fmt: skip
    out = enc(rows, item_vectors=item_vecs, history=history, graph_vectors=graph, exclude_items=exclude, features=features)
    torch.testing.assert_close(out, ref)
    assert gradcheck(lambda v: enc(rows, item_vectors=v, history=history, graph_vectors=graph,
                                   exclude_items=exclude, features=features), (item_vecs,))  # fmt: skip


def test_a_bf16_history_removes_the_target_before_rounding() -> None:
    # The user's history is {0, 1} with A = 1/2 each; item 0 is the target. In bf16 the aggregate
    # (256 + 1) / 2 = 128.5 rounded to 128 before 256 / 2 was taken off: the history part was 0,
    # not item 1's 0.5.
    history = SparseOperator(torch.tensor([[0, 0], [0, 1]]), torch.tensor([0.5, 0.5]), (1, 2))
    enc = UserEncoder(1, 1, parts=("history",))
    item_vecs = torch.tensor([[256.0], [1.0]], dtype=torch.bfloat16, requires_grad=True)
    out = enc(torch.tensor([0]), item_vectors=item_vecs, history=history, exclude_items=torch.tensor([0]))
    assert out.dtype == torch.bfloat16 and out.item() == 0.5
    out.sum().backward()
    assert item_vecs.grad.tolist() == [[0.0], [0.5]]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = enc(torch.tensor([0]), item_vectors=item_vecs, history=history, exclude_items=torch.tensor([0]))
    assert auto.dtype == torch.float32 and auto.item() == 0.5


def test_user_encoder_refuses_item_vectors_of_another_size() -> None:
    # A (I, 1) item_vectors broadcast silently against the (B, d) ID vectors.
    history = SparseOperator.from_sparse(history_matrix(torch.tensor([0, 1]), torch.tensor([0, 1]), 2, 2))
    enc = UserEncoder(2, 4, parts=("id", "history"))
    with pytest.raises(ValueError, match="item_vectors"):
        enc(None, item_vectors=torch.randn(2, 1), history=history)
