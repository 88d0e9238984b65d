"""Cold-start items: train without held-out items, add them with ``add_items``, rank them
(ml-100k by default, any dataset through ``--config``).

Protocol. The held-out items are those of the cold-item split (``data.split=cold_item``,
``data.cold_item_share`` = 10% of the items, ``data.seed``). They are removed from a copy of
the dataset (their ``.inter``, ``.item`` and ``.link`` rows; the ``.kg`` stays, it is content),
and a model is trained on the rest with the config's usual split, so training never sees
them: not as positives, not as sampled negatives, not in validation. (Training on the
``cold_item`` split itself answers a different question, the held-out items staying in the
catalog with text and graph vectors; this script measures the deployment path: items that
arrive after training, through ``add_items``.)

The held-out items are then added to the trained run from atomic files (``.item`` rows,
``.link`` to their KG entities, which are plain entity nodes of the run's graph) and, for the
users who rated them, Recall@20 and NDCG@20 of those items are measured

* **among the held-out items** (the usual cold-start protocol: which new item will they like);
* **among all items**: the warm catalog (each user's known items excluded) + the added items.

Rows: kgrec add-items (text + graph pathways); the same items given fresh entity nodes (their
KG triples re-attached to a new id, so their vectors come from neighbours only); the text-only
and graph-only pathways; a text-similarity baseline (cosine between an item's text vector and
the mean text vector of the user's highly rated training items, or of all of them in implicit
data, same text encoder); random
ranking (mean of 100 shuffles).

Two more tables measure text search. Genre-like queries: precision@10 of items of the asked
genre, beside the genre's share of the catalog. Title queries: each item searched by its title
without the year, the share whose item comes first and in the top 10. Columns: ``kgrec search``
(the text encoder's vectors on both sides), the model's text pathway on both sides
(``cold_item_vectors``, what an item with that text alone would get), and the query's pathway
vector against the fused retrieval vectors.

    python scripts/bench_coldstart.py            # trains runs/ml-100k-coldstart/run once (minutes), then reuses it
    python scripts/bench_coldstart.py --set train.max_epochs=10 --out runs/cold-quick
    python scripts/bench_coldstart.py --config scripts/configs/ml-1m.yaml --out runs/ml-1m-coldstart
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from _bench import CONFIG_HELP, SET_HELP, config_file, copy_without

from kgrec.data import SplitConfig, fetch, load_dataset
from kgrec.data.dataset import Interactions
from kgrec.eval import evaluate_ranking
from kgrec.retrieval import Recommender
from kgrec.retrieval.coldstart import embed_new_items, read_new_items
from kgrec.retrieval.recommender import NEW_ITEM_SIMILAR_MODEL_WEIGHT

if TYPE_CHECKING:
    from kgrec.train import RunConfig

GENRE_QUERIES = {
    "animated film for children": ["Animation", "Children's"],
    "a scary horror movie": ["Horror"],
    "war movie about soldiers": ["War"],
    "science fiction in space": ["Sci-Fi"],
    "a documentary": ["Documentary"],
    "western with cowboys": ["Western"],
    "musical with songs and dancing": ["Musical"],
    "romantic love story": ["Romance"],
    "film noir": ["Film-Noir"],
    "crime and gangsters": ["Crime"],
}


def held_out_items(source: Path, share: float, seed: int) -> set[str]:
    """Raw ids of the items the cold-item split holds out (valid and test halves)."""
    ds = load_dataset(source, SplitConfig(strategy="cold_item", cold_item_share=share, seed=seed))
    return {str(ds.items[i]) for i in np.unique(np.concatenate([ds.valid.item, ds.test.item]))}


def write_new_items(source: Path, items: set[str], folder: Path, fresh_entities: bool) -> tuple[Path, Path, Path]:
    """The held-out items' ``.item`` and ``.link`` rows; with ``fresh_entities`` the link goes to
    a new entity ``new:<entity>`` and the ``.kg`` holds the item's triples moved onto it."""
    name = source.name
    folder.mkdir(parents=True, exist_ok=True)

    def rows(ext: str) -> list[str]:
        lines = (source / f"{name}.{ext}").read_text(encoding="utf-8").splitlines()
        col = next(i for i, h in enumerate(lines[0].split("\t")) if h.startswith("item_id:"))
        return [lines[0]] + [line for line in lines[1:] if line.split("\t")[col] in items]

    (folder / "new.item").write_text("\n".join(rows("item")) + "\n", encoding="utf-8")
    link = rows("link")
    entities = {line.split("\t")[1] for line in link[1:]}
    kg = ["head_id:token\trelation_id:token\ttail_id:token"]
    if fresh_entities:
        link = [link[0]] + [f"{i}\tnew:{e}" for i, e in (line.split("\t") for line in link[1:])]
        for line in (source / f"{name}.kg").read_text(encoding="utf-8").splitlines()[1:]:
            h, r, t = line.split("\t")
            if h in entities or t in entities:
                kg.append("\t".join(f"new:{x}" if x in entities else x for x in (h, r, t)))
    (folder / "new.link").write_text("\n".join(link) + "\n", encoding="utf-8")
    (folder / "new.kg").write_text("\n".join(kg) + "\n", encoding="utf-8")
    return folder / "new.item", folder / "new.link", folder / "new.kg"


