import itertools

import torch

from kgrec.train.sampling import (
    DROPOUT_STREAM,
    SAMPLING_STREAM,
    NegativeSampler,
    sample_kg_batch,
    step_generator,
    step_seed,
)


def test_negatives_are_never_training_positives():
    user = torch.tensor([0, 0, 0, 1, 1])
    item = torch.tensor([0, 1, 2, 3, 4])
    sampler = NegativeSampler(user, item, n_items=6)
    neg = sampler.sample(torch.tensor([0, 1] * 50), 8, step_generator(1, 0))
    assert neg.shape == (100, 8)
    assert not sampler.is_positive(torch.tensor([0, 1] * 50).view(-1, 1).expand(-1, 8), neg).any()


def test_held_out_items_can_be_negatives_since_exclusion_uses_train_only():
    # user 0 has train items {0, 1}; item 5 is (say) one of their test items: it stays drawable.
    sampler = NegativeSampler(torch.tensor([0, 0]), torch.tensor([0, 1]), n_items=20)
    drawn = set(sampler.sample(torch.zeros(500, dtype=torch.long), 1, step_generator(3, 7)).flatten().tolist())
    assert 5 in drawn and not drawn & {0, 1}


def test_draws_depend_only_on_seed_and_step():
    sampler = NegativeSampler(torch.tensor([0]), torch.tensor([0]), n_items=100)
    users = torch.zeros(10, dtype=torch.long)
    a = sampler.sample(users, 4, step_generator(5, 11))
    b = sampler.sample(users, 4, step_generator(5, 11))
    c = sampler.sample(users, 4, step_generator(5, 12))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_kg_batch_corrupts_tails_within_the_node_range():
    head, rel, tail = torch.arange(10), torch.zeros(10, dtype=torch.long), torch.arange(10, 20)
    h, r, t, corrupted = sample_kg_batch(head, rel, tail, n_nodes=20, size=6, generator=step_generator(0, 0))
    assert h.shape == corrupted.shape == (6,)
    assert torch.equal(t, h + 10)  # triples stay whole
    assert corrupted.min() >= 0 and corrupted.max() < 20


def test_each_ddp_rank_draws_its_own_stream_and_rank_0_keeps_the_single_process_one() -> None:
    assert step_seed(2026, 17) == step_seed(2026, 17, rank=0) == 2026 * 1_000_003 + 17
    draws = [torch.randint(0, 10**9, (8,), generator=step_generator(2026, 17, rank)) for rank in range(3)]
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[1], draws[2])
    again = torch.randint(0, 10**9, (8,), generator=step_generator(2026, 17, 1))
    assert torch.equal(draws[1], again)


def test_dropout_and_sampling_streams_stay_apart_for_every_rank_and_step() -> None:
    # Offsets of every (rank, stream) pair modulo 2**32 (what torch's CPU generator reads).
    offsets = sorted(step_seed(0, 0, rank, stream) % 2**32 for rank in range(64) for stream in (SAMPLING_STREAM, DROPOUT_STREAM))
    gaps = [b - a for a, b in itertools.pairwise(offsets)] + [offsets[0] + 2**32 - offsets[-1]]
    assert len(offsets) == 128 and min(gaps) > 11_000_000
    # ... so a step's dropout seed is no other step's sampling seed within those 11 million steps.
    sampling = {step_seed(2026, step) % 2**32 for step in range(100_000)}
    assert not sampling & {step_seed(2026, step, 0, DROPOUT_STREAM) % 2**32 for step in range(100_000)}


def test_corrupted_tail_is_never_the_true_tail_and_covers_every_other_node() -> None:
    n = 5
    tail = torch.full((20_000,), 2)
    _, _, _, corrupted = sample_kg_batch(tail, tail, tail, n_nodes=n, size=20_000, generator=step_generator(0, 0))
    counts = torch.bincount(corrupted, minlength=n)
    assert counts[2] == 0 and (counts[[0, 1, 3, 4]] > 4_500).all()  # uniform over the 4 others (5,000 each)
