"""What the ``scripts/bench_*.py`` that train kgrec share: one training run, thrown away after,
or kept under ``--runs DIR`` so that a rerun of the bench reuses it; the options every bench
takes; and bad input (a :class:`~kgrec.errors.KgrecError`) and kgrec's warnings told in one line
each, as ``kgrec`` tells them."""

import argparse
import hashlib
import json
import sys
import tempfile
import warnings
from pathlib import Path

from kgrec.cli.main import show_warning
from kgrec.errors import KgrecError
from kgrec.models import ModelConfig
from kgrec.train import RunConfig, load_config, load_data, train
from kgrec.train.saved import read_manifest
from kgrec.utils.config import to_dict
from kgrec.utils.io import source_mismatch


def one_line_errors(kind: type[BaseException], error: BaseException, traceback: object) -> None:
    """``sys.excepthook`` of the benches: bad input (a :class:`KgrecError`: a config the data
    cannot feed, a missing column) is one line and exit status 2; anything else, a bug, keeps
    Python's traceback."""
    if not isinstance(error, KgrecError):
        sys.__excepthook__(kind, error, traceback)  # type: ignore[arg-type]
        return
    print(f"{Path(sys.argv[0]).name}: error: {error}", file=sys.stderr)
    sys.exit(2)


sys.excepthook = one_line_errors  # every bench that imports this module
warnings.showwarning = show_warning  # kgrec: warning: ..., not Python's file, line and source line

RUNS_HELP = ("keep each training run in DIR, one folder per setting and seed, so that a rerun of "
             "the same command reads finished runs back and resumes interrupted ones (a long bench "
             "survives a Ctrl+C or a lost session). Runs are keyed by their config, not by the code: "
             "empty DIR after changing kgrec. Default: temporary folders, deleted")  # fmt: skip
CONFIG_HELP = "the run config (YAML) each model is trained with. Default: %(default)s"
SET_HELP = "override one field of the config, as kgrec train --set does (repeatable), e.g. train.max_epochs=3"


def config_file(path: str) -> str:
    """``--config``'s type: a file that exists, so that a mistyped path stops the bench at once, in
    one line, instead of a traceback (or, where the bench fell back, the built-in defaults)."""
    if not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"{path}: no such config file")
    return path


def at_least_one(value: str) -> int:
    """The type of a count the bench averages or divides by (``--seeds``, ``--steps``): 1 or more."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def check_runs(parser: argparse.ArgumentParser, *runs: str | Path) -> None:
    """Stop at a run argument that is not a finished kgrec run of this format, in one line and
    kgrec's words (no such folder, a training interrupted, an older format), before the bench
    loads anything. Called right after ``parse_args``, not given as an argparse ``type`` (as
    :func:`config_file` is): the README's commands name runs, ``runs/ml-100k``, that exist only
    where they were trained, and tests/test_readme.py parses those commands."""
    for run in runs:
        try:
            read_manifest(run)
        except KgrecError as error:
            parser.error(str(error))


def check_folder(parser: argparse.ArgumentParser, option: str, path: str | Path | None) -> None:
    """Stop at an ``option`` naming a folder (a dataset's) that does not exist, in one line, before
    the bench loads anything; after ``parse_args``, as :func:`check_runs` and for its reason."""
    if path is not None and not Path(path).is_dir():
        parser.error(f"{option} {path}: no such folder")


def train_seed(
    config_file: str, seed: int, overrides: list[str], model: ModelConfig | None = None, runs: str | None = None
) -> dict:
    """Train ``config_file`` with ``overrides`` and training seed ``seed`` (no progress bar);
    ``model`` replaces the config's model section. Returns the run's metrics (``metrics.json``).
    The run folder is temporary, or kept under ``runs`` (:func:`train_kept`)."""
    config = load_config(config_file, [*overrides, "train.progress=false", f"train.seed={seed}"])
    if model is not None:
        config.model = model
    if runs is not None:
        return train_kept(config, Path(runs))
    with tempfile.TemporaryDirectory() as out:
        return train(config, Path(out) / "run")


def kept_run_dir(config: RunConfig, runs: Path) -> Path:
    """``runs/seed<S>-<digest of the whole config>``: where :func:`train_kept` keeps ``config``'s run."""
    text = json.dumps(to_dict(config), sort_keys=True)
    return runs / f"seed{config.train.seed}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def train_kept(config: RunConfig, runs: Path) -> dict:
    """Train ``config`` in :func:`kept_run_dir`; a finished run there is read back instead of
    trained again, an interrupted one resumes (:func:`kgrec.train.train`). A finished run whose
    data files changed since (a dataset folder written again at the same path) is refused: its
    key is the config, which names the folder, not what the folder holds."""
    out = kept_run_dir(config, runs)
    if (out / "manifest.json").is_file():  # written last: the run finished
        manifest = read_manifest(out)  # a clear error for a folder of another format
        if manifest.get("sources"):
            mismatch = source_mismatch(manifest["sources"], load_data(config).sources)
            if mismatch:
                raise KgrecError(f"{out}: a kept run of other data ({mismatch}); delete it, or give another --runs folder")
        return json.loads((out / "metrics.json").read_text())
    return train(config, out)


def copy_without(source: Path, target: Path, field: str, drop: set[str], suffixes: tuple[str, ...]) -> Path:
    """Copy the atomic-file dataset folder ``source`` to ``target``, dropping from the files with
    ``suffixes`` the rows whose ``field`` column (e.g. ``item_id``) is in ``drop``."""
    target.mkdir(parents=True, exist_ok=True)
    for file in sorted(source.iterdir()):
        if not file.is_file() or file.name.startswith("."):
            continue
        lines = file.read_text(encoding="utf-8").splitlines()
        column = next((i for i, h in enumerate(lines[0].split("\t")) if h.startswith(f"{field}:")), None)
        if column is not None and file.suffix in suffixes:
            lines = [lines[0]] + [line for line in lines[1:] if line.split("\t")[column] not in drop]
        (target / file.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target
