"""Telling "the database is away" from "the database said no" (core.db.is_unavailable).

The API answers 503 and the telemetry service holds messages only for the first; a refusal by the
database (a constraint, a trigger) stays an error of the request or the message.
"""

from __future__ import annotations

import pytest
import sqlalchemy
from sqlalchemy import text

from factoryops.core.db import DatabaseUnavailable, is_unavailable
from support import free_port

pytestmark = pytest.mark.nodb


def test_a_server_that_is_not_there_is_unavailable() -> None:
    engine = sqlalchemy.create_engine(
        f"mysql+pymysql://root@127.0.0.1:{free_port()}/x", connect_args={"connect_timeout": 2}
    )
    with pytest.raises(sqlalchemy.exc.OperationalError) as caught:
        engine.connect()
    assert is_unavailable(caught.value)
    assert is_unavailable(DatabaseUnavailable("restarting"))


def test_a_refusal_of_the_database_is_not_unavailability(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(sqlalchemy.exc.IntegrityError) as duplicate, engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    assert not is_unavailable(duplicate.value)
    with pytest.raises(sqlalchemy.exc.OperationalError) as bad_sql, engine.begin() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert not is_unavailable(bad_sql.value)
    assert not is_unavailable(ValueError("not a database error"))
