"""Grid and random search on the validation split (``kgrec tune``).

Every combination of the grid's values, or with ``trials`` that many settings drawn at random
(:mod:`kgrec.train.space`), is trained as a normal run (early stopping on ``eval.monitor``) in
its own folder under the tuning folder; the setting with the best
validation value of that metric is chosen. Test metrics play no part in the choice, and the
report shows them for the chosen setting only. A rerun with the same grid reads finished runs
back and resumes an interrupted one, so a long search survives a Ctrl+C.

Tuning folder (``TUNE_DIR``):

==================== ==========================================================================
``NAME=VALUE,.../``   one run folder per setting (``kgrec train``'s layout), e.g. ``train.lr=0.002``;
                      a setting whose training diverged also holds ``.tune-failed.json``
``tune.json``         the grid (a random search: also its space, trials and seed), every
                      setting's valid metrics and epochs (``error`` for one that failed), the
                      chosen setting and its test metrics (rewritten after each run)
``tune.png``          the monitored valid metric of every setting, best first
==================== ==========================================================================

A setting whose training diverges (:data:`FAILED`) is recorded as failed and the search goes on:
it is never chosen, and a rerun reads the failure back instead of training it again (delete its
folder to try it again); only when every setting failed does the search end with the error.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kgrec.errors import ConfigError, DivergedError
from kgrec.train.config import (
    SUMMARY_METRICS,
    RunConfig,
    changed_fields,
    load_config,
    monitor_mode,
    plain_config,
    with_defaults,
)
from kgrec.train.run import train
from kgrec.train.saved import read_manifest
from kgrec.train.space import Distribution, sample_settings
from kgrec.train.teacher import reuse_teachers
from kgrec.utils.io import file_above, write_figure, write_json
from kgrec.utils.names import some_names

Grid = dict[str, list[str]]  # config field -> raw override values, e.g. {"train.lr": ["0.001", "0.002"]}

#: Marker of a setting whose training failed in a way that is the setting's own (a learning rate
#: that makes the weights diverge): ``{"error": message, "key": config key}``.
FAILED = ".tune-failed.json"


@dataclass
class Trial:
    """One setting of the grid and what its run gave."""

    setting: dict[str, str]  # field -> raw value
    folder: str  # run folder name under TUNE_DIR
    valid: dict[str, float]
    test: dict[str, float]
    epochs: int
    train_seconds: float
    error: str | None = None  # why its training failed (it diverged); None for a finished run

    def score(self, monitor: str) -> float | None:
        """Its valid ``monitor`` when it can be chosen: None for a failed trial or a NaN value."""
        value = None if self.error is not None else self.valid.get(monitor)
        return value if value is not None and math.isfinite(value) else None


@dataclass
class TuneResult:
    """All trials in grid order, the metric they were compared on and the chosen one."""

    monitor: str
    mode: str  # "max" or "min"
    trials: list[Trial]

    def ranked(self) -> list[Trial]:
        """The trials best first on valid ``monitor`` (the earlier first on a tie), then those that
        cannot be chosen (failed, or NaN), in grid order."""
        sign = 1 if self.mode == "max" else -1
        scores = [t.score(self.monitor) for t in self.trials]
        order = sorted((k for k, v in enumerate(scores) if v is not None), key=lambda k: -sign * scores[k])  # type: ignore[operator]
        return [self.trials[k] for k in order] + [t for t, v in zip(self.trials, scores, strict=True) if v is None]

    @property
    def best(self) -> Trial:
        """The trial with the best valid ``monitor`` (the earliest on a tie); a failed trial, or
        one whose value is NaN, is never chosen.

        Raises:
            ValueError: no trial can be chosen (none yet, or every one failed).
        """
        ranked = self.ranked()
        if not ranked or ranked[0].score(self.monitor) is None:
            raise ValueError("no trial to choose: none finished with a valid value of the metric")
        return ranked[0]


def parse_grid(specs: list[str]) -> Grid:
    """``["train.lr=0.001,0.002", "model.trunk_hidden=[[64],[128]]"]`` -> a :data:`Grid`.

    A value list is comma-separated, or a YAML list in brackets when its values hold commas
    (lists, mappings).

    Raises:
        ConfigError: a spec without ``=``, without values, a field given twice, or a value
            given twice.
    """
    grid: Grid = {}
    for spec in specs:
        key, sep, raw = spec.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key or not raw:
            raise ConfigError(f"--grid '{spec}': expected section.field=value1,value2,...")
        if key in grid:
            raise ConfigError(f"--grid: {key} is given twice; list all its values in one --grid")
        if raw.startswith("["):
            try:
                parsed = yaml.safe_load(raw)
            except yaml.YAMLError as error:
                raise ConfigError(f"--grid '{spec}': not a YAML list ({error})") from None
            if not isinstance(parsed, list):
                raise ConfigError(f"--grid '{spec}': expected a YAML list of values")
            values = [_raw(v) for v in parsed]
        else:
            values = [v.strip() for v in raw.split(",")]
        if not values or any(not v for v in values):
            raise ConfigError(f"--grid '{spec}': an empty value")
        if len(set(values)) != len(values):
            raise ConfigError(f"--grid '{spec}': a value is listed twice")
        grid[key] = values
    if not grid:
        raise ConfigError("give at least one --grid section.field=value1,value2")
    return grid


def _raw(value: Any) -> str:
    """A grid value as an override's text: a string as it is, anything else as JSON (YAML reads it back)."""
    return value if isinstance(value, str) else json.dumps(value)


