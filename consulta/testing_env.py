"""Loaded by pytest (`-p consulta.testing_env`) before Django reads its settings."""

import os
import uuid

os.environ.setdefault("CONSULTA_ENV", "test")
# Two test runs may share one Redis (a developer's run beside CI's, on one machine): each run
# keeps its channel groups, presence and cache under its own key prefix, or one run's socket
# hears the other's events (both number their users from 1) and misses its own.
os.environ.setdefault("REDIS_PREFIX", f"consulta-test-{uuid.uuid4().hex[:10]}")
