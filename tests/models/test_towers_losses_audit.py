"""Audit of the task towers' losses and the joint loss: each loss against its formula computed
independently in float64, gradients by ``gradcheck``, and the edge cases (16-bit scores, empty
batches, every negative an accidental hit, a task absent from GradNorm's first step)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from kgrec.models import JointLoss
from kgrec.models.towers import KGLinkTower, LikeTower, RatingTower, RetrievalTower

F64 = torch.float64


def _rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=F64, requires_grad=True)


# ---------------------------------------------------------------- formulas, in float64
def test_retrieval_losses_follow_their_formulas_with_accidental_hits_and_log_q() -> None:
    tower = RetrievalTower("sampled_softmax", temperature=0.5)
    z_u, z_items = torch.randn(2, 3, dtype=F64), torch.randn(5, 3, dtype=F64)
    pos, neg = torch.tensor([0, 1]), torch.tensor([[0, 2, 3], [4, 4, 1]])  # (0, 0) and (1, 2): accidental hits
    log_q = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.25, 0.15], dtype=F64))
    s = z_u @ z_items.T / 0.5
    expected_softmax, expected_bpr, pairs = 0.0, 0.0, 0
    for b in range(2):
        p = s[b, pos[b]]
        negs = [int(j) for j in neg[b] if j != pos[b]]
        corrected = [s[b, j] - log_q[j] for j in negs]
        expected_softmax += float(torch.logsumexp(torch.stack([p - log_q[pos[b]], *corrected]), 0) - (p - log_q[pos[b]]))
        expected_bpr += sum(float(-F.logsigmoid(p - s[b, j])) for j in negs)
        pairs += len(negs)
    assert float(tower.loss(z_u, z_items, pos, neg, log_q)) == pytest.approx(expected_softmax / 2, rel=1e-12)
    bpr = RetrievalTower("bpr", temperature=0.5)
    assert float(bpr.loss(z_u, z_items, pos, neg)) == pytest.approx(expected_bpr / pairs, rel=1e-12)  # mean over valid pairs
    full = RetrievalTower("full_softmax", temperature=0.5)
    expected_full = float((torch.logsumexp(s, 1) - s[[0, 1], pos]).mean())
    assert float(full.loss(z_u, z_items, pos)) == pytest.approx(expected_full, rel=1e-12)


@pytest.mark.parametrize("kind", ["bpr", "sampled_softmax"])
def test_a_row_whose_every_negative_is_an_accidental_hit_adds_nothing(kind) -> None:
    tower = RetrievalTower(kind)
    z_u = torch.randn(2, 3, dtype=F64, requires_grad=True)
    z_items = torch.randn(4, 3, dtype=F64)
    loss = tower.loss(z_u, z_items, torch.tensor([1, 2]), torch.tensor([[1, 1], [2, 2]]))
    loss.backward()
    assert float(loss.detach()) == 0.0 and float(z_u.grad.abs().max()) == 0.0


def test_pair_and_kg_losses_follow_their_formulas_at_large_logits() -> None:
    like = LikeTower(2, pos_weight=3.0)
    logits, label = torch.tensor([1e4, -1e4, 2.0, -0.5], dtype=F64), torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=F64)
    # -[w y log s(x) + (1 - y) log(1 - s(x))], log s(x) = -softplus(-x), log(1 - s(x)) = -softplus(x)
    expected = (3.0 * label * F.softplus(-logits) + (1 - label) * F.softplus(logits)).mean()
    assert float(like.loss(logits, label)) == pytest.approx(float(expected), rel=1e-12)
    assert float(like.loss(logits, label)) == pytest.approx((1e4 + 3e4 + 3 * math.log1p(math.exp(-2)) + math.log1p(math.exp(-0.5))) / 4)
    pred, rating = torch.tensor([0.5, 7.0], dtype=F64), torch.tensor([1.0, 5.0], dtype=F64)  # unclamped while training
    assert float(RatingTower(2, rating_range=(1.0, 5.0)).loss(pred, rating)) == pytest.approx((0.25 + 4.0) / 2)
    pos, neg = torch.tensor([1e4, -2.0], dtype=F64), torch.tensor([[3.0, -1e4], [0.5, 1.0]], dtype=F64)
    softplus = KGLinkTower(1, 2, loss="softplus").loss(pos, neg)
    assert float(softplus) == pytest.approx((0 + math.log1p(math.exp(2))) / 2
                                           + sum(math.log1p(math.exp(v)) for v in (3.0, 0.5, 1.0)) / 4, rel=1e-9)  # fmt: skip
    margin = KGLinkTower(1, 2, loss="margin", margin=1.0).loss(pos, neg)
    assert float(margin) == pytest.approx((0 + 0 + 3.5 + 4.0) / 4)  # [1 - f+ + f-]_+ over B K pairs


def test_kg_scores_have_the_documented_signs() -> None:
    """TransE: a tail at h + r scores 0, the best possible; DistMult: <h, r, t>."""
    transe = KGLinkTower(1, 3, score="transe", normalize_entities=False)
    h, r = torch.tensor([[1.0, 0.0, 0.0]]), transe.relation.weight.detach()[0]
    rel = torch.tensor([0])
    assert float(transe(h, rel, h + r).detach()) == 0.0
    assert float(transe(h, rel, h + r + torch.tensor([0.5, -0.5, 0.0])).detach()) == pytest.approx(-1.0)  # -||.||_1
    distmult = KGLinkTower(1, 3)
    t = torch.tensor([[2.0, 1.0, -1.0]])
    assert float(distmult(h, rel, t).detach()) == pytest.approx(float((h * distmult.relation.weight.detach()[0] * t).sum()))


def test_uncertainty_weighting_is_exp_minus_s_times_the_loss_plus_s() -> None:
    joint = JointLoss(["a", "b"], weights={"a": 2.0}, mode="uncertainty")
    with torch.no_grad():
        joint.log_vars.copy_(torch.tensor([0.3, -0.7]))
    total, _ = joint({"a": torch.tensor(1.5), "b": torch.tensor(0.4)})
    assert float(total.detach()) == pytest.approx(2.0 * 1.5 * math.exp(-0.3) + 0.3 + 0.4 * math.exp(0.7) - 0.7, rel=1e-6)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("kind", ["bpr", "sampled_softmax", "full_softmax"])
def test_retrieval_loss_gradients(kind) -> None:
    tower = RetrievalTower(kind, temperature=0.7, normalize=True)
    pos, neg = torch.tensor([0, 2, 2]), torch.tensor([[1, 3], [2, 0], [4, 1]])
    log_q = torch.log(torch.full((5,), 0.2, dtype=F64))
    assert gradcheck(lambda u, i: tower.loss(u, i, pos, neg, log_q if kind == "sampled_softmax" else None),
                     (_rand(3, 4), _rand(5, 4)))  # fmt: skip


def test_shared_softmax_and_distillation_gradients() -> None:
    tower = RetrievalTower("sampled_softmax")
    pos, shared = torch.tensor([0, 2]), torch.tensor([2, 4, 1])
    assert gradcheck(lambda u, i: tower.shared_softmax_loss(u, i, pos, shared, 5), (_rand(2, 4), _rand(6, 4)))
    teacher = torch.randn(3, 5, dtype=F64)
    teacher[0, 1] = teacher[2, 4] = float("-inf")  # the users' own items
    assert gradcheck(lambda s: RetrievalTower.distillation_loss(s, teacher, 0.5), (_rand(3, 5),))


def test_the_teacher_term_keeps_float64_scores_in_float64() -> None:
    """It cast every score to float32, so a float64 model (``64-true``) got a float32 teacher term
    and ``gradcheck`` failed."""
    scores = torch.tensor([[0.1 + 1e-12, 0.2, 0.3]], dtype=F64)
    teacher = torch.tensor([[1.0, 2.0, float("-inf")]], dtype=F64)
    exact = math.log(math.exp(0.1 + 1e-12) + math.exp(0.2)) - (0.1 + 1e-12) * (1 / (1 + math.e)) - 0.2 * (math.e / (1 + math.e))
    assert float(RetrievalTower.distillation_loss(scores, teacher, 1.0)) == pytest.approx(exact, rel=1e-15, abs=1e-15)


@pytest.mark.parametrize(("score", "loss"), [("distmult", "softplus"), ("transe", "margin"), ("distmult", "softmax"), ("transe", "softmax")])
def test_kg_loss_gradients(score, loss) -> None:
    tower = KGLinkTower(2, 3, score=score, loss=loss, margin=3.0).double()
    head, rel, tail, neg = torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([[3, 4], [0, 4]])
    if loss == "softmax":
        assert gradcheck(lambda n: tower.softmax_loss(n, head, rel, tail), (_rand(5, 3),))
    else:
        assert gradcheck(lambda n: tower.loss(tower(n[head], rel, n[tail]), tower(n[head], rel, n[neg])), (_rand(5, 3),))


def test_pair_losses_and_uncertainty_weighting_gradients() -> None:
    label = torch.tensor([1.0, 0.0, 1.0], dtype=F64)
    assert gradcheck(lambda x: LikeTower(2, pos_weight=2.0).loss(x, label), (_rand(3),))
    assert gradcheck(lambda x: RatingTower(2).loss(x, label * 4), (_rand(3),))
    joint = JointLoss(["a", "b"], mode="uncertainty").double()
    assert gradcheck(lambda a, b: joint({"a": a.square().sum(), "b": b.abs().sum()})[0], (_rand(2), _rand(2)))
    joint.zero_grad()
    total, _ = joint({"a": torch.tensor(4.0, dtype=F64), "b": torch.tensor(0.25, dtype=F64)})
    total.backward()  # d/ds (L e^-s + s) = 1 - L at s = 0: s rises for a loss above 1, falls below
    assert joint.log_vars.grad.tolist() == pytest.approx([-3.0, 0.75])


# ---------------------------------------------------------------- 16-bit scores
def _bf16_confident_scores(b: int = 32, k: int = 64, top: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Late in training: the positive (about ``top``) well above its negatives (about 0 +- 3)."""
    g = torch.Generator().manual_seed(0)
    pos = top + 0.5 * torch.randn(b, generator=g)
    neg = 3.0 * torch.randn(b, k, generator=g)
    return pos.bfloat16(), neg.bfloat16()


