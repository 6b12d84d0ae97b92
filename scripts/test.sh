#!/usr/bin/env bash
# Sets up and runs the whole test suite:
#   1. lint and migration checks;
#   2. the suite on PostgreSQL + Redis (browser tests included: embedded, one process and two
#      processes sharing PostgreSQL and Redis);
#   3. the suite without the browser on the embedded default (SQLite, in-memory layer).
# Without PostgreSQL or Redis, pass 2 skips what needs them, unless CI=true: then it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
unset DATABASE_URL REDIS_URL CONSULTA_ENV

echo "== lint"
ruff check .
ruff format --check .
CONSULTA_ENV=test DATABASE_URL=sqlite:///:memory: consulta makemigrations --check --dry-run >/dev/null

PG=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS=${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
services_up() {
  python3 - "$PG" "$REDIS" <<'PY'
import socket, sys
from urllib.parse import urlsplit
for url in sys.argv[1:]:
    p = urlsplit(url)
    try:
        socket.create_connection((p.hostname, p.port), timeout=1).close()
    except OSError:
        sys.exit(1)
PY
}

echo "== suite on PostgreSQL + Redis, with browser tests"
if services_up || [ "${CI:-}" = "true" ]; then
  # The suite's own database is test_consulta_<this shell's pid>, so that two runs on one machine
  # (a developer's beside CI's) never drop each other's; each run also keeps its own key prefix
  # in Redis database 1 (consulta/testing_env.py).
  DATABASE_URL="${PG%/*}/consulta" REDIS_URL="${REDIS%/*}/1" \
    TEST_DATABASE_NAME="${TEST_DATABASE_NAME:-test_consulta_$$}" pytest "$@"
else
  echo "PostgreSQL or Redis not reachable: running on the embedded default instead."
  pytest "$@"
fi

echo "== suite on the embedded default (SQLite, in-memory channel layer)"
pytest -m "not browser" -q "$@"
