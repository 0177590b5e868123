"""The web dashboard (``web/``): its TypeScript API types and its build.

:func:`render_types` turns the API's OpenAPI document into ``web/src/api/schema.ts``: an
interface per component schema, an ``Operations`` map (path → method → parameters, body,
response) and the role → permission table of :mod:`api.security`, so the front end's types
are derived from the API, never written by hand (``gridlake web types`` writes the file;
``tests/ops/test_web.py`` fails when it is stale, like ``docs/tables.md``).

:func:`build` runs ``npm ci`` and ``npm run build`` when ``web/dist`` is older than the
sources (``gridlake setup`` calls it), and says so plainly when Node.js is missing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.app import create_app
from api.security import ROLE_PERMISSIONS
from infra.settings import REPO_ROOT, GridLakeSettings

log = logging.getLogger(__name__)

WEB = REPO_ROOT / "web"
TYPES_FILE = WEB / "src" / "api" / "schema.ts"
#: Inputs of the build: a change to any of them makes ``web/dist`` stale.
SOURCES = ("src", "index.html", "package.json", "package-lock.json", "vite.config.ts",
           "tsconfig.json", "public")
#: Newest major of Node.js the build is tested with, and the oldest it needs (Vite 5).
MIN_NODE_MAJOR = 18
_IDENT_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")


def openapi_document(settings: GridLakeSettings | None = None) -> dict[str, Any]:
    """The API's OpenAPI document (the app is built, never started)."""
    doc: dict[str, Any] = create_app(settings).openapi()
    return doc


def _key(name: str) -> str:
    return name if name and set(name) <= _IDENT_OK and not name[0].isdigit() \
        else json.dumps(name)


def _lit(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def ts_type(schema: dict[str, Any] | bool, indent: str = "") -> str:
    """The TypeScript type of a JSON schema (OpenAPI 3.1 as FastAPI writes it)."""
    if schema is True or schema == {}:
        return "unknown"
    if schema is False:
        return "never"
    assert isinstance(schema, dict)
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "const" in schema:
        return _lit(schema["const"])
    if "enum" in schema:
        return " | ".join(_lit(v) for v in schema["enum"])
    for combo in ("anyOf", "oneOf"):
        if combo in schema:
            parts = list(dict.fromkeys(ts_type(s, indent) for s in schema[combo]))
            return " | ".join(parts)
    if "allOf" in schema:
        return " & ".join(ts_type(s, indent) for s in schema["allOf"])
    typ = schema.get("type")
    if isinstance(typ, list):
        return " | ".join(ts_type({**schema, "type": t}, indent) for t in typ)
    if typ == "string":
        return "string"
    if typ in ("integer", "number"):
        return "number"
    if typ == "boolean":
        return "boolean"
    if typ == "null":
        return "null"
    if typ == "array":
        inner = ts_type(schema.get("items", {}), indent)
        return f"({inner})[]" if "|" in inner or "&" in inner else f"{inner}[]"
    props = schema.get("properties")
    if props:
        return _object(props, set(schema.get("required", [])), indent)
    extra = schema.get("additionalProperties")
    if extra is not None and extra is not False:
        return f"Record<string, {ts_type(extra, indent)}>"
    return "Record<string, unknown>"


def _object(props: dict[str, Any], required: set[str], indent: str) -> str:
    inner = indent + "  "
    lines = ["{"]
    for name, sub in props.items():
        desc = sub.get("description") if isinstance(sub, dict) else None
        if desc:
            lines.append(f"{inner}/** {_comment(desc)} */")
        opt = "" if name in required else "?"
        lines.append(f"{inner}{_key(name)}{opt}: {ts_type(sub, inner)};")
    lines.append(indent + "}")
    return "\n".join(lines)


def _comment(text: str) -> str:
    return " ".join(text.replace("*/", "* /").split())


def _json_schema(content: dict[str, Any] | None) -> dict[str, Any] | None:
    if not content:
        return None
    media = content.get("application/json") or next(iter(content.values()))
    schema = media.get("schema")
    return schema if isinstance(schema, dict) else None


def _operation(op: dict[str, Any], indent: str) -> str:
    inner = indent + "  "
    params: dict[str, dict[str, Any]] = {"path": {}, "query": {}}
    required: dict[str, set[str]] = {"path": set(), "query": set()}
    for p in op.get("parameters", []):
        where = p.get("in")
        if where in params:
            params[where][p["name"]] = {**p.get("schema", {}),
                                        **({"description": p["description"]}
                                           if p.get("description") else {})}
            if p.get("required"):
                required[where].add(p["name"])
    lines = ["{"]
    for where in ("path", "query"):
        if params[where]:
            lines.append(f"{inner}{where}: {_object(params[where], required[where], inner)};")
    body = _json_schema(op.get("requestBody", {}).get("content"))
    if body is not None:
        lines.append(f"{inner}body: {ts_type(body, inner)};")
    ok = next((r for code, r in sorted(op.get("responses", {}).items())
               if code.startswith("2")), None)
    schema = _json_schema(ok.get("content")) if ok else None
    lines.append(f"{inner}response: {ts_type(schema, inner) if schema else 'void'};")
    lines.append(indent + "}")
    return "\n".join(lines)


def render_types(doc: dict[str, Any]) -> str:
    """``web/src/api/schema.ts`` for an OpenAPI document."""
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]
    out = [
        "// Generated by `gridlake web types` from the API's OpenAPI document "
        f"(sha256 {digest}).",
        "// Do not edit: change the API and run the command again.",
        "/* eslint-disable */",
        "",
    ]
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        desc = schema.get("description")
        if desc:
            out.append(f"/** {_comment(desc)} */")
        typ = ts_type(schema)
        if typ.startswith("{"):
            out.append(f"export interface {name} {typ}")
        else:
            out.append(f"export type {name} = {typ};")
        out.append("")
    out.append("/** Every operation: path → method → parameters, body and response. */")
    out.append("export interface Operations {")
    for path, item in doc.get("paths", {}).items():
        out.append(f"  {_lit(path)}: {{")
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                out.append(f"    {method}: {_operation(op, '    ')};")
        out.append("  };")
    out.append("}")
    out.append("")
    out.append("/** Roles and their permissions (api.security.ROLE_PERMISSIONS). */")
    out.append("export const ROLE_PERMISSIONS = {")
    for role, perms in ROLE_PERMISSIONS.items():
        out.append(f"  {role.value}: {_lit(sorted(p.value for p in perms))},")
    out.append("} as const;")
    out.append("")
    out.append("export type RoleName = keyof typeof ROLE_PERMISSIONS;")
    out.append("export type Permission = (typeof ROLE_PERMISSIONS)[RoleName][number];")
    out.append("")
    return "\n".join(out)


