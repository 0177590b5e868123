"""What the application holds while it runs, and the request dependencies built on it.

:class:`AppContext` is created in the application's lifespan (one per worker process):
connections (Redis, database, WebHDFS, the ML service), the device catalog, the event
hub, the token service and the rate limiter. Routes reach it through :func:`ctx` and get
the authenticated caller from :func:`require` (401 without a valid token, 403 without
the permission, 429 over the rate limit).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.catalog import DeviceCatalog
from api.db import UserStore
from api.events import EventHub
from api.lake_reader import LakeReader
from api.query import QueryService
from api.security import AuthError, Perm, Principal, RateLimiter, TokenService
from infra.serving_store import ServingStore
from infra.settings import GridLakeSettings
from jobs.batch.tracking import JobStore

log = logging.getLogger(__name__)


class RateLimited(Exception):
    """Too many requests (HTTP 429)."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"rate limit exceeded; retry in {retry_after_s:.2f} s")
        self.retry_after_s = retry_after_s


@dataclass
class AppContext:
    """Everything a worker holds."""

    settings: GridLakeSettings
    serving: ServingStore
    lake: LakeReader
    catalog: DeviceCatalog
    hub: EventHub
    users: UserStore
    tokens: TokenService
    limiter: RateLimiter
    jobs: JobStore
    queries: QueryService
    ml: httpx.AsyncClient

    def audit(self, who: Principal | str, action: str, target: str,
              **detail: Any) -> None:
        """Append to the audit log (a failure is logged, never fails the change)."""
        actor = who if isinstance(who, str) else who.username
        try:
            self.users.audit(actor, action, target, detail)
        except Exception:  # noqa: BLE001 - the change itself already happened
            log.exception("audit log write failed: %s %s %s", actor, action, target)


def ctx(request: Request) -> AppContext:
    """The worker's context."""
    context: AppContext = request.app.state.ctx
    return context


Ctx = Annotated[AppContext, Depends(ctx)]

#: Scope key set when a request's rate-limit token was taken before routing.
RATE_CHECKED = "gridlake.rate_checked"

bearer = HTTPBearer(auto_error=False, description="An access token from /api/v1/auth/login.")


def client_key(request: Request) -> str:
    """Rate-limit key of an anonymous caller: its address."""
    return f"addr:{request.client.host if request.client else 'unknown'}"


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None
                 ) -> Principal:
    """The caller of a request, rate limited.

    Raises:
        AuthError: No, expired or forged token.
        RateLimited: Over the caller's rate.

    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError("missing bearer token")
    context = ctx(request)
    who = context.tokens.principal(credentials.credentials)
    # the cache fast path may have taken this request's token already
    if not request.scope.get(RATE_CHECKED):
        wait = context.limiter.take(f"user:{who.username}")
        if wait:
            raise RateLimited(wait)
    return who


def require(perm: Perm) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency: the authenticated caller, who must have ``perm``."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        who = authenticate(request, credentials)
        who.require(perm)
        return who

    dependency.__name__ = f"require_{perm.name.lower()}"
    return dependency


def request_id() -> str:
    """A short id for one request (passed to the ML service)."""
    return secrets.token_hex(8)
