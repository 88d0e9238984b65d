"""Compare finished runs: the config fields they differ in, beside their metrics.

``kgrec compare runs/a runs/b ...`` reads each run folder's ``config.yaml`` and
``metrics.json`` (nothing is loaded or re-evaluated), finds the fields whose values are not the
same in every run, and prints one row per run, best first on a validation metric: the
differing fields, valid and test of that metric, the other summary metrics on test, epochs and
seconds per epoch. Runs written by an older kgrec count the fields it did not have yet at their
defaults (:func:`~kgrec.train.config.with_defaults`), as a resume does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kgrec.errors import KgrecError
from kgrec.train.config import SUMMARY_METRICS, changed_fields, monitor_mode, with_defaults
from kgrec.train.saved import read_manifest
from kgrec.train.tune import FAILED, recorded_failure
from kgrec.utils.io import write_figure

UNCOMPARED = ("train.progress",)  # how a run reported, not what it trained


@dataclass
class ComparedRun:
    """One run: its folder, its values of the differing fields (as YAML text) and its metrics."""

    run: str
    fields: dict[str, str]
    valid: dict[str, float]
    test: dict[str, float]
    epochs: int
    best_epoch: int | None
    seconds_per_epoch: float


@dataclass
class Comparison:
    """Runs sorted best first on ``valid[metric]`` (``mode`` ``max`` or ``min``); ``fields`` are
    the ``section.field`` names whose values differ between them; ``notes`` say what makes
    their metrics not comparable (runs evaluated on other interactions or another split)."""

    metric: str
    mode: str
    fields: list[str]
    runs: list[ComparedRun]
    notes: list[str] = field(default_factory=list)


def compare_runs(runs: Sequence[str | Path], metric: str | None = None) -> Comparison:
    """Read the finished ``runs`` and rank them on the validation ``metric`` (default: the
    runs' ``eval.monitor`` when they share one, else ``ndcg@10``). A ``kgrec tune`` folder
    stands for the runs of its trials; a run named twice (itself and in its tuning folder) is
    one row. Runs still training (or interrupted), settings whose training diverged in
    ``kgrec tune`` and runs without a valid ``metric`` are left out with a note when others
    remain, so that ``runs/tune/*/`` compares a search in progress; with none left, they are
    refused (:func:`read_manifest`), as is a folder that is no run at all."""
    unique: dict[Path, Path] = {}
    for run in (run for given in runs for run in _run_folders(Path(given))):
        unique.setdefault(run.resolve(), run)  # the first naming of each
    runs = list(unique.values())
    if not runs:
        raise KgrecError("compare: give at least one run folder")
    failed = [run for run in runs if _failed(run)]
    unfinished = [run for run in runs if _training(run) and run not in failed]
    if failed and len(failed) + len(unfinished) == len(runs):
        raise KgrecError(f"{failed[0]}: its training diverged in kgrec tune ({_failure(failed[0])}), so there is no "
                         "finished run to compare")  # fmt: skip
    if len(unfinished) + len(failed) < len(runs):  # a search in progress (runs/tune/*/): compare what has finished
        runs = [run for run in runs if run not in unfinished and run not in failed]
    manifests, configs, metrics = [], [], []
    for run in runs:
        manifest = read_manifest(run)  # a clear error for a folder that is not a finished run
        config = with_defaults(_read(run / "config.yaml", yaml.safe_load, yaml.YAMLError))
        config["data"]["path"] = manifest["dataset_path"]  # the folder it read, whether named or fetched
        manifests.append(manifest)
        configs.append(config)
        metrics.append(_read(run / "metrics.json", json.loads, ValueError))
    if metric is None:
        monitors = {config["eval"]["monitor"] for config in configs}
        metric = monitors.pop() if len(monitors) == 1 and None not in monitors else "ndcg@10"
    has = [metric in m.get("valid", {}) for m in metrics]
    if not any(has):  # none has it: refused, naming the first
        valid = metrics[0].get("valid", {})
        raise KgrecError(f"{runs[0]}: no valid {metric} in metrics.json (it has {', '.join(valid) or 'none'}); "
                         "choose another with --metric")  # fmt: skip
    without = [str(run) for run, kept in zip(runs, has, strict=True) if not kept]  # a rating-only run among retrieval runs
    runs, manifests, configs, metrics = ([x for x, kept in zip(xs, has, strict=True) if kept] for xs in (runs, manifests, configs, metrics))
    evaluated_on: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    for run, manifest in zip(runs, manifests, strict=True):
        evaluated_on.setdefault(_evaluation_data(manifest), []).append(str(run))
    fields = sorted({f for config in configs[1:] for f in changed_fields(configs[0], config)} - set(UNCOMPARED))
    mode = monitor_mode(metric)
    rows = [
        ComparedRun(
            run=str(run),
            fields={f: _text(_value(config, f)) for f in fields},
            valid=m["valid"],
            test=m.get("test", {}),
            epochs=m["epochs"],
            best_epoch=m.get("best_epoch"),
            seconds_per_epoch=m["seconds_per_epoch"],
        )
        for run, config, m in zip(runs, configs, metrics, strict=True)
    ]
    sign = -1 if mode == "max" else 1
    rows.sort(key=lambda r: (0, sign * r.valid[metric]) if math.isfinite(r.valid[metric]) else (1, 0))  # NaN last
    notes = []
    if unfinished:
        notes.append(f"left out {len(unfinished)} run{'s' if len(unfinished) > 1 else ''} whose training has not finished "
                     f"(no manifest.json yet: still training, or interrupted): {' '.join(map(str, unfinished))}")  # fmt: skip
    if failed:
        notes.append(f"left out {len(failed)} run{'s' if len(failed) > 1 else ''} whose training diverged in kgrec tune "
                     f"({FAILED} says why): {' '.join(map(str, failed))}")  # fmt: skip
    if without:
        notes.append(f"left out {len(without)} run{'s' if len(without) > 1 else ''} without a valid {metric} (trained "
                     f"without its tower or with other eval.ks; choose another with --metric): {' '.join(without)}")  # fmt: skip
    if len(evaluated_on) > 1:
        groups = "; ".join(f"{' '.join(names)}: {data[0]}, split {data[1]}" for data, names in evaluated_on.items())
        notes.append(f"the runs were evaluated on different interactions or splits, so their metrics do not compare ({groups})")
    return Comparison(metric=metric, mode=mode, fields=fields, runs=rows, notes=notes)


