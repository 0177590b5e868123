"""``gridlake embed``: signed embed URLs of dashboard views (docs/dashboard.md, Embedding).

``sign --view load_curve --param entity_type=feeder --param entity_id=FDR-0001
[--regions R1,R2] [--ttl 300] [--subject portal-user]`` prints
``<web.base_url>/embed/<view>?token=<JWT>``: what a portal's server does for each page
view, with the key of ``web.embed_secret`` (or the one generated into the home).
"""

from __future__ import annotations

from urllib.parse import quote

import typer

app = typer.Typer(name="embed", help="Signed embed URLs of dashboard views.",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def _main() -> None:
    """Signed embed URLs of dashboard views."""


def _params(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r}: expected key=value", param_hint="--param")
        if key.strip() in out:
            raise typer.BadParameter(f"{key.strip()!r} given twice", param_hint="--param")
        out[key.strip()] = value.strip()
    return out


@app.command("sign")
def sign_url(
    view: str = typer.Option(..., help="The view: load_curve, asset_health or overview."),
    param: list[str] = typer.Option([], "--param", help="A view parameter, key=value "
                                    "(repeat): load_curve takes entity_type and entity_id, "
                                    "asset_health asset_type and asset_id, overview none."),
    regions: str | None = typer.Option(None, help="Comma-separated region scope; default: "
                                       "every region."),
    ttl: int | None = typer.Option(None, min=1, help="Lifetime in seconds; default: "
                                   "web.embed_token_ttl_s."),
    subject: str = typer.Option("portal-user", help="Who the portal shows it to (the "
                                "token's sub, in the API's logs)."),
) -> None:
    """Print a signed URL of one dashboard view for a portal's iframe."""
    # lazy: the API's modules import FastAPI; `gridlake embed --help` must stay instant
    from api.embed import EmbedTokenError, embed_secret, sign

    # lazy: the settings import pydantic-settings (see above)
    from infra.settings import load_settings

    settings = load_settings()
    lifetime = ttl or settings.web.embed_token_ttl_s
    if lifetime > settings.web.embed_max_ttl_s:
        raise typer.BadParameter(f"at most web.embed_max_ttl_s ({settings.web.embed_max_ttl_s})",
                                 param_hint="--ttl")
    scope = None if regions is None else [r.strip() for r in regions.split(",") if r.strip()]
    try:
        token = sign(embed_secret(settings), view, _params(param), regions=scope,
                     ttl_s=lifetime, subject=subject)
    except (EmbedTokenError, ValueError) as err:
        raise typer.BadParameter(str(err)) from None
    typer.echo(f"{settings.web.base_url}/embed/{quote(view)}?token={token}")
