# Sourced by demo.sh and test.sh: create or reuse .venv and install kgrec (with EXTRAS) into it.
# PYTHON picks the interpreter (default python3, >= 3.10). torch is pinned in pyproject.toml.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  # none yet, or one without a working pip (its creation was interrupted, or failed for want of
  # python3-venv, or its Python is gone): make it afresh rather than fail on it every time
  "${PYTHON:-python3}" -m venv --clear .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true  # optional
log="$(mktemp)"
if ! python -m pip install --quiet --disable-pip-version-check -e ".${EXTRAS:-}" >"$log" 2>&1; then
  grep -v "^WARNING: Location" "$log" >&2 || true
  echo "installing kgrec${EXTRAS:-} into .venv failed (pip output above)" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
