import json

from kgrec.cli.main import main


def test_info_prints_counts_as_json(toy_dataset, capsys):
    assert main(["data", "info", str(toy_dataset), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["users"], info["items"], info["interactions"], info["kg_triples"]) == (3, 6, 8, 5)
    assert info["items_linked"] == 5 and info["rating_histogram"]["5"] == 3
    # items hold 2, 2, 2, 1, 1, 0 interactions: the top 20% (1 of 6 items) holds 2 of 8; the median is 1.5
    assert (info["head_share"], info["median_item_interactions"]) == (0.25, 1.5)


def test_info_table_is_readable(toy_dataset, capsys):
    assert main(["data", "info", str(toy_dataset)]) == 0
    out = capsys.readouterr().out
    assert "users         3" in out and "linked items  5 (83.3% of items)" in out
    assert "popularity    the most popular 20% of items hold 25.0% of interactions; median item 1.5" in out


def test_info_says_how_many_users_a_global_time_split_leaves_to_evaluate(clustered_dataset, tmp_path, capsys):
    from tests.conftest import with_late_joiners

    data = with_late_joiners(clustered_dataset, tmp_path)
    assert main(["data", "info", str(data), "--split", "global_temporal", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["test_known_users"] < info["test_users"] and info["test_evaluated"] < info["test"]
    assert main(["data", "info", str(data), "--split", "global_temporal"]) == 0
    known, users = info["test_known_users"], info["test_users"]
    assert f"  test: {known} of its {users} users have training interactions;" in capsys.readouterr().out
    assert main(["data", "info", str(data), "--json"]) == 0  # a random split: every user is known
    assert "test_known_users" not in json.loads(capsys.readouterr().out)


def test_bad_input_prints_one_line_and_exits_2(atomic, capsys):
    folder = atomic(inter="user_id:token|item_id:token\nu|i|extra")
    assert main(["data", "info", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "toy.inter:2: expected 2 tab-separated fields" in err


def test_import_command(tmp_path, capsys):
    (tmp_path / "r.csv").write_text("u,i\n1,a\n2,a\n2,b\n")
    assert main(["data", "import", "--interactions", str(tmp_path / "r.csv"), "--user-col", "u",
                 "--item-col", "i", "--out", str(tmp_path / "ds")]) == 0  # fmt: skip
    assert "2 users, 2 items, 3 interactions" in capsys.readouterr().out


def test_import_of_items_without_their_columns_names_them(tmp_path, capsys):
    (tmp_path / "r.csv").write_text("u,i\n1,a\n2,b\n")
    (tmp_path / "items.csv").write_text("i,name,tags\na,Alpha,x|y\nb,Beta,z\n")
    assert main(["data", "import", "--interactions", str(tmp_path / "r.csv"), "--user-col", "u", "--item-col", "i",
                 "--items", str(tmp_path / "items.csv"), "--out", str(tmp_path / "ds")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert (
        "items.csv: give --text-cols and/or --seq-cols to choose its item columns (the header has: i, name, tags), "
        "e.g. --text-cols name --seq-cols tags (a guess from its values: --seq-cols for lists split on '|' and for "
        "short values that items share (3 words or fewer, at most half as many distinct values as rows), such as a "
        "category, a brand or tags, which become item attributes; --text-cols for free text such as a title or a "
        "description); without them ds.item would hold the item ids alone\n"
    ) in err
    assert not (tmp_path / "ds").exists()


def test_info_says_how_long_users_were_active(atomic, capsys):
    hour = 3600
    # u1: 30 minutes; u2: 2 hours; u3: 3 days (from its first to its last interaction)
    rows = [("u1", "a", 0), ("u1", "b", hour // 2), ("u2", "a", 0), ("u2", "c", 2 * hour), ("u3", "a", 0), ("u3", "b", 72 * hour)]
    folder = atomic(inter="user_id:token|item_id:token|timestamp:float\n" + "\n".join(f"{u}|{i}|{t}" for u, i, t in rows))
    assert main(["data", "info", str(folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["span_median_hours"] == 2.0 and info["span_within_day"] == 2 / 3
    assert main(["data", "info", str(folder)]) == 0
    assert "activity      a user's first to last interaction: median 2.0 h; 66.7% of users within one day" in capsys.readouterr().out


def test_millisecond_timestamps_are_pointed_out_and_read_with_time_unit(tmp_path, capsys):
    # 1.6e12 read as seconds is the year 52,672: every span in hours (activity, the session teacher) was 1,000x long
    (tmp_path / "r.csv").write_text("u,i,t\n1,a,1600000000000\n1,b,1600001800500\n2,a,1600003600000\n2,b,1600005400000\n")
    command = ["data", "import", "--interactions", str(tmp_path / "r.csv"), "--user-col", "u", "--item-col", "i", "--time-col", "t"]
    assert main([*command, "--out", str(tmp_path / "as-seconds")]) == 0
    assert (f"note: {tmp_path / 'r.csv'}: column 't': timestamps reach 1.6e+12, the year 52,672 as Unix seconds; "
            "import with --time-unit ms (or us, ns) if it counts milliseconds") in capsys.readouterr().err  # fmt: skip
    assert main(["data", "info", str(tmp_path / "as-seconds")]) == 0
    assert ("  timestamps reach 1.6e+12, the year 52,672 as Unix seconds: if they count milliseconds, divide them by "
            "1,000 (kgrec data import --time-unit ms)") in capsys.readouterr().out  # fmt: skip

    assert main([*command, "--time-unit", "ms", "--out", str(tmp_path / "ms")]) == 0
    assert "note:" not in capsys.readouterr().err
    rows = (tmp_path / "ms" / "ms.inter").read_text().splitlines()[1:]
    assert [float(row.split("\t")[2]) for row in rows] == [1600000000.0, 1600001800.5, 1600003600.0, 1600005400.0]
    assert main(["data", "info", str(tmp_path / "ms")]) == 0
    out = capsys.readouterr().out
    assert "median 30 min" in out and "timestamps reach" not in out
