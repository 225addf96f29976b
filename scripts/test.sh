#!/usr/bin/env bash
# Installs everything, starts what the tests need, and runs the whole suite:
# ruff, mypy, the web type check, the Python tests on SQLite and on MariaDB, the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ] || need_apt+=(influxdb)
# The report tests open the generated Excel files in LibreOffice (headless).
command -v soffice >/dev/null 2>&1 || need_apt+=(libreoffice-calc-nogui)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> apt-get install ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

bash scripts/install.sh

# MariaDB/MySQL for the second run of the suite (already running on our machines and in CI).
MYSQL_URL=${FACTORYOPS_TEST_MYSQL_URL:-mysql+pymysql://root@127.0.0.1:3306}
if ! .venv/bin/python - "$MYSQL_URL" <<'PY'
import sys, sqlalchemy
sqlalchemy.create_engine(sys.argv[1]).connect().close()
PY
then
  echo "==> MariaDB is not reachable at $MYSQL_URL; trying to start it"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  for _ in $(seq 1 30); do
    .venv/bin/python -c "import sqlalchemy,sys; sqlalchemy.create_engine(sys.argv[1]).connect().close()" "$MYSQL_URL" 2>/dev/null && break
    sleep 1
  done
fi

echo "==> ruff"
.venv/bin/ruff check src tests bench scripts
.venv/bin/ruff format --check src tests bench scripts
echo "==> mypy"
.venv/bin/mypy
echo "==> dependency audit: pip-audit, completed from the index's per-project data (exceptions in .pip-audit-ignore)"
audit_ignore=()
while read -r id _; do
  if [ -n "$id" ] && [ "${id#\#}" = "$id" ]; then audit_ignore+=(--ignore "$id"); fi
done < .pip-audit-ignore
audit_json=$(mktemp)
# pip-audit exits 1 when it finds a vulnerability; scripts/audit_deps.py reads its JSON and decides.
.venv/bin/pip-audit --skip-editable --progress-spinner off -f json > "$audit_json" 2> >(grep -v -E "^(WARNING: Location|No known vulnerabilities found)" >&2) || true
if ! .venv/bin/python scripts/audit_deps.py "$audit_json" "${audit_ignore[@]}"; then
  rm -f "$audit_json"
  echo "known vulnerabilities (above): raise the minimum version in pyproject.toml, or record why not in .pip-audit-ignore and docs/security.md" >&2
  exit 1
fi
rm -f "$audit_json"
if [ -f web/package.json ]; then
  echo "==> web: the typed API client matches the API, and the portal type-checks"
  .venv/bin/factoryops openapi > /tmp/factoryops-openapi.$$.json
  if ! cmp -s /tmp/factoryops-openapi.$$.json web/openapi.json; then
    echo "web/openapi.json is stale: run '.venv/bin/factoryops openapi > web/openapi.json && (cd web && npm run gen:api)'" >&2
    rm -f /tmp/factoryops-openapi.$$.json
    exit 1
  fi
  rm -f /tmp/factoryops-openapi.$$.json
  (cd web && npm run --silent typecheck)
fi

echo "==> tests on SQLite"
FACTORYOPS_TEST_DB=sqlite .venv/bin/python -m pytest -m "not e2e" -p no:cacheprovider "$@"
echo "==> tests on MariaDB (those that touch the metadata database)"
FACTORYOPS_TEST_DB=mysql .venv/bin/python -m pytest -m "not e2e and not nodb" -p no:cacheprovider "$@"
echo "==> browser tests (Playwright + Debian Chromium)"
.venv/bin/python -m pytest -m e2e -p no:cacheprovider tests/e2e "$@"
