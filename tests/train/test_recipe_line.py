"""Training says which recipe built its graph, as ``kgrec graph build`` does: the working folder
decides it (``graphs/NAME.yaml``), so the same command in another folder builds another graph."""

from __future__ import annotations

from kgrec.train import prepare
from tests.conftest import tiny_config


def test_prepare_names_the_recipe_it_builds_the_graph_from(clustered_dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no graphs/ here
    prepare(tiny_config(clustered_dataset, "train.progress=true"), progress=True)
    assert "recipe: none (no graphs/clusters.yaml)" in capsys.readouterr().err
    (tmp_path / "graphs").mkdir()
    (tmp_path / "graphs" / "clusters.yaml").write_text("kg: true\n")
    prepare(tiny_config(clustered_dataset, "train.progress=true"), progress=True)
    assert "recipe: graphs/clusters.yaml" in capsys.readouterr().err
    prepare(tiny_config(clustered_dataset), progress=False)  # quiet, as tests and benches ask
    assert "recipe:" not in capsys.readouterr().err
