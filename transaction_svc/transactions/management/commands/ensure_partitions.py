"""`manage.py ensure_partitions --months N`: create the ledger's month partitions ahead, report the default one."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from transactions.selectors import default_partition_rows
from transactions.services import partitions_adopt_default, partitions_ensure


class Command(BaseCommand):
    help = "Create the ledger's partitions for the coming months; report (or adopt) rows in the default partition."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--months",
            type=int,
            default=None,
            help=f"months ahead of the current one (default {settings.TRANSACTION_PARTITION_MONTHS_AHEAD})",
        )
        parser.add_argument(
            "--adopt-default",
            action="store_true",
            help="create the partitions of months that have rows in the default partition and move those rows",
        )
        parser.add_argument(
            "--check", action="store_true", help="exit with an error while the default partition holds rows"
        )

    def handle(self, *args: object, months: int | None, adopt_default: bool, check: bool, **options: object) -> None:
        months = settings.TRANSACTION_PARTITION_MONTHS_AHEAD if months is None else months
        if months < 0:
            raise CommandError("--months must be 0 or more")
        created = partitions_ensure(months_ahead=months)
        if adopt_default:
            created += partitions_adopt_default()
        for name in created:
            self.stdout.write(f"created {name}")
        if not created:
            self.stdout.write("every partition already exists")
        strays = default_partition_rows()
        if not strays:
            self.stdout.write("default partition: empty")
            return
        report = ", ".join(f"{month}: {count}" for month, count in strays.items())
        message = f"default partition holds {sum(strays.values())} rows ({report})"
        if check:
            raise CommandError(message)
        self.stderr.write(message)
