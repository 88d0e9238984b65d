"""Alibaba-iFashion with its outfit/category KG (KGIN version) as RecBole atomic files.

A larger dataset to check kgrec on data it was not tuned on, and at a scale where training
speed matters: 114,737 users, 30,040 fashion items, 279,155 KG triples over 51 relations
(an outfit ``including`` an item; an item ``having-category-<id>``). The research-only source
files are not in this repository: point ``--source`` at a folder holding KGIN's
``kg_final.txt`` (``head relation tail``, items as entities 0..N-1, N the data lines of
``item_list.txt``) and one or more interaction files of ``user item item ...`` lines.

Only part of the interactions was published in files small enough to copy (KGIN's test split
and SHGD's valid and test splits of the same data, 983,023 distinct pairs of the paper's
1.78M), so this is not KGIN's split: the union of the given files becomes the dataset, and
kgrec splits it per user like any other. No item text (items are hashed ids), no ratings.

    python scripts/prepare_ifashion.py --source ../shared/data/alibaba-ifashion-kg --out data/ifashion
    python scripts/bench_quality.py --config scripts/configs/ifashion.yaml
"""

import argparse
import tempfile
from pathlib import Path

from _source_files import fail, rows

from kgrec.data.importer import ImportSpec, import_csv, write_tsv

INTERACTION_FILES = ("kgin_test.txt", "shgd_valid.txt", "shgd_test.txt")

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--source", default="../shared/data/alibaba-ifashion-kg", help="folder of the source files")
parser.add_argument("--out", default="data/ifashion", help="dataset folder to write (its name is the dataset's)")
parser.add_argument("--interactions", nargs="+", default=list(INTERACTION_FILES), metavar="FILE",
                    help="interaction files in --source, 'user item item ...' per line (default: %(default)s)")  # fmt: skip
args = parser.parse_args()
source = Path(args.source)

n_items = len(rows(source / "item_list.txt", None, 3)) - 1  # a header line, then item k on line k + 2
pairs: set[tuple[str, str]] = set()
for name in args.interactions:
    for number, (user, *items) in rows(source / name, None, None):
        for item in items:
            if not (item.isdecimal() and int(item) < n_items):
                fail(source / name, number, f"item ids must be integers in 0..{n_items - 1} (item_list.txt)")
            pairs.add((user, item))
relation_names = {remap: name for _, (name, remap) in rows(source / "relation_list.txt", None, 2)[1:]}
triples = []  # relations by name (``including``, ``having-category-<id>``), as the KG's README gives them
for number, (head, relation, tail) in rows(source / "kg_final.txt", None, 3):
    if relation not in relation_names:
        fail(source / "kg_final.txt", number, f"relation {relation!r} is not in relation_list.txt")
    triples.append([head, relation_names[relation], tail])
items = sorted({item for _, item in pairs}, key=int)  # the few items nobody interacted with stay KG entities

with tempfile.TemporaryDirectory() as tmp:
    folder = Path(tmp)
    spec = ImportSpec(
        interactions=write_tsv(folder / "inter.tsv", ["user_id", "item_id"], sorted(pairs)),
        kg=write_tsv(folder / "kg.tsv", ["head", "relation", "tail"], triples),
        links=write_tsv(folder / "links.tsv", ["item_id", "entity_id"], [[i, i] for i in items]),
        out=Path(args.out),
    )
    out = import_csv(spec)
users = len({user for user, _ in pairs})
print(f"{out}: {len(pairs)} interactions of {users} users, {len(items)} of {n_items} items, {len(triples)} triples")
