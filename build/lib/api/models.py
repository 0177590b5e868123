"""Response models derived from the table contracts (never written by hand)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, create_model
from pydantic import Field as PydField

from lakehouse.contracts import FieldType, TableContract
from lakehouse.time import from_ms

PY_TYPES: dict[FieldType, type] = {
    FieldType.STRING: str,
    FieldType.INT: int,
    FieldType.BIGINT: int,
    FieldType.DOUBLE: float,
    FieldType.BOOLEAN: bool,
    FieldType.TIMESTAMP: datetime,
}


_MODELS: dict[str, type[BaseModel]] = {}


def row_model(table: TableContract) -> type[BaseModel]:
    """A pydantic model of one row of ``table``, with units in the field descriptions."""
    if table.name in _MODELS:
        return _MODELS[table.name]
    fields: dict[str, Any] = {}
    for f in table.fields:
        desc = f"{f.description} [{f.unit}]" if f.unit else f.description
        fields[f.name] = (PY_TYPES[f.type] | None, PydField(default=None, description=desc))
    model_name = "".join(part.title() for part in table.name.split("_")) + "Row"
    model = create_model(model_name, __doc__=table.description, **fields)
    _MODELS[table.name] = model
    return model


def _timestamp(value: str) -> datetime:
    return from_ms(int(value))


def _boolean(value: str) -> bool:
    return value.lower() == "true"


_CONVERTERS: dict[FieldType, Callable[[str], Any]] = {
    FieldType.TIMESTAMP: _timestamp, FieldType.INT: int, FieldType.BIGINT: int,
    FieldType.DOUBLE: float, FieldType.BOOLEAN: _boolean, FieldType.STRING: str,
}
_DECODERS: dict[str, list[tuple[str, Callable[[str], Any]]]] = {}


def decode_row(table: TableContract, raw: dict[str, str]) -> dict[str, Any]:
    """Turn a serving-copy hash (all strings; timestamps as epoch ms) into typed values."""
    # Per-table converter lists: this runs once per row of every answer.
    decoder = _DECODERS.get(table.name)
    if decoder is None:
        decoder = _DECODERS[table.name] = [(f.name, _CONVERTERS[f.type]) for f in table.fields]
    out: dict[str, Any] = {}
    for name, convert in decoder:
        value = raw.get(name)
        out[name] = None if value is None or value == "" else convert(value)
    return out
