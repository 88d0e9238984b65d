"""Run-folder edge cases found in a second audit of ``kgrec.train.run``: an ``--out`` below a
file, a folder of another tool's ``logs/`` beside other files, resuming with the data folder
named absolute instead of relative, and resuming after the data changed."""

from __future__ import annotations

import shutil

import lightning as L
import pytest

from kgrec.cli.main import main
from kgrec.errors import ConfigError, KgrecError
from kgrec.train import check_before_training, train
from tests.conftest import tiny_config


class CrashAtStart(L.Callback):
    """Stands for a crash (or Ctrl+C) as epoch ``at_epoch`` starts: the epochs before it are in ``last.ckpt``."""

    def __init__(self, at_epoch: int) -> None:
        self.at_epoch = at_epoch

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == self.at_epoch:
            raise RuntimeError("simulated crash")


def test_an_out_below_a_file_is_refused_before_the_data_is_read(clustered_dataset, tmp_path, capsys):
    # it was a NotADirectoryError traceback once the data, the graph and the teacher were prepared
    (tmp_path / "notes.txt").write_text("mine")
    out = tmp_path / "notes.txt" / "run"
    with pytest.raises(ConfigError, match=r"notes.txt is a file, not a folder; expected a folder for the run"):
        check_before_training(tiny_config(clustered_dataset), out)
    assert main(["train", "--data", str(clustered_dataset), "--config", "none", "--out", str(out),
                 "--set", "train.accelerator=cpu"]) == 2  # fmt: skip
    assert "kgrec: error: --out" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_another_tools_logs_beside_other_files_do_not_make_a_run_that_overwrite_clears(clustered_dataset, tmp_path):
    # a logs/ (or checkpoints/) folder made the folder a run: training mixed into it, --overwrite deleted them
    project = tmp_path / "project"
    (project / "logs").mkdir(parents=True)
    (project / "logs" / "mine.csv").write_text("precious")
    (project / "train.py").write_text("print('mine')")
    config = tiny_config(clustered_dataset, "train.max_epochs=1")
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match="holds other files and no kgrec run"):
            train(config, project, overwrite=overwrite)
    assert (project / "logs" / "mine.csv").read_text() == "precious"
    assert sorted(p.name for p in project.iterdir()) == ["logs", "train.py"]
    # what a run writes first makes a folder one (a file added to a run stays, as before), and a folder
    # of nothing but run entries is a run an --overwrite was cut short in
    (project / "config.yaml").write_text("")
    check_before_training(config, project, overwrite=True)
    half_cleared = tmp_path / "half"
    (half_cleared / "graph").mkdir(parents=True)
    (half_cleared / "logs").mkdir()
    check_before_training(config, half_cleared, overwrite=True)


def test_an_interrupted_run_resumes_with_its_data_folder_named_absolute_instead_of_relative(
    clustered_dataset, tmp_path, monkeypatch
):
    # `--data d` then `--data $PWD/d` was refused as another config (kgrec tune reads such runs back as the same)
    monkeypatch.chdir(clustered_dataset.parent)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config("clusters", "train.max_epochs=2"), tmp_path / "run", callbacks=[CrashAtStart(at_epoch=1)])
    metrics = train(tiny_config(clustered_dataset, "train.max_epochs=2"), tmp_path / "run")
    assert metrics["resumed"] and metrics["epochs"] == 2
    other = shutil.copytree(clustered_dataset, tmp_path / "copy" / "clusters")
    (tmp_path / "run" / "manifest.json").unlink()  # interrupted again, once training had ended
    with pytest.raises(KgrecError, match=r"differs in: data.path"):  # another folder still differs
        train(tiny_config(other, "train.max_epochs=2"), tmp_path / "run")


def test_resuming_after_the_data_changed_is_refused_in_one_line(clustered_dataset, tmp_path):
    # it was Lightning's traceback of size mismatches, after the graph was built and the teacher fitted
    data = shutil.copytree(clustered_dataset, tmp_path / "data" / "clusters")
    config = tiny_config(data, "train.max_epochs=2")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, tmp_path / "run", callbacks=[CrashAtStart(at_epoch=1)])
    inter = data / "clusters.inter"
    inter.write_text(inter.read_text() + "".join(f"u0\ti{i}\t5\t{10**6 + i}\nnew\ti{i}\t4\t{10**6 + i}\n" for i in range(60, 63)))
    with pytest.raises(KgrecError, match=r"interrupted run begun on other data: .*clusters.inter changed since"):
        train(config, tmp_path / "run")  # its sources.json: refused before the data is prepared
    (tmp_path / "run" / "sources.json").unlink()  # a run begun by a kgrec that wrote none: the weights' shapes
    with pytest.raises(KgrecError, match=r"interrupted run trained on other data: its weights do not fit the data and "
                                         r"graph as they are now \(.*\(60, 16\) in the run, \(63, 16\) now.*--overwrite to "
                                         r"start over"):  # fmt: skip
        train(config, tmp_path / "run")
    assert train(config, tmp_path / "run", overwrite=True)["epochs"] == 2  # as the message says


