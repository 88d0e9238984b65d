"""Feature columns as tokens: each row's values as ``column=value`` ids, for an embedding bag.

A ``token`` column gives a row one token (none when empty), a ``token_seq`` column one per
value, and a ``float`` column its quantile bin (``age=q2/5``: :data:`FLOAT_BINS` bins from the
column's own values, so a float never needs a scale; none when NaN). A token held by fewer
than ``min_rows`` rows is dropped: one user's own zip code is a second ID, not a feature that
generalises; a column named explicitly that is left without a token that way, or without
values, is refused rather than silently adding nothing. The vocabulary is the sorted
``column=value`` strings, so the same dataset always gives the same ids: a saved model finds
its embedding rows again from the data alone. Only the feature table is read (``NAME.user``),
never the interactions, so neither the split nor the valid / test interactions change it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kgrec.data.atomic import Column
from kgrec.errors import ConfigError

FLOAT_BINS = 5


@dataclass
class FeatureTokens:
    """``(rows[k], tokens[k])`` pairs: row ``rows[k]`` (a user or item index) has token
    ``tokens[k]``, whose name is ``names[tokens[k]]``."""

    rows: np.ndarray  # (nnz,) int64
    tokens: np.ndarray  # (nnz,) int64
    names: list[str]


def feature_tokens(
    features: dict[str, Column],
    types: dict[str, str],
    columns: Sequence[str] | None = None,
    owner: str = "user",
    min_rows: int = 2,
) -> FeatureTokens:
    """The tokens of ``columns`` (default: every ``token``, ``token_seq`` and ``float`` column) of
    a feature table aligned by row (``Dataset.user_features`` / ``user_feature_types``).
    ``owner`` names the table in errors (``NAME.user``).

    A column named in ``columns`` must give a token: one without values, or whose every value
    is held by fewer than ``min_rows`` rows (a zip code per user), is refused, as is an empty
    list; by default such a column is skipped."""
    usable = [c for c, kind in types.items() if kind in ("token", "token_seq", "float")]
    named = columns is not None
    if columns is None:
        columns = usable
    elif not columns:
        raise ConfigError(f"no {owner} column named (an empty list); name some, or leave it unset (null) for every "
                          f"usable one ({', '.join(usable) or 'none'})")  # fmt: skip
    for column in columns:
        if column not in types:
            raise ConfigError(f"{owner} has no column {column!r} (its columns: {', '.join(types) or 'none'})")
        if column not in usable:
            raise ConfigError(f"{owner} column {column!r} is {types[column]}: expected token, token_seq or float")
    by_column: dict[str, list[tuple[int, str]]] = {}
    for column in columns:
        values, kind = features[column], types[column]
        if kind == "token":
            by_column[column] = [(row, f"{column}={v}") for row, v in enumerate(values) if v != ""]
        elif kind == "token_seq":
            by_column[column] = [(row, f"{column}={v}") for row, seq in enumerate(values) for v in seq]
        else:
            by_column[column] = [(row, f"{column}={b}") for row, b in enumerate(_quantile_bins(np.asarray(values, float))) if b]
    pairs = [pair for column_pairs in by_column.values() for pair in column_pairs]
    held = Counter(name for _, name in set(pairs))
    for column, column_pairs in by_column.items() if named else ():
        if not column_pairs:
            raise ConfigError(f"{owner} column {column!r} has no values; drop it from the list")
        if all(held[name] < min_rows for _, name in column_pairs):
            raise ConfigError(f"each value of {owner} column {column!r} is held by fewer than {min_rows} rows, so it "
                              "gives no token (a value of one row alone would be a second ID); drop it from the list")  # fmt: skip
    pairs = [(row, name) for row, name in pairs if held[name] >= min_rows]
    names = sorted({name for _, name in pairs})
    index = {name: k for k, name in enumerate(names)}
    rows = np.array([row for row, _ in pairs], dtype=np.int64)
    tokens = np.array([index[name] for _, name in pairs], dtype=np.int64)
    return FeatureTokens(rows=rows, tokens=tokens, names=names)


def _quantile_bins(values: np.ndarray) -> list[str]:
    """``q1/5`` … ``q5/5`` per value by the quantiles of the finite values; ``""`` for NaN."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return [""] * len(values)
    edges = np.quantile(finite, np.linspace(0, 1, FLOAT_BINS + 1)[1:-1])
    bins = np.searchsorted(edges, values, side="right") + 1
    return [f"q{b}/{FLOAT_BINS}" if np.isfinite(v) else "" for v, b in zip(values, bins, strict=True)]