def other_config(run: Path, config: RunConfig) -> list[str]:
    """The fields (``section.field``, both values) in which the finished ``run`` was trained with
    another config than ``config`` (fitted to the data, as ``kgrec train`` records it;
    ``train.progress`` aside); empty when it is this config's run."""
    from kgrec.train import load_data
    from kgrec.train.defaults import fit_defaults
    from kgrec.train.run import config_differences

    return config_differences(run, fit_defaults(config, load_data(config))[0], ignore=("progress",))


def metrics(scores: np.ndarray, target_row: np.ndarray, target_col: np.ndarray) -> dict[str, float]:
    """Recall@20 / NDCG@20 for a dense ``(users, candidates)`` score matrix (-inf: excluded)."""
    matrix = torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32))
    target = Interactions(np.asarray(target_row, np.int64), np.asarray(target_col, np.int64))
    out = evaluate_ranking(lambda b: matrix[b], target, None, scores.shape[0], scores.shape[1], (20,))
    return {"recall@20": out["recall@20"], "ndcg@20": out["ndcg@20"], "n_users": out["n_users"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/ml-100k-coldstart"), help="data copy + run (reused)")
    parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ml-100k.yaml"), type=config_file, help=CONFIG_HELP)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from kgrec.train import load_config, train

    config = load_config(args.config, ["train.progress=false", *args.overrides])
    source = Path(config.data.path) if config.data.path else fetch(config.data.name)
    held_out = held_out_items(source, config.data.cold_item_share, config.data.seed)
    data = copy_without(source, args.out / "data" / source.name, "item_id", held_out, (".inter", ".item", ".link"))
    run = args.out / "run"
    wanted = load_config(args.config, ["train.progress=false", *args.overrides, f"data.path={data}"])
    if (run / "manifest.json").is_file():  # written last: a finished run
        trained_on = set(json.loads((run / "id_maps.json").read_text(encoding="utf-8"))["items"])
        if trained_on & held_out:  # trained with another data.seed / cold_item_share
            raise SystemExit(f"{run} was trained on {len(trained_on & held_out)} of the items held out now; "
                             "delete it or choose another --out")  # fmt: skip
        changed = other_config(run, wanted)
        if changed:  # another --config or --set: its figures are not this command's
            raise SystemExit(f"{run} was trained with another config (differs in: {', '.join(changed)}); "
                             "delete it or choose another --out")  # fmt: skip
        print(f"reusing the trained run {run}")
    else:
        print(f"training {run} without the {len(held_out)} held-out items ...", flush=True)
        started = time.perf_counter()
        train(wanted, run)
        print(f"trained in {time.perf_counter() - started:.0f} s")
    load = os.getloadavg()[0]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.get_num_threads()} "
          f"threads, load average {load:.2f}")  # fmt: skip

    full = load_dataset(source, SplitConfig(strategy="cold_item", cold_item_share=config.data.cold_item_share,
                                            seed=config.data.seed))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(shutil.copytree(run, Path(tmp) / "run", ignore=shutil.ignore_patterns("checkpoints", "logs", "index", "catalog")))
        rec = Recommender.open(copy)
        ds = rec.run.dataset
        linked = write_new_items(source, held_out, Path(tmp) / "linked", fresh_entities=False)
        fresh = write_new_items(source, held_out, Path(tmp) / "fresh", fresh_entities=True)
        base_catalog = rec.catalog
        vectors = {
            "kgrec add-items, linked to its KG entity (text + graph)": None,
            "kgrec add-items, fresh entity node (text + graph)": embed_new_items(rec.run, read_new_items(*fresh), base_catalog).vectors,
            "kgrec add-items, text pathway only": embed_new_items(rec.run, read_new_items(*linked), base_catalog, use=("text",)).vectors,
            "kgrec add-items, graph pathway only": embed_new_items(rec.run, read_new_items(*linked), base_catalog, use=("graph",)).vectors,
        }  # fmt: skip
        started = time.perf_counter()
        added = rec.add_items(*linked)
        seconds = time.perf_counter() - started
        positions = np.asarray([rec.catalog.position(t) for t in added])
        vectors["kgrec add-items, linked to its KG entity (text + graph)"] = rec.catalog.vectors[positions]
        via = [a.via for a in rec.catalog.added]
        print(f"held out {len(held_out)} items; add_items embedded and indexed them in {seconds:.1f} s "
              f"({sum('graph' in v for v in via)} through text + graph, {sum(v == ('text',) for v in via)} text only)")  # fmt: skip

        # evaluation users: their interactions with held-out items, in the full data
        held = {str(full.items[i]) for i in range(full.n_items)} & held_out
        every = full.interactions()
        tokens = np.asarray([str(t) for t in full.items])
        mask = np.isin(tokens[every.item], list(held))
        users_tok = np.asarray([str(u) for u in full.users])[every.user[mask]]
        items_tok = tokens[every.item[mask]]
        known = np.asarray([t in set(map(str, ds.users)) for t in users_tok])
        users_tok, items_tok = users_tok[known], items_tok[known]
        users = np.unique([ds.user_index(u) for u in users_tok])
        row_of = {int(u): r for r, u in enumerate(users)}
        col_of = {t: c for c, t in enumerate(added)}
        t_row = np.asarray([row_of[ds.user_index(u)] for u in users_tok])
        t_col = np.asarray([col_of[t] for t in items_tok])
        u_vec = rec.user_vectors[users]
        n_warm = rec.catalog.n_base
        seen = [rec.seen_items(int(u)) for u in users]

        def both(cold: np.ndarray, warm: np.ndarray) -> tuple[dict, dict]:
            whole = np.concatenate([warm, cold], axis=1)
            for r, s in enumerate(seen):
                whole[r, s] = -np.inf
            return metrics(cold, t_row, t_col), metrics(whole, t_row, t_col + n_warm)

        warm_scores = u_vec @ rec.catalog.vectors[:n_warm].T
        results = {name: both(u_vec @ v.T, warm_scores) for name, v in vectors.items()}

        # text-similarity baseline with the run's own text encoder
        from kgrec.text import default_template, encode_items, item_texts

        text_config = rec.run.config.text
        text_config = replace(text_config, template=text_config.template or default_template(ds))
        new_text = encode_items(item_texts(read_new_items(*linked).as_dataset(ds.name), text_config), text_config, progress=False).numpy()
        warm_text = rec.run.text.numpy()
        unit = lambda m: m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)  # noqa: E731
        new_text, warm_text = unit(new_text), unit(warm_text)
        train = ds.train
        # liked: rated at or above the like threshold; every training item in implicit data (no ratings)
        liked = train.rating >= rec.run.config.model.like_threshold if train.rating is not None else np.ones(len(train), bool)
        profiles = np.stack([
            warm_text[train.item[(train.user == u) & liked] if ((train.user == u) & liked).any() else train.item[train.user == u]].mean(0)
            for u in users
        ])  # fmt: skip
        results["text similarity only (same encoder)"] = both(profiles @ new_text.T, profiles @ warm_text.T)
        rng = np.random.default_rng(0)
        shuffles = [both(rng.random((len(users), len(added))), rng.random((len(users), n_warm))) for _ in range(100)]
        results["random (mean of 100 shuffles)"] = tuple(
            {k: float(np.mean([s[p][k] for s in shuffles])) for k in shuffles[0][p]} for p in (0, 1)
        )  # type: ignore[assignment]

        similar = similar_table(rec, full, added, vectors, new_text, warm_text)
        new_users = new_user_table(rec, full, added)

    print(f"\n{len(users)} users, {len(t_row)} ratings of the {len(added)} held-out items; Recall@20 / NDCG@20 "
          f"among the held-out items (cold) and among all {n_warm + len(added)} items (all)\n")  # fmt: skip
    print("| method | Recall@20 (cold) | NDCG@20 (cold) | Recall@20 (all) | NDCG@20 (all) |")
    print("|---|---|---|---|---|")
    for name, (cold, whole) in results.items():
        print(f"| {name} | {cold['recall@20']:.4f} | {cold['ndcg@20']:.4f} | {whole['recall@20']:.4f} | {whole['ndcg@20']:.4f} |")
    print(similar)
    print(new_users)
    genre_table(run)


