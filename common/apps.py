"""The `common` Django app: shared management commands, installed in every service."""

from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Platform"
