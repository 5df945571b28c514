"""Settings helpers: one function builds the settings every service shares from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from common import credentials, kafka_auth, namespace

env = environ.Env()

# Local infrastructure started by `manage_all.py infra up`; the same ports are the defaults here so
# a service runs with no configuration at all on a developer's machine.
LOCAL_PG_PORT = 55432
LOCAL_REDIS_PORT = 56379
LOCAL_KAFKA_PORT = 59092

SERVICES = {
    # service -> its database on the cluster (its role has the service's name)
    "user_svc": "user_service",
    "portfolio_svc": "portfolio_service",
    "order_svc": "order_service",
    "transaction_svc": "transaction_service",
    "analytics_svc": "analytics_service",
}
# common/'s own test suite runs as a sixth, test-only project with a role of its own.
TEST_PROJECTS = {"platform_common": "platform_common"}


def local_database_url(service: str) -> str:
    """The URL of a service's database on the local private cluster (role = service name), in this namespace,
    with the role's password from .run/secrets/postgres/ (made by `infra up`)."""
    database = namespace.database(SERVICES.get(service) or TEST_PROJECTS[service])
    try:
        password = credentials.read("postgres", service)
    except credentials.MissingSecret as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not set and {exc}") from None
    return f"postgres://{service}:{password}@127.0.0.1:{LOCAL_PG_PORT}/{database}"


def database_settings(service: str) -> dict[str, Any]:
    """DATABASE_URL, or (unset) the local cluster's database of the service."""
    url = env.str("DATABASE_URL", default="") or local_database_url(service)
    return env.db_url_config(url)


def local_jwt_dir() -> Path:
    """Where `infra up` keeps the local key pair and JWK set (common.jwt_keys), under PLATFORM_RUN_DIR."""
    return credentials.run_dir() / "jwt"


def pem_key_file(name: str, local_file: str | None) -> str:
    """The file a PEM key is read from: NAME_FILE, or (local mode) .run/jwt/<local_file>; "" when NAME holds it."""
    if env.str(name, default=""):
        return ""
    return env.str(f"{name}_FILE", default="") or (str(local_jwt_dir() / local_file) if local_file else "")


def kafka_security(service: str) -> dict[str, str]:
    """The service's Kafka security settings (common/kafka_auth.py: the KAFKA_SECURITY_PROTOCOL/KAFKA_SASL_*
    variables, or locally its SCRAM principal with the password from .run/secrets/kafka/)."""
    try:
        return kafka_auth.security_config(service)
    except kafka_auth.KafkaAuthError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def read_pem_key(name: str, local_file: str | None) -> str:
    """A PEM key from NAME, or from the file NAME_FILE, or (local mode) from .run/jwt/."""
    if value := env.str(name, default=""):
        return value
    path = pem_key_file(name, local_file)
    try:
        return Path(path).read_text() if path else ""
    except FileNotFoundError:
        if env.str(f"{name}_FILE", default=""):
            raise ImproperlyConfigured(f"{name}_FILE points at {path}, which does not exist") from None
        return ""


