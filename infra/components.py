"""Local infrastructure under .run/: a private PostgreSQL cluster, Redis and a KRaft Kafka broker.

Standard library only: manage_all.py uses it before the virtualenv exists, and tests use it to stop
and start real processes. Every component is idempotent: `up` on a running one only checks it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = Path(os.environ.get("PLATFORM_RUN_DIR", ROOT / ".run"))
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # common/namespace.py: standard library only, shared with the services

from common import credentials, namespace  # noqa: E402

PG_PORT = int(os.environ.get("PLATFORM_PG_PORT", "55432"))
REDIS_PORT = int(os.environ.get("PLATFORM_REDIS_PORT", "56379"))
KAFKA_PORT = int(os.environ.get("PLATFORM_KAFKA_PORT", "59092"))
KAFKA_CONTROLLER_PORT = int(os.environ.get("PLATFORM_KAFKA_CONTROLLER_PORT", "59093"))
KAFKA_PARTITIONS = int(os.environ.get("PLATFORM_KAFKA_PARTITIONS", "6"))
KAFKA_ADMIN = "admin"  # the broker's only super user (common/kafka_auth.py names the same)
ZIPKIN_PORT = int(os.environ.get("PLATFORM_ZIPKIN_PORT", "59411"))
ETCD_PORT = int(os.environ.get("PLATFORM_ETCD_PORT", "52379"))
ETCD_PEER_PORT = int(os.environ.get("PLATFORM_ETCD_PEER_PORT", "52380"))
GATEWAY_PORT = int(os.environ.get("PLATFORM_GATEWAY_PORT", "8000"))

# service -> its database; the role is named after the service and reaches only that database.
DATABASES = {
    "user_svc": "user_service",
    "portfolio_svc": "portfolio_service",
    "order_svc": "order_service",
    "transaction_svc": "transaction_service",
    "analytics_svc": "analytics_service",
}
# A role for common/'s own tests: it owns only common/'s test database and the benchmarks' database.
TEST_ONLY_ROLES = ["platform_common"]
BENCH_DATABASE = "platform_bench"


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class InfraError(RuntimeError):
    """Something the operator must fix; the message says what to do."""


def say(message: str) -> None:
    print(f"[infra] {message}", flush=True)


# The cluster's superuser: only infra/ (and the tests' checks of the roles) connect as it.
PG_SUPERUSER = "postgres"


def role_password(role: str) -> str:
    """A role's random local password, made on first use (.run/secrets/postgres/<role>, mode 0600); the
    services read the same file (common.settings.local_database_url)."""
    return credentials.ensure("postgres", role)


def database_url(service: str, ns: str | None = None) -> str:
    """A service's database in this process's run namespace (ns given: in that one)."""
    database = namespace.database(DATABASES[service], ns)
    return f"postgres://{service}:{role_password(service)}@127.0.0.1:{PG_PORT}/{database}"


def namespace_dir(ns: str | None = None) -> Path:
    """What a run namespace keeps under .run/ (its gateway, its record); .run/ itself for the real platform."""
    ns = namespace.current() if ns is None else namespace.validate(ns)
    return RUN / "ns" / ns if ns else RUN


def daemon_env() -> dict[str, str]:
    """The environment a shared daemon starts with: never a run namespace's (the namespace's clean-up stops every
    process started with it, and a broker a test restarted is the whole machine's, not the test run's)."""
    return {k: v for k, v in os.environ.items() if k != namespace.ENV}


def _namespace_record(ns: str | None) -> dict | None:
    ns = namespace.current() if ns is None else namespace.validate(ns)
    try:
        return json.loads((namespace_dir(ns) / "namespace.json").read_text()) if ns else None
    except (OSError, ValueError):
        return None


def gateway_home(ns: str | None = None) -> Path:
    """Where a gateway's nginx files live: a namespace made by infra/namespaces.py has a gateway of its own;
    the real platform, and a stack that runs alone in a namespace (compose), use .run/nginx/."""
    return namespace_dir(ns) / "nginx" if _namespace_record(ns) else RUN / "nginx"


def gateway_port(ns: str | None = None) -> int:
    """The port of that gateway: the one the namespace's record names, else GATEWAY_PORT."""
    record = _namespace_record(ns)
    return int(record["gateway_port"]) if record else GATEWAY_PORT


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(check: Callable[[], bool], *, what: str, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    hint = f"; see {log}" if log else ""
    raise InfraError(f"{what} did not become ready within {timeout:.0f}s{hint}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def stop_pid(pid: int, *, timeout: float = 30.0, sig: int = signal.SIGTERM) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.2)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def start_lock(name: str):
    """One starter at a time per component, across processes (two test runs must not start two brokers)."""
    RUN.mkdir(parents=True, exist_ok=True)
    with (RUN / f".{name}.start.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_apt_updated = False


def ensure_packages(needed: dict[str, str]) -> None:
    """Install the Debian packages whose program is missing; `needed` maps a program to its package."""
    global _apt_updated
    missing = sorted({pkg for program, pkg in needed.items() if not _have(program)})
    if not missing:
        return
    if os.geteuid() != 0:
        raise InfraError(f"missing programs; install them with: sudo apt-get install -y {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        say("apt-get update (once)...")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        _apt_updated = True
    say(f"apt-get install {' '.join(missing)}...")
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env)


def _have(program: str) -> bool:
    return Path(program).exists() if "/" in program else shutil.which(program) is not None


class Postgres:
    """A private cluster (initdb + pg_ctl) on 127.0.0.1:PG_PORT, one database and role per service."""

    name = "postgres"

    def __init__(self) -> None:
        self.home = self._home()
        self.data = self.home / "data"
        self.sock = self.home / "sock"
        self.log = self.home / "postgres.log"
        self.bindir = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))

    @staticmethod
    def _home() -> Path:
        """.run/pg, unless (as root) the postgres user cannot reach it: then a folder of this checkout's in /tmp.

        PostgreSQL runs as the `postgres` user when we are root, and a checkout under a private home folder
        (mode 700) is out of its reach; the fallback is named after the checkout, so every run finds it again.
        """
        home = RUN / "pg"
        if os.geteuid() != 0 or (home / "data" / "PG_VERSION").exists():
            return home
        RUN.mkdir(parents=True, exist_ok=True)
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return home
        probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(RUN)], check=False)
        if probe.returncode == 0:
            return home
        digest = hashlib.sha256(str(RUN.resolve()).encode()).hexdigest()[:10]
        return Path("/tmp") / f"platform-pg-{digest}"  # noqa: S108 - owned by postgres, mode 700 (initdb)

    def _bin(self, tool: str) -> str:
        return str(self.bindir / tool)

    def _as_owner(self, cmd: list[str]) -> list[str]:
        # PostgreSQL refuses to run as root; as root we run it as the `postgres` system user.
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *cmd]
        return cmd

    def _prepare_dirs(self) -> None:
        self.sock.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
                owner = pwd.getpwnam("postgres")
            for path in (self.home, self.sock, *([self.data] if self.data.exists() else [])):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(self.home)], check=False)
            if probe.returncode != 0:
                raise InfraError(
                    f"the postgres user cannot write {self.home}; make its parent folders traversable "
                    "(chmod o+x on each) or set PLATFORM_RUN_DIR to a folder it can reach"
                )

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists() and port_open(PG_PORT)

    def up(self) -> None:
        ensure_packages({self._bin("initdb"): "postgresql-15", "psql": "postgresql-client-15"})
        self._prepare_dirs()
        if not (self.data / "PG_VERSION").exists():
            say(f"initdb {self.data}")
            # The superuser's password reaches initdb in a file only the cluster's owner can read, never argv.
            pwfile = self.home / ".superuser-password"
            credentials.write_private(pwfile, role_password(PG_SUPERUSER) + "\n")
            self._chown_to_owner(pwfile)
            try:
                subprocess.run(
                    self._as_owner(
                        [
                            self._bin("initdb"),
                            "-D",
                            str(self.data),
                            "-U",
                            PG_SUPERUSER,
                            f"--pwfile={pwfile}",
                            # Every connection proves its password, the local socket's too: no `trust` anywhere.
                            "--auth-local=scram-sha-256",
                            "--auth-host=scram-sha-256",
                            "--encoding=UTF8",
                            "--locale=C.UTF-8",
                        ]
                    ),
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            finally:
                pwfile.unlink(missing_ok=True)
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write(
                    "\n# platform: local cluster settings\n"
                    "listen_addresses = '127.0.0.1'\n"
                    f"port = {PG_PORT}\n"
                    f"unix_socket_directories = '{self.sock}'\n"
                    "max_connections = 400\n"
                    "shared_buffers = 256MB\n"
                    # A throwaway local cluster: survives killed processes (the OS keeps the writes)
                    # but not a power cut, and commits much faster on shared disks.
                    "fsync = off\n"
                    "full_page_writes = off\n"
                    "log_min_messages = warning\n"
                )
        if not self.running():
            if port_open(PG_PORT):
                raise InfraError(f"port {PG_PORT} is taken by another program; set PLATFORM_PG_PORT to a free one")
            say(f"starting PostgreSQL on 127.0.0.1:{PG_PORT}")
            subprocess.run(
                self._as_owner(
                    [
                        self._bin("pg_ctl"),
                        "-D",
                        str(self.data),
                        "-l",
                        str(self.log),
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ]
                ),
                check=True,
                env=daemon_env(),
                stdout=subprocess.DEVNULL,
            )
        self._no_trust()
        self._ensure_roles_and_databases()

    def _chown_to_owner(self, path: Path) -> None:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def _no_trust(self) -> None:
        """A cluster made before passwords were required (`trust` on the local socket) gets its superuser's
        password and scram-sha-256 everywhere; a no-op on a cluster that has no `trust` line."""
        hba = self.data / "pg_hba.conf"
        lines = self._read_as_owner(hba).splitlines()
        if not any(line.split()[-1:] == ["trust"] for line in lines if not line.lstrip().startswith("#")):
            return
        say("PostgreSQL: replacing `trust` with scram-sha-256 (a password for every connection)")
        # Still trusted on the socket: set the password first, then require it.
        self.psql(f"ALTER ROLE {PG_SUPERUSER} PASSWORD {_sql_literal(role_password(PG_SUPERUSER))}", trusted=True)
        fixed = [
            line.rsplit("trust", 1)[0] + "scram-sha-256"
            if line.split()[-1:] == ["trust"] and not line.lstrip().startswith("#")
            else line
            for line in lines
        ]
        self._write_as_owner(hba, "\n".join(fixed) + "\n")
        self.psql("SELECT pg_reload_conf()")

    def _read_as_owner(self, path: Path) -> str:
        return subprocess.run(self._as_owner(["cat", str(path)]), check=True, capture_output=True, text=True).stdout

    def _write_as_owner(self, path: Path, content: str) -> None:
        subprocess.run(
            self._as_owner(["tee", str(path)]), input=content, check=True, text=True, stdout=subprocess.DEVNULL
        )

    def psql(self, sql: str, *, database: str = "postgres", trusted: bool = False) -> str:
        """Run SQL as the superuser over the cluster's socket. The SQL goes through stdin and the password
        through the environment, so neither a role's password nor the superuser's ever shows in a process list."""
        env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
        if not trusted:
            env["PGPASSWORD"] = role_password(PG_SUPERUSER)
        result = subprocess.run(
            [
                "psql",
                "-h",
                str(self.sock),
                "-p",
                str(PG_PORT),
                "-U",
                PG_SUPERUSER,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-tA",
                "-f",
                "-",
            ],
            input=sql,
            check=False,
            capture_output=True,
            text=True,
            env=env,
        )
        if result.returncode != 0:
            raise InfraError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def _ensure_roles_and_databases(self) -> None:
        for role in [*DATABASES, *TEST_ONLY_ROLES]:
            password = _sql_literal(role_password(role))
            # NOCREATEDB: a service role owns its databases but makes none; the test databases are made here.
            self.psql(
                f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
                f"CREATE ROLE {role} LOGIN; END IF; END $$;\n"
                f"ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {password};"
            )
        self.ensure_databases("")

    def ensure_databases(self, ns: str) -> None:
        """Every service's database of a namespace ("" the real platform's) and the test database pytest-django
        uses for it (kept, see --reuse-db in each pytest.ini), each owned by its role: the roles cannot create
        databases themselves. common/'s test project and the benchmarks' database are made the same way."""
        owned = {name: role for role, name in DATABASES.items()}
        owned.update(dict.fromkeys([*TEST_ONLY_ROLES, BENCH_DATABASE], "platform_common"))
        existing = set(self.psql("SELECT datname FROM pg_database").split())
        for name, role in owned.items():
            for database in (namespace.database(name, ns), f"test_{namespace.database(name, ns)}"):
                if database not in existing:
                    say(f"creating database {database} owned by {role}")
                    self.psql(f"CREATE DATABASE {database} OWNER {role}")
                # Only the owning role may connect: the database per service is enforced, not agreed.
                self.psql(
                    f"REVOKE CONNECT ON DATABASE {database} FROM PUBLIC;\n"
                    f"GRANT CONNECT ON DATABASE {database} TO {role};"
                )

    def drop_databases(self, ns: str) -> list[str]:
        """Drop a namespace's databases and the test databases its suites made (never the real platform's)."""
        if not namespace.validate(ns):
            raise InfraError("the real platform's databases (empty namespace) are never dropped")
        names = [namespace.database(name, ns) for name in [*DATABASES.values(), *TEST_ONLY_ROLES, BENCH_DATABASE]]
        wanted = {*names, *(f"test_{name}" for name in names)}  # pytest-django's test databases too
        doomed = [d for d in self.psql("SELECT datname FROM pg_database").split() if d in wanted]
        for database in doomed:
            self.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        return doomed

    def down(self) -> None:
        if (self.data / "postmaster.pid").exists():
            say("stopping PostgreSQL")
            subprocess.run(
                self._as_owner([self._bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                check=False,
                stdout=subprocess.DEVNULL,
            )

    def status(self) -> str:
        return f"127.0.0.1:{PG_PORT}" if self.running() else "stopped"


class Redis:
    """redis-server on 127.0.0.1:REDIS_PORT: the Celery broker and the Django cache."""

    name = "redis"

    def __init__(self) -> None:
        self.home = RUN / "redis"
        self.pidfile = self.home / "redis.pid"
        self.log = self.home / "redis.log"

    def running(self) -> bool:
        return read_pid(self.pidfile) is not None and port_open(REDIS_PORT)

    def up(self) -> None:
        ensure_packages({"redis-server": "redis-server"})
        self.home.mkdir(parents=True, exist_ok=True)
        if self.running():
            return
        if port_open(REDIS_PORT):
            raise InfraError(f"port {REDIS_PORT} is taken by another program; set PLATFORM_REDIS_PORT to a free one")
        say(f"starting Redis on 127.0.0.1:{REDIS_PORT}")
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(REDIS_PORT),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pidfile),
                "--logfile",
                str(self.log),
                "--dir",
                str(self.home),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
            env=daemon_env(),
        )
        wait_for(lambda: port_open(REDIS_PORT), what="Redis", timeout=20, log=self.log)

    def down(self) -> None:
        pid = read_pid(self.pidfile)
        if pid:
            say("stopping Redis")
            stop_pid(pid)

    def status(self) -> str:
        return f"127.0.0.1:{REDIS_PORT}" if self.running() else "stopped"


def fetch_with_maven(pom: Path, target: Path, what: str) -> None:
    """Copy the pom's dependencies (jars) into target, once per pom content."""
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    marker = target / ".pom-sha256"
    if marker.exists() and marker.read_text() == digest:
        return
    ensure_packages({"mvn": "maven", "java": "openjdk-17-jre-headless"})
    say(f"fetching {what} from Maven Central (first run only)...")
    if target.exists():
        shutil.rmtree(target)
    result = subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={target}",
            "-DincludeScope=runtime",
        ],
        check=False,
    )
    if result.returncode != 0:
        raise InfraError(f"Maven could not fetch {what}; check that Maven Central is reachable")
    marker.write_text(digest)


