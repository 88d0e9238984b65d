"""Book-Crossing with its Satori KG (RippleNet/KGCN version) as RecBole atomic files.

A second dataset to check kgrec on data it was not tuned on. The research-only source files
are not in this repository: point ``--source`` at a folder holding the version that RippleNet,
KGCN and CKAN published (``ratings_final.txt``: ``user<TAB>item<TAB>label`` with 1 = read or
rated, 0 = a sampled negative; ``kg_final.txt``: ``head<TAB>relation<TAB>tail`` with items as
entities 1..N, N the lines of ``item_index2entity_id_rehashed.txt``; optional ``book_titles_partial.tsv`` with title, author, year, publisher).

Only positives become interactions (the sampled negatives are dropped: kgrec samples its own
from the training split); item k is KG entity k.

    python scripts/prepare_bookcrossing.py --source ../shared/data/bookcrossing-kg --out data/bookcrossing
    python scripts/bench_quality.py --config scripts/configs/bookcrossing.yaml
"""

import argparse
import csv
import tempfile
from pathlib import Path

from kgrec.data.importer import ImportSpec, import_csv, write_tsv

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--source", default="../shared/data/bookcrossing-kg", help="folder of the source files")
parser.add_argument("--out", default="data/bookcrossing", help="dataset folder to write (its name is the dataset's)")
args = parser.parse_args()
source = Path(args.source)


def read_tsv(name: str) -> list[list[str]]:
    with open(source / name, encoding="utf-8", newline="") as handle:
        return [line.rstrip("\r\n").split("\t") for line in handle if line.strip()]


ratings = read_tsv("ratings_final.txt")
positives = [[user, item] for user, item, label in ratings if label == "1"]
triples = read_tsv("kg_final.txt")
n_items = len(read_tsv("item_index2entity_id_rehashed.txt"))  # item k is line k (1-based)
items = [str(i) for i in range(1, n_items + 1)]
if any(not 1 <= int(item) <= n_items for _, item in positives):
    raise SystemExit(f"ratings_final.txt: item ids must lie in 1..{n_items} (item_index2entity_id_rehashed.txt)")
titles: dict[str, list[str]] = {}
if (source / "book_titles_partial.tsv").is_file():
    with open(source / "book_titles_partial.tsv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            titles[row["ckan_item_id"]] = [row["title"], row["author"], row["year"], row["publisher"]]

with tempfile.TemporaryDirectory() as tmp:
    folder = Path(tmp)
    spec = ImportSpec(
        interactions=write_tsv(folder / "inter.tsv", ["user_id", "item_id"], positives),
        items=write_tsv(folder / "items.tsv", ["item_id", "book_title", "book_author", "year", "publisher"],
                        [[i, *titles.get(i, ["", "", "", ""])] for i in items]),  # fmt: skip
        kg=write_tsv(folder / "kg.tsv", ["head", "relation", "tail"], triples),
        links=write_tsv(folder / "links.tsv", ["item_id", "entity_id"], [[i, i] for i in items]),
        out=Path(args.out),
        text_cols=("book_title", "book_author", "year", "publisher"),
    )
    out = import_csv(spec)
print(f"{out}: {len(positives)} interactions, {len(items)} items ({len(titles)} with a title), {len(triples)} triples")
