"""A ranking teacher for the retrieval tower: EASE fitted on the training split.

With ``model.distill_weight`` > 0 every training step gives the retrieval tower, beside its
positives, EASE's scores :math:`t_u = X_u B` of the items each user has not interacted with
(:meth:`~kgrec.models.towers.RetrievalTower.distillation_loss`). EASE (Steck, WWW 2019) ranks
MovieLens better than low-rank models; its full-rank item-item weights are what a 64-dimensional
dot product cannot fit from the positives alone, and distilling them keeps serving unchanged
(the teacher is used in training only and is not saved).

Leakage: :math:`X` and :math:`B` come from the training split only; EASE's L2 weight is chosen on
valid (``train.teacher_reg: null``), as every other choice; test is never read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm  # terminal bars only (tqdm.auto warned in a Jupyter kernel without ipywidgets)

from kgrec.baselines import EASE, UserEASE, tune_on_valid
from kgrec.baselines.user_ease import MAX_USER_EASE_USERS
from kgrec.data import Dataset
from kgrec.errors import ConfigError
from kgrec.eval import evaluate_split
from kgrec.eval.matrix import age_matrix, entries_as_rows, recency_weights, row_values
from kgrec.train.config import TrainSection
from kgrec.utils.interrupt import interruptible

#: What ``train.teacher_recency_hours: auto`` chooses among on valid, in hours (``None``: every
#: training item weighs 1, plain EASE scores): 72 seconds to a week.
RECENCY_GRID: tuple[float | None, ...] = (None, 0.02, 0.05, 0.1, 0.3, 1.0, 24.0, 168.0)

#: Largest catalogue the teacher is fitted for: EASE's fit peaks at two (I, I) float64 matrices,
#: 16 I^2 bytes (25.6 GB here, 14.4 GB at 30k items).
MAX_TEACHER_ITEMS = 40_000


def valid_cutoff(n_items: int) -> int:
    """The K of the NDCG@K on valid that chooses the teacher's settings: 10, or the whole
    catalogue when it holds fewer items (a cut-off beyond it is refused by the ranking)."""
    return min(10, n_items)


def _valid_ks(n_items: int) -> tuple[int, ...]:
    """The cut-offs the valid ranking computes: 10 and 20 (as ever), those the catalogue holds."""
    return tuple(k for k in (10, 20) if k <= n_items) or (n_items,)


def peak_bytes(n_items: int, n_users: int, tuned: bool, user_weight: float, user_tuned: bool) -> int:
    """The most memory the teacher's fits hold at once: EASE's fit (two ``(I, I)`` float64
    matrices, :func:`~kgrec.baselines.ease.closed_form`) beside the best weights so far
    (``(I, I)`` float32) when its L2 weight is chosen on valid; with user EASE, its fit (the
    same over users) beside the item weights and, when its L2 weight is chosen on valid, the
    best fit's ``(U, I)`` float32 score table (the table it then builds, beside its ``(U, U)``
    float64 solution, takes less where this term counts: where ``2 U > I``)."""
    items = (16 + 4 * tuned) * n_items**2
    users = 4 * n_items**2 + 16 * n_users**2 + 4 * user_tuned * n_users * n_items if user_weight else 0
    return max(items, users)


def available_bytes(device: torch.device | str) -> int | None:
    """Memory the teacher may take on ``device`` without the system running out: on the CPU,
    Linux's ``MemAvailable`` plus free swap; ``None`` where it is not known (another system,
    a GPU: CUDA says so itself when it runs out)."""
    if torch.device(device).type != "cpu":
        return None
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines())
        return sum(int(fields[name].split()[0]) * 1024 for name in ("MemAvailable", "SwapFree"))
    except (OSError, ValueError, KeyError):
        return None


def check_teacher_fits(
    dataset: Dataset,
    device: torch.device | str = "cpu",
    reg: float | None = None,
    session_hours: float | None = None,
    user_weight: float = 0.0,
    user_reg: float | None = None,
    recency_hours: float | str | None = None,
) -> None:
    """Refuse a teacher :meth:`EaseTeacher.fit` cannot fit on ``dataset`` (arguments as there):
    more than :data:`MAX_TEACHER_ITEMS` items, user EASE over more than its users, session or
    recency weights without timestamps, or (on a Linux CPU) more memory than is free
    (:func:`peak_bytes`). ``kgrec train`` asks right after reading the data, before the graph and
    the text encoding (:func:`kgrec.train.run.check_data`), and the fit asks again.

    Raises:
        ConfigError: naming the setting that turns it off.
    """
    if dataset.n_items > MAX_TEACHER_ITEMS:
        gigabytes = 16 * dataset.n_items**2 / 1e9  # the fit's peak (EASE.fit)
        raise ConfigError(
            f"model.distill_weight > 0: the EASE teacher needs {gigabytes:.0f} GB for {dataset.n_items} items "
            f"(at most {MAX_TEACHER_ITEMS} are supported); set model.distill_weight=0"
        )
    for field, hours in (("session_hours", session_hours), ("recency_hours", recency_hours)):
        if hours is not None and dataset.train.timestamp is None:
            raise ConfigError(f"train.teacher_{field}: the training interactions have no timestamps; set it to null")
    if user_weight and dataset.n_users > MAX_USER_EASE_USERS:
        raise ConfigError(
            f"train.teacher_user_weight > 0: user-based EASE supports at most {MAX_USER_EASE_USERS} users "
            f"(O(U^2) memory), this dataset has {dataset.n_users}; set train.teacher_user_weight=0"
        )
    need = peak_bytes(dataset.n_items, dataset.n_users, reg is None or recency_hours == "auto", user_weight, user_reg is None)
    free = available_bytes(device)
    if free is not None and need > free:  # the fit would be killed by the system, without a word
        users = f" and {dataset.n_users} users (user EASE)" if user_weight else ""
        raise ConfigError(
            f"model.distill_weight > 0: the EASE teacher needs {need / 1e9:.1f} GB for {dataset.n_items} items{users}, "
            f"and this machine has {free / 1e9:.1f} GB free; set model.distill_weight=0, or train on a machine with "
            "more memory or on a GPU (the teacher is fitted on the training device)", key="model.distill_weight"
        )


_reused: list[Any] | None = None  # [key, teacher] inside reuse_teachers(): the last teacher from_config fitted


@contextlib.contextmanager
def reuse_teachers() -> Iterator[None]:
    """Within it, :meth:`EaseTeacher.from_config` returns the teacher it fitted last when asked
    again for the same training and valid interactions, ``train.teacher_*`` settings, candidate
    items and device (``kgrec tune``: every trial trains on the same split, and each fitted EASE,
    with its L2 weight chosen on valid, again). One teacher is kept at a time."""
    global _reused
    outer, _reused = _reused, [None, None]
    try:
        yield
    finally:
        _reused = outer


def _teacher_key(dataset: Dataset, train: TrainSection, candidates: Tensor | None, device: torch.device | str) -> tuple:
    """What a teacher of :meth:`EaseTeacher.from_config` depends on: the training and valid
    interactions (fit and L2 weight), the teacher settings, the candidates and the device."""
    digest = hashlib.sha256()
    for part in (dataset.train, dataset.valid):
        for values in (part.user, part.item, part.timestamp):
            digest.update(b"-" if values is None else np.ascontiguousarray(values).tobytes())
    if candidates is not None:
        digest.update(candidates.cpu().numpy().tobytes())
    settings = tuple((f.name, getattr(train, f.name)) for f in dataclasses.fields(train) if f.name.startswith("teacher_"))
    return dataset.n_users, dataset.n_items, digest.hexdigest(), settings, str(torch.device(device))


class EaseTeacher:
    r"""EASE's scores of every item for a batch of users, ``-inf`` on their training items.

    Memory is :math:`O(I^2)` (EASE's weights, float32: 0.9 GB at 15k items). When the score
    table of all users fits in ``table_limit`` entries (ml-100k: 1.6M, ML-1M: 14M) it is
    computed once; otherwise each step multiplies its users' sparse training rows by the
    weights.

    Args:
        model: a fitted :class:`~kgrec.baselines.EASE`.
        candidates: ``(I,)`` bool, the items a student may be taught to rank (items with training
            interactions); default all.
        table_limit: most entries of a precomputed ``(U, I)`` score table.
        standardize: return :math:`(t_{uj} - \mu_u) / \sigma_u`, mean and standard deviation
            over the items ranked for :math:`u`, so that a softmax temperature is relative to each
            user's score spread (EASE's scale differs between datasets by orders of magnitude).
        perplexity: return :math:`\beta_u t_{uj}` with :math:`\beta_u` solved per user so that
            :math:`p_u = \mathrm{softmax}(\beta_u t_u)` spans this many items,
            :math:`\exp H(p_u) = N` (:func:`calibrate_perplexity`); a softmax at temperature 1
            then gives every user a target of the same breadth, on any dataset.
        progress: a progress bar over the users while calibrating, in a terminal (minutes at
            100k users and 30k items).
        user_model: a fitted :class:`~kgrec.baselines.UserEASE` blended into the scores with
            ``user_weight`` :math:`a` (:meth:`blend`).
        user_weight: the weight :math:`a` of ``user_model``.
    """

    def __init__(
        self,
        model: EASE,
        candidates: Tensor | None = None,
        table_limit: int = 2**26,
        standardize: bool = False,
        perplexity: float | None = None,
        progress: bool = False,
        user_model: UserEASE | None = None,
        user_weight: float = 0.0,
    ) -> None:
        if perplexity is not None and not perplexity >= 1:
            raise ValueError(f"perplexity: expected a number of items >= 1, got {perplexity}")
        if model.weight is None or model.history is None:
            raise ValueError("model: expected a fitted EASE")
        self.reg = model.reg
        self.session_hours = model.session_hours
        self.recency_hours, self.recency_floor = model.recency_hours, model.recency_floor
        self.weight = model.weight  # (I, I)
        self.history = model.history  # (U, I) sparse CSR training matrix (recency-weighted with recency_hours)
        self.candidates = candidates
        self.standardize = standardize
        self.perplexity = perplexity
        self.user_model = user_model if user_weight else None
        self.user_weight = user_weight
        self.reg_tuned = self.user_reg_tuned = False  # whether the L2 weights were chosen on valid (:meth:`fit`)
        self.recency_tuned = False  # whether recency_hours was chosen on valid
        n_users, n_items = self.history.shape
        self.table: Tensor | None = None
        self.beta: Tensor | None = None  # (U, 1) per-user inverse temperatures, fixed as the scores are
        if n_users * n_items <= table_limit:
            self.table = torch.cat([self._compute(users) for users in torch.arange(n_users).split(4096)])
        if perplexity is not None:  # from the table when there is one, else from each user's row once
            rows = self.table.split(1024) if self.table is not None else map(self._compute, torch.arange(n_users).split(1024))
            with tqdm(total=n_users, desc="calibrating the teacher", unit="user", disable=None if progress else True) as bar:
                self.beta = torch.cat([_counted(calibrate_perplexity(scores, perplexity), bar) for scores in rows])
            self.table = None if self.table is None else self.table * self.beta

    @classmethod
    def fit(
        cls,
        dataset: Dataset,
        reg: float | None = None,
        candidates: Tensor | None = None,
        standardize: bool = False,
        perplexity: float | None = None,
        progress: bool = False,
        device: torch.device | str = "cpu",
        session_hours: float | None = None,
        user_weight: float = 0.0,
        user_reg: float | None = None,
        recency_hours: float | str | None = None,
        recency_floor: float = 0.05,
    ) -> EaseTeacher:
        """EASE on ``dataset.train`` with L2 weight ``reg``; ``None`` picks it on valid from
        :attr:`EASE.REG_GRID`. The fit, the calibration and the scores run on ``device``, where
        the weights stay (training on a GPU: seconds at 114k users and 30k items, where 2 CPU
        cores take about 30 minutes). ``session_hours``: session-weighted EASE (:class:`EASE`);
        ``user_weight`` > 0: blended with :class:`~kgrec.baselines.UserEASE`, L2 weight
        ``user_reg`` (``None``: chosen on valid from :attr:`UserEASE.REG_GRID`); ``recency_hours``:
        EASE's scores from a recency-weighted history, old items fading to ``recency_floor``;
        ``"auto"`` chooses it on valid from :data:`RECENCY_GRID` together with ``reg`` (one fit
        per L2 weight: the decay only re-weighs the history)."""
        check_teacher_fits(dataset, device, reg, session_hours, user_weight, user_reg, recency_hours)
        if recency_hours == "auto":
            model = _fitted_choosing_recency(dataset, lambda value: EASE(value, device, session_hours), reg, recency_floor)
        else:
            model = _fitted(dataset, lambda value: EASE(value, device, session_hours, recency_hours, recency_floor), reg, EASE.REG_GRID)  # type: ignore[arg-type]
        user_model = _fitted(dataset, lambda value: UserEASE(value, device), user_reg, UserEASE.REG_GRID, "train.teacher_user_reg") if user_weight else None
        teacher = cls(model, candidates, standardize=standardize, perplexity=perplexity, progress=progress,  # type: ignore[arg-type]
                      user_model=user_model, user_weight=user_weight)  # type: ignore[arg-type]  # fmt: skip
        teacher.reg_tuned, teacher.user_reg_tuned = reg is None, user_reg is None
        teacher.recency_tuned = recency_hours == "auto"
        return teacher

    @classmethod
    def from_config(
        cls,
        dataset: Dataset,
        train: TrainSection,
        candidates: Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> EaseTeacher:
        """The teacher that the ``train.teacher_*`` fields describe (:meth:`fit`), with a
        progress bar when ``train.progress``: what ``kgrec train`` distils and what the
        benchmarks print as the teacher alone."""
        key = _teacher_key(dataset, train, candidates, device) if _reused is not None else None
        if _reused is not None and _reused[0] == key:  # inside reuse_teachers(): fitted for an earlier trial
            return _reused[1]
        if _reused is not None:  # one teacher at a time: the last one's weights are not kept through this fit
            _reused[:] = [None, None]
        teacher = cls.fit(dataset, train.teacher_reg, candidates, standardize=train.teacher_standardize,
                          perplexity=train.teacher_perplexity, progress=train.progress, device=device,
                          session_hours=train.teacher_session_hours, user_weight=train.teacher_user_weight,
                          user_reg=train.teacher_user_reg, recency_hours=train.teacher_recency_hours,
                          recency_floor=train.teacher_recency_floor)  # fmt: skip
        if _reused is not None:
            _reused[:] = [key, teacher]
        return teacher

    def description(self) -> str:
        """E.g. ``session-weighted (1 h) EASE lambda=250 + 1 x user EASE lambda=500 (chosen on valid)``:
        what was fitted, and whether each L2 weight was chosen on valid or given."""
        how = "chosen on valid" if self.reg_tuned else "train.teacher_reg"
        session = "" if self.session_hours is None else f"session-weighted ({self.session_hours:g} h) "
        text = f"{session}EASE lambda={self.reg:g}"
        if self.user_model is not None:
            user_how = "chosen on valid" if self.user_reg_tuned else "train.teacher_user_reg"
            user = f"{self.user_weight:g} x user EASE lambda={self.user_model.reg:g}"
            text, how = (f"{text} + {user}" if user_how == how else f"{text} ({how}) + {user}"), user_how
        tuned = ", chosen on valid" if self.recency_tuned else ""
        recency = "" if self.recency_hours is None else f", history weighted by recency ({self.recency_hours:g} h{tuned}; floor {self.recency_floor:g})"
        if self.recency_tuned and self.recency_hours is None:
            recency = ", no recency weighting (chosen on valid)"
        calibrated = "" if self.beta is None else f", per-user temperature {float((1 / self.beta).median()):.3g} (median)"
        return f"{text} ({how}){recency}{calibrated}"

    @property
    def device(self) -> torch.device:
        return (self.weight if self.table is None else self.table).device

    def to(self, device: torch.device | str) -> EaseTeacher:
        """Moves what :meth:`scores` reads (the table, else the weights) and the candidate mask to
        ``device``; returns ``self``."""
        if self.table is None:
            self.weight = self.weight.to(device)
        else:
            self.table = self.table.to(device)
        self.beta = None if self.beta is None else self.beta.to(device)
        self.candidates = None if self.candidates is None else self.candidates.to(device)
        if self.user_model is not None and self.table is None:
            self.user_model.table = self.user_model.table.to(device)  # type: ignore[union-attr]
        return self

    @torch.no_grad()
    def scores(self, users: Tensor, items: Tensor | None = None) -> Tensor:
        """``(B,)`` users -> ``(B, I)`` float32 scores :math:`X_u B`, ``-inf`` where
        :math:`X_{ui} = 1` or item ``i`` is not a candidate; with ``items`` ``(K,)``, the
        ``(B, K)`` columns of those items alone, computed without the ``(B, I)`` scores (but
        for standardised scores, whose statistics need every item)."""
        if self.table is not None:
            table = self.table
            rows = users.to(table.device)
            return table[rows] if items is None else table[rows.unsqueeze(1), items.to(table.device).unsqueeze(0)]
        unique, inverse = users.unique(return_inverse=True)
        if items is None or self.standardize or self.user_model is not None:  # statistics over every item
            scores = self._compute(unique)
            return (scores if items is None else scores[:, items.to(self.device)])[inverse.to(self.device)]
        wanted, back = items.to(self.device).unique(return_inverse=True)  # repeats allowed, as for users
        return self._compute_columns(unique, wanted)[inverse.to(self.device)][:, back]

    def _compute_columns(self, users: Tensor, items: Tensor) -> Tensor:
        """:meth:`_compute`'s scores of distinct ``users`` at distinct ``items`` only: the weights'
        rows of the users' training items, at those columns, summed per user (an item asked twice
        would get its ``-inf`` at one of its two columns alone)."""
        row, col, value = row_values(self.history, users.cpu())  # the users' training items (and weights)
        row, col, value = row.to(self.device), col.to(self.device), value.to(self.device)
        seen, at = col.unique(return_inverse=True)
        weights = self.weight[seen.unsqueeze(1), items.unsqueeze(0)]  # (seen, K)
        rows = torch.sparse_coo_tensor(torch.stack([row, at]), value, (len(users), len(seen)), check_invariants=False)
        with torch.autocast(self.device.type, enabled=False):
            scores = torch.sparse.mm(rows, weights)  # (n, K)
        column = torch.full((self.weight.shape[0],), -1, dtype=torch.long, device=self.device)
        column[items] = torch.arange(len(items), device=self.device)
        own = column[col] >= 0  # training items of the users among the asked ones
        scores[row[own], column[col[own]]] = float("-inf")
        if self.candidates is not None:
            scores.masked_fill_(~self.candidates.to(self.device)[items], float("-inf"))
        if self.beta is not None:
            scores = scores * self.beta[users.to(self.beta.device)].to(self.device)
        return scores

    def _compute(self, users: Tensor) -> Tensor:
        """Scores of distinct ``users``: their sparse CSR training rows times the weights."""
        row, col, value = row_values(self.history, users.cpu())  # the users' training items (and weights)
        rows = entries_as_rows(row, col, value, (len(users), self.history.shape[1]))
        with torch.autocast(self.device.type, enabled=False):  # fp32 even inside bf16 training
            scores = torch.sparse.mm(rows.to(self.device), self.weight)  # (n, I); cost follows the histories
        scores[row.to(self.device), col.to(self.device)] = float("-inf")
        if self.candidates is not None:
            scores.masked_fill_(~self.candidates.to(self.device), float("-inf"))
        if self.user_model is not None:
            scores = blend(scores, self.user_model.score(users).to(self.device), self.user_weight)
        if self.standardize:
            mean, std = ranked_mean_std(scores)
            scores = torch.where(torch.isfinite(scores), (scores - mean) / std.clamp(min=1e-12), float("-inf"))
        if self.beta is not None:
            scores = scores * self.beta[users.to(self.beta.device)]
        return scores


def _fitted(
    dataset: Dataset, build: Callable[[float], Any], reg: float | None, grid: tuple[float, ...], key: str = "train.teacher_reg"
) -> Any:
    """``build(reg)`` fitted on ``dataset.train``, or with ``reg`` None the one of ``grid`` best on
    valid (NDCG@10, :func:`valid_cutoff`); in a worker thread, so that Ctrl+C during a Cholesky
    solve (minutes at 20k+ items) stops at once. ``key``: the config field of ``reg``."""
    with _solvable(key, reg):
        if reg is None:
            k = valid_cutoff(dataset.n_items)
            return interruptible(tune_on_valid, dataset, build, grid, f"ndcg@{k}", _valid_ks(dataset.n_items)).model
        return interruptible(build(reg).fit, dataset.train, dataset.n_users, dataset.n_items)


@contextlib.contextmanager
def _solvable(key: str, reg: float | None) -> Iterator[None]:
    """A Cholesky factorisation that fails (an L2 weight too small beside the co-occurrence counts
    for float64: the Gram matrix of items seen by the same users is singular) as a ConfigError
    naming ``key``, instead of LAPACK's traceback."""
    try:
        yield
    except torch.linalg.LinAlgError:
        given = f"{key}={reg:g}" if reg is not None else f"{key}: null (chosen on valid)"
        raise ConfigError(
            f"{given}: EASE's Gram matrix plus this L2 weight is not positive definite in float64 (the weight is too "
            "small beside the co-occurrence counts); raise it (the weights chosen on valid start at 50), or set it to null",
            key=key,
        ) from None