class Daemon:
    """A program started in the background (a JVM, etcd), with its pid and log under .run/<name>/."""

    name = "daemon"
    port = 0
    other_ports: tuple[int, ...] = ()  # more ports it listens on, all of which must be free to start
    port_variables = ""  # the variables that move its ports, named when one is taken

    def __init__(self) -> None:
        self.home = RUN / self.name
        self.pidfile = self.home / f"{self.name}.pid"
        self.log = self.home / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return {}

    def running(self) -> bool:
        return read_pid(self.pidfile) is not None and port_open(self.port)

    def start(self) -> None:
        """Start it unless it runs; refuse (saying which variable to set) when another program has its port."""
        with start_lock(self.name):
            if self.running():
                return
            taken = [p for p in (self.port, *self.other_ports) if port_open(p)]
            if taken:
                raise InfraError(f"port {taken[0]} is taken by another program; set {self.port_variables}")
            self._start()

    def _start(self) -> None:
        say(f"starting {self.name} on 127.0.0.1:{self.port}")
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**daemon_env(), **self.environment()},
            )
        self.pidfile.write_text(str(process.pid))
        wait_for(lambda: port_open(self.port) or process.poll() is not None, what=self.name, timeout=90, log=self.log)
        if process.poll() is not None:
            raise InfraError(f"{self.name} exited with {process.returncode}; see {self.log}")

    def kill(self) -> None:
        """SIGKILL the process: what the fault tests do to it."""
        pid = read_pid(self.pidfile)
        if pid:
            stop_pid(pid, sig=signal.SIGKILL, timeout=10)

    def down(self) -> None:
        pid = read_pid(self.pidfile)
        if pid:
            say(f"stopping {self.name}")
            stop_pid(pid, timeout=60)

    def status(self) -> str:
        return f"127.0.0.1:{self.port}" if self.running() else "stopped"


