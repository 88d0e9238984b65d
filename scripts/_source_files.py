"""Reading the published research files that ``scripts/prepare_*.py`` convert.

They are headerless delimited lines. A malformed line ends the script with ``file:line: what was
expected`` rather than a traceback, before anything is written.
"""

from pathlib import Path
from typing import NoReturn


def fail(path: Path, number: int, message: str) -> NoReturn:
    raise SystemExit(f"{path}:{number}: {message}")


def rows(path: Path, sep: str | None, n_fields: int | None, encoding: str = "utf-8") -> list[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank line of ``path``, split on ``sep`` (``None``: runs of
    whitespace); exits naming file:line when a line does not have ``n_fields`` fields (``None``:
    any number)."""
    found = []
    with open(path, encoding=encoding, newline="") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split(sep)
            if n_fields is not None and len(fields) != n_fields:
                between = repr(sep) if sep else "whitespace"
                fail(path, number, f"expected {n_fields} fields separated by {between}, found {len(fields)}")
            found.append((number, fields))
    return found
