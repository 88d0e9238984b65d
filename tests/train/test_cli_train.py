import json

from kgrec.cli.main import main


def test_train_and_eval_commands(clustered_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(clustered_dataset), "--out", str(run), "--set", "model.use_text=false",
            "--set", "model.dim=16", "--set", "train.max_epochs=2", "--set", "train.progress=false"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "test " in out and "ndcg@10" in out and f"run folder: {run}" in out
    assert main(["eval", str(run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    saved = json.loads((run / "metrics.json").read_text())
    assert abs(metrics["test"]["ndcg@10"] - saved["test"]["ndcg@10"]) < 1e-6


def test_bad_override_exits_2_with_one_line(clustered_dataset, tmp_path, capsys):
    code = main(["train", "--data", str(clustered_dataset), "--out", str(tmp_path / "r"), "--set", "model.trunk=tower"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "model.trunk" in err


def test_eval_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a finished kgrec run" in capsys.readouterr().err
