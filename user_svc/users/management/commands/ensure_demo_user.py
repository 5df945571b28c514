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
                # The operator vouches for the address: it is confirmed, and no mail goes to it.
                registered = services.user_register(
                    email=email, password=password, display_name=display_name, email_confirmed=True
                )
            except ValidationError as exc:
                raise CommandError(f"cannot register {email}: {exc.messages}") from None
            if registered is not None:
                self.stdout.write(f"registered demo user {registered.email} ({registered.id})")
                return
            existing = selectors.user_get_by_email(email=email)  # registered meanwhile by another run
        self.stdout.write(f"demo user {existing.email} ({existing.id}) exists; left unchanged")
