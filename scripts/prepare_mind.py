"""MIND news clicks with their Wikidata KG (KGRec's "mind-f" version) as RecBole atomic files.

News recommendation, a domain the defaults were not tuned on, where every KG node has a readable
label: each news item is identified with the Wikidata entity it is about ("Elizabeth II"), and
the KG links those entities by Wikidata properties (spouse, country of citizenship ...). Point
``--source`` at a folder holding KGRec's ``item_list.txt`` (``news_id remap_id label``, tab
separated, headed), ``entity_list.txt`` (``"label" remap_id``, headed), ``kg_final.txt``
(``head relation tail``, items as entities 0..N-1), ``relation_names.tsv`` (``pid remap_id
label n_triples``, headed) and interaction files of ``user item item ...`` lines.

Only part of the clicks was published in files small enough to copy (SHGD's valid and test
splits, 1.23M distinct pairs of 100k users over 26k news): their union is the dataset, and
kgrec splits it per user like any other. To fit 2 CPU cores, ``--users`` draws that many users
at random (all their clicks) and ``--min-item-users`` keeps the news that at least that many of
them clicked. Item text is the entity label (news titles are not in these files); KG entities are
named by their labels, made unique where several share one (``Wisconsin (news N57123)`` for a
news item's entity, ``Paris [4]`` for another), relations by their English property labels. No
ratings, no timestamps.

    python scripts/prepare_mind.py --source ../shared/data/mind-kg --out data/mind
    python scripts/bench_quality.py --config scripts/configs/mind.yaml
"""

import argparse
import random
import tempfile
from collections import Counter
from pathlib import Path

from _source_files import fail, rows

from kgrec.data.importer import ImportSpec, import_csv, write_tsv

INTERACTION_FILES = ("shgd_valid.txt", "shgd_test.txt")

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--source", default="../shared/data/mind-kg", help="folder of the source files")
parser.add_argument("--out", default="data/mind", help="dataset folder to write (its name is the dataset's)")
parser.add_argument("--interactions", nargs="+", default=list(INTERACTION_FILES), metavar="FILE",
                    help="interaction files in --source, 'user item item ...' per line (default: %(default)s)")  # fmt: skip
parser.add_argument("--users", type=int, default=20_000, help="users drawn at random, 0 for all (default: %(default)s)")
parser.add_argument("--min-item-users", type=int, default=10,
                    help="keep news clicked by at least this many of the drawn users (default: %(default)s)")  # fmt: skip
parser.add_argument("--seed", type=int, default=0, help="seed of the user draw (default: %(default)s)")
args = parser.parse_args()
source = Path(args.source)

news = rows(source / "item_list.txt", "\t", 3)[1:]  # news_id, remap_id, label; item k is entity k
news_id = {remap: nid for _, (nid, remap, _) in news}
title = {remap: label for _, (_, remap, label) in news}
entity_label = {}
for number, (text,) in rows(source / "entity_list.txt", "\t", 1)[1:]:
    label, _, remap = text.rpartition(" ")
    if not remap.isdecimal():
        fail(source / "entity_list.txt", number, "expected a label, a space and an integer id")
    entity_label[remap] = label.strip('"') or remap
shared = Counter(entity_label.values())
entity = {  # a label two entities share gets the news id (an item's entity) or the entity id
    remap: label if shared[label] == 1 else f"{label} (news {news_id[remap]})" if remap in news_id else f"{label} [{remap}]"
    for remap, label in entity_label.items()
}  # fmt: skip
relation = {}
for _, (pid, remap, label, _) in rows(source / "relation_names.tsv", "\t", 4)[1:]:
    relation[remap] = label.replace(" ", "_") if label else pid
if len(set(relation.values())) < len(relation):  # two properties with one label: keep them apart
    relation = {remap: f"{name}_{remap}" for remap, name in relation.items()}

clicks: dict[str, set[str]] = {}
for name in args.interactions:
    for number, (user, *items) in rows(source / name, None, None):
        for item in items:
            if item not in news_id:
                fail(source / name, number, f"item ids must be remap ids of item_list.txt (0..{len(news_id) - 1})")
        clicks.setdefault(user, set()).update(items)
users = sorted(u for u, items in clicks.items() if items)
if args.users and args.users < len(users):
    users = sorted(random.Random(args.seed).sample(users, args.users))
count = Counter(item for u in users for item in clicks[u])
kept = {item for item, n in count.items() if n >= args.min_item_users}
pairs = sorted((u, news_id[i]) for u in users for i in clicks[u] if i in kept)

triples = []
for number, (head, rel, tail) in rows(source / "kg_final.txt", None, 3):
    if rel not in relation:
        fail(source / "kg_final.txt", number, f"relation {rel!r} is not in relation_names.tsv")
    if head not in entity or tail not in entity:
        fail(source / "kg_final.txt", number, "entity ids must be remap ids of entity_list.txt")
    triples.append([entity[head], relation[rel], entity[tail]])
items = sorted(kept, key=int)

with tempfile.TemporaryDirectory() as tmp:
    folder = Path(tmp)
    spec = ImportSpec(
        interactions=write_tsv(folder / "inter.tsv", ["user_id", "item_id"], pairs),
        items=write_tsv(folder / "items.tsv", ["item_id", "title"], [[news_id[i], title[i]] for i in items]),
        text_cols=["title"],
        kg=write_tsv(folder / "kg.tsv", ["head", "relation", "tail"], triples),
        links=write_tsv(folder / "links.tsv", ["item_id", "entity_id"], [[news_id[i], entity[i]] for i in items]),
        out=Path(args.out),
    )
    out = import_csv(spec)
print(f"{out}: {len(pairs)} interactions of {len({u for u, _ in pairs})} users, {len(items)} of "
      f"{len(news_id)} news, {len(triples)} triples over {len(set(relation.values()))} relations")  # fmt: skip
