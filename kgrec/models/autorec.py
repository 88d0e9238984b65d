r"""Item-based AutoRec term of the rating tower: an item read through the ratings it received.

I-AutoRec (Sedhain et al., WWW 2015) encodes each item's vector of training ratings
:math:`\mathbf{r}_i \in \mathbb{R}^U` (zeros where unrated) into :math:`h` sigmoid units and
decodes one output per user. Written per (user, item) pair, with the target's own rating left out
of the item's input while training:

.. math::
    \mathbf{g}^{(-u)}_i = \sigma\Big(\mathbf{c} + \sum_{v \in \mathcal{R}_i \setminus \{u\}}
        r_{vi}\, \mathbf{V}_v\Big) \in \mathbb{R}^h, \qquad
    a_{ui} = \big\langle \mathbf{W}_u,\ \mathbf{g}^{(-u)}_i - \sigma(\mathbf{c}) \big\rangle

with :math:`\mathcal{R}_i` the users who rated :math:`i` in the TRAINING split and
:math:`\mathbf{V}, \mathbf{W} \in \mathbb{R}^{U \times h}`. AutoRec reconstructs every observed
entry from an input that contains it, so it can partly copy its targets; leaving :math:`r_{ui}`
out makes training see what inference sees (a valid or test rating is never in the input), and
generalises better. Subtracting :math:`\sigma(\mathbf{c})` (a per-user constant, which the user
bias absorbs) makes the term exactly 0 for an item without training ratings (a cold item): it
then has nothing to say, rather than one learned guess for every new item.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kgrec.models._sparse import SparseOperator


def rating_matrix(users: Tensor, items: Tensor, ratings: Tensor, num_users: int, num_items: int) -> Tensor:
    """The ``(U, I)`` sparse COO matrix of training ratings (a pair rated twice keeps the mean),
    the side input of :class:`ItemAutoRec`. Build it from the **training** split only."""
    if not users.shape == items.shape == ratings.shape or users.dim() != 1:
        raise ValueError(
            f"users, items, ratings: expected equal 1-d shapes, got {tuple(users.shape)}, "
            f"{tuple(items.shape)}, {tuple(ratings.shape)}"
        )
    index, shape = torch.stack([users, items]), (num_users, num_items)
    total = torch.sparse_coo_tensor(index, ratings.float(), shape, check_invariants=False).coalesce()
    count = torch.sparse_coo_tensor(index, torch.ones_like(ratings, dtype=torch.float32), shape, check_invariants=False)
    return torch.sparse_coo_tensor(
        total.indices(), total.values() / count.coalesce().values(), shape, check_invariants=False
    ).coalesce()


class ItemAutoRec(nn.Module):
    r"""The item-based AutoRec term :math:`a_{ui}` (see the module docstring).

    Args:
        num_users: users :math:`U` (rows of :math:`\mathbf{V}` and :math:`\mathbf{W}`).
        units: hidden units :math:`h`.
        init_std: standard deviation of the normal initialisation of
            :math:`\mathbf{V}, \mathbf{W}`. (default: ``0.03``)
    """

    def __init__(self, num_users: int, units: int, init_std: float = 0.03) -> None:
        super().__init__()
        self.num_users, self.units, self.init_std = num_users, units, init_std
        self.encoder = nn.Parameter(torch.empty(num_users, units))  # V
        self.encoder_bias = nn.Parameter(torch.empty(units))  # c
        self.decoder = nn.Parameter(torch.empty(num_users, units))  # W
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.encoder, std=self.init_std)
        nn.init.normal_(self.decoder, std=self.init_std)
        nn.init.zeros_(self.encoder_bias)

    def forward(self, ratings: SparseOperator, users: Tensor, items: Tensor, leave_out: bool = False) -> Tensor:
        """:math:`a_{ui}` for each pair ``(users[b], items[b])``, ``(B,)``.

        Args:
            ratings: the ``(I, U)`` matrix of training ratings (item rows).
            users, items: ``(B,)`` int64 indices.
            leave_out: remove each pair's own entry :math:`r_{ui}` of ``ratings`` from the item's
                input (training steps, whose pairs are training interactions; a pair rated twice
                holds the mean of its ratings there). ``False`` at inference.
        """
        if ratings.shape[1] != self.num_users:
            raise ValueError(f"ratings: expected shape (I, {self.num_users}), got {ratings.shape}")
        pre = (ratings @ self.encoder)[items] + self.encoder_bias  # (B, h)
        if leave_out:
            own = ratings.values_at(items, users)  # (B,) r_ui as stored, 0 for a pair not in it
            pre = pre - own.to(pre.dtype)[:, None] * self.encoder[users]
        return (self.decoder[users] * (torch.sigmoid(pre) - torch.sigmoid(self.encoder_bias))).sum(-1)

    def extra_repr(self) -> str:
        return f"num_users={self.num_users}, units={self.units}"
