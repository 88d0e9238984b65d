"""What a user sees from ``kgrec train`` / ``kgrec eval`` on bad input and on resume."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from kgrec.cli.main import main
from kgrec.errors import ConfigError, DivergedError, KgrecError
from kgrec.train import load_config, train
from tests.conftest import TINY_OVERRIDES, tiny_config
from tests.train.test_run import Crash


def test_lightning_settings_are_refused_in_one_line_before_anything_is_loaded(clustered_dataset, tmp_path):
    """Bad train.accelerator / devices / strategy / precision were Lightning tracebacks (TypeError,
    ValueError, MisconfigurationException), raised once the data, graph and teacher were ready."""
    for bad, message in (("train.precision=17", r"train.precision: expected one of auto, 32-true"),
                         ("train.accelerator=cpus", r"train.accelerator: .* got 'cpus' \(did you mean 'cpu'\?\)"),
                         ("train.devices=0", r"train.devices: expected a number of devices >= 1"),
                         ("train.devices=two", r"train.devices: expected a number of devices >= 1"),
                         ("train.max_minutes=.inf", r"train.max_minutes: expected >= 0 minutes")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            load_config(None, [bad])
    config = tmp_path / "my.yaml"
    config.write_text("train:\n  precision: 32\n")  # an int in YAML, as Lightning's docs write it
    assert load_config(config).train.precision == "32"
    config.write_text("model:\n  dim: 8\ntrain:\n  precision: 17\n")
    with pytest.raises(ConfigError, match=r"my.yaml:4:3: train.precision: expected one of"):
        load_config(config)
    for bad, message in (("train.strategy=dpp", r"train.strategy: 'dpp' is not a Lightning strategy \(did you mean 'ddp'\?\)"),
                         ("train.devices=0,1", r"train.accelerator=cpu, train.devices=0,1, .*: Lightning cannot train "
                          r"with these on this machine: `devices` selected with `CPUAccelerator` should be an int > 0")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            train(tiny_config(clustered_dataset, bad), tmp_path / "run")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"train.accelerator=gpu: this machine has no GPU"):
            train(tiny_config(clustered_dataset, "train.accelerator=gpu"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_checks_against_the_data_and_the_machine_say_where_the_config_file_writes_the_key(clustered_dataset, tmp_path, capsys):
    config = tmp_path / "my.yaml"
    config.write_text("model:\n  dim: 16\neval:\n  ks: [10, 100]\n")
    args = ["train", "--config", str(config), "--data", str(clustered_dataset), "--out", str(tmp_path / "run"),
            *(item for o in TINY_OVERRIDES if not o.startswith("model.dim") for item in ("--set", o))]  # fmt: skip
    assert main(args) == 2
    assert capsys.readouterr().err == f"kgrec: error: {config}:4:3: eval.ks: cut-off 100 is beyond the 60 items of clusters\n"
    config.write_text("model:\n  dim: 16\ntrain:\n  strategy: dpp\n")
    assert main(args) == 2  # a check of train(), before the data
    assert capsys.readouterr().err.startswith(f"kgrec: error: {config}:4:3: train.strategy: 'dpp' is not a Lightning strategy")
    config.write_text("model:\n  dim: 16\n")
    assert main([*args, "--set", "eval.ks=[10,200]"]) == 2  # written on the command line: no place in the file
    assert capsys.readouterr().err == "kgrec: error: eval.ks: cut-off 200 is beyond the 60 items of clusters\n"
    assert not (tmp_path / "run").exists()


def test_eval_of_an_interrupted_run_says_to_resume_it(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err
    assert "not a finished kgrec run: its training was interrupted" in err and "again to resume and finish it" in err
    assert main(["eval", str(tmp_path / "nowhere")]) == 2
    assert "not a finished kgrec run (no such folder)" in capsys.readouterr().err


def test_an_interrupted_run_names_the_values_that_differ_and_a_damaged_checkpoint_is_one_line(clustered_dataset, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config(clustered_dataset), run, callbacks=[Crash(at_epoch=1)])
    with pytest.raises(KgrecError, match=r"differs in: model.dim \(16 in the run, 8 now\), model.trunk_hidden "
                                         r"\(\[32\] in the run, \[8\] now\)\); run it again with the run's values"):  # fmt: skip
        train(tiny_config(clustered_dataset, "model.dim=8", "model.trunk_hidden=[8]"), run)
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # cut short
    with pytest.raises(KgrecError, match=r"last.ckpt: cannot read the checkpoint to resume from .*--overwrite"):
        train(tiny_config(clustered_dataset), run)


def test_a_run_folder_moved_while_interrupted_resumes_to_the_uninterrupted_weights(clustered_dataset, tmp_path, capsys):
    """Lightning kept the old folder's best.ckpt as the best model: the resumed run loaded it at the
    end (FileNotFoundError once the folder was gone) and forgot the best score so far."""
    config = tiny_config(clustered_dataset, "train.max_epochs=2", "train.patience=100")
    train(config, tmp_path / "straight")
    with pytest.raises(RuntimeError, match="simulated crash"):  # in epoch 2: last.ckpt holds epochs 0 and 1
        train(tiny_config(clustered_dataset, "train.max_epochs=3", "train.patience=100"), tmp_path / "here",
              callbacks=[Crash(at_epoch=2)])  # fmt: skip
    moved = shutil.move(tmp_path / "here", tmp_path / "there")
    capsys.readouterr()
    metrics = train(config, moved)
    assert "note: resuming the interrupted run in" in capsys.readouterr().err
    assert metrics["resumed"] and metrics["epochs"] == 2
    a, b = (load_file(str(tmp_path / run / "model.safetensors")) for run in ("straight", "there"))
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key


def test_a_diverging_run_is_named_as_such_not_as_nan_scores(clustered_dataset, tmp_path, capsys):
    """A learning rate that overflows the weights was a ValueError traceback from the ranking
    ("score_fn returned NaN scores"), which killed a kgrec tune search as well."""
    with pytest.raises(DivergedError, match=r"^train.lr: training diverged in epoch 0: the model scores items as NaN .*"
                                          r"\(train.lr=1e\+30\); lower train.lr, or set train.grad_clip"):  # fmt: skip
        train(tiny_config(clustered_dataset, "train.lr=1e30"), tmp_path / "run")
    config = tmp_path / "my.yaml"
    config.write_text("train:\n  lr: 1.0e+30\n")
    args = ["train", "--config", str(config), "--data", str(clustered_dataset), "--out", str(tmp_path / "cli"),
            *(item for o in TINY_OVERRIDES for item in ("--set", o))]  # fmt: skip
    assert main(args) == 2
    assert capsys.readouterr().err.startswith(f"kgrec: error: {config}:2:3: train.lr: training diverged in epoch 0")
    config.write_text("train:\n  lr: 0.01\n")
    assert main(args) == 0  # the same folder trains once the rate is sane


def test_the_terminal_progress_bar_shows_no_logger_version(clustered_dataset, tmp_path, capsys, monkeypatch):
    """Lightning's bar ended every line with v_num=rt-0 (the end of the log folder's name part-0)."""
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # as in a terminal: the bar, not epoch lines
    train(tiny_config(clustered_dataset, "train.max_epochs=1", "train.progress=true"), tmp_path / "run")
    out = capsys.readouterr()
    bar = out.out + out.err
    assert "Epoch 0" in bar and "train/loss" in bar
    assert "v_num" not in bar


def test_check_before_training_prints_no_lightning_banner_in_a_fresh_process(tmp_path):
    """A notebook's first call printed "GPU available: False, used: False", the TPU line and a
    logging-service tip: the level was set before Lightning's import, which resets it."""
    code = ("from kgrec.train import load_config, check_before_training\n"
            f"check_before_training(load_config(None, ['train.accelerator=cpu']), {str(tmp_path / 'run')!r})\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "GPU available" not in done.stderr + done.stdout and "Tip" not in done.stderr + done.stdout, done.stderr
