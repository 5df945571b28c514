"""The `common` Django app: shared management commands, installed in every service; starts tracing."""

from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Platform"

    def ready(self) -> None:
        from common.tracing import configure_tracing

        # Before the first request loads the middleware: the Django instrumentation inserts its own.
        configure_tracing()
