"""Print the outbox's backlog; exit non-zero when the oldest pending row is older than a threshold."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, Min, Q
from django.utils import timezone

from common.outbox.models import OutboxMessage


class Command(BaseCommand):
    help = "Pending count, oldest pending age and failures of this service's outbox (a health check)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--max-age", type=float, default=60.0, help="seconds; older pending rows fail")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: object, max_age: float, **options: object) -> None:
        pending = OutboxMessage.objects.filter(published_at__isnull=True).aggregate(
            pending=Count("id"), failing=Count("id", filter=Q(attempts__gt=0)), oldest=Min("created_at")
        )
        age = (timezone.now() - pending["oldest"]).total_seconds() if pending["oldest"] else 0.0
        last_error = (
            OutboxMessage.objects.filter(published_at__isnull=True, attempts__gt=0)
            .order_by("id")
            .values_list("last_error", flat=True)
            .first()
        )
        report = {
            "pending": pending["pending"],
            "failing": pending["failing"],
            "oldest_pending_age_s": round(age, 3),
            "last_error": last_error or "",
        }
        if options["json"]:
            self.stdout.write(_json_dumps(report))
        else:
            self.stdout.write(
                f"pending {report['pending']}, failing {report['failing']}, "
                f"oldest pending {report['oldest_pending_age_s']}s"
                + (f", last error: {report['last_error']}" if report["last_error"] else "")
            )
        if age > max_age:
            raise CommandError(f"the oldest pending outbox row is {age:.0f}s old (threshold {max_age:.0f}s)")


def _json_dumps(value: object) -> str:
    return json.dumps(value)
