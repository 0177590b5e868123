"""Nginx (Debian's ``nginx``) in front of the dashboard, the API and the ML service.

One unprivileged Nginx master process (plus one worker) with a configuration generated from
``settings.web``, ``settings.api`` and ``settings.ml``; everything it writes (temp files,
logs, its own pid file) is under the GridLake home, so it needs neither ``/etc`` nor
``/var``. It serves:

* ``/``: the built single-page app (``web.dist_dir``) with history-API fallback to
  ``index.html`` (``no-cache``); a clear "not built" page (503) while it is missing;
* ``/assets/``: the hashed assets, ``Cache-Control: public, max-age=31536000, immutable``;
* ``/embed/<view>``: the app's ``index.html`` with ``Content-Security-Policy:
  frame-ancestors 'self' <web.embed_allowed_origins>`` (every other answer carries
  ``frame-ancestors 'self'`` and ``X-Frame-Options: SAMEORIGIN``);
* ``/api/``: the API. ``/api/v1/...`` goes through as it is (the API's own paths already
  start with ``/api``); any other ``/api/<path>`` reaches the API as ``/<path>``
  (``/api/docs`` → ``/docs``). Unbuffered, HTTP/1.1, long read timeout: the event stream
  passes through as it is written (``text/event-stream`` is never gzipped);
* ``/ml/``: the ML service through the API's authenticated proxy (``/ml/<path>`` →
  ``/api/v1/ml/<path>``). The ML service itself trusts identity headers that only the API
  may set, so it is never exposed to browsers directly; those headers are also removed
  from every request Nginx forwards.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
import subprocess
import urllib.error
import urllib.request

from infra.settings import GridLakeSettings
from infra.stack.base import Health, Service, url_error_text
from infra.stack.errors import PrerequisiteError
from infra.stack.prereq import PortClaim

logger = logging.getLogger(__name__)

#: Path of the health answer (served by Nginx itself, no upstream).
HEALTH_PATH = "/-/nginx-health"
#: Cache header of hashed assets (their name changes with their content).
IMMUTABLE = "public, max-age=31536000, immutable"
#: Compressed content types (``text/html`` always is); never ``text/event-stream``.
GZIP_TYPES = ("text/plain", "text/css", "text/csv", "text/xml", "application/javascript",
              "text/javascript", "application/json", "application/xml", "image/svg+xml",
              "application/manifest+json", "font/ttf", "application/wasm")
#: Headers only the API may set towards the ML service; removed from what browsers send.
IDENTITY_HEADERS = ("X-GridLake-User", "X-GridLake-Role", "X-GridLake-Regions")
#: Our own type map (Debian's /etc/nginx/mime.types is not needed).
MIME_TYPES = {
    "text/html": "html htm", "text/css": "css", "text/plain": "txt", "text/csv": "csv",
    "application/javascript": "js mjs", "application/json": "json map",
    "application/manifest+json": "webmanifest", "image/svg+xml": "svg svgz",
    "image/png": "png", "image/jpeg": "jpg jpeg", "image/gif": "gif", "image/webp": "webp",
    "image/x-icon": "ico", "font/woff": "woff", "font/woff2": "woff2", "font/ttf": "ttf",
    "application/wasm": "wasm", "application/xml": "xml",
}


def nginx_path() -> str | None:
    """Path of ``nginx`` (``PATH`` or ``/usr/sbin``), if installed."""
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )


def ensure_nginx() -> str:
    """Install Debian's ``nginx`` with apt-get when missing; return its path.

    Raises:
        PrerequisiteError: When it is missing and cannot be installed.

    """
    found = nginx_path()
    if found:
        return found
    hint = ("install it (`apt-get install -y --no-install-recommends nginx`) or run without "
            "the dashboard's web server: GRIDLAKE_WEB__MANAGED=false")
    apt = shutil.which("apt-get")
    if apt is None:
        raise PrerequisiteError(f"nginx not found and apt-get is unavailable: {hint}")
    if os.geteuid() != 0:
        raise PrerequisiteError(f"nginx not found and installing needs root: {hint}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "--no-install-recommends", "nginx"]
    logger.info("installing nginx with apt-get")
    result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        subprocess.run([apt, "update"], env=env, capture_output=True, check=False)
        result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    found = nginx_path()
    if result.returncode != 0 or not found:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise PrerequisiteError(f"apt-get install nginx failed ({last}): {hint}")
    return found


def frame_ancestors(origins: list[str]) -> str:
    """The CSP of a page that ``origins`` (and the dashboard itself) may frame."""
    return " ".join(["frame-ancestors", "'self'", *origins])


def _quote(text: str) -> str:
    """An Nginx string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "${dollar}") + '"'


