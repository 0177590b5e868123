"""``gridlake service run``: the same command line as the local stack, exec'd in place.

Nothing is started or exec'd: ``prepare`` hooks that would run Java are replaced, and
``os.execve`` is intercepted.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.service import command as api_command
from infra.settings import GridLakeSettings, NetworkSettings
from infra.stack.base import Health
from infra.stack.errors import StackError
from infra.stack.hdfs import DataNodeService, NameNodeService
from infra.stack.kafka import KafkaService
from infra.stack.manager import Stack
from infra.stack.redis import RedisService
from jobs.streaming.control import JOBS
from ops import services
from ops.cli import service as service_cli

JAVA = "/opt/java/bin/java"
REDIS = "/usr/bin/redis-server"


class Exec(Exception):
    """Raised instead of exec'ing."""


@pytest.fixture
def fake_env(settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fake jars, redis-server path and one-time formats; returns the prepared names."""
    for module, jar in (
        ("hadoop", "hadoop-hdfs-3.5.0.jar"),
        ("kafka", "kafka_2.13-4.1.1.jar"),
        ("flink", "gridlake-flink-connectors-0.1.0.jar"),
    ):
        (settings.jars / module).mkdir(parents=True, exist_ok=True)
        (settings.jars / module / jar).touch()
    monkeypatch.setattr("infra.stack.redis.redis_server_path", lambda: REDIS)
    prepared: list[str] = []

    def fake_prepare(self: Any, java: str) -> None:
        assert java == JAVA
        prepared.append(self.name)

    monkeypatch.setattr(NameNodeService, "prepare", fake_prepare)
    monkeypatch.setattr(KafkaService, "prepare", fake_prepare)
    return prepared


def names(settings: GridLakeSettings) -> list[str]:
    return [svc.name for svc in Stack(settings).services]


def test_every_stack_service_and_the_apps_are_runnable(settings: GridLakeSettings) -> None:
    assert services.service_names(settings) == [*names(settings), "api", "stream"]
    assert names(settings) == [
        "redis",
        "namenode",
        "datanode-slave1",
        "datanode-slave2",
        "kafka",
        "nginx",
    ]


@pytest.mark.parametrize("name", ["namenode", "datanode-slave1", "datanode-slave2", "kafka"])
def test_jvm_service_argv_is_the_local_stack_command(
    settings: GridLakeSettings, fake_env: list[str], name: str
) -> None:
    launch = services.prepare(settings, name, java=JAVA)
    svc = Stack(settings).service(name)
    assert launch.argv == svc.command(JAVA)
    assert launch.cwd == svc.data_dir and svc.data_dir.is_dir()
    assert svc.marker in launch.argv
    if name in ("namenode", "kafka"):
        assert fake_env == [name]  # the one-time format ran through Service.prepare
    else:
        assert (svc.conf_dir / "hdfs-site.xml").is_file()
    for d in (settings.data, settings.logs, settings.run):
        assert d.is_dir()


def test_redis_argv_is_the_local_command_logging_to_the_console(
    settings: GridLakeSettings, fake_env: list[str]
) -> None:
    launch = services.prepare(settings, "redis")  # no java needed
    svc = RedisService(settings)
    assert launch.argv == [*svc.command(""), "--logfile", ""]
    assert launch.argv[:2] == [REDIS, svc.config_file]
    assert "daemonize no" in Path(svc.config_file).read_text()


def test_api_argv_is_the_api_serve_command(settings: GridLakeSettings) -> None:
    launch = services.prepare(settings, "api")
    assert launch.argv == api_command(settings)


def test_stream_provisions_then_runs_the_job_like_stream_start(
    settings: GridLakeSettings, fake_env: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[GridLakeSettings] = []

    def fake_provision(s: GridLakeSettings) -> list[str]:
        calls.append(s)
        return []

    monkeypatch.setattr(services, "provision", fake_provision)
    launch = services.prepare(settings, "stream")
    assert calls == [settings]
    assert launch.argv == [sys.executable, "-m", JOBS["lakehouse"]]
    assert "gridlake-flink-connectors-0.1.0.jar" in launch.env["HADOOP_CLASSPATH"]
    assert launch.env["JVM_ARGS"].startswith(f"-Xmx{settings.flink.heap}")


def test_unknown_or_unmanaged_services_are_refused(settings: GridLakeSettings) -> None:
    with pytest.raises(StackError, match="unknown"):
        services.prepare(settings, "zookeeper", java=JAVA)
    with pytest.raises(StackError, match="streaming job"):
        services.prepare(settings, "stream", job="nope")
    external = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"managed": False})}
    )
    with pytest.raises(StackError, match="unmanaged"):
        services.prepare(external, "kafka", java=JAVA)


def test_exec_replaces_the_process_with_the_argv(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    def fake_execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        seen.update(path=path, argv=argv, env=env)
        raise Exec

    monkeypatch.setattr(services.os, "execve", fake_execve)
    monkeypatch.setattr(services.os, "chdir", lambda p: seen.update(cwd=p))
    launch = services.Launch("x", ["/bin/true", "a"], tmp_path, {"K": "V"})
    with pytest.raises(Exec):
        services.exec_launch(launch)
    assert seen == {"path": "/bin/true", "argv": ["/bin/true", "a"], "env": {"K": "V"},
                    "cwd": tmp_path}


def test_cli_run_prepares_and_execs(
    settings: GridLakeSettings, fake_env: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    execs: list[services.Launch] = []
    monkeypatch.setattr("infra.settings.load_settings", lambda: settings)  # imported lazily
    monkeypatch.setattr("infra.stack.prereq.check_java", lambda s: JAVA)
    monkeypatch.setattr(services, "exec_launch", execs.append)
    result = CliRunner().invoke(service_cli.app, ["run", "datanode-slave1"])
    assert result.exit_code == 0, result.output
    svc = Stack(settings).service("datanode-slave1")
    assert [launch.argv for launch in execs] == [svc.command(JAVA)]


def test_cli_run_reports_errors_in_one_line(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("infra.settings.load_settings", lambda: settings)  # imported lazily
    result = CliRunner().invoke(service_cli.app, ["run", "zookeeper"])
    assert result.exit_code == 1
    assert "unknown or unmanaged service 'zookeeper'" in result.output


def test_cli_check_exit_code(settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("infra.settings.load_settings", lambda: settings)  # imported lazily
    health = {"redis": Health(True, "PONG"), "kafka": Health(False, "down")}
    monkeypatch.setattr(services, "probe", lambda s, n, live, job: health[n])
    assert CliRunner().invoke(service_cli.app, ["check", "redis"]).exit_code == 0
    assert CliRunner().invoke(service_cli.app, ["check", "kafka"]).exit_code == 1


def test_namenode_liveness_accepts_safe_mode(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(NameNodeService, "state", lambda self: {"FSState": "safeMode"})
    monkeypatch.setattr(NameNodeService, "health", lambda self: Health(False, "in safe mode"))
    assert services.probe(settings, "namenode", live=True).healthy
    assert not services.probe(settings, "namenode").healthy


def test_probe_of_unreachable_api_is_unhealthy(settings: GridLakeSettings) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    s = settings.model_copy(update={"api": settings.api.model_copy(update={"port": port})})
    health = services.probe(s, "api")
    assert not health.healthy and "unreachable" in health.detail


# -- container network settings -------------------------------------------------------------
def container(settings: GridLakeSettings, **network: Any) -> GridLakeSettings:
    return settings.model_copy(update={"network": NetworkSettings(**network)})


def test_defaults_keep_the_local_stack_on_loopback(settings: GridLakeSettings) -> None:
    kafka = KafkaService(settings).server_properties()
    host, port, cport = settings.kafka.host, settings.kafka.port, settings.kafka.controller_port
    assert f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}\n" in kafka
    assert f"advertised.listeners=PLAINTEXT://{host}:{port}\n" in kafka
    dn = DataNodeService(settings, settings.hdfs.datanodes[0])
    site = dn.hdfs_site()
    assert site["dfs.datanode.hostname"] == "127.0.0.1"
    assert site["dfs.datanode.address"] == f"127.0.0.1:{settings.hdfs.datanodes[0].data_port}"
    assert "dfs.namenode.rpc-bind-host" not in NameNodeService(settings).hdfs_site()
    conf = RedisService(settings).redis_conf()
    assert f"bind {settings.redis.host}\n" in conf and "protected-mode yes\n" in conf


def test_container_settings_bind_everywhere_and_advertise_hosts(
    settings: GridLakeSettings,
) -> None:
    s = container(
        settings, bind_host="0.0.0.0", datanode_hostname="slave1", redis_protected_mode=False
    )
    kafka = KafkaService(s).server_properties()
    host, port, cport = s.kafka.host, s.kafka.port, s.kafka.controller_port
    assert f"listeners=PLAINTEXT://0.0.0.0:{port},CONTROLLER://0.0.0.0:{cport}\n" in kafka
    assert f"advertised.listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}" in kafka
    assert f"controller.quorum.voters=1@{host}:{cport}\n" in kafka
    nn = NameNodeService(s).hdfs_site()
    assert nn["dfs.namenode.rpc-bind-host"] == nn["dfs.namenode.http-bind-host"] == "0.0.0.0"
    node = s.hdfs.datanodes[0]
    dn = DataNodeService(s, node)
    site = dn.hdfs_site()
    assert site["dfs.datanode.hostname"] == "slave1"
    assert site["dfs.datanode.address"] == f"0.0.0.0:{node.data_port}"
    assert dn.xfer_address == f"slave1:{node.data_port}"
    conf = RedisService(s).redis_conf()
    assert "bind 0.0.0.0\n" in conf and "protected-mode no\n" in conf


def test_datanode_health_matches_its_registered_hostname(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = container(settings, bind_host="0.0.0.0", datanode_hostname="slave1")
    node = s.hdfs.datanodes[0]
    live = json.dumps({f"slave1:{node.data_port}": {"xferaddr": f"10.0.0.11:{node.data_port}"}})
    monkeypatch.setattr(NameNodeService, "jmx", lambda self, q, t=2.0: {"LiveNodes": live})
    assert NameNodeService(s).live_nodes() == {
        f"slave1:{node.data_port}",
        f"10.0.0.11:{node.data_port}",
    }
    assert DataNodeService(s, node).health().healthy
