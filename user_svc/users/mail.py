"""The mail user_svc sends to an account's address, through Django's mail framework (the backend is a setting).

No text a client chose (a display name) goes into a mail: registering is open to anyone, and whatever the mail
carries would reach any address they type.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.mail import send_mail

from users.confirmation import confirmation_token
from users.models import User

CONFIRMATION_SUBJECT = "Confirm your Paper Trading address"
CONFIRMATION_BODY = """\
Hello,

An account on Paper Trading was registered with this address. To confirm that the address is yours, send
this token in a POST request to {url} as {{"token": "<the token>"}}:

{token}

The token is good for {hours} hours. If you did not register, ignore this mail: the address stays unconfirmed.
"""

REGISTRATION_ATTEMPT_SUBJECT = "Someone tried to register with your address"
REGISTRATION_ATTEMPT_BODY = """\
Hello,

Someone asked to register a new Paper Trading account with this address, which already has an account.
Nothing was created and nothing changed: your password and your sessions are as they were.

If it was you, log in with your password. If it was not, you can ignore this mail.
"""


def email_confirmation_send(*, user_id: uuid.UUID) -> bool:
    """Mail a confirmation token to the account's address; False (nothing sent) when there is nothing to confirm."""
    user = User.objects.filter(pk=user_id, is_active=True, email_confirmed_at__isnull=True).first()
    if user is None:
        return False  # confirmed, or closed, since the mail was asked for
    body = CONFIRMATION_BODY.format(
        url=settings.EMAIL_CONFIRM_URL,
        token=confirmation_token(user_id=user.id, email=user.email),
        hours=settings.EMAIL_CONFIRMATION_MAX_AGE_S // 3600,
    )
    send_mail(CONFIRMATION_SUBJECT, body, None, [user.email])
    return True


def registration_attempt_send(*, user_id: uuid.UUID) -> bool:
    """Tell an account's owner that someone tried to register their address again."""
    email = User.objects.filter(pk=user_id).values_list("email", flat=True).first()
    if email is None:
        return False
    send_mail(REGISTRATION_ATTEMPT_SUBJECT, REGISTRATION_ATTEMPT_BODY, None, [email])
    return True
