"""Summary statistics of a dataset (``kgrec data info``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kgrec.data.dataset import TITLE_COLUMNS, Dataset

HEAD_SHARE = 0.2  # the short head: this share of the items, the most popular; the rest is the long tail (tail@K)
EXACT_RATINGS = 20  # up to this many distinct ratings get a histogram row each; more are binned
RATING_BINS = 10  # about this many bins of a round width (0.2, 5, 10 ...) for many distinct ratings


def short_head(counts: np.ndarray) -> np.ndarray:
    """Indices of the short head among items with interaction ``counts`` ``(n,)``: the
    :data:`HEAD_SHARE` of the items with the most interactions (equal counts: the lower index
    first); every other item is in the long tail."""
    return np.argsort(-np.asarray(counts), kind="stable")[: round(HEAD_SHARE * len(counts))]


def repeated_triples(head: np.ndarray, relation: np.ndarray, tail: np.ndarray) -> int:
    """How many of the triples ``(T,)`` repeat an earlier one (the graph keeps one of each)."""
    if len(head) == 0:
        return 0
    n_nodes = int(max(head.max(), tail.max())) + 1
    n_relations = int(relation.max()) + 1
    if n_nodes * n_nodes * n_relations < 2**63:  # packed in one int64 key: a sort, not a row-wise unique
        key = (head.astype(np.int64) * n_relations + relation) * n_nodes + tail
        key.sort()
        return int((key[1:] == key[:-1]).sum())
    return len(head) - len(np.unique(np.stack([head, relation, tail], axis=1), axis=0))


def distinct_pairs(user: np.ndarray, item: np.ndarray, n_items: int) -> int:
    """How many distinct (user, item) pairs the interactions ``(N,)`` hold."""
    if len(user) == 0:
        return 0
    n_users = int(user.max()) + 1
    if n_users * max(1, n_items) < 2**63:  # packed in one int64 key: a sort, not a row-wise unique
        key = user.astype(np.int64) * n_items + item
        key.sort()
        return int((key[1:] != key[:-1]).sum()) + 1
    return len(np.unique(np.stack([user, item], axis=1), axis=0))


def dataset_info(dataset: Dataset) -> dict[str, Any]:
    """Counts, density (distinct (user, item) pairs over users x items), the short head's share
    of the interactions (:func:`short_head`) and the median item's count, rating histogram, KG
    size and item coverage of ``dataset``."""
    inter = dataset.interactions()
    n_inter = len(inter)
    pairs = distinct_pairs(inter.user, inter.item, dataset.n_items)
    info: dict[str, Any] = {
        "name": dataset.name,
        "users": dataset.n_users,
        "items": dataset.n_items,
        "interactions": n_inter,
        "density": pairs / max(1, dataset.n_users * dataset.n_items),  # a pair in two parts counts once
        "split": dataset.split,
        "train": len(dataset.train),
        "valid": len(dataset.valid),
        "test": len(dataset.test),
        "items_with_interactions": int(len(np.unique(inter.item))),
    }
    if pairs < n_inter:  # a given split's pair in two parts (a test pair also in train), or duplicates="keep"
        info["repeated_pairs"] = n_inter - pairs
    if negatives := dataset.negative_counts():  # label 0 rows: the like tower's negatives
        info["negatives"] = negatives
    if n_inter:  # how much of all the interactions the short head holds (tail@K counts train's only)
        counts = np.bincount(inter.item, minlength=dataset.n_items)
        info["head_share"] = float(counts[short_head(counts)].sum() / n_inter)
        info["median_item_interactions"] = float(np.median(counts))
    trained = dataset.train.has_user(dataset.n_users)
    for name in ("valid", "test"):  # users first seen after the cut are left out of every metric
        part = getattr(dataset, name)
        known = trained[part.user]
        if not known.all():
            info[f"{name}_known_users"] = int(len(np.unique(part.user[known])))
            info[f"{name}_users"] = int(len(np.unique(part.user)))
            info[f"{name}_evaluated"] = int(known.sum())
    if inter.timestamp is not None and n_inter:
        info.update(activity_spans(inter.user, inter.timestamp, dataset.n_users))
        info["timestamp_max"] = float(inter.timestamp.max())
    if inter.rating is not None:
        values, counts = np.unique(inter.rating, return_counts=True)
        if len(values) <= EXACT_RATINGS:  # labelled as written: two values alike to 6 digits stay apart
            info["rating_histogram"] = {_exact_label(v): int(c) for v, c in zip(values, counts.tolist(), strict=True)}
        else:
            info["rating_histogram"] = rating_bins(values, counts)
            info["rating_distinct"] = len(values)
        info["rating_mean"] = float(inter.rating.mean(dtype=np.float64))  # a float32 sum rounds, or overflows to inf
    if dataset.kg is not None:
        kg = dataset.kg
        info["kg_triples"] = len(kg)
        info["kg_relations"] = len(dataset.relations) if dataset.relations is not None else 0
        info["kg_repeated_triples"] = repeated_triples(kg.head, kg.relation, kg.tail)
        info["kg_self_loops"] = int((kg.head == kg.tail).sum())
        # the entities of the triples: ``dataset.entities`` also holds those only the links name
        info["kg_entities"] = int(np.count_nonzero(np.bincount(np.concatenate([kg.head, kg.tail]))))
    if dataset.item_entity is not None:
        linked = int(dataset.items_in_kg().sum())  # a link to an entity the KG lacks joins nothing
        info["items_linked"] = linked
        info["items_linked_share"] = linked / max(1, dataset.n_items)
        outside = int((dataset.item_entity >= 0).sum()) - linked
        if outside:
            info["items_linked_outside_kg"] = outside
    if dataset.item_feature_types:
        info["item_columns"] = dict(dataset.item_feature_types)
        info["title_column"] = dataset.title_column()  # None: results show raw ids
    if dataset.item_rows is not None and dataset.item_rows < dataset.n_items:
        info["items_without_row"] = dataset.n_items - dataset.item_rows  # ids of the interactions alone
    if dataset.user_feature_types:
        info["user_columns"] = dict(dataset.user_feature_types)
    return info


def format_info(info: dict[str, Any]) -> str:
    """Human-readable lines for :func:`dataset_info`'s result."""
    lines = [
        f"dataset       {info['name']}",
        f"users         {info['users']:,}",
        f"items         {info['items']:,} ({info['items_with_interactions']:,} with interactions)",
        f"interactions  {info['interactions']:,} (density {info['density']:.4%})",
        f"split         {info['split']}: train {info['train']:,} / valid {info['valid']:,} / test {info['test']:,}",
    ]
    if negatives := info.get("negatives"):
        lines.append(f"labelled 0    train {negatives['train']:,} / valid {negatives['valid']:,} / test "
                     f"{negatives['test']:,} pairs (impressions without a click: the like tower's negatives)")  # fmt: skip
    if repeated := info.get("repeated_pairs", 0):  # a test pair also in train is no test of anything new
        lines.append(f"  {repeated:,} interaction{'s repeat' if repeated > 1 else ' repeats'} an earlier (user, item) "
                     "pair (the same pair in two parts, or twice in one); density counts each pair once")  # fmt: skip
    if "head_share" in info:
        lines.append(
            f"popularity    the most popular {HEAD_SHARE:.0%} of items hold {info['head_share']:.1%} of interactions; "
            f"median item {info['median_item_interactions']:g}"
        )
    for name in ("valid", "test"):
        if f"{name}_known_users" in info:
            lines.append(
                f"  {name}: {info[f'{name}_known_users']:,} of its {info[f'{name}_users']:,} users have training "
                f"interactions; metrics read their {info[f'{name}_evaluated']:,} {name} interactions only"
            )
    if "span_median_hours" in info:
        lines.append(
            f"activity      a user's first to last interaction: median {_duration(info['span_median_hours'])}; "
            f"{info['span_within_day']:.1%} of users within one day"
        )
        if hint := seconds_hint(info["timestamp_max"]):
            unit, factor, option = finer_unit(info["timestamp_max"])
            lines.append(f"  {hint}: if they count {unit}, divide them by {factor:,} (kgrec data import --time-unit {option})")
    if "rating_histogram" in info:
        total = max(1, sum(info["rating_histogram"].values()))
        binned = f" ({info['rating_distinct']:,} distinct values, binned)" if "rating_distinct" in info else ""
        lines.append(f"ratings       mean {info['rating_mean']:.3f}{binned}")
        width = max(6, *(len(value) for value in info["rating_histogram"]))
        for value, count in info["rating_histogram"].items():
            bar = "#" * max(1, round(40 * count / total)) if count else ""
            lines.append(f"  {value:>{width}}  {count:>9,}  {bar}")
    if "kg_triples" in info:
        repeated, loops = info.get("kg_repeated_triples", 0), info.get("kg_self_loops", 0)
        lines.append(
            f"kg            {info['kg_entities']:,} entities, {info['kg_relations']:,} relations, "
            f"{info['kg_triples']:,} triples"
            + (f"; {repeated:,} repeat{'s' if repeated == 1 else ''} an earlier one (the graph keeps one copy)" if repeated else "")
            + (f"; {loops:,} link{'s' if loops == 1 else ''} an entity to itself" if loops else "")
        )
    if "items_linked" in info:
        outside = info.get("items_linked_outside_kg", 0)
        more = f"; {outside:,} more link to entities not in the KG" if outside else ""
        lines.append(f"linked items  {info['items_linked']:,} ({info['items_linked_share']:.1%} of items){more}")
    for key in ("item_columns", "user_columns"):
        if key in info:
            columns = ", ".join(f"{k}:{v}" for k, v in info[key].items())
            lines.append(f"{key.replace('_', ' '):<13} {columns}")
        if key == "item_columns" and (line := title_line(info)):
            lines.append(line)
    if "items_without_row" in info:
        n = info["items_without_row"]
        lines.append(
            f"  {n:,} interacted item{'s have' if n > 1 else ' has'} no row in the item file: no "
            "columns, so their text and name are their ids and they get no attribute edges"
        )
    return "\n".join(lines)


