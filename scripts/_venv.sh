# Sourced by demo.sh and test.sh: create or reuse .venv and install kgrec (with EXTRAS) into it.
# PYTHON picks the interpreter (default python3, >= 3.10). torch is pinned in pyproject.toml.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
python -m pip install --quiet --disable-pip-version-check -e ".${EXTRAS:-}" 2>&1 | grep -v "^WARNING: Location" || true
python -c "import kgrec" || { echo "kgrec failed to install" >&2; exit 1; }
