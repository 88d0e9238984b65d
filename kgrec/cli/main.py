"""``kgrec`` entry point. Each command group lives in its own module with a ``register``.

Errors caused by input (:class:`~kgrec.errors.KgrecError`) print one line on stderr and exit
with status 2, and so does output that cannot be written (a full disk, ``> /dev/full``): the
environment's fault, not a bug; anything else is a bug and keeps its traceback. Output into a
pipe whose reader left stops quietly with status 141. A misspelt command, choice or option is
answered with the closest one (``maybe you meant 'recommend'?``), and standard output in an
encoding that lacks a character writes it as a JSON ``\\uXXXX`` escape instead of failing.
"""

from __future__ import annotations

import argparse
import codecs
import difflib
import errno
import os
import select
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from kgrec import __version__
from kgrec.cli import data as data_cli
from kgrec.cli import graph as graph_cli
from kgrec.cli import query as query_cli
from kgrec.cli import serve as serve_cli
from kgrec.cli import train as train_cli
from kgrec.errors import KgrecError, TrainingInterrupted
from kgrec.utils.interrupt import exit_if_abandoned
from kgrec.utils.ranks import launched_as_rank_zero

GROUPS = (data_cli, graph_cli, train_cli, query_cli, serve_cli)

#: ``errno`` values of a write the environment refuses: a full disk or quota, a file too large, a
#: read-only file system, an I/O error. Reported in one line, like bad input.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})

#: The error handler standard output gets when its encoding cannot write every character (a
#: Latin-1 locale, ``PYTHONIOENCODING=ascii``, a Windows code page): such a character is written
#: as the JSON escape ``\\uXXXX``, so that ``--json`` output stays valid JSON of the same strings
#: and text output stays readable (``Mis\\u00e9rables, Les``); it was a UnicodeEncodeError traceback.
ESCAPE_ERRORS = "kgrec-json-escape"


