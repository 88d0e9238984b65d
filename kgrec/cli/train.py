"""``kgrec train`` and ``kgrec eval``: train a model into a run folder, re-evaluate a saved run.

Training's modules (torch, PyG, Lightning) load when a command runs, not when the parser is
built, so ``kgrec --help`` and the data and graph commands start without them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kgrec.cli.data import config_file, data_overrides, split_arguments, split_config
from kgrec.errors import ConfigError

if TYPE_CHECKING:
    from kgrec.data import Dataset


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "train",
        help="train a model and write a run folder",
        description=(
            "Train the multi-task model (text + KG encoders, shared trunk, task towers) with early stopping "
            "on the validation metric, then evaluate on test and write RUN_DIR: config, safetensors weights, "
            "user/item vectors, id maps, metrics.json, training curves. An interrupted run resumes from "
            "RUN_DIR/checkpoints/last.ckpt; --set train.init_from=OLD_RUN starts from an earlier run's weights "
            "(a warm start: users, items and graph nodes matched by id). Any config field can be overridden: "
            "--set model.trunk=ple --set train.max_epochs=5 --set train.devices=2 --set train.strategy=ddp"
        ),
    )
    _config_arguments(p)
    p.add_argument("--out", type=Path, help="run folder to write (required unless --print-config)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config (defaults, --config, --set) as YAML, every field with its "
                   "value, and exit without training; save it to start a config file of your own. With "
                   "--data (or data.path), it is the config as fitted to that data, what train would "
                   "train, with a note on stderr for each default the data cannot feed")  # fmt: skip
    p.set_defaults(handler=_train)

    p = commands.add_parser(
        "tune",
        help="grid or random search: train each setting, choose on valid",
        description=(
            "Train every combination of the --grid values (each a normal run with early stopping, in its own "
            "folder under --out) and choose the setting with the best validation value of eval.monitor "
            "(ndcg@10 with the retrieval tower). Test metrics are shown for the chosen setting only. A rerun "
            "reads finished runs back and resumes an interrupted one. Writes OUT/tune.json and OUT/tune.png. "
            "Example: kgrec tune --grid train.lr=0.001,0.002 --grid model.dim=32,64 --out runs/tune. "
            "Random search: --trials N draws N settings, each --grid field one of its values and each --sample "
            "field from its distribution: kgrec tune --trials 8 --sample train.lr=loguniform(1e-4,1e-2) "
            "--sample model.id_dropout=uniform(0,0.3) --grid model.trunk=mmoe,ple --out runs/random"
        ),
    )
    p.add_argument("--grid", action="append", default=[], metavar="SECTION.FIELD=V1,V2",
                   help="a field and its values, comma-separated, or a YAML list for values with commas "
                   "(model.trunk_hidden=[[64],[128]]); repeatable: every combination is trained (with --trials, "
                   "the values are choices drawn at random)")  # fmt: skip
    p.add_argument("--sample", action="append", default=[], metavar="SECTION.FIELD=DIST",
                   help="random search (with --trials): a field drawn from loguniform(LOW,HIGH), "
                   "uniform(LOW,HIGH) or randint(LOW,HIGH), floats rounded to 2 significant digits; repeatable")  # fmt: skip
    p.add_argument("--trials", type=int,
                   help="random search: the number of settings to draw (a rerun with more keeps the first)")  # fmt: skip
    p.add_argument("--search-seed", type=int, metavar="SEED",
                   help="the random search's seed, with --trials (default 0; not train.seed)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="tuning folder: one run folder per setting")
    _config_arguments(p)
    p.add_argument("--json", action="store_true", help="print OUT/tune.json instead of the table")
    p.set_defaults(handler=_tune)

    p = commands.add_parser(
        "eval-lists",
        help="score another tool's top-K lists on kgrec's split",
        description="Score ranked lists made by another recommender (one JSON line per user: {\"user\": ID, "
        "\"items\": [ID, ...]} best first, or the lines of kgrec recommend --include-seen --out) on the split "
        "that --data, --config "
        "and --set give, with the protocol and metrics `kgrec eval` uses for kgrec's runs: the user's training "
        "items (and valid items, on test) are left out of the list before it is cut at K, a user without a line "
        "counts as an empty list. Train the other tool on `kgrec data split`'s files. With --baselines, "
        "most-popular and valid-tuned EASE on the same split beside it. Example: kgrec eval-lists recs.jsonl "
        "--data splits/ml-100k --baselines",
    )
    p.add_argument("lists", type=Path, help="JSON-lines file of ranked lists, one per user")
    split_arguments(p)
    p.add_argument("--part", choices=("test", "valid"), default="test", help="the part the lists are scored on (default test)")
    p.add_argument("--baselines", action="store_true", help="also most-popular and valid-tuned EASE on the same split")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_eval_lists)

    p = commands.add_parser(
        "compare",
        help="compare finished runs side by side",
        description=(
            "Read each run folder's config.yaml and metrics.json (nothing is retrained or re-evaluated) and "
            "print one row per run, best first on a validation metric: the config fields whose values differ "
            "between the runs, valid and test of that metric, the other summary metrics on test, epochs and "
            "seconds per epoch. A tuning folder (kgrec tune --out) stands for its runs. Example: "
            "kgrec compare runs/ml-100k runs/ple runs/tune"
        ),
    )
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folders written by `kgrec train`, or tuning folders")
    p.add_argument("--metric", help="validation metric to sort by (default: the runs' eval.monitor, else ndcg@10)")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="also draw valid and test of the metric per run (.png, or .svg, .pdf ... by its suffix)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(handler=_compare)

    p = commands.add_parser(
        "eval",
        help="re-evaluate a saved run",
        description="Load RUN_DIR's weights and evaluate them on the run's split (valid and test): full-ranking "
        "accuracy (recall, ndcg, hit, mrr, precision), what the top-K lists reach (coverage of the catalogue, "
        "mean popularity, Gini, long-tail share), rating error and like AUC; --json prints every metric. With "
        "--baselines, most-popular and EASE (L2 weight chosen on valid) are fitted on the same training part and "
        "ranked on the same test part, so the run can be judged against them; a run with a rating tower also gets "
        "the test RMSE and MAE of the mean rating and of user + item biases (shrinkage chosen on valid).",
    )
    p.add_argument("run", type=Path, help="run folder written by `kgrec train`")
    p.add_argument("--data", type=Path, help="dataset folder (default: the one the run was trained on)")
    p.add_argument("--baselines", action="store_true",
                   help="also most-popular and valid-tuned EASE on the run's split (EASE: seconds for thousands of "
                   "items on a CPU, minutes for tens of thousands; left out above 40,000), and for a rating tower "
                   "the mean rating and valid-tuned user + item biases")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_eval)


def _config_arguments(p: argparse.ArgumentParser) -> None:
    """The options a run's config comes from, shared by train and tune (see :func:`~kgrec.cli.data.data_overrides`)."""
    p.add_argument("--data", type=Path, help="dataset folder (default: the config's data.path, else fetch data.name, ml-100k by default)")
    p.add_argument("--graph", type=Path, help="graph built by `kgrec graph build` (default: built from the data)")
    p.add_argument("--config", type=Path,
                   help="YAML config; default: the dataset's scripts/configs/NAME.yaml, found by the name of the --data "
                   "folder (ml-100k.yaml adds the EASE teacher and the AutoRec rating term), else the built-in defaults; "
                   "'none': the built-in defaults")  # fmt: skip
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a config field (repeatable)")  # fmt: skip


