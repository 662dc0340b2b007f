"""Engine and session factory, one per process and database URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from ..settings import Settings


@lru_cache(maxsize=4)
def _engine(url: str, pool_size: int, max_overflow: int) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    # pre_ping lets the pool recover on its own after the database restarts.
    # hide_parameters: an error must not carry the moderated text into a log line.
    return create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True,
                         pool_timeout=5, connect_args={"connect_timeout": 5}, json_serializer=_json_dumps,
                         hide_parameters=True)


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def get_engine(settings: Settings) -> Engine:
    return _engine(settings.database_url, settings.db_pool_size, settings.db_max_overflow)


def session_factory(settings: Settings) -> sessionmaker[Session]:
    return sessionmaker(get_engine(settings), expire_on_commit=False)


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A transaction that commits on success and rolls back on error."""
    with session_factory(settings)() as session, session.begin():
        yield session
