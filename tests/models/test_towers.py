from __future__ import annotations

import pytest
import torch
from torch import nn

from kgrec.models import KGLinkTower, LikeTower, RatingTower, RetrievalTower

N_USERS, N_ITEMS, D = 6, 10, 8


def _train(params, loss_fn, steps: int = 50, lr: float = 0.05) -> tuple[float, float]:
    opt = torch.optim.Adam(params, lr=lr)
    first = float(loss_fn().detach())
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    return first, float(loss_fn().detach())


def test_rating_tower_loss_decreases() -> None:
    z_u, z_i = nn.Embedding(N_USERS, D), nn.Embedding(N_ITEMS, D)
    tower = RatingTower(D, N_USERS, N_ITEMS, hidden=(16,), global_mean=3.0, rating_range=(1, 5))
    users, items = torch.randint(0, N_USERS, (30,)), torch.randint(0, N_ITEMS, (30,))
    rating = torch.randint(1, 6, (30,)).float()

    def loss():
        return tower.loss(tower(z_u(users), z_i(items), users, items), rating)

    first, last = _train([*tower.parameters(), *z_u.parameters(), *z_i.parameters()], loss)
    assert last < 0.5 * first
    pred = tower.predict(z_u(users) * 100, z_i(items) * 100, users, items)
    assert pred.min() >= 1 and pred.max() <= 5


def test_like_tower_loss_decreases() -> None:
    z_u, z_i = nn.Embedding(N_USERS, D), nn.Embedding(N_ITEMS, D)
    tower = LikeTower(D, N_USERS, N_ITEMS, hidden=(16,))
    users, items = torch.randint(0, N_USERS, (30,)), torch.randint(0, N_ITEMS, (30,))
    label = (torch.rand(30) > 0.5).float()

    def loss():
        return tower.loss(tower(z_u(users), z_i(items), users, items), label)

    first, last = _train([*tower.parameters(), *z_u.parameters(), *z_i.parameters()], loss)
    assert last < 0.5 * first
    p = tower.predict(z_u(users), z_i(items), users, items)
    assert ((p >= 0) & (p <= 1)).all()


@pytest.mark.parametrize("kind", ["bpr", "sampled_softmax", "full_softmax"])
def test_retrieval_tower_loss_decreases(kind) -> None:
    z_u, z_i = nn.Embedding(N_USERS, D), nn.Embedding(N_ITEMS, D)
    tower = RetrievalTower(kind, temperature=0.5)
    users = torch.arange(N_USERS).repeat(2)
    pos = torch.randint(0, N_ITEMS, (2 * N_USERS,))
    neg = torch.randint(0, N_ITEMS, (2 * N_USERS, 4))
    log_q = torch.log_softmax(torch.randn(N_ITEMS), 0)

    def loss():
        return tower.loss(z_u(users), z_i.weight, pos, neg, log_q)

    first, last = _train([*z_u.parameters(), *z_i.parameters()], loss)
    assert last < 0.7 * first
    assert not list(tower.parameters())


def test_retrieval_scores_use_the_exposed_vectors_alone() -> None:
    tower = RetrievalTower("full_softmax", temperature=0.1, normalize=True)
    q, k = torch.randn(3, D), torch.randn(N_ITEMS, D)
    ranking = tower.user_vectors(q) @ tower.item_vectors(k).T
    torch.testing.assert_close(tower.score_all(q, k), ranking / 0.1)
    torch.testing.assert_close(tower(q, k[:3]), ranking.diagonal() / 0.1)
    torch.testing.assert_close(tower(q, k[:6].view(3, 2, D))[1], ranking[1, 2:4] / 0.1)


def test_accidental_hits_are_masked_out() -> None:
    pos, neg = torch.tensor([2.0]), torch.tensor([[2.0, -1.0]])
    valid = torch.tensor([[False, True]])
    assert RetrievalTower.bpr_loss(pos, neg, valid) == pytest.approx(float(-torch.nn.functional.logsigmoid(torch.tensor(3.0))))
    expected = float(torch.logsumexp(torch.tensor([2.0, -1.0]), 0) - 2.0)
    assert RetrievalTower.softmax_loss(pos, neg, valid) == pytest.approx(expected)


