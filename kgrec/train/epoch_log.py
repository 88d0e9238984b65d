"""One line per epoch, for training whose output goes to a file or a pipe.

A progress bar redraws one line in place, so a log file (``kgrec train ... > train.log``) sees
only its final state, at the end. :class:`EpochLines` prints instead, after each epoch:

    epoch 3/39  train/loss 6.5123  valid/ndcg@10 0.2304 (best 0.2304, epoch 3)  9.8 s

and, in an epoch that takes longer than a minute (a large dataset), a line a minute on the
way, so that a log shows the run is moving and when the epoch will end:

    epoch 0/39  step 120/363  train/loss 11.2345  0.51 s/step, about 2.1 min left in the epoch

:class:`TrainingClock` keeps the seconds spent training in the checkpoints, so that a resumed
run reports the time of all its epochs, not of the part after the resume. :class:`MovedRunFolder`
lets a run folder moved or copied while interrupted resume as if it had stayed, and
:class:`StaysStopped` keeps a run that early stopping had ended from training on when resumed.
:class:`AtomicCheckpointIO` writes each checkpoint beside itself and renames it into place.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import lightning as L
import torch
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
from lightning.pytorch.plugins.io import TorchCheckpointIO

from kgrec.train.plots import read_metrics_csv
from kgrec.utils.io import atomic_path


class _NoVersion:
    """Leaves out ``v_num``, the logger's version, from a progress bar's metrics: the end of the
    CSV log's folder name (``rt-0`` for ``part-0``), which says nothing to a user."""

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)  # type: ignore[misc]
        metrics.pop("v_num", None)
        return metrics


class RichBar(_NoVersion, RichProgressBar):
    """Lightning's Rich progress bar, less ``v_num``."""


class TQDMBar(_NoVersion, TQDMProgressBar):
    """Lightning's tqdm progress bar, less ``v_num``."""


def progress_bar() -> L.Callback:
    """The bar Lightning would draw in a terminal (Rich when it is installed, else tqdm), less ``v_num``."""
    from lightning.pytorch.utilities.imports import _RICH_AVAILABLE

    return RichBar() if _RICH_AVAILABLE else TQDMBar()


class EpochLines(L.Callback):
    """Print the epoch, its training loss, the monitored valid metric and the best so far.

    Args:
        monitor: the logged key early stopping follows (e.g. ``"valid/ndcg@10"``), or ``None``.
        mode: ``"max"`` or ``"min"``: which direction of ``monitor`` is better.
        logs: the run's ``logs/`` folder: a resumed run takes the best so far from the epochs
            its interrupted part logged. (default: ``None``)
        stream: where to print. (default: ``sys.stdout``)
        every: seconds between the lines printed inside an epoch (step, mean training loss
            so far, time left); ``None``: none. (default: 60)
    """

    def __init__(
        self,
        monitor: str | None,
        mode: str = "max",
        logs: Path | None = None,
        stream: TextIO | None = None,
        every: float | None = 60.0,
    ) -> None:
        self.monitor, self.mode, self.logs, self.stream, self.every = monitor, mode, logs, stream, every
        # Own record: early stopping's best would do, but Lightning runs its check after this hook.
        self.best: tuple[float, int] | None = None
        self.started = self.last_line = time.perf_counter()
        self.loss_sum: Any = 0.0  # this epoch's training losses, a tensor once summed (no sync per step)
        self.steps = 0

    def _update(self, value: float, epoch: int) -> None:
        if self.best is None or (value > self.best[0] if self.mode == "max" else value < self.best[0]):
            self.best = (value, epoch)

    def on_train_start(self, trainer: Any, module: Any) -> None:
        if self.monitor and self.logs is not None and trainer.current_epoch > 0:  # resumed
            for epoch, value in read_metrics_csv(self.logs).get(self.monitor, []):
                if epoch < trainer.current_epoch:
                    self._update(value, epoch)

    def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
        self.started = self.last_line = time.perf_counter()
        self.loss_sum, self.steps = 0.0, 0

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.every is None or not trainer.is_global_zero:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            self.loss_sum, self.steps = self.loss_sum + loss.detach(), self.steps + 1
        now = time.perf_counter()
        total, done = trainer.num_training_batches, batch_idx + 1
        if now - self.last_line < self.every or not isinstance(total, int) or done >= total:
            return
        self.last_line = now
        per_step = (now - self.started) / done
        parts = [f"epoch {trainer.current_epoch}/{trainer.max_epochs - 1}", f"step {done}/{total}"]
        if self.steps:
            parts.append(f"train/loss {float(self.loss_sum) / self.steps:.4f}")
        parts.append(f"{per_step:.2f} s/step, about {per_step * (total - done) / 60:.1f} min left in the epoch")
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)

    def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
        # Lightning has run this epoch's validation already, so its metrics are here.
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        epoch = trainer.current_epoch  # 0-based, as in Lightning's bar, the logs and metrics.json's best_epoch
        parts = [f"epoch {epoch}/{trainer.max_epochs - 1}"]
        if "train/loss" in metrics:
            parts.append(f"train/loss {float(metrics['train/loss']):.4f}")
        if self.monitor and self.monitor in metrics:
            value = float(metrics[self.monitor])
            self._update(value, epoch)
            assert self.best is not None
            parts.append(f"{self.monitor} {value:.4f} (best {self.best[0]:.4f}, epoch {self.best[1]})")
        parts.append(f"{time.perf_counter() - self.started:.1f} s")
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)


