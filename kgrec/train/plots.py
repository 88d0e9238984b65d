"""Training curves as PNG: one panel per task loss, one for the validation metrics."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

from kgrec.utils.io import atomic_path


def read_metrics_csv(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Lightning's CSVLogger ``metrics.csv`` -> ``{metric: [(epoch, value), ...]}``."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            epoch = int(float(row.get("epoch") or 0))
            for key, value in row.items():
                if key in ("epoch", "step") or value in (None, ""):
                    continue
                series[key].append((epoch, float(value)))
    return dict(series)


def plot_training_curves(metrics_csv: str | Path, out: str | Path, title: str = "training") -> Path:
    """Plot per-task training losses (epoch means) and validation metrics by epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = read_metrics_csv(metrics_csv)
    losses = sorted(k for k in series if k.startswith("train/") and k.endswith("_epoch"))
    valid = sorted(k for k in series if k.startswith("valid/"))
    panels = losses + ([valid] if valid else [])
    n = max(1, len(panels))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        keys = panel if isinstance(panel, list) else [panel]
        for key in keys:
            epochs, values = zip(*series[key], strict=True)
            ax.plot(epochs, values, marker=".", label=key.split("/", 1)[1].removesuffix("_epoch"))
        ax.set_title("validation" if isinstance(panel, list) else keys[0].removeprefix("train/").removesuffix("_epoch"))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if isinstance(panel, list):
            ax.legend(fontsize=7)
        else:
            ax.set_ylabel("loss")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return out