def title_line(info: dict[str, Any]) -> str | None:
    """What :func:`format_info` says of the items' title: the column used, or, when the items
    have word columns (``token``/``token_seq``, not ids) but none is a recognised title, that
    results show raw ids and which names count; None without such columns."""
    if info.get("title_column"):
        return f"title         {info['title_column']} (results show it; --item takes it as well as an id)"
    words = [c for c, kind in info.get("item_columns", {}).items()
             if kind in ("token", "token_seq") and c.lower() != "item_id" and not c.lower().endswith("_id")]  # fmt: skip
    if not words:
        return None
    return (
        f"title         none: no item column has a title's name (columns: {', '.join(words)}), so results show "
        f"raw item ids and --item finds items by id only; to show names, call the column holding them one of "
        f"{', '.join(TITLE_COLUMNS)} (any letter case)"
    )


#: Unix seconds past this are after the year 5138: a time column that reaches it likely counts
#: milliseconds (or finer), and everything kgrec reads in hours from it would be 1,000 times off.
PLAUSIBLE_SECONDS = 1e11


def seconds_hint(largest: float) -> str | None:
    """What to tell of timestamps that reach ``largest``, when as Unix seconds it is past
    :data:`PLAUSIBLE_SECONDS` (``1.7e12``: milliseconds of 2023), else None."""
    if largest <= PLAUSIBLE_SECONDS:
        return None
    year = 1970 + largest / (365.2425 * 86400)
    return f"timestamps reach {largest:.3g}, the year {year:,.0f} as Unix seconds"


#: The finer units a time column may count, as ``kgrec data import --time-unit`` names them.
FINER_UNITS = (("milliseconds", 1_000, "ms"), ("microseconds", 1_000_000, "us"), ("nanoseconds", 1_000_000_000, "ns"))


def finer_unit(largest: float) -> tuple[str, int, str]:
    """The unit that timestamps reaching ``largest`` most likely count, when too large for
    seconds (:func:`seconds_hint`): the coarsest of :data:`FINER_UNITS` that brings them under
    :data:`PLAUSIBLE_SECONDS` (``1.7e12``: milliseconds, ``1.7e18``: nanoseconds), as ``(name,
    factor to seconds, --time-unit option)``."""
    return next((unit for unit in FINER_UNITS if largest / unit[1] <= PLAUSIBLE_SECONDS), FINER_UNITS[-1])


def activity_spans(user: np.ndarray, timestamp: np.ndarray, n_users: int) -> dict[str, float]:
    """How long users were active: the median time from a user's first to last interaction, in
    hours, and the share of users (with interactions) whose whole history lies within one day.
    Short spans (ml-100k: most users rated everything in one sitting) make a random split mix
    each user's session across train and test, and a global time split leave most test users
    unseen."""
    first = np.full(n_users, np.inf)
    last = np.full(n_users, -np.inf)
    np.minimum.at(first, user, timestamp)
    np.maximum.at(last, user, timestamp)
    active = np.isfinite(first)
    hours = (last[active] - first[active]) / 3600.0
    return {"span_median_hours": float(np.median(hours)), "span_within_day": float((hours <= 24.0).mean())}


