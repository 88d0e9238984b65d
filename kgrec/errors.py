"""Typed errors. Each carries where the problem is (file:line:column) and what was expected.

The CLI prints ``str(error)`` on one line and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path


class KgrecError(Exception):
    """Base class for errors caused by the user's input rather than by a bug."""


class DataWarning(UserWarning):
    """Data read as its files allow, in a way a user may not expect (rows left out, say);
    ``kgrec`` prints it as one line, ``kgrec: warning: ...``."""


class DataError(KgrecError):
    """A data file is malformed or inconsistent.

    Args:
        message: what is wrong and what was expected.
        path: the file.
        line: 1-based line number in the file (the header is line 1).
        column: the column's name (``field:type`` header entry), when one column is at fault.
    """

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = str(self.path)
            if self.line is not None:
                where += f":{self.line}"
            if self.column is not None:
                where += f": column '{self.column}'"
            where += ": "
        elif self.column is not None:
            where = f"column '{self.column}': "
        return where + self.message


class GraphError(KgrecError):
    """A built graph is missing, corrupt, or does not match what loads it."""


class FetchError(KgrecError):
    """A dataset could not be downloaded or failed its checksum."""


class ConfigError(KgrecError):
    """A configuration file or override is invalid.

    Args:
        message: what is wrong and what was expected.
        key: the dotted key at fault (``model.dim``), when one is: a caller that read the key
            from a file can then say where (:func:`kgrec.utils.config.locate`).
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class DivergedError(ConfigError):
    """Training diverged (the model's scores or predictions turned NaN): a fault of the setting
    being trained (most often ``train.lr``), which ``kgrec tune`` records and skips, where any
    other :class:`ConfigError` names a config the user must fix."""


class RetrievalError(KgrecError):
    """A query, an index or a catalog change cannot be served: an unknown user or item, a bad
    ``k`` or filter, an index built from other vectors, a run without retrieval vectors."""


class NotFoundError(RetrievalError):
    """An id (user, item) that the run does not know; the HTTP service answers 404."""


class IndexOutOfDateError(RetrievalError):
    """The catalog changed but updating its index failed, so queries are refused until
    ``kgrec index build`` rebuilds it; the HTTP service answers 503."""


class PredictOnlyError(RetrievalError):
    """A query that needs the retrieval tower's vectors or their index (recommend, similar,
    new users, catalog changes, ``kgrec index build``; search of a run without text) asked of a recommender that
    answers predict only: a run trained without the retrieval tower, or one opened with
    ``predict_only=True``. The HTTP service answers 409."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped with Ctrl+C; the message says how to resume. A ``KeyboardInterrupt``,
    so code that handles Ctrl+C handles it; the CLI prints it and exits with status 130.

    ``rank_zero`` is the trainer's ``is_global_zero``: under DDP Ctrl+C reaches every process,
    and only global rank 0 should say so."""

    def __init__(self, message: str, rank_zero: bool = True) -> None:
        super().__init__(message)
        self.rank_zero = rank_zero
