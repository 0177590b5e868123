"""The streaming job's Prometheus reporter: Flink options from settings, jar in the build.

The live check (a running job answering on the reporter's port) is not part of this test:
it needs the streaming job started.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.settings import FlinkSettings, GridLakeSettings
from jobs.streaming.runtime import PROMETHEUS_FACTORY, flink_config, prometheus_reporter

REPO = Path(__file__).resolve().parents[3]


def _with(settings: GridLakeSettings, port: str | None) -> GridLakeSettings:
    return settings.model_copy(update={"flink": settings.flink.model_copy(
        update={"prometheus_port": port})})


def test_reporter_options_follow_settings(settings: GridLakeSettings) -> None:
    conf = flink_config(_with(settings, "9350"), "lakehouse")
    assert conf["metrics.reporters"] == "prom"
    assert conf["metrics.reporter.prom.factory.class"] == PROMETHEUS_FACTORY
    assert conf["metrics.reporter.prom.port"] == "9350"
    # a port range (several TaskManagers on one host of a remote cluster)
    assert prometheus_reporter(_with(settings, "9250-9260"))[
        "metrics.reporter.prom.port"] == "9250-9260"
    off = flink_config(_with(settings, None), "lakehouse")
    assert not any(k.startswith("metrics.reporter") for k in off)
    assert "metrics.reporters" not in off


def test_default_port_and_validation() -> None:
    assert FlinkSettings().prometheus_port == "9249"
    assert FlinkSettings(prometheus_port="").prometheus_port is None
    assert FlinkSettings(prometheus_port="none").prometheus_port is None
    for bad in ("http://x", "9249;rm", "-1"):
        with pytest.raises(ValidationError):
            FlinkSettings(prometheus_port=bad)


def test_reporter_jar_is_resolved_with_the_connectors() -> None:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    pom = ET.parse(REPO / "jobs" / "streaming" / "connectors" / "pom.xml").getroot()
    deps = {(d.findtext("m:groupId", namespaces=ns), d.findtext("m:artifactId", namespaces=ns)):
            d for d in pom.iterfind("m:dependencies/m:dependency", ns)}
    dep = deps[("org.apache.flink", "flink-metrics-prometheus")]
    assert dep.findtext("m:version", namespaces=ns) == "${flink.version}"
    # runtime scope: it must be on the job's classpath (provided would leave it out)
    assert dep.findtext("m:scope", namespaces=ns) in (None, "compile", "runtime")
