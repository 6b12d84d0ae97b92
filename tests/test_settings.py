"""The settings refuse to start on bad or missing values, with a message that says what to do."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from consulta.lib.email_url import parse_email_url
from consulta.lib.env import env_bool, env_int


def start_with(**env) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CONSULTA_ENV", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG")
    }
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "consulta.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {
    "SECRET_KEY": "x" * 50,
    "ALLOWED_HOSTS": "consulta.example.org",
    "DATABASE_URL": "postgres://consulta@db:5432/consulta",
}


def test_production_starts_with_its_required_settings():
    result = start_with(**PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"])
def test_production_refuses_to_start_without(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = start_with(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{missing} is required in production" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG must be true or false"),
        ("STAFF_IDLE_MINUTES", "soon", "STAFF_IDLE_MINUTES must be a whole number"),
        ("STAFF_IDLE_MINUTES", "0", "STAFF_IDLE_MINUTES must be at least 1"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must be a redis:// URL"),
        ("CONSULTA_ENV", "staging", "CONSULTA_ENV must be one of production, demo, test"),
        ("EMAIL_URL", "pigeon://coop", "EMAIL_URL must start with one of"),
        ("TURN_URLS", "turn:turn.example.org:3478", "TURN_URLS needs TURN_SECRET"),
        ("ICE_TRANSPORT_POLICY", "sometimes", "ICE_TRANSPORT_POLICY must be 'all' or 'relay'"),
    ],
)
def test_a_bad_value_stops_the_start_with_a_clear_message(name, value, message):
    result = start_with(**PRODUCTION, **{name: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_production_defaults_are_secure():
    result = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS,"
            " s.SESSION_COOKIE_HTTPONLY)",
        ],
        env={
            **{k: v for k, v in os.environ.items() if k != "CONSULTA_ENV"},
            "DJANGO_SETTINGS_MODULE": "consulta.settings",
            **PRODUCTION,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["False", "True", "True", "31536000", "True"]


def test_boolean_and_number_parsing(monkeypatch):
    monkeypatch.setenv("X_FLAG", "Yes")
    monkeypatch.setenv("X_NUMBER", "42")
    assert env_bool("X_FLAG", False) is True
    assert env_int("X_NUMBER", 1, minimum=1) == 42
    monkeypatch.setenv("X_FLAG", "perhaps")
    with pytest.raises(ImproperlyConfigured):
        env_bool("X_FLAG", False)


def test_email_url_smtp_with_credentials():
    config = parse_email_url("smtp://mailer:s%40cret@mail.example.org:2525")
    assert config["EMAIL_HOST"] == "mail.example.org"
    assert config["EMAIL_PORT"] == 2525
    assert config["EMAIL_HOST_USER"] == "mailer"
    assert config["EMAIL_HOST_PASSWORD"] == "s@cret"
    assert config["EMAIL_USE_TLS"] is True


def test_email_url_smtps_and_file():
    assert parse_email_url("smtps://mail.example.org")["EMAIL_PORT"] == 465
    assert parse_email_url("file:///var/mail")["EMAIL_FILE_PATH"] == "/var/mail"
    with pytest.raises(ImproperlyConfigured):
        parse_email_url("smtp://")


def test_turn_urls_must_be_turn_urls():
    result = start_with(**PRODUCTION, TURN_URLS="stun:x.example.org", TURN_SECRET="s")
    assert result.returncode != 0
    assert "TURN_URLS must be turn: or turns: URLs" in result.stderr


def test_the_middleware_chain_runs_in_one_thread():
    """Under ASGI, Django runs every middleware listed after the last synchronous-only one
    asynchronously, with a switch between threads for each of its hooks. With a synchronous-only
    middleware last, the whole chain runs synchronously, in one thread."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    innermost = import_string(settings.MIDDLEWARE[-1])
    assert not getattr(innermost, "async_capable", False), settings.MIDDLEWARE[-1]