def settings(grid: Grid) -> list[dict[str, str]]:
    """Every combination of the grid's values, the last field varying fastest."""
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def folder_name(setting: dict[str, str]) -> str:
    """A readable, file-system-safe run folder name: ``model.dim=32,train.lr=0.001``; a name
    that had to drop characters gets a short digest of the setting, so two settings never share it."""
    text = ",".join(f"{k}={v}" for k, v in setting.items())
    safe = re.sub(r"[^A-Za-z0-9._=,+-]", "", text)
    if safe != text:
        safe += "-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return safe


def tune(
    grid: Grid | dict[str, list[Any]],
    out: str | Path,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
    progress: bool = True,
    space: dict[str, Distribution] | None = None,
    trials: int | None = None,
    seed: int = 0,
) -> TuneResult:
    """Train every setting of ``grid`` on top of ``config_file`` and ``overrides`` and compare
    them on the validation value of ``eval.monitor``. With ``trials``, a random search instead:
    that many settings, each ``grid`` field one of its values and each ``space`` field a draw
    of its distribution (:func:`~kgrec.train.space.sample_settings`, seeded with ``seed``).

    Args:
        grid: config field -> values (raw override strings as :func:`parse_grid` gives them,
            or Python values, written as JSON).
        out: the tuning folder (see the module's table).
        config_file: YAML config the settings start from; ``None``: the built-in defaults.
        overrides: ``section.field=value`` strings applied before each setting.
        progress: print a line per setting on stderr (each run reports its epochs as
            ``train.progress`` says).
        space: field -> distribution, for a random search (:func:`~kgrec.train.space.parse_space`).
        trials: the number of settings a random search draws; ``None``: the full grid.
        seed: the random search's seed (not the runs' ``train.seed``).

    Raises:
        ConfigError: the grid or the space sets a field ``overrides`` sets too, or a ``data``
            field (each setting would be chosen on another validation set), ``space`` without
            ``trials``, the runs have no validation metric to compare (the kg tower alone
            without held-out triples), two settings ask for the same config (``0.001`` and
            ``1e-3``), ``out`` is a file or a ``kgrec train`` run folder, or a finished run under
            ``out`` was trained with another config; no field to search, or a grid field without
            values; every setting's training diverged (the first one's error: a setting that
            diverges while others finish is recorded as failed, see the module's docstring).
    """
    grid = {k: [_raw(v) for v in values] for k, values in grid.items()}
    space = dict(space or {})
    overrides = list(overrides or [])
    clash = sorted({o.partition("=")[0].strip() for o in overrides} & (set(grid) | set(space)))
    if clash:
        raise ConfigError(f"{clash[0]} is both in the search and in --set; give it in one place")
    data_fields = sorted(k for k in {*grid, *space} if k.strip().startswith("data."))
    if data_fields:
        raise ConfigError(
            f"{data_fields[0]} is in the search, but it changes the data that the settings are split and scored "
            "on, so each would be chosen on another validation set; fix it with --set or --data, or train each "
            "with kgrec train and see them side by side with kgrec compare"
        )
    if space and trials is None:
        raise ConfigError("sampled fields (--sample) need a number of trials (--trials N)")
    if not grid and not space:  # one run, trained into the tuning folder itself
        raise ConfigError("give the fields to search: a grid field with its values, or sampled fields and trials")
    empty = next((k for k, values in grid.items() if not values), None)
    if empty is not None:
        raise ConfigError(f"{empty}: no values to search; give at least one")
    out = Path(out)
    _check_out(out)
    combos = settings(grid) if trials is None else sample_settings(grid, space, trials, seed)
    configs = [load_config(config_file, [*overrides, *(f"{k}={v}" for k, v in s.items())]) for s in combos]
    monitor = configs[0].eval.monitor
    if monitor is None or any(c.eval.monitor != monitor for c in configs):
        raise ConfigError(
            "tuning compares settings on one validation metric (eval.monitor); "
            + ("these runs have none (the kg tower alone, without graph.kg_holdout)" if monitor is None else "the grid changes it")
        )
    requests = [_comparable(_request(config)) for config in configs]
    for number, request in enumerate(requests):
        if request in requests[:number]:  # 0.001 and 1e-3: one run, listed as two settings
            first, again = (" ".join(f"{k}={v}" for k, v in combos[n].items()) for n in (requests.index(request), number))
            raise ConfigError(f"{first} and {again} ask for the same run (the same config); list each value once")
    search = None
    if trials is not None:
        search = {"space": {k: str(d) for k, d in space.items()}, "trials": trials, "seed": seed}
    names = [folder_name(s) for s in combos]
    result = TuneResult(monitor=monitor, mode=monitor_mode(monitor), trials=[])
    failures: dict[str, ConfigError] = {}
    out.mkdir(parents=True, exist_ok=True)
    with reuse_teachers():  # every trial trains on the same split: one teacher fit per teacher setting
        for number, (setting, config) in enumerate(zip(combos, configs, strict=True), start=1):
            label = " ".join(f"{k}={v}" for k, v in setting.items())
            if progress:
                print(f"[{number}/{len(combos)}] {label} ...", file=sys.stderr, flush=True)
            if not (out / names[number - 1]).exists():  # asked for before by another name (fields reordered, 1e-3 for 0.001)
                names[number - 1] = _same_request(out, config) or names[number - 1]
            name = names[number - 1]
            try:
                metrics = _run(config, out / name)
            except ConfigError as error:
                if not _diverged(error):  # a check of the config against the data: the user's to fix
                    raise
                failures.setdefault("first", error)
                metrics = {"valid": {}, "test": {}, "epochs": 0, "train_seconds": 0.0, "error": str(error)}
            trial = Trial(dict(setting), name, metrics["valid"], metrics["test"], metrics["epochs"], metrics["train_seconds"],
                          metrics.get("error"))  # fmt: skip
            result.trials.append(trial)
            if progress and trial.error is not None:
                print(f"[{number}/{len(combos)}] {label}: failed, not compared ({trial.error}); delete {out / name} "
                      "to train it again", file=sys.stderr, flush=True)  # fmt: skip
            elif progress:
                print(f"[{number}/{len(combos)}] {label}: valid {monitor} {trial.valid[monitor]:.4f}, "
                      f"{trial.epochs} epochs, {trial.train_seconds:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
            _save(out, grid, result, search)
    if all(t.score(monitor) is None for t in result.trials):  # nothing to choose: the (first) cause
        raise failures.get("first") or ConfigError(f"no setting gave a valid {monitor} to choose on (NaN)")
    plot_tuning(result, out / "tune.png")
    others = sorted(p.parent.name for p in out.glob("*/.tune-request.json") if p.parent.name not in names)
    if others:
        print(f"note: {out} also holds {len(others)} run{'s' if len(others) > 1 else ''} of another search, not compared "
              f"here ({some_names(others)}); kgrec compare {out}/*/ ranks every run in it", file=sys.stderr)  # fmt: skip
    return result


def _check_out(out: Path) -> None:
    """Refuse a tuning folder that is a file, lies below one, or is a ``kgrec train`` run folder
    (its runs would mix with the trials, and ``kgrec compare`` would take it for a tuning folder)."""
    below = file_above(out)
    if (out.exists() and not out.is_dir()) or below is not None:
        raise ConfigError(f"--out {out}: {below or out} is a file; give a folder for the runs of the search")
    if any((out / name).exists() for name in ("manifest.json", "checkpoints", "model.safetensors")):
        raise ConfigError(f"--out {out} is the run folder of kgrec train; give a new folder for the runs of the search "
                          "(one folder per setting is written under it)")  # fmt: skip


def _request(config: RunConfig) -> dict[str, Any]:
    """What a run is asked for: ``config`` as plain values, less how it reports (``train.progress``)."""
    requested = plain_config(config)
    requested["train"].pop("progress")
    return requested


def _recorded(marker: Path) -> dict[str, Any]:
    """A run's request as ``marker`` recorded it, fields newer than it at their defaults."""
    recorded = with_defaults(json.loads(marker.read_text(encoding="utf-8")))
    recorded["train"].pop("progress")  # never recorded: with_defaults brought it back
    return recorded


def _comparable(request: dict[str, Any]) -> dict[str, Any]:
    """``request`` with its data and graph folders as absolute paths, so that ``--data d`` and
    ``--data $PWD/d`` ask for the same run."""
    out = {**request}
    for section, key in (("data", "path"), ("graph", "path")):
        if isinstance((out.get(section) or {}).get(key), str):
            out[section] = {**out[section], key: str(Path(out[section][key]).expanduser().resolve())}
    return out


def _same_request(out: Path, config: RunConfig) -> str | None:
    """The run folder under ``out`` asked for with ``config`` by another name, if any."""
    wanted = _comparable(_request(config))
    for marker in sorted(out.glob("*/.tune-request.json")):
        try:
            if _comparable(_recorded(marker)) == wanted:
                return marker.parent.name
        except (ValueError, KeyError, TypeError, AttributeError):  # an unreadable marker matches nothing
            continue
    return None


def _run(config: RunConfig, folder: Path) -> dict[str, Any]:
    """Train ``config`` in ``folder``, or read back the finished run there if it was asked for
    with this very config (recorded as ``folder/.tune-request.json``: the run's own
    ``config.yaml`` holds the config after :func:`~kgrec.train.fit_defaults`)."""
    requested = _request(config)  # how a run reports is not what it trains
    marker = folder / ".tune-request.json"
    recorded = _recorded(marker) if marker.is_file() else None
    finished = (folder / "manifest.json").is_file()
    if (finished or recorded is not None) and (recorded is None or _comparable(recorded) != _comparable(requested)):
        changed = ", ".join(changed_fields(_comparable(recorded), _comparable(requested))) if recorded is not None else "not recorded"
        raise ConfigError(
            f"{folder} holds a{' finished' if finished else 'n unfinished'} run of another config (differs in: "
            f"{changed}); use another tuning folder, or delete that run"
        )
    if finished:
        read_manifest(folder)  # a clear error for a folder of another format
        return json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    failed = recorded_failure(folder)
    if failed is not None:  # it diverged before: the same config would again
        raise failed
    folder.mkdir(parents=True, exist_ok=True)
    write_json(marker, requested)
    try:
        return train(config, folder)
    except ConfigError as error:
        if _diverged(error):
            write_json(folder / FAILED, {"error": str(error), "key": error.key})
        raise


def _diverged(error: ConfigError) -> bool:
    """Whether ``error`` is a setting's training diverging (:meth:`RecommenderModule._diverged`):
    that setting's own failure, where any other check names a config the user must fix."""
    return isinstance(error, DivergedError)


def recorded_failure(folder: Path) -> DivergedError | None:
    """The error that ended the training in ``folder`` as :data:`FAILED` recorded it, if it did."""
    try:
        recorded = json.loads((folder / FAILED).read_text(encoding="utf-8"))
        return DivergedError(str(recorded["error"]), key=recorded.get("key"))
    except (OSError, ValueError, LookupError, TypeError):  # none, or unreadable: train it
        return None


def _save(out: Path, grid: Grid, result: TuneResult, search: dict[str, Any] | None) -> None:
    best = next((t for t in result.ranked()[:1] if t.score(result.monitor) is not None), None)  # none yet: null
    chosen = None if best is None else {"setting": best.setting, "folder": best.folder, "valid": best.valid, "test": best.test}
    write_json(out / "tune.json", {
        "monitor": result.monitor,
        "mode": result.mode,
        "grid": grid,
        **({"random_search": search} if search is not None else {}),
        "trials": [
            {"setting": t.setting, "folder": t.folder, "valid": t.valid, "epochs": t.epochs,
             "train_seconds": t.train_seconds, **({"error": t.error} if t.error is not None else {})}
            for t in result.trials
        ],
        "best": chosen,
    })  # fmt: skip


def format_result(result: TuneResult, out: str | Path | None = None) -> str:
    """The trials as a table sorted best first on the validation metric, then the chosen
    setting's test metrics (the only test figures shown)."""
    keys = list(result.trials[0].setting)
    ranked = result.ranked()
    widths = [max(len(k), *(len(t.setting[k]) for t in ranked)) for k in keys]
    column = f"valid {result.monitor}"
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True)) + f"  {column}  epochs  seconds"]
    for trial in ranked:
        cells = "  ".join(trial.setting[k].ljust(w) for k, w in zip(keys, widths, strict=True))
        value = ("failed" if trial.error is not None else f"{trial.valid.get(result.monitor, math.nan):.4f}").rjust(len(column))
        lines.append(f"{cells}  {value}  {trial.epochs:>6}  {trial.train_seconds:>7.0f}")
    best = result.best
    chosen = " ".join(f"{k}={v}" for k, v in best.setting.items())
    shown = [f"{k} {best.test[k]:.4f}" for k in SUMMARY_METRICS if k in best.test]
    where = f" ({Path(out) / best.folder})" if out is not None else ""
    lines += ["", f"chosen on valid {result.monitor}: {chosen}{where}", f"its test: {'  '.join(shown)}"]
    failed = [t for t in result.trials if t.error is not None]
    if failed:
        lines.append(f"failed, not compared: {len(failed)} setting{'s' if len(failed) > 1 else ''} "
                     f"({some_names([t.folder for t in failed])}; delete its folder to train it again): "
                     f"{failed[0].error}")  # fmt: skip
    return "\n".join(lines)