class Zipkin(Daemon):
    """The Zipkin server from its Maven Central exec jar, in-memory storage; its UI at /zipkin/."""

    name = "zipkin"
    port = ZIPKIN_PORT
    port_variables = "PLATFORM_ZIPKIN_PORT"

    def __init__(self) -> None:
        super().__init__()
        self.lib = self.home / "lib"
        self.pom = ROOT / "infra" / "zipkin" / "pom.xml"

    def command(self) -> list[str]:
        jar = next(self.lib.glob("zipkin-server-*-exec.jar"))
        return ["java", "-Xms256m", "-Xmx1g", "-jar", str(jar)]

    def environment(self) -> dict[str, str]:
        # In-memory storage keeps the newest spans only: past ~100k the heap fills and Zipkin stalls.
        return {"QUERY_PORT": str(self.port), "STORAGE_TYPE": "mem", "MEM_MAX_SPANS": "100000"}

    def up(self) -> None:
        ensure_packages({"java": "openjdk-17-jre-headless"})
        self.home.mkdir(parents=True, exist_ok=True)
        fetch_with_maven(self.pom, self.lib, "the Zipkin server jar")
        self.start()


class Kafka(Daemon):
    """A single-node KRaft broker from Maven Central jars on the installed JDK."""

    name = "kafka"
    port = KAFKA_PORT
    other_ports = (KAFKA_CONTROLLER_PORT,)
    port_variables = "PLATFORM_KAFKA_PORT and PLATFORM_KAFKA_CONTROLLER_PORT"

    def __init__(self) -> None:
        super().__init__()
        self.libs = self.home / "libs"
        self.data = self.home / "data"
        self.config = self.home / "server.properties"
        self.pom = ROOT / "infra" / "kafka" / "pom.xml"

    def _java(self, *args: str) -> list[str]:
        return [
            "java",
            "-Xms256m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={ROOT / 'infra' / 'kafka' / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.home / 'logs'}",
            "-cp",
            f"{self.libs}/*",
            *args,
        ]

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.config))

    def up(self) -> None:
        ensure_packages({"java": "openjdk-17-jre-headless"})
        self.home.mkdir(parents=True, exist_ok=True)
        fetch_with_maven(self.pom, self.libs, "the Kafka broker's jars")
        template = (ROOT / "infra" / "kafka" / "server.properties").read_text()
        config = template.format(
            port=KAFKA_PORT,
            controller_port=KAFKA_CONTROLLER_PORT,
            data_dir=self.data,
            partitions=KAFKA_PARTITIONS,
            admin_password=credentials.ensure("kafka", KAFKA_ADMIN),
        )
        previous = self.config.read_text() if self.config.exists() else None
        credentials.write_private(self.config, config)
        if previous is not None and previous != config and self.running():
            # A broker started with another configuration (before SASL and ACLs, say) would go on serving it.
            say("restarting Kafka: its configuration changed")
            self.down()
        if not (self.data / "meta.properties").exists():
            say(f"formatting Kafka storage in {self.data}")
            cluster_id = hashlib.sha256(str(self.data).encode()).digest()[:16]
            uuid = base64.urlsafe_b64encode(cluster_id).decode().rstrip("=")
            subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", uuid, "-c", str(self.config)),
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        self.start()


