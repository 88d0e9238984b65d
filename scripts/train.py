"""Train kgrec's multi-task model: the same code path as `kgrec train`, as a script to read and edit.

    python scripts/train.py --config scripts/configs/ml-100k.yaml --out runs/ml-100k
    python scripts/train.py --out runs/quick --set train.max_epochs=5 --set model.trunk=ple
"""

import argparse
import json
from pathlib import Path

from kgrec.train import build_model, load_config, prepare, train

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--config", default=str(Path(__file__).parent / "configs" / "ml-100k.yaml"), help="YAML config")
parser.add_argument("--out", required=True, help="run folder to write")
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE")
parser.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
args = parser.parse_args()

# 1. configuration: defaults < YAML file < --set overrides
config = load_config(args.config, args.overrides)

# 2. data: split dataset, knowledge graph (training edges only), cached item text vectors
prepared = prepare(config)
print(f"{prepared.dataset.name}: {prepared.sizes.num_users} users, {prepared.sizes.num_items} items, "
      f"{prepared.sizes.num_nodes} graph nodes, text dim {prepared.sizes.text_dim}")  # fmt: skip

# 3. model: fusion of ID / text / graph item vectors -> trunks -> task towers
print(build_model(config, prepared))

# 4. fit with early stopping on validation, reload the best weights, test, write the run folder
metrics = train(config, args.out, overwrite=args.overwrite, prepared=prepared)
print(json.dumps({part: metrics[part] for part in ("valid", "test")}, indent=2))
print(f"{metrics['epochs']} epochs, {metrics['seconds_per_epoch']:.1f} s/epoch; run folder: {args.out}")
