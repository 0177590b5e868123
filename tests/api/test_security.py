import random
import re
import string
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr, ValidationError

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
    TrustedProxies,
    WeakPassword,
    check_password,
    clean_text,
    hash_password,
    lockout_seconds,
    persistent_secret,
    verify_password,
)
from infra.settings import ApiSettings, GridLakeSettings

# The documented matrix (docs/api.md), written out independently of api.security.
DOCUMENTED = {
    "admin": {"indicators:read", "devices:read", "feed:read", "devices:write", "jobs:read",
              "jobs:run", "ml:score", "ml:manage", "users:manage", "audit:read",
              "alarms:read", "alarms:write"},
    "operator": {"indicators:read", "devices:read", "feed:read", "devices:write",
                 "jobs:read", "jobs:run", "ml:score", "alarms:read", "alarms:write"},
    "analyst": {"indicators:read", "devices:read", "feed:read", "jobs:read", "ml:score",
                "alarms:read"},
    "viewer": {"indicators:read", "devices:read", "feed:read", "alarms:read"},
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
    who = svc.principal(svc.access_token("ann", "operator", ["R2", "R1"], "e1"))
    assert who == Principal("ann", Role.OPERATOR, frozenset({"R1", "R2"}))
    assert who.epoch == "e1"
    assert not who.unscoped and who.sees_region("R1") and not who.sees_region("R3")
    assert not who.sees_region(None)


def test_forged_expired_and_wrong_type_tokens_are_rejected(settings: GridLakeSettings) -> None:
    svc = _tokens(settings)
    other = _tokens(settings.model_copy(deep=True), "another-secret" * 4)
    with pytest.raises(AuthError, match="invalid"):
        svc.principal(other.access_token("ann", "admin", [], "e"))
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
    header, payload, sig = svc.access_token("ann", "viewer", [], "e").split(".")
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
        svc.principal(svc.access_token("ann", "superuser", [], "e"))


def test_access_token_without_session_epoch_is_rejected(settings: GridLakeSettings) -> None:
    # tokens of the release before epochs: their holders must sign in again
    svc = _tokens(settings)
    now = datetime.now(UTC)
    claims = {"sub": "ann", "role": "admin", "regions": [], "typ": "access",
              "iss": svc.issuer, "iat": now, "exp": now + timedelta(minutes=5), "jti": "x"}
    for extra in ({}, {"epoch": ""}, {"epoch": 7}):
        token = jwt.encode({**claims, **extra}, "s3cret" * 8, algorithm=ALGORITHM)
        with pytest.raises(AuthError, match="epoch"):
            svc.principal(token)


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


# ---------------------------------------------------------------------- password policy
@pytest.mark.parametrize(("password", "rule"), [
    ("short", "at least 10"),
    (" " * 10, "only spaces"),
    ("\t" * 12, "control"),
    ("\x00" * 10, "control"),
    ("good-pass\x00word", "control"),
    ("right\u202eto-left-pass", "control"),  # a bidirectional override
    ("zero\u200bwidth-pass", "control"),
    ("ann.smith-2024", "username"),  # contains the username
    ("ANN.SMITHx99z", "username"),  # case-insensitively
    ("password12", "common"),
    ("Password123!", "common"),
    ("P@ssw0rd2024", "common"),
    ("qwertyuiop", "common"),
    ("1234567890", "common"),
    ("welcome2026", "common"),
    ("aaaaaaaaaaaa", "different characters"),
    ("abababababab", "different characters"),
    ("abcdabcdabcd", "different characters"),
    ("x" * 257, "at most"),
])
def test_password_policy_refuses_weak_passwords(password: str, rule: str) -> None:
    with pytest.raises(WeakPassword, match=rule):
        check_password(password, "ann.smith", 10)


def test_password_policy_accepts_good_passwords() -> None:
    for good in ("correct horse battery", "Tr0ub4dor&3x", "a-long-enough-password",
                 "zäh-Grün-7-Öl", "ann-is-not-a-username"):
        check_password(good, "ann.smith", 10)
    # a short username is only refused as the whole password, not inside another word
    check_password("banana-bread-42", "an", 10)
    with pytest.raises(WeakPassword, match="username"):
        check_password("operator1234", "operator1234", 10)
    # the configured minimum stays the length rule
    with pytest.raises(WeakPassword, match="at least 14"):
        check_password("correct horse", "ann", 14)


def test_password_policy_on_random_inputs() -> None:
    # seeded random passwords: strong ones pass, one invisible character or the username
    # anywhere in them always fails
    rng = random.Random(19)
    alphabet = string.ascii_letters + string.digits + "-_.!#%&*+=?"
    invisible = ["\x00", "\x07", "\n", "\r", "\t", "\x7f", "\u200b", "\u202e", "\u2066",
                 "\ufeff", "\u2028"]
    for _ in range(300):
        pw = "".join(rng.choice(alphabet) for _ in range(rng.randint(12, 40)))
        if len(set(pw)) < 5:
            continue
        check_password(pw, "operator7", 10)
        at = rng.randint(0, len(pw))
        with pytest.raises(WeakPassword, match="control"):
            check_password(pw[:at] + rng.choice(invisible) + pw[at:], "operator7", 10)
        name = "".join(rng.choice([c.upper(), c]) for c in "operator7")
        with pytest.raises(WeakPassword, match="username"):
            check_password(pw[:at] + name + pw[at:], "operator7", 10)


# ------------------------------------------------------------------------ audited text
def _unescape(text: str) -> str:
    return re.sub(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})",
                  lambda m: "\\" if m[1] == "\\" else chr(int(m[1][1:], 16)), text)


