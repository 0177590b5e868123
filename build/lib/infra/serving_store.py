"""The serving copy in Redis: every write and read protocol of it, in one place.

Layout (:mod:`lakehouse.contracts.serving`): one hash per row at ``<table prefix><key>``,
the sorted set ``<table prefix>index`` holding every row's key suffix scored by the table's
time column, the channel ``<table prefix>events`` announcing changes.

**Writes.** A change of one row is one Lua script, so its hash and its index entry change
together: ``serving_lua/upsert.lua`` (``HSET`` of the non-null columns, ``HDEL`` of the null
ones, ``ZADD`` to the index) and ``serving_lua/delete.lua`` (``DEL`` + ``ZREM``). Both carry
the change's value of the table's ordering field (``updated_ts``) and are refused when the
stored hash's value is greater: the newer version of a key wins whatever order the writers
(the stream, a backfill's refresh, an ML run) arrive in, ties going to the later write, as
in the lake. A change without an ordering value always applies. A batch of changes is one
``MULTI``/``EXEC`` (readers never see half of it) holding one ``EVALSHA`` per key and, last,
``PUBLISH <table prefix>events <keys in the batch>``: one round trip. The event says only
"this table changed" (readers drop their cached answers); a batch whose every change was
refused still sends it.

The ``gridlake-redis`` Flink connector runs the same two scripts (they are resources of
its jar, ``jobs/streaming/connectors/pom.xml``) with the same ``KEYS``/``ARGV``, built by
``io.gridlake.flink.redis.ServingProtocol``; :func:`upsert_call` and :func:`delete_call`
build them here. The test vector
``jobs/streaming/connectors/src/test/resources/io/gridlake/flink/redis/serving-vectors.json``
is checked by both sides (``tests/infra/test_serving_store.py``, ``ServingProtocolTest``).

**Reads.** :class:`ServingStore` is the API's asynchronous reader: coverage (rows and time
span), index members of a range, the hashes of members, and the response cache; a circuit
breaker turns a failing Redis into :class:`ServingUnavailable` at once for ``retry_s``
seconds instead of letting every request wait for its own timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from lakehouse.contracts.schema import TableContract
from lakehouse.contracts.serving import (
    events_channel,
    hash_fields,
    index_key,
    index_score,
    java_double_string,
    row_member,
    serving_key_prefix,
    serving_value,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The scripts, shared with the connector's jar (a Maven resource of it).
LUA_DIR = Path(__file__).resolve().parent / "serving_lua"
UPSERT_LUA = (LUA_DIR / "upsert.lua").read_text()
DELETE_LUA = (LUA_DIR / "delete.lua").read_text()

#: Retries of a Redis command that failed to connect, with exponential backoff from
#: 0.5 s (max 30 s): the connector's defaults.
RETRIES = 5
#: Hashes read per pipeline round trip.
READ_CHUNK = 2000
#: Scores up to this magnitude that are whole numbers are sent as integer digits.
_EXACT_INT = 2.0**53


# ------------------------------------------------------------------------- the protocol
def score_arg(score: float) -> str:
    """An index score as the scripts receive it (the connector renders it the same way).

    Whole numbers (epoch milliseconds) as integer digits, anything else as Java's
    ``Double.toString``.
    """
    if score.is_integer() and abs(score) < _EXACT_INT:
        return str(int(score))
    return java_double_string(score)


def _ordering_field(table: TableContract) -> str:
    """The ordering field the scripts compare (``''``: the table has none)."""
    return table.ordering_field if table.ordering_field in table.field_names else ""


def ordering_value(table: TableContract, row: Mapping[str, Any]) -> str:
    """The row's ordering value as stored (``''`` when the table or the row has none)."""
    by_name = {f.name: f for f in table.fields}
    field = by_name.get(table.ordering_field)
    if field is None:
        return ""
    return serving_value(field, row.get(field.name)) or ""


def upsert_args(table: TableContract, score_field: str, row: Mapping[str, Any]) -> list[str]:
    """``ARGV`` of ``upsert.lua`` for one row (timestamps given in epoch ms).

    Member, score, ordering field, ordering value, the number n of non-null columns, n
    column/value pairs, the null columns (all in the table's column order).
    """
    present, absent = hash_fields(table, row)
    args = [row_member(table, row), score_arg(index_score(table, score_field, row)),
            _ordering_field(table), ordering_value(table, row), str(len(present))]
    for name, value in present.items():
        args += [name, value]
    return args + absent


