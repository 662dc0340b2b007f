"""Command-line parsing."""

from __future__ import annotations

import argparse

import pytest

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
