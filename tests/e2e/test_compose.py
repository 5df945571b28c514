"""compose.yaml and the Dockerfile checked against the code, since Docker cannot run where the tests do.

Every fact a container relies on (directories, commands, variables, databases, hosts, dependencies, images,
volumes, the gateway's adapted configuration) is read from the files and compared with what the code and
infra/ say, so either side drifting fails here. The one Docker-specific piece that can be run here, the sed
that adapts the watcher's rendered nginx configuration to the nginx container, is run and checked by `nginx -t`.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography.fernet import Fernet

from common.settings import service_settings
from common.tracing import DEFAULT_ZIPKIN_ENDPOINT
from tests.e2e.conftest import ROOT, manage_all
from tests.e2e.system import in_namespace

infra = manage_all.infra
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
GATEWAY_PY = ROOT / "infra" / "gateway.py"
PROCESS_CHECK = ROOT / "infra" / "docker" / "running.py"

# What every Django process must be told in a container: the code's defaults point at 127.0.0.1.
REQUIRED_DJANGO_ENV = {
    "DATABASE_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "REDIS_URL",
    "PLATFORM_ENV",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "PLATFORM_SERVICE",
    "ETCD_URL",
    "ZIPKIN_ENDPOINT",
    "JWT_PUBLIC_KEY_FILE",
}
# Variables manage_all.service_env() sets that a container gets elsewhere (checked in the test that uses this).
SET_OUTSIDE_COMPOSE = {"DJANGO_SETTINGS_MODULE", "PYTHONUNBUFFERED"}
# Images pulled as they are, from the projects that publish them.
OFFICIAL_IMAGES = {"apache/kafka", "postgres", "redis", "nginx", "openzipkin/zipkin", "gcr.io/etcd-development/etcd"}
HOST_SPECIFIC_KAFKA_PROPERTIES = {"listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"}
# Options of the process table that name this machine (ports, files under .run/): a container has its own.
HOST_SPECIFIC_OPTIONS = ("--bind", "--schedule")
# Reads NAME, or the file NAME_FILE (common/settings.py): the scan cannot see the second name as a literal.
PEM_KEY_READERS = {"read_pem_key"}
_INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


# --- reading compose.yaml ---------------------------------------------------------------------------------


def resolve(value: object) -> str:
    """The value compose would use with none of the variables set: defaults applied, `$$` unescaped."""

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        if operator and operator.endswith("-"):
            return argument
        if operator and operator.endswith("?"):
            return f"<required {name}>"
        return ""

    return _INTERPOLATION.sub(substitute, str(value))


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [resolve(part) for part in value]


def command(name: str) -> list[str]:
    return _as_list(SERVICES[name].get("command"))


def entrypoint(name: str) -> list[str]:
    return _as_list(SERVICES[name].get("entrypoint"))


def environment(name: str) -> dict[str, str]:
    env = SERVICES[name].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def resolved_environment(name: str) -> dict[str, str]:
    return {key: resolve(value) for key, value in environment(name).items()}


def depends_on(name: str) -> dict[str, str]:
    deps = SERVICES[name].get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {target: spec.get("condition", "service_started") for target, spec in deps.items()}


def mounts(name: str) -> dict[str, tuple[str, bool]]:
    """Container path -> (volume or host path, read-only) of every mount of a service (short syntax)."""
    result = {}
    for spec in SERVICES[name].get("volumes", []):
        source, target, *mode = str(spec).split(":")
        result[target] = (source, mode == ["ro"])
    return result


def published(name: str) -> list[str]:
    return [str(port) for port in SERVICES[name].get("ports", [])]


def option(cmd: list[str], flag: str) -> str:
    assert flag in cmd, f"{flag} missing from {cmd}"
    return cmd[cmd.index(flag) + 1]


def without_option(cmd: list[str], flag: str) -> list[str]:
    if flag not in cmd:
        return cmd
    i = cmd.index(flag)
    return cmd[:i] + cmd[i + 2 :]


def without_host_specific_options(cmd: list[str]) -> list[str]:
    for flag in HOST_SPECIFIC_OPTIONS:
        cmd = without_option(cmd, flag)
    return cmd


def healthcheck_test(name: str) -> list[str]:
    test = SERVICES[name].get("healthcheck", {}).get("test", [])
    return [resolve(test)] if isinstance(test, str) else [resolve(part) for part in test]


def healthcheck_text(name: str) -> str:
    return " ".join(healthcheck_test(name))


def is_one_shot(name: str) -> bool:
    return SERVICES[name].get("restart") == "no"


def image_of(name: str) -> str:
    return str(SERVICES[name].get("image", ""))


def pulled_service(repository: str) -> str:
    """The one service running an image of this repository, pulled as it is."""
    (name,) = [n for n in SERVICES if not built(n) and image_of(n).partition(":")[0] == repository]
    return name


def app_root() -> PurePosixPath:
    """Where the Dockerfile copies the repository: its WORKDIR when copied to `.` or `./`."""
    workdir = PurePosixPath(re.findall(r"^WORKDIR\s+(\S+)", DOCKERFILE, re.M)[-1])
    (dest,) = re.findall(r"^COPY\s+\.\s+(\S+)\s*$", DOCKERFILE, re.M)
    return workdir / dest if not dest.startswith("/") else PurePosixPath(dest)


def in_repo(container_path: str) -> Path:
    """The repository file a path inside our image is (the image holds a copy of the repository)."""
    return ROOT.joinpath(*PurePosixPath(container_path).relative_to(app_root()).parts)


def built(name: str) -> bool:
    return "build" in SERVICES[name]


def code_dir(name: str) -> Path:
    """The repository folder a service built from our image runs in (its working_dir, mapped back)."""
    return in_repo(SERVICES[name]["working_dir"])


def long_running_built() -> list[str]:
    return [name for name in SERVICES if built(name) and not is_one_shot(name)]


def django_processes() -> dict[str, str]:
    """compose service -> platform service, for every process that runs in a service's directory."""
    return {
        name: code_dir(name).name
        for name in SERVICES
        if built(name) and code_dir(name).parent == ROOT and code_dir(name).name in manage_all.SERVICES
    }


