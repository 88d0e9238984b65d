"""Audit of reading a run folder back (``load_run``, ``kgrec eval``), the CSV logs and ``curves.png``."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from kgrec.errors import KgrecError
from kgrec.train import train
from kgrec.train.epoch_log import EpochLines
from kgrec.train.plots import plot_training_curves, read_metrics_csv
from kgrec.train.run import RUN_FORMAT
from kgrec.train.saved import evaluate_run, load_run
from tests.conftest import tiny_config


@pytest.fixture(scope="session")
def one_epoch_run(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clustered dataset trained for one epoch (graph, no text): read-only."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("runs") / "one-epoch"
        train(tiny_config(clustered_dataset, "train.max_epochs=1"), out)
    finally:
        torch.set_num_threads(before)
    return out


@pytest.fixture
def run(one_epoch_run: Path, tmp_path: Path) -> Path:
    """A private copy of the run, for tests that change it."""
    return Path(shutil.copytree(one_epoch_run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs")))


def edit_manifest(run: Path, **changes) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    (run / "manifest.json").write_text(json.dumps(manifest))


# --- load_run -----------------------------------------------------------------------------------------


def test_a_run_of_a_newer_format_says_to_upgrade_kgrec_not_to_retrain(run):
    """A run written by a newer kgrec was refused with "retrain the model", as if it were stale."""
    edit_manifest(run, format_version=RUN_FORMAT + 1, kgrec_version="99.0.0")
    with pytest.raises(KgrecError, match=r"written by kgrec 99\.0\.0 .*upgrade kgrec to read it"):
        load_run(run)


@pytest.mark.parametrize("version", ["1", None, True])
def test_a_manifest_without_an_integer_version_is_called_damaged(run, version):
    """ "1" was refused as "run format kgrec-run v1, this kgrec reads kgrec-run v1; retrain the model"."""
    edit_manifest(run, format_version=version)
    with pytest.raises(KgrecError, match="not the manifest of a kgrec run, or a damaged one"):
        load_run(run)


def test_a_config_or_sizes_from_a_newer_kgrec_say_to_upgrade(run):
    """A field that a newer kgrec added was an unknown key, and a size a TypeError traceback."""
    edit_manifest(run, kgrec_version="99.0.0")
    config = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(config.replace("model:\n", "model:\n  future_field: 3\n"))
    with pytest.raises(KgrecError, match=r"unknown key 'model.future_field'.*written by kgrec 99\.0\.0.*upgrade kgrec"):
        load_run(run)
    (run / "config.yaml").write_text(config)
    manifest = json.loads((run / "manifest.json").read_text())
    edit_manifest(run, sizes={**manifest["sizes"], "future_size": 2})
    with pytest.raises(KgrecError, match=r"model sizes do not read here.*future_size.*upgrade kgrec"):
        load_run(run)


def test_a_manifest_without_its_sizes_is_a_clear_error(run):
    """A KeyError traceback before."""
    edit_manifest(run, sizes=None)
    with pytest.raises(KgrecError, match=r"manifest.json: its model sizes do not read here \(no 'sizes' object\)"):
        load_run(run)


def test_weights_that_do_not_fit_the_config_are_a_clear_error(run):
    """Another run's model.safetensors (or a config.yaml edited since) was a RuntimeError traceback
    from load_state_dict, which `kgrec eval` does not catch."""
    from safetensors.torch import save_file

    save_file({"other.weight": torch.zeros(2, 2)}, str(run / "model.safetensors"))
    loaded = load_run(run)
    with pytest.raises(KgrecError, match="model.safetensors: its weights do not fit the model that the run's config.yaml"):
        _ = loaded.model


def test_a_missing_config_yaml_says_the_run_folder_is_incomplete(run):
    """It said "config file not found", as for a --config given by mistake."""
    (run / "config.yaml").unlink()
    with pytest.raises(KgrecError, match="config.yaml missing .*the folder is incomplete"):
        load_run(run)


def test_the_fine_tuned_encoder_of_a_run_is_found_whatever_its_folder_is_named(run, tmp_path, monkeypatch):
    """``text.model`` was set as an unquoted override, whose text is stripped: the encoder of a
    run at " run" (relative) was looked for in "run/text-encoder"."""
    monkeypatch.chdir(tmp_path)
    odd = Path(shutil.copytree(run, tmp_path / " run"))
    (odd / "text-encoder").mkdir()
    assert load_run(Path(" run")).config.text.model == str(Path(" run") / "text-encoder")


def test_a_run_and_its_dataset_moved_elsewhere_evaluate_to_the_recorded_metrics(run, clustered_dataset, tmp_path):
    """Works: a run folder moved (another machine) evaluates from its new place, its data given by ``data=``."""
    moved = Path(shutil.move(run, tmp_path / "elsewhere" / "run"))
    data = Path(shutil.copytree(clustered_dataset, tmp_path / "data" / clustered_dataset.name))
    edit_manifest(moved, dataset_path=str(tmp_path / "gone" / clustered_dataset.name))
    with pytest.raises(KgrecError, match="no longer at"):
        load_run(moved)
    again = evaluate_run(moved, data=data)
    recorded = json.loads((moved / "metrics.json").read_text())
    assert again["test"]["ndcg@10"] == pytest.approx(recorded["test"]["ndcg@10"], abs=1e-6)


# --- CSV logs and curves.png --------------------------------------------------------------------------


def write_parts(logs: Path, parts: dict[str, str | bytes]) -> Path:
    for name, text in parts.items():
        (logs / name).mkdir(parents=True)
        data = text.encode() if isinstance(text, str) else text
        (logs / name / "metrics.csv").write_bytes(data)
    return logs


def test_a_copy_of_a_log_folder_beside_the_parts_is_left_out(tmp_path):
    """A "part-1 copy" folder beside part-0 and part-1 was a ValueError at the end of training
    (curves.png is drawn before the manifest is written, so the run never finished) and at the
    start of a resume (the epoch lines read the log)."""
    logs = write_parts(tmp_path / "logs", {
        "part-0": "epoch,step,train/loss\n0,1,3.0\n1,2,2.0\n",
        "part-1": "epoch,step,train/loss\n1,2,1.5\n2,3,1.0\n",
        "part-1 copy": "epoch,step,train/loss\n0,1,9.0\n",
        "part-10": "epoch,step,train/loss\n3,4,0.5\n",
    })  # fmt: skip
    assert read_metrics_csv(logs) == {"train/loss": [(0, 3.0), (1, 1.5), (2, 1.0), (3, 0.5)]}
    assert plot_training_curves(logs, tmp_path / "curves.png").is_file()


def test_a_garbled_byte_in_a_log_costs_its_row_not_the_plot(tmp_path):
    """A byte that is not UTF-8 (a crash, a disk error) was a UnicodeDecodeError at the end of training."""
    logs = write_parts(tmp_path / "logs", {"part-0": b"epoch,step,train/loss\n0,1,3.0\n1,2,\xff\xfe\n2,3,1.0\n"})
    assert read_metrics_csv(logs) == {"train/loss": [(0, 3.0), (2, 1.0)]}


def test_a_resumed_run_reads_its_best_epoch_past_a_copied_log_folder(tmp_path):
    """EpochLines reads the interrupted parts' logs when a run resumes: the same folder copy crashed it."""
    logs = write_parts(tmp_path / "logs", {
        "part-0": "epoch,step,valid/ndcg@10\n0,1,0.2\n1,2,0.3\n2,3,0.25\n",
        "part-0 (copy)": "epoch,step,valid/ndcg@10\n0,1,0.9\n",
    })  # fmt: skip

    class Trainer:
        current_epoch = 2

    lines = EpochLines("valid/ndcg@10", "max", logs)
    lines.on_train_start(Trainer(), None)
    assert lines.best == (0.3, 1)


