"""What the application holds while it runs, and the request dependencies built on it.

:class:`AppContext` is created in the application's lifespan (one per worker process):
connections (Redis, database, WebHDFS, the ML service), the device catalog, the event
hub, the token service, the rate limiter and the session guard. Routes reach it through
:func:`ctx` and get the authenticated caller from :func:`require` (401 without a valid
token or with one whose session has ended, 403 without the permission, 429 over the rate
limit).

**When a token stops working.** A token names its user's session epoch
(:mod:`api.security`). :class:`SessionGuard` compares it with the user's current one:
read from the database on every write (any method but GET/HEAD/OPTIONS) and for user
management and the audit log, and from a per-worker copy at most ``api.auth_recheck_s``
old for other reads. Deleting or deactivating a user, or changing their role, regions
or password, therefore ends their access tokens at once for writes and user management
and within ``api.auth_recheck_s`` for reads (the feed's open streams included).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.catalog import DeviceCatalog
from api.db import User, UserStore
from api.embed import EMBED_PRINCIPAL
from api.events import EventHub
from api.lake_reader import LakeReader
from api.query import QueryService
from api.security import (
    AuthError,
    Perm,
    Principal,
    RateLimiter,
    TokenService,
    TrustedProxies,
)
from infra.serving_store import ServingStore
from infra.settings import GridLakeSettings
from jobs.batch.tracking import JobStore

log = logging.getLogger(__name__)


class RateLimited(Exception):
    """Too many requests (HTTP 429 with ``Retry-After``)."""

    def __init__(self, retry_after_s: float, reason: str = "rate limit exceeded") -> None:
        super().__init__(f"{reason}; retry in {retry_after_s:.2f} s")
        self.retry_after_s = retry_after_s


#: Methods that change nothing: the only ones answered on a cached session check.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Permissions always checked against the database, whatever the method.
FRESH_PERMS = frozenset({Perm.MANAGE_USERS, Perm.READ_AUDIT})
#: Users whose state a worker remembers (the copy is emptied when full).
_STATES_MAX = 10_000


class SessionGuard:
    """Whether a token's session still stands: its user exists, is active, same epoch.

    Answers come from the user store, remembered per worker for ``max_age_s`` for reads
    (see the module docstring); a change made through this worker forgets its copy at once.
    """

    def __init__(self, find: Callable[[str], User | None], max_age_s: float) -> None:
        self._find = find
        self.max_age_s = max_age_s
        self._states: dict[str, tuple[User | None, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _valid(who: Principal, user: User | None) -> bool:
        return user is not None and user.active and bool(user.epoch) \
            and user.epoch == who.epoch

    def cached(self, who: Principal) -> bool | None:
        """The answer from a copy young enough for a read; None when there is none."""
        if who.expires is not None:  # an embed token's: no user, it lasts until it expires
            return time.time() < who.expires
        hit = self._states.get(who.username)
        if hit is None or time.monotonic() - hit[1] > self.max_age_s:
            return None
        return self._valid(who, hit[0])

    async def check(self, who: Principal, fresh: bool) -> None:
        """Raise unless ``who``'s session stands; ``fresh`` reads the database.

        Raises:
            AuthError: The user is gone or inactive, or the token's epoch is not theirs.

        """
        if who.expires is not None:
            if time.time() >= who.expires:
                raise AuthError("embed token expired: the portal must sign a new one")
            return
        ok = None if fresh else self.cached(who)
        if ok is None:
            user = await asyncio.to_thread(self._find, who.username)
            with self._lock:
                if len(self._states) >= _STATES_MAX:
                    self._states.clear()
                self._states[who.username] = (user, time.monotonic())
            ok = self._valid(who, user)
        if not ok:
            raise AuthError("session ended (user deleted, deactivated or changed): "
                            "sign in again")

    def forget(self, username: str) -> None:
        """Drop the copy of a user this worker just changed."""
        self._states.pop(username, None)


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
    sessions: SessionGuard
    proxies: TrustedProxies

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


def client_address(request: Request) -> str:
    """The caller's address (:class:`api.security.TrustedProxies`).

    The connection's peer, or what ``X-Forwarded-For`` says when the peer is one of
    ``api.trusted_proxies``.
    """
    peer = request.client.host if request.client else None
    return ctx(request).proxies.client(peer, request.headers.getlist("x-forwarded-for"))


async def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None,
                       fresh: bool = False) -> Principal:
    """The caller of a request, rate limited, whose session still stands.

    Args:
        request: The request.
        credentials: Its bearer token.
        fresh: Check the session against the database (else a copy may answer for a
            read; a write always reads the database).

    Raises:
        AuthError: No, expired or forged token, or its session ended.
        RateLimited: Over the caller's rate.

    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthError("missing bearer token")
    context = ctx(request)
    # an embed token was verified, and the request checked against its view, by
    # api.embed.EmbedGuard before routing
    embedded: Principal | None = request.scope.get(EMBED_PRINCIPAL)
    who = embedded or context.tokens.principal(credentials.credentials)
    # the cache fast path may have taken this request's token already
    if not request.scope.get(RATE_CHECKED):
        wait = context.limiter.take(f"user:{who.username}")
        if wait:
            raise RateLimited(wait)
    await context.sessions.check(who, fresh or request.method not in SAFE_METHODS)
    return who


def require(perm: Perm) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency: the authenticated caller, who must have ``perm``."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        who = await authenticate(request, credentials, fresh=perm in FRESH_PERMS)
        who.require(perm)
        return who

    dependency.__name__ = f"require_{perm.name.lower()}"
    return dependency


async def optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    """Dependency of public routes: the caller when a valid token came, else None.

    A missing, invalid or ended token is anonymous here, never an error.

    Raises:
        RateLimited: A valid token over its user's rate.

    """
    if credentials is None:
        return None
    try:
        return await authenticate(request, credentials)
    except AuthError:
        return None


def request_id() -> str:
    """A short id for one request (passed to the ML service)."""
    return secrets.token_hex(8)
