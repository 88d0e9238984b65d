"""The EASE teacher: its scores, what it reads (training split only), and a run that uses it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from kgrec.baselines import EASE, UserEASE
from kgrec.errors import ConfigError
from kgrec.eval.matrix import dense_rows, interaction_matrix
from kgrec.models import RecBatch
from kgrec.train import build_model, prepare, train
from kgrec.train.module import RecommenderModule
from kgrec.train.teacher import EaseTeacher, blend, calibrate_perplexity, ranked_mean_std
from tests.conftest import tiny_config
from tests.train.conftest import fit_ease


@pytest.mark.parametrize("table_limit", [2**26, 0], ids=["table", "per-batch"])
def test_scores_are_ease_scores_without_the_users_training_items(clustered_split, table_limit):
    ds = clustered_split
    ease = fit_ease(ds)
    teacher = EaseTeacher(ease, table_limit=table_limit)
    assert (teacher.table is None) == (table_limit == 0)
    users = torch.tensor([3, 0, 3, 7])  # any order, repeats allowed
    scores = teacher.scores(users)
    expected = ease.score(users)
    seen = interaction_matrix(ds.train, ds.n_users, ds.n_items).to_dense().bool()[users]
    assert torch.isneginf(scores[seen]).all()
    torch.testing.assert_close(scores[~seen], expected[~seen])


@pytest.mark.parametrize("table_limit", [2**26, 0], ids=["table", "per-batch"])
@pytest.mark.parametrize("options", [{}, {"perplexity": 5.0}, {"standardize": True}], ids=["raw", "perplexity", "standardized"])
def test_scores_of_some_items_are_those_columns_of_every_items_scores(clustered_split, table_limit, options):
    ds = clustered_split
    candidates = torch.ones(ds.n_items, dtype=torch.bool)
    candidates[::7] = False
    teacher = EaseTeacher(fit_ease(ds), candidates=candidates, table_limit=table_limit, **options)
    users = torch.tensor([3, 0, 3, 7])
    own = [int(i) for i in ds.train.item[ds.train.user == 0] if candidates[i]][:2]  # user 0's training items
    items = torch.tensor([14, own[0], 5, 0, 33, own[1], 41])  # any order; items 0 and 14 are no candidates
    every = teacher.scores(users)[:, items]
    some = teacher.scores(users, items)
    assert torch.isneginf(every[1, [1, 5]]).all() and torch.isneginf(every[:, [0, 3]]).all()
    assert torch.isfinite(every).sum() > 10
    assert torch.equal(torch.isneginf(some), torch.isneginf(every))
    torch.testing.assert_close(some, every)


def _raw_and_transformed_scores(ds, users, table_limit: int, **options):
    """The teacher's raw scores for ``users`` and its scores with ``options`` (standardize, perplexity)."""
    model = fit_ease(ds)
    raw = EaseTeacher(model, table_limit=table_limit).scores(users)
    return raw, EaseTeacher(model, table_limit=table_limit, **options).scores(users)


@pytest.mark.parametrize("table_limit", [2**26, 0], ids=["table", "per-batch"])
def test_standardized_scores_have_zero_mean_and_unit_spread_per_user(clustered_split, table_limit):
    ds = clustered_split
    users = torch.tensor([3, 0, 3, 7])
    raw, z = _raw_and_transformed_scores(ds, users, table_limit, standardize=True)
    ranked = torch.isfinite(raw)
    assert torch.equal(torch.isfinite(z), ranked)  # the same items left out
    for row_raw, row_z, keep in zip(raw, z, ranked, strict=True):
        expected = (row_raw[keep] - row_raw[keep].mean()) / row_raw[keep].std(unbiased=False)
        torch.testing.assert_close(row_z[keep], expected)
        # scaling EASE's scores (another dataset's scale) leaves the standardised target unchanged
    scaled = fit_ease(ds)
    scaled.weight = scaled.weight * 0.01
    torch.testing.assert_close(EaseTeacher(scaled, table_limit=table_limit, standardize=True).scores(users), z)


def _perplexity(logits: torch.Tensor) -> torch.Tensor:
    p = logits.softmax(-1)
    return (-torch.where(p > 0, p * p.log(), 0).sum(-1)).exp()


