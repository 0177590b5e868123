"""Prerequisite checks and process bookkeeping; no services needed."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import sys
from pathlib import Path

import psutil
import pytest

from infra import jars
from infra.settings import GridLakeSettings
from infra.stack import prereq, process
from infra.stack.errors import PrerequisiteError, StackError
from infra.stack.hdfs import DataNodeService, NameNodeService
from infra.stack.kafka import KafkaService
from infra.stack.manager import Stack
from infra.stack.redis import RedisService, resp_ping


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, text
    return text


def test_port_taken_by_foreign_socket_names_port_and_setting(
    settings: GridLakeSettings,
) -> None:
    with socket.socket() as sock:
        sock.bind((settings.redis.host, settings.redis.port))
        sock.listen()
        with pytest.raises(PrerequisiteError) as exc:
            prereq.check_ports(RedisService(settings).ports())
    msg = one_line(exc.value)
    assert str(settings.redis.port) in msg
    assert "GRIDLAKE_REDIS__URL" in msg
    assert f"pid {os.getpid()}" in msg


def test_port_held_by_our_own_process_is_fine(settings: GridLakeSettings) -> None:
    kafka = KafkaService(settings)
    with socket.socket() as sock:
        sock.bind((settings.kafka.host, settings.kafka.port))
        sock.listen()
        prereq.check_ports(kafka.ports(), owned_pids=[os.getpid()])
        with pytest.raises(PrerequisiteError, match="GRIDLAKE_KAFKA__BOOTSTRAP"):
            prereq.check_ports(kafka.ports())


def test_every_service_claims_distinct_ports(settings: GridLakeSettings) -> None:
    claims = [c for svc in Stack(settings).services for c in svc.ports()]
    assert len({c.port for c in claims}) == len(claims) == 2 + 2 + 3 + 3 + 1 + 1  # + nginx
    assert all(c.setting.startswith("GRIDLAKE_") for c in claims)


def test_wrong_python_is_one_line() -> None:
    prereq.check_python((3, 11))
    with pytest.raises(PrerequisiteError, match="needs Python 3.11"):
        prereq.check_python((3, 12))


def _fake_java(tmp_path: Path, version: str) -> Path:
    home = tmp_path / f"jdk{version}"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2020-01-01' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return home


def test_old_java_is_rejected(settings: GridLakeSettings, tmp_path: Path) -> None:
    old = settings.model_copy(update={"java_home": _fake_java(tmp_path, "11.0.2")})
    with pytest.raises(PrerequisiteError) as exc:
        prereq.check_java(old)
    assert "Java 11" in one_line(exc.value) and "17" in str(exc.value)
    legacy = settings.model_copy(update={"java_home": _fake_java(tmp_path, "1.8.0_392")})
    assert prereq.java_major(prereq.java_executable(legacy)) == 8
    ok = settings.model_copy(update={"java_home": _fake_java(tmp_path, "17.0.15")})
    assert prereq.check_java(ok).endswith("bin/java")


def test_missing_java_home_is_one_line(settings: GridLakeSettings, tmp_path: Path) -> None:
    bad = settings.model_copy(update={"java_home": tmp_path / "nowhere"})
    with pytest.raises(PrerequisiteError, match="GRIDLAKE_JAVA_HOME"):
        prereq.java_executable(bad)


def test_no_java_on_path(settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PrerequisiteError, match="java not found"):
        prereq.java_executable(settings)
    with pytest.raises(PrerequisiteError, match="mvn not found"):
        prereq.check_mvn()


def test_disk_nearly_full(tmp_path: Path) -> None:
    prereq.check_disk(tmp_path / "not" / "yet")
    with pytest.raises(PrerequisiteError) as exc:
        prereq.check_disk(tmp_path, min_free=2**62)
    assert "GRIDLAKE_HOME" in one_line(exc.value)


def test_ensure_jars_without_mvn(
    settings: GridLakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(jars.JarsError) as exc:
        jars.ensure_jars(settings, ("kafka",))
    assert "mvn not found" in one_line(exc.value)


def test_jar_stamps_follow_the_pom(settings: GridLakeSettings) -> None:
    assert jars.stale_modules(settings, ("kafka", "hadoop")) == ["kafka", "hadoop"]
    out = jars.module_dir(settings, "kafka")
    out.mkdir(parents=True)
    (out / "a.jar").write_bytes(b"")
    (out / jars.STAMP).write_text(jars.pom_hash("kafka"))
    assert jars.stale_modules(settings, ("kafka", "hadoop")) == ["hadoop"]
    assert jars.classpath(settings, "kafka") == str(out / "a.jar")
    with pytest.raises(StackError, match="gridlake setup"):
        jars.classpath(settings, "hadoop")
    assert "nope" not in jars.available_modules(("kafka", "nope"))


def test_generated_configs_follow_settings(settings: GridLakeSettings) -> None:
    props = KafkaService(settings).server_properties()
    assert f"listeners=PLAINTEXT://{settings.kafka.bootstrap}," in props
    assert f"CONTROLLER://127.0.0.1:{settings.kafka.controller_port}" in props
    assert "process.roles=broker,controller" in props
    nn = NameNodeService(settings)
    assert nn.core_site()["fs.defaultFS"] == settings.hdfs.uri
    dn = DataNodeService(settings, settings.hdfs.datanodes[1])
    site = dn.hdfs_site()
    assert dn.role == "slave2"
    assert site["dfs.datanode.address"] == f"127.0.0.1:{settings.hdfs.datanodes[1].data_port}"
    assert site["dfs.replication"] == 2 and site["dfs.webhdfs.enabled"] is True
    assert site["dfs.namenode.datanode.registration.ip-hostname-check"] is False
    conf = RedisService(settings).redis_conf()
    assert f"port {settings.redis.port}" in conf and "appendonly yes" in conf
    assert "daemonize no" in conf and f"maxmemory {settings.redis.maxmemory}" in conf


def test_unmanaged_services_are_not_started(settings: GridLakeSettings) -> None:
    ext = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"managed": False}),
            "hdfs": settings.hdfs.model_copy(update={"managed": False}),
            "redis": settings.redis.model_copy(update={"managed": False}),
            # an unmanaged web front is not a stack service at all (nothing to probe)
            "web": settings.web.model_copy(update={"managed": False}),
        }
    )
    st = Stack(ext)
    assert [s.name for s in st.services] == ["redis", "namenode", "kafka"]
    for row in st.status():
        assert row.managed is False and row.pid is None and row.healthy is False
        assert "unreachable" in row.detail


def test_redis_ping_against_a_fake_server() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        import threading

        def serve() -> None:
            conn, _ = srv.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"+PONG\r\n")

        t = threading.Thread(target=serve)
        t.start()
        assert resp_ping(f"redis://127.0.0.1:{port}/0") == "PONG"
        t.join(5)


def test_stop_kills_only_what_gridlake_started(settings: GridLakeSettings) -> None:
    marker = f"gridlake-test-{os.getpid()}"
    pid_file = settings.run / "sleeper.pid"
    pid = process.launch(
        [sys.executable, "-c", "import time; time.sleep(60)", marker],
        name="sleeper",
        marker=marker,
        log_file=settings.logs / "sleeper.log",
        pid_file=pid_file,
        cwd=settings.data,
    )
    assert process.running_pid(pid_file) == pid
    assert psutil.Process(pid).pid == pid

    # A pid file naming a foreign process (this test runner) with another marker: untouched.
    foreign = settings.run / "foreign.pid"
    record = {"pid": os.getpid(), "start": process.start_stamp(os.getpid()), "marker": "x="}
    foreign.write_text(json.dumps(record))
    assert process.running_pid(foreign) is None
    assert process.stop(foreign, name="foreign") is False
    assert not process.signal_owned(foreign, signal.SIGTERM)

    assert process.stop(pid_file, name="sleeper", timeout_s=10) is True
    assert process.running_pid(pid_file) is None and not pid_file.exists()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert "starting sleeper" in "\n".join(process.tail(settings.logs / "sleeper.log"))


def test_readiness_failure_quotes_the_log(settings: GridLakeSettings) -> None:
    from infra.stack.base import Health, Service
    from infra.stack.errors import ServiceNotReadyError

    class Doomed(Service):
        name = "doomed"
        role = "test"
        managed = True
        address = "nowhere"

        def ports(self) -> list[prereq.PortClaim]:
            return []

        def health(self) -> Health:
            return Health(False, "never healthy")

        def command(self, java: str) -> list[str]:
            code = "import sys; print('fatal: disk on fire'); sys.exit(3)"
            return [sys.executable, "-c", code, self.marker]

    svc = Doomed(settings)
    svc.start("java")
    with pytest.raises(ServiceNotReadyError) as exc:
        svc.wait_ready(timeout_s=30)
    assert "doomed is not ready" in str(exc.value)
    assert "fatal: disk on fire" in str(exc.value)


def test_up_and_down_serialise_on_a_lock(settings: GridLakeSettings) -> None:
    first, second = Stack(settings), Stack(settings)
    with first.lock():
        with pytest.raises(StackError, match="another gridlake up/down"):
            with second.lock(timeout_s=0.5):
                pass
    with second.lock(timeout_s=0.5):
        pass
