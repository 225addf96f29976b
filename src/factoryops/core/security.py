"""Passwords (bcrypt), the password policy, and signed session tokens (JWT, HS256)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import bcrypt
import jwt

from factoryops.core.errors import ApiError
from factoryops.core.settings import AuthSettings

_DUMMY_HASH = bcrypt.hashpw(b"timing-equaliser", bcrypt.gensalt(4))


def hash_password(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-ish time: an unknown account still pays for one bcrypt check."""
    candidate = password.encode()[:72]
    if not password_hash:
        bcrypt.checkpw(candidate, _DUMMY_HASH)
        return False
    try:
        return bcrypt.checkpw(candidate, password_hash.encode())
    except ValueError:
        return False


def password_problems(password: str, email: str, min_length: int) -> list[str]:
    """What is wrong with a password under the policy; empty when it is acceptable."""
    problems = []
    if len(password) < min_length:
        problems.append(f"must be at least {min_length} characters long")
    if len(password.encode()) > 72:
        problems.append("must be at most 72 bytes long")
    if not re.search(r"[A-Za-z]", password) or not re.search(r"\d", password):
        problems.append("must contain at least one letter and one digit")
    local = email.split("@", 1)[0].lower()
    if len(local) >= 3 and local in password.lower():
        problems.append("must not contain the email address")
    return problems


def check_password_policy(password: str, email: str, min_length: int, field_name: str) -> None:
    problems = password_problems(password, email, min_length)
    if problems:
        raise ApiError(
            422,
            "weak_password",
            "The password does not meet the password policy: " + "; ".join(problems) + ".",
            details=[{"field": field_name, "message": p} for p in problems],
        )


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_password() -> str:
    """A random password that always meets the policy."""
    return secrets.token_urlsafe(12) + str(secrets.randbelow(10)) + "a"


@dataclass(frozen=True)
class TokenClaims:
    """What a verified access token says about its bearer."""

    kind: str  # factory_user | platform_root
    subject_id: str
    session_id: str
    factory_id: str | None
    role: str
    permissions: list[str] = field(default_factory=list)


def issue_access_token(settings: AuthSettings, claims: TokenClaims, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    payload: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "sub": claims.subject_id,
        "user_id": claims.subject_id,
        "kind": claims.kind,
        "sid": claims.session_id,
        "factory_id": claims.factory_id,
        "role": claims.role,
        "permissions": claims.permissions,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=settings.access_token_minutes)).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def decode_access_token(settings: AuthSettings, token: str) -> TokenClaims:
    try:
        payload = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise ApiError(401, "token_expired", "Your session has expired; sign in again or renew it.") from exc
    except jwt.PyJWTError as exc:
        raise ApiError(401, "invalid_token", "The access token is not valid.") from exc
    kind = payload.get("kind")
    if kind not in ("factory_user", "platform_root") or (kind == "factory_user" and not payload.get("factory_id")):
        raise ApiError(401, "invalid_token", "The access token is not valid.")
    return TokenClaims(
        kind=kind,
        subject_id=str(payload["sub"]),
        session_id=str(payload.get("sid", "")),
        factory_id=payload.get("factory_id"),
        role=str(payload.get("role", "")),
        permissions=list(payload.get("permissions") or []),
    )
