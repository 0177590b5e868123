"""/docs and /redoc work on a closed network: every script, style and icon is served here."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.docs import ASSETS

#: URLs a page loads: src=/href= attributes and the url: of the Swagger UI configuration.
_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|"""
                  r"""(?:url|spec-url)\s*:\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_doc_pages_name_only_local_urls(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "http://" not in html and "https://" not in html, re.findall(r"https?://\S+", html)
    assert "cdn" not in html.lower() and "fonts.googleapis" not in html


@pytest.mark.parametrize(("page", "assets"), [
    ("/docs", ["swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"]),
    ("/redoc", ["redoc.standalone.js", "favicon.png"]),
])
def test_the_assets_a_page_names_are_served(client: TestClient, page: str,
                                            assets: list[str]) -> None:
    html = client.get(page).text
    urls = {a or b for a, b in _URL.findall(html)}
    for name in assets:
        assert f"{ASSETS}/{name}" in urls, (name, urls)
    for url in urls:
        assert url.startswith("/"), url
        r = client.get(url)
        assert r.status_code == 200, url
        assert len(r.content) > 1000, url
    js = client.get(f"{ASSETS}/{assets[0]}")
    assert "javascript" in js.headers["content-type"]
    # Swagger UI is told not to call the public validator
    if page == "/docs":
        assert '"validatorUrl": null' in html