def _fitted_choosing_recency(dataset: Dataset, build: Callable[[float], EASE], reg: float | None, floor: float) -> EASE:
    """``build(reg)`` (every L2 weight of :attr:`EASE.REG_GRID` when ``reg`` is None) fitted on
    ``dataset.train``, scoring the history of :data:`RECENCY_GRID`'s decay that, with it, ranks
    valid best (NDCG@10; ties go to the earlier pair): one fit per L2 weight, as the decay only
    re-weighs each user's training items."""
    sizes = (dataset.train, dataset.n_users, dataset.n_items)
    ages = age_matrix(*sizes)  # one age per training pair; each decay only maps it to weights
    histories = {hours: None if hours is None else recency_weights(ages, hours, floor) for hours in RECENCY_GRID}
    best: tuple[float, EASE, float | None, Tensor] | None = None
    k = valid_cutoff(dataset.n_items)
    for value in EASE.REG_GRID if reg is None else (reg,):
        with _solvable("train.teacher_reg", reg):
            model = interruptible(build(value).fit, *sizes)
        plain = model.history
        for hours, history in histories.items():
            model.history = plain if history is None else history
            score = evaluate_split(model.score, dataset, "valid", _valid_ks(dataset.n_items))[f"ndcg@{k}"]
            if best is None or score > best[0]:
                best = (score, model, hours, model.history)
        del model, plain  # else a worse fit's (I, I) weights stay alive through the next fit, past peak_bytes
    assert best is not None
    _, model, hours, history = best
    model.history, model.recency_hours, model.recency_floor = history, hours, floor
    return model


