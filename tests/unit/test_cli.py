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
                 ["restore", "--from", "x"], ["apikey", "list"], ["operator"]):
        assert parser.parse_args(argv).command == argv[0]
