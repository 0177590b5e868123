"""Users, refresh tokens, sign-in throttling and the audit log in a relational database.

SQLite (a file under ``home/api``) is the embedded default; PostgreSQL is supported
through ``GRIDLAKE_API__DATABASE_URL=postgresql+psycopg://...``. Tables are created when
missing, and columns added since the first release are added to older tables
(:meth:`UserStore.create_schema`). Every statement is built with SQLAlchemy's expression
language (bound parameters), never from strings.

**Check-and-change under concurrency.** Several workers (and threads of one) write at once.
pysqlite opens a transaction only at the first *write* statement, so a read before it is
not isolated and ``SELECT ... FOR UPDATE`` does nothing on SQLite. Every decision that must
hold under concurrency is therefore either a conditional write whose row count decides
(refresh-token rotation) or taken after the transaction's first write, which holds
SQLite's database write lock until commit (sign-in throttling, the last-administrator
guard); on PostgreSQL the rows involved are locked ``FOR UPDATE`` or by the write itself.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    case,
    create_engine,
    delete,
    event,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.expression import Executable

from api.security import Role, clean_text, lockout_seconds
from infra.settings import GridLakeSettings

log = logging.getLogger(__name__)

#: Longest audited actor, action and target (their columns' sizes) and detail string.
AUDIT_ACTOR_MAX, AUDIT_TARGET_MAX, AUDIT_DETAIL_MAX = 64, 255, 1000
#: How often a worker drops sign-in throttle rows that no longer count.
_PRUNE_EVERY_S = 600.0


def new_epoch() -> str:
    """A fresh session epoch (random; see :mod:`api.security`)."""
    return secrets.token_hex(16)


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
    #: Replaced whenever the user's access tokens must stop working (deactivation, role,
    #: regions, password); a new row never reuses a deleted user's epoch.
    session_epoch: Mapped[str | None] = mapped_column(String(32), nullable=True,
                                                      default=new_epoch)


class RefreshTokenRow(Base):
    """An issued refresh token: single use, in a family of the tokens of one sign-in.

    A refresh marks the token used and issues its successor in the same family; a used
    token presented again revokes every live token of its family (someone holds a copy).
    """

    __tablename__ = "api_refresh_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("api_users.id", ondelete="CASCADE"),
                                         index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                        nullable=True)
    #: The first token's id of the sign-in (null in rows older than families: their own).
    family: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LoginThrottleRow(Base):
    """Sign-in attempts of one account (``user:<name>``) or address (``addr:<ip>``)."""

    __tablename__ = "api_login_throttle"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
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
    epoch: str = field(default="", repr=False)


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


class LastAdmin(Exception):
    """The change would leave no active administrator (HTTP 409)."""

    def __init__(self, username: str) -> None:
        super().__init__(f"{username!r} is the last active administrator: promote or activate "
                         "another administrator first")


@dataclass(frozen=True)
class Rotation:
    """What presenting a refresh token did.

    Attributes:
        outcome: ``rotated`` (the token was live: ``user`` gets a new pair), ``reused`` (it
            had been used already: its family is revoked), ``revoked`` (logged out or
            revoked with its user or family), ``expired``, ``inactive`` (the user is
            inactive or gone) or ``unknown``.
        user: The user, when rotated.
        username: The token's user, when known (for the audit log).
        family: The token's family.
        revoked: Live tokens of the family revoked because of a reuse.

    """

    outcome: str
    user: User | None = None
    username: str | None = None
    family: str | None = None
    revoked: int = 0


@dataclass(frozen=True)
class LoginGate:
    """The verdict on a sign-in attempt before its password is checked.

    Attributes:
        wait_s: Seconds the account or address stays locked (0: the attempt may go on).
        locked: Keys this attempt locked, as ``(key, attempts, seconds)`` (the attempt goes
            on: it was counted before the lock).

    """

    wait_s: float
    locked: list[tuple[str, int, float]] = field(default_factory=list)


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
                _utc(row.created_at), _utc(row.updated_at), row.session_epoch or "")


def _changed(s: Session, statement: Executable) -> int:
    """Run a Core write in the session's transaction; the rows it changed."""
    return int(s.connection().execute(statement).rowcount)