def test_resuming_on_data_of_the_same_size_with_other_rows_is_refused(clustered_dataset, tmp_path):
    """The counts of users, items and nodes unchanged, the weights fit: only the data files'
    hashes, recorded as the run started, tell that a resume would train on other rows."""
    data = shutil.copytree(clustered_dataset, tmp_path / "data" / "clusters")
    config = tiny_config(data, "train.max_epochs=2")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, tmp_path / "run", callbacks=[CrashAtStart(at_epoch=1)])
    inter = data / "clusters.inter"
    original = inter.read_text()
    header, first, *rest = original.splitlines()
    user, item, rating, time = first.split("\t")
    inter.write_text("\n".join([header, "\t".join([user, item, "1" if rating != "1" else "2", time]), *rest]) + "\n")
    with pytest.raises(KgrecError, match=r"interrupted run begun on other data: .*clusters.inter changed since .*restore "
                                         r"the data it started on to resume it, or pass --overwrite"):  # fmt: skip
        train(config, tmp_path / "run")
    inter.write_text(original)  # restored: the run resumes
    assert train(config, tmp_path / "run")["epochs"] == 2


def test_after_a_run_ranked_at_other_cut_offs_than_10_the_hint_names_recommend(clustered_dataset, tmp_path, capsys):
    # the hint went by ndcg@10 alone: at eval.ks=[5,20] a retrieval run was sent to `kgrec predict` only
    run = tmp_path / "run"
    assert main(["train", "--data", str(clustered_dataset), "--config", "none", "--out", str(run), "--set", "eval.ks=[5,20]",
                 "--set", "model.use_text=false", "--set", "model.dim=8", "--set", "train.max_epochs=1",
                 "--set", "train.progress=false", "--set", "train.accelerator=cpu"]) == 0  # fmt: skip
    hint = [line for line in capsys.readouterr().out.splitlines() if line.startswith("next: ")]
    assert hint == [f"next: kgrec eval {run} --baselines (against EASE on this split), kgrec recommend {run} --user USER_ID"]
    assert main(["eval", str(run), "--baselines", "--json"]) == 0  # the command it names works


@pytest.mark.parametrize("text", ["model: {dim: [16", "model: 16\n", "- a list\n"])
def test_an_interrupted_run_whose_config_yaml_was_damaged_is_refused_in_one_line(clustered_dataset, tmp_path, text):
    # a YAMLError, TypeError or AttributeError traceback, where a damaged last.ckpt is one line naming --overwrite
    config = tiny_config(clustered_dataset, "train.max_epochs=2")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, tmp_path / "run", callbacks=[CrashAtStart(at_epoch=1)])
    (tmp_path / "run" / "config.yaml").write_text(text)
    with pytest.raises(KgrecError, match=r"config.yaml: cannot read the config of the interrupted run \(.*\); restore "
                                         r"the file, or pass --overwrite to start the run over"):  # fmt: skip
        train(config, tmp_path / "run")



def test_overwrite_of_a_run_whose_checkpoints_folder_is_a_link_is_refused_before_anything_is_removed(
    clustered_dataset, tmp_path
):
    # rmtree refused the link ("Cannot call rmtree on a symbolic link") once manifest.json was gone
    run, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    run.mkdir()
    (run / "checkpoints").symlink_to(scratch, target_is_directory=True)
    config = tiny_config(clustered_dataset, "train.max_epochs=1")
    train(config, run)
    assert sorted(p.name for p in scratch.iterdir()) == ["best.ckpt", "last.ckpt"]  # written through the link
    with pytest.raises(ConfigError, match=rf"checkpoints is a link to {scratch}, which kgrec does not clear through a "
                                          rf"link; remove the link \(rm {run / 'checkpoints'};"):  # fmt: skip
        train(config, run, overwrite=True)
    assert (run / "manifest.json").is_file() and sorted(p.name for p in scratch.iterdir()) == ["best.ckpt", "last.ckpt"]
    (run / "checkpoints").unlink()  # as the message says
    assert not train(config, run, overwrite=True)["resumed"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
