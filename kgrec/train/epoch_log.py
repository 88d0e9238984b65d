"""One line per epoch, for training whose output goes to a file or a pipe.

A progress bar redraws one line in place, so a log file (``kgrec train ... > train.log``) sees
only its final state, at the end. :class:`EpochLines` prints instead, after each epoch:

    epoch 3/39  train/loss 6.5123  valid/ndcg@10 0.2304 (best 0.2304, epoch 3)  9.8 s

:class:`TrainingClock` keeps the seconds spent training in the checkpoints, so that a resumed
run reports the time of all its epochs, not of the part after the resume.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

import lightning as L

from kgrec.train.plots import read_metrics_csv


class EpochLines(L.Callback):
    """Print the epoch, its training loss, the monitored valid metric and the best so far.

    Args:
        monitor: the logged key early stopping follows (e.g. ``"valid/ndcg@10"``), or ``None``.
        mode: ``"max"`` or ``"min"``: which direction of ``monitor`` is better.
        logs: the run's ``logs/`` folder: a resumed run takes the best so far from the epochs
            its interrupted part logged. (default: ``None``)
        stream: where to print. (default: ``sys.stdout``)
    """

    def __init__(
        self, monitor: str | None, mode: str = "max", logs: Path | None = None, stream: TextIO | None = None
    ) -> None:
        self.monitor, self.mode, self.logs, self.stream = monitor, mode, logs, stream
        # Own record: early stopping's best would do, but Lightning runs its check after this hook.
        self.best: tuple[float, int] | None = None
        self.started = time.perf_counter()

    def _update(self, value: float, epoch: int) -> None:
        if self.best is None or (value > self.best[0] if self.mode == "max" else value < self.best[0]):
            self.best = (value, epoch)

    def on_train_start(self, trainer: Any, module: Any) -> None:
        if self.monitor and self.logs is not None and trainer.current_epoch > 0:  # resumed
            for epoch, value in read_metrics_csv(self.logs).get(self.monitor, []):
                if epoch < trainer.current_epoch:
                    self._update(value, epoch)

    def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
        self.started = time.perf_counter()

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
