"""Which process of a multi-process (DDP) run this is, before any trainer exists."""

from __future__ import annotations

import os

# What Lightning's launchers (its own, torchrun, SLURM, LSF) set in each process of a multi-process run
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def launched_as_rank_zero() -> bool:
    """Whether every rank variable of the launchers is ``0``, empty or unset: the process that
    should speak for a multi-process run (any process of a single-process one). An empty one
    (``RANK=`` left by a shell script) names no rank: read as another process, it muted every
    note and progress line."""
    return all(os.environ.get(name, "").strip() in ("", "0") for name in RANK_VARIABLES)
