#!/usr/bin/env bash
# The main job end to end on the default data: install, fetch ml-100k, build its knowledge graph,
# train the multi-task model (a few minutes on 2 CPU cores), then answer a query.
#   bash scripts/demo.sh            (RUN=runs/ml-100k by default; an existing finished run is reused)
set -euo pipefail
. "$(dirname "$0")/_venv.sh"
RUN="${RUN:-runs/ml-100k}"
DATA="$(kgrec data fetch ml-100k)"
echo "== dataset: $DATA"
kgrec data info "$DATA"

echo "== knowledge graph"
kgrec graph build --data "$DATA" --recipe graphs/ml-100k.yaml --out graphs/built/ml-100k
kgrec graph stats graphs/built/ml-100k --plot graphs/built/ml-100k/degrees.png
kgrec graph explain graphs/built/ml-100k --from 50 --to 181 -n 3

echo "== train ($RUN)"
if [ -f "$RUN/manifest.json" ]; then  # written last: a finished run
  echo "reusing the finished run in $RUN (delete it to retrain)"
else
  kgrec train --data "$DATA" --graph graphs/built/ml-100k --config scripts/configs/ml-100k.yaml --out "$RUN"
fi
kgrec eval "$RUN"
echo "training curves: $RUN/curves.png"

echo "== queries"
echo "-- top 5 for user 196: kgrec recommend $RUN --user 196 -k 5"
kgrec recommend "$RUN" --user 196 -k 5
echo "-- items like Star Wars (item 50): kgrec similar $RUN --item 50 -k 5"
kgrec similar "$RUN" --item 50 -k 5
echo "-- items matching a text: kgrec search $RUN \"animated film for children\" -k 5"
kgrec search "$RUN" "animated film for children" -k 5
