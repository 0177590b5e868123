"""ADS queries: datasets, entity indicators and load curves, rankings, quality scorecards.

Every response is computed from the serving copy (ranges older than it from the lake),
filtered to the caller's regions, and cached until new data of the datasets it read
lands. Listings page with ``limit``/``offset``, sort with ``sort=col,-col``, filter with
repeated ``filter=col<op>value``, project with ``fields=a,b`` and render JSON or CSV
(``format=csv``). The response headers say whether it was a cache hit (``X-Cache``) and
where the rows came from (``X-GridLake-Source``: ``serving``, ``lake`` or both).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.context import Ctx, require
from api.datasets import DAILY_BY_ENTITY, DATASETS, PARTIAL, QUARTER_BY_ENTITY, Dataset
from api.models import row_model
from api.output import (
    JSON,
    apply_filters,
    dumps,
    parse_fields,
    parse_filters,
    parse_sort,
    render,
    sort_rows,
)
from api.query import EntityNotFound, Rendered
from api.security import Perm, Principal
from api.validation import End, Filters, Offset, Start, page_size, time_range
from lakehouse.contracts.precision import UNIT_DECIMALS, decimals, rounded
from lakehouse.contracts.tables import ADS_LOAD_CURVE, ADS_METER_ENERGY_15MIN
from lakehouse.time import from_ms

router = APIRouter(tags=["indicators"])

Reader = Annotated[Principal, Depends(require(Perm.READ_INDICATORS))]
EntityType = Literal["region", "substation", "feeder", "transformer", "meter", "ess"]
DatasetName = Literal[tuple(DATASETS)]  # type: ignore[valid-type]
EntityId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
                                examples=["TX-00001"])]
Fmt = Annotated[Literal["json", "csv"], Query(alias="format", description="json or csv.")]
Sort = Annotated[str | None, Query(max_length=200, description="Columns, `-` for descending: "
                                   "`-loading_rate_pct,transformer_id`.")]
FieldsParam = Annotated[str | None, Query(alias="fields", max_length=1000,
                                          description="Columns to return, comma-separated.")]
Limit = Annotated[int | None, Query(ge=1, description="Rows per page (default 1000, at most "
                                    "`api.max_page_size`).")]


def _range(c: Any, start: datetime, end: datetime) -> tuple[int, int]:
    return time_range(c.settings.api, start, end)


def _limit(c: Any, limit: int | None) -> int:
    return page_size(c.settings.api, limit)


def _default_sort(ds: Dataset) -> list[tuple[str, bool]]:
    keys = [(ds.time_field, False)]
    if ds.entity_type_field:
        keys.append((ds.entity_type_field, False))
    return [*keys, (ds.entity_id_field, False)]


class DatasetInfo(BaseModel):
    """A served ADS table."""

    name: str = Field(examples=["transformer_daily"])
    table: str
    description: str
    grain: str | None
    time_field: str
    entity_types: list[str]
    fields: dict[str, str] = Field(description="Column → description [unit].")


@router.get("/datasets", response_model=list[DatasetInfo], summary="The served ADS tables")
async def datasets(who: Reader) -> list[DatasetInfo]:
    """Every dataset with its grain, time column, entity types and columns.

    Rendered from the table contracts (docs/tables.md has the same).
    """
    return [DatasetInfo(
        name=d.name, table=d.table.name, description=d.table.description, grain=d.grain,
        time_field=d.time_field, entity_types=list(d.entity_types),
        fields={f.name: f"{f.description} [{f.unit}]" if f.unit else f.description
                for f in d.table.fields}) for d in DATASETS.values()]


async def _entity_rows(c: Any, who: Principal, ds: Dataset, etype: str, eid: str,
                       s: int, e: int, rows: list[dict[str, Any]], sources: set[str]) -> None:
    """Read one (authorised) entity's rows of ``ds`` into ``rows``, as answered."""
    got = await c.queries.read(ds, s, e, who, entity=(etype, eid))
    rows.extend(c.queries.answer(ds, got))
    sources |= got.sources


