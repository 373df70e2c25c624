"""Preflight settings.

Everything comes from environment variables with safe development defaults:
SQLite, a filesystem Celery broker under var/, DEBUG only when asked. Any
variable may instead be read from a file named by ``<NAME>_FILE`` (Docker and
Kubernetes secrets). docker/.env.example lists every variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PREFLIGHT_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str = "") -> str:
    """Read ``name`` from the environment, or from the file ``<name>_FILE`` names."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text(encoding="utf-8").strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name, "1" if default else "0").strip().lower()
    return value in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
LOCAL_SECRET_KEY_PATH = VAR_DIR / "secret-key"


def _secret_key() -> str:
    """SECRET_KEY (or SECRET_KEY_FILE); else the random key `make` writes to var/ for local use.

    Outside debug mode there is no built-in fallback: a missing or weak key stops the
    app at start-up instead of signing sessions and password-reset links with a value
    anyone can read in the source.
    """
    key = env("SECRET_KEY")
    if not key and LOCAL_SECRET_KEY_PATH.exists():
        key = LOCAL_SECRET_KEY_PATH.read_text(encoding="utf-8").strip()
    if not key and DEBUG:
        return "debug-only-" + "x" * 40
    how = "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    if not key:
        raise ImproperlyConfigured(f"SECRET_KEY is not set (nor SECRET_KEY_FILE). {how}")
    if not DEBUG and (len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure")):
        raise ImproperlyConfigured(
            f"SECRET_KEY is too weak: it needs at least 50 characters, 5 of them different. {how}"
        )
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "assessments.organisations",
    "assessments.audit",
    "assessments.frameworks",
    "assessments.pilots",
    "assessments.evidence",
    "assessments.reviews",
    "assessments.reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "assessments.audit.middleware.RequestIdMiddleware",
    "assessments.organisations.middleware.OrganisationChoiceMiddleware",
    # Bodiless 405s and 409s get a page; after the middleware that page needs (session, user, CSP nonce).
    "readiness.errors.ErrorPageMiddleware",
    # Last in the list but before any view reads the body (CSRF reads it in process_view),
    # and after the middleware the 413 page needs (session, user, CSP nonce).
    "readiness.limits.RequestSizeLimitMiddleware",
]

ROOT_URLCONF = "readiness.urls"
WSGI_APPLICATION = "readiness.wsgi.application"
ASGI_APPLICATION = "readiness.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "assessments.organisations.context_processors.membership",
            ],
        },
    },
]

