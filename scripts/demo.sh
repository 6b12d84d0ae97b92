#!/usr/bin/env bash
# Sets up and starts the demo: SQLite in ./var, the in-memory channel layer, a seeded demo
# clinic and printed sign-in links. Stop with Ctrl+C; run again to get fresh links.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/consulta demo "$@"
