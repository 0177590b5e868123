"""The simulator as a source of ML series: :class:`SimulatorSource` and the seeded ESS sites.

:mod:`ml.data.sources` defines what a series source is (:class:`~ml.data.sources.SeriesSource`,
:class:`~ml.data.sources.Series`, :class:`~ml.data.sources.DataDescription`); the ML code
trains and evaluates on any such source and knows nothing of the simulator. This module is
the simulator's side of that protocol: it runs the seeded :class:`~mock_devices.fleet.Fleet`
and labels every step with the fault injected there. It imports only ML's protocol module
(numpy and pandas, no torch), so the simulator never pulls in the network.

:class:`SiteScenario` describes a simulated ESS site (seed, fleet size, BMS interval,
channel subset) with a normal training period and a test period with a fixed fault plan
(:func:`ess_fault_plan`: thermal runaway onsets and cell imbalances on both banks).
:data:`SITE_A` and :data:`SITE_B` are the sites of the ML benchmark, the tests and
``gridlake ml --source sim``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np

from lakehouse.contracts.messages import ESS_BMS
from lakehouse.contracts.schema import Field, MessageContract
from lakehouse.time import HOUR_MS, MINUTE_MS
from ml.data.sources import (
    DataDescription,
    Series,
    SourceError,
    resolve_channels,
    series_from_rows,
)
from mock_devices.config import FleetConfig, parse_time_ms
from mock_devices.faults import FaultRequest
from mock_devices.fleet import Fleet

logger = logging.getLogger(__name__)

SIM_DEVICE_KIND = {"ess.bms": "ess", "transformer.telemetry": "transformer",
                   "pv.inverter": "pv", "scada.feeder": "feeder",
                   "scada.substation": "substation", "meter.readings": "meter"}
"""Simulator device family (``FleetConfig.devices``) emitting each contract's topic."""


def _default_fleet() -> FleetConfig:
    return FleetConfig(meters=50, ess_interval_s=10)


@dataclass(frozen=True)
class SimulatorSource:
    """Series of one contract from the seeded simulator, labelled by injected faults.

    Attributes:
        contract: Message contract whose numeric fields become channels.
        fleet: Fleet configuration (seed, size, ESS interval); only the contract's device
            family is emitted.
        start: First instant (ISO date or date-time, UTC).
        hours: Length of the run.
        faults: Faults to inject (``None`` parts are drawn from the seed).
        channels: Channel subset; ``None`` means every numeric field.
        site: Site name for the data description; default ``sim-seed<seed>``.

    """

    contract: MessageContract = ESS_BMS
    fleet: FleetConfig = field(default_factory=_default_fleet)
    start: str = "2024-06-01"
    hours: float = 24.0
    faults: tuple[FaultRequest, ...] = ()
    channels: tuple[str, ...] | None = None
    site: str = ""

    def _fields(self) -> tuple[Field, ...]:
        return resolve_channels(self.contract, self.channels)

    def _step_ms(self) -> int:
        if self.contract.topic == "ess.bms":
            return self.fleet.ess_interval_s * 1000
        if self.contract.topic == "meter.readings":
            return self.fleet.meter_interval_s * 1000
        return MINUTE_MS

    def description(self) -> DataDescription:
        """Contract, channels and grid of the simulated series."""
        fields = self._fields()
        return DataDescription(
            source="simulator", contract=self.contract.name,
            channels=tuple(f.name for f in fields), units=tuple(f.unit for f in fields),
            step_ms=self._step_ms(), site=self.site or f"sim-seed{self.fleet.seed}",
            details={"start": self.start, "hours": str(self.hours),
                     "seed": str(self.fleet.seed), "meters": str(self.fleet.meters),
                     "faults": ",".join(f.type for f in self.faults)},
        )

    def load(self) -> list[Series]:
        """Run the simulation and collect every device's series and fault labels.

        Raises:
            SourceError: The contract is not simulated or the run emits nothing.

        """
        topic = self.contract.topic
        kind = SIM_DEVICE_KIND.get(topic)
        if kind is None:
            raise SourceError(f"the simulator does not emit {self.contract.name}")
        names = [f.name for f in self._fields()]
        key, tcol = self.contract.key_field, self.contract.event_time_field
        t0 = parse_time_ms(self.start)
        cfg = dataclasses.replace(self.fleet, devices=frozenset({kind}))
        fleet = Fleet(cfg, t0, t0 + int(self.hours * HOUR_MS), faults=self.faults)
        devices: list[str] = []
        times: list[int] = []
        rows: list[list[float]] = []
        for rec_topic, _, msg in fleet.records():
            if rec_topic != topic or not isinstance(msg, dict):
                continue
            devices.append(str(msg[key]))
            times.append(int(msg[tcol]))
            rows.append([float(msg.get(n, np.nan)) for n in names])
        if not rows:
            raise SourceError(f"the simulation emitted no {topic} messages")
        # the grid every source uses; labels then follow the faults the fleet injected
        grid = series_from_rows(np.asarray(devices), np.asarray(times, dtype=np.int64),
                                np.asarray(rows, dtype=np.float64), self._step_ms())
        out: list[Series] = []
        for s in grid:
            ft = np.full(s.ts_ms.shape, "", dtype=object)
            for spec in fleet.faults:
                if spec.kind.topic == topic and spec.device_id == s.device_id:
                    ft[(s.ts_ms >= spec.start_ms) & (s.ts_ms < spec.end_ms)] = spec.type
            out.append(Series(s.device_id, s.ts_ms, s.values, ft.astype(str)))
        logger.info("simulated %d %s series of %d steps", len(out), topic, len(out[0]))
        return out


