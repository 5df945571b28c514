"""The transactions app: the ledger of fills, partitioned by month."""

from django.apps import AppConfig


class TransactionsConfig(AppConfig):
    name = "transactions"

    def ready(self) -> None:
        from transactions import checks  # noqa: F401 - registers the system check