class TrainingClock(L.Callback):
    """Seconds spent in ``trainer.fit``, summed over an interrupted run's parts.

    The running total goes into every checkpoint (Lightning saves a callback's
    :meth:`state_dict`) and comes back on resume, so :attr:`seconds` is the time of the part
    before the last checkpoint plus the time since this part started; the unfinished epoch an
    interruption cut short is not counted, as the resume trains it again.
    """

    def __init__(self) -> None:
        self.before = 0.0
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.started

    def on_fit_start(self, trainer: Any, module: Any) -> None:
        self.started = time.perf_counter()

    def state_dict(self) -> dict[str, float]:
        return {"seconds": self.seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.before = float(state_dict["seconds"])


class MovedRunFolder(L.Callback):
    """Point the saved state of the checkpoint callbacks at this run's ``checkpoints/`` folder
    when the run was interrupted in another folder (moved or copied since).

    Lightning's ``ModelCheckpoint`` keeps absolute paths, and on a resume from another folder it
    drops the best score so far (so the next epoch, better or not, became ``best.ckpt``) and
    keeps the old folder's ``best.ckpt`` as the best model, which the run then loaded at the end:
    a ``FileNotFoundError`` once that folder was gone, or the weights of whatever run it held.
    Runs before the callbacks load their state (``on_load_checkpoint`` comes first).

    Args:
        dirpath: the run's ``checkpoints/`` folder, where the checkpoint callbacks save.
    """

    def __init__(self, dirpath: Path) -> None:
        self.dirpath = os.path.realpath(dirpath)  # as ModelCheckpoint keeps its dirpath

    def on_load_checkpoint(self, trainer: Any, module: Any, checkpoint: dict[str, Any]) -> None:
        for state in (checkpoint.get("callbacks") or {}).values():
            old = state.get("dirpath") if isinstance(state, dict) else None
            if not old or old == self.dirpath:
                continue

            def moved(path: str, old: str = old) -> str:
                return os.path.join(self.dirpath, os.path.basename(path)) if path and os.path.dirname(path) == old else path

            state["dirpath"] = self.dirpath
            for name in ("best_model_path", "kth_best_model_path", "last_model_path"):
                if name in state:
                    state[name] = moved(state[name])
            if isinstance(state.get("best_k_models"), dict):
                state["best_k_models"] = {moved(path): score for path, score in state["best_k_models"].items()}


class StaysStopped(L.Callback):
    """End a resumed run before its next epoch when early stopping had ended it already.

    A run interrupted after training had stopped (a Ctrl+C during the final evaluation, the save
    or the plot) resumes from a ``last.ckpt`` whose early stopping says it stopped; Lightning
    restores that state but not the trainer's ``should_stop``, so the resumed run trained on
    until patience ran out again, and kept another epoch's weights than the run that was not
    interrupted. (A spent ``train.max_minutes`` is Lightning's ``Timer``'s to judge: it checks
    its restored time when fitting starts.)

    Args:
        stoppers: the run's ``EarlyStopping`` callbacks.
    """

    def __init__(self, stoppers: list[Any]) -> None:
        self.stoppers = stoppers

    def on_train_start(self, trainer: Any, module: Any) -> None:  # after the checkpoint's state is restored
        # both saved in the checkpoint: stopped_epoch (> 0 once stopped: the first epoch always improves
        # on nothing) and, from Lightning 2.6, stopping_reason (0: not stopped)
        if any(stopper.stopped_epoch > 0 or getattr(getattr(stopper, "stopping_reason", None), "value", 0)
               for stopper in self.stoppers):  # fmt: skip
            trainer.should_stop = True


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, through :func:`~kgrec.utils.io.atomic_path`: a temporary
    file in the checkpoint's own folder, flushed to disk, then renamed over ``last.ckpt`` /
    ``best.ckpt``. Lightning's own stages the file in the system's temporary folder and moves it:
    where that is another disk (``/tmp`` on tmpfs) the move is a copy onto the checkpoint itself,
    which a crash cuts short, losing the epochs a resume would continue from."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if storage_options is not None:  # Lightning's refusal (TypeError)
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_path(path, suffix=".ckpt") as tmp:
            torch.save(checkpoint, tmp)
