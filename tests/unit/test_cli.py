"""Command-line parsing."""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ai_moderator_workload.cli import build_parser, parse_duration


@pytest.mark.parametrize("value, seconds", [("90d", 90 * 86400), ("12h", 43200), ("30m", 1800), ("45s", 45)])
def test_cleanup_durations(value: str, seconds: int) -> None:
    assert parse_duration(value).total_seconds() == seconds


def test_bad_duration_is_a_usage_error() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a duration"):
        parse_duration("ninety days")


def test_every_documented_subcommand_exists() -> None:
    parser = build_parser()
    for argv in (["serve"], ["worker"], ["migrate"], ["cleanup", "--older-than", "90d"], ["backup", "--to", "x"],
                 ["restore", "--from", "x"], ["verify-backup", "--from", "x"], ["apikey", "list"], ["operator"]):
        assert parser.parse_args(argv).command == argv[0]


def test_backup_retention_keeps_newest_and_applies_count_and_age(tmp_path) -> None:
    from datetime import datetime, timezone

    from ai_moderator_workload.backup import expired, prune

    names = ["db-backup-20261101T030000Z.sql.gz", "db-backup-20261120T030000Z.sql.gz",
             "db-backup-20261124T030000Z.sql.gz", "db-backup-20261125T030000Z.sql.gz", "notes.txt"]
    now = datetime(2026, 11, 26, tzinfo=timezone.utc)
    assert expired(names, keep=3, keep_days=10, now=now) == ["db-backup-20261101T030000Z.sql.gz"]
    assert expired(names, keep=1, keep_days=None, now=now) == names[2::-1]
    assert expired(names[:1], keep=1, keep_days=1, now=now) == []  # the newest backup is always kept
    for name in names:
        (tmp_path / name).write_text("x")
    assert prune(str(tmp_path), keep=2, keep_days=None, now=now) == names[1::-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == names[2:]


def test_a_server_newer_than_pg_dump_is_refused_before_dumping() -> None:
    from ai_moderator_workload.backup import BackupError, check_client_version

    with pytest.raises(BackupError, match="server is version 16, newer than this image's pg_dump 15"):
        check_client_version("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)", "16.4 (Debian 16.4-1)")
    check_client_version("pg_dump (PostgreSQL) 16.2", "15.20 (Debian 15.20-0+deb12u1)")


@pytest.mark.parametrize("value, size", [("1048576", 1048576), ("500M", 500_000_000), ("1Gi", 2**30), ("0", 0)])
def test_a_keys_daily_quota_takes_bytes_or_a_suffix(value: str, size: int) -> None:
    args = build_parser().parse_args(["apikey", "create", "--name", "shop", "--daily-quota", value])
    assert args.daily_quota == size


def test_a_bad_daily_quota_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["apikey", "create", "--name", "shop", "--daily-quota", "lots"])
    assert "not a whole number of bytes" in capsys.readouterr().err


# `apikey update` / `apikey create --policy`, against a SQLite database.


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sessionmaker[Session]]:
    """DATABASE_URL of a migrated SQLite file with one tenant policy, "kids"; a session factory on it."""
    from ai_moderator_workload import policy_admin
    from ai_moderator_workload.db.migrate import migrate
    from ai_moderator_workload.db.session import session_factory
    from ai_moderator_workload.settings import Settings, get_settings

    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CALLBACK_ALLOWED_HOSTS", "")
    get_settings.cache_clear()
    settings = Settings(database_url=url)
    migrate(settings)
    sessions = session_factory(settings)
    with sessions() as session, session.begin():
        policy_admin.put_policy(session, "kids", policy_admin.PolicyFields(None, {}, 0.3, [], []), "test")
    yield sessions
    get_settings.cache_clear()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from ai_moderator_workload.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stored_key(sessions: sessionmaker[Session], key_id: str) -> Any:
    from ai_moderator_workload.db.models import ApiKey

    with sessions() as session:
        return session.get(ApiKey, uuid.UUID(key_id))


def policy_revision(sessions: sessionmaker[Session]) -> int:
    from ai_moderator_workload.db.models import PolicyRevision

    with sessions() as session:
        return int(session.get_one(PolicyRevision, 1).revision)


def test_apikey_update_binds_a_key_to_a_policy_and_empty_unbinds_it(
        cli_database: sessionmaker[Session], capsys: pytest.CaptureFixture[str]) -> None:
    from ai_moderator_workload.db.models import AuditEvent

    code, out, _ = cli(capsys, "apikey", "create", "--name", "shop")
    created = json.loads(out)
    assert code == 0 and created["policy"] is None
    revision = policy_revision(cli_database)

    code, out, _ = cli(capsys, "apikey", "update", created["id"], "--policy", "kids")
    assert code == 0 and json.loads(out)["policy"] == "kids"
    assert stored_key(cli_database, created["id"]).policy == "kids"
    assert policy_revision(cli_database) == revision + 1  # every process picks the binding up

    code, out, _ = cli(capsys, "apikey", "update", created["prefix"], "--policy", "")
    assert code == 0 and json.loads(out)["policy"] is None
    assert stored_key(cli_database, created["id"]).policy is None
    with cli_database() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "apikey.update").order_by(AuditEvent.id))
        changes = [e.details or {} for e in events]
    assert [(c["before"], c["after"]) for c in changes] == [({"policy": None}, {"policy": "kids"}),
                                                            ({"policy": "kids"}, {"policy": None})]


def test_apikey_update_to_an_unknown_policy_exits_2_and_changes_nothing(
        cli_database: sessionmaker[Session], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "apikey", "create", "--name", "shop", "--policy", "kids")
    created = json.loads(out)
    assert code == 0 and created["policy"] == "kids"
    revision = policy_revision(cli_database)

    code, out, err = cli(capsys, "apikey", "update", created["id"], "--policy", "nope")
    assert (code, out) == (2, "")
    assert "--policy: no tenant policy named 'nope' (create it with PUT /api/v1/policies/nope)" in err
    assert stored_key(cli_database, created["id"]).policy == "kids"
    assert policy_revision(cli_database) == revision


def test_apikey_create_with_an_unknown_policy_exits_2_and_creates_no_key(
        cli_database: sessionmaker[Session], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "apikey", "create", "--name", "lost", "--policy", "nope")
    assert (code, out) == (2, "") and "no tenant policy named 'nope'" in err
    code, out, _ = cli(capsys, "apikey", "list")
    assert code == 0 and json.loads(out) == []


def test_apikey_update_of_an_unknown_key_exits_1(cli_database: sessionmaker[Session],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "apikey", "update", "0123456789ab", "--policy", "kids")
    assert (code, out) == (1, "") and "no active key with id or prefix 0123456789ab" in err


def test_apikey_update_with_an_empty_callback_url_clears_it(cli_database: sessionmaker[Session],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "apikey", "create", "--name", "shop", "--callback-url", "https://1.1.1.1/hook")
    created = json.loads(out)
    assert code == 0 and created["callback_url"] == "https://1.1.1.1/hook"
    code, out, err = cli(capsys, "apikey", "update", created["id"], "--callback-url", "")
    assert code == 0, err
    assert json.loads(out)["callback_url"] is None and stored_key(cli_database, created["id"]).callback_url is None
