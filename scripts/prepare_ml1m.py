"""MovieLens-1M with its Satori KG (MKR version) and the movies' titles, as RecBole atomic files.

A third dataset to check kgrec on data it was not tuned on, and the one where both of kgrec's
side inputs are present: a title, year and genres for every movie, and a KG. The research-only
source files are not in this repository: point ``--source`` at a folder holding the version MKR
(Wang et al., WWW 2019) published, as KGAT-style files:

- ``train.txt``, ``test.txt``: ``user item item ...`` per line, the positive interactions
  (rating >= 4) of the 2,347 movies MKR linked to Satori; both files are read and pooled, since
  kgrec makes its own per-user split (config ``data.split``);
- ``kg_final.txt``: ``head<TAB>relation<TAB>tail``, integer ids, items are entities 0..2346;
  ``relation_list.txt``: ``name id`` per line;
- ``item_index2entity_id.txt``: ``ml1m_movie_id<TAB>entity`` (line i is item i);
- ``movies.dat``: ML-1M's ``MovieID::Title (Year)::Genre|Genre`` (ISO-8859-1).

Item k is KG entity k. Other entities keep their Satori number (they have no names here).

    python scripts/prepare_ml1m.py --source ../shared/data/ml1m-mkr-kg --out data/ml-1m
    python scripts/bench_quality.py --config scripts/configs/ml-1m.yaml
"""

import argparse
import re
import tempfile
from pathlib import Path

from _source_files import fail, rows

from kgrec.data.importer import ImportSpec, import_csv, write_tsv

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--source", default="../shared/data/ml1m-mkr-kg", help="folder of the source files")
parser.add_argument("--out", default="data/ml-1m", help="dataset folder to write (its name is the dataset's)")
args = parser.parse_args()
source = Path(args.source)

item_map = rows(source / "item_index2entity_id.txt", "\t", 2)
movie_of_item = [fields[0] for _, fields in item_map]  # line i: item i
n_items = len(movie_of_item)
positives = []
for name in ("train.txt", "test.txt"):
    for number, (user, *items) in rows(source / name, None, None):
        if any(not (item.isdecimal() and int(item) < n_items) for item in items):
            fail(source / name, number, f"item ids must be integers in 0..{n_items - 1}")
        positives += [[user, item] for item in items]

relation_name = {rel: name for _, (name, rel) in rows(source / "relation_list.txt", None, 2)}
triples = []
for number, (head, rel, tail) in rows(source / "kg_final.txt", "\t", 3):
    if rel not in relation_name:
        fail(source / "kg_final.txt", number, f"relation {rel!r} is not in relation_list.txt")
    triples.append([head, relation_name[rel], tail])

TITLE_YEAR = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")
movies = {}
for _, (movie_id, title, genres) in rows(source / "movies.dat", "::", 3, encoding="iso-8859-1"):
    match = TITLE_YEAR.match(title)
    movies[movie_id] = [match[1], match[2], genres] if match else [title, "", genres]
items = [[str(i), *movies.get(movie, ["", "", ""])] for i, movie in enumerate(movie_of_item)]

with tempfile.TemporaryDirectory() as tmp:
    folder = Path(tmp)
    spec = ImportSpec(
        interactions=write_tsv(folder / "inter.tsv", ["user_id", "item_id"], positives),
        items=write_tsv(folder / "items.tsv", ["item_id", "movie_title", "release_year", "genre"], items),
        kg=write_tsv(folder / "kg.tsv", ["head", "relation", "tail"], triples),
        links=write_tsv(
            folder / "links.tsv", ["item_id", "entity_id"], [[str(i), str(i)] for i in range(n_items)]
        ),
        out=Path(args.out),
        text_cols=("movie_title", "release_year"),
        seq_cols=("genre",),
    )
    out = import_csv(spec)
titled = sum(1 for row in items if row[1])
print(
    f"{out}: {len(positives)} interactions, {n_items} items ({titled} with a title), {len(triples)} triples"
)
