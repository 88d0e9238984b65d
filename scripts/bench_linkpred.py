"""KG link prediction on ml-100k's graph: the kg tower against baselines on the same held-out triples.

``graph.kg_holdout`` takes a share of the graph's node pairs out of it (every triple between
them, so no inverse or reverse relation gives the answer away; kgrec.graph.hold_out_triples).
Each held-out triple is asked from both ends and ranked, filtered, among all nodes
(kgrec.eval.link_prediction_metrics). Rows:

* relation popularity: a node scores how often it is the missing end of the relation in the
  training graph (the strong trivial baseline of link prediction);
* random scores;
* kgrec's kg tower trained alone (``model.tasks=[kg]``, R-GCN over the training graph), with its
  two losses: a sampled corrupted tail (``softplus``, the default) and every node (``softmax``).

Model selection on valid kg_mrr; test metrics with the ratio to relation popularity.

    python scripts/bench_linkpred.py                     # ml-100k, 1 seed (about 8 min on 2 cores)
    python scripts/bench_linkpred.py --holdout 0.1 --seeds 2
"""

import argparse
import platform
from pathlib import Path

import numpy as np
import torch
from _bench import CONFIG_HELP, RUNS_HELP, SET_HELP, at_least_one, config_file, train_seed

from kgrec.eval import link_prediction_metrics
from kgrec.train import load_config, prepare

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ml-100k.yaml"), type=config_file, help=CONFIG_HELP)
parser.add_argument("--holdout", type=float, default=0.05, help="graph.kg_holdout: share of node pairs held out")
parser.add_argument("--seeds", type=at_least_one, default=1, help="training seeds (the held-out triples stay fixed)")
parser.add_argument("--epochs", type=int, default=60, help="train.max_epochs of the kg runs (early stopping on valid)")
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
parser.add_argument("--runs", metavar="DIR", help=RUNS_HELP)
args = parser.parse_args()

KG_ONLY = [f"graph.kg_holdout={args.holdout}", "model.tasks=[kg]", "model.use_text=false", "model.distill_weight=0",
           "model.rating_autorec_units=0", "model.loss_weights={kg: 1.0}", f"train.max_epochs={args.epochs}",
           *args.overrides]  # fmt: skip
VARIANTS = {
    "kg tower, softplus (sampled tail)": ["model.kg_loss=softplus"],
    "kg tower, softmax (every node)": ["model.kg_loss=softmax", "train.kg_batch_size=512", "train.lr=0.01",
                                       "train.weight_decay=0"],
}  # fmt: skip

# 1. the held-out triples and the training graph, as every run below gets them (seeded by data.seed)
prepared = prepare(load_config(args.config, [*KG_ONLY, "train.progress=false"]), progress=False)
graph, held = prepared.graph, prepared.kg_heldout
print(f"{prepared.dataset.name}: graph {graph.n_nodes} nodes, {graph.n_relations} relations, {graph.n_triples} "
      f"training triples; held out {held.valid.shape[0]} valid / {held.test.shape[0]} test triples "
      f"(kg_holdout={args.holdout}); {platform.machine()}, {torch.get_num_threads()} threads")  # fmt: skip

# 2. baselines on the same triples
counts = {side: np.zeros((graph.n_relations, graph.n_nodes)) for side in ("tail", "head")}
np.add.at(counts["tail"], (graph.relation, graph.tail), 1)
np.add.at(counts["head"], (graph.relation, graph.head), 1)
generator = torch.Generator().manual_seed(0)
baselines = {
    "relation popularity": lambda known, rel, side: torch.as_tensor(counts[side][rel.numpy()]),
    "random": lambda known, rel, side: torch.rand(len(known), graph.n_nodes, generator=generator),
}
rows = {name: link_prediction_metrics(score, held.test, held.known) for name, score in baselines.items()}

# 3. kgrec's kg tower, each loss, selected on valid kg_mrr
for label, overrides in VARIANTS.items():
    runs = []
    for seed in range(args.seeds):
        metrics = train_seed(args.config, seed, [*KG_ONLY, *overrides], runs=args.runs)
        print(f"  {label} seed {seed}: valid kg_mrr {metrics['valid']['kg_mrr']:.4f}, test "
              f"{metrics['test']['kg_mrr']:.4f}, {metrics['epochs']} epochs, {metrics['seconds_per_epoch']:.1f} s/epoch")  # fmt: skip
        runs.append(metrics["test"])
    rows[label] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}

# 4. the table
keys = ["kg_mrr", "kg_hits@1", "kg_hits@3", "kg_hits@10"]
base = rows["relation popularity"]["kg_mrr"]
print(f"\n{'test, filtered, both ends':<40}" + "".join(f"{k:>12}" for k in keys) + f"{'mrr ratio':>12}")
print("-" * (40 + 12 * (len(keys) + 1)))
for name, values in rows.items():
    print(f"{name:<40}" + "".join(f"{values[k]:>12.4f}" for k in keys) + f"{values['kg_mrr'] / base:>12.3f}")
print(f"kgrec rows: mean of {args.seeds} seed{'s' if args.seeds > 1 else ''}; ratio: to relation popularity")
