from __future__ import annotations

import pytest

from ai_moderator_operator.schedule import interval_seconds


@pytest.mark.parametrize(("cron", "seconds"), [
    ("0 3 * * *", 86400), ("0 */6 * * *", 21600), ("0 3,15 * * *", 43200), ("15 * * * *", 3600),
    ("0 3 * * 0", 7 * 86400), ("0 3 1 * *", 31 * 86400), ("@daily", 86400), ("@hourly", 3600),
])
def test_backup_intervals(cron: str, seconds: int) -> None:
    assert interval_seconds(cron) == seconds
