"""Settings for {{ cookiecutter.project_name }}.

Every value a deployment changes is read from the environment (and from `.env` when present;
real environment variables win). `.env.example` documents each one.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from config.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")

DEBUG = env_bool("DJANGO_DEBUG", True)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set and DJANGO_DEBUG is off. Set DJANGO_SECRET_KEY to a long "
            'random value, e.g. python -c "import secrets; print(secrets.token_urlsafe(50))".'
        )
    # Only for local development: a fixed key is fine where nothing is secret.
    SECRET_KEY = "django-insecure-local-development-only"
elif not DEBUG and (SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is too weak for DJANGO_DEBUG=off: use at least 50 random characters "
        "that do not start with 'django-insecure'."
    )

LOCAL_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", LOCAL_HOSTS if DEBUG else [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS is empty and DJANGO_DEBUG is off: list the host names this site "
        "serves, comma-separated, e.g. DJANGO_ALLOWED_HOSTS=example.com,www.example.com."
    )
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# Pages allowed to open cookie-authenticated websockets; empty means the hosts above.
WEBSOCKET_ALLOWED_ORIGINS = env_list("DJANGO_WEBSOCKET_ALLOWED_ORIGINS")

INSTALLED_APPS = [
    # daphne first: its runserver replaces Django's, so `manage.py runserver` speaks websockets.
    "daphne",
    # ServeStatic's system checks. It stays below daphne, whose runserver (which serves static
    # files itself in development) must win over ServeStatic's.
    "servestatic",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_live",
{%- if cookiecutter.include_example_app == "y" %}
    "todos",
{%- endif %}
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files are answered here, before sessions and the rest: see STORAGES below.
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        )
    }
except ValueError as error:
    raise ImproperlyConfigured(
        f"DATABASE_URL is not a database URL Django can use ({error}); "
        "expected e.g. postgres://user:password@host:5432/name or sqlite:///path/to/db.sqlite3."
    ) from None
# ATOMIC_REQUESTS stays off: Django refuses it for async views, which an ASGI project has (and
# writes no faster with). A view whose write is several statements, such as a todo and then its
# tags, wraps them in transaction.atomic() itself (todos/views.py), so that live subscribers get
# one frame showing both; without it they get two, and end right all the same.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "DATABASE_POOL", True
):
    # Under ASGI, Django's PostgreSQL pool replaces persistent connections: every ORM call in
    # an async context (each live evaluation) would otherwise open a new connection.
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured(
            "DATABASE_CONN_MAX_AGE must be 0 while DATABASE_POOL is on; set one of them off."
        )
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = True
    # The pool then checks each connection as it hands it out, so one the server dropped (a
    # restart, an idle timeout) is replaced rather than failing the query that got it.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    try:
        from psycopg_pool.base import AttemptWithBackoff
    except ImportError:
        pass  # Django says what to install when it first connects
    else:
        # psycopg_pool waits a second before it tries to replace a connection again, then
        # twice as long each time, and has no setting for it: after a restart of a tenth of a
        # second, writes and live changes waited 3 s for their connections. From 50 ms, half
        # as long again each time, they waited none.
        AttemptWithBackoff.INITIAL_DELAY = 0.05
        AttemptWithBackoff.DELAY_BACKOFF = 1.5

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    try:
        import channels_redis  # noqa: F401
    except ImportError:
        raise ImproperlyConfigured(
            "REDIS_URL is set but channels-redis is not installed: "
            "pip install channels-redis==4.3.0 'redis>=7,<8', or unset REDIS_URL."
        ) from None
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub delivers one message per server process and fans out locally, which
            # suits broadcasts to many sockets; see the README's Redis notes.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    # One process only: fine for development and tests, not for several workers.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

REST_LIVE_ROUTERS = ["config.routing.router"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
}
{%- if cookiecutter.metrics == "prometheus" %}

# The bearer token a scraper sends to /metrics (config/metrics.py). Empty turns /metrics off: it
# answers 404, so it is never open by mistake.
METRICS_TOKEN = env_str("METRICS_TOKEN")
if METRICS_TOKEN and (len(METRICS_TOKEN) < 32 or not METRICS_TOKEN.isascii()):
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be at least 32 random ASCII characters, e.g. "
        'python -c "import secrets; print(secrets.token_urlsafe(32))"; '
        "or empty it to turn /metrics off."
    )
# Prometheus scrapes each server process at its own address, over plain HTTP inside the private
# network; a redirect to HTTPS there would fail every scrape. The token is still required.
SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
{%- endif %}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where `collectstatic` writes, and where the application serves static files from.
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
# The application serves its own static files through ServeStatic's middleware, under Daphne or
# Uvicorn alike. With debug off, `collectstatic` copies each file under a name carrying its
# content's hash (its Cache-Control: ten years, immutable) and writes gzip and Brotli copies; the
# template tag `static` looks the hashed names up in its manifest (a JavaScript module imported by
# a relative path keeps its plain name, cached for a minute). That manifest exists only after
# `collectstatic`, so with debug on the storage is the plain one and files are served from the
# source folders (finders). This covers `manage.py test` too: the test runner turns debug off
# only after these lines have run.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "servestatic.storage.CompressedManifestStaticFilesStorage"
        ),
    },
}
SERVESTATIC_USE_FINDERS = DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "/api-auth/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    # Preloading is opt-in: once browsers ship the domain in their preload lists they refuse
    # plain HTTP for it and every subdomain, and leaving the lists takes months. The lists accept
    # only a max-age of a year or more with includeSubDomains, so anything less is a mistake.
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
    if SECURE_HSTS_PRELOAD and (
        SECURE_HSTS_SECONDS < 31536000 or not SECURE_HSTS_INCLUDE_SUBDOMAINS
    ):
        raise ImproperlyConfigured(
            "DJANGO_SECURE_HSTS_PRELOAD=on needs DJANGO_SECURE_HSTS_SECONDS=31536000 (a year) or "
            "more and DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS=on: set both, or set "
            "DJANGO_SECURE_HSTS_PRELOAD=off."
        )
    if not SECURE_HSTS_PRELOAD:
        # check --deploy's security.W021 only says that a site without preload cannot join the
        # preload lists. Off is the deliberate default above, so that one check is silenced,
        # and only while preload is off.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# One handler, on the root logger: the loggers below only set their level and pass records up to
# it, so each line is printed once. "django" is named to drop the console handler Django gives it
# before these settings apply: with that handler and root's both on it, `runserver` printed every
# request line twice. Error emails to ADMINS with debug off stay as in Django's defaults.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"require_debug_false": {"()": "django.utils.log.RequireDebugFalse"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false"],
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "rest_live": {"level": env_str("REST_LIVE_LOG_LEVEL", "INFO")},
    },
}
