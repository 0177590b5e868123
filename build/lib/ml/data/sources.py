"""Where training and scoring series come from: the :class:`SeriesSource` protocol.

A source yields :class:`Series`: one device's multichannel readings on a regular time
grid, with ``NaN`` where a reading is missing and, when known, the ground-truth fault
type of every step. Channels are the numeric (``DOUBLE``) fields of a message contract
(:mod:`lakehouse.contracts.messages`), in contract order, unless a subset is chosen.

Implemented here: :class:`FileSource`, a Parquet or CSV file shaped like a message
contract (one row per device and instant), and :class:`GenericFileSource`, a file of the
user's own shape (CSV, Parquet, ``.npy`` or ``.npz``; any columns, optional time, key and
labels), whose data has the contract name :data:`GENERIC_CONTRACT`. Elsewhere:

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
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from lakehouse.contracts.messages import ESS_BMS, MESSAGES
from lakehouse.contracts.schema import Field, FieldType, MessageContract
from ml.data.labels import LabelError, as_fault_types, fault_types_from_intervals

logger = logging.getLogger(__name__)

LABEL_COLUMN = "fault_type"
"""Optional column of a series file: the fault type of the step, empty when normal."""


class SourceError(ValueError):
    """A source cannot produce series (bad file, unknown channel, empty result)."""


GENERIC_CONTRACT = "generic"
"""Contract name of data read from a file of the user's own shape (:class:`GenericFileSource`).

