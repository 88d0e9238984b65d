"""Audit of the EASE teacher against independent float64 NumPy computations: its scores (training
split only), the per-user temperatures, the user-EASE blend, and what it keeps alive while fitting."""

from __future__ import annotations

import dataclasses
import gc
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

import kgrec.train.teacher as teacher_module
from kgrec.baselines import EASE
from kgrec.data.dataset import Dataset, Interactions
from kgrec.train.teacher import EaseTeacher, blend, calibrate_perplexity, reuse_teachers
from tests.conftest import tiny_config

N_USERS, N_ITEMS = 30, 25  # user 29 has no training items; item 24 has no interactions


def _dataset(seed: int = 0) -> Dataset:
    """Users 0-28 each rate 8 of items 0-23 at random times (6 train, 1 valid, 1 test); user 29
    rates one valid and one test item only; item 24 is never rated."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[tuple[int, int, float]]] = {"train": [], "valid": [], "test": []}
    for u in range(N_USERS - 1):
        items, times = rng.choice(N_ITEMS - 1, size=8, replace=False), rng.uniform(0, 1e6, size=8)
        for k, (i, t) in enumerate(zip(items, times, strict=True)):
            parts["train" if k < 6 else "valid" if k == 6 else "test"].append((u, int(i), float(t)))
    parts["valid"].append((N_USERS - 1, 0, 1.0))
    parts["test"].append((N_USERS - 1, 1, 2.0))

    def part(rows: list[tuple[int, int, float]]) -> Interactions:
        a = np.array(rows, dtype=np.float64)
        return Interactions(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), None, a[:, 2])

    return Dataset("audit", Path("."), np.array([f"u{u}" for u in range(N_USERS)]),
                   np.array([f"i{i}" for i in range(N_ITEMS)]), part(parts["train"]), part(parts["valid"]),
                   part(parts["test"]), "audit")  # fmt: skip


def _numpy_ease(ds: Dataset, reg: float) -> tuple[np.ndarray, np.ndarray]:
    """``(X, X B)`` in float64 from the training rows alone: B = I - P diagMat(1 / diag P)."""
    x = np.zeros((ds.n_users, ds.n_items))
    x[ds.train.user, ds.train.item] = 1.0
    p = np.linalg.inv(x.T @ x + reg * np.eye(ds.n_items))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return x, x @ b


def _perplexity64(logits: np.ndarray) -> float:
    """exp H(softmax(logits)) in float64 over the finite logits."""
    x = np.asarray(logits, dtype=np.float64)
    x = x[np.isfinite(x)]
    p = np.exp(x - x.max())
    p /= p.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def _beta64(scores: np.ndarray, n: float) -> float:
    """The inverse temperature with exp H(softmax(beta s)) = n, by a float64 bisection on log beta."""
    low, high = -80.0, 80.0
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if _perplexity64(np.exp(mid) * scores) > n else (low, mid)
    return float(np.exp((low + high) / 2))


@pytest.mark.parametrize("table_limit", [2**26, 0], ids=["table", "per-batch"])
def test_teacher_scores_are_numpy_ease_of_the_training_rows_without_them(table_limit):
    ds = _dataset()
    x, expected = _numpy_ease(ds, 30.0)
    candidates = torch.as_tensor(ds.train.has_item(ds.n_items))
    users = torch.arange(ds.n_users)
    for given in (None, candidates):
        teacher = EaseTeacher(EASE(30.0).fit(ds.train, ds.n_users, ds.n_items), given, table_limit=table_limit)
        scores = teacher.scores(users).double().numpy()
        out = x.astype(bool) | (~candidates.numpy() if given is not None else False)
        assert np.isneginf(scores[out]).all() and np.isfinite(scores[~out]).all()
        np.testing.assert_allclose(scores[~out], expected[~out], rtol=1e-4, atol=1e-6)
        assert (scores[N_USERS - 1][~out[N_USERS - 1]] == 0).all()  # no training items: EASE has nothing to say
    assert (expected[:, N_ITEMS - 1] == 0).all()  # an item never rated scores 0 (a candidate only when asked)
    again = EaseTeacher(EASE(30.0).fit(ds.train, ds.n_users, ds.n_items), table_limit=table_limit).scores(users)
    assert torch.equal(again, EaseTeacher(EASE(30.0).fit(ds.train, ds.n_users, ds.n_items), table_limit=table_limit).scores(users))


class _Untouchable:
    def __getattr__(self, name: str):
        raise AssertionError(f"the teacher read the test part (.{name})")


def test_every_teacher_option_reads_train_and_valid_only():
    ds = _dataset()
    blind = dataclasses.replace(ds, test=_Untouchable())
    teacher = EaseTeacher.fit(blind, perplexity=5.0, user_weight=1.0, recency_hours="auto", session_hours=1.0)
    assert teacher.reg_tuned and teacher.user_reg_tuned and teacher.recency_tuned
    # the weights are EASE's of the training rows at the chosen L2 weight: valid picked it, no more
    alone = EASE(teacher.reg, session_hours=1.0).fit(ds.train, ds.n_users, ds.n_items)
    torch.testing.assert_close(teacher.weight, alone.weight)


@pytest.mark.parametrize("table_limit", [2**26, 0], ids=["table", "per-batch"])
def test_a_repeated_item_is_left_out_at_each_of_its_columns(table_limit):
    """The per-batch columns path mapped each item to one column: a training item asked twice kept
    a finite score at the other, and entered the user's target (the table path was right)."""
    ds = _dataset()
    teacher = EaseTeacher(EASE(30.0).fit(ds.train, ds.n_users, ds.n_items), table_limit=table_limit)
    own = [int(i) for i in ds.train.item[ds.train.user == 0][:2]]
    other = next(i for i in range(N_ITEMS - 1) if i not in ds.train.item[(ds.train.user == 0) | (ds.train.user == 3)])
    items = torch.tensor([own[0], other, own[0], own[1], other, own[1]])
    users = torch.tensor([0, 3, 0])
    some = teacher.scores(users, items)
    torch.testing.assert_close(some, teacher.scores(users)[:, items])
    assert torch.isneginf(some[[0, 2]][:, [0, 2, 3, 5]]).all() and torch.isfinite(some[:, [1, 4]]).all()


