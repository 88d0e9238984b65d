import torch
from torch.utils.data import DataLoader, TensorDataset

from kgrec.train.module import EpochShuffle, RecommenderModule
from kgrec.train.run import build_model, prepare
from tests.conftest import tiny_config


def test_training_batches_are_gathered_whole_as_row_by_row_fetching_gives_them(clustered_dataset) -> None:
    config = tiny_config(clustered_dataset, "model.tasks=[retrieval,rating]")
    prepared = prepare(config, progress=False)
    module = RecommenderModule(build_model(config, prepared), prepared.dataset, config)
    n, size = len(module.train_user), config.train.batch_size
    for epoch in (0, 1):
        loader = module.train_dataloader()
        loader.sampler.set_epoch(epoch)  # as Lightning does
        row_by_row = DataLoader(TensorDataset(module.train_user, module.train_item, module.train_rating),
                                batch_size=size, sampler=EpochShuffle(n, config.train.seed))  # fmt: skip
        row_by_row.sampler.set_epoch(epoch)
        got, expected = list(loader), list(row_by_row)
        assert [len(batch[0]) for batch in got] == [min(size, n - start) for start in range(0, n, size)]
        for have, want in zip(got, expected, strict=True):
            assert isinstance(have, list) and all(torch.equal(h, w) and h.dtype == w.dtype for h, w in zip(have, want, strict=True))
    pairs = {(int(u), int(i)) for batch in got for u, i in zip(batch[0], batch[1], strict=True)}
    train = prepared.dataset.train
    assert pairs == set(zip(train.user.tolist(), train.item.tolist(), strict=True))  # each training row, once an epoch
