"""``gridlake api users ...``: the API's password policy and last-administrator guard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.db import UserStore, database_url
from api.security import verify_password
from infra.settings import load_settings
from ops.cli.api import app

ADMIN_PASSWORD = "admin-secret-for-cli-tests"


@pytest.fixture
def store(tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[UserStore]:
    monkeypatch.setenv("GRIDLAKE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GRIDLAKE_API__ADMIN_PASSWORD", ADMIN_PASSWORD)
    s = UserStore(database_url(load_settings()))
    s.create_schema()  # the commands create it too; the test may look first
    yield s
    s.close()


def _run(*args: str, password: str | None = None) -> tuple[int, str]:
    stdin = None if password is None else f"{password}\n{password}\n"
    r = CliRunner().invoke(app, ["users", *args], input=stdin)
    return r.exit_code, r.output


def _password_ok(store: UserStore, user: str, password: str) -> bool:
    found = store.credentials(user)
    return found is not None and verify_password(password, found[1])


@pytest.mark.parametrize(("password", "rule"), [
    ("password12", "too common"),
    ("ann.smith-was-here", "username"),
    ("aaaaaaaaaaaa", "different characters"),
    ("short", "at least 10"),
])
def test_add_and_set_apply_the_password_policy(store: UserStore, password: str,
                                               rule: str) -> None:
    code, out = _run("add", "ann.smith", "--role", "viewer", password=password)
    assert code == 2 and rule in out
    assert store.find("ann.smith") is None
    code, out = _run("add", "ann.smith", "--role", "viewer", password="good-long-secret")
    assert code == 0, out
    # `set --password` used to skip every check
    code, out = _run("set", "ann.smith", "--password", password=password)
    assert code == 2 and rule in out
    assert _password_ok(store, "ann.smith", "good-long-secret")
    code, out = _run("set", "ann.smith", "--password", password="another-good-one")
    assert code == 0, out
    assert _password_ok(store, "ann.smith", "another-good-one")


def test_add_refuses_names_the_api_would_refuse(store: UserStore) -> None:
    code, out = _run("add", "ann smith", "--role", "viewer", password="good-long-secret")
    assert code == 2 and "username" in out


def test_last_admin_cannot_be_demoted_or_deactivated(store: UserStore) -> None:
    assert _run("list")[0] == 0  # creates the bootstrap administrator
    for change in (["--role", "viewer"], ["--inactive"]):
        code, out = _run("set", "admin", *change)
        assert code == 1 and "last active administrator" in out
    admin = store.get("admin")
    assert admin.role == "admin" and admin.active
    assert _run("add", "second", "--role", "admin", password="good-long-secret")[0] == 0
    code, out = _run("set", "admin", "--inactive")
    assert code == 0, out
    assert _run("set", "second", "--role", "operator")[0] == 1


def test_set_keeps_what_it_is_not_told_to_change(store: UserStore) -> None:
    _run("add", "bob", "--role", "operator", "--region", "R1", password="good-long-secret")
    epoch = store.get("bob").epoch
    assert _run("set", "bob", "--role", "viewer")[0] == 0
    bob = store.get("bob")
    assert (bob.role, bob.regions) == ("viewer", ["R1"]) and bob.epoch != epoch
