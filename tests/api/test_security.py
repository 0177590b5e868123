import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr

from api.security import (
    ALGORITHM,
    ROLE_PERMISSIONS,
    AuthError,
    Forbidden,
    Perm,
    Principal,
    RateLimiter,
    Role,
    TokenService,
    hash_password,
    persistent_secret,
    verify_password,
)
from infra.settings import GridLakeSettings

# The documented matrix (docs/api.md), written out independently of api.security.
DOCUMENTED = {
    "admin": {"indicators:read", "devices:read", "feed:read", "devices:write", "jobs:read",
              "jobs:run", "ml:score", "ml:manage", "users:manage", "audit:read"},
    "operator": {"indicators:read", "devices:read", "feed:read", "devices:write",
                 "jobs:read", "jobs:run", "ml:score"},
    "analyst": {"indicators:read", "devices:read", "feed:read", "jobs:read", "ml:score"},
    "viewer": {"indicators:read", "devices:read", "feed:read"},
}


def _tokens(settings: GridLakeSettings, secret: str = "s3cret" * 8) -> TokenService:
    settings.api.jwt_secret = SecretStr(secret)
    return TokenService(settings)


def test_role_permissions_are_the_documented_ones() -> None:
    got = {r.value: {p.value for p in perms} for r, perms in ROLE_PERMISSIONS.items()}
    assert got == DOCUMENTED


def test_password_hash_is_salted_and_verifies() -> None:
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and "correct horse" not in a
    assert verify_password("correct horse", a)
    assert not verify_password("correct hors", a)
    assert not verify_password("anything", None)
    assert not verify_password("x", "bcrypt$garbage")


def test_access_token_round_trip(settings: GridLakeSettings) -> None:
    svc = _tokens(settings)
    who = svc.principal(svc.access_token("ann", "operator", ["R2", "R1"]))
    assert who == Principal("ann", Role.OPERATOR, frozenset({"R1", "R2"}))
    assert not who.unscoped and who.sees_region("R1") and not who.sees_region("R3")
    assert not who.sees_region(None)


def test_forged_expired_and_wrong_type_tokens_are_rejected(settings: GridLakeSettings) -> None:
    svc = _tokens(settings)
    other = _tokens(settings.model_copy(deep=True), "another-secret" * 4)
    with pytest.raises(AuthError, match="invalid"):
        svc.principal(other.access_token("ann", "admin", []))
    now = datetime.now(UTC)
    expired = jwt.encode({"sub": "ann", "role": "admin", "regions": [], "typ": "access",
                          "iss": svc.issuer, "iat": now - timedelta(hours=1),
                          "exp": now - timedelta(minutes=1), "jti": "x"}, "s3cret" * 8,
                         algorithm=ALGORITHM)
    with pytest.raises(AuthError, match="expired"):
        svc.principal(expired)
    refresh, _, _ = svc.refresh_token("ann")
    with pytest.raises(AuthError, match="access"):
        svc.principal(refresh)
    # a token signed with "none" or tampered claims never passes
    header, payload, sig = svc.access_token("ann", "viewer", []).split(".")
    admin_payload = jwt.utils.base64url_encode(  # type: ignore[attr-defined]
        jwt.utils.base64url_decode(payload).replace(b'"viewer"', b'"admin"')).decode()
    with pytest.raises(AuthError):
        svc.principal(f"{header}.{admin_payload}.{sig}")
    with pytest.raises(AuthError):
        svc.principal(jwt.encode({"sub": "ann", "role": "admin"}, None, algorithm="none"))


def test_short_secret_is_refused(settings: GridLakeSettings) -> None:
    with pytest.raises(ValueError, match="jwt_secret"):
        _tokens(settings, "short")


def test_unknown_role_claim_is_rejected(settings: GridLakeSettings) -> None:
    svc = _tokens(settings)
    with pytest.raises(AuthError, match="role"):
        svc.principal(svc.access_token("ann", "superuser", []))


def test_principal_requires_permission_and_region() -> None:
    viewer = Principal("v", Role.VIEWER, frozenset({"R1"}))
    viewer.require(Perm.READ_INDICATORS)
    with pytest.raises(Forbidden, match="devices:write"):
        viewer.require(Perm.WRITE_DEVICES)
    viewer.require_region("R1", "x")
    with pytest.raises(Forbidden, match="outside"):
        viewer.require_region("R2", "transformer 'TX-9'")
    Principal("a", Role.ADMIN, frozenset()).require_region(None, "anything")


def test_rate_limiter_allows_burst_then_rate() -> None:
    lim = RateLimiter(rate=10.0, burst=3)
    assert [lim.take("u") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = lim.take("u")
    assert 0.0 < wait <= 0.1 + 1e-9
    assert lim.take("other") == 0.0  # buckets are per key
    time.sleep(0.12)
    assert lim.take("u") == 0.0


def test_persistent_secret_is_created_once(settings: GridLakeSettings, tmp_path: Path) -> None:
    first = persistent_secret(settings, "k")
    assert first == persistent_secret(settings, "k")
    assert (settings.run / "k").stat().st_mode & 0o777 == 0o600