async def _query_dataset(
    c: Any, request: Request, who: Principal, ds: Dataset, s: int, e: int, *,
    entity_type: str | None, entity_id: str | None, filters: list[str], sort: str | None,
    fields: str | None, limit: int | None, offset: int, fmt: str,
) -> Response:
    if entity_type is not None and entity_type not in ds.entity_types:
        raise HTTPException(422, f"entity_type: {ds.name} holds {', '.join(ds.entity_types)}")
    if entity_id is not None and entity_type is None:
        if len(ds.entity_types) != 1 and ds.entity_type_field is not None:
            raise HTTPException(422, "entity_type: required with entity_id for " + ds.name)
        if ds.entity_type_field is None and len(ds.entity_types) > 1:
            dev = c.catalog.get(entity_id)
            entity_type = dev.get("device_type") if dev else ds.entity_types[0]
        else:
            entity_type = ds.entity_types[0]
    parsed = parse_filters(ds.answer_fields, filters)
    keys = parse_sort(ds.answer_names, sort) or _default_sort(ds)
    cols = parse_fields(ds.answer_names, fields)
    size = _limit(c, limit)
    known = (c.queries.check_entity(who, entity_type, entity_id)
             if entity_id is not None and entity_type is not None else True)

    async def compute() -> Rendered:
        rows: list[dict[str, Any]] = []
        sources: set[str] = set()
        if entity_id is not None and entity_type is not None:
            await _entity_rows(c, who, ds, entity_type, entity_id, s, e, rows, sources)
            if not known and not rows:
                raise EntityNotFound(f"{entity_type} {entity_id!r} not found")
        else:
            got = await c.queries.read(ds, s, e, who, entity_types=(
                {entity_type} if entity_type else None))
            rows, sources = c.queries.answer(ds, got), got.sources
        rows = sort_rows(apply_filters(rows, parsed), keys)
        meta = {"dataset": ds.name, "start": from_ms(s), "end": from_ms(e),
                "total": len(rows), "limit": size, "offset": offset,
                "sources": sorted(sources)}
        body, media = render(meta, rows[offset:offset + size], cols, fmt)
        return Rendered(body, media, sources)

    return await c.queries.cached(request, who, [ds.name], compute)


class DatasetPage(BaseModel):
    """A page of rows of a dataset.

    The row columns are those of the dataset's table: see the ``*Row`` schemas and
    ``GET /datasets``. Doubles are rounded to their unit's decimals (docs/indicators.md);
    rows of a dataset with a grain also carry ``partial`` (true while the window is not
    complete: docs/api.md).
    """

    dataset: str
    start: datetime
    end: datetime
    total: int = Field(description="Rows matching, before paging.")
    limit: int
    offset: int
    sources: list[str] = Field(examples=[["serving"]])
    rows: list[dict[str, Any]]


@router.get("/datasets/{dataset}", response_model=DatasetPage,
            summary="Rows of one dataset: any entity, range, filter, sort, page, JSON or CSV",
            responses={200: {"content": {"text/csv": {}}}})
async def dataset_rows(
    request: Request, c: Ctx, who: Reader,
    dataset: Annotated[DatasetName, Path()],  # type: ignore[valid-type]
    start: Start, end: End,
    entity_type: Annotated[EntityType | None, Query()] = None,
    entity_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    filters: Filters = [],  # noqa: B006 - FastAPI copies defaults per request
    sort: Sort = None, fields: FieldsParam = None, limit: Limit = None, offset: Offset = 0,
    fmt: Fmt = "json",
) -> Response:
    """Rows of an ADS table with their time in ``[start, end)``.

    Optionally for one entity type or one entity (404 if it is unknown, 403 outside your
    regions); rows of entities outside your regions are left out.
    """
    ds = DATASETS[dataset]
    s, e = _range(c, start, end)
    return await _query_dataset(c, request, who, ds, s, e, entity_type=entity_type,
                                entity_id=entity_id, filters=filters, sort=sort,
                                fields=fields, limit=limit, offset=offset, fmt=fmt)


class EntityIndicators(BaseModel):
    """Indicators of one entity at one grain: rows per dataset, oldest first.

    Each row carries ``partial`` (true while its window is not complete) and its doubles
    rounded to their unit's decimals.
    """

    entity_type: str
    entity_id: str
    region_id: str | None
    grain: str
    start: datetime
    end: datetime
    sources: list[str]
    datasets: dict[str, list[dict[str, Any]]] = Field(examples=[{
        "load_daily": [{"entity_type": "transformer", "entity_id": "TX-00001",
                        "day": "2026-03-02T00:00:00Z", "peak_load_kw": 312.5}]}])


