"""Audit of the negative sampler and of the defaults fitted to the data (kgrec.train.sampling, kgrec.train.defaults)."""

import time

import pytest
import torch

from kgrec.train import load_config, load_data
from kgrec.train.defaults import fit_defaults
from kgrec.train.sampling import NegativeSampler, step_generator
from tests.train.test_defaults import CATEGORIES, CLICKS, _rated


def _positives(sampler: NegativeSampler, users: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    return sampler.is_positive(users.view(-1, 1).expand_as(neg), neg)


def test_a_heavy_user_of_a_small_catalogue_gets_only_items_outside_their_training_ones():
    # user 0 has 8 of the 10 items: 10 redraw rounds left 0.8**11 = 8.6% of the draws on a training
    # positive, which the loss then pushed down as a negative
    sampler = NegativeSampler(torch.zeros(8, dtype=torch.long), torch.tensor([0, 1, 2, 4, 5, 6, 8, 9]), n_items=10)
    users = torch.zeros(4_000, dtype=torch.long)
    neg = sampler.sample(users, 4, step_generator(2026, 3))
    assert neg.dtype == torch.int64 and neg.shape == (4_000, 4)
    assert not _positives(sampler, users, neg).any()
    counts = torch.bincount(neg.flatten(), minlength=10)
    assert counts.sum() == counts[3] + counts[7] and abs(int(counts[3]) - int(counts[7])) < 600  # both, about equally


def test_exact_draws_are_uniform_over_each_users_other_items():
    torch.manual_seed(0)
    n = 40
    user, item = torch.randint(0, 30, (900,)), torch.randint(0, n, (900,))
    sampler = NegativeSampler(user, item, n, max_rounds=0)  # every rejected draw is drawn exactly
    users = torch.randint(0, 30, (6_000,))
    neg = sampler.sample(users, 5, step_generator(1, 0))
    assert not _positives(sampler, users, neg).any()
    # one user's draws: every item outside their training ones, about equally often
    mine = neg[users == 0].flatten()
    outside = sorted(set(range(n)) - set(item[user == 0].tolist()))
    counts = torch.bincount(mine, minlength=n)[outside].float()
    assert (counts > 0).all() and counts.std() / counts.mean() < 0.35


def test_a_user_with_every_item_does_not_hang_and_keeps_uniform_draws():
    sampler = NegativeSampler(torch.zeros(6, dtype=torch.long), torch.arange(6), n_items=6)
    started = time.perf_counter()
    neg = sampler.sample(torch.zeros(500, dtype=torch.long), 8, step_generator(0, 0))
    assert time.perf_counter() - started < 2.0
    assert neg.shape == (500, 8) and set(neg.unique().tolist()) == set(range(6))  # no negative exists: draws kept


def test_exact_draws_leave_the_steps_stream_as_plain_rejection_sampling_leaves_it():
    """The KG triples of a step come from the same generator after the negatives: drawing a
    heavy user's leftovers exactly must not move them."""
    user, item = torch.zeros(9, dtype=torch.long), torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 9])
    sampler = NegativeSampler(user, item, n_items=10)
    users = torch.zeros(300, dtype=torch.long)
    ours = step_generator(5, 9)
    neg = sampler.sample(users, 3, ours)
    assert (neg == 8).all()
    plain = step_generator(5, 9)  # the draws plain rejection sampling makes, round by round
    drawn = torch.randint(0, 10, (300, 3), generator=plain)
    for _ in range(sampler.max_rounds):
        bad = _positives(sampler, users, drawn)
        if not bad.any():
            break
        drawn[bad] = torch.randint(0, 10, (int(bad.sum()),), generator=plain)
    assert torch.equal(torch.randint(0, 10**9, (8,), generator=ours), torch.randint(0, 10**9, (8,), generator=plain))
    again = sampler.sample(users, 3, step_generator(5, 9))
    assert torch.equal(neg, again)  # reproducible from (seed, step)


def test_a_sampler_without_training_pairs_draws_from_the_whole_catalogue():
    sampler = NegativeSampler(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), n_items=7)
    neg = sampler.sample(torch.arange(3), 4, step_generator(0, 0))
    assert neg.shape == (3, 4) and int(neg.min()) >= 0 and int(neg.max()) < 7


# ---------------------------------------------------------------- fit_defaults


def _given(atomic):
    """A folder holding its own split, trained on clicks without ratings."""
    rows = CLICKS.splitlines()
    header, body = rows[0], rows[1:]
    return atomic(name="given", train_inter="\n".join([header, *body[::3], *body[1::3]]),
                  valid_inter="\n".join([header, *body[2::6]]), test_inter="\n".join([header, *body[5::6]]))  # fmt: skip


@pytest.mark.parametrize(
    ("files", "overrides"),
    [
        (dict(name="clicks", inter=CLICKS), []),
        (dict(name="shop", inter=CLICKS, item=CATEGORIES), []),
        (dict(name="rated", inter=_rated([0, 1])), []),
        (dict(name="alike", inter=_rated([3])), []),
        (dict(name="clicks", inter=CLICKS), ["graph.users=true"]),
        ("given", ["data.split=temporal", "data.seed=7"]),
    ],
)
def test_fitting_a_fitted_config_again_changes_nothing_and_says_nothing(atomic, files, overrides):
    path = _given(atomic) if files == "given" else atomic(**files)
    config = load_config(None, [f"data.path={path}", *overrides])
    data = load_data(config)
    fitted, notes = fit_defaults(config, data)
    assert notes  # each dataset here lacks something the defaults would train
    again, more = fit_defaults(fitted, data)
    assert again == fitted and more == []
    assert len(notes) == len(set(notes))  # each change said once


def test_fit_defaults_reads_the_training_ratings_only(atomic):
    # valid and test hold the only 5s: the like threshold is three quarters up the TRAINING range (1-3)
    header = "user_id:token|item_id:token|rating:float"
    train_rows = [f"u{u}|i{k}|{1 + (u + k) % 3}" for u in range(8) for k in range(6)]
    held = [f"u{u}|i{6 + u % 2}|5" for u in range(8)]
    path = atomic(name="scale", train_inter="\n".join([header, *train_rows]),
                  valid_inter="\n".join([header, *held[:4]]), test_inter="\n".join([header, *held[4:]]))  # fmt: skip
    config = load_config(None, [f"data.path={path}"])
    fitted, _ = fit_defaults(config, load_data(config))
    assert fitted.model.like_threshold == 2.5
