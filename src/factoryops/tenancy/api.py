"""Routes: public factory list, sign-in and sessions, the factory's users and audit log, the root console."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from factoryops.core.errors import ApiError
from factoryops.core.pagination import Page, PageParams, page_params
from factoryops.tenancy import schemas
from factoryops.tenancy.deps import (
    client_ip,
    current_principal,
    factory_db,
    factory_user,
    platform_root,
    super_admin,
    tenancy,
)
from factoryops.tenancy.models import ALL_PERMISSIONS, Factory
from factoryops.tenancy.service import Principal, TenancyService, audit, user_out

public = APIRouter(tags=["public"])
auth = APIRouter(prefix="/auth", tags=["auth"])
factory = APIRouter(tags=["factory"])
users = APIRouter(prefix="/users", tags=["users"])
platform = APIRouter(prefix="/platform", tags=["platform"])


def _login_throttle(request: Request) -> None:
    wait = request.app.state.login_limiter.hit(client_ip(request))
    if wait:
        raise ApiError(
            429,
            "too_many_attempts",
            f"Too many sign-in attempts; wait {int(wait) + 1} seconds.",
            headers={"Retry-After": str(int(wait) + 1)},
        )


@public.get(
    "/public/factories", response_model=Page[schemas.FactoryBrief], summary="Factories for the sign-in dropdown"
)
def list_public_factories(
    params: PageParams = Depends(page_params), svc: TenancyService = Depends(tenancy)
) -> Page[schemas.FactoryBrief]:
    items, total = svc.list_factories_public(params)
    return Page(items=items, total=total, limit=params.limit, offset=params.offset)


@public.get("/meta/permissions", response_model=schemas.PermissionsOut, summary="Permission flags an admin can hold")
def list_permissions() -> schemas.PermissionsOut:
    return schemas.PermissionsOut(permissions=list(ALL_PERMISSIONS))


@auth.post(
    "/login", response_model=schemas.TokenPair, summary="Sign in to a factory", dependencies=[Depends(_login_throttle)]
)
def login(body: schemas.LoginRequest, request: Request, svc: TenancyService = Depends(tenancy)) -> schemas.TokenPair:
    return svc.login(body.factory, body.email, body.password, client_ip(request))


@auth.post(
    "/root/login",
    response_model=schemas.TokenPair,
    summary="Sign in as the platform root",
    dependencies=[Depends(_login_throttle)],
)
def root_login(
    body: schemas.RootLoginRequest, request: Request, svc: TenancyService = Depends(tenancy)
) -> schemas.TokenPair:
    return svc.root_login(body.email, body.password, client_ip(request))


@auth.post("/refresh", response_model=schemas.TokenPair, summary="Renew a session without the password")
def refresh(body: schemas.RefreshRequest, svc: TenancyService = Depends(tenancy)) -> schemas.TokenPair:
    return svc.refresh(body.refresh_token)


@auth.post("/logout", status_code=204, response_class=Response, summary="End a session")
def logout(body: schemas.RefreshRequest, svc: TenancyService = Depends(tenancy)) -> Response:
    svc.logout(body.refresh_token)
    return Response(status_code=204)


@auth.get("/me", response_model=schemas.PrincipalOut, summary="Who am I")
def me(principal: Principal = Depends(current_principal)) -> schemas.PrincipalOut:
    return principal.out()


@auth.post("/change-password", status_code=204, response_class=Response, summary="Change my password")
def change_password(
    body: schemas.PasswordChange,
    request: Request,
    principal: Principal = Depends(current_principal),
    svc: TenancyService = Depends(tenancy),
) -> Response:
    svc.change_password(principal, body.current_password, body.new_password, client_ip(request))
    return Response(status_code=204)


@factory.get("/factory", response_model=schemas.FactoryOut, summary="My factory")
def get_factory(
    principal: Principal = Depends(factory_user), s: Session = Depends(factory_db, scope="function")
) -> schemas.FactoryOut:
    row = s.get(Factory, principal.factory_id)
    if row is None:
        raise ApiError(404, "not_found", "The factory does not exist.")
    return schemas.FactoryOut.model_validate(row)


@factory.patch("/factory", response_model=schemas.FactoryOut, summary="Update my factory's details")
def update_factory(
    body: schemas.FactoryUpdate,
    request: Request,
    principal: Principal = Depends(super_admin),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.FactoryOut:
    row = s.get(Factory, principal.factory_id)
    if row is None:
        raise ApiError(404, "not_found", "The factory does not exist.")
    changes = body.model_dump(exclude_none=True)
    for key, value in changes.items():
        setattr(row, key, value)
    if changes:
        audit(s, "factory_updated", principal, "factory", row.id, client_ip(request), changes=changes)
    return schemas.FactoryOut.model_validate(row)


@factory.get("/audit-events", response_model=Page[schemas.AuditEventOut], summary="The factory's audit log")
def list_audit_events(
    action: str | None = Query(None, max_length=64, description="Only events of this action."),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(super_admin),
    s: Session = Depends(factory_db, scope="function"),
    svc: TenancyService = Depends(tenancy),
) -> Page[schemas.AuditEventOut]:
    rows, total = svc.list_audit(s, params, action)
    return Page(
        items=[schemas.AuditEventOut.model_validate(r) for r in rows],
        total=total,
        limit=params.limit,
        offset=params.offset,
    )


@users.get("", response_model=Page[schemas.UserOut], summary="The factory's users")
def list_users(
    q: str | None = Query(None, max_length=200, description="Search in email and name."),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(super_admin),
    s: Session = Depends(factory_db, scope="function"),
    svc: TenancyService = Depends(tenancy),
) -> Page[schemas.UserOut]:
    items, total = svc.list_users(s, params, q)
    return Page(items=items, total=total, limit=params.limit, offset=params.offset)


@users.post("", response_model=schemas.UserOut, status_code=201, summary="Create a user")
def create_user(
    body: schemas.UserCreate,
    request: Request,
    principal: Principal = Depends(super_admin),
    s: Session = Depends(factory_db, scope="function"),
    svc: TenancyService = Depends(tenancy),
) -> schemas.UserOut:
    return svc.create_user(s, principal, body, client_ip(request))


@users.get("/{user_id}", response_model=schemas.UserOut, summary="One user")
def get_user(
    user_id: str,
    _: Principal = Depends(super_admin),
    s: Session = Depends(factory_db, scope="function"),
    svc: TenancyService = Depends(tenancy),
) -> schemas.UserOut:
    return user_out(svc.get_user(s, user_id))


@users.patch("/{user_id}", response_model=schemas.UserOut, summary="Change a user's name, role, permissions or status")
def update_user(
    user_id: str,
    body: schemas.UserUpdate,
    request: Request,
    principal: Principal = Depends(super_admin),
    s: Session = Depends(factory_db, scope="function"),
    svc: TenancyService = Depends(tenancy),
) -> schemas.UserOut:
    return svc.update_user(s, principal, user_id, body, client_ip(request))


@users.post("/{user_id}/reset-password", response_model=schemas.UserOut, summary="Set a new password for a user")
def reset_password(
    user_id: str,
    body: schemas.PasswordReset,
    request: Request,
    principal: Principal = Depends(super_admin),
    s: Session = Depends(factory_db, scope="function"),
    svc: TenancyService = Depends(tenancy),
) -> schemas.UserOut:
    return svc.reset_password(s, principal, user_id, body.new_password, client_ip(request))


@platform.get("/factories", response_model=Page[schemas.PlatformFactoryOut], summary="All factories (root)")
def platform_list_factories(
    params: PageParams = Depends(page_params),
    _: Principal = Depends(platform_root),
    svc: TenancyService = Depends(tenancy),
) -> Page[schemas.PlatformFactoryOut]:
    items, total = svc.platform_list_factories(params)
    return Page(items=items, total=total, limit=params.limit, offset=params.offset)


@platform.post(
    "/factories",
    response_model=schemas.PlatformFactoryOut,
    status_code=201,
    summary="Create a factory and its first super admin (root)",
)
def platform_create_factory(
    body: schemas.FactoryCreate,
    request: Request,
    principal: Principal = Depends(platform_root),
    svc: TenancyService = Depends(tenancy),
) -> schemas.PlatformFactoryOut:
    return svc.create_factory(principal, body, client_ip(request))


@platform.get("/factories/{factory_id}", response_model=schemas.PlatformFactoryOut, summary="One factory (root)")
def platform_get_factory(
    factory_id: str, _: Principal = Depends(platform_root), svc: TenancyService = Depends(tenancy)
) -> schemas.PlatformFactoryOut:
    return svc.platform_get_factory(factory_id)


@platform.post(
    "/factories/{factory_id}/super-admins",
    response_model=schemas.UserOut,
    status_code=201,
    summary="Assign another super admin to a factory (root)",
)
def platform_add_super_admin(
    factory_id: str,
    body: schemas.NewSuperAdmin,
    request: Request,
    principal: Principal = Depends(platform_root),
    svc: TenancyService = Depends(tenancy),
) -> schemas.UserOut:
    return svc.add_super_admin(principal, factory_id, body, client_ip(request))


routers = [public, auth, factory, users, platform]