class Etcd(Daemon):
    """A single-member etcd (Debian's etcd-server): the registry of live service instances.

    Auth is on: infra/etcd_auth.py makes its users (root, platform-services, platform-watcher) with the passwords
    in .run/secrets/etcd/ and turns it on, at every `up` (it changes only what differs).
    """

    name = "etcd"
    port = ETCD_PORT
    other_ports = (ETCD_PEER_PORT,)
    port_variables = "PLATFORM_ETCD_PORT and PLATFORM_ETCD_PEER_PORT"

    def command(self) -> list[str]:
        client, peer = f"http://127.0.0.1:{ETCD_PORT}", f"http://127.0.0.1:{ETCD_PEER_PORT}"
        return [
            "etcd",
            "--name",
            "platform",
            "--data-dir",
            str(self.home / "data"),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"platform={peer}",
        ]

    def up(self) -> None:
        ensure_packages({"etcd": "etcd-server"})
        self.home.mkdir(parents=True, exist_ok=True)
        self.start()
        import etcd_auth

        with start_lock("etcd-auth"):  # two `infra up` at once would both add the missing users
            try:
                changes = etcd_auth.secure(f"http://127.0.0.1:{self.port}")
            except etcd_auth.EtcdAuthSetupError as exc:
                raise InfraError(str(exc)) from None
        for change in changes:
            say(f"etcd auth: {change}")


