"""Device information management: list, view, create, update, retire.

Reads come from the device catalog (the compacted ``device.registry`` topic). Every change
is a new version of the device's registry record, checked against the
``device_registry`` message contract and published to Kafka with the simulator's
:class:`~infra.kafka_client.Publisher`, so it reaches ``dim_device`` through the
streaming job like any registry event (a new SCD-2 version valid from the change).
Request and response models are derived from the contract.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field, create_model

from api.context import Ctx, require
from api.models import PY_TYPES
from api.output import parse_sort, render, sort_rows
from api.security import Perm, Principal
from api.validation import Offset
from infra.kafka_client import KafkaUnavailableError, Publisher
from lakehouse.contracts.messages import DEVICE_REGISTRY
from lakehouse.contracts.schema import FieldType
from lakehouse.time import from_ms

log = logging.getLogger(__name__)

router = APIRouter(tags=["devices"])

DEVICE_TYPES = ("substation", "feeder", "transformer", "meter", "ess", "pv_inverter")
CUSTOMER_CLASSES = ("residential", "commercial", "industrial")
#: Set by the API on every change, never by the caller.
SERVER_FIELDS = ("ts", "version", "change_type", "status")
DEVICE_ID = r"^[A-Za-z0-9_.:-]{1,64}$"

Reader = Annotated[Principal, Depends(require(Perm.READ_DEVICES))]
Writer = Annotated[Principal, Depends(require(Perm.WRITE_DEVICES))]
DeviceId = Annotated[str, Path(pattern=DEVICE_ID, examples=["TX-00001"])]


def _model(name: str, doc: str, *, all_optional: bool, skip: tuple[str, ...]) -> Any:
    fields: dict[str, Any] = {}
    for f in DEVICE_REGISTRY.fields:
        if f.name in skip:
            continue
        desc = f"{f.description} [{f.unit}]" if f.unit else f.description
        kw: dict[str, Any] = {"description": desc}
        if f.minimum is not None:
            kw["ge"] = f.minimum
        if f.maximum is not None:
            kw["le"] = f.maximum
        if f.name == "device_id":
            kw["pattern"] = DEVICE_ID
        typ = PY_TYPES[f.type]
        if all_optional or not f.required:
            fields[f.name] = (typ | None, Field(default=None, **kw))
        else:
            fields[f.name] = (typ, Field(**kw))
    return create_model(name, __doc__=doc, **fields)


Device = _model("Device", "A device's current registry record.", all_optional=True, skip=())
DeviceCreate = _model("DeviceCreate", "A new device (version 1).", all_optional=False,
                      skip=SERVER_FIELDS)
DeviceUpdate = _model("DeviceUpdate", "Changed attributes of a device (omitted ones stay); "
                      "the id and type cannot change.", all_optional=True,
                      skip=(*SERVER_FIELDS, "device_id", "device_type"))


class DevicePage(BaseModel):
    """A page of devices."""

    total: int
    limit: int
    offset: int
    rows: list[Device]  # type: ignore[valid-type]


def _check(c: Any, rec: dict[str, Any]) -> None:
    """Contract and topology checks of a record about to be published (422 naming it)."""
    if rec["device_type"] not in DEVICE_TYPES:
        raise HTTPException(422, f"device_type: one of {', '.join(DEVICE_TYPES)}")
    cc = rec.get("customer_class")
    if cc is not None and cc not in CUSTOMER_CLASSES:
        raise HTTPException(422, f"customer_class: one of {', '.join(CUSTOMER_CLASSES)}")
    try:
        date.fromisoformat(rec["install_date"])
    except (TypeError, ValueError):
        raise HTTPException(422, "install_date: a date yyyy-MM-dd") from None
    if rec["device_type"] == "substation":
        if rec["parent_id"] != rec["region_id"]:
            raise HTTPException(422, "parent_id: a substation's parent is its region_id")
    else:
        parent = c.catalog.get(rec["parent_id"])
        if parent is None:
            raise HTTPException(422, f"parent_id: unknown device {rec['parent_id']!r}")
        if parent.get("region_id") != rec["region_id"]:
            raise HTTPException(422, f"region_id: the parent is in {parent.get('region_id')}")
    reason = DEVICE_REGISTRY.validate(rec)
    if reason is not None:
        kind, _, name = reason.partition(":")
        raise HTTPException(422, f"{name or 'body'}: {kind.replace('_', ' ')}")


def _publish(c: Any, rec: dict[str, Any]) -> None:
    """Send one registry record and wait for the broker's acknowledgement (503 if not)."""
    try:
        pub = Publisher.from_settings(c.settings, connect_attempts=1, resend_attempts=1,
                                      backoff_s=0.2, delivery_timeout_ms=10_000,
                                      max_block_ms=5_000, connect_timeout_s=5.0)
        pub.send(DEVICE_REGISTRY.topic, rec["device_id"], rec)
        report = pub.close()
    except KafkaUnavailableError as err:
        raise HTTPException(503, f"Kafka unavailable: {err}") from None
    if report.total_delivered != 1:
        raise HTTPException(503, "registry event not acknowledged by Kafka: "
                            + "; ".join(report.errors[:3]))


async def _change(c: Any, who: Principal, rec: dict[str, Any], action: str) -> dict[str, Any]:
    rec = {k: v for k, v in rec.items() if v is not None}
    _check(c, rec)
    await asyncio.to_thread(_publish, c, rec)
    c.catalog.apply(rec)  # read-your-writes in this worker; the others follow the topic
    c.audit(who, action, rec["device_id"], version=rec["version"], record=rec)
    return public(rec)


