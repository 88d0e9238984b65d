from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from kgrec.models import gradnorm_weight_grad, project_conflicting
from kgrec.train.module import EpochShuffle, RecommenderModule
from kgrec.train.run import build_model, prepare
from kgrec.train.sampling import PCGRAD_STREAM, step_seed
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


def test_unused_parameters_are_those_no_weighted_loss_reaches_and_ddp_is_told_of_them(clustered_dataset) -> None:
    from kgrec.train.run import _ddp_strategy

    def module_for(*overrides: str) -> RecommenderModule:
        config = tiny_config(clustered_dataset, *overrides)
        prepared = prepare(config, progress=False)
        g = prepared.graph
        triples = tuple(torch.as_tensor(a) for a in (g.head, g.relation, g.tail))
        return RecommenderModule(build_model(config, prepared), prepared.dataset, config, triples)

    every_task = module_for("model.tasks=[retrieval,rating,like,kg]")
    state = torch.get_rng_state()
    assert every_task.unused_parameters() == []
    assert torch.equal(torch.get_rng_state(), state)  # the dropout masks drawn to find them leave no trace
    cpu = torch.device("cpu")
    assert _ddp_strategy("ddp", every_task, cpu) == "ddp" and _ddp_strategy("auto", every_task, cpu) == "auto"

    like_off = module_for("model.tasks=[retrieval,rating,like,kg]", "model.loss_weights={retrieval: 1, rating: 0.1, like: 0, kg: 0.1}")
    unused = like_off.unused_parameters()
    assert unused and all(".like." in name for name in unused), unused  # the like tower and its trunk gate
    assert _ddp_strategy("ddp", like_off, cpu) == "ddp_find_unused_parameters_true"
    assert _ddp_strategy("ddp_spawn", like_off, cpu) == "ddp_spawn_find_unused_parameters_true"
    # auto over several devices is Lightning's ddp; over one (or "auto", one CPU process) no DDP
    assert _ddp_strategy("auto", like_off, cpu, devices=2) == "ddp_find_unused_parameters_true"
    assert _ddp_strategy("auto", like_off, cpu, devices="2") == "ddp_find_unused_parameters_true"
    assert _ddp_strategy("auto", like_off, cpu, devices=1) == _ddp_strategy("auto", like_off, cpu, devices="auto") == "auto"
    assert _ddp_strategy("auto", every_task, cpu, devices=2) == "auto"

    kg_only = module_for("model.tasks=[kg]")
    assert "model.item_embedding.weight" in kg_only.unused_parameters()


