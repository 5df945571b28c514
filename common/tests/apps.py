from django.apps import AppConfig


class CommonTestsConfig(AppConfig):
    name = "common.tests"
    label = "common_tests"