def test_clean_text_escapes_invisible_characters_and_caps_length() -> None:
    assert clean_text("op1", 64) == "op1"
    assert clean_text("adm\u202eni", 64) == "adm\\u202eni"
    assert clean_text("a\x00b\nc\\d", 64) == "a\\x00b\\x0ac\\\\d"
    assert clean_text("x" * 100, 10) == "x" * 9 + "…"
    assert clean_text("\x00" * 10, 9) == "\\x00\\x00…"  # never half an escape


def test_clean_text_on_random_inputs() -> None:
    rng = random.Random(7)
    pool = list("abcXYZ019 -_.@\\/\"'<>é中") + ["\x00", "\x1b", "\n", "\u202e", "\u2066",
                                                "\u200f", "\ud800", "\U0001f600", "\x85"]
    for _ in range(500):
        raw = "".join(rng.choice(pool) for _ in range(rng.randint(0, 90)))
        limit = rng.randint(1, 80)
        out = clean_text(raw, limit)
        assert len(out) <= limit
        assert not any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Zl", "Zp"}
                       for ch in out), repr(out)
        out.encode("utf-8")  # storable: no lone surrogate left
        if not out.endswith("…"):
            assert _unescape(out) == raw  # nothing lost, only escaped


# --------------------------------------------------------------------- sign-in lockout
def test_lockout_doubles_from_the_threshold_up_to_the_cap() -> None:
    assert [lockout_seconds(n, 5, 30, 900) for n in range(1, 11)] == [
        0, 0, 0, 0, 30, 60, 120, 240, 480, 900]
    assert lockout_seconds(10_000, 5, 30, 900) == 900  # no overflow


# ------------------------------------------------------------------ client addresses
def test_forwarded_for_is_ignored_without_trusted_proxies() -> None:
    none = TrustedProxies([])
    assert none.client("127.0.0.1", ["6.6.6.6"]) == "127.0.0.1"
    assert none.client(None, ["6.6.6.6"]) == "unknown"


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "::1"])
    # an untrusted peer cannot choose its address with the header
    assert proxies.client("192.0.2.9", ["6.6.6.6"]) == "192.0.2.9"
    # from a trusted proxy: the right-most address that is not a proxy
    assert proxies.client("10.1.2.3", ["203.0.113.7"]) == "203.0.113.7"
    assert proxies.client("10.1.2.3", ["6.6.6.6, 203.0.113.7, 10.9.9.9"]) == "203.0.113.7"
    assert proxies.client("10.1.2.3", ["6.6.6.6", "203.0.113.7"]) == "203.0.113.7"
    assert proxies.client("::1", ["[2001:db8::5]:443"]) == "2001:db8::5"
    assert proxies.client("10.1.2.3", ["203.0.113.7:5000"]) == "203.0.113.7"
    assert proxies.client("::ffff:10.0.0.1", ["198.51.100.1"]) == "198.51.100.1"
    # only proxies in the chain: the first; garbage or nothing: the peer itself
    assert proxies.client("10.1.2.3", ["10.0.0.9, 10.0.0.8"]) == "10.0.0.9"
    assert proxies.client("10.1.2.3", ["not-an-ip"]) == "10.1.2.3"
    assert proxies.client("10.1.2.3", []) == "10.1.2.3"


def test_trusted_proxies_setting_is_validated() -> None:
    assert ApiSettings(trusted_proxies=["10.1.2.3/8", " ::1 "]).trusted_proxies == [
        "10.0.0.0/8", "::1/128"]
    assert ApiSettings().trusted_proxies == []
    with pytest.raises(ValidationError, match="trusted_proxies"):
        ApiSettings(trusted_proxies=["localhost"])
    with pytest.raises(ValidationError, match="login_lockout_max_s"):
        ApiSettings(login_lockout_s=60, login_lockout_max_s=30)
