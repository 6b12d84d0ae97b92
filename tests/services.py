"""Where the real services are, and what to do when they are missing: skip on a laptop,
fail in CI (CI=true), so that a green CI run always means they were used."""

import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


def require(what: str, available: bool) -> None:
    if available:
        return
    message = f"{what} is not available"
    if IN_CI:
        pytest.fail(f"{message}, and CI=true: CI must run this test.")
    pytest.skip(message)


def require_postgres() -> str:
    require(f"PostgreSQL at {POSTGRES_URL}", _reachable(POSTGRES_URL))
    return POSTGRES_URL


def in_the_postgres_pass() -> None:
    """For a test of PostgreSQL's own behaviour (row locks, COPY): it runs in the suite's
    PostgreSQL pass; the SQLite pass skips it (and CI runs both passes)."""
    from django.db import connection

    require_postgres()
    if connection.vendor != "postgresql":
        pytest.skip("the suite runs on SQLite here; the PostgreSQL pass runs this test")


def require_redis() -> str:
    require(f"Redis at {REDIS_URL}", _reachable(REDIS_URL))
    return REDIS_URL


def require_coturn() -> str:
    """coturn's `turnserver`, for the call forced through TURN (Debian package coturn)."""
    path = shutil.which("turnserver") or "/usr/bin/turnserver"
    require("coturn's turnserver", Path(path).exists())
    return path


def require_chromium() -> str:
    require(f"Chromium at {CHROMIUM}", shutil.which(CHROMIUM) is not None)
    return CHROMIUM


def clear_cache() -> None:
    """Empty this test run's cache. On Redis, Django's cache.clear() is FLUSHDB, which would
    also empty the channel layer and the keys of any other test run sharing the database:
    delete only the keys under this run's cache prefix."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        cache.clear()
        return
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=cache.make_key("*"), count=1000))
    if keys:
        client.delete(*keys)
