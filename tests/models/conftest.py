"""Model fixtures: a tiny random knowledge graph, text vectors, history and a training batch.

Nodes 0..5 are the items, 6..10 other entities, 11..14 users (``interacted`` is relation 3).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from kgrec.models import ModelSizes, RecBatch, SideInputs, history_matrix, rating_matrix

N_ITEMS, N_ENTITIES, N_USERS, N_REL, TEXT_DIM, DIM = 6, 5, 4, 4, 16, 8
N_NODES = N_ITEMS + N_ENTITIES + N_USERS
USER_OFFSET = N_ITEMS + N_ENTITIES


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="package")
def _one_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread is faster, and immune to a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def graph() -> tuple[torch.Tensor, torch.Tensor]:
    """``(edge_index (2, E), edge_type (E,))``: item -r-> entity (r in 0..2), user -3-> item."""
    g = torch.Generator().manual_seed(1)
    heads = torch.randint(0, N_ITEMS, (24,), generator=g)
    tails = torch.randint(N_ITEMS, N_ITEMS + N_ENTITIES, (24,), generator=g)
    rels = torch.randint(0, 3, (24,), generator=g)
    users = USER_OFFSET + torch.tensor([0, 0, 1, 1, 2, 3, 3])
    items = torch.tensor([0, 1, 1, 2, 3, 4, 5])
    edge_index = torch.stack([torch.cat([heads, users]), torch.cat([tails, items])])
    edge_type = torch.cat([rels, torch.full((7,), 3)])
    return edge_index, edge_type


@pytest.fixture
def sizes() -> ModelSizes:
    return ModelSizes(
        num_users=N_USERS, num_items=N_ITEMS, num_nodes=N_NODES, num_relations=N_REL, text_dim=TEXT_DIM,
        user_node_offset=USER_OFFSET, rating_mean=3.5, rating_range=(1.0, 5.0),
    )


@pytest.fixture
def side(graph: tuple[torch.Tensor, torch.Tensor]) -> SideInputs:
    users = torch.tensor([0, 0, 1, 1, 2, 3, 3])
    items = torch.tensor([0, 1, 1, 2, 3, 4, 5])
    return SideInputs(
        edge_index=graph[0], edge_type=graph[1],
        text=torch.randn(N_ITEMS, TEXT_DIM, generator=torch.Generator().manual_seed(2)),
        history=history_matrix(users, items, N_USERS, N_ITEMS),
        ratings=rating_matrix(users, items, torch.tensor([5.0, 3.0, 4.0, 2.0, 5.0, 1.0, 4.0]), N_USERS, N_ITEMS),
        item_log_q=torch.full((N_ITEMS,), -torch.log(torch.tensor(float(N_ITEMS)))),
    )


@pytest.fixture
def batch() -> RecBatch:
    return RecBatch(
        user=torch.tensor([0, 0, 1, 1, 2, 3, 3]),
        pos_item=torch.tensor([0, 1, 1, 2, 3, 4, 5]),
        neg_items=torch.tensor([[2, 3], [4, 5], [0, 3], [5, 4], [1, 0], [2, 3], [0, 1]]),
        rating=torch.tensor([5.0, 3.0, 4.0, 2.0, 5.0, 1.0, 4.0]),
        kg_head=torch.tensor([0, 1, 2]),
        kg_rel=torch.tensor([0, 1, 2]),
        kg_tail=torch.tensor([6, 7, 8]),
        kg_neg_tail=torch.tensor([[7, 9], [8, 10], [6, 9]]),
    )
