#!/usr/bin/env python3
"""One entry point for the platform: bootstrap, infra, run a manage.py command everywhere, up, test.

Runs with the system Python and the standard library only, so it works before .venv exists.

    python3 manage_all.py up                 # everything, with demo data; Ctrl-C stops it
    python3 manage_all.py test               # every suite: lint, migrations, common, services, e2e
    python3 manage_all.py infra up|down|status
    python3 manage_all.py run migrate        # a manage.py command in every service (--only NAME)
    python3 manage_all.py bootstrap          # just the virtualenv
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "infra"))

import components as infra  # noqa: E402 - infra/ is plain stdlib code next to this file

VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
SERVICES = list(infra.DATABASES)
WEB_PORTS = {svc: 8001 + i for i, svc in enumerate(SERVICES)}
JWT_DIR = infra.RUN / "jwt"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "XRPETH", "BNBUSDT"]
# gunicorn worker processes per instance, where the load is (placing orders); one elsewhere. 4 threads each.
WEB_WORKERS = {"order_svc": 2}
# (service, consumer name) of every consumer group `up` runs: `manage.py consume <name>` in that service.
CONSUMERS = [
    ("portfolio_svc", "user-events"),
    ("portfolio_svc", "portfolio-commands"),
    ("portfolio_svc", "order-events"),
    ("portfolio_svc", "market-data"),
    ("order_svc", "balance-events"),
    ("order_svc", "market-data"),
    ("analytics_svc", "candles"),
    ("transaction_svc", "order-events"),
]


# --- the virtualenv -------------------------------------------------------------------------------


def _dependencies() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def bootstrap() -> None:
    """Create .venv and install the pinned set (and common/, editable) when missing or changed."""
    deps = _dependencies()
    digest = hashlib.sha256(json.dumps(deps).encode() + (ROOT / "common" / "pyproject.toml").read_bytes()).hexdigest()
    marker = VENV / ".platform-deps"
    if PY.exists() and marker.exists() and marker.read_text() == digest:
        return
    if not PY.exists():
        print(f"[bootstrap] creating {VENV.name}/ with {sys.executable}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print(f"[bootstrap] installing {len(deps)} pinned packages and common/ (about a minute)...", flush=True)
    pip = [str(PY), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "install", "-q", "--upgrade", "pip"], check=True)
    result = subprocess.run([*pip, "install", "-q", *deps, "-e", str(ROOT / "common")], check=False)
    if result.returncode != 0:
        sys.exit("[bootstrap] pip failed; check that PyPI is reachable, then run `python3 manage_all.py bootstrap`")
    marker.write_text(digest)


# --- infrastructure -------------------------------------------------------------------------------


def infra_env() -> dict[str, str]:
    # A run namespace (a test run's, a benchmark's) goes to every process it starts; empty: the real platform.
    ns_env = {infra.namespace.ENV: os.environ[infra.namespace.ENV]} if os.environ.get(infra.namespace.ENV) else {}
    return {
        **ns_env,
        "PLATFORM_ENV": os.environ.get("PLATFORM_ENV", "local"),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{infra.KAFKA_PORT}",
        "REDIS_URL": f"redis://127.0.0.1:{infra.REDIS_PORT}/0",
        "PYTHONUNBUFFERED": "1",
        "JWT_PUBLIC_KEY_FILE": str(JWT_DIR / "public.pem"),
        # Every key a live token may be signed with, by kid (common.jwt_keys; a rotation rewrites it).
        "JWT_JWKS_FILE": str(JWT_DIR / "jwks.json"),
        "ETCD_URL": f"http://127.0.0.1:{infra.ETCD_PORT}",
        "ZIPKIN_ENDPOINT": f"http://127.0.0.1:{infra.ZIPKIN_PORT}/api/v2/spans",
    }


def service_env(svc: str) -> dict[str, str]:
    env = {
        **infra_env(),
        "PLATFORM_SERVICE": svc,
        "DJANGO_SETTINGS_MODULE": f"{svc}.settings",
        "DATABASE_URL": infra.database_url(svc),
        # Behind the gateway the client's address is the last X-Forwarded-For hop nginx appends (Binance's
        # per-IP request weight, common/binance_limits.py).
        "TRUSTED_PROXIES": "1",
    }
    if svc == "user_svc":  # the only holder of the signing key
        env["JWT_PRIVATE_KEY_FILE"] = str(JWT_DIR / "private.pem")
        # Behind the gateway the client's address is the last X-Forwarded-For hop nginx appends.
        env["LOGIN_THROTTLE_TRUSTED_PROXIES"] = "1"
    return env


def infra_up() -> None:
    bootstrap()
    for component in infra.components():
        component.up()
    result = subprocess.run(
        [
            str(PY),
            "-m",
            "common.kafka",
            "--bootstrap",
            f"127.0.0.1:{infra.KAFKA_PORT}",
            "--partitions",
            str(infra.KAFKA_PARTITIONS),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise infra.InfraError(f"Kafka topics: {result.stderr.strip()}; see {infra.Kafka().log}")
    infra.say(result.stdout.strip())
    # The gateway's routes and upstreams, from routes.toml and whatever is registered right now.
    subprocess.run([str(PY), str(ROOT / "infra" / "gateway.py"), "render"], check=True)
    keys = subprocess.run(
        [str(PY), "-m", "common.jwt_keys", "--dir", str(JWT_DIR)], check=True, capture_output=True, text=True
    )
    infra.say(keys.stdout.strip())


def infra_down() -> None:
    for component in reversed(infra.components()):
        component.down()


def infra_status() -> None:
    for component in infra.components():
        print(f"{component.name:10} {component.status()}")


# --- manage.py everywhere -------------------------------------------------------------------------


def run_everywhere(
    args: list[str], *, only: list[str] | None = None, quiet: bool = False, env: dict[str, str] | None = None
) -> None:
    """`env`: more variables for the command (a password goes there, never into `args`)."""
    for svc in only or SERVICES:
        if not quiet:
            print(f"[run] {svc}: manage.py {' '.join(args)}", flush=True)
        result = subprocess.run(
            [str(PY), "manage.py", *args],
            cwd=ROOT / svc,
            env={**os.environ, **service_env(svc), **(env or {})},
            check=False,
            capture_output=quiet,
            text=True,
        )
        if result.returncode != 0:
            if quiet:
                print(result.stdout + result.stderr, file=sys.stderr)
            sys.exit(f"[run] {svc}: manage.py {' '.join(args)} failed with exit code {result.returncode}")


# --- the process table and `up` -------------------------------------------------------------------


@dataclass
class Process:
    name: str
    service: str  # its folder is the working directory; "" for the platform's own processes (root folder)
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def cwd(self) -> Path:
        return ROOT / self.service if self.service else ROOT

    def environment(self) -> dict[str, str]:
        return {**(service_env(self.service) if self.service else infra_env()), **self.env}


def process_table(
    *, ports: dict[str, list[int]] | None = None, consumers: dict[str, int] | None = None
) -> list[Process]:
    """Every long-running process of the platform: the one list `up` and the e2e tests start."""
    ports = ports or {svc: [port] for svc, port in WEB_PORTS.items()}
    venv_bin = VENV / "bin"
    table: list[Process] = []
    for svc in SERVICES:
        for i, port in enumerate(ports[svc]):
            table.append(
                Process(
                    f"{svc}_web{'' if i == 0 else i + 1}",
                    svc,
                    [
                        str(venv_bin / "gunicorn"),
                        f"{svc}.wsgi:application",
                        "--bind",
                        f"127.0.0.1:{port}",
                        "--workers",
                        str(WEB_WORKERS.get(svc, 1)),
                        "--threads",
                        "4",
                        "--graceful-timeout",
                        "10",
                        # JSON access logs and etcd registration under a kept-alive lease
                        "--config",
                        "python:common.gunicorn_conf",
                    ],
                )
            )
        table.append(
            Process(
                f"{svc}_worker",
                svc,
                [
                    str(venv_bin / "celery"),
                    "-A",
                    svc,
                    "worker",
                    # It consumes the service's queue and its outbox relay loop's (CELERY_TASK_QUEUES in settings).
                    # One process, three threads: the relay loop holds one, beat's ticks and tasks use the others.
                    "--pool",
                    "threads",
                    "--concurrency",
                    "3",
                    "--hostname",
                    f"{svc}@%h",
                    "--loglevel",
                    "INFO",
                ],
            )
        )
        table.append(
            Process(
                f"{svc}_beat",
                svc,
                [
                    str(venv_bin / "celery"),
                    "-A",
                    svc,
                    "beat",
                    "--schedule",
                    str(infra.namespace_dir() / "celery" / f"{svc}-beat"),
                    "--loglevel",
                    "INFO",
                ],
            )
        )
    python = str(venv_bin / "python")
    # Consumers: one process per service runs all its groups, a thread each (on 2 cores, 4 processes instead of
    # 8); `up --consumers SERVICE=N` runs N of them, which share each group's partitions (6: up to 6 processes).
    consumers = consumers or {}
    for svc in SERVICES:
        groups = [name for owner, name in CONSUMERS if owner == svc]
        for i in range(consumers.get(svc, 1) if groups else 0):
            table.append(
                Process(f"{svc}_consumers{'' if i == 0 else i + 1}", svc, [python, "manage.py", "consume", *groups])
            )
    table.append(
        Process(
            "analytics_svc_feed",
            "analytics_svc",
            [python, "manage.py", "stream_market_data", "--source", "simulate", "--symbols", ",".join(SYMBOLS)],
        )
    )
    # Renders nginx's upstreams from the etcd registry whenever an instance comes or goes.
    table.append(Process("gateway_watcher", "", [str(PY), str(ROOT / "infra" / "gateway.py"), "watch"]))
    return table


def write_procfile(table: list[Process], path: Path) -> None:
    lines = []
    for proc in table:
        env = " ".join(f"{k}={_shell_quote(v)}" for k, v in proc.environment().items())
        cmd = " ".join(_shell_quote(part) for part in proc.command)
        lines.append(f"{proc.name}: cd {_shell_quote(str(proc.cwd))} && exec env {env} {cmd}")
    path.write_text("\n".join(lines) + "\n")


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


def demo_credentials_path() -> Path:
    return infra.RUN / "demo-credentials.json"


def demo_credentials() -> tuple[dict[str, str], bool]:
    """The operator's and the demo user's logins, and whether they were made just now (the only time they are
    printed). Kept in a file of mode 0600 from the start, so they stay the same from one `up` to the next."""
    path = demo_credentials_path()
    if path.exists():
        return json.loads(path.read_text()), False
    creds = {
        "operator_email": "operator@example.com",
        "operator_password": secrets.token_urlsafe(12),
        "demo_email": "demo@example.com",
        "demo_password": f"Demo-{secrets.token_urlsafe(9)}",
    }
    infra.credentials.write_private(path, json.dumps(creds, indent=2) + "\n")
    return creds, True


def ensure_logins(creds: dict[str, str]) -> None:
    """The operator in every service's admin and the demo user in user_svc; passwords through the environment."""
    run_everywhere(
        ["ensure_operator", "--email", creds["operator_email"]],
        quiet=True,
        env={"OPERATOR_PASSWORD": creds["operator_password"]},
    )
    if "demo_email" in creds:  # registered through user_svc, so its portfolio follows through user-events
        run_everywhere(
            ["ensure_demo_user", "--email", creds["demo_email"]],
            only=["user_svc"],
            quiet=True,
            env={"DEMO_USER_PASSWORD": creds["demo_password"]},
        )


