"""System check (database tag): the ledger's default partition should stay empty."""

from __future__ import annotations

from django.core.checks import Tags, Warning, register
from django.db import DatabaseError


@register(Tags.database)
def default_partition_is_empty(app_configs=None, databases=None, **kwargs) -> list[Warning]:
    """Run by `manage.py check --database default`: rows in the default partition mean a missing month."""
    if not databases or "default" not in databases:
        return []
    from transactions.selectors import default_partition_rows

    try:
        strays = default_partition_rows()
    except DatabaseError:
        return []  # not migrated yet: nothing to report
    if not strays:
        return []
    months = ", ".join(f"{month} ({count})" for month, count in strays.items())
    return [
        Warning(
            f"{sum(strays.values())} ledger rows are in the default partition: {months}",
            hint="run `manage.py ensure_partitions --adopt-default` to move them into month partitions",
            id="transactions.W001",
        )
    ]
