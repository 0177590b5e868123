"""``gridlake api ...``: run the API service and manage its users."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from api.db import UserStore

app = typer.Typer(help="The API service.", no_args_is_help=True)
users_app = typer.Typer(help="Users of the API (the same database the service uses).",
                        no_args_is_help=True)
app.add_typer(users_app, name="users")
console = Console()


@app.command()
def serve() -> None:
    """Run the API in the foreground (gunicorn with uvicorn workers)."""
    # lazy: the API's modules (FastAPI, SQLAlchemy, Kafka); `--help` needs none
    from api import service

    # lazy: see above
    from infra.settings import load_settings

    cmd = service.command(load_settings())
    os.execv(cmd[0], cmd)  # noqa: S606 - replace this process with the server


@app.command()
def start() -> None:
    """Start the API detached and wait until it answers."""
    # lazy: the API's modules (FastAPI, SQLAlchemy, Kafka); `--help` needs none
    from api import service

    # lazy: see above
    from infra.settings import load_settings

    settings = load_settings()
    try:
        pid = service.start(settings)
    except TimeoutError as err:
        console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(1) from err
    console.print(f"API: pid {pid}, {settings.api.base_url}/docs")
    password = service.admin_password(settings)
    if settings.api.admin_password is None and password is not None:
        console.print(f"administrator {settings.api.admin_username!r}: password in "
                      f"{settings.run / 'api-admin-password'}")


@app.command()
def stop() -> None:
    """Stop the detached API."""
    # lazy: the API's modules (FastAPI, SQLAlchemy, Kafka); `--help` needs none
    from api import service

    # lazy: see above
    from infra.settings import load_settings

    console.print("API: " + ("stopped" if service.stop(load_settings()) else "was not running"))


def _check(password: str, username: str) -> None:
    """Apply the API's password policy; exit 2 with its message when it refuses."""
    # lazy: the API's modules (FastAPI, SQLAlchemy, Kafka); `--help` needs none
    from api.security import WeakPassword, check_password

    # lazy: see above
    from infra.settings import load_settings

    try:
        check_password(password, username, load_settings().api.password_min_length)
    except WeakPassword as err:
        console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(2) from err


def _store() -> UserStore:
    # lazy: the API's modules (FastAPI, SQLAlchemy, Kafka); `--help` needs none
    from api.app import _bootstrap_admin

    # lazy: see above
    from api.db import UserStore, database_url

    # lazy: see above
    from infra.settings import load_settings

    settings = load_settings()
    store = UserStore(database_url(settings))
    _bootstrap_admin(settings, store)
    return store


@users_app.command("list")
def users_list() -> None:
    """Every user with role, regions and state."""
    store = _store()
    users, _ = store.list_users(10_000, 0)
    table = Table("user", "role", "regions", "active", "updated")
    for u in users:
        table.add_row(u.username, u.role, ",".join(u.regions) or "(all)", str(u.active),
                      u.updated_at.isoformat(timespec="seconds"))
    console.print(table)


@users_app.command("add")
def users_add(
    username: str,
    role: str = typer.Option(..., help="admin, operator, analyst or viewer."),
    region: list[str] = typer.Option([], help="Scope to this region (repeatable)."),
    password: str = typer.Option(..., prompt=True, hide_input=True,
                                 confirmation_prompt=True),
) -> None:
    """Create a user (the password policy of the API applies)."""
    # lazy: the API's modules (FastAPI, SQLAlchemy, Kafka); `--help` needs none
    from api.db import Conflict

    # lazy: see above
    from api.security import USERNAME_PATTERN, Role, hash_password

    if role not in {r.value for r in Role}:
        console.print(f"[bold red]error:[/] unknown role {role!r}")
        raise typer.Exit(2)
    if not re.match(USERNAME_PATTERN, username):
        console.print(f"[bold red]error:[/] username {username!r}: 1-64 letters, digits or "
                      "_.@-")
        raise typer.Exit(2)
    _check(password, username)
    store = _store()
    try:
        store.create(username, hash_password(password), role, list(region))
    except Conflict as err:
        console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(1) from err
    store.audit("cli", "user_create", username, {"role": role, "regions": list(region)})
    console.print(f"created {username} ({role})")


@users_app.command("set")
def users_set(
    username: str,
    role: str | None = typer.Option(None, help="New role."),
    region: list[str] = typer.Option(None, help="New region scope (repeatable); "
                                     "--region '' clears it."),
    active: bool | None = typer.Option(None, "--active/--inactive"),
    password: bool = typer.Option(False, "--password", help="Prompt for a new password."),
) -> None:
    """Change a user's role, regions, state or password.

    The password policy of the API applies, and the last active administrator cannot be
    demoted or deactivated. Any change ends the user's access tokens.
    """
    # lazy: the API's modules (FastAPI, SQLAlchemy, Kafka); `--help` needs none
    from api.db import LastAdmin, NotFound

    # lazy: see above
    from api.security import Role, hash_password

    if role is not None and role not in {r.value for r in Role}:
        console.print(f"[bold red]error:[/] unknown role {role!r}")
        raise typer.Exit(2)
    hashed = None
    if password:
        new = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        _check(new, username)
        hashed = hash_password(new)
    store = _store()
    regions = None if region is None else [r for r in region if r]
    try:
        store.update(username, password_hash=hashed, role=role, regions=regions, active=active)
    except NotFound as err:
        console.print(f"[bold red]error:[/] no user {username!r}")
        raise typer.Exit(1) from err
    except LastAdmin as err:
        console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(1) from err
    store.audit("cli", "user_update", username, {"role": role, "regions": regions,
                                                 "active": active, "password": bool(hashed)})
    console.print(f"updated {username}")
