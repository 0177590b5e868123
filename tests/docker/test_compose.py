"""Static checks of the compose deployment (``docker/``): no Docker, no services.

The compose file is parsed with PyYAML and every service's environment is turned into
the :class:`GridLakeSettings` that container would load, so addresses, ports, heaps and
service names are checked against the same code that runs in the container.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import typer
import yaml
from pydantic import BaseModel

from infra import jars
from infra.settings import REPO_ROOT, GridLakeSettings
from infra.stack.manager import Stack
from ops.cli.service import app as service_app
from ops.services import API, STREAM, service_names

DOCKER = REPO_ROOT / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"
DOCKERIGNORE = DOCKER / "Dockerfile.dockerignore"
ENV_EXAMPLE = DOCKER / ".env.example"

HOSTS = {"master", "slave1", "slave2"}
ROLES = {
    "master": {"namenode", "kafka", "redis", "stream", "api"},
    "slave1": {"datanode-slave1"},
    "slave2": {"datanode-slave2"},
}
#: Services that keep state in a named volume at GRIDLAKE_HOME.
STATEFUL = {"namenode", "kafka", "redis", "stream", "datanode-slave1", "datanode-slave2"}


# -- helpers ----------------------------------------------------------------------------
@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def service_params() -> list[str]:
    return list(services())


def host_of(name: str) -> str:
    profiles = services()[name].get("profiles", [])
    assert len(profiles) == 1, f"{name}: exactly one host profile, got {profiles}"
    return str(profiles[0])


def env_of(name: str) -> dict[str, str]:
    env = services()[name].get("environment", {})
    assert isinstance(env, dict), f"{name}: environment as a mapping"
    return {str(k): str(v) for k, v in env.items()}


@cache
def settings_of(name: str) -> GridLakeSettings:
    """The settings the container of service ``name`` loads (its environment only)."""
    with mock.patch.dict(os.environ, env_of(name), clear=True):
        return GridLakeSettings(_env_file=None)  # type: ignore[call-arg]


def size_bytes(text: str) -> int:
    """``384m``, ``1g``, ``512mb`` -> bytes."""
    m = re.fullmatch(r"(\d+)\s*([kmg])b?", text.strip().lower())
    assert m, f"not a memory size: {text!r}"
    return int(m.group(1)) * 1024 ** {"k": 1, "m": 2, "g": 3}[m.group(2)]


def duration_s(text: str) -> float:
    m = re.fullmatch(r"(\d+)(s|m)", str(text))
    assert m, f"not a duration: {text!r}"
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def settings_field(var: str) -> str | None:
    """Why ``var`` is not a GridLakeSettings field, or None when it is one."""
    if not var.startswith("GRIDLAKE_"):
        return f"{var}: not a GRIDLAKE_ variable"
    parts = var.removeprefix("GRIDLAKE_").lower().split("__")
    model: type[BaseModel] = GridLakeSettings
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return f"{var}: {model.__name__} has no field {part!r}"
        ann = field.annotation
        last = i == len(parts) - 1
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            if last:
                return f"{var}: {part!r} is a section, set one of its fields"
            model = ann
        elif not last:
            return f"{var}: {part!r} is not a section"
    return None


def listen_ports(name: str) -> dict[int, str]:
    """Ports service ``name`` listens on, per its own settings."""
    s = settings_of(name)
    if name == API:
        return {s.api.port: "api"}
    if name == STREAM:
        return {s.flink.rest_port: "flink rest"}
    return {c.port: c.purpose for c in Stack(s).service(name).ports()}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        op, _, args = buf.partition(" ")
        out.append((op.upper(), args.strip()))
        buf = ""
    return out


def stages() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """(stage name, its instructions) of the Dockerfile."""
    name, body = "", list[tuple[str, str]]()
    for op, args in dockerfile_instructions():
        if op == "FROM":
            if name:
                yield name, body
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else words[0]
            body = [(op, args)]
        elif name:
            body.append((op, args))
    if name:
        yield name, body


def build_args() -> dict[str, str]:
    args = {}
    for op, rest in dockerfile_instructions():
        if op == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value
        if op == "FROM":
            break
    return args


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for op, rest in dict(stages())["runtime"]:
        if op == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


# -- the three hosts ---------------------------------------------------------------------
def test_three_hosts_with_their_roles() -> None:
    by_host: dict[str, set[str]] = {}
    for name in services():
        by_host.setdefault(host_of(name), set()).add(name)
    assert by_host == ROLES


def test_hosts_resolve_in_every_container() -> None:
    for name, svc in services().items():
        assert svc.get("network_mode") == "host", name
        names = {str(entry).split(":", 1)[0] for entry in svc.get("extra_hosts", [])}
        assert names == HOSTS, name


def test_one_image_for_every_role() -> None:
    images = {svc["image"] for svc in services().values()}
    assert len(images) == 1
    assert "DEPLOY_IMAGE" in images.pop()


# -- per service --------------------------------------------------------------------------
@pytest.mark.parametrize("name", service_params())
def test_service_runs_its_own_role_in_the_foreground(name: str) -> None:
    command = services()[name]["command"]
    assert command == ["gridlake", "service", "run", name]
    assert name in service_names(settings_of(name))


@pytest.mark.parametrize("name", service_params())
def test_healthcheck_checks_the_same_service(name: str) -> None:
    hc = services()[name]["healthcheck"]
    test = hc["test"]
    assert test[:5] == ["CMD", "python", "-m", "ops.cli.service", "check"], test
    assert test[5] == name
    assert {"interval", "timeout", "retries", "start_period"} <= set(hc)
    assert duration_s(hc["timeout"]) < duration_s(hc["interval"]) + 1


@pytest.mark.parametrize("name", service_params())
def test_commands_parse_with_the_service_cli(name: str) -> None:
    group = typer.main.get_command(service_app)
    assert isinstance(group, typer.core.TyperGroup)
    for args in (services()[name]["command"][2:], services()[name]["healthcheck"]["test"][4:]):
        sub = group.get_command(group.make_context("service", list(args)), args[0])
        assert sub is not None, args
        sub.make_context(args[0], list(args[1:]))  # raises on an unknown option


@pytest.mark.parametrize("name", service_params())
def test_restart_policy_and_stop_grace(name: str) -> None:
    svc = services()[name]
    assert svc.get("restart") in {"always", "unless-stopped", "on-failure"}
    grace = duration_s(svc["stop_grace_period"])
    if name not in (API, STREAM):
        assert grace > Stack(settings_of(name)).service(name).stop_timeout_s


def heap_of(name: str) -> int:
    """The memory the service is configured to use (heap or maxmemory), 0 if none."""
    s = settings_of(name)
    if name == "namenode":
        return size_bytes(s.hdfs.heap)
    if name.startswith("datanode-"):
        return size_bytes(s.hdfs.datanode_heap)
    if name == "kafka":
        return size_bytes(s.kafka.heap)
    if name == "redis":
        return size_bytes(s.redis.maxmemory)
    if name == STREAM:
        return size_bytes(s.flink.heap)
    return 0


@pytest.mark.parametrize("name", service_params())
def test_memory_limit_matches_the_heap(name: str) -> None:
    limit = size_bytes(services()[name]["deploy"]["resources"]["limits"]["memory"])
    heap = heap_of(name)
    if heap:
        assert 1.5 * heap <= limit <= 3 * heap, (name, heap, limit)
    else:
        assert limit >= 256 * 1024**2


@pytest.mark.parametrize("name", service_params())
def test_every_gridlake_variable_is_a_settings_field(name: str) -> None:
    problems = [p for var in env_of(name) if (p := settings_field(var))]
    assert not problems
    settings_of(name)  # and every value validates


def test_settings_field_walk_catches_typos() -> None:
    assert settings_field("GRIDLAKE_HDFS__NAMENODE_HOST") is None
    assert settings_field("GRIDLAKE_HDFS__DATANODES") is None
    assert settings_field("GRIDLAKE_HOME") is None
    assert settings_field("GRIDLAKE_HDFS__NAMENODE_HOTS")
    assert settings_field("GRIDLAKE_HDFS_NAMENODE_HOST")
    assert settings_field("GRIDLAKE_KAFKA")
    assert settings_field("GRIDLAKE_HOME__X")


# -- addresses ------------------------------------------------------------------------------
def the(role: str) -> tuple[str, GridLakeSettings]:
    """(host, settings) of the service playing ``role``."""
    return host_of(role), settings_of(role)


@pytest.mark.parametrize("name", service_params())
def test_addresses_point_at_the_serving_host_and_port(name: str) -> None:
    s = settings_of(name)
    kafka_host, kafka = the("kafka")
    assert (s.kafka.host, s.kafka.port) == (kafka_host, kafka.kafka.port)
    assert s.kafka.controller_port == kafka.kafka.controller_port
    nn_host, nn = the("namenode")
    assert s.hdfs.namenode_host == nn_host
    assert (s.hdfs.namenode_rpc_port, s.hdfs.namenode_http_port) == (
        nn.hdfs.namenode_rpc_port,
        nn.hdfs.namenode_http_port,
    )
    redis_host, redis = the("redis")
    assert (s.redis.host, s.redis.port) == (redis_host, redis.redis.port)


@pytest.mark.parametrize("name", service_params())
def test_servers_listen_on_every_interface(name: str) -> None:
    assert settings_of(name).network.bind_host == "0.0.0.0"


def test_datanodes_register_with_their_host_name() -> None:
    for name in services():
        if not name.startswith("datanode-"):
            continue
        role = name.removeprefix("datanode-")
        assert host_of(name) == role
        assert settings_of(name).network.datanode_hostname == role


def test_api_listens_where_its_healthcheck_and_clients_expect() -> None:
    s = settings_of(API)
    assert s.api.host == "0.0.0.0"
    assert s.api.port in listen_ports(API)


def test_redis_accepts_remote_clients() -> None:
    assert settings_of("redis").network.redis_protected_mode is False


def test_no_port_is_claimed_twice() -> None:
    # Host networking: services of one host share its ports; a one-box trial runs all.
    seen: dict[int, str] = {}
    for name in services():
        for port, purpose in listen_ports(name).items():
            assert port not in seen, f"{name} {purpose} port {port} also used by {seen[port]}"
            seen[port] = f"{name} {purpose}"


# -- dependencies and volumes ------------------------------------------------------------------
def test_depends_on_targets_exist_and_are_healthy() -> None:
    for name, svc in services().items():
        for target, cond in (svc.get("depends_on") or {}).items():
            assert target in services(), (name, target)
            assert cond["condition"] == "service_healthy", (name, target)
            assert "healthcheck" in services()[target]
            same_host = host_of(target) == host_of(name)
            # compose only waits for services of its own host; others are optional
            assert cond.get("required", True) is same_host, (name, target)


def test_clients_wait_for_what_they_use() -> None:
    deps = {n: set(s.get("depends_on") or {}) for n, s in services().items()}
    assert deps[STREAM] >= {"namenode", "kafka", "redis", "datanode-slave1", "datanode-slave2"}
    assert deps[API] >= {"redis"}
    assert deps["datanode-slave1"] == deps["datanode-slave2"] == {"namenode"}
    # The NameNode's healthcheck must not wait for the DataNodes that wait for it.
    assert "--live" in services()["namenode"]["healthcheck"]["test"]


def test_named_volumes_hold_each_service_home() -> None:
    declared = set(compose().get("volumes") or {})
    used: dict[str, str] = {}
    for name, svc in services().items():
        for spec in svc.get("volumes", []):
            source, target = str(spec).split(":")[:2]
            assert source in declared, (name, source)
            assert source not in used, f"{source} shared by {name} and {used[source]}"
            used[source] = name
            assert target == str(settings_of(name).home), (name, target)
    assert set(used) == declared
    assert set(used.values()) == STATEFUL


def test_interpolated_variables_are_in_env_example() -> None:
    example = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    }
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    assert used and used <= example
    assert not any(k.startswith("GRIDLAKE_") for k in example)
    assert "COMPOSE_PROFILES" in example


# -- Dockerfile -------------------------------------------------------------------------------
def ignored(path: str) -> bool:
    patterns = [
        ln.strip()
        for ln in DOCKERIGNORE.read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    parts = Path(path).parts
    return any(
        fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(parts[0], pat) for pat in patterns
    )


def test_dockerfile_copy_sources_exist_and_are_sent() -> None:
    sources = []
    for _, body in stages():
        for op, args in body:
            if op == "COPY" and "--from=" not in args:
                words = [w for w in args.split() if not w.startswith("--")]
                sources += words[:-1]
    assert sources
    for src in sources:
        path = src.rstrip("/")
        assert (REPO_ROOT / path).exists(), src
        assert not ignored(path), f"{src} is excluded by {DOCKERIGNORE.name}"


def test_build_context_leaves_out_local_state() -> None:
    for path in (".venv", ".gridlake", ".git", "jobs/streaming/connectors/target", ".env"):
        assert ignored(path), path


def test_dockerfile_stages() -> None:
    st = dict(stages())
    assert list(st) == ["jars", "python", "runtime"]
    args = build_args()
    assert "eclipse-temurin-17" in args["MAVEN_IMAGE"] and "maven" in args["MAVEN_IMAGE"]
    assert args["PYTHON_IMAGE"].startswith("python:3.11")
    runtime = st["runtime"]
    ops = [op for op, _ in runtime]
    assert "HEALTHCHECK" not in [op for op, _ in dockerfile_instructions()]
    user = [a for op, a in runtime if op == "USER"]
    assert user and user[-1] not in {"root", "0"}
    installs = " ".join(a for op, a in runtime if op == "RUN")
    assert "openjdk-17-jre-headless" in installs and "redis-server" in installs
    assert "CMD" in ops


def test_maven_command_is_the_one_gridlake_setup_runs() -> None:
    env = dockerfile_env()
    jar_root = env["GRIDLAKE_JARS_DIR"]
    with mock.patch.dict(os.environ, {"GRIDLAKE_JARS_DIR": jar_root}, clear=True):
        s = GridLakeSettings(_env_file=None)  # type: ignore[call-arg]
    [cmd] = jars._mvn_commands("mvn", s, list(jars.DEFAULT_MODULES))
    cmd = [str(Path(c).relative_to(REPO_ROOT)) if c == str(jars.PARENT_POM) else c for c in cmd]
    run = " ".join(a for op, a in dict(stages())["jars"] if op == "RUN")
    assert " ".join(cmd) in " ".join(run.split())
    copied = [a for op, a in dict(stages())["runtime"] if op == "COPY" and "--from=jars" in a]
    assert copied and copied[0].split()[-1] == jar_root


def test_jar_stamp_recipe_matches_pom_hash(tmp_path: Path) -> None:
    # the Dockerfile's own stamp loop (after its Maven command), run here for real
    run = " ".join(a for op, a in dict(stages())["jars"] if op == "RUN")
    loop = run[run.index("for m in "):run.rindex("done") + len("done")]
    assert jars.STAMP in loop
    out = tmp_path / "jars"
    for module in jars.DEFAULT_MODULES:
        (out / module).mkdir(parents=True)
    subprocess.run(["bash", "-c", loop.replace("/opt/gridlake/jars", str(out))], cwd=REPO_ROOT,
                   check=True)
    for module in jars.available_modules():
        assert (out / module / jars.STAMP).read_text().strip() == jars.pom_hash(module), module
    sources = jars.module_sources("flink")
    assert any(p.suffix == ".java" for p in sources), "the connector sources are in the stamp"
    assert {p.name for p in sources} >= {"upsert.lua", "delete.lua"}, "and the Lua scripts"
    # the jar stage copies every folder outside the module that the build (and stamp) reads
    copied = {a.split()[0] for op, a in dict(stages())["jars"] if op == "COPY"}
    for extra in (e for dirs in jars.MODULE_EXTRA_SOURCES.values() for e in dirs):
        assert f"{extra.relative_to(REPO_ROOT)}/" in copied, extra


def test_runtime_environment_matches_compose() -> None:
    env = dockerfile_env()
    for name in services():
        assert env_of(name)["GRIDLAKE_HOME"] == env["GRIDLAKE_HOME"]
        assert env_of(name)["GRIDLAKE_JARS_DIR"] == env["GRIDLAKE_JARS_DIR"]
    assert "/opt/venv/bin" in env["PATH"]
    runtime_runs = " ".join(a for op, a in dict(stages())["python"] if op == "RUN")
    assert "pip install --no-deps -r requirements.lock" in runtime_runs
    assert "pip install --no-deps ." in runtime_runs