def _read(path: Path, parse: Callable[[str], Any], damaged: type[Exception]) -> Any:
    """A finished run's ``config.yaml`` or ``metrics.json``, parsed.

    Raises:
        KgrecError: the file is missing, not UTF-8, or not what ``parse`` reads (``damaged``).
    """
    try:
        return parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        reason = "missing (the run's manifest.json lists it)"
    except (UnicodeDecodeError, damaged) as error:
        reason = f"damaged ({str(error).splitlines()[0]})"
    raise KgrecError(f"{path}: {reason}: the run folder is incomplete; copy the run folder whole, restore the file, "
                     "or retrain")  # fmt: skip


def _evaluation_data(manifest: dict[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    """What a run's metrics were computed on: its dataset, its split and its interaction files'
    sha256 (item, user and KG files change the inputs, not the test)."""
    inter = tuple(sorted(f"{s['file']}:{s['sha256']}" for s in manifest.get("sources", []) if s["file"].endswith(".inter")))
    return manifest.get("dataset", "?"), manifest.get("split", "?"), inter


def format_comparison(comparison: Comparison) -> str:
    """The runs as a table, best first on the validation metric; test columns report, they do
    not choose."""
    metric, rows = comparison.metric, comparison.runs
    test_keys = [metric] + [k for k in SUMMARY_METRICS if k != metric and any(k in r.test for r in rows)]  # "-" where a run has none
    header = ["run", *comparison.fields, f"valid {metric}", *(f"test {k}" for k in test_keys), "epochs (best)", "s/epoch"]
    table = [
        [
            r.run,
            *(r.fields[f] for f in comparison.fields),
            f"{r.valid[metric]:.4f}",
            *(f"{r.test[k]:.4f}" if k in r.test else "-" for k in test_keys),
            f"{r.epochs} ({r.best_epoch})",
            f"{r.seconds_per_epoch:.1f}",
        ]
        for r in rows
    ]
    widths = [max(len(row[c]) for row in [header, *table]) for c in range(len(header))]
    texts = len(comparison.fields) + 1  # left-aligned columns; the numbers go right
    lines = [
        "  ".join(cell.ljust(w) if c < texts else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths, strict=True)))
        for row in [header, *table]
    ]
    if not comparison.fields:
        lines.append("(the runs have the same config)")
    lines.append(f"sorted by valid {metric}, best first: choose on valid; the test columns report")
    return "\n".join(lines)


