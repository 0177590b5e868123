"""Fast JSON encoding of messages (orjson when installed, the standard library otherwise)."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None  # type: ignore[assignment]

BACKEND = "orjson" if _orjson is not None else "json"
"""Name of the JSON library in use."""


def dumps(value: Any) -> bytes:
    """Serialise a message dict to compact UTF-8 JSON bytes."""
    if _orjson is not None:
        return _orjson.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes | str) -> Any:
    """Parse JSON bytes or text."""
    if _orjson is not None:
        return _orjson.loads(data)
    return json.loads(data)


def encode(value: dict[str, Any] | bytes) -> bytes:
    """Bytes of a record's value: raw bytes pass through, dicts are serialised."""
    return value if isinstance(value, bytes) else dumps(value)
