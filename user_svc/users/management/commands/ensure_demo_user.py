"""Register the demo account when it is missing (through user_register, so user.registered is published).

The password comes from DEMO_USER_PASSWORD or stdin (--password-stdin), never from the command line.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.management.passwords import add_password_arguments, read_password
from users import selectors, services

PASSWORD_ENV = "DEMO_USER_PASSWORD"  # noqa: S105 - the variable's name, not a password


class Command(BaseCommand):
    help = "Register a demo user with this email and password unless an account with the email exists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        add_password_arguments(parser, env=PASSWORD_ENV)
        parser.add_argument("--display-name", default="Demo trader")

    def handle(self, *args: object, email: str, password_stdin: bool, display_name: str, **options: object) -> None:
        password = read_password(env=PASSWORD_ENV, from_stdin=password_stdin)
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