def test_a_dataset_name_with_dollar_signs_is_drawn_verbatim(tmp_path, monkeypatch):
    """The title names the dataset (its folder); matplotlib read "$...$" in it as mathtext: drawn
    as a formula, or a ValueError at the end of training for a name that is no formula (x$^^$)."""
    import kgrec.train.plots as plots

    drawn = []
    monkeypatch.setattr(plots, "write_figure", lambda fig, out, **kwargs: drawn.append(fig))
    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,step,train/loss\n0,1,2.0\n1,2,1.0\n")
    for title in ("kgrec on x$^^$", "kgrec on 50$_off_$", "kgrec on a$b$c"):
        plot_training_curves(csv, tmp_path / "curves.png", title=title)
        assert drawn[-1]._suptitle.get_text() == title and not drawn[-1]._suptitle.get_parse_math()
    monkeypatch.undo()
    assert plot_training_curves(csv, tmp_path / "curves.png", title="kgrec on x$^^$").read_bytes()[:4] == b"\x89PNG"


def test_the_epochs_a_diverged_run_logged_as_nan_stay_on_the_axis_and_are_marked(tmp_path, monkeypatch):
    """NaN and inf draw no point, so the axis had ended at the last finite epoch (one finite epoch
    among three read 0.96 ... 1.04) and nothing showed that training went on and diverged."""
    import kgrec.train.plots as plots

    drawn = []
    monkeypatch.setattr(plots, "write_figure", lambda fig, out, **kwargs: drawn.append(fig))
    rows = ["epoch,step,train/loss,valid/ndcg@10"]
    for epoch in range(8):
        rows += [f"{epoch},{epoch},{'nan' if epoch >= 5 else 3 - 0.3 * epoch},", f"{epoch},{epoch},,{'nan' if epoch >= 5 else 0.1}"]
    csv = tmp_path / "metrics.csv"
    csv.write_text("\n".join(rows) + "\n")
    plot_training_curves(csv, tmp_path / "curves.png")
    for ax in drawn[-1].axes[:2]:
        low, high = ax.get_xlim()
        assert low < 0 and high > 7, (low, high)
        labels = [text.get_text() for text in ax.get_legend().get_texts()]
        assert any(label.endswith(": NaN or inf") for label in labels), labels
    csv.write_text("epoch,step,train/loss\n0,1,inf\n1,2,3.0\n2,3,-inf\n")
    plot_training_curves(csv, tmp_path / "curves.png")
    low, high = drawn[-1].axes[0].get_xlim()
    assert low < 0 and high > 2 and not math.isclose(high - low, 0.08, abs_tol=0.01), (low, high)


