"""Retrieval tests: one thread, and trained runs shared by the whole folder (trained once)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One thread for torch and FAISS: other processes share the two cores."""
    import faiss

    before = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(before[0])
    faiss.omp_set_num_threads(before[1])


def _train(data: Path, out: Path, *overrides: str) -> Path:
    from kgrec.train import train
    from tests.conftest import tiny_config

    torch.set_num_threads(1)
    train(tiny_config(data, "train.max_epochs=20", "train.lr=0.01", *overrides), out)
    return out


@pytest.fixture(scope="session")
def trained_run(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clustered dataset trained with ID + graph (no text): a read-only run folder."""
    return _train(clustered_dataset, tmp_path_factory.mktemp("runs") / "graph")


@pytest.fixture(scope="session")
def text_run(clustered_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The clustered dataset trained with the default text model (offline MiniLM) + graph, and
    users encoded from their history too (``id+history``)."""
    home = tmp_path_factory.mktemp("kgrec-home")
    before = os.environ.get("KGREC_HOME")
    os.environ["KGREC_HOME"] = str(home)
    try:
        yield _train(
            clustered_dataset, tmp_path_factory.mktemp("runs") / "text", "model.use_text=true",
            "model.user_encoder=id+history",
        )  # fmt: skip
    finally:
        if before is None:
            os.environ.pop("KGREC_HOME", None)
        else:
            os.environ["KGREC_HOME"] = before


@pytest.fixture(scope="module")
def text_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A private KGREC_HOME for one test module: the text cache of its runs."""
    before = os.environ.get("KGREC_HOME")
    os.environ["KGREC_HOME"] = str(tmp_path_factory.mktemp("kgrec-home"))
    yield
    if before is None:
        os.environ.pop("KGREC_HOME", None)
    else:
        os.environ["KGREC_HOME"] = before


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    """A private copy of ``trained_run`` for tests that change it."""
    return Path(shutil.copytree(trained_run, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints", "logs")))
