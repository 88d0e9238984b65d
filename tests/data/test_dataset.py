import numpy as np
import pytest

from kgrec.data import SplitConfig, load_dataset, load_id_maps
from kgrec.data.dataset import Interactions
from kgrec.errors import DataError
from tests.conftest import TOY_INTER, TOY_ITEM, TOY_KG, TOY_LINK


def test_loads_ids_features_and_kg(toy_dataset):
    ds = load_dataset(toy_dataset)
    assert ds.items.tolist() == ["i1", "i2", "i3", "i4", "i5", "i6"]  # .item order first
    assert ds.users.tolist() == ["u1", "u2", "u3"]
    assert len(ds.interactions()) == 8
    assert ds.item_names()[:2] == ["Alpha", "Beta"]
    assert ds.item_features["class"][0] == ["Action", "Comedy"]
    assert len(ds.kg) == 5 and set(ds.relations) == {"film.film.directed_by", "film.film.starring"}
    assert ds.item_entity[ds.item_index("i6")] == -1
    assert ds.entities[ds.item_entity[ds.item_index("i1")]] == "e1"


def test_id_maps_round_trip(toy_dataset, tmp_path):
    ds = load_dataset(toy_dataset)
    ds.save_id_maps(tmp_path / "ids.json")
    maps = load_id_maps(tmp_path / "ids.json")
    assert maps["items"] == ds.items.tolist() and maps["users"] == ds.users.tolist()


def test_given_split_files_are_used_as_given(atomic):
    head = "user_id:token|item_id:token\n"
    folder = atomic(train_inter=head + "u1|a\nu1|b\nu2|a", valid_inter=head + "u1|c", test_inter=head + "u2|c")
    ds = load_dataset(folder)
    assert ds.split == "given"
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (3, 1, 1)


def test_incomplete_split_files_are_refused(atomic):
    folder = atomic(train_inter="user_id:token|item_id:token\nu|i")
    with pytest.raises(DataError, match="missing toy.valid.inter, toy.test.inter"):
        load_dataset(folder)


def test_missing_required_column_names_file_and_header(atomic):
    folder = atomic(inter="user_id:token|item:token\nu|i")
    with pytest.raises(DataError, match=r"toy.inter:1: missing required column 'item_id'"):
        load_dataset(folder)


def test_kg_missing_tail_column(atomic):
    folder = atomic(inter=TOY_INTER, kg="head_id:token|relation_id:token\na|r")
    with pytest.raises(DataError, match=r"toy.kg:1: missing required column 'tail_id'"):
        load_dataset(folder)


def test_link_naming_unknown_item_is_refused(atomic):
    folder = atomic(inter=TOY_INTER, kg=TOY_KG, link=TOY_LINK.strip() + "\nnope|e9")
    with pytest.raises(DataError, match=r"toy.link:7: column 'item_id:token': item 'nope' is not an item"):
        load_dataset(folder)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_rating_is_refused(atomic, value):
    folder = atomic(inter=f"user_id:token|item_id:token|rating:float\nu|i|4\nu|j|{value}")
    with pytest.raises(DataError, match=r"toy.inter:3: column 'rating:float': rating is"):
        load_dataset(folder)


@pytest.mark.parametrize(
    ("files", "where"),
    [
        ({"inter": "user_id:token|item_id:token\nu|i\n|j"}, r"toy.inter:3: column 'user_id:token': empty id"),
        ({"inter": "user_id:token|item_id:token\nu|i\nu|  "}, r"toy.inter:3: column 'item_id:token': an id of spaces alone"),
        ({"inter": TOY_INTER, "item": "item_id:token|title:token\ni1|A\n|B"}, r"toy.item:3: column 'item_id:token'"),
        ({"inter": TOY_INTER, "kg": TOY_KG.strip() + "\nhead||tail"}, r"toy.kg:\d+: column 'relation_id:token'"),
        ({"inter": "user_id:token|item_id:float\nu|1"}, r"toy.inter:1: column 'item_id:float': an id column"),
        ({"inter": TOY_INTER, "user": "user_id:token_seq\nu1"}, r"toy.user:1: column 'user_id:token_seq'"),
    ],
)
def test_empty_or_untyped_ids_are_refused(atomic, files, where):
    with pytest.raises(DataError, match=where):
        load_dataset(atomic(**files))


def test_empty_timestamp_is_refused(atomic):
    folder = atomic(inter="user_id:token|item_id:token|timestamp:float\nu|a|1\nu|b|\nu|c|3")
    with pytest.raises(DataError, match=r"toy.inter:3: column 'timestamp:float': timestamp is empty or NaN"):
        load_dataset(folder)


def test_header_only_interactions_are_refused(atomic):
    with pytest.raises(DataError, match="no interactions"):
        load_dataset(atomic(inter="user_id:token|item_id:token"))


def test_a_renamed_folder_names_the_files_it_holds(atomic, tmp_path):
    folder = atomic(inter="user_id:token|item_id:token\nu|i")
    renamed = folder.rename(tmp_path / "renamed")
    with pytest.raises(DataError, match=rf"no interactions: expected renamed.inter .*; the folder holds '{folder.name}.inter': "
                                        "a dataset's files are named after its folder"):
        load_dataset(renamed)


def test_duplicate_pairs_keep_the_latest_by_default(atomic):
    text = "user_id:token|item_id:token|rating:float|timestamp:float\nu|i|2|5\nu|i|4|9\nu|i|3|1\nu|j|1|1"
    ds = load_dataset(atomic(inter=text), SplitConfig(ratios=(1.0, 0.0, 0.0)))
    ratings = dict(zip(ds.items[ds.train.item].tolist(), ds.train.rating.tolist(), strict=True))
    assert ratings == {"i": 4.0, "j": 1.0}


