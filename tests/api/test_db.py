"""The user store on both supported databases: SQLite (embedded) and PostgreSQL."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.db import Conflict, NotFound, UserStore
from infra.settings import GridLakeSettings
from tests.api.conftest import PASSWORD, PrivatePostgres, Users, api_settings, login


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UserStore]:
    if request.param == "sqlite":
        s = UserStore(f"sqlite:///{tmp_path / 'users.db'}")
    else:
        pg: PrivatePostgres = request.getfixturevalue("postgres")
        s = UserStore(pg.url)
        with s.engine.begin() as conn:  # each test starts from an empty schema
            conn.execute(text("DROP TABLE IF EXISTS api_refresh_tokens, api_audit_log, "
                              "api_users"))
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


def test_refresh_tokens_are_single_use_and_revoked_on_password_change(
        store: UserStore) -> None:
    u = store.create("ann", "h", "viewer", [])
    later = datetime.now(UTC) + timedelta(hours=1)
    store.add_refresh(u.id, "j1", later)
    assert store.use_refresh("j1") == store.get("ann")
    assert store.use_refresh("j1") is None  # spent
    store.add_refresh(u.id, "j2", datetime.now(UTC) - timedelta(seconds=1))
    assert store.use_refresh("j2") is None  # expired
    store.add_refresh(u.id, "j3", later)
    store.update("ann", password_hash="new")
    assert store.use_refresh("j3") is None  # revoked by the password change
    store.add_refresh(u.id, "j4", later)
    assert store.revoke_refresh("j4") and not store.revoke_refresh("j4")
    assert store.use_refresh("unknown") is None


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
        conn.execute(text("DROP TABLE IF EXISTS api_refresh_tokens, api_audit_log, "
                          "api_users"))
    store.close()
    cfg = api_settings(settings, tmp_path / "home", database_url=postgres.url)
    with TestClient(create_app(cfg)) as c:
        users = Users(c)
        users.headers("analyst", ["R1"])
        pair = login(c, "analyst-R1", PASSWORD)
        assert pair["role"] == "analyst" and pair["regions"] == ["R1"]
        log = c.get("/api/v1/audit", headers=users.admin).json()
        assert {"user_create", "login"} <= {e["action"] for e in log["entries"]}