def upsert_call(key_prefix: str, table: TableContract, score_field: str,
                row: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``(KEYS, ARGV)`` of ``upsert.lua`` for one row: its hash and the index, and the row."""
    args = upsert_args(table, score_field, row)
    return [serving_key_prefix(key_prefix, table) + args[0], index_key(key_prefix, table)], args


def delete_call(key_prefix: str, table: TableContract, member: str,
                version: str = "") -> tuple[list[str], list[str]]:
    """``(KEYS, ARGV)`` of ``delete.lua`` for one index member.

    Args:
        key_prefix: The global key prefix (``settings.redis.key_prefix``).
        table: The table.
        member: The row's key suffix (index member).
        version: The delete's ordering value: a stored hash with a greater one is kept
            (``''``: removed whatever it holds).

    """
    order = _ordering_field(table)
    keys = [serving_key_prefix(key_prefix, table) + member, index_key(key_prefix, table)]
    return keys, [member, order, version if order else ""]


# ----------------------------------------------------------------------------- writing
class ServingWriter:
    """Writes rows of tables into the serving copy with the protocol (synchronous)."""

    def __init__(self, client: Any, key_prefix: str) -> None:
        """Wrap a ``redis.Redis`` client (``decode_responses=True``, e.g. :func:`connect`).

        Args:
            client: The client.
            key_prefix: The global key prefix (``settings.redis.key_prefix``).

        """
        self.client = client
        self.prefix = key_prefix
        self._upsert = client.register_script(UPSERT_LUA)
        self._delete = client.register_script(DELETE_LUA)

    def first_score(self, table: TableContract) -> float | None:
        """The smallest index score of ``table``'s copy (None when it is empty)."""
        first = self.client.zrange(index_key(self.prefix, table), 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    def members(self, table: TableContract, lo: int, hi: int) -> list[str]:
        """Index members scored in ``[lo, hi)``."""
        return list(self.client.zrangebyscore(index_key(self.prefix, table), lo, hi - 1))

    def write(self, table: TableContract, score_field: str,
              rows: Sequence[Mapping[str, Any]] = (), deletes: Sequence[str] = (),
              deletes_before: int | None = None) -> tuple[int, int]:
        """Upsert rows and delete members in one batch (one ``MULTI``/``EXEC``), announced.

        Args:
            table: The table.
            score_field: Column scoring the index (``SERVING_SCORE[table.name]``).
            rows: Rows to upsert (timestamps as epoch milliseconds).
            deletes: Index members to remove.
            deletes_before: Remove only hashes whose ordering value is below this (epoch
                ms; rows computed before it). None: whatever they hold.

        Returns:
            (rows written, keys removed); the others were refused (the copy held a newer
            version) or, for a delete, absent.

        """
        if not rows and not deletes:
            return 0, 0
        version = "" if deletes_before is None else str(deletes_before - 1)
        pipe = self.client.pipeline(transaction=True)
        for row in rows:
            keys, args = upsert_call(self.prefix, table, score_field, row)
            self._upsert(keys=keys, args=args, client=pipe)
        for member in deletes:
            keys, args = delete_call(self.prefix, table, member, version)
            self._delete(keys=keys, args=args, client=pipe)
        pipe.publish(events_channel(self.prefix, table), str(len(rows) + len(deletes)))
        results = [int(r) for r in pipe.execute()[:-1]]
        return sum(results[:len(rows)]), sum(results[len(rows):])

    def upsert(self, table: TableContract, score_field: str,
               rows: Sequence[Mapping[str, Any]]) -> int:
        """Upsert rows in one batch (see :meth:`write`).

        Returns:
            Rows written (the others were older than the stored hash).

        """
        return self.write(table, score_field, rows)[0]

    def delete(self, table: TableContract, members: Sequence[str],
               before: int | None) -> int:
        """Remove the rows of index ``members`` computed before ``before`` (epoch ms).

        Returns:
            Keys removed.

        """
        return self.write(table, "", deletes=members, deletes_before=before)[1]


def connect(url: str, retries: int = RETRIES) -> redis.Redis:
    """A ``redis.Redis`` for a writer: string replies, connection errors retried."""
    return redis.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=5, socket_timeout=60,
        retry=Retry(ExponentialBackoff(cap=30, base=0.5), retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError])


# ----------------------------------------------------------------------------- reading
class ServingUnavailable(Exception):
    """The serving copy cannot be read now (Redis down or failing)."""


@dataclass(frozen=True)
class Coverage:
    """What the serving copy holds of a table.

    Attributes:
        rows: Rows in the index.
        first_ms: Smallest time (index score), None when empty.
        last_ms: Largest time, None when empty.

    """

    rows: int
    first_ms: int | None
    last_ms: int | None


class ServingStore:
    """Async reader of the serving copy (and home of the response cache)."""

    def __init__(self, client: aioredis.Redis, key_prefix: str, retry_s: float) -> None:
        """Wrap a ``redis.asyncio.Redis`` client (``decode_responses=True``).

        Args:
            client: The client.
            key_prefix: The global key prefix (``settings.redis.key_prefix``).
            retry_s: How long the breaker stays open after a failure.

        """
        self.client = client
        self.prefix = key_prefix
        self.retry_s = retry_s
        self._down_until = 0.0
        self.last_error: str | None = None
        self._coverage: dict[str, tuple[float, Coverage]] = {}

    @property
    def available(self) -> bool:
        """False while the breaker is open (a recent failure)."""
        return time.monotonic() >= self._down_until

    def mark_up(self) -> None:
        """Close the breaker (a successful ping)."""
        self._down_until = 0.0
        self.last_error = None

    async def call(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis operation through the breaker.

        Raises:
            ServingUnavailable: The breaker is open or the operation failed.

        """
        if not self.available:
            raise ServingUnavailable(f"serving copy unavailable: {self.last_error}")
        try:
            return await op()
        except (RedisConnectionError, RedisTimeoutError, OSError) as err:
            self._down_until = time.monotonic() + self.retry_s
            self.last_error = f"{type(err).__name__}: {err}"
            # A Redis that comes back may come back empty: forget what it held.
            self._coverage.clear()
            log.warning("serving copy unavailable for %.1f s: %s", self.retry_s, err)
            raise ServingUnavailable(f"serving copy unavailable: {self.last_error}") from err
        except RedisError as err:  # e.g. a wrong-type key: one request fails, not the store
            raise ServingUnavailable(f"serving copy error: {err}") from err

    async def coverage(self, table: TableContract, max_age_s: float = 2.0) -> Coverage:
        """Rows and time span of ``table`` in the serving copy (cached ``max_age_s``)."""
        hit = self._coverage.get(table.name)
        now = time.monotonic()
        if hit and now - hit[0] < max_age_s:
            return hit[1]
        index = index_key(self.prefix, table)

        async def read() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.zcard(index)
            pipe.zrange(index, 0, 0, withscores=True)
            pipe.zrange(index, -1, -1, withscores=True)
            return list(await pipe.execute())

        n, first, last = await self.call(read)
        cov = Coverage(int(n), int(first[0][1]) if first else None,
                       int(last[0][1]) if last else None)
        self._coverage[table.name] = (now, cov)
        return cov

    def forget_coverage(self, table: TableContract) -> None:
        """Drop the cached coverage of a table (new rows landed)."""
        self._coverage.pop(table.name, None)

    async def members(self, table: TableContract, start_ms: int, end_ms: int) -> list[str]:
        """Index members of rows with time in ``[start_ms, end_ms)``."""
        index = index_key(self.prefix, table)
        return await self.call(
            lambda: self.client.zrangebyscore(index, start_ms, end_ms - 1))

    async def hashes(self, table: TableContract,
                     members: Iterable[str]) -> list[dict[str, str]]:
        """The stored hashes of ``members``, in order (members whose hash is gone skipped)."""
        prefix = serving_key_prefix(self.prefix, table)
        wanted = list(members)
        out: list[dict[str, str]] = []
        for i in range(0, len(wanted), READ_CHUNK):
            chunk = wanted[i:i + READ_CHUNK]

            async def read(chunk: list[str] = chunk) -> list[Any]:
                pipe = self.client.pipeline(transaction=False)
                for m in chunk:
                    pipe.hgetall(prefix + m)
                return list(await pipe.execute())

            out += [raw for raw in await self.call(read) if raw]
        return out

    async def ping(self) -> None:
        """PING Redis (closes the breaker on success).

        Raises:
            RedisError, OSError: Redis does not answer.

        """
        await self.client.ping()
        self.mark_up()

    async def cache_get(self, key: str) -> str | None:
        """A cached response, or None (a cache failure is a miss)."""
        try:
            value = await self.call(lambda: self.client.get(key))
        except ServingUnavailable:
            return None
        return value if isinstance(value, str) else None

    async def cache_set(self, key: str, value: str, ttl_s: int) -> None:
        """Cache a response (a failure is ignored: the next request recomputes it)."""
        try:
            await self.call(lambda: self.client.set(key, value, ex=ttl_s))
        except ServingUnavailable:
            pass
