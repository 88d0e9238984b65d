"""Evaluate ranked lists made by another tool on a kgrec split (``kgrec eval-lists``).

With ``kgrec data split`` another recommender trains on kgrec's exact split; its top-K lists,
one JSON line per user, are then scored here by the same code and protocol that scores kgrec's
own runs (:func:`~kgrec.eval.ranking.evaluate_split`): the same relevant items, the same users,
the user's training (and, on test, valid) items left out of the list before it is cut at K, and
the same list metrics. A line is ``{"user": "196", "items": ["50", "181", ...]}``, best first,
or ``{"user": "196", "results": [{"item_id": "50", ...}, ...]}`` as ``kgrec recommend --out``
writes it (with ``--include-seen``: without it, ``recommend`` leaves out the user's test items
too, as serving should). A user of the part without a line counts as an empty list (no hits).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from kgrec.data import Dataset, Interactions
from kgrec.errors import DataError, KgrecError
from kgrec.eval.ranking import ScoreFn, cold_candidates, evaluate_split, known_users_part

#: The format, as errors about a line that is not in it say.
FORMAT = 'expected JSON lines, one {"user": ID, "items": [ID, ...]} per user, best first'


def read_lists(path: str | Path, dataset: Dataset) -> dict[int, list[int]]:
    """Each user's ranked items (dataset indices) from a JSON-lines file.

    Raises:
        DataError: the file is missing or a folder, or a line is not UTF-8, not JSON (file:line,
            and the column), not a JSON object with a known ``user`` and a list of known items
            (``items``, or ``results`` of ``{"item_id"}``), or repeats a user or an item (file:line).
    """
    path = Path(path)
    if path.is_dir():
        raise DataError("is a folder: expected a JSON-lines file of ranked lists, one per user", path)
    if not path.exists():  # a pipe is read as a file (/dev/stdin, <(convert ...)): it had been "not found"
        raise DataError("lists file not found", path)
    user_of = {str(u): i for i, u in enumerate(dataset.users)}
    item_of = {str(t): i for i, t in enumerate(dataset.items)}
    lists: dict[int, list[int]] = {}
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:  # a byte-order mark is not part of line 1
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                numpy = " (a NumPy .npy file: write one JSON line per user instead)" if raw.startswith(b"\x93NUMPY") else ""
                raise DataError(f"byte {error.start + 1} is not UTF-8 ({raw[error.start]:#04x}): expected a "
                                f"UTF-8 text file{numpy}; {FORMAT}", path, number) from None  # fmt: skip
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:  # its own "line 1 column N" counts within this one line
                ends = ("; the lines end in a bare carriage return (\\r), as old Mac files do: expected \\n or \\r\\n line "
                        "ends, one JSON object per line") if "\r" in line.rstrip("\r\n") else ""  # fmt: skip
                raise DataError(f"column {error.colno}: not JSON ({error.msg}){ends}; {FORMAT}", path, number) from None
            user, items = _fields(row, path, number)
            if user not in user_of:
                raise DataError(f"unknown user '{user}': not a user of {dataset.name}", path, number)
            if user_of[user] in lists:
                raise DataError(f"user '{user}' has a list on an earlier line; give one list per user", path, number)
            unknown = [t for t in items if t not in item_of]
            if unknown:
                raise DataError(f"unknown item '{unknown[0]}': not an item of {dataset.name}; lists name items by the "
                                f"dataset's own ids, as `kgrec data split` writes them (a tool's internal indices "
                                f"need mapping back: RecBole's dataset.id2token)", path, number)  # fmt: skip
            if len(set(items)) != len(items):  # named: in a list of 1,000 it had to be searched for
                again = next(t for t, count in Counter(items).items() if count > 1)
                raise DataError(f"user '{user}': an item appears twice in the list ('{again}')", path, number)
            lists[user_of[user]] = [item_of[t] for t in items]
    return lists


def _fields(row: Any, path: Path, number: int) -> tuple[str, list[str]]:
    expected = 'expected {"user": ID, "items": [ID, ...]} or {"user": ID, "results": [{"item_id": ID}, ...]}'
    if not isinstance(row, dict) or "user" not in row:
        raise DataError(expected, path, number)
    if isinstance(row.get("items"), list):
        items = row["items"]
    elif isinstance(row.get("results"), list) and all(isinstance(r, dict) and "item_id" in r for r in row["results"]):
        items = [r["item_id"] for r in row["results"]]
    else:
        raise DataError(expected, path, number)
    if not all(isinstance(t, str | int) and not isinstance(t, bool) for t in [row["user"], *items]):
        raise DataError("user and item ids must be strings or integers", path, number)
    return str(row["user"]), [str(t) for t in items]


def lists_score_fn(lists: dict[int, list[int]], n_items: int) -> ScoreFn:
    """Scores that rank each user's listed items in the list's order, above every other item
    (``-inf``: never counted, as a list shorter than K is not filled up)."""

    def score(users: torch.Tensor) -> torch.Tensor:
        scores = torch.full((len(users), n_items), float("-inf"))
        for row, user in enumerate(users.tolist()):
            items = lists.get(user, [])
            scores[row, items] = torch.arange(len(items), 0, -1, dtype=torch.float32)
        return scores

    return score


def _pairs(part: Interactions, n_items: int) -> np.ndarray:
    """Each interaction's (user, item) pair as the one number ``user * n_items + item``."""
    return part.user.astype(np.int64) * n_items + part.item


