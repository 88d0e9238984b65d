from kgrec.train.plots import curve_panels, plot_training_curves


def test_curves_give_each_loss_a_panel_and_group_weights_conflicts_and_validation(tmp_path) -> None:
    logged = ["train/loss", "train/retrieval", "train/rating", "train/weight/retrieval", "train/weight/rating",
              "train/pcgrad_conflicts", "valid/ndcg@10", "valid/recall@20", "valid/coverage@10", "valid/tail@10",
              "valid/rmse"]  # fmt: skip
    csv = tmp_path / "metrics.csv"
    rows = [",".join(["epoch", "step", *logged])] + [",".join([str(e), str(10 * e), *(f"{0.1 * (e + 1):.2f}" for _ in logged)])
                                                      for e in range(3)]  # fmt: skip
    csv.write_text("\n".join(rows) + "\n")
    series = {key: [(0, 1.0)] for key in logged}
    assert curve_panels(series) == [
        ("train loss: total (weighted)", ["train/loss"]),
        ("train loss: rating", ["train/rating"]),
        ("train loss: retrieval", ["train/retrieval"]),
        ("learned loss weights", ["train/weight/rating", "train/weight/retrieval"]),
        ("PCGrad: share of task pairs in conflict", ["train/pcgrad_conflicts"]),
        ("validation ranking", ["valid/ndcg@10", "valid/recall@20"]),
        ("validation lists: catalogue and long tail reached", ["valid/coverage@10", "valid/tail@10"]),
        ("validation rating error", ["valid/rmse"]),
    ]
    assert curve_panels({"train/loss": [(0, 1.0)]}) == [("train loss: total (weighted)", ["train/loss"])]
    out = plot_training_curves(csv, tmp_path / "curves.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plotting_leaves_the_callers_matplotlib_backend_alone(tmp_path) -> None:
    """Training in a notebook plotted its curves through pyplot after matplotlib.use("Agg"),
    which switched the kernel's backend: the notebook's next plt.show() drew nothing."""
    import subprocess
    import sys

    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,step,train/loss\n0,1,0.5\n1,2,0.4\n")
    code = (
        "import sys, matplotlib; matplotlib.use('svg')\n"
        "from kgrec.train.plots import plot_training_curves\n"
        f"plot_training_curves({str(csv)!r}, {str(tmp_path / 'c.png')!r})\n"
        "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["svg", "False"] and (tmp_path / "c.png").is_file()


def test_a_plot_asked_into_a_folder_is_refused(tmp_path) -> None:
    import pytest

    from kgrec.errors import KgrecError

    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,step,train/loss\n0,1,0.5\n")
    with pytest.raises(KgrecError, match="is a folder: give the path of the image file to write"):
        plot_training_curves(csv, tmp_path)


def test_a_run_of_one_or_two_epochs_gets_whole_epoch_ticks(tmp_path, monkeypatch) -> None:
    """With one epoch the x axis read -0.04 ... 0.04 (the integer locator's fallback)."""
    import kgrec.train.plots as plots

    drawn = []
    monkeypatch.setattr(plots, "write_figure", lambda fig, out, **kwargs: drawn.append(fig))
    for epochs in (1, 2, 5):
        csv = tmp_path / f"metrics{epochs}.csv"
        csv.write_text("epoch,step,train/loss\n" + "".join(f"{e},{e},{1.0 / (e + 1)}\n" for e in range(epochs)))
        plot_training_curves(csv, tmp_path / "curves.png")
        ticks = [t for t in drawn[-1].axes[0].get_xticks() if -0.5 <= t <= epochs - 0.5]
        assert ticks and all(float(t).is_integer() for t in ticks), (epochs, ticks)
