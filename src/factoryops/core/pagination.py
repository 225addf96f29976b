"""Pagination shared by every list endpoint: ``limit``/``offset`` in, a page out."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select, func
from sqlalchemy.orm import Session

T = TypeVar("T")
MAX_OFFSET = 1_000_000_000


class PageParams(BaseModel):
    limit: int
    offset: int


def page_params(
    limit: int = Query(50, ge=1, le=200, description="Items per page (1-200)."),
    # bounded so that the database never sees a number beyond its 64-bit integers
    offset: int = Query(0, ge=0, le=MAX_OFFSET, description=f"Items to skip (0-{MAX_OFFSET:,})."),
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def paginate(session: Session, stmt: Select[Any], params: PageParams) -> tuple[list[Any], int]:
    """Run ``stmt`` (a select of one ORM entity) for one page and count all its rows.

    The count keeps the entity's own column in the select list so that the factory scope of
    the session applies to it as well.
    """
    entity = stmt.column_descriptions[0]["entity"]
    total = session.execute(stmt.with_only_columns(func.count(entity.id)).order_by(None)).scalar_one()
    rows = session.execute(stmt.limit(params.limit).offset(params.offset)).scalars().all()
    return list(rows), int(total)