def test_a_figure_that_fails_leaves_a_finished_run_with_a_warning(clustered_dataset, tmp_path, monkeypatch, capsys):
    """The curves are drawn before metrics.json and manifest.json: a plotting error had left the
    trained run unfinished, and every rerun failed the same way."""
    import kgrec.train.plots as plots_module

    def broken(*args, **kwargs):
        raise ValueError("no backend")

    monkeypatch.setattr(plots_module, "plot_training_curves", broken)  # save_run imports it from there
    out = tmp_path / "run"
    train(tiny_config(clustered_dataset, "train.max_epochs=1"), out)
    assert (out / "manifest.json").is_file() and (out / "metrics.json").is_file() and not (out / "curves.png").exists()
    assert "warning: curves.png not drawn (ValueError: no backend); the run is complete without it" in capsys.readouterr().err


def test_a_resumed_run_logs_past_the_highest_part_not_over_it(tmp_path):
    """Parts were counted: with part-1 deleted, part-0 and part-2 made the next part-2, over its log."""
    from kgrec.train.run import _next_log_part

    logs = tmp_path / "logs"
    assert _next_log_part(logs) == 0
    for name in ("part-0", "part-2", "part-1 copy", "tensorboard"):
        (logs / name).mkdir(parents=True)
    assert _next_log_part(logs) == 3