@pytest.mark.parametrize("kind", ["full_softmax", "sampled_softmax", "bpr"])
def test_items_outside_candidates_are_never_negatives(kind) -> None:
    torch.manual_seed(0)
    tower = RetrievalTower(kind)
    z_u = torch.randn(4, D)
    z_items = torch.randn(N_ITEMS, D, requires_grad=True)
    pos = torch.tensor([0, 1, 2, 3])
    neg = torch.tensor([[4, 8], [5, 9], [6, 8], [7, 9]])
    candidates = torch.ones(N_ITEMS, dtype=torch.bool)
    candidates[8:] = False  # items 8, 9: no training interactions
    loss = tower.loss(z_u, z_items, pos, neg, candidates=candidates)
    loss.backward()
    assert z_items.grad[8:].abs().sum() == 0 and z_items.grad[:8].abs().sum() > 0
    if kind == "full_softmax":  # the softmax is over the candidates only
        scores = z_u @ z_items.detach()[:8].T
        assert float(loss.detach()) == pytest.approx(float(nn.functional.cross_entropy(scores, pos)), rel=1e-5)
    unmasked = tower.loss(z_u, z_items, pos, neg)
    assert float(unmasked.detach()) != pytest.approx(float(loss.detach()))


def test_shared_negatives_covering_every_candidate_give_the_full_softmax() -> None:
    torch.manual_seed(0)
    tower = RetrievalTower("sampled_softmax", temperature=0.5)
    z_u, z_items = torch.randn(4, D), torch.randn(N_ITEMS, D)
    pos = torch.tensor([0, 3, 3, 7])
    every = torch.randperm(N_ITEMS)  # S = the whole catalogue, in any order: the sum is the full one
    full = nn.functional.cross_entropy(tower.score_all(z_u, z_items), pos)
    assert float(tower.shared_softmax_loss(z_u, z_items, pos, every, N_ITEMS)) == pytest.approx(float(full), rel=1e-5)


def test_shared_negatives_weigh_each_sample_for_the_items_it_stands_for() -> None:
    tower = RetrievalTower("sampled_softmax")
    z_u, z_items = torch.randn(2, D), torch.randn(N_ITEMS, D)
    pos, shared = torch.tensor([1, 4]), torch.tensor([4, 6])  # item 4 is row 1's positive: not its negative
    s = z_u @ z_items.T
    row0 = torch.logsumexp(torch.stack([s[0, 1], s[0, 4] + torch.log(torch.tensor(5.0)), s[0, 6] + torch.log(torch.tensor(5.0))]), 0) - s[0, 1]
    row1 = torch.logsumexp(torch.stack([s[1, 4], s[1, 6] + torch.log(torch.tensor(5.0))]), 0) - s[1, 4]
    loss = tower.shared_softmax_loss(z_u, z_items, pos, shared, n_candidates=N_ITEMS)  # n / K = 10 / 2
    assert float(loss) == pytest.approx(float((row0 + row1) / 2), rel=1e-5)


def test_shared_softmax_loss_decreases() -> None:
    z_u, z_i = nn.Embedding(N_USERS, D), nn.Embedding(N_ITEMS, D)
    tower = RetrievalTower("sampled_softmax")
    users, pos = torch.arange(N_USERS), torch.randint(0, N_ITEMS, (N_USERS,))
    g = torch.Generator().manual_seed(0)

    def loss():
        return tower.shared_softmax_loss(z_u(users), z_i.weight, pos, torch.randperm(N_ITEMS, generator=g)[:4], N_ITEMS)

    first, last = _train([*z_u.parameters(), *z_i.parameters()], loss)
    assert last < 0.7 * first


@pytest.mark.parametrize(("score", "loss"), [("distmult", "softplus"), ("distmult", "margin"),
                                             ("transe", "margin"), ("transe", "softplus")])
def test_kg_tower_ranks_true_triples_above_corrupted_ones(score, loss) -> None:
    g = torch.Generator().manual_seed(3)
    n_ent, n_rel = 12, 2
    heads = torch.arange(n_ent)
    rels = torch.randint(0, n_rel, (n_ent,), generator=g)
    tails = (heads + 1 + 3 * rels) % n_ent
    ent = nn.Embedding(n_ent, D)
    tower = KGLinkTower(n_rel, D, score=score, loss=loss, margin=1.0)

    def scores():
        negs = torch.randint(0, n_ent, (n_ent, 5))
        return tower(ent(heads), rels, ent(tails)), tower(ent(heads), rels, ent(negs))

    def loss_fn():
        return tower.loss(*scores())

    first, last = _train([*ent.parameters(), *tower.parameters()], loss_fn, steps=100)
    assert last < first
    with torch.no_grad():
        all_tails = tower(ent(heads), rels, ent.weight.expand(n_ent, n_ent, D))  # (n_ent, n_ent)
        true = all_tails.gather(1, tails.unsqueeze(1))
        rank = (all_tails > true).sum(1).float()  # corrupted tails scored above the truth
    assert rank.mean() < 1.0


