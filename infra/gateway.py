"""The API gateway: nginx configuration rendered from the route table and the live etcd registry.

    python infra/gateway.py render     # write .run/nginx/ from routes.toml + the registry, reload nginx
    python infra/gateway.py watch      # re-render and reload whenever the registry changes (consul-template)
    python infra/gateway.py list       # what is registered, and whether each instance answers its health URL

`render` with no etcd client installed (the standard library alone, before .venv exists) renders every
upstream empty, which nginx answers with a JSON 502. `watch` and `list` need etcd3gw (the project's venv). They
read the registry as etcd user platform-watcher (common/etcd.py), which can write nothing.

Only checked entries reach nginx's files: the key is <prefix><service>/<instance id>, the value a JSON object
whose service is that key's and has a route in routes.toml, and whose address is host:port (an IPv4 address or
a DNS name, a port 1-65535). Any other entry is skipped and logged. `watch` reads:

    PLATFORM_GATEWAY_RESYNC_S   (30) how often the whole registry is read again, the watch's safety net
    GATEWAY_WATCH_DELAY_S       (0)  test hook: a pause between the registry read and the start of the watch
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import sys
import threading
import time
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import components as infra

ETCD_PORT = infra.ETCD_PORT
# This process's namespace: the real platform's registry and nginx, or a test run's / a benchmark's own.
REGISTRY_PREFIX = infra.namespace.registry_prefix()
NGINX = infra.gateway_home()
ROUTES = infra.ROOT / "infra" / "routes.toml"
TEMPLATES = infra.ROOT / "infra" / "nginx"
# An address nothing listens on: an upstream with no live instance fails fast, and nginx answers JSON 502.
NO_INSTANCE = "127.0.0.1:9"
PROXY_HEADERS = """proxy_set_header Connection "";
proxy_set_header Host $host;
proxy_set_header X-Request-ID $platform_request_id;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto $scheme;
"""
# What a Binance SIGNED request may carry in its body: its parameters, read whole into memory by njs.
BINANCE_MAX_BODY = "16k"
# user_svc's check of a Binance request by API key (users.api.views.GatewayCheckView).
BINANCE_CHECK = "/internal/binance/check"


def load_routes() -> dict[str, dict]:
    return tomllib.loads(ROUTES.read_text())


def swagger_dist() -> Path:
    venv_site = sorted((infra.ROOT / ".venv" / "lib").glob("python3*/site-packages"))
    for site in venv_site:
        dist = site / "drf_spectacular_sidecar" / "static" / "drf_spectacular_sidecar" / "swagger-ui-dist"
        if dist.exists():
            return dist
    return NGINX / "missing-swagger-ui"


def render(instances: dict[str, list[str]] | None, *, home: Path = NGINX, port: int | None = None) -> bool:
    """Write nginx's files for these live instances; True when the upstreams changed.

    With None, the upstreams are left as they are (written empty only when none exist yet).
    """
    routes = load_routes()
    port = port or infra.gateway_port()
    for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    upstreams = []
    for service in routes:
        servers = sorted((instances or {}).get(service, [])) or [NO_INSTANCE]
        lines = [f"    server {addr} max_fails=1 fail_timeout=5s;" for addr in servers]
        upstreams.append(f"upstream {service} {{\n" + "\n".join(lines) + "\n    keepalive 16;\n}\n")
    locations = []
    for service, route in routes.items():
        auth = set(route.get("auth_prefixes", []))
        for prefix in route["prefixes"]:
            limit = "limit_req zone=auth burst=10 nodelay; " if prefix in auth else ""
            locations.append(f"location {prefix} {{ {limit}proxy_pass http://{service}; }}")
        locations.extend(binance_locations(service, route))
        locations.append(f"location = /docs/{service}/schema {{ proxy_pass http://{service}/api/schema/; }}")
        # A service's liveness through the front door (the gateway's own is /healthz).
        locations.append(f"location = /health/{service} {{ proxy_pass http://{service}/healthz; }}")
    if any(route.get("signed") or route.get("api_key") for route in routes.values()):
        locations.append(
            f"location = /_binance/check {{ internal; proxy_pass_request_headers off; {_inline(PROXY_HEADERS)} "
            f"proxy_set_header Content-Type application/json; proxy_pass http://user_svc{BINANCE_CHECK}; }}"
        )
    _write(home / "routes.conf", "\n".join(locations) + "\n")
    _write(home / "proxy_headers.conf", PROXY_HEADERS)
    _write(home / "binance.js", (TEMPLATES / "binance.js").read_text())
    urls = [{"name": svc, "url": f"/docs/{svc}/schema"} for svc in routes]
    _write(home / "docs.html", (TEMPLATES / "docs.html.template").read_text().format(urls=json.dumps(urls)))
    _write(
        home / "nginx.conf",
        (TEMPLATES / "nginx.conf.template")
        .read_text()
        .format(
            run=home,
            port=port,
            max_body=os.environ.get("PLATFORM_GATEWAY_MAX_BODY", "1m"),
            auth_rate=os.environ.get("PLATFORM_GATEWAY_AUTH_RATE", "5r/s"),
            read_timeout=os.environ.get("PLATFORM_GATEWAY_READ_TIMEOUT", "30s"),
            swagger_dist=swagger_dist(),
        ),
    )
    new = "\n".join(upstreams)
    path = home / "upstreams.conf"
    if instances is None and path.exists():
        return False
    changed = not path.exists() or path.read_text() != new
    if changed:
        _write(path, new)
    return changed


def _write(path: Path, text: str) -> None:
    """Replace a rendered file whole (a temporary file renamed over it), and only when its text changes: nginx may
    start or reload at any moment (the watcher, `infra up`, a test's gateway), and a half-written file it read
    would stay its configuration until the next reload."""
    if path.exists() and path.read_text() == text:
        return
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


def _inline(block: str) -> str:
    return " ".join(block.split("\n")).strip()


def binance_locations(service: str, route: dict) -> list[str]:
    """A service's Binance paths checked by API key (binance.js), and the named location that forwards them."""
    checked = [(path, "1") for path in route.get("signed", [])] + [(path, "0") for path in route.get("api_key", [])]
    if not checked:
        return []
    body = f"client_max_body_size {BINANCE_MAX_BODY}; client_body_buffer_size {BINANCE_MAX_BODY};"
    locations = [
        f"location = {path} {{ {body} set $binance_service {service}; set $binance_signed {signed}; "
        "js_content binance.check; }"
        for path, signed in checked
    ]
    locations.append(
        f"location @binance_{service} {{ {_inline(PROXY_HEADERS)} "
        'proxy_set_header Authorization "Bearer $binance_token"; proxy_set_header X-MBX-APIKEY ""; '
        f"proxy_pass http://{service}; }}"
    )
    return locations


# host:port as nginx's `server` takes it and nothing more: DNS labels (an IPv4 address is one of these shapes,
# checked again below) and a port without a leading zero. No space, ';', '{', '}' or newline can get through.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_PORT = re.compile(rf"(?P<host>{_LABEL}(?:\.{_LABEL})*):(?P<port>[1-9][0-9]{{0,4}})")


def valid_address(address: object) -> bool:
    """True for host:port with an IPv4 address or a DNS name as host and a port 1-65535."""
    match = _HOST_PORT.fullmatch(address) if isinstance(address, str) else None
    if match is None or int(match["port"]) > 65535 or len(match["host"]) > 253:
        return False
    host = match["host"]
    if re.fullmatch(r"[0-9.]+", host):  # no DNS name is all digits: it is an IPv4 address or nothing
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
    return True


class InvalidEntry(ValueError):
    """A registry entry the gateway does not render; the message says why."""


def parse_entry(key: str, value: bytes, services: dict) -> tuple[str, str]:
    """(service, address) of a registry entry, checked before anything of it can reach nginx's files."""
    key_service, _, instance = key.removeprefix(REGISTRY_PREFIX).partition("/")
    if not key.startswith(REGISTRY_PREFIX) or not key_service or not instance or "/" in instance:
        raise InvalidEntry("the key is not <prefix><service>/<instance id>")
    try:
        entry = json.loads(value)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested deeper than the parser goes
        raise InvalidEntry("the value is not JSON") from None
    if not isinstance(entry, dict):
        raise InvalidEntry("the value is not a JSON object")
    service, address = entry.get("service"), entry.get("address")
    if not isinstance(service, str) or service not in services:
        raise InvalidEntry("the service has no route in infra/routes.toml")
    if service != key_service:
        raise InvalidEntry("the service is not the one the key names")
    if not valid_address(address):
        raise InvalidEntry("the address is not host:port")
    return service, address


@dataclass(frozen=True)
class Registry:
    """One read of the registry: the live instances to render, what was skipped, and the revision read at."""

    live: dict[str, list[str]]  # service -> addresses of its valid instances (their leases keep them there)
    revision: int
    skipped: dict[tuple[str, int], dict] = field(default_factory=dict)  # (key, mod revision) -> why, and value


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def read_registry(client) -> Registry:
    """Every entry under the prefix, checked, with the etcd revision of the read (a watch goes on from there).

    The range request is etcd3gw's own call, made here because its get_prefix() drops the response's header,
    and with it the revision.
    """
    services = load_routes()
    prefix_end = REGISTRY_PREFIX[:-1] + chr(ord(REGISTRY_PREFIX[-1]) + 1)
    result = client.post(
        client.get_url("/kv/range"), json={"key": _b64(REGISTRY_PREFIX), "range_end": _b64(prefix_end)}
    )
    live: dict[str, list[str]] = {}
    skipped: dict[tuple[str, int], dict] = {}
    for kv in result.get("kvs", []):
        key = base64.b64decode(kv["key"]).decode("utf-8", "replace")
        value = base64.b64decode(kv.get("value", ""))
        try:
            service, address = parse_entry(key, value, services)
        except InvalidEntry as exc:
            excerpt = value[:200].decode("utf-8", "replace")
            skipped[(key, int(kv["mod_revision"]))] = {"reason": str(exc), "value": excerpt}
            continue
        live.setdefault(service, []).append(address)
    return Registry(live=live, revision=int(result["header"]["revision"]), skipped=skipped)


def registry(client) -> dict[str, list[str]]:
    """service -> addresses of its valid live instances; skipped entries are logged."""
    current = read_registry(client)
    for (key, _revision), why in current.skipped.items():
        log("registry entry skipped", level="WARNING", key=key, **why)
    return current.live


def etcd_client():
    """A client signed in as etcd user platform-watcher, which may read the registry and write nothing."""
    from common import etcd  # etcd3gw: the project's venv

    return etcd.client(etcd.WATCHER, url=os.environ.get("ETCD_URL", f"http://127.0.0.1:{ETCD_PORT}"))


def log(message: str, *, level: str = "INFO", **fields) -> None:
    print(json.dumps({"service": "gateway-watcher", "level": level, "message": message, **fields}), flush=True)


class Watcher:
    """Keeps nginx's upstreams equal to the registry's valid entries, reloading nginx only when they change.

    Each round reads the whole registry, renders it and watches from the revision after that read: a change made
    between the read and the start of the watch is then replayed by etcd, not lost (it once was: a service
    registered in that window answered 502 until the next change). A round ends after `resync_s` and the next
    one reads everything again: the safety net for a watch etcd ended without a word (a restart, a compaction),
    on which etcd3gw's event iterator would wait forever.
    """

    def __init__(self, *, resync_s: float, delay_s: float = 0.0) -> None:
        self.resync_s = resync_s
        self.delay_s = delay_s  # the test hook: a pause between the read and the watch
        self.gateway = infra.Gateway()
        self.reported: set[tuple[str, int]] = set()
        self.reload_due = False  # upstreams written but nginx not reloaded yet (the reload failed): retry it

    def apply(self, current: Registry) -> None:
        for entry, why in current.skipped.items():
            if entry not in self.reported:  # once per version of a key, not once per read
                log("registry entry skipped", level="WARNING", key=entry[0], mod_revision=entry[1], **why)
        self.reported = set(current.skipped)
        if render(current.live) or self.reload_due:
            self.reload_due = True
            self.gateway.reload()
            self.reload_due = False
            log("upstreams changed", registry=current.live, revision=current.revision)

    def round(self, client) -> None:
        current = read_registry(client)
        self.apply(current)
        log("watching", registry=current.live, revision=current.revision, resync_s=self.resync_s)
        if self.delay_s:
            time.sleep(self.delay_s)
        events, cancel = client.watch_prefix(REGISTRY_PREFIX, start_revision=current.revision + 1)
        resync = threading.Timer(self.resync_s, cancel)  # cancel() ends `events`, and with it this round
        resync.daemon = True
        resync.start()
        try:
            for _event in events:
                self.apply(read_registry(client))
        finally:
            resync.cancel()
            cancel()

    def run(self) -> None:
        while True:
            try:
                self.round(etcd_client())
            except Exception as exc:  # noqa: BLE001 - etcd away, or nginx refused a reload: wait, then a new round
                log("watch lost", level="WARNING", error=str(exc))
                time.sleep(1)


def watch() -> None:
    resync_s = float(os.environ.get("PLATFORM_GATEWAY_RESYNC_S", "30"))
    delay_s = float(os.environ.get("GATEWAY_WATCH_DELAY_S", "0"))
    Watcher(resync_s=resync_s, delay_s=delay_s).run()


def list_services() -> int:
    live = registry(etcd_client())
    routes = load_routes()
    print(f"{'service':16} {'instance':24} health")
    for service in routes:
        addresses = live.get(service, [])
        if not addresses:
            print(f"{service:16} {'(none registered)':24} -")
        for address in sorted(addresses):
            try:
                with urllib.request.urlopen(f"http://{address}/healthz", timeout=2) as response:
                    health = "healthy" if response.status == 200 else f"HTTP {response.status}"
            except OSError as exc:
                health = f"unreachable ({exc})"
            print(f"{service:16} {address:24} {health}")
    return 0


def main(argv: list[str]) -> int:
    action = argv[0] if argv else "render"
    if action == "render":
        try:
            live = registry(etcd_client())
        except Exception:  # noqa: BLE001 - no etcd client or no etcd yet: keep the upstreams as they are
            live = None
        if render(live) and infra.Gateway().running():
            infra.Gateway().reload()
        return 0
    if action == "watch":
        watch()
        return 0
    if action == "list":
        return list_services()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