@pytest.mark.parametrize("table_limit", [2**26, 0], ids=["table", "per-batch"])
def test_calibrated_scores_spread_over_the_asked_number_of_items_per_user(clustered_split, table_limit):
    users = torch.tensor([3, 0, 3, 7])
    for n in (2.0, 5.0):
        raw, calibrated = _raw_and_transformed_scores(clustered_split, users, table_limit, perplexity=n)
        torch.testing.assert_close(_perplexity(calibrated), torch.full((4,), n))
        assert torch.equal(torch.isfinite(calibrated), torch.isfinite(raw))
        # one positive factor per user: each user's ranking of items is EASE's
        for row_raw, row_calibrated in zip(raw, calibrated, strict=True):
            keep = torch.isfinite(row_raw) & (row_raw != 0)
            ratio = row_calibrated[keep] / row_raw[keep]
            assert ratio.min() > 0
            torch.testing.assert_close(ratio, ratio[:1].expand_as(ratio))


def test_calibration_edge_rows():
    scores = torch.tensor([
        [0.0, 1.0, 2.0, float("-inf")],  # three items: a target of 10 is out of reach -> near uniform
        [float("-inf")] * 4,  # nothing ranked
        [1e-6, 2e-6, 3e-6, 4e-6],  # a tiny scale is found as well as a large one
        [1e3, 2e3, 3e3, 4e3],
    ])  # fmt: skip
    beta = calibrate_perplexity(scores, 10.0)
    assert beta.shape == (4, 1) and torch.isfinite(beta).all()
    assert beta[1] == 1.0
    torch.testing.assert_close(_perplexity(scores[:1] * beta[:1]), torch.tensor([3.0]), atol=1e-3, rtol=0)
    spread = _perplexity(scores[2:] * calibrate_perplexity(scores[2:], 2.5))
    torch.testing.assert_close(spread, torch.full((2,), 2.5))


def test_items_outside_candidates_are_not_taught(clustered_split):
    ds = clustered_split
    candidates = torch.ones(ds.n_items, dtype=torch.bool)
    candidates[:5] = False
    scores = EaseTeacher.fit(ds, reg=50.0, candidates=candidates).scores(torch.arange(ds.n_users))
    assert torch.isneginf(scores[:, :5]).all() and torch.isfinite(scores[:, 5:]).any(-1).all()


def test_teacher_reads_the_training_split_only(clustered_split):
    ds = clustered_split
    fitted = EaseTeacher.fit(ds, reg=50.0)
    # the same data with valid and test swapped for each other: the teacher must not change
    swapped = dataclasses.replace(ds, valid=ds.test, test=ds.valid)
    torch.testing.assert_close(EaseTeacher.fit(swapped, reg=50.0).weight, fitted.weight)


def test_teacher_reg_is_chosen_on_valid_by_default(clustered_split):
    ds = clustered_split
    assert EaseTeacher.fit(ds).reg in EASE.REG_GRID


def test_config_checks():
    with pytest.raises(ConfigError, match="distill_weight"):
        tiny_config("unused", "model.tasks=[rating]", "model.distill_weight=1")
    with pytest.raises(ConfigError, match="teacher_reg"):
        tiny_config("unused", "train.teacher_reg=0")
    with pytest.raises(ConfigError, match="teacher_perplexity"):
        tiny_config("unused", "train.teacher_perplexity=0.5", "model.distill_temperature=1")
    with pytest.raises(ConfigError, match="distill_temperature must be 1"):
        tiny_config("unused", "train.teacher_perplexity=20", "model.distill_weight=1")  # the default temperature would rescale it
    tiny_config("unused", "train.teacher_perplexity=20", "model.distill_weight=0")  # no teacher: no temperature to check
    for setting in ("teacher_session_hours=0", "teacher_user_weight=-1", "teacher_user_reg=0",
                    "teacher_recency_hours=0", "teacher_recency_floor=2"):  # fmt: skip
        with pytest.raises(ConfigError, match=setting.split("=")[0]):
            tiny_config("unused", f"train.{setting}")


