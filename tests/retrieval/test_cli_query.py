"""``kgrec index build / recommend / similar / search / add-items / remove-items``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kgrec.cli.main import main
from tests.retrieval.test_recommender import write_new_items


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_recommend_json_lists_item_id_title_score_and_explanation(trained_run: Path, capsys):
    code, out, _ = run_cli(capsys, "recommend", trained_run, "--user", "u0", "-k", "4", "--json")
    assert code == 0
    results = json.loads(out)
    assert len(results) == 4
    for r in results:
        assert set(r) == {"item_id", "title", "score", "explanation"}
        assert r["title"].startswith("Film ") and r["explanation"]["text"]
    assert results[0]["score"] >= results[-1]["score"]


def test_plain_output_and_filters(trained_run: Path, capsys):
    code, out, _ = run_cli(capsys, "recommend", trained_run, "--user", "u0", "-k", "3", "--where", "class=Action",
                           "--exclude", "i2", "i6")  # fmt: skip
    assert code == 0 and out.count("why:") == 3 and "[i2]" not in out and "[i6]" not in out
    code, out, _ = run_cli(capsys, "similar", trained_run, "--item", "i0", "-k", "2")
    assert code == 0 and out.count("score") == 2
    code, out, _ = run_cli(capsys, "recommend", trained_run, "--liked", "i0", "--liked", "i4", "-k", "2", "--json")
    assert code == 0 and len(json.loads(out)) == 2
    code, listed, _ = run_cli(capsys, "recommend", trained_run, "--liked", "i0", "i4", "-k", "2", "--json")
    assert code == 0 and listed == out  # several items after one --liked, as --exclude takes them


def test_predict_prints_each_towers_answer_in_the_order_given(trained_run: Path, capsys):
    from kgrec.retrieval import Recommender

    expected = Recommender.open(trained_run).predict("u1", ["i5", "i0"])
    code, out, _ = run_cli(capsys, "predict", trained_run, "--user", "u1", "--items", "i5", "i0", "--json")
    assert code == 0 and json.loads(out) == [p.to_dict() for p in expected]
    code, out, _ = run_cli(capsys, "predict", trained_run, "--user", "u1", "--items", "i5", "--items", "i0")
    assert code == 0 and out.splitlines() == [
        f"{p.title}  [{p.item_id}]  rating {p.rating:.2f}  like {p.like:.2f}  score {p.score:.4f}" for p in expected
    ]


def test_an_empty_answer_names_the_filter_that_matches_nothing(trained_run: Path, capsys):
    code, out, _ = run_cli(capsys, "similar", trained_run, "--item", "i0", "--where", "class=Acton", "--where", "class!=Drama")
    assert code == 0 and out.strip() == "no items qualify: class=Acton matches no item (did you mean 'Action'?)"
    # each filter alone keeps items: their combination leaves none, and the answer gives their counts
    code, out, _ = run_cli(capsys, "similar", trained_run, "--item", "i0", "--where", "class=Action", "--where", "class=Drama")
    assert code == 0 and out.strip() == ("no items qualify: each filter matches items, but no item matches all of them "
                                         "(class=Action: 15, class=Drama: 15 items)")
    # they all match i4, but a query's own exclusions (the item itself, --exclude) leave nothing: no reason given
    code, out, _ = run_cli(capsys, "similar", trained_run, "--item", "i0", "--where", "class=Comedy", "--exclude",
                           *[f"i{i}" for i in range(4, 60, 4)])  # fmt: skip
    assert code == 0 and out.strip() == "no items qualify"
    code, out, err = run_cli(capsys, "similar", trained_run, "--item", "i0", "--where", "class=Acton", "--json")
    assert code == 0 and json.loads(out) == [] and err.strip().startswith("no items qualify: class=Acton matches no item")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["recommend", "{run}", "--user", "nobody"], "unknown user 'nobody'"),
        (["similar", "{run}", "--item", "nothing"], "unknown item 'nothing'"),
        (["search", "{run}", "  "], "the query text is empty"),
        (["recommend", "{run}", "--user", "u0", "-k", "0"], "-k must be a positive integer"),
        (["recommend", "{run}", "--user", "u0", "-k", "1000"], "k=1000 is larger than the catalog (60 items)"),
        (["search", "{run}", "comedy"], "trained without text"),
        (["recommend", "{run}", "--user", "u0", "--liked", "i1"], "give exactly one of"),
        (["recommend", "{run}", "--user", "u0", "--where", "colour=red"], "unknown column 'colour'"),
        (["recommend", "{run}", "--users-file", "{run}/missing.txt"], "users file not found"),
        (["recommend", "{novectors}", "--user", "u0"], "vectors.safetensors missing (the run's manifest.json lists it)"),
        (["recommend", "{noretrieval}", "--user", "u0"], "no vectors.safetensors, though its config.yaml has the retrieval tower"),
        (["recommend", "{notarun}", "--user", "u0"], "not a finished kgrec run"),
        (["recommend", "{run}/manifest.json", "--user", "u0"], "not a finished kgrec run (a file; a run is the folder"),
        (["add-items", "{run}", "--items", "{run}/missing.item"], "file not found"),
        (["recommend", "{run}", "--user", "u0", "--out", "{run}/r.jsonl"], "give --users-file or --all-users too"),
        (["recommend", "{run}", "--all-users", "--users-file", "{run}/u.txt"], "give exactly one of"),
        (["recommend", "{run}", "--all-users", "--json"], "leave out --json"),
        (["recommend", "{run}", "--users-file", "{run}/u.txt", "--json"], "leave out --json"),
        (["recommend", "{run}", "--liked", "i1", "--include-seen"], "--include-seen is for known users"),
        (["similar", "{run}"], "give exactly one of --item ITEM, --items-file FILE or --all-items"),
        (["predict", "{run}", "--user", "nobody", "--items", "i1"], "unknown user 'nobody'"),
        (["similar", "{run}", "--item", "i1", "--all-items"], "give exactly one of"),
        (["similar", "{run}", "--item", "i1", "--out", "{run}/r.jsonl"], "give --items-file or --all-items too"),
        (["similar", "{run}", "--all-items", "--json"], "leave out --json"),
        (["similar", "{run}", "--items-file", "{run}/missing.txt"], "items file not found"),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(argv, message, run_copy: Path, tmp_path: Path, capsys):
    novectors = tmp_path / "novectors"
    import shutil

    shutil.copytree(run_copy, novectors)
    (novectors / "vectors.safetensors").unlink()
    noretrieval = shutil.copytree(novectors, tmp_path / "noretrieval")  # lost its vectors, the manifest too
    manifest = json.loads((noretrieval / "manifest.json").read_text())
    manifest["files"].remove("vectors.safetensors")
    (noretrieval / "manifest.json").write_text(json.dumps(manifest))
    paths = {"run": run_copy, "novectors": novectors, "noretrieval": noretrieval, "notarun": tmp_path}
    code, out, err = run_cli(capsys, *[a.format(**paths) for a in argv])
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("kgrec: error: ") and message in err, err


def test_batch_mode_writes_one_json_line_per_user(trained_run: Path, tmp_path: Path, capsys):
    users = tmp_path / "users.txt"
    users.write_text("u0\n\n# comment\nu1\nu2\n")
    out_file = tmp_path / "results.jsonl"
    code, _, err = run_cli(capsys, "recommend", trained_run, "--users-file", users, "--out", out_file, "-k", "3")
    assert code == 0 and "recommending" in err  # the progress bar
    lines = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [line["user"] for line in lines] == ["u0", "u1", "u2"]
    assert all(len(line["results"]) == 3 for line in lines)
    code, out, _ = run_cli(capsys, "recommend", trained_run, "--user", "u1", "-k", "3", "--json")
    assert [r["item_id"] for r in json.loads(out)] == [r["item_id"] for r in lines[1]["results"]]


def test_all_users_recommends_every_trained_user_in_dataset_order(trained_run: Path, tmp_path: Path, capsys):
    out_file = tmp_path / "all.jsonl"
    code, _, err = run_cli(capsys, "recommend", trained_run, "--all-users", "--out", out_file, "-k", "2", "--no-explain")
    lines = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert code == 0 and f"40 users -> {out_file}" in err
    assert [line["user"] for line in lines] == [f"u{u}" for u in range(40)]
    code, out, _ = run_cli(capsys, "recommend", trained_run, "--user", "u7", "-k", "2", "--json", "--no-explain")
    assert lines[7]["results"] == json.loads(out)


def test_similar_batch_mode_writes_a_related_items_table(trained_run: Path, tmp_path: Path, capsys):
    out_file = tmp_path / "related.jsonl"
    code, _, err = run_cli(capsys, "similar", trained_run, "--all-items", "--out", out_file, "-k", "3")
    lines = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert code == 0 and "similar items" in err and f"60 items -> {out_file}" in err
    assert [line["item"] for line in lines] == [f"i{i}" for i in range(60)]
    code, out, _ = run_cli(capsys, "similar", trained_run, "--item", "i7", "-k", "3", "--json")
    assert lines[7]["results"] == json.loads(out)
    items = tmp_path / "items.txt"
    items.write_text("i3\n# comment\nFilm 9\n")
    code, out, _ = run_cli(capsys, "similar", trained_run, "--items-file", items, "-k", "2", "--no-explain")
    assert code == 0 and [json.loads(line)["item"] for line in out.splitlines()] == ["i3", "i9"]  # a title keyed by its id
    items.write_text("i3\nnothing\n")
    code, _, err = run_cli(capsys, "similar", trained_run, "--items-file", items, "--out", out_file)
    assert code == 2 and f"{items}:2: unknown item 'nothing'" in err


def test_similar_batch_mode_reports_a_removed_item_at_its_line(run_copy: Path, tmp_path: Path, capsys):
    assert run_cli(capsys, "remove-items", run_copy, "i9")[0] == 0
    items = tmp_path / "items.txt"
    items.write_text("i3\ni9\n")
    code, _, err = run_cli(capsys, "similar", run_copy, "--items-file", items)
    assert code == 2 and f"{items}:2: item 'i9' was removed from this run's catalog" in err
    code, out, _ = run_cli(capsys, "similar", run_copy, "--all-items", "-k", "1", "--no-explain")
    assert code == 0 and "i9" not in [json.loads(line)["item"] for line in out.splitlines()]  # active items only


def test_batch_mode_locates_an_unknown_user_at_its_line_before_any_work(trained_run: Path, tmp_path: Path, capsys):
    users = tmp_path / "users.txt"
    users.write_text("\ufeffu0\n# comment\nnobody\nu1\n", encoding="utf-8")  # with a byte-order mark
    out_file = tmp_path / "results.jsonl"
    code, _, err = run_cli(capsys, "recommend", trained_run, "--users-file", users, "--out", out_file)
    assert code == 2 and f"{users}:3: unknown user 'nobody'" in err and not out_file.exists()
    users.write_text("\ufeffu0\nu1\n", encoding="utf-8")
    assert run_cli(capsys, "recommend", trained_run, "--users-file", users, "--out", out_file)[0] == 0
    assert [json.loads(line)["user"] for line in out_file.read_text().splitlines()] == ["u0", "u1"]
    users.write_bytes(b"u\xff0\n")
    code, _, err = run_cli(capsys, "recommend", trained_run, "--users-file", users)
    assert code == 2 and "not valid UTF-8" in err


def test_index_build_kinds_and_queries_use_them(run_copy: Path, capsys):
    for kind in ("hnsw", "ivfpq", "flat"):
        code, out, _ = run_cli(capsys, "index", "build", run_copy, "--kind", kind)
        assert code == 0 and f"built {kind} index of 60 items" in out
        manifest = json.loads((run_copy / "index" / "manifest.json").read_text())
        assert manifest["kind"] == kind and manifest["run"]["vectors_sha256"]
        code, out, _ = run_cli(capsys, "recommend", run_copy, "--user", "u3", "-k", "5", "--json")
        assert code == 0 and len(json.loads(out)) == 5
    ids = json.loads((run_copy / "index" / "ids.json").read_text())
    assert len(ids["ids"]) == 60 and ids["item_ids"][0] == "i0"


def test_index_build_says_which_asked_values_a_small_catalog_lowered(run_copy: Path, capsys):
    code, out, err = run_cli(capsys, "index", "build", run_copy, "--kind", "ivfpq", "--nlist", "500", "--pq-bits", "4")
    manifest = json.loads((run_copy / "index" / "manifest.json").read_text())
    assert code == 0 and manifest["params"]["nlist"] == 1 and manifest["params"]["pq_bits"] == 1, manifest
    assert "note: --nlist 500 lowered to 1 for 60 items" in err and "note: --pq-bits 4 lowered to 1" in err
    assert "note:" not in out  # on stderr, as every other note (they were on stdout)
    code, out, err = run_cli(capsys, "index", "build", run_copy, "--kind", "ivfpq")  # pq_bits' default lowered too
    assert code == 0 and "note:" not in out + err



def test_index_build_says_which_options_the_built_kind_does_not_use(run_copy: Path, capsys):
    code, _, err = run_cli(capsys, "index", "build", run_copy, "--nprobe", "4", "--ef-search", "64")  # auto: flat
    assert code == 0 and json.loads((run_copy / "index" / "manifest.json").read_text())["kind"] == "flat"
    assert ("note: --ef-search sets up hnsw indexes, and this index is flat (auto picks the kind by catalog size; "
            "--kind hnsw asks for one): not used") in err  # before: dropped without a word
    assert "note: --nprobe sets up ivfpq indexes, and this index is flat" in err
    code, _, err = run_cli(capsys, "index", "build", run_copy, "--kind", "hnsw", "--ef-search", "64", "--pq-m", "8", "--refine", "2")
    assert code == 0 and "note: --pq-m, --refine set up ivfpq indexes, and this index is hnsw: not used" in err
    assert "ef-search" not in err

def test_search_words_need_no_quotes(text_run: Path, capsys):
    code, unquoted, _ = run_cli(capsys, "search", text_run, "comedy", "film", "-k", "3", "--json")
    code_quoted, quoted, _ = run_cli(capsys, "search", text_run, "comedy film", "-k", "3", "--json")
    assert code == code_quoted == 0 and json.loads(unquoted) == json.loads(quoted) and len(json.loads(quoted)) == 3


def test_add_items_notes_a_linked_entity_nothing_names(text_run: Path, tmp_path: Path, capsys):
    run = Path(shutil.copytree(text_run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs")))
    (tmp_path / "typo.item").write_text("item_id:token\ttitle:token\tclass:token_seq\nn9\tFilm 9\tComedy\n")
    (tmp_path / "typo.link").write_text("item_id:token\tentity_id:token\nn9\tne_typo\n")
    code, out, err = run_cli(capsys, "add-items", run, "--items", tmp_path / "typo.item", "--link", tmp_path / "typo.link")
    assert code == 0 and "added 1 item to" in out
    assert "note: 1 linked entity (ne_typo) is neither in the run's graph nor in the new KG triples" in err
    # an entity named only by a triple whose relation the graph lacks is named by nothing that is kept
    (tmp_path / "only.item").write_text("item_id:token\ttitle:token\tclass:token_seq\nn8\tFilm 8\tComedy\n")
    (tmp_path / "only.link").write_text("item_id:token\tentity_id:token\nn8\tne_only\n")
    (tmp_path / "only.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\nne_only\tfilm.nosuch\tg0\n")
    code, out, err = run_cli(capsys, "add-items", run, "--items", tmp_path / "only.item", "--link", tmp_path / "only.link",
                             "--kg", tmp_path / "only.kg")  # fmt: skip
    assert code == 0 and "relation film.nosuch were left out" in err and "1 linked entity (ne_only)" in err
    # linked to a genre that 15 trained items point to, as if it were the film's own entity
    (tmp_path / "genre.item").write_text("item_id:token\ttitle:token\tclass:token_seq\nn7\tFilm 7\tComedy\n")
    (tmp_path / "genre.link").write_text("item_id:token\tentity_id:token\nn7\tg0\n")
    code, out, err = run_cli(capsys, "add-items", run, "--items", tmp_path / "genre.item", "--link", tmp_path / "genre.link")
    assert code == 0 and "note: new item 'n7' is linked to entity 'g0' (g0), which 15 of the run's items point to" in err
    assert err.count("note:") == 1


def test_add_and_remove_items_from_the_command_line(run_copy: Path, tmp_path: Path, capsys):
    items, link, kg = write_new_items(tmp_path)
    code, _, err = run_cli(capsys, "add-items", run_copy, "--items", items, "--pathways", "text")
    assert code == 2 and "no inductive pathway" in err  # this run has no text pathway
    code, out, err = run_cli(capsys, "add-items", run_copy, "--items", items, "--link", link, "--kg", kg,
                             "--pathways", "graph")  # fmt: skip
    assert code == 0 and "added 4 items" in out and "64 items" in out
    assert "linked entit" not in err  # their entities are new, but named in --kg
    assert err.count("note:") == 1 and "note: KG triples of relation film.unknown_relation were left out" in err
    code, out, _ = run_cli(capsys, "similar", run_copy, "--item", "n0", "-k", "3", "--json")
    assert code == 0 and len(json.loads(out)) == 3
    code, out, _ = run_cli(capsys, "remove-items", run_copy, "n0", "i1")
    assert code == 0 and "removed 2 items" in out and "62 items" in out
    code, _, err = run_cli(capsys, "similar", run_copy, "--item", "n0")
    assert code == 2 and "was removed" in err


def test_output_into_a_pipe_whose_reader_left_ends_without_a_traceback(trained_run: Path):
    """``kgrec recommend ... | head -1``: the reader is gone before the results are written."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "kgrec", "recommend", str(trained_run), "--user", "u0", "-k", "5", "--json"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # no reader: the first write fails with EPIPE
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141 and err == ""


