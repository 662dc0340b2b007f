"""A failing statement never carries the moderated text into an error (and
so into a log line): SQLAlchemy's errors quote bound parameters unless told not to."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ai_moderator_workload.db.session import get_engine
from ai_moderator_workload.settings import Settings
from servers import fresh_database, run_cli

pytestmark = pytest.mark.postgres

SECRET = "my very private message about my neighbour"


def test_a_failing_insert_does_not_quote_the_text() -> None:
    with fresh_database() as url:
        run_cli("migrate", env={"DATABASE_URL": url})
        engine = get_engine(Settings(database_url=url))
        try:
            with pytest.raises(SQLAlchemyError) as err, engine.begin() as conn:
                conn.execute(text("INSERT INTO content (id, text) VALUES (:id, :text)"),
                             {"id": str(uuid.uuid4()), "text": SECRET + "\x00"})
            assert SECRET not in str(err.value) and SECRET not in repr(err.value)
            assert "hidden" in str(err.value)
        finally:
            engine.dispose()