def test_blend_ranks_by_both_models_on_item_eases_scale():
    torch.manual_seed(0)
    item = torch.randn(4, 30) * 3 + 7
    item[:, :5] = float("-inf")  # the users' training items
    user = torch.randn(4, 30) * 0.01  # another scale entirely
    for weight in (0.0, 1.0, 100.0):
        blended = blend(item, user, weight)
        assert torch.equal(torch.isneginf(blended), torch.isneginf(item))
        for a, b in zip(ranked_mean_std(blended), ranked_mean_std(item), strict=True):
            torch.testing.assert_close(a, b)  # item EASE's mean and spread per user
    torch.testing.assert_close(blend(item, user, 0.0), item)
    order = blend(item, user, 100.0)[:, 5:].argsort(1)
    assert (order == user[:, 5:].argsort(1)).float().mean() > 0.9  # a large weight: the user model's order
    z = lambda s: (s - s.mean(1, keepdim=True)) / s.std(1, correction=0, keepdim=True)  # noqa: E731
    expected = z(z(item[:, 5:]) + z(user[:, 5:]))
    torch.testing.assert_close(z(blend(item, user, 1.0)[:, 5:]), expected)


@pytest.mark.parametrize("table_limit", [2**26, 0], ids=["table", "per-batch"])
def test_teacher_blended_with_user_ease_and_session_weighted(clustered_split, table_limit):
    ds = clustered_split
    users = torch.tensor([3, 0, 3, 7])
    session = EASE(50.0, session_hours=24.0).fit(ds.train, ds.n_users, ds.n_items)
    user_model = UserEASE(50.0).fit(ds.train, ds.n_users, ds.n_items)
    teacher = EaseTeacher(session, table_limit=table_limit, user_model=user_model, user_weight=0.5)
    item_only = EaseTeacher(session, table_limit=table_limit).scores(users)
    scores = teacher.scores(users)
    torch.testing.assert_close(scores, blend(item_only, user_model.score(users), 0.5))
    items = torch.tensor([14, 2, 5, 0, 33])
    torch.testing.assert_close(teacher.scores(users, items), scores[:, items])  # columns need every item's statistics
    options = ("train.teacher_session_hours=24", "train.teacher_user_weight=0.5")
    fitted = EaseTeacher.from_config(ds, tiny_config("unused", *options).train)  # both L2 weights chosen on valid
    assert fitted.user_model is not None and fitted.user_model.reg in UserEASE.REG_GRID and fitted.reg in EASE.REG_GRID
    assert fitted.session_hours == 24 and fitted.user_weight == 0.5
    # what `kgrec train` and the benchmarks print
    assert fitted.description() == (
        f"session-weighted (24 h) EASE lambda={fitted.reg:g} + 0.5 x user EASE lambda={fitted.user_model.reg:g} (chosen on valid)"
    )
    given = EaseTeacher.from_config(ds, tiny_config("unused", *options, "train.teacher_reg=50", "train.teacher_user_reg=100").train)
    assert given.description() == (
        "session-weighted (24 h) EASE lambda=50 (train.teacher_reg) + 0.5 x user EASE lambda=100 (train.teacher_user_reg)"
    )
    torch.testing.assert_close(given.scores(users), EaseTeacher.fit(ds, 50.0, session_hours=24.0, user_weight=0.5, user_reg=100.0).scores(users))


@pytest.mark.parametrize("table_limit", [2**26, 0], ids=["table", "per-batch"])
def test_teacher_on_a_recency_weighted_history(clustered_split, table_limit):
    ds = clustered_split
    users, items = torch.tensor([3, 0, 3, 7]), torch.tensor([14, 2, 5, 0, 33])
    recent = EASE(50.0, recency_hours=100.0, recency_floor=0.1).fit(ds.train, ds.n_users, ds.n_items)
    teacher = EaseTeacher(recent, table_limit=table_limit)
    scores = teacher.scores(users)
    expected = recent.score(users)
    trained = torch.zeros_like(expected, dtype=torch.bool)
    trained[dense_rows(recent.history, users, torch.bool)] = True
    torch.testing.assert_close(scores, expected.masked_fill(trained, float("-inf")))  # W_u B, training items out
    torch.testing.assert_close(teacher.scores(users, items), scores[:, items])  # the columns-only path weighs too
    plain = EASE(50.0).fit(ds.train, ds.n_users, ds.n_items).score(users)
    assert not torch.allclose(expected, plain)
    options = ("train.teacher_recency_hours=100", "train.teacher_recency_floor=0.1", "train.teacher_reg=50")
    fitted = EaseTeacher.from_config(ds, tiny_config("unused", *options).train)
    assert fitted.description() == "EASE lambda=50 (train.teacher_reg), history weighted by recency (100 h; floor 0.1)"
    torch.testing.assert_close(fitted.scores(users), scores)


