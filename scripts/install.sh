#!/usr/bin/env bash
# Installs FactoryOps into ./.venv and builds the web portal. Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "FactoryOps needs Python 3.11 or newer (found $("$PYTHON" --version 2>&1))." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
echo "==> installing the Python package"
.venv/bin/python -m pip install --quiet --upgrade pip setuptools
.venv/bin/python -m pip install --quiet -e ".[dev]"

if [ -f web/package.json ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is missing: install Node.js 20+ (apt-get install -y nodejs npm) to build the web portal." >&2
    exit 1
  fi
  echo "==> building the web portal"
  (cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
fi
echo "==> installed"