def _duration(hours: float) -> str:
    """``49 min``, ``5.2 h`` or ``12 days``: a span in the unit that reads best."""
    if hours < 1:
        return f"{hours * 60:.0f} min"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.0f} days"


def rating_bins(values: np.ndarray, counts: np.ndarray) -> dict[str, int]:
    """A histogram of distinct ratings ``values`` (sorted) held ``counts`` times, in bins of a
    round width (1, 2 or 5 times a power of ten) giving about :data:`RATING_BINS` bins, labelled
    ``[lo, hi)`` (the last ``[lo, hi]``); bins between the lowest and highest are kept when empty."""
    values = np.asarray(values)
    low, high = float(str(values[0])), float(str(values[-1]))  # float32 0.7 is 0.69999999: the value as written
    step = _round_step((high - low) / RATING_BINS)
    digits = max(0, -math.floor(math.log10(step)))
    start = math.floor(low / step) * step
    n_bins = max(1, math.ceil((high - start) / step - 1e-9))
    edges = np.round(start + step * np.arange(n_bins + 1), digits)
    # compared in the values' own precision, so a float32 0.7 (0.69999999) opens the bin of the edge 0.7
    which = np.minimum(np.searchsorted(edges.astype(values.dtype), values, side="right") - 1, n_bins - 1)
    totals = np.bincount(which, weights=counts, minlength=n_bins)
    labels = [f"[{_label(edges[k])}, {_label(edges[k + 1])}{']' if k == n_bins - 1 else ')'}" for k in range(n_bins)]
    return {label: int(total) for label, total in zip(labels, totals.tolist(), strict=True)}


def _round_step(width: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is at least ``width`` (> 0)."""
    power = 10.0 ** math.floor(math.log10(width))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= width * (1 - 1e-9))


def _label(value: float) -> str:
    """A round number as it reads best: ``3``, ``0.5``, ``1e+06``."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _exact_label(value: np.generic) -> str:
    """A rating as written, in the shortest form that tells it apart from every other value of
    its precision (``3``, ``0.7`` for float32 0.69999999, ``12.34561``; ``:g`` made 12.34561
    and 12.34564 both ``12.3456``, and the histogram kept the count of one of them)."""
    number = float(value)
    if number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    return str(value)