def ess_fault_plan(day: str) -> tuple[FaultRequest, ...]:
    """The benchmark's faults on ``day`` (two banks ``ESS-01``, ``ESS-02``).

    Each bank gets one thermal runaway onset (45 min) and one 3-hour cell imbalance.
    """
    def at(kind: str, dev: str, hhmm: str, hours: float | None = None) -> FaultRequest:
        dur = None if hours is None else int(hours * HOUR_MS)
        return FaultRequest(kind, dev, parse_time_ms(f"{day}T{hhmm}"), dur)

    return (
        at("ess_thermal_runaway", "ESS-01", "02:00"),
        at("ess_cell_imbalance", "ESS-02", "04:00", 3.0),
        at("ess_cell_imbalance", "ESS-01", "11:00", 3.0),
        at("ess_thermal_runaway", "ESS-02", "14:00"),
    )


@dataclass(frozen=True)
class SiteScenario:
    """A simulated ESS site: a normal training day and a labelled test day.

    Attributes:
        name: Site name.
        seed: Simulator seed.
        meters: Fleet size (sets the ESS ratings through the substation peaks).
        ess_interval_s: BMS interval in seconds.
        channels: Channel subset of the ESS contract (``None``: all numeric fields).
        train_start: First day of the normal period.
        train_hours: Length of the normal period (training plus validation).
        test_start: Day of the labelled test period.
        test_hours: Length of the test period.

    """

    name: str
    seed: int
    meters: int = 50
    ess_interval_s: int = 10
    channels: tuple[str, ...] | None = None
    train_start: str = "2024-06-01"
    train_hours: float = 24.0
    test_start: str = "2024-06-02"
    test_hours: float = 24.0

    def _fleet(self) -> FleetConfig:
        return FleetConfig(meters=self.meters, ess_interval_s=self.ess_interval_s,
                           seed=self.seed)

    def normal_source(self) -> SimulatorSource:
        """The fault-free period."""
        return SimulatorSource(ESS_BMS, self._fleet(), self.train_start, self.train_hours,
                               channels=self.channels, site=self.name)

    def test_source(self) -> SimulatorSource:
        """The labelled test period (:func:`ess_fault_plan`)."""
        return SimulatorSource(ESS_BMS, self._fleet(), self.test_start, self.test_hours,
                               faults=ess_fault_plan(self.test_start[:10]),
                               channels=self.channels, site=self.name)


SITE_A = SiteScenario("site-a", seed=7, meters=50)
"""The benchmark's source site."""
SITE_B = SiteScenario("site-b", seed=11, meters=400)
"""The benchmark's transfer target (other seed, larger banks)."""
