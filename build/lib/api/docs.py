"""The interactive documentation (``/docs``, ``/redoc``) served entirely by the API.

FastAPI's own pages load Swagger UI and ReDoc from a public CDN, so on a closed network
they stay blank. Here the scripts and styles come from the installed ``fastapi-offline``
package (MIT; it bundles Swagger UI, Apache-2.0, and ReDoc, MIT) and are served under
:data:`ASSETS`; the pages name only URLs of this service.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Where the bundled assets are served.
ASSETS = "/docs-assets"
#: The installed assets (swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon).
STATIC_DIR = Path(fastapi_offline.__file__).parent / "static"
#: Swagger UI options: no calls to the public validator service.
SWAGGER_PARAMETERS = {"validatorUrl": None, "persistAuthorization": True}


def install_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve ``docs_url`` and ``redoc_url`` from local assets (create the app without them).

    Raises:
        RuntimeError: The package's assets are missing (a broken install).

    """
    missing = [n for n in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js")
               if not (STATIC_DIR / n).is_file()]
    if missing:
        raise RuntimeError(f"fastapi-offline lacks {', '.join(missing)} in {STATIC_DIR}")
    app.mount(ASSETS, StaticFiles(directory=STATIC_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = f"{docs_url}/oauth2-redirect"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}", title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{redirect_url}",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            swagger_ui_parameters=SWAGGER_PARAMETERS)

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}", title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png", with_google_fonts=False)
