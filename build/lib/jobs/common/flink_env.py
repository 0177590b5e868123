"""Launch environment of PyFlink jobs that use GridLake's jars.

PyFlink starts its gateway JVM (which also hosts the local mini-cluster) with Flink's own
``lib`` on the classpath followed by ``$HADOOP_CLASSPATH`` (see
``pyflink/pyflink_gateway_server.py``). GridLake puts its connector jar, Hudi's runtime,
the Hadoop client and the Kafka SQL connector there, built into ``<jars>/flink`` by
``gridlake setup`` (Maven, ``jobs/streaming/connectors``). They must not be added with
``pipeline.jars``/``add_jars``: the user-code classloader then loads Hudi and Hadoop classes
twice (class-cast and closed-classloader errors).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CONNECTOR_JAR_PREFIX = "gridlake-flink-connectors-"

# Module openings for Java 17: Flink (Kryo 5, its own serializers), Hadoop (reflection into
# java.lang/java.net/sun.nio.ch), Hudi (object size estimation, Kryo 4 spill serializers) and
# Parquet/Avro. Flink's config.yaml adds most of these too; repeating them is harmless.
JAVA17_MODULE_FLAGS: tuple[str, ...] = (
    "-XX:+IgnoreUnrecognizedVMOptions",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.math=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.security=ALL-UNNAMED",
    "--add-opens=java.base/java.text=ALL-UNNAMED",
    "--add-opens=java.base/java.time=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED",
    "--add-opens=java.base/java.util.regex=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
    "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
    "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
    "--add-opens=java.sql/java.sql=ALL-UNNAMED",
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    # Hudi's object-size estimator (JOL) would try to attach the HotSpot agent and warn
    "-Djol.skipHotspotSAAttach=true",
    "-Djdk.attach.allowAttachSelf=true",
)


def flink_classpath(jars_dir: Path) -> list[Path]:
    """The jars of ``<jars_dir>/flink`` in classpath order: the connector jar first.

    Args:
        jars_dir: GridLake's jar root (``<repo>/.gridlake/jars``), holding ``flink/``.

    Returns:
        Absolute jar paths.

    Raises:
        FileNotFoundError: When the folder or the connector jar is missing (build first).

    """
    folder = Path(jars_dir) / "flink"
    jars = sorted(p.resolve() for p in folder.glob("*.jar")) if folder.is_dir() else []
    connectors = [p for p in jars if p.name.startswith(CONNECTOR_JAR_PREFIX)]
    if not connectors:
        raise FileNotFoundError(
            f"no {CONNECTOR_JAR_PREFIX}*.jar in {folder}; build it with "
            "`gridlake setup`"
        )
    return connectors + [p for p in jars if p not in connectors]


def flink_launch_env(
    jars_dir: Path, heap: str, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment to start a PyFlink program (or its gateway) with GridLake's jars.

    ``HADOOP_CLASSPATH`` becomes the explicit ``:``-joined list of the jars in
    ``<jars_dir>/flink`` (a previous value is replaced: a second Hadoop on the classpath
    would clash with the bundled 3.5 client; ``HADOOP_CONF_DIR`` is still honoured).
    ``JVM_ARGS`` gets the heap size and the Java 17 module flags.

    Args:
        jars_dir: GridLake's jar root (``<repo>/.gridlake/jars``).
        heap: Maximum heap of the gateway JVM, in JVM syntax (``768m``, ``2g``).
        base: Environment to extend; defaults to ``os.environ``.

    Returns:
        A new environment mapping (``base`` plus ``HADOOP_CLASSPATH`` and ``JVM_ARGS``).

    Raises:
        FileNotFoundError: When the jars have not been built.
        ValueError: When ``heap`` is not a JVM memory size.

    """
    size = heap.strip()
    if not size or not size[:-1].isdigit() or size[-1].lower() not in "kmg":
        raise ValueError(f"heap must look like 768m or 2g, got {heap!r}")
    env = dict(os.environ if base is None else base)
    env["HADOOP_CLASSPATH"] = os.pathsep.join(str(p) for p in flink_classpath(jars_dir))
    env["JVM_ARGS"] = " ".join((f"-Xmx{size}", *JAVA17_MODULE_FLAGS))
    return env
