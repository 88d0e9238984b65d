"""The training module's edge cases found in an audit: gradient clipping under GradNorm."""

from __future__ import annotations

import lightning as L
import torch

from kgrec.train.module import RecommenderModule
from kgrec.train.run import build_model, prepare
from tests.conftest import tiny_config


def _module(data, *overrides: str) -> RecommenderModule:
    config = tiny_config(data, "model.tasks=[retrieval,rating,like,kg]", *overrides)
    prepared = prepare(config, progress=False)
    g = prepared.graph
    return RecommenderModule(build_model(config, prepared), prepared.dataset, config,
                             tuple(torch.as_tensor(a) for a in (g.head, g.relation, g.tail)))  # fmt: skip


def _clipping_trainer(clip: float) -> L.Trainer:
    """What clipping reads of the run's trainer (train.grad_clip -> gradient_clip_val)."""
    return L.Trainer(accelerator="cpu", devices=1, gradient_clip_val=clip, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False)  # fmt: skip


def _model_grad_norm(module: RecommenderModule, leave_out: torch.Tensor | None) -> torch.Tensor:
    return torch.stack([p.grad.norm() for p in module.parameters() if p.grad is not None and p is not leave_out]).norm()


def test_grad_clip_under_gradnorm_clips_the_loss_gradient_and_leaves_the_weights_gradient_out(clustered_dataset):
    # GradNorm's weights get the gradient of its own objective after the backward pass, about as
    # large as the model's here; counted in the clipped norm it shrank the model's step further
    # than train.grad_clip says (to 0.6 of the clip), and was clipped itself.
    module = _module(clustered_dataset, "model.loss_mode=gradnorm")
    joint = module.model.joint_loss
    optimizer = module.configure_optimizers()
    rec = module.rec_batch(next(iter(module.train_dataloader())))
    torch.manual_seed(1)
    losses = module.model.compute_losses(rec)
    module._gradnorm_losses = {t: losses[t] for t in joint.active(losses)}  # as training_step leaves them
    module.backward(joint(losses)[0])
    weights_grad = joint.task_weights.grad.clone()
    before = _model_grad_norm(module, joint.task_weights)
    clip = 0.5 * float(before)
    assert weights_grad.norm() > 0.5 * before  # the weights' gradient would weigh in the norm

    module.trainer = _clipping_trainer(clip)
    module.configure_gradient_clipping(optimizer, clip, None)  # as Lightning calls it after the backward pass
    assert torch.allclose(_model_grad_norm(module, joint.task_weights), torch.tensor(clip), rtol=1e-4)
    assert torch.equal(joint.task_weights.grad, weights_grad)


def test_grad_clip_under_uncertainty_weighting_clips_every_gradient_as_lightning_does(clustered_dataset):
    # the s_m's gradient is the loss's own: it stays in the clipped norm, as before
    module = _module(clustered_dataset, "model.loss_mode=uncertainty")
    optimizer = module.configure_optimizers()
    rec = module.rec_batch(next(iter(module.train_dataloader())))
    torch.manual_seed(1)
    module.backward(module.model.joint_loss(module.model.compute_losses(rec))[0])
    grads = [p.grad.clone() for p in module.parameters() if p.grad is not None]
    expected = torch.stack([g.norm() for g in grads]).norm()
    clip = 0.5 * float(expected)
    module.trainer = _clipping_trainer(clip)
    module.configure_gradient_clipping(optimizer, clip, None)
    after = [p.grad for p in module.parameters() if p.grad is not None]
    assert module.model.joint_loss.log_vars.grad is not None
    for have, want in zip(after, grads, strict=True):
        assert torch.allclose(have, want * clip / expected, rtol=1e-4, atol=1e-9)
