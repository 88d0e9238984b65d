"""Seconds per forward + backward pass of kgrec's graph encoders on a dataset's knowledge graph,
against PyTorch Geometric's ``RGCNConv`` on the same graph in the same run.

    python scripts/bench_graph_encoder.py                                  # ml-100k's graph
    python scripts/bench_graph_encoder.py --config scripts/configs/ml-1m.yaml --set graph.users=true

Each encoder is what ``model.graph_kind`` trains (two layers of width ``model.dim``, inverse
edges added, learned node embeddings), timed over ``--steps`` passes after one untimed pass;
the baseline is two ``RGCNConv(aggr="mean")`` layers with the same bases over the same edges
(PyG's loop over relations, each transforming every node). The graph encoder runs once per
training step on the whole graph, so this is its share of a step.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _bench import CONFIG_HELP, SET_HELP, at_least_one, config_file
from torch_geometric.nn import RGCNConv

from kgrec.models import RelationalGraphEncoder
from kgrec.train import load_config, prepare

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ml-100k.yaml"), type=config_file, help=CONFIG_HELP)
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE", help=SET_HELP)
parser.add_argument("--steps", type=at_least_one, default=5, help="timed passes per encoder, after one untimed pass")
args = parser.parse_args()

config = load_config(args.config, [*args.overrides, "train.progress=false"])
prepared = prepare(config, progress=False)
graph = prepared.graph
if graph is None:
    parser.error("the config builds no graph (model.use_graph and the kg tower are off)")
edge_index = torch.stack([torch.as_tensor(graph.head), torch.as_tensor(graph.tail)])
edge_type = torch.as_tensor(graph.relation)
n_relations = int(edge_type.max()) + 1
dim, layers, bases = config.model.dim, config.model.graph_layers, config.model.graph_bases
print(f"{prepared.dataset.name}: {graph.n_nodes} nodes, {edge_type.numel()} edges ({2 * edge_type.numel()} with inverses), "
      f"{n_relations} relations; dim {dim}, {layers} layers; {platform.processor() or platform.machine()}, "
      f"{torch.get_num_threads()} threads")  # fmt: skip


def seconds_per_pass(params: list[torch.Tensor], forward: Callable[[], torch.Tensor]) -> float:
    """Mean wall time of forward + backward of ``forward().square().sum()`` over ``--steps``."""
    for step in range(args.steps + 1):
        if step == 1:
            started = time.perf_counter()
        for p in params:
            p.grad = None
        forward().square().sum().backward()
    return (time.perf_counter() - started) / args.steps


torch.manual_seed(0)
rows = {}
# the baseline: PyG's RGCNConv over the same edges, inverses added as the encoder adds them
both_index = torch.cat([edge_index, edge_index.flip(0)], 1)
both_type = torch.cat([edge_type, edge_type + n_relations])
embedding = torch.nn.Parameter(torch.randn(graph.n_nodes, dim) * 0.1)
convs = [RGCNConv(dim, dim, 2 * n_relations, num_bases=bases, aggr="mean") for _ in range(layers)]


def pyg_forward() -> torch.Tensor:
    h = embedding
    for k, conv in enumerate(convs):
        h = conv(h, both_index, both_type)
        h = torch.tanh(h) if k < layers - 1 else h
    return h


rows["PyG RGCNConv (baseline)"] = seconds_per_pass([embedding, *(p for c in convs for p in c.parameters())], pyg_forward)
for kind in ("rgcn", "compgcn", "kgat"):
    encoder = RelationalGraphEncoder(graph.n_nodes, n_relations, dim, layers, kind=kind, num_bases=bases)
    rows[f"kgrec {kind}"] = seconds_per_pass(list(encoder.parameters()), lambda e=encoder: e(edge_index, edge_type))

baseline = rows["PyG RGCNConv (baseline)"]
print(f"\n{'encoder':28s} {'s/pass':>8s} {'vs PyG RGCNConv':>16s}")
print("-" * 54)
for name, seconds in rows.items():
    print(f"{name:28s} {seconds:8.3f} {f'x{seconds / baseline:.2f}':>16s}")
print("s/pass: forward + backward of two layers over the whole graph (what a training step runs once)")
