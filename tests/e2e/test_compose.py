"""compose.yaml and the Dockerfile checked against the code, since Docker cannot run where the tests do.

Every fact a container relies on (directories, commands, variables, databases, hosts, dependencies,
images) is read from the files and compared with what the code and infra/ say, so either side drifting
fails here.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import shlex
import subprocess
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml

from common.settings import service_settings
from tests.e2e.conftest import ROOT, manage_all

infra = manage_all.infra
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()

# What every Django process must be told in a container: the code's defaults point at 127.0.0.1.
REQUIRED_DJANGO_ENV = {
    "DATABASE_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "REDIS_URL",
    "PLATFORM_ENV",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
}
OFFICIAL_IMAGES = {"apache/kafka", "postgres", "redis"}
HOST_SPECIFIC_KAFKA_PROPERTIES = {"listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"}
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


def command(name: str) -> list[str]:
    cmd = SERVICES[name].get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def environment(name: str) -> dict[str, str]:
    env = SERVICES[name].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def depends_on(name: str) -> dict[str, str]:
    deps = SERVICES[name].get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {target: spec.get("condition", "service_started") for target, spec in deps.items()}


def option(cmd: list[str], flag: str) -> str:
    assert flag in cmd, f"{flag} missing from {cmd}"
    return cmd[cmd.index(flag) + 1]


def without_option(cmd: list[str], flag: str) -> list[str]:
    i = cmd.index(flag)
    return cmd[:i] + cmd[i + 2 :]


def healthcheck_text(name: str) -> str:
    test = SERVICES[name].get("healthcheck", {}).get("test", [])
    return resolve(test if isinstance(test, str) else " ".join(str(part) for part in test))


def is_one_shot(name: str) -> bool:
    return SERVICES[name].get("restart") == "no"


def app_root() -> PurePosixPath:
    """Where the Dockerfile copies the repository: its WORKDIR when copied to `.` or `./`."""
    workdir = PurePosixPath(re.findall(r"^WORKDIR\s+(\S+)", DOCKERFILE, re.M)[-1])
    (dest,) = re.findall(r"^COPY\s+\.\s+(\S+)\s*$", DOCKERFILE, re.M)
    return workdir / dest if not dest.startswith("/") else PurePosixPath(dest)


def built(name: str) -> bool:
    return "build" in SERVICES[name]


def code_dir(name: str) -> Path:
    """The repository folder a service built from our image runs in (its working_dir, mapped back)."""
    working_dir = PurePosixPath(SERVICES[name]["working_dir"])
    return ROOT.joinpath(*working_dir.relative_to(app_root()).parts)


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


def _reads_environment(func: ast.AST) -> bool:
    """env("X"), env.<cast>("X") (django-environ), os.getenv("X"), os.environ.get / .setdefault("X")."""
    if isinstance(func, ast.Name):
        return func.id in {"env", "getenv"}
    if not isinstance(func, ast.Attribute):
        return False
    if isinstance(func.value, ast.Name) and func.value.id == "env":
        return True
    return func.attr == "getenv" or (func.attr in {"get", "setdefault"} and _is_os_environ(func.value))


def _variable_read(node: ast.AST) -> str | None:
    """The name of the environment variable this node reads, when it is a literal."""
    if isinstance(node, ast.Subscript) and _is_os_environ(node.value):
        key = node.slice
    elif isinstance(node, ast.Call) and node.args and _reads_environment(node.func):
        key = node.args[0]
    else:
        return None
    return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None


@functools.cache
def variables_read_by_the_code() -> frozenset[str]:
    """Every environment variable common/ and the services read, tests and migrations aside."""
    names: set[str] = set()
    for base in (ROOT / "common", *(ROOT / svc for svc in manage_all.SERVICES)):
        for path in base.rglob("*.py"):
            if {"tests", "testing", "migrations"} & set(path.relative_to(ROOT).parts):
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            names.update(name for node in ast.walk(tree) if (name := _variable_read(node)))
    return frozenset(names)


@functools.cache
def management_commands(svc: str) -> frozenset[str]:
    """Every command `manage.py` of this service offers: Django's, its apps' and common's."""
    result = subprocess.run(
        [str(manage_all.PY), "manage.py", "help", "--commands"],
        cwd=ROOT / svc,
        env={**os.environ, **manage_all.service_env(svc)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return frozenset(result.stdout.split())


def kafka_properties() -> dict[str, str]:
    lines = (ROOT / "infra" / "kafka" / "server.properties").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def kafka_env_name(prop: str) -> str:
    """The apache/kafka image's mapping: `_` -> `__`, `-` -> `___`, `.` -> `_`, upper case, KAFKA_ prefix."""
    return "KAFKA_" + prop.replace("_", "__").replace("-", "___").replace(".", "_").upper()


def kafka_service() -> str:
    (name,) = [n for n, s in SERVICES.items() if str(s.get("image", "")).startswith("apache/kafka:")]
    return name


def topic_init_service() -> str:
    (name,) = [n for n in SERVICES if command(n)[:3] == ["python", "-m", "common.kafka"]]
    return name


def postgres_services() -> dict[str, dict[str, str]]:
    return {
        name: {key: resolve(value) for key, value in environment(name).items()}
        for name, spec in SERVICES.items()
        if str(spec.get("image", "")).startswith("postgres:")
    }


# --- the tests ----------------------------------------------------------------------------------------------


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


@pytest.mark.parametrize("svc", manage_all.SERVICES)
def test_processes_run_the_commands_of_the_process_table(svc):
    table = {proc.name: [Path(proc.command[0]).name, *proc.command[1:]] for proc in manage_all.process_table()}

    web = command(one_process(svc, "web"))
    beat = command(one_process(svc, "beat"))

    assert without_option(web, "--bind") == without_option(table[f"{svc}_web"], "--bind")
    assert command(one_process(svc, "worker")) == table[f"{svc}_worker"]
    assert without_option(beat, "--schedule") == without_option(table[f"{svc}_beat"], "--schedule")


@pytest.mark.parametrize("svc", manage_all.SERVICES)
def test_gunicorn_and_celery_load_modules_the_service_has(svc):
    web = command(one_process(svc, "web"))
    worker = command(one_process(svc, "worker"))
    module, _, attribute = web[1].partition(":")

    wsgi = ROOT / svc / Path(*module.split(".")).with_suffix(".py")
    assert wsgi.is_file() and f"{attribute} = " in wsgi.read_text()
    assert option(worker, "-A") == svc
    assert f'make_celery_app("{svc}")' in (ROOT / svc / svc / "celery.py").read_text()
    queue = service_settings(name=svc, base_dir=ROOT / svc, apps=[])["CELERY_TASK_DEFAULT_QUEUE"]
    assert option(worker, "-Q") == queue


@pytest.mark.parametrize("svc", manage_all.SERVICES)
def test_web_is_published_where_manage_all_up_serves_it_and_checked_on_its_readiness_url(svc):
    name = one_process(svc, "web")
    port = option(command(name), "--bind").rsplit(":", 1)[1]

    assert SERVICES[name]["ports"] == [f"127.0.0.1:{manage_all.WEB_PORTS[svc]}:{port}"]
    url = re.search(r"http://127\.0\.0\.1:(\d+)/(\w+)", healthcheck_text(name))
    assert url and url.group(1) == port
    assert f'path("{url.group(2)}", health.' in (ROOT / "common" / "urls.py").read_text()


@pytest.mark.parametrize("svc", manage_all.SERVICES)
def test_worker_healthcheck_pings_the_node_name_the_worker_takes(svc):
    name = one_process(svc, "worker")
    node = option(command(name), "--hostname").replace("%h", "$HOSTNAME")

    check = healthcheck_text(name)

    assert f"celery -A {svc} inspect ping" in check
    assert f"--destination {node}" in check


def test_every_database_and_role_is_the_one_infra_components_creates():
    databases = postgres_services()

    assert {(env["POSTGRES_USER"], env["POSTGRES_DB"]) for env in databases.values()} == set(infra.DATABASES.items())
    for svc in manage_all.SERVICES:
        for of_kind in ("migrate", "web", "worker", "beat"):
            url = urlsplit(resolve(environment(one_process(svc, of_kind))["DATABASE_URL"]))
            server = databases[url.hostname]
            assert url.scheme in {"postgres", "postgresql"}
            assert (url.username, url.path.lstrip("/"), url.port) == (svc, infra.DATABASES[svc], 5432)
            assert url.password == server["POSTGRES_PASSWORD"]
            assert (server["POSTGRES_USER"], server["POSTGRES_DB"]) == (svc, infra.DATABASES[svc])


def test_each_service_has_a_database_server_of_its_own():
    hosts = [host_of(svc) for svc in manage_all.SERVICES]

    assert len(set(hosts)) == len(manage_all.SERVICES) == len(postgres_services())


def test_the_variable_scan_finds_what_common_settings_reads():
    # Guards the scan itself: if it found nothing, the next test would pass for the wrong reason.
    assert REQUIRED_DJANGO_ENV | {"DJANGO_DEBUG", "LOG_LEVEL"} <= variables_read_by_the_code()


@pytest.mark.parametrize("name", sorted(django_processes()))
def test_django_processes_set_only_variables_the_code_reads_and_every_one_it_needs(name):
    env = environment(name)

    assert set(env) <= variables_read_by_the_code(), set(env) - variables_read_by_the_code()
    assert set(env) >= REQUIRED_DJANGO_ENV, REQUIRED_DJANGO_ENV - set(env)


@pytest.mark.parametrize("name", sorted(django_processes()))
def test_the_secret_key_is_required_from_the_environment_never_written_in_the_file(name):
    assert re.fullmatch(r"\$\{DJANGO_SECRET_KEY:\?[^}]+\}", str(environment(name)["DJANGO_SECRET_KEY"]))


@pytest.mark.parametrize("name", sorted(django_processes()))
def test_kafka_and_redis_urls_name_services_compose_runs(name):
    env = {key: resolve(value) for key, value in environment(name).items()}
    kafka = environment(kafka_service())
    redis_url = urlsplit(env["REDIS_URL"])

    for server in env["KAFKA_BOOTSTRAP_SERVERS"].split(","):
        assert server.rsplit(":", 1)[0] in SERVICES
        assert f"//{server}" in kafka["KAFKA_ADVERTISED_LISTENERS"], f"{server} is not advertised by Kafka"
    assert str(SERVICES[redis_url.hostname]["image"]).startswith("redis:")
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
def test_service_processes_wait_for_their_database_migrations_broker_and_topics(svc):
    migrate = one_process(svc, "migrate")
    database = host_of(svc)

    assert depends_on(migrate) == {database: "service_healthy"}
    for of_kind in ("web", "worker", "beat"):
        deps = depends_on(one_process(svc, of_kind))
        assert deps[database] == "service_healthy"
        assert deps[migrate] == "service_completed_successfully"
        assert deps[topic_init_service()] == "service_completed_successfully"
        assert deps[kafka_service()] == "service_healthy"
        assert deps[urlsplit(resolve(environment(migrate)["REDIS_URL"])).hostname] == "service_healthy"


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

    assert SERVICES[name]["image"] == f"apache/kafka:{version}"
    for prop, value in kafka_properties().items():
        if prop in HOST_SPECIFIC_KAFKA_PROPERTIES:
            continue
        expected = value.replace("{partitions}", partitions)
        assert str(env.get(kafka_env_name(prop))) == expected, f"{prop}: server.properties has {value}"


def test_images_are_official_and_pinned():
    pulled = {name: str(spec["image"]) for name, spec in SERVICES.items() if not built(name)}

    assert pulled
    for name, image in pulled.items():
        repository, _, tag = image.partition(":")
        assert repository in OFFICIAL_IMAGES, f"{name}: {image} is not an official image"
        assert tag and tag != "latest", f"{name}: {image} has no pinned tag"
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


def test_dockerignore_keeps_host_state_and_secrets_out_of_the_image():
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}

    assert {".git", ".venv", ".run", ".env"} <= ignored


def test_readme_documents_every_variable_the_code_reads():
    readme = (ROOT / "README.md").read_text()

    undocumented = {name for name in variables_read_by_the_code() if f"`{name}`" not in readme}

    assert not undocumented, f"add these to README.md, Configuration: {sorted(undocumented)}"
