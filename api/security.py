"""Passwords, tokens, roles, permissions, region scope and rate limits.

Roles and what they may do (the same table is in docs/api.md and ``GET /api/v1/roles``):

======================  =====  ========  =======  ======
permission              admin  operator  analyst  viewer
======================  =====  ========  =======  ======
``indicators:read``     yes    yes       yes      yes
``devices:read``        yes    yes       yes      yes
``feed:read``           yes    yes       yes      yes
``devices:write``       yes    yes       no       no
``jobs:read``           yes    yes       yes      no
``jobs:run``            yes    yes       no       no
``ml:score``            yes    yes       yes      no
``ml:manage``           yes    no        no       no
``users:manage``        yes    no        no       no
``audit:read``          yes    no        no       no
======================  =====  ========  =======  ======

A user may be scoped to regions: they then see and change only entities of those regions
(an empty scope means every region). Tokens carry the role and the scope, so a request is
authorised without a database read; a change of role or scope applies to new tokens (the
access token lives ``api.access_token_minutes``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt

from infra.settings import GridLakeSettings


class Role(StrEnum):
    """The four roles."""

    ADMIN = "admin"
    OPERATOR = "operator"
    ANALYST = "analyst"
    VIEWER = "viewer"


class Perm(StrEnum):
    """What a route needs."""

    READ_INDICATORS = "indicators:read"
    READ_DEVICES = "devices:read"
    READ_FEED = "feed:read"
    WRITE_DEVICES = "devices:write"
    READ_JOBS = "jobs:read"
    RUN_JOBS = "jobs:run"
    USE_ML = "ml:score"
    MANAGE_ML = "ml:manage"
    MANAGE_USERS = "users:manage"
    READ_AUDIT = "audit:read"


_EVERYONE = {Perm.READ_INDICATORS, Perm.READ_DEVICES, Perm.READ_FEED}
_ANALYST = _EVERYONE | {Perm.READ_JOBS, Perm.USE_ML}
_OPERATOR = _ANALYST | {Perm.WRITE_DEVICES, Perm.RUN_JOBS}

ROLE_PERMISSIONS: dict[Role, frozenset[Perm]] = {
    Role.ADMIN: frozenset(Perm),
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.ANALYST: frozenset(_ANALYST),
    Role.VIEWER: frozenset(_EVERYONE),
}


class AuthError(Exception):
    """Missing, expired or forged credentials (HTTP 401)."""


class Forbidden(Exception):
    """Authenticated but not allowed: role or region (HTTP 403)."""


@dataclass(frozen=True)
class Principal:
    """The authenticated user of a request.

    Attributes:
        username: Login name.
        role: Role.
        regions: Regions the user is scoped to; empty means every region.

    """

    username: str
    role: Role
    regions: frozenset[str]

    @property
    def unscoped(self) -> bool:
        """Whether the user sees every region."""
        return not self.regions

    def can(self, perm: Perm) -> bool:
        """Whether the role grants ``perm``."""
        return perm in ROLE_PERMISSIONS[self.role]

    def require(self, perm: Perm) -> None:
        """Raise :class:`Forbidden` unless the role grants ``perm``."""
        if not self.can(perm):
            raise Forbidden(f"role {self.role.value} lacks permission {perm.value}")

    def sees_region(self, region: str | None) -> bool:
        """Whether a (possibly unknown, ``None``) region is in scope."""
        return self.unscoped or (region is not None and region in self.regions)

    def require_region(self, region: str | None, what: str) -> None:
        """Raise :class:`Forbidden` when ``region`` is out of scope."""
        if not self.sees_region(region):
            raise Forbidden(f"{what} is outside your regions")


# ------------------------------------------------------------------------- passwords
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """A salted scrypt hash: ``scrypt$n$r$p$salt$hash`` (base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R,
                            p=_SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return (f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}$"
            f"{b64(salt).decode()}${b64(digest).decode()}")


