"""``kgrec data info``'s statistics on edge cases, and ``kgrec data split``'s files: what they
say, how they are written, and that they read back as the same split."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from kgrec.cli.main import main
from kgrec.data import SplitConfig, load_dataset
from kgrec.data import export as export_module
from kgrec.data.export import export_split
from kgrec.data.info import dataset_info, format_info
from tests.conftest import TOY_INTER, TOY_ITEM, TOY_KG, TOY_LINK


def strict_json(text: str) -> dict:
    """``text`` parsed as JSON proper: ``NaN`` and ``Infinity`` (Python's extensions) refused."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def rows(dataset, part: str) -> list[tuple]:
    """A part as sorted (raw user, raw item, rating, timestamp) rows."""
    inter = getattr(dataset, part)
    rating = inter.rating.tolist() if inter.rating is not None else [None] * len(inter)
    time = inter.timestamp.tolist() if inter.timestamp is not None else [None] * len(inter)
    return sorted(zip(dataset.users[inter.user].tolist(), dataset.items[inter.item].tolist(), rating, time, strict=True))


def test_density_counts_a_pair_in_two_parts_once_and_info_says_how_many_repeat(atomic: Callable[..., Path]):
    # a given split whose valid and test repeat a training pair: density had been 4 / (1 x 2) = 200%
    header = "user_id:token|item_id:token|rating:float\n"
    folder = atomic(train_inter=header + "u|a|4\nu|b|3", valid_inter=header + "u|a|4", test_inter=header + "u|a|5")
    info = dataset_info(load_dataset(folder))
    assert (info["interactions"], info["density"], info["repeated_pairs"]) == (4, 1.0, 2)
    assert ("interactions  4 (density 100.0000%)\nsplit         given: train 2 / valid 1 / test 1\n"
            "  2 interactions repeat an earlier (user, item) pair (the same pair in two parts, or twice in one); "
            "density counts each pair once\n") in format_info(info)  # fmt: skip
    plain = dataset_info(load_dataset(atomic(name="plain", inter=TOY_INTER)))
    assert plain["density"] == 8 / 15 and "repeated_pairs" not in plain


def test_the_mean_rating_is_summed_in_float64_so_it_is_exact_and_never_inf(atomic: Callable[..., Path], capsys):
    thirds = atomic(name="thirds", inter="user_id:token|item_id:token|rating:float\nu|a|1\nu|b|2\nv|a|2")
    assert dataset_info(load_dataset(thirds))["rating_mean"] == 5 / 3  # float32 had said 1.6666666269302368
    rows_ = "".join(f"u{k}|i{k}|3e38\n" for k in range(4))  # each a finite float32; their float32 sum is inf
    huge = atomic(name="huge", inter="user_id:token|item_id:token|rating:float\n" + rows_)
    assert main(["data", "info", str(huge), "--json"]) == 0
    info = strict_json(capsys.readouterr().out)  # "rating_mean": Infinity is no JSON a strict reader takes
    assert info["rating_mean"] == pytest.approx(3e38, rel=1e-6)


def test_distinct_ratings_alike_to_six_digits_keep_a_row_each(atomic: Callable[..., Path]):
    ratings = [12.34561, 12.34564, 12.34561, 0.7, 3]
    body = "".join(f"u{k}|i{k}|{r}\n" for k, r in enumerate(ratings))
    info = dataset_info(load_dataset(atomic(inter="user_id:token|item_id:token|rating:float\n" + body)))
    assert info["rating_histogram"] == {"0.7": 1, "3": 1, "12.34561": 2, "12.34564": 1}  # was {..., "12.3456": 1}
    assert sum(info["rating_histogram"].values()) == info["interactions"]


def test_kg_entities_are_the_entities_of_the_triples_not_those_only_a_link_names(atomic: Callable[..., Path]):
    link = TOY_LINK.replace("i4|e4", "i4|zz")  # zz is in no triple: 8 entities in the KG, 9 known
    info = dataset_info(load_dataset(atomic(inter=TOY_INTER, item=TOY_ITEM, kg=TOY_KG, link=link)))
    assert info["kg_entities"] == 8
    assert "kg            8 entities, 2 relations, 5 triples" in format_info(info)
    no_kg = dataset_info(load_dataset(atomic(name="links", inter=TOY_INTER, link=TOY_LINK)))
    assert "kg_entities" not in no_kg and no_kg["items_linked"] == 0  # a .link without a .kg: no KG to count


@pytest.mark.parametrize(("largest", "advice"), [
    (1_700_000_000_000_000, "if they count microseconds, divide them by 1,000,000 (kgrec data import --time-unit us)"),
    (1_700_000_000_000_000_000, "if they count nanoseconds, divide them by 1,000,000,000 (kgrec data import --time-unit ns)"),
])  # fmt: skip
def test_timestamps_too_large_for_seconds_are_told_the_unit_their_size_suggests(atomic: Callable[..., Path], largest: int,
                                                                                advice: str):  # fmt: skip
    folder = atomic(inter=f"user_id:token|item_id:token|timestamp:float\nu|a|{largest // 2}\nu|b|{largest}")
    assert f" as Unix seconds: {advice}\n" in format_info(dataset_info(load_dataset(folder))) + "\n"


def test_a_part_longer_than_a_chunk_round_trips_with_odd_ids_and_numbers_as_written(atomic: Callable[..., Path], tmp_path: Path,
                                                                                    monkeypatch):  # fmt: skip
    monkeypatch.setattr(export_module, "CHUNK", 7, raising=False)  # every part spans several chunks
    ids = ["ü 1", "日本", " lead", "007", "a b", '"q"', "1e5", "nan", "x\u00a0y", "#c"]
    ratings, times = [3, 0.7, 2.5, 1e-45, 3e38], [881250949, 1500000000.125, 1.7e12, 0, -5]
    body = "".join(f"{ids[k % 10]}|{ids[k // 10]}|{ratings[k % 5]}|{times[k % 5]}\n" for k in range(100))
    source = load_dataset(atomic(inter="user_id:token|item_id:token|rating:float|timestamp:float\n" + body), SplitConfig(seed=3))
    out = export_split(source, tmp_path / "split" / "odd")
    again = load_dataset(out)
    for part in ("train", "valid", "test"):
        assert rows(again, part) == rows(source, part) and len(rows(source, part)) > 0
    lines = (out / "odd.train.inter").read_text(encoding="utf-8").split("\n")
    assert lines[0] == "user_id:token\titem_id:token\trating:float\ttimestamp:float" and lines[-1] == ""
    written = {tuple(line.split("\t")[2:]) for line in lines[1:-1]}
    assert ("3", "881250949") in written  # as ml-100k writes them; '3.0' and '881250949.0' before
    assert ("0.7", "1500000000.125") in written and all(len(line.split("\t")) == 4 for line in lines[1:-1])


def test_exporting_a_long_part_holds_no_copy_of_it_as_strings(atomic: Callable[..., Path], tmp_path: Path):
    # each row's ids and numbers had been formatted at once, as fixed-width string arrays: with
    # 2M interactions and UUID ids, 600 MB more than the loaded dataset
    n = 100_000
    body = "\n".join(f"user-{k % 5000:031d}|item-{k % 997:031d}|{k % 5 + 1}|{880000000 + k}" for k in range(n))
    source = load_dataset(atomic(name="long", inter="user_id:token|item_id:token|rating:float|timestamp:float\n" + body))
    tracemalloc.start()
    try:
        export_split(source, tmp_path / "split" / "long")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MB"  # the ids alone are 100,000 x 36 characters x 4 bytes twice
    assert len(load_dataset(tmp_path / "split" / "long").train) == len(source.train)
    assert np.array_equal(np.sort(load_dataset(tmp_path / "split" / "long").test.timestamp), np.sort(source.test.timestamp))
