import json
from pathlib import Path

import pytest
import torch

from kgrec.cli.main import main
from kgrec.errors import TrainingInterrupted
from kgrec.train.plots import read_metrics_csv


def test_train_and_eval_commands(clustered_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(clustered_dataset), "--out", str(run), "--set", "model.use_text=false",
            "--set", "model.dim=16", "--set", "train.max_epochs=2", "--set", "train.progress=false"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "test " in out and "ndcg@10" in out and f"run folder: {run}" in out
    assert f"next: kgrec eval {run} --baselines" in out
    assert main(["eval", str(run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    saved = json.loads((run / "metrics.json").read_text())
    assert abs(metrics["test"]["ndcg@10"] - saved["test"]["ndcg@10"]) < 1e-6
    assert "baselines" not in metrics
    # beside the baselines, on the run's split: the table and the ratio to the best baseline by NDCG@10
    assert main(["eval", str(run), "--baselines", "--json"]) == 0
    baselines = json.loads(capsys.readouterr().out)["baselines"]
    assert list(baselines)[0] == "most-popular" and list(baselines)[1].startswith("EASE (lambda=")
    assert main(["eval", str(run), "--baselines"]) == 0
    table = capsys.readouterr().out.splitlines()
    best = max(baselines, key=lambda name: baselines[name]["ndcg@10"])
    header, mine, popular, ease = table[-5:-1]
    assert header.split()[3:5] == ["ndcg@10", "recall@20"] and mine.split()[2] == f"{saved['test']['ndcg@10']:.4f}"
    assert popular.split()[1] == f"{baselines['most-popular']['ndcg@10']:.4f}" and ease.startswith("EASE (lambda=")
    assert header.split()[-2:] == ["coverage@10", "tail@10"]  # what the lists reach, for each row
    assert popular.split()[-2:] == [f"{baselines['most-popular'][c]:.4f}" for c in ("coverage@10", "tail@10")]
    ratio = saved["test"]["ndcg@10"] / baselines[best]["ndcg@10"]
    assert table[-1].startswith(f"this run / {best.split(' (')[0]}: ndcg@10 x{ratio:.3f}")


def test_bad_override_exits_2_with_one_line(clustered_dataset, tmp_path, capsys):
    code = main(["train", "--data", str(clustered_dataset), "--out", str(tmp_path / "r"), "--set", "model.trunk=tower"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "model.trunk" in err


def test_eval_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a finished kgrec run" in capsys.readouterr().err


def test_eval_refuses_changed_data_and_a_corrupt_manifest(clustered_dataset, tmp_path, capsys):
    import shutil

    data = Path(shutil.copytree(clustered_dataset, tmp_path / "copy" / Path(clustered_dataset).name))
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--set", "model.use_text=false", "--set", "model.use_graph=false",
            "--set", "model.tasks=[retrieval,rating]", "--set", "model.id_dropout=0", "--set", "model.dim=8", "--set", "train.max_epochs=1",
            "--set", "train.progress=false"]  # fmt: skip
    assert main(args) == 0
    inter = next(data.glob("*.inter"))
    lines = inter.read_text().splitlines()
    fields = lines[1].split("\t")
    fields[2] = "1" if fields[2] != "1" else "2"  # another rating for the same pair: same users, items and split
    inter.write_text("\n".join([lines[0], "\t".join(fields), *lines[2:]]) + "\n")
    capsys.readouterr()
    assert main(["eval", str(run)]) == 2
    assert "not the data the run was trained on" in capsys.readouterr().err
    (run / "manifest.json").write_text("{not json")
    assert main(["eval", str(run)]) == 2
    assert "manifest.json: not valid JSON" in capsys.readouterr().err


def test_ctrl_c_during_train_exits_130_with_how_to_resume(clustered_dataset, tmp_path, capsys, monkeypatch):
    import functools

    import kgrec.train
    from tests.train.test_run import CtrlC

    monkeypatch.setattr(kgrec.train, "train", functools.partial(kgrec.train.train, callbacks=[CtrlC(at_epoch=1)]))
    args = ["train", "--data", str(clustered_dataset), "--out", str(tmp_path / "run"), "--set", "model.use_text=false",
            "--set", "model.dim=8", "--set", "train.max_epochs=2", "--set", "train.progress=false"]  # fmt: skip
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "kgrec: training interrupted: " in err and "holds the first 1 epoch; run the same command again to resume" in err


@pytest.mark.parametrize(
    ("interrupt", "env", "says"),
    [
        (TrainingInterrupted("training interrupted: x", rank_zero=False), {}, False),  # the trainer's rank decides
        (TrainingInterrupted("training interrupted: x", rank_zero=True), {"LOCAL_RANK": "1"}, True),
        (KeyboardInterrupt(), {}, True),  # before training (data, graph): the environment's rank decides
        (KeyboardInterrupt(), {"LOCAL_RANK": "1"}, False),
        (KeyboardInterrupt(), {"SLURM_PROCID": "3"}, False),  # a SLURM job sets only this one
        (KeyboardInterrupt(), {"RANK": "0", "SLURM_PROCID": "0"}, True),
        (KeyboardInterrupt(), {"RANK": "1"}, False),  # torchrun's global rank
        (KeyboardInterrupt(), {"NODE_RANK": "1"}, False),  # a second node
        (KeyboardInterrupt(), {"JSM_NAMESPACE_RANK": "2"}, False),  # LSF's jsrun
    ],
)
def test_under_ddp_only_global_rank_zero_reports_ctrl_c(interrupt, env, says, clustered_dataset, tmp_path, capsys, monkeypatch):
    import kgrec.train
    from kgrec.utils.ranks import RANK_VARIABLES

    def interrupted(*args, **kwargs):
        raise interrupt

    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(kgrec.train, "train", interrupted)
    assert main(["train", "--data", str(clustered_dataset), "--out", str(tmp_path / "run"), "--config", "none",
                 "--set", "model.use_text=false"]) == 130  # fmt: skip
    assert (capsys.readouterr().err != "") == says


def test_print_config_shows_the_resolved_config_and_reads_back(tmp_path, capsys):
    import yaml

    from kgrec.train import load_config
    from kgrec.utils.config import to_dict

    assert main(["train", "--print-config", "--config", "none", "--set", "model.trunk=ple", "--set", "train.max_epochs=3"]) == 0
    printed = capsys.readouterr().out
    shown = yaml.safe_load(printed)
    assert shown["model"]["trunk"] == "ple" and shown["train"]["max_epochs"] == 3 and "loss_weights" in shown["model"]
    (tmp_path / "mine.yaml").write_text(printed)  # a starting point for a config file: it loads as the same config
    assert to_dict(load_config(tmp_path / "mine.yaml", [])) == to_dict(load_config(None, ["model.trunk=ple", "train.max_epochs=3"]))
    assert not list(tmp_path.iterdir())[1:]  # nothing trained, nothing written


@pytest.mark.parametrize("folder", ["null", "'quoted'", "trailing "])
def test_data_and_graph_name_the_folder_as_typed(folder, tmp_path, capsys, monkeypatch):
    """`--data null` went in as the override data.path=null, which reads as no path: ml-100k was
    trained instead; a quoted name lost its quotes (the same for --graph)."""
    (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", folder, "--print-config"]) == 2
    assert f"kgrec: error: {folder}: no interactions: expected {folder}.inter" in capsys.readouterr().err
    from kgrec.cli.data import data_overrides
    from kgrec.train import load_config

    class Args:
        data, graph, overrides = Path(folder), Path(folder), []

    config = load_config(None, data_overrides(Args()))
    assert (str(config.data.path), str(config.graph.path)) == (folder, folder)


def test_train_without_out_says_what_to_give(capsys):
    assert main(["train"]) == 2
    assert "give --out RUN_DIR" in capsys.readouterr().err


def ddp_train(data: Path, out: Path, *overrides: str):
    """``kgrec train`` with the tiny config on two CPU processes (DDP over gloo), in a subprocess:
    Lightning's launcher reruns the command line as rank 1."""
    import os
    import subprocess
    import sys

    from tests.conftest import TINY_OVERRIDES

    settings = [o for o in TINY_OVERRIDES if not o.startswith("train.devices=")] + ["train.devices=2", "train.strategy=ddp"]
    command = [sys.executable, "-m", "kgrec", "train", "--data", str(data), "--out", str(out)]
    command += [arg for setting in [*settings, *overrides] for arg in ("--set", setting)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_ddp_on_two_cpu_processes_shards_each_epoch_saves_what_it_reports_and_resumes(clustered_dataset, tmp_path, capsys):
    """`train.devices=2 train.strategy=ddp` on the CPU: each rank trains on its half of every
    epoch; rank 0 alone writes and reports a run whose saved model gives the test metrics it
    reported; a run cut after its second epoch resumes to the uninterrupted run's weights."""
    import csv
    import math
    import shutil

    from safetensors.torch import load_file

    from kgrec.train import prepare
    from tests.conftest import tiny_config

    # 39 users (the 40 less one): the two ranks validate 20 and 19 users, so the mean of the two
    # ranks' means would not be the mean over the users
    data = tmp_path / "clusters"
    shutil.copytree(clustered_dataset, data)
    inter = data / "clusters.inter"
    inter.write_text("".join(line for line in inter.read_text().splitlines(keepends=True) if not line.startswith("u39\t")))
    run = tmp_path / "run"
    done = ddp_train(data, run)
    assert done.stdout.count("run folder: ") == 1 and done.stdout.count("test ") == 1  # rank 0 speaks alone
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in done.stderr and "sync_dist" not in done.stderr

    n_train = len(prepare(tiny_config(data), progress=False).dataset.train)
    steps = math.ceil(math.ceil(n_train / 2) / 128)  # per rank and epoch: half the interactions, batch 128
    logged = list(csv.DictReader((run / "logs" / "part-0" / "metrics.csv").open()))
    last_step = {int(row["epoch"]): int(row["step"]) for row in logged}
    assert last_step == {epoch: (epoch + 1) * steps - 1 for epoch in range(3)} and steps < math.ceil(n_train / 128)

    reported = json.loads((run / "metrics.json").read_text())
    assert reported["epochs"] == 3 and not reported["resumed"]
    # validation ranked half the users on each rank and summed over both: what the log says of
    # the kept epoch is what one process measures on the kept weights over every user
    validated = [row for row in logged if row["valid/ndcg@10"]]
    at_best = {key: float(validated[reported["best_epoch"]][f"valid/{key}"]) for key in ("ndcg@10", "recall@20", "mrr@10")}
    assert at_best == pytest.approx({key: reported["valid"][key] for key in at_best}, abs=1e-6)
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)["test"]
    assert evaluated == pytest.approx(reported["test"], abs=1e-6)

    cut = tmp_path / "cut"
    ddp_train(data, cut, "train.max_epochs=2")
    (cut / "manifest.json").unlink()  # written last: without it the run is one interrupted after epoch 2
    ddp_train(data, cut)
    assert json.loads((cut / "metrics.json").read_text())["resumed"]
    second_part = (cut / "logs" / "part-1" / "metrics.csv").read_text().splitlines()[1:]
    assert {line.split(",")[0] for line in second_part} == {"2"}  # the resumed processes trained epoch 2 alone
    straight, resumed = load_file(str(run / "model.safetensors")), load_file(str(cut / "model.safetensors"))
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.allclose(straight[key], resumed[key], atol=1e-6), key


def test_ddp_trains_a_config_that_leaves_parameters_without_a_gradient(clustered_dataset, tmp_path):
    # A task weighted 0 is logged but not trained: plain DDP failed at its second step on the
    # like tower's parameters; DDP is now told to look for unused parameters, with a note. Here
    # through strategy=auto over two devices, which Lightning runs as ddp.
    done = ddp_train(clustered_dataset, tmp_path / "run", "train.max_epochs=1", "train.strategy=auto",
                     "model.loss_weights={retrieval: 1.0, rating: 0.1, like: 0, kg: 0.1}")  # fmt: skip
    assert "parameter tensors get no gradient from the backward pass" in done.stderr and "run folder: " in done.stdout


def test_pcgrad_under_ddp_trains_and_logs_its_conflicts(clustered_dataset, tmp_path):
    # each process projects the task gradients averaged over both (tests/train/test_module.py
    # checks the step itself); here DDP runs the extra gradient passes and the all-reduce
    run = tmp_path / "run"
    done = ddp_train(clustered_dataset, run, "train.max_epochs=2", "model.loss_mode=pcgrad",
                     "model.tasks=[retrieval,rating,like,kg]")  # fmt: skip
    assert "run folder: " in done.stdout
    shares = [value for _, value in read_metrics_csv(run / "logs")["train/pcgrad_conflicts"]]
    assert len(shares) == 2 and all(0 < s < 1 for s in shares)


def test_gradnorm_under_ddp_trains_and_every_process_keeps_the_same_weights(clustered_dataset, tmp_path):
    # each process balances on the task gradients and losses averaged over both, so the weights
    # it logs (rank 0's, synced) are the mean of equal values; DDP is told of the weights, which
    # the backward pass does not reach (GradNorm sets their gradient after it)
    run = tmp_path / "run"
    done = ddp_train(clustered_dataset, run, "train.max_epochs=2", "model.loss_mode=gradnorm",
                     "model.tasks=[retrieval,rating,like,kg]")  # fmt: skip
    assert "joint_loss.task_weights" in done.stderr and "run folder: " in done.stdout
    logged = read_metrics_csv(run / "logs")
    last = {t: logged[f"train/weight/{t}"][-1][1] for t in ("retrieval", "rating", "like", "kg")}
    assert sum(last.values()) == pytest.approx(1.3, abs=1e-4) and last != {"retrieval": 1.0, "rating": 0.1, "like": 0.1, "kg": 0.1}


def test_the_parser_and_the_data_and_graph_commands_start_without_torch():
    """``kgrec --help``, ``data`` and ``graph`` load no torch, PyG or Lightning (3 s before)."""
    import subprocess
    import sys

    probe = ("import sys; from kgrec.cli.main import build_parser; build_parser(); "
             "print(sorted(m for m in ('torch', 'torch_geometric', 'lightning', 'transformers') if m in sys.modules))")  # fmt: skip
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    # nor does printing a config, which loaded torch with the training code (kgrec.train is lazy now)
    probe = ("import sys; from kgrec.cli.main import main; main(['train', '--print-config', '--config', 'none']); "
             "print(sorted(m for m in ('torch', 'torch_geometric', 'lightning', 'transformers') if m in sys.modules))")  # fmt: skip
    printed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert printed.startswith("data:\n") and printed.splitlines()[-1] == "[]"


def test_baselines_on_a_cold_item_split_are_left_out_with_a_note(clustered_dataset, tmp_path, capsys):
    """Most-popular and EASE, trained on no interaction of the held-out items, scored them all
    alike: their (identical) rows and the ratios against them compared nothing."""
    run = tmp_path / "run"
    args = ["train", "--data", str(clustered_dataset), "--out", str(run), "--set", "data.split=cold_item",
            "--set", "data.cold_item_share=0.3", "--set", "model.use_text=false", "--set", "model.dim=16",
            "--set", "train.max_epochs=2", "--set", "train.progress=false"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"next: kgrec recommend {run} --user USER_ID" in out and "--baselines" not in out
    assert main(["eval", str(run), "--baselines"]) == 0
    captured = capsys.readouterr()
    assert "most-popular" not in captured.out and "EASE" not in captured.out and "ndcg@10 x" not in captured.out
    assert captured.out.startswith("valid ")  # the run's own metrics, then the rating baselines alone: the mean
    assert "test ratings (same split)" in captured.out  # rating and the biases rate new items as they rate any (they
    # were left out with the ranking rows; an item bias of 0 leaves mu + b_u, a fair baseline for a new item)
    assert captured.err.startswith("note: --baselines: every test item of this split is new to training (a cold-item "
                                   "split), and most-popular and EASE learn from training interactions alone")  # fmt: skip
    assert main(["eval", str(run), "--baselines", "--json"]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert "baselines" not in printed and "rating_baselines" in printed and captured.err.count("note:") == 1
    assert printed["baselines_left_out"].startswith("cold_item: every test item is new to training")
    # eval-lists on the same split: the same note, the lists' own metrics only
    lists = tmp_path / "lists.jsonl"
    assert main(["recommend", str(run), "--all-users", "--include-seen", "--out", str(lists), "--no-explain",
                 "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    split = ["--data", str(clustered_dataset), "--set", "data.split=cold_item", "--set", "data.cold_item_share=0.3"]
    assert main(["eval-lists", str(lists), *split, "--baselines"]) == 0
    captured = capsys.readouterr()
    assert "these lists /" not in captured.out and "EASE" not in captured.out
    assert "note: --baselines: every test item of this split is new to training" in captured.err
