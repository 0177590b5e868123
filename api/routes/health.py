"""Asset health: the ranking of assets at risk and one asset's history with its evidence.

Both read ``ads_asset_health`` (written by ``gridlake health run``, docs/health.md) the
way every ADS query does: the serving copy, older ranges from the lake, rows outside the
caller's regions left out, answers cached until new rows land. Worsened categories reach
the real-time feed as ``health_worsened`` alarms (``api/routes/feed.py``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.context import Ctx, require
from api.datasets import DATASETS
from api.output import JSON, dumps
from api.query import EntityNotFound, Rendered
from api.security import Perm, Principal
from api.validation import End, Offset, Start, page_size, time_range
from lakehouse.contracts.tables import ADS_ASSET_HEALTH
from lakehouse.time import from_ms

router = APIRouter(tags=["health"])

Reader = Annotated[Principal, Depends(require(Perm.READ_INDICATORS))]
AssetType = Literal["transformer", "ess"]
AssetId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
                               examples=["TX-00001"])]
Category = Literal["good", "fair", "poor", "critical", "unknown"]
DATASET = DATASETS[ADS_ASSET_HEALTH.name.removeprefix("ads_")]
#: Order of the ranking: worst first, assets without a verdict last.
_ORDER = {"critical": 0, "poor": 1, "fair": 2, "good": 3, "unknown": 4}
_SUMMARY = ("asset_type", "asset_id", "region_id", "substation_id", "day", "score",
            "category", "previous_category", "worsened", "worst_factor", "evidence_pct",
            "action", "scoring_version")


def parse_factors(text: Any) -> list[dict[str, Any]]:
    """The stored factors (a JSON array); a row whose column is unreadable says so."""
    if not isinstance(text, str) or not text:
        return []
    try:
        out = json.loads(text)
    except ValueError:
        return [{"name": "factors", "status": "invalid", "severity": None, "value": None,
                 "unit": "", "reason": "stored factors are not valid JSON", "detail": {}}]
    return out if isinstance(out, list) else []


def findings(factors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The factors that took points (fair or worse), worst first."""
    rank = {"critical": 0, "poor": 1, "fair": 2}
    hit = [f for f in factors if f.get("severity") in rank]
    return sorted(hit, key=lambda f: (rank[f["severity"]], f.get("name", "")))


def latest_per_asset(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each asset's newest row."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (str(r.get("asset_type")), str(r.get("asset_id")))
        if key not in out or r["day"] > out[key]["day"]:
            out[key] = r
    return list(out.values())


def ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Worst first: category, then lowest score, then id (stable for ties)."""
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        score = r.get("score")
        return (_ORDER.get(str(r.get("category")), 5),
                score if score is not None else 101.0, r.get("asset_type"), r.get("asset_id"))
    return sorted(rows, key=key)


class HealthRankingPage(BaseModel):
    """Assets at risk, worst first, with what makes them so."""

    start: Any
    end: Any
    total: int = Field(description="Assets matching, before paging.")
    limit: int
    offset: int
    sources: list[str]
    rows: list[dict[str, Any]] = Field(examples=[[{
        "rank": 1, "asset_type": "transformer", "asset_id": "TX-00042",
        "region_id": "RGN-01", "substation_id": "SUB-03", "day": "2026-03-02T00:00:00Z",
        "score": 39.0, "category": "critical", "worst_factor": "dga_level",
        "findings": [{"name": "dga_level", "severity": "critical", "value": 4,
                      "unit": "condition", "reason": "condition 4 (C57.104 Table 1) for c2h4"}],
    }]])


@router.get("/asset-health/ranking", response_model=HealthRankingPage,
            summary="Assets ranked by health, worst first")
async def health_ranking(
    request: Request, c: Ctx, who: Reader, start: Start, end: End,
    asset_type: Annotated[AssetType | None, Query()] = None,
    region_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    substation_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    category: Annotated[Category | None, Query(description="Only this category.")] = None,
    limit: Annotated[int | None, Query(ge=1)] = None, offset: Offset = 0,
) -> Response:
    """Each asset's newest index in ``[start, end)``, worst first.

    Critical before poor before fair before good, lower scores first within a category;
    assets without a verdict (``unknown``) last. Only assets of your regions (asking for
    another region is 403).
    """
    s, e = time_range(c.settings.api, start, end)
    size = page_size(c.settings.api, limit, default=100)
    if region_id is not None:
        who.require_region(region_id, f"region {region_id!r}")

    async def compute() -> Rendered:
        got = await c.queries.read(DATASET, s, e, who,
                                   entity_types={asset_type} if asset_type else None)
        rows = [r for r in latest_per_asset(got.rows)
                if (region_id is None or r.get("region_id") == region_id)
                and (substation_id is None or r.get("substation_id") == substation_id)
                and (category is None or r.get("category") == category)]
        page = []
        for i, r in enumerate(ranked(rows)[offset:offset + size], start=offset + 1):
            page.append({"rank": i, **{k: r.get(k) for k in _SUMMARY},
                         "findings": findings(parse_factors(r.get("factors")))})
        body = dumps({"start": from_ms(s), "end": from_ms(e), "total": len(rows),
                      "limit": size, "offset": offset, "sources": sorted(got.sources),
                      "rows": page})
        return Rendered(body, JSON, got.sources)

    return await c.queries.cached(request, who, [DATASET.name], compute)


class AssetHealthHistory(BaseModel):
    """One asset's daily health with every factor, oldest first."""

    asset_type: str
    asset_id: str
    start: Any
    end: Any
    sources: list[str]
    rows: list[dict[str, Any]]


@router.get("/asset-health/{asset_type}/{asset_id}", response_model=AssetHealthHistory,
            summary="One asset's health history with its factors")
async def asset_health(
    request: Request, c: Ctx, who: Reader, asset_type: AssetType, asset_id: AssetId,
    start: Start, end: End,
) -> Response:
    """Every day of ``[start, end)``: score, category, action and the factors.

    Each factor with its value, severity and reason. 404 for an unknown asset, 403
    outside your regions.
    """
    s, e = time_range(c.settings.api, start, end)
    known = c.queries.check_entity(who, asset_type, asset_id)

    async def compute() -> Rendered:
        got = await c.queries.read(DATASET, s, e, who, entity=(asset_type, asset_id))
        if not known and not got.rows:
            raise EntityNotFound(f"{asset_type} {asset_id!r} not found")
        rows = [{**{k: r.get(k) for k in _SUMMARY}, "factors": parse_factors(r.get("factors"))}
                for r in sorted(got.rows, key=lambda r: r["day"])]
        body = dumps({"asset_type": asset_type, "asset_id": asset_id, "start": from_ms(s),
                      "end": from_ms(e), "sources": sorted(got.sources), "rows": rows})
        return Rendered(body, JSON, got.sources)

    return await c.queries.cached(request, who, [DATASET.name], compute)
