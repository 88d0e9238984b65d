"""Queries on a trained run: ``kgrec index build``, ``recommend``, ``similar``, ``search``,
``predict``, ``add-items``, ``remove-items``. A thin layer over :class:`kgrec.retrieval.Recommender`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgrec.errors import RetrievalError

if TYPE_CHECKING:  # the query stack loads when a command runs, not when the parser is built
    from kgrec.retrieval import Recommender, Result

INDEX_KINDS = ("auto", "flat", "hnsw", "ivfpq")
INDEX_OPTIONS = {  # index kind -> the IndexConfig fields (``kgrec index build`` options) only it uses
    "hnsw": ("hnsw_m", "ef_construction", "ef_search"),
    "ivfpq": ("nlist", "nprobe", "pq_m", "pq_bits", "refine"),
}


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "index",
        help="build the nearest-neighbour index of a run",
        description="Build RUN_DIR/index: a FAISS index of the run's item vectors (retrieval tower), with a "
        "manifest the queries check. Query commands build a default one on first use.",
    )
    sub = p.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    b = sub.add_parser(
        "build",
        help="(re)build RUN_DIR/index",
        description="(Re)build RUN_DIR/index. auto: exact (flat) up to 100k items, HNSW up to 10M, else IVF-PQ.",
    )
    b.add_argument("run", type=Path, help="run folder written by `kgrec train`")
    b.add_argument("--kind", choices=INDEX_KINDS, default="auto", help="index kind (default: auto, by catalog size)")
    b.add_argument("--hnsw-m", type=int, help="HNSW links per node (default 32)")
    b.add_argument("--ef-construction", type=int, help="HNSW build candidate list (default 80)")
    b.add_argument("--ef-search", type=int, help="HNSW search candidate list (default 128)")
    b.add_argument("--nlist", type=int, help="IVF cells (default 4 sqrt(n))")
    b.add_argument("--nprobe", type=int, help="IVF cells scanned per query (default 16)")
    b.add_argument("--pq-m", type=int, help="PQ sub-vectors, must divide the dimension (default d/4)")
    b.add_argument("--pq-bits", type=int, help="bits per PQ code (default 8)")
    b.add_argument("--refine", type=int, help="re-score refine*k IVF-PQ candidates exactly (default 0: off; at most 1000)")
    b.add_argument("--data", type=Path, help="dataset folder, when it moved since training")
    b.set_defaults(handler=_index_build)

    p = commands.add_parser(
        "recommend",
        help="recommend items to a user",
        description="Items ranked for a user by the run's retrieval vectors, leaving out items the user already "
        "interacted with, each with an explanation (KG paths from the user's highly rated items, else shared "
        "attributes). For a user the model has not seen, give --liked items and/or --likes-text. Batch mode: "
        "--users-file FILE (or --all-users) --out results.jsonl.",
    )
    p.add_argument("run", type=Path, help="run folder written by `kgrec train`")
    who = p.add_argument_group("who (one of)")
    who.add_argument("--user", help="a raw user id known to the run")
    who.add_argument("--users-file", type=Path, help="file of raw user ids, one per line (batch mode)")
    who.add_argument("--all-users", action="store_true",
                     help="every user with a training interaction, in dataset order (batch mode)")  # fmt: skip
    who.add_argument("--liked", action="extend", nargs="+", default=[], metavar="ITEM",
                     help="items a new user likes, by id or title: --liked 50 181, --liked 'Star Wars (1977)'")  # fmt: skip
    who.add_argument("--likes-text", metavar="TEXT", help="a new user's interests, in words")
    p.add_argument("--out", type=Path, help="batch mode: write JSON lines here (default: stdout)")
    p.add_argument("--include-seen", action="store_true", help="do not leave out items the user interacted with")
    _query_options(p)
    p.set_defaults(handler=_recommend)

    p = commands.add_parser(
        "similar",
        help="items similar to an item",
        description="Items closest to ITEM in the run's item space (cosine of the retrieval vectors, centred on "
        "the trained items' mean), with KG paths between them. For what users go on to like after ITEM, "
        "`kgrec recommend RUN --liked ITEM` lists more of it (scripts/bench_similar.py). Batch mode (a "
        "related-items table): --items-file FILE (or --all-items) --out related.jsonl.",
    )
    p.add_argument("run", type=Path, help="run folder written by `kgrec train`")
    which = p.add_argument_group("which item (one of)")
    which.add_argument("--item", help="a raw item id, or the item's title ('Toy Story (1995)'; case, and a trailing '(1995)' naming one item, may be left out)")
    which.add_argument("--items-file", type=Path, help="file of raw item ids (or titles), one per line (batch mode)")
    which.add_argument("--all-items", action="store_true", help="every item of the catalog, in catalog order (batch mode)")
    p.add_argument("--out", type=Path, help="batch mode: write JSON lines here (default: stdout)")
    _query_options(p)
    p.set_defaults(handler=_similar)

    p = commands.add_parser(
        "search",
        help="items matching a free text",
        description="A text match: the text goes through the run's text encoder, and items are ranked by cosine "
        "with the encoder's vectors of their own text (title and columns, as the run's text template writes "
        "them). Needs a run trained with text.",
    )
    p.add_argument("run", type=Path, help="run folder written by `kgrec train`")
    p.add_argument("text", nargs="+", help='the words of the query, quoted or not: "animated film for children"')
    _query_options(p, batch=False)
    p.set_defaults(handler=_search)

    p = commands.add_parser(
        "predict",
        help="a user's predicted rating and like probability of given items",
        description="What each task tower says about a known user and the items given: the rating tower's "
        "predicted rating, the like tower's probability that the user likes the item, and the retrieval score "
        "`recommend` ranks by. For items the model trained on and items added since (kgrec add-items: scored from "
        "their text and graph); a tower the run lacks prints '-' (null in --json), "
        "so a run trained without the retrieval tower (model.tasks=[rating, like]) answers too. Opens no index. "
        "Batch mode (score a file of candidate or test pairs): --pairs FILE --out scores.jsonl.",
    )
    p.add_argument("run", type=Path, help="run folder written by `kgrec train`")
    what = p.add_argument_group("what (--user with --items, or --pairs)")
    what.add_argument("--user", help="a raw user id known to the run")
    what.add_argument("--items", action="extend", nargs="+", metavar="ITEM", help="raw item ids or titles")
    what.add_argument("--pairs", type=Path,
                      help="batch mode: a file of (user, item) pairs, one per line, two raw ids separated by a tab, "
                           "a comma or spaces; further fields (a rating, a time) are ignored and a header line is "
                           "skipped, so a CSV or atomic .inter file of pairs reads as it is")  # fmt: skip
    p.add_argument("--out", type=Path, help="batch mode: write JSON lines here (default: stdout)")
    p.add_argument("--json", action="store_true", help="print a JSON list of {item_id, title, rating, like, score}")
    p.add_argument("--no-progress", action="store_true", help="no progress bar in batch mode")
    p.add_argument("--data", type=Path, help="dataset folder, when it moved since training")
    p.set_defaults(handler=_predict)

    p = commands.add_parser(
        "add-items",
        help="add cold-start items to a run without retraining",
        description="Embed new items (no interactions) through the model's text and graph pathways, add them to "
        "the index and record them in RUN_DIR/catalog; `kgrec predict` scores them with the rating and like towers "
        "too (a run without the retrieval tower has no index: it adds them for predict alone). NEW.item has the "
        "dataset's item columns; NEW.link maps new items to KG entities; NEW.kg holds triples about them "
        "(relations the model knows).",
    )
    p.add_argument("run", type=Path, help="run folder written by `kgrec train`")
    p.add_argument("--items", type=Path, required=True, help="atomic .item file of the new items")
    p.add_argument("--link", type=Path, help="atomic .link file: item_id -> entity_id")
    p.add_argument("--kg", type=Path, help="atomic .kg file: head_id, relation_id, tail_id")
    p.add_argument("--pathways", nargs="+", choices=("text", "graph"), default=["text", "graph"],
                   help="the pathways that embed the new items: text, graph or both (default: both; a pathway "
                        "the model lacks is skipped; README: Cold-start items)")  # fmt: skip
    p.add_argument("--data", type=Path, help="dataset folder, when it moved since training")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_add_items)

    p = commands.add_parser(
        "remove-items",
        help="take items out of a run's index",
        description="Remove items from RUN_DIR's index and record it in RUN_DIR/catalog (queries stop returning them).",
    )
    p.add_argument("run", type=Path, help="run folder written by `kgrec train`")
    p.add_argument("items", nargs="+", metavar="ITEM", help="raw item ids or titles")
    p.add_argument("--data", type=Path, help="dataset folder, when it moved since training")
    p.set_defaults(handler=_remove_items)


def _query_options(p: argparse.ArgumentParser, batch: bool = True) -> None:
    """The options recommend, similar and search share; ``--no-progress`` where there is a batch mode."""
    p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--json", action="store_true", help="print a JSON list of {item_id, title, score, explanation}")
    p.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE",
                   help="keep items whose column equals VALUE (token_seq columns: contains it); COLUMN!=VALUE "
                        "drops them; repeatable, all must hold")  # fmt: skip
    p.add_argument("--exclude", action="extend", nargs="+", default=[], metavar="ITEM", help="item ids (or titles) to leave out")
    p.add_argument("--no-explain", action="store_true", help="skip explanations (faster batches)")
    if batch:  # search has no batch mode, so no progress bar: it took the option and ignored it
        p.add_argument("--no-progress", action="store_true", help="no progress bar in batch mode")
    p.add_argument("--data", type=Path, help="dataset folder, when it moved since training")


def _open(args: argparse.Namespace, index: Any = None, predict_only: bool = False):
    from kgrec.retrieval import Recommender

    return Recommender.open(args.run, data=args.data, index=index, predict_only=predict_only)


def _check_k(k: int) -> None:
    if k < 1:
        raise RetrievalError(f"-k must be a positive integer, got {k}")


def _print(results: list[Result], as_json: bool, rec: Recommender | None = None, where: list[str] | None = None) -> None:
    """Results as text or JSON; an empty answer says which ``--where`` filter left nothing (on
    stderr beside JSON's ``[]``, so that the output stays JSON)."""
    if not results:
        reasons = rec.catalog.unmatched_filters(where) if rec is not None and where else []
        print("no items qualify" + (": " + "; ".join(reasons) if reasons else ""), file=sys.stderr if as_json else None)
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
        return
    for rank, r in enumerate(results, 1):
        print(f"{rank:>3}. {r.title}  [{r.item_id}]  score {r.score:.4f}")
        if r.explanation is not None:
            print(f"     why: {r.explanation.text}")


def _index_build(args: argparse.Namespace) -> int:
    from kgrec.retrieval import IndexConfig, Recommender

    given = {name: getattr(args, name) for kinds in INDEX_OPTIONS.values() for name in kinds if getattr(args, name) is not None}
    config = IndexConfig(kind=args.kind, **given)
    rec = Recommender.open(args.run, data=args.data, index=config, rebuild=True)
    index = rec.index
    print(
        f"built {index.kind} index of {index.count} items (d={index.dim}) in {index.build_seconds:.2f} s, "
        f"{index.memory_bytes() / 2**20:.2f} MiB: {rec.index_dir}"
    )
    for kind, names in INDEX_OPTIONS.items():  # options the built kind has no use for: said, not silently dropped
        unused = [f"--{name.replace('_', '-')}" for name in names if name in given and index.kind != kind]
        if unused:
            why = f" (auto picks the kind by catalog size; --kind {kind} asks for one)" if args.kind == "auto" else ""
            print(f"note: {', '.join(unused)} set{'s' if len(unused) == 1 else ''} up {kind} indexes, and this index "
                  f"is {index.kind}{why}: not used", file=sys.stderr)  # fmt: skip
    for name in ("nlist", "pq_bits"):  # an asked value lowered for a small catalog (IndexConfig.resolved)
        asked, used = getattr(args, name), getattr(index.config, name)
        if index.kind == "ivfpq" and asked is not None and used != asked:
            print(f"note: --{name.replace('_', '-')} {asked} lowered to {used} for {index.count} items: k-means "
                  f"needs about 39 training vectors per centroid", file=sys.stderr)  # fmt: skip
    return 0


def _recommend(args: argparse.Namespace) -> int:
    _check_k(args.k)
    batch = args.users_file is not None or args.all_users
    modes = sum(bool(x) for x in (args.user is not None, args.users_file is not None, args.all_users,
                                  args.liked or args.likes_text is not None))  # fmt: skip
    if modes != 1:
        raise RetrievalError("give exactly one of --user U, --users-file FILE, --all-users, or --liked ITEM / "
                             "--likes-text TEXT")  # fmt: skip
    if args.likes_text is not None and not args.likes_text.strip():
        raise RetrievalError("--likes-text is empty: describe the user's interests in a few words")
    if args.out is not None and not batch:
        raise RetrievalError("--out writes the results of batch mode: give --users-file or --all-users too")
    if args.json and batch:
        raise RetrievalError("batch mode always writes JSON lines: leave out --json")
    if args.include_seen and args.user is None and not batch:
        raise RetrievalError("--include-seen is for known users: a new user (--liked / --likes-text) has seen nothing")
    if batch:
        _check_out(args.out, ("--users-file", args.users_file))
        return _recommend_batch(args)
    rec = _open(args)
    explain = not args.no_explain
    if args.user is not None:
        results = rec.recommend(args.user, args.k, exclude_seen=not args.include_seen, where=args.where,
                                exclude=args.exclude, explain=explain)  # fmt: skip
    else:
        results = rec.recommend_for_new_user(args.liked, args.likes_text, args.k, where=args.where,
                                             exclude=args.exclude, explain=explain)  # fmt: skip
    _print(results, args.json, rec, args.where)
    return 0


def _recommend_batch(args: argparse.Namespace) -> int:
    if args.all_users:
        rec = _open(args)
        users = rec.trained_users()
    else:
        lines = _ids_file_lines(args.users_file, "user")
        rec = _open(args)
        _check_ids(args.users_file, lines, rec.user_index)
        users = [user for _, user in lines]
    results = rec.iter_recommend(users, args.k, exclude_seen=not args.include_seen, where=args.where,
                                 exclude=args.exclude, explain=not args.no_explain)  # fmt: skip
    _note_unmatched(rec, args.where)
    return _write_batch("user", users, results, args.out, args.no_progress, "recommending")


def _note_unmatched(rec: Recommender, where: list[str]) -> None:
    """In batch mode, say on stderr which ``--where`` filter leaves no item (every line's results
    will be empty), as a single query's answer says it."""
    reasons = rec.catalog.unmatched_filters(where) if where else []
    if reasons:
        print(f"note: no items qualify: {'; '.join(reasons)}; every result list is empty", file=sys.stderr)


def _write_batch(
    key: str, ids: list[str], results: Iterable[list[Result]], out: Path | None, no_progress: bool, desc: str
) -> int:
    """One JSON line ``{key: id, "results": [...]}`` per id, to ``out`` (atomically) or stdout."""
    lines = ([{key: query, "results": [r.to_dict() for r in found]}] for query, found in zip(ids, results, strict=True))
    return _write_json_lines(lines, len(ids), key, out, no_progress, desc)


def _write_json_lines(
    batches: Iterable[list[dict]], total: int, unit: str, out: Path | None, no_progress: bool, desc: str
) -> int:
    """Each batch's records as JSON lines to ``out`` (atomically) or stdout, with a progress bar
    over the ``total`` records, and a last line on stderr saying where they went."""
    from tqdm.auto import tqdm

    from kgrec.utils.io import atomic_open

    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=no_progress)

    def write(handle: Any) -> None:
        for batch in batches:
            for record in batch:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            bar.update(len(batch))

    with bar:
        if out is None:
            write(sys.stdout)
        elif _not_a_file(out):  # /dev/null, /dev/stdout, a FIFO (`--out >(gzip > x.gz)`): written, never replaced
            try:
                with open(out, "w", encoding="utf-8") as handle:
                    write(handle)
            except OSError as error:
                raise RetrievalError(f"--out {out}: cannot write it ({error.strerror or error})") from None
        else:
            try:
                with atomic_open(out, "w", encoding="utf-8") as handle:
                    write(handle)
            except OSError as error:  # a folder, a place no file can be made (/proc), a full disk
                raise RetrievalError(_cannot_write(out, error)) from None
    if out is not None:
        print(f"{total} {unit}{'' if total == 1 else 's'} -> {out}", file=sys.stderr)  # 1 pair, not 1 pairs
    return 0