# SQLite by default; DATABASE_URL switches to PostgreSQL. IMMEDIATE transactions
# on SQLite serialise writers, which the audit chain relies on there.
DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # A database host that is down (not refusing) must fail fast, so a job retries with
        # backoff instead of hanging until its time limit; a URL may still set its own.
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 10)
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "preflight.sqlite3"),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Uploaded evidence lives outside static and is only served through an
# authorised view; MEDIA_URL is deliberately not routed.
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media-not-served/"
FILE_UPLOAD_MAX_BYTES = int(env("FILE_UPLOAD_MAX_BYTES", str(10 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = FILE_UPLOAD_MAX_BYTES + 1024 * 1024
# Whole request bodies: the largest upload plus room for the form's other fields. Larger
# requests are refused from their Content-Length before the body is read; set the proxy's
# limit (nginx client_max_body_size) to the same value.
REQUEST_MAX_BYTES = int(env("REQUEST_MAX_BYTES", str(FILE_UPLOAD_MAX_BYTES + 1024 * 1024)))

# --- Evidence from linked systems -------------------------------------------------
# Linked systems' credentials are encrypted at rest with these Fernet keys, newest first:
# the first encrypts, every one still decrypts until `manage.py credentials_rotate` has
# re-encrypted each row with the first. Unset: one key derived from SECRET_KEY (set your
# own in production, so that changing SECRET_KEY does not make stored credentials unreadable).
CREDENTIALS_KEYS = env_list("CREDENTIALS_KEYS")
# Outbound requests (connectors, evidence URLs) refuse private, loopback, link-local and
# other internal addresses. On-premise installations name the internal hosts (or address
# ranges, as CIDR) they may reach here; empty by default.
OUTBOUND_ALLOWED_HOSTS = env_list("OUTBOUND_ALLOWED_HOSTS")
OUTBOUND_TIMEOUT_SECONDS = float(env("OUTBOUND_TIMEOUT_SECONDS", "10"))
OUTBOUND_MAX_BYTES = int(env("OUTBOUND_MAX_BYTES", str(5 * 1024 * 1024)))
# At most this many checks run against one host at a time, across all workers (counted in
# Redis; without REDIS_URL the single development worker's concurrency bounds it instead).
OUTBOUND_MAX_PER_HOST = int(env("OUTBOUND_MAX_PER_HOST", "4"))
# Where people reach this installation: links in mails and chat alerts sent from background
# jobs (which have no request to take the address from) start with it.
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Demo linked systems read real tool outputs from here (never from anywhere else on disk).
EVIDENCE_FIXTURES_DIR = BASE_DIR / "fixtures" / "evidence"

CACHE_URL = env("REDIS_URL")
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "preflight",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Password-reset mail. The console backend prints mail in development; set
# EMAIL_BACKEND to django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST etc.
MAILERS = {
    "default": {
        "BACKEND": env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"),
        "OPTIONS": {
            key: value
            for key, value in {
                "host": env("EMAIL_HOST"),
                "port": int(env("EMAIL_PORT", "0")) or None,
                "username": env("EMAIL_HOST_USER"),
                "password": env("EMAIL_HOST_PASSWORD"),
                "use_tls": env_bool("EMAIL_USE_TLS") or None,
            }.items()
            if value
        },
    }
}
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "preflight@localhost")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES")
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES")
SECURE_CONTENT_TYPE_NOSNIFF = True
# HTTPS. Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
# (and make the proxy overwrite that header), then SSL_REDIRECT=1 and HSTS_SECONDS.
SECURE_SSL_REDIRECT = env_bool("SSL_REDIRECT")
SECURE_HSTS_SECONDS = int(env("HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD")
_proxy_header = env_list("SECURE_PROXY_SSL_HEADER")
if _proxy_header:
    if len(_proxy_header) != 2:
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https")
    SECURE_PROXY_SSL_HEADER = (_proxy_header[0], _proxy_header[1])
SECURE_REFERRER_POLICY = "same-origin"
CSRF_FAILURE_VIEW = "readiness.errors.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["assessments.organisations.api.IsMember"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Preflight API",
    "DESCRIPTION": "Production-readiness assessments for AI pilots.",
    "VERSION": "1.0.0",
}

# Celery: Redis when REDIS_URL is set, otherwise kombu's filesystem transport
# under var/ so a laptop needs no broker server.
#
# Jobs are acknowledged only when they end, so Redis gives a job nobody has
# acknowledged to another worker once CELERY_VISIBILITY_TIMEOUT seconds have passed
# since a worker took it: a worker killed mid-job costs minutes, not the job. A job
# still running at that age would run twice, so the time limits and the longest
# retry wait are fractions of it (README "Background jobs").
CELERY_VISIBILITY_TIMEOUT = int(env("CELERY_VISIBILITY_TIMEOUT", "300"))
if CELERY_VISIBILITY_TIMEOUT < 10:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("CELERY_VISIBILITY_TIMEOUT must be at least 10 seconds")
# A worker holds a retried job's message through its wait and then its run, so the
# longest wait (readiness/tasks.py) plus the hard limit stay under the timeout.
CELERY_TASK_TIME_LIMIT = CELERY_VISIBILITY_TIMEOUT * 3 // 5
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - max(1, CELERY_TASK_TIME_LIMIT // 6)
JOB_RETRY_BACKOFF_MAX = CELERY_VISIBILITY_TIMEOUT // 5
# Rendering a report (WeasyPrint, in a child process) is stopped after this many seconds,
# always inside the job's soft limit, and may map at most this many bytes beyond what the
# worker already maps (assessments/reports/sandbox.py).
REPORT_RENDER_TIMEOUT = min(int(env("REPORT_RENDER_TIMEOUT", "60")), CELERY_TASK_SOFT_TIME_LIMIT - 5)
REPORT_RENDER_MAX_MEMORY = int(env("REPORT_RENDER_MAX_MEMORY", str(1024 * 1024 * 1024)))
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        # Look for abandoned jobs every few seconds, not kombu's default of ~100 s.
        "unacked_restore_interval": max(1, min(30, CELERY_VISIBILITY_TIMEOUT // 10)),
        "unacked_restore_throttle": 1,
    }
else:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # Worker control messages (kombu otherwise writes ./control/ in the working directory).
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "scores-refresh-due": {
        "task": "assessments.pilots.tasks.scores_refresh_due",
        "schedule": crontab(minute="5"),
    },
    "audit-checkpoint-hourly": {
        "task": "assessments.audit.tasks.audit_checkpoint_all",
        "schedule": crontab(minute="0"),
    },
    "audit-checkpoint-due": {
        "task": "assessments.audit.tasks.audit_checkpoint_due",
        "schedule": crontab(),
    },
    # Queues the linked-system checks that are due; each runs as its own job.
    "check-runs-dispatch": {
        "task": "assessments.evidence.tasks.check_runs_dispatch",
        "schedule": 30.0,
    },
    # Sends again the job of a report whose message was lost or whose render is stuck.
    "reports-requeue": {
        "task": "assessments.reports.tasks.reports_requeue",
        "schedule": 60.0,
    },
    # Mails the owner of each review condition that went overdue, once per condition.
    "review-conditions-overdue": {
        "task": "assessments.reviews.tasks.conditions_overdue_notify",
        "schedule": crontab(minute="20"),
    },
}

# Ed25519 key that signs audit checkpoints (PEM, PKCS#8). The demo setup writes
# one under var/ when none is configured.
AUDIT_SIGNING_KEY_PATH = Path(env("AUDIT_SIGNING_KEY_PATH", str(VAR_DIR / "audit-signing-key.pem")))
AUDIT_CHECKPOINT_DIR = Path(env("AUDIT_CHECKPOINT_DIR", str(VAR_DIR / "checkpoints")))
# Verification accepts only checkpoints signed by these keys (hex key ids, comma-
# separated) or by the local key above when its file is present.
AUDIT_TRUSTED_KEY_IDS = env_list("AUDIT_TRUSTED_KEY_IDS")
# A checkpoint is signed after this many events or minutes, whichever comes first.
AUDIT_CHECKPOINT_EVERY_EVENTS = int(env("AUDIT_CHECKPOINT_EVERY_EVENTS", "100"))
AUDIT_CHECKPOINT_EVERY_MINUTES = int(env("AUDIT_CHECKPOINT_EVERY_MINUTES", "15"))
if AUDIT_CHECKPOINT_EVERY_EVENTS < 1 or AUDIT_CHECKPOINT_EVERY_MINUTES < 1:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("AUDIT_CHECKPOINT_EVERY_EVENTS and AUDIT_CHECKPOINT_EVERY_MINUTES must be at least 1")
# Write-once copies of every checkpoint, outside the database; empty means
# AUDIT_CHECKPOINT_DIR (its older name).
AUDIT_ANCHOR_DIR = env("AUDIT_ANCHOR_DIR")
# RFC 3161 time-stamping authority for checkpoints (off when empty) and the PEM
# certificate(s) its tokens must be signed by or issued from.
AUDIT_TSA_URL = env("AUDIT_TSA_URL")
AUDIT_TSA_CA_FILE = env("AUDIT_TSA_CA_FILE")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    # WeasyPrint and its font subsetter log every step at INFO: one report floods a worker's log.
    "loggers": {name: {"level": "WARNING"} for name in ("weasyprint", "fontTools")},
}

# Serve static files straight from the app folders too, so `make run` needs no
# collectstatic step; production images still run collectstatic.
WHITENOISE_USE_FINDERS = True
