"""Where training and scoring series come from: the :class:`SeriesSource` protocol.

A source yields :class:`Series`: one device's multichannel readings on a regular time
grid, with ``NaN`` where a reading is missing and, when known, the ground-truth fault
type of every step. Channels are the numeric (``DOUBLE``) fields of a message contract
(:mod:`lakehouse.contracts.messages`), in contract order, unless a subset is chosen.

Implemented here: :class:`FileSource`, a Parquet or CSV file (one row per device and
instant). Elsewhere:

* :class:`ml.data.lake_source.LakeSource` - the DWD tables of the lake (Hudi on HDFS), read with
  Spark; it lives in its own module so that this one needs no JVM;
* the seeded simulator with labelled fault injection, on the simulator's side of this
  protocol (its ``ml_source`` module): ML code takes any source and does not know the
  simulator. The simulator imports this module, which therefore stays light: numpy and
  pandas, no torch, nothing of the simulator.

Every source places readings on the grid the same way (:func:`series_from_rows`), so
gaps reach :mod:`ml.data.scaling` as NaN rows whichever source they come from.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from lakehouse.contracts.messages import ESS_BMS, MESSAGES
from lakehouse.contracts.schema import Field, FieldType, MessageContract
from ml.data.labels import LabelError, as_fault_types

logger = logging.getLogger(__name__)

LABEL_COLUMN = "fault_type"
"""Optional column of a series file: the fault type of the step, empty when normal."""


class SourceError(ValueError):
    """A source cannot produce series (bad file, unknown channel, empty result)."""


def contract_by_name(name: str) -> MessageContract:
    """The message contract called ``name`` (e.g. ``ess_bms``).

    Raises:
        SourceError: No such contract.

    """
    for m in MESSAGES:
        if m.name == name:
            return m
    raise SourceError(f"unknown message contract {name!r}")


def numeric_channels(contract: MessageContract) -> tuple[Field, ...]:
    """The contract's numeric measurement fields (type ``DOUBLE``), in contract order."""
    return tuple(f for f in contract.fields if f.type is FieldType.DOUBLE)


def resolve_channels(
    contract: MessageContract, names: Sequence[str] | None = None
) -> tuple[Field, ...]:
    """The channel fields to use: all numeric fields, or the named subset in that order.

    Raises:
        SourceError: A name is not a numeric field of the contract.

    """
    numeric = numeric_channels(contract)
    if names is None:
        return numeric
    by_name = {f.name: f for f in numeric}
    unknown = [n for n in names if n not in by_name]
    if unknown or not names:
        raise SourceError(
            f"{contract.name}: channels must be a non-empty subset of "
            f"{[f.name for f in numeric]}, got unknown {unknown}"
        )
    return tuple(by_name[n] for n in names)


@dataclass(frozen=True)
class DataDescription:
    """What a model was trained on; stored in the model's metadata.

    Attributes:
        source: Kind of source (``simulator``, ``file`` or ``lake``).
        contract: Message contract name the channels come from.
        channels: Channel names, in input order.
        units: Unit of every channel.
        step_ms: Spacing of the time grid in milliseconds.
        site: Free-text site identifier (seed, plant name, file name).
        details: Further source parameters, as strings.

    """

    source: str
    contract: str
    channels: tuple[str, ...]
    units: tuple[str, ...]
    step_ms: int
    site: str = ""
    details: dict[str, str] = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.channels)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        d["units"] = list(self.units)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataDescription:
        """Inverse of :meth:`to_dict`."""
        return cls(
            source=str(d["source"]), contract=str(d["contract"]),
            channels=tuple(d["channels"]), units=tuple(d["units"]), step_ms=int(d["step_ms"]),
            site=str(d.get("site", "")), details={str(k): str(v) for k, v in
                                                  d.get("details", {}).items()},
        )


