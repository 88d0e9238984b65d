"""Pairs labelled negative in the data (``label`` 0 rows: impressions without a click): kept per
part as the like tower's negatives (train) and its AUC's (valid, test), never interactions."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from kgrec.data import SplitConfig, load_dataset
from kgrec.errors import DataWarning

GENRES = ["Comedy", "Drama", "Action", "Horror"]
pytestmark = pytest.mark.filterwarnings("ignore::kgrec.errors.DataWarning")  # the label-0 note of each load


def write_ctr(root: Path, name: str = "ctr", rating: bool = False) -> Path:
    """40 users, 48 items in 4 clusters: each user clicks 8 items of their cluster (label 1) and
    is shown 8 of the others without a click (label 0); one shown pair is shown again, and one
    clicked pair was shown before without a click."""
    rng = np.random.default_rng(0)
    folder = root / name
    folder.mkdir(parents=True)
    header = "user_id:token\titem_id:token" + ("\trating:float" if rating else "") + "\tlabel:float\ttimestamp:float"
    lines, t = [header], 0
    for u in range(40):
        own = [i for i in range(48) if i % 4 == u % 4]
        other = [i for i in range(48) if i % 4 != u % 4]
        rows = [(i, 1) for i in rng.choice(own, 8, replace=False)] + [(i, 0) for i in rng.choice(other, 8, replace=False)]
        for i, label in rows:
            t += 1
            lines.append(f"u{u}\ti{i}" + (f"\t{rng.choice([4, 5]) if label else 2}" if rating else "") + f"\t{label}\t{t}")
    lines.insert(2, lines[-1].rsplit("\t", 1)[0] + "\t0")  # u39's last shown item, shown twice
    first = lines[1].split("\t")
    lines.insert(1, "\t".join([first[0], first[1], *(["1"] if rating else []), "0", "0"]))  # u0's click, once shown before
    (folder / f"{name}.inter").write_text("\n".join(lines) + "\n")
    items = ["item_id:token\ttitle:token\tclass:token_seq"] + [f"i{i}\tFilm {i}\t{GENRES[i % 4]}" for i in range(48)]
    (folder / f"{name}.item").write_text("\n".join(items) + "\n")
    return folder


def pairs(dataset, part: str, negatives: bool = False) -> set[tuple[str, str]]:
    rows = dataset.negatives(part) if negatives else getattr(dataset, part)
    return set(zip(dataset.users[rows.user].tolist(), dataset.items[rows.item].tolist(), strict=True))


def load(folder: Path, split: SplitConfig | None = None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return load_dataset(folder, split or SplitConfig())


def test_label_0_rows_are_kept_apart_from_the_interactions_and_split_as_they_are(tmp_path: Path):
    folder = write_ctr(tmp_path)
    with pytest.warns(DataWarning, match=r"the like tower learns them as negatives and its AUC counts them"):
        dataset = load_dataset(folder, SplitConfig())
    rows = [line.split("\t") for line in (folder / "ctr.inter").read_text().splitlines()[1:]]
    clicked = {(u, i) for u, i, label, _ in rows if label == "1"}
    shown = {(u, i) for u, i, label, _ in rows if label == "0"} - clicked  # a clicked pair is no negative
    parts = [pairs(dataset, p, negatives=True) for p in ("train", "valid", "test")]
    assert sum(len(p) for p in parts) == len(shown) == sum(len(dataset.negatives(p)) for p in ("train", "valid", "test"))
    assert set().union(*parts) == shown  # each once (the pair shown twice too), in one part
    assert set().union(*(pairs(dataset, p) for p in ("train", "valid", "test"))) == clicked
    assert all(len(p) for p in parts)  # per-user 80/10/10, as the interactions


@pytest.mark.parametrize("strategy", ["temporal", "global_temporal", "cold_item"])
def test_every_split_keeps_the_pairs_labelled_0_where_their_interactions_go(tmp_path: Path, strategy: str):
    """No training pair labelled 0 is later than its part's evaluation (time splits) or names a
    held-out item (cold_item); each shown pair lands in one part."""
    folder = write_ctr(tmp_path)
    dataset = load(folder, SplitConfig(strategy=strategy))
    rows = [line.split("\t") for line in (folder / "ctr.inter").read_text().splitlines()[1:]]
    clicked = {(u, i) for u, i, label, _ in rows if label == "1"}
    shown = {(u, i) for u, i, label, _ in rows if label == "0"} - clicked
    parts = [pairs(dataset, p, negatives=True) for p in ("train", "valid", "test")]
    assert sum(len(p) for p in parts) == len(shown) and set().union(*parts) == shown
    train = dataset.negatives("train")
    if strategy == "cold_item":
        held_out = set(np.r_[dataset.valid.item, dataset.test.item].tolist())
        assert not held_out & set(train.item.tolist()) and len(parts[1]) and len(parts[2])
    else:
        evaluated = np.r_[dataset.valid.timestamp, dataset.test.timestamp]
        if strategy == "global_temporal":
            assert train.timestamp.max() < evaluated.min()
        else:
            for u in np.unique(np.r_[dataset.valid.user, dataset.test.user]):
                later = np.r_[dataset.valid.timestamp[dataset.valid.user == u], dataset.test.timestamp[dataset.test.user == u]]
                assert (train.timestamp[train.user == u] < later.min()).all()
        assert len(parts[2])


def test_a_written_split_keeps_each_parts_pairs_labelled_0(tmp_path: Path):
    """``kgrec data split`` writes them with label 0 beside the interactions; read back as a
    given split, each part has the same interactions and negatives."""
    from kgrec.data.export import export_split

    dataset = load(write_ctr(tmp_path, rating=True))
    again = load(export_split(dataset, tmp_path / "splits" / "ctr"))
    assert again.split == "given"
    for part in ("train", "valid", "test"):
        assert pairs(again, part) == pairs(dataset, part)
        assert pairs(again, part, negatives=True) == pairs(dataset, part, negatives=True)


@pytest.fixture(scope="module")
def ctr_run(tmp_path_factory: pytest.TempPathFactory):
    """The CTR data (no ratings) fitted and trained with the tiny config: like, retrieval, kg."""
    from kgrec.train import fit_defaults, train
    from tests.conftest import tiny_config

    root = tmp_path_factory.mktemp("ctr")
    dataset = load(write_ctr(root))
    config, notes = fit_defaults(tiny_config(root / "ctr", "train.max_epochs=6", "train.lr=0.01"), dataset)
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        metrics = train(config, root / "run")
    return dataset, config, notes, metrics, root / "run"


def test_without_ratings_the_like_tower_learns_clicks_from_the_pairs_labelled_0(ctr_run):
    dataset, config, notes, metrics, _ = ctr_run
    assert "like" in config.model.tasks and "rating" not in config.model.tasks
    assert any("the like tower learns the interactions (label 1) against the" in note for note in notes)
    assert metrics["test"]["auc"] > 0.9  # clicks of a user's own cluster against impressions of the others


def test_training_draws_negatives_from_the_training_part_only(ctr_run):
    """Every pair a step feeds the like loss as a negative is a training pair labelled 0 (valid's
    and test's are only measured), about as many as the batch has interactions."""
    from kgrec.train import build_model, prepare
    from kgrec.train.module import RecommenderModule

    dataset, config, _, _, _ = ctr_run
    model = build_model(config, prepare(config, dataset, progress=False))
    module = RecommenderModule(model, dataset, config)
    train_neg = dataset.train_negatives
    allowed = set(zip(train_neg.user.tolist(), train_neg.item.tolist(), strict=True))
    drawn = set()
    for _, batch in zip(range(5), module.train_dataloader(), strict=False):
        rec = module.rec_batch(batch)
        assert rec.like is not None and bool((rec.like == 1).all())  # no ratings: every interaction a like
        assert abs(len(rec.like_neg_user) - len(batch[0])) <= 1  # as many labelled 0 as 1 here
        drawn |= set(zip(rec.like_neg_user.tolist(), rec.like_neg_item.tolist(), strict=True))
    assert drawn and drawn <= allowed


def test_auc_counts_the_parts_pairs_labelled_0(ctr_run):
    """The reported test AUC is the like tower's on the test interactions (label 1) and the test
    pairs labelled 0, recomputed here from the saved model."""
    from kgrec.eval import auc
    from kgrec.train.saved import load_run

    dataset, _, _, metrics, run = ctr_run
    model = load_run(run).model
    test, negative = dataset.test, dataset.test_negatives
    users = torch.as_tensor(np.concatenate([test.user, negative.user]))
    items = torch.as_tensor(np.concatenate([test.item, negative.item]))
    with torch.no_grad():
        scores = model.predict_like(users, items).float()
    labels = torch.cat([torch.ones(len(test)), torch.zeros(len(negative))])
    assert metrics["test"]["auc"] == pytest.approx(auc(scores, labels), abs=1e-6)


def test_a_query_of_the_run_does_not_repeat_the_datas_warnings(ctr_run):
    """Training said how many rows have label 0; loading the run for a query reads its own data
    again, quietly (another folder given with data= is new data, and says so)."""
    from kgrec.train.saved import load_run

    dataset, _, _, _, run = ctr_run
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_run(run)
    assert not [w for w in caught if issubclass(w.category, DataWarning)]
    with pytest.warns(DataWarning, match="label 0"):
        load_run(run, data=dataset.path)


def test_after_a_click_through_run_the_hint_names_predict(tmp_path: Path, capsys):
    """A run with the like tower alone answers predict only: the hint names it (there was none)."""
    from kgrec.cli.main import main

    folder, run = write_ctr(tmp_path), tmp_path / "run"
    assert main(["train", "--data", str(folder), "--config", "none", "--out", str(run), "--set", "model.tasks=[like]",
                 "--set", "model.use_text=false", "--set", "model.dim=8", "--set", "train.max_epochs=1",
                 "--set", "train.progress=false", "--set", "train.accelerator=cpu"]) == 0  # fmt: skip
    hint = [line for line in capsys.readouterr().out.splitlines() if line.startswith("next: ")]
    assert hint == [f"next: kgrec predict {run} --user USER_ID --items ITEM ... (the like tower's click probabilities)"]
    assert main(["predict", str(run), "--user", "u0", "--items", "i1"]) == 0  # the command it names works
    assert "like 0." in capsys.readouterr().out