def test_calibration_matches_a_float64_bisection():
    rng = np.random.default_rng(1)
    rows = []
    for r, scale in enumerate((1e-3, 0.05, 1.0, 50.0)):
        row = rng.normal(0.5 * scale, scale, size=60)
        row[: 3 * r] = -np.inf  # each row ranks another set of items
        rows.append(row)
    scores = np.stack(rows)
    betas = []
    for n in (1.5, 2.0, 7.0, 20.0, 45.0):
        beta = calibrate_perplexity(torch.tensor(scores, dtype=torch.float32), n).squeeze(1).double().numpy()
        for row, b in zip(scores, beta, strict=True):
            np.testing.assert_allclose(_perplexity64(b * row), n, rtol=1e-4)
            np.testing.assert_allclose(b, _beta64(row, n), rtol=1e-4)
        betas.append(beta)
    assert (np.diff(np.stack(betas), axis=0) < 0).all()  # a broader target: a higher temperature
    in_double = calibrate_perplexity(torch.tensor(scores), 7.0)
    assert in_double.dtype == torch.float64
    np.testing.assert_allclose(in_double.squeeze(1).numpy(), betas[2], rtol=1e-5)
    # N = 1: one item; N beyond a row's items (51 to 60 ranked), 1e9 or inf: all of them
    one = calibrate_perplexity(torch.tensor(scores, dtype=torch.float32), 1.0).squeeze(1).double().numpy()
    assert all(_perplexity64(b * row) < 1 + 1e-6 for row, b in zip(scores, one, strict=True))
    for n in (65.0, 1e9, float("inf")):
        beta = calibrate_perplexity(torch.tensor(scores, dtype=torch.float32), n).squeeze(1).double().numpy()
        for row, b in zip(scores, beta, strict=True):
            np.testing.assert_allclose(_perplexity64(b * row), np.isfinite(row).sum(), rtol=1e-6)
    # equal scores (a user whose items co-occur with nothing): any temperature, a uniform target
    flat = torch.tensor([[0.0] * 5 + [float("-inf")], [2.0] * 6])
    beta = calibrate_perplexity(flat, 3.0)
    assert torch.isfinite(beta).all() and (beta > 0).all() and torch.isfinite(flat[1] * beta[1]).all()
    assert [_perplexity64((row * b).numpy()) for row, b in zip(flat, beta, strict=True)] == pytest.approx([5.0, 6.0])


