"""Training curves as PNG: one panel per task loss, then the learned loss weights and the validation metrics."""

from __future__ import annotations

import csv
import io
import math
import re
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from kgrec.utils.io import write_figure


def read_metrics_csv(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Lightning CSVLogger output -> ``{metric: [(epoch, value), ...]}``.

    ``path`` is one ``metrics.csv`` or a ``logs/`` folder of ``part-N/metrics.csv`` (one part per
    start of an interrupted and resumed run); a resumed part's epochs replace the interrupted one's.
    """
    path = Path(path)
    if path.is_dir():  # part-N only: a copy beside them ("part-1 copy") had stopped the run at its end (ValueError)
        parts = {file: re.fullmatch(r"part-(\d+)", file.parent.name) for file in path.glob("part-*/metrics.csv")}
        files = sorted((file for file, match in parts.items() if match), key=lambda file: int(parts[file].group(1)))  # type: ignore[union-attr]
    else:
        files = [path]
    series: dict[str, dict[int, float]] = defaultdict(dict)
    for file in files:
        text = file.read_bytes().decode("utf-8", "replace")  # a byte a crash garbled costs its row, not the plot
        if text and not text.endswith("\n"):  # a last row a crash cut short (Lightning appends in place)
            text = text[: text.rfind("\n") + 1]
        for row in csv.DictReader(io.StringIO(text, newline="")):
            if None in row.values():  # fewer fields than the header: cut short (unlogged ones are "")
                continue
            try:
                epoch = int(float(row.get("epoch") or 0))
                values = {key: float(value) for key, value in row.items() if key not in ("epoch", "step") and value != ""}
            except ValueError:  # a value a crash cut short
                continue
            for key, value in values.items():
                series[key][epoch] = value
    return {key: sorted(values.items()) for key, values in series.items()}


def curve_panels(series: Mapping[str, object]) -> list[tuple[str, list[str]]]:
    """The panels of :func:`plot_training_curves` for the logged ``series``: ``(title, keys)``,
    one per training loss (``train/loss`` is the weighted total), then the learned loss weights,
    PCGrad's conflicts and the validation metrics, each group where it was logged."""
    weights = sorted(k for k in series if k.startswith("train/weight/"))
    losses = sorted(k for k in series if k.startswith("train/") and k not in weights and k != "train/pcgrad_conflicts")
    groups = {
        "learned loss weights": weights,
        "PCGrad: share of task pairs in conflict": ["train/pcgrad_conflicts"],
        "validation ranking": ["valid/ndcg@10", "valid/recall@10", "valid/ndcg@20", "valid/recall@20"],
        "validation lists: catalogue and long tail reached": ["valid/coverage@10", "valid/coverage@20", "valid/tail@10",
                                                              "valid/tail@20"],  # fmt: skip
        "validation rating error": ["valid/rmse", "valid/mae"],
        "validation like AUC": ["valid/auc"],
    }
    panels = [("train loss: total (weighted)" if k == "train/loss" else f"train loss: {k.removeprefix('train/')}", [k])
              for k in losses]  # fmt: skip
    return panels + [(title, [k for k in keys if k in series]) for title, keys in groups.items() if any(k in series for k in keys)]


def plot_training_curves(metrics_csv: str | Path, out: str | Path, title: str = "training") -> Path:
    """Plot per-task training losses (epoch means), learned loss weights and validation metrics by epoch.

    ``metrics_csv``: a ``metrics.csv`` or a run's ``logs/`` folder (see :func:`read_metrics_csv`).
    """
    from matplotlib.figure import Figure  # not pyplot: its backend is the caller's (a notebook's inline one)

    series = read_metrics_csv(metrics_csv)
    panels = curve_panels(series)
    n = max(1, len(panels))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (name, keys) in zip(axes.flat, panels, strict=False):
        unplotted = False  # a value NaN or infinite, which a line cannot show
        for key in keys:
            epochs, values = zip(*series[key], strict=True)
            (line,) = ax.plot(epochs, values, marker=".", label=key.rsplit("/", 1)[1])
            bad = [epoch for epoch, value in series[key] if not math.isfinite(value)]
            if bad:  # marked on the panel's top edge, in the line's colour
                ax.plot(bad, [1.0] * len(bad), "x", color=line.get_color(), transform=ax.get_xaxis_transform(),
                        clip_on=False, label=f"{key.rsplit('/', 1)[1]}: NaN or inf")  # fmt: skip
                unplotted = True
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        shown = [epoch for key in keys for epoch, _ in series[key]]  # NaN and inf too: the axis spans every logged epoch
        if max(shown) - min(shown) < 2:  # one or two epochs: the locator fell back to -0.04 .. 0.04
            ax.set_xticks(range(min(shown), max(shown) + 1))
            ax.set_xlim(min(shown) - 0.5, max(shown) + 0.5)
        else:  # a diverged run's NaN epochs are no points, so autoscaling had left them off the axis
            margin = 0.05 * (max(shown) - min(shown))
            ax.set_xlim(min(shown) - margin, max(shown) + margin)
        ax.grid(alpha=0.3)
        if unplotted or not name.startswith("train loss"):
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title, parse_math=False)  # the dataset's name, verbatim: "$" pairs were mathtext (or a ValueError)
    fig.tight_layout()
    write_figure(fig, out, dpi=110)
    return Path(out)

