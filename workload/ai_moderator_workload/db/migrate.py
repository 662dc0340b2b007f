"""`ai-moderator migrate`: Alembic upgrade to head, serialised across pods."""

from __future__ import annotations

import logging
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from ..settings import Settings
from .session import get_engine

log = logging.getLogger(__name__)
# Any constant works; it only has to be the same in every pod.
MIGRATION_LOCK_KEY = 0x41494D4F44  # "AIMOD"


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("ai_moderator_workload") / "migrations"))
    return cfg


def head_revision() -> str:
    """The newest schema revision this version ships."""
    return str(ScriptDirectory.from_config(_alembic_config()).get_current_head())


def current_revision(settings: Settings) -> str | None:
    with get_engine(settings).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(settings: Settings) -> str | None:
    """Upgrade the schema to head in one transaction: all of it or none of it
    (PostgreSQL's DDL is transactional). Two pods running this at once
    serialise on a PostgreSQL advisory lock; the second finds nothing left to do."""
    engine = get_engine(settings)
    cfg = _alembic_config()
    with engine.connect() as conn:
        locked = conn.dialect.name == "postgresql"
        if locked:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            conn.commit()
        try:
            before = MigrationContext.configure(conn).get_current_revision()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
            after = MigrationContext.configure(conn).get_current_revision()
        except BaseException:
            # Roll back before unlocking: the unlock cannot run in an aborted
            # transaction, and a half-applied schema must never be committed.
            conn.rollback()
            raise
        finally:
            if locked:
                _unlock(conn)
    log.info("schema migrated", extra={"from_revision": before, "to_revision": after})
    return after


def _unlock(conn: Connection) -> None:
    """Release the migration lock; if that fails, the lock goes with the
    connection, and the failure must not replace an error already raised."""
    try:
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        conn.commit()
    except SQLAlchemyError:
        log.warning("could not release the migration lock; closing the connection releases it")
        conn.invalidate()