def _train(args: argparse.Namespace) -> int:
    from kgrec.train import load_config
    from kgrec.utils.config import locate

    args.config = config_file(args)
    config = load_config(args.config, data_overrides(args))
    if args.print_config:
        from kgrec.train.config import config_yaml

        if config.data.path:  # a local dataset: show the config as train fits it to that data
            from kgrec.train import fit_defaults, load_data

            config, notes = fit_defaults(config, load_data(config))
            for note in notes:
                print(f"note: {note}", file=sys.stderr)
        print(config_yaml(config), end="")
        return 0
    if args.out is None:
        raise ConfigError("give --out RUN_DIR, the run folder to write (or --print-config to see the config)")
    from kgrec.train import train  # torch and the rest of the training stack: not for the config alone

    try:
        metrics = train(config, args.out, overwrite=args.overwrite)
    except ConfigError as error:  # a check against the data or the machine: where --config writes the key
        raise locate(error, args.config, data_overrides(args)) from None
    if metrics:
        print(_summary(metrics))
        print(f"run folder: {args.out}")
        # --baselines ranks at K = 10 and 20: no baseline scores new items (cold_item), and a catalogue
        # under 20 items is refused (kgrec.train.saved.evaluate_run): the hint would name a failing command
        ranked = any(key.startswith("ndcg@") for key in metrics.get("test", {}))  # retrieval, at any eval.ks
        if ranked and (config.data.split == "cold_item" or _run_items(args.out) < 20):
            print(f"next: kgrec recommend {args.out} --user USER_ID")
        elif ranked:
            print(f"next: kgrec eval {args.out} --baselines (against EASE on this split), "
                  f"kgrec recommend {args.out} --user USER_ID")  # fmt: skip
        elif "rmse" in metrics.get("test", {}):  # a rating tower without retrieval: predict only
            print(f"next: kgrec eval {args.out} --baselines (against user + item biases on this split), "
                  f"kgrec predict {args.out} --user USER_ID --items ITEM ...")  # fmt: skip
        elif "auc" in metrics.get("test", {}):  # a like tower alone (click-through): predict only
            print(f"next: kgrec predict {args.out} --user USER_ID --items ITEM ... (the like tower's click probabilities)")
    return 0