def wait_ready(urls: dict[str, str], timeout: float) -> dict[str, int]:
    statuses: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    pending = dict(urls)
    while pending and time.monotonic() < deadline:
        for name, url in list(pending.items()):
            try:
                with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - local URLs only
                    statuses[name] = response.status
                    del pending[name]
            except (urllib.error.URLError, OSError):
                continue
        time.sleep(0.5)
    for name in pending:
        statuses[name] = 0
    return statuses


def up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    infra_up()
    (infra.RUN / "celery").mkdir(parents=True, exist_ok=True)
    print("[up] migrating every service...", flush=True)
    run_everywhere(["migrate", "--noinput"], quiet=True)
    creds, new_creds = demo_credentials()
    ensure_logins(creds)
    ports = {svc: [port] for svc, port in WEB_PORTS.items()}
    for svc, count in (args.scale or {}).items():
        # extra instances take ports from 8101, 8201, ... upwards: svc index + 100 x instance number
        ports[svc] = [WEB_PORTS[svc] + 100 * i for i in range(count)]
    table = process_table(ports=ports, consumers=args.consumers)
    procfile = infra.RUN / "Procfile"
    write_procfile(table, procfile)
    print(f"[up] starting {len(table)} processes under honcho ({procfile})", flush=True)
    honcho = subprocess.Popen([str(VENV / "bin" / "honcho"), "-f", str(procfile), "-d", str(ROOT), "start"])
    # Ctrl-C reaches honcho through the terminal; a SIGTERM or SIGHUP sent to this process is passed on,
    # so no web server, worker or consumer outlives the supervisor.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: honcho.send_signal(signal.SIGTERM))
    try:
        statuses = wait_ready({svc: f"http://127.0.0.1:{port}/readyz" for svc, port in WEB_PORTS.items()}, 120)
        print("\n[up] the platform is running (Ctrl-C stops every process; infra keeps running):")
        print(f"  gateway (one entry point)  http://127.0.0.1:{infra.GATEWAY_PORT}/   docs: /docs/")
        print(f"  traces (Zipkin UI)         http://127.0.0.1:{infra.ZIPKIN_PORT}/zipkin/")
        print(f"  {'service':16} {'API':32} {'admin':34} ready")
        for svc, port in WEB_PORTS.items():
            base = f"http://127.0.0.1:{port}"
            print(f"  {svc:16} {base + '/api/':32} {base + '/admin/':34} {statuses[svc] or 'NOT READY'}")
        if new_creds:  # printed once; afterwards the file (mode 0600) is where they are
            print(f"  operator login (every admin): {creds['operator_email']} / {creds['operator_password']}")
            if "demo_email" in creds:
                print(f"  demo user (API, via POST /api/auth/login): {creds['demo_email']} / {creds['demo_password']}")
            print(f"  (shown this once; kept in {demo_credentials_path()})")
        else:
            print(f"  operator and demo user logins: in {demo_credentials_path()} (readable by you only)")
        print(f"  started in {time.monotonic() - started:.1f}s\n", flush=True)
        return honcho.wait()
    except KeyboardInterrupt:
        return honcho.wait()


