"""Every HDFS writer creates files with ``settings.hdfs.replication`` (issue 23).

A Hadoop client's own default is 3; on the stack's two DataNodes each block it writes
stays under-replicated. Unit tests check what each writer is told; the integration
tests write through WebHDFS (the ML registry, image and catalog writers) and Spark and
read the replication of the written files back from the NameNode.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.lake import WebHdfs
from infra.settings import GridLakeSettings
from infra.stack.hdfs import client_site, write_client_conf
from ml.registry import ModelRegistry


def _recording(fs: WebHdfs, seen: list[httpx.Request]) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "namenode":
            return httpx.Response(307, headers={"location": "http://datanode/write"})
        return httpx.Response(201)

    fs._http = httpx.Client(transport=httpx.MockTransport(handle))


def test_webhdfs_create_sends_the_settings_replication(settings: GridLakeSettings) -> None:
    settings = settings.model_copy(update={
        "hdfs": settings.hdfs.model_copy(update={"replication": 2})})
    fs = WebHdfs.from_settings(settings)
    fs.url = "http://namenode"
    seen: list[httpx.Request] = []
    _recording(fs, seen)
    fs.write("/x/file", b"data")
    assert seen[0].method == "PUT"
    assert seen[0].url.params["op"] == "CREATE"
    assert seen[0].url.params["replication"] == "2"


def test_webhdfs_without_a_factor_leaves_it_to_the_namenode() -> None:
    fs = WebHdfs("http://namenode", "u")
    seen: list[httpx.Request] = []
    _recording(fs, seen)
    fs.write("/x/file", b"data")
    assert "replication" not in seen[0].url.params


def test_webhdfs_rejects_a_zero_factor() -> None:
    with pytest.raises(ValueError, match="replication"):
        WebHdfs("http://namenode", "u", replication=0)


def test_ml_registry_writes_with_the_settings_replication(settings: GridLakeSettings) -> None:
    settings = settings.model_copy(update={
        "hdfs": settings.hdfs.model_copy(update={"replication": 1}),
        "ml": settings.ml.model_copy(update={"registry": "hdfs"})})
    backend = ModelRegistry.from_settings(settings).backend
    assert backend.client.replication == 1  # type: ignore[attr-defined]


def test_client_conf_carries_the_replication(settings: GridLakeSettings) -> None:
    settings = settings.model_copy(update={
        "hdfs": settings.hdfs.model_copy(update={"replication": 1})})
    assert client_site(settings)["dfs.replication"] == 1
    folder = write_client_conf(settings)
    for name in ("core-site.xml", "hdfs-site.xml"):
        text = (folder / name).read_text()
        assert "<name>dfs.replication</name><value>1</value>" in text


def test_streaming_job_classpath_holds_the_client_conf(
    settings: GridLakeSettings, tmp_path: Path
) -> None:
    from jobs.streaming.control import job_env

    flink = settings.jars / "flink"
    flink.mkdir(parents=True)
    (flink / "gridlake-flink-connectors-1.0.jar").write_bytes(b"")
    env = job_env(settings)
    entries = env["HADOOP_CLASSPATH"].split(":")
    conf = write_client_conf(settings)
    assert str(conf) in entries
    assert (conf / "core-site.xml").is_file()


# ------------------------------------------------------------------------- integration
@pytest.fixture
def isolated(stack: GridLakeSettings) -> Iterator[GridLakeSettings]:
    """The stack's settings with this test's own lake root (removed afterwards)."""
    run = uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={
        "hdfs": stack.hdfs.model_copy(update={"lake_root": f"/gridlake/test/r{run}"})})
    yield settings
    with WebHdfs.from_settings(settings) as fs:
        fs.delete(settings.hdfs.lake_root, recursive=True)


def _replications(settings: GridLakeSettings, folder: str) -> list[int]:
    """Replication of every file under ``folder`` (recursive GETFILESTATUS/LISTSTATUS)."""
    out: list[int] = []
    with WebHdfs.from_settings(settings) as fs:
        for st in fs.list_status(folder):
            path = f"{folder}/{st.name}"
            if st.is_dir:
                out += _replications(settings, path)
            else:
                out.append(st.replication)
    return out


@pytest.mark.integration
def test_webhdfs_files_are_fully_replicated(isolated: GridLakeSettings) -> None:
    s = isolated
    root = s.hdfs.lake_root
    with WebHdfs.from_settings(s) as fs:
        fs.write(f"{root}/a.bin", b"x" * 1024)
    assert _replications(s, root) == [s.hdfs.replication]
    assert s.hdfs.replication <= len(s.hdfs.datanodes)


@pytest.mark.integration
@pytest.mark.slow
def test_spark_files_are_fully_replicated(isolated: GridLakeSettings) -> None:
    from infra.spark import spark_session

    s = isolated
    session = spark_session(s, "test-replication")
    try:
        session.range(10).write.parquet(f"{s.hdfs.uri}{s.hdfs.lake_root}/spark")
    finally:
        session.stop()
    reps = _replications(s, f"{s.hdfs.lake_root}/spark")
    assert reps, "Spark wrote no file"
    assert set(reps) == {s.hdfs.replication}