class Parser(argparse.ArgumentParser):
    """:class:`argparse.ArgumentParser` that answers a misspelt command, choice or option with the
    closest one, as Python 3.14's ``suggest_on_error`` does for choices. Subcommands' parsers are
    of this class too (``add_subparsers`` makes its parsers of the parent's class)."""

    def _check_value(self, action: argparse.Action, value: object) -> None:
        choices = action.choices
        if choices is not None and isinstance(value, str) and value not in choices:
            close = difflib.get_close_matches(value, [c for c in choices if isinstance(c, str)], n=1)
            if close:
                listed = ", ".join(map(repr, choices))
                raise argparse.ArgumentError(
                    action, f"invalid choice: {value!r}, maybe you meant {close[0]!r}? (choose from {listed})"
                )
        super()._check_value(action, value)

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        namespace, extras = super().parse_known_args(args, namespace)
        leaf = not any(isinstance(action, argparse._SubParsersAction) for action in self._actions)
        hints = self._option_hints(extras) if leaf else []
        if hints:  # said by the command that has the options, with its usage
            self.error(f"unrecognized arguments: {' '.join(extras)} ({'; '.join(hints)})")
        return namespace, extras

    def _option_hints(self, extras: list[str]) -> list[str]:
        """``maybe you meant --user?`` for each unknown ``--option`` close to one of this parser's;
        ``--k`` is told the short option ``-k`` it doubles the dash of."""
        known = [option for option in self._option_string_actions if option.startswith("--")]
        hints = []
        for extra in extras:
            if extra.startswith("--"):
                name = extra.split("=", 1)[0]
                close = [name[1:]] if name[1:] in self._option_string_actions else difflib.get_close_matches(name, known, n=1)
                hints += [f"{name}: maybe you meant {close[0]}?"] if close else []
        return hints


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="kgrec",
        description=(
            "Knowledge-graph and language-model enhanced multi-task recommender. "
            "Typical flow: `kgrec data fetch ml-100k`, `kgrec graph build`, `kgrec train`, "
            "then query the run."
        ),
    )
    parser.add_argument("--version", action="version", version=f"kgrec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(commands)
    return parser


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:  # fmt: skip
    """kgrec's warnings (a text cut at the token limit, a stale cache, ...) as one line on
    stderr, ``kgrec: warning: ...``, as errors are; Python's form gave the file, line and source
    line of kgrec's code. Others as Python shows them."""
    if category.__module__.startswith("kgrec."):
        print(f"kgrec: warning: {message}", file=file or sys.stderr)
    else:
        _PYTHON_SHOWWARNING(message, category, filename, lineno, file, line)


_PYTHON_SHOWWARNING = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> int:
    if warnings.showwarning is _PYTHON_SHOWWARNING:  # not while a caller records them (pytest.warns)
        warnings.showwarning = show_warning
    _escape_unencodable(sys.stdout)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a reader that left (`| head`) shows here, not as a traceback at exit
        return code
    except BrokenPipeError:  # `kgrec recommend ... | head -1`: the rest of the output has no reader
        if not _stdout_reader_gone():
            raise  # another pipe or socket broke: a bug to see, not a reader that left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's exit flush writes nowhere
        return 141  # 128 + SIGPIPE, what a shell reports for a command stopped by a closed pipe
    except KgrecError as error:
        print(f"kgrec: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # `kgrec recommend ... > /dev/full`, a disk that filled up
        if error.errno not in WRITE_ERRNOS:
            raise
        print(f"kgrec: error: {_write_failure(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        if _is_rank_zero(interrupt):  # DDP: Ctrl+C reaches every process; one line, every rank exits 130
            print(f"kgrec: {str(interrupt) or 'interrupted'}", file=sys.stderr)
        exit_if_abandoned(130)  # e.g. during EASE's Cholesky solve: exit now, not after it
        return 130


def _json_escape(error: UnicodeError) -> tuple[str, int]:
    """The :data:`ESCAPE_ERRORS` handler: characters the encoding lacks as ``\\uXXXX`` (UTF-16
    code units, as JSON writes them)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    units = error.object[error.start : error.end].encode("utf-16-be", "surrogatepass")
    return "".join(f"\\u{units[i] << 8 | units[i + 1]:04x}" for i in range(0, len(units), 2)), error.end


codecs.register_error(ESCAPE_ERRORS, _json_escape)


def _escape_unencodable(stream: object) -> None:
    """Give ``stream`` the :data:`ESCAPE_ERRORS` handler when its encoding is not a Unicode one
    and it would fail on a character it lacks (``errors='strict'``)."""
    encoding, errors = getattr(stream, "encoding", None), getattr(stream, "errors", None)
    if not encoding or errors != "strict" or not hasattr(stream, "reconfigure"):
        return
    try:
        if codecs.lookup(encoding).name.startswith("utf"):  # utf-8, utf-16 ...: every character
            return
    except LookupError:
        return
    stream.reconfigure(errors=ESCAPE_ERRORS)


def _write_failure(error: OSError) -> str:
    """What could not be written and why: standard output when it cannot take its pending output
    (which is then dropped, so that Python's exit flush does not fail again), else the file the
    error names."""
    reason = error.strerror or str(error)
    try:
        sys.stdout.flush()
    except OSError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return f"cannot write to standard output: {reason}"
    return f"cannot write {error.filename}: {reason}" if error.filename else f"cannot write: {reason}"


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end was closed (poll reports an error on it)."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout without a descriptor
        return False


def _is_rank_zero(interrupt: KeyboardInterrupt) -> bool:
    """Whether this process is global rank 0: as its trainer said when training was interrupted,
    else (Ctrl+C while loading data or building the graph) by every rank variable being 0 or unset."""
    if isinstance(interrupt, TrainingInterrupted):
        return interrupt.rank_zero
    return launched_as_rank_zero()


if __name__ == "__main__":
    sys.exit(main())
