"""Audit of full ranking: float64 scores with an exclusion set, NaN scores met by one process
of several under data parallelism."""

from __future__ import annotations

import threading

import numpy as np
import torch

from kgrec.data import Interactions
from kgrec.eval import Shard, evaluate_ranking
from kgrec.eval.ranking import NaNScoresError


def pairs(users: list[int], items: list[int]) -> Interactions:
    return Interactions(user=np.array(users, dtype=np.int64), item=np.array(items, dtype=np.int64))


def test_float64_scores_are_ranked_with_seen_items_excluded():
    # the -inf written over the excluded entries was float32: index_put refused the float64
    # scores (what evaluate_split, which always excludes train, met with a float64 model)
    scores = torch.tensor([[3.0, 2.0, 1.0, 0.0]], dtype=torch.float64)
    out = evaluate_ranking(lambda users: scores[users], pairs([0], [1]), pairs([0], [0]), 1, 4, ks=(1,))
    assert out["hit@1"] == 1.0 and out["ndcg@1"] == 1.0


def test_nan_scores_in_one_shard_are_refused_by_every_process():
    # only user 1 (rank 1's share) scores NaN: rank 1 raised at once while rank 0 waited in the
    # all-reduce for it forever (under DDP, a hang until the collective's timeout)
    world, n_items = 2, 5
    scores = torch.rand(4, n_items, generator=torch.Generator().manual_seed(0))
    scores[1, 2] = float("nan")
    target = pairs([0, 1, 2, 3], [0, 1, 2, 3])
    barrier, sent = threading.Barrier(world, timeout=5), [None] * world
    raised: list[BaseException | None] = [None] * world

    def process(rank: int) -> None:
        def all_reduce(values: torch.Tensor) -> torch.Tensor:
            sent[rank] = values
            barrier.wait()
            return torch.stack(sent).sum(0)

        try:
            evaluate_ranking(lambda users: scores[users], target, None, 4, n_items, ks=(2,),
                             shard=Shard(rank, world, all_reduce))  # fmt: skip
        except BaseException as error:  # noqa: BLE001 - the test reports what each process raised
            raised[rank] = error

    threads = [threading.Thread(target=process, args=(rank,)) for rank in range(world)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [type(error) for error in raised] == [NaNScoresError, NaNScoresError]

