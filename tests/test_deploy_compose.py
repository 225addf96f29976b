"""The Docker Compose deployment (deploy/): its structure against the code it runs.

The compose file, deploy/.env.example and deploy/Dockerfile are read as data and checked against
the platform itself: the CLI's commands, the FastAPI app's routes and request bodies, the settings
tree. A setting added to settings.py and missing from .env.example, a renamed hook route, or a
command the CLI does not know fails here. ``docker compose config`` runs too when Docker's compose
plugin is installed. The container health check script (deploy/healthcheck.py) is run against
real sockets, processes and an HTTP server.
"""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel, SecretStr, TypeAdapter

from factoryops.core.settings import HttpSettings, MqttSettings, Settings
from factoryops.devices.service import telemetry_topic
from factoryops.entrypoints.cli import build_parser, main
from support import free_port

pytestmark = pytest.mark.nodb

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"

ONE_SHOT = {"migrate", "minio-init"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|COOKIE|ACCESS_KEY")
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
ONLY_A_VARIABLE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*(?::?[-?][^}]*)?\}$")


# ---------------------------------------------------------------- reading the files


def setting_variables() -> dict[str, Any]:
    """Every FACTORYOPS_* variable of the settings tree (groups nested with __) -> its field."""
    names: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub, subfield in annotation.model_fields.items():
                names[f"FACTORYOPS_{name.upper()}__{sub.upper()}"] = subfield
        else:
            names[f"FACTORYOPS_{name.upper()}"] = field
    return names


def read_env_example() -> tuple[dict[str, str], dict[str, str]]:
    """(active ``NAME=value`` lines, commented-out ``# NAME=value`` lines); a name appears once."""
    active: dict[str, str] = {}
    commented: dict[str, str] = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        if match := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line):
            target = active
        elif match := re.fullmatch(r"# ?([A-Z][A-Z0-9_]*)=(.*)", line):
            target = commented
        else:
            assert not line or line.startswith("#"), f".env.example line {number} is neither NAME=value nor a comment"
            continue
        name, value = match.groups()
        assert name not in active and name not in commented, f"{name} appears twice in .env.example"
        assert not value.startswith(("'", '"')), f"{name}: no quotes in .env.example (compose and dotenv differ)"
        target[name] = value
    return active, commented


def filled_env() -> dict[str, str]:
    """The example's active lines as an operator leaves them: every empty secret filled in."""
    active, _ = read_env_example()
    fields = setting_variables()
    env = dict(active)
    for name, value in active.items():
        field = fields.get(name)
        is_secret = field is not None and SecretStr in _types_of(field.annotation)
        if not value and (is_secret or (field is None and SECRET_NAME.search(name))):
            # the same made-up value on every call, as a real deploy/.env would hold
            env[name] = hashlib.sha256(name.encode()).hexdigest()[: 16 if name.endswith("ACCESS_KEY") else 48]
    return env


def _types_of(annotation: Any) -> set[Any]:
    return {annotation, *getattr(annotation, "__args__", ())}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ${X}, ${X:-default}, ${X-default}, ${X:?error}, ${X?error}, $$."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group("name", "op", "arg")
        current = env.get(name)
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            raise AssertionError(f"compose would stop: {name} is required ({arg})")
        if op in (":-", "-") and (current is None or (op == ":-" and not current)):
            return arg
        return current or ""

    parts = value.split("$$")
    return "$".join(VARIABLE.sub(one, part) for part in parts)


def resolve(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolve(item, env) for item in node]
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    return node


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """The compose file as Compose sees it with a filled-in deploy/.env."""
    resolved = resolve(raw, filled_env())
    assert isinstance(resolved, dict)
    return resolved


def services(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = data["services"]
    assert isinstance(result, dict)
    return result


def dockerfile_json(text: str, instruction: str) -> list[str]:
    match = re.search(rf"^{instruction}\s+(\[.*\])$", text, re.M)
    assert match, f"the Dockerfile has no {instruction} in JSON form"
    value = json.loads(match.group(1))
    assert isinstance(value, list)
    return value


def cli_commands() -> set[str]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action.choices, dict):
            return set(action.choices)
    raise AssertionError("the CLI has no sub-commands")


