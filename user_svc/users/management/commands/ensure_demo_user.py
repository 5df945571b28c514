"""Register the demo account when it is missing (through user_register, so user.registered is published)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from users import selectors, services


class Command(BaseCommand):
    help = "Register a demo user with this email and password unless an account with the email exists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--display-name", default="Demo trader")

    def handle(self, *args: object, email: str, password: str, display_name: str, **options: object) -> None:
        existing = selectors.user_get_by_email(email=email)
        if existing is None:
            try:
                existing = services.user_register(email=email, password=password, display_name=display_name)
            except ValidationError as exc:
                taken = hasattr(exc, "error_dict") and services.EMAIL_TAKEN in exc.message_dict.get("email", [])
                if not taken:
                    raise CommandError(f"cannot register {email}: {exc.messages}") from None
                existing = selectors.user_get_by_email(email=email)  # registered meanwhile by another run
            else:
                self.stdout.write(f"registered demo user {existing.email} ({existing.id})")
                return
        self.stdout.write(f"demo user {existing.email} ({existing.id}) exists; left unchanged")