def plot_comparison(comparison: Comparison, out: str | Path) -> Path:
    """Valid and test of the metric per run, as bars from zero labelled with their values (best
    on top), written atomically as PNG, or in the image format the suffix of ``out`` names."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = comparison.runs[::-1]  # best last: drawn on top
    labels = [r.run for r in rows]  # the fields they differ in are the table's
    metric = comparison.metric
    figure = Figure(figsize=(7.5, 1.2 + 0.6 * len(rows)))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    height = 0.38
    top = 0.0
    for shift, part, color in ((height / 2, "valid", "#357"), (-height / 2, "test", "#9ab")):
        values = [getattr(r, part).get(metric, float("nan")) for r in rows]
        axis.barh([k + shift for k in range(len(rows))], values, height=height, color=color, label=part)
        for k, value in enumerate(values):
            axis.text(value, k + shift, f" {value:.4f}", va="center", fontsize=7)
        top = max(top, *(v for v in values if v == v))
    axis.set_yticks(range(len(rows)), labels, fontsize=7)
    axis.set_xlim(0.0, top * 1.2 if top > 0 else 1.0)  # from zero: a cut axis makes noise look decisive
    axis.set_xlabel(metric + (" (lower is better)" if comparison.mode == "min" else ""))
    axis.set_title("kgrec compare: runs sorted by valid, best on top", fontsize=10, loc="left")
    axis.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=8, frameon=False)
    figure.tight_layout()
    return write_figure(figure, out, dpi=120)


def _training(run: Path) -> bool:
    """A run folder whose training started and has not finished: ``kgrec train`` writes
    ``config.yaml`` first, ``checkpoints/last.ckpt`` after each epoch, ``manifest.json`` last."""
    started = (run / "config.yaml").is_file() or (run / "checkpoints" / "last.ckpt").is_file()
    return started and not (run / "manifest.json").exists()


def _failed(run: Path) -> bool:
    """A ``kgrec tune`` setting whose training diverged: its folder holds :data:`FAILED` and no
    ``manifest.json`` (a run trained there since is finished)."""
    return (run / FAILED).is_file() and not (run / "manifest.json").exists()


def _failure(run: Path) -> str:
    """What :data:`FAILED` in ``run`` says ended its training (:func:`recorded_failure`)."""
    failure = recorded_failure(run)
    return str(failure) if failure is not None else f"{FAILED} is unreadable"


def _run_folders(path: Path) -> list[Path]:
    """``path`` itself, or for a ``kgrec tune`` folder the run folders of its trials.

    Raises:
        KgrecError: ``path/tune.json`` is not the record ``kgrec tune`` writes.
    """
    tuned = path / "tune.json"
    if not tuned.is_file():
        return [path]
    try:
        trials = json.loads(tuned.read_text(encoding="utf-8"))["trials"]
        return [path / trial["folder"] for trial in trials]
    except (ValueError, UnicodeDecodeError, LookupError, TypeError) as error:
        reason = str(error) if isinstance(error, ValueError) else f"no {error}" if isinstance(error, KeyError) else "malformed"
        raise KgrecError(f"{tuned}: not the record kgrec tune writes ({reason}), so {path} is neither a run nor a "
                         "tuning folder; name its runs one by one, or rerun the kgrec tune that wrote it") from None  # fmt: skip


def _value(config: dict[str, Any], name: str) -> Any:
    section, _, key = name.partition(".")
    return (config.get(section) or {}).get(key)


def _text(value: Any) -> str:
    """A config value as short YAML: ``null``, ``0.0001``, ``[gender, occupation]``."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).removesuffix("...\n").strip()
