"""Audit of ``scripts/prepare_dkn.py`` and ``scripts/bench_ctr.py``: each test pins a bug found in
what the script computed, refused or wrote, and fails on the code before its fix.

``prepare_dkn.py`` runs as a subprocess on a tiny source folder in DKN's layout; ``bench_ctr.py``
runs in this process (:func:`tests.scripts.test_benches.run_script`) on tiny given splits, its
kgrec rows not trained (:func:`untrained`): what is checked is what the bench measures itself."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from kgrec.data import load_dataset
from kgrec.errors import KgrecError
from tests.scripts.test_bench_ux import parse
from tests.scripts.test_benches import SCRIPTS, run_script, tiny_sets

# DKN's layout (user, title words, label, entities as id:name;id:name), CRLF line ends: every
# title has a click, so whichever title --valid-share 0.25 draws, train and valid both have one
NEWS_TRAIN = [
    "1\tstar wars film\t1\t10:Carrie Fisher;20:Star Wars",
    "2\tstar wars film\t0\t10:Carrie Fisher",
    "1\tparis by night\t1\t30:Paris",
    "2\tparis by night\t0\t30:Paris",
    "3\tmarkets fall\t1\t",
    "3\tweather turns cold\t1\t40:Weather",
]
NEWS_TEST = ["1\tnew paris show\t1\t30:Paris", "2\tnew film\t0\t20:Star Wars"]


def crlf(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture
def news(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    (source / "raw_train.txt").write_bytes(crlf(NEWS_TRAIN))
    (source / "raw_test.txt").write_bytes(crlf(NEWS_TEST))
    return source


def prepare(source: Path, out: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / "prepare_dkn.py"), "--source", str(source), "--out", str(out),
                           "--valid-share", "0.25", *options], capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.filterwarnings("ignore::kgrec.errors.DataWarning")  # the label-0 note of each part
def test_prepare_dkn_keeps_every_entity_a_title_is_linked_to_in_any_of_its_rows(news, tmp_path):
    """DKN links a title's entities anew in each row, not always alike (7 of the sample's titles
    differ between rows: 'carrie fisher star wars princess leia dies' has Star Wars in one row
    only). The last row's list replaced the others', and with it went mentions of the KG."""
    done = prepare(news, tmp_path / "dkn")
    assert done.returncode == 0, done.stderr
    dataset = load_dataset(tmp_path / "dkn")
    title = dict(zip(dataset.items.tolist(), dataset.item_features["title"].tolist(), strict=True))
    kg = dataset.kg
    mentioned = {dataset.entities[t] for h, t in zip(kg.head, kg.tail, strict=True) if title.get(dataset.entities[h]) == "star wars film"}
    assert mentioned == {"Carrie Fisher", "Star Wars"}


def test_prepare_dkn_leaves_the_dataset_as_it_was_when_the_new_files_do_not_load(news, tmp_path):
    """Files the loader refuses (here a test file without a click) were written over the folder
    first, then refused with a traceback: the last good dataset was gone, the new one unreadable."""
    out = tmp_path / "dkn"
    assert prepare(news, out).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (news / "raw_test.txt").write_bytes(crlf(["1\tnew paris show\t0\t30:Paris"]))
    done = prepare(news, out)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    said = done.stderr.strip().splitlines()[-1]
    assert "dkn.test.inter" in said and "label 0" in said and ".tmp" not in said, said
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize(("share", "said"), [("0.1", "holds out none of the 4"), ("0.9", "holds out all 4")])
def test_prepare_dkn_refuses_a_valid_share_that_leaves_a_part_without_titles(news, tmp_path, share, said):
    """0.1 of 4 titles rounds to none (an empty valid part), 0.9 to all 4 (an empty train part):
    a traceback from the loader, after the folder had been written."""
    done = prepare(news, tmp_path / "dkn", "--valid-share", share)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"--valid-share {share} {said} training titles" in done.stderr
    assert not (tmp_path / "dkn").exists()


@pytest.mark.parametrize(("line", "said"), [
    ("\tparis by night\t1\t30:Paris", "the user id is empty"),  # was a traceback, at the written file's line
    ("4\t  \t1\t", "the title has no words"),  # was an item of no text, shared by every such row
])  # fmt: skip
def test_prepare_dkn_names_the_line_of_a_row_without_user_or_title(news, tmp_path, line, said):
    (news / "raw_train.txt").write_bytes(crlf([*NEWS_TRAIN, line]))
    done = prepare(news, tmp_path / "dkn")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"{news / 'raw_train.txt'}:7: {said}" in done.stderr
    assert not (tmp_path / "dkn").exists()


@pytest.mark.parametrize("name", ["raw_train.txt", "raw_test.txt"])
def test_prepare_dkn_names_an_empty_source_file(news, tmp_path, name):
    """An empty raw_train.txt was a traceback from the loader (after writing the folder), naming
    the written dkn.train.inter, not the file the user gave."""
    (news / name).write_bytes(b"\r\n")
    done = prepare(news, tmp_path / "dkn")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"{news / name}: no rows" in done.stderr
    assert not (tmp_path / "dkn").exists()


# bench_ctr.py


@pytest.fixture
def untrained(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench_ctr's kgrec rows without training (AUC 0.5 each): what the tests check is measured
    by the bench itself. ``_bench``'s hooks are put back after the test."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    import _bench

    def train_seed(*args: object, **kwargs: object) -> dict:
        return {"valid": {"auc": 0.5}, "test": {"auc": 0.5}, "train_seconds": 0.0, "epochs": 1}

    monkeypatch.setattr(_bench, "train_seed", train_seed)


def given_split(folder: Path, parts: dict[str, list[str]]) -> Path:
    """A dataset folder of ``NAME.train/valid/test.inter``: rows ``user item [rating] label``."""
    folder.mkdir(parents=True)
    for part, lines in parts.items():
        rated = len(lines[0].split("\t")) == 4
        header = "user_id:token\titem_id:token\t" + ("rating:float\t" if rated else "") + "label:float"
        (folder / f"{folder.name}.{part}.inter").write_text("\n".join([header, *lines]) + "\n")
    return folder


def bench(data: Path, cwd: Path) -> dict:
    """The ``--json`` results of ``bench_ctr.py`` on ``data`` (EASE at lambda 10), kgrec untrained."""
    run_script("bench_ctr.py", "--config", str(SCRIPTS / "configs" / "bookcrossing.yaml"), "--data", str(data),
               "--ease-lambda", "10", "--json", "ctr.json", *tiny_sets(data), cwd=cwd)  # fmt: skip
    return json.loads((cwd / "ctr.json").read_text())["results"]


# six users who read i0 and i1 and were shown i3 without a click
CLICKS = [f"u{u}\ti{i}\t1" for u in range(6) for i in (0, 1)] + [f"u{u}\ti3\t0" for u in range(6)]
HELD_OUT = ["u0\ti2\t1", "u1\ti2\t0"]


@pytest.mark.filterwarnings("ignore::kgrec.errors.DataWarning")
def test_bench_ctr_measures_the_baselines_on_the_likes_kgrec_is_measured_on(untrained, tmp_path):
    """With ratings, kgrec's like AUC counts an interaction rated below ``model.like_threshold``
    (4 on 1-5) as a 0, beside the pairs labelled 0; the baselines' rows counted every interaction
    as a 1, so the rows of one table were measured on different labels (and ``test se`` too)."""
    # i0 read by all six users, rated 5; i1 by three, rated 1; i2 by one. Held out: each user
    # rates the popular i0 5 and the unpopular i2 1, and was shown i1 without a click
    train = [f"u{u}\ti0\t5\t1" for u in range(6)] + [f"u{u}\ti1\t1\t1" for u in range(3)] + ["u0\ti2\t4\t1"]
    train += [f"u{u}\ti3\t0\t0" for u in range(6)]
    held_out = [f"u{u}\ti0\t5\t1" for u in range(3, 6)] + [f"u{u}\ti2\t1\t1" for u in range(3, 6)]
    held_out += [f"u{u}\ti1\t0\t0" for u in range(3, 6)]
    data = given_split(tmp_path / "rated", {"train": train, "valid": held_out, "test": held_out})
    popular = bench(data, tmp_path)["most-popular"]
    # the likes (i0) are the most popular of the pairs: AUC 1 (it was 0.5, i2 counted as a 1)
    assert popular["test"] == 1.0 and popular["valid"] == 1.0
    assert popular["test_se"] == 0.0  # Hanley-McNeil at AUC 1


@pytest.mark.filterwarnings("ignore::kgrec.errors.DataWarning")
def test_bench_ctr_runs_on_data_without_training_pairs_labelled_0(untrained, tmp_path, capsys):
    """The user click rate and the text rows take a training part without pairs labelled 0, but
    the first line the bench prints took ``len(None)``: a TypeError before any row."""
    clicks = [line for line in CLICKS if line.endswith("\t1")]
    data = given_split(tmp_path / "clicks", {"train": clicks, "valid": HELD_OUT, "test": HELD_OUT})
    results = bench(data, tmp_path)
    assert results["user click rate"]["test"] == 0.5  # every user at (2 + 1) / (2 + 2)


@pytest.mark.filterwarnings("ignore::kgrec.errors.DataWarning")
@pytest.mark.parametrize(("part", "valid", "test"), [
    ("valid", ["u0\ti2\t1", "u1\ti2\t1"], HELD_OUT),  # no pair labelled 0 in valid: a TypeError
    ("test", HELD_OUT, ["u0\ti2\t1", "stranger\ti2\t0"]),  # only a user without training pairs has one: a ValueError
])  # fmt: skip
def test_bench_ctr_refuses_a_part_whose_auc_is_undefined_in_one_line(untrained, tmp_path, part, valid, test):
    """Valid AUC chooses EASE's lambda and kgrec's epoch, test AUC is the measure: each needs an
    interaction and a pair labelled 0 among the users with training interactions."""
    data = given_split(tmp_path / "halves", {"train": CLICKS, "valid": valid, "test": test})
    with pytest.raises(KgrecError, match=f"no {part} pairs labelled 0"):
        bench(data, tmp_path)


@pytest.mark.parametrize("weight", ["0", "-10", "nan"])
def test_bench_ctr_refuses_an_ease_weight_it_cannot_fit_before_any_work(weight):
    """EASE refused it with a ValueError traceback, after the data, the baselines and the text
    encoding had run."""
    code, err = parse("bench_ctr.py", "--config", str(SCRIPTS / "configs" / "dkn.yaml"), "--data", ".",
                      "--ease-lambda", "100", weight)  # fmt: skip
    assert code == 2 and "expected a positive, finite L2 weight" in err, err
