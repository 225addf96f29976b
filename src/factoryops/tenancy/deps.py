"""FastAPI dependencies: who is calling, and a database session scoped to their factory."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from factoryops.core import logs
from factoryops.core.errors import ApiError
from factoryops.core.security import decode_access_token
from factoryops.tenancy.service import Principal, TenancyService

bearer = HTTPBearer(auto_error=False, description="Access token from /api/v1/auth/login")


def tenancy(request: Request) -> TenancyService:
    service: TenancyService = request.app.state.tenancy
    return service


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def current_principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise ApiError(
            401,
            "not_authenticated",
            "Sign in first: this request needs a Bearer access token.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = _authenticate(tenancy(request), credentials.credentials)
    request.state.principal = principal
    logs.annotate(factory_id=principal.factory_id)  # this request's log lines name the token's factory
    return principal


def _authenticate(service: TenancyService, token: str) -> Principal:
    """The caller behind an access token: its signature and expiry, then its session and user as stored now."""
    claims = decode_access_token(service.settings.auth, token)
    return service.load_principal(claims.kind, claims.subject_id, claims.factory_id, claims.session_id)


def reauthenticate(request: Request) -> Principal:
    """Checks a request that is still being answered (the live stream) as if it came in now.

    The same access token is verified again (a token that has since expired answers
    ``token_expired``) and its session and user are read again (a revoked session, a disabled
    user or a deactivated factory answer ``session_expired``): raises the :class:`ApiError` a new
    request would get. Costs a token check and three primary-key reads.
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "not_authenticated", "Sign in first: this request needs a Bearer access token.")
    return _authenticate(tenancy(request), token.strip())


def factory_user(principal: Principal = Depends(current_principal)) -> Principal:
    """A signed-in user of a factory; the platform root has no access to factory data."""
    if principal.is_root or principal.factory_id is None:
        raise ApiError(
            403,
            "factory_user_required",
            "The platform root cannot read a factory's data; sign in as one of the factory's users.",
        )
    return principal


def factory_of(principal: Principal) -> str:
    """The factory of a caller admitted by :func:`factory_user` (which guarantees there is one)."""
    if principal.factory_id is None:
        raise ApiError(403, "factory_user_required", "Sign in as one of the factory's users.")
    return principal.factory_id


def super_admin(principal: Principal = Depends(factory_user)) -> Principal:
    if not principal.is_super_admin:
        raise ApiError(403, "forbidden", "Only the factory's super admins may do this.")
    return principal


def platform_root(principal: Principal = Depends(current_principal)) -> Principal:
    if not principal.is_root:
        raise ApiError(403, "forbidden", "Only the platform root may do this.")
    return principal


def require_permission(permission: str):  # type: ignore[no-untyped-def]
    """A dependency that admits super admins and admins granted ``permission``."""

    def check(principal: Principal = Depends(factory_user)) -> Principal:
        if not principal.can(permission):
            raise ApiError(
                403, "forbidden", f"Your account lacks the '{permission}' permission; ask a super admin to grant it."
            )
        return principal

    return check


def factory_db(request: Request, principal: Principal = Depends(factory_user)) -> Iterator[Session]:
    """A session that can only see and write the caller's factory.

    Routes take it with ``Depends(factory_db, scope="function")``: the transaction commits when
    the route returns and before the answer leaves, so a client never hears "created" for
    something that is not yet (or never) committed.
    """
    assert principal.factory_id is not None
    with tenancy(request).db.factory_session(principal.factory_id) as session:
        yield session