# --- tests ----------------------------------------------------------------------------------------


@dataclass
class SuiteResult:
    name: str
    ok: bool
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    note: str = ""


def _pytest_suite(name: str, cwd: Path, env: dict[str, str], extra: list[str]) -> SuiteResult:
    report = infra.RUN / "test-reports" / f"{name}.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)
    print(f"\n===== suite {name} =====", flush=True)
    started = time.monotonic()
    code = subprocess.run(
        [str(PY), "-m", "pytest", f"--junitxml={report}", "-p", "no:cacheprovider", *extra],
        cwd=cwd,
        env={**os.environ, **env},
        check=False,
    ).returncode
    result = SuiteResult(name, ok=code == 0, seconds=time.monotonic() - started)
    if report.exists():
        suite = ET.parse(report).getroot()  # noqa: S314 - pytest's own report
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        total = int(suite.get("tests", 0))
        result.failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        result.skipped = int(suite.get("skipped", 0))
        result.passed = total - result.failed - result.skipped
    if code == 5:
        result.note = "no tests ran"
    elif code != 0 and result.failed == 0:
        result.note = f"pytest exited {code}"
    return result


def _command_suite(name: str, cmd: list[str], cwd: Path = ROOT) -> SuiteResult:
    print(f"\n===== suite {name} =====", flush=True)
    started = time.monotonic()
    code = subprocess.run(cmd, cwd=cwd, check=False).returncode
    return SuiteResult(
        name, ok=code == 0, passed=int(code == 0), failed=int(code != 0), seconds=time.monotonic() - started
    )