def blend(item_scores: Tensor, user_scores: Tensor, weight: float) -> Tensor:
    r"""Item and user EASE's scores ``(B, I)`` blended per user, on item EASE's scale:

    .. math::
        z_u = \frac{s_u - \mu(s_u)}{\sigma(s_u)} + a \, \frac{v_u - \mu(v_u)}{\sigma(v_u)},
        \qquad t_u = \mu(s_u) + \sigma(s_u) \, \frac{z_u - \mu(z_u)}{\sigma(z_u)},

    means and standard deviations over the items ranked for :math:`u` (finite in
    ``item_scores``; ``-inf`` stays where it is). Each model's scores count by their order
    within a user, whatever their scale, and the blend keeps the spread of item EASE's scores,
    so that ``model.distill_temperature`` means what it means for EASE alone."""
    ranked = torch.isfinite(item_scores)
    user_scores = torch.where(ranked, user_scores, float("-inf"))
    (mean_s, std_s), (mean_v, std_v) = ranked_mean_std(item_scores), ranked_mean_std(user_scores)
    z = (item_scores - mean_s) / std_s.clamp(min=1e-12) + weight * (user_scores - mean_v) / std_v.clamp(min=1e-12)
    z = torch.where(ranked, z, float("-inf"))
    mean_z, std_z = ranked_mean_std(z)
    return torch.where(ranked, mean_s + std_s * (z - mean_z) / std_z.clamp(min=1e-12), float("-inf"))