def test_perplexity_keeps_the_target_breadth_when_recency_shrinks_the_scores(clustered_split):
    """Down-weighting old items shrinks a user's scores, so one temperature gives a broader target
    (ml-100k's leave-last-out split: from 15 items to 1,387 at T = 0.05); ``train.teacher_perplexity``
    gives every user the asked breadth with or without the recency weighting."""
    users = torch.arange(12)
    recency = ("train.teacher_recency_hours=0.01", "train.teacher_recency_floor=0.01")

    def scores(*options: str) -> torch.Tensor:
        config = tiny_config("unused", "train.teacher_reg=50", "model.distill_temperature=1", *options)
        return EaseTeacher.from_config(clustered_split, config.train).scores(users)

    assert _perplexity(scores(*recency) / 0.05).median() > _perplexity(scores() / 0.05).median()
    for options in ((), recency):
        torch.testing.assert_close(_perplexity(scores(*options, "train.teacher_perplexity=4")), torch.full((12,), 4.0))


def test_teacher_options_that_the_data_cannot_serve_are_refused(clustered_split, monkeypatch):
    import kgrec.train.teacher as teacher_module

    ds = clustered_split
    untimed = dataclasses.replace(ds, train=dataclasses.replace(ds.train, timestamp=None))
    with pytest.raises(ConfigError, match="teacher_session_hours: the training interactions have no timestamps"):
        EaseTeacher.fit(untimed, reg=50.0, session_hours=1.0)
    with pytest.raises(ConfigError, match="teacher_recency_hours: the training interactions have no timestamps"):
        EaseTeacher.fit(untimed, reg=50.0, recency_hours=1.0)
    monkeypatch.setattr(teacher_module, "MAX_USER_EASE_USERS", ds.n_users - 1)
    with pytest.raises(ConfigError, match="at most .* users.*teacher_user_weight=0"):
        EaseTeacher.fit(ds, reg=50.0, user_weight=1.0)


def _distill_term_after_training(data, weight: float, shared: int = 0) -> float:
    """The distillation term (to an EASE teacher, over the whole catalogue) after 10 epochs
    trained with ``weight`` on it, computed over ``shared`` items drawn per step when > 0."""
    loss = "sampled_softmax" if shared else "full_softmax"
    config = tiny_config(data, "model.tasks=[retrieval]", f"model.retrieval_loss={loss}", f"train.shared_negatives={shared}",
                         f"model.distill_weight={weight}", "train.teacher_reg=50")  # fmt: skip
    prepared = prepare(config, progress=False)
    torch.manual_seed(0)
    module = RecommenderModule(build_model(config, prepared), prepared.dataset, config)
    assert (module.teacher is not None) == (weight > 0)
    teacher = module.teacher or EaseTeacher.fit(prepared.dataset, reg=50.0)
    users, tower, model = module.train_user, module.model.towers["retrieval"], module.model
    optimizer = module.configure_optimizers()
    for epoch in range(10):
        for step, (user, item, _rating) in enumerate(module.train_dataloader()):
            batch = RecBatch(user=user, pos_item=item, teacher_scores=teacher.scores(user))
            if shared:
                batch.shared_items = module.shared_items(torch.Generator().manual_seed(100 * epoch + step))
                batch.teacher_scores = batch.teacher_scores[:, batch.shared_items]
            loss = model.joint_loss(model.compute_losses(batch))[0]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        enc = model.encode()
        q = model.user_vectors(users, encoded=enc)
        return float(tower.distillation_loss(tower.score_all(q, enc.item_z["retrieval"]), teacher.scores(users), 0.05))


