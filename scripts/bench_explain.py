"""Which shared neighbour a KG-path explanation names: the least connected one, or the one KGAT attends to.

``similar`` explains a result by a path between the query item and the result, and when the two
share several KG neighbours one must be named first. The default rule (every graph encoder) takes
a readable node first, then the one linked to the fewest items: a shared director says more than
a shared language. With a KGAT encoder the explainer takes, after the readable ones, the node
both items attend to most, :math:`\\bar\\alpha_{a \\leftarrow c} \\bar\\alpha_{b \\leftarrow c}` (KGAT's attention
averaged over its layers): what the model itself leaned on.

For ``--anchors`` items (seeded draw among the trained ones) and their ``-k`` most similar
items, both rules explain the same (query, result) pairs of one KGAT run. Per rule: the share of
results explained by a KG path; among those whose first path is two hops, the share whose middle
node has a readable name and the median number of catalog items linked to it; the share of first
paths the two rules name differently; milliseconds per explanation. Baseline: the default rule.

    python scripts/bench_explain.py runs/ml-100k-kgat [--anchors 300] [-k 10]
"""

import argparse
import platform
import sys
import time

import numpy as np
from _bench import at_least_one, check_runs, one_line_errors

from kgrec.graph.kg import ITEM
from kgrec.retrieval import Recommender

sys.excepthook = one_line_errors  # bad input met while running (a run without vectors): one line, status 2

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("run", help="a run trained with model.graph_kind=kgat")
parser.add_argument("--anchors", type=at_least_one, default=300, help="query items (seed 0)")
parser.add_argument("-k", type=at_least_one, default=10, help="results explained per query")
args = parser.parse_args()
check_runs(parser, args.run)

rec = Recommender.open(args.run)
attended = rec.explainer
if not attended.has_attention:
    parser.error(f"{args.run} has no KGAT attention (train it with --set model.graph_kind=kgat)")
least_connected = attended.without_attention()  # the default rule, on the same graph and catalog

kg = rec.run.graph
is_item = kg.node_type == ITEM
linked_items = np.bincount(kg.head[is_item[kg.tail]], minlength=kg.n_nodes)  # items joined to each node
linked_items += np.bincount(kg.tail[is_item[kg.head]], minlength=kg.n_nodes)

rng = np.random.default_rng(0)
trained = np.unique(rec.run.dataset.train.item)
anchors = rng.choice(trained, size=min(args.anchors, len(trained)), replace=False)
pairs = [(int(a), rec.catalog.position(r.item_id)) for a in anchors
         for r in rec.similar(rec.catalog.tokens[a], k=args.k, explain=False)]  # fmt: skip
print(f"{args.run}: {len(anchors)} query items x {args.k} results = {len(pairs)} explained pairs; "
      f"{platform.processor() or platform.machine()}")  # fmt: skip

RULES = {"least connected (default)": least_connected, "most attended (KGAT)": attended}
middles, seconds, with_path = {}, {}, {}
for name, explainer in RULES.items():
    started = time.perf_counter()
    explained = [explainer.for_similar(a, b) for a, b in pairs]
    seconds[name] = time.perf_counter() - started
    first = [e.paths[0].path.nodes if e.kind == "kg_path" else () for e in explained]
    with_path[name] = np.mean([len(nodes) > 0 for nodes in first])
    middles[name] = np.asarray([nodes[1] if len(nodes) == 3 else -1 for nodes in first])  # -1: no 2-hop path
differ = (middles["least connected (default)"] != middles["most attended (KGAT)"]).mean()
both = np.all([m >= 0 for m in middles.values()], axis=0)
changed = both & (middles["least connected (default)"] != middles["most attended (KGAT)"])

print(f"\n{'rule':<28}{'kg path':>9}{'named middle':>14}{'items linked':>14}{'where they differ':>19}{'ms/expl.':>10}")
for name in RULES:
    two_hop = middles[name][middles[name] >= 0]
    print(f"{name:<28}{with_path[name]:>9.3f}{attended.is_named(two_hop).mean():>14.3f}"
          f"{np.median(linked_items[two_hop]):>14.0f}{np.median(linked_items[middles[name][changed]]):>19.0f}"
          f"{seconds[name] / len(pairs) * 1000:>10.2f}")  # fmt: skip
print(f"items linked: median number of catalog items joined to the first path's middle node (2-hop paths); "
      f"where they differ: the same over the {changed.sum()} pairs whose middle node the rules choose differently")
print(f"first paths named differently by the two rules: {differ:.3f} of the pairs")
