"""One settings module, driven by the environment (see the README's configuration table).

CONSULTA_ENV picks the defaults: `production` (the default) is strict and secure,
`demo` and `test` run out of the box on SQLite and the in-memory channel layer.
"""

import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from consulta.lib.email_url import parse_email_url
from consulta.lib.env import env_bool, env_choice, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent
CONSULTA_ENV = env_choice("CONSULTA_ENV", "production", ("production", "demo", "test"))
EMBEDDED = CONSULTA_ENV in ("demo", "test")
DATA_DIR = Path(env_str("CONSULTA_DATA_DIR", str(Path.cwd() / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not (EMBEDDED or DEBUG):
        raise ImproperlyConfigured(
            "SECRET_KEY is required in production: set it to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    SECRET_KEY = "consulta-insecure-key-for-demo-and-tests-only"  # noqa: S105

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if EMBEDDED or DEBUG else []
)
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is required in production, e.g. consulta.example.org."
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_tasks",
    "django_tasks_db",
    "consulta.accounts",
    "consulta.audit",
    "consulta.patients",
    "consulta.visits",
    "consulta.scheduling",
    "consulta.notifications",
    "consulta.calls",
    "consulta.lib",
]

# Under ASGI, Django runs the middleware listed after the last synchronous-only one (ours are)
# asynchronously, and each of their hooks then costs a switch between threads. So the two that
# can run either way (allauth's and X-Frame-Options) come before ours: the whole chain runs in
# one thread, and the redirects of our middleware get X-Frame-Options too.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "consulta.lib.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "consulta.audit.context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "consulta.accounts.middleware.ClinicContextMiddleware",
    "consulta.accounts.middleware.IdleTimeoutMiddleware",
    "consulta.accounts.middleware.RequireMFAMiddleware",
]

ROOT_URLCONF = "consulta.urls"
ASGI_APPLICATION = "consulta.asgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "consulta.accounts.context_processors.consulta",
            ],
        },
    }
]

# --- Database: SQLite embedded, PostgreSQL when DATABASE_URL says so -------------
_default_db = f"sqlite:///{DATA_DIR / 'consulta.sqlite3'}"
_database_url = env_str("DATABASE_URL") or (_default_db if EMBEDDED or DEBUG else None)
if not _database_url:
    raise ImproperlyConfigured(
        "DATABASE_URL is required in production, e.g. postgres://consulta@db:5432/consulta."
    )
try:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=0)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL could not be read: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A new connection costs 12-18 ms a request; each process keeps a small pool instead.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("DATABASE_POOL_SIZE", 10, minimum=1),
        "timeout": 10,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads (the ASGI server, the worker) write to one file: wait instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
if env_str("TEST_DATABASE_NAME"):
    # Lets two test runs share one PostgreSQL server without dropping each other's database.
    DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer and cache: in memory embedded, Redis when REDIS_URL says so ---------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"REDIS_URL must be a redis:// URL, not {REDIS_URL!r}.")
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # channels_redis waits for messages with 5-second blocking reads; redis-py 8
                # times reads out after 5 s by default, which dropped every idle socket (and
                # renegotiated every call) every few seconds. Wait longer than the reads.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "prefix": env_str("REDIS_PREFIX", "consulta"),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("REDIS_PREFIX", "consulta"),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Background tasks -------------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": (
            "django_tasks.backends.immediate.ImmediateBackend"
            if env_bool("TASKS_IMMEDIATE", CONSULTA_ENV == "test")
            else "django_tasks_db.DatabaseBackend"
        ),
        "QUEUES": ["default"],
    }
}

# --- Authentication ---------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if CONSULTA_ENV == "test":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed, tests only

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_ADAPTER = "consulta.accounts.adapter.AccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_LOGIN_BY_CODE_TIMEOUT = env_int("LOGIN_CODE_TIMEOUT_SECONDS", 300, minimum=60)
ACCOUNT_LOGIN_BY_CODE_MAX_ATTEMPTS = 3
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False  # never mail a stranger who typed an address
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "5/5m/ip,5/5m/key",
    "request_login_code": "5/5m/ip,3/5m/key",
    "reset_password": "5/m/ip,3/5m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("MFA_TOTP_ISSUER", "Consulta")

