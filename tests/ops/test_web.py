"""The dashboard's generated API types and its build step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from api.security import ROLE_PERMISSIONS
from ops import web
from ops.web import BuildResult, build, openapi_document, render_types, stale, ts_type


def test_generated_types_are_up_to_date() -> None:
    assert web.TYPES_FILE.read_text() == render_types(openapi_document()), \
        "run `gridlake web types` (the API's OpenAPI document changed)"


def test_types_follow_the_schemas() -> None:
    assert ts_type({"anyOf": [{"type": "string"}, {"type": "null"}]}) == "string | null"
    assert ts_type({"type": "array", "items": {"$ref": "#/components/schemas/JobOut"}}) \
        == "JobOut[]"
    assert ts_type({"type": "array", "items": {"anyOf": [{"type": "string"},
                                                         {"type": "integer"}]}}) \
        == "(string | number)[]"
    assert ts_type({"enum": ["json", "csv"]}) == '"json" | "csv"'
    assert ts_type({"type": "object", "additionalProperties": {"type": "number"}}) \
        == "Record<string, number>"
    assert ts_type({"type": "object", "properties": {"a-b": {"type": "integer"},
                                                     "ok": {"type": "boolean"}},
                    "required": ["ok"]}) == '{\n  "a-b"?: number;\n  ok: boolean;\n}'
    assert ts_type({}) == "unknown"


def test_rendered_file_has_every_schema_operation_and_role() -> None:
    doc = openapi_document()
    text = render_types(doc)
    for name in doc["components"]["schemas"]:
        assert f"export interface {name} " in text or f"export type {name} = " in text
    for path in doc["paths"]:
        assert f'"{path}": {{' in text
    for role, perms in ROLE_PERMISSIONS.items():
        assert f"{role.value}: {sorted(p.value for p in perms)}".replace("'", '"') in text
    # the login body is typed from its model, the response of /auth/me too
    assert '"/api/v1/auth/login": {\n    post: {\n      body: Login;\n      response: Tokens;' \
        in text


def _app(tmp_path: Path) -> Path:
    app = tmp_path / "web"
    (app / "src").mkdir(parents=True)
    (app / "src" / "main.ts").write_text("x")
    (app / "package.json").write_text("{}")
    (app / "package-lock.json").write_text("{}")
    return app


def test_dist_is_stale_when_missing_or_older_than_a_source(tmp_path: Path) -> None:
    app = _app(tmp_path)
    assert stale(app)
    (app / "dist").mkdir()
    index = app / "dist" / "index.html"
    index.write_text("<html>")
    os.utime(index, (2e9, 2e9))
    assert not stale(app)
    os.utime(app / "src" / "main.ts", (2e9 + 10, 2e9 + 10))
    assert stale(app)


def test_build_is_skipped_with_a_message_without_node(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app(tmp_path)
    monkeypatch.setattr(web.shutil, "which", lambda name: None)
    got = build(app)
    assert got.state == "skipped" and "node/npm not found" in got.detail
    assert not (app / "dist").exists()
    assert build(tmp_path / "nothing") == BuildResult("skipped",
                                                      f"no {tmp_path / 'nothing'}/package.json")


def test_a_failing_build_says_why(tmp_path: Path) -> None:
    if web.shutil.which("npm") is None:
        pytest.skip("npm not installed")
    app = _app(tmp_path)
    (app / "node_modules").mkdir()
    (app / "node_modules" / ".package-lock.json").write_text("{}")
    os.utime(app / "node_modules" / ".package-lock.json", (2e9, 2e9))
    with pytest.raises(RuntimeError, match="npm run build failed"):
        build(app)
