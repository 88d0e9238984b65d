"""A run's users for queries: raw user ids to dataset indices (users the model trained on), and
each user's interactions: every item they saw (left out of their recommendations) and their
training history (what explanations point to)."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from kgrec.errors import NotFoundError, RetrievalError
from kgrec.retrieval.explain import HistoryItem
from kgrec.utils.names import CaseIndex

if TYPE_CHECKING:
    from kgrec.data.dataset import Dataset


def known(lookup: Callable[[str], int], token: str) -> int:
    """``lookup(token)``, or of ``token`` without surrounding spaces (``" 196"`` pasted from a
    table, as batch files' lines are read); ``KeyError`` when neither is known."""
    try:
        return lookup(token)
    except KeyError:
        return lookup(token.strip())


class RunUsers:
    """The users of ``dataset`` (a run's), with per-user lookups built at their first use."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._trained: np.ndarray | None = None  # (U,) bool: users with a training interaction
        self._seen_index: tuple[np.ndarray, np.ndarray] | None = None
        self._history_index: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
        self._by_case: CaseIndex | None = None  # built at the first unknown user

    def trained(self) -> np.ndarray:
        """``(U,)`` bool: the users with a training interaction."""
        if self._trained is None:
            self._trained = self.dataset.train.has_user(self.dataset.n_users)
        return self._trained

    def index(self, user: str) -> int:
        """Dataset index of a raw user id; :class:`NotFoundError` when the run does not know it,
        or knows it only from valid/test interactions (nothing of the user was trained);
        :class:`RetrievalError` for what is no id (a list of users: "unknown user '['u0']'")."""
        if not isinstance(user, (str, numbers.Integral)):
            several = isinstance(user, Iterable) and not isinstance(user, (bytes, dict))
            raise RetrievalError(f"expected one user id (a string or an integer), got {type(user).__name__} "
                                 f"{user!r:.60}" + ("; for several users, the batch methods (recommend_batch, predict_pairs)" if several else ""))  # fmt: skip
        try:
            index = known(self.dataset.user_index, str(user))
        except KeyError:
            examples = ", ".join(str(u) for u in self.dataset.users[:3])
            if self._by_case is None:
                self._by_case = CaseIndex(self.dataset.users)
            raise NotFoundError(
                f"unknown user '{user}': not one of the {self.dataset.n_users} users of this run "
                f"(raw user ids, e.g. {examples}){self._by_case.hint(str(user))}; for a new user, recommend from "
                f"the items they like or a text "
                f"(kgrec recommend --liked / --likes-text; Recommender.recommend_for_new_user)"
            ) from None
        if not self.trained()[index]:
            raise NotFoundError(
                f"user '{user}' has no training interactions in this run (the split put all of them in valid or "
                f"test, e.g. a user first seen after a global time split's cut), so the model learned nothing of "
                f"them; recommend for them as for a new user, from the items they like or a text (kgrec recommend "
                f"--liked / --likes-text; Recommender.recommend_for_new_user)"
            )
        return index

    def seen(self, user: int) -> np.ndarray:
        """Catalog positions of every item ``user`` interacted with (all parts of the dataset)."""
        if self._seen_index is None:
            ds = self.dataset
            users = np.concatenate([ds.train.user, ds.valid.user, ds.test.user])
            items = np.concatenate([ds.train.item, ds.valid.item, ds.test.item])
            order = np.argsort(users, kind="stable")
            indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=ds.n_users))])
            self._seen_index = (indptr, items[order])
        indptr, items = self._seen_index
        return np.unique(items[indptr[user] : indptr[user + 1]])

    def history(self, user: int, active: np.ndarray) -> list[HistoryItem]:
        """The user's training interactions with the ``active`` ``(n,)`` items (with ratings when
        the data has them)."""
        if self._history_index is None:
            train = self.dataset.train
            order = np.argsort(train.user, kind="stable")
            indptr = np.concatenate([[0], np.cumsum(np.bincount(train.user, minlength=self.dataset.n_users))])
            ratings = train.rating[order] if train.rating is not None else None
            self._history_index = (indptr, train.item[order], ratings)
        indptr, items, ratings = self._history_index
        lo, hi = indptr[user], indptr[user + 1]
        return [
            HistoryItem(int(i), float(ratings[lo + j]) if ratings is not None else None)
            for j, i in enumerate(items[lo:hi])
            if active[i]
        ]
