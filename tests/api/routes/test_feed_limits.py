"""The feed checks its parameters before the stream opens and limits streams per user.

A real HTTP server in this process, nothing behind it (no Redis, Kafka or lake): the feed
opens, says ``status``, and idles.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes.feed import ConnectionSlots
from infra.settings import GridLakeSettings
from tests.api.conftest import ADMIN_PASSWORD, Users, api_settings, served

LIMIT = 2


def test_unknown_feed_parameters_are_422_before_any_stream(client: TestClient,
                                                           users: Users) -> None:
    h = users.headers("viewer")
    for params, field in [({"datasets": "nosuch"}, "datasets"),
                          ({"datasets": "load_daily,nosuch"}, "datasets"),
                          ({"entity_types": "planet"}, "entity_types"),
                          ({"alarms_only": "perhaps"}, "alarms_only")]:
        r = client.get("/api/v1/feed", params=params, headers=h)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"] == "application/json"
        assert r.json()["detail"].startswith(field), r.text


def test_connection_slots_count_per_user() -> None:
    slots = ConnectionSlots(2)
    assert slots.take("ann") and slots.take("ann") and not slots.take("ann")
    assert slots.take("bob")
    slots.give_back("ann")
    assert slots.held("ann") == 1 and slots.take("ann")


@pytest.fixture
def feed_url(settings: GridLakeSettings, tmp_path: Path) -> Iterator[str]:
    cfg = api_settings(settings, tmp_path / "home", feed_connections_per_user=LIMIT)
    with served(create_app(cfg)) as url:
        yield url


class Stream:
    """A feed connection on a raw socket, read in a thread until :meth:`close` drops it.

    A socket (not an HTTP client) so that another thread can end a blocking read at once.
    """

    def __init__(self, url: str, token: str) -> None:
        self.opened = threading.Event()
        self.answered = threading.Event()
        self.status: int | None = None
        host, port = url.removeprefix("http://").split(":")
        self._sock = socket.create_connection((host, int(port)), timeout=10)
        self._sock.settimeout(None)
        self._sock.sendall(
            f"GET /api/v1/feed?datasets=transformer_daily HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode())
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._sock.makefile("rb") as lines:
            for raw in lines:
                line = raw.decode("latin-1").strip()
                if self.status is None and line.startswith("HTTP/1.1 "):
                    self.status = int(line.split()[1])
                    self.answered.set()
                elif line.startswith("event: status"):
                    self.opened.set()

    def close(self) -> None:
        """Drop the connection (the reader thread ends with it)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(10)
        assert not self._thread.is_alive()


def _token(url: str) -> str:
    r = httpx.post(f"{url}/api/v1/auth/login",
                   json={"username": "admin", "password": ADMIN_PASSWORD})
    return str(r.json()["access_token"])


def test_streams_per_user_are_limited_and_given_back(feed_url: str) -> None:
    token = _token(feed_url)
    streams = [Stream(feed_url, token) for _ in range(LIMIT)]
    try:
        for s in streams:
            assert s.opened.wait(10) and s.status == 200
        r = httpx.get(f"{feed_url}/api/v1/feed", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) >= 1
        assert f"at most {LIMIT} feed connections" in r.json()["detail"]
        # a stream that ends gives its slot back (once the server sees the disconnect)
        streams.pop().close()
        deadline = time.monotonic() + 15
        while True:
            again = Stream(feed_url, token)
            assert again.answered.wait(10)
            if again.status == 200:
                assert again.opened.wait(10)
                streams.append(again)
                break
            again.close()
            assert time.monotonic() < deadline, "the closed stream's slot never came back"
            time.sleep(0.2)
    finally:
        for s in streams:
            s.close()
