"""One line per epoch, for training whose output goes to a file or a pipe.

A progress bar redraws one line in place, so a log file (``kgrec train ... > train.log``) sees
only its final state, at the end. :class:`EpochLines` prints instead, after each epoch:

    epoch 3/39  train/loss 6.5123  valid/ndcg@10 0.2304 (best 0.2304, epoch 3)  9.8 s
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import lightning as L


class EpochLines(L.Callback):
    """Print the epoch, its training loss, the monitored valid metric and the best so far (since
    this start: a resumed run's lines start their own best).

    Args:
        monitor: the logged key early stopping follows (e.g. ``"valid/ndcg@10"``), or ``None``.
        mode: ``"max"`` or ``"min"``: which direction of ``monitor`` is better.
        stream: where to print. (default: ``sys.stdout``)
    """

    def __init__(self, monitor: str | None, mode: str = "max", stream: TextIO | None = None) -> None:
        self.monitor, self.mode, self.stream = monitor, mode, stream
        self.best: tuple[float, int] | None = None
        self.started = time.perf_counter()

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
            better = self.best is None or (value > self.best[0] if self.mode == "max" else value < self.best[0])
            if better:
                self.best = (value, epoch)
            assert self.best is not None
            parts.append(f"{self.monitor} {value:.4f} (best {self.best[0]:.4f}, epoch {self.best[1]})")
        parts.append(f"{time.perf_counter() - self.started:.1f} s")
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)
