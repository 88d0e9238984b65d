"""Graph statistics, the degree plot and `graph explain`, as a helper's audit found them (each
test failed before its fix)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgrec.cli.main import main
from kgrec.data import load_dataset
from kgrec.graph import build_graph, explain_paths, recipe_from_dict


@pytest.fixture
def with_users(atomic) -> Path:
    """i1, i2 directed by d1, i3 linked to nothing; u1 rated all three in training."""
    header = "user_id:token|item_id:token"
    return atomic(
        name="users",
        item="item_id:token|title:token\ni1|Alpha\ni2|Beta\ni3|Gamma",
        link="item_id:token|entity_id:token\ni1|e1\ni2|e2",
        kg="head_id:token|relation_id:token|tail_id:token\ne1|film.film.directed_by|d1\ne2|film.film.directed_by|d1",
        train_inter=f"{header}\nu1|i1\nu1|i2\nu1|i3",
        valid_inter=f"{header}\nu1|i1",
        test_inter=f"{header}\nu1|i2",
    )


@pytest.mark.parametrize("inverse", [False, True])
def test_explain_leaves_user_nodes_out(with_users, inverse):
    kg = build_graph(load_dataset(with_users), recipe_from_dict({"users": True, "inverse": inverse}))
    # before: "Alpha <-interacted- u1 -interacted-> Beta" too
    assert explain_paths(kg, "i1", "i2", n=3) == ["Alpha -directed_by-> d1 <-directed_by- Beta"]
    assert explain_paths(kg, "i1", "i3") == []  # before: "Alpha <-interacted- u1 -interacted-> Gamma"


def test_explain_cli_says_user_edges_are_left_out(with_users, tmp_path, capsys):
    recipe = tmp_path / "users.yaml"
    recipe.write_text("kg: true\nusers: true\n")
    out = tmp_path / "built"
    assert main(["graph", "build", "--data", str(with_users), "--recipe", str(recipe), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["graph", "explain", str(out), "--from", "i1", "--to", "i3"]) == 0
    assert capsys.readouterr().out == (
        "no path between Alpha and Gamma (paths leave out the users' interacted edges)\n"
    )


def _legend(build, monkeypatch, tmp_path: Path, **recipe: object) -> list[str]:
    """The legend texts of the toy graph's degree plot."""
    from kgrec.graph import plot_degrees, stats

    figures = []
    monkeypatch.setattr(stats, "write_figure", lambda figure, path: figures.append(figure) or Path(path))
    plot_degrees(build(**recipe), tmp_path / "degrees.png")
    legend = figures[0].axes[0].get_legend()
    return [text.get_text() for text in legend.get_texts()] if legend else []


def test_degree_plot_legend_says_isolated_nodes_are_not_shown(build, monkeypatch, tmp_path):
    # i6 has no edge: a log axis has no place for degree 0; before, the legend read "item (5)"
    # for the 6 items, as if there were 5
    assert _legend(build, monkeypatch, tmp_path) == ["item (6; 1 isolated, not shown)", "entity (3)"]
