"""Every write of user_svc, split by use case (accounts; logins and their sessions); each owns its transaction."""

from users.services.accounts import (
    CURRENT_PASSWORD_REQUIRED,
    CURRENT_PASSWORD_WRONG,
    EMAIL_TAKEN,
    ConfirmationRefused,
    user_change_password,
    user_confirm_email,
    user_deactivate,
    user_register,
    user_update,
)
from users.services.sessions import (
    InvalidCredentials,
    InvalidToken,
    session_start,
    sessions_revoke_all,
    token_purge_expired,
    token_refresh,
    token_revoke,
    user_login,
)

__all__ = [
    "CURRENT_PASSWORD_REQUIRED",
    "CURRENT_PASSWORD_WRONG",
    "EMAIL_TAKEN",
    "ConfirmationRefused",
    "InvalidCredentials",
    "InvalidToken",
    "session_start",
    "sessions_revoke_all",
    "token_purge_expired",
    "token_refresh",
    "token_revoke",
    "user_change_password",
    "user_confirm_email",
    "user_deactivate",
    "user_login",
    "user_register",
    "user_update",
]
