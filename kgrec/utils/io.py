"""Atomic file writes: write to a temporary file in the same folder, flush it to disk, then rename.

A crash, a power loss or a bad input never leaves a half-written file behind. Two processes
writing the same path at once are not serialised: the last rename wins.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from kgrec.errors import KgrecError
from kgrec.utils.names import some_names


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    ``suffix`` lets libraries that append an extension (``np.savez`` adds ``.npz``) write the
    temporary file under the name they expect.

    A symbolic link is written through (its target is replaced, the link kept) and a file
    rewritten keeps its permissions, as with a plain write; a new one gets the usual ones (the
    umask's), not ``mkstemp``'s 0600. Unlike a plain write, a read-only file is replaced too (the
    rename needs only the folder's permission) and stays read-only.
    """
    path = _behind_link(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _fsync(tmp_path)  # the data is on disk before the rename makes it visible (read while still ours: 0600)
        os.chmod(tmp_path, _mode_for(path, 0o666))
        os.replace(tmp_path, path)
        _fsync(path.parent)  # and so is the rename
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; rename it onto ``path`` when the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=2, sort_keys=False)
        handle.write("\n")


#: Image files :func:`write_figure` writes (matplotlib's formats, less its raw pixel dumps): a
#: folder's own plots, which go with it when the folder is replaced (a graph's degree plot).
IMAGE_SUFFIXES = frozenset({".png", ".svg", ".svgz", ".pdf", ".jpg", ".jpeg", ".eps", ".ps", ".pgf", ".tif", ".tiff",
                            ".webp", ".gif", ".avif"})  # fmt: skip


def file_above(path: str | Path) -> Path | None:
    """The first of the folders ``path`` sits in that is a file (no folder can be made there), or None."""
    return next((p for p in Path(path).parents if p.exists() and not p.is_dir()), None)


def write_figure(figure: Any, path: str | Path, dpi: float | None = None) -> Path:
    """Save a matplotlib figure at ``path``, atomically, in the format its suffix names
    (``.png``, ``.svg``, ``.pdf``, ``.jpg`` ...; PNG without a suffix); returns ``path``.

    Raises:
        KgrecError: ``path`` is a folder, or lies where no file can be made (below a file, in
            ``/proc``, without the rights), or its suffix names no format matplotlib writes.
    """
    path = Path(path)
    if path.is_dir():
        raise KgrecError(f"{path} is a folder: give the path of the image file to write, e.g. {path / 'plot.png'}")
    kind = path.suffix.lower().lstrip(".") or "png"
    formats = figure.canvas.get_supported_filetypes()
    if kind not in formats:
        raise KgrecError(
            f"{path}: matplotlib writes no '.{kind}' image; end the name with one of {', '.join('.' + f for f in formats)}"
        )
    try:
        with atomic_path(path, suffix=f".{kind}") as tmp:
            figure.savefig(tmp, format=kind, dpi=dpi)
    except (FileExistsError, NotADirectoryError, FileNotFoundError, PermissionError) as error:
        # no folder or file can be made there: a file where a folder is named, /proc, no rights
        raise KgrecError(f"{path}: cannot write the image there ({error.strerror or error})") from None
    return path


def replace_refusal(folder: str | Path, owned: Callable[[str], bool], writer: str) -> str | None:
    """Why ``writer`` must not replace ``folder`` through :func:`atomic_dir`, or None when it may.

    :func:`atomic_dir` replaces a folder as a whole, so a writer asked for a folder that holds
    anything it would not write itself (the user's own CSV files, a run, a ``.git``) refuses
    rather than delete it: its ``guard`` raises with this reason. ``owned(name)`` says whether
    an entry of ``folder`` is one the writer wrote; a missing or empty folder may always be
    replaced.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        return f"is a file; {writer} writes a folder"
    foreign = sorted(entry.name for entry in folder.iterdir() if not owned(entry.name)) if folder.is_dir() else []
    if not foreign:
        return None
    return f"holds {some_names(foreign)}, which {writer} would delete (it replaces the folder as a whole)"


def named_folder(path: str | Path) -> Path:
    """``path`` with a name of its own: ``data/x/..`` resolved to ``data`` (its name names a
    dataset, and :func:`atomic_dir` makes its temporary folder beside it, not inside it)."""
    path = Path(path)
    return path.resolve() if path.name in ("", "..") else path


@contextlib.contextmanager
def atomic_dir(path: str | Path, guard: Callable[[], None] | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` as a whole.
    ``path`` may not be the working folder or one above it (``--out .``): it would be deleted
    under the shell that runs the command.

    ``guard`` raises when ``path`` must not be replaced (:func:`replace_refusal`: it holds what
    the writer did not write); it runs before anything is written and again just before the
    swap, under the swap's lock, so a file put there meanwhile is not deleted either.

    A symbolic link to a folder is kept: the folder it points to is replaced, beside itself (on
    its own disk). A folder replaced keeps its permissions."""
    path = _behind_link(named_folder(path))
    here, target = Path.cwd().resolve(), path.resolve()
    if target == here or target in here.parents:  # '.', '..': the swap would delete it under the shell
        where = "the folder this command runs in" if target == here else f"a folder above the one this command runs in ({here})"
        raise KgrecError(f"{path}: {where}; kgrec replaces an output folder whole, which would leave your shell in "
                         "a deleted folder: name a new folder (e.g. --out data/NAME), or run from the folder above")  # fmt: skip
    if guard is not None:
        guard()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, _mode_for(path, 0o777))
        for folder, _, files in os.walk(tmp):
            for name in files:
                _fsync(Path(folder) / name)
            _fsync(Path(folder))
        with swap_lock(path):  # a reader must not restore .NAME.old between the two renames
            if guard is not None:
                guard()
            if path.exists():
                old = _old_path(path)
                shutil.rmtree(old, ignore_errors=True)
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def restore_interrupted_dir(path: str | Path, lock: bool = True) -> None:
    """Finish what a crash interrupted in :func:`atomic_dir`: between its two renames ``path`` is
    missing and its previous version sits at ``.NAME.old``, which is put back. The readers of a
    graph, a run's ``catalog/`` and its index call this first, so that a crash at that moment
    brings back the last saved state instead of none at all (or, for the catalog, silently the
    base one). ``lock=False``: the caller already holds :func:`swap_lock` (it reads the folder
    under it too, as the catalog does)."""
    path = _behind_link(Path(path))
    old = _old_path(path)
    if path.exists() or not old.is_dir():
        return  # the usual case: nothing to restore, no lock taken
    with swap_lock(path) if lock else contextlib.nullcontext():  # a writer may be mid-swap: wait, look again
        if not path.exists() and old.is_dir():
            os.replace(old, path)