NOT_BUILT_PAGE = (
    "<!doctype html><html><head><meta charset=utf-8><title>GridLake dashboard not built"
    "</title></head><body style='font-family:sans-serif;max-width:40em;margin:3em auto'>"
    "<h1>The GridLake dashboard is not built</h1><p>Nginx is running, but the web app's "
    "build output was not found in <code>{dist}</code>.</p><p>Build it with "
    "<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>; "
    "this page is replaced as soon as it exists, without a restart.</p><p>The API answers "
    "under <a href='/api/docs'>/api/docs</a>.</p></body></html>"
)


API_DOWN = ('{"detail": "the API is not reachable through Nginx (not running, or too slow '
            'to answer): start it with `gridlake run` or `gridlake api start`"}')


class NginxService(Service):
    """``nginx -c <generated conf>`` in the foreground (``daemon off``)."""

    name = "nginx"
    role = "web"
    ready_timeout_s = 20.0
    stop_timeout_s = 15.0

    def __init__(self, settings: GridLakeSettings) -> None:
        super().__init__(settings)
        self.cfg = settings.web

    @property
    def managed(self) -> bool:
        """Whether GridLake runs Nginx."""
        return self.cfg.managed

    @property
    def address(self) -> str:
        """The dashboard's URL."""
        return self.cfg.base_url

    @property
    def config_file(self) -> str:
        """Generated ``nginx.conf``; its path also marks the process as ours."""
        return str(self.conf_dir / "nginx.conf")

    @property
    def marker(self) -> str:
        """The config path: it is on the master's command line."""
        return self.config_file

    def ports(self) -> list[PortClaim]:
        """Return the dashboard's port."""
        return [PortClaim(self.cfg.host, self.cfg.port, self.name, "http", "GRIDLAKE_WEB__PORT")]

    # -- configuration ---------------------------------------------------------------------
    def _headers(self, csp: str, *, frame_options: bool = True,
                 cache: str | None = None) -> list[str]:
        """``add_header`` lines of one location.

        Nginx does not inherit them into a location that has its own, so each location
        gets the full set.
        """
        lines = ["add_header X-Content-Type-Options nosniff always;",
                 f"add_header Content-Security-Policy {_quote(csp)} always;",
                 "add_header Referrer-Policy same-origin always;"]
        if frame_options:
            lines.append("add_header X-Frame-Options SAMEORIGIN always;")
        if cache:
            # not "always": a 404 must not be cached for a year
            lines.append(f"add_header Cache-Control {_quote(cache)};")
        return lines

    def _proxy(self, upstream: str, *, body_bytes: int) -> list[str]:
        """Directives of a location that proxies to ``upstream`` (unbuffered, HTTP/1.1)."""
        lines = [
            f"proxy_pass {upstream};",
            "proxy_http_version 1.1;",
            'proxy_set_header Connection "";',
            "proxy_set_header Host $http_host;",
            "proxy_set_header X-Real-IP $remote_addr;",
            "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
            "proxy_set_header X-Forwarded-Proto $scheme;",
            # answers go out as they come: the event stream (and large CSV pages) are not
            # held back; FastAPI also sends X-Accel-Buffering: no on the stream
            "proxy_buffering off;",
            "proxy_cache off;",
            f"proxy_read_timeout {self.cfg.stream_timeout_s}s;",
            f"proxy_send_timeout {self.cfg.stream_timeout_s}s;",
            f"client_max_body_size {body_bytes};",
            # Nginx's own 502/504 (API down or too slow) in the API's error schema
            "error_page 502 504 @api_down;",
        ]
        lines += [f'proxy_set_header {h} "";' for h in IDENTITY_HEADERS]
        return lines

    def nginx_conf(self) -> str:
        """Content of ``nginx.conf``."""
        s = self.settings
        own = frame_ancestors([])
        embed = frame_ancestors(self.cfg.embed_allowed_origins)
        tmp = self.data_dir / "tmp"
        bind = s.network.bind_host or self.cfg.host
        api_body = max(s.api.max_body_bytes, s.api.ml_max_body_bytes)
        mime = "\n".join(f"    {t} {ext};" for t, ext in MIME_TYPES.items())

        def block(name: str, lines: list[str], indent: str = "    ") -> str:
            inner = "\n".join(f"{indent}    {line}" for line in lines)
            return f"{indent}{name} {{\n{inner}\n{indent}}}"

        locations = [
            block(f"location = {HEALTH_PATH}", [
                "access_log off;", "default_type text/plain;", 'return 200 "ok\\n";']),
            block("location /", [
                *self._headers(own, cache="no-cache"),
                "try_files $uri /index.html @not_built;"]),
            block("location /assets/", [
                *self._headers(own, cache=IMMUTABLE),
                # a missing asset is a 404, never the app's HTML under a .js name
                "try_files $uri =404;"]),
            block("location /embed/", [
                *self._headers(embed, frame_options=False, cache="no-cache"),
                "try_files /index.html @not_built;"]),
            block("location @not_built", [
                *self._headers(own, cache="no-cache"),
                "default_type text/html;",
                f"return 503 {_quote(NOT_BUILT_PAGE.format(dist=self.cfg.dist))};"]),
            block("location @api_down", [
                *self._headers(own),
                "default_type application/json;",
                f"return 502 {_quote(API_DOWN)};"]),
            block("location /api/v1/", [
                *self._headers(own),
                *self._proxy("http://gridlake_api", body_bytes=api_body)]),
            block("location /api/", [
                *self._headers(own),
                *self._proxy("http://gridlake_api/", body_bytes=api_body)]),
            block("location /ml/", [
                *self._headers(own),
                *self._proxy("http://gridlake_api/api/v1/ml/",
                             body_bytes=s.api.ml_max_body_bytes)]),
        ]
        user = ""
        if os.geteuid() == 0:
            # a root master would switch its workers to "nobody", who may read neither the
            # app nor the home: they run as the user who started the stack instead
            user = (f"user {pwd.getpwuid(os.geteuid()).pw_name} "
                    f"{grp.getgrgid(os.getegid()).gr_name};\n")
        gzip_types = " ".join(GZIP_TYPES)
        return f"""# Generated by GridLake from settings.web/api/ml; edits are overwritten.
{user}daemon off;
master_process on;
worker_processes 1;
pid {self.conf_dir / "nginx-master.pid"};
error_log stderr warn;

events {{
    worker_connections {self.cfg.worker_connections};
}}

http {{
    types {{
{mime}
    }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types text/css text/plain application/javascript application/json image/svg+xml;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    access_log {s.logs / "nginx-access.log"};
    client_body_temp_path {tmp / "client_body"};
    proxy_temp_path {tmp / "proxy"};
    fastcgi_temp_path {tmp / "fastcgi"};
    uwsgi_temp_path {tmp / "uwsgi"};
    scgi_temp_path {tmp / "scgi"};

    gzip on;
    gzip_comp_level 5;
    gzip_min_length 512;
    gzip_proxied any;
    gzip_vary on;
    gzip_types {gzip_types};

    upstream gridlake_api {{
        server {s.api.host}:{s.api.port};
        keepalive 32;
    }}
    geo $dollar {{ default "$"; }}

    server {{
        listen {bind}:{self.cfg.port};
        server_name _;
        root {self.cfg.dist};
        index index.html;

{chr(10).join("    " + loc.replace(chr(10), chr(10) + "    ") for loc in locations)}
    }}
}}
"""

    def prepare(self, java: str) -> None:
        """Write ``nginx.conf`` and create the temp directories."""
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.data_dir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        self.settings.logs.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "nginx.conf").write_text(self.nginx_conf())
        if not (self.cfg.dist / "index.html").is_file():
            logger.warning("the dashboard is not built (%s missing): / explains how to build "
                           "it", self.cfg.dist / "index.html")

    def command(self, java: str) -> list[str]:
        """``nginx -p <conf dir> -e stderr -c <conf>`` (``java`` is unused)."""
        binary = nginx_path()
        if binary is None:
            raise PrerequisiteError("nginx not found: run `gridlake setup`")
        return [binary, "-p", str(self.conf_dir), "-e", "stderr", "-c", self.config_file]

    def test_config(self) -> tuple[bool, str]:
        """``nginx -t`` of the generated configuration: (ok, its output)."""
        binary = nginx_path()
        if binary is None:
            return False, "nginx not installed"
        self.prepare("")
        result = subprocess.run(
            [binary, "-t", "-p", str(self.conf_dir), "-e", "stderr", "-c", self.config_file],
            capture_output=True, text=True, check=False)
        return result.returncode == 0, (result.stderr or result.stdout).strip()

    def health(self) -> Health:
        """GET the health path Nginx answers itself."""
        host = "127.0.0.1" if self.cfg.host in ("0.0.0.0", "") else self.cfg.host
        url = f"http://{host}:{self.cfg.port}{HEALTH_PATH}"
        try:
            with urllib.request.urlopen(url, timeout=2.0) as resp:  # noqa: S310
                ok = resp.status == 200
        except (OSError, urllib.error.URLError) as err:
            return Health(False, f"{self.address} unreachable: {url_error_text(err)}")
        built = (self.cfg.dist / "index.html").is_file()
        return Health(ok, "serving the dashboard" if built else "up; dashboard not built")
