"""Routes of rules: list, read, create, change (gated by the rules permission)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from factoryops.core.pagination import Page, PageParams, page_params
from factoryops.jobs.queue import JobQueue
from factoryops.rules import backtest, schemas
from factoryops.rules.definition import RuleDefinition
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
    return Page(items=schemas.RuleOut.of(s, list(rows)), total=total, limit=params.limit, offset=params.offset)


@rules.post("", response_model=schemas.RuleOut, status_code=201, summary="Create a rule")
def create_rule(
    body: schemas.RuleCreate,
    request: Request,
    principal: Principal = Depends(can_write_rules),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.RuleOut:
    return schemas.RuleOut.of(s, [service.create(s, principal, body, client_ip(request))])[0]


@rules.get("/{rule_id}", response_model=schemas.RuleOut, summary="One rule")
def get_rule(
    rule_id: str, _: Principal = Depends(factory_user), s: Session = Depends(factory_db, scope="function")
) -> schemas.RuleOut:
    return schemas.RuleOut.of(s, [service.get(s, rule_id)])[0]


@rules.patch("/{rule_id}", response_model=schemas.RuleOut, summary="Change or enable/disable a rule")
def update_rule(
    rule_id: str,
    body: schemas.RuleUpdate,
    request: Request,
    principal: Principal = Depends(can_write_rules),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.RuleOut:
    return schemas.RuleOut.of(s, [service.update(s, principal, rule_id, body, client_ip(request))])[0]


@rules.post(
    "/backtest",
    response_model=schemas.BacktestStarted,
    status_code=202,
    summary="Backtest a rule definition over a past period (a job of kind rules.backtest)",
)
def backtest_definition(
    body: schemas.BacktestIn,
    request: Request,
    principal: Principal = Depends(can_write_rules),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.BacktestStarted:
    service._check_against_factory(s, body.definition)
    queue = JobQueue(request.app.state.platform.db)
    job = backtest.enqueue(s, queue, body.definition, body.start, body.end, principal.email)
    return schemas.BacktestStarted(job_id=job.id)


@rules.post(
    "/{rule_id}/backtest",
    response_model=schemas.BacktestStarted,
    status_code=202,
    summary="Backtest a stored rule over a past period (a job of kind rules.backtest)",
)
def backtest_rule(
    rule_id: str,
    body: schemas.BacktestPeriod,
    request: Request,
    principal: Principal = Depends(can_write_rules),
    s: Session = Depends(factory_db, scope="function"),
) -> schemas.BacktestStarted:
    rule = service.get(s, rule_id)
    definition = RuleDefinition.model_validate(rule.definition)
    queue = JobQueue(request.app.state.platform.db)
    job = backtest.enqueue(s, queue, definition, body.start, body.end, principal.email, rule_id=rule.id)
    return schemas.BacktestStarted(job_id=job.id)


routers = [rules]
