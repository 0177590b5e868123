"""Cached answers served before routing: the hot path of a dashboard.

:class:`CacheFastPath` is an ASGI middleware. For a ``GET`` of an indicator route it
authenticates the bearer token, checks the permission, the session (only from the worker's
copy of the user's state: without a valid one the request falls through) and the rate
limit, computes the
cache key exactly as :meth:`api.query.QueryService.cached` does and, when a valid entry is
there, sends it without entering FastAPI's routing, dependency resolution and parameter
validation (most of a cached answer's cost). Anything else — no or a bad token, a miss, an
invalid entry, Redis down — falls through to the application, which answers as usual
(including the error). Entries are stored only by requests that passed every check of
their route (entity existence and region included) for the same caller scope, so a hit
never shows what that scope could not see when the entry was computed; a device changing
region invalidates every entry (:meth:`api.catalog.DeviceCatalog.on_region_change`).
"""

from __future__ import annotations

from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from api.context import RATE_CHECKED
from api.embed import EMBED_PRINCIPAL
from api.security import AuthError, Perm

#: Routes answered through :meth:`api.query.QueryService.cached`.
CACHEABLE = ("/api/v1/datasets/", "/api/v1/entities/", "/api/v1/rankings/",
             "/api/v1/quality/", "/api/v1/meters/")


class CacheFastPath:
    """Answer cached GETs of indicator routes before routing (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send a valid cached answer, or hand the request to the application."""
        if (scope["type"] != "http" or scope["method"] != "GET"
                or not scope["path"].startswith(CACHEABLE)):
            await self.app(scope, receive, send)
            return
        context = getattr(scope["app"].state, "ctx", None)
        if context is None or not (context.hub.listening and context.serving.available):
            await self.app(scope, receive, send)
            return
        auth = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, token = auth.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token:
            await self.app(scope, receive, send)
            return
        try:
            # an embed token's principal, set by api.embed.EmbedGuard for an allowed request
            who = scope.get(EMBED_PRINCIPAL) or context.tokens.principal(token)
        except AuthError:
            await self.app(scope, receive, send)
            return
        # only a remembered, still valid session is answered here; the application checks
        # the others (and refuses the ended ones)
        if (not who.can(Perm.READ_INDICATORS) or context.sessions.cached(who) is not True
                or context.limiter.take(f"user:{who.username}")):
            await self.app(scope, receive, send)
            return
        scope[RATE_CHECKED] = True
        query = QueryParams(scope["query_string"]).multi_items()
        hit = await context.queries.cache_lookup(
            context.queries.cache_key(scope["path"], query, who))
        if hit is None:
            await self.app(scope, receive, send)
            return
        await hit(scope, receive, send)
