import json

import pytest

from kgrec.cli.main import main

ROOT_RECIPE = "kg: true\nattributes:\n  - {column: class, relation: item.genre}\n"


def build(toy_dataset, tmp_path, capsys):
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(ROOT_RECIPE)
    out = tmp_path / "built" / "toy"
    assert (
        main(["graph", "build", "--data", str(toy_dataset), "--recipe", str(recipe), "--out", str(out)]) == 0
    )
    return out, capsys.readouterr().out


def test_build_prints_counts(toy_dataset, tmp_path, capsys):
    out, printed = build(toy_dataset, tmp_path, capsys)
    assert (out / "manifest.json").is_file()
    assert "12 nodes (6 items, 6 entities, 0 users), 3 relations, 13 triples" in printed


def test_stats_table_json_and_plot(toy_dataset, tmp_path, capsys):
    out, _ = build(toy_dataset, tmp_path, capsys)
    assert main(["graph", "stats", str(out)]) == 0
    assert "film.film.directed_by" in capsys.readouterr().out
    assert main(["graph", "stats", str(out), "--json", "--plot", str(tmp_path / "deg.png")]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["items"] == 6
    assert (tmp_path / "deg.png").is_file()


def test_explain_prints_numbered_paths(toy_dataset, tmp_path, capsys):
    out, _ = build(toy_dataset, tmp_path, capsys)
    assert main(["graph", "explain", str(out), "--from", "i1", "--to", "i2", "-n", "1"]) == 0
    assert capsys.readouterr().out == "1. Alpha -directed_by-> d1 <-directed_by- Beta\n"


def test_explain_takes_titles(toy_dataset, tmp_path, capsys):
    out, _ = build(toy_dataset, tmp_path, capsys)
    assert main(["graph", "explain", str(out), "--from", "alpha", "--to", "i2", "-n", "1"]) == 0
    assert capsys.readouterr().out == "1. Alpha -directed_by-> d1 <-directed_by- Beta\n"


def test_unknown_item_prints_one_line_and_exits_2(toy_dataset, tmp_path, capsys):
    out, _ = build(toy_dataset, tmp_path, capsys)
    assert main(["graph", "explain", str(out), "--from", "nope", "--to", "i2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown item 'nope'" in err


def test_bad_recipe_exits_2(toy_dataset, tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("colour: blue\n")
    assert main(["graph", "build", "--data", str(toy_dataset), "--recipe", str(recipe)]) == 2
    assert "unknown key 'colour'" in capsys.readouterr().err


def test_without_recipe_build_finds_graphs_NAME_yaml_as_train_does(toy_dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["graph", "build", "--data", str(toy_dataset)]) == 0  # no graphs/toy.yaml: the KG triples alone
    assert "recipe: none (no graphs/toy.yaml)" in capsys.readouterr().err
    kg_only = json.loads((tmp_path / "graphs" / "built" / "toy" / "manifest.json").read_text())
    (tmp_path / "graphs" / "toy.yaml").write_text(ROOT_RECIPE)
    assert main(["graph", "build", "--data", str(toy_dataset)]) == 0
    assert "recipe: graphs/toy.yaml" in capsys.readouterr().err
    with_recipe = json.loads((tmp_path / "graphs" / "built" / "toy" / "manifest.json").read_text())
    assert with_recipe["counts"]["relations"] == kg_only["counts"]["relations"] + 1  # the genre relation


def test_without_recipe_a_dataset_with_nothing_to_relate_is_refused(atomic, capsys):
    bare = atomic(name="bare", inter="user_id:token|item_id:token\nu1|i1", item="item_id:token|title:token\ni1|One")
    assert main(["graph", "build", "--data", str(bare)]) == 2
    err = capsys.readouterr().err
    assert "nothing to build a graph from (recipe: none (no graphs/bare.yaml), and bare has no KG triples" in err


def test_a_recipe_whose_allow_matches_no_relation_is_refused(toy_dataset, tmp_path, capsys):
    recipe = tmp_path / "typo.yaml"
    recipe.write_text("allow: ['flim.*']\n")
    out = tmp_path / "built"
    assert main(["graph", "build", "--data", str(toy_dataset), "--recipe", str(recipe), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{recipe}:1:1: recipe allow ['flim.*'] matches none of the KG relations of 'toy' (did you mean 'film.*'?)" in err
    assert not out.exists()


def test_an_allow_pattern_matching_nothing_is_noted_on_stderr(toy_dataset, tmp_path, capsys):
    recipe = tmp_path / "partly.yaml"
    recipe.write_text("allow: ['film.*', 'flim.*']\n")
    assert main(["graph", "build", "--data", str(toy_dataset), "--recipe", str(recipe), "--out", str(tmp_path / "g")]) == 0
    assert (
        "note: recipe allow pattern 'flim.*' matches none of the KG relations of 'toy' (did you mean 'film.*'?); "
        "the other patterns keep 2 of 2\n"
    ) in capsys.readouterr().err


def test_ratios_give_the_split_of_the_user_edges_that_training_checks(toy_dataset, tmp_path, capsys):
    from kgrec.data import SplitConfig, load_dataset
    from kgrec.errors import GraphError
    from kgrec.graph import KnowledgeGraph

    recipe = tmp_path / "users.yaml"
    recipe.write_text("users: true\n")
    out = tmp_path / "g"
    args = ["graph", "build", "--data", str(toy_dataset), "--recipe", str(recipe), "--out", str(out)]
    assert main([*args, "--ratios", "0.7", "0.15", "0.15"]) == 0
    split = SplitConfig(ratios=(0.7, 0.15, 0.15))
    graph = KnowledgeGraph.load(out, dataset=load_dataset(toy_dataset, split))
    assert graph.provenance["split"] == "ratio(0.7, 0.15, 0.15) seed=2026"
    with pytest.raises(GraphError, match="rebuild the graph with the same split"):
        KnowledgeGraph.load(out, dataset=load_dataset(toy_dataset))  # the default ratios
    assert main([*args, "--ratios", "0.7", "0.2", "0.2"]) == 2
    assert "--ratios: split ratios (0.7, 0.2, 0.2): expected three non-negative shares summing to 1" in capsys.readouterr().err
    assert main([*args, "--split", "cold_item", "--cold-item-share", "0.3"]) == 0
    graph = KnowledgeGraph.load(out, dataset=load_dataset(toy_dataset, SplitConfig(strategy="cold_item", cold_item_share=0.3)))
    assert graph.provenance["split"] == "cold_item(share=0.3) seed=2026"
    assert main([*args, "--split", "cold_item", "--cold-item-share", "1.5"]) == 2
    assert "--cold-item-share: cold_item_share 1.5: expected a share between 0 and 1" in capsys.readouterr().err


@pytest.mark.parametrize("n", ["0", "-1"])
def test_explain_refuses_n_below_one(toy_dataset, tmp_path, capsys, n):
    """-n 0 found no path and printed "no path between Alpha and Beta" although one exists."""
    out, _ = build(toy_dataset, tmp_path, capsys)
    assert main(["graph", "explain", str(out), "--from", "i1", "--to", "i2", "-n", n]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"kgrec: error: -n must be a positive integer (the most paths to print), got {n}\n"