def _namespace_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PY), str(ROOT / "infra" / "namespaces.py"), *args], check=False, capture_output=True, text=True
    )


def test(args: argparse.Namespace) -> int:
    """Every suite, in a run namespace of its own (a platform running beside it is left alone)."""
    infra_up()
    created = _namespace_tool("create", "--prefix", "test", "--owner", str(os.getpid()))
    if created.returncode != 0:
        raise infra.InfraError(f"could not create the test run's namespace: {created.stderr.strip()}")
    ns_env = json.loads(created.stdout)
    os.environ.update(ns_env)
    (infra.namespace_dir() / "celery").mkdir(parents=True, exist_ok=True)
    print(f"[test] namespace {ns_env[infra.namespace.ENV]}: its own topics, databases, queues, registry, gateway")
    # A SIGTERM or SIGHUP ends the run like Ctrl-C: the namespace is removed on the way out.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    try:
        return _run_suites(args)
    finally:
        removed = _namespace_tool("remove", ns_env[infra.namespace.ENV])
        if removed.returncode != 0:
            print(f"[test] could not remove the namespace (the next run will): {removed.stderr.strip()}")


def _run_suites(args: argparse.Namespace) -> int:
    wanted = set(args.only or [])
    results: list[SuiteResult] = []

    def selected(name: str) -> bool:
        return not wanted or name in wanted

    if selected("lint"):
        ruff = str(VENV / "bin" / "ruff")
        results.append(_command_suite("lint", ["sh", "-c", f"{ruff} check . && {ruff} format --check ."]))
    if selected("migrations"):
        started = time.monotonic()
        print("\n===== suite migrations =====", flush=True)
        failed = []
        for svc in SERVICES:
            code = subprocess.run(
                [str(PY), "manage.py", "makemigrations", "--check", "--dry-run"],
                cwd=ROOT / svc,
                env={**os.environ, **service_env(svc)},
                check=False,
            ).returncode
            if code != 0:
                failed.append(svc)
        results.append(
            SuiteResult(
                "migrations",
                ok=not failed,
                passed=len(SERVICES) - len(failed),
                failed=len(failed),
                seconds=time.monotonic() - started,
                note=f"missing migrations in {', '.join(failed)}" if failed else "",
            )
        )
    if selected("common"):
        env = {
            **infra_env(),
            "DATABASE_URL": f"postgres://platform_common:{infra.role_password('platform_common')}"
            f"@127.0.0.1:{infra.PG_PORT}/{infra.namespace.database('platform_common')}",
        }
        # Run from the root: inside common/ its logging.py would shadow the standard library's.
        results.append(
            _pytest_suite("common", ROOT, env, ["-c", "common/pytest.ini", "common/tests", *args.pytest_args])
        )
    for svc in SERVICES:
        if selected(svc):
            results.append(_pytest_suite(svc, ROOT / svc, service_env(svc), args.pytest_args))
    if selected("e2e"):
        results.append(_pytest_suite("e2e", ROOT, infra_env(), args.pytest_args))

    print("\n===== summary =====")
    for r in results:
        state = "ok" if r.ok else "FAILED"
        note = f" ({r.note})" if r.note else ""
        print(
            f"  {r.name:16} {state:7} {r.passed:4} passed {r.failed:3} failed {r.skipped:3} skipped "
            f"{r.seconds:7.1f}s{note}"
        )
    passed = sum(r.passed for r in results)
    failed = sum(r.failed for r in results) + sum(1 for r in results if not r.ok and r.failed == 0)
    print(f"total: {passed} passed, {failed} failed")
    return 0 if all(r.ok for r in results) else 1


