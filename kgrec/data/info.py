"""Summary statistics of a dataset (``kgrec data info``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kgrec.data.dataset import Dataset

HEAD_SHARE = 0.2  # the short head: this share of the items, the most popular; the rest is the long tail (tail@K)


def short_head(counts: np.ndarray) -> np.ndarray:
    """Indices of the short head among items with interaction ``counts`` ``(n,)``: the
    :data:`HEAD_SHARE` of the items with the most interactions (equal counts: the lower index
    first); every other item is in the long tail."""
    return np.argsort(-np.asarray(counts), kind="stable")[: round(HEAD_SHARE * len(counts))]


def dataset_info(dataset: Dataset) -> dict[str, Any]:
    """Counts, density, the short head's share of the interactions (:func:`short_head`) and the
    median item's count, rating histogram, KG size and item coverage of ``dataset``."""
    inter = dataset.interactions()
    n_inter = len(inter)
    info: dict[str, Any] = {
        "name": dataset.name,
        "users": dataset.n_users,
        "items": dataset.n_items,
        "interactions": n_inter,
        "density": n_inter / max(1, dataset.n_users * dataset.n_items),
        "split": dataset.split,
        "train": len(dataset.train),
        "valid": len(dataset.valid),
        "test": len(dataset.test),
        "items_with_interactions": int(len(np.unique(inter.item))),
    }
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
    if inter.rating is not None:
        values, counts = np.unique(inter.rating, return_counts=True)
        info["rating_histogram"] = {_label(v): int(c) for v, c in zip(values.tolist(), counts.tolist(), strict=True)}
        info["rating_mean"] = float(inter.rating.mean())
    if dataset.kg is not None:
        info["kg_triples"] = len(dataset.kg)
        info["kg_relations"] = len(dataset.relations) if dataset.relations is not None else 0
    if dataset.entities is not None:
        info["kg_entities"] = len(dataset.entities)
    if dataset.item_entity is not None:
        linked = int((dataset.item_entity >= 0).sum())
        info["items_linked"] = linked
        info["items_linked_share"] = linked / max(1, dataset.n_items)
    if dataset.item_feature_types:
        info["item_columns"] = dict(dataset.item_feature_types)
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
    if "rating_histogram" in info:
        total = max(1, sum(info["rating_histogram"].values()))
        lines.append(f"ratings       mean {info['rating_mean']:.3f}")
        for value, count in info["rating_histogram"].items():
            bar = "#" * max(1, round(40 * count / total))
            lines.append(f"  {value:>6}  {count:>9,}  {bar}")
    if "kg_triples" in info:
        lines.append(
            f"kg            {info['kg_entities']:,} entities, {info['kg_relations']:,} relations, "
            f"{info['kg_triples']:,} triples"
        )
    if "items_linked" in info:
        lines.append(f"linked items  {info['items_linked']:,} ({info['items_linked_share']:.1%} of items)")
    for key in ("item_columns", "user_columns"):
        if key in info:
            columns = ", ".join(f"{k}:{v}" for k, v in info[key].items())
            lines.append(f"{key.replace('_', ' '):<13} {columns}")
    return "\n".join(lines)


def _label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
