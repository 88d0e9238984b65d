#!/usr/bin/env bash
# RecBole 1.2.1's own figures on ml-100k (scripts/recbole_reference.py; arguments pass through).
#
# kgrec does not use RecBole: this sets up a throwaway environment, outside the project, only to
# rerun the baselines that kgrec's goals quote ("measured with RecBole 1.2.1 defaults").
# RECBOLE_VENV picks its folder (default: $TMPDIR/kgrec-recbole-venv, reused when present).
#
#   bash scripts/recbole_reference.sh                                 # EASE on 3 split seeds (a minute)
#   bash scripts/recbole_reference.sh --seeds 2020 --export /tmp/recbole-split
#   kgrec train --config scripts/configs/ml-100k.yaml --data /tmp/recbole-split/ml-100k --out runs/recbole-split
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RECBOLE_VENV:-${TMPDIR:-/tmp}/kgrec-recbole-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$VENV"
  log="$VENV/install.log"
  pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
  # RecBole 1.2.1 sets np.float (gone in numpy 2) and its LightGCN calls dok_matrix._update (gone
  # in scipy 1.11). Its declared dependencies pull ray, which only its hyper-parameter search
  # needs: install it without them, and then what it imports.
  if ! { "${pip[@]}" --no-deps torch==2.13.0 recbole==1.2.1 thop==0.1.1.post2209072238 &&
    "${pip[@]}" "numpy<2" "pandas<2.3" "scipy<1.11" scikit-learn tqdm colorlog==4.7.2 colorama==0.4.4 \
      pyyaml tabulate texttable psutil tensorboard sympy filelock networkx jinja2 fsspec typing_extensions
  } >"$log" 2>&1; then
    cat "$log" >&2
    rm -rf "$VENV"
    echo "setting up RecBole in $VENV failed (pip output above)" >&2
    exit 1
  fi
  # recbole.quick_start imports ray.tune at module level; a stub that refuses to be used
  stub="$VENV/ray-stub/ray"
  mkdir -p "$stub"
  printf '"""Stand-in for ray, which only RecBole'"'"'s hyper-parameter search uses."""\n' >"$stub/__init__.py"
  printf 'def report(*args, **kwargs):\n    raise RuntimeError("ray is not installed")\n' >"$stub/tune.py"
fi
# RecBole reloads its best epoch from a checkpoint it pickled itself moments before; torch
# >= 2.6 refuses pickles by default (kgrec's own files never need this).
export TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1
cd "${TMPDIR:-/tmp}"  # RecBole writes log/ and log_tensorboard/ into the working directory
PYTHONPATH="$VENV/ray-stub" exec "$VENV/bin/python" "$ROOT/scripts/recbole_reference.py" "$@"