# nginx's JavaScript module (njs): the gateway checks Binance's SIGNED requests with it (infra/nginx/binance.js).
NJS_MODULE = "/usr/lib/nginx/modules/ngx_http_js_module.so"


class Gateway:
    """nginx as the API gateway on 127.0.0.1:<port>; its upstreams follow the etcd registry.

    The real platform's listens on PLATFORM_GATEWAY_PORT (8000) from .run/nginx/; a run namespace's on a port
    of its own from .run/ns/<ns>/nginx/, following only its namespace's registry.
    """

    name = "gateway"

    def __init__(self, ns: str | None = None, port: int | None = None) -> None:
        self.home = gateway_home(ns)
        self.port = port or gateway_port()
        self.conf = self.home / "nginx.conf"
        self.pidfile = self.home / "nginx.pid"

    def _nginx(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["nginx", "-c", str(self.conf), "-p", str(self.home), *args],
            check=False,
            capture_output=True,
            text=True,
            env=daemon_env(),
        )

    def running(self) -> bool:
        return read_pid(self.pidfile) is not None and port_open(self.port)

    def up(self) -> None:
        ensure_packages({"nginx": "nginx", NJS_MODULE: "libnginx-mod-http-js"})
        import gateway

        self.home.mkdir(parents=True, exist_ok=True)
        if self.running():
            return  # its upstreams belong to the watcher: never reset them here
        # The routes; upstreams stay as last rendered (or empty on a first start).
        gateway.render(None, home=self.home, port=self.port)
        if port_open(self.port):
            raise InfraError(f"port {self.port} is taken; set PLATFORM_GATEWAY_PORT to a free one")
        say(f"starting the nginx gateway on 127.0.0.1:{self.port}")
        result = self._nginx()
        if result.returncode != 0:
            raise InfraError(f"nginx did not start: {result.stderr.strip()}")
        wait_for(lambda: port_open(self.port), what="nginx", timeout=20, log=self.home / "error.log")

    def reload(self) -> None:
        result = self._nginx("-s", "reload")
        if result.returncode != 0:
            raise InfraError(f"nginx reload failed: {result.stderr.strip()}")

    def down(self) -> None:
        pid = read_pid(self.pidfile)
        if pid:
            say("stopping the nginx gateway")
            stop_pid(pid)

    def status(self) -> str:
        return f"127.0.0.1:{self.port}" if self.running() else "stopped"


def components() -> list[Postgres | Redis | Kafka | Zipkin | Etcd | Gateway]:
    return [Postgres(), Redis(), Kafka(), Zipkin(), Etcd(), Gateway()]


def main(argv: list[str]) -> int:
    """`python infra/components.py up|down|status`: the same as `manage_all.py infra ...` minus topics."""
    action = argv[0] if argv else "status"
    for component in components():
        if action == "up":
            component.up()
        elif action == "down":
            component.down()
        print(f"{component.name:10} {component.status()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
