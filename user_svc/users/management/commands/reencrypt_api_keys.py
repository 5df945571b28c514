"""Encrypt every live API key secret under the first API_KEY_ENCRYPTION_KEY: run after putting a new key first,
before dropping the old one (users.encryption)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from users import services
from users.encryption import UndecryptableSecret


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: object, **options: object) -> None:
        try:
            count = services.api_keys_reencrypt()
        except UndecryptableSecret as exc:
            raise CommandError(f"{exc}: put back the key it was encrypted with, then run this again") from None
        self.stdout.write(f"re-encrypted {count} API key secret(s) under the first key")
