"""Settings of the benchmark peer: production-like (no DEBUG), PostgreSQL, nothing extra.

The database comes from PEER_DATABASE_URL (postgres://user:password@host:port/name) when
set, else from the libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, with
defaults 127.0.0.1, 5432, postgres, no password, tessera_bench_peer.
"""
import os
import secrets
from urllib.parse import unquote, urlsplit

# No key in the repository: run.sh makes one per server (PEER_SECRET_KEY), shared by its
# workers; a management command on its own gets a throw-away one.
SECRET_KEY = os.environ.get("PEER_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = os.environ.get("PEER_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "signin",
]

# The usual stack less what only HTML pages need (messages, clickjacking). Session and
# user are lazy: they cost nothing unless a view reads them.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "peer.urls"
WSGI_APPLICATION = "peer.wsgi.application"
TEMPLATES = []


def _database():
    url = os.environ.get("PEER_DATABASE_URL")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ValueError("PEER_DATABASE_URL must be a postgres:// URL")
        host, port = parts.hostname or "", parts.port or 5432
        user = unquote(parts.username or "")
        password = unquote(parts.password or "")
        name = parts.path.lstrip("/") or "tessera_bench_peer"
    else:
        host = os.environ.get("PGHOST", "127.0.0.1")
        port = int(os.environ.get("PGPORT", "5432"))
        user = os.environ.get("PGUSER", "postgres")
        password = os.environ.get("PGPASSWORD", "")
        name = os.environ.get("PGDATABASE", "tessera_bench_peer")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": user,
        "PASSWORD": password,
        "HOST": host,
        "PORT": port,
        # One persistent connection per worker process, as in a usual deployment.
        "CONN_MAX_AGE": None,
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False

# Database-backed sessions (the default engine, spelled out).
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# django-otp defaults, spelled out: drift follows the matched step; after a wrong code a
# device waits 1, 2, 4, ... seconds before it checks codes again.
OTP_TOTP_SYNC = True
OTP_TOTP_THROTTLE_FACTOR = 1

# No request logging; errors go to stderr (Django's default handlers with DEBUG off).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "ERROR"}},
}