def _clean(value: Any) -> Any:
    """Audit detail with every string (keys too) passed through :func:`clean_text`."""
    if isinstance(value, str):
        return clean_text(value, AUDIT_DETAIL_MAX)
    if isinstance(value, dict):
        return {clean_text(str(k), AUDIT_TARGET_MAX): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    return value


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
    """Users, refresh tokens, sign-in throttling and the audit log."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._next_prune = 0.0

    def create_schema(self) -> None:
        """Create the tables that do not exist yet and add columns older tables lack."""
        Base.metadata.create_all(self.engine)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Bring a database of an earlier release up to the current tables.

        New columns are nullable, so ``ALTER TABLE ... ADD COLUMN`` works on both databases;
        users get a session epoch (tokens issued before have none and are refused), older
        refresh tokens stay valid as families of their own.
        """
        for table in (Base.metadata.tables[UserRow.__tablename__],
                      Base.metadata.tables[RefreshTokenRow.__tablename__]):
            have = {c["name"] for c in inspect(self.engine).get_columns(table.name)}
            for col in table.columns:
                if col.name in have:
                    continue
                kind = col.type.compile(dialect=self.engine.dialect)
                try:
                    with self.engine.begin() as conn:
                        # names and types are this module's own, never input
                        conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {col.name} "
                                          f"{kind}"))
                    log.warning("database: added column %s.%s", table.name, col.name)
                except DBAPIError:
                    # another worker added it at the same moment
                    have = {c["name"] for c in inspect(self.engine).get_columns(table.name)}
                    if col.name not in have:
                        raise
                for index in table.indexes:
                    if col.name in index.columns:
                        index.create(self.engine, checkfirst=True)
        with self.session() as s:
            for row in s.scalars(select(UserRow).where(or_(UserRow.session_epoch.is_(None),
                                                           UserRow.session_epoch == ""))):
                row.session_epoch = new_epoch()

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

    def find(self, username: str) -> User | None:
        """A user by name, or None (the per-request session check)."""
        with self.session() as s:
            row = s.scalar(select(UserRow).where(UserRow.username == username))
            return None if row is None else _user(row)

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
                              created_at=now, updated_at=now, session_epoch=new_epoch())
                s.add(row)
                s.flush()
                return _user(row)
        except IntegrityError:
            raise Conflict(f"user {username!r} exists") from None

    @staticmethod
    def _lock_admins(s: Session) -> None:
        """Lock the active administrators' rows (PostgreSQL; SQLite locks at the write)."""
        # In one order for every caller, so two changes never wait on each other; FOR NO
        # KEY UPDATE, so a refresh inserting a token for one of them (a foreign-key share
        # lock) is not blocked and cannot deadlock with a change that revokes its tokens.
        s.execute(select(UserRow.id).where(UserRow.role == Role.ADMIN.value,
                                           UserRow.active.is_(True))
                  .order_by(UserRow.id).with_for_update(key_share=True)).all()

    @staticmethod
    def _require_an_admin(s: Session, username: str) -> None:
        """Raise :class:`LastAdmin` when no active administrator is left in ``s``."""
        left = s.scalar(select(func.count()).select_from(UserRow).where(
            UserRow.role == Role.ADMIN.value, UserRow.active.is_(True)))
        if not left:
            raise LastAdmin(username)

    def update(self, username: str, *, password_hash: str | None = None,
               role: str | None = None, regions: list[str] | None = None,
               active: bool | None = None) -> User:
        """Change a user.

        Any change of password, role, regions or active flag gives the user a new session
        epoch (their access tokens stop working); a new password or deactivation also
        revokes their refresh tokens.

        Raises:
            NotFound: No such user.
            LastAdmin: The change would leave no active administrator (nothing changed).

        """
        with self.session() as s:
            self._lock_admins(s)
            row = _row(s, username)
            was_admin = row.role == Role.ADMIN.value and row.active
            if password_hash is not None:
                row.password_hash = password_hash
            if role is not None:
                row.role = role
            if regions is not None:
                row.regions = json.dumps(sorted(set(regions)))
            if active is not None:
                row.active = active
            if (password_hash, role, regions, active) != (None, None, None, None):
                row.session_epoch = new_epoch()
            row.updated_at = datetime.now(UTC)
            s.flush()  # the first write: the checks below see every committed change
            if was_admin and not (row.role == Role.ADMIN.value and row.active):
                self._require_an_admin(s, username)
            if password_hash is not None or active is False:
                self._revoke_all(s, row.id)
            return _user(row)

    def delete(self, username: str) -> None:
        """Remove a user (their refresh tokens go with them).

        Raises:
            NotFound: No such user.
            LastAdmin: They are the last active administrator (nothing changed).

        """
        with self.session() as s:
            self._lock_admins(s)
            row = _row(s, username)
            was_admin = row.role == Role.ADMIN.value and row.active
            self._revoke_all(s, row.id)  # the first write (and for databases without cascade)
            _changed(s, delete(UserRow).where(UserRow.id == row.id))
            if was_admin:
                self._require_an_admin(s, username)

    # ----------------------------------------------------------------------- tokens
    def add_refresh(self, user_id: int, jti: str, expires: datetime,
                    family: str | None = None) -> None:
        """Record an issued refresh token; a sign-in starts a family (its own id)."""
        with self.session() as s:
            s.add(RefreshTokenRow(jti=jti, user_id=user_id, expires_at=expires,
                                  family=family or jti))

    def rotate_refresh(self, jti: str, username: str, new_jti: str,
                       new_expires: datetime) -> Rotation:
        """Use refresh token ``jti`` of ``username`` and record its successor ``new_jti``.

        Exactly one of any number of concurrent calls with the same live token rotates
        it. A token used before revokes its family (the successor issued by the one that
        won included); the caller audits that.
        """
        now = datetime.now(UTC)
        with self.session() as s:
            # The conditional write decides and comes first: it waits for SQLite's write
            # lock or PostgreSQL's row lock, so concurrent callers are serialised here and
            # each later one finds the token used.
            won = _changed(s, update(RefreshTokenRow).where(
                RefreshTokenRow.jti == jti, RefreshTokenRow.used_at.is_(None),
                RefreshTokenRow.revoked_at.is_(None)).values(used_at=now)) == 1
            tok = s.get(RefreshTokenRow, jti)
            if tok is None:
                return Rotation("unknown")
            family = tok.family or tok.jti
            user = s.get(UserRow, tok.user_id)
            name = None if user is None else user.username
            if not won:
                if tok.used_at is not None:
                    revoked = self._revoke_family(s, family, now)
                    return Rotation("reused", username=name, family=family, revoked=revoked)
                return Rotation("revoked", username=name, family=family)
            if _utc(tok.expires_at) <= now:
                return Rotation("expired", username=name, family=family)
            if user is None or not user.active or user.username != username:
                return Rotation("inactive", username=name, family=family)
            s.add(RefreshTokenRow(jti=new_jti, user_id=user.id, expires_at=new_expires,
                                  family=family))
            return Rotation("rotated", user=_user(user), username=name, family=family)

    def revoke_family(self, jti: str) -> str | None:
        """Sign out: revoke the token's family; returns the token's user (None: unknown)."""
        now = datetime.now(UTC)
        with self.session() as s:
            tok = s.get(RefreshTokenRow, jti)
            if tok is None:
                return None
            self._revoke_family(s, tok.family or tok.jti, now)
            user = s.get(UserRow, tok.user_id)
            return None if user is None else user.username

    @staticmethod
    def _revoke_family(s: Session, family: str, now: datetime) -> int:
        return _changed(s, update(RefreshTokenRow).where(
            or_(RefreshTokenRow.family == family, RefreshTokenRow.jti == family),
            RefreshTokenRow.revoked_at.is_(None), RefreshTokenRow.used_at.is_(None),
        ).values(revoked_at=now))

    @staticmethod
    def _revoke_all(s: Session, user_id: int) -> None:
        _changed(s, update(RefreshTokenRow).where(
            RefreshTokenRow.user_id == user_id, RefreshTokenRow.revoked_at.is_(None),
        ).values(revoked_at=datetime.now(UTC)))

    # ------------------------------------------------------------ sign-in throttling
    def _insert_missing(self, s: Session, keys: list[str], now: datetime) -> None:
        rows = [{"key": k, "failures": 0, "last_attempt": now} for k in keys]
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            _changed(s, sqlite.insert(LoginThrottleRow).values(rows).on_conflict_do_nothing())
        elif dialect == "postgresql":
            _changed(s, postgresql.insert(LoginThrottleRow).values(rows)
                     .on_conflict_do_nothing())
        else:
            raise NotImplementedError(f"sign-in throttling needs SQLite or PostgreSQL, not "
                                      f"{dialect}")

    def begin_login(self, limits: dict[str, int], window_s: float, lockout_s: float,
                    lockout_max_s: float) -> LoginGate:
        """Count a sign-in attempt against each key before its password is checked.

        Counting first (and giving the attempt back on success, :meth:`end_login`) bounds
        the guesses even when they arrive at once: the attempt that reaches a key's limit
        locks it, every later one is refused until the lock ends. Attempts while locked
        are refused without counting. A key's count restarts when its last attempt is
        older than ``window_s``.

        Args:
            limits: Key → attempts allowed (``user:<name>``, ``addr:<ip>``).
            window_s: How long a key's count is remembered after its last attempt.
            lockout_s: First lock (see :func:`api.security.lockout_seconds`).
            lockout_max_s: Longest lock.

        """
        now = datetime.now(UTC)
        keys = sorted(limits)
        with self.session() as s:
            self._insert_missing(s, keys, now)  # the first write: attempts are serialised
            rows = {r.key: r for r in s.scalars(
                select(LoginThrottleRow).where(LoginThrottleRow.key.in_(keys))
                .order_by(LoginThrottleRow.key).with_for_update())}
            waits = [(_utc(r.locked_until) - now).total_seconds() for r in rows.values()
                     if r.locked_until is not None]
            wait = max([w for w in waits if w > 0], default=0.0)
            if wait:
                return LoginGate(wait)
            locked = []
            for key in keys:
                row = rows[key]
                if (now - _utc(row.last_attempt)).total_seconds() > window_s:
                    row.failures = 0
                row.failures += 1
                row.last_attempt = now
                lock = lockout_seconds(row.failures, limits[key], lockout_s, lockout_max_s)
                row.locked_until = now + timedelta(seconds=lock) if lock else None
                if lock:
                    locked.append((key, row.failures, lock))
            if time.monotonic() > self._next_prune:
                self._next_prune = time.monotonic() + _PRUNE_EVERY_S
                _changed(s, delete(LoginThrottleRow).where(
                    LoginThrottleRow.last_attempt < now - timedelta(seconds=window_s),
                    or_(LoginThrottleRow.locked_until.is_(None),
                        LoginThrottleRow.locked_until < now)))
            return LoginGate(0.0, locked)

    def end_login(self, account: str, address: str, address_limit: int) -> None:
        """A sign-in succeeded: clear the account's count, give the address its attempt back.

        A lock already in force stays (this attempt was allowed before it), except the
        address lock this very attempt set by being counted.
        """
        with self.session() as s:
            _changed(s, delete(LoginThrottleRow).where(LoginThrottleRow.key == account))
            _changed(s, update(LoginThrottleRow).where(LoginThrottleRow.key == address).values(
                failures=case((LoginThrottleRow.failures > 0, LoginThrottleRow.failures - 1),
                              else_=0)))
            _changed(s, update(LoginThrottleRow).where(
                LoginThrottleRow.key == address, LoginThrottleRow.failures < address_limit,
            ).values(locked_until=None))

    # ------------------------------------------------------------------------ audit
    def audit(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        """Append an entry to the audit log.

        Text that may come from a caller (an attempted username, a target, detail strings)
        is stored through :func:`api.security.clean_text`: invisible characters escaped,
        lengths capped to the columns.
        """
        with self.session() as s:
            s.add(AuditRow(ts=datetime.now(UTC), actor=clean_text(actor, AUDIT_ACTOR_MAX),
                           action=clean_text(action, AUDIT_ACTOR_MAX),
                           target=clean_text(target, AUDIT_TARGET_MAX),
                           detail=json.dumps(_clean(detail), default=str, sort_keys=True)))

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
