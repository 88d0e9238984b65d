"""Write a dataset's train / valid / test parts as files, so that other tools train and evaluate
on the very split kgrec uses (``kgrec data split``).

The folder written is a dataset folder in RecBole's atomic format whose interactions come as
its benchmark files: ``NAME.train.inter``, ``NAME.valid.inter`` and ``NAME.test.inter`` (raw
user and item ids, and ``rating`` / ``timestamp`` when the dataset has them), beside copies of
the source's ``.item``, ``.user``, ``.kg`` and ``.link`` files. RecBole reads it with
``benchmark_filename: [train, valid, test]``; kgrec reads it back as the same split, "given"
(:func:`~kgrec.data.dataset.load_dataset` takes the three files as they are).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from kgrec.data.dataset import Dataset, Interactions
from kgrec.errors import DataError
from kgrec.utils.io import atomic_dir, replace_refusal

PARTS = ("train", "valid", "test")
COPIED = ("item", "user", "kg", "link")  # the side files a split folder holds beside its parts


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

    with atomic_dir(out, guard) as tmp:
        for part in PARTS:
            _write_interactions(tmp / f"{name}.{part}.inter", getattr(dataset, part), dataset)
        for source in dataset.sources:
            kind = source.name[len(dataset.name) + 1 :]  # "item", "kg", ...; "inter", "train.inter" are written above
            if source.name.startswith(f"{dataset.name}.") and kind in COPIED:
                shutil.copyfile(source, tmp / f"{name}.{kind}")
    return out


def _write_interactions(path: Path, part: Interactions, dataset: Dataset) -> None:
    """One part as an atomic ``.inter`` file; numbers in their shortest exact form."""
    header = ["user_id:token", "item_id:token"]
    columns = [dataset.users[part.user].astype(str), dataset.items[part.item].astype(str)]
    for field, values in (("rating", part.rating), ("timestamp", part.timestamp)):
        if values is not None:
            header.append(f"{field}:float")
            columns.append(np.asarray(values).astype(str))  # float32 ratings stay float32-exact
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\t".join(header) + "\n")
        handle.writelines("\t".join(row) + "\n" for row in zip(*columns, strict=True))
