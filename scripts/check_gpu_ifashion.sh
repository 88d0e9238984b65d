#!/usr/bin/env bash
# Alibaba-iFashion on one GPU: the CUDA tests, then scripts/configs/ifashion.yaml trained with a
# time budget (train.max_minutes; the best epoch so far is tested), the EASE teacher fitted and
# calibrated on the GPU. Prints the run's epochs, s/epoch and test metrics.
#
#   python scripts/prepare_ifashion.py --out data/ifashion      # once
#   OUT=runs/gpu-ifashion MINUTES=4.5 bash scripts/check_gpu_ifashion.sh [--set SECTION.FIELD=VALUE ...]
#
# T_RUN caps the whole kgrec train command in seconds (default: MINUTES of training plus 10 minutes
# for loading, the teacher's fit and calibration, and the final evaluation).
#
# CONFIG=FILE trains another config the same way.
# Runs with the current python3 (PYTHON=...), which must hold kgrec's dependencies and see a GPU.
# Results: $OUT/train.log, $OUT/metrics.json, $OUT/metrics.csv, $OUT/curves.png, $OUT/tests.log.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
OUT="${OUT:-runs/gpu-ifashion}"
RUN="${RUN:-$OUT/run}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
echo "== machine ($(date +%T))"
. scripts/_gpu_machine.sh
describe_machine "$PY"

echo "== CUDA tests ($(date +%T))"
timeout "${T_TESTS:-150}" "$PY" -m pytest -q -p no:cacheprovider tests/train/test_cuda.py tests/text/test_cuda.py \
  tests/models/test_precision.py 2>&1 | tee "$OUT/tests.log" | tail -8

CONFIG="${CONFIG:-scripts/configs/ifashion.yaml}"
echo "== train $CONFIG, ${MINUTES:-4.5} minutes of training ($(date +%T))"
rm -rf "$RUN"
T_RUN="${T_RUN:-$("$PY" -c "import sys; print(round(float(sys.argv[1]) * 60) + 600)" "${MINUTES:-4.5}")}"
timeout "$T_RUN" "$PY" -m kgrec train --config "$CONFIG" --out "$RUN" \
  --set "train.max_minutes=${MINUTES:-4.5}" "$@" 2>&1 | tee "$OUT/train.log" | grep -v "^ *step " | tail -40
cp "$RUN/metrics.json" "$RUN/curves.png" "$OUT/" 2>/dev/null
cp "$RUN"/logs/part-0/metrics.csv "$OUT/metrics.csv" 2>/dev/null
"$PY" - "$OUT/metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
t = m["test"]
print(f"epochs {m['epochs']} (best {m['best_epoch']}, stopped by {m['stopped_by']}), {m['seconds_per_epoch']:.1f} s/epoch; "
      f"test ndcg@10 {t['ndcg@10']:.4f} recall@20 {t['recall@20']:.4f}; valid ndcg@10 {m['valid']['ndcg@10']:.4f}")
PY
echo "== done ($(date +%T))"
