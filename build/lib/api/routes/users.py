"""Login, token refresh and logout; user administration; the audit log."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field, field_validator

from api.context import AppContext, Ctx, RateLimited, client_address, require
from api.db import Conflict, NotFound, User
from api.security import (
    ROLE_PERMISSIONS,
    USERNAME_PATTERN,
    AuthError,
    Perm,
    Principal,
    Role,
    check_password,
    clean_text,
    hash_password,
    verify_password,
)
from api.validation import Offset

log = logging.getLogger(__name__)

router = APIRouter()

USERNAME = USERNAME_PATTERN
#: Longest attempted username kept in a throttle key (escaped; longer ones share a key).
_THROTTLE_NAME_MAX = 100
REGION = r"^[A-Za-z0-9_.-]{1,64}$"


class Login(BaseModel):
    """Credentials."""

    username: str = Field(min_length=1, max_length=64, examples=["operator1"])
    password: str = Field(min_length=1, max_length=256, examples=["correct horse battery"])


class Tokens(BaseModel):
    """A token pair. Send ``Authorization: Bearer <access_token>`` with every request."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds the access token is valid.")
    role: str
    regions: list[str]


class RefreshIn(BaseModel):
    """A refresh token (single use)."""

    refresh_token: str = Field(min_length=1, max_length=4096)


class UserOut(BaseModel):
    """A user account (never its password)."""

    username: str
    role: str
    regions: list[str] = Field(description="Regions the user is scoped to; empty: all.")
    active: bool
    created_at: datetime
    updated_at: datetime


def _out(u: User) -> UserOut:
    return UserOut(username=u.username, role=u.role, regions=u.regions, active=u.active,
                   created_at=u.created_at, updated_at=u.updated_at)


def _regions(v: list[str] | None) -> list[str] | None:
    if v is None:
        return None
    for r in v:
        if not re.match(REGION, r):
            raise ValueError(f"region {r!r} is not a valid region id")
    return sorted(set(v))


class UserCreate(BaseModel):
    """A new user."""

    username: str = Field(pattern=USERNAME, examples=["analyst.r1"])
    password: str = Field(min_length=1, max_length=256)
    role: Role = Field(examples=["analyst"])
    regions: list[str] = Field(default_factory=list, max_length=100, examples=[["R1"]])

    _check_regions = field_validator("regions")(_regions)


class UserUpdate(BaseModel):
    """Changes to a user (omitted fields stay)."""

    password: str | None = Field(default=None, min_length=1, max_length=256)
    role: Role | None = None
    regions: list[str] | None = Field(default=None, max_length=100)
    active: bool | None = None

    _check_regions = field_validator("regions")(_regions)


class Page(BaseModel):
    """A page of users."""

    total: int
    limit: int
    offset: int
    users: list[UserOut]


class AuditOut(BaseModel):
    """One change made through the API."""

    id: int
    ts: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    """A page of the audit log, newest first."""

    total: int
    limit: int
    offset: int
    entries: list[AuditOut]


def _pair(c: AppContext, user: User, refresh: str) -> Tokens:
    access = c.tokens.access_token(user.username, user.role, user.regions, user.epoch)
    return Tokens(access_token=access, refresh_token=refresh,
                  expires_in=int(c.tokens.access_ttl.total_seconds()), role=user.role,
                  regions=user.regions)


def _issue(c: AppContext, user: User) -> Tokens:
    """A new pair for a sign-in: its refresh token starts a family."""
    refresh, jti, expires = c.tokens.refresh_token(user.username)
    c.users.add_refresh(user.id, jti, expires)
    return _pair(c, user, refresh)


def _limit(c: AppContext, address: str) -> None:
    wait = c.limiter.take(f"addr:{address}")
    if wait:
        raise RateLimited(wait)


_REFRESH_REFUSED = {
    "revoked": "refresh token revoked (signed out, or its user's password changed)",
    "expired": "refresh token expired",
    "inactive": "the token's user is inactive or deleted",
    "unknown": "unknown refresh token",
}


@router.post("/auth/login", response_model=Tokens, tags=["auth"],
             summary="Sign in: a token pair",
             responses={401: {"description": "Wrong credentials or inactive user"},
                        429: {"description": "Too many failed sign-ins of the account or "
                              "from the address: locked for `Retry-After` seconds"}})
