"""Train kgrec's multi-task model: the same code path as `kgrec train`, as a script to read and edit.

    python scripts/train.py --out runs/ml-100k
    python scripts/train.py --out runs/quick --set train.max_epochs=5 --set model.trunk=ple
    python scripts/train.py --config none --data my-dataset --out runs/mine   # the built-in defaults

Without --config, the config is the dataset's own, found by its name as `kgrec train` finds it
(scripts/configs/ml-100k.yaml for ml-100k), else the built-in defaults; `--config none` asks for
the built-in defaults. As `kgrec train` does, the config is then fitted to the data
(kgrec.train.fit_defaults: a dataset without ratings trains no rating tower ...) with a note on
stderr for each change, and bad input stops with one line and exit status 2.
"""

import argparse
import json
import sys
from pathlib import Path

from kgrec.errors import ConfigError, KgrecError
from kgrec.train import (
    RunConfig,
    build_model,
    check_before_training,
    fit_defaults,
    load_config,
    load_data,
    prepare,
    train,
)
from kgrec.train.config import find_config_file, found_config_line
from kgrec.utils.config import locate
from kgrec.utils.interrupt import exit_if_abandoned

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", help="YAML config (default: the dataset's scripts/configs/NAME.yaml, found by its name, "
                    "else the built-in defaults; 'none': the built-in defaults)")  # fmt: skip
parser.add_argument("--data", type=Path, help="dataset folder (default: the config's data.path, else fetch data.name)")
parser.add_argument("--out", required=True, help="run folder to write")
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="override a config field (repeatable)")  # fmt: skip
parser.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")


def main(args: argparse.Namespace) -> None:
    # 1. configuration: defaults < YAML file < --data < --set overrides
    data = [f"data.path={args.data}"] if args.data is not None else []
    if args.config is None:  # the dataset's own config, found by its name, as kgrec train finds it
        path = find_config_file(data + args.overrides)
        print(found_config_line(path), file=sys.stderr)
    else:
        path = None if args.config == "none" else args.config
    config = load_config(path, data + args.overrides)
    try:
        check_before_training(config, args.out, args.overwrite)  # train()'s refusals, before the slow steps
        fit_and_train(config, args)
    except ConfigError as error:  # a check against the data or the machine: where the config file writes the key
        raise locate(error, path, data + args.overrides) from None


def fit_and_train(config: RunConfig, args: argparse.Namespace) -> None:
    """Steps 2-5: fit the loaded config to the data, prepare it, build the model, train."""
    # 2. data: the split dataset; the config fitted to it (what it cannot feed is switched off)
    dataset = load_data(config)
    config, notes = fit_defaults(config, dataset)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)

    # 3. knowledge graph (training edges only) and cached item text vectors
    prepared = prepare(config, dataset)
    print(f"{dataset.name}: {prepared.sizes.num_users} users, {prepared.sizes.num_items} items, "
          f"{prepared.sizes.num_nodes} graph nodes, text dim {prepared.sizes.text_dim}")  # fmt: skip

    # 4. model: fusion of ID / text / graph item vectors -> trunks -> task towers
    print(build_model(config, prepared))

    # 5. fit with early stopping on validation, reload the best weights, test, write the run folder
    metrics = train(config, args.out, overwrite=args.overwrite, prepared=prepared)
    print(json.dumps({part: metrics[part] for part in ("valid", "test")}, indent=2))
    print(f"{metrics['epochs']} epochs, {metrics['seconds_per_epoch']:.1f} s/epoch; run folder: {args.out}")


if __name__ == "__main__":
    args = parser.parse_args()
    try:
        main(args)
    except KgrecError as error:  # bad input: one line, as `kgrec train` prints it
        print(f"train.py: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as interrupt:  # Ctrl+C; training's says how to resume
        print(f"train.py: {str(interrupt) or 'interrupted'}", file=sys.stderr)
        exit_if_abandoned(130)  # a Ctrl+C during the teacher's solve: exit now, not abort after it
        sys.exit(130)
