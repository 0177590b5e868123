"""Signed embedding: one read-only view of the dashboard in a utility portal's iframe.

The portal's users never sign in to GridLake. The portal's server signs a short-lived
*embed token* (HS256 with ``web.embed_secret``, shared with the portal) naming a view, its
parameters and a region scope; the dashboard's page ``/embed/<view>?token=...`` shows that
view alone and sends the token as ``Authorization: Bearer`` on its API requests. Claims::

    {"aud": "gridlake-embed", "typ": "embed", "view": "load_curve",
     "params": {"entity_type": "feeder", "entity_id": "FDR-0001"},
     "regions": ["R1"] | null, "iat": ..., "exp": ..., "sub": "<portal user label>"}

With such a token the API answers exactly the GET requests its view makes
(:data:`VIEWS`: path and query parameters equal to the token's, a closed set of free ones
such as the time range) as a read-only principal scoped to the token's regions (``null``:
every region); anything else is refused with 403 before routing (:class:`EmbedGuard`). An
expired, forged or malformed token, one for another audience, one for an unknown view or
with parameters its view does not take, or one living longer than ``web.embed_max_ttl_s``
is refused with 401. A token is not a session: it cannot be refreshed, and an open event
stream ends when it expires.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response
from api.security import ALGORITHM, MIN_SECRET_BYTES, AuthError, Principal, Role, persistent_secret
from infra.settings import GridLakeSettings

#: ``aud`` of every embed token.
AUDIENCE = "gridlake-embed"
#: ``typ`` of every embed token.
TOKEN_TYPE = "embed"
#: Where the embed key is generated when ``web.embed_secret`` is not set.
SECRET_FILE = "web-embed-secret"
#: Scope key holding the principal of a request an embed token was checked for.
EMBED_PRINCIPAL = "gridlake.embed_principal"
#: The refusal of a request outside the token's view.
NOT_ALLOWED = "embed token does not allow this request"
#: What a parameter value and a region may look like (as the API's entity ids).
_VALUE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
#: Tokens remembered per worker (emptied when full).
_CACHE_MAX = 10_000


@dataclass(frozen=True)
class Endpoint:
    """One GET request a view makes.

    Attributes:
        path: The API path; ``{name}`` segments are the token's parameter ``name``.
        fixed: Query parameters that must be there with exactly this value.
        free: Query parameters allowed with any value (each at most once): the time range,
            columns, paging, format. They cannot widen what is read: the path, the fixed
            parameters and the region scope decide that.

    """

    path: str
    fixed: Mapping[str, str] = field(default_factory=dict)
    free: frozenset[str] = frozenset()

    def matches(self, path: str, query: list[tuple[str, str]],
                params: Mapping[str, str]) -> bool:
        """Whether ``path?query`` is this request for a token with ``params``.

        A token parameter that is not a path segment (an optional ``start``/``end``)
        must be in the query with exactly its value.
        """
        want, got = self.path.split("/"), path.split("/")
        if len(want) != len(got):
            return False
        in_path = set()
        for w, g in zip(want, got, strict=True):
            if w.startswith("{") and w.endswith("}"):
                in_path.add(w[1:-1])
                if params.get(w[1:-1]) != g:
                    return False
            elif w != g:
                return False
        names = [k for k, _ in query]
        if len(names) != len(set(names)):
            return False
        seen = dict(query)
        fixed = {**self.fixed, **{k: v for k, v in params.items() if k not in in_path}}
        if any(k not in fixed and k not in self.free for k in seen):
            return False
        return all(seen.get(k) == v for k, v in fixed.items())


@dataclass(frozen=True)
class View:
    """An embeddable view: the parameters it takes and the requests it makes.

    Attributes:
        params: Parameters every token of the view names.
        endpoints: The requests the view makes.
        optional: Parameters a token may also fix (then the requests must carry them with
            exactly that value), e.g. the time range of a load curve.

    """

    params: tuple[str, ...]
    endpoints: tuple[Endpoint, ...]
    optional: tuple[str, ...] = ()


_RANGE = frozenset({"start", "end"})

#: The embeddable views (the front end's ``/embed/<view>`` pages) and their requests.
VIEWS: dict[str, View] = {
    # a load curve of one entity (region, substation, feeder, transformer or meter)
    "load_curve": View(("entity_type", "entity_id"), (
        Endpoint("/api/v1/entities/{entity_type}/{entity_id}/load-curve",
                 free=_RANGE | {"fields", "format"}),
    ), optional=("start", "end")),
    # one asset's health history with its factors
    "asset_health": View(("asset_type", "asset_id"), (
        Endpoint("/api/v1/asset-health/{asset_type}/{asset_id}", free=_RANGE),
    ), optional=("start", "end")),
    # the system load curve (the regions' curves), current alarms (overloaded
    # transformers, then the alarm feed) and data freshness
    "overview": View((), (
        Endpoint("/api/v1/datasets/load_curve", fixed={"entity_type": "region"},
                 free=_RANGE | {"fields", "sort", "limit", "offset", "format"}),
        Endpoint("/api/v1/datasets/transformer_daily",
                 fixed={"filter": "loading_rate_pct>100"},
                 free=_RANGE | {"fields", "sort", "limit"}),
        Endpoint("/api/v1/feed", fixed={"datasets": "load_curve", "entity_types": "region"}),
        Endpoint("/api/v1/feed", fixed={"alarms_only": "true"}),
        Endpoint("/api/v1/freshness"),
    )),
}


class EmbedTokenError(ValueError):
    """A view or parameters that no embed token may carry."""


def check_claims(view: str, params: Mapping[str, str], regions: list[str] | None) -> None:
    """Raise unless ``view`` exists and takes exactly ``params``, and ``regions`` is valid.

    Raises:
        EmbedTokenError: Saying what is wrong.

    """
    spec = VIEWS.get(view)
    if spec is None:
        raise EmbedTokenError(f"unknown view {view!r}; views: {', '.join(VIEWS)}")
    if not set(spec.params) <= set(params) <= set(spec.params) | set(spec.optional):
        need = ", ".join(spec.params) or "no parameters"
        if spec.optional:
            need += f" (and optionally {', '.join(spec.optional)})"
        raise EmbedTokenError(f"view {view} takes {need}; got {', '.join(params) or 'none'}")
    for key, value in params.items():
        if not isinstance(value, str) or not _VALUE.match(value):
            raise EmbedTokenError(f"param {key}: 1-64 letters, digits or _.:- expected")
    if regions is not None:
        if not regions:
            raise EmbedTokenError("regions: name at least one region (null means every "
                                  "region)")
        bad = [r for r in regions if not isinstance(r, str) or not _VALUE.match(r)]
        if bad:
            raise EmbedTokenError(f"regions: {bad[0]!r} is not a region id")


def sign(secret: str, view: str, params: Mapping[str, str], *, regions: list[str] | None,
         ttl_s: int, subject: str, now: float | None = None) -> str:
    """An embed token (what a portal's server does; also ``gridlake embed sign``).

    Raises:
        EmbedTokenError: An unknown view, wrong parameters or bad regions.

    """
    check_claims(view, params, regions)
    iat = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "aud": AUDIENCE, "typ": TOKEN_TYPE, "view": view, "params": dict(params),
        "regions": sorted(regions) if regions is not None else None,
        "iat": iat, "exp": iat + ttl_s, "sub": subject,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def embed_secret(settings: GridLakeSettings) -> str:
    """The embed key: ``web.embed_secret``, else the one generated into the home.

    Raises:
        ValueError: A configured key shorter than 32 bytes.

    """
    cfg = settings.web
    key = (cfg.embed_secret.get_secret_value() if cfg.embed_secret
           else persistent_secret(settings, SECRET_FILE))
    if len(key.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"web.embed_secret: at least {MIN_SECRET_BYTES} bytes")
    return key


@dataclass(frozen=True)
class Grant:
    """What a verified embed token allows."""

    view: str
    params: Mapping[str, str]
    principal: Principal

    def allows(self, method: str, path: str, query: list[tuple[str, str]]) -> bool:
        """Whether the token's view makes this request."""
        if method != "GET":
            return False
        return any(e.matches(path, query, self.params) for e in VIEWS[self.view].endpoints)


class EmbedTokens:
    """Recognises and verifies embed tokens (one per worker)."""

    def __init__(self, settings: GridLakeSettings) -> None:
        self._key = embed_secret(settings)
        self.max_ttl_s = settings.web.embed_max_ttl_s
        self._kind: dict[str, bool] = {}
        self._grants: dict[str, Grant] = {}

    def is_embed(self, token: str) -> bool:
        """Whether ``token`` claims to be an embed token (unverified; remembered)."""
        hit = self._kind.get(token)
        if hit is None:
            try:
                claims = jwt.decode(token, options={"verify_signature": False})
                hit = claims.get("typ") == TOKEN_TYPE or claims.get("aud") == AUDIENCE
            except jwt.PyJWTError:
                hit = False
            if len(self._kind) >= _CACHE_MAX:
                self._kind.clear()
            self._kind[token] = hit
        return hit

    def verify(self, token: str) -> Grant:
        """The grant of a valid embed token.

        Raises:
            AuthError: Expired, forged, malformed, another audience or type, an unknown
                view, parameters the view does not take, or too long a lifetime.

        """
        grant = self._grants.get(token)
        if grant is not None:
            if grant.principal.expires is not None and grant.principal.expires > time.time():
                return grant
            self._grants.pop(token, None)
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], audience=AUDIENCE,
                options={"require": ["exp", "iat", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("embed token expired: the portal must sign a new one") from None
        except jwt.InvalidAudienceError:
            raise AuthError(f"embed token for another audience (expected {AUDIENCE})") from None
        except jwt.PyJWTError as err:
            raise AuthError(f"invalid embed token: {err}") from None
        if claims.get("typ") != TOKEN_TYPE:
            raise AuthError("invalid embed token: typ must be 'embed'")
        if int(claims["exp"]) - int(claims["iat"]) > self.max_ttl_s:
            raise AuthError(f"invalid embed token: lives longer than {self.max_ttl_s} s "
                            "(web.embed_max_ttl_s)")
        view, params, regions = claims.get("view"), claims.get("params") or {}, \
            claims.get("regions")
        if not isinstance(view, str) or not isinstance(params, dict) \
                or not (regions is None or isinstance(regions, list)):
            raise AuthError("invalid embed token: view, params or regions malformed")
        try:
            check_claims(view, params, regions)
        except EmbedTokenError as err:
            raise AuthError(f"invalid embed token: {err}") from None
        who = Principal(f"embed:{claims['sub']}", Role.VIEWER,
                        frozenset(regions or []), expires=float(claims["exp"]))
        grant = Grant(view, dict(params), who)
        if len(self._grants) >= _CACHE_MAX:
            self._grants.clear()
        self._grants[token] = grant
        return grant


def _bearer(scope: Scope) -> str | None:
    auth = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
    scheme, _, token = auth.decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class EmbedGuard:
    """ASGI middleware: a request carrying an embed token gets its view, nothing else.

    Runs before routing and before the cache fast path. Requests with any other token, or
    none, go on untouched. For an embed token: 401 when it is not valid, 403 (``embed
    token does not allow this request``) for anything but the GET requests of its view;
    an allowed request goes on with the token's read-only principal in the scope, which
    :func:`api.context.authenticate` then uses.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse, or pass on with the embed principal."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.pop(EMBED_PRINCIPAL, None)  # never from outside
        tokens: EmbedTokens | None = getattr(scope["app"].state, "embed", None)
        token = _bearer(scope)
        if tokens is None or token is None or not tokens.is_embed(token):
            await self.app(scope, receive, send)
            return
        try:
            grant = tokens.verify(token)
        except AuthError as err:
            await error_response(401, str(err), {"WWW-Authenticate": "Bearer"})(
                scope, receive, send)
            return
        query = QueryParams(scope["query_string"]).multi_items()
        if not grant.allows(scope["method"], scope["path"], query):
            await error_response(403, NOT_ALLOWED)(scope, receive, send)
            return
        scope[EMBED_PRINCIPAL] = grant.principal
        await self.app(scope, receive, send)
