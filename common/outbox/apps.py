from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "common.outbox"
    label = "outbox"
    verbose_name = "Outbox"