def swap_lock(path: str | Path) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive lock on the folder that holds ``path`` while ``path`` is swapped or
    restored, so that the two never interleave across processes (:func:`exclusive_lock`); for a
    symbolic link, the folder that holds what it points to, where the swap happens."""
    return exclusive_lock(_behind_link(Path(path)).parent)


@contextlib.contextmanager
def exclusive_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the existing file or folder ``path`` (no lock file is left
    behind); another process that asks for it waits. Best effort: without ``fcntl`` (Windows)
    or on file systems without ``flock`` (some NFS / FUSE mounts) it does not lock."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def source_records(files: list[Path]) -> list[dict[str, Any]]:
    """``{file, bytes, sha256}`` of each source file, for a manifest (graph, run)."""
    return [{"file": Path(f).name, "bytes": Path(f).stat().st_size, "sha256": sha256_file(f)} for f in files]


def source_mismatch(records: list[dict[str, Any]], files: list[Path]) -> str | None:
    """What differs between ``records`` (:func:`source_records`, as a manifest kept them) and
    ``files`` now: other file names, or a file whose sha256 changed; ``None`` when they match."""
    recorded = {r["file"]: r["sha256"] for r in records}
    current = {Path(f).name: Path(f) for f in files}
    if set(recorded) != set(current):
        return f"it was built from files {sorted(recorded)}, the dataset has {sorted(current)}"
    for name, file in current.items():
        if sha256_file(file) != recorded[name]:
            return f"{file} changed since (sha256 differs)"
    return None


def read_safetensors(path: str | Path, fix: str, error: type[KgrecError] = KgrecError, as_numpy: bool = False) -> dict[str, Any]:
    """The tensors of a safetensors file (numpy arrays with ``as_numpy``); ``error`` naming the
    file and ``fix`` (what to do) when it is damaged: cut short, or overwritten by something else."""
    from safetensors import SafetensorError

    if as_numpy:
        from safetensors.numpy import load_file
    else:
        from safetensors.torch import load_file
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as failure:  # the file's fault, not a programming error
        raise error(f"{path}: cannot read it ({' '.join(str(failure).split())[:200]}); {fix}") from None


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it: done once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _behind_link(path: Path) -> Path:
    """``path``, or where it leads when it is a symbolic link (dangling too): the file or folder
    an atomic write replaces, beside itself, so that the link stays and points to the new one."""
    return path.resolve() if path.is_symlink() else path


#: Bytes of the target's name kept in its temporary's name (``.NAME.XXXXXXXX.tmp``): a file
#: system allows 255 bytes a name, so a target named near that limit must not have its whole
#: name repeated in the temporary's, which would be refused as too long.
TEMP_NAME_BYTES = 64


def _short_name(name: str, limit: int = TEMP_NAME_BYTES) -> str:
    """``name`` cut to at most ``limit`` bytes of UTF-8 (the way the file system counts), at a
    character boundary."""
    return name.encode("utf-8", "surrogateescape")[:limit].decode("utf-8", "ignore")


def _temp_prefix(path: Path) -> str:
    """The start of a temporary's name beside ``path``: hidden (a dot), then at most
    :data:`TEMP_NAME_BYTES` bytes of ``path``'s name, so that a listing shows whose it is; ``mkstemp``
    adds 8 random characters and the ``.tmp`` suffix."""
    return f".{_short_name(path.name)}."


def _old_path(path: Path) -> Path:
    """Where :func:`atomic_dir` moves the previous ``path`` between its two renames, and where
    :func:`restore_interrupted_dir` looks for it: ``.NAME.old`` beside it; for a name too long for
    that (over 250 bytes), a bounded prefix of it and a hash of the whole name instead, the same
    each time."""
    name = path.name
    if len(name.encode("utf-8", "surrogateescape")) <= 250:
        return path.with_name(f".{name}.old")
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return path.with_name(f".{_short_name(name)}.{digest}.old")


def _mode_for(path: Path, new: int) -> int:
    """The permissions for what replaces ``path``: its own when it exists (a plain write keeps
    them), else ``new`` less the umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return new & ~_UMASK


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') writes to disk; folders only where the OS allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # a folder on Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
