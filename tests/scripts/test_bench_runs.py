"""scripts/_bench.py: the benches' runs kept under ``--runs DIR`` are reused, not trained again."""

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_config

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import _bench  # noqa: E402


def test_a_kept_run_is_read_back_and_an_interrupted_one_resumes(clustered_dataset, tmp_path, monkeypatch):
    config = tiny_config(clustered_dataset, "train.max_epochs=2")
    first = _bench.train_kept(config, tmp_path)
    (folder,) = tmp_path.iterdir()
    assert folder.name.startswith(f"seed{config.train.seed}-")
    assert json.loads((folder / "metrics.json").read_text()) == first

    monkeypatch.setattr(_bench, "train", lambda *args, **kwargs: pytest.fail("trained again"))
    assert _bench.train_kept(tiny_config(clustered_dataset, "train.max_epochs=2"), tmp_path) == first
    monkeypatch.undo()

    other = tiny_config(clustered_dataset, "train.max_epochs=2", "train.seed=1")
    _bench.train_kept(other, tmp_path)
    assert len(list(tmp_path.iterdir())) == 2  # another seed (or any other setting): another folder

    (folder / "manifest.json").unlink()  # as if killed after its last checkpoint
    again = _bench.train_kept(config, tmp_path)
    assert again["resumed"] is True
    assert again["test"] == pytest.approx(first["test"])



def test_a_kept_run_of_data_written_again_at_its_path_is_refused(clustered_dataset, tmp_path):
    """Runs are kept by their config, which names the data's folder, not its files: a dataset
    written again at the same path (another cut, another import) read the old run back."""
    import shutil

    from kgrec.errors import KgrecError

    data = Path(shutil.copytree(clustered_dataset, tmp_path / "data" / clustered_dataset.name))
    config = tiny_config(data, "train.max_epochs=1")
    first = _bench.train_kept(config, tmp_path / "runs")
    assert _bench.train_kept(config, tmp_path / "runs") == first  # the same files: read back
    inter = data / f"{data.name}.inter"
    lines = inter.read_text().splitlines()
    inter.write_text("\n".join(lines[:-1]) + "\n")  # one interaction fewer
    with pytest.raises(KgrecError, match=r"a kept run of other data \(.*clusters\.inter changed since"):
        _bench.train_kept(config, tmp_path / "runs")
