"""Settings of the local stack: defaults, environment overrides, derived values."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.settings import GridLakeSettings

pytestmark = pytest.mark.usefixtures("clean_env")


def fresh(**kwargs: object) -> GridLakeSettings:
    return GridLakeSettings(_env_file=None, **kwargs)  # type: ignore[arg-type,call-arg]


def test_defaults_describe_the_local_stack() -> None:
    s = fresh()
    assert (s.kafka.host, s.kafka.port, s.kafka.controller_port) == ("127.0.0.1", 9092, 9093)
    assert s.hdfs.uri == "hdfs://127.0.0.1:8020"
    assert s.hdfs.webhdfs_url == "http://127.0.0.1:9870"
    assert s.hdfs.replication == 2
    assert [d.name for d in s.hdfs.datanodes] == ["slave1", "slave2"]
    ports = [p for d in s.hdfs.datanodes for p in (d.data_port, d.http_port, d.ipc_port)]
    assert len(set(ports)) == len(ports)
    assert (s.redis.host, s.redis.port) == ("127.0.0.1", 6379)
    # every JVM heap is explicit
    assert s.kafka.heap == "512m" and s.hdfs.heap and s.hdfs.datanode_heap


def test_environment_overrides_nested_sections(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GRIDLAKE_HOME", str(tmp_path))
    monkeypatch.setenv("GRIDLAKE_KAFKA__BOOTSTRAP", "broker.example:19092")
    monkeypatch.setenv("GRIDLAKE_KAFKA__MANAGED", "false")
    monkeypatch.setenv("GRIDLAKE_HDFS__DATANODE_HEAP", "300m")
    monkeypatch.setenv("GRIDLAKE_REDIS__URL", "redis://cache.example:6380/2")
    s = fresh()
    assert s.home == tmp_path.resolve()
    assert (s.kafka.host, s.kafka.port, s.kafka.managed) == ("broker.example", 19092, False)
    assert s.hdfs.datanode_heap == "300m"
    assert (s.redis.host, s.redis.port) == ("cache.example", 6380)


def test_paths_live_under_home(tmp_path: Path) -> None:
    s = fresh(home=tmp_path)
    for p in (s.jars, s.logs, s.run, s.data):
        assert p.is_relative_to(tmp_path.resolve())


def test_settings_fixture_is_isolated(settings: GridLakeSettings, tmp_path: Path) -> None:
    assert settings.home.is_relative_to(tmp_path)
    assert settings.kafka.port != 9092


def test_lock_wait_ends_before_flink_kills_a_stuck_task() -> None:
    """A writer waiting for a Hudi lock must give up before Flink's task cancellation timeout
    (180 s, then the TaskManager is killed) and after a dead writer's file lock expires."""
    from pydantic import ValidationError

    options = fresh().lake.hoodie_options()
    waited_s = (int(options["hoodie.write.lock.client.num_retries"])
                * int(options["hoodie.write.lock.client.wait_time_ms_between_retry"]) / 1000)
    expire_s = 60 * int(options["hoodie.write.lock.filesystem.expire"])
    assert expire_s < waited_s < 180
    # a provider whose tryLock waits itself gets half the attempts
    zk = fresh(lake={"lock_provider": "org.example.ZookeeperBasedLockProvider"}).lake
    zk_options = zk.hoodie_options()
    assert (int(zk_options["hoodie.write.lock.client.num_retries"])
            * (int(zk_options["hoodie.write.lock.wait_time_ms"])
               + int(zk_options["hoodie.write.lock.client.wait_time_ms_between_retry"]))
            / 1000) < 180
    with pytest.raises(ValidationError, match="lock_wait_s"):
        fresh(lake={"lock_wait_s": 60, "lock_expire_minutes": 1})
    with pytest.raises(ValidationError, match="lock_wait_s"):
        fresh(lake={"lock_wait_s": 170})