@dataclass(frozen=True)
class Series:
    """One device's series on a regular time grid.

    Attributes:
        device_id: Device (message key).
        ts_ms: Event times, epoch milliseconds, shape ``(T,)``, evenly spaced.
        values: Readings, shape ``(T, C)``, float64, ``NaN`` where missing.
        fault_types: Ground truth per step, shape ``(T,)``: the fault type, ``""`` when
            normal; ``None`` when the source has no labels. Boolean and 0/1 labels are
            accepted and normalised (:func:`ml.data.labels.as_fault_types`).

    """

    device_id: str
    ts_ms: np.ndarray
    values: np.ndarray
    fault_types: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.ts_ms.shape != (self.values.shape[0],):
            raise SourceError(
                f"{self.device_id}: values must be (T, C) and ts (T,), got "
                f"{self.values.shape} and {self.ts_ms.shape}"
            )
        if self.fault_types is not None:
            if np.shape(self.fault_types) != self.ts_ms.shape:
                raise SourceError(f"{self.device_id}: {np.shape(self.fault_types)[0]} labels "
                                  f"for {self.ts_ms.shape[0]} steps")
            try:
                # 0/1 and boolean labels become fault types ("" normal): compared with ""
                # as they were, every step of a numeric label array read as anomalous
                object.__setattr__(self, "fault_types", as_fault_types(self.fault_types))
            except LabelError as err:
                raise SourceError(f"{self.device_id}: {err}") from err

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def labels(self) -> np.ndarray | None:
        """Boolean anomaly label per step, or ``None`` when unlabelled."""
        return None if self.fault_types is None else self.fault_types != ""

    def slice(self, start: int, stop: int) -> Series:
        """The steps ``[start, stop)`` as a new series."""
        ft = None if self.fault_types is None else self.fault_types[start:stop]
        return Series(self.device_id, self.ts_ms[start:stop], self.values[start:stop], ft)


@runtime_checkable
class SeriesSource(Protocol):
    """Anything that yields labelled or unlabelled device series of one contract."""

    def description(self) -> DataDescription:
        """What the series are (contract, channels, units, step, site)."""
        ...

    def load(self) -> list[Series]:
        """Every device's series."""
        ...


