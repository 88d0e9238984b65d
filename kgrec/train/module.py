"""Lightning wiring: research code (one training step, the joint loss, validation by full ranking).

Engineering (devices, precision, checkpoints, early stopping, logging) stays in
:mod:`kgrec.train.run` as Lightning Trainer settings and callbacks.

One step: a batch of training interactions ``(u, i, r)``; negatives ``j`` drawn against the
training positives; a batch of KG triples with corrupted tails; then

.. math::
    \\mathcal{L} = \\sum_m \\lambda_m \\mathcal{L}_m
    \\quad (\\text{or } \\textstyle\\sum_m \\lambda_m e^{-s_m} \\mathcal{L}_m + s_m \\text{ with uncertainty weighting,}
    \\text{ or learned } w_m \\text{ in place of } \\lambda_m \\text{ with GradNorm})

over the enabled towers (retrieval, rating, like, kg). Every random draw of a step comes from a
generator seeded by ``(seed, global_step)``, so resuming from a checkpoint repeats the run.
"""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Sampler, TensorDataset

from kgrec.data import Dataset
from kgrec.errors import DivergedError
from kgrec.eval import (
    Shard,
    auc,
    evaluate_split,
    known_users_negatives,
    known_users_part,
    link_prediction_metrics,
    mae,
    rmse,
)
from kgrec.eval.ranking import NaNScoresError
from kgrec.graph import HeldOutTriples
from kgrec.models import MultiTaskRecommender, RecBatch, project_conflicting
from kgrec.text import TextEncoder
from kgrec.train.config import RunConfig, monitor_mode
from kgrec.train.sampling import (
    DROPOUT_STREAM,
    PCGRAD_STREAM,
    NegativeSampler,
    sample_kg_batch,
    step_generator,
    step_seed,
)
from kgrec.train.teacher import EaseTeacher