@router.get("/entities/{entity_type}/{entity_id}/indicators", response_model=EntityIndicators,
            summary="Every indicator of one entity over a range at a grain")
async def entity_indicators(
    request: Request, c: Ctx, who: Reader, entity_type: EntityType, entity_id: EntityId,
    start: Start, end: End,
    grain: Annotated[Literal["15min", "1d"], Query(description="15min: load curve (and "
                     "meter energy); 1d: daily load, voltage and the entity type's own "
                     "daily indicators.")] = "1d",
) -> Response:
    """All datasets holding the entity's indicators at ``grain``.

    E.g. a transformer's daily load, voltage qualification and loading/ageing. 404 for an
    unknown entity, 403 outside your regions.
    """
    s, e = _range(c, start, end)
    names = (QUARTER_BY_ENTITY if grain == "15min" else DAILY_BY_ENTITY)[entity_type]
    known = c.queries.check_entity(who, entity_type, entity_id)

    async def compute() -> Rendered:
        out: dict[str, list[dict[str, Any]]] = {}
        sources: set[str] = set()
        for name in names:
            ds = DATASETS[name]
            rows: list[dict[str, Any]] = []
            await _entity_rows(c, who, ds, entity_type, entity_id, s, e, rows, sources)
            out[name] = sort_rows(rows, _default_sort(ds))
        if not known and not any(out.values()):
            raise EntityNotFound(f"{entity_type} {entity_id!r} not found")
        body = dumps({"entity_type": entity_type, "entity_id": entity_id,
                      "region_id": c.catalog.region_of(entity_type, entity_id),
                      "grain": grain, "start": from_ms(s), "end": from_ms(e),
                      "sources": sorted(sources), "datasets": out})
        return Rendered(body, JSON, sources)

    return await c.queries.cached(request, who, list(names), compute)


@router.get("/entities/{entity_type}/{entity_id}/load-curve", response_model=DatasetPage,
            summary="The 15-minute load curve of one entity",
            responses={200: {"content": {"text/csv": {}}}})
