"""Database engine, ORM base and the factory-scoped session.

Factory isolation is structural: a :func:`factory_session` adds ``factory_id = :ctx`` to every
ORM query of a tenant table by itself (SQLAlchemy's ``do_orm_execute`` + ``with_loader_criteria``
recipe), stamps the factory on every new row, and refuses to flush a row of another factory.
A plain session without a factory context refuses to touch tenant tables at all
(:class:`UnscopedQueryError`). Cross-factory work, which only the platform root and the
sign-in flow do, goes through :func:`unscoped_session` - the one greppable escape hatch.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, DateTime, ForeignKey, MetaData, String, create_engine, event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    sessionmaker,
    with_loader_criteria,
)
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.util import find_tables
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

FACTORY_KEY = "factory_id"
UNSCOPED_KEY = "unscoped"


class UnscopedQueryError(RuntimeError):
    """A tenant table was queried or written without a factory context."""


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (portable across SQLite and MySQL), returns aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        dict[str, str]: JSON,
        list[str]: JSON,
        list[dict[str, Any]]: JSON,
    }


class TenantMixin:
    """A table whose every row belongs to one factory. Scoped automatically."""

    @declared_attr
    def factory_id(cls) -> Mapped[str]:
        return mapped_column(String(36), ForeignKey("factories.id", ondelete="CASCADE"), nullable=False, index=True)


class FactoryRoot:
    """The factories table itself: inside a factory context only that factory's row is visible."""

    id: Mapped[str]


class PlatformOnly:
    """A table no factory-scoped session may touch (platform root accounts, sessions)."""


def _factory_root_classes() -> list[type[Any]]:
    return [m.class_ for m in Base.registry.mappers if issubclass(m.class_, FactoryRoot)]


def _is_tenant(cls: type[Any]) -> bool:
    return issubclass(cls, TenantMixin | FactoryRoot)


def _tenant_tables() -> set[Any]:
    return {m.local_table for m in Base.registry.mappers if _is_tenant(m.class_)}


def _tenant_entities(state: ORMExecuteState) -> tuple[bool, bool]:
    tenant = platform = False
    scoped_tables = set()
    for mapper in state.all_mappers:
        cls = mapper.class_
        if _is_tenant(cls):
            tenant = True
            scoped_tables.add(mapper.local_table)
        if issubclass(cls, PlatformOnly):
            platform = True
    # A statement can reach a tenant table without naming an ORM entity (select_from, a
    # subquery, a Core table): the loader criteria would not apply there, so refuse it.
    touched = set(
        find_tables(cast(ClauseElement, state.statement), include_aliases=True, include_joins=True, include_crud=True)
    )
    hidden = (touched & _tenant_tables()) - scoped_tables
    if hidden:
        names = ", ".join(sorted(t.name for t in hidden))
        raise UnscopedQueryError(
            f"statement reaches tenant table(s) {names} in a form that cannot be factory-scoped; "
            "select ORM entities or their attributes"
        )
    return tenant, platform


def _scope_orm_execute(state: ORMExecuteState) -> None:
    info = state.session.info
    if info.get(UNSCOPED_KEY):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # the criteria below propagate into these loads
    tenant, platform = _tenant_entities(state)
    factory_id = info.get(FACTORY_KEY)
    if platform and factory_id is not None:
        raise UnscopedQueryError("a factory-scoped session may not read platform tables")
    if not tenant:
        return
    if factory_id is None:
        raise UnscopedQueryError(
            "tenant table queried without a factory context; use factory_session(factory_id) "
            "or, for platform-root work only, unscoped_session()"
        )
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(
            with_loader_criteria(TenantMixin, lambda cls: cls.factory_id == factory_id, include_aliases=True),
            *[with_loader_criteria(cls, cls.id == factory_id, include_aliases=True) for cls in _factory_root_classes()],
        )


def _stamp_factory(session: Session, flush_context: Any, instances: Any) -> None:
    if session.info.get(UNSCOPED_KEY):
        return
    factory_id = session.info.get(FACTORY_KEY)
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if isinstance(obj, PlatformOnly) and factory_id is not None:
            raise UnscopedQueryError("a factory-scoped session may not write platform tables")
        if isinstance(obj, TenantMixin):
            if factory_id is None:
                raise UnscopedQueryError("tenant row written without a factory context")
            if obj.factory_id is None:
                obj.factory_id = factory_id
            elif obj.factory_id != factory_id:
                raise UnscopedQueryError("a row of another factory cannot be written in this context")
        elif isinstance(obj, FactoryRoot) and obj in session.new and factory_id is not None:
            raise UnscopedQueryError("factories are created by the platform root only")


class DatabaseUnavailable(Exception):
    """The metadata database cannot be reached right now (restarting, network): try again later."""


# MySQL/MariaDB error numbers that mean "not reachable right now", not "this statement is wrong":
# connection refused/lost/timed out, server shutting down, too many connections, lock timeouts.
_MYSQL_TRANSIENT = {0, 1040, 1053, 1205, 1213, 1927, 2002, 2003, 2005, 2006, 2013, 2014, 2055}
_SQLITE_TRANSIENT = ("database is locked", "unable to open database", "disk i/o error")


def is_unavailable(exc: BaseException) -> bool:
    """True for a failure to reach the database (connection refused, lost, timed out), not a bad query.

    A trigger's refusal or a constraint is a real answer of the database and is False here.
    """
    if isinstance(exc, DatabaseUnavailable | DisconnectionError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    args = getattr(exc.orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0] in _MYSQL_TRANSIENT
    return any(text in str(exc.orig).lower() for text in _SQLITE_TRANSIENT)


class Database:
    """An engine and its session factories; one per process."""

    def __init__(self, url: str, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_recycle=1800, pool_size=pool_size, max_overflow=20)
            if url.startswith("mysql"):
                # A database that is down answers in seconds, not after the driver's default wait.
                kwargs["connect_args"] = {"connect_timeout": 5}
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _session(self, **info: Any) -> Session:
        session = self._sessions()
        session.info.update(info)
        event.listen(session, "do_orm_execute", _scope_orm_execute)
        event.listen(session, "before_flush", _stamp_factory)
        return session

    def plain_session(self) -> Session:
        """A session with no context: platform tables only; tenant tables raise."""
        return self._session()

    @contextmanager
    def factory_session(self, factory_id: str) -> Iterator[Session]:
        """A session that sees and writes exactly one factory's rows."""
        if not factory_id:
            raise UnscopedQueryError("factory_session needs a factory id")
        session = self._session(**{FACTORY_KEY: factory_id})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def unscoped_session(self) -> Iterator[Session]:
        """ESCAPE HATCH: sees every factory. Platform root and sign-in only."""
        session = self._session(**{UNSCOPED_KEY: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
