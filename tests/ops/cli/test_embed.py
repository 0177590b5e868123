"""``gridlake embed sign``: a URL whose token the API accepts for exactly that view."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from api.embed import EmbedTokens
from infra.settings import load_settings
from ops.cli.main import app


@pytest.fixture
def home(tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRIDLAKE_HOME", str(tmp_path))
    monkeypatch.setenv("GRIDLAKE_WEB__PORT", "8443")
    return tmp_path


def sign(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["embed", "sign", *args], terminal_width=200)
    return result.exit_code, result.output


def test_sign_prints_a_url_the_api_accepts(home: Path) -> None:
    code, out = sign("--view", "load_curve", "--param", "entity_type=feeder",
                     "--param", "entity_id=FDR-0001", "--regions", "R1,R2", "--ttl", "120",
                     "--subject", "jane@portal")
    assert code == 0, out
    url = urlsplit(out.strip())
    assert f"{url.scheme}://{url.netloc}{url.path}" == "http://127.0.0.1:8443/embed/load_curve"
    token = parse_qs(url.query)["token"][0]
    grant = EmbedTokens(load_settings()).verify(token)  # same home: the generated key
    assert grant.view == "load_curve"
    assert grant.params == {"entity_type": "feeder", "entity_id": "FDR-0001"}
    assert grant.principal.regions == frozenset({"R1", "R2"})
    assert grant.principal.username == "embed:jane@portal"
    assert grant.principal.expires is not None
    assert grant.allows("GET", "/api/v1/entities/feeder/FDR-0001/load-curve", [])
    assert not grant.allows("GET", "/api/v1/entities/feeder/FDR-0002/load-curve", [])
    assert (home / "run" / "web-embed-secret").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("args", "message"), [
    (["--view", "users"], "unknown view"),
    (["--view", "load_curve", "--param", "entity_type=feeder"], "takes entity_type"),
    (["--view", "overview", "--param", "novalue"], "key=value"),
    (["--view", "overview", "--ttl", "999999"], "embed_max_ttl_s"),
])
def test_bad_requests_are_refused_clearly(home: Path, args: list[str], message: str) -> None:
    code, out = sign(*args)
    assert code == 2 and message in out, out
