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


# Who may write and read each topic: the ACLs on the broker are made from these two tables (common/kafka.py),
# so a service that starts producing another's topic fails with TOPIC_AUTHORIZATION_FAILED, not silently.
# A consumer also writes its topics' dead-letter topics (through its service's outbox).
PRODUCER: dict[Topic, str] = {
    Topic.USER_EVENTS: "user_svc",
    Topic.PORTFOLIO_EVENTS: "portfolio_svc",
    Topic.BALANCE_EVENTS: "portfolio_svc",
    Topic.PORTFOLIO_COMMANDS: "order_svc",
    Topic.ORDER_EVENTS: "order_svc",
    Topic.TRANSACTION_EVENTS: "transaction_svc",
    Topic.MARKET_DATA: "analytics_svc",  # its feed
}
CONSUMES: dict[str, tuple[Topic, ...]] = {
    "user_svc": (),
    "portfolio_svc": (Topic.USER_EVENTS, Topic.PORTFOLIO_COMMANDS, Topic.ORDER_EVENTS, Topic.MARKET_DATA),
    "order_svc": (Topic.BALANCE_EVENTS, Topic.MARKET_DATA),
    "transaction_svc": (Topic.ORDER_EVENTS,),
    "analytics_svc": (Topic.MARKET_DATA,),
}
# Topics a service reads outside its consumer groups: no inbox, no offsets kept, no dead letters (so no DLQ grant).
# analytics_svc's streams server (`manage.py serve_streams`) reads these from the latest offset, each process in a
# group of its own, and pushes them to websocket clients (Binance's market and user data streams). The service
# declares what its readers read (settings.PLATFORM_READERS) and the platform check holds it to this table.
READERS: dict[str, tuple[Topic, ...]] = {
    "analytics_svc": (Topic.MARKET_DATA, Topic.ORDER_EVENTS, Topic.BALANCE_EVENTS),
}
# Topics the test suites and benchmarks make for one run (common.testing's kafka_topic fixture, bench/): every
# principal may use those of its run's namespace, and nothing else beyond the tables above.
SCRATCH_PREFIXES = ("test-", "bench-")


def produces(principal: str) -> list[str]:
    """Every topic the principal may write: its own, and the dead-letter topics of what it consumes."""
    return [t.value for t, owner in PRODUCER.items() if owner == principal] + [
        dlq(t.value) for t in CONSUMES.get(principal, ())
    ]


def consumes(principal: str) -> list[str]:
    """Every topic the principal may read: its consumers' and its readers' (each once)."""
    return list(dict.fromkeys(t.value for t in (*CONSUMES.get(principal, ()), *READERS.get(principal, ()))))
