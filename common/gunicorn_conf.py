"""Gunicorn settings shared by every service's web server: JSON access logs and etcd registration.

The master process registers the instance once it listens (when_ready) and revokes its lease on a clean
exit (on_exit); if the master is killed, the lease expires within seconds and the gateway drops it.
"""

from __future__ import annotations

import os

from common.discovery import Registration, enabled

_registration: Registration | None = None

accesslog = "-"
access_log_format = (
    '{"service":"' + os.environ.get("PLATFORM_SERVICE", "") + '","logger":"gunicorn.access",'
    '"request_id":"%({x-request-id}o)s","method":"%(m)s","path":"%(U)s","status":%(s)s,"duration_ms":%(M)s,'
    '"remote":"%(h)s","traceresponse":"%({traceresponse}o)s"}'
)
raw_env: list[str] = []


def when_ready(server) -> None:
    global _registration
    if not enabled():
        return
    service = os.environ.get("PLATFORM_SERVICE", "")
    if not service:
        server.log.warning("PLATFORM_SERVICE is not set: this instance is not registered for discovery")
        return
    host, port = server.LISTENERS[0].sock.getsockname()[:2]
    # Bound to every interface (in a container), the bound host is no address to call: advertise the one given.
    host = os.environ.get("DISCOVERY_ADVERTISE_HOST") or host
    _registration = Registration(service=service, address=f"{host}:{port}")
    _registration.start()


def on_exit(server) -> None:
    if _registration is not None:
        _registration.stop()
