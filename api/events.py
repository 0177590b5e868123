"""Change events of the serving copy: cache generations and the real-time feed's trigger.

Every writer of the serving copy publishes on ``<table prefix>events`` after each flush
(``lakehouse.contracts.serving.events_channel``). :class:`EventHub` subscribes to the
channel of every dataset and, for each event, bumps that dataset's *generation*: cached
responses are keyed by the generations of the datasets they read, so the first request
after new data lands misses the cache and reads the new rows.

Generations live in this process (each worker has its own subscription) and start from a
random nonce, so no worker ever reads an entry computed before a change it has seen. The same
subscription carries the workers' alarm lifecycle changes (:func:`alarm_channel`) to the
feed's listeners (:meth:`EventHub.announce`). When
the subscription breaks, every generation is bumped on reconnect (events may have been
missed) and :attr:`EventHub.listening` is False meanwhile: the cache is bypassed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from api.datasets import Dataset
from lakehouse.contracts.serving import events_channel

log = logging.getLogger(__name__)

#: Prefix of the queue items that carry an alarm lifecycle change (JSON after it).
ALARM_ITEM = "alarm_changed:"


def alarm_channel(key_prefix: str) -> str:
    """The channel on which workers announce alarm lifecycle changes to each other."""
    return f"{key_prefix}alarm-events"


class EventHub:
    """Subscribes to the events channels; keeps generations; wakes feed listeners."""

    def __init__(self, url: str, key_prefix: str, datasets: Iterable[Dataset]) -> None:
        self.url = url
        self.datasets = {events_channel(key_prefix, d.table): d.name for d in datasets}
        self.alarm_channel = alarm_channel(key_prefix)
        self.nonce = secrets.token_hex(4)
        self.generations: dict[str, int] = dict.fromkeys(self.datasets.values(), 0)
        self.listening = False
        self.events = 0
        self.error: str | None = "not started"
        self._listeners: set[asyncio.Queue[str]] = set()
        self._callbacks: list[Callable[[str], None]] = []
        self._task: asyncio.Task[None] | None = None

    def on_change(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(dataset name)`` on every change (before the generation moves)."""
        self._callbacks.append(callback)

    def generation_key(self, names: Iterable[str]) -> str:
        """The cache-key part standing for the current data of ``names``."""
        return self.nonce + "." + ".".join(f"{n}{self.generations[n]}" for n in sorted(names))

    def listen(self) -> asyncio.Queue[str]:
        """A queue receiving the dataset name of every event (feed subscribers)."""
        q: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)
        self._listeners.add(q)
        return q

    def unlisten(self, q: asyncio.Queue[str]) -> None:
        """Stop delivering to ``q``."""
        self._listeners.discard(q)

    @property
    def listeners(self) -> int:
        """Feed subscribers now."""
        return len(self._listeners)

    def bump(self, name: str) -> None:
        """Record a change of dataset ``name`` and wake the listeners."""
        for callback in self._callbacks:
            callback(name)
        self.generations[name] += 1
        self.events += 1
        for q in list(self._listeners):
            try:
                q.put_nowait(name)
            except asyncio.QueueFull:  # a stalled client loses events, not the hub
                pass

    def announce(self, payload: str) -> None:
        """Hand an alarm lifecycle change (JSON) to the feed listeners of this worker."""
        for q in list(self._listeners):
            try:
                q.put_nowait(ALARM_ITEM + payload)
            except asyncio.QueueFull:
                pass

    def invalidate_all(self) -> None:
        """Move every generation (safe from another thread: wakes no listener)."""
        for name in self.generations:
            self.generations[name] += 1

    def start(self) -> None:
        """Run the subscription in a background task."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        """Cancel the subscription."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, RedisError, OSError):
                pass

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            client = aioredis.from_url(self.url, decode_responses=True,
                                       socket_connect_timeout=2, health_check_interval=5)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(*self.datasets, self.alarm_channel)
                # Whatever landed while not subscribed was missed: invalidate everything.
                for name in self.generations:
                    for callback in self._callbacks:
                        callback(name)
                    self.generations[name] += 1
                self.listening, self.error, backoff = True, None, 0.2
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None and msg.get("type") == "message":
                        if msg["channel"] == self.alarm_channel:
                            self.announce(str(msg["data"]))
                            continue
                        changed: str | None = self.datasets.get(msg["channel"])
                        if changed is not None:
                            self.bump(changed)
            except (RedisError, OSError) as err:
                self.listening = False
                self.error = f"{type(err).__name__}: {err}"
                log.debug("event subscription lost (%s); retrying in %.1f s", err, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self.listening = False
                try:
                    await pubsub.aclose()  # type: ignore[attr-defined]
                    await client.aclose()  # type: ignore[attr-defined]
                except (RedisError, OSError):
                    pass