class EpochShuffle(Sampler[int]):
    """A permutation of ``range(n)`` that depends only on ``(seed, epoch)``; Lightning calls
    :meth:`set_epoch` before each epoch (and wraps it for DDP)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):  # type: ignore[override]
        # modulo 2**64: torch's seeds end there (it reads a negative seed modulo 2**64 too, so no seed's order changes)
        generator = torch.Generator().manual_seed((self.seed * 7919 + self.epoch) % 2**64)
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


class Interactions(TensorDataset):
    """The training interactions as ``(user, item, rating)`` tensors, fetched a batch at a time:
    one gather per tensor instead of a ``__getitem__`` per row and a stack, which took 23-30 ms
    for 2,048 rows on 2 cores (``scripts/bench_loader.py``), where a whole GPU step of the
    default ml-100k config takes about 90 ms."""

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, ...]:
        index = torch.as_tensor(indices)
        return tuple(tensor[index] for tensor in self.tensors)


def _as_fetched(batch: tuple[Tensor, ...]) -> list[Tensor]:
    """The collate function of :class:`Interactions`: its batches come whole."""
    return list(batch)


def interactions_loader(columns: tuple[Tensor, ...], batch_size: int, seed: int) -> DataLoader:
    """Batches of ``batch_size`` rows of the ``columns`` (``user, item, rating``) in an order
    that depends only on ``(seed, epoch)`` (:class:`EpochShuffle`), each gathered whole
    (:class:`Interactions`)."""
    data = Interactions(*columns)
    return DataLoader(data, batch_size=batch_size, sampler=EpochShuffle(len(data), seed), collate_fn=_as_fetched)


def _reached_leaves(loss: Tensor) -> set[int]:
    """``id`` of every leaf tensor (parameter) that a backward pass from ``loss`` would reach."""
    reached: set[int] = set()
    seen: set[Any] = set()
    stack = [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):  # AccumulateGrad: a leaf's gradient lands here
            reached.add(id(node.variable))
        stack.extend(next_node for next_node, _ in node.next_functions)
    return reached


class RecommenderModule(L.LightningModule):
    """Trains a :class:`MultiTaskRecommender` on a :class:`Dataset`'s training split.

    Args:
        model: the recommender, with its side inputs (graph, text, history) attached.
        dataset: the data; only ``train`` feeds training, ``valid`` model selection.
        config: the run configuration.
        kg_triples: ``(head, relation, tail)`` node/relation ids of the graph's triples, for
            the KG tower (``None`` when it is off).
        text_encoder: a transformer with its top layers unfrozen, fine-tuned jointly: every
            step re-encodes ``item_texts`` and feeds the result to the model's text pathway.
        item_texts: the item texts (dataset item order), with ``text_encoder``.
        teacher: the retrieval tower's teacher when ``model.distill_weight`` > 0; default: EASE
            fitted on the training split as the ``train.teacher_*`` fields say (:meth:`EaseTeacher.from_config`).
        kg_heldout: KG triples held out of the graph, whose valid part validation ranks.
        teacher_device: where the default teacher is fitted and calibrated (the training GPU,
            when there is one: :func:`~kgrec.train.run.train` passes it).
    """

    def __init__(
        self,
        model: MultiTaskRecommender,
        dataset: Dataset,
        config: RunConfig,
        kg_triples: tuple[Tensor, Tensor, Tensor] | None = None,
        text_encoder: TextEncoder | None = None,
        item_texts: list[str] | None = None,
        teacher: EaseTeacher | None = None,
        kg_heldout: HeldOutTriples | None = None,
        teacher_device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self.model = model
        self.text_encoder = text_encoder
        self.item_texts = list(item_texts or [])
        if text_encoder is not None:
            tokens = text_encoder.tokenize(item_texts or [])
            self.register_buffer("text_ids", tokens["input_ids"].cpu(), persistent=False)  # (I, T)
            self.register_buffer("text_mask", tokens["attention_mask"].cpu(), persistent=False)
        self.dataset = dataset
        self.config = config
        train = dataset.train
        self.train_user = torch.as_tensor(train.user)
        self.train_item = torch.as_tensor(train.item)
        # Implicit data (no rating column): every interaction counts as rating 1.
        self.train_rating = torch.ones(len(train)) if train.rating is None else torch.as_tensor(train.rating).float()
        self.sampler = NegativeSampler(self.train_user, self.train_item, dataset.n_items)
        self.kg_triples = kg_triples
        self.kg_heldout = kg_heldout
        tasks = config.model.tasks
        retrieval = "retrieval" in tasks
        self.shared_negatives = config.train.shared_negatives if retrieval else 0
        self.needs_negatives = retrieval and config.model.retrieval_loss != "full_softmax" and not self.shared_negatives
        self.use_kg = "kg" in tasks and kg_triples is not None
        # Pairs labelled negative in the data (impressions without a click): the like task's
        # negatives, drawn each step in proportion to the interactions (train only).
        negatives = dataset.train_negatives if "like" in tasks else None
        self.like_negatives = (
            (torch.as_tensor(negatives.user), torch.as_tensor(negatives.item)) if negatives is not None and len(negatives) else None
        )
        self.like_negative_share = len(negatives) / max(len(train), 1) if self.like_negatives is not None else 0.0
        self.implicit_likes = train.rating is None and "like" in tasks  # every interaction is a like (label 1)
        if teacher is None and config.model.distill_weight > 0:
            teacher = EaseTeacher.from_config(dataset, config.train, model.warm_items, teacher_device)
        self.teacher = teacher
        self._valid_metric: float | None = None  # this epoch's eval.monitor value (train.lr_decay)
        self._pcgrad_terms: dict[str, Tensor] | None = None  # this step's weighted task losses (pcgrad)
        self._pcgrad_conflicts: float | None = None  # share of ordered task pairs in conflict, last step
        self._gradnorm_losses: dict[str, Tensor] | None = None  # this step's unweighted task losses (gradnorm)

    # ------------------------------------------------------------------ data
    def train_dataloader(self) -> DataLoader:
        columns = (self.train_user, self.train_item, self.train_rating)
        return interactions_loader(columns, self.config.train.batch_size, self.config.train.seed)

    def val_dataloader(self) -> DataLoader:
        # One placeholder batch: validation ranks every user at once in validation_step.
        return DataLoader(TensorDataset(torch.zeros(1)), batch_size=1)

    # ------------------------------------------------------------------ training
    def on_train_batch_start(self, batch: list[Tensor], batch_idx: int) -> None:
        torch.manual_seed(step_seed(self.config.train.seed, self.global_step, self.global_rank, DROPOUT_STREAM))

    def encode_texts(self, training: bool = True) -> None:
        """Re-encode every item text with the fine-tuned transformer into the model's text input.

        ``training``: differentiable, all items in one batch, under the trainer's precision (bf16
        autocast on a GPU). Otherwise (validation, the run's saved vectors) as a query encodes a
        text (:meth:`TextEncoder.encode`): in float32 with autocast off, ``text.batch_size``
        texts at a time, without gradients. Validation under bf16 had selected the kept epoch on
        text vectors that differed from the float32 ones the run saves and its queries compute."""
        encoder = self.text_encoder
        if encoder is None:
            return
        if training:
            self.model.text = encoder(self.text_ids, self.text_mask).float()  # (I, t)
            return
        with torch.autocast(encoder.device.type, enabled=False):
            vectors = encoder.encode(self.item_texts, batch_size=self.config.text.batch_size, progress=False)  # (I, t)
        self.model.text = vectors.to(encoder.device)

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        rec = self.rec_batch(batch)
        losses = self.model.compute_losses(rec)
        joint = self.model.joint_loss
        total, logs = joint(losses)
        if joint.mode == "pcgrad":
            self._pcgrad_terms = joint.terms(losses)  # for backward
        elif joint.mode == "gradnorm":
            self._gradnorm_losses = {t: losses[t] for t in joint.active(losses)}  # for backward
        batch_size = len(rec.user)
        for task, value in losses.items():
            self.log(f"train/{task}", value.detach(), on_step=False, on_epoch=True, batch_size=batch_size, sync_dist=True)
        for key, value in logs.items():
            if key.startswith("weight/"):  # learned loss weights: their epoch mean
                self.log(f"train/{key}", value, on_step=False, on_epoch=True, batch_size=batch_size, sync_dist=True)
        self.log("train/loss", total.detach(), on_step=False, on_epoch=True, prog_bar=True, batch_size=batch_size, sync_dist=True)
        return total

    def backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None:
        """``loss.backward()``, and with a loss mode that reads the tasks' own gradients:

        - ``pcgrad``: the gradient of the shared parameters (:meth:`shared_parameters`) is then
          replaced by PCGrad's combination of the weighted task terms' gradients (the
          task-specific parameters keep their own term's gradient, which no other term reaches);
        - ``gradnorm``: the loss weights' gradient is set from the norms of the unweighted task
          losses' gradients on the shared parameters (:meth:`JointLoss.balance`).

        Either costs one more backward pass per task through the shared part. Under DDP each
        task's gradient (and, for GradNorm, its loss) is first averaged over the processes (one
        all-reduce of the ``(M, P)`` rows; the usual backward pass averages the rest), so that
        every process reads the gradients of the whole batch and takes the same step."""
        pcgrad, self._pcgrad_terms = self._pcgrad_terms, None
        gradnorm, self._gradnorm_losses = self._gradnorm_losses, None
        if not pcgrad and not gradnorm:
            super().backward(loss, *args, **kwargs)
            return
        shared = [p for p in self.shared_parameters() if p.requires_grad]
        task_grads = self._task_gradients(list((pcgrad or gradnorm).values()), shared)  # (M, P)
        if pcgrad:
            # rank 0's stream on every rank: the same visiting order, so the same step everywhere
            generator = torch.Generator().manual_seed(step_seed(self.config.train.seed, self.global_step, 0, PCGRAD_STREAM))
            combined, conflicts = project_conflicting(task_grads, generator)
        super().backward(loss, *args, **kwargs)
        if gradnorm:
            values = self._mean_over_processes(torch.stack([value.detach().float() for value in gradnorm.values()]))
            norms = task_grads.norm(dim=1)
            self.model.joint_loss.balance(dict(zip(gradnorm, values, strict=True)), dict(zip(gradnorm, norms, strict=True)))
            return
        offset = 0
        for p in shared:
            if p.grad is not None:
                p.grad.copy_(combined[offset : offset + p.numel()].view_as(p))
            offset += p.numel()
        pairs = len(pcgrad) * (len(pcgrad) - 1)
        self._pcgrad_conflicts = conflicts / pairs if pairs else 0.0

    def _task_gradients(self, terms: list[Tensor], shared: list[torch.nn.Parameter]) -> Tensor:
        """``(M, P)``: each term's gradient on the ``shared`` parameters, flattened, averaged over
        the DDP processes."""
        rows = []
        for term in terms:
            grads = torch.autograd.grad(term, shared, retain_graph=True, allow_unused=True)
            rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1).float()
                                   for g, p in zip(grads, shared, strict=True)]))  # fmt: skip
        return self._mean_over_processes(torch.stack(rows))

    def _mean_over_processes(self, tensor: Tensor) -> Tensor:
        """``tensor`` averaged over the DDP processes (itself without DDP)."""
        if self._trainer is not None and self.trainer.world_size > 1:
            return self.trainer.strategy.reduce(tensor, reduce_op="mean")
        return tensor

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.model.joint_loss.renormalize()  # GradNorm's weights, after the optimiser's step (no-op otherwise)
        if self._pcgrad_conflicts is not None:  # the step's backward ran just before this hook
            self.log("train/pcgrad_conflicts", self._pcgrad_conflicts, on_step=False, on_epoch=True,
                     batch_size=len(batch[0]), sync_dist=True)  # fmt: skip

    def configure_gradient_clipping(
        self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:  # fmt: skip
        """Lightning's clipping (``train.grad_clip``) of the training loss's gradient, without
        GradNorm's loss weights: their gradient, set by :meth:`JointLoss.balance`, is not the
        loss's (the sum holds them constant) but that of GradNorm's own objective, as large as
        the task gradients' norms, so counted in the clipped norm it shrank the model's step by
        a factor of its making. The weights step on it unclipped."""
        weights = self.model.joint_loss.task_weights
        held = weights.grad if weights is not None else None
        if held is not None:
            weights.grad = None  # out of the norm (clip_grad_norm_ skips a parameter without one)
        try:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
        finally:
            if held is not None:
                weights.grad = held

    def shared_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters that belong to no single task (:meth:`MultiTaskRecommender.shared_parameters`,
        and the fine-tuned transformer's layers): those whose gradient PCGrad combines and GradNorm measures."""
        text = self.text_encoder.trainable_parameters() if self.text_encoder is not None else []
        return [*self.model.shared_parameters(), *text]

    def rec_batch(self, batch: list[Tensor]) -> RecBatch:
        """What a training step feeds the model for ``batch``: its interactions, with this step's
        negatives, KG triples and teacher scores (and the texts re-encoded when fine-tuning)."""
        user, item, rating = batch  # (B,), (B,), (B,)
        self.encode_texts()
        generator = step_generator(self.config.train.seed, self.global_step, self.global_rank)
        rec = RecBatch(user=user, pos_item=item, rating=rating)
        if self.needs_negatives:
            rec.neg_items = self.sampler.sample(user, self.config.train.num_negatives, generator)  # (B, K)
        if self.shared_negatives:
            rec.shared_items = self.shared_items(generator).to(self.device)  # (K,)
        if self.use_kg:
            if self.kg_triples[0].device != self.device:  # type: ignore[index]
                self.kg_triples = tuple(t.to(self.device) for t in self.kg_triples)  # once, not every step
            head, rel, tail = self.kg_triples  # type: ignore[misc]
            h, r, t, corrupted = sample_kg_batch(
                head, rel, tail, self.model.sizes.num_nodes, self.config.train.kg_batch_size, generator
            )
            rec.kg_head, rec.kg_rel, rec.kg_tail, rec.kg_neg_tail = h, r, t, corrupted.unsqueeze(1)
        if self.teacher is not None:
            if self.teacher.device != self.device:
                self.teacher.to(self.device)  # once
            rec.teacher_scores = self.teacher.scores(user, rec.shared_items)  # (B, I), or (B, K) of the shared items
        if self.implicit_likes:
            rec.like = torch.ones(len(user), device=user.device)
        if self.like_negatives is not None:  # drawn last: the other draws of a step stay as they were
            n = max(1, round(len(user) * self.like_negative_share))
            pick = torch.randint(len(self.like_negatives[0]), (n,), generator=generator)
            rec.like_neg_user, rec.like_neg_item = (t[pick].to(user.device) for t in self.like_negatives)
        return rec

    def unused_parameters(self) -> list[str]:
        """Names of the trainable parameters that no loss of this config reaches (those of a task
        weighted 0, the ID embeddings and item fusion of a KG-only run, GradNorm's loss weights, which
        get their gradient after the backward pass): DDP must be told to look for
        them, or it fails at the second step. Found on the first training batch by walking the
        joint loss's autograd graph back to its leaves, without a backward pass; the global
        random state is left as it was."""
        with torch.random.fork_rng():  # the loader's iterator draws a seed too
            batch = next(iter(self.train_dataloader()))
            total, _ = self.model.joint_loss(self.model.compute_losses(self.rec_batch(batch)))
        reached = _reached_leaves(total)
        return [name for name, p in self.named_parameters() if p.requires_grad and id(p) not in reached]

    def shared_items(self, generator: torch.Generator) -> Tensor:
        """``train.shared_negatives`` items drawn uniformly without replacement from the items
        with training interactions (all of them when there are no more)."""
        warm = self.model.warm_items
        candidates = torch.arange(self.dataset.n_items) if warm is None else warm.cpu().nonzero().squeeze(1)
        return candidates[torch.randperm(len(candidates), generator=generator)[: self.shared_negatives]]

    def configure_optimizers(self) -> torch.optim.Optimizer | dict:
        train, monitor = self.config.train, self.config.eval.monitor
        loss_weighting = {id(p) for p in self.model.loss_parameters()}
        groups = [{"params": [p for p in self.model.parameters() if id(p) not in loss_weighting]}]
        if loss_weighting:  # learned loss weights: no L2 pull towards 0
            groups.append({"params": list(self.model.loss_parameters()), "weight_decay": 0.0})
        if self.text_encoder is not None:
            groups.append({"params": self.text_encoder.trainable_parameters(), "lr": self.config.text.finetune_lr})
        optimizer = torch.optim.Adam(groups, lr=train.lr, weight_decay=train.weight_decay)
        if train.lr_decay == 1.0 or monitor is None:
            return optimizer
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=monitor_mode(monitor), factor=train.lr_decay, patience=train.lr_patience
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": plateau, "monitor": f"valid/{monitor}"}}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resume a checkpoint written before the learned loss weights had their own Adam group
        (an uncertainty-weighting run interrupted before 2026-12-06 held its :math:`s_m` in the
        first group): split them out as :meth:`configure_optimizers` now groups them, with the
        Adam state of every parameter kept. Later checkpoints pass unchanged."""
        loss_weighting = {id(p) for p in self.model.loss_parameters()}
        if not loss_weighting:
            return
        is_loss = [id(p) in loss_weighting for p in self.model.parameters()]
        (optimizer,) = checkpoint["optimizer_states"]  # the one Adam of configure_optimizers
        groups_before = len(optimizer["param_groups"])
        if not split_loss_weight_group(optimizer, is_loss):
            return
        for scheduler in checkpoint.get("lr_schedulers", []):  # its per-group lists (min_lrs, _last_lr)
            for value in scheduler.values():
                if isinstance(value, list) and len(value) == groups_before:
                    value.insert(1, copy.deepcopy(value[0]))

    # ------------------------------------------------------------------ validation
    def validation_step(self, batch: list[Tensor], batch_idx: int) -> None:
        self.encode_texts(training=False)
        try:
            metrics = evaluate(self.model, self.dataset, "valid", self.config, self.kg_heldout, self._shard())
        except NaNScoresError:
            raise self._diverged() from None
        for key, value in metrics.items():
            self.log(f"valid/{key}", float(value), prog_bar=key == self.config.eval.monitor, batch_size=1, sync_dist=True)
        self.log("lr", self.optimizers().param_groups[0]["lr"], batch_size=1, sync_dist=True)  # this epoch's (train.lr_decay)
        self._valid_metric = float(metrics[self.config.eval.monitor]) if self.config.eval.monitor else None

    def _diverged(self) -> DivergedError:
        """What to say when validation meets NaN scores: the weights diverged (a traceback from
        the ranking named no cause)."""
        t = self.config.train
        fix = "lower train.lr" + ("" if t.grad_clip else ", or set train.grad_clip (a norm such as 1.0)")
        return DivergedError(
            f"train.lr: training diverged in epoch {self.current_epoch}: the model scores items as NaN (its weights "
            f"overflowed), most often from too high a learning rate (train.lr={t.lr:g}); {fix}",
            key="train.lr",
        )

    def _shard(self) -> Shard | None:
        """Under DDP, this process's share of the users that validation ranks (the sums travel
        through the strategy's all-reduce, on this process's device); ``None`` in one process."""
        world = self.trainer.world_size
        if world == 1:
            return None

        def total(values: Tensor) -> Tensor:
            return self.trainer.strategy.reduce(values.to(self.device), reduce_op="sum").cpu()  # type: ignore[arg-type]

        return Shard(self.global_rank, world, total)

    def on_validation_epoch_end(self) -> None:
        """Step the ``train.lr_decay`` schedule on this epoch's valid metric, here rather than
        where Lightning steps it (after the epoch's checkpoints are written): a run resumed from
        ``last.ckpt`` must find the decay its epoch called for, as the uninterrupted run did."""
        scheduler = self.lr_schedulers()
        if scheduler is not None and not self.trainer.sanity_checking and self._valid_metric is not None:
            scheduler.step(self._valid_metric)  # type: ignore[call-arg]

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        """Lightning's own step, which :meth:`on_validation_epoch_end` replaces."""


def split_loss_weight_group(optimizer: dict[str, Any], is_loss: list[bool]) -> bool:
    """Turn an optimizer state dict whose first group holds all the model's parameters (their
    order: ``is_loss``, one flag per ``model.parameters()``) into the layout of
    :meth:`RecommenderModule.configure_optimizers`: that group without the loss weights, then
    the loss weights without weight decay, then the other groups. Parameters are renumbered in
    that order and keep their Adam state. Returns whether it changed anything (``False``: the
    state is in the current layout already)."""
    groups = optimizer["param_groups"]
    first = groups[0]
    if len(first["params"]) != len(is_loss) or not any(is_loss):
        return False
    kept = [i for i, loss in zip(first["params"], is_loss, strict=True) if not loss]
    weights = [i for i, loss in zip(first["params"], is_loss, strict=True) if loss]
    order = kept + weights + [i for group in groups[1:] for i in group["params"]]
    renumber = {old: new for new, old in enumerate(order)}
    optimizer["state"] = {renumber[i]: state for i, state in optimizer["state"].items()}
    optimizer["param_groups"] = [
        {**first, "params": [renumber[i] for i in kept]},
        {**first, "params": [renumber[i] for i in weights], "weight_decay": 0.0},
        *({**group, "params": [renumber[i] for i in group["params"]]} for group in groups[1:]),
    ]
    return True


@torch.no_grad()
def evaluate(
    model: MultiTaskRecommender,
    dataset: Dataset,
    part: str,
    config: RunConfig,
    kg_heldout: HeldOutTriples | None = None,
    shard: Shard | None = None,
) -> dict[str, float]:
    """Full-ranking metrics on ``part`` (valid excludes train; test excludes train + valid), plus
    RMSE/MAE of the rating tower and AUC of the like tower on that part's ratings, and with
    ``kg_heldout`` the kg tower's filtered link prediction on that part's held-out triples
    (:func:`kgrec.eval.link_prediction_metrics`).

    Always in float32, also inside a bf16 autocast (validation during GPU training): bf16 keeps 8
    bits of mantissa, so near the top-K cut-off many items would tie, and the tie-breaking would
    then pick the kept checkpoint.

    With ``shard`` (validation under DDP) each process ranks its share of the users
    (:class:`~kgrec.eval.Shard`) and gets the metrics of all; the rating, like and link
    prediction metrics, a small part of the work, are computed whole in every process."""
    device = next(model.parameters()).device
    with torch.autocast(device.type, enabled=False):
        return _evaluate(model, dataset, part, config, kg_heldout, shard)


def _evaluate(
    model: MultiTaskRecommender,
    dataset: Dataset,
    part: str,
    config: RunConfig,
    kg_heldout: HeldOutTriples | None,
    shard: Shard | None,
) -> dict[str, float]:
    was_training = model.training
    model.eval()
    encoded = model.encode()
    tasks = config.model.tasks
    metrics: dict[str, float] = {}
    if "retrieval" in tasks:
        user_vectors = model.user_vectors(None, encoded)  # (U, d)
        item_vectors = model.item_vectors(encoded)  # (I, d)

        def score(users: Tensor) -> Tensor:
            return user_vectors[users.to(user_vectors.device)] @ item_vectors.T  # (B, I)

        ranking = evaluate_split(score, dataset, part, config.eval.ks, config.eval.batch_size, shard)  # type: ignore[arg-type]
        metrics.update({k: float(v) for k, v in ranking.items() if k != "n_users"})
    target = known_users_part(dataset, part)  # the users the ranking metrics count
    device = next(model.parameters()).device
    if target.rating is not None and len(target) and "rating" in tasks:
        users = torch.as_tensor(target.user, device=device)
        items = torch.as_tensor(target.item, device=device)
        predicted = _finite(model.predict_rating(users, items, encoded).float().cpu(), "rating")
        ratings = torch.as_tensor(target.rating, dtype=torch.float32)
        metrics["rmse"], metrics["mae"] = rmse(predicted, ratings), mae(predicted, ratings)
    if "like" in tasks:
        # the part's interactions, liked by the threshold (all, without ratings), and its pairs
        # labelled negative in the data, of the same users
        negatives = known_users_negatives(dataset, part)
        liked = torch.ones(len(target)) if target.rating is None else (
            torch.as_tensor(target.rating, dtype=torch.float32) >= config.model.like_threshold).float()  # fmt: skip
        users, items = target.user, target.item
        if negatives is not None:
            users, items = np.concatenate([users, negatives.user]), np.concatenate([items, negatives.item])
            liked = torch.cat([liked, torch.zeros(len(negatives))])
        if 0 < liked.sum() < len(liked):  # both labels: ratings on both sides of the threshold, or pairs labelled 0
            users_t, items_t = torch.as_tensor(users, device=device), torch.as_tensor(items, device=device)
            metrics["auc"] = auc(_finite(model.predict_like(users_t, items_t, encoded).float().cpu(), "like"), liked)
    if kg_heldout is not None and "kg" in tasks and encoded.nodes is not None:
        tower, nodes = model.towers["kg"], encoded.nodes

        def score_ends(known: Tensor, rel: Tensor, predict: str) -> Tensor:
            return tower.score_all(nodes[known.to(nodes.device)], rel.to(nodes.device), nodes, predict)  # (B, N)

        metrics.update(link_prediction_metrics(score_ends, kg_heldout.part(part), kg_heldout.known))
    model.train(was_training)
    return metrics


def _finite(predicted: Tensor, tower: str) -> Tensor:
    """``predicted``, refused with :class:`NaNScoresError` when a value is NaN or infinite (weights
    that diverged), as the ranking refuses NaN scores: validation then says to lower the rate."""
    if not bool(torch.isfinite(predicted).all()):
        raise NaNScoresError(f"the {tower} tower predicts NaN or infinite values")
    return predicted