STAFF_IDLE_MINUTES = env_int("STAFF_IDLE_MINUTES", 15, minimum=1)
PATIENT_IDLE_MINUTES = env_int("PATIENT_IDLE_MINUTES", 60, minimum=1)
LOGIN_LINK_MINUTES = env_int("LOGIN_LINK_MINUTES", 15, minimum=1)
SESSION_COOKIE_AGE = 12 * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- Security headers and cookies -------------------------------------------------
BEHIND_TLS = env_bool("BEHIND_TLS", not (EMBEDDED or DEBUG))
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = BEHIND_TLS
CSRF_COOKIE_SECURE = BEHIND_TLS
LANGUAGE_COOKIE_SECURE = BEHIND_TLS
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 31536000 if BEHIND_TLS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if BEHIND_TLS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
X_FRAME_OPTIONS = "DENY"

# --- Languages and time -----------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", _("English")),
    ("it", _("Italian")),
    ("fr", _("French")),
    ("nb", _("Norwegian")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["consulta.formats"]  # day-first dates and a 24-hour clock in English
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"

# --- Static files: served by the app itself (WhiteNoise), never from a CDN ------------
STATIC_URL = "/static/"
# Embedded runs serve files straight from the apps; production collects them first.
_static_root = env_str("STATIC_ROOT", None if EMBEDDED else str(DATA_DIR / "static"))
STATIC_ROOT = Path(_static_root) if _static_root else None
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# WhiteNoise streams files with a sync iterator; under ASGI Django warns on every file.
# The files are small and cached by browsers, so the thread hop is harmless.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous")

# --- Email ------------------------------------------------------------------------
vars().update(parse_email_url(env_str("EMAIL_URL", "console:") or "console:"))
if CONSULTA_ENV == "test":
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Consulta <no-reply@localhost>")
SMS_BACKEND = env_str("SMS_BACKEND", "consulta.notifications.sms.LogBackend")
SMS_FILE_PATH = env_str("SMS_FILE_PATH", str(DATA_DIR / "sms.jsonl"))
PUBLIC_URL = (env_str("PUBLIC_URL", "http://127.0.0.1:8000") or "").rstrip("/")

# --- Visits -----------------------------------------------------------------------
SIGNALLING_MAX_MESSAGE_BYTES = env_int("SIGNALLING_MAX_MESSAGE_BYTES", 65536, minimum=4096)
ICE_SERVERS_STUN = env_list("STUN_URLS", [])
# How long a participant whose connection dropped is shown as "reconnecting" before "left".
VISIT_RECONNECT_GRACE_SECONDS = env_int("VISIT_RECONNECT_GRACE_SECONDS", 120, minimum=5)
# Every participant of a call connects to every other (a mesh): each sends its video once
# per other participant, which a home connection holds for four people, not many more.
VISIT_MAX_PARTICIPANTS = 4
# The waiting room's connection test: server-side WebRTC peers open at once, per process.
NETTEST_MAX_PEERS = env_int("NETTEST_MAX_PEERS", 20, minimum=1)
# A guest link (a first consultation without a patient record) works this long at most,
# and never after its visit has ended.
GUEST_LINK_HOURS = env_int("GUEST_LINK_HOURS", 4, minimum=1)
# TURN with coturn's `use-auth-secret`: each participant gets a credential that expires.
TURN_URLS = env_list("TURN_URLS", [])
TURN_SECRET = env_str("TURN_SECRET", "")
if TURN_URLS and not TURN_SECRET:
    raise ImproperlyConfigured("TURN_URLS needs TURN_SECRET (coturn's static-auth-secret).")
if any(not url.startswith(("turn:", "turns:")) for url in TURN_URLS):
    raise ImproperlyConfigured("TURN_URLS must be turn: or turns: URLs.")
# How long a TURN credential outlives the visit's planned end.
TURN_MARGIN_MINUTES = env_int("TURN_MARGIN_MINUTES", 60, minimum=5)
# "relay" sends every call through TURN (for networks that must not reveal addresses).
ICE_TRANSPORT_POLICY = env_str("ICE_TRANSPORT_POLICY", "all")
if ICE_TRANSPORT_POLICY not in ("all", "relay"):
    raise ImproperlyConfigured("ICE_TRANSPORT_POLICY must be 'all' or 'relay'.")

# --- Internal calls ---------------------------------------------------------------
# How long a call between colleagues rings before it counts as missed ("No answer").
INTERNAL_CALL_RING_SECONDS = env_int("INTERNAL_CALL_RING_SECONDS", 45, minimum=5)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