def _check_out(out: Path | None, source: tuple[str, Path | None] = ("", None)) -> None:
    """Refuse, before any work, an ``--out`` that cannot be written: a folder, a path below a
    file, a folder where no file can be made (``/proc``, no permission, a read-only disk): a
    temporary file is made and removed in its nearest existing folder; and the batch's own
    input file ``source`` (``("--users-file", path)``), which writing would replace. A disk
    that fills up shows when it is written."""
    if out is None:
        return
    if out.is_dir():
        raise RetrievalError(f"--out {out} is a folder; give the path of a file to write, e.g. {out / 'results.jsonl'}")
    option, read = source
    if read is not None and out.is_file() and read.is_file() and out.samefile(read):
        raise RetrievalError(f"--out {out} is the {option} itself: writing the results would replace the ids "
                             f"it holds; give another file, e.g. {out.with_name('results.jsonl')}")  # fmt: skip
    if _not_a_file(out):  # written as it is (no temporary file beside it): it must take writes
        if not os.access(out, os.W_OK):
            raise RetrievalError(f"--out {out}: cannot write to it (Permission denied)")
        return
    folder = next((p for p in out.absolute().parents if p.exists()), Path("/"))
    if not folder.is_dir():
        raise RetrievalError(f"--out {out}: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".kgrec-probe.", dir=folder)
    except OSError as error:
        raise RetrievalError(f"--out {out}: cannot create a file in {folder} ({error.strerror or error})") from None
    os.close(fd)
    os.unlink(probe)


def _not_a_file(path: Path) -> bool:
    """Whether ``path`` is there but neither a regular file nor a folder: a device (``/dev/null``)
    or a pipe (``/dev/stdout`` into ``| gzip``, a FIFO), which an atomic write, renaming a
    temporary file onto it, would replace by a file (or fail on, after all the work)."""
    return path.exists() and not path.is_file() and not path.is_dir()


def _cannot_write(out: Path, error: OSError) -> str:
    """One line for an ``--out`` that could not be written (``error`` may name a temporary file)."""
    return f"--out {out}: cannot write it ({error.strerror or error}); nothing was written"


def _ids_file_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """``(line number, id)`` of a file of ``what`` ids: one per line; blank and ``#`` lines skipped."""
    if path.is_dir():
        raise RetrievalError(f"{path} is a folder: give the {what}s file (one per line)")
    if not path.exists():  # a pipe (`--users-file <(cut -f1 test.inter)`, /dev/stdin) is read as a file
        raise RetrievalError(f"{path}: {what}s file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the first id
    except UnicodeDecodeError as error:
        raise RetrievalError(f"{path}: not valid UTF-8 ({error.reason})") from None
    lines = [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise RetrievalError(f"{path}: no {what} ids (expected one per line)")
    return lines


def _check_ids(path: Path, lines: list[tuple[int, str]], lookup: Callable[[str], int]) -> list[int]:
    """Every id of a batch file looked up before any work (the indices ``lookup`` gives); an
    unknown (or removed) one is reported at its line."""
    found = []
    for number, query in lines:
        try:
            found.append(lookup(query))
        except RetrievalError as error:
            raise type(error)(f"{path}:{number}: {error}") from None
    return found


def _similar(args: argparse.Namespace) -> int:
    _check_k(args.k)
    if sum(bool(x) for x in (args.item is not None, args.items_file is not None, args.all_items)) != 1:
        raise RetrievalError("give exactly one of --item ITEM, --items-file FILE or --all-items")
    batch = args.item is None
    if args.out is not None and not batch:
        raise RetrievalError("--out writes the results of batch mode: give --items-file or --all-items too")
    if args.json and batch:
        raise RetrievalError("batch mode always writes JSON lines: leave out --json")
    options = {"where": args.where, "exclude": args.exclude, "explain": not args.no_explain}
    if not batch:
        rec = _open(args)
        _print(rec.similar(args.item, args.k, **options), args.json, rec, args.where)
        return 0
    _check_out(args.out, ("--items-file", args.items_file))
    lines = _ids_file_lines(args.items_file, "item") if args.items_file is not None else []
    rec = _open(args)
    if args.all_items:
        items = [rec.catalog.tokens[p] for p in rec.catalog.active_ids()]
    else:
        items = [rec.catalog.tokens[p] for p in _check_ids(args.items_file, lines, rec.catalog.position)]  # titles -> ids
    results = rec.iter_similar(items, args.k, **options)
    _note_unmatched(rec, args.where)
    return _write_batch("item", items, results, args.out, args.no_progress, "similar items")


def _search(args: argparse.Namespace) -> int:
    _check_k(args.k)
    text = " ".join(args.text)
    if not text.strip():
        raise RetrievalError('the query text is empty: give some words, e.g. "animated film for children"')
    rec = _open(args)
    _print(rec.search(text, args.k, where=args.where, exclude=args.exclude, explain=not args.no_explain), args.json, rec, args.where)
    return 0


def _predict(args: argparse.Namespace) -> int:
    if (args.pairs is None) == (args.user is None) or (args.user is None) != (args.items is None):
        raise RetrievalError("give --user U with --items ITEM ..., or --pairs FILE")
    if args.pairs is not None:
        if args.json:
            raise RetrievalError("batch mode always writes JSON lines: leave out --json")
        _check_out(args.out, ("--pairs", args.pairs))
        return _predict_pairs(args)
    if args.out is not None:
        raise RetrievalError("--out writes the results of batch mode: give --pairs FILE instead of --user and --items")
    predictions = _open(args, predict_only=True).predict(args.user, args.items)  # no index read, built or saved
    if args.json:
        print(json.dumps([p.to_dict() for p in predictions], indent=2, ensure_ascii=False))
        return 0

    def shown(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    for p in predictions:
        print(f"{p.title}  [{p.item_id}]  rating {shown(p.rating, 2)}  like {shown(p.like, 2)}  score {shown(p.score, 4)}")
    return 0


def _predict_pairs(args: argparse.Namespace) -> int:
    """``kgrec predict --pairs``: one JSON line ``{"user": ..., "item_id": ..., "title": ...,
    "rating": ..., "like": ..., "score": ...}`` per pair, in the file's order, a batch of
    :data:`~kgrec.retrieval.predict.PAIR_BATCH` pairs at a time (memory stays bounded)."""
    from kgrec.retrieval.predict import PAIR_BATCH

    lines = _ids_file_lines(args.pairs, "pair")
    rec = _open(args, predict_only=True)
    users, items = _pair_ids(args.pairs, lines, rec)

    def batches() -> Iterator[list[dict]]:
        for start in range(0, len(users), PAIR_BATCH):
            batch = users[start : start + PAIR_BATCH]
            predictions = rec.predict_pairs(batch, items[start : start + PAIR_BATCH])
            yield [{"user": user, **p.to_dict()} for user, p in zip(batch, predictions, strict=True)]

    return _write_json_lines(batches(), len(users), "pair", args.out, args.no_progress, "predicting")


def _pair_ids(path: Path, lines: list[tuple[int, str]], rec: Recommender) -> tuple[list[str], list[str]]:
    """The users and items of a pairs file, each looked up before any work (an unknown or
    added one the towers cannot score is reported at its line). Fields are split at tabs, else commas,
    else spaces; a first line naming no known user and no item the towers score is a header, skipped
    with a note."""
    import csv

    users, items = [], []
    for index, (number, line) in enumerate(lines):
        sep = "\t" if "\t" in line else "," if "," in line else None
        fields = next(csv.reader([line], delimiter=sep)) if sep else line.split()
        if len(fields) < 2:
            raise RetrievalError(f"{path}:{number}: '{line}': expected a user id and an item id, separated by a tab, "
                                 "a comma or spaces")  # fmt: skip
        user, item = fields[0].strip(), fields[1].strip()
        try:
            rec.user_index(user)
        except RetrievalError as error:
            if index == 0 and not _is_scored_item(rec, item) and len(lines) > 1:
                print(f"note: {path}:{number}: '{line}' read as a header (it names no user or item of the run)",
                      file=sys.stderr)  # fmt: skip
                continue
            raise type(error)(f"{path}:{number}: {error}") from None
        try:
            items.append(rec.catalog.tokens[rec.scored_item(item)])  # a title -> its id
        except RetrievalError as error:
            raise type(error)(f"{path}:{number}: {error}") from None
        users.append(user)
    return users, items


def _is_scored_item(rec: Recommender, item: str) -> bool:
    try:
        rec.scored_item(item)
    except RetrievalError:
        return False
    return True


def _add_items(args: argparse.Namespace) -> int:
    rec = _open(args)
    added = rec.add_items(args.items, args.link, args.kg, progress=False, pathways=args.pathways)
    if args.json:
        ids = set(added)  # once: per row, 20,000 items took 34 s
        keys = rec.run.graph.keys if rec.run.graph is not None else None  # an anchor by its raw id, as paths name nodes
        rows = [
            {"item_id": a.item_id, "title": a.title, "via": list(a.via),
             "anchor": None if a.anchor is None or keys is None else str(keys[a.anchor])}
            for a in rec.catalog.added
            if a.item_id in ids
        ]  # fmt: skip
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        where = f"index {rec.index.kind}" if rec.index is not None else "no index: scored by kgrec predict"
        print(f"added {_items(len(added))} to {rec.path} (catalog: {_items(rec.catalog.n_active)}; {where})")
    for note in added.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _remove_items(args: argparse.Namespace) -> int:
    rec = _open(args)
    removed = rec.remove_items(args.items)
    print(f"removed {_items(len(removed))} from {rec.path} (catalog: {_items(rec.catalog.n_active)})")
    return 0


def _items(count: int) -> str:
    """``1 item``, ``3 items``."""
    return f"{count} item{'' if count == 1 else 's'}"
