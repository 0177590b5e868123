"""Request metrics shared by the HTTP services (the API and the ML service).

:class:`RequestMetrics` holds a service's request counter and latency histogram,
``<prefix>_requests_total{method,route,status}`` and
``<prefix>_request_duration_seconds{method,route}``; its ASGI middleware records every
HTTP request by route *template* (bounded label values; a path no route takes is
``unmatched``), once its response starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Latency buckets (seconds): cached answers take about a millisecond, lake reads seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
           30.0, 60.0)

#: Called with the request's scope, the response start message and the route template.
Hook = Callable[[Scope, Message, str], None]


def _template(path: str, params: dict[str, Any], fallback: str | None) -> str:
    """``path`` with each path parameter's segment(s) put back as ``{name}``."""
    segments = path.split("/")
    for name, value in params.items():
        text = str(value)
        if "/" in text:  # a {name:path} parameter: the path's tail
            tail = "/" + text
            joined = "/".join(segments)
            if not joined.endswith(tail):
                return fallback or "unmatched"
            segments = (joined[: -len(tail)] + "/{" + name + "}").split("/")
            continue
        for i in range(len(segments) - 1, -1, -1):
            if segments[i] == text:
                segments[i] = "{" + name + "}"
                break
        else:
            return fallback or "unmatched"
    return "/".join(segments)


def route_template(app: Any, scope: Scope) -> str:
    """The route template of a request (``unmatched`` when no route takes it).

    Rebuilt from the path and its path parameters (``/api/v1/alarms/{alarm_id}``), which
    does not depend on how the framework nests included routers.
    """
    path = str(scope.get("path", ""))
    if scope.get("route") is not None or scope.get("endpoint") is not None:
        route = scope.get("route")
        return _template(path, dict(scope.get("path_params") or {}),
                         getattr(route, "path", None))
    # answered before routing (a middleware's fast path): match the routes here
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        match, child = candidate.matches(scope)
        if match is Match.FULL:
            return _template(path, dict(child.get("path_params") or {}), None)
    return "unmatched"


class RequestMetrics:
    """A service's request counter and latency histogram."""

    def __init__(self, prefix: str, service: str) -> None:
        self.requests = Counter(f"{prefix}_requests_total", f"Requests the {service} "
                                "answered, by route template and status.",
                                ["method", "route", "status"])
        self.latency = Histogram(f"{prefix}_request_duration_seconds", "Time until the "
                                 f"{service}'s response starts, by route template.",
                                 ["method", "route"], buckets=BUCKETS)

    def middleware(self, root: Any, hook: Hook | None = None,
                   skip: frozenset[str] = frozenset({"/metrics"})
                   ) -> Callable[[ASGIApp], ASGIApp]:
        """An ASGI middleware class recording into these metrics.

        Args:
            root: The application (its routes name the templates).
            hook: Also called for each response (more series from its headers).
            skip: Paths not recorded (the scrape itself).

        """
        metrics = self

        class _Middleware:
            def __init__(self, app: ASGIApp) -> None:
                self.app = app

            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
                if scope["type"] != "http" or scope.get("path") in skip:
                    await self.app(scope, receive, send)
                    return
                started = time.perf_counter()
                seen = False

                async def observe(message: Message) -> None:
                    nonlocal seen
                    if message["type"] == "http.response.start" and not seen:
                        seen = True
                        metrics.record(root, scope, message, time.perf_counter() - started,
                                       hook)
                    await send(message)

                try:
                    await self.app(scope, receive, observe)
                except Exception:
                    if not seen:
                        metrics.record(root, scope, {"status": 500, "headers": []},
                                       time.perf_counter() - started, hook)
                    raise

        return _Middleware

    def record(self, root: Any, scope: Scope, message: Message, elapsed: float,
               hook: Hook | None = None) -> None:
        """Count and time one answered request."""
        route = route_template(root, scope)
        method = str(scope.get("method", "GET"))
        self.requests.labels(method, route, str(message.get("status", 0))).inc()
        self.latency.labels(method, route).observe(elapsed)
        if hook is not None:
            hook(scope, message, route)
