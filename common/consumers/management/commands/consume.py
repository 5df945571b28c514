"""`manage.py consume <name>`: run one of this service's consumer groups until SIGTERM."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.consumers.base import ConsumerRunner, consumer_specs


class Command(BaseCommand):
    help = "Run a consumer group of this service (see settings.PLATFORM_CONSUMERS); SIGTERM stops it cleanly."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="the consumer to run; omit to list them")
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--max-messages", type=int, help="stop after this many messages (tests, benchmarks)")
        parser.add_argument("--idle-exit", type=float, help="stop after this many seconds with no message")

    def handle(self, *args: object, name: str | None, **options: object) -> None:
        specs = consumer_specs()
        if not name:
            for spec in specs.values():
                self.stdout.write(f"{spec.name}: {', '.join(map(str, spec.topics))} (group {spec.group_id})")
            return
        if name not in specs:
            known = ", ".join(specs) or "none"
            raise CommandError(f"no consumer named {name!r} in this service (known: {known})")
        runner = ConsumerRunner(specs[name], batch_size=options["batch_size"])
        runner.install_signal_handlers()
        stats = runner.run(max_messages=options["max_messages"], idle_exit_s=options["idle_exit"])
        self.stdout.write(
            f"{name}: received {stats.received}, handled {stats.handled}, duplicates {stats.duplicates}, "
            f"skipped {stats.skipped}, dead-lettered {stats.dead_lettered}"
        )