def _loss_and_grads(fn, *inputs: torch.Tensor) -> tuple[float, torch.Tensor]:
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    loss = fn(*leaves)
    loss.backward()
    return float(loss.detach()), torch.cat([x.grad.double().reshape(-1) for x in leaves])


@pytest.mark.parametrize("autocast", [False, True])
def test_the_softmax_loss_of_bf16_scores_follows_float64(autocast) -> None:
    """bf16 scores reach ``softmax_loss`` under CPU autocast (``score_all``'s product, and
    ``forward``'s sum, which CPU autocast leaves in bf16) and in a bf16 model. ``logsumexp -
    pos`` had been taken in bf16: loss 0.0 or 10x off, and the gradient 80-95% off."""
    pos, neg = _bf16_confident_scores()
    valid = torch.ones(neg.shape, dtype=torch.bool)
    valid[0, :3] = False

    def loss(p: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        return RetrievalTower.softmax_loss(p, n, valid)

    exact_loss, exact_grad = _loss_and_grads(loss, pos.double(), neg.double())
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss, grad = _loss_and_grads(loss, pos, neg)
    assert loss == pytest.approx(exact_loss, rel=0.01)
    assert float((grad - exact_grad).norm() / exact_grad.norm()) < 0.02


def test_full_softmax_cross_entropy_of_bf16_scores_follows_float64() -> None:
    """A ``bf16-true`` model: ``F.cross_entropy`` on bf16 scores had rounded ``softmax - 1`` on a
    dominant positive to 0 (loss 0, gradient 76% off). Under autocast it runs in float32 already."""
    pos, neg = _bf16_confident_scores(8, 40, top=18.0)
    scores = torch.cat([neg[:, :3], pos.unsqueeze(-1), neg[:, 3:]], dim=-1)  # the positive: item 3
    tower, target = RetrievalTower("full_softmax"), torch.full((8,), 3)

    def loss(s: torch.Tensor) -> torch.Tensor:
        return tower.loss(torch.zeros(8, 2, dtype=s.dtype), torch.zeros(41, 2, dtype=s.dtype), target, scores=s)

    exact_loss, exact_grad = _loss_and_grads(loss, scores.double())
    bf16_loss, bf16_grad = _loss_and_grads(loss, scores)
    assert bf16_loss == pytest.approx(exact_loss, rel=0.02)
    assert float((bf16_grad - exact_grad).norm() / exact_grad.norm()) < 0.02


def test_kg_softmax_loss_of_a_bf16_model_follows_float64() -> None:
    """The same for the KG tower's 1-N cross-entropy. DistMult with :math:`w_r = (1, -1)` and
    small integer node vectors: every score is exact in bf16, so float64 is the reference."""
    nodes = torch.tensor([[2, 2], [2, -2], [1, 0], [0, 1], [-1, 0], [0, -1], [-1, -1], [1, 1]], dtype=F64)
    head, rel, tail = torch.tensor([0]), torch.tensor([0]), torch.tensor([1])  # f(h, r, t) = 8, any other <= 4

    def run(dtype: torch.dtype) -> tuple[float, torch.Tensor]:
        tower = KGLinkTower(1, 2).to(dtype)
        with torch.no_grad():
            tower.relation.weight.copy_(torch.tensor([[1.0, -1.0]]))
        return _loss_and_grads(lambda n: tower.softmax_loss(n, head, rel, tail), nodes.to(dtype))

    exact_loss, exact_grad = run(F64)
    bf16_loss, bf16_grad = run(torch.bfloat16)
    assert bf16_loss == pytest.approx(exact_loss, rel=0.02)
    assert float((bf16_grad - exact_grad).norm() / exact_grad.norm()) < 0.02


# ---------------------------------------------------------------- empty batches
def test_every_tower_loss_of_an_empty_batch_is_zero_and_backpropagates() -> None:
    """0 rows of a task in a batch (a loader's last batch, a KG sampler that found no triple):
    the mean of nothing had been NaN, and one NaN step turns every weight to NaN."""
    empty = torch.zeros(0, requires_grad=True)
    nodes = torch.randn(4, 3, requires_grad=True)
    no_ids = torch.zeros(0, dtype=torch.long)
    losses = {
        "rating": RatingTower(2).loss(empty, torch.zeros(0)),
        "like": LikeTower(2).loss(empty, torch.zeros(0)),
        "kg_softplus": KGLinkTower(1, 3).loss(empty, torch.zeros(0, 2)),
        "kg_margin": KGLinkTower(1, 3, loss="margin").loss(empty, torch.zeros(0, 2)),
        "kg_softmax": KGLinkTower(1, 3, loss="softmax").softmax_loss(nodes, no_ids, no_ids, no_ids),
        "retrieval": RetrievalTower("bpr").loss(torch.zeros(0, 3), nodes, no_ids, torch.zeros(0, 2, dtype=torch.long)),
    }
    for task, value in losses.items():
        assert value.shape == () and float(value.detach()) == 0.0, task
    sum(losses.values()).backward()
    assert float(empty.grad.abs().sum()) == 0.0 and float(nodes.grad.abs().sum()) == 0.0


# ---------------------------------------------------------------- GradNorm
def test_gradnorm_ignores_a_zero_loss_rather_than_keeping_it_as_the_initial_loss() -> None:
    """A first batch without rows of task ``a`` gives it loss 0. Kept as :math:`L_a(0)`, its ratio
    became :math:`L_a / 10^{-12}` for good, and with the two tasks otherwise alike, ``b``'s weight
    fell to its floor (``1e-3``) within 20 steps."""
    joint = JointLoss(["a", "b"], mode="gradnorm", alpha=1.5)
    optimiser = torch.optim.SGD(joint.parameters(), lr=0.05)
    joint.balance({"a": torch.tensor(0.0), "b": torch.tensor(2.0)}, {"a": torch.tensor(0.0), "b": torch.tensor(1.0)})
    assert math.isnan(float(joint.initial_losses[0])) and float(joint.initial_losses[1]) == 2.0
    optimiser.zero_grad()
    for _ in range(20):  # the same loss ratio (1) and gradient norm (1) for both: nothing to rebalance
        joint.balance({"a": torch.tensor(2.0), "b": torch.tensor(2.0)}, {"a": torch.tensor(1.0), "b": torch.tensor(1.0)})
        optimiser.step()
        joint.renormalize()
        optimiser.zero_grad()
    assert joint.effective_weights() == pytest.approx({"a": 1.0, "b": 1.0})