def factoryops_services(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run our image, i.e. `factoryops <command>`."""
    found = {name: svc for name, svc in services(data).items() if "build" in svc}
    assert found, "no service builds deploy/Dockerfile"
    return found


def hocon_field(text: str, key: str) -> str:
    match = re.search(rf'\b{key}\s*=\s*"([^"]*)"', text)
    assert match, f"no {key} in {text[:80]}..."
    return match.group(1)


def hocon_object(text: str, key: str) -> dict[str, str]:
    """``key {a = "x", "b-c" = "y"}`` -> {"a": "x", "b-c": "y"} (braces inside quotes are text)."""
    match = re.search(rf'\b{key}\s*\{{((?:"[^"]*"|[^{{}}"])*)\}}', text)
    assert match, f"no {key} {{...}} in {text[:80]}..."
    return {k.strip('"').lower(): v for k, v in re.findall(r'("?[\w-]+"?)\s*=\s*"([^"]*)"', match.group(1))}


# ---------------------------------------------------------------- the compose file


def test_services_run_the_expected_images_and_commands(raw: dict[str, Any]) -> None:
    assert "version" not in raw, "the Compose specification has no version key"
    svc = services(raw)
    assert {"mysql", "influxdb", "minio", "minio-init", "emqx", "migrate", "api", "worker"} <= set(svc)
    assert re.fullmatch(r"emqx/emqx:5\.\d+\.\d+", svc["emqx"]["image"]), "EMQX 5, pinned to a release"
    assert re.fullmatch(r"influxdb:1\.8(\.\d+)?", svc["influxdb"]["image"]), "the platform speaks InfluxDB's v1 API"
    assert re.fullmatch(r"mysql:8\.0(\.\d+)?", svc["mysql"]["image"])
    assert svc["minio"]["image"].startswith("minio/minio:RELEASE.")
    assert svc["minio-init"]["image"].startswith("minio/mc:RELEASE.")
    assert "mc mb --ignore-existing" in svc["minio-init"]["command"][0], "the one-shot creates the bucket"

    ours = factoryops_services(raw)
    commands = {name: s["command"] for name, s in ours.items()}
    assert commands["api"] == ["api"]
    assert commands["migrate"] == ["migrate"]
    assert commands["worker"] == ["worker"]
    assert {name for name, c in commands.items() if c == ["telemetry"]} >= {"telemetry-1", "telemetry-2"}
    known = cli_commands()
    for name, command in commands.items():
        assert command[0] in known, f"{name} runs `factoryops {command[0]}`, which the CLI does not have"
    for s in ours.values():
        assert s["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert s["env_file"] == ".env", "every FactoryOps container reads deploy/.env"
        assert (COMPOSE.parent / s["build"]["context"] / s["build"]["dockerfile"]).resolve() == DOCKERFILE


def test_every_long_running_service_has_a_health_check_and_a_restart_policy(raw: dict[str, Any]) -> None:
    svc = services(raw)
    assert {name for name, s in svc.items() if s.get("restart") == "no"} == ONE_SHOT
    from_checks = load_healthcheck().CHECKS
    for name, s in svc.items():
        if name in ONE_SHOT:
            assert "healthcheck" not in s
            continue
        assert s.get("restart") == "unless-stopped", name
        check = s.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1, name
        assert check["interval"] and check["retries"] >= 1, name
    for name, s in factoryops_services(raw).items():
        if name in ONE_SHOT:
            continue
        test = s["healthcheck"]["test"]
        assert test[1] == "factoryops-healthcheck", f"{name}: our processes are checked by deploy/healthcheck.py"
        assert test[2] == s["command"][0] and test[2] in from_checks, f"{name} checks itself as {test[2]}"


def test_dependencies_wait_for_health_and_for_the_one_shots(raw: dict[str, Any]) -> None:
    svc = services(raw)
    graph: dict[str, set[str]] = {}
    for name, s in svc.items():
        depends = s.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions, not a plain list"
        graph[name] = set(depends)
        for target, spec in depends.items():
            assert target in svc, f"{name} depends on unknown {target}"
            wanted = "service_completed_successfully" if target in ONE_SHOT else "service_healthy"
            assert spec == {"condition": wanted}, f"{name} -> {target}: {spec}"
    assert graph["migrate"] >= {"mysql"}
    assert graph["minio-init"] >= {"minio"}
    for name in factoryops_services(raw):
        if name not in ONE_SHOT:
            assert "migrate" in graph[name], f"{name} must start after the migrations"
    assert {"minio-init", "influxdb"} <= graph["api"] and {"minio-init", "influxdb"} <= graph["worker"]
    for name, s in svc.items():
        if s.get("command") == ["telemetry"]:
            assert {"emqx", "api", "influxdb"} <= graph[name], "EMQX asks the API about the service account"

    done: set[str] = set()  # no cycle: Compose could not start it
    while len(done) < len(graph):
        ready = {name for name, deps in graph.items() if name not in done and deps <= done}
        assert ready, f"dependency cycle among {sorted(set(graph) - done)}"
        done |= ready


def test_stateful_services_keep_their_data_in_named_volumes(raw: dict[str, Any]) -> None:
    svc = services(raw)
    declared = set(raw["volumes"])
    used: dict[str, str] = {}
    named: dict[str, set[str]] = {name: set() for name in svc}  # service -> paths kept in named volumes
    for name, s in svc.items():
        for mount in s.get("volumes", []):
            source, target = mount.split(":")[:2]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
                assert source not in used, f"{source} is mounted by {used[source]} and {name}"
                used[source] = name
                named[name].add(target)
    assert set(used) == declared, f"declared but unused: {declared - set(used)}"
    data_dir = read_env_example()[0]["FACTORYOPS_DATA_DIR"]
    expected = {
        "mysql": "/var/lib/mysql",
        "influxdb": "/var/lib/influxdb",
        "minio": "/data",
        "emqx": "/opt/emqx/data",
        **{name: data_dir for name, s in svc.items() if s.get("command") == ["telemetry"]},
    }
    for name, path in expected.items():
        assert path in named[name], f"{name} keeps {path} in no named volume"


def test_two_telemetry_processes_with_distinct_names_and_two_workers(raw: dict[str, Any]) -> None:
    svc = services(raw)
    telemetry = {name: s for name, s in svc.items() if s.get("command") == ["telemetry"]}
    assert len(telemetry) >= 2
    names = [s["environment"].get("FACTORYOPS_TELEMETRY_NAME") for s in telemetry.values()]
    assert all(names) and len(set(names)) == len(names), f"telemetry names must be set and distinct: {names}"
    spools = [next(m for m in s["volumes"] if not m.startswith(".")).split(":")[0] for s in telemetry.values()]
    assert len(set(spools)) == len(spools), "each telemetry process spools into its own volume"
    for s in telemetry.values():  # the shared settings are kept, not replaced, by the per-process name
        assert "FACTORYOPS_DATABASE__URL" in s["environment"]
    workers = sum(s.get("deploy", {}).get("replicas", 1) for s in svc.values() if s.get("command") == ["worker"])
    assert workers >= 2


def test_emqx_hooks_call_routes_that_exist_with_the_bodies_they_take(
    compose: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["openapi"]) == 0
    openapi = json.loads(capsys.readouterr().out)
    env = filled_env()
    emqx = services(compose)["emqx"]["environment"]
    api_port = env["FACTORYOPS_HTTP__PORT"]
    assert [p.rsplit(":", 1)[1] for p in services(compose)["api"]["ports"]] == [api_port]
    hooks = {"authenticate": emqx["EMQX_AUTHENTICATION"], "authorize": emqx["EMQX_AUTHORIZATION__SOURCES"]}
    placeholders = {"username", "password", "clientid", "topic", "action"}  # what EMQX fills in
    for kind, text in hooks.items():
        assert re.search(r"\bbackend\s*=\s*http\b|\btype\s*=\s*http\b", text), kind
        assert re.search(r"\bmethod\s*=\s*post\b", text), kind
        url = urlsplit(hocon_field(text, "url"))
        assert (url.hostname, str(url.port)) == ("api", api_port), f"{kind} hook must reach the api service"
        operation = openapi["paths"].get(url.path, {}).get("post")
        assert operation, f"EMQX {kind} hook calls POST {url.path}, which the API does not serve"
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = openapi["components"]["schemas"][ref.rsplit("/", 1)[1]]
        body = hocon_object(text, "body")
        assert set(schema.get("required", [])) <= set(body) <= set(schema["properties"]), f"{kind} body {body}"
        for key, value in body.items():
            assert value == "${" + key + "}" and key in placeholders, f"{kind}: {key} = {value}"
        headers = hocon_object(text, "headers")
        assert headers["authorization"] == f"Bearer {env['FACTORYOPS_MQTT__EMQX_HOOK_SECRET']}"
        assert headers["content-type"] == "application/json"
    assert emqx["EMQX_AUTHORIZATION__NO_MATCH"] == "deny", "what no hook allows is denied"


def test_shared_subscription_keeps_a_device_on_one_telemetry_process(compose: dict[str, Any]) -> None:
    env = filled_env()
    emqx = services(compose)["emqx"]["environment"]
    assert emqx["EMQX_MQTT__SHARED_SUBSCRIPTION_STRATEGY"] == "hash_topic"
    assert env["FACTORYOPS_MQTT__SHARED_GROUP"], "the telemetry processes must share one subscription"
    # hash_topic is per device because the device id is part of its topic
    topics = {telemetry_topic("f1", device) for device in ("press-1", "press-2")}
    assert len(topics) == 2 and all(("press-1" in t) != ("press-2" in t) for t in topics)
    assert int(emqx["EMQX_MQTT__MAX_INFLIGHT"]) == int(env["FACTORYOPS_MQTT__RECEIVE_MAXIMUM"])


def test_factoryops_variables_in_deploy_files_are_real_settings() -> None:
    known = set(setting_variables())
    for path in (COMPOSE, DOCKERFILE, DEPLOY / "healthcheck.py"):
        used = set(re.findall(r"FACTORYOPS_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
        assert used, path
        assert used <= known, f"{path.name} uses unknown settings: {sorted(used - known)}"


def strings(node: Any) -> Iterator[str]:
    """Every string (keys and values) of parsed YAML: what Compose interpolates, comments excluded."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)


def test_env_example_lists_every_setting(raw: dict[str, Any]) -> None:
    active, commented = read_env_example()
    listed = {name for name in (*active, *commented) if name.startswith("FACTORYOPS_")}
    known = set(setting_variables())
    assert not known - listed, f"deploy/.env.example lacks new settings: {sorted(known - listed)}"
    assert not listed - known, f"deploy/.env.example lists unknown settings: {sorted(listed - known)}"
    ours = {name for name in (*active, *commented) if not name.startswith("FACTORYOPS_")}
    compose_variables = {m.group("name") for text in strings(raw) for m in VARIABLE.finditer(text.replace("$$", ""))}
    missing = {name for name in compose_variables if not name.startswith("FACTORYOPS_")} - ours
    assert not missing, f"docker-compose.yml uses variables .env.example does not list: {sorted(missing)}"


def test_env_example_is_a_valid_production_configuration(raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    env = filled_env()
    api = resolve(services(raw)["api"], env)
    container = {**env, **api["environment"]}  # what the api container gets: env_file, then environment
    for name in list(os.environ):
        if name.startswith("FACTORYOPS_"):
            monkeypatch.delenv(name)
    for name, value in container.items():
        if name.startswith("FACTORYOPS_"):
            monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.env.value == "production"
    assert settings.database_url.startswith("mysql+pymysql://") and "@mysql:3306/" in settings.database_url
    assert settings.timeseries.backend == "influxdb" and settings.objectstore.backend == "s3"
    assert not settings.mqtt.embedded and settings.mqtt.host == "emqx" and settings.mqtt.username
    assert settings.http.host == "0.0.0.0" and str(settings.data_dir) == env["FACTORYOPS_DATA_DIR"]
    assert settings.mqtt.emqx_hook_secret and settings.mqtt.emqx_hook_secret.get_secret_value()
    # An empty line must mean "off", never an accidental value (an empty path is ".", an empty list fails).
    active, _ = read_env_example()
    fields = setting_variables()
    for name, value in active.items():
        if name.startswith("FACTORYOPS_") and not value:
            parsed = TypeAdapter(fields[name].annotation).validate_python("")
            assert not parsed, f"{name}= (empty) means {parsed!r}; comment the line out instead"


def test_no_secret_is_written_in_the_compose_file(raw: dict[str, Any]) -> None:
    for name, s in services(raw).items():
        for key, value in (s.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert ONLY_A_VARIABLE.match(str(value)), f"{name}: {key} must come from deploy/.env"
        for line in s.get("healthcheck", {}).get("test", []):
            assert "PASSWORD" not in line or "$$MYSQL_ROOT_PASSWORD" in line, f"{name} health check: {line}"
    url = services(raw)["api"]["environment"]["FACTORYOPS_DATABASE__URL"]
    parts = re.fullmatch(r"mysql\+pymysql://(\$\{[^}]*\}):(\$\{[^}]*\})@mysql:3306/(\$\{[^}]*\})\?charset=utf8mb4", url)
    assert parts and all(ONLY_A_VARIABLE.match(p) for p in parts.groups()), f"user, password, database: {url}"
    emqx = services(raw)["emqx"]["environment"]
    for key in ("EMQX_AUTHENTICATION", "EMQX_AUTHORIZATION__SOURCES"):
        bearer = re.findall(r'"authorization"\s*=\s*"Bearer ([^"]*)"', emqx[key])
        assert len(bearer) == 1 and ONLY_A_VARIABLE.match(bearer[0]), f"{key}: {bearer}"

    active, commented = read_env_example()
    fields = setting_variables()
    for name, value in {**active, **commented}.items():
        field = fields.get(name)
        secret = SecretStr in _types_of(field.annotation) if field else bool(SECRET_NAME.search(name))
        if secret:
            assert value == "", f".env.example ships a value for the secret {name}"


def test_dockerfile_builds_the_portal_like_install_sh_and_runs_cli_commands(raw: dict[str, Any]) -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert any(re.fullmatch(r"node:20(\S*)", s.split(" ")[0]) for s in stages), stages
    python = next(s for s in stages if s.startswith("python:"))
    assert re.fullmatch(r"python:3\.1[12]-slim(-\w+)?", python), python
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = re.fullmatch(r">=3\.(\d+)", project["requires-python"])
    assert minimum and int(python.split(".")[1].split("-")[0]) >= int(minimum.group(1)), python
    # the same npm steps as scripts/install.sh
    steps = re.findall(r"npm (ci|run --silent build|run build)", (ROOT / "scripts" / "install.sh").read_text())
    assert steps, "scripts/install.sh no longer builds the portal with npm ci / npm run build"
    for step in steps:
        assert f"npm {step}" in text, f"scripts/install.sh runs `npm {step}`, the Dockerfile does not"

    entrypoint = dockerfile_json(text, "ENTRYPOINT")
    cmd = dockerfile_json(text, "CMD")
    assert entrypoint == ["factoryops"] and "factoryops" in project["scripts"]
    assert cmd[0] in cli_commands(), f"the image's default command `factoryops {cmd[0]}` is not a CLI command"
    # the health checks the compose file runs are installed in the image
    assert re.search(r"^COPY\b.*deploy/healthcheck\.py /usr/local/bin/factoryops-healthcheck$", text, re.M)
    for s in factoryops_services(raw).values():
        assert s["command"][0] in cli_commands()


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed: `docker compose config` not run")
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("Docker's compose plugin is not installed: `docker compose config` not run")
    deploy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, deploy, ignore=shutil.ignore_patterns(".env"))
    (deploy / ".env").write_text("".join(f"{k}={v}\n" for k, v in filled_env().items()))
    result = subprocess.run(
        [docker, "compose", "--project-directory", str(deploy), "-f", str(deploy / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    (deploy / ".env").write_text("".join(f"{k}=\n" for k in filled_env()))
    refused = subprocess.run(
        [docker, "compose", "--project-directory", str(deploy), "-f", str(deploy / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "deploy/.env" in refused.stderr, "empty secrets must stop compose"


# ---------------------------------------------------------------- the health check script


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("factoryops_healthcheck", DEPLOY / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_healthcheck_defaults_are_the_settings_defaults() -> None:
    hc = load_healthcheck()
    assert HttpSettings().port == hc.DEFAULT_HTTP_PORT
    assert (MqttSettings().host, MqttSettings().port) == (hc.DEFAULT_MQTT_HOST, hc.DEFAULT_MQTT_PORT)
    assert hc.main([]) == 2 and hc.main(["nonsense"]) == 2


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server
    server.close()


def test_healthcheck_sees_an_established_connection_and_its_end(listener: socket.socket) -> None:
    hc = load_healthcheck()
    port = listener.getsockname()[1]
    assert not hc.connected_to("127.0.0.1", port)
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    assert hc.connected_to("127.0.0.1", port) and hc.connected_to("localhost", port)
    assert not hc.connected_to("127.0.0.1", free_port())
    client.close()
    accepted.close()
    assert not hc.connected_to("127.0.0.1", port)
    assert not hc.connected_to("no-such-host.invalid", port)


@pytest.fixture
def fake_service() -> Iterator[str]:
    """A real process whose command line reads `factoryops <subcommand>` (a name nobody else runs)."""
    subcommand = f"probe-{secrets.token_hex(4)}"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "factoryops", subcommand])
    yield subcommand
    child.kill()
    child.wait()


def test_healthcheck_finds_the_process_by_its_command(fake_service: str) -> None:
    hc = load_healthcheck()
    assert hc.running(fake_service)
    assert not hc.running(fake_service + "-other")


def test_healthcheck_does_not_take_the_init_process_for_the_service() -> None:
    """With `init: true`, docker-init's own command line reads `docker-init -- factoryops <command>`."""
    hc = load_healthcheck()
    subcommand = f"probe-{secrets.token_hex(4)}"
    code = "import time; time.sleep(120)"
    init = subprocess.Popen(
        ["/sbin/docker-init", "-c", code, "--", "factoryops", subcommand], executable=sys.executable
    )
    try:
        assert not hc.running(subcommand)
    finally:
        init.kill()
        init.wait()


@pytest.fixture
def telemetry_and_worker() -> Iterator[None]:
    """Processes whose command lines read `factoryops telemetry` and `factoryops worker`."""
    children = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "factoryops", command])
        for command in ("telemetry", "worker")
    ]
    yield
    for child in children:
        child.kill()
        child.wait()


def test_healthcheck_of_telemetry_and_worker(listener: socket.socket, telemetry_and_worker: None) -> None:
    hc = load_healthcheck()
    port = listener.getsockname()[1]
    env = {"FACTORYOPS_MQTT__HOST": "127.0.0.1", "FACTORYOPS_MQTT__PORT": str(port)}
    # the process runs: the verdict is its connection
    assert "not connected to the MQTT broker 127.0.0.1" in hc.check_telemetry(env)
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    try:
        assert hc.check_telemetry(env) is None
        db = {"FACTORYOPS_DATABASE__URL": f"mysql+pymysql://u:p@127.0.0.1:{port}/factoryops"}
        assert hc.check_worker(db) is None
        other = {"FACTORYOPS_DATABASE__URL": f"mysql+pymysql://u:p@127.0.0.1:{free_port()}/factoryops"}
        assert "not connected to the database" in hc.check_worker(other)
    finally:
        client.close()
        accepted.close()


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_healthcheck_of_the_api_asks_healthz() -> None:
    hc = load_healthcheck()
    for status, healthy in ((200, True), (503, False)):
        handler = type("Handler", (_Health,), {"status": status})
        server = http.server.HTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            verdict = hc.check_api({"FACTORYOPS_HTTP__PORT": str(server.server_address[1])})
        finally:
            server.shutdown()
            server.server_close()
        assert (verdict is None) == healthy, verdict
    assert "did not answer" in hc.check_api({"FACTORYOPS_HTTP__PORT": str(free_port())})