def test_kg_scores_follow_the_documented_formulas() -> None:
    h, t, r = torch.randn(2, D), torch.randn(2, D), torch.tensor([0, 1])
    dm = KGLinkTower(2, D, score="distmult")
    torch.testing.assert_close(dm(h, r, t), (h * dm.relation(r) * t).sum(-1))
    te = KGLinkTower(2, D, score="transe", normalize_entities=False, p_norm=2)
    torch.testing.assert_close(te(h, r, t), -(h + te.relation(r) - t).norm(dim=-1))


def test_distillation_loss_matches_its_formula() -> None:
    tower = RetrievalTower("full_softmax")
    q, k = torch.randn(2, D), torch.randn(5, D)
    teacher = torch.tensor([[1.0, float("-inf"), 0.5, -0.2, 0.0], [0.3, 0.1, float("-inf"), float("-inf"), 2.0]])
    t = 0.5
    expected = 0.0
    for b in range(2):
        ranked = torch.isfinite(teacher[b])
        p_teacher = torch.softmax(teacher[b, ranked] / t, 0)
        log_student = torch.log_softmax((q[b] @ k.T)[ranked], 0)
        expected += -float((p_teacher * log_student).sum()) / 2
    assert float(tower.distillation_loss(tower.score_all(q, k), teacher, t)) == pytest.approx(expected, rel=1e-5)


def test_distillation_leaves_the_users_own_items_alone() -> None:
    tower = RetrievalTower("full_softmax")
    q, k = torch.randn(3, D), torch.randn(5, D, requires_grad=True)
    teacher = torch.randn(3, 5)
    teacher[:, 0] = float("-inf")  # item 0: every user's training item
    teacher[2] = float("-inf")  # user 2 has seen everything: no term, and no NaN
    loss = tower.distillation_loss(tower.score_all(q, k), teacher, 0.1)
    loss.backward()
    assert torch.isfinite(loss) and k.grad[0].abs().sum() == 0 and k.grad[1:].abs().sum() > 0


def test_distillation_teaches_the_teachers_order() -> None:
    torch.manual_seed(0)
    z_u, z_i = nn.Embedding(N_USERS, D), nn.Embedding(N_ITEMS, D)
    tower = RetrievalTower("full_softmax")
    teacher = torch.randn(N_USERS, N_ITEMS)

    def loss():
        return tower.distillation_loss(tower.score_all(z_u.weight, z_i.weight), teacher, 0.5)

    _train([*z_u.parameters(), *z_i.parameters()], loss, steps=200)
    student_top = tower.score_all(z_u.weight, z_i.weight).argmax(-1)
    assert torch.equal(student_top, teacher.argmax(-1))


@pytest.mark.parametrize(("score", "normalize", "p"), [("distmult", False, 1), ("transe", True, 1), ("transe", False, 2)])
def test_kg_score_all_equals_scoring_each_candidate(score, normalize, p):
    torch.manual_seed(0)
    tower = KGLinkTower(3, D, score=score, normalize_entities=normalize, p_norm=p)
    nodes, rel = torch.randn(7, D), torch.tensor([0, 2, 1])
    known = nodes[[1, 4, 6]]
    every = nodes.expand(3, 7, D)
    tails = tower(known, rel, every)  # f(h, r, n) for every node n
    heads = torch.stack([tower(nodes, rel[b].expand(7), known[b].expand(7, D)) for b in range(3)])  # f(n, r, t)
    torch.testing.assert_close(tower.score_all(known, rel, nodes, "tail"), tails)
    torch.testing.assert_close(tower.score_all(known, rel, nodes, "head"), heads)


@pytest.mark.parametrize("score", ["distmult", "transe"])
def test_kg_softmax_loss_is_cross_entropy_over_every_node_from_both_ends(score):
    torch.manual_seed(1)
    tower = KGLinkTower(2, D, score=score, loss="softmax")
    nodes = torch.randn(9, D)
    head, rel, tail = torch.tensor([0, 3, 5]), torch.tensor([1, 0, 1]), torch.tensor([2, 8, 5])
    every = nodes.expand(3, 9, D)
    tails = tower(nodes[head], rel, every)  # f(h, r, n)
    heads = torch.stack([tower(nodes, rel[b].expand(9), nodes[tail[b]].expand(9, D)) for b in range(3)])  # f(n, r, t)
    expected = -0.5 * (tails.log_softmax(1)[range(3), tail].mean() + heads.log_softmax(1)[range(3), head].mean())
    torch.testing.assert_close(tower.softmax_loss(nodes, head, rel, tail), expected)
    with pytest.raises(ValueError, match="softplus', 'margin' or 'softmax'"):
        KGLinkTower(2, D, loss="hinge")
