"""Routes of rules: list, read, create, change (gated by the rules permission)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from factoryops.core.pagination import Page, PageParams, page_params
from factoryops.rules import schemas
from factoryops.rules.service import RuleService
from factoryops.tenancy.deps import client_ip, factory_db, factory_user, require_permission
from factoryops.tenancy.service import Principal

rules = APIRouter(prefix="/rules", tags=["rules"])
service = RuleService()
can_write_rules = require_permission("rules")


@rules.get("", response_model=Page[schemas.RuleOut], summary="The factory's rules")
def list_rules(
    q: str | None = Query(None, max_length=200),
    enabled: bool | None = Query(None),
    params: PageParams = Depends(page_params),
    _: Principal = Depends(factory_user),
    s: Session = Depends(factory_db, scope="function"),
) -> Page[schemas.RuleOut]:
    rows, total = service.search(s, params, q, enabled)
    return Page(
        items=[schemas.RuleOut.model_validate(r) for r in rows], total=total, limit=params.limit, offset=params.offset
    )


@rules.post("", response_model=schemas.RuleOut, status_code=201, summary="Create a rule")
def create_rule(
    body: schemas.RuleCreate,
    request: Request,
    principal: Principal = Depends(can_write_rules),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.RuleOut:
    return schemas.RuleOut.model_validate(service.create(s, principal, body, client_ip(request)))


@rules.get("/{rule_id}", response_model=schemas.RuleOut, summary="One rule")
def get_rule(
    rule_id: str, _: Principal = Depends(factory_user), s: Session = Depends(factory_db, scope="function")
) -> schemas.RuleOut:
    return schemas.RuleOut.model_validate(service.get(s, rule_id))


@rules.patch("/{rule_id}", response_model=schemas.RuleOut, summary="Change or enable/disable a rule")
def update_rule(
    rule_id: str,
    body: schemas.RuleUpdate,
    request: Request,
    principal: Principal = Depends(can_write_rules),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.RuleOut:
    return schemas.RuleOut.model_validate(service.update(s, principal, rule_id, body, client_ip(request)))


routers = [rules]
