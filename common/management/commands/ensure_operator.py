"""Create or update a staff superuser (the operator of this service's admin); safe to run again.

The password comes from OPERATOR_PASSWORD or stdin (--password-stdin), never from the command line.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from common.management.passwords import add_password_arguments, read_password

PASSWORD_ENV = "OPERATOR_PASSWORD"  # noqa: S105 - the variable's name, not a password


class Command(BaseCommand):
    help = "Create the operator superuser of this service's admin, or reset its password if it exists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        add_password_arguments(parser, env=PASSWORD_ENV)

    def handle(self, *args: object, email: str, password_stdin: bool, **options: object) -> None:
        password = read_password(env=PASSWORD_ENV, from_stdin=password_stdin)
        User = get_user_model()
        lookup = {User.USERNAME_FIELD: email if User.USERNAME_FIELD == "email" else email.split("@")[0]}
        with transaction.atomic():
            user = User.objects.filter(**lookup).first()
            if user is None:
                extra = {"email": email} if User.USERNAME_FIELD != "email" else {}
                User.objects.create_superuser(**lookup, **extra, password=password)
                self.stdout.write(f"created operator {next(iter(lookup.values()))}")
            else:
                user.set_password(password)
                user.is_staff = user.is_superuser = user.is_active = True
                user.save(update_fields=["password", "is_staff", "is_superuser", "is_active"])
                self.stdout.write(f"updated operator {next(iter(lookup.values()))}")