NEW_USER_PAIRS = 1000  # (user, liked new item) pairs sampled for the new-user table


def new_user_table(rec: Recommender, full, added: list[str]) -> str:
    """A new user whose one liked item arrived after training (``kgrec recommend --liked
    NEW_ITEM``). Each held-out item a user liked (rating >= the like threshold; every
    interaction in implicit data) poses that user as new with that item alone; the targets are
    their interactions with trained items (every part of the data), ranked among all trained
    items by the query vector's inner product: Recall@20 / NDCG@20 over up to
    :data:`NEW_USER_PAIRS` sampled pairs. Rows: ``new_user_vector`` as served (the added item
    stands for the 10 trained items ``similar`` ranks first, read by the history pathway); the
    fold-in over the retrieval vectors with the added item itself (what it did before); the
    trained items' training popularity."""
    ds = rec.run.dataset
    n_warm = rec.catalog.n_base
    threshold = rec.run.model.config.like_threshold
    user_of, new = {str(u): i for i, u in enumerate(ds.users)}, set(added)
    pairs = []
    for name in ("valid", "test"):
        part = getattr(full, name)
        mask = part.rating >= threshold if part.rating is not None else np.ones(len(part.user), bool)
        for u, i in zip(part.user[mask], part.item[mask], strict=True):
            user, item = user_of.get(str(full.users[u])), str(full.items[i])
            if user is not None and item in new:
                pairs.append((user, item))
    pairs = [pairs[j] for j in np.sort(np.random.default_rng(0).permutation(len(pairs))[:NEW_USER_PAIRS])]
    targets = [rec.seen_items(u) for u, _ in pairs]
    rows = np.concatenate([np.full(len(t), r) for r, t in enumerate(targets)])
    cols = np.concatenate(targets)
    warm = rec.catalog.vectors[:n_warm]
    queries = {
        "kgrec recommend --liked NEW_ITEM (stands for the 10 trained items similar() lists)":
            lambda item: rec.new_user_vector([item]),
        "fold-in over the retrieval vectors, the added item itself (before)":
            lambda item: rec.fold_in(np.asarray([rec.catalog.position(item)], np.int64)),
    }  # fmt: skip
    results = {}
    for name, query in queries.items():
        vectors = {item: query(item) for item in sorted({i for _, i in pairs})}
        results[name] = metrics(np.stack([warm @ vectors[i] for _, i in pairs]), rows, cols)
    popularity = np.bincount(ds.train.item, minlength=n_warm)[:n_warm].astype(np.float32)
    results["most popular (training counts)"] = metrics(np.tile(popularity, (len(pairs), 1)), rows, cols)
    lines = [f"\na new user who liked one added item: {len(pairs)} (user, liked held-out item) pairs, "
             f"{len({i for _, i in pairs})} items; the user's {len(cols)} trained-item interactions ranked among "
             f"the {n_warm} trained items", "", "| query | Recall@20 | NDCG@20 |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {name} | {m['recall@20']:.4f} | {m['ndcg@20']:.4f} |" for name, m in results.items()]
    return "\n".join(lines)