def test_duplicate_pairs_can_be_kept_or_refused(atomic):
    folder = atomic(inter="user_id:token|item_id:token\nu|i\nu|i")
    assert len(load_dataset(folder, duplicates="keep").interactions()) == 2
    with pytest.raises(DataError, match=r"toy.inter:3: repeated \(user_id, item_id\) pair"):
        load_dataset(folder, duplicates="error")


def test_duplicate_item_rows_are_refused(atomic):
    folder = atomic(inter=TOY_INTER, item=TOY_ITEM.strip() + "\ni1|Again|Drama")
    with pytest.raises(DataError, match=r"toy.item:8: column 'item_id:token': 'i1' appears again \(first on line 2\)"):
        load_dataset(folder)


def test_unknown_extra_columns_are_kept(atomic):
    folder = atomic(inter="user_id:token|item_id:token|weird:token\nu|i|x", item="item_id:token|color:token\ni|red")
    ds = load_dataset(folder, SplitConfig(ratios=(1.0, 0.0, 0.0)))
    assert ds.item_features["color"].tolist() == ["red"]


def test_ml100k_known_counts(ml100k):
    ds = load_dataset(ml100k)
    assert (ds.n_users, ds.n_items, len(ds.interactions())) == (943, 1682, 100_000)
    assert len(ds.kg) == 91_631
    assert int((ds.item_entity >= 0).sum()) == 1_598
    assert np.isfinite(ds.train.rating).all()


def test_has_item_marks_the_items_that_occur():
    part = Interactions(user=np.array([0, 1, 1]), item=np.array([2, 0, 2]))
    assert part.has_item(4).tolist() == [True, False, True, False]


def test_a_file_given_as_the_dataset_folder_is_called_a_file(tmp_path):
    """``kgrec data info toy/toy.inter`` said "dataset folder not found" of a file that is there."""
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "toy.inter").write_text("user_id:token\titem_id:token\nu\ti\n")
    with pytest.raises(DataError, match=r"toy.inter: a file, not a folder \(.*toy may be the dataset\)"):
        load_dataset(folder / "toy.inter")
    with pytest.raises(DataError, match="dataset folder not found"):
        load_dataset(tmp_path / "nothing")


def test_a_dataset_prints_as_one_line_of_counts(toy_dataset):
    """A notebook cell showing a dataset printed every id, split array and text (115k characters
    on a 400-item shop); the repr is its counts, columns and KG size."""
    ds = load_dataset(toy_dataset)
    text = repr(ds)
    assert "\n" not in text and len(text) < 300, text
    assert text.startswith(f"Dataset({ds.name}: {ds.n_users:,} users, {ds.n_items:,} items, train {len(ds.train):,} / ")
    assert f"item columns: {', '.join(ds.item_features)}" in text and f"KG: {len(ds.kg.head):,} triples" in text
    assert str(ds) == text


CLICK_LABELS = "user_id:token|item_id:token|label:float\n" + "\n".join(
    f"u{u}|i{i}|{int((u + i) % 3 == 0)}" for u in range(6) for i in range(9)
)


def test_rows_with_label_0_are_left_out_with_a_warning(atomic):
    """RecBole's CTR files mark impressions without a click with ``label`` 0: every row had
    counted as an interaction, negatives too, without a word."""
    from kgrec.errors import DataWarning

    with pytest.warns(DataWarning, match=r"lbl.inter: 36 of 54 rows have label 0 or less \(RecBole's negatives"):
        ds = load_dataset(atomic(name="lbl", inter=CLICK_LABELS), SplitConfig(ratios=(1.0, 0.0, 0.0)))
    kept = {(str(ds.users[u]), str(ds.items[i])) for u, i in zip(ds.train.user, ds.train.item, strict=True)}
    assert kept == {(f"u{u}", f"i{i}") for u in range(6) for i in range(9) if (u + i) % 3 == 0}
    assert ds.n_items == 9  # an item only shown, never clicked, is still in the catalogue
    with pytest.raises(DataError, match=r"every row has label 0 or less, so there is no interaction"):
        load_dataset(atomic(name="zero", inter="user_id:token|item_id:token|label:float\nu1|i1|0\nu2|i2|0"))


def test_the_command_prints_a_kgrec_warning_as_one_line(atomic):
    import subprocess
    import sys

    folder = atomic(name="lbl", inter=CLICK_LABELS)
    done = subprocess.run([sys.executable, "-m", "kgrec.cli.main", "data", "info", str(folder)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0].startswith(f"kgrec: warning: {folder / 'lbl.inter'}: 36 of 54 rows have label 0")
    assert "DataWarning" not in done.stderr and "warnings.warn" not in done.stderr


def test_a_folder_above_the_dataset_and_a_split_without_valid_say_what_to_do(tmp_path):
    """RecBole's data_path is the folder above the dataset's: "no interactions" did not say the
    dataset was one level down; a benchmark's train + test files were "incomplete" and no more."""
    from tests.conftest import write_atomic

    write_atomic(tmp_path / "data", "shop", {"inter": "user_id:token|item_id:token\nu1|i1\nu2|i2"})
    with pytest.raises(DataError, match=r"no interactions: .*; it holds the dataset folder 'shop': give .*data/shop \(a "
                                         r"dataset is the folder of its files, not RecBole's data_path above it\)"):  # fmt: skip
        load_dataset(tmp_path / "data")
    header = "user_id:token|item_id:token\nu1|i1"
    folder = write_atomic(tmp_path, "mkr", {"train.inter": header, "test.inter": header})
    with pytest.raises(DataError, match=r"missing mkr.valid.inter; a given split needs all three .*: write the missing "
                                         r"part, or put every row in one mkr.inter"):  # fmt: skip
        load_dataset(folder)
