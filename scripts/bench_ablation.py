"""What each part of the default config is worth: the config with one thing changed at a time.

``--study inputs`` (default): the config as it is, without the text pathway, without the graph
encoder, and without both (ID vectors alone, so no ID dropout); then without the EASE teacher
(``model.distill_weight=0``), with all inputs and with ID vectors alone. ``--study design``: the other
trunks (shared-bottom, PLE), the other graph encoders (CompGCN, KGAT's attentive aggregation),
the collaborative KG (users join the graph through the training split's ``interacted`` edges,
as in KGAT; the users' graph vectors beside their ID and history, or in place of the history),
BPR instead of the full softmax, learned uncertainty weighting instead of fixed weights, PCGrad's
gradient surgery on the shared parameters, GradNorm's learned weights, and
fewer towers (no KG link tower; the retrieval tower alone). Every variant trains with the same seeds on the same split; the script
prints test metrics with the ratio to the first (full) variant. Model selection on valid, as in
training.

    python scripts/bench_ablation.py                       # ml-100k, 2 seeds (about 60 min on 2 cores)
    python scripts/bench_ablation.py --study design        # ml-100k, 2 seeds (about 3 hours)
    python scripts/bench_ablation.py --config scripts/configs/ml-1m.yaml --seeds 1
    python scripts/bench_ablation.py --variants "no text" "no graph"   # the full config and these two
"""

import argparse
import platform
from pathlib import Path

import numpy as np
import torch
from _bench import CONFIG_HELP, RUNS_HELP, SET_HELP, at_least_one, config_file, train_seed

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ml-100k.yaml"), type=config_file, help=CONFIG_HELP)
parser.add_argument("--study", choices=("inputs", "design"), default="inputs", help="which variants (see above)")
parser.add_argument("--seeds", type=at_least_one, default=2, help="training seeds per variant (the split stays fixed)")
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
parser.add_argument("--runs", metavar="DIR", help=RUNS_HELP)
parser.add_argument("--variants", nargs="+", metavar="LABEL",
                    help="run only these variants, by their label in the table (the full config always runs first)")  # fmt: skip
args = parser.parse_args()

STUDIES = {
    "inputs": {
        "full (text + graph + ID)": [],
        "no text": ["model.use_text=false"],
        "no graph": ["model.use_graph=false"],
        "ID only (no text, no graph)": ["model.use_text=false", "model.use_graph=false", "model.id_dropout=0"],
        "no EASE teacher": ["model.distill_weight=0"],
        "ID only, no EASE teacher": ["model.use_text=false", "model.use_graph=false", "model.id_dropout=0",
                                     "model.distill_weight=0"],
    },
    "design": {
        "full (config as it is)": [],
        "trunk: shared-bottom": ["model.trunk=shared_bottom"],
        "trunk: PLE": ["model.trunk=ple"],
        "graph encoder: CompGCN": ["model.graph_kind=compgcn"],
        "graph encoder: KGAT attention": ["model.graph_kind=kgat"],
        "collaborative KG, id+history+graph users": ["graph.users=true", "model.user_encoder=id+history+graph"],
        "collaborative KG, id+graph users": ["graph.users=true", "model.user_encoder=id+graph"],
        "retrieval loss: BPR": ["model.retrieval_loss=bpr"],
        "loss weights: uncertainty": ["model.loss_mode=uncertainty"],
        "loss: PCGrad": ["model.loss_mode=pcgrad"],
        "loss weights: GradNorm": ["model.loss_mode=gradnorm"],
        "towers: no KG link tower": ["model.tasks=[retrieval,rating,like]"],
        "towers: retrieval only": ["model.tasks=[retrieval]"],
    },
}
VARIANTS = STUDIES[args.study]
if args.variants:
    unknown = [label for label in args.variants if label not in VARIANTS]
    if unknown:
        parser.error(f"--variants {unknown}: the {args.study} study's variants are {list(VARIANTS)}")
    reference = next(iter(VARIANTS))
    VARIANTS = {label: v for label, v in VARIANTS.items() if label == reference or label in args.variants}
KEYS = ("ndcg@10", "recall@20", "rmse", "auc")
print(f"{args.config}; study {args.study}; {args.seeds} seed(s); {platform.processor() or platform.machine()}, "
      f"{torch.get_num_threads()} threads")  # fmt: skip

rows = {}
for name, overrides in VARIANTS.items():
    runs = []
    for seed in range(args.seeds):
        metrics = train_seed(args.config, seed, [*args.overrides, *overrides], runs=args.runs)
        runs.append(metrics)
        print(f"  {name} seed {seed}: valid ndcg@10 {metrics['valid']['ndcg@10']:.4f}, "
              f"test ndcg@10 {metrics['test']['ndcg@10']:.4f}, {metrics['epochs']} epochs", flush=True)  # fmt: skip
    rows[name] = {
        **{k: float(np.mean([r["test"][k] for r in runs])) for k in KEYS if k in runs[0]["test"]},
        "valid ndcg@10": float(np.mean([r["valid"]["ndcg@10"] for r in runs])),
        "test ndcg@10 per seed": [r["test"]["ndcg@10"] for r in runs],
        "s/epoch": float(np.mean([r["seconds_per_epoch"] for r in runs])),
    }

full = rows[next(iter(VARIANTS))]
shown = [k for k in KEYS if k in full]
print(f"\n| variant | valid ndcg@10 | {' | '.join('test ' + k for k in shown)} | ndcg@10 vs full | s/epoch |")
print("|---|---:|" + "---:|" * len(shown) + "---:|---:|")
for name, row in rows.items():
    cells = " | ".join(f"{row[k]:.4f}" if k in row else "-" for k in shown)
    ratio = row["ndcg@10"] / full["ndcg@10"]
    print(f"| {name} | {row['valid ndcg@10']:.4f} | {cells} | x{ratio:.3f} | {row['s/epoch']:.1f} |")
print("\ntest ndcg@10 per seed: " + "; ".join(
    f"{name}: {', '.join(f'{v:.4f}' for v in row['test ndcg@10 per seed'])}" for name, row in rows.items()
))  # fmt: skip