_TIMES = tuple(f.name for f in DEVICE_REGISTRY.fields if f.type is FieldType.TIMESTAMP)


def public(rec: dict[str, Any]) -> dict[str, Any]:
    """A registry record as the API shows it: every contract column, times as date-times.

    The registry carries times as epoch ms; the ``Device`` schema (and every other
    date-time of the API) is ISO 8601. A time outside years 1-9999 (the contract does not
    bound it) is shown as unknown rather than failing the listing.
    """
    out = {f.name: rec.get(f.name) for f in DEVICE_REGISTRY.fields}
    for name in _TIMES:
        value = out[name]
        if isinstance(value, int):
            try:
                out[name] = from_ms(value)
            except ValueError:
                log.warning("device %s: %s %d is not a time", rec.get("device_id"), name, value)
                out[name] = None
    return out


def _visible(c: Any, who: Principal, device_id: str) -> dict[str, Any]:
    rec = c.catalog.get(device_id)
    if rec is None:
        raise HTTPException(404, f"device {device_id!r} not found")
    who.require_region(rec.get("region_id"), f"device {device_id!r}")
    return dict(rec)


@router.get("/devices", response_model=DevicePage, summary="List devices",
            responses={200: {"content": {"text/csv": {}}}})
async def list_devices(
    c: Ctx, who: Reader,
    device_type: Annotated[Literal[DEVICE_TYPES] | None, Query()] = None,  # type: ignore[valid-type]
    region_id: Annotated[str | None, Query(max_length=64)] = None,
    substation_id: Annotated[str | None, Query(max_length=64)] = None,
    feeder_id: Annotated[str | None, Query(max_length=64)] = None,
    transformer_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=32, examples=["in_service"])] = None,
    q: Annotated[str | None, Query(max_length=64, description="Id prefix.")] = None,
    sort: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Offset = 0,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Response:
    """Current version of every device of your regions, filtered, sorted and paged."""
    want = {"device_type": device_type, "region_id": region_id,
            "substation_id": substation_id, "feeder_id": feeder_id,
            "transformer_id": transformer_id, "status": status}
    names = [f.name for f in DEVICE_REGISTRY.fields]
    keys = parse_sort(names, sort) or [("device_id", False)]
    rows = [r for r in c.catalog.devices()
            if who.sees_region(r.get("region_id"))
            and all(v is None or r.get(k) == v for k, v in want.items())
            and (q is None or r["device_id"].startswith(q))]
    rows = sort_rows(rows, keys)
    body, media = render({"total": len(rows), "limit": limit, "offset": offset},
                         [public(r) for r in rows[offset:offset + limit]], names, fmt)
    return Response(body, media_type=media)


@router.get("/devices/{device_id}", response_model=Device, summary="One device")
async def get_device(device_id: DeviceId, c: Ctx, who: Reader) -> Any:
    """The device's current registry record (404 unknown, 403 outside your regions)."""
    return public(_visible(c, who, device_id))


@router.post("/devices", response_model=Device, status_code=201, summary="Create a device",
             responses={409: {"description": "The id exists"},
                        503: {"description": "Kafka unavailable"}})
async def create_device(body: DeviceCreate, c: Ctx, who: Writer) -> Any:  # type: ignore[valid-type]
    """Register a device (version 1, ``change_type=create``) in one of your regions."""
    rec: dict[str, Any] = body.model_dump()  # type: ignore[attr-defined]
    who.require_region(rec["region_id"], f"region {rec['region_id']!r}")
    if c.catalog.get(rec["device_id"]) is not None:
        raise HTTPException(409, f"device {rec['device_id']!r} exists")
    rec.update(ts=int(time.time() * 1000), version=1, change_type="create",
               status="in_service")
    return await _change(c, who, rec, "device_create")


@router.patch("/devices/{device_id}", response_model=Device, summary="Update a device",
              responses={409: {"description": "The device is retired"},
                         503: {"description": "Kafka unavailable"}})
async def update_device(device_id: DeviceId, body: DeviceUpdate, c: Ctx,  # type: ignore[valid-type]
                        who: Writer) -> Any:
    """A new version with the changed attributes.

    ``change_type`` is ``move`` when the topology parent changes, else ``update``. Moving a
    device to another region needs both regions in your scope.
    """
    cur = _visible(c, who, device_id)
    if cur.get("status") == "retired":
        raise HTTPException(409, f"device {device_id!r} is retired")
    changes = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
    if not changes:
        raise HTTPException(422, "body: no attribute to change")
    if "region_id" in changes:
        who.require_region(changes["region_id"], f"region {changes['region_id']!r}")
    moved = any(k in changes and changes[k] != cur.get(k)
                for k in ("parent_id", "substation_id", "feeder_id", "transformer_id"))
    rec = {**cur, **changes, "ts": int(time.time() * 1000),
           "version": int(cur["version"]) + 1, "change_type": "move" if moved else "update"}
    return await _change(c, who, rec, "device_update")


@router.post("/devices/{device_id}/retire", response_model=Device, summary="Retire a device",
             responses={409: {"description": "The device is retired already"},
                        503: {"description": "Kafka unavailable"}})
async def retire_device(device_id: DeviceId, c: Ctx, who: Writer) -> Any:
    """A last version with ``status=retired`` (``change_type=retire``).

    The history stays in ``dim_device``.
    """
    cur = _visible(c, who, device_id)
    if cur.get("status") == "retired":
        raise HTTPException(409, f"device {device_id!r} is already retired")
    rec = {**cur, "ts": int(time.time() * 1000), "version": int(cur["version"]) + 1,
           "change_type": "retire", "status": "retired"}
    return await _change(c, who, rec, "device_retire")

