"""Nothing accepted is lost: worker crashes, migrations racing, backups and
restores, retention cleanup — against the real PostgreSQL and Redis."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from ai_moderator_workload.db.migrate import head_revision
from servers import CLI, Process, api_server, fresh_database, run_cli

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
TABLES = ("content", "moderation_result", "api_key", "audit_event")


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in TABLES}
    finally:
        engine.dispose()


def execute(url: str, sql: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def api(pg_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with api_server(pg_env, tmp_path_factory.mktemp("api")) as base:
        yield base


def test_worker_killed_mid_work_loses_no_content(api: str, pg_env: dict[str, str], tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {pg_env['ADMIN_API_KEY']}"}
    total = 300
    with httpx.Client(base_url=api, headers=headers) as http:
        for i in range(total):
            assert http.post("/api/v1/content", json={"text": f"item {i}", "external_id": f"k-{i}"}).status_code == 202
    first = Process(["worker", "--concurrency", "4", "--metrics-port", "0"], pg_env, tmp_path / "first.log")
    deadline = time.monotonic() + 60
    while counts(pg_env["DATABASE_URL"])["moderation_result"] < 20:
        assert time.monotonic() < deadline, first.output()
        time.sleep(0.05)
    first.kill()  # SIGKILL while tasks are in flight
    done_at_kill = counts(pg_env["DATABASE_URL"])["moderation_result"]
    assert done_at_kill < total, "the first worker finished everything before it was killed"

    second = Process(["worker", "--concurrency", "4", "--metrics-port", "0"], pg_env, tmp_path / "second.log")
    try:
        deadline = time.monotonic() + 90
        while counts(pg_env["DATABASE_URL"])["moderation_result"] < total:
            assert time.monotonic() < deadline, second.output()
            time.sleep(0.2)
    finally:
        second.stop()
    engine = create_engine(pg_env["DATABASE_URL"])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM content WHERE status <> 'done'")).scalar_one() == 0
        duplicates = conn.execute(text(
            "SELECT count(*) FROM (SELECT content_id FROM moderation_result GROUP BY content_id HAVING count(*) > 1) d"
        )).scalar_one()
    engine.dispose()
    assert duplicates == 0


def test_concurrent_migrations_are_safe_and_idempotent() -> None:
    with fresh_database() as url:
        env = {"DATABASE_URL": url}
        racers = [subprocess.Popen([*CLI, "migrate"], env={**os.environ, **env}, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for _ in range(3)]
        for proc in racers:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        assert f"schema at revision {head_revision()}" in run_cli("migrate", env=env).stdout
        engine = create_engine(url)
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            indexes = set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")).scalars())
        engine.dispose()
        assert versions == [head_revision()]
        assert {"idx_content_external_id", "idx_content_created_at", "idx_moderation_result_content_id"} <= indexes


def test_backup_and_restore_reproduce_row_counts(api: str, pg_env: dict[str, str], tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {pg_env['ADMIN_API_KEY']}"}
    httpx.post(f"{api}/v1/moderations", json={"input": [f"text {i}" for i in range(50)]}, headers=headers)
    run_cli("apikey", "create", "--name", "backup-check", env=pg_env)
    source = counts(pg_env["DATABASE_URL"])
    assert source["content"] >= 50 and source["api_key"] >= 1

    out = run_cli("backup", "--to", str(tmp_path), env=pg_env).stdout
    [dump] = list(tmp_path.glob("db-backup-*.sql.gz"))
    assert str(dump) in out and not list(tmp_path.glob("*.partial"))

    with fresh_database() as target:
        run_cli("restore", "--from", str(dump), env={"DATABASE_URL": target})
        assert counts(target) == source
        # Restoring over a database that moved on brings it back to the backup.
        execute(target, "DELETE FROM content")
        run_cli("restore", "--from", str(dump), env={"DATABASE_URL": target})
        assert counts(target) == source
        assert head_revision() in run_cli("migrate", env={"DATABASE_URL": target}).stdout


def test_restore_of_a_corrupt_file_fails_clearly_and_changes_nothing(pg_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.sql.gz"
    bad.write_bytes(b"not a gzip file")
    before = counts(pg_env["DATABASE_URL"])
    result = run_cli("restore", "--from", str(bad), env=pg_env, check=False)
    assert result.returncode == 1 and "cannot read backup" in result.stderr
    missing = run_cli("restore", "--from", str(tmp_path / "nope.sql.gz"), env=pg_env, check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert counts(pg_env["DATABASE_URL"]) == before


def test_cleanup_deletes_only_old_content_in_batches(pg_env: dict[str, str]) -> None:
    with fresh_database() as url:
        env = {"DATABASE_URL": url}
        run_cli("migrate", env=env)
        execute(url, """
            INSERT INTO content (id, tenant, text, status, attempts, created_at)
            SELECT gen_random_uuid(), 't', 'old ' || g, 'done', 0, now() - interval '100 days' FROM generate_series(1, 25) g;
            INSERT INTO content (id, tenant, text, status, attempts, created_at)
            SELECT gen_random_uuid(), 't', 'new ' || g, 'done', 0, now() - interval '10 days' FROM generate_series(1, 5) g;
            INSERT INTO moderation_result (id, content_id, flagged, categories, scores, spans, engine_version,
                                           policy_version, created_at)
            SELECT gen_random_uuid(), id, false, '[]', '{}', '[]', 'e', 'p', created_at FROM content;
        """)
        out = run_cli("cleanup", "--older-than", "90d", "--batch-size", "7", env=env).stdout
        assert "deleted 25" in out
        after = counts(url)
        assert after["content"] == 5 and after["moderation_result"] == 5
        assert after["audit_event"] == 1
