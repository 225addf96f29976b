#!/usr/bin/env bash
# Installs everything and runs the whole platform on its embedded defaults:
#   bash scripts/run.sh          # API + web portal on http://127.0.0.1:8000
#   bash scripts/run.sh --demo   # ... with a demo factory
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/factoryops up "$@"
