from django.apps import AppConfig


class CandlesConfig(AppConfig):
    name = "candles"
