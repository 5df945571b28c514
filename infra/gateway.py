"""The API gateway: nginx configuration rendered from the route table and the live etcd registry.

    python infra/gateway.py render     # write .run/nginx/ from routes.toml + the registry, reload nginx
    python infra/gateway.py watch      # re-render and reload whenever the registry changes (consul-template)
    python infra/gateway.py list       # what is registered, and whether each instance answers its health URL

`render` with no etcd client installed (the standard library alone, before .venv exists) renders every
upstream empty, which nginx answers with a JSON 502. `watch` and `list` need etcd3gw (the project's venv).
"""

from __future__ import annotations

import json
import os
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

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
        locations.append(f"location = /docs/{service}/schema {{ proxy_pass http://{service}/api/schema/; }}")
        # A service's liveness through the front door (the gateway's own is /healthz).
        locations.append(f"location = /health/{service} {{ proxy_pass http://{service}/healthz; }}")
    (home / "routes.conf").write_text("\n".join(locations) + "\n")
    urls = [{"name": svc, "url": f"/docs/{svc}/schema"} for svc in routes]
    (home / "docs.html").write_text((TEMPLATES / "docs.html.template").read_text().format(urls=json.dumps(urls)))
    (home / "nginx.conf").write_text(
        (TEMPLATES / "nginx.conf.template")
        .read_text()
        .format(
            run=home,
            port=port,
            max_body=os.environ.get("PLATFORM_GATEWAY_MAX_BODY", "1m"),
            auth_rate=os.environ.get("PLATFORM_GATEWAY_AUTH_RATE", "5r/s"),
            read_timeout=os.environ.get("PLATFORM_GATEWAY_READ_TIMEOUT", "30s"),
            swagger_dist=swagger_dist(),
        )
    )
    new = "\n".join(upstreams)
    path = home / "upstreams.conf"
    if instances is None and path.exists():
        return False
    changed = not path.exists() or path.read_text() != new
    if changed:
        path.write_text(new)
    return changed


def registry(client) -> dict[str, list[str]]:
    """service -> addresses of its live instances (their leases keep them there)."""
    live: dict[str, list[str]] = {}
    for value, _meta in client.get_prefix(REGISTRY_PREFIX):
        entry = json.loads(value)
        live.setdefault(entry["service"], []).append(entry["address"])
    return live


def etcd_client():
    import etcd3gw

    url = urlsplit(os.environ.get("ETCD_URL", f"http://127.0.0.1:{ETCD_PORT}"))
    return etcd3gw.client(host=url.hostname, port=url.port or 2379, timeout=5)


def watch() -> None:
    """Render and reload on every registry change; a full re-read on each event keeps it simple and right."""
    gateway = infra.Gateway()
    while True:
        try:
            client = etcd_client()
            if render(registry(client)):
                gateway.reload()
            print(json.dumps({"service": "gateway-watcher", "message": "watching", "registry": registry(client)}))
            events, cancel = client.watch_prefix(REGISTRY_PREFIX)
            for _event in events:
                live = registry(client)
                if render(live):
                    gateway.reload()
                    print(json.dumps({"service": "gateway-watcher", "message": "upstreams changed", "registry": live}))
                    sys.stdout.flush()
            cancel()
        except Exception as exc:  # noqa: BLE001 - etcd restarts or drops the watch: wait and watch again
            print(json.dumps({"service": "gateway-watcher", "level": "WARNING", "message": f"watch lost: {exc}"}))
            sys.stdout.flush()
            time.sleep(1)


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