async def login(body: Login, request: Request, c: Ctx) -> Tokens:
    """Check the password and issue an access and a refresh token.

    They live ``api.access_token_minutes`` and ``api.refresh_token_days``. Failed attempts
    are counted per account and per client address: ``api.login_max_failures`` (or
    ``api.login_max_failures_per_address``) within ``api.login_window_s`` lock the account
    (address) for ``api.login_lockout_s``, doubled by each further failure up to
    ``api.login_lockout_max_s``. While locked every attempt, the right password included,
    is a 429 with ``Retry-After``.
    """
    address = client_address(request)
    _limit(c, address)
    cfg = c.settings.api
    account = f"user:{clean_text(body.username, _THROTTLE_NAME_MAX)}"
    origin = f"addr:{address}"
    gate = await asyncio.to_thread(
        c.users.begin_login,
        {account: cfg.login_max_failures, origin: cfg.login_max_failures_per_address},
        cfg.login_window_s, cfg.login_lockout_s, cfg.login_lockout_max_s)
    if gate.wait_s:
        log.info("sign-in refused while locked: %s from %s", account, address)
        raise RateLimited(gate.wait_s, "too many failed sign-ins")
    # no account has a name with invisible characters (and the database may refuse them)
    found = (await asyncio.to_thread(c.users.credentials, body.username)
             if body.username.isprintable() else None)
    ok = await asyncio.to_thread(verify_password, body.password, found[1] if found else None)
    if not found or not ok or not found[0].active:
        c.audit(body.username, "login_failed", body.username, address=address)
        for key, attempts, seconds in gate.locked:
            c.audit(body.username, "login_locked", key, attempts=attempts, seconds=seconds,
                    address=address)
        raise AuthError("wrong username or password")
    await asyncio.to_thread(c.users.end_login, account, origin,
                            cfg.login_max_failures_per_address)
    tokens = await asyncio.to_thread(_issue, c, found[0])
    c.audit(found[0].username, "login", found[0].username, address=address)
    return tokens


@router.post("/auth/refresh", response_model=Tokens, tags=["auth"],
             summary="Exchange a refresh token for a new pair")
async def refresh(body: RefreshIn, request: Request, c: Ctx) -> Tokens:
    """A new token pair; the refresh token is used up (presenting it again gives 401).

    Of concurrent refreshes with one token exactly one succeeds. A token presented after
    it was used means a copy exists: every token descended from the same sign-in is
    revoked (the holder signs in again) and the reuse is audited (``refresh_reuse``).
    The new access token carries the user's current role, regions and session epoch.
    """
    address = client_address(request)
    _limit(c, address)
    claims = c.tokens.decode(body.refresh_token, "refresh")
    sub = str(claims["sub"])
    token, jti, expires = c.tokens.refresh_token(sub)
    got = await asyncio.to_thread(c.users.rotate_refresh, str(claims["jti"]), sub, jti,
                                  expires)
    if got.outcome == "reused":
        c.audit(got.username or sub, "refresh_reuse", got.username or sub,
                family=got.family, revoked=got.revoked, address=address)
        raise AuthError("refresh token already used: every token of this sign-in is "
                        "revoked; sign in again")
    if got.user is None:
        raise AuthError(_REFRESH_REFUSED.get(got.outcome, "refresh token refused"))
    c.audit(got.user.username, "refresh", got.user.username, family=got.family,
            address=address)
    return _pair(c, got.user, token)


@router.post("/auth/logout", status_code=204, tags=["auth"], summary="Revoke a refresh token")
async def logout(body: RefreshIn, request: Request, c: Ctx) -> None:
    """Revoke the refresh token and every other of its sign-in (audited).

    The access token stops at its expiry (``api.access_token_minutes``).
    """
    address = client_address(request)
    _limit(c, address)
    claims = c.tokens.decode(body.refresh_token, "refresh")
    owner = await asyncio.to_thread(c.users.revoke_family, str(claims["jti"]))
    who = owner or str(claims["sub"])
    c.audit(who, "logout", who, known=owner is not None, address=address)


class Me(BaseModel):
    """The caller as the token says."""

    username: str
    role: str
    regions: list[str]
    permissions: list[str]


