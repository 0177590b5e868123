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
``alarms:read``         yes    yes       yes      yes
``alarms:write``        yes    yes       no       no
======================  =====  ========  =======  ======

A user may be scoped to regions: they then see and change only entities of those regions
(an empty scope means every region). Access tokens carry the role, the scope and the user's
*session epoch*, a random value the user store replaces whenever the user is deactivated or
their role, regions or password change; a token whose epoch is no longer the user's is
refused (:class:`api.context.SessionGuard` compares them, see ``api.auth_recheck_s``).

Also here: the password policy (:func:`check_password`, shared by the API and the command
line), the sign-in lockout schedule (:func:`lockout_seconds`), the client address behind
trusted proxies (:class:`TrustedProxies`) and the sanitiser of audited text
(:func:`clean_text`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
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
    READ_ALARMS = "alarms:read"
    WRITE_ALARMS = "alarms:write"


_EVERYONE = {Perm.READ_INDICATORS, Perm.READ_DEVICES, Perm.READ_FEED, Perm.READ_ALARMS}
_ANALYST = _EVERYONE | {Perm.READ_JOBS, Perm.USE_ML}
_OPERATOR = _ANALYST | {Perm.WRITE_DEVICES, Perm.RUN_JOBS, Perm.WRITE_ALARMS}

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
        epoch: The user's session epoch when the token was issued.
        expires: For an embed token's principal (:mod:`api.embed`, no user behind it):
            when the token expires (Unix time); its session ends then. ``None`` for users.

    """

    username: str
    role: Role
    regions: frozenset[str]
    epoch: str = field(default="", compare=False)
    expires: float | None = field(default=None, compare=False)

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


#: Login names the API accepts for new users (the command line uses the same rule).
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"
#: Longest password accepted (a longer one is no stronger, only slower to hash).
MAX_PASSWORD_LENGTH = 256
#: Fewest different characters a password must have (``aaaaaaaaaa``, ``abababab...``).
MIN_DISTINCT_CHARACTERS = 5
#: A username this short is only refused as the whole password, not as a part of it
#: (``a`` is in too many good passwords).
_MIN_CONTAINED_USERNAME = 4
#: Very common passwords and base words (lower case). A password is refused when it is one
#: of them once lower-cased, with digits and punctuation at either end removed and the
#: usual look-alike characters (``p@ssw0rd``) read as letters.
COMMON_PASSWORDS = frozenset("""
password passwort passw0rd motdepasse contrasena senha parola wachtwoord haslo
qwerty qwertyuiop qwertz azerty asdfgh asdfghjkl zxcvbnm qazwsx 1qaz2wsx qweasd
letmein welcome admin administrator root toor changeme default secret master guest
login user test tester demo sample temp iloveyou monkey dragon football baseball
soccer hockey basketball princess sunshine shadow superman batman trustno1 starwars
whatever freedom hello hellothere access passpass pass abc abcdef abcdefg abcdefgh
abcdefghij abc123 111111 123123 123456 1234567 12345678 123456789 1234567890
0123456789 0987654321 9876543210 1111111111 0000000000 1234512345 1122334455
qwerty123 password1 password12 password123 letmein123 welcome123 admin123
changeme123 gridlake gridlakeadmin operator analyst viewer grid power energy
summer winter spring autumn michael jennifer jordan charlie ashley buster computer
internet samsung google facebook linkedin mustang killer pepper cheese ginger
""".split())
_LOOKALIKE = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e",
                            "$": "s", "5": "s", "7": "t", "+": "t"})
_ENDS = re.compile(r"^[\W\d_]+|[\W\d_]+$")
#: Unicode categories refused in passwords and escaped in audited text: controls, format
#: characters (bidirectional overrides, zero-width), surrogates, line/paragraph separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


class WeakPassword(ValueError):
    """A password the policy refuses; the message says why (HTTP 422)."""


def _common(password: str) -> bool:
    low = password.casefold()
    stripped = _ENDS.sub("", low)
    candidates = {low, stripped, low.translate(_LOOKALIKE), stripped.translate(_LOOKALIKE),
                  _ENDS.sub("", low.translate(_LOOKALIKE))}
    return bool(candidates & COMMON_PASSWORDS)


def check_password(password: str, username: str, min_length: int) -> None:
    """Apply the password policy: the one rule of the API and the command line.

    Refused: shorter than ``min_length`` or longer than :data:`MAX_PASSWORD_LENGTH`
    characters; any control or invisible character (NUL, tab, newline, bidirectional
    overrides, zero-width); only whitespace; the username, or containing it (case-
    insensitively; a username of fewer than 4 characters only as the whole password), or
    contained in it; a very common password (:data:`COMMON_PASSWORDS`, also with digits or
    punctuation around it or look-alike characters); fewer than
    :data:`MIN_DISTINCT_CHARACTERS` different characters.

    Raises:
        WeakPassword: The first rule the password breaks.

    """
    if len(password) < min_length:
        raise WeakPassword(f"password: at least {min_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"password: at most {MAX_PASSWORD_LENGTH} characters")
    if any(unicodedata.category(ch) in _INVISIBLE for ch in password):
        raise WeakPassword("password: control and invisible characters (NUL, tab, newline, "
                           "zero-width, direction marks) are not allowed")
    if not password.strip():
        raise WeakPassword("password: must not be only spaces")
    user, low = username.casefold(), password.casefold()
    if user and (low == user or low in user
                 or (len(user) >= _MIN_CONTAINED_USERNAME and user in low)):
        raise WeakPassword("password: must not contain the username")
    if _common(password):
        raise WeakPassword("password: too common; choose one that is not in lists of "
                           "frequent passwords")
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        raise WeakPassword(f"password: use at least {MIN_DISTINCT_CHARACTERS} different "
                           "characters")


# ---------------------------------------------------------------------- audited text
def _escape(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    if unicodedata.category(ch) not in _INVISIBLE:
        return ch
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def clean_text(text: str, limit: int) -> str:
    r"""``text`` safe to store and show: invisible characters escaped, at most ``limit`` long.

    Controls, format characters (bidirectional overrides, zero-width), surrogates and
    line separators become ``\xNN``, ``\uNNNN`` escapes and a backslash is doubled, so
    what an attacker typed cannot reorder, hide or break a line of the audit listing. A
    longer result is cut between characters (never inside an escape) and ends with ``…``.
    """
    out: list[str] = []
    size = 0
    pieces = [_escape(ch) for ch in text]
    total = sum(len(p) for p in pieces)
    budget = limit if total <= limit else limit - 1
    for piece in pieces:
        if size + len(piece) > budget:
            out.append("…")
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


# ------------------------------------------------------------------- sign-in lockout
def lockout_seconds(failures: int, threshold: int, base_s: float, cap_s: float) -> float:
    """How long a key is locked after its ``failures``-th failure (0: not locked).

    The ``threshold``-th failure locks for ``base_s``; each further one (they can only
    happen after a lock ended) doubles it, up to ``cap_s``.
    """
    if failures < threshold:
        return 0.0
    return float(min(cap_s, base_s * 2 ** min(failures - threshold, 40)))


# ---------------------------------------------------------------- client addresses
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(text: str) -> _Address | None:
    """An address from ``1.2.3.4``, ``1.2.3.4:80``, ``::1`` or ``[::1]:80``; else None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped if mapped is not None else ip


class TrustedProxies:
    """Which peers may tell the client's address in ``X-Forwarded-For``.

    Only a peer inside one of the networks is believed, and then only as far as the chain
    of trusted hops goes: the client is the right-most address that is not a trusted proxy
    (what the first trusted proxy saw), so a client cannot choose its address by sending
    the header itself. With no networks (the default) the header is ignored.
    """

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(n.strip(), strict=False) for n in networks)

    def trusts(self, host: str | None) -> bool:
        """Whether ``host`` is one of the trusted proxies."""
        ip = None if host is None else _ip(host)
        return ip is not None and any(ip in n for n in self.networks)

    def client(self, peer: str | None, forwarded_for: list[str]) -> str:
        """The client's address: ``peer``, or from the header when ``peer`` is trusted."""
        fallback = peer or "unknown"
        if not self.networks or not self.trusts(peer):
            return fallback
        hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
        for hop in reversed(hops):
            ip = _ip(hop)
            if ip is None:
                return fallback  # a trusted proxy writes addresses; garbage is the client's
            if not any(ip in n for n in self.networks):
                return str(ip)
        first = _ip(hops[0]) if hops else None
        return str(first) if first is not None else fallback


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

    def access_token(self, username: str, role: str, regions: list[str], epoch: str) -> str:
        """A signed access token carrying the role, region scope and session epoch."""
        now = datetime.now(UTC)
        return self._encode({
            "sub": username, "role": role, "regions": sorted(regions), "typ": "access",
            "iss": self.issuer, "iat": now, "exp": now + self.access_ttl,
            "jti": uuid.uuid4().hex, "epoch": epoch,
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
        epoch = claims.get("epoch")
        if not isinstance(epoch, str) or not epoch:
            # tokens of a release without epochs: their user signs in (or refreshes) again
            raise AuthError("invalid token: no session epoch; sign in again")
        who = Principal(str(claims["sub"]), role, frozenset(str(r) for r in regions), epoch)
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
