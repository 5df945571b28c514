"""Service discovery: a web instance registers itself in etcd under a lease it keeps alive.

Key: <prefix><service>/<instance id> (prefix /platform/services/, or its run namespace's, see common/namespace.py),
value: {"service", "address", "health", "pid", "started_at"}.
A process that dies stops refreshing its lease, so its key disappears within DISCOVERY_TTL_S seconds; a clean
stop revokes the lease at once. The gateway's watcher renders nginx's upstreams from these keys.
Configured by ETCD_URL (default http://127.0.0.1:52379) and DISCOVERY_TTL_S (default 5); DISCOVERY_ENABLED=false
turns it off (tests that run a lone server). It signs in as etcd user platform-services (common/etcd.py: ETCD_USER,
ETCD_PASSWORD or ETCD_PASSWORD_FILE, else the local secret).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from datetime import UTC, datetime

# Imported here, never lazily in the lease thread: gunicorn forks its workers while that thread runs, and a
# fork in the middle of an import leaves the child waiting forever on the module lock (of `requests`).
from common import etcd, namespace

logger = logging.getLogger(__name__)


class Registration:
    def __init__(self, *, service: str, address: str, ttl_s: int | None = None, etcd_url: str | None = None):
        self.service = service
        self.address = address
        self.ttl_s = ttl_s or int(os.environ.get("DISCOVERY_TTL_S", "5"))
        self.etcd_url = etcd_url
        self.key = f"{namespace.registry_prefix()}{service}/{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lease = None

    def _client(self):
        return etcd.client(etcd.SERVICES, url=self.etcd_url, timeout=3)

    def _register(self) -> None:
        client = self._client()
        self._lease = client.lease(ttl=self.ttl_s)
        value = {
            "service": self.service,
            "address": self.address,
            "health": f"http://{self.address}/healthz",
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(),
        }
        client.put(self.key, json.dumps(value), lease=self._lease)
        logger.info("registered in etcd", extra={"key": self.key, "address": self.address, "ttl_s": self.ttl_s})

    def start(self) -> None:
        """Register now (or as soon as etcd answers) and keep the lease alive from a daemon thread."""
        self._thread = threading.Thread(target=self._keep_alive, name="etcd-lease", daemon=True)
        self._thread.start()

    def _keep_alive(self) -> None:
        while not self._stop.is_set():
            try:
                if self._lease is None:
                    self._register()
                elif self._lease.refresh() <= 0:  # expired (etcd restarted, or we were paused): register again
                    self._lease = None
                    continue
            except Exception as exc:  # noqa: BLE001 - etcd away: keep serving, register again when it is back
                logger.warning("etcd registration failed; retrying", extra={"error": str(exc)})
                self._lease = None
            self._stop.wait(max(1.0, self.ttl_s / 3))

    def stop(self) -> None:
        """Leave the registry at once (clean shutdown)."""
        self._stop.set()
        if self._lease is not None:
            try:
                self._lease.revoke()
            except Exception as exc:  # noqa: BLE001 - the lease then just expires
                logger.warning("etcd lease revoke failed", extra={"error": str(exc)})
        if self._thread is not None:
            self._thread.join(timeout=2)


def enabled() -> bool:
    return os.environ.get("DISCOVERY_ENABLED", "true").lower() not in ("0", "false", "no")


def wait_registered(service: str, address: str, timeout: float = 10.0) -> bool:
    """True once this address is in the registry (used by tests and `up`)."""
    client = etcd.client(etcd.SERVICES, timeout=3)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for value, _ in client.get_prefix(f"{namespace.registry_prefix()}{service}/"):
            if json.loads(value)["address"] == address:
                return True
        time.sleep(0.2)
    return False
