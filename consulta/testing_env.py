"""Loaded by pytest (`-p consulta.testing_env`) before Django reads its settings."""

import os

os.environ.setdefault("CONSULTA_ENV", "test")