def test_a_run_folder_missing_a_file_it_lists_names_the_file(run_copy: Path, capsys):
    """Not "trained without text" for a missing text.safetensors, nor a traceback for the weights."""
    (run_copy / "model.safetensors").unlink()
    code, _, err = run_cli(capsys, "predict", run_copy, "--user", "u0", "--items", "i1")
    assert code == 2 and "model.safetensors missing (the run's manifest.json lists it)" in err
    assert err.count("\n") == 1 and "copy the run folder whole" in err


def test_a_run_whose_dataset_moved_says_so_and_takes_data(run_copy: Path, tmp_path: Path, capsys):
    manifest = json.loads((run_copy / "manifest.json").read_text())
    moved = Path(shutil.copytree(manifest["dataset_path"], tmp_path / "moved" / Path(manifest["dataset_path"]).name))
    manifest["dataset_path"] = str(tmp_path / "gone" / moved.name)  # as if the dataset had been moved there
    (run_copy / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = run_cli(capsys, "recommend", run_copy, "--user", "u0", "--no-explain")
    assert code == 2 and (f"the dataset it was trained on is no longer at {tmp_path / 'gone' / moved.name} (moved or "
                          "deleted); give its folder with --data DIR") in err  # fmt: skip
    code, out, _ = run_cli(capsys, "recommend", run_copy, "--user", "u0", "--no-explain", "--data", moved)
    assert code == 0 and out.strip()


def test_a_runs_own_lists_scored_by_eval_lists_give_its_test_metrics(trained_run: Path, tmp_path: Path, capsys):
    """`recommend --all-users --include-seen` lists, scored on the run's split, reproduce the
    test metrics training wrote: eval-lists and kgrec's own evaluation are one protocol."""
    out = tmp_path / "recs.jsonl"
    code, _, _ = run_cli(capsys, "recommend", trained_run, "--all-users", "--include-seen", "-k", "60", "--no-explain",
                         "--no-progress", "--out", out)  # fmt: skip
    manifest = json.loads((trained_run / "manifest.json").read_text())
    config = trained_run / "config.yaml"
    assert code == 0
    code, printed, _ = run_cli(capsys, "eval-lists", out, "--config", config, "--data", manifest["dataset_path"], "--json")
    test = json.loads((trained_run / "metrics.json").read_text())["test"]
    scored = json.loads(printed)["test"]
    assert code == 0 and scored["n_lists"] == scored["n_users"]
    for key in ("ndcg@10", "recall@20", "mrr@10", "coverage@10"):
        assert scored[key] == pytest.approx(test[key], abs=1e-5), key
