"""Backups in S3-compatible object storage and the scheduled test restore,
run as the operator's Jobs run them: the `ai-moderator` command lines against
the real PostgreSQL, and an S3 API served over HTTP by moto's server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ai_moderator_workload.db.migrate import head_revision
from servers import fresh_database, free_port, required_env, run_cli
from test_durability_postgres import counts, execute

pytestmark = [pytest.mark.postgres]
OLD = "db-backup-20200101T030000Z.sql.gz"


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    """An S3 endpoint with one bucket, and the AWS_* variables a backup Job gets."""
    port = free_port()
    server_bin = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    assert server_bin, "moto_server is missing (pip install 'moto[server]')"
    proc = subprocess.Popen([server_bin, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(endpoint, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the S3 server did not start"
                time.sleep(0.2)
        env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "backup-writer",
               "AWS_SECRET_ACCESS_KEY": "not-a-real-secret", "AWS_DEFAULT_REGION": "us-east-1"}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                     aws_secret_access_key="x").create_bucket(Bucket="moderation-backups")
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def objects(env: dict[str, str], prefix: str) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    listing = client.list_objects_v2(Bucket="moderation-backups", Prefix=prefix).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket="moderation-backups", Key=o["Key"])["Body"].read() for o in listing}


@pytest.fixture(scope="module")
def source(pg_env: dict[str, str]) -> dict[str, str]:
    """The module's database with content in every table."""
    engine = create_engine(pg_env["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO content (id, tenant, text, status, attempts, created_at)
            SELECT gen_random_uuid(), 't', 'text ' || g, 'done', 0, now() FROM generate_series(1, 40) g;
            INSERT INTO moderation_result (id, content_id, flagged, categories, scores, spans, engine_version,
                                           policy_version, created_at)
            SELECT gen_random_uuid(), id, false, '[]', '{}', '[]', 'e', 'p', created_at FROM content"""))
    engine.dispose()
    run_cli("apikey", "create", "--name", "storage-check", env=pg_env)
    return pg_env


def scratch_databases() -> set[str]:
    engine = create_engine(make_url(required_env("TEST_DATABASE_URL")).set(database="postgres"))
    with engine.connect() as conn:
        names = set(conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE '%\\_verify\\_%'")).scalars())
    engine.dispose()
    return names


def test_backup_to_s3_applies_retention_and_restores_identically(source: dict[str, str],
                                                                 s3_env: dict[str, str]) -> None:
    location = "s3://moderation-backups/prod/demo"
    client = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    for name in (OLD, "notes.txt"):
        client.put_object(Bucket="moderation-backups", Key=f"prod/demo/{name}", Body=b"old")
    out = run_cli("backup", "--to", location, "--keep", "5", "--keep-days", "30", env={**source, **s3_env}).stdout
    stored = objects(s3_env, "prod/demo/")
    [key] = [k for k in stored if k.startswith("prod/demo/db-backup-") and not k.endswith(OLD)]
    assert f"s3://moderation-backups/{key}" in out
    assert f"prod/demo/{OLD}" not in stored, "retention did not delete the 2020 backup"
    assert "prod/demo/notes.txt" in stored, "retention touched a file that is not a backup"
    assert stored[key][:2] == b"\x1f\x8b"  # gzip

    with fresh_database() as target:
        run_cli("restore", "--from", f"s3://moderation-backups/{key}", env={"DATABASE_URL": target, **s3_env})
        assert counts(target) == counts(source["DATABASE_URL"])


def test_a_failed_dump_leaves_no_backup_anywhere(s3_env: dict[str, str], tmp_path: Path) -> None:
    broken = make_url(required_env("TEST_DATABASE_URL")).set(database="no_such_database")
    env = {"DATABASE_URL": broken.render_as_string(hide_password=False), **s3_env}
    for location in ("s3://moderation-backups/failing", str(tmp_path)):
        result = run_cli("backup", "--to", location, env=env, check=False)
        assert result.returncode == 1 and "pg_dump failed" in result.stderr and "no_such_database" in result.stderr
        assert "Traceback" not in result.stderr
    assert objects(s3_env, "failing/") == {}
    assert list(tmp_path.iterdir()) == []


def test_s3_errors_are_reported_clearly(source: dict[str, str], s3_env: dict[str, str]) -> None:
    result = run_cli("backup", "--to", "s3://no-such-bucket/x", env={**source, **s3_env}, check=False)
    assert result.returncode == 1 and "NoSuchBucket" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("restore", "--from", "s3://moderation-backups/prod/demo/db-backup-20990101T000000Z.sql.gz",
                     env={**source, **s3_env}, check=False)
    assert result.returncode == 1 and "cannot read" in result.stderr


def test_verify_restores_the_newest_backup_into_a_scratch_database(source: dict[str, str], s3_env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    (tmp_path / OLD).write_bytes(b"an older, broken backup that verify must not pick")
    run_cli("backup", "--to", str(tmp_path), env=source)
    for location, env in ((str(tmp_path), source), ("s3://moderation-backups/prod/demo", {**source, **s3_env})):
        out = run_cli("verify-backup", "--from", location, env=env).stdout
        report = json.loads(out)
        assert report["verified"] is True and report["revision"] == head_revision()
        assert OLD not in report["backup"]
        expected = counts(source["DATABASE_URL"])
        assert {t: report["rows"][t] for t in expected} == expected
    assert scratch_databases() == set(), "the scratch database was not dropped"


def test_verify_of_a_corrupt_backup_fails_and_cleans_up(source: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "db-backup-20991231T000000Z.sql.gz").write_bytes(b"\x1f\x8b not really gzip")
    result = run_cli("verify-backup", "--from", str(tmp_path), env=source, check=False)
    assert result.returncode == 1 and "cannot read backup" in result.stderr
    empty = run_cli("verify-backup", "--from", str(tmp_path / "empty"), env=source, check=False)
    assert empty.returncode == 1 and "no backups in" in empty.stderr
    assert scratch_databases() == set()


def test_a_failing_restore_rolls_back_and_does_not_quote_the_dump(source: dict[str, str], tmp_path: Path) -> None:
    import gzip

    bad = tmp_path / "db-backup-20261126T030000Z.sql.gz"
    with gzip.open(bad, "wt") as dump:
        dump.write("DELETE FROM content;\nINSERT INTO content (id, text) VALUES ('not-a-uuid', 'private words');\n")
    before = counts(source["DATABASE_URL"])
    result = run_cli("restore", "--from", str(bad), env=source, check=False)
    assert result.returncode == 1 and "restore failed" in result.stderr and "ERROR:" in result.stderr
    assert "private words" not in result.stderr
    assert counts(source["DATABASE_URL"]) == before  # the DELETE was rolled back with the failed INSERT


def test_restore_with_migrate_brings_an_older_backup_to_the_running_schema(tmp_path: Path) -> None:
    """The operator's restore Job passes --migrate: a backup taken before a
    migration must come back with the schema the running image expects."""
    with fresh_database() as old, fresh_database() as target:
        execute(old, "CREATE TABLE legacy_note (id int PRIMARY KEY, body text); INSERT INTO legacy_note VALUES (1, 'x')")
        run_cli("backup", "--to", str(tmp_path), env={"DATABASE_URL": old})
        [dump] = list(tmp_path.glob("db-backup-*.sql.gz"))
        out = run_cli("restore", "--from", str(dump), "--migrate", env={"DATABASE_URL": target}).stdout
        assert f"schema at revision {head_revision()}" in out
        engine = create_engine(target)
        with engine.connect() as conn:
            tables = set(conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
        engine.dispose()
        assert {"legacy_note", "content", "moderation_result", "alembic_version"} <= tables
