"""A migration that fails half-way leaves the schema as it was, reports its
own error, and releases the lock for the next attempt."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text

from ai_moderator_workload.db import migrate as migrate_module
from ai_moderator_workload.settings import Settings
from servers import database_at, fresh_database

pytestmark = pytest.mark.postgres

BROKEN = '''
from alembic import op
import sqlalchemy as sa

revision = "0099"
down_revision = "{head}"


def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.add_column("content", sa.Column("half_done_flag", sa.Boolean))
    raise RuntimeError("migration 0099 failed half-way")
'''


def test_a_migration_failing_half_way_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fresh_database() as url:
        settings = Settings(database_url=url)
        head = migrate_module.migrate(settings)
        scripts = tmp_path / "migrations"
        shutil.copytree(Path(str(resources.files("ai_moderator_workload") / "migrations")), scripts)
        (scripts / "versions" / "0099_broken.py").write_text(BROKEN.replace("{head}", str(head)))

        def broken_config() -> Config:
            cfg = Config()
            cfg.set_main_option("script_location", str(scripts))
            return cfg

        monkeypatch.setattr(migrate_module, "_alembic_config", broken_config)
        with pytest.raises(RuntimeError, match="failed half-way"):
            migrate_module.migrate(settings)

        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                assert "half_done" not in inspect(conn).get_table_names()
                assert "half_done_flag" not in {c["name"] for c in inspect(conn).get_columns("content")}
                assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
                assert conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                    {"k": migrate_module.MIGRATION_LOCK_KEY}).scalar_one()
        finally:
            engine.dispose()


def test_upgrading_a_schema_with_data_keeps_the_data() -> None:
    with database_at("0001") as (url, engine):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO content (id, tenant, text, status, attempts, created_at) VALUES "
                              "(gen_random_uuid(), 't', 'kept', 'pending', 2, now())"))
        assert migrate_module.migrate(Settings(database_url=url)) == migrate_module.head_revision()
        with engine.connect() as conn:
            row = conn.execute(text("SELECT text, attempts, failure_reason FROM content")).one()
        assert tuple(row) == ("kept", 2, None)
