"""Month arithmetic and names of the ledger's partitions (one per UTC calendar month, plus a default)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

PARENT = "transactions"
DEFAULT_PARTITION = "transactions_default"


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime) -> Month:
        moment = moment.astimezone(UTC)
        return cls(moment.year, moment.month)

    def plus(self, months: int) -> Month:
        year, index = divmod(self.year * 12 + self.month - 1 + months, 12)
        return Month(year, index + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.plus(1).start

    @property
    def partition(self) -> str:
        return f"{PARENT}_y{self.year:04d}m{self.month:02d}"

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def create_partition_sql(month: Month) -> str:
    # Identifiers and bounds come from integers only, so formatting them in is safe.
    return (
        f'CREATE TABLE "{month.partition}" PARTITION OF "{PARENT}" '
        f"FOR VALUES FROM ('{month.start.isoformat()}') TO ('{month.end.isoformat()}')"
    )
