#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the project with the given extras, once per change
# of pyproject.toml. Usage: scripts/bootstrap.sh [EXTRAS]   e.g. scripts/bootstrap.sh cpu,dev
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-cpu}"
venv="${RAG_VENV:-.venv}"

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3; do
    [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)'; then
      echo "$candidate"; return
    fi
  done
  echo "error: Python 3.11 or 3.12 is needed; install it or set PYTHON=/path/to/python" >&2
  exit 2
}

if [ ! -x "$venv/bin/python" ]; then
  python="$(pick_python)"
  echo "==> creating $venv with $($python --version)"
  "$python" -m venv "$venv"
fi

stamp="$venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)-${extras//,/_}"
if [ ! -f "$stamp" ]; then
  echo "==> installing support-rag[$extras] into $venv (first time: a few minutes)"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  # torch first and pinned: an unpinned torch pulls several GB of CUDA wheels.
  "$venv/bin/python" -m pip install --quiet "torch==2.13.0"
  "$venv/bin/python" -m pip install --quiet -e ".[$extras]"
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi
