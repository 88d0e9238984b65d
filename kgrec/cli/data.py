"""``kgrec data``: fetch, import and inspect datasets."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from kgrec.data import SPLIT_STRATEGIES, Dataset, SplitConfig, fetch, load_dataset
from kgrec.data.download import DATASETS
from kgrec.data.importer import TIME_UNITS, ImportSpec, import_dataset, split_columns
from kgrec.data.info import dataset_info, format_info
from kgrec.errors import DataError, KgrecError
from kgrec.utils.config import yaml_text
from kgrec.utils.io import file_above

if TYPE_CHECKING:
    from kgrec.train import RunConfig


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("data", help="fetch, import and inspect datasets")
    sub = group.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser(
        "fetch",
        help="download a public dataset (ml-100k with its Freebase KG)",
        description="Download a dataset in RecBole's atomic format. ml-100k comes from the recbole==1.2.1 "
        "wheel (fetched with pip, checked by sha256, never installed). A second call does no network work.",
    )
    p.add_argument("name", choices=DATASETS)
    p.add_argument("--dir", type=Path, default=None, help="parent folder (default $KGREC_HOME/datasets)")
    p.set_defaults(handler=_fetch)

    p = sub.add_parser(
        "import",
        help="turn your own CSV files into a dataset folder",
        description="Convert CSV/TSV files (interactions, optional items, KG triples and item->entity links) "
        "into RecBole atomic files under OUT (the folder's name is the dataset's name).",
    )
    p.add_argument("--interactions", type=Path, required=True, help="CSV of user-item interactions")
    p.add_argument("--items", type=Path, help="CSV of item attributes; --text-cols / --seq-cols choose its columns")
    p.add_argument("--kg", type=Path, help="CSV of KG triples (head, relation, tail); --links joins them to the items, "
                   "else each item is linked to the KG entity of the same id (a KG written in the item ids)")
    p.add_argument("--links", type=Path, help="CSV linking items to KG entities (item_id, entity_id; --link-item-col, "
                   "--entity-col name others); needs --kg")
    p.add_argument("--out", type=Path, required=True, help="output folder DIR/NAME")
    p.add_argument("--user-col", default="user_id", help="user id column (default user_id)")
    p.add_argument("--item-col", default="item_id", help="item id column of the interactions and items files (default item_id)")
    p.add_argument("--rating-col", help="rating column (numbers), optional")
    p.add_argument("--label-col", help="click label column, optional: 1 a click (an interaction), 0 an impression "
                   "without one (kept apart: the like tower's negatives and its AUC's)")
    p.add_argument("--time-col", help="time column, optional: Unix seconds (or --time-unit ms, us, ns) or ISO 8601 "
                   "dates and times (2020-01-31, 2020-01-31T12:30:00, 2020-01-31 12:30:00+02:00; UTC when no offset "
                   "is given), written as Unix seconds")
    p.add_argument("--time-unit", choices=tuple(TIME_UNITS), default="s",
                   help="what a numeric --time-col counts: seconds (default), milli-, micro- or nanoseconds since 1970; "
                        "written as seconds (ISO dates are read as dates)")  # fmt: skip
    p.add_argument("--text-cols", default="", help="comma-separated item text columns of --items, e.g. title (written "
                   "lower case, '_' for other characters: 'Movie Title' as movie_title, the name templates use; default none)")
    p.add_argument("--seq-cols", default="", help="comma-separated multi-valued or attribute item columns of --items: "
                   "values split on --seq-sep (genres 'Action|Comedy') or one short value that items share (a category, "
                   "a brand; default none)")
    p.add_argument("--seq-sep", default="|", help="separator inside multi-valued columns (default |)")
    p.add_argument("--head-col", default="head", help="KG head column (default head)")
    p.add_argument("--relation-col", default="relation", help="KG relation column (default relation)")
    p.add_argument("--tail-col", default="tail", help="KG tail column (default tail)")
    p.add_argument("--link-item-col", default="item_id", help="item id column of the links file (default item_id)")
    p.add_argument("--entity-col", default="entity_id", help="entity id column of the links file (default entity_id)")
    p.add_argument("--sep", default=None, help="field separator (default: tab for .tsv, else comma); several characters, "
                   "such as MovieLens-1M's '::', split each line with no quoting")
    p.set_defaults(handler=_import)

    p = sub.add_parser(
        "info",
        help="print dataset statistics",
        description="Users, items, interactions, density, rating histogram, KG size and item coverage.",
    )
    p.add_argument("dir", type=Path, help="dataset folder NAME/ holding NAME.inter ...")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--split", choices=SPLIT_STRATEGIES, default="ratio",
                   help="how to split NAME.inter for the train / valid / test counts (default %(default)s)")  # fmt: skip
    p.add_argument("--seed", type=int, default=SplitConfig.seed, help="split seed (default %(default)s)")
    p.set_defaults(handler=_info)

    p = sub.add_parser(
        "split",
        help="write the train/valid/test split as files other tools read",
        description="Write the train, valid and test parts that `kgrec train` with the same --data, --config "
        "and --set uses, as a dataset folder OUT/ named NAME: NAME.train.inter, NAME.valid.inter, NAME.test.inter "
        "(RecBole's benchmark files: benchmark_filename: [train, valid, test]) beside copies of the .item, .user, .kg "
        "and .link files, so that another tool trains and is evaluated on the same split. kgrec reads OUT back "
        "as the same split (--data OUT). Example: kgrec data split --config scripts/configs/ml-100k.yaml "
        "--out splits/ml-100k",
    )
    split_arguments(p)
    p.add_argument("--out", type=Path, required=True,
                   help="folder to write; its files are named after it, so keep the dataset's name (splits/ml-100k)")  # fmt: skip
    p.set_defaults(handler=_split)


def split_arguments(p: argparse.ArgumentParser) -> None:
    """``--data``, ``--config`` and ``--set``: the split ``kgrec train`` with the same options uses
    (:func:`load_split`); shared by ``data split`` and ``eval-lists``."""
    p.add_argument("--data", type=Path, help="dataset folder (default: the config's data.path, else fetch data.name, ml-100k by default)")
    p.add_argument("--config", type=Path, help="YAML config whose data section says how to split (default: the dataset's "
                   "config found by its name, scripts/configs/NAME.yaml, as kgrec train finds it; none: the built-in defaults)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="data.FIELD=VALUE",
                   help="override a config field, e.g. data.split=temporal (repeatable)")  # fmt: skip


def split_config(args: argparse.Namespace) -> RunConfig:
    """The config :func:`split_arguments`' options give: without ``--config``, the dataset's own,
    found by its name as ``kgrec train`` finds it (the built-in defaults had split a dataset whose
    ``scripts/configs/NAME.yaml`` asks for another split otherwise)."""
    from kgrec.train import load_config

    return load_config(config_file(args, say_defaults=False), data_overrides(args))


def load_split(args: argparse.Namespace) -> Dataset:
    """The dataset, split as :func:`split_config` says."""
    from kgrec.train import load_data

    return load_data(split_config(args))


def config_file(args: argparse.Namespace, say_defaults: bool = True) -> Path | None:
    """``--config``; without it the dataset's own config, found by its name and said on stderr
    (:func:`~kgrec.train.config.find_config_file`; the built-in defaults said too, unless not
    ``say_defaults``); ``None`` for ``--config none``. Shared by train, tune, data split and
    eval-lists."""
    from kgrec.train.config import find_config_file, found_config_line
    from kgrec.utils.ranks import launched_as_rank_zero

    if args.config is not None:
        return None if str(args.config) == "none" else args.config
    found = find_config_file(data_overrides(args))
    if (found is not None or say_defaults) and launched_as_rank_zero():  # DDP's other processes run the same command
        print(found_config_line(found), file=sys.stderr)
    return found


def data_overrides(args: argparse.Namespace) -> list[str]:
    """``--data`` (and ``--graph``, where a command has it) as overrides, before ``--set``'s; read
    as typed (:func:`~kgrec.utils.config.yaml_text`: a folder named ``null`` is that folder)."""
    overrides = list(args.overrides)
    if args.data is not None:
        overrides.insert(0, f"data.path={yaml_text(str(args.data))}")
    if getattr(args, "graph", None) is not None:
        overrides.insert(0, f"graph.path={yaml_text(str(args.graph))}")
    return overrides


@contextlib.contextmanager
def writing_folder(out: Path, earlier: str) -> Iterator[None]:
    """Run the block that writes the folder ``out`` (``--out``) with
    :func:`~kgrec.utils.io.atomic_dir`, which makes the folders above it and a temporary folder
    beside it: where none can be made (below a file, in ``/proc``, without the rights) say so in
    one line, where it was a traceback (``FileExistsError``). ``earlier`` is the folder the
    advice offers besides a new or empty one (``one an earlier split wrote``). Shared by
    ``data import``, ``data split`` and ``graph build``."""
    try:
        yield
    except (FileExistsError, NotADirectoryError, FileNotFoundError, PermissionError) as failure:
        cause = _folder_failure(out, failure)
        if cause is None:
            raise  # another file's, an input's: not the output folder's to say
        if (above := file_above(out)) is not None:
            raise KgrecError(f"{out}: {above} is a file, not a folder; give a new or empty folder, or {earlier}") from None
        raise KgrecError(f"{out}: cannot write the folder there ({cause}); give a folder where one can be made") from None


def _folder_failure(out: Path, failure: OSError) -> str | None:
    """Why the folder ``out`` could not be made, when ``failure`` is about that (``out``, a folder
    above it, or its temporary sibling ``.NAME.XXXX.tmp``): the reason, with the folder above
    it that could not be made; else None."""
    if failure.filename is None:
        return None
    failed, target = Path(os.fsdecode(failure.filename)).resolve(), Path(out).resolve()
    reason = failure.strerror or str(failure)
    if failed in target.parents:
        return f"{os.fsdecode(failure.filename)}: {reason}"
    temporary = failed.parent == target.parent and failed.name.startswith(".") and failed.name.endswith(".tmp")
    return reason if failed == target or temporary else None


def _split(args: argparse.Namespace) -> int:
    from kgrec.data.export import export_split

    dataset = load_split(args)
    with writing_folder(args.out, "one an earlier split wrote"):
        out = export_split(dataset, args.out)
    counts = " / ".join(f"{part} {len(getattr(dataset, part)):,}" for part in ("train", "valid", "test"))
    counts += " interactions"
    if negatives := dataset.negative_counts():  # written beside them with label 0
        counts += " and " + " / ".join(f"{n:,}" for n in negatives.values()) + " pairs labelled 0"
    print(f"wrote {out}: {counts} ({dataset.name}, split {dataset.split})")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    path = fetch(args.name, args.dir)
    print(path)
    return 0


def _import(args: argparse.Namespace) -> int:
    _check_import_options(args)
    spec = ImportSpec(
        interactions=args.interactions,
        out=args.out,
        items=args.items,
        kg=args.kg,
        links=args.links,
        user_col=args.user_col,
        item_col=args.item_col,
        rating_col=args.rating_col,
        label_col=args.label_col,
        time_col=args.time_col,
        text_cols=split_columns(args.text_cols),
        seq_cols=split_columns(args.seq_cols),
        seq_sep=args.seq_sep,
        head_col=args.head_col,
        relation_col=args.relation_col,
        tail_col=args.tail_col,
        link_item_col=args.link_item_col,
        entity_col=args.entity_col,
        sep=args.sep,
        time_unit=args.time_unit,
    )
    with writing_folder(args.out, "one an earlier import wrote"):
        dataset = import_dataset(spec)  # as loaded to check it: a large import is not read again to be counted
    negatives = sum(dataset.negative_counts().values())
    print(f"wrote {dataset.path}: {dataset.n_users:,} users, {dataset.n_items:,} items, "
          f"{len(dataset.interactions()):,} interactions" + (f", {negatives:,} pairs labelled 0" if negatives else ""))  # fmt: skip
    return 0


def _check_import_options(args: argparse.Namespace) -> None:
    """Refuse options that name what to import from a column or file not given: ``--text-cols``
    and ``--seq-cols`` without ``--items`` (the file they are read from), ``--time-unit`` without
    ``--time-col``. Each was dropped without a word, and the dataset written without the titles
    or the timestamps asked for."""
    for option, columns in (("--text-cols", args.text_cols), ("--seq-cols", args.seq_cols)):
        if split_columns(columns) and args.items is None:
            raise DataError(f"{option} {columns} needs --items: item columns are read from the item file "
                            "(--items FILE.csv), not from the interactions")  # fmt: skip
    if args.time_unit != "s" and args.time_col is None:
        raise DataError(f"--time-unit {args.time_unit} needs --time-col: it says what the numbers of the time "
                        "column count; name that column with --time-col")  # fmt: skip


def _info(args: argparse.Namespace) -> int:
    dataset = load_dataset(args.dir, SplitConfig(strategy=args.split, seed=args.seed))
    info = dataset_info(dataset)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0
