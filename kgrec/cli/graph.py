"""``kgrec graph``: build a knowledge graph from a dataset and a recipe, inspect it, explain paths."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from kgrec.cli.data import writing_folder
from kgrec.data import SPLIT_STRATEGIES, Dataset, SplitConfig, load_dataset
from kgrec.errors import ConfigError
from kgrec.graph import KnowledgeGraph, build_graph, explain_paths, graph_stats, plot_degrees, resolve_recipe
from kgrec.graph.recipe import INTERACTED, check_relation_filters
from kgrec.utils.config import locate


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "graph",
        help="build and inspect knowledge graphs",
        description="Build a knowledge graph (KG triples + item attributes [+ users]) from a dataset and a "
        "recipe, print its statistics, or explain how two items are connected.",
    )
    sub = group.add_subparsers(dest="graph_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser(
        "build",
        help="build a graph from a dataset folder and a recipe",
        description="Join the dataset's KG triples to its items, turn item attributes into relations, "
        "optionally add users with their training interactions, and save the graph folder "
        "(manifest.json + graph.npz) atomically. See graphs/README.md for the recipe keys.",
    )
    p.add_argument(
        "--data", type=Path, required=True, metavar="DIR", help="dataset folder NAME/ holding NAME.inter ..."
    )
    p.add_argument(
        "--recipe",
        type=Path,
        default=None,
        metavar="FILE",
        help="recipe YAML, e.g. graphs/ml-100k.yaml (default: graphs/NAME.yaml for dataset NAME, in this "
        "folder, else kgrec's own, as `kgrec train` finds it; else the KG triples alone)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="graph folder to write (default graphs/built/RECIPE_NAME, or graphs/built/NAME without a recipe)",
    )
    p.add_argument(
        "--split",
        choices=SPLIT_STRATEGIES,
        default="ratio",
        help="how to split NAME.inter (default %(default)s); only user edges depend on it (they come from the "
        "training part)",
    )
    p.add_argument("--seed", type=int, default=SplitConfig.seed, help="split seed (default %(default)s)")
    p.add_argument(
        "--ratios",
        type=float,
        nargs=3,
        default=SplitConfig.ratios,
        metavar=("TRAIN", "VALID", "TEST"),
        help="train / valid / test shares of the ratio and global_temporal splits, as data.ratios "
        f"(default {' '.join(f'{r:g}' for r in SplitConfig.ratios)})",
    )
    p.add_argument("--cold-item-share", type=float, default=SplitConfig.cold_item_share, metavar="SHARE",
                   help="share of items the cold_item split holds out, as data.cold_item_share (default %(default)s)")  # fmt: skip
    p.set_defaults(handler=_build)

    p = sub.add_parser(
        "stats",
        help="print a graph's statistics",
        description="Relation counts, degree summary, weakly connected components and item coverage.",
    )
    p.add_argument("graph", type=Path, help="graph folder written by `kgrec graph build`")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="also draw a log-log degree histogram (.png, or .svg, .pdf ... by its suffix)"
    )
    p.set_defaults(handler=_stats)

    p = sub.add_parser(
        "explain",
        help="show the shortest relation paths between two items",
        description="Print up to N shortest paths between two items (raw item ids, as in the dataset files, or titles), "
        "e.g. `Star Wars (1977) -genre-> Sci-Fi <-genre- Return of the Jedi (1983)`; through content relations "
        "only (a graph with users: their interacted edges are left out).",
    )
    p.add_argument("graph", type=Path, help="graph folder written by `kgrec graph build`")
    p.add_argument("--from", dest="source", required=True, metavar="ITEM", help="raw id (or title) of the first item")
    p.add_argument("--to", dest="target", required=True, metavar="ITEM", help="raw id (or title) of the second item")
    p.add_argument("-n", type=int, default=3, help="how many paths at most, 1 or more (default %(default)s)")
    p.set_defaults(handler=_explain)


def _build(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    print(f"loading {args.data} ...", file=sys.stderr)
    dataset = load_dataset(args.data, split=_split_config(args))
    if note := _given_split_note(args, dataset):
        print(f"note: {note}", file=sys.stderr)
    recipe, source = resolve_recipe(dataset, args.recipe)
    print(f"recipe: {source}", file=sys.stderr)
    for note in check_relation_filters(dataset, recipe):
        print(f"note: {note}", file=sys.stderr)
    if not recipe.makes_relations:
        raise ConfigError(
            f"nothing to build a graph from (recipe: {source}); give --recipe FILE whose attributes name "
            "the item columns to turn into relations (graphs/README.md)"
        )
    out = args.out or Path("graphs") / "built" / (Path(args.recipe).stem if args.recipe else dataset.name)
    notes: list[str] = []
    try:
        graph = build_graph(dataset, recipe, progress=True, notes=notes)
    except ConfigError as error:  # one about a recipe key (min_degree) starts at its line in the file
        raise locate(error, source) if Path(source).is_file() else error from None
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    with writing_folder(out, "an earlier graph's"):
        out = graph.save(out)
    counts = graph.counts()
    print(
        f"{out}: {counts['nodes']} nodes ({counts['items']} items, {counts['entities']} entities, "
        f"{counts['users']} users), {counts['relations']} relations, {counts['triples']} triples "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return 0


def _split_config(args: argparse.Namespace) -> SplitConfig:
    """The split ``--split``, ``--seed``, ``--ratios`` and ``--cold-item-share`` ask for, checked as
    ``data.*`` is."""
    try:
        return SplitConfig(strategy=args.split, ratios=tuple(args.ratios), cold_item_share=args.cold_item_share, seed=args.seed)
    except ConfigError as error:
        option = {"ratios": "--ratios", "cold_item_share": "--cold-item-share"}.get(error.key or "")
        raise ConfigError(f"{option}: {error}" if option else str(error), key=error.key) from None


def _given_split_note(args: argparse.Namespace, dataset: Dataset) -> str | None:
    """What a folder holding its own split (``NAME.train/valid/test.inter``, used whatever the
    split asked for) leaves of the split options given: ``kgrec train`` notes it, ``graph build``
    had built the user edges from the given split without a word."""
    if dataset.split != "given" or args.split == "given":
        return None
    asked = [
        f"{option} {shown}"
        for option, value, default, shown in (
            ("--split", args.split, SplitConfig.strategy, args.split),
            ("--ratios", tuple(args.ratios), SplitConfig.ratios, " ".join(f"{r:g}" for r in args.ratios)),
            ("--cold-item-share", args.cold_item_share, SplitConfig.cold_item_share, f"{args.cold_item_share:g}"),
            ("--seed", args.seed, SplitConfig.seed, args.seed),
        )
        if value != default
    ]
    if not asked:
        return None
    name = dataset.name
    return (f"{name} holds its own split ({name}.train/valid/test.inter), used as it is: {', '.join(asked)} "
            f"do{'es' if len(asked) == 1 else ''} not apply")  # fmt: skip


def _stats(args: argparse.Namespace) -> int:
    graph = KnowledgeGraph.load(args.graph)
    stats = graph_stats(graph)
    if args.plot:
        plot_degrees(graph, args.plot)
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(_format_stats(stats))
    if args.plot:
        print(f"degree plot: {args.plot}", file=sys.stderr)
    return 0


def _format_stats(stats: dict) -> str:
    c = stats["counts"]
    lines = [
        f"graph         {stats['dataset']}",
        f"nodes         {c['nodes']} ({c['items']} items, {c['entities']} entities, {c['users']} users)",
        f"relations     {c['relations']}",
        f"triples       {c['triples']}",
        f"items covered {stats['items_covered']} ({100 * stats['items_covered_share']:.1f}% have a KG edge)",
        f"private       {100 * stats['items_with_private_entity_share']:.1f}% of covered items link to an entity no "
        f"other item links to (median {100 * stats['private_entity_share_median']:.0f}% of an item's "
        f"{stats['item_entities_median']:g} entities)",
        f"components    {stats['components']['count']} (largest {stats['components']['largest']} nodes)",
        f"isolated      {stats['isolated_nodes']} nodes",
        "",
        f"{'degree':<8}{'min':>6}{'median':>8}{'mean':>9}{'p90':>7}{'p99':>8}{'max':>7}",
    ]
    for kind, d in stats["degree"].items():
        lines.append(
            f"{kind:<8}{d['min']:>6}{d['median']:>8g}{d['mean']:>9.2f}{d['p90']:>7g}{d['p99']:>8.1f}{d['max']:>7}"
        )
    lines += ["", "triples per relation"]
    width = max((len(name) for name in stats["relations"]), default=0)
    lines += [f"  {name:<{width}}  {count:>9}" for name, count in stats["relations"].items()]
    return "\n".join(lines)


def _explain(args: argparse.Namespace) -> int:
    if args.n < 1:  # n <= 0 finds no path, which would read as "no path between them"
        raise ConfigError(f"-n must be a positive integer (the most paths to print), got {args.n}")
    graph = KnowledgeGraph.load(args.graph)
    paths = explain_paths(graph, args.source, args.target, n=args.n)
    source, target = graph.item_node(args.source), graph.item_node(args.target)
    if not paths:
        users = " (paths leave out the users' interacted edges)" if INTERACTED in set(graph.relation_names) else ""
        print(f"no path between {graph.names[source]} and {graph.names[target]}{users}")
        return 0
    for number, line in enumerate(paths, start=1):
        print(f"{number}. {line}")
    return 0
