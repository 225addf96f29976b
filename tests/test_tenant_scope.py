"""The data access layer itself refuses to cross factories, whatever a route forgets."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, text, update

from factoryops.core.db import UnscopedQueryError
from factoryops.tenancy.models import AuditEvent, AuthSession, Factory, PlatformAdmin, User
from factoryops.wiring import Platform


@pytest.fixture()
def two_factories(platform: Platform) -> tuple[str, str]:
    import secrets

    ids = []
    with platform.db.unscoped_session() as s:
        for _ in range(2):
            tag = secrets.token_hex(4)
            f = Factory(slug=f"scope-{tag}", name=f"Scope {tag}")
            s.add(f)
            s.flush()
            for i in range(3):
                s.add(User(factory_id=f.id, email=f"u{i}-{tag}@x.example", role="admin", password_hash="x"))
            ids.append(f.id)
    return ids[0], ids[1]


def test_factory_session_sees_only_its_rows(platform: Platform, two_factories: tuple[str, str]) -> None:
    a, b = two_factories
    with platform.db.factory_session(a) as s:
        users = s.execute(select(User)).scalars().all()
        assert users and {u.factory_id for u in users} == {a}
        assert s.execute(select(func.count(User.id))).scalar_one() == len(users)
        assert [f.id for f in s.execute(select(Factory)).scalars()] == [a]
        b_user = None
        with platform.db.factory_session(b) as sb:
            b_user = sb.execute(select(User)).scalars().first()
        assert b_user is not None
        assert s.get(User, b_user.id) is None
        assert s.get(Factory, b) is None


def test_bulk_update_is_scoped(platform: Platform, two_factories: tuple[str, str]) -> None:
    a, b = two_factories
    with platform.db.factory_session(a) as s:
        s.execute(update(User).values(full_name="renamed"))
    with platform.db.factory_session(b) as s:
        assert all(u.full_name != "renamed" for u in s.execute(select(User)).scalars())


def test_unscoped_query_fails_loudly(platform: Platform, two_factories: tuple[str, str]) -> None:
    s = platform.db.plain_session()
    try:
        with pytest.raises(UnscopedQueryError, match="without a factory context"):
            s.execute(select(User))
        with pytest.raises(UnscopedQueryError):
            s.execute(select(Factory))
        with pytest.raises(UnscopedQueryError):
            s.add(User(factory_id=two_factories[0], email="z@x.example", role="admin", password_hash="x"))
            s.flush()
    finally:
        s.rollback()
        s.close()


def test_unscopable_statement_forms_are_refused(platform: Platform, two_factories: tuple[str, str]) -> None:
    a, _ = two_factories
    with pytest.raises(UnscopedQueryError, match="cannot be factory-scoped"), platform.db.factory_session(a) as s:
        s.execute(select(func.count()).select_from(select(User).subquery()))
    with pytest.raises(UnscopedQueryError, match="cannot be factory-scoped"), platform.db.factory_session(a) as s:
        s.execute(select(func.count()).select_from(User.__table__))


def test_rows_are_stamped_and_foreign_rows_refused(platform: Platform, two_factories: tuple[str, str]) -> None:
    a, b = two_factories
    with platform.db.factory_session(a) as s:
        event = AuditEvent(action="test")
        s.add(event)
        s.flush()
        assert event.factory_id == a
    with pytest.raises(UnscopedQueryError, match="another factory"), platform.db.factory_session(a) as s:
        s.add(AuditEvent(factory_id=b, action="smuggled"))
        s.flush()
    with platform.db.unscoped_session() as s:
        assert s.execute(select(AuditEvent).where(AuditEvent.action == "smuggled")).first() is None


def test_factory_session_cannot_touch_platform_tables(platform: Platform, two_factories: tuple[str, str]) -> None:
    a, _ = two_factories
    for model in (PlatformAdmin, AuthSession):
        with pytest.raises(UnscopedQueryError, match="platform tables"), platform.db.factory_session(a) as s:
            s.execute(select(model))


def test_raw_sql_is_the_only_unchecked_path(platform: Platform, two_factories: tuple[str, str]) -> None:
    # Textual SQL is not inspected; it is allowed only in migrations and health probes,
    # which the grep below keeps true.
    import pathlib

    src = pathlib.Path(__file__).resolve().parent.parent / "src" / "factoryops"
    raw_sql = re.compile(r"(?<![\w.])text\(")  # sqlalchemy.text(...), not write_text(...)
    users_of_text = sorted(
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if raw_sql.search(p.read_text()) and "migrations" not in p.parts
    )
    assert users_of_text == ["core/health.py", "entrypoints/services.py"], users_of_text
    with platform.db.factory_session(two_factories[0]) as s:
        assert s.execute(text("SELECT 1")).scalar_one() == 1