def write_types(path: Path = TYPES_FILE) -> Path:
    """Write the generated types; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_types(openapi_document()))
    return path


# --------------------------------------------------------------------------- build
@dataclass(frozen=True)
class BuildResult:
    """What :func:`build` did.

    Attributes:
        state: ``built``, ``up to date`` or ``skipped``.
        detail: One line for the operator.

    """

    state: str
    detail: str


def _newest(paths: list[Path]) -> float:
    newest = 0.0
    for p in paths:
        if p.is_file():
            newest = max(newest, p.stat().st_mtime)
        elif p.is_dir():
            for f in p.rglob("*"):
                if f.is_file():
                    newest = max(newest, f.stat().st_mtime)
    return newest


def stale(web: Path = WEB) -> bool:
    """Whether ``web/dist`` is missing or older than any build input."""
    index = web / "dist" / "index.html"
    if not index.exists():
        return True
    return _newest([web / s for s in SOURCES]) > index.stat().st_mtime


def _node_major(node: str) -> int:
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30,
                         check=False)
    try:
        return int(out.stdout.strip().lstrip("v").split(".")[0])
    except ValueError:
        return 0


def build(web: Path = WEB, *, force: bool = False) -> BuildResult:
    """``npm ci`` (when the lock changed) and ``npm run build`` when ``dist`` is stale.

    Raises:
        RuntimeError: npm failed; the message ends with the tail of its output.

    """
    if not (web / "package.json").exists():
        return BuildResult("skipped", f"no {web}/package.json")
    if not force and not stale(web):
        return BuildResult("up to date", f"{web / 'dist'} is newer than its sources")
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return BuildResult("skipped", "node/npm not found: install Node.js 20 (e.g. "
                           "`apt-get install -y nodejs npm`) to build the dashboard; "
                           "the API works without it")
    if _node_major(node) < MIN_NODE_MAJOR:
        return BuildResult("skipped", f"Node.js {MIN_NODE_MAJOR}+ needed to build the "
                           "dashboard; the API works without it")
    lock = web / "package-lock.json"
    stamp = web / "node_modules" / ".package-lock.json"
    env = {**os.environ, "npm_config_fund": "false", "npm_config_audit": "false"}
    steps = []
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        steps.append([npm, "ci", "--no-audit", "--no-fund"])
    steps.append([npm, "run", "build"])
    for cmd in steps:
        log.info("web: %s", " ".join(cmd[1:]))
        done = subprocess.run(cmd, cwd=web, capture_output=True, text=True, env=env,
                              timeout=1800, check=False)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
            raise RuntimeError(f"npm {' '.join(cmd[1:])} failed in {web}:\n" + "\n".join(tail))
    return BuildResult("built", f"{web / 'dist'} built")


@dataclass(frozen=True)
class BundleSize:
    """Bytes of the built app, raw and gzipped (level 9, as a static server would send).

    Attributes:
        total_raw: Every file of ``dist``.
        total_gzip: The same, each file gzipped.
        entry_gzip: What ``index.html`` loads before any page: itself and the scripts,
            preloaded modules and styles it names (the pages' chunks come on first use).

    """

    total_raw: int
    total_gzip: int
    entry_gzip: int


def bundle_size(dist: Path = WEB / "dist") -> BundleSize:
    """Sizes of a built ``dist`` folder."""
    def gz(p: Path) -> int:
        return len(gzip.compress(p.read_bytes(), 9))

    files = [p for p in dist.rglob("*") if p.is_file()]
    index = dist / "index.html"
    named = {dist / m.lstrip("/") for m in re.findall(r'(?:src|href)="(/assets/[^"]+)"',
                                                      index.read_text())}
    return BundleSize(total_raw=sum(p.stat().st_size for p in files),
                      total_gzip=sum(gz(p) for p in files),
                      entry_gzip=gz(index) + sum(gz(p) for p in named if p.is_file()))