def plot_tuning(result: TuneResult, out: str | Path) -> Path:
    """A bar per setting of its validation metric, from zero and labelled with its value, best
    on top, written atomically as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ranked = [t for t in result.ranked() if t.score(result.monitor) is not None][::-1]  # best last: drawn on top
    labels = [" ".join(f"{k.rpartition('.')[2]}={v}" for k, v in t.setting.items()) for t in ranked]
    values = [t.valid[result.monitor] for t in ranked]
    figure = Figure(figsize=(7, 0.6 + 0.35 * len(ranked)))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    bars = axis.barh(range(len(ranked)), values, color="#9ab")
    bars[-1].set_color("#357")
    axis.set_yticks(range(len(ranked)), labels, fontsize=8)
    # Bars from zero, each with its value: a cut axis would make noise-sized gaps look decisive.
    for position, value in enumerate(values):
        axis.text(value, position, f" {value:.4f}", va="center", fontsize=8)
    axis.set_xlim(min(0.0, min(values)), max(values) * 1.18 if max(values) > 0 else 1.0)
    axis.set_xlabel(f"valid {result.monitor}" + (" (lower is better)" if result.mode == "min" else ""))
    axis.set_title("kgrec tune: settings compared on the validation split")
    figure.tight_layout()
    return write_figure(figure, out, dpi=120)