def _run_items(run: Path) -> int:
    """The catalogue size a finished run folder's manifest records (0 when it cannot be read)."""
    try:
        return int(json.loads((run / "manifest.json").read_text(encoding="utf-8"))["sizes"]["num_items"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _tune(args: argparse.Namespace) -> int:
    from kgrec.train.space import parse_space
    from kgrec.train.tune import format_result, parse_grid, tune
    from kgrec.utils.config import locate

    if not args.grid and not args.sample:
        raise ConfigError("give the fields to search: --grid section.field=V1,V2 (all combinations), or "
                          "--trials N with --sample section.field=loguniform(LOW,HIGH) and/or --grid")  # fmt: skip
    if args.search_seed is not None and args.trials is None:  # a full grid draws nothing: it went unsaid
        print("note: --search-seed seeds the random search (--trials N); a grid search trains every combination "
              "and draws nothing: not used", file=sys.stderr)  # fmt: skip
    grid = parse_grid(args.grid) if args.grid else {}
    space = parse_space(args.sample)
    args.config = config_file(args)
    try:
        result = tune(grid, args.out, args.config, data_overrides(args), space=space, trials=args.trials,
                      seed=args.search_seed or 0)  # fmt: skip
    except ConfigError as error:  # a run's check against the data or the machine: where --config writes the key
        searched = [f"{field}=" for field in (*grid, *space)]  # set by the search, not by the file
        raise locate(error, args.config, [*data_overrides(args), *searched]) from None
    print((args.out / "tune.json").read_text(encoding="utf-8") if args.json else format_result(result, args.out))
    return 0


def _compare(args: argparse.Namespace) -> int:
    import dataclasses

    from kgrec.train.compare import compare_runs, format_comparison, plot_comparison

    comparison = compare_runs(args.runs, args.metric)
    print(json.dumps(dataclasses.asdict(comparison), indent=2) if args.json else format_comparison(comparison))
    for note in comparison.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.plot is not None:
        print(f"plot: {plot_comparison(comparison, args.plot)}", file=sys.stderr)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from kgrec.train.saved import evaluate_run

    metrics = evaluate_run(args.run, data=args.data, baselines=args.baselines)
    print(json.dumps(metrics, indent=2) if args.json else _summary(metrics))
    if "baselines_left_out" in metrics:  # a cold-item split: evaluate_run tells, from the run it loaded
        print(f"note: {_cold_baselines_note('test')}", file=sys.stderr)
    if args.baselines and not args.json:
        if metrics.get("rating_baselines"):  # a rating tower on rated data; before the ranking table, which ends the output
            print(_rating_baselines_table(metrics["test"], metrics["rating_baselines"]))
        if "baselines" in metrics:  # a run with the retrieval tower
            print(_baselines_table(metrics["test"], metrics["baselines"]))
    return 0


def _all_new(dataset: Dataset, part: str) -> bool:
    """Whether every item of ``dataset``'s ``part`` is new to training (a cold-item split)."""
    from kgrec.eval import cold_candidates

    return cold_candidates(dataset, part) is not None


def _cold_baselines_note(part: str) -> str:
    """Why --baselines shows nothing on a cold-item split."""
    return (f"--baselines: every {part} item of this split is new to training (a cold-item split), and most-popular "
            "and EASE learn from training interactions alone, so they give every one of these items the same score: "
            "their rows would rank ties, not compare with the model, and are left out (to judge the cold-start "
            "pathways, compare runs trained with other inputs: kgrec compare)")  # fmt: skip


def _eval_lists(args: argparse.Namespace) -> int:
    from kgrec.eval.lists import evaluate_lists, read_lists

    if args.baselines and args.part == "valid":
        raise ConfigError("--baselines is for --part test: EASE's L2 weight is chosen on valid, so on valid it "
                          "would be flattered")  # fmt: skip
    from kgrec.baselines import with_reference_ks
    from kgrec.train import load_data

    config = split_config(args)  # load_split's, kept for its eval.ks
    dataset = load_data(config)
    # the config's cut-offs, as kgrec eval ranks at (they were 10 and 20 whatever eval.ks said); with --baselines
    # also 10 and 20, where the baselines are set beside the lists (as kgrec eval --baselines does)
    ks = with_reference_ks(config.eval.ks) if args.baselines else config.eval.ks
    metrics = evaluate_lists(dataset, read_lists(args.lists, dataset), args.part, ks)
    if not metrics["n_users"]:
        raise ConfigError(f"{dataset.name}, split {dataset.split}: no {args.part} user was seen in training, so "
                          "there is nothing to score")  # fmt: skip
    baselines = None
    cold = args.baselines and _all_new(dataset, args.part)
    if args.baselines and not cold:
        from kgrec.baselines import reference_metrics

        baselines = reference_metrics(dataset, args.part)
    if cold:
        print(f"note: {_cold_baselines_note(args.part)}", file=sys.stderr)
    if args.json:
        print(json.dumps({args.part: metrics, **({"baselines": baselines} if baselines else {})}, indent=2))
        return 0
    print(f"{args.lists}: lists for {metrics['n_lists']:,} of the {metrics['n_users']:,} {args.part} users "
          f"({dataset.name}, split {dataset.split}); {metrics['seen_listed']:,} listed items the users had "
          f"already{' in training' if args.part == 'valid' else ' (train or valid)'}, left out"
          + (f"; {metrics['outside_candidates']:,} listed items are not among the part's new items (a cold-item "
             "split ranks only those), left out" if metrics.get("outside_candidates") else ""))  # fmt: skip
    print(_summary_line(args.part, metrics))
    if metrics["unscored_lists"]:  # before, they went without a word
        print(f"note: {metrics['unscored_lists']:,} of the {metrics['n_lists'] + metrics['unscored_lists']:,} lists are "
              f"for users the {args.part} part does not score (no {args.part} items, or none in training): left out",
              file=sys.stderr)  # fmt: skip
    if metrics["n_lists"] and not metrics["part_listed"]:
        print(f"note: no list holds any of its user's {args.part} items, at any rank: lists that leave out every item "
              "a user interacted with (kgrec recommend without --include-seen) leave these out too", file=sys.stderr)
    n_lists = metrics["n_lists"]
    short = [f"{n:,} of {n_lists:,} at K={key.partition('@')[2]}" for key, n in metrics.items()
             if key.startswith("short_lists@") and n]  # fmt: skip
    if short:
        print(f"note: lists with fewer than K items once the left-out ones go: {', '.join(short)}; the missing ranks "
              "count as misses, so @K metrics are lower than full lists would score: give each user at least K "
              "items they have not seen", file=sys.stderr)  # fmt: skip
    if baselines:
        print(_baselines_table(metrics, baselines, name="these lists", part=args.part))
    return 0


def _baselines_table(
    run: dict[str, float], baselines: dict[str, dict[str, float]], name: str = "this run", part: str = "test"
) -> str:
    """The run's test ranking metrics beside the baselines', and the run's ratio to the best; the
    last columns describe the lists: the share of the catalogue they reach and of the long tail."""
    columns = ("ndcg@10", "recall@20", "recall@10", "hit@10", "mrr@10", "coverage@10", "tail@10")
    rows = {name: run, **baselines}
    width = max(len(name) for name in rows)
    lines = ["", f"{f'{part} (same split)':<{width}}" + "".join(f"{c:>12}" for c in columns)]
    lines += [f"{name:<{width}}" + "".join(f"{values[c]:>12.4f}" if c in values else f"{'-':>12}" for c in columns)
              for name, values in rows.items()]  # fmt: skip
    best = max(baselines, key=lambda name: baselines[name]["ndcg@10"])
    ratios = ", ".join(f"{c} x{run[c] / baselines[best][c]:.3f}" for c in ("ndcg@10", "recall@20") if baselines[best][c] > 0)
    lines.append(f"{name} / {best.split(' (')[0]}: {ratios}")
    return "\n".join(lines)


def _rating_baselines_table(run: dict[str, float], baselines: dict[str, dict[str, float]], part: str = "test") -> str:
    """The run's test RMSE and MAE beside the rating baselines', and the run's ratio to the best
    of them (the lowest RMSE)."""
    columns = ("rmse", "mae")
    rows = {"this run": run, **baselines}
    width = max(len(name) for name in rows)
    lines = ["", f"{f'{part} ratings (same split)':<{width}}" + "".join(f"{c:>12}" for c in columns)]
    lines += [f"{name:<{width}}" + "".join(f"{values[c]:>12.4f}" for c in columns) for name, values in rows.items()]
    best = min(baselines, key=lambda name: baselines[name]["rmse"])
    ratios = ", ".join(f"{c} x{run[c] / baselines[best][c]:.3f}" for c in columns if baselines[best][c] > 0)
    lines.append(f"this run / {best.split(' (')[0]}: {ratios} (lower is better)")
    return "\n".join(lines)


def _summary_line(part: str, values: dict) -> str:
    """One part's summary metrics on one line: ``test   ndcg@10 0.3311  recall@20 ...``."""
    from kgrec.train.config import SUMMARY_METRICS

    return f"{part:<5}  " + "  ".join(f"{k} {values[k]:.4f}" for k in SUMMARY_METRICS if k in values)


def _summary(metrics: dict) -> str:
    lines = [_summary_line(part, metrics.get(part, {})) for part in ("valid", "test")]
    if "train_seconds" in metrics:
        epochs = metrics["epochs"]
        lines.append(f"trained {epochs} epoch{'s' if epochs != 1 else ''} in {metrics['train_seconds']:.0f} s "
                     f"({metrics['seconds_per_epoch']:.1f} s/epoch, best epoch {metrics.get('best_epoch')})")  # fmt: skip
    return "\n".join(lines)
