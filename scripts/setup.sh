#!/usr/bin/env bash
# Installs what Consulta needs in .venv: uv (with pip, if missing) and the locked
# Python dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v uv >/dev/null 2>&1; then
  UV=(uv)
elif python3 -m uv --version >/dev/null 2>&1; then
  UV=(python3 -m uv)
else
  echo "Installing uv with pip…"
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
  UV=(python3 -m uv)
fi
"${UV[@]}" sync --frozen --quiet