async def load_curve(
    request: Request, c: Ctx, who: Reader,
    entity_type: Literal["region", "substation", "feeder", "transformer", "meter"],
    entity_id: EntityId, start: Start, end: End,
    fields: FieldsParam = None, fmt: Fmt = "json",
) -> Response:
    """Points of ``ads_load_curve`` (net load per 15 minutes) in ``[start, end)``."""
    s, e = _range(c, start, end)
    limit = min(c.settings.api.max_page_size, (e - s) // 900_000 + 1)
    return await _query_dataset(
        c, request, who, DATASETS[ADS_LOAD_CURVE.name.removeprefix("ads_")], s, e,
        entity_type=entity_type, entity_id=entity_id, filters=[], sort=None, fields=fields,
        limit=limit, offset=0, fmt=fmt)


@router.get("/quality/scorecards", response_model=DatasetPage,
            summary="Daily data-quality scorecards per region",
            responses={200: {"content": {"text/csv": {}}},
                       404: {"description": "Unknown region_id"}})
async def quality_scorecards(
    request: Request, c: Ctx, who: Reader, start: Start, end: End,
    region_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    filters: Filters = [],  # noqa: B006 - FastAPI copies defaults per request
    sort: Sort = None, limit: Limit = None, offset: Offset = 0, fmt: Fmt = "json",
) -> Response:
    """Counts per quality rule and the score per region and day, of your regions."""
    s, e = _range(c, start, end)
    return await _query_dataset(
        c, request, who, DATASETS["quality_scorecard"], s, e, entity_type="region",
        entity_id=region_id, filters=filters, sort=sort, fields=None, limit=limit,
        offset=offset, fmt=fmt)


# -------------------------------------------------------------------------- rankings
@dataclass(frozen=True)
class Ranking:
    """A ranking of entities by an indicator aggregated over the range's rows.

    ``agg`` is ``max``, ``min`` or ``sum`` of ``value``, or ``ratio``: Σ ``value`` / Σ of
    the ``per`` columns × 100 (entities whose denominator is 0 are left out).
    """

    dataset: str
    value: str
    agg: Literal["max", "min", "sum", "ratio"]
    descending: bool
    unit: str
    description: str
    per: tuple[str, ...] = ()
    default_type: str | None = None


RANKINGS: dict[str, Ranking] = {
    "transformer_loading": Ranking(
        "transformer_daily", "loading_rate_pct", "max", True, "%",
        "Most loaded transformers: highest daily loading rate (% of rated kVA)."),
    "transformer_aging": Ranking(
        "transformer_daily", "loss_of_life_pct", "sum", True, "%",
        "Fastest-ageing transformers: insulation loss of life over the range."),
    "voltage_qualification": Ranking(
        "voltage_daily", "qualified", "ratio", False, "%",
        "Worst voltage qualification: Σ qualified / Σ readings × 100, lowest first.",
        per=("readings",), default_type="transformer"),
    "peak_load": Ranking(
        "load_daily", "peak_load_kw", "max", True, "kW",
        "Highest 15-minute peak load.", default_type="transformer"),
    "line_loss": Ranking(
        "feeder_daily", "loss_kwh", "ratio", True, "%",
        "Worst feeder line loss: Σ loss / Σ supply × 100, highest first.",
        per=("supply_kwh",)),
    "ess_cell_gap": Ranking(
        "ess_daily", "cell_gap_max_mv", "max", True, "mV",
        "Battery banks with the largest cell voltage gap."),
    "ess_temperature": Ranking(
        "ess_daily", "cell_temp_max_c", "max", True, "°C",
        "Battery banks with the highest cell temperature."),
    "quality_score": Ranking(
        "quality_scorecard", "clean", "ratio", False, "%",
        "Worst data quality: Σ clean / Σ (received + quarantined) × 100, lowest first.",
        per=("received", "quarantined")),
}
"""Every ranking by name."""


def rank(rk: Ranking, ds: Dataset, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities ordered by the ranking's aggregate (ties by id), numbered from 1."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        etype, eid = ds.row_entity(r)
        groups[(etype or ds.entity_types[0], eid)].append(r)
    out: list[dict[str, Any]] = []
    for (etype, eid), group in groups.items():
        values = [r[rk.value] for r in group if r.get(rk.value) is not None]
        value: float | None
        if rk.agg == "ratio":
            den = sum(float(r.get(p) or 0) for r in group for p in rk.per)
            value = 100.0 * sum(float(v) for v in values) / den if den > 0 else None
        elif not values:
            value = None
        elif rk.agg == "max":
            value = float(max(values))
        elif rk.agg == "min":
            value = float(min(values))
        else:
            value = float(sum(values))
        if value is not None:
            out.append({"entity_type": etype, "entity_id": eid, "value": value,
                        "rows": len(group)})
    out.sort(key=lambda x: x["entity_id"])
    out.sort(key=lambda x: x["value"], reverse=rk.descending)
    for i, x in enumerate(out, 1):
        x["rank"] = i
    return out


def ranking_decimals(rk: Ranking, ds: Dataset) -> int:
    """Decimals of a ranking's value: its column's, or a percentage's for a ratio."""
    if rk.agg == "ratio":
        return UNIT_DECIMALS["%"]
    f = next(f for f in ds.table.fields if f.name == rk.value)
    return decimals(f) or 0


class RankingInfo(BaseModel):
    """A ranking."""

    name: str
    dataset: str
    value: str
    aggregate: str
    order: str
    unit: str
    description: str
    entity_types: list[str]


@router.get("/rankings", response_model=list[RankingInfo], summary="The available rankings")
async def rankings(who: Reader) -> list[RankingInfo]:
    """Name, indicator, aggregate and order of every ranking."""
    return [RankingInfo(name=n, dataset=r.dataset, value=r.value, aggregate=r.agg,
                        order="desc" if r.descending else "asc", unit=r.unit,
                        description=r.description,
                        entity_types=list(DATASETS[r.dataset].entity_types))
            for n, r in RANKINGS.items()]


class RankingPage(BaseModel):
    """A page of a ranking."""

    ranking: str
    description: str
    unit: str
    entity_type: str
    start: datetime
    end: datetime
    total: int
    limit: int
    offset: int
    sources: list[str]
    rows: list[dict[str, Any]] = Field(examples=[[{
        "rank": 1, "entity_type": "transformer", "entity_id": "TX-00042",
        "region_id": "R1", "value": 131.2, "rows": 1}]])


@router.get("/rankings/{ranking}", response_model=RankingPage,
            summary="Entities ranked by an indicator over a range",
            responses={200: {"content": {"text/csv": {}}}})
async def ranking(
    request: Request, c: Ctx, who: Reader,
    ranking: Annotated[Literal[tuple(RANKINGS)], Path()],  # type: ignore[valid-type]
    start: Start, end: End,
    entity_type: Annotated[EntityType | None, Query(description="For rankings over several "
                           "entity types (voltage, peak load); default transformer.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 20, offset: Offset = 0,
    fmt: Fmt = "json",
) -> Response:
    """Entities of your regions ranked over the days in ``[start, end)``.

    E.g. the most loaded transformers or the worst voltage qualification.
    """
    rk = RANKINGS[ranking]
    ds = DATASETS[rk.dataset]
    s, e = _range(c, start, end)
    etype = entity_type or rk.default_type or ds.entity_types[0]
    if etype not in ds.entity_types:
        raise HTTPException(422, f"entity_type: {ranking} ranks {', '.join(ds.entity_types)}")

    async def compute() -> Rendered:
        got = await c.queries.read(ds, s, e, who, entity_types={etype})
        ranked = rank(rk, ds, got.rows)  # from full precision; the value rounded once
        places = ranking_decimals(rk, ds)
        for x in ranked:
            x["region_id"] = c.catalog.region_of(x["entity_type"], x["entity_id"])
            x["value"] = rounded(x["value"], places)
        cols = ["rank", "entity_type", "entity_id", "region_id", "value", "rows"]
        page = [{k: x[k] for k in cols} for x in ranked[offset:offset + limit]]
        meta = {"ranking": ranking, "description": rk.description, "unit": rk.unit,
                "entity_type": etype, "start": from_ms(s), "end": from_ms(e),
                "total": len(ranked), "limit": limit, "offset": offset,
                "sources": sorted(got.sources)}
        body, media = render(meta, page, cols, fmt)
        return Rendered(body, media, got.sources)

    return await c.queries.cached(request, who, [ds.name], compute)


# ------------------------------------------------------------------- meter (v0 route)
_EnergyTableRow = row_model(ADS_METER_ENERGY_15MIN)


class EnergyRow(_EnergyTableRow):  # type: ignore[valid-type,misc]
    """A row of ``ads_meter_energy_15min`` as answered (values rounded, ``partial``)."""

    partial: bool | None = Field(default=None, description=PARTIAL.description)


class EnergySeries(BaseModel):
    """15-minute energy of one meter over a time range."""

    device_id: str
    start: datetime
    end: datetime
    rows: list[EnergyRow]


@router.get("/meters/{device_id}/energy/15min", response_model=EnergySeries,
            summary="15-minute import energy of a meter")
async def meter_energy_15min(
    request: Request, c: Ctx, who: Reader, device_id: EntityId, start: Start, end: End,
) -> Response:
    """Rows of ``ads_meter_energy_15min`` for one meter with window_start in [start, end).

    The first route of the API, kept as it was: a meter with no rows gives an empty list
    (``/datasets/meter_energy_15min?entity_id=`` answers 404 for an unknown meter).
    """
    s, e = _range(c, start, end)
    ds = DATASETS["meter_energy_15min"]
    c.queries.check_entity(who, "meter", device_id)

    async def compute() -> Rendered:
        rows: list[dict[str, Any]] = []
        sources: set[str] = set()
        await _entity_rows(c, who, ds, "meter", device_id, s, e, rows, sources)
        rows.sort(key=lambda r: r["window_start"])
        body = dumps({"device_id": device_id, "start": from_ms(s), "end": from_ms(e),
                      "rows": rows})
        return Rendered(body, JSON, sources)

    return await c.queries.cached(request, who, [ds.name], compute)

