"""Users, refresh tokens and the audit log in a relational database (SQLAlchemy).

SQLite (a file under ``home/api``) is the embedded default; PostgreSQL is supported
through ``GRIDLAKE_API__DATABASE_URL=postgresql+psycopg://...``. Tables are created when
missing. Every statement is built with SQLAlchemy's expression language (bound
parameters), never from strings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from infra.settings import GridLakeSettings

log = logging.getLogger(__name__)


class Base(DeclarativeBase):
    """Declarative base of the API's tables."""


class UserRow(Base):
    """A user account."""

    __tablename__ = "api_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    regions: Mapped[str] = mapped_column(Text, default="[]")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RefreshTokenRow(Base):
    """An issued refresh token (single use: rotated on refresh, revoked on logout)."""

    __tablename__ = "api_refresh_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("api_users.id", ondelete="CASCADE"),
                                         index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                        nullable=True)


class AuditRow(Base):
    """One change made through the API."""

    __tablename__ = "api_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(255))
    detail: Mapped[str] = mapped_column(Text, default="{}")


@dataclass(frozen=True)
class User:
    """A user as the API sees it (never the password hash outside this module)."""

    id: int
    username: str
    role: str
    regions: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    """One audit log entry."""

    id: int
    ts: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class Conflict(ValueError):
    """A unique value (username) is taken."""


class NotFound(KeyError):
    """No such row."""


def _utc(t: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns.
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _row(s: Session, username: str) -> UserRow:
    """The user's row in session ``s``.

    Raises:
        NotFound: No such user.

    """
    row = s.scalar(select(UserRow).where(UserRow.username == username))
    if row is None:
        raise NotFound(username)
    return row


def _user(row: UserRow) -> User:
    return User(row.id, row.username, row.role, json.loads(row.regions or "[]"), row.active,
                _utc(row.created_at), _utc(row.updated_at))


def database_url(settings: GridLakeSettings) -> str:
    """The configured database URL, or the embedded SQLite file."""
    if settings.api.database_url:
        return settings.api.database_url
    path = settings.home / "api" / "gridlake-api.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout (several workers write)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


class UserStore:
    """Users, refresh tokens and the audit log."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_schema(self) -> None:
        """Create the tables that do not exist yet."""
        Base.metadata.create_all(self.engine)

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed at the end, rolled back on an exception."""
        with self._sessions.begin() as s:
            yield s

    def ping(self) -> None:
        """Run a trivial query (raises when the database cannot be reached)."""
        with self.session() as s:
            s.execute(select(1))

    # ------------------------------------------------------------------------ users
    def count_users(self) -> int:
        """How many accounts exist."""
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(UserRow)) or 0)

    def credentials(self, username: str) -> tuple[User, str] | None:
        """The user and their password hash (for login), or None."""
        with self.session() as s:
            row = s.scalar(select(UserRow).where(UserRow.username == username))
            return None if row is None else (_user(row), row.password_hash)

    def get(self, username: str) -> User:
        """A user by name.

        Raises:
            NotFound: No such user.

        """
        with self.session() as s:
            row = _row(s, username)
            return _user(row)

    def list_users(self, limit: int, offset: int) -> tuple[list[User], int]:
        """A page of users by name, and the total."""
        with self.session() as s:
            total = int(s.scalar(select(func.count()).select_from(UserRow)) or 0)
            rows = s.scalars(select(UserRow).order_by(UserRow.username)
                             .limit(limit).offset(offset)).all()
            return [_user(r) for r in rows], total

    def create(self, username: str, password_hash: str, role: str, regions: list[str]) -> User:
        """Add a user.

        Raises:
            Conflict: The name is taken.

        """
        now = datetime.now(UTC)
        try:
            with self.session() as s:
                row = UserRow(username=username, password_hash=password_hash, role=role,
                              regions=json.dumps(sorted(set(regions))), active=True,
                              created_at=now, updated_at=now)
                s.add(row)
                s.flush()
                return _user(row)
        except IntegrityError:
            raise Conflict(f"user {username!r} exists") from None

    def update(self, username: str, *, password_hash: str | None = None,
               role: str | None = None, regions: list[str] | None = None,
               active: bool | None = None) -> User:
        """Change a user; a new password or deactivation revokes their refresh tokens.

        Raises:
            NotFound: No such user.

        """
        with self.session() as s:
            row = _row(s, username)
            if password_hash is not None:
                row.password_hash = password_hash
            if role is not None:
                row.role = role
            if regions is not None:
                row.regions = json.dumps(sorted(set(regions)))
            if active is not None:
                row.active = active
            row.updated_at = datetime.now(UTC)
            if password_hash is not None or active is False:
                self._revoke_all(s, row.id)
            return _user(row)

    def delete(self, username: str) -> None:
        """Remove a user (and their tokens).

        Raises:
            NotFound: No such user.

        """
        with self.session() as s:
            row = _row(s, username)
            self._revoke_all(s, row.id)
            s.delete(row)

    # ----------------------------------------------------------------------- tokens
    def add_refresh(self, user_id: int, jti: str, expires: datetime) -> None:
        """Record an issued refresh token."""
        with self.session() as s:
            s.add(RefreshTokenRow(jti=jti, user_id=user_id, expires_at=expires))

    def use_refresh(self, jti: str) -> User | None:
        """Consume a refresh token: its (active) user, or None.

        None when the token is unknown, revoked or expired, or its user is inactive. The
        token is revoked either way.
        """
        now = datetime.now(UTC)
        with self.session() as s:
            tok = s.get(RefreshTokenRow, jti, with_for_update=True)
            if tok is None or tok.revoked_at is not None:
                return None
            tok.revoked_at = now
            if _utc(tok.expires_at) <= now:
                return None
            user = s.get(UserRow, tok.user_id)
            return _user(user) if user is not None and user.active else None

    def revoke_refresh(self, jti: str) -> bool:
        """Revoke one refresh token; returns whether it was live."""
        with self.session() as s:
            tok = s.get(RefreshTokenRow, jti)
            if tok is None or tok.revoked_at is not None:
                return False
            tok.revoked_at = datetime.now(UTC)
            return True

    @staticmethod
    def _revoke_all(s: Session, user_id: int) -> None:
        now = datetime.now(UTC)
        for tok in s.scalars(select(RefreshTokenRow).where(
                RefreshTokenRow.user_id == user_id, RefreshTokenRow.revoked_at.is_(None))):
            tok.revoked_at = now

    # ------------------------------------------------------------------------ audit
    def audit(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        """Append an entry to the audit log."""
        with self.session() as s:
            s.add(AuditRow(ts=datetime.now(UTC), actor=actor, action=action, target=target,
                           detail=json.dumps(detail, default=str, sort_keys=True)))

    def audit_log(self, limit: int, offset: int, actor: str | None = None,
                  action: str | None = None) -> tuple[list[AuditEntry], int]:
        """A page of the audit log, newest first, and the total."""
        q = select(AuditRow)
        n = select(func.count()).select_from(AuditRow)
        if actor:
            q, n = q.where(AuditRow.actor == actor), n.where(AuditRow.actor == actor)
        if action:
            q, n = q.where(AuditRow.action == action), n.where(AuditRow.action == action)
        with self.session() as s:
            total = int(s.scalar(n) or 0)
            rows = s.scalars(q.order_by(AuditRow.id.desc()).limit(limit).offset(offset)).all()
            return [AuditEntry(r.id, _utc(r.ts), r.actor, r.action, r.target,
                               json.loads(r.detail or "{}")) for r in rows], total