@router.get("/auth/me", response_model=Me, tags=["auth"], summary="Who am I")
async def me(who: Annotated[Principal, Depends(require(Perm.READ_INDICATORS))]) -> Me:
    """The caller's name, role, region scope and permissions (from the token)."""
    return Me(username=who.username, role=who.role.value, regions=sorted(who.regions),
              permissions=sorted(p.value for p in ROLE_PERMISSIONS[who.role]))


# ---------------------------------------------------------------------------- users
Admin = Annotated[Principal, Depends(require(Perm.MANAGE_USERS))]
UserName = Annotated[str, Path(pattern=USERNAME)]


@router.get("/users", response_model=Page, tags=["users"], summary="List users")
async def list_users(
    c: Ctx, who: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> Page:
    """Every account, by name."""
    users, total = await asyncio.to_thread(c.users.list_users, limit, offset)
    return Page(total=total, limit=limit, offset=offset, users=[_out(u) for u in users])


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"],
             summary="Create a user", responses={409: {"description": "Name taken"}})
async def create_user(body: UserCreate, c: Ctx, who: Admin) -> UserOut:
    """A new account with a role and an optional region scope (audited).

    The password must pass the policy (422 naming the rule it breaks): see
    ``api.security.check_password``.
    """
    check_password(body.password, body.username, c.settings.api.password_min_length)
    hashed = await asyncio.to_thread(hash_password, body.password)
    try:
        user = await asyncio.to_thread(c.users.create, body.username, hashed,
                                       body.role.value, body.regions)
    except Conflict as err:
        raise HTTPException(409, str(err)) from None
    c.audit(who, "user_create", user.username, role=user.role, regions=user.regions)
    return _out(user)


@router.get("/users/{username}", response_model=UserOut, tags=["users"], summary="One user")
async def get_user(username: UserName, c: Ctx, who: Admin) -> UserOut:
    """An account."""
    try:
        return _out(await asyncio.to_thread(c.users.get, username))
    except NotFound:
        raise HTTPException(404, f"user {username!r} not found") from None


@router.patch("/users/{username}", response_model=UserOut, tags=["users"],
              summary="Change a user")
async def update_user(username: UserName, body: UserUpdate, c: Ctx, who: Admin) -> UserOut:
    """Change password, role, regions or active flag (audited).

    Any of these ends the user's access tokens (at once for writes and user management,
    within ``api.auth_recheck_s`` for reads); a new password or deactivation also revokes
    their refresh tokens. Demoting or deactivating the last active administrator is a 409.
    """
    if body.password is not None:
        check_password(body.password, username, c.settings.api.password_min_length)
    hashed = None if body.password is None else await asyncio.to_thread(
        hash_password, body.password)
    try:
        user = await asyncio.to_thread(
            c.users.update, username, password_hash=hashed,
            role=None if body.role is None else body.role.value, regions=body.regions,
            active=body.active)
    except NotFound:
        raise HTTPException(404, f"user {username!r} not found") from None
    finally:
        c.sessions.forget(username)
    changes = body.model_dump(exclude_none=True, exclude={"password"})
    if body.password is not None:
        changes["password"] = "changed"
    c.audit(who, "user_update", username, **changes)
    return _out(user)


@router.delete("/users/{username}", status_code=204, tags=["users"], summary="Delete a user",
               responses={409: {"description": "Your own account"}})
async def delete_user(username: UserName, c: Ctx, who: Admin) -> None:
    """Remove an account (audited); its tokens stop working at once.

    Administrators cannot delete themselves, nor the last active administrator (409).
    """
    if username == who.username:
        raise HTTPException(409, "you cannot delete your own account")
    try:
        await asyncio.to_thread(c.users.delete, username)
    except NotFound:
        raise HTTPException(404, f"user {username!r} not found") from None
    finally:
        c.sessions.forget(username)
    c.audit(who, "user_delete", username)


@router.get("/audit", response_model=AuditPage, tags=["users"], summary="The audit log")
async def audit_log(
    c: Ctx, who: Annotated[Principal, Depends(require(Perm.READ_AUDIT))],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> AuditPage:
    """Changes made through the API (users, devices, jobs, ML, logins), newest first."""
    entries, total = await asyncio.to_thread(c.users.audit_log, limit, offset, actor, action)
    return AuditPage(total=total, limit=limit, offset=offset, entries=[
        AuditOut(id=e.id, ts=e.ts, actor=e.actor, action=e.action, target=e.target,
                 detail=e.detail) for e in entries])