@pytest.mark.parametrize("table_limit", [2**26, 0], ids=["table", "per-batch"])
def test_the_teachers_targets_spread_over_n_items_in_float64(table_limit):
    ds = _dataset()
    x, raw = _numpy_ease(ds, 30.0)
    teacher = EaseTeacher(EASE(30.0).fit(ds.train, ds.n_users, ds.n_items), table_limit=table_limit, perplexity=4.0)
    scores = teacher.scores(torch.arange(ds.n_users)).double().numpy()
    assert not np.isnan(scores).any()
    for u in range(N_USERS - 1):
        np.testing.assert_allclose(_perplexity64(scores[u]), 4.0, rtol=1e-4)
        keep = ~x[u].astype(bool) & (raw[u] != 0)
        ratio = scores[u][keep] / raw[u][keep]  # one positive factor per user: EASE's ranking
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
        assert ratio[0] > 0
    np.testing.assert_allclose(_perplexity64(scores[N_USERS - 1]), N_ITEMS)  # no training items: uniform


def test_blend_matches_numpy_per_user():
    rng = np.random.default_rng(2)
    item = rng.normal(7.0, 3.0, size=(5, 40))
    user = rng.normal(0.0, 0.01, size=(5, 40))
    for r in range(5):
        item[r, rng.choice(40, size=4 * r, replace=False)] = -np.inf
    user[~np.isfinite(item)] = 1e30  # what user EASE says of the items not ranked takes no part
    item[4] = np.where(np.isfinite(item[4]), 3.0, -np.inf)  # item EASE flat: its mean and zero spread
    user[3] = np.where(np.isfinite(item[3]), -1.0, user[3])  # user EASE flat: item EASE unchanged
    for a in (0.0, 0.3, 1.0, 5.0):
        got = blend(torch.tensor(item, dtype=torch.float32), torch.tensor(user, dtype=torch.float32), a).double().numpy()
        for r in range(5):
            keep = np.isfinite(item[r])
            assert np.isneginf(got[r][~keep]).all()
            s, v = item[r][keep], user[r][keep]
            z = (s - s.mean()) / max(s.std(), 1e-12) + a * (v - v.mean()) / max(v.std(), 1e-12)
            expected = s.mean() + s.std() * (z - z.mean()) / max(z.std(), 1e-12)
            np.testing.assert_allclose(got[r][keep], expected, rtol=1e-5, atol=1e-5)
    assert (blend(torch.tensor(item), torch.tensor(user), 1.0)[4][np.isfinite(item[4])] == 3.0).all()


def test_choosing_recency_keeps_one_fitted_model_alive_through_each_fit(monkeypatch):
    """The decay search kept the last fit in a loop variable while the next one solved: a worse
    fit's (I, I) float32 weights beside the best's and the solve, 24 I^2 bytes where peak_bytes
    counts 20 I^2."""
    fitted: weakref.WeakSet = weakref.WeakSet()
    alive = []

    class Counted(EASE):
        def fit(self, *args):
            gc.collect()
            alive.append(sum(model.weight is not None for model in fitted))
            fitted.add(self)
            return super().fit(*args)

    monkeypatch.setattr(EASE, "REG_GRID", (30.0, 30.0, 30.0))  # equal scores: the first fit stays the best
    model = teacher_module._fitted_choosing_recency(_dataset(), Counted, None, 0.05)
    assert model.reg == 30.0 and len(alive) == 3
    assert max(alive) <= 1, alive  # the best so far, and no other


def test_a_new_teacher_in_a_tune_is_fitted_without_the_last_one_alive(monkeypatch):
    """Inside reuse_teachers() the last teacher was kept while the next setting's was fitted:
    another (I, I) float32 matrix and score table beside the fit's peak, in a tune over
    ``train.teacher_*`` settings."""
    ds = _dataset()
    fit = EaseTeacher.fit.__func__  # type: ignore[attr-defined]
    last: list[weakref.ref] = []
    kept = []

    def watched(cls, *args, **kwargs):
        gc.collect()
        kept.append(bool(last) and last[-1]() is not None)
        teacher = fit(cls, *args, **kwargs)
        last.append(weakref.ref(teacher))
        return teacher

    monkeypatch.setattr(EaseTeacher, "fit", classmethod(watched))
    first, second = (tiny_config("unused", f"train.teacher_reg={reg}").train for reg in (30, 60))
    with reuse_teachers():
        teacher = EaseTeacher.from_config(ds, first)
        assert EaseTeacher.from_config(ds, first) is teacher  # the same settings: reused
        del teacher
        assert EaseTeacher.from_config(ds, second).reg == 60
        assert EaseTeacher.from_config(ds, second).reg == 60
    assert kept == [False, False]
