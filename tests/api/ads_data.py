"""The API tests' data: the seeded lakehouse scenario's ADS tables, as the pipeline stores
them, in an isolated run (own topics, lake root and Redis key prefix).

``load(stack)`` publishes the scenario's registry messages to the run's
``device.registry`` topic (the device catalog reads them) and writes the oracle's ADS rows
(``tests.jobs.streaming.lakehouse_oracle``: an independent pandas computation from the
scenario's messages) through the streaming job's own Hudi and Redis sinks
(``tests.api.serving_load``). Tests then compare the API's answers with the same oracle
frames, aggregated independently where the API aggregates (rankings).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from infra.serde import loads
from infra.settings import GridLakeSettings
from lakehouse.contracts.messages import DEVICE_REGISTRY
from lakehouse.contracts.precision import rounded
from lakehouse.contracts.tables import ADS_TABLES
from ops.bench.isolation import isolated_run
from tests.api import serving_load
from tests.jobs.streaming import lakehouse_data, lakehouse_oracle
from tests.jobs.streaming.conftest import publish_to

UPDATED_MS = 1_772_500_000_000
"""``updated_ts`` of every loaded row (the oracle does not predict it)."""


@dataclass
class World:
    """An isolated run holding the scenario's ADS tables and registry.

    Attributes:
        settings: The run's settings (topics, lake root, key prefix).
        env: The same as environment variables.
        oracle: Table name → expected frame (timestamps as epoch ms).
        registry: Device id → its latest registry record.

    """

    settings: GridLakeSettings
    env: dict[str, str]
    oracle: dict[str, pd.DataFrame]
    registry: dict[str, dict[str, Any]]

    def rows(self, table: str) -> list[dict[str, Any]]:
        """The oracle's rows of ``table`` as plain dicts (None for missing values)."""
        return [{k: _plain(v) for k, v in r.items()}
                for r in self.oracle[table].to_dict("records")]

    def rows_in(self, ds: Any, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """The oracle's rows of a dataset with time in ``[start_ms, end_ms)``."""
        return [r for r in self.rows(ds.table.name) if start_ms <= r[ds.time_field] < end_ms]

    def region(self, device_id: str) -> str:
        """Current region of a registered device."""
        return str(self.registry[device_id]["region_id"])


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def oracle() -> tuple[dict[str, pd.DataFrame], list[tuple[str, bytes | None, bytes]]]:
    """The ADS frames of scenario 7 and its registry messages, in publish order."""
    scn = lakehouse_data.scenario(7)
    expected = lakehouse_oracle.expected(scn)
    registry = [m for _, m in scn.messages if m[0] == DEVICE_REGISTRY.topic]
    return {t.name: expected[t.name] for t in ADS_TABLES}, registry


def load(stack: GridLakeSettings) -> World:
    """Create the isolated run and fill it (takes about a minute: one Flink job)."""
    frames, registry = oracle()
    settings, env = isolated_run(stack)
    publish_to(settings, registry)
    latest: dict[str, dict[str, Any]] = {}
    for _, _, value in registry:
        rec = loads(value)
        if DEVICE_REGISTRY.validate(rec) is None:
            cur = latest.get(rec["device_id"])
            if cur is None or rec["version"] >= cur["version"]:
                latest[rec["device_id"]] = rec
    world = World(settings, env, frames, latest)
    rows = {}
    for t in ADS_TABLES:
        rows[t.name] = [{**r, "updated_ts": UPDATED_MS} for r in world.rows(t.name)]
    with tempfile.TemporaryDirectory() as tmp:
        serving_load.write_inputs(Path(tmp), rows)
        serving_load.run(settings, Path(tmp), env)
    return world


def ms(value: Any) -> Any:
    """Epoch milliseconds of an API/lake timestamp (datetime or ISO text); others as is."""
    from datetime import datetime

    if isinstance(value, str) and len(value) >= 20 and value[4] == "-" and value[10] == "T":
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return value


def close(a: Any, b: Any) -> bool:
    """Equal, with a relative tolerance for floats (serving text ↔ double round trips)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
    return bool(a == b)


def same_rows(ds: Any, got: list[dict[str, Any]], want: list[dict[str, Any]],
              answered: bool = False) -> None:
    """Assert that API/lake rows equal oracle rows, key by key and column by column
    (``updated_ts`` is the loader's, not predicted); ``answered``: the API's rows, whose
    doubles are rounded to their unit's decimals."""
    key = ds.table.record_key

    def index(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
        return {tuple(ms(r[k]) for k in key): r for r in rows}

    g, w = index(got), index(want)
    assert len(g) == len(got), f"{ds.name}: duplicate keys"
    assert g.keys() == w.keys(), (
        f"{ds.name}: missing {sorted(w.keys() - g.keys())[:5]}, "
        f"unexpected {sorted(g.keys() - w.keys())[:5]}")
    places = dict(ds.roundings) if answered else {}
    for k, row in w.items():
        for col, value in row.items():
            if col == "updated_ts":
                continue
            if col in places and value is not None:
                value = rounded(float(value), places[col])
            assert close(ms(g[k].get(col)), ms(value)), (ds.name, k, col, g[k].get(col), value)
