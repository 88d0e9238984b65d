"""Task towers. Each owns its loss: ``forward(...)`` gives predictions, ``loss(...)`` a scalar.

``RatingTower`` and ``LikeTower`` read a (user, item) pair of task representations;
``RetrievalTower`` is a two-tower dot product whose user and item vectors serve full ranking
alone; ``KGLinkTower`` scores knowledge-graph triples on graph-encoder node vectors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.models._sparse import SparseOperator, product_dtype
from kgrec.models.autorec import ItemAutoRec
from kgrec.models.trunk import MLP


def unit_vectors(x: Tensor, eps: float = 1e-12) -> Tensor:
    r"""Rows of ``x`` scaled to unit L2 norm, :math:`\mathbf{x} / \lVert \mathbf{x} \rVert`, as
    ``F.normalize`` gives them; a row of norm at most ``eps`` (a zero vector, e.g. an isolated
    graph node whose embedding is dropped) has no direction: it maps to 0 with no gradient,
    where ``F.normalize`` would send :math:`1 / \epsilon = 10^{12}` times its gradient back."""
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return torch.where(norm > eps, x / norm.clamp_min(eps), torch.zeros_like(x))


def at_least_fp32(x: Tensor) -> Tensor:
    """``x`` in float32 when it is a 16-bit float (bf16 / fp16: autocast's matrix products, a model
    held in bf16), else ``x`` itself, uncopied (float32, float64). A softmax loss subtracts the
    positive's score from a log-sum-exp of about the same size: rounded to bf16 (8 bits), that
    difference, and the gradient ``softmax - 1`` on the positive, were mostly rounding error
    once the positive dominated. The rule of :func:`~kgrec.models._sparse.product_dtype`."""
    return x.to(product_dtype(x.dtype))


def as_index(name: str, t: Tensor) -> Tensor:
    """``t`` as an int64 index tensor: any integer dtype is accepted (``int32`` from numpy or a
    data loader; ``F.cross_entropy`` takes int64 targets only, "expected target dtype to be Long
    or Byte, but got Int"); ``.long()`` returns an int64 tensor itself, uncopied. A float or bool
    tensor is refused: rounding a float, or reading a mask as item 0 / 1, would train silently on
    the wrong items."""
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise TypeError(f"{name}: expected an integer index tensor, got dtype {t.dtype}")
    return t.long()


def pair_features(z_u: Tensor, z_i: Tensor) -> Tensor:
    r""":math:`[\mathbf{z}_u; \mathbf{z}_i; \mathbf{z}_u \odot \mathbf{z}_i]`, ``(B, 3d)``."""
    return torch.cat([z_u, z_i, z_u * z_i], dim=-1)


class _PairTower(nn.Module):
    r"""Shared body of the rating and like towers:

    .. math::
        f(u, i) = \mu + b_u + b_i + \mathrm{MLP}([\mathbf{z}_u; \mathbf{z}_i; \mathbf{z}_u \odot \mathbf{z}_i])
    """

    def __init__(
        self,
        dim: int,
        num_users: int | None,
        num_items: int | None,
        hidden: Sequence[int],
        dropout: float,
        init_bias: float,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.init_bias = init_bias
        self.mlp = MLP(3 * dim, hidden, 1, dropout)
        self.global_bias = nn.Parameter(torch.empty(()))  # mu
        self.user_bias = nn.Embedding(num_users, 1) if num_users else None  # b_u
        self.item_bias = nn.Embedding(num_items, 1) if num_items else None  # b_i
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.mlp.reset_parameters()
        nn.init.constant_(self.global_bias, self.init_bias)
        for emb in (self.user_bias, self.item_bias):
            if emb is not None:
                nn.init.zeros_(emb.weight)

    def _score(self, z_u: Tensor, z_i: Tensor, users: Tensor | None, items: Tensor | None,
               item_mask: Tensor | None) -> Tensor:
        if z_u.shape != z_i.shape or z_u.size(-1) != self.dim:
            raise ValueError(f"z_u and z_i: expected equal shapes (B, {self.dim}), got "
                             f"{tuple(z_u.shape)} and {tuple(z_i.shape)}")
        out = self.mlp(pair_features(z_u, z_i)).squeeze(-1) + self.global_bias  # (B,)
        if self.user_bias is not None and users is not None:
            out = out + self.user_bias(users).squeeze(-1)
        if self.item_bias is not None and items is not None:
            b_i = self.item_bias(items).squeeze(-1)
            if item_mask is not None:  # cold items have no trained bias
                b_i = b_i * item_mask.to(b_i.dtype)
            out = out + b_i
        return out


class RatingTower(_PairTower):
    r"""Explicit rating regression:

    .. math::
        \hat{r}_{ui} = \mu + b_u + b_i + \mathrm{MLP}([\mathbf{z}_u; \mathbf{z}_i;
            \mathbf{z}_u \odot \mathbf{z}_i]), \qquad
        \mathcal{L} = \frac{1}{B} \sum_{(u,i)} (\hat{r}_{ui} - r_{ui})^2

    The global mean :math:`\mu` (initialised to the training mean) and the user / item biases
    (Koren et al., 2009) carry most of the RMSE gain over a plain interaction model. With
    an ``autorec`` module the prediction adds its item-based AutoRec term :math:`a_{ui}`
    (:class:`~kgrec.models.autorec.ItemAutoRec`), which reads the item through the training
    ratings it received.

    Args:
        dim: size :math:`d` of :math:`\mathbf{z}_u, \mathbf{z}_i`.
        num_users: number of users for :math:`b_u` (``None``: no user bias).
        num_items: number of items for :math:`b_i` (``None``: no item bias).
        hidden: MLP hidden sizes. (default: ``(64,)``)
        dropout: MLP dropout. (default: ``0.0``)
        global_mean: initial :math:`\mu`. (default: ``0.0``)
        rating_range: ``(low, high)`` clamp applied by :meth:`predict` (not while training).
        autorec: the AutoRec term added to the prediction, or ``None``. (default: ``None``)
    """

    def __init__(
        self,
        dim: int,
        num_users: int | None = None,
        num_items: int | None = None,
        hidden: Sequence[int] = (64,),
        dropout: float = 0.0,
        global_mean: float = 0.0,
        rating_range: tuple[float, float] | None = None,
        autorec: ItemAutoRec | None = None,
    ) -> None:
        super().__init__(dim, num_users, num_items, hidden, dropout, global_mean)
        self.rating_range = rating_range
        self.autorec = autorec

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if getattr(self, "autorec", None) is not None:  # None while _PairTower.__init__ runs
            self.autorec.reset_parameters()

    def forward(self, z_u: Tensor, z_i: Tensor, users: Tensor | None = None, items: Tensor | None = None,
                item_mask: Tensor | None = None, ratings: SparseOperator | None = None,
                leave_out: bool = False) -> Tensor:
        """Predicted ratings :math:`\\hat{r}_{ui}`, ``(B,)``. ``item_mask`` ``(B,)`` bool: ``False``
        for items without a trained bias (cold). With the AutoRec term, ``ratings`` is the
        ``(I, U)`` training rating matrix and ``leave_out`` removes each pair's own rating from
        the item's input (training steps only; see :class:`~kgrec.models.autorec.ItemAutoRec`).
        ``items=None``: items outside the trained catalogue (added after training), with no
        bias and no training ratings, so :math:`b_i` and the AutoRec term are 0."""
        out = self._score(z_u, z_i, users, items, item_mask)
        if self.autorec is not None and items is not None:
            if ratings is None or users is None:
                raise ValueError("the rating tower's AutoRec term needs users and the training ratings")
            out = out + self.autorec(ratings, users, items, leave_out)
        return out

    def predict(self, z_u: Tensor, z_i: Tensor, users: Tensor | None = None, items: Tensor | None = None,
                item_mask: Tensor | None = None, ratings: SparseOperator | None = None) -> Tensor:
        """:meth:`forward` clamped to ``rating_range``."""
        pred = self.forward(z_u, z_i, users, items, item_mask, ratings)
        if self.rating_range is not None:
            pred = pred.clamp(*self.rating_range)
        return pred

    def loss(self, pred: Tensor, rating: Tensor) -> Tensor:
        """Mean squared error of ``pred`` ``(B,)`` against ``rating`` ``(B,)`` (other shapes are
        refused: ``F.mse_loss`` would broadcast a ``(B, 1)`` target to ``B x B`` pairs); 0 when
        ``B = 0``."""
        if pred.shape != rating.shape:
            raise ValueError(f"rating: expected shape {tuple(pred.shape)} (one per prediction), got {tuple(rating.shape)}")
        if pred.numel() == 0:  # no rows: nothing to learn, not the NaN mean of nothing
            return pred.sum() * 0.0
        return F.mse_loss(pred, rating.to(pred.dtype))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, rating_range={self.rating_range}"


class LikeTower(_PairTower):
    r"""Binary "like" classification (label :math:`y_{ui} = [r_{ui} \geq 4]`):

    .. math::
        s_{ui} = \mu + b_u + b_i + \mathrm{MLP}([\mathbf{z}_u; \mathbf{z}_i;
            \mathbf{z}_u \odot \mathbf{z}_i]) \;[+\, e^{\theta} a_{ui}], \qquad
        \mathcal{L} = -\frac{1}{B} \sum_{(u,i)} \big[ w_+ y_{ui} \log \sigma(s_{ui})
            + (1 - y_{ui}) \log(1 - \sigma(s_{ui})) \big]

    Args:
        dim: size :math:`d` of :math:`\mathbf{z}_u, \mathbf{z}_i`.
        num_users: number of users for :math:`b_u` (``None``: no user bias).
        num_items: number of items for :math:`b_i` (``None``: no item bias).
        hidden: MLP hidden sizes. (default: ``(64,)``)
        dropout: MLP dropout. (default: ``0.0``)
        pos_weight: :math:`w_+`. (default: ``None``, i.e. 1)
        affinity: add a content prior :math:`a_{ui}` given with each pair (the cosine of the
            item's text to the user's items', :meth:`MultiTaskRecommender.text_affinity`) with
            the learned weight :math:`e^{\theta}`, from :math:`\theta = \log 10` (a cosine
            logit at temperature 0.1, as contrastive text models score). (default: ``False``)
    """

    def __init__(
        self,
        dim: int,
        num_users: int | None = None,
        num_items: int | None = None,
        hidden: Sequence[int] = (64,),
        dropout: float = 0.0,
        pos_weight: float | None = None,
        affinity: bool = False,
    ) -> None:
        super().__init__(dim, num_users, num_items, hidden, dropout, 0.0)
        self.pos_weight = pos_weight
        # theta, set here: another reset_parameters() would draw the MLP's weights again
        self.affinity_log_weight = nn.Parameter(torch.tensor(math.log(10.0))) if affinity else None

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if getattr(self, "affinity_log_weight", None) is not None:  # None while the base class builds
            nn.init.constant_(self.affinity_log_weight, math.log(10.0))

    def forward(self, z_u: Tensor, z_i: Tensor, users: Tensor | None = None, items: Tensor | None = None,
                item_mask: Tensor | None = None, affinity: Tensor | None = None) -> Tensor:
        """Logits :math:`s_{ui}`, ``(B,)``; ``affinity`` :math:`a_{ui}` ``(B,)`` is required
        when the tower was built with ``affinity`` and refused otherwise."""
        out = self._score(z_u, z_i, users, items, item_mask)
        if (affinity is None) != (self.affinity_log_weight is None):
            raise ValueError("affinity: give it exactly when the like tower was built with affinity=True")
        if affinity is not None and self.affinity_log_weight is not None:
            if affinity.shape != out.shape:
                raise ValueError(f"affinity: expected shape {tuple(out.shape)}, got {tuple(affinity.shape)}")
            out = out + self.affinity_log_weight.exp() * affinity.to(out.dtype)
        return out

    def predict(self, z_u: Tensor, z_i: Tensor, users: Tensor | None = None, items: Tensor | None = None,
                item_mask: Tensor | None = None, affinity: Tensor | None = None) -> Tensor:
        """Probabilities :math:`\\sigma(s_{ui})`, ``(B,)``."""
        return torch.sigmoid(self.forward(z_u, z_i, users, items, item_mask, affinity))

    def loss(self, logits: Tensor, label: Tensor) -> Tensor:
        """Binary cross-entropy with logits (the formula above, stable at any logit); 0 when ``B = 0``."""
        if logits.numel() == 0:  # no rows: nothing to learn, not the NaN mean of nothing
            return logits.sum() * 0.0
        pw = None if self.pos_weight is None else logits.new_tensor(self.pos_weight)
        return F.binary_cross_entropy_with_logits(logits, label.to(logits.dtype), pos_weight=pw)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, pos_weight={self.pos_weight}, affinity={self.affinity_log_weight is not None}"


RetrievalLoss = Literal["bpr", "sampled_softmax", "full_softmax"]


class RetrievalTower(nn.Module):
    r"""Two-tower retrieval: :math:`s(u, i) = \langle \mathbf{q}_u, \mathbf{k}_i \rangle / \tau`,
    with :math:`\mathbf{q}_u, \mathbf{k}_i` the (optionally L2-normalised) task representations.
    :meth:`user_vectors` and :meth:`item_vectors` give :math:`\mathbf{q}, \mathbf{k}` alone, so
    full ranking is one matrix product (or a FAISS inner-product index); :math:`\tau` does not
    change the ranking. Losses over a user :math:`u`, its positive :math:`i^+` and negatives
    :math:`\{i^-_k\}_{k=1}^{K}`:

    .. math::
        \texttt{bpr}:\ \mathcal{L} = -\frac{1}{BK} \sum_{u} \sum_{k}
            \log \sigma\big(s(u, i^+) - s(u, i^-_k)\big)
        \qquad \text{(Rendle et al., UAI 2009)}

    .. math::
        \texttt{sampled\_softmax}:\ \mathcal{L} = -\frac{1}{B} \sum_{u}
            \log \frac{e^{s(u, i^+) - \log Q(i^+)}}{e^{s(u, i^+) - \log Q(i^+)}
            + \sum_k e^{s(u, i^-_k) - \log Q(i^-_k)}}

    with the logQ correction of Yi et al., RecSys 2019 (:math:`Q` = the negative sampler's item
    distribution; omit it for uniform sampling, where it cancels), and

    .. math::
        \texttt{full\_softmax}:\ \mathcal{L} = -\frac{1}{B} \sum_{u}
            \log \frac{e^{s(u, i^+)}}{\sum_{j \in \mathcal{I}} e^{s(u, j)}}

    over the whole catalogue (cheap at a few thousand items; no negatives needed). Sampled
    negatives equal to the positive ("accidental hits") are masked out. The tower has no
    parameters.

    Args:
        loss: ``"bpr"``, ``"sampled_softmax"`` or ``"full_softmax"``. (default: ``"bpr"``)
        temperature: :math:`\tau`. (default: ``1.0``)
        normalize: L2-normalise :math:`\mathbf{q}, \mathbf{k}` (cosine scores; then use a
            small :math:`\tau`, e.g. 0.1). (default: ``False``)
    """

    def __init__(self, loss: RetrievalLoss = "bpr", temperature: float = 1.0, normalize: bool = False) -> None:
        super().__init__()
        if loss not in ("bpr", "sampled_softmax", "full_softmax"):
            raise ValueError(f"loss: expected 'bpr', 'sampled_softmax' or 'full_softmax', got {loss!r}")
        if temperature <= 0:
            raise ValueError(f"temperature: expected > 0, got {temperature}")
        self.loss_kind = loss
        self.temperature = temperature
        self.normalize = normalize

    def reset_parameters(self) -> None:
        """No parameters."""

    def user_vectors(self, z_u: Tensor) -> Tensor:
        """:math:`\\mathbf{q}_u`, ``(n, d)``: rank items by ``q @ k.T``."""
        return F.normalize(z_u, dim=-1) if self.normalize else z_u

    def item_vectors(self, z_i: Tensor) -> Tensor:
        """:math:`\\mathbf{k}_i`, ``(n, d)``."""
        return F.normalize(z_i, dim=-1) if self.normalize else z_i

    def forward(self, z_u: Tensor, z_i: Tensor) -> Tensor:
        """Scores :math:`s(u, i)`: ``z_u`` ``(B, d)`` with ``z_i`` ``(B, d)`` -> ``(B,)``, or with
        ``z_i`` ``(B, K, d)`` -> ``(B, K)``."""
        q, k = self.user_vectors(z_u), self.item_vectors(z_i)
        if k.dim() == q.dim() + 1:
            q = q.unsqueeze(-2)
        return (q * k).sum(-1) / self.temperature

    def score_all(self, z_u: Tensor, z_items: Tensor) -> Tensor:
        """:math:`s(u, j)` for every item: ``(B, d)``, ``(I, d)`` -> ``(B, I)``."""
        scores = self.user_vectors(z_u) @ self.item_vectors(z_items).T
        # At tau = 1 the division would be one more (B, I) pass forward and one backward (a tenth
        # of a training step on a 30k-item catalogue), for the same numbers.
        return scores if self.temperature == 1.0 else scores / self.temperature

    def loss(
        self,
        z_u: Tensor,
        z_items: Tensor,
        pos_items: Tensor,
        neg_items: Tensor | None = None,
        log_q: Tensor | None = None,
        candidates: Tensor | None = None,
        scores: Tensor | None = None,
    ) -> Tensor:
        """The configured loss.

        Args:
            z_u: ``(B, d)`` user representations.
            z_items: ``(I, d)`` representations of the whole catalogue (computed once per step).
            pos_items: ``(B,)`` positive item per user (any integer dtype, as every index here).
            neg_items: ``(B, K)`` sampled negatives (``bpr``, ``sampled_softmax``).
            log_q: ``(I,)`` log sampling probability of each item (``sampled_softmax`` only).
            candidates: ``(I,)`` bool, the items that may serve as negatives (e.g. the items
                with training interactions: nothing is known about the others yet); default all.
            scores: ``(B, I)`` :meth:`score_all` of ``z_u``, when already computed (``full_softmax``).
        """
        pos_items = as_index("pos_items", pos_items)
        neg_items = None if neg_items is None else as_index("neg_items", neg_items)
        if pos_items.numel() == 0:  # no retrieval rows in this batch: nothing to learn, not NaN
            return z_u.sum() * 0.0
        if self.loss_kind == "full_softmax":
            if scores is None:
                scores = self.score_all(z_u, z_items)  # (B, I)
                if candidates is not None:  # in place: no (B, I) copy, and the product's backward does not read it
                    scores.masked_fill_(~candidates, float("-inf"))
            elif candidates is not None:  # the caller's scores, shared with another loss: out of place
                scores = scores.masked_fill(~candidates, float("-inf"))
            return F.cross_entropy(at_least_fp32(scores), pos_items)
        if neg_items is None:
            raise ValueError(f"neg_items: required by the {self.loss_kind!r} loss")
        if neg_items.dim() == 1:
            neg_items = neg_items.unsqueeze(-1)
        pos = self.forward(z_u, z_items[pos_items])  # (B,)
        neg = self.forward(z_u, z_items[neg_items])  # (B, K)
        valid = neg_items != pos_items.unsqueeze(-1)  # (B, K): drop accidental hits
        if candidates is not None:
            valid = valid & candidates[neg_items]
        if self.loss_kind == "bpr":
            return self.bpr_loss(pos, neg, valid)
        if log_q is not None:
            pos = pos - log_q[pos_items]
            neg = neg - log_q[neg_items]
        return self.softmax_loss(pos, neg, valid)

    def shared_softmax_loss(
        self, z_u: Tensor, z_items: Tensor, pos_items: Tensor, shared_items: Tensor, n_candidates: int,
        scores: Tensor | None = None,
    ) -> Tensor:
        r"""Sampled softmax over negatives shared by the whole batch: :math:`K` items :math:`S`
        drawn uniformly without replacement from the :math:`n` candidate items, once per step,

        .. math::
            \mathcal{L} = -\frac{1}{B} \sum_u \log \frac{e^{s(u, i^+)}}
                {e^{s(u, i^+)} + \frac{n}{K} \sum_{j \in S,\, j \ne i^+} e^{s(u, j)}}

        The factor :math:`n / K` (the logQ correction of a uniform sample, Bengio and Senécal,
        2008) makes the sum estimate the full softmax's denominator, which it equals when
        :math:`S` holds every candidate. One ``(B, K)`` product instead of ``full_softmax``'s
        ``(B, I)``, and no ``(B, K, d)`` gather as with negatives drawn per row.

        Args:
            z_u: ``(B, d)`` user representations.
            z_items: ``(I, d)`` representations of the whole catalogue.
            pos_items: ``(B,)`` positive item per user.
            shared_items: ``(K,)`` the sampled items :math:`S`.
            n_candidates: :math:`n`, the number of items :math:`S` was drawn from.
            scores: ``(B, K)`` :meth:`score_all` of ``z_u`` against ``z_items[shared_items]``,
                when already computed (the teacher's term shares it).
        """
        pos_items, shared_items = as_index("pos_items", pos_items), as_index("shared_items", shared_items)
        if pos_items.numel() == 0:
            return z_u.sum() * 0.0
        scores = self.score_all(z_u, z_items[shared_items]) if scores is None else scores  # (B, K)
        pos = self.forward(z_u, z_items[pos_items])  # (B,)
        valid = shared_items.unsqueeze(0) != pos_items.unsqueeze(-1)  # (B, K): the positive is not its own negative
        return self.softmax_loss(pos, scores + math.log(n_candidates / len(shared_items)), valid)

    @staticmethod
    def distillation_loss(scores: Tensor, teacher_scores: Tensor, temperature: float) -> Tensor:
        r"""Cross-entropy to a teacher's ranking of the items a user has not interacted with.

        .. math::
            \mathcal{L}_{\text{KD}} = -\frac{1}{B} \sum_u \sum_{j \in \mathcal{C}_u}
                p^T_{uj} \log \frac{e^{s(u, j)}}{\sum_{l \in \mathcal{C}_u} e^{s(u, l)}},
            \qquad p^T_{uj} = \frac{e^{t_{uj} / T}}{\sum_{l \in \mathcal{C}_u} e^{t_{ul} / T}}

        (Hinton et al., 2015) with :math:`t_{uj}` the teacher's scores (e.g. EASE's
        :math:`X_u B`), :math:`T` its temperature and :math:`\mathcal{C}_u` the items the
        teacher ranks for :math:`u` (``teacher_scores`` > -inf: the user's training items are
        left out, so the term does not push them down against the positives of the main loss;
        the mean runs over the :math:`B` rows with a non-empty :math:`\mathcal{C}_u`, and is 0 when
        there are none, e.g. a batch without retrieval rows).

        Args:
            scores: ``(B, I)`` the tower's scores :math:`s(u, j)` (:meth:`score_all`).
            teacher_scores: ``(B, I)`` teacher scores, ``-inf`` outside :math:`\mathcal{C}_u`.
            temperature: :math:`T` > 0.
        """
        scores = at_least_fp32(scores)  # bf16 under autocast; logsumexp is not autocast to fp32, and its rounding skewed the gradient
        ranked = teacher_scores > float("-inf")  # (B, I)
        rows = ranked.any(-1)  # a user who has interacted with every item has nothing to learn here
        if not bool(rows.any()):  # also B = 0 (no retrieval row in the batch): the mean of nothing is NaN
            return scores.sum() * 0.0
        if not bool(rows.all()):
            scores, teacher_scores, ranked = scores[rows], teacher_scores[rows], ranked[rows]
        log_norm = scores.masked_fill(~ranked, float("-inf")).logsumexp(-1)  # (B,) log sum_{l in C_u} e^s
        p_teacher = (teacher_scores / temperature).softmax(-1)  # 0 outside C_u, rows sum to 1
        # -sum_j p_j (s_j - log_norm) = log_norm - sum_j p_j s_j: scores stay finite, no 0 * -inf
        return (log_norm - (p_teacher * scores).sum(-1)).mean()

    @staticmethod
    def bpr_loss(pos: Tensor, neg: Tensor, valid: Tensor | None = None) -> Tensor:
        """BPR over ``pos`` ``(B,)`` and ``neg`` ``(B, K)`` scores; ``valid`` masks pairs."""
        losses = -F.logsigmoid(pos.unsqueeze(-1) - neg)  # (B, K)
        if valid is None:
            return losses.mean()
        return (losses * valid).sum() / valid.sum().clamp(min=1)

    @staticmethod
    def softmax_loss(pos: Tensor, neg: Tensor, valid: Tensor | None = None) -> Tensor:
        r"""Softmax cross-entropy with the positive at column 0 of ``[pos, neg]``:
        :math:`\frac{1}{B} \sum_u \big[\log\big(e^{p_u} + \sum_{k\,\text{valid}} e^{n_{uk}}\big) - p_u\big]`,
        computed in float32 at least (:func:`at_least_fp32`; with bf16 scores from CPU autocast
        or a bf16 model it had been rounding error once the positive dominated)."""
        pos, neg = at_least_fp32(pos), at_least_fp32(neg)
        if valid is not None:
            neg = neg.masked_fill(~valid, float("-inf"))
        logits = torch.cat([pos.unsqueeze(-1), neg], dim=-1)  # (B, 1+K)
        return (torch.logsumexp(logits, dim=-1) - pos).mean()

    def extra_repr(self) -> str:
        return f"loss={self.loss_kind!r}, temperature={self.temperature}, normalize={self.normalize}"


class KGLinkTower(nn.Module):
    r"""Knowledge-graph link prediction on node vectors :math:`\mathbf{e}` with learned relation
    vectors :math:`\mathbf{w}_r`:

    .. math::
        \texttt{distmult}:\ f(h, r, t) = \langle \mathbf{e}_h, \mathbf{w}_r, \mathbf{e}_t \rangle
            = \sum_k e_{h,k}\, w_{r,k}\, e_{t,k}
        \qquad \text{(Yang et al., ICLR 2015)}

    .. math::
        \texttt{transe}:\ f(h, r, t) = -\lVert \mathbf{e}_h + \mathbf{w}_r - \mathbf{e}_t \rVert_p
        \qquad \text{(Bordes et al., NeurIPS 2013)}

    trained on true triples against corrupted tails :math:`t^-_1, \dots, t^-_K` (training draws
    them uniformly from the nodes other than :math:`t`, :func:`kgrec.train.sampling.sample_kg_batch`):

    .. math::
        \texttt{softplus}:\ \mathcal{L} = \frac{1}{B} \sum \mathrm{softplus}(-f^+)
            + \frac{1}{BK} \sum \mathrm{softplus}(f^-), \qquad
        \texttt{margin}:\ \mathcal{L} = \frac{1}{BK} \sum \big[\gamma - f^+ + f^-\big]_+

    or, with ``loss="softmax"``, against every node at once, both ends of each triple
    (1-N scoring with cross-entropy, Dettmers et al., AAAI 2018; Lacroix et al., ICML 2018),
    without the sampled tails:

    .. math::
        \mathcal{L} = -\frac{1}{2B} \sum_{(h, r, t)} \Big[ \log \frac{e^{f(h, r, t)}}{\sum_n e^{f(h, r, n)}}
            + \log \frac{e^{f(h, r, t)}}{\sum_n e^{f(n, r, t)}} \Big]

    For TransE the entity vectors are L2-normalised first by default (Bordes et al.; otherwise
    the margin loss can be lowered by inflating all vectors); a zero vector stays 0, with no
    gradient (:func:`unit_vectors`).

    Args:
        num_relations: number of relations.
        dim: vector size :math:`d`.
        score: ``"distmult"`` or ``"transe"``. (default: ``"distmult"``)
        loss: ``"softplus"``, ``"margin"`` or ``"softmax"`` (memory ``B x N`` per step).
            (default: ``"softplus"``)
        margin: :math:`\gamma`. (default: ``1.0``)
        p_norm: :math:`p` of the TransE distance. (default: ``1``)
        normalize_entities: L2-normalise entity vectors before scoring. (default: ``None``:
            ``True`` for TransE, ``False`` for DistMult)
    """

    def __init__(
        self,
        num_relations: int,
        dim: int,
        score: Literal["distmult", "transe"] = "distmult",
        loss: Literal["softplus", "margin", "softmax"] = "softplus",
        margin: float = 1.0,
        p_norm: int = 1,
        normalize_entities: bool | None = None,
    ) -> None:
        super().__init__()
        if score not in ("distmult", "transe"):
            raise ValueError(f"score: expected 'distmult' or 'transe', got {score!r}")
        if loss not in ("softplus", "margin", "softmax"):
            raise ValueError(f"loss: expected 'softplus', 'margin' or 'softmax', got {loss!r}")
        self.num_relations = num_relations
        self.dim = dim
        self.score_kind = score
        self.loss_kind = loss
        self.margin = margin
        self.p_norm = p_norm
        self.normalize_entities = (score == "transe") if normalize_entities is None else normalize_entities
        self.relation = nn.Embedding(num_relations, dim)  # w_r
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.score_kind == "distmult":
            nn.init.ones_(self.relation.weight)  # start as a plain dot product
            self.relation.weight.data.add_(0.1 * torch.randn_like(self.relation.weight))
        else:
            nn.init.xavier_uniform_(self.relation.weight)

    def forward(self, head: Tensor, rel: Tensor, tail: Tensor) -> Tensor:
        """Scores :math:`f(h, r, t)`: ``head`` ``(B, d)``, ``rel`` ``(B,)`` int64 and ``tail``
        ``(B, d)`` -> ``(B,)``, or ``tail`` ``(B, K, d)`` -> ``(B, K)``."""
        if self.normalize_entities:
            head, tail = unit_vectors(head), unit_vectors(tail)
        w = self.relation(rel)  # (B, d)
        if tail.dim() == head.dim() + 1:
            head, w = head.unsqueeze(-2), w.unsqueeze(-2)
        if self.score_kind == "distmult":
            return (head * w * tail).sum(-1)
        return -torch.linalg.vector_norm(head + w - tail, ord=self.p_norm, dim=-1)

    def score_all(self, known: Tensor, rel: Tensor, nodes: Tensor, predict: Literal["tail", "head"]) -> Tensor:
        r"""Scores of every node as the missing end of ``(h, r, ?)`` (``predict="tail"``,
        ``known`` holds :math:`\mathbf{e}_h`) or ``(?, r, t)`` (``"head"``, ``known`` holds
        :math:`\mathbf{e}_t`): ``known`` ``(B, d)``, ``rel`` ``(B,)``, ``nodes`` ``(N, d)`` ->
        ``(B, N)``, equal to :meth:`forward` on each candidate without its ``(B, N, d)``
        tensor. DistMult is symmetric in :math:`h, t`, so both sides are
        :math:`(\mathbf{e} \odot \mathbf{w}_r)\, \mathbf{E}^\top`; TransE's tails are
        :math:`-\lVert (\mathbf{e}_h + \mathbf{w}_r) - \mathbf{e}_n \rVert_p` and its heads
        :math:`-\lVert \mathbf{e}_n - (\mathbf{e}_t - \mathbf{w}_r) \rVert_p`."""
        if predict not in ("tail", "head"):
            raise ValueError(f"predict: expected 'tail' or 'head', got {predict!r}")
        if self.normalize_entities:
            known, nodes = unit_vectors(known), unit_vectors(nodes)
        w = self.relation(rel)  # (B, d)
        if self.score_kind == "distmult":
            return (known * w) @ nodes.T
        anchor = known + w if predict == "tail" else known - w
        return -torch.cdist(anchor, nodes, p=float(self.p_norm))

    def softmax_loss(self, nodes: Tensor, head: Tensor, rel: Tensor, tail: Tensor) -> Tensor:
        """The ``softmax`` loss of the triples ``(head, rel, tail)`` (``(B,)`` node and
        relation ids, any integer dtype) over all ``nodes`` ``(N, d)``; 0 when ``B = 0``."""
        head, rel, tail = as_index("head", head), as_index("rel", rel), as_index("tail", tail)
        if head.numel() == 0:  # no triples: nothing to learn, not the NaN mean of nothing
            return nodes.sum() * 0.0
        tails = at_least_fp32(self.score_all(nodes[head], rel, nodes, "tail"))  # (B, N)
        heads = at_least_fp32(self.score_all(nodes[tail], rel, nodes, "head"))  # (B, N)
        return 0.5 * (F.cross_entropy(tails, tail) + F.cross_entropy(heads, head))

    def loss(self, pos: Tensor, neg: Tensor) -> Tensor:
        """Loss from ``pos`` ``(B,)`` and ``neg`` ``(B, K)`` triple scores (``softplus`` or
        ``margin``; ``softmax`` is :meth:`softmax_loss`, and refused here: it had silently given
        the margin loss); 0 when ``B = 0``."""
        if self.loss_kind == "softmax":
            raise ValueError("loss: this tower's loss is 'softmax', over every node: call softmax_loss(nodes, head, rel, tail)")
        if pos.numel() == 0:  # no triples: nothing to learn, not the NaN mean of nothing
            return pos.sum() * 0.0 + neg.sum() * 0.0
        if neg.dim() == 1:
            neg = neg.unsqueeze(-1)
        if self.loss_kind == "softplus":
            return F.softplus(-pos).mean() + F.softplus(neg).mean()
        return F.relu(self.margin - pos.unsqueeze(-1) + neg).mean()

    def extra_repr(self) -> str:
        return (
            f"num_relations={self.num_relations}, dim={self.dim}, score={self.score_kind!r}, "
            f"loss={self.loss_kind!r}, margin={self.margin}, normalize_entities={self.normalize_entities}"
        )
