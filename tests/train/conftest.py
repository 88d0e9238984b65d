"""Training tests run on one thread (the dataset fixtures live in tests/conftest.py)."""

from __future__ import annotations

import pytest
import torch

from kgrec.baselines import EASE
from kgrec.data import Dataset
from tests.conftest import tiny_config


@pytest.fixture(autouse=True)
def one_thread():
    """Training tests pin one thread: two processes with two threads each stall on 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def clustered_split(clustered_dataset) -> Dataset:
    """The clustered tiny dataset, split as the tiny config splits it (read-only)."""
    from kgrec.train import prepare

    return prepare(tiny_config(clustered_dataset), progress=False).dataset


def fit_ease(ds: Dataset, reg: float = 50.0) -> EASE:
    """EASE fitted on ``ds``'s training split."""
    return EASE(reg).fit(ds.train, ds.n_users, ds.n_items)