def service_settings(*, name: str, base_dir: Path, apps: list[str]) -> dict[str, Any]:
    """Every setting a service shares with the others, read from the environment.

    `PLATFORM_ENV=local` (the default) allows safe local defaults; any other value is production:
    DJANGO_SECRET_KEY is then required and the HTTPS settings are on.
    """
    if name not in SERVICES and name not in TEST_PROJECTS:
        raise ImproperlyConfigured(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
    platform_env = env.str("PLATFORM_ENV", default="local")
    local = platform_env == "local"
    if local:
        # Each service its own random key, made on first use (whoever starts it: `up`, a test run, a benchmark,
        # a manage.py command by hand) and kept in .run/secrets/django/<service>, readable by this user only.
        secret_key = env.str("DJANGO_SECRET_KEY", default="") or credentials.ensure("django", name, nbytes=48)
    else:
        secret_key = env.str("DJANGO_SECRET_KEY", default="")
        if not secret_key:
            raise ImproperlyConfigured(
                f"DJANGO_SECRET_KEY is required when PLATFORM_ENV={platform_env!r}; "
                "set it to a long random string, e.g. from secrets.token_urlsafe(50)."
            )
    redis_url = env.str("REDIS_URL", default=f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0")
    try:
        ns = namespace.current()  # a test run's or a benchmark's own topics, groups, queues, keys and registry
    except namespace.NamespaceError as exc:
        raise ImproperlyConfigured(str(exc)) from None
    queue = namespace.queue(name)

    settings: dict[str, Any] = {
        "SERVICE_NAME": name,
        "PLATFORM_NAMESPACE": ns,
        "PLATFORM_ENV": platform_env,
        "BASE_DIR": base_dir,
        "SECRET_KEY": secret_key,
        "DEBUG": env.bool("DJANGO_DEBUG", default=False),
        "ALLOWED_HOSTS": env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if local else []),
        "CSRF_TRUSTED_ORIGINS": env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[]),
        "INSTALLED_APPS": [
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "rest_framework",
            "drf_spectacular",
            "drf_spectacular_sidecar",
            "common",
            "common.outbox",
            "common.consumers",
            *apps,
        ],
        "MIDDLEWARE": [
            "common.middleware.RequestIdMiddleware",
            "common.middleware.RejectNulMiddleware",
            # Binance's request weights and order counts on /api/v3 (common/binance_limits.py).
            "common.binance_limits.BinanceLimitsMiddleware",
            "django.middleware.security.SecurityMiddleware",
            "whitenoise.middleware.WhiteNoiseMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        "ROOT_URLCONF": f"{name}.urls",
        "WSGI_APPLICATION": f"{name}.wsgi.application",
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        "DATABASES": {
            "default": {
                **database_settings(name),
                # ATOMIC_REQUESTS stays off: services open their own transaction.atomic() blocks.
                "ATOMIC_REQUESTS": False,
                "CONN_MAX_AGE": env.int("DB_CONN_MAX_AGE", default=60),
                # No `SELECT 1` before every request: a connection the database dropped fails its first query
                # (answered 503, see common.exceptions) and Django closes it, so the next request reconnects.
                "CONN_HEALTH_CHECKS": False,
            }
        },
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "CACHES": {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": redis_url,
                "KEY_PREFIX": f"{namespace.redis_prefix()}{name}",
            }
        },
        "AUTH_PASSWORD_VALIDATORS": [
            {"NAME": f"django.contrib.auth.password_validation.{v}"}
            for v in (
                "UserAttributeSimilarityValidator",
                "MinimumLengthValidator",
                "CommonPasswordValidator",
                "NumericPasswordValidator",
            )
        ],
        "LANGUAGE_CODE": "en-us",
        "TIME_ZONE": "UTC",
        "USE_I18N": True,
        "USE_TZ": True,
        "STATIC_URL": "static/",
        # Only needed for `collectstatic` in an image; locally WhiteNoise serves from the apps.
        "STATIC_ROOT": env.str("DJANGO_STATIC_ROOT", default=None),
        # Static files (admin, docs UI) are served by WhiteNoise straight from the installed apps,
        # so no collectstatic step is needed to run locally; production may still collect them.
        "WHITENOISE_USE_FINDERS": True,
        "REST_FRAMEWORK": {
            "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
            "EXCEPTION_HANDLER": "common.exceptions.exception_handler",
            "DEFAULT_RENDERER_CLASSES": [
                "rest_framework.renderers.JSONRenderer",
                "rest_framework.renderers.BrowsableAPIRenderer",
            ],
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
            "DEFAULT_AUTHENTICATION_CLASSES": ["common.auth.JWTAuthentication"],
            "COERCE_DECIMAL_TO_STRING": True,
        },
        "SPECTACULAR_SETTINGS": {
            "TITLE": f"{name} API",
            "VERSION": "1.0.0",
            "SERVE_INCLUDE_SCHEMA": False,
            # Swagger UI and Redoc served from the sidecar package: the docs page works offline.
            "SWAGGER_UI_DIST": "SIDECAR",
            "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
            "REDOC_DIST": "SIDECAR",
            # Every operation's error answers (4XX in the platform's or Binance's shape, 503), documented once.
            "POSTPROCESSING_HOOKS": [
                "drf_spectacular.hooks.postprocess_schema_enums",
                "common.schema.error_responses",
            ],
        },
        # Tokens are issued by user_svc (RS256) and verified by every service with public keys alone, chosen by
        # the token's `kid`: from the JWK set file when there is one (user_svc's key rotation rewrites it; common.auth
        # re-reads it when it changes), else from the one PEM public key.
        "JWT_JWKS_FILE": env.str("JWT_JWKS_FILE", default="")
        or (str(local_jwt_dir() / "jwks.json") if local and (local_jwt_dir() / "jwks.json").exists() else ""),
        "JWT_PUBLIC_KEY": read_pem_key("JWT_PUBLIC_KEY", "public.pem" if local else None),
        # Seconds of clock difference tolerated on exp, iat and nbf (the processes may run on several hosts).
        "JWT_LEEWAY_S": env.int("JWT_LEEWAY_S", default=30),
        "JWT_ISSUER": env.str("JWT_ISSUER", default="paper-trading/user_svc"),
        "JWT_AUDIENCE": env.str("JWT_AUDIENCE", default="paper-trading"),
        "KAFKA_BOOTSTRAP_SERVERS": env.str("KAFKA_BOOTSTRAP_SERVERS", default=f"127.0.0.1:{LOCAL_KAFKA_PORT}"),
        # Who this service is on the broker (its own principal; the ACLs name what it may write and read).
        "KAFKA_SECURITY": kafka_security(name),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": env.str("CELERY_BROKER_URL", default=redis_url),
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        # Every key kombu writes (queues, bindings, unacked messages, the broadcast channels) under the
        # namespace's prefix, so a test run's workers and the platform's never share one.
        "CELERY_BROKER_TRANSPORT_OPTIONS": {"global_keyprefix": namespace.redis_prefix()} if ns else {},
        "CELERY_TASK_IGNORE_RESULT": True,
        "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP": True,
        "CELERY_WORKER_HIJACK_ROOT_LOGGER": False,
        # The outbox relay loop has a queue of its own, so it never sits behind (or holds up) the service's
        # tasks; the one worker of the service consumes both (the queues named here: no -Q to keep in step).
        "CELERY_TASK_QUEUES": [Queue(queue), Queue(f"{queue}.relay")],
        "CELERY_TASK_ROUTES": {"common.outbox.tasks.relay_loop": {"queue": f"{queue}.relay"}},
        "CELERY_BEAT_SCHEDULE": {
            # The relay loop wakes at each commit (the outbox table's NOTIFY trigger) and runs for a bounded
            # time; beat restarts it when it is gone (a copy sent while it runs returns at once). The sweep
            # relays only when no loop holds the relay lock: the safety net while the loop is down.
            "outbox-relay-loop": {
                "task": "common.outbox.tasks.relay_loop",
                "schedule": 5.0,
                "options": {"expires": 5},
            },
            "outbox-sweep": {"task": "common.outbox.tasks.sweep_outbox", "schedule": 1.0},
            "outbox-purge": {"task": "common.outbox.tasks.purge_outbox", "schedule": 3600.0},
            "inbox-purge": {"task": "common.consumers.tasks.purge_inbox", "schedule": 3600.0},
        },
        "OUTBOX_DELIVERY_TIMEOUT_S": env.float("OUTBOX_DELIVERY_TIMEOUT_S", default=30.0),
        "OUTBOX_RETENTION_HOURS": env.float("OUTBOX_RETENTION_HOURS", default=24.0),
        # Inbox rows (dedup marks) outlive every redelivery Kafka can still make: its default log retention, 7 days.
        "INBOX_RETENTION_HOURS": env.float("INBOX_RETENTION_HOURS", default=168.0),
        # How many proxies in front of the service append to X-Forwarded-For (1 behind the gateway); 0 trusts none.
        "TRUSTED_PROXIES": env.int("TRUSTED_PROXIES", default=0),
        # Binance's limits on /api/v3 (common/binance_limits.py; exchangeInfo reports them).
        "BINANCE_REQUEST_WEIGHT_1M": env.int("BINANCE_REQUEST_WEIGHT_1M", default=6000),
        "BINANCE_ORDERS_10S": env.int("BINANCE_ORDERS_10S", default=100),
        "BINANCE_ORDERS_1D": env.int("BINANCE_ORDERS_1D", default=200000),
        # How often a busy consumer commits its offsets: what a crash redelivers is at most this much work.
        "CONSUMER_COMMIT_INTERVAL_S": env.float("CONSUMER_COMMIT_INTERVAL_S", default=0.2),
        "OUTBOX_RELAY_LOOP_S": env.float("OUTBOX_RELAY_LOOP_S", default=300.0),
        "LOGGING": {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"json": {"()": "common.logging.JsonFormatter", "service": name}},
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
            "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
            "loggers": {
                "django.db.backends": {"level": "INFO"},
                "kafka": {"level": "WARNING"},
            },
        },
    }
    if not local:
        settings.update(
            SECURE_SSL_REDIRECT=env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True),
            SECURE_REDIRECT_EXEMPT=[r"^healthz$", r"^readyz$"],
            SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
            SECURE_HSTS_SECONDS=env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000),
            SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
            SECURE_HSTS_PRELOAD=True,
            SESSION_COOKIE_SECURE=True,
            CSRF_COOKIE_SECURE=True,
        )
    return settings
