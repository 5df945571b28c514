"""The Celery app factory: one app per service, configured from its Django settings (CELERY_*); traced."""

from __future__ import annotations

import os
import threading

from celery import Celery, signals

# Set when this worker begins a warm or cold shutdown (SIGTERM, SIGINT, SIGQUIT): a long-running task (the
# outbox relay loop) polls it and returns, so the shutdown never waits on it. Set in the process that
# received the signal: the threads and solo pools, where the loop runs, not prefork children.
worker_stopping = threading.Event()


def make_celery_app(service: str) -> Celery:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{service}.settings")
    app = Celery(service)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.autodiscover_tasks()
    return app


# Tracing in Celery processes. Django's start (CommonConfig.ready) instruments the worker's parent but
# leaves the SDK to each pool process: its exporter thread would not survive the fork, and the resource
# would carry the parent's pid. These receivers are module-level so that they are connected once.


@signals.worker_process_init.connect(weak=False)
def _start_tracing_in_pool_process(**_: object) -> None:
    """Each prefork child (and the solo pool, which sends this in the worker itself)."""
    from common.tracing import start_tracing

    start_tracing(kind="worker")


@signals.worker_init.connect(weak=False)
def _start_tracing_in_threaded_worker(sender: object = None, **_: object) -> None:
    """Pools that never fork nor send worker_process_init (threads, gevent, eventlet) run tasks here."""
    pool = getattr(sender, "pool_cls", "prefork")
    name = pool if isinstance(pool, str) else f"{pool.__module__}.{pool.__qualname__}"
    if not any(kind in name for kind in ("prefork", "processes", "solo")):
        from common.tracing import start_tracing

        start_tracing(kind="worker")


@signals.worker_shutting_down.connect(weak=False)
def _tell_long_tasks_to_stop(**_: object) -> None:
    worker_stopping.set()


@signals.worker_process_shutdown.connect(weak=False)
def _flush_tracing_before_exit(**_: object) -> None:
    """A pool process may leave without running atexit: export what it has first."""
    from common.tracing import flush_tracing, tracing_active

    if tracing_active():
        flush_tracing(timeout_ms=3000)


@signals.beat_init.connect(weak=False)
def _start_tracing_in_beat(**_: object) -> None:
    from common.tracing import start_tracing

    start_tracing(kind="beat")