def _counted(beta: Tensor, bar: tqdm) -> Tensor:
    bar.update(len(beta))
    return beta


def ranked_mean_std(scores: Tensor) -> tuple[Tensor, Tensor]:
    """``(B, 1)`` mean and standard deviation (ddof 0) of each row's finite entries (the items
    ranked for that user; ``-inf`` elsewhere)."""
    ranked = torch.isfinite(scores)
    count = ranked.sum(1, keepdim=True).clamp(min=1)
    mean = torch.where(ranked, scores, 0).sum(1, keepdim=True) / count
    std = (torch.where(ranked, scores - mean, 0).pow(2).sum(1, keepdim=True) / count).sqrt()
    return mean, std


def calibrate_perplexity(scores: Tensor, perplexity: float, steps: int = 30) -> Tensor:
    r"""``(B, 1)`` inverse temperatures :math:`\beta_u` with
    :math:`\exp H(\mathrm{softmax}(\beta_u s_u)) = N` over each row's finite entries.

    The entropy falls monotonically as :math:`\beta` grows (from :math:`\log |\mathcal{C}_u|`
    at 0 towards the log of the number of tied maxima), so bisection on :math:`\log \beta`
    finds it, as t-SNE calibrates its neighbourhoods (van der Maaten and Hinton, 2008). The
    search starts at each row's :math:`1 / \sigma_u` and spans :math:`e^{\pm 20}` around it;
    a row with fewer than :math:`N` finite entries gets the smallest :math:`\beta` (a near
    uniform target), a row with none gets 1.

    Args:
        scores: ``(B, I)`` scores, ``-inf`` outside the items ranked for each row.
        perplexity: :math:`N` >= 1, the effective number of items.
        steps: bisection steps (30 narrow :math:`\log \beta` to :math:`4 \cdot 10^{-8}`).
    """
    _, std = ranked_mean_std(scores)
    finite = torch.isfinite(scores)
    scaled = torch.where(finite, scores / std.clamp(min=1e-12), float("-inf"))
    target = torch.tensor(perplexity, dtype=scores.dtype, device=scores.device).log()
    low = torch.full_like(std, -20.0)  # log beta, relative to 1 / std
    high = torch.full_like(std, 20.0)
    for _ in range(steps):
        mid = (low + high) / 2
        too_broad = softmax_entropy(scaled * mid.exp()).unsqueeze(-1) > target  # sharpen: larger beta
        low = torch.where(too_broad, mid, low)
        high = torch.where(too_broad, high, mid)
    beta = ((low + high) / 2).exp() / std.clamp(min=1e-12)
    return torch.where(finite.any(-1, keepdim=True), beta, 1.0)


def softmax_entropy(logits: Tensor) -> Tensor:
    r"""``(B,)`` entropy :math:`H(p) = -\sum_j p_j \log p_j` of each row's
    :math:`p = \mathrm{softmax}(\text{logits})`, ``-inf`` logits taking no part; its ``exp`` is
    the effective number of items the row spreads over."""
    log_p = logits.log_softmax(-1)
    return -torch.where(torch.isfinite(log_p), log_p.exp() * log_p, 0).sum(-1)
