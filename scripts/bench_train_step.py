"""Seconds per training step of kgrec's retrieval losses on one dataset, in one run.

On a catalogue of tens of thousands of items the retrieval loss is what a step costs: the full
softmax scores every item for every row of the batch, a (B, I) product forward and backward,
and the EASE teacher's term another (B, I) softmax. This bench times real training steps
(``RecommenderModule.training_step``: sampling, the whole-catalogue encoding, every tower, the
teacher, backward and Adam) of the config with each retrieval loss in turn, against the full
softmax measured in the same run.

    python scripts/bench_train_step.py --config scripts/configs/ifashion.yaml           # about 20 min
    python scripts/bench_train_step.py --config scripts/configs/ifashion.yaml --set model.distill_weight=0

Every variant reads the same batches (the first steps of epoch 0) and, with the config's
teacher, the same fitted EASE (fitted once, before the timings; its L2 weight is the config's
``train.teacher_reg``, so set one).
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from pathlib import Path

import torch
from _bench import CONFIG_HELP, SET_HELP, at_least_one, config_file

from kgrec.train import build_model, load_config, prepare
from kgrec.train.module import RecommenderModule
from kgrec.train.teacher import EaseTeacher

VARIANTS = {
    "full softmax": ["model.retrieval_loss=full_softmax", "train.shared_negatives=0"],
    "shared negatives, 4096": ["model.retrieval_loss=sampled_softmax", "train.shared_negatives=4096"],
    "shared negatives, 1024": ["model.retrieval_loss=sampled_softmax", "train.shared_negatives=1024"],
    "sampled softmax, 256 per row": ["model.retrieval_loss=sampled_softmax", "train.shared_negatives=0",
                                     "train.num_negatives=256"],  # fmt: skip
    "BPR, 1 per row": ["model.retrieval_loss=bpr", "train.shared_negatives=0", "train.num_negatives=1"],
}

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ifashion.yaml"), type=config_file, help=CONFIG_HELP)
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
parser.add_argument("--steps", type=at_least_one, default=10, help="timed steps per variant, after one untimed step")
parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), metavar="NAME",
                    help=f"which variants to time (default: all): {', '.join(repr(v) for v in VARIANTS)}")  # fmt: skip
args = parser.parse_args()
warnings.filterwarnings("ignore", message=".*self.trainer.* reference is not registered")  # no Trainer: logs dropped
if "full softmax" not in args.variants:
    args.variants.insert(0, "full softmax")  # the baseline of the ratios

base = load_config(args.config, [*args.overrides, "train.progress=false"])
prepared = prepare(base, progress=False)
dataset = prepared.dataset
print(f"{dataset.name}: {dataset.n_users} users, {dataset.n_items} items, {len(dataset.train)} training "
      f"interactions; batch {base.train.batch_size}; {platform.processor() or platform.machine()}, "
      f"{torch.get_num_threads()} threads")  # fmt: skip
teacher = None
if base.model.distill_weight > 0:
    started = time.perf_counter()
    teacher = EaseTeacher.from_config(dataset, base.train)
    print(f"teacher: {teacher.description()}, fitted in {time.perf_counter() - started:.0f} s (not timed below)")
graph = prepared.graph
triples = None if graph is None else tuple(torch.as_tensor(a) for a in (graph.head, graph.relation, graph.tail))


def seconds_per_step(overrides: list[str]) -> float:
    """The mean wall time of ``--steps`` training steps (after one untimed) with ``overrides``."""
    config = load_config(args.config, [*args.overrides, "train.progress=false", *overrides])
    module = RecommenderModule(build_model(config, prepared), dataset, config, triples, teacher=teacher)
    optimizer = module.configure_optimizers()
    batches = iter(module.train_dataloader())
    for step in range(args.steps + 1):
        if step == 1:
            started = time.perf_counter()
        batch = next(batches)
        module.on_train_batch_start(batch, step)
        loss = module.training_step(batch, step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - started) / args.steps


timings = {}
for name in args.variants:
    timings[name] = seconds_per_step(VARIANTS[name])
    print(f"  {name}: {timings[name]:.3f} s/step", flush=True)

steps_per_epoch = -(-len(dataset.train) // base.train.batch_size)
print()
header = f"{'retrieval loss':<32}{'s/step':>9}{'min/epoch':>11}{'vs full softmax':>17}"
print(header)
print("-" * len(header))
for name, seconds in timings.items():
    ratio = seconds / timings["full softmax"]
    print(f"{name:<32}{seconds:>9.3f}{seconds * steps_per_epoch / 60:>11.1f}{f'x{ratio:.2f}':>17}")
print(f"min/epoch: {steps_per_epoch} steps, training only (validation not included); "
      f"teacher {'on' if teacher is not None else 'off'}")
