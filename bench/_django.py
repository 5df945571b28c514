"""Shared set-up of the backbone benchmarks: the test-only project of common/ on a database of its own."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra"))

import components as infra  # noqa: E402


def bench_namespace(prefix: str = "bench") -> str:
    """A run namespace of this benchmark's own, made now and removed at exit (on SIGTERM and SIGHUP too).

    Its topics, groups, databases, queues and registry are its own: a platform running beside it is untouched.
    """
    import atexit

    import namespaces  # infra/namespaces.py

    namespaces.exit_on_signals()
    ns = namespaces.create(prefix)
    os.environ.update(ns.env)
    atexit.register(namespaces.remove, ns.name)
    progress(f"namespace {ns.name}")
    return ns.name


def setup_django() -> str:
    """In a namespace of its own, point the common/ test project at the bench database (made and migrated here).

    Returns the Kafka bootstrap address.
    """
    from common import namespace

    bench_namespace()  # makes the namespace's databases, the bench database among them (infra.BENCH_DATABASE)
    database = namespace.database(infra.BENCH_DATABASE)
    password = infra.role_password("platform_common")
    bootstrap = f"127.0.0.1:{infra.KAFKA_PORT}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="common.tests.settings",
        DATABASE_URL=f"postgres://platform_common:{password}@127.0.0.1:{infra.PG_PORT}/{database}",
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return bootstrap


def fresh_topics(bootstrap: str, *prefixes: str, partitions: int = 6) -> list[str]:
    from common.testing.kafka import create_topics

    names = [f"bench-{p}-{uuid.uuid4().hex[:8]}" for p in prefixes]
    create_topics(bootstrap, *names, partitions=partitions)
    return names


def register_bench_contract() -> None:
    from common.contracts import obj
    from common.events import register, registered_types

    if "bench.sample" not in registered_types():
        register("bench.sample", topic=None, schema=obj({"seq": {"type": "integer"}, "pad": {"type": "string"}}))


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
