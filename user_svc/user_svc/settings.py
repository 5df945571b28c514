"""Settings of user_svc: wiring only. Shared defaults and the environment come from common.settings."""

from datetime import timedelta
from pathlib import Path

from common.settings import env, read_pem_key, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

_shared = service_settings(
    name="user_svc", base_dir=BASE_DIR, apps=["rest_framework_simplejwt.token_blacklist", "users"]
)
globals().update(_shared)
AUTH_USER_MODEL = "users.User"

# The signing key only user_svc holds; local mode falls back to the pair `manage_all.py infra up` made.
JWT_PRIVATE_KEY = read_pem_key(
    "JWT_PRIVATE_KEY", BASE_DIR, "private.pem" if _shared["PLATFORM_ENV"] == "local" else None
)

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
    # users.services rotates and revokes refresh tokens itself (a unique row per used token, so two
    # concurrent refreshes with one token cannot both succeed); these describe the same policy.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
}

# Failed logins counted in the shared Redis cache; the attempt after the limit is refused with 429.
LOGIN_THROTTLE_WINDOW_S = env.int("LOGIN_THROTTLE_WINDOW_S", default=15 * 60)
LOGIN_THROTTLE_ACCOUNT_FAILURES = env.int("LOGIN_THROTTLE_ACCOUNT_FAILURES", default=5)
LOGIN_THROTTLE_IP_FAILURES = env.int("LOGIN_THROTTLE_IP_FAILURES", default=20)
# How many proxies in front of user_svc append to X-Forwarded-For (1 behind the gateway); 0 trusts none.
LOGIN_THROTTLE_TRUSTED_PROXIES = env.int("LOGIN_THROTTLE_TRUSTED_PROXIES", default=0)

CELERY_BEAT_SCHEDULE = {
    **_shared["CELERY_BEAT_SCHEDULE"],
    "purge-expired-tokens": {"task": "users.tasks.purge_expired_tokens", "schedule": 3600.0},
}