def task_gradients(module: RecommenderModule, terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(M, P)``: each term's gradient on the module's shared parameters, flattened."""
    shared = module.shared_parameters()
    assert list(terms) == ["retrieval", "rating", "like", "kg"]
    rows = []
    for term in terms.values():
        grads = torch.autograd.grad(term, shared, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if d is None else d).reshape(-1) for d, p in zip(grads, shared, strict=True)]))
    return torch.stack(rows)


def every_task_module(data: Path, loss_mode: str) -> tuple[RecommenderModule, Callable[[], dict[str, torch.Tensor]]]:
    """A module training every task with ``loss_mode``, and its losses on the first training
    batch, with the same dropout masks at every call."""
    config = tiny_config(data, "model.tasks=[retrieval,rating,like,kg]", f"model.loss_mode={loss_mode}")
    prepared = prepare(config, progress=False)
    g = prepared.graph
    module = RecommenderModule(build_model(config, prepared), prepared.dataset, config,
                               tuple(torch.as_tensor(a) for a in (g.head, g.relation, g.tail)))  # fmt: skip
    rec = module.rec_batch(next(iter(module.train_dataloader())))

    def losses() -> dict[str, torch.Tensor]:
        torch.manual_seed(1)
        return module.model.compute_losses(rec)

    return module, losses


def test_pcgrad_steps_shared_parameters_along_projected_task_gradients_and_the_rest_as_usual(clustered_dataset) -> None:
    module, losses = every_task_module(clustered_dataset, "pcgrad")
    shared = module.shared_parameters()
    generator = torch.Generator().manual_seed(step_seed(module.config.train.seed, 0, 0, PCGRAD_STREAM))
    expected, conflicts = project_conflicting(task_gradients(module, module.model.joint_loss.terms(losses())), generator)

    module.zero_grad()
    module.model.joint_loss(losses())[0].backward()
    plain = {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}
    module.zero_grad()
    step_losses = losses()
    module._pcgrad_terms = module.model.joint_loss.terms(step_losses)  # as training_step leaves them
    module.backward(module.model.joint_loss(step_losses)[0])

    offset, shared_ids = 0, {id(p) for p in shared}
    for p in shared:
        want = expected[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
        assert torch.allclose(p.grad, want, atol=1e-6) if p.grad is not None else not want.any()
    for name, p in module.named_parameters():  # each task's own parameters: its term's gradient
        if id(p) not in shared_ids and name in plain:
            assert torch.allclose(p.grad, plain[name], atol=1e-6), name
    assert module._pcgrad_conflicts == conflicts / 12 and module._pcgrad_terms is None
    differs = any(not torch.allclose(p.grad, plain[n], atol=1e-6) for n, p in module.named_parameters() if id(p) in shared_ids and n in plain)
    assert conflicts > 0 and differs  # this batch's task gradients conflict, so PCGrad moves the shared step


def test_gradnorm_backward_steps_the_model_as_usual_and_the_weights_by_the_task_gradient_norms(clustered_dataset) -> None:
    module, losses = every_task_module(clustered_dataset, "gradnorm")
    joint = module.model.joint_loss
    norms = task_gradients(module, losses()).norm(dim=1)  # of the unweighted losses
    # the first step: every loss is its own L(0), so equal rates, and the target is the mean weighted norm
    expected = gradnorm_weight_grad(joint.task_weights.detach(), norms, torch.ones(4), joint.alpha)

    module.zero_grad()
    joint(losses())[0].backward()
    plain = {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}
    module.zero_grad()
    step_losses = losses()
    module._gradnorm_losses = {t: step_losses[t] for t in joint.active(step_losses)}  # as training_step leaves them
    module.backward(joint(step_losses)[0])
    for name, p in module.named_parameters():  # the model's gradient: the weighted sum's, weights constant
        if name in plain:
            assert torch.allclose(p.grad, plain[name], atol=1e-6), name
    assert torch.allclose(joint.task_weights.grad, expected) and expected.abs().sum() > 0
    assert torch.allclose(joint.initial_losses, torch.stack([step_losses[t].detach() for t in joint.tasks]))
    assert module._gradnorm_losses is None


def _pcgrad_rank(rank: int, data: str, out: str) -> None:
    """One of two DDP processes (gloo): PCGrad's backward on this rank's own batch; saves the
    rank's task gradients (computed apart) and the shared gradients the backward left."""
    import types

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{out}/store", rank=rank, world_size=2)
    config = tiny_config(Path(data), "model.tasks=[retrieval,rating,like,kg]", "model.loss_mode=pcgrad")
    prepared = prepare(config, progress=False)
    g = prepared.graph
    module = RecommenderModule(build_model(config, prepared), prepared.dataset, config,
                               tuple(torch.as_tensor(a) for a in (g.head, g.relation, g.tail)))  # fmt: skip

    def mean_over_ranks(tensor: torch.Tensor, reduce_op: str) -> torch.Tensor:
        assert reduce_op == "mean"
        dist.all_reduce(tensor)
        return tensor / 2

    # what backward reads of a DDP trainer (rank 1 keeps its own sampling stream: global_rank)
    module._trainer = types.SimpleNamespace(world_size=2, global_rank=rank, global_step=0,
                                            strategy=types.SimpleNamespace(reduce=mean_over_ranks))  # fmt: skip
    batches = list(module.train_dataloader())
    rec = module.rec_batch(batches[rank])  # each process its own batch
    torch.manual_seed(1)
    rows = task_gradients(module, module.model.joint_loss.terms(module.model.compute_losses(rec)))
    torch.manual_seed(1)
    losses = module.model.compute_losses(rec)
    module._pcgrad_terms = module.model.joint_loss.terms(losses)
    module.backward(module.model.joint_loss(losses)[0])
    shared = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel()) for p in module.shared_parameters()]
    torch.save({"rows": rows, "shared": torch.cat(shared), "conflicts": module._pcgrad_conflicts}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_pcgrad_under_ddp_projects_the_task_gradients_averaged_over_the_processes(clustered_dataset, tmp_path) -> None:
    """Two processes with different batches take the same shared step: PCGrad of the mean of
    their task gradients, visited in rank 0's order (projecting each rank's own gradients and
    then averaging, as DDP's usual all-reduce would, gives another step)."""
    import torch.multiprocessing as mp

    mp.spawn(_pcgrad_rank, args=(str(clustered_dataset), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert not torch.allclose(ranks[0]["rows"], ranks[1]["rows"])  # the batches differ

    def generator() -> torch.Generator:
        return torch.Generator().manual_seed(step_seed(tiny_config(clustered_dataset).train.seed, 0, 0, PCGRAD_STREAM))

    expected, conflicts = project_conflicting((ranks[0]["rows"] + ranks[1]["rows"]) / 2, generator())
    for saved in ranks:
        assert torch.allclose(saved["shared"], expected, atol=1e-6) and saved["conflicts"] == conflicts / 12
    apart = sum(project_conflicting(saved["rows"], generator())[0] for saved in ranks) / 2
    assert conflicts > 0 and (apart - expected).norm() > 0.005 * expected.norm()  # 1.5% here