def kind(name: str) -> str:
    cmd = command(name)
    if cmd and cmd[0] == "gunicorn":
        return "web"
    if cmd[:1] == ["celery"] and len(cmd) > 3:
        return cmd[3]  # celery -A <app> worker|beat
    if cmd[:2] == ["python", "manage.py"]:
        return cmd[2]
    return "other"


def processes_of(svc: str, of_kind: str) -> list[str]:
    return [name for name, owner in django_processes().items() if owner == svc and kind(name) == of_kind]


def one_process(svc: str, of_kind: str) -> str:
    names = processes_of(svc, of_kind)
    assert len(names) == 1, f"{svc} should have exactly one {of_kind} process in compose.yaml, has {names}"
    return names[0]


def host_of(svc: str) -> str:
    return urlsplit(resolve(environment(one_process(svc, "web"))["DATABASE_URL"])).hostname


# --- reading the code ---------------------------------------------------------------------------------------


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _environ_readers(tree: ast.AST) -> set[str]:
    """Names that read the environment when called: django-environ's `env` and any `x = environ.Env()`."""
    readers = {"env", "getenv"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if (isinstance(func, ast.Attribute) and func.attr == "Env") or (
                isinstance(func, ast.Name) and func.id == "Env"
            ):
                readers.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return readers


def _reads_environment(func: ast.AST, readers: set[str]) -> bool:
    """env("X"), env.<cast>("X") (django-environ), os.getenv("X"), os.environ.get / .setdefault("X")."""
    if isinstance(func, ast.Name):
        return func.id in readers
    if not isinstance(func, ast.Attribute):
        return False
    if isinstance(func.value, ast.Name) and func.value.id in readers:
        return True
    return func.attr == "getenv" or (func.attr in {"get", "setdefault"} and _is_os_environ(func.value))


def _literal(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _variables_read(node: ast.AST, readers: set[str]) -> list[str]:
    """The names of the environment variables this node reads, when they are literals."""
    if isinstance(node, ast.Subscript) and _is_os_environ(node.value):
        return [name] if (name := _literal(node.slice)) else []
    if not (isinstance(node, ast.Call) and node.args):
        return []
    name = _literal(node.args[0])
    if name is None:
        return []
    if _reads_environment(node.func, readers):
        return [name]
    callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
    return [name, f"{name}_FILE"] if callee in PEM_KEY_READERS else []


def variables_read_in(paths: list[Path]) -> frozenset[str]:
    names: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        readers = _environ_readers(tree)
        for node in ast.walk(tree):
            names.update(_variables_read(node, readers))
    return frozenset(names)


@functools.cache
def variables_read_by_the_code() -> frozenset[str]:
    """Every environment variable common/ and the services read, tests and migrations aside."""
    paths = [
        path
        for base in (ROOT / "common", *(ROOT / svc for svc in manage_all.SERVICES))
        for path in base.rglob("*.py")
        if not {"tests", "testing", "migrations"} & set(path.relative_to(ROOT).parts)
    ]
    return variables_read_in(paths)


@functools.cache
def variables_read_by_the_supervisor() -> frozenset[str]:
    """What manage_all.py and infra/ (the local infrastructure, the gateway) read, with the one module of common/
    they import (the run namespace)."""
    paths = [ROOT / "manage_all.py", ROOT / "common" / "namespace.py", *sorted((ROOT / "infra").rglob("*.py"))]
    return variables_read_in(paths)


def _manage(svc: str, *args: str) -> str:
    result = subprocess.run(
        [str(manage_all.PY), "manage.py", *args],
        cwd=ROOT / svc,
        env={**os.environ, **manage_all.service_env(svc)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@functools.cache
def management_commands(svc: str) -> frozenset[str]:
    """Every command `manage.py` of this service offers: Django's, its apps' and common's."""
    return frozenset(_manage(svc, "help", "--commands").split())


@functools.cache
def declared_consumers(svc: str) -> frozenset[str]:
    """The consumer names this service declares (`manage.py consume` with no name lists them)."""
    return frozenset(line.split(":", 1)[0] for line in _manage(svc, "consume").splitlines() if ":" in line)


def table_command(proc: manage_all.Process) -> list[str]:
    """A process-table command as a container runs it: programs by name (on PATH), paths relative to its folder."""
    parts = without_host_specific_options(proc.command)
    return [Path(parts[0]).name] + [
        str(Path(part).relative_to(proc.cwd)) if Path(part).is_absolute() and Path(part).is_relative_to(ROOT) else part
        for part in parts[1:]
    ]


def running_compose_service(proc: manage_all.Process) -> list[str]:
    """The long-running compose services built here that run this process of the table."""
    return [
        name
        for name in long_running_built()
        if code_dir(name) == proc.cwd and without_host_specific_options(command(name)) == table_command(proc)
    ]


def kafka_properties() -> dict[str, str]:
    lines = (ROOT / "infra" / "kafka" / "server.properties").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def kafka_env_name(prop: str) -> str:
    """The apache/kafka image's mapping: `_` -> `__`, `-` -> `___`, `.` -> `_`, upper case, KAFKA_ prefix."""
    return "KAFKA_" + prop.replace("_", "__").replace("-", "___").replace(".", "_").upper()


def kafka_service() -> str:
    return pulled_service("apache/kafka")


def topic_init_service() -> str:
    (name,) = [n for n in SERVICES if command(n)[:3] == ["python", "-m", "common.kafka"]]
    return name


def key_init_service() -> str:
    (name,) = [n for n in SERVICES if built(n) and "common.jwt_keys" in " ".join(command(n))]
    return name


def etcd_service() -> str:
    return pulled_service("gcr.io/etcd-development/etcd")


def zipkin_service() -> str:
    return pulled_service("openzipkin/zipkin")


def nginx_service() -> str:
    return pulled_service("nginx")


def watcher_service() -> str:
    (proc,) = [p for p in manage_all.process_table() if p.name == "gateway_watcher"]
    (name,) = running_compose_service(proc)
    return name


def etcd_client_port() -> int:
    return urlsplit(option(command(etcd_service()), "--listen-client-urls").split(",")[0]).port


def gateway_script() -> str:
    """The nginx container's shell loop (`sh -c <script>`)."""
    cmd = command(nginx_service())
    assert cmd[:2] == ["sh", "-c"], cmd
    return cmd[2]


def gateway_container_port() -> int:
    return int(resolved_environment(watcher_service()).get("PLATFORM_GATEWAY_PORT", infra.GATEWAY_PORT))


def postgres_services() -> dict[str, dict[str, str]]:
    return {
        name: resolved_environment(name) for name, spec in SERVICES.items() if image_of(name).startswith("postgres:")
    }


# --- the tests: images, folders, commands -----------------------------------------------------------------------


def test_every_image_built_here_uses_the_dockerfile_and_runs_in_a_folder_of_the_repo():
    ours = [name for name in SERVICES if built(name)]

    assert ours
    for name in ours:
        build = SERVICES[name]["build"]
        assert (ROOT / build["context"]).resolve() == ROOT, name
        assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).is_file(), name
        assert code_dir(name).is_dir(), f"{name}: working_dir {SERVICES[name]['working_dir']} is not in the repo"
    for name, svc in django_processes().items():
        assert (ROOT / svc / "manage.py").is_file(), name
        assert (ROOT / svc / svc / "wsgi.py").is_file(), name


@pytest.mark.parametrize("svc", manage_all.SERVICES)
def test_each_service_has_its_migration_web_worker_and_beat(svc):
    for of_kind in ("migrate", "web", "worker", "beat"):
        one_process(svc, of_kind)


@pytest.mark.parametrize("proc", manage_all.process_table(), ids=lambda proc: proc.name)
def test_every_process_of_the_process_table_runs_in_compose(proc):
    # Web, worker, beat, every consumer, the feed and the gateway watcher: the same command in the same folder.
    names = running_compose_service(proc)

    assert len(names) == 1, f"{proc.name}: {table_command(proc)} in {proc.cwd} should run in one service: {names}"


def test_compose_runs_no_long_running_process_the_table_does_not_have():
    table = manage_all.process_table()
    ours = {name for proc in table for name in running_compose_service(proc)}

    assert set(long_running_built()) == ours, set(long_running_built()) - ours


@pytest.mark.parametrize(("svc", "consumer"), manage_all.CONSUMERS)
def test_every_consumer_group_runs_in_its_service_and_exists_there(svc, consumer):
    # One process per service runs all its groups (`consume a b c`), as `up` does.
    names = [
        name
        for name in processes_of(svc, "consume")
        if command(name)[:3] == ["python", "manage.py", "consume"] and consumer in command(name)[3:]
    ]

    assert len(names) == 1, f"{svc}'s consumer {consumer} should run in one compose service, runs in {names}"
    assert consumer in declared_consumers(svc)


def test_the_market_data_feed_runs_in_analytics_svc_with_the_symbols_up_streams():
    (feed,) = [name for svc in manage_all.SERVICES for name in processes_of(svc, "stream_market_data")]
    cmd = command(feed)

    assert django_processes()[feed] == "analytics_svc"
    assert option(cmd, "--symbols").split(",") == manage_all.SYMBOLS
    assert option(cmd, "--source") == "simulate"


@pytest.mark.parametrize("svc", manage_all.SERVICES)
def test_gunicorn_and_celery_load_modules_the_service_has(svc):
    web = command(one_process(svc, "web"))
    worker = command(one_process(svc, "worker"))
    module, _, attribute = web[1].partition(":")
    config = option(web, "--config")

    wsgi = ROOT / svc / Path(*module.split(".")).with_suffix(".py")
    assert wsgi.is_file() and f"{attribute} = " in wsgi.read_text()
    assert config.startswith("python:")
    config_module = ROOT.joinpath(*config.removeprefix("python:").split(".")).with_suffix(".py")
    assert "def when_ready(" in config_module.read_text(), "the gunicorn config registers the instance"
    assert option(worker, "-A") == svc
    assert f'make_celery_app("{svc}")' in (ROOT / svc / svc / "celery.py").read_text()
    celery = service_settings(name=svc, base_dir=ROOT / svc, apps=[])
    relay_queue = celery["CELERY_TASK_ROUTES"]["common.outbox.tasks.relay_loop"]["queue"]
    # The service's queue and its relay loop's, in one threads-pool worker (the loop stops within a second there),
    # named by the settings alone (a -Q would have to follow the run namespace by hand).
    assert "-Q" not in worker
    assert [q.name for q in celery["CELERY_TASK_QUEUES"]] == [celery["CELERY_TASK_DEFAULT_QUEUE"], relay_queue]
    assert option(worker, "--pool") == "threads"


@pytest.mark.parametrize("svc", manage_all.SERVICES)
def test_web_is_published_where_manage_all_up_serves_it_and_checked_on_its_readiness_url(svc):
    name = one_process(svc, "web")
    host, port = option(command(name), "--bind").rsplit(":", 1)

    # Every interface of the container: the published port and the gateway reach it on the container's address.
    assert host == "0.0.0.0"  # noqa: S104 - inside a container, on purpose
    assert published(name) == [f"127.0.0.1:{manage_all.WEB_PORTS[svc]}:{port}"]
    url = re.search(r"http://127\.0\.0\.1:(\d+)/(\w+)", healthcheck_text(name))
    assert url and url.group(1) == port
    assert f'path("{url.group(2)}", health.' in (ROOT / "common" / "urls.py").read_text()


def test_only_127_0_0_1_is_published():
    for name in SERVICES:
        for port in published(name):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


@pytest.mark.parametrize("svc", manage_all.SERVICES)
def test_worker_healthcheck_pings_the_node_name_the_worker_takes(svc):
    name = one_process(svc, "worker")
    node = option(command(name), "--hostname").replace("%h", "$HOSTNAME")

    check = healthcheck_text(name)

    assert f"celery -A {svc} inspect ping" in check
    assert f"--destination {node}" in check


def process_checks() -> list[str]:
    """Services whose healthcheck is infra/docker/running.py (is the container's own process alive)."""
    return [name for name in SERVICES if str(app_root() / "infra/docker/running.py") in healthcheck_text(name)]


def test_consumers_the_feed_and_the_watcher_are_checked_for_their_own_process():
    checked = set(process_checks())

    assert {n for svc in manage_all.SERVICES for n in processes_of(svc, "consume")} <= checked
    assert {n for svc in manage_all.SERVICES for n in processes_of(svc, "stream_market_data")} <= checked
    assert watcher_service() in checked
    for name in checked:
        words = healthcheck_text(name).split()
        script = words.index(str(app_root() / "infra/docker/running.py"))
        wanted = words[script + 1 :]
        wanted = wanted[: wanted.index("&&")] if "&&" in wanted else wanted
        cmd = command(name)
        assert wanted and any(cmd[i : i + len(wanted)] == wanted for i in range(len(cmd))), (name, wanted, cmd)
        assert in_repo(words[script]).is_file()


def test_the_process_check_finds_a_live_process_and_not_itself():
    marker = f"{time.time():.6f}"
    sleeper = subprocess.Popen(["sleep", "30", marker])
    try:
        check = [sys.executable, str(PROCESS_CHECK)]
        assert subprocess.run([*check, "sleep", "30", marker], check=False).returncode == 0
        assert subprocess.run([*check, "sleep", "31", marker], check=False, capture_output=True).returncode == 1
    finally:
        sleeper.kill()
        sleeper.wait()


# --- databases, brokers, dependencies ----------------------------------------------------------------------------


def test_every_database_and_role_is_the_one_infra_components_creates():
    databases = postgres_services()

    assert {(env["POSTGRES_USER"], env["POSTGRES_DB"]) for env in databases.values()} == set(infra.DATABASES.items())
    for name, svc in django_processes().items():
        url = urlsplit(resolve(environment(name)["DATABASE_URL"]))
        server = databases[url.hostname]
        assert url.scheme in {"postgres", "postgresql"}
        assert (url.username, url.path.lstrip("/"), url.port) == (svc, infra.DATABASES[svc], 5432)
        assert url.password == server["POSTGRES_PASSWORD"]
        assert (server["POSTGRES_USER"], server["POSTGRES_DB"]) == (svc, infra.DATABASES[svc])


def test_each_service_has_a_database_server_of_its_own():
    hosts = [host_of(svc) for svc in manage_all.SERVICES]

    assert len(set(hosts)) == len(manage_all.SERVICES) == len(postgres_services())


def test_the_variable_scan_finds_what_the_settings_read():
    # Guards the scan itself: if it found nothing, the tests below would pass for the wrong reason.
    found = variables_read_by_the_code()

    assert REQUIRED_DJANGO_ENV | {"DJANGO_DEBUG", "LOG_LEVEL"} <= found
    assert {"TRACING_ENABLED", "DISCOVERY_TTL_S", "JWT_PRIVATE_KEY_FILE", "LOGIN_THROTTLE_WINDOW_S"} <= found
    assert {"ORDER_SAGA_TIMEOUT_S", "PORTFOLIO_STARTING_FUNDS", "CANDLES_CONSUMER_NAME"} <= found
    assert {"PLATFORM_RUN_DIR", "PLATFORM_GATEWAY_AUTH_RATE", "PLATFORM_ENV"} <= variables_read_by_the_supervisor()
    assert 'env.str(f"{name}_FILE"' in (ROOT / "common" / "settings.py").read_text(), "read_pem_key changed"


@pytest.mark.parametrize("name", sorted(django_processes()))
def test_django_processes_set_only_variables_the_code_reads_and_every_one_it_needs(name):
    env = environment(name)

    assert set(env) <= variables_read_by_the_code(), set(env) - variables_read_by_the_code()
    assert set(env) >= REQUIRED_DJANGO_ENV, REQUIRED_DJANGO_ENV - set(env)


@pytest.mark.parametrize("name", sorted(django_processes()))
def test_django_processes_get_every_variable_manage_all_gives_them(name):
    svc = django_processes()[name]
    with in_namespace(""):  # compose's default is the real platform's namespace, whichever this run has
        expected = manage_all.service_env(svc)
    env = resolved_environment(name)

    assert set(expected) - SET_OUTSIDE_COMPOSE <= set(env), set(expected) - SET_OUTSIDE_COMPOSE - set(env)
    assert env["PLATFORM_SERVICE"] == expected["PLATFORM_SERVICE"] == svc
    for key in set(expected) - SET_OUTSIDE_COMPOSE:
        if not re.search(r"127\.0\.0\.1|localhost|/\.run/", expected[key]):  # what names no place of this machine
            assert env[key] == expected[key], key
    # The two set outside compose: by the image, and by the code itself before Django starts.
    assert re.search(r"^ENV\s+PYTHONUNBUFFERED=1\b", DOCKERFILE, re.M)
    setdefault = f'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{svc}.settings")'
    assert setdefault in (ROOT / svc / "manage.py").read_text()
    assert setdefault in (ROOT / svc / svc / "wsgi.py").read_text()
    assert 'os.environ.setdefault("DJANGO_SETTINGS_MODULE"' in (ROOT / "common" / "celery_app.py").read_text()


def required_variable(value: object) -> str | None:
    """The variable a value is, when it is exactly one required variable (`${NAME:?message}`)."""
    match = re.fullmatch(r"\$\{(\w+):\?[^}]+\}", str(value))
    return match.group(1) if match else None


def required_in_url_password(url: object) -> str | None:
    match = re.fullmatch(r"[a-z]+://\w+:\$\{(\w+):\?[^}]+\}@[\w.-]+:\d+/\w+", str(url))
    return match.group(1) if match else None


@pytest.mark.parametrize("name", sorted(django_processes()))
def test_each_services_secrets_are_required_from_the_environment_and_its_own(name):
    svc = django_processes()[name]
    env = environment(name)
    own = svc.upper()

    # Never a value in the file, never one shared with another service (a leaked key opens one service only).
    assert required_variable(env["DJANGO_SECRET_KEY"]) == f"{own}_SECRET_KEY"
    assert required_variable(env["KAFKA_SASL_PASSWORD"]) == f"KAFKA_PASSWORD_{own}"
    assert required_in_url_password(env["DATABASE_URL"]) == f"{own}_DB_PASSWORD"
    assert ("API_KEY_ENCRYPTION_KEY" in env) == (svc == "user_svc")
    if svc == "user_svc":
        assert required_variable(env["API_KEY_ENCRYPTION_KEY"]) == "API_KEY_ENCRYPTION_KEY"


def test_the_database_servers_take_the_password_their_service_is_given():
    for name, svc in django_processes().items():
        server = SERVICES[host_of(svc)]["environment"]
        assert required_variable(server["POSTGRES_PASSWORD"]) == f"{svc.upper()}_DB_PASSWORD", name


def test_kafka_init_is_the_admin_and_gives_each_service_the_password_its_processes_log_in_with():
    init = environment(topic_init_service())
    broker = environment(kafka_service())
    admin = required_variable(init["KAFKA_ADMIN_PASSWORD"])

    assert admin == "KAFKA_ADMIN_PASSWORD"
    assert f'password="${{{admin}:?' in broker["KAFKA_LISTENER_NAME_BROKER_PLAIN_SASL_JAAS_CONFIG"]
    assert "KAFKA_PASSWORD_{principal.upper()}" in (ROOT / "common" / "kafka_auth.py").read_text()
    for name, svc in django_processes().items():
        given = required_variable(environment(name)["KAFKA_SASL_PASSWORD"])
        assert required_variable(init[f"KAFKA_PASSWORD_{svc.upper()}"]) == given, name
        assert resolved_environment(name).get("KAFKA_SASL_USERNAME", svc) == svc, "each service is its principal"
        assert resolved_environment(name)["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT", name


def test_the_env_file_script_makes_every_required_secret_once_privately(tmp_path):
    target = tmp_path / ".env"
    script = [sys.executable, str(ROOT / "infra" / "docker" / "env_file.py"), "--file", str(target)]
    required = sorted(set(re.findall(r"\$\{(\w+):\?", (ROOT / "compose.yaml").read_text())))

    subprocess.run(script, check=True, capture_output=True)
    first = dict(line.split("=", 1) for line in target.read_text().splitlines())
    target.write_text(target.read_text() + "LOG_LEVEL=DEBUG\n")
    del_one = required[0]
    target.write_text("".join(line + "\n" for line in target.read_text().splitlines() if not line.startswith(del_one)))
    subprocess.run(script, check=True, capture_output=True)
    second = dict(line.split("=", 1) for line in target.read_text().splitlines())

    assert sorted(first) == required
    assert target.stat().st_mode & 0o777 == 0o600
    assert len(set(first.values())) == len(first), "no two secrets alike"
    for name, value in first.items():
        assert re.fullmatch(r"[A-Za-z0-9_=-]{32,}", value), name  # URL-safe: passwords are parts of DATABASE_URL
    assert second["LOG_LEVEL"] == "DEBUG"
    assert {k: v for k, v in second.items() if k not in (del_one, "LOG_LEVEL")} == {
        k: v for k, v in first.items() if k != del_one
    }, "a second run keeps what is there"
    assert second[del_one] and second[del_one] != first[del_one]
    fernet = Fernet(first["API_KEY_ENCRYPTION_KEY"])  # raises unless it is a Fernet key
    assert fernet.decrypt(fernet.encrypt(b"secret")) == b"secret"


@pytest.mark.parametrize("name", sorted(django_processes()))
def test_kafka_and_redis_urls_name_services_compose_runs(name):
    env = resolved_environment(name)
    kafka = environment(kafka_service())
    redis_url = urlsplit(env["REDIS_URL"])

    for server in env["KAFKA_BOOTSTRAP_SERVERS"].split(","):
        assert server.rsplit(":", 1)[0] in SERVICES
        assert f"//{server}" in kafka["KAFKA_ADVERTISED_LISTENERS"], f"{server} is not advertised by Kafka"
    assert image_of(redis_url.hostname).startswith("redis:")
    assert redis_url.port == 6379


def test_depends_on_targets_exist_and_can_meet_their_condition():
    for name in SERVICES:
        for target, condition in depends_on(name).items():
            assert target in SERVICES, f"{name} depends on {target}, which compose does not define"
            if condition == "service_healthy":
                assert healthcheck_text(target), f"{name} waits for {target} to be healthy; it has no healthcheck"
            if condition == "service_completed_successfully":
                assert is_one_shot(target), f"{name} waits for {target} to complete; it restarts instead"


def test_every_long_running_process_has_a_healthcheck_and_every_one_shot_is_awaited():
    awaited = {
        target
        for name in SERVICES
        for target, condition in depends_on(name).items()
        if condition == "service_completed_successfully"
    }

    for name in SERVICES:
        if is_one_shot(name):
            assert name in awaited, f"nothing waits for the one-shot {name}"
            assert "healthcheck" not in SERVICES[name]
        else:
            assert healthcheck_text(name) and healthcheck_text(name) != "NONE", f"{name} has no healthcheck"


@pytest.mark.parametrize("svc", manage_all.SERVICES)
def test_service_processes_wait_for_their_database_migrations_broker_topics_and_keys(svc):
    migrate = one_process(svc, "migrate")
    database = host_of(svc)
    long_running = [name for name, owner in django_processes().items() if owner == svc and not is_one_shot(name)]

    # Settings read the JWT key file at start, so even migrations wait for the key one-shot.
    assert depends_on(migrate) == {database: "service_healthy", key_init_service(): "service_completed_successfully"}
    assert {kind(name) for name in long_running} >= {"web", "worker", "beat"}
    for name in long_running:
        deps = depends_on(name)
        assert deps[database] == "service_healthy", name
        assert deps[migrate] == "service_completed_successfully", name
        assert deps[topic_init_service()] == "service_completed_successfully", name
        assert deps[key_init_service()] == "service_completed_successfully", name
        assert deps[kafka_service()] == "service_healthy", name
        assert deps[urlsplit(resolve(environment(migrate)["REDIS_URL"])).hostname] == "service_healthy", name


@pytest.mark.parametrize("name", sorted(n for n in SERVICES if command(n)[:2] == ["python", "manage.py"]))
def test_management_commands_exist_in_the_service(name):
    svc = django_processes()[name]

    assert command(name)[2] in management_commands(svc)


def test_kafka_init_creates_the_topics_with_the_module_manage_all_uses():
    name = topic_init_service()
    cmd = command(name)
    help_text = subprocess.run(
        [str(manage_all.PY), "-m", "common.kafka", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    for flag in (part for part in cmd[3:] if part.startswith("--")):
        assert flag in help_text
    assert depends_on(name) == {kafka_service(): "service_healthy"}
    assert f"//{option(cmd, '--bootstrap')}" in environment(kafka_service())["KAFKA_ADVERTISED_LISTENERS"]
    assert int(option(cmd, "--partitions")) == int(environment(kafka_service())["KAFKA_NUM_PARTITIONS"])
    assert '"common.kafka"' in (ROOT / "manage_all.py").read_text()


def test_kafka_runs_the_local_brokers_version_and_configuration():
    pom = (ROOT / "infra" / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom).group(1)
    name = kafka_service()
    env = environment(name)
    partitions = option(command(topic_init_service()), "--partitions")

    assert image_of(name) == f"apache/kafka:{version}"
    for prop, value in kafka_properties().items():
        if prop in HOST_SPECIFIC_KAFKA_PROPERTIES:
            continue
        # The admin's password: infra/components.py fills it in locally, compose from a required variable.
        expected = re.escape(value.replace("{partitions}", partitions)).replace(
            re.escape("{admin_password}"), r"\$\{KAFKA_ADMIN_PASSWORD:\?[^}]+\}"
        )
        assert re.fullmatch(expected, str(env.get(kafka_env_name(prop)))), f"{prop}: server.properties has {value}"


# --- JWT keys ---------------------------------------------------------------------------------------------------


def test_the_key_pair_is_made_by_the_module_manage_all_uses_and_shared_as_the_code_expects():
    name = key_init_service()
    script = command(name)[-1]
    made = re.search(r"python -m common\.jwt_keys --dir (\S+)", script)
    copied = re.search(r"cp (\S+)/public\.pem (\S+)/public\.pem", script)

    assert command(name)[:2] == ["sh", "-c"] and made and copied
    private_dir, public_dir = made.group(1), copied.group(2)
    assert copied.group(1) == private_dir
    assert mounts(name)[private_dir][0] != mounts(name)[public_dir][0], "the public key has a volume of its own"
    assert '"common.jwt_keys"' in (ROOT / "manage_all.py").read_text()
    for process, svc in django_processes().items():
        env = resolved_environment(process)
        assert env["JWT_PUBLIC_KEY_FILE"] == f"{public_dir}/public.pem", process
        assert mounts(process)[public_dir] == (mounts(name)[public_dir][0], True), process
        signs = "JWT_PRIVATE_KEY_FILE" in manage_all.service_env(svc)
        assert ("JWT_PRIVATE_KEY_FILE" in env) == signs == (private_dir in mounts(process)), process
        if signs:
            assert env["JWT_PRIVATE_KEY_FILE"] == f"{private_dir}/private.pem"
            assert mounts(process)[private_dir] == (mounts(name)[private_dir][0], True)
    # A new named volume takes the owner of the image's folder: the Dockerfile gives both to the unprivileged user.
    assert private_dir in DOCKERFILE and public_dir in DOCKERFILE


# --- discovery and the gateway -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(n for n in django_processes() if kind(n) == "web"))
def test_web_instances_register_in_the_etcd_compose_runs_with_their_container_address(name):
    env = resolved_environment(name)
    etcd = urlsplit(env["ETCD_URL"])
    script = in_repo(entrypoint(name)[-1])

    assert etcd.hostname == etcd_service() and etcd.port == etcd_client_port()
    assert depends_on(name)[etcd_service()] == "service_healthy"
    assert entrypoint(name)[0] == "sh" and script.is_file()
    assert "export DISCOVERY_ADVERTISE_HOST" in script.read_text() and script.read_text().rstrip().endswith('"$@"')


def test_the_code_registers_the_address_a_container_advertises():
    # In a container gunicorn binds 0.0.0.0, and common/gunicorn_conf.py registers the bound address: the
    # gateway would call 0.0.0.0:8000, i.e. itself. The web entry point sets DISCOVERY_ADVERTISE_HOST to the
    # container's IP, and the code registers that instead (README, Running with Docker).
    assert "DISCOVERY_ADVERTISE_HOST" in variables_read_by_the_code()


def test_etcd_is_the_projects_image_of_the_3_5_series_and_checked_with_etcdctl():
    name = etcd_service()

    assert re.fullmatch(r"v3\.5\.\d+", image_of(name).partition(":")[2])
    assert "etcdctl" in healthcheck_text(name) and "endpoint health" in healthcheck_text(name)
    assert f"127.0.0.1:{etcd_client_port()}" in healthcheck_text(name)


def test_the_watcher_reaches_etcd_where_gateway_py_calls_it():
    name = watcher_service()
    env = resolved_environment(name)
    source = GATEWAY_PY.read_text()

    assert int(env["PLATFORM_ETCD_PORT"]) == etcd_client_port()
    assert "ETCD_URL" in variables_read_in([GATEWAY_PY]) and "ETCD_URL" in source
    assert urlsplit(env["ETCD_URL"]).hostname == etcd_service()
    assert urlsplit(env["ETCD_URL"]).port == etcd_client_port()
    assert depends_on(name) == {etcd_service(): "service_healthy"}
    assert set(env) <= variables_read_by_the_supervisor(), set(env) - variables_read_by_the_supervisor()


def test_the_watcher_and_nginx_share_the_rendered_files_where_both_look():
    watcher, nginx = watcher_service(), nginx_service()
    run_dir = resolved_environment(watcher)["PLATFORM_RUN_DIR"]
    script = gateway_script()

    assert mounts(watcher)[run_dir] == mounts(nginx)[run_dir] == (mounts(watcher)[run_dir][0], False)
    assert re.search(rf"^run={re.escape(run_dir)}$", script, re.M)
    assert "nginx.conf" in script and "upstreams.conf" in script and "nginx -t" in script and "kill -HUP" in script
    assert f"{run_dir}/nginx/upstreams.conf" in healthcheck_text(watcher)
    assert run_dir in DOCKERFILE, "the Dockerfile gives the volume's folder to the unprivileged user"
    assert depends_on(nginx) == {watcher: "service_healthy"}


def test_the_watcher_shares_the_swagger_ui_and_leaves_reloads_to_the_nginx_container():
    name = watcher_service()
    run_dir = resolved_environment(name)["PLATFORM_RUN_DIR"]
    script = in_repo(entrypoint(name)[-1])
    shim = script.parent / "bin" / "nginx"

    assert entrypoint(name)[0] == "sh" and script.is_file()
    assert '"$PLATFORM_RUN_DIR/swagger-ui"' in script.read_text() and "drf_spectacular_sidecar" in script.read_text()
    assert '/bin:$PATH"' in script.read_text() and script.read_text().rstrip().endswith('exec "$@"')
    assert shim.is_file() and os.access(shim, os.X_OK)
    assert f"alias {run_dir}/swagger-ui/;" in gateway_script()
    # The watcher calls `nginx ... -s reload` after a render; the shim stands in for that program.
    assert '"nginx"' in (ROOT / "infra" / "components.py").read_text()


def test_the_gateway_is_nginx_published_on_the_gateway_port_and_checked_on_its_health_url():
    name = nginx_service()
    port = gateway_container_port()

    assert published(name) == [f"127.0.0.1:{infra.GATEWAY_PORT}:{port}"]
    assert f"http://127.0.0.1:{port}/healthz" in healthcheck_text(name)
    assert "location = /healthz" in (ROOT / "infra" / "nginx" / "nginx.conf.template").read_text()


def test_the_rendered_gateway_configuration_adapted_for_the_container_is_valid_nginx(tmp_path):
    watcher = watcher_service()
    env = resolved_environment(watcher)
    run_dir = env["PLATFORM_RUN_DIR"]
    # The real renderer with the watcher's environment, into a folder of the test (nothing answers on the
    # container's etcd port here, so every upstream is the empty one, as on a first start).
    subprocess.run(
        [str(manage_all.PY), str(GATEWAY_PY), "render"],
        env={**os.environ, **env, "PLATFORM_RUN_DIR": str(tmp_path)},
        check=True,
        capture_output=True,
    )
    rendered = tmp_path / "nginx" / "nginx.conf"
    expressions = re.findall(r"-e '(s\|[^']*)'", gateway_script())
    adapted = subprocess.run(
        ["sed", *(arg for expr in expressions for arg in ("-e", expr)), str(rendered)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout

    assert len(expressions) >= 5
    listens = re.findall(r"^\s*listen\s+([^;]+);", adapted, re.M)
    assert listens == [str(gateway_container_port())], listens
    assert re.search(r"^daemon off;", adapted, re.M) and not re.search(r"^daemon on;", adapted, re.M)
    assert re.search(r"^error_log /dev/stderr\b", adapted, re.M)
    assert "access_log /dev/stdout platform;" in adapted
    assert f"alias {run_dir}/swagger-ui/;" in adapted
    for included in re.findall(r"^\s*include\s+([^;]+);", adapted, re.M):
        assert included == "/etc/nginx/mime.types" or Path(included).is_file(), included
    # `manage_all.py test` installs nginx (infra up) before any suite runs.
    assert shutil.which("nginx"), "nginx is missing: run `python3 manage_all.py infra up` (it installs it)"
    conf = tmp_path / "container.conf"
    conf.write_text(adapted)
    check = subprocess.run(["nginx", "-t", "-q", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


# --- tracing ----------------------------------------------------------------------------------------------------


def test_zipkin_runs_the_local_version_in_memory_and_answers_where_up_prints_it():
    pom = (ROOT / "infra" / "zipkin" / "pom.xml").read_text()
    version = re.search(r"<artifactId>zipkin-server</artifactId>\s*<version>([^<]+)</version>", pom).group(1)
    name = zipkin_service()
    env = resolved_environment(name)
    local = infra.Zipkin().environment()

    assert image_of(name) == f"openzipkin/zipkin:{version}"
    assert {key: value for key, value in local.items() if key != "QUERY_PORT"} == {
        key: env.get(key) for key in local if key != "QUERY_PORT"
    }
    assert "QUERY_PORT" not in env, "the image's port (9411) is the one every process exports to"
    try:
        java = infra.Zipkin().command()
    except StopIteration:  # no jar fetched here: nothing to compare the heap with
        java = None
    if java:
        assert env["JAVA_OPTS"].split() == java[1 : java.index("-jar")], "the JVM options of the local Zipkin"
    assert published(name) == [f"127.0.0.1:{infra.ZIPKIN_PORT}:9411"]
    assert "http://127.0.0.1:9411/health" in healthcheck_text(name)


@pytest.mark.parametrize("name", sorted(django_processes()))
def test_every_django_process_exports_its_spans_to_the_zipkin_compose_runs(name):
    endpoint = urlsplit(resolved_environment(name)["ZIPKIN_ENDPOINT"])

    assert (endpoint.hostname, endpoint.port) == (zipkin_service(), 9411)
    assert endpoint.path == urlsplit(DEFAULT_ZIPKIN_ENDPOINT).path


# --- images, Dockerfile, README ------------------------------------------------------------------------------


def test_images_are_official_and_pinned():
    pulled = {name: image_of(name) for name in SERVICES if not built(name)}

    assert pulled
    for name, image in pulled.items():
        repository, _, tag = image.rpartition(":") if image.count(":") else (image, "", "")
        assert repository in OFFICIAL_IMAGES, f"{name}: {image} is not an official image"
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image} has no pinned tag"
    assert {image for image in pulled.values() if image.startswith("postgres:")} == {"postgres:15-alpine"}
    assert any(image.startswith("redis:") for image in pulled.values())


def test_dockerfile_installs_the_pinned_set_and_common_on_python_3_11_slim():
    instructions = [line.strip() for line in DOCKERFILE.splitlines() if line.strip() and not line.startswith("#")]

    assert re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.M) == ["python:3.11-slim"]
    assert "['project']['dependencies']" in DOCKERFILE and "pip install -r" in DOCKERFILE
    assert "pip install -e common" in DOCKERFILE
    assert not re.search(r"\b(curl|wget|git clone)\b|^ADD\s+https?:", DOCKERFILE, re.M)
    assert any(line.startswith("USER ") for line in instructions), "processes should not run as root"
    assert str(app_root()).startswith("/")


def test_dockerignore_keeps_host_state_and_secrets_out_of_the_image_and_the_container_scripts_in():
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}

    assert {".git", ".venv", ".run", ".env"} <= ignored
    assert not {"infra", "infra/docker", "infra/docker/*"} & ignored


def test_readme_documents_every_variable_the_code_reads():
    readme = (ROOT / "README.md").read_text()
    variables = variables_read_by_the_code() | variables_read_by_the_supervisor()

    undocumented = {name for name in variables if f"`{name}`" not in readme}

    assert not undocumented, f"add these to README.md, Configuration: {sorted(undocumented)}"


def test_readme_names_every_compose_service_but_the_per_service_web_worker_beat_and_migrate():
    readme = (ROOT / "README.md").read_text()
    generic = {name for name in django_processes() if kind(name) in {"web", "worker", "beat", "migrate"}}

    unnamed = {name for name in SERVICES if name not in generic and f"`{name}`" not in readme}

    assert not unnamed, f"README.md, Running with Docker, does not name: {sorted(unnamed)}"
