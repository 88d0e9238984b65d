"""Book-Crossing with its Satori KG (RippleNet/KGCN version) as RecBole atomic files.

A second dataset to check kgrec on data it was not tuned on. The research-only source files
are not in this repository: point ``--source`` at a folder holding the version that RippleNet,
KGCN and CKAN published (``ratings_final.txt``: ``user<TAB>item<TAB>label`` with 1 = read or
rated, 0 = a sampled negative; ``kg_final.txt``: ``head<TAB>relation<TAB>tail`` with items as
entities 1..N, N the lines of ``item_index2entity_id_rehashed.txt``; optional ``book_titles_partial.tsv`` with title, author, year, publisher).

Only positives become interactions (the sampled negatives are dropped: kgrec samples its own
from the training split), unless ``--negatives``: then they are written as rows with label 0,
the like tower's negatives and its AUC's, as RippleNet and KGCN measure click-through AUC on
them (README: Pairs labelled 0). Item k is KG entity k.

    python scripts/prepare_bookcrossing.py --source ../shared/data/bookcrossing-kg --out data/bookcrossing
    python scripts/bench_quality.py --config scripts/configs/bookcrossing.yaml
"""

import argparse
import csv
import tempfile
from pathlib import Path

from _source_files import fail, rows

from kgrec.data.importer import ImportSpec, import_csv, write_tsv

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--source", default="../shared/data/bookcrossing-kg", help="folder of the source files")
parser.add_argument("--out", default="data/bookcrossing", help="dataset folder to write (its name is the dataset's)")
parser.add_argument("--negatives", action="store_true",
                    help="keep the sampled negatives as rows with label 0 (the like tower's negatives and its AUC's)")
args = parser.parse_args()
source = Path(args.source)

n_items = len(rows(source / "item_index2entity_id_rehashed.txt", "\t", 2))  # item k is line k (1-based)
items = [str(i) for i in range(1, n_items + 1)]
positives, negatives = [], []
ratings_file = source / "ratings_final.txt"
for number, (user, item, label) in rows(ratings_file, "\t", 3):
    if not (item.isdecimal() and 1 <= int(item) <= n_items):
        fail(ratings_file, number, f"item ids must be integers in 1..{n_items} (item_index2entity_id_rehashed.txt)")
    if label not in ("0", "1"):
        fail(ratings_file, number, f"label must be 1 (positive) or 0 (sampled negative), found {label!r}")
    if label == "1":
        positives.append([user, item])
    elif args.negatives:
        negatives.append([user, item])
triples = [fields for _, fields in rows(source / "kg_final.txt", "\t", 3)]
titles: dict[str, list[str]] = {}
if (source / "book_titles_partial.tsv").is_file():
    with open(source / "book_titles_partial.tsv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            titles[row["ckan_item_id"]] = [row["title"], row["author"], row["year"], row["publisher"]]

with tempfile.TemporaryDirectory() as tmp:
    folder = Path(tmp)
    spec = ImportSpec(
        interactions=write_tsv(folder / "inter.tsv", ["user_id", "item_id", *(["label"] if args.negatives else [])],
                               [[*pair, "1"] for pair in positives] + [[*pair, "0"] for pair in negatives]
                               if args.negatives else positives),
        items=write_tsv(folder / "items.tsv", ["item_id", "book_title", "book_author", "year", "publisher"],
                        [[i, *titles.get(i, ["", "", "", ""])] for i in items]),  # fmt: skip
        kg=write_tsv(folder / "kg.tsv", ["head", "relation", "tail"], triples),
        links=write_tsv(folder / "links.tsv", ["item_id", "entity_id"], [[i, i] for i in items]),
        out=Path(args.out),
        text_cols=("book_title", "book_author", "year", "publisher"),
        label_col="label" if args.negatives else None,
    )
    out = import_csv(spec)
print(f"{out}: {len(positives)} interactions{f', {len(negatives)} rows labelled 0' if args.negatives else ''}, "
      f"{len(items)} items ({len(titles)} with a title), {len(triples)} triples")
