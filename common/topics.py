"""Every Kafka topic of the platform, in one place (ARCHITECTURE.md, "Topics")."""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    USER_EVENTS = "user-events"
    PORTFOLIO_EVENTS = "portfolio-events"
    BALANCE_EVENTS = "balance-events"
    PORTFOLIO_COMMANDS = "portfolio-commands"
    ORDER_EVENTS = "order-events"
    TRANSACTION_EVENTS = "transaction-events"
    MARKET_DATA = "market-data"


DLQ_SUFFIX = ".dlq"


def dlq(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


def all_topics() -> list[str]:
    """Every topic the platform uses, its dead-letter topics included."""
    return [t.value for t in Topic] + [dlq(t.value) for t in Topic]