# --- the command line -----------------------------------------------------------------------------


def _scale(value: str) -> tuple[str, int]:
    service, _, count = value.partition("=")
    if service not in SERVICES or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"expected SERVICE=N with SERVICE one of {', '.join(SERVICES)}")
    return service, int(count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="manage_all.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bootstrap", help="create .venv and install the pinned dependencies")
    p_infra = sub.add_parser("infra", help="local PostgreSQL, Redis and Kafka under .run/")
    p_infra.add_argument("action", choices=["up", "down", "status"])
    p_run = sub.add_parser("run", help="run a manage.py command in every service")
    p_run.add_argument("--only", action="append", choices=SERVICES)
    p_run.add_argument("manage_args", nargs=argparse.REMAINDER)
    p_up = sub.add_parser("up", help="infra, migrations, demo data and every process; Ctrl-C stops")
    p_up.add_argument(
        "--scale", type=_scale, action="append", help="run N web instances of a service, e.g. order_svc=3"
    )
    p_up.add_argument(
        "--consumers",
        type=_scale,
        action="append",
        help="run N consumer processes of a service (each runs all its groups; up to 6 share the partitions)",
    )
    sub.add_parser("services", help="what is registered in etcd and whether it answers")
    p_test = sub.add_parser("test", help="every test suite against the real local infrastructure")
    p_test.add_argument(
        "--only", action="append", help="run only these suites (lint, migrations, common, <service>, e2e)"
    )
    p_test.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed to every pytest run")
    args = parser.parse_args(argv)

    try:
        if args.command == "bootstrap":
            bootstrap()
        elif args.command == "infra":
            if args.action == "up":
                infra_up()
            elif args.action == "down":
                infra_down()
            infra_status()
        elif args.command == "run":
            if not args.manage_args:
                parser.error("run needs a manage.py command, e.g. `run migrate`")
            bootstrap()
            run_everywhere(args.manage_args, only=args.only)
        elif args.command == "up":
            args.scale = dict(args.scale or [])
            args.consumers = dict(args.consumers or [])
            return up(args)
        elif args.command == "services":
            bootstrap()
            return subprocess.run([str(PY), str(ROOT / "infra" / "gateway.py"), "list"], check=False).returncode
        elif args.command == "test":
            return test(args)
    except infra.InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