@pytest.mark.parametrize("shared", [0, 20], ids=["whole catalogue", "shared negatives"])
def test_the_student_learns_the_teachers_ranking(clustered_dataset, shared):
    # positives alone move the student towards EASE's ranking too; the teacher's term more so,
    # also when each step teaches it over a third of the catalogue only
    taught = _distill_term_after_training(clustered_dataset, 1.0, shared)
    assert taught < _distill_term_after_training(clustered_dataset, 0.0, shared) - 0.1


@pytest.mark.parametrize("calibration", [[], ["train.teacher_perplexity=5", "model.distill_temperature=1"],
                                         ["train.teacher_session_hours=24", "train.teacher_user_weight=1"],
                                         ["train.teacher_recency_hours=auto", "data.split=temporal"]],
                         ids=["temperature", "perplexity", "session + user EASE", "recency on a time split"])  # fmt: skip
def test_distilled_run_needs_teacher_scores_and_trains_end_to_end(clustered_dataset, tmp_path, calibration):
    config = tiny_config(clustered_dataset, "model.distill_weight=1.0", "model.retrieval_loss=full_softmax", *calibration)
    prepared = prepare(config, progress=False)
    model = build_model(config, prepared)
    with pytest.raises(ValueError, match="teacher_scores"):
        model.compute_losses(RecBatch(user=torch.tensor([0, 1]), pos_item=torch.tensor([0, 1]), rating=torch.ones(2)))
    metrics = train(config, tmp_path / "run", prepared=prepared)
    assert metrics["test"]["ndcg@10"] > 0 and (tmp_path / "run" / "manifest.json").is_file()
    module = RecommenderModule(model, prepared.dataset, config)
    assert module.teacher is not None
    if "train.teacher_perplexity=5" in calibration:  # the teacher is fitted with the config's perplexity
        assert module.teacher.perplexity == 5 and module.teacher.beta is not None
    if "train.teacher_user_weight=1" in calibration:  # ... and with its session weighting and user EASE
        assert module.teacher.user_model is not None and module.teacher.user_weight == 1.0
        assert module.teacher.session_hours == 24


def test_a_catalogue_too_large_for_the_teacher_is_refused(clustered_split, monkeypatch):
    import kgrec.train.teacher as teacher_module

    ds = clustered_split
    monkeypatch.setattr(teacher_module, "MAX_TEACHER_ITEMS", ds.n_items - 1)
    with pytest.raises(ConfigError, match=r"needs 0 GB for 60 items.*distill_weight=0"):
        EaseTeacher.fit(ds, reg=50.0)


def test_recency_chosen_on_valid_with_the_l2_weight(clustered_split):
    import kgrec.train.teacher as teacher_module
    from kgrec.eval import evaluate_split

    ds = clustered_split
    auto = EaseTeacher.from_config(ds, tiny_config("unused", "train.teacher_recency_hours=auto").train)
    assert auto.recency_hours in teacher_module.RECENCY_GRID and auto.reg in EASE.REG_GRID and auto.recency_tuned
    assert ("no recency weighting (chosen on valid)" if auto.recency_hours is None else " h, chosen on valid; floor 0.05)") in auto.description()
    chosen = evaluate_split(auto.scores, ds, "valid")["ndcg@10"]
    for reg in EASE.REG_GRID:  # no pair of the grid ranks valid better than the chosen one
        for hours in teacher_module.RECENCY_GRID:
            other = EaseTeacher.fit(ds, reg, recency_hours=hours)
            assert evaluate_split(other.scores, ds, "valid")["ndcg@10"] <= chosen + 1e-6, (reg, hours)
    given = EaseTeacher.fit(ds, auto.reg, recency_hours=auto.recency_hours)  # the same teacher, fitted directly
    torch.testing.assert_close(auto.scores(torch.arange(ds.n_users)), given.scores(torch.arange(ds.n_users)))
    with pytest.raises(ConfigError, match="teacher_recency_hours: expected a positive number of hours, auto or null"):
        tiny_config("unused", "train.teacher_recency_hours=soon")