def _to_grid(ts: np.ndarray, vals: np.ndarray, step_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Place readings on the regular grid ``ts[0] + k·step``; absent steps become NaN.

    Readings are snapped to the nearest grid point; of duplicates the last one wins.
    """
    order = np.argsort(ts, kind="stable")
    ts, vals = ts[order], vals[order]
    t0 = int(ts[0])
    idx = np.rint((ts - t0) / step_ms).astype(np.int64)
    n = int(idx[-1]) + 1
    grid = np.full((n, vals.shape[1]), np.nan)
    grid[idx] = vals
    return t0 + np.arange(n, dtype=np.int64) * step_ms, grid


def infer_step_ms(devices: np.ndarray, ts_ms: np.ndarray, what: str) -> int:
    """The grid spacing of readings: the median positive spacing within each device.

    Raises:
        SourceError: No device has two readings at different instants.

    """
    diffs = [np.diff(np.sort(ts_ms[devices == d])) for d in np.unique(devices)]
    flat = np.concatenate(diffs) if diffs else np.zeros(0, dtype=np.int64)
    flat = flat[flat > 0]
    if len(flat) == 0:
        raise SourceError(f"{what}: cannot infer the time step (fewer than two readings "
                          "per device)")
    return int(np.median(flat))


def series_from_rows(
    devices: np.ndarray,
    ts_ms: np.ndarray,
    values: np.ndarray,
    step_ms: int,
    fault_types: np.ndarray | None = None,
) -> list[Series]:
    """One :class:`Series` per device (sorted by id) from rows of readings.

    Args:
        devices: Device id per row, shape ``(N,)``.
        ts_ms: Event time per row (epoch ms), shape ``(N,)``.
        values: Channel values per row, shape ``(N, C)``; NaN where missing.
        step_ms: Grid spacing; instants without a row become NaN rows.
        fault_types: Fault type per row (``""`` when normal), or ``None``.

    """
    out: list[Series] = []
    for dev in sorted(np.unique(devices).tolist()):
        rows = np.flatnonzero(devices == dev)
        ts = ts_ms[rows]
        grid_ts, grid_vals = _to_grid(ts, values[rows], step_ms)
        ft = None
        if fault_types is not None:
            lab = fault_types[rows]
            # the grid position of every row, so that labels follow the same snapping
            _, grid_pos = _to_grid(ts, np.arange(len(rows), dtype=float)[:, None], step_ms)
            pos = grid_pos[:, 0]
            ft = np.where(np.isnan(pos), "", lab[np.nan_to_num(pos).astype(np.int64)])
            ft = ft.astype(str)
        out.append(Series(str(dev), grid_ts, grid_vals, ft))
    return out


@dataclass(frozen=True)
class FileSource:
    """Series from a Parquet (``.parquet``) or CSV (``.csv``) file.

    The file has one row per device and instant: the contract's key column (e.g.
    ``ess_id``), its event-time column (``ts``: epoch milliseconds or date-times) and
    channel columns named like the contract's fields; an optional ``fault_type`` column
    (empty or null when normal) gives labels. Rows are placed on a regular grid of
    ``step_ms`` (default: the median spacing); missing instants become NaN rows, which
    :mod:`ml.data.scaling` then interpolates or splits at.

    Attributes:
        path: The file.
        contract: Message contract naming the key, time and channel columns.
        channels: Channel subset; ``None`` means every numeric contract field present
            in the file.
        step_ms: Grid spacing; ``None`` infers it.
        site: Site name for the data description; default the file name.

    """

    path: Path
    contract: MessageContract = ESS_BMS
    channels: tuple[str, ...] | None = None
    step_ms: int | None = None
    site: str = ""

    def _frame(self) -> pd.DataFrame:
        suffix = self.path.suffix.lower()
        try:
            if suffix == ".parquet":
                return pd.read_parquet(self.path)
            if suffix == ".csv":
                return pd.read_csv(self.path, keep_default_na=True)
        except (OSError, ValueError) as err:
            raise SourceError(f"cannot read {self.path}: {err}") from err
        raise SourceError(f"{self.path}: expected a .parquet or .csv file")

    def _fields(self, frame: pd.DataFrame) -> tuple[Field, ...]:
        if self.channels is not None:
            fields = resolve_channels(self.contract, self.channels)
        else:
            fields = tuple(f for f in numeric_channels(self.contract) if f.name in frame)
        missing = [f.name for f in fields if f.name not in frame]
        if missing or not fields:
            raise SourceError(f"{self.path}: missing channel columns {missing or 'all'}")
        return fields

    def _load(self) -> tuple[DataDescription, list[Series]]:
        frame = self._frame().reset_index(drop=True)
        key, tcol = self.contract.key_field, self.contract.event_time_field
        for col in (key, tcol):
            if col not in frame:
                raise SourceError(f"{self.path}: missing column {col!r}")
        fields = self._fields(frame)
        ts_col = frame[tcol]
        if pd.api.types.is_numeric_dtype(ts_col):
            ts_all = ts_col.to_numpy(dtype=np.int64)
        else:
            ts_all = (pd.to_datetime(ts_col, utc=True).astype("int64") // 1_000_000).to_numpy()
        devices = frame[key].astype(str).to_numpy()
        step = self.step_ms or infer_step_ms(devices, ts_all, str(self.path))
        names = [f.name for f in fields]
        labels = (frame[LABEL_COLUMN].fillna("").astype(str).to_numpy()
                  if LABEL_COLUMN in frame else None)
        out = series_from_rows(devices, ts_all, frame[names].to_numpy(dtype=np.float64), step,
                               labels)
        if not out:
            raise SourceError(f"{self.path}: no rows")
        desc = DataDescription(
            source="file", contract=self.contract.name, channels=tuple(names),
            units=tuple(f.unit for f in fields), step_ms=step,
            site=self.site or self.path.name, details={"path": str(self.path)},
        )
        return desc, out

    def description(self) -> DataDescription:
        """Contract, channels and grid of the file's series."""
        return self._load()[0]

    def load(self) -> list[Series]:
        """Every device's series from the file."""
        return self._load()[1]


def write_series_file(
    series: Sequence[Series], description: DataDescription, path: Path
) -> Path:
    """Write series as a Parquet or CSV file that :class:`FileSource` reads back.

    Missing readings (NaN) are written as empty values; rows that are entirely missing
    are left out (they come back as NaN rows on the grid).
    """
    contract = contract_by_name(description.contract)
    frames = []
    for s in series:
        present = ~np.isnan(s.values).all(axis=1)
        df = pd.DataFrame(s.values[present], columns=list(description.channels))
        df.insert(0, contract.event_time_field, s.ts_ms[present])
        df.insert(0, contract.key_field, s.device_id)
        if s.fault_types is not None:
            df[LABEL_COLUMN] = s.fault_types[present]
        frames.append(df)
    frame = pd.concat(frames, ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise SourceError(f"{path}: expected a .parquet or .csv file")
    return path