Such data has no message contract: its channels are whatever columns were chosen, without
units. Everything that needs a real contract (reading the lake) refuses it clearly.
"""


def contract_by_name(name: str) -> MessageContract:
    """The message contract called ``name`` (e.g. ``ess_bms``).

    Raises:
        SourceError: No such contract, or ``name`` is :data:`GENERIC_CONTRACT` (data from
            a file of the user's own shape, which has no contract).

    """
    if name == GENERIC_CONTRACT:
        raise SourceError(
            "the data is generic file data (no message contract): it cannot be read from "
            "the lake; use a file (--source file) instead")
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


#: Key and time columns of generic series written by :func:`write_series_file`.
GENERIC_KEY_COLUMN, GENERIC_TIME_COLUMN = "device_id", "ts"
#: Device id of the one series of a generic file without a key column.
SINGLE_SERIES = "series"
#: Extensions :class:`GenericFileSource` reads.
GENERIC_SUFFIXES = (".csv", ".parquet", ".npy", ".npz")
_TS = "__ts__"
_LABEL = "__label__"


@dataclass(frozen=True)
class GenericFileSource:
    """Series from a file of the user's own shape: a table or a matrix.

    Accepted files:

    * ``.csv`` / ``.parquet``: one row per step (and device); channel columns are chosen
      by name;
    * ``.npy``: a 2-D ``(steps, channels)`` matrix (1-D: one channel); channels are named
      ``ch0``, ``ch1``... and chosen by index or by that name;
    * ``.npz``: array ``values`` (as ``.npy``), optional ``labels`` (one per step),
      optional ``ts`` (one time per step) and optional ``channels`` (channel names).

    Empty or NaN readings become gaps on the grid, which :func:`ml.data.scaling.fill_gaps`
    interpolates (short gaps) or splits at. A constant channel is allowed (the scaler
    guards it) but logged, since it carries no information.

    Attributes:
        path: The file.
        time_column: Column of event times (epoch-ms numbers or date-times); ``None``: the
            rows are consecutive steps ``step_ms`` apart (per device), starting at 0.
        key_column: Column of device ids; ``None``: the file is one series.
        columns: Source columns to use as channels, in order (for matrices: indices or
            ``chN`` names); ``None``: the sources of ``mapping`` if given, else every
            other column (which must then all be numeric).
        mapping: ``(source column, channel name)`` pairs renaming channels.
        label_column: Column of labels (0/1, boolean or fault-type strings). In a string
            column an empty cell means normal (as in GridLake's own files); in a numeric
            or boolean column a missing label is an error.
        intervals: A CSV or JSON file of labelled intervals ``start, end[, type[, device]]``
            (``[start, end)``); the alternative to ``label_column``.
        interval_units: ``time`` (bounds compared with the event times: epoch ms or
            date-times), ``steps`` (step indices of each series) or ``auto`` (``time`` when
            the data has times, else ``steps``).
        step_ms: Grid spacing in ms; ``None``: inferred from the times, or 1000 when the
            data has no times.
        site: Site name for the data description; default the file name.

    """

    path: Path
    time_column: str | None = None
    key_column: str | None = None
    columns: tuple[str, ...] | None = None
    mapping: tuple[tuple[str, str], ...] = ()
    label_column: str | None = None
    intervals: Path | None = None
    interval_units: str = "auto"
    step_ms: int | None = None
    site: str = ""

    def __post_init__(self) -> None:
        if self.interval_units not in ("auto", "time", "steps"):
            raise SourceError(f"interval units must be auto, time or steps, got "
                              f"{self.interval_units!r}")
        if self.label_column is not None and self.intervals is not None:
            raise SourceError("give a label column or an interval file, not both")
        if self.step_ms is not None and self.step_ms < 1:
            raise SourceError(f"step_ms must be positive, got {self.step_ms}")

    # -- reading ---------------------------------------------------------------------
    def _table(self) -> tuple[pd.DataFrame, str | None, str | None, bool]:
        """The file as a frame: (frame, time column, label column, is a matrix)."""
        suffix = self.path.suffix.lower()
        if suffix not in GENERIC_SUFFIXES:
            raise SourceError(f"{self.path}: unsupported file type {suffix or '(none)'!r}; "
                              f"expected one of {', '.join(GENERIC_SUFFIXES)}")
        try:
            if suffix == ".csv":
                frame = pd.read_csv(self.path)
            elif suffix == ".parquet":
                frame = pd.read_parquet(self.path)
            else:
                return self._matrix(suffix)
        except SourceError:
            raise
        except pd.errors.EmptyDataError as err:
            raise SourceError(f"{self.path}: the file is empty") from err
        except (OSError, ValueError, EOFError) as err:
            raise SourceError(f"cannot read {self.path}: {err}") from err
        frame.columns = [str(c) for c in frame.columns]
        for what, col in (("time", self.time_column), ("key", self.key_column),
                          ("label", self.label_column)):
            if col is not None and col not in frame:
                raise SourceError(f"{self.path}: no {what} column {col!r}; columns are "
                                  f"{list(frame.columns)}")
        return frame, self.time_column, self.label_column, False

    def _matrix(self, suffix: str) -> tuple[pd.DataFrame, str | None, str | None, bool]:
        for what, col in (("--time-column", self.time_column), ("--key-column", self.key_column),
                          ("--label-column", self.label_column)):
            if col is not None:
                raise SourceError(f"{self.path}: {what} applies to CSV and Parquet files "
                                  "(an .npz file carries 'ts' and 'labels' arrays)")
        labels = ts = names = None
        if suffix == ".npy":
            values = np.asarray(np.load(self.path, allow_pickle=False))
        else:
            with np.load(self.path, allow_pickle=False) as data:
                if "values" not in data:
                    raise SourceError(f"{self.path}: no 'values' array (has "
                                      f"{sorted(data.files)})")
                values = data["values"]
                labels = data["labels"] if "labels" in data else None
                ts = data["ts"] if "ts" in data else None
                names = [str(n) for n in data["channels"]] if "channels" in data else None
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2:
            raise SourceError(f"{self.path}: expected a 2-D (steps, channels) matrix, got "
                              f"shape {values.shape}")
        if values.size == 0:
            raise SourceError(f"{self.path}: the file is empty")
        if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
            raise SourceError(f"{self.path}: the matrix is not numeric ({values.dtype})")
        names = names or [f"ch{i}" for i in range(values.shape[1])]
        if len(names) != values.shape[1]:
            raise SourceError(f"{self.path}: {len(names)} channel names for "
                              f"{values.shape[1]} columns")
        frame = pd.DataFrame(values.astype(np.float64), columns=names)
        for what, arr, col in (("labels", labels, _LABEL), ("ts", ts, _TS)):
            if arr is None:
                continue
            arr = np.asarray(arr)
            if arr.shape != (values.shape[0],):
                raise SourceError(f"{self.path}: {what} has shape {arr.shape}, the data has "
                                  f"{values.shape[0]} steps")
            frame[col] = arr
        return (frame, _TS if ts is not None else None, _LABEL if labels is not None else None,
                True)

    def _selection(self, frame: pd.DataFrame, reserved: set[str],
                   matrix: bool) -> tuple[list[str], list[str]]:
        """(source columns, channel names) after selection and mapping."""
        names = [c for c in frame.columns if c not in reserved]
        mapping = dict(self.mapping)
        chosen = list(self.columns) if self.columns is not None else (
            list(mapping) if mapping else names)
        if matrix:
            # a matrix column may be named by its index as well as by its name
            chosen = [names[int(c)] if c.isdigit() and int(c) < len(names) else c
                      for c in chosen]
            mapping = {(names[int(k)] if k.isdigit() and int(k) < len(names) else k): v
                       for k, v in mapping.items()}
        unknown = [c for c in [*chosen, *mapping] if c not in names]
        if unknown:
            raise SourceError(f"{self.path}: unknown column(s) {sorted(set(unknown))}; "
                              f"available: {names}")
        if not chosen:
            raise SourceError(f"{self.path}: no channel columns")
        if len(set(chosen)) != len(chosen):
            raise SourceError(f"{self.path}: a column is chosen twice in {chosen}")
        bad = [c for c in chosen if not (pd.api.types.is_numeric_dtype(frame[c])
                                         or pd.api.types.is_bool_dtype(frame[c]))
               and frame[c].notna().any()]
        if bad:
            hint = "" if self.columns is not None else " (choose channels with --columns)"
            raise SourceError(f"{self.path}: non-numeric channel column(s) {bad}{hint}")
        channels = [mapping.get(c, c) for c in chosen]
        if len(set(channels)) != len(channels):
            raise SourceError(f"{self.path}: two columns map to one channel: {channels}")
        return chosen, channels

    def _times(self, frame: pd.DataFrame, tcol: str) -> np.ndarray:
        col = frame[tcol]
        if col.isna().any():
            raise SourceError(f"{self.path}: time column {tcol!r} has "
                              f"{int(col.isna().sum())} empty value(s)")
        if pd.api.types.is_numeric_dtype(col):
            return col.to_numpy(dtype=np.int64)
        try:
            parsed = pd.to_datetime(col, utc=True)
        except (ValueError, TypeError) as err:
            raise SourceError(f"{self.path}: time column {tcol!r} is neither epoch-ms "
                              f"numbers nor date-times: {err}") from err
        return (parsed.astype("int64") // 1_000_000).to_numpy()

    def _labels(self, frame: pd.DataFrame, lcol: str) -> np.ndarray:
        col = frame[lcol]
        what = "labels" if lcol == _LABEL else f"label column {lcol!r}"
        if col.dtype == object and col.dropna().map(lambda v: isinstance(v, str)).all():
            # fault-type names: an empty cell is a normal step, as in GridLake's own files
            col = col.fillna("")
        try:
            return as_fault_types(col.to_numpy())
        except LabelError as err:
            raise SourceError(f"{self.path}: {what}: {err}") from err

    def _load(self) -> tuple[DataDescription, list[Series]]:
        frame, tcol, lcol, matrix = self._table()
        frame = frame.reset_index(drop=True)
        if frame.empty:
            raise SourceError(f"{self.path}: the file has no rows")
        reserved = {c for c in (tcol, lcol, self.key_column) if c is not None}
        sources, channels = self._selection(frame, reserved, matrix)
        values = frame[sources].to_numpy(dtype=np.float64)
        devices = (frame[self.key_column].astype(str).to_numpy() if self.key_column
                   else np.full(len(frame), SINGLE_SERIES, dtype=object))
        if tcol is not None:
            ts = self._times(frame, tcol)
            step = self.step_ms or infer_step_ms(devices, ts, str(self.path))
        else:
            # rows are consecutive steps of their device
            step = self.step_ms or 1000
            order = pd.Series(devices).groupby(devices).cumcount().to_numpy()
            ts = order.astype(np.int64) * step
        labels = self._labels(frame, lcol) if lcol is not None else None
        series = series_from_rows(devices, ts, values, step, labels)
        if self.intervals is not None:
            units = self.interval_units
            if units == "auto":
                units = "time" if tcol is not None else "steps"
            series = _with_intervals(series, read_intervals(self.intervals), units)
        for s in series:
            _check_channels(s, channels, str(self.path))
        desc = DataDescription(
            source="file", contract=GENERIC_CONTRACT, channels=tuple(channels),
            units=("",) * len(channels), step_ms=step, site=self.site or self.path.name,
            details=self.details(),
        )
        return desc, series

    def details(self) -> dict[str, str]:
        """How the file was read, as strings (kept in the model's data description).

        Scoring reuses these options when it is given none, so a model scores files of
        the shape it was trained on.
        """
        d = {"path": str(self.path), "reader": "generic"}
        for key, val in (("time_column", self.time_column), ("key_column", self.key_column),
                         ("label_column", self.label_column)):
            if val is not None:
                d[key] = val
        if self.columns is not None:
            d["columns"] = ",".join(self.columns)
        if self.mapping:
            d["map"] = ",".join(f"{a}:{b}" for a, b in self.mapping)
        return d

    def read(self) -> tuple[DataDescription, list[Series]]:
        """The description and the series, from one reading of the file."""
        return self._load()

    def description(self) -> DataDescription:
        """Channels and grid of the file's series (contract :data:`GENERIC_CONTRACT`)."""
        return self._load()[0]

    def load(self) -> list[Series]:
        """Every series of the file."""
        return self._load()[1]


def _check_channels(s: Series, channels: Sequence[str], what: str) -> None:
    """Refuse channels without any reading; warn about constant ones."""
    present = ~np.isnan(s.values)
    empty = [c for c, ok in zip(channels, present.any(axis=0), strict=True) if not ok]
    if empty:
        raise SourceError(f"{what}: series {s.device_id!r}: channel(s) {empty} have no "
                          "values")
    with np.errstate(invalid="ignore"):
        spread = np.nanmax(s.values, axis=0) - np.nanmin(s.values, axis=0)
    constant = [c for c, d in zip(channels, spread, strict=True) if d == 0]
    if constant:
        logger.warning("%s: series %r: channel(s) %s are constant (no information; the "
                       "scaler keeps them finite)", what, s.device_id, constant)


def read_intervals(path: Path) -> list[tuple[Any, Any, str, str | None]]:
    """Labelled intervals from a CSV (columns ``start,end[,type][,device]``) or JSON file.

    JSON: a list of objects with the same keys, or of ``[start, end[, type]]`` lists.

    Returns:
        ``(start, end, type, device)`` items; ``type`` ``""`` when not given (anomalous),
        ``device`` ``None`` when the interval applies to every series.

    Raises:
        SourceError: Unreadable file, missing columns or missing bounds.

    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            try:
                frame = pd.read_csv(path)
            except pd.errors.EmptyDataError as err:
                raise SourceError(f"{path}: the interval file is empty") from err
            rows: list[dict[Any, Any]] = frame.to_dict("records")
            if not {"start", "end"} <= set(frame.columns):
                raise SourceError(f"{path}: interval CSV needs 'start' and 'end' columns, "
                                  f"has {list(frame.columns)}")
        elif suffix == ".json":
            raw = json.loads(path.read_text())
            if not isinstance(raw, list):
                raise SourceError(f"{path}: expected a JSON list of intervals")
            rows = [r if isinstance(r, dict) else dict(zip(("start", "end", "type"), r,
                                                           strict=False)) for r in raw]
        else:
            raise SourceError(f"{path}: interval file must be .csv or .json")
    except (OSError, ValueError) as err:
        if isinstance(err, SourceError):
            raise
        raise SourceError(f"cannot read intervals {path}: {err}") from err
    out = []
    for i, r in enumerate(rows):
        start, end = r.get("start"), r.get("end")
        if start is None or end is None or pd.isna(start) or pd.isna(end):
            raise SourceError(f"{path}: interval {i} has no start or end")
        kind = r.get("type")
        kind = "" if kind is None or (isinstance(kind, float) and np.isnan(kind)) else str(kind)
        dev = r.get("device")
        dev = None if dev is None or (isinstance(dev, float) and np.isnan(dev)) else str(dev)
        out.append((start, end, kind, dev))
    return out


def _bound_ms(value: Any, path: str) -> float:
    """An interval bound in epoch ms: a number as is, a date-time parsed (naive = UTC)."""
    if isinstance(value, int | float | np.number):
        return float(value)
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise SourceError(f"{path}: interval bound {value!r} is not a time") from err
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return float(ts.value // 1_000_000)


def _with_intervals(series: list[Series], items: Sequence[tuple[Any, Any, str, str | None]],
                    units: str) -> list[Series]:
    """The series labelled by the intervals (``units``: ``time`` or ``steps``)."""
    out = []
    for s in series:
        mine = [it for it in items if it[3] is None or it[3] == s.device_id]
        if units == "time":
            bounds = [(_bound_ms(a, "intervals"), _bound_ms(b, "intervals"), k)
                      for a, b, k, _ in mine]
            axis: np.ndarray | None = s.ts_ms
        else:
            bounds = []
            for a, b, k, _ in mine:
                try:
                    bounds.append((float(a), float(b), k))
                except (TypeError, ValueError) as err:
                    raise SourceError(f"interval bound {a!r}/{b!r} is not a step index "
                                      "(use time units for date-times)") from err
            axis = None
        try:
            ft = fault_types_from_intervals(len(s), [(a, b, k or None) for a, b, k in bounds],
                                            axis)
        except LabelError as err:
            raise SourceError(f"intervals: {err}") from err
        out.append(Series(s.device_id, s.ts_ms, s.values, ft))
    return out


def check_series_length(series: Sequence[Series], window: int, what: str = "data",
                        validation_fraction: float = 0.0) -> None:
    """Refuse data where no series is as long as one model window.

    Args:
        series: The series.
        window: The model window in steps.
        what: What the series are, for the message.
        validation_fraction: Fraction of every series held out for the threshold: that
            tail, and the rest, must each hold a window too.

    Raises:
        SourceError: The longest series (or its part) is shorter than ``window`` steps.

    """
    longest = max((len(s) for s in series), default=0)
    if longest < window:
        raise SourceError(
            f"{what}: the longest series has {longest} steps, shorter than the model "
            f"window of {window} steps (n_patches x patch_size): give more data or a "
            "smaller --n-patches/--patch-size")
    tail = int(longest - round(longest * (1.0 - validation_fraction)))
    if validation_fraction > 0 and min(tail, longest - tail) < window:
        raise SourceError(
            f"{what}: the longest series has {longest} steps; its held-out validation "
            f"part ({validation_fraction:.0%}, {tail} steps) and the rest must each hold "
            f"the model window of {window} steps (n_patches x patch_size): give at least "
            f"{math.ceil(window / min(validation_fraction, 1 - validation_fraction))} "
            "steps or a smaller --n-patches/--patch-size")

def write_series_file(
    series: Sequence[Series], description: DataDescription, path: Path
) -> Path:
    """Write series as a Parquet or CSV file that :class:`FileSource` reads back.

    Missing readings (NaN) are written as empty values; rows that are entirely missing
    are left out (they come back as NaN rows on the grid).
    """
    if description.contract == GENERIC_CONTRACT:
        # read back with GenericFileSource(time_column="ts", key_column="device_id",
        # label_column="fault_type")
        key, tcol = GENERIC_KEY_COLUMN, GENERIC_TIME_COLUMN
    else:
        contract = contract_by_name(description.contract)
        key, tcol = contract.key_field, contract.event_time_field
    frames = []
    for s in series:
        present = ~np.isnan(s.values).all(axis=1)
        df = pd.DataFrame(s.values[present], columns=list(description.channels))
        df.insert(0, tcol, s.ts_ms[present])
        df.insert(0, key, s.device_id)
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