BLEND_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)  # of the centred model cosine, beside the text cosine


def served_similar(rec: Recommender, token: str, n_warm: int) -> np.ndarray:
    """``Recommender.similar``'s scores of the trained items for an added item ``(n_warm,)``
    (-inf where it returned none: it lists every trained item here)."""
    out = np.full(n_warm, -np.inf)
    for r in rec.similar(token, k=n_warm, explain=False, where=[], exclude=[t for t in rec.catalog.tokens[n_warm:] if t != token]):
        out[rec.catalog.position(r.item_id)] = r.score
    return out


def similar_table(
    rec: Recommender, full, added: list[str], vectors: dict[str, np.ndarray], new_text: np.ndarray, warm_text: np.ndarray
) -> str:
    """Items like a new item. No one labels which films are alike; the reference is behaviour
    the model never saw: the new item's held-out likes against each trained item's training
    likes, as item-KNN's cosine ``|U_j ∩ U_i| / sqrt(|U_j| |U_i|)`` (``U``: the users who liked
    it; rating >= the like threshold, every interaction in implicit data). Each method lists
    the 10 trained items most like the new item; per new item (with at least 5 likes):

    * overlap@10: the share of the reference's top 10 in the list;
    * co-like cosine: the list's mean reference cosine over the reference top 10's mean (1.0: as
      alike as the best possible list), a graded form that forgives near misses;
    * same genre: the share of listed items sharing a genre with the new item (content, when
      the data has a genre column).

    The cold split's valid half of the held-out items chooses the blend weight, its test half
    reports. Returns the table as text. Holds dense ``(users, items)`` like matrices: meant for
    catalogues of thousands of items, as the rest of this script."""
    ds = rec.run.dataset
    n_warm = rec.catalog.n_base
    threshold = rec.run.model.config.like_threshold

    def liked(part: Interactions) -> np.ndarray:
        return part.rating >= threshold if part.rating is not None else np.ones(len(part.user), bool)

    train = ds.train
    keep = liked(train)
    fans_warm = np.zeros((ds.n_users, n_warm), np.float32)
    fans_warm[train.user[keep], train.item[keep]] = 1.0
    col_of = {t: c for c, t in enumerate(added)}
    user_of = {str(u): i for i, u in enumerate(ds.users)}
    fans_new = np.zeros((ds.n_users, len(added)), np.float32)
    half = np.full(len(added), "", dtype=object)
    for name in ("valid", "test"):
        part = getattr(full, name)
        mask = liked(part)
        for u, i in zip(part.user[mask], part.item[mask], strict=True):
            c, r = col_of.get(str(full.items[i])), user_of.get(str(full.users[u]))
            if c is not None and r is not None:
                fans_new[r, c] = 1.0
                half[c] = name
    popularity = fans_warm.sum(0)
    reference = (fans_new.T @ fans_warm) / np.sqrt(np.maximum(fans_new.sum(0)[:, None] * popularity[None], 1.0))
    ideal_top = np.argsort(-reference, axis=1, kind="stable")[:, :10]
    ideal = np.take_along_axis(reference, ideal_top, 1).mean(1)
    enough = fans_new.sum(0) >= 5
    genres = rec.catalog.features.get("class", rec.catalog.features.get("genre"))
    positions = [rec.catalog.position(t) for t in added]

    unit = lambda m: m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)  # noqa: E731
    warm_centred = unit(rec.catalog.vectors[:n_warm] - rec.item_centre)
    scores = {name.replace("kgrec add-items, ", "centred cosine, "): unit(v - rec.item_centre) @ warm_centred.T
              for name, v in vectors.items()}  # fmt: skip
    text = new_text @ warm_text.T
    scores["text-encoder cosine"] = text
    both = scores["centred cosine, linked to its KG entity (text + graph)"]
    blends = {a: a * both + (1 - a) * text for a in BLEND_WEIGHTS}
    scores["most popular"] = np.tile(popularity, (len(added), 1))

    def measure(s: np.ndarray, name: str) -> tuple[float, ...]:
        rows = np.flatnonzero(enough & (half == name))
        top = np.argsort(-s[rows], axis=1, kind="stable")[:, :10]
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, ideal_top[rows], strict=True)])
        colike = (np.take_along_axis(reference[rows], top, 1).mean(1) / np.maximum(ideal[rows], 1e-12)).mean()
        same = float("nan")
        if genres is not None:
            mine = [set(genres[positions[r]] or []) for r in rows]
            same = np.mean([np.mean([bool(m & set(genres[i] or [])) for i in t]) for m, t in zip(mine, top, strict=True)])
        return overlap, colike, same, len(np.unique(top)), float(np.median(popularity[top]))

    on_valid = {a: measure(b, "valid") for a, b in blends.items()}
    chosen = max(blends, key=lambda a: (on_valid[a][1], -a))
    scores[f"blend {chosen} x centred + {1 - chosen:g} x text (weight chosen on valid)"] = blends[chosen]
    served = np.stack([served_similar(rec, t, n_warm) for t in added])
    assert np.allclose(served, blends[NEW_ITEM_SIMILAR_MODEL_WEIGHT], atol=1e-5), "similar() is not the bench's blend"
    scores[f"kgrec similar (as served: blend {NEW_ITEM_SIMILAR_MODEL_WEIGHT})"] = served
    counts = {n: int((enough & (half == n)).sum()) for n in ("valid", "test")}
    lines = [
        f"\nitems like a new item (`similar` of an added item), against the new items' held-out likes: "
        f"{counts['valid']} valid / {counts['test']} test new items with 5+ likes; blend weight on valid (co-like "
        "cosine / overlap@10): " + ", ".join(f"{a}: {m[1]:.4f} / {m[0]:.3f}" for a, m in on_valid.items()),
        "",
        "| method | valid overlap@10 | valid co-like cosine | test overlap@10 | test co-like cosine | test same genre "
        "| test coverage | test median popularity |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in scores.items():
        v, t = measure(s, "valid"), measure(s, "test")
        lines.append(f"| {name} | {v[0]:.3f} | {v[1]:.3f} | {t[0]:.3f} | {t[1]:.3f} | {t[2]:.2f} | {t[3]} | {t[4]:.0f} |")
    return "\n".join(lines)


def genre_table(run: Path) -> None:
    """Text search: genre-like queries (precision@10 of the asked genre) and title queries (is
    the titled item first, in the top 10), see the module docstring."""
    import re

    from kgrec.text import TextEncoder

    rec = Recommender.open(run)
    genres = rec.catalog.features.get("class", rec.catalog.features.get("genre"))  # ml-100k's / ML-1M's genre column
    if genres is None or rec.run.text is None:
        print(f"\n{run}: no genre column or no text; text queries skipped")
        return
    n = rec.catalog.n_base
    unit = lambda m: m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)  # noqa: E731

    def pathway_query(t: np.ndarray) -> np.ndarray:  # (B, t) encoder vectors -> (B, d) unit pathway vectors
        with torch.no_grad():
            return unit(rec.run.model.cold_item_vectors(torch.as_tensor(t), None).numpy())

    pathway = pathway_query(rec.run.text.numpy())  # (I, d): where each item's text alone puts it
    fused, encoded = unit(rec.catalog.vectors[:n]), unit(rec.run.text.numpy())

    print(f"\ngenre-like text queries on {run} ({n} items): precision@10 of the asked genre\n")
    print("| query (genre) | share of catalog | kgrec search (text encoder) | model text pathway | fused item vectors |")
    print("|---|---|---|---|---|")
    totals = np.zeros(4)
    for query, wanted in GENRE_QUERIES.items():
        hit = np.asarray([any(g in wanted for g in (v or [])) for v in genres[:n]])
        found = [rec.catalog.position(r.item_id) for r in rec.search(query, k=10, explain=False)]
        x = pathway_query(rec.text_vector(query).numpy())[0]
        row = np.asarray([
            hit.mean(), hit[found].mean(),
            hit[np.argsort(-(pathway @ x))[:10]].mean(),
            hit[np.argsort(-(fused @ x))[:10]].mean(),
        ])  # fmt: skip
        totals += row
        print(f"| {query} ({' / '.join(wanted)}) | {row[0]:.3f} | {row[1]:.2f} | {row[2]:.2f} | {row[3]:.2f} |")
    m = totals / len(GENRE_QUERIES)
    print(f"| **mean** | {m[0]:.3f} | **{m[1]:.2f}** ({m[1] / m[0]:.1f}x chance) | {m[2]:.2f} ({m[2] / m[0]:.1f}x) "
          f"| {m[3]:.2f} ({m[3] / m[0]:.1f}x) |")  # fmt: skip

    titles = [re.sub(r"\s*\(\d{4}\)$", "", rec.catalog.titles[i]) for i in range(n)]  # "Toy Story (1995)" -> "Toy Story"
    queries = unit(TextEncoder.from_config(rec.run.config.text).encode(titles, progress=False).numpy())
    through_pathway = pathway_query(queries)
    print(f"\neach of the {n} items searched by its title without the year: share of titles whose item comes first / "
          "in the top 10\n")
    print("| scored against | first | top 10 |")
    print("|---|---|---|")
    for name, scores in (
        ("kgrec search (text encoder)", queries @ encoded.T),
        ("model text pathway", through_pathway @ pathway.T),
        ("fused item vectors", through_pathway @ fused.T),
    ):
        rank = (scores > scores[np.arange(n), np.arange(n)][:, None]).sum(1)  # items scored above the titled one
        print(f"| {name} | {(rank == 0).mean():.3f} | {(rank < 10).mean():.3f} |")

if __name__ == "__main__":
    main()
