"""DKN's Bing News click sample (Wang et al., WWW 2018) as RecBole atomic files with a given split.

Real impressions: each row of DKN's ``raw_train.txt`` / ``raw_test.txt`` is a news title a user
was shown, labelled 1 (clicked) or 0 (shown, not clicked), with the entities linked in the title
(``user<TAB>title words<TAB>label<TAB>id:name;id:name``). DKN's test titles are all new (none is
in the training file), so this is click-through prediction for new items from their text and
entities, for users known from training: the protocol where popularity and item IDs say nothing.

Written as a given split (README: Pairs labelled 0): ``dkn.train.inter`` is ``raw_train.txt``
less the rows of ``--valid-share`` of its titles, drawn at random, which make ``dkn.valid.inter``
(new titles too, as in test: what choosing an epoch needs); ``dkn.test.inter`` is
``raw_test.txt``. Each title is an item (``title`` is its text); the KG links each item's node
to the entities its title mentions (``mentions``; in any of its rows, as DKN links a title anew
in each), so a new title shares nodes with the training titles that name the same people,
places and things. An entity is named by the surface form its rows give most often (``Tom
Cruise``), with its id where two share a name.

    python scripts/prepare_dkn.py --source ../shared/data/dkn-news-sample --out data/dkn
    python scripts/bench_ctr.py --config scripts/configs/dkn.yaml --data data/dkn
"""

import argparse
import random
import warnings
from collections import Counter, defaultdict
from pathlib import Path

from _source_files import fail, rows

from kgrec.data import load_dataset
from kgrec.errors import KgrecError
from kgrec.utils.io import atomic_dir

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--source", default="../shared/data/dkn-news-sample", help="folder of raw_train.txt and raw_test.txt")
parser.add_argument("--out", default="data/dkn", help="dataset folder to write (its name is the dataset's)")
parser.add_argument("--valid-share", type=float, default=0.1,
                    help="share of the training titles whose rows make the valid part (default: %(default)s)")  # fmt: skip
parser.add_argument("--seed", type=int, default=0, help="seed of the valid titles' draw (default: %(default)s)")
args = parser.parse_args()
if not 0 < args.valid_share < 1:
    parser.error(f"--valid-share {args.valid_share}: expected a share between 0 and 1")
source, out = Path(args.source), Path(args.out)


def read(name: str) -> list[tuple[str, str, str, list[tuple[str, str]]]]:
    """(user, title, label, [(entity id, surface form)]) of each row of ``name``."""
    found = []
    for number, (user, title, label, linked) in rows(source / name, "\t", 4):
        words = " ".join(title.split())
        if not user.strip():
            fail(source / name, number, "the user id is empty")
        if not words:  # one item of no text would stand for every such row's news
            fail(source / name, number, "the title has no words")
        if label not in ("0", "1"):
            fail(source / name, number, f"label must be 1 (clicked) or 0 (shown, not clicked), found {label!r}")
        entities = []
        for entry in filter(None, linked.split(";")):
            entity, colon, surface = entry.partition(":")
            if not colon or not entity.isdecimal():
                fail(source / name, number, f"entities must be 'id:name' separated by ';', found {entry!r}")
            entities.append((entity, surface.strip() or entity))
        found.append((user.strip(), words, label, entities))
    if not found:
        raise SystemExit(f"{source / name}: no rows")
    return found


train_rows, test_rows = read("raw_train.txt"), read("raw_test.txt")
item = {}  # title -> item id, in order of first appearance
for _, title, _, _ in train_rows + test_rows:
    item.setdefault(title, f"n{len(item)}")
mentions: dict[str, dict[str, str]] = {}  # item -> {entity id: surface form}, over all of its title's rows
for _, title, _, entities in train_rows + test_rows:
    mentions.setdefault(item[title], {}).update(entities)

surfaces = defaultdict(Counter)
for _, _, _, entities in train_rows + test_rows:
    for entity, surface in entities:
        surfaces[entity][surface] += 1
name = {entity: forms.most_common(1)[0][0] for entity, forms in surfaces.items()}
shared = Counter(name.values())
name = {entity: label if shared[label] == 1 else f"{label} [{entity}]" for entity, label in name.items()}

train_titles = sorted({title for _, title, _, _ in train_rows})
n_valid = round(args.valid_share * len(train_titles))
if not 0 < n_valid < len(train_titles):  # an empty part, which the loader refuses
    held = f"none of the {len(train_titles)}" if n_valid == 0 else f"all {len(train_titles)}"
    parser.error(f"--valid-share {args.valid_share} holds out {held} training titles: valid and train need one each")
held_out = set(random.Random(args.seed).sample(train_titles, n_valid))
parts = {
    "train": [r for r in train_rows if r[1] not in held_out],
    "valid": [r for r in train_rows if r[1] in held_out],
    "test": test_rows,
}


def lines(header: str, body: list[list[str]]) -> str:
    return "\n".join([header, *("\t".join(fields) for fields in body)]) + "\n"


def check_loads(folder: Path) -> None:
    """Stop in one line where the files written to ``folder`` (the temporary folder that is to
    replace ``out``) do not load, so that ``out`` keeps what it held. The loader's warnings are
    left to the load of ``out`` that follows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            load_dataset(folder, name=dataset_name)
        except KgrecError as error:
            raise SystemExit(f"{str(error).replace(str(folder), str(out))} ({out} is left as it was)") from None


dataset_name = out.name
with atomic_dir(out) as tmp:
    for part, part_rows in parts.items():
        body = [[user, item[title], label] for user, title, label, _ in part_rows]
        (tmp / f"{dataset_name}.{part}.inter").write_text(
            lines("user_id:token\titem_id:token\tlabel:float", body), encoding="utf-8")  # fmt: skip
    (tmp / f"{dataset_name}.item").write_text(
        lines("item_id:token\ttitle:token", [[i, title] for title, i in item.items()]), encoding="utf-8")  # fmt: skip
    (tmp / f"{dataset_name}.link").write_text(
        lines("item_id:token\tentity_id:token", [[i, i] for i, linked in mentions.items() if linked]), encoding="utf-8")  # fmt: skip
    triples = [[i, "mentions", name[entity]] for i, linked in mentions.items() for entity in linked]
    (tmp / f"{dataset_name}.kg").write_text(
        lines("head_id:token\trelation_id:token\ttail_id:token", triples), encoding="utf-8")  # fmt: skip
    check_loads(tmp)

dataset = load_dataset(out)
counts = dataset.negative_counts()
print(f"{out}: {dataset.n_users} users, {dataset.n_items} titles ({len(held_out)} training titles held out as valid), "
      f"{len(name)} entities, {len(triples)} mentions; interactions (clicks) train {len(dataset.train)}, "
      f"valid {len(dataset.valid)}, test {len(dataset.test)}; shown without a click train {counts.get('train', 0)}, "
      f"valid {counts.get('valid', 0)}, test {counts.get('test', 0)}")  # fmt: skip
