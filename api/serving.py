"""Reading the serving copy in Redis, with a circuit breaker and the response cache.

Layout (``lakehouse.contracts.serving``): one hash per row, a sorted set indexing every
row by its time column, a pub/sub channel announcing each flush. A query for one entity
computes its keys from the grain (no index scan); a query over many entities scans the
index for the range and filters the members before reading any hash.

When Redis fails (connection refused, timeout), :class:`ServingStore` raises
:class:`ServingUnavailable` at once for ``api.redis_retry_s`` seconds instead of letting
every request wait for its own timeout; the caller answers from the lake meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.datasets import Dataset
from api.models import decode_row
from lakehouse.contracts.schema import TableContract
from lakehouse.contracts.serving import (
    events_channel,
    hash_fields,
    index_key,
    index_score,
    row_member,
    serving_key_prefix,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Hashes read per pipeline round trip.
CHUNK = 2000


class ServingUnavailable(Exception):
    """The serving copy cannot be read now (Redis down or failing)."""


@dataclass(frozen=True)
class Coverage:
    """What the serving copy holds of a dataset.

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

    # ------------------------------------------------------------------------ reads
    async def coverage(self, ds: Dataset, max_age_s: float = 2.0) -> Coverage:
        """Rows and time span of ``ds`` in the serving copy (cached ``max_age_s``)."""
        hit = self._coverage.get(ds.name)
        now = time.monotonic()
        if hit and now - hit[0] < max_age_s:
            return hit[1]
        index = index_key(self.prefix, ds.table)

        async def read() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.zcard(index)
            pipe.zrange(index, 0, 0, withscores=True)
            pipe.zrange(index, -1, -1, withscores=True)
            return list(await pipe.execute())

        n, first, last = await self.call(read)
        cov = Coverage(int(n), int(first[0][1]) if first else None,
                       int(last[0][1]) if last else None)
        self._coverage[ds.name] = (now, cov)
        return cov

    def forget_coverage(self, ds_name: str) -> None:
        """Drop the cached coverage of a dataset (new rows landed)."""
        self._coverage.pop(ds_name, None)

    async def members(self, ds: Dataset, start_ms: int, end_ms: int) -> list[str]:
        """Index members of rows with time in ``[start_ms, end_ms)``."""
        index = index_key(self.prefix, ds.table)
        return await self.call(
            lambda: self.client.zrangebyscore(index, start_ms, end_ms - 1))

    async def rows(self, ds: Dataset, members: Iterable[str]) -> list[dict[str, Any]]:
        """The decoded rows of ``members`` (members whose hash is gone are skipped)."""
        prefix = serving_key_prefix(self.prefix, ds.table)
        wanted = list(members)
        out: list[dict[str, Any]] = []
        for i in range(0, len(wanted), CHUNK):
            chunk = wanted[i:i + CHUNK]

            async def read(chunk: list[str] = chunk) -> list[Any]:
                pipe = self.client.pipeline(transaction=False)
                for m in chunk:
                    pipe.hgetall(prefix + m)
                return list(await pipe.execute())

            for raw in await self.call(read):
                if raw:
                    out.append(decode_row(ds.table, raw))
        return out

    async def entity_rows(self, ds: Dataset, entity_type: str, entity_id: str,
                          start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Rows of one entity in ``[start_ms, end_ms)``, keys computed from the grain."""
        if ds.keyed_by_entity_and_time:
            members = [ds.member(entity_type, entity_id, t)
                       for t in ds.aligned(start_ms, end_ms)]
        else:
            members = [m for m in await self.members(ds, start_ms, end_ms)
                       if ds.member_entity(m)[1] == entity_id]
        return await self.rows(ds, members)

    async def ping(self) -> None:
        """PING Redis (closes the breaker on success).

        Raises:
            RedisError, OSError: Redis does not answer.

        """
        await self.client.ping()
        self.mark_up()

    # ------------------------------------------------------------------------ cache
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


def write_rows(client: Any, key_prefix: str, table: TableContract, score_field: str,
               rows: list[dict[str, Any]]) -> int:
    """Write rows into the serving copy as the ``gridlake-redis`` connector does.

    One ``MULTI``/``EXEC``: per row ``HSET`` of the non-null columns, ``HDEL`` of the null
    ones and ``ZADD`` to the index; then one ``PUBLISH`` of the row count on the table's
    events channel. Rows give timestamps as epoch milliseconds. Used by the benchmark
    and tests to add rows next to what the pipeline wrote.

    Args:
        client: A synchronous ``redis.Redis`` (``decode_responses=True``).
        key_prefix: The global key prefix (``settings.redis.key_prefix``).
        table: The table.
        score_field: Column scoring the index (``SERVING_SCORE[table.name]``).
        rows: The rows.

    Returns:
        The number of rows written.

    """
    prefix = serving_key_prefix(key_prefix, table)
    index = index_key(key_prefix, table)
    pipe = client.pipeline(transaction=True)
    for row in rows:
        member = row_member(table, row)
        present, absent = hash_fields(table, row)
        if present:
            pipe.hset(prefix + member, mapping=present)
        if absent:
            pipe.hdel(prefix + member, *absent)
        pipe.zadd(index, {member: index_score(table, score_field, row)})
    if rows:
        pipe.execute()
        client.publish(events_channel(key_prefix, table), str(len(rows)))
    return len(rows)
