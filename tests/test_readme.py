"""The README keeps up with the code: its in-page links lead to headings that exist, the
``kgrec`` and ``python scripts/...`` commands it shows parse, the calls of its Python snippets
bind to real signatures, and the config fields it sets and repository paths it names exist."""

import argparse
import ast
import contextlib
import functools
import importlib
import inspect
import io
import re
import runpy
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation but ``-`` and ``_`` dropped,
    spaces as ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_in_page_link_names_a_heading():
    text = README.read_text(encoding="utf-8")
    outside_code = re.sub(r"```.*?```", "", text, flags=re.S)
    anchors = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", outside_code, re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", outside_code)
    assert len(links) >= 20  # the contents list
    assert [link for link in links if link not in anchors] == []


def test_the_anchor_rule_on_headings_with_code_and_punctuation():
    assert github_anchor("On a GPU (`scripts/check_gpu.sh`)") == "on-a-gpu-scriptscheck_gpush"
    assert github_anchor("ml-100k, fetched offline-friendly") == "ml-100k-fetched-offline-friendly"


# ---------------------------------------------------------------- commands, fields and paths it names
def fenced_blocks(language: str) -> list[str]:
    """The README's fenced code blocks of ``language`` (indented ones, in lists, too, with the
    fence's indentation taken off)."""
    blocks, current, opened_as, indent = [], None, "", 0
    for line in README.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            if current is None:
                current, opened_as, indent = [], stripped[3:].strip(), len(line) - len(line.lstrip())
            else:
                if opened_as == language:
                    blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line[indent:])
    return blocks


def inline_code() -> list[str]:
    """The README's inline code spans outside fenced blocks, whitespace collapsed."""
    text = re.sub(r"^\s*```.*?^\s*```", "", README.read_text(encoding="utf-8"), flags=re.S | re.M)
    return [re.sub(r"\s+", " ", span) for span in re.findall(r"`([^`]+)`", text)]


def commands(program: str) -> list[str]:
    """Every command line of the bash blocks (``\\`` continuations joined) and inline code span
    that starts with ``program``; of the spans, those that pass an option (a bare ``kgrec
    eval`` names the command, it does not run it)."""
    lines = [line.removeprefix("$ ") for block in fenced_blocks("bash") for line in block.replace("\\\n", " ").splitlines()]
    spans = [span for span in inline_code() if " -" in span]
    return [c for c in lines + spans if c.startswith(program)]


def refusals(parser: argparse.ArgumentParser, command: str, skip: int = 1) -> set[str]:
    """What ``parser`` says against ``command`` (its first ``skip`` words are the program),
    with its optional parts left out and in; empty when both parse."""
    said = set()
    for arguments in argument_lists(command):
        with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
            try:
                parser.parse_args(arguments[skip - 1 :])
            except SystemExit as exit_:
                if exit_.code:
                    said.add(f"{command}: {err.getvalue().strip().splitlines()[-1]}")
    return said


def argument_lists(command: str) -> list[list[str]]:
    """The arguments of a documented command line: without its ``[optional parts]`` and with
    them (the first of ``a|b`` alternatives); ``...`` dropped, a redirection ends it."""
    bare, full, depth = [], [], 0
    for token in shlex.split(command, comments=True)[1:]:
        if token in (">", "&&", "2>&1"):  # (a quoted '|' is an argument: shlex cannot tell)
            break
        opens = token.startswith("[")
        inner = token[1:] if opens else token
        closes = depth + opens > 0 and inner.endswith("]") and "[" not in inner
        depth += opens
        core = inner[:-1] if closes else inner
        if depth:
            core = core.split("|")[0]
        if core != "...":
            full.append(core)
            if not depth:
                bare.append(core)
        depth -= closes
    return [bare, full]


def test_every_kgrec_command_the_readme_shows_parses():
    from kgrec.cli.main import build_parser

    shown = commands("kgrec ")
    assert len(shown) >= 40
    assert sorted(set().union(*(refusals(build_parser(), command) for command in shown))) == []


