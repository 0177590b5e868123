"""A closed-loop load generator for the API benchmark (run in its own process).

``python -m ops.bench.loadgen < SPEC_JSON`` runs ``concurrency`` clients for ``seconds``; each
sends its next request as soon as the previous answer is in. ``kind`` ``http`` requests
``targets`` (URLs, round robin with a random start per client) with ``headers``; ``redis``
GETs the ``targets`` keys on ``redis_url`` (the floor: one Redis round trip from the same
process and event loop). With ``unique``, every HTTP request gets a parameter of its own,
so no answer comes from the response cache. Prints one JSON object: requests, errors,
requests per second, latency percentiles in milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any
from urllib.parse import urlsplit


def summary(latencies: list[float], errors: int, seconds: float) -> dict[str, Any]:
    """Count, rate and p50/p90/p99/max (ms) of a run."""
    lat = sorted(latencies)

    def pct(q: float) -> float:
        return round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 3) if lat else 0.0

    return {"requests": len(lat), "errors": errors,
            "rps": round(len(lat) / seconds, 1) if seconds else 0.0,
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "max_ms": round(1000 * lat[-1], 3) if lat else 0.0}


class HttpConnection:
    """One keep-alive HTTP/1.1 connection issuing GETs (answers with Content-Length).

    Deliberately minimal: a general client (httpx) costs the load generator more CPU per
    request than the server spends on a cached answer, which on a small machine measures
    the client instead of the server.
    """

    def __init__(self, headers: dict[str, str]) -> None:
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, url: str) -> int:
        """GET ``url``; the status code (the body is read and dropped)."""
        parts = urlsplit(url)
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                parts.hostname, parts.port or 80)
        assert self.reader is not None
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.writer.write(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                          f"{self.extra}\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        close = False
        for line in lines[1:]:
            if line[:15].lower() == "content-length:":
                length = int(line[15:])
            elif line.lower() == "connection: close":
                close = True
        await self.reader.readexactly(length)
        if close:  # e.g. Nginx after keepalive_requests answers: the next GET reconnects
            self.close()
        return status

    def close(self) -> None:
        """Close the connection (the next GET opens a new one)."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    targets: list[str] = spec["targets"]
    n, seconds = int(spec["concurrency"]), float(spec["seconds"])
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    if spec["kind"] == "redis":
        import redis.asyncio as aioredis

        client = aioredis.from_url(spec["redis_url"], max_connections=n + 4)

        async def once(target: str) -> bool:
            return await client.get(target) is not None
    else:
        pool: asyncio.Queue[HttpConnection] = asyncio.Queue()
        for _ in range(n):
            pool.put_nowait(HttpConnection(spec.get("headers") or {}))

        async def once(target: str) -> bool:
            conn = await pool.get()
            try:
                return await conn.get(target) == 200
            except Exception:
                conn.close()  # a broken connection is not reused
                raise
            finally:
                pool.put_nowait(conn)

    unique = bool(spec.get("unique"))
    tag = f"{random.getrandbits(32):08x}"

    async def worker() -> None:
        nonlocal errors
        i = random.randrange(len(targets))  # noqa: S311 - load spread, not security
        w = random.getrandbits(32)
        while time.perf_counter() < stop_at:
            target = targets[i % len(targets)]
            if unique:  # an unknown parameter: the same answer, never from the cache
                target += f"&bench={tag}-{w:08x}-{i}"
            t0 = time.perf_counter()
            try:
                ok = await once(target)
            except Exception:  # noqa: BLE001 - counted, the run goes on
                ok = False
            if ok:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1
            i += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(n)))
    elapsed = time.perf_counter() - t0
    if spec["kind"] == "redis":
        await client.aclose()  # type: ignore[attr-defined]
    else:
        while not pool.empty():
            pool.get_nowait().close()
    return summary(latencies, errors, elapsed)


def main() -> None:
    """Run the spec read from standard input and print the result."""
    spec = json.loads(sys.stdin.read())
    sys.stdout.write(json.dumps(asyncio.run(_run(spec))) + "\n")


if __name__ == "__main__":
    main()
