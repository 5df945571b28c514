"""Address confirmation tokens: signed (Django's signing, with the service's secret key), dated, naming an address.

Nothing is stored: a token is good while its signature holds, it is younger than EMAIL_CONFIRMATION_MAX_AGE_S,
and the account still has the address it names (a token sent to an old address confirms nothing).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

_SALT = "users.email-confirmation"


@dataclass(frozen=True)
class Confirmation:
    user_id: uuid.UUID
    email: str


class ConfirmationExpired(Exception):
    pass


class ConfirmationInvalid(Exception):
    pass


def confirmation_token(*, user_id: uuid.UUID, email: str) -> str:
    return signing.dumps({"user": str(user_id), "email": email}, salt=_SALT, compress=True)


def confirmation_read(token: str) -> Confirmation:
    """What a token confirms; raises ConfirmationExpired or ConfirmationInvalid."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.EMAIL_CONFIRMATION_MAX_AGE_S)
    except signing.SignatureExpired:
        raise ConfirmationExpired from None
    except signing.BadSignature:
        raise ConfirmationInvalid from None
    try:
        return Confirmation(user_id=uuid.UUID(data["user"]), email=str(data["email"]))
    except (KeyError, TypeError, ValueError):
        raise ConfirmationInvalid from None