class ParserFound(Exception):
    pass


def script_parser(script: Path) -> argparse.ArgumentParser:
    """The argument parser of a ``scripts/`` file: the script runs as ``__main__`` up to its
    ``parse_args`` call, which hands the parser over instead of parsing (nothing after runs)."""

    def hand_over(parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise ParserFound(parser)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", hand_over)
        patch.syspath_prepend(str(script.parent))
        try:
            runpy.run_path(str(script), run_name="__main__")
        except ParserFound as found:
            return found.args[0]
    raise AssertionError(f"{script} parses no arguments")


def test_every_script_command_the_readme_shows_parses():
    shown = commands("python scripts/")
    assert len(shown) >= 40
    parsers = {script: script_parser(ROOT / script) for script in {shlex.split(c)[1] for c in shown}}
    assert sorted(set().union(*(refusals(parsers[shlex.split(c)[1]], c, skip=2) for c in shown))) == []


def test_the_argument_lists_of_a_documented_command():
    command = "kgrec index build runs/x [--kind auto|flat] [--link a.link --kg a.kg] --set model.tasks=[kg] ... > log"
    assert argument_lists(command) == [
        ["index", "build", "runs/x", "--set", "model.tasks=[kg]"],
        ["index", "build", "runs/x", "--kind", "auto", "--link", "a.link", "--kg", "a.kg", "--set", "model.tasks=[kg]"],
    ]


def test_every_config_field_the_readme_sets_exists():
    from kgrec.train import RunConfig
    from kgrec.train.config import plain_config

    text = re.sub(r"\s+", " ", README.read_text(encoding="utf-8"))
    fields = {match.strip("\"'") for match in re.findall(r"--set \"?'?([a-z_]+\.[a-z_0-9.]+)=", text)}
    assert len(fields) >= 40
    defaults = plain_config(RunConfig())

    def exists(path: str) -> bool:
        section, name = path.split(".", 1)
        return name in defaults.get(section, {})

    assert sorted(f for f in fields if not exists(f)) == []


def test_every_repository_path_the_readme_names_exists():
    text = README.read_text(encoding="utf-8")
    written = re.findall(r"(?<![\w/.~-])((?:scripts|graphs|kgrec|tests|notebooks|\.ci)/[\w./{},-]*[\w}])(?![\w*])", text)
    named = set()
    for path in written:  # brace lists as the shell expands them: bench-{a,b}.txt
        braces = re.search(r"\{([^}]*)\}", path)
        options = braces.group(1).split(",") if braces else [""]
        named |= {path[: braces.start()] + o + path[braces.end() :] if braces else path for o in options}
    placeholders = {p for p in named if re.search(r"[A-Z]{3,}|_$|/built/", p)}  # graphs/NAME.yaml, built graphs
    assert len(named - placeholders) >= 80
    assert sorted(p for p in named - placeholders if not (ROOT / p).exists()) == []


@dataclass(frozen=True)
class Instance:
    """A snippet variable of a known class (``rec = Recommender.open(...)``)."""

    cls: type


def resolve(node: ast.expr, names: dict[str, object]) -> object | None:
    """What a name, attribute or call of a README snippet refers to: imported names, and
    variables typed by the return annotation of the call that made them. Methods of an
    instance come bound (``self`` filled). ``None`` where the snippet does not say."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = resolve(node.value, names)
        if owner is None:
            return None
        where = owner.cls if isinstance(owner, Instance) else owner
        assert hasattr(where, node.attr), f"{ast.unparse(node)}: {where} has no {node.attr!r}"
        found = getattr(where, node.attr)
        plain = inspect.isfunction(inspect.getattr_static(where, node.attr))
        return functools.partial(found, None) if isinstance(owner, Instance) and plain else found
    if isinstance(node, ast.Call):
        called = resolve(node.func, names)
        if isinstance(called, type):
            return Instance(called)
        target = called.func if isinstance(called, functools.partial) else called
        returns = inspect.signature(target).return_annotation if callable(target) else None
        if isinstance(returns, str):  # postponed annotations: a plain class name of the callee's module
            returns = vars(sys.modules[target.__module__]).get(returns)
        return Instance(returns) if isinstance(returns, type) else None
    return None


def test_every_call_in_the_readme_python_snippets_names_a_real_function_with_those_arguments():
    """Imports run, attributes exist, and each call binds to the callee's signature (its
    positional count and keyword names), so a renamed method or argument breaks this test."""
    checked = []
    for block in fenced_blocks("python"):
        tree = ast.parse(block)
        names: dict[str, object] = {}
        for statement in tree.body:
            if isinstance(statement, ast.ImportFrom):
                module = importlib.import_module(statement.module)
                names |= {alias.asname or alias.name: getattr(module, alias.name) for alias in statement.names}
            elif isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
                names[statement.targets[0].id] = resolve(statement.value, names)
        for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
            callee = resolve(call.func, names)
            if callee is None:
                continue
            arguments = [None] * len(call.args)
            try:
                inspect.signature(callee).bind(*arguments, **{k.arg: None for k in call.keywords if k.arg})
            except TypeError as error:
                raise AssertionError(f"{ast.unparse(call)}: {error}") from None
            checked.append(ast.unparse(call.func))
    assert len(checked) >= 20, checked


def python_block_under(heading: str) -> str:
    """The first fenced python block after the README heading ``heading``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    block = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert block is not None, heading
    return block.group(1)


