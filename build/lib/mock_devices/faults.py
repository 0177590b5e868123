"""Injectable, labelled faults: the catalogue, parsing of requests and scheduling.

A fault request is ``type[:device_id][@start][/duration]``; missing parts are drawn from
the run's seed (a random device of the right kind, a random start within the run, the
type's default duration). Every scheduled fault becomes one label (see
:func:`mock_devices.labels.fault_label`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lakehouse.time import DAY_MS, HOUR_MS, MINUTE_MS
from mock_devices.config import ConfigError, parse_duration_ms, parse_time_ms
from mock_devices.topology import Topology


@dataclass(frozen=True)
class FaultKind:
    """One entry of the fault catalogue.

    Attributes:
        name: Fault type name.
        device_type: Kind of device it targets.
        topic: Topic where its primary signature shows.
        default_duration_ms: Duration when the request gives none.
        description: What is injected and how it shows.

    """

    name: str
    device_type: str
    topic: str
    default_duration_ms: int
    description: str


CATALOGUE: dict[str, FaultKind] = {k.name: k for k in (
    FaultKind("transformer_overload", "transformer", "transformer.telemetry", 2 * HOUR_MS,
              "Extra customer load under the transformer raises it to 1.3-1.6 pu; meters, "
              "feeder and temperatures follow."),
    FaultKind("transformer_overheating", "transformer", "transformer.telemetry", 6 * HOUR_MS,
              "Degraded cooling multiplies the top-oil rise by 1.6-2.0 at any load."),
    FaultKind("dga_thermal", "transformer", "transformer.dga", 48 * HOUR_MS,
              "Thermal fault in oil (> 300 °C): C2H4 and CH4 grow, then C2H6 and H2."),
    FaultKind("dga_partial_discharge", "transformer", "transformer.dga", 48 * HOUR_MS,
              "Partial discharge: H2 grows with some CH4."),
    FaultKind("dga_arcing", "transformer", "transformer.dga", 48 * HOUR_MS,
              "Arcing: C2H2 and H2 grow, with C2H4."),
    FaultKind("ess_cell_imbalance", "ess", "ess.bms", 6 * HOUR_MS,
              "Cell voltage gap grows linearly by 150-400 mV over the window."),
    FaultKind("ess_thermal_runaway", "ess", "ess.bms", 45 * MINUTE_MS,
              "Exponential cell temperature rise; the BMS trips at 60 °C (state fault)."),
    FaultKind("meter_tampering", "meter", "meter.readings", 24 * HOUR_MS,
              "A bypass: the meter records only 30-60 % of the power drawn; the feeder "
              "still sees it (line-loss rate rises)."),
    FaultKind("meter_stuck", "meter", "meter.readings", 12 * HOUR_MS,
              "The meter repeats its last reading (register and values frozen)."),
    FaultKind("voltage_sag", "substation", "scada.substation", 5 * MINUTE_MS,
              "The MV bus voltage drops to 55-85 % for minutes; all its meters see it."),
    FaultKind("feeder_outage", "feeder", "scada.feeder", 45 * MINUTE_MS,
              "Feeder breaker open: zero current; its meters and transformers go silent."),
)}

_DEVICE_LISTS = {
    "transformer": "tx_ids", "ess": "ess_ids", "meter": "meter_ids",
    "substation": "substation_ids", "feeder": "feeder_ids",
}


@dataclass(frozen=True)
class FaultRequest:
    """A parsed ``--fault`` option; None parts are drawn from the seed."""

    type: str
    device_id: str | None = None
    start_ms: int | None = None
    duration_ms: int | None = None


@dataclass(frozen=True)
class FaultSpec:
    """A scheduled fault.

    Attributes:
        id: Label id, unique within a run.
        type: Catalogue name.
        device_id: Target device.
        device_index: Index of the device in its topology list.
        start_ms: First affected event time (inclusive, minute aligned).
        end_ms: End of the fault (exclusive).
        params: Drawn parameters (target load, depth, rates...).

    """

    id: str
    type: str
    device_id: str
    device_index: int
    start_ms: int
    end_ms: int
    params: dict[str, float] = field(default_factory=dict)

    @property
    def kind(self) -> FaultKind:
        """The catalogue entry."""
        return CATALOGUE[self.type]

    def active(self, ts_ms: int) -> bool:
        """Whether the fault is active at ``ts_ms``."""
        return self.start_ms <= ts_ms < self.end_ms

    def detail(self) -> str:
        """Parameters as a JSON object string."""
        return json.dumps(self.params, sort_keys=True)


def parse_fault(text: str) -> FaultRequest:
    """Parse ``type[:device][@start][/duration]``.

    Raises:
        ConfigError: Unknown type or bad time/duration.

    """
    rest, duration = text.strip(), None
    if "/" in rest:
        rest, dur = rest.rsplit("/", 1)
        duration = parse_duration_ms(dur)
    start = None
    if "@" in rest:
        rest, when = rest.split("@", 1)
        start = parse_time_ms(when)
    name, _, device = rest.partition(":")
    name = name.strip()
    if name not in CATALOGUE:
        raise ConfigError(f"unknown fault {name!r}; choose from {', '.join(CATALOGUE)}")
    return FaultRequest(name, device.strip() or None, start, duration)


def _params(kind: str, rng: np.random.Generator) -> dict[str, float]:
    if kind == "transformer_overload":
        return {"target_pu": round(float(rng.uniform(1.3, 1.6)), 3)}
    if kind == "transformer_overheating":
        return {"cooling_factor": round(float(rng.uniform(1.6, 2.0)), 3)}
    if kind.startswith("dga_"):
        return {"rate_scale": round(float(rng.uniform(0.7, 1.5)), 3)}
    if kind == "ess_cell_imbalance":
        return {"extra_gap_mv": round(float(rng.uniform(150.0, 400.0)), 1)}
    if kind == "ess_thermal_runaway":
        return {"onset_k": 0.3, "tau_min": round(float(rng.uniform(6.0, 9.0)), 2)}
    if kind == "meter_tampering":
        return {"recorded_fraction": round(float(rng.uniform(0.3, 0.6)), 3)}
    if kind == "voltage_sag":
        return {"retained_pu": round(float(rng.uniform(0.55, 0.85)), 3)}
    return {}


def schedule_faults(
    requests: list[FaultRequest],
    topo: Topology,
    start_ms: int,
    end_ms: int | None,
    seed: int,
) -> list[FaultSpec]:
    """Resolve requests into scheduled faults (deterministic for the seed).

    Raises:
        ConfigError: Unknown device, a device of the wrong kind, no device of the kind,
            or a start outside the run.

    """
    horizon = end_ms if end_ms is not None else start_ms + DAY_MS
    specs: list[FaultSpec] = []
    for i, req in enumerate(requests):
        kind = CATALOGUE[req.type]
        rng = np.random.default_rng([seed, 5, i])
        ids: list[str] = getattr(topo, _DEVICE_LISTS[kind.device_type])
        if not ids:
            raise ConfigError(f"fault {req.type}: the fleet has no {kind.device_type}")
        if req.device_id is None:
            index = int(rng.integers(0, len(ids)))
        else:
            try:
                index = ids.index(req.device_id)
            except ValueError:
                raise ConfigError(
                    f"fault {req.type}: no {kind.device_type} called {req.device_id!r}"
                ) from None
        duration = req.duration_ms or kind.default_duration_ms
        if req.start_ms is None:
            span = max(horizon - start_ms - duration, MINUTE_MS)
            begin = start_ms + int(rng.integers(0, span // MINUTE_MS)) * MINUTE_MS
        else:
            begin = -(-req.start_ms // MINUTE_MS) * MINUTE_MS
            if not start_ms <= begin < horizon:
                raise ConfigError(f"fault {req.type}: start is outside the simulated range")
        end = begin + duration
        if end_ms is not None:
            end = min(end, end_ms)
        specs.append(FaultSpec(
            id=f"F{i + 1:04d}", type=req.type, device_id=ids[index], device_index=index,
            start_ms=begin, end_ms=end, params=_params(req.type, rng),
        ))
    return specs


def fault_labels(specs: list[FaultSpec], seed: int) -> list[dict[str, Any]]:
    """The label message of every scheduled fault."""
    return [
        {"label_id": s.id, "kind": "fault", "type": s.type, "device_id": s.device_id,
         "topic": s.kind.topic, "start_ts": s.start_ms, "end_ts": s.end_ms,
         "detail": s.detail(), "seed": seed}
        for s in specs
    ]
