"""The generated Nginx configuration, the web settings, and Nginx in the stack's service list.

``nginx -t`` runs on the generated file when Debian's nginx is installed (skipped, saying
so, otherwise); the served behaviour is in ``test_nginx_live.py``.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.settings import GridLakeSettings, WebSettings
from infra.stack.manager import Stack
from infra.stack.nginx import IMMUTABLE, NginxService, frame_ancestors, nginx_path


def web(settings: GridLakeSettings, **values: object) -> GridLakeSettings:
    """``settings`` with ``web`` fields replaced."""
    return settings.model_copy(update={"web": settings.web.model_copy(update=values)})


def location(conf: str, name: str) -> str:
    """The body of ``location <name> { ... }`` (locations are not nested here)."""
    m = re.search(r"location " + re.escape(name) + r" \{(.*?)\n\s*\}", conf, re.S)
    assert m, f"no location {name} in\n{conf}"
    return m.group(1)


def test_config_has_the_directives(settings: GridLakeSettings, tmp_path: Path) -> None:
    cfg = web(settings, dist_dir=tmp_path / "dist",
              embed_allowed_origins=["https://portal.example.com"])
    conf = NginxService(cfg).nginx_conf()
    home = str(cfg.home)
    assert f"listen 127.0.0.1:{cfg.web.port};" in conf
    assert f"root {tmp_path / 'dist'};" in conf
    assert f"server {cfg.api.host}:{cfg.api.port};" in conf
    assert "daemon off;" in conf
    # every path Nginx writes is under the home: no /var, no /etc
    for directive in ("pid", "access_log", "client_body_temp_path", "proxy_temp_path",
                      "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path"):
        value = re.search(rf"^\s*{directive} (\S+);", conf, re.M)
        assert value and value.group(1).startswith(home), directive
    assert "/var/" not in conf and "/etc/" not in conf
    # gzip on the text types, never on the event stream
    assert "gzip on;" in conf
    types = re.search(r"gzip_types ([^;]+);", conf)
    assert types
    assert {"application/javascript", "text/css", "application/json",
            "image/svg+xml"} <= set(types.group(1).split())
    assert "text/event-stream" not in types.group(1)
    # history fallback, immutable assets, no-cache for the page
    root = location(conf, "/")
    assert "try_files $uri /index.html @not_built;" in root
    assert 'Cache-Control "no-cache"' in root
    assets = location(conf, "/assets/")
    assert f'Cache-Control "{IMMUTABLE}"' in assets and "try_files $uri =404;" in assets
    # frame-ancestors: allowed origins only on /embed/, X-Frame-Options elsewhere
    embed = location(conf, "/embed/")
    assert "frame-ancestors 'self' https://portal.example.com" in embed
    assert "X-Frame-Options" not in embed
    for other in (root, assets, location(conf, "/api/"), location(conf, "/api/v1/")):
        assert "\"frame-ancestors 'self'\"" in other
        assert "X-Frame-Options SAMEORIGIN always;" in other
        assert "X-Content-Type-Options nosniff always;" in other
    # the API: /api/v1/ kept, other /api/ stripped; unbuffered, HTTP/1.1, long reads
    assert "proxy_pass http://gridlake_api;" in location(conf, "/api/v1/")
    assert "proxy_pass http://gridlake_api/;" in location(conf, "/api/")
    for loc in ("/api/v1/", "/api/", "/ml/"):
        body = location(conf, loc)
        assert "proxy_buffering off;" in body
        assert "proxy_http_version 1.1;" in body
        assert f"proxy_read_timeout {cfg.web.stream_timeout_s}s;" in body
        assert 'proxy_set_header X-GridLake-User "";' in body
    # /ml/ reaches the ML service only through the API's authenticated proxy
    assert "proxy_pass http://gridlake_api/api/v1/ml/;" in location(conf, "/ml/")


def test_same_origin_only_by_default(settings: GridLakeSettings) -> None:
    conf = NginxService(settings).nginx_conf()
    assert "frame-ancestors 'self'\"" in location(conf, "/embed/")
    assert frame_ancestors([]) == "frame-ancestors 'self'"


def test_not_built_page_names_the_dist_dir(settings: GridLakeSettings, tmp_path: Path) -> None:
    conf = NginxService(web(settings, dist_dir=tmp_path / "nowhere")).nginx_conf()
    page = location(conf, "@not_built")
    assert "return 503" in page and str(tmp_path / "nowhere") in page
    assert "npm ci" in page


@pytest.mark.parametrize("origin", [
    "portal.example.com", "https://a.example.com; script-src *", "https://a b",
    "javascript:alert(1)", "https://x.example.com/path",
])
def test_bad_origins_are_refused(origin: str) -> None:
    with pytest.raises(ValidationError, match="embed_allowed_origins"):
        WebSettings(embed_allowed_origins=[origin])


def test_origins_are_normalised_and_ttl_bounded() -> None:
    assert WebSettings(embed_allowed_origins=["https://p.example.com:8443/"]
                       ).embed_allowed_origins == ["https://p.example.com:8443"]
    with pytest.raises(ValidationError, match="embed_max_ttl_s"):
        WebSettings(embed_token_ttl_s=7200, embed_max_ttl_s=3600)


def test_nginx_is_a_stack_service(settings: GridLakeSettings) -> None:
    stack = Stack(settings)
    assert [s.name for s in stack.services][-1] == "nginx"
    row = stack.service("nginx").status()
    assert row.address == f"http://127.0.0.1:{settings.web.port}"
    assert not row.healthy and row.detail == "not running"
    # without the stack's web server, up neither installs, starts nor waits for Nginx
    off = Stack(web(settings, managed=False))
    assert "nginx" not in [s.name for s in off.services]


@pytest.mark.skipif(nginx_path() is None, reason="Debian's nginx is not installed "
                    "(apt-get install nginx): `nginx -t` of the generated file not run")
def test_nginx_accepts_the_generated_config(settings: GridLakeSettings, tmp_path: Path) -> None:
    svc = NginxService(web(settings, embed_allowed_origins=["https://portal.example.com",
                                                            "http://localhost:3000"]))
    ok, output = svc.test_config()
    assert ok, output
    assert "syntax is ok" in output
    conf = Path(svc.config_file)
    assert conf.is_file() and not stat.S_IMODE(conf.stat().st_mode) & stat.S_IWOTH