_DUMMY_HASH = hash_password(secrets.token_hex(8))


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; constant work when there is no user."""
    try:
        algo, n, r, p, salt, digest = (stored or _DUMMY_HASH).split("$")
        if algo != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), dklen=32)
    except ValueError:
        return False
    return stored is not None and hmac.compare_digest(got, base64.b64decode(digest))


# ---------------------------------------------------------------------------- tokens
ALGORITHM = "HS256"
#: Shortest HMAC key accepted (RFC 7518 §3.2: at least the hash size).
MIN_SECRET_BYTES = 32
#: Verified access tokens remembered per worker (the cache is emptied when full).
_VERIFIED_MAX = 10_000


def _secret_file(settings: GridLakeSettings, name: str) -> Path:
    return settings.run / name


def persistent_secret(settings: GridLakeSettings, name: str, nbytes: int = 32) -> str:
    """A random secret kept in ``home/run/<name>`` (created once, mode 0600).

    Every worker of the service reads the same file; the first one creates it (``O_EXCL``),
    so concurrent starts agree on one value.
    """
    path = _secret_file(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the creator may not have written it yet
            value = path.read_text().strip()
            if value:
                return value
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty") from None
    value = secrets.token_urlsafe(nbytes)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


class TokenService:
    """Issues and checks the JWT access and refresh tokens."""

    def __init__(self, settings: GridLakeSettings) -> None:
        cfg = settings.api
        self._key = (cfg.jwt_secret.get_secret_value() if cfg.jwt_secret
                     else persistent_secret(settings, "api-jwt-secret"))
        if len(self._key.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"api.jwt_secret: at least {MIN_SECRET_BYTES} bytes")
        self.issuer = cfg.jwt_issuer
        self.access_ttl = timedelta(minutes=cfg.access_token_minutes)
        self.refresh_ttl = timedelta(days=cfg.refresh_token_days)
        self._verified: dict[str, tuple[Principal, float]] = {}

    def _encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def access_token(self, username: str, role: str, regions: list[str]) -> str:
        """A signed access token carrying the role and region scope."""
        now = datetime.now(UTC)
        return self._encode({
            "sub": username, "role": role, "regions": sorted(regions), "typ": "access",
            "iss": self.issuer, "iat": now, "exp": now + self.access_ttl,
            "jti": uuid.uuid4().hex,
        })

    def refresh_token(self, username: str) -> tuple[str, str, datetime]:
        """A signed refresh token; returns (token, its id, expiry)."""
        now = datetime.now(UTC)
        jti = uuid.uuid4().hex
        expires = now + self.refresh_ttl
        token = self._encode({"sub": username, "typ": "refresh", "iss": self.issuer,
                              "iat": now, "exp": expires, "jti": jti})
        return token, jti, expires

    def decode(self, token: str, typ: str) -> dict[str, Any]:
        """Verified claims of a token of type ``typ``.

        Raises:
            AuthError: Expired, forged, malformed or of the wrong type.

        """
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "jti", "typ"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.PyJWTError as err:
            raise AuthError(f"invalid token: {err}") from None
        if claims.get("typ") != typ:
            raise AuthError(f"not an {typ} token")
        return claims

    def principal(self, token: str) -> Principal:
        """The user an access token stands for.

        A verified token is remembered until it expires (a signature check per request
        is a tenth of a cached answer's cost); forged or expired ones never are.

        Raises:
            AuthError: As :meth:`decode`, or a role that does not exist.

        """
        hit = self._verified.get(token)
        if hit is not None and hit[1] > time.time():
            return hit[0]
        claims = self.decode(token, "access")
        try:
            role = Role(str(claims.get("role")))
        except ValueError:
            raise AuthError("invalid token: unknown role") from None
        regions = claims.get("regions") or []
        if not isinstance(regions, list):
            raise AuthError("invalid token: bad regions claim")
        who = Principal(str(claims["sub"]), role, frozenset(str(r) for r in regions))
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = (who, float(claims["exp"]))
        return who


# ------------------------------------------------------------------------ rate limit
class RateLimiter:
    """Token buckets per key (user or client address), in this process.

    Each bucket holds ``burst`` tokens and refills at ``rate`` per second; a request takes
    one. Buckets idle long enough to be full again are dropped, so memory follows the
    active users.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._last_sweep = time.monotonic()

    def take(self, key: str) -> float:
        """Take a token for ``key``; returns 0 when allowed, else seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            if now - self._last_sweep > 60:
                full_after = self.burst / self.rate
                self._buckets = {k: v for k, v in self._buckets.items()
                                 if now - v[1] < full_after}
                self._last_sweep = now
        return wait
