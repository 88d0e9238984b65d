"""Write a dataset's train / valid / test parts as files, so that other tools train and evaluate
on the very split kgrec uses (``kgrec data split``).

The folder written is a dataset folder in RecBole's atomic format whose interactions come as
its benchmark files: ``NAME.train.inter``, ``NAME.valid.inter`` and ``NAME.test.inter`` (raw
user and item ids, and ``rating`` / ``timestamp`` when the dataset has them; with pairs labelled
negative, a ``label`` column, 0 on theirs), beside copies of
the source's ``.item``, ``.user``, ``.kg`` and ``.link`` files. RecBole reads it with
``benchmark_filename: [train, valid, test]``; kgrec reads it back as the same split, "given"
(:func:`~kgrec.data.dataset.load_dataset` takes the three files as they are).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kgrec.data.dataset import Dataset, Interactions
from kgrec.errors import DataError
from kgrec.utils.io import atomic_dir, replace_refusal

PARTS = ("train", "valid", "test")
COPIED = ("item", "user", "kg", "link")  # the side files a split folder holds beside its parts
CHUNK = 1 << 16  # rows formatted at a time: memory stays flat however long the part


def export_split(dataset: Dataset, out: str | Path) -> Path:
    """Write ``dataset``'s parts to the folder ``out`` (replaced as a whole, atomically) and
    return it. Its files are named after the folder, as a dataset folder's are: keep the
    dataset's name (``splits/ml-100k``) so that configs and graph recipes found by name apply.

    Raises:
        DataError: ``out`` is or holds the dataset's own folder, or holds files other than a
            split's (it is replaced as a whole), or a part is empty.
    """
    out = Path(out).resolve()
    source = Path(dataset.path).resolve()
    if out == source or out in source.parents:
        raise DataError("the split would replace the folder of the dataset it comes from; give a new folder", out)
    for part in PARTS:
        if not len(getattr(dataset, part)):
            raise DataError(f"the split's {part} part is empty ({dataset.split}): nothing to write as a benchmark file", out)
    name = out.name
    written = {f"{name}.{kind}" for kind in (*(f"{part}.inter" for part in PARTS), *COPIED)}

    def guard() -> None:
        earlier = not out.is_dir() or not any(out.iterdir()) or (out / f"{name}.train.inter").is_file()
        refusal = replace_refusal(out, written.__contains__ if earlier else lambda entry: False, "the split")
        if refusal:
            raise DataError(f"{refusal}; give a new or empty folder, or one an earlier split wrote", out)

    labelled = bool(dataset.negative_counts())  # label-0 rows go with them
    with atomic_dir(out, guard) as tmp:
        for part in PARTS:
            rows, label = getattr(dataset, part), None
            if labelled:
                negative = dataset.negatives(part)
                label = np.r_[np.ones(len(rows)), np.zeros(len(negative) if negative is not None else 0)]
                rows = Interactions.concat([rows, negative]) if negative is not None else rows
            _write_interactions(tmp / f"{name}.{part}.inter", rows, dataset, label)
        for source in dataset.sources:
            kind = source.name[len(dataset.name) + 1 :]  # "item", "kg", ...; "inter", "train.inter" are written above
            if source.name.startswith(f"{dataset.name}.") and kind in COPIED:
                shutil.copyfile(source, tmp / f"{name}.{kind}")
    return out


def _write_interactions(path: Path, part: Interactions, dataset: Dataset, label: np.ndarray | None = None) -> None:
    """One part as an atomic ``.inter`` file: raw ids as they are, numbers in their shortest exact
    form (a float32 rating's own: ``0.7``, not ``0.699999988079071``; whole numbers without
    ``.0``, as ml-100k writes them). Written :data:`CHUNK` rows at a time by Arrow's string
    kernels: the whole part formatted at once as fixed-width string arrays, then joined row by
    row in Python, had held several times the loaded dataset's memory for millions of rows.
    ``label``: a ``label`` column (1 for an interaction, 0 for a pair labelled negative)."""
    header = ["user_id:token", "item_id:token"]
    numbers = []
    for field, values in (("rating", part.rating), ("timestamp", part.timestamp), ("label", label)):
        if values is not None:
            header.append(f"{field}:float")
            numbers.append(pa.array(values))  # float32 ratings stay float32, so their shortest form is theirs
    users, items = pa.array(dataset.users, pa.string()), pa.array(dataset.items, pa.string())
    with open(path, "wb") as handle:
        handle.write(("\t".join(header) + "\n").encode("utf-8"))
        for start in range(0, len(part), CHUNK):
            rows = slice(start, start + CHUNK)
            fields = [users.take(part.user[rows]), items.take(part.item[rows])]
            fields += [pc.cast(values[rows], pa.string()) for values in numbers]
            fields[-1] = pc.binary_join_element_wise(fields[-1], "", "\n")  # the line's end: its last field + "\n"
            handle.write(_text(pc.binary_join_element_wise(*fields, "\t")))


def _text(lines: pa.Array) -> memoryview:
    """The characters of a string array ``lines`` end to end: its data buffer between the first
    and the last offset."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32 if lines.type == pa.string() else np.int64)
    first, last = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    return memoryview(lines.buffers()[2])[first:last]
