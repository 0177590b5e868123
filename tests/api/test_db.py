"""The user store on both supported databases: SQLite (embedded) and PostgreSQL."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, select, text

from api.app import create_app
from api.db import Conflict, LastAdmin, LoginThrottleRow, NotFound, UserStore
from infra.settings import GridLakeSettings
from tests.api.conftest import (
    PASSWORD,
    PrivatePostgres,
    Users,
    api_settings,
    concurrently,
    login,
)

TABLES = "api_refresh_tokens, api_audit_log, api_login_throttle, api_users"
LATER = datetime.now(UTC) + timedelta(days=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UserStore]:
    if request.param == "sqlite":
        s = UserStore(f"sqlite:///{tmp_path / 'users.db'}")
    else:
        pg: PrivatePostgres = request.getfixturevalue("postgres")
        s = UserStore(pg.url)
        with s.engine.begin() as conn:  # each test starts from an empty schema
            conn.execute(text(f"DROP TABLE IF EXISTS {TABLES}"))
    s.create_schema()
    yield s
    s.close()


def test_users_crud(store: UserStore) -> None:
    u = store.create("ann", "h1", "operator", ["R2", "R1", "R1"])
    assert u.regions == ["R1", "R2"] and u.active and u.created_at.tzinfo is not None
    with pytest.raises(Conflict):
        store.create("ann", "h2", "viewer", [])
    store.create("bob", "h3", "viewer", [])
    users, total = store.list_users(1, 1)
    assert total == 2 and [x.username for x in users] == ["bob"]
    found = store.credentials("ann")
    assert found is not None and found[1] == "h1"
    assert store.credentials("nobody") is None
    assert store.update("ann", role="admin", regions=[]).role == "admin"
    assert store.get("ann").regions == []
    store.delete("bob")
    with pytest.raises(NotFound):
        store.get("bob")
    with pytest.raises(NotFound):
        store.update("bob", role="viewer")


def test_refresh_tokens_rotate_once_and_are_revoked_on_password_change(
        store: UserStore) -> None:
    u = store.create("ann", "h", "viewer", [])
    store.add_refresh(u.id, "j1", LATER)
    got = store.rotate_refresh("j1", "ann", "j1b", LATER)
    assert got.outcome == "rotated" and got.user == store.get("ann") and got.family == "j1"
    assert store.rotate_refresh("j1b", "ann", "j1c", LATER).family == "j1"  # one family
    store.add_refresh(u.id, "j2", datetime.now(UTC) - timedelta(seconds=1))
    assert store.rotate_refresh("j2", "ann", "x", LATER).outcome == "expired"
    store.add_refresh(u.id, "j3", LATER)
    store.update("ann", password_hash="new")
    assert store.rotate_refresh("j3", "ann", "x", LATER).outcome == "revoked"
    assert store.rotate_refresh("j1c", "ann", "x", LATER).outcome == "revoked"
    assert store.rotate_refresh("unknown", "ann", "x", LATER).outcome == "unknown"
    store.add_refresh(u.id, "j4", LATER)
    store.update("ann", active=False)
    assert store.rotate_refresh("j4", "ann", "x", LATER).outcome == "revoked"


def test_reuse_of_a_used_refresh_token_revokes_its_family(store: UserStore) -> None:
    u = store.create("ann", "h", "viewer", [])
    store.add_refresh(u.id, "a1", LATER)  # sign-in A
    store.add_refresh(u.id, "b1", LATER)  # sign-in B (another device)
    assert store.rotate_refresh("a1", "ann", "a2", LATER).outcome == "rotated"
    assert store.rotate_refresh("a2", "ann", "a3", LATER).outcome == "rotated"
    reused = store.rotate_refresh("a1", "ann", "x", LATER)  # a copy of a1 shows up
    assert (reused.outcome, reused.username, reused.family, reused.revoked) == (
        "reused", "ann", "a1", 1)
    assert store.rotate_refresh("a3", "ann", "a4", LATER).outcome == "revoked"
    # the other sign-in is not touched
    assert store.rotate_refresh("b1", "ann", "b2", LATER).outcome == "rotated"
    # signing out revokes the family too, whichever of its tokens is shown
    assert store.revoke_family("b1") == "ann"
    assert store.rotate_refresh("b2", "ann", "b3", LATER).outcome == "revoked"
    assert store.revoke_family("nope") is None


def test_concurrent_rotation_of_one_token_has_one_winner(store: UserStore) -> None:
    u = store.create("ann", "h", "viewer", [])
    for round_ in range(3):
        jti = f"t{round_}"
        store.add_refresh(u.id, jti, LATER)

        def refresh(i: int, jti: str = jti) -> str:
            return store.rotate_refresh(jti, "ann", f"{jti}-{i}", LATER).outcome

        outcomes = concurrently(10, refresh)
        assert sorted(outcomes) == ["reused"] * 9 + ["rotated"], outcomes
        # the losers saw a used token: the winner's successor is revoked with the family
        successor = next(f"t{round_}-{i}" for i, o in enumerate(outcomes) if o == "rotated")
        assert store.rotate_refresh(successor, "ann", "y", LATER).outcome == "revoked"


def test_changes_give_a_new_session_epoch(store: UserStore) -> None:
    first = store.create("ann", "h", "viewer", []).epoch
    assert first and store.find("ann").epoch == first  # type: ignore[union-attr]
    epochs = [first]
    for change in ({"role": "analyst"}, {"regions": ["R1"]}, {"active": False},
                   {"active": True}, {"password_hash": "h2"}):
        epochs.append(store.update("ann", **change).epoch)  # type: ignore[arg-type]
    assert len(set(epochs)) == len(epochs)
    assert store.update("ann").epoch == epochs[-1]  # nothing changed, same sessions
    store.delete("ann")
    assert store.find("ann") is None
    assert store.create("ann", "h", "viewer", []).epoch not in epochs  # never reused


def test_last_active_admin_cannot_be_demoted_deactivated_or_deleted(
        store: UserStore) -> None:
    store.create("root", "h", "admin", [])
    for change in ({"role": "viewer"}, {"active": False}):
        with pytest.raises(LastAdmin, match="last active administrator"):
            store.update("root", **change)  # type: ignore[arg-type]
    with pytest.raises(LastAdmin):
        store.delete("root")
    assert store.get("root").role == "admin" and store.get("root").active
    store.create("second", "h", "admin", [])
    store.update("second", active=False)  # an inactive admin does not count
    with pytest.raises(LastAdmin):
        store.update("root", role="operator")
    store.update("second", active=True)
    store.update("root", role="operator")  # now there is another one
    store.update("root", role="admin")
    store.delete("second")
    assert store.update("root", regions=["R1"]).regions == ["R1"]  # other changes go on


def test_concurrent_demotions_keep_one_admin(store: UserStore) -> None:
    kept = None
    for round_ in range(3):
        names = [f"a{round_}-{i}" for i in range(4)]
        for n in names:
            store.create(n, "h", "admin", [])
        if kept:
            store.update(kept, role="viewer")  # only the new ones are admins now

        def demote(i: int, names: list[str] = names) -> str:
            try:
                store.update(names[i], active=False)
            except LastAdmin:
                return "refused"
            return "done"

        results = concurrently(len(names), demote)
        assert sorted(results) == ["done"] * 3 + ["refused"], results
        kept = names[results.index("refused")]
        users, _ = store.list_users(100, 0)
        assert [u.username for u in users if u.role == "admin" and u.active] == [kept]


def test_sign_in_throttle_counts_locks_and_forgets(store: UserStore) -> None:
    limits = {"user:ann": 3, "addr:1.2.3.4": 10}
    assert [store.begin_login(limits, 60, 30, 900).wait_s for _ in range(2)] == [0, 0]
    third = store.begin_login(limits, 60, 30, 900)
    assert third.wait_s == 0 and third.locked == [("user:ann", 3, 30.0)]
    refused = store.begin_login(limits, 60, 30, 900)
    assert 29 < refused.wait_s <= 30
    # a success of another account from the address gives its attempt back
    store.begin_login({"user:bob": 3, "addr:1.2.3.4": 10}, 60, 30, 900)
    store.end_login("user:bob", "addr:1.2.3.4", 10)
    with store.session() as s:
        rows = {r.key: r.failures for r in s.scalars(select(LoginThrottleRow))}
    assert rows == {"user:ann": 3, "addr:1.2.3.4": 3}
    # a window this short has forgotten everything, but a lock in force still holds
    assert store.begin_login({"user:ann": 3}, 0.001, 30, 900).wait_s > 0
    assert store.begin_login({"addr:1.2.3.4": 10}, 0.001, 30, 900).wait_s == 0
    with store.session() as s:
        assert s.get(LoginThrottleRow, "addr:1.2.3.4").failures == 1  # type: ignore[union-attr]


def test_concurrent_sign_in_attempts_are_bounded(store: UserStore) -> None:
    waits = concurrently(12, lambda _: store.begin_login(
        {"user:ann": 4, "addr:9.9.9.9": 100}, 60, 30, 900).wait_s)
    assert sum(1 for w in waits if w == 0) == 4  # exactly the limit got to try a password
    assert all(w > 0 for w in waits if w)


def test_audit_stores_attempted_names_sanitised(store: UserStore) -> None:
    store.audit("adm\u202enimda\x00" + "x" * 100, "login_failed", "t\n\u2066arget",
                {"name": "a\x1b[31mb", "nested": [{"k\x00": "\u200b"}]})
    entry = store.audit_log(1, 0)[0][0]
    assert entry.actor.startswith("adm\\u202enimda\\x00x") and len(entry.actor) == 64
    assert entry.actor.endswith("…") and entry.target == "t\\x0a\\u2066arget"
    assert entry.detail == {"name": "a\\x1b[31mb", "nested": [{"k\\x00": "\\u200b"}]}


def test_older_database_gets_the_new_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:  # the tables of the release before
        conn.execute(text("CREATE TABLE api_users (id INTEGER PRIMARY KEY, username "
                          "VARCHAR(64) UNIQUE, password_hash VARCHAR(255), role VARCHAR(16), "
                          "regions TEXT, active BOOLEAN, created_at DATETIME, "
                          "updated_at DATETIME)"))
        conn.execute(text("CREATE TABLE api_refresh_tokens (jti VARCHAR(64) PRIMARY KEY, "
                          "user_id INTEGER REFERENCES api_users(id) ON DELETE CASCADE, "
                          "expires_at DATETIME, revoked_at DATETIME)"))
        conn.execute(text("INSERT INTO api_users VALUES (1, 'ann', 'h', 'admin', '[]', 1, "
                          "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO api_refresh_tokens VALUES ('old', 1, "
                          f"'{LATER.strftime('%Y-%m-%d %H:%M:%S')}', NULL)"))
    engine.dispose()
    store = UserStore(url)
    store.create_schema()
    store.create_schema()  # a second worker: nothing to add
    assert store.get("ann").epoch  # every user has an epoch
    indexes = {i["name"] for i in inspect(store.engine).get_indexes("api_refresh_tokens")}
    assert "ix_api_refresh_tokens_family" in indexes
    got = store.rotate_refresh("old", "ann", "new", LATER)  # old tokens keep working
    assert got.outcome == "rotated" and got.family == "old"
    assert store.rotate_refresh("old", "ann", "x", LATER).outcome == "reused"
    assert store.rotate_refresh("new", "ann", "x", LATER).outcome == "revoked"
    store.close()


def test_audit_log_newest_first_with_filters(store: UserStore) -> None:
    store.audit("ann", "device_create", "TX-1", {"version": 1})
    store.audit("bob", "job_launch", "ba-1", {"request": {"start": "2026-03-01"}})
    store.audit("ann", "device_update", "TX-1", {"version": 2})
    entries, total = store.audit_log(10, 0)
    assert total == 3 and [e.action for e in entries] == [
        "device_update", "job_launch", "device_create"]
    entries, total = store.audit_log(10, 0, actor="ann")
    assert total == 2 and entries[0].detail == {"version": 2}
    entries, total = store.audit_log(10, 0, action="job_launch")
    assert [e.target for e in entries] == ["ba-1"]
    # values are bound parameters: a quote in a filter is just a value
    assert store.audit_log(10, 0, actor="ann' OR '1'='1")[1] == 0


def test_api_on_postgresql(postgres: PrivatePostgres, settings: GridLakeSettings,
                           tmp_path: Path) -> None:
    store = UserStore(postgres.url)
    with store.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {TABLES}"))
    store.close()
    cfg = api_settings(settings, tmp_path / "home", database_url=postgres.url)
    with TestClient(create_app(cfg)) as c:
        users = Users(c)
        users.headers("analyst", ["R1"])
        pair = login(c, "analyst-R1", PASSWORD)
        assert pair["role"] == "analyst" and pair["regions"] == ["R1"]
        log = c.get("/api/v1/audit", headers=users.admin).json()
        assert {"user_create", "login"} <= {e["action"] for e in log["entries"]}
