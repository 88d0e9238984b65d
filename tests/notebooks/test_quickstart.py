"""The quickstart notebook runs end to end (a 1-epoch config), as a newcomer would run it."""

import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


def test_notebook_is_stored_without_outputs():
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


def test_quickstart_runs_end_to_end(ml100k, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    monkeypatch.setenv("KGREC_NB_EPOCHS", "1")
    monkeypatch.setenv("KGREC_NB_WORK", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "Star Wars (1977)" in outputs and "why:" in outputs
    assert "added: ['9001']" in outputs  # the new film, then the items like it
    assert re.search(r"Kolya \(1996\) +rating \d\.\d\d   like 0\.\d\d", outputs)  # the other towers
    assert (tmp_path / "run" / "curves.png").is_file()
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3  # degrees, curves and the PCA map, drawn after training (which once switched the backend off)
    # a second pass reuses the run and finds the new film already added
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert f"reusing the finished run in {tmp_path / 'run'}" in outputs
    assert "9001 is already in the run's catalog" in outputs and "Star Wars (1977)" in outputs
