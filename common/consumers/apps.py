from django.apps import AppConfig


class ConsumersConfig(AppConfig):
    name = "common.consumers"
    label = "consumers"
    verbose_name = "Consumers"
