"""Login, token refresh and logout; user administration; the audit log."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field, field_validator

from api.context import Ctx, RateLimited, client_key, require
from api.db import Conflict, NotFound, User
from api.security import (
    ROLE_PERMISSIONS,
    AuthError,
    Perm,
    Principal,
    Role,
    hash_password,
    verify_password,
)
from api.validation import Offset

router = APIRouter()

USERNAME = r"^[A-Za-z0-9_.@-]{1,64}$"
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


def _issue(c: Any, user: User) -> Tokens:
    access = c.tokens.access_token(user.username, user.role, user.regions)
    refresh, jti, expires = c.tokens.refresh_token(user.username)
    c.users.add_refresh(user.id, jti, expires)
    return Tokens(access_token=access, refresh_token=refresh,
                  expires_in=int(c.tokens.access_ttl.total_seconds()), role=user.role,
                  regions=user.regions)


@router.post("/auth/login", response_model=Tokens, tags=["auth"],
             summary="Sign in: a token pair",
             responses={401: {"description": "Wrong credentials or inactive user"}})
async def login(body: Login, request: Request, c: Ctx) -> Tokens:
    """Check the password and issue an access and a refresh token.

    They live ``api.access_token_minutes`` and ``api.refresh_token_days``. Failed attempts
    count against the caller's rate limit like any request.
    """
    wait = c.limiter.take(client_key(request))
    if wait:
        raise RateLimited(wait)
    found = await asyncio.to_thread(c.users.credentials, body.username)
    ok = await asyncio.to_thread(verify_password, body.password, found[1] if found else None)
    if not found or not ok or not found[0].active:
        c.audit(body.username, "login_failed", body.username)
        raise AuthError("wrong username or password")
    tokens = await asyncio.to_thread(_issue, c, found[0])
    c.audit(found[0].username, "login", found[0].username)
    return tokens


@router.post("/auth/refresh", response_model=Tokens, tags=["auth"],
             summary="Exchange a refresh token for a new pair")
async def refresh(body: RefreshIn, request: Request, c: Ctx) -> Tokens:
    """A new token pair; the refresh token is used up (presenting it again gives 401).

    The new access token carries the user's current role and regions.
    """
    wait = c.limiter.take(client_key(request))
    if wait:
        raise RateLimited(wait)
    claims = c.tokens.decode(body.refresh_token, "refresh")
    user = await asyncio.to_thread(c.users.use_refresh, str(claims["jti"]))
    if user is None:
        raise AuthError("refresh token revoked, expired or its user inactive")
    return await asyncio.to_thread(_issue, c, user)


@router.post("/auth/logout", status_code=204, tags=["auth"], summary="Revoke a refresh token")
async def logout(body: RefreshIn, c: Ctx) -> None:
    """Revoke the refresh token (the access token expires on its own)."""
    claims = c.tokens.decode(body.refresh_token, "refresh")
    await asyncio.to_thread(c.users.revoke_refresh, str(claims["jti"]))


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


def _check_password(c: Any, password: str) -> None:
    n = c.settings.api.password_min_length
    if len(password) < n:
        raise HTTPException(422, f"password: at least {n} characters")


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
    """A new account with a role and an optional region scope (audited)."""
    _check_password(c, body.password)
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

    A new password or deactivation revokes the user's refresh tokens.
    """
    if body.password is not None:
        _check_password(c, body.password)
    hashed = None if body.password is None else await asyncio.to_thread(
        hash_password, body.password)
    try:
        user = await asyncio.to_thread(
            c.users.update, username, password_hash=hashed,
            role=None if body.role is None else body.role.value, regions=body.regions,
            active=body.active)
    except NotFound:
        raise HTTPException(404, f"user {username!r} not found") from None
    changes = body.model_dump(exclude_none=True, exclude={"password"})
    if body.password is not None:
        changes["password"] = "changed"
    c.audit(who, "user_update", username, **changes)
    return _out(user)


@router.delete("/users/{username}", status_code=204, tags=["users"], summary="Delete a user",
               responses={409: {"description": "Your own account"}})
async def delete_user(username: UserName, c: Ctx, who: Admin) -> None:
    """Remove an account (audited). Administrators cannot delete themselves."""
    if username == who.username:
        raise HTTPException(409, "you cannot delete your own account")
    try:
        await asyncio.to_thread(c.users.delete, username)
    except NotFound:
        raise HTTPException(404, f"user {username!r} not found") from None
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
