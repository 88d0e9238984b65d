"""Full-ranking metrics: hand-computed toy values, exclusion, skipped users, batching."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from kgrec.data import Dataset, Interactions
from kgrec.eval import (
    Shard,
    cold_candidates,
    evaluate_ranking,
    evaluate_split,
    interaction_matrix,
    known_users_part,
)

# Toy: 3 users x 6 items. Scores rank items 0,1,2,3,4,5 for u0 and 5,4,3,2,1,0 for u1.
SCORES = torch.tensor(
    [
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        [0.3, 0.1, 0.2, 0.6, 0.5, 0.4],
    ]
)
TRAIN = Interactions(user=np.array([0, 1, 2]), item=np.array([0, 5, 2]))  # excluded
TEST = Interactions(user=np.array([0, 0, 1]), item=np.array([1, 5, 3]))  # u2 has no test item


def by_row(scores: torch.Tensor):
    return lambda users: scores[users]


def pairs(users: list[int], items: list[int]) -> Interactions:
    return Interactions(user=np.array(users, dtype=np.int64), item=np.array(items, dtype=np.int64))


def test_metrics_match_hand_computed_values_on_toy():
    r = evaluate_ranking(by_row(SCORES), TEST, TRAIN, n_users=3, n_items=6, ks=(1, 3))
    # u0: item 0 excluded -> ranking 1,2,3,4,5; relevant {1,5}; top-3 = [1,2,3], hits [1,0,0]
    #   @1: recall 1/2, precision 1/1, hit 1, mrr 1/1, ndcg 1/1 (IDCG over min(2,1) = 1 item)
    #   @3: recall 1/2, precision 1/3, hit 1, mrr 1,   ndcg 1 / (1 + 1/log2(3)) = 0.613147
    # u1: item 5 excluded -> ranking 4,3,2,1,0; relevant {3};  top-3 = [4,3,2], hits [0,1,0]
    #   @1: everything 0
    #   @3: recall 1/1, precision 1/3, hit 1, mrr 1/2, ndcg (1/log2(3)) / 1 = 0.630930
    # u2: no test item -> skipped; means over 2 users:
    g = 1 / math.log2(3)
    expected = {
        "recall@1": (0.5 + 0) / 2,  # 0.25
        "precision@1": (1 + 0) / 2,  # 0.5
        "hit@1": (1 + 0) / 2,
        "mrr@1": (1 + 0) / 2,
        "ndcg@1": (1 + 0) / 2,
        "recall@3": (0.5 + 1) / 2,  # 0.75
        "precision@3": (1 / 3 + 1 / 3) / 2,  # 1/3
        "hit@3": (1 + 1) / 2,
        "mrr@3": (1 + 0.5) / 2,  # 0.75
        "ndcg@3": (1 / (1 + g) + g) / 2,  # (0.613147 + 0.630930) / 2 = 0.622038
    }
    assert r.pop("n_users") == 2
    assert r == pytest.approx(expected, abs=1e-6)
    assert r["ndcg@3"] == pytest.approx(0.622038, abs=1e-6)


def test_default_keys_are_at_10_and_20():
    scores = torch.rand(4, 30, generator=torch.Generator().manual_seed(0))
    r = evaluate_ranking(by_row(scores), pairs([0, 1], [3, 4]), None, n_users=4, n_items=30)
    expected_keys = {f"{m}@{k}" for m in ("recall", "ndcg", "hit", "mrr", "precision") for k in (10, 20)}
    assert set(r) == expected_keys | {"n_users"}
    assert all(isinstance(v, float) for k, v in r.items() if k != "n_users")


def test_excluded_items_never_reach_the_top_k():
    # one user, the model ranks items 0,1,2,3,4,5; items 0,1,2 are train items, 3 is the test item
    scores = torch.tensor([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    test, train = pairs([0], [3]), pairs([0, 0, 0], [0, 1, 2])
    with_exclusion = evaluate_ranking(by_row(scores), test, train, n_users=1, n_items=6, ks=(1,))
    without = evaluate_ranking(by_row(scores), test, None, n_users=1, n_items=6, ks=(1,))
    assert with_exclusion["hit@1"] == 1.0 and with_exclusion["ndcg@1"] == 1.0
    assert without["hit@1"] == 0.0


def test_exclusion_accepts_parts_list_and_csr_alike():
    scores = torch.rand(5, 12, generator=torch.Generator().manual_seed(1))
    train, valid, test = pairs([0, 1, 2], [0, 1, 2]), pairs([0, 3], [3, 4]), pairs([0, 1, 3, 4], [5, 6, 7, 8])
    as_list = evaluate_ranking(by_row(scores), test, [train, valid], 5, 12, ks=(3,))
    as_csr = evaluate_ranking(by_row(scores), test, interaction_matrix([train, valid], 5, 12), 5, 12, ks=(3,))
    assert as_list == as_csr


def test_excluded_relevant_item_left_in_top_k_by_lack_of_items_is_not_a_hit():
    # 3 items; 2 excluded, one of them also a test item; at K=3 the -inf items fill the list
    scores = torch.tensor([[3.0, 2.0, 1.0]])
    r = evaluate_ranking(by_row(scores), pairs([0], [0]), pairs([0, 0], [0, 1]), 1, 3, ks=(3,))
    assert r["hit@3"] == 0.0 and r["recall@3"] == 0.0


def test_users_without_test_items_are_skipped():
    # u2 scores everything at 0 and has no test item: it must not pull the means down
    scores = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    r = evaluate_ranking(by_row(scores), pairs([0, 1], [0, 1]), None, n_users=3, n_items=3, ks=(1,))
    assert r["n_users"] == 2 and r["recall@1"] == 1.0


def test_score_fn_is_only_called_for_evaluated_users():
    seen: list[int] = []

    def score_fn(users: torch.Tensor) -> torch.Tensor:
        seen.extend(users.tolist())
        return SCORES[users]

    evaluate_ranking(score_fn, TEST, TRAIN, 3, 6, ks=(3,), batch_size=1)
    assert sorted(seen) == [0, 1]


def _random_case(seed: int = 0, n_users: int = 40, n_items: int = 50):
    rng = np.random.default_rng(seed)
    user = rng.integers(0, n_users, 600)
    item = rng.integers(0, n_items, 600)
    key = np.unique(user * n_items + item)  # no repeated pairs across parts
    rng.shuffle(key)
    user, item = key // n_items, key % n_items
    train = pairs(user[:400].tolist(), item[:400].tolist())
    test = pairs(user[400:].tolist(), item[400:].tolist())
    scores = torch.from_numpy(rng.random((n_users, n_items))).float()  # distinct: no ties
    return train, test, scores


def test_batch_size_does_not_change_the_numbers():
    train, test, scores = _random_case()
    results = [evaluate_ranking(by_row(scores), test, train, 40, 50, batch_size=b) for b in (1, 7, 1000)]
    assert results[0] == pytest.approx(results[1], abs=1e-12)
    assert results[0] == pytest.approx(results[2], abs=1e-12)


def test_shards_rank_their_own_users_and_sum_to_the_metrics_of_all():
    """Three processes, simulated by threads whose all-reduce meets at a barrier: each scores
    only every third user, and each returns the one-process metrics of every user."""
    import threading

    train, test, scores = _random_case(seed=1)
    popularity = torch.bincount(torch.as_tensor(train.item), minlength=50)  # the list metrics are summed too
    whole = evaluate_ranking(by_row(scores), test, train, 40, 50, batch_size=4, popularity=popularity)
    assert {"coverage@10", "popularity@10", "gini@10", "tail@10"} <= set(whole)
    world = 3
    barrier, sent = threading.Barrier(world), [None] * world
    scored: list[list[int]] = [[] for _ in range(world)]
    results: list[dict | None] = [None] * world

    def process(rank: int) -> None:
        def all_reduce(values: torch.Tensor) -> torch.Tensor:
            sent[rank] = values
            barrier.wait()
            return torch.stack(sent).sum(0)

        def score_fn(users: torch.Tensor) -> torch.Tensor:
            scored[rank].extend(users.tolist())
            return scores[users]

        shard = Shard(rank, world, all_reduce)
        results[rank] = evaluate_ranking(score_fn, test, train, 40, 50, batch_size=4, shard=shard, popularity=popularity)

    threads = [threading.Thread(target=process, args=(rank,)) for rank in range(world)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    evaluated = sorted(set(test.user.tolist()))
    assert [sorted(users) for users in scored] == [evaluated[rank::world] for rank in range(world)]
    for result in results:
        assert result == pytest.approx(whole, abs=1e-12) and result["n_users"] == whole["n_users"] == len(evaluated)
    with pytest.raises(ValueError, match="0 <= rank < world"):
        Shard(2, 2, lambda values: values)


def test_matches_a_per_user_reference_loop():
    train, test, scores = _random_case(seed=3)
    r = evaluate_ranking(by_row(scores), test, train, 40, 50, ks=(5, 10))
    seen, rel = defaultdict(set), defaultdict(set)
    for u, i in zip(train.user.tolist(), train.item.tolist(), strict=True):
        seen[u].add(i)
    for u, i in zip(test.user.tolist(), test.item.tolist(), strict=True):
        rel[u].add(i)
    ref: dict[str, list[float]] = defaultdict(list)
    for u in sorted(rel):
        s = scores[u].double().numpy().copy()
        s[list(seen[u])] = -np.inf
        order = np.argsort(-s)
        for k in (5, 10):
            h = [int(i in rel[u]) for i in order[:k]]
            ref[f"recall@{k}"].append(sum(h) / len(rel[u]))
            ref[f"precision@{k}"].append(sum(h) / k)
            ref[f"hit@{k}"].append(float(any(h)))
            ref[f"mrr@{k}"].append(1 / (h.index(1) + 1) if any(h) else 0.0)
            dcg = sum(x / math.log2(j + 2) for j, x in enumerate(h))
            ref[f"ndcg@{k}"].append(dcg / sum(1 / math.log2(j + 2) for j in range(min(k, len(rel[u])))))
    assert r.pop("n_users") == len(rel)
    assert r == pytest.approx({key: float(np.mean(v)) for key, v in ref.items()}, abs=1e-9)


def test_list_metrics_match_hand_computed_values():
    # 5 items; training popularity 10, 5, 3, 1, 0: the head (20% of 5 items) is item 0
    scores = torch.tensor([[9.0, 8, 1, 1, 1], [9, 1, 8, 1, 1], [1, 1, 1, 9, 8]])  # top 2: [0,1], [0,2], [3,4]
    target = pairs([0, 1, 2], [1, 2, 3])
    out = evaluate_ranking(by_row(scores), target, None, 3, 5, ks=(2,), popularity=torch.tensor([10, 5, 3, 1, 0]))
    assert out["coverage@2"] == 1.0  # all five items listed
    assert out["popularity@2"] == pytest.approx(((10 + 5) / 2 + (10 + 3) / 2 + (1 + 0) / 2) / 3)
    assert out["tail@2"] == pytest.approx((1 / 2 + 1 / 2 + 2 / 2) / 3)
    # listed 2, 1, 1, 1, 1 times: sorted 1,1,1,1,2 -> sum (2j - 6) c_j = -4 - 2 + 0 + 2 + 8 = 4, over 5 * 6
    assert out["gini@2"] == pytest.approx(4 / 30)
    assert list(out)[-5:] == ["coverage@2", "popularity@2", "gini@2", "tail@2", "n_users"]
    # without popularity, no list metrics; with the wrong shape, a clear error
    assert "coverage@2" not in evaluate_ranking(by_row(scores), target, None, 3, 5, ks=(2,))
    with pytest.raises(ValueError, match=r"popularity: expected \(5,\) counts"):
        evaluate_ranking(by_row(scores), target, None, 3, 5, ks=(2,), popularity=torch.ones(4))


def test_an_excluded_item_filling_a_short_list_is_not_counted_as_listed():
    # 3 items, user 0 has seen 2: its top 3 hold one real item (2: popularity 1, in the tail) and two -inf fillers
    out = evaluate_ranking(by_row(torch.tensor([[3.0, 2, 1]])), pairs([0], [2]), pairs([0, 0], [0, 1]), 1, 3, ks=(3,),
                           popularity=torch.tensor([4, 2, 1]))  # fmt: skip
    assert out["coverage@3"] == pytest.approx(1 / 3) and out["popularity@3"] == 1.0 and out["tail@3"] == 1.0


def test_with_candidates_coverage_and_gini_are_over_the_items_a_list_can_hold():
    # 6 items, only 4 and 5 ranked; two users list 4 first, so at K=1: half the candidates, unevenly
    scores = torch.tensor([[0.0, 0, 0, 0, 2, 1], [0.0, 0, 0, 0, 2, 1]])
    candidates = torch.tensor([False, False, False, False, True, True])
    out = evaluate_ranking(by_row(scores), pairs([0, 1], [4, 5]), None, 2, 6, ks=(1,), candidates=candidates,
                           popularity=torch.tensor([5, 4, 3, 2, 0, 0]))  # fmt: skip
    assert out["coverage@1"] == 0.5 and out["gini@1"] == pytest.approx(0.5)  # counts (0, 2): (-1*0 + 1*2) / (2*2)


def test_gini_is_zero_for_equal_counts_and_near_one_when_one_item_takes_all():
    from kgrec.eval.ranking import gini

    assert gini(torch.tensor([3.0, 3, 3, 3])) == 0.0
    assert gini(torch.tensor([0.0, 0, 0, 7])) == pytest.approx(1 - 1 / 4)
    assert gini(torch.zeros(3)) == 0.0


def test_evaluate_split_excludes_train_for_valid_and_train_plus_valid_for_test():
    # one user, items ranked 0..4; train {0}, valid {1}, test {2}
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    ds = Dataset(
        name="toy",
        path=None,  # type: ignore[arg-type]
        users=np.array(["u"], dtype=object),
        items=np.array(list("abcde"), dtype=object),
        train=pairs([0], [0]),
        valid=pairs([0], [1]),
        test=pairs([0], [2]),
        split="given",
    )
    # valid: item 1 ranks first once 0 is gone; test: item 2 ranks first once 0 and 1 are gone
    assert evaluate_split(by_row(scores), ds, "valid", ks=(1,))["hit@1"] == 1.0
    assert evaluate_split(by_row(scores), ds, "test", ks=(1,))["hit@1"] == 1.0


def _toy_dataset(train, valid, test) -> Dataset:
    return Dataset(
        name="toy", path=None,  # type: ignore[arg-type]
        users=np.array(["u", "v"], dtype=object), items=np.array(list("abcdef"), dtype=object),
        train=train, valid=valid, test=test, split="given",
    )  # fmt: skip


def test_evaluate_split_counts_popularity_on_train_only():
    # u lists item 4 (in valid once, in train never), v lists item 0 (in train once): (0 + 1) / 2
    ds = _toy_dataset(pairs([0, 0, 1, 1], [0, 1, 2, 3]), pairs([1], [4]), pairs([0, 1], [2, 1]))
    scores = torch.tensor([[0.0, 0, 0, 0, 9, 1], [9.0, 0, 0, 0, 0, 1]])
    assert evaluate_split(by_row(scores), ds, "test", ks=(1,))["popularity@1"] == 0.5


def test_cold_item_parts_rank_among_their_own_items_only():
    # items 0-3 warm (train); 4 is a valid-only item, 5 a test-only item (a cold-item split)
    ds = _toy_dataset(pairs([0, 0, 1, 1], [0, 1, 2, 3]), pairs([0, 1], [4, 4]), pairs([1], [5]))
    scores = torch.tensor([[0.0, 0.0, 9.0, 9.0, 1.0, 2.0], [9.0, 9.0, 0.0, 0.0, 2.0, 1.0]])
    assert cold_candidates(ds, "valid").tolist() == [False] * 4 + [True, False]
    assert evaluate_split(by_row(scores), ds, "valid", ks=(1,))["hit@1"] == 1.0  # warm 9.0s ignored
    assert evaluate_split(by_row(scores), ds, "test", ks=(1,))["hit@1"] == 1.0
    full = evaluate_ranking(by_row(scores), ds.valid, ds.train, 2, 6, ks=(1,))
    assert full["hit@1"] == 0.0  # over the whole catalogue a warm item wins


def test_users_with_no_training_interaction_are_skipped():
    # v first appears in valid (a global time split): nothing of v's to rank from
    ds = _toy_dataset(pairs([0, 0], [0, 1]), pairs([0, 1], [2, 3]), pairs([0, 1], [4, 5]))
    scores = torch.tensor([[0.0, 0.0, 9.0, 1.0, 9.0, 1.0], [0.0, 0.0, 1.0, 9.0, 1.0, 9.0]])
    for part in ("valid", "test"):
        result = evaluate_split(by_row(scores), ds, part, ks=(1,))
        assert result["n_users"] == 1 and result["hit@1"] == 1.0
    flipped = scores.flip(0)  # u now ranks its items last: only u's ranking counts
    assert evaluate_split(by_row(flipped), ds, "valid", ks=(1,))["hit@1"] == 0.0
    kept = known_users_part(ds, "test")  # what training's rating metrics read too
    assert kept.user.tolist() == [0] and kept.item.tolist() == [4]


def test_parts_with_a_warm_item_rank_the_whole_catalogue():
    ds = _toy_dataset(pairs([0, 1], [0, 1]), pairs([0, 1], [4, 0]), pairs([1], [5]))
    assert cold_candidates(ds, "valid") is None  # item 0 of valid is warm: a ratio split
    assert cold_candidates(ds, "test") is not None


def test_candidates_mask_is_checked():
    with pytest.raises(ValueError, match="candidates"):
        evaluate_ranking(by_row(SCORES), TEST, TRAIN, 3, 6, ks=(2,), candidates=torch.ones(5, dtype=torch.bool))


def test_wrong_score_shape_and_bad_ks_fail_early():
    with pytest.raises(ValueError, match="expected \\(2, 6\\)"):
        evaluate_ranking(lambda u: torch.zeros(len(u), 5), TEST, TRAIN, 3, 6, ks=(3,))
    with pytest.raises(ValueError, match="NaN"):
        evaluate_ranking(lambda u: torch.full((len(u), 6), float("nan")), TEST, TRAIN, 3, 6, ks=(3,))
    with pytest.raises(ValueError, match="cut-offs"):
        evaluate_ranking(by_row(SCORES), TEST, TRAIN, 3, 6, ks=(7,))
