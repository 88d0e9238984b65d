"""The quickstart notebook runs end to end (a 1-epoch config), as a newcomer would run it."""

import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


def test_notebook_is_stored_without_outputs():
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


def run_notebook(folder: Path):
    """Execute the notebook in ``folder``; its code cells, with their outputs."""
    import nbclient
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def printed(cell, stream: str = "stdout") -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == stream)


def cell_with(cells, code: str):
    """The one code cell whose source holds ``code``."""
    (cell,) = [cell for cell in cells if code in cell.source]
    return cell


def test_quickstart_runs_end_to_end(ml100k, tmp_path, monkeypatch):
    pytest.importorskip("nbclient")
    monkeypatch.setenv("KGREC_NB_EPOCHS", "1")
    monkeypatch.setenv("KGREC_NB_WORK", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    cells = run_notebook(tmp_path)
    # a newcomer sees no warning (tqdm's "IProgress not found" once came out of `import kgrec.graph`)
    assert {i: printed(cell, "stderr") for i, cell in enumerate(cells) if printed(cell, "stderr")} == {}
    assert "Star Wars (1977) -item.genre->" in printed(cell_with(cells, "explain_paths(kg"))
    # "Each result says why, through the knowledge graph"
    recommended = printed(cell_with(cells, 'rec.recommend("196"')).splitlines()
    assert len(recommended) == 5 and all("   why: " in line and not line.endswith("why: -") for line in recommended), recommended
    new_film = printed(cell_with(cells, "add_items(new_film)"))
    assert "added: ['9001']" in new_film  # the new film, then the items like it
    assert len(new_film.split("added: ['9001']\n")[1].splitlines()) == 5
    assert re.search(r"Kolya \(1996\) +rating \d\.\d\d   like 0\.\d\d", printed(cell_with(cells, "rec.predict(")))
    assert (tmp_path / "run" / "curves.png").is_file()
    images = [o for cell in cells for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3  # degrees, curves and the PCA map, drawn after training (which once switched the backend off)
    # a second pass reuses the run and finds the new film already added
    cells = run_notebook(tmp_path)
    outputs = "".join(printed(cell) for cell in cells)
    assert f"reusing the finished run in {tmp_path / 'run'}" in outputs
    assert "9001 is already in the run's catalog" in outputs and "Star Wars (1977)" in outputs
    assert not any(printed(cell, "stderr") for cell in cells)
