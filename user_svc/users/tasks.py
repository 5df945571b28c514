"""Celery tasks of user_svc: thin, each takes ids and calls one function.

Services queue these (after their commit), so the service functions are imported inside each task, as in
HackSoft's styleguide: a task module that imported the services would make an import cycle with them.
"""

from __future__ import annotations

import uuid

from celery import shared_task

from users import mail

# A mail server that is down or refuses for a while (smtplib's errors are OSErrors) is retried with backoff, bounded;
# a mail can go out twice after a retry, never be dropped silently.
MAIL_RETRY = {"autoretry_for": (OSError,), "retry_backoff": True, "retry_backoff_max": 600, "max_retries": 8}


@shared_task(ignore_result=True)
def purge_expired_tokens() -> int:
    from users import services

    return services.token_purge_expired()


@shared_task(ignore_result=True, **MAIL_RETRY)
def send_email_confirmation(user_id: str) -> bool:
    return mail.email_confirmation_send(user_id=uuid.UUID(user_id))


@shared_task(ignore_result=True, **MAIL_RETRY)
def send_registration_attempt(user_id: str) -> bool:
    return mail.registration_attempt_send(user_id=uuid.UUID(user_id))