def evaluate_lists(
    dataset: Dataset,
    lists: dict[int, list[int]],
    part: Literal["valid", "test"] = "test",
    ks: Sequence[int] = (10, 20),
) -> dict[str, float]:
    """:func:`~kgrec.eval.ranking.evaluate_split` of the lists on ``part``, plus
    ``"n_lists"`` (users of the part with a list) and ``"seen_listed"`` (listed items the user
    trained on, or had in valid when testing: left out before the cut at K), each over the users
    evaluated, ``"unscored_lists"`` (lists of users the part does not score: none of their items
    in it, or none in training), ``"part_listed"`` (listed items that are the user's own in ``part``, at any rank; none
    at all means lists that left those items out); on a cold-item split also ``"outside_candidates"``: listed items that are not
    among the part's new items, which are the only ones ranked (:func:`cold_candidates`); and for each
    K ``"short_lists@K"``: lists (of users evaluated) with fewer than K items once those are left
    out, whose missing ranks count as misses at K.

    Raises:
        KgrecError: the catalogue has fewer items than the largest K.
    """
    if max(ks) > dataset.n_items:  # evaluate_split's ValueError, a traceback from the command
        raise KgrecError(f"{dataset.name} has {dataset.n_items} items: the lists are scored at K = "
                         f"{' and '.join(map(str, ks))}, so the catalogue needs at least {max(ks)}")  # fmt: skip
    metrics = evaluate_split(lists_score_fn(lists, dataset.n_items), dataset, part, ks)
    target = known_users_part(dataset, part)  # the interactions evaluate_split scores against
    users = set(target.user.tolist())
    scored = {u: np.asarray(items, dtype=np.int64) for u, items in lists.items() if u in users}
    user_of = np.concatenate([np.full(len(items), u, np.int64) for u, items in scored.items()] or [np.zeros(0, np.int64)])
    item_of = np.concatenate([*scored.values()] or [np.zeros(0, np.int64)])
    seen_parts = [dataset.train] if part == "valid" else [dataset.train, dataset.valid]
    listed = user_of * dataset.n_items + item_of  # (user, item) pairs as one number, as below
    seen = np.isin(listed, np.concatenate([_pairs(p, dataset.n_items) for p in seen_parts]))
    metrics["n_lists"] = len(scored)
    metrics["unscored_lists"] = len(lists) - len(scored)
    metrics["seen_listed"] = int(seen.sum())
    metrics["part_listed"] = int(np.isin(listed, _pairs(target, dataset.n_items)).sum())
    ranked = ~seen  # what is left of each list to cut at K
    candidates = cold_candidates(dataset, part)
    if candidates is not None:
        outside = ~candidates.numpy()[item_of]
        metrics["outside_candidates"] = int(outside.sum())
        ranked &= ~outside
    position = np.repeat(np.arange(len(scored)), [len(items) for items in scored.values()])  # each listed item's list
    left = np.bincount(position[ranked], minlength=len(scored))
    for k in ks:
        metrics[f"short_lists@{k}"] = int((left < k).sum())
    return metrics
