"""`manage.py consume <name> [<name> ...] | --all`: run consumer groups of this service until SIGTERM.

Several groups in one process each get a thread of their own (blocked in librdkafka or PostgreSQL most of the
time, so they share one interpreter well): on 2 cores one process per service beats one per group.
"""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.consumers.base import ConsumerRunner, ConsumerStats, consumer_specs


class Command(BaseCommand):
    help = "Run consumer groups of this service (see settings.PLATFORM_CONSUMERS); SIGTERM stops them cleanly."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="the consumers to run; omit (without --all) to list them")
        parser.add_argument("--all", action="store_true", help="run every consumer of this service")
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--max-messages", type=int, help="stop after this many messages (tests, benchmarks)")
        parser.add_argument("--idle-exit", type=float, help="stop after this many seconds with no message")

    def handle(self, *args: object, names: list[str], **options: object) -> None:
        specs = consumer_specs()
        if options["all"]:
            names = list(specs)
        if not names:
            for spec in specs.values():
                self.stdout.write(f"{spec.name}: {', '.join(map(str, spec.topics))} (group {spec.group_id})")
            return
        unknown = [n for n in names if n not in specs]
        if unknown:
            known = ", ".join(specs) or "none"
            raise CommandError(f"no consumer named {unknown[0]!r} in this service (known: {known})")
        runners = [ConsumerRunner(specs[n], batch_size=options["batch_size"]) for n in names]

        def stop(*_: object) -> None:
            for runner in runners:
                runner.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        run = {"max_messages": options["max_messages"], "idle_exit_s": options["idle_exit"]}
        if len(runners) == 1:
            self._report(names[0], runners[0].run(**run))
            return
        failures: list[BaseException] = []

        def work(runner: ConsumerRunner) -> None:
            try:
                runner.run(**run)
            except BaseException as exc:
                failures.append(exc)
                stop()  # one group down takes the process down, so its supervisor restarts all of them
                raise

        threads = [threading.Thread(target=work, args=(r,), name=f"consume-{r.spec.name}") for r in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)  # the main thread stays free to take signals
        for name, runner in zip(names, runners, strict=True):
            self._report(name, runner.stats)
        if failures:
            raise CommandError(f"a consumer failed: {failures[0]!r}")

    def _report(self, name: str, stats: ConsumerStats) -> None:
        self.stdout.write(
            f"{name}: received {stats.received}, handled {stats.handled}, duplicates {stats.duplicates}, "
            f"skipped {stats.skipped}, dead-lettered {stats.dead_lettered}"
        )
