"""Run namespaces: one setting keeps a test run or a benchmark apart from the platform running beside it.

`PLATFORM_NAMESPACE` (empty for the real platform) names every shared thing a process touches:

    Kafka topic       market-data            ->  <ns>.market-data
    consumer group    order_svc.market-data  ->  <ns>.order_svc.market-data
    etcd registry     /platform/services/    ->  /platform/ns/<ns>/services/
    Celery queue      order_svc              ->  <ns>.order_svc     (and every Redis key under "<ns>:")
    database          order_service          ->  order_service_<ns>

The code names topics, groups and queues by their logical names only; these functions turn them into the
physical names at the edge (the Kafka clients, the registry, the settings). Standard library only: infra/
and manage_all.py use it before the virtualenv exists.
"""

from __future__ import annotations

import os
import re

ENV = "PLATFORM_NAMESPACE"
# Lowercase letters and digits: valid in a topic, a database and a key name alike, and never ambiguous
# after the separator ("." or "_") the physical names put before it.
_VALID = re.compile(r"[a-z][a-z0-9]{0,23}")
DEFAULT_REGISTRY_PREFIX = "/platform/services/"


class NamespaceError(ValueError):
    pass


def validate(ns: str) -> str:
    if ns and not _VALID.fullmatch(ns):
        raise NamespaceError(
            f"{ENV}={ns!r} is not a namespace: use 1-24 lowercase letters or digits, starting with a letter"
        )
    return ns


def current() -> str:
    """This process's namespace ("" for the real platform)."""
    return validate(os.environ.get("PLATFORM_NAMESPACE", ""))  # ENV, spelled out for the compose check


def _ns(ns: str | None) -> str:
    return current() if ns is None else validate(ns)


def topic(name: str, ns: str | None = None) -> str:
    """The physical Kafka topic of a logical one."""
    ns = _ns(ns)
    return f"{ns}.{name}" if ns else name


def logical_topic(physical: str, ns: str | None = None) -> str:
    """The logical name of a physical topic of this namespace (unchanged when it is not one)."""
    ns = _ns(ns)
    return physical.removeprefix(f"{ns}.") if ns else physical


def group(name: str, ns: str | None = None) -> str:
    """The physical Kafka consumer group (the logical name stays the inbox's name)."""
    ns = _ns(ns)
    return f"{ns}.{name}" if ns else name


def queue(name: str, ns: str | None = None) -> str:
    """A Celery queue name."""
    ns = _ns(ns)
    return f"{ns}.{name}" if ns else name


def redis_prefix(ns: str | None = None) -> str:
    """The prefix of every Redis key of the namespace: Celery's (kombu's global_keyprefix) and the cache's."""
    ns = _ns(ns)
    return f"{ns}:" if ns else ""


def registry_prefix(ns: str | None = None) -> str:
    """The etcd prefix web instances register under; never inside the real platform's prefix."""
    ns = _ns(ns)
    return f"/platform/ns/{ns}/services/" if ns else DEFAULT_REGISTRY_PREFIX


def database(name: str, ns: str | None = None) -> str:
    """A service's database name on the shared cluster."""
    ns = _ns(ns)
    return f"{name}_{ns}" if ns else name
