#!/usr/bin/env bash
# The main job end to end on the default data: install, fetch ml-100k, build its knowledge graph,
# show its statistics and degree plot.
#   bash scripts/demo.sh
set -euo pipefail
. "$(dirname "$0")/_venv.sh"
DATA="$(kgrec data fetch ml-100k)"
echo "== dataset: $DATA"
kgrec data info "$DATA"
echo "== knowledge graph"
kgrec graph build --data "$DATA" --recipe graphs/ml-100k.yaml --out graphs/built/ml-100k
kgrec graph stats graphs/built/ml-100k --plot graphs/built/ml-100k/degrees.png
kgrec graph explain graphs/built/ml-100k --from 50 --to 181 -n 3
