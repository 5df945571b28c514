"""Settings of user_svc: wiring only. Shared defaults and the environment come from common.settings."""

from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from users.encryption import parse_keys

from common import credentials
from common.settings import env, pem_key_file, read_pem_key, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

_shared = service_settings(
    name="user_svc", base_dir=BASE_DIR, apps=["rest_framework_simplejwt.token_blacklist", "users"]
)
globals().update(_shared)
AUTH_USER_MODEL = "users.User"

# The signing key only user_svc holds; local mode falls back to the pair `manage_all.py infra up` made. Kept in a
# file, it is re-read when the file changes (`manage.py rotate_jwt_key` replaces it: users.keys).
_local_key = "private.pem" if _shared["PLATFORM_ENV"] == "local" else None
JWT_PRIVATE_KEY = read_pem_key("JWT_PRIVATE_KEY", _local_key)
JWT_PRIVATE_KEY_FILE = pem_key_file("JWT_PRIVATE_KEY", _local_key)
# A rotated-out key stays trusted this much longer than the longest token lifetime and the leeway: tokens being
# signed by a process that has not seen the rotation yet.
JWT_ROTATION_MARGIN_S = 60

# simplejwt issues exactly what common.auth verifies in every service: RS256, sub = user id, iss, aud,
# token_type. users.tokens adds the key id (the JWKS thumbprint) to the header.
SIMPLE_JWT = {
    "ALGORITHM": "RS256",
    "SIGNING_KEY": JWT_PRIVATE_KEY,
    "VERIFYING_KEY": _shared["JWT_PUBLIC_KEY"],
    "ISSUER": _shared["JWT_ISSUER"],
    "AUDIENCE": _shared["JWT_AUDIENCE"],
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "TOKEN_TYPE_CLAIM": "token_type",
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_TOKEN_LIFETIME_S", default=15 * 60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_TOKEN_LIFETIME_S", default=7 * 24 * 3600)),
    # users.services rotates and revokes refresh tokens itself (a unique row per used token, and a token family
    # per login that a reused token revokes whole); these describe the same policy.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
}

# Failed password checks counted in the shared Redis cache (users.throttling says how each limit works).
LOGIN_THROTTLE_WINDOW_S = env.int("LOGIN_THROTTLE_WINDOW_S", default=15 * 60)
# Per account from one client address: the attempt after this many failures gets 429 (that pair only).
LOGIN_THROTTLE_ACCOUNT_FAILURES = env.int("LOGIN_THROTTLE_ACCOUNT_FAILURES", default=5)
# Per account from every address: past this many failures it admits one attempt per delay, never none.
LOGIN_THROTTLE_ACCOUNT_SLOW_AFTER = env.int("LOGIN_THROTTLE_ACCOUNT_SLOW_AFTER", default=10)
LOGIN_THROTTLE_ACCOUNT_MAX_DELAY_S = env.int("LOGIN_THROTTLE_ACCOUNT_MAX_DELAY_S", default=60)
# An address that logged into an account this recently is not slowed down by other addresses' failures.
LOGIN_THROTTLE_KNOWN_CLIENT_S = 30 * 24 * 3600
LOGIN_THROTTLE_IP_FAILURES = env.int("LOGIN_THROTTLE_IP_FAILURES", default=20)
# How many proxies in front of user_svc append to X-Forwarded-For (1 behind the gateway); 0 trusts none.
LOGIN_THROTTLE_TRUSTED_PROXIES = env.int("LOGIN_THROTTLE_TRUSTED_PROXIES", default=0)

# Account mail (address confirmations, "someone tried to register" notices) goes through Django's mail framework:
# to files (one per message) under the run folder (a run namespace's own, removed with it) unless EMAIL_URL names
# a server in django-environ's form, e.g. smtp+tls://user:password@host:587. Sent by the worker after the commit.
_run_dir = Path(env.str("PLATFORM_RUN_DIR", default=str(BASE_DIR.parent / ".run")))
if _shared["PLATFORM_NAMESPACE"]:
    _run_dir = _run_dir / "ns" / _shared["PLATFORM_NAMESPACE"]
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(_run_dir / "mail"))
if env.str("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Paper Trading <no-reply@paper-trading.invalid>")
# Where the confirmation mail sends its reader (the token goes in a POST body; the gateway by default).
EMAIL_CONFIRM_URL = env.str("EMAIL_CONFIRM_URL", default="http://127.0.0.1:8000/api/auth/confirm-email")
EMAIL_CONFIRMATION_MAX_AGE_S = 3 * 24 * 3600
# At most this many account mails to one address per window, whoever asks for them.
ACCOUNT_MAIL_LIMIT = 5
ACCOUNT_MAIL_WINDOW_S = 3600


def _api_key_encryption_keys() -> list[str]:
    """API_KEY_ENCRYPTION_KEY (keys separated by commas, the encrypting one first), or the file
    API_KEY_ENCRYPTION_KEY_FILE names (one key per line), or (local mode only) .run/secrets/api-keys/encryption,
    made on first use like the SECRET_KEY. Production refuses to start without one."""
    text = env.str("API_KEY_ENCRYPTION_KEY", default="")
    if not text and (path := env.str("API_KEY_ENCRYPTION_KEY_FILE", default="")):
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise ImproperlyConfigured(f"API_KEY_ENCRYPTION_KEY_FILE points at {path}, which does not exist") from None
    if not text and _shared["PLATFORM_ENV"] == "local":
        text = credentials.ensure("api-keys", "encryption", nbytes=32)
    if not text:
        raise ImproperlyConfigured(
            f"API_KEY_ENCRYPTION_KEY or API_KEY_ENCRYPTION_KEY_FILE is required when PLATFORM_ENV="
            f"{_shared['PLATFORM_ENV']!r}; make one with secrets.token_urlsafe(32)."
        )
    try:
        return parse_keys(text)
    except ValueError as exc:
        raise ImproperlyConfigured(f"API_KEY_ENCRYPTION_KEY: {exc}") from None


# API keys (users.services.api_keys): their secrets encrypted at rest under these keys (users.encryption).
API_KEY_ENCRYPTION_KEYS = _api_key_encryption_keys()
# Live (not revoked) keys one account may hold.
API_KEYS_PER_USER = 20
# last_used_at is written at most once per this many seconds per key: a signed request rarely writes.
API_KEY_LAST_USED_RESOLUTION_S = 60
# The access token the gateway forwards with a request checked by API key (users.tokens.ApiKeyAccessToken).
API_KEY_TOKEN_LIFETIME_S = 60

CELERY_BEAT_SCHEDULE = {
    **_shared["CELERY_BEAT_SCHEDULE"],
    "purge-expired-tokens": {"task": "users.tasks.purge_expired_tokens", "schedule": 3600.0},
}