def test_the_from_python_block_runs_on_a_clicks_shop(tmp_path, monkeypatch, capsys):
    """The README's "From Python" block, as written, on clicks and items files like the ones it
    describes: import, train, evaluate with baselines, and each query answers."""
    import numpy as np

    rng = np.random.default_rng(0)
    categories = ["jazz", "rock", "pop", "folk", "classical"]
    items = ["item_id,title,description,category,tags"]
    for i in range(250):
        c = categories[i % 5]
        items.append(f"t{i:03d},Song {i},A {c} piece with piano for the evening,{c},{'calm' if i % 2 else 'loud'}|{c}")
    clicks = ["user_id,item_id,ts"]
    for u in range(100):
        liked = [i for i in range(250) if i % 5 == u % 5]  # each user clicks within one category, mostly
        for k, i in enumerate(rng.choice(liked, 22, replace=False).tolist() + rng.integers(0, 250, 3).tolist()):
            clicks.append(f"u{u:03d},t{i:03d},2024-03-{1 + k:02d}T12:00:00")
    (tmp_path / "items.csv").write_text("\n".join(items) + "\n")
    (tmp_path / "clicks.csv").write_text("\n".join(clicks) + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KGREC_HOME", str(tmp_path / "home"))
    code = python_block_under("### From Python")
    code = code.replace('"train.max_epochs=3"', '"train.max_epochs=3", "train.progress=false"')  # quiet, as written
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md (From Python)", "exec"), namespace)
    out = capsys.readouterr().out
    assert out.startswith("Dataset(music: 100 users, 250 items, train "), out[:300]
    assert "'most-popular'" in out and "EASE (lambda=" in out
    rec = namespace["rec"]
    jazz = rec.recommend("u000", k=5, where={"category": "jazz"})
    assert len(jazz) == 5 and all(rec.catalog.features["category"][rec.catalog.position(r.item_id)] == ["jazz"] for r in jazz)
    assert len(rec.similar("t040", k=3)) == 3 and len(rec.search("calm piano for the evening", k=3)) == 3
    assert len(rec.recommend_for_new_user(liked=["t040", "t216"], k=3)) == 3
    assert namespace["metrics"]["test"]["ndcg@10"] > 0
