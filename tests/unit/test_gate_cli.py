"""`ai-moderator evaluate --gate`: what the operator's quality-gate Job runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_moderator_workload.cli import main
from ai_moderator_workload.engine.gate import RESULT_LIMIT

GOLDEN = [
    {"text": "I will kill you tonight", "expected": ["violence", "harassment", "harassment/threatening"]},
    {"text": "Have a lovely day, see you at the meeting", "expected": []},
    {"text": "The recipe needs two cups of flour", "expected": []},
    {"text": "Please send the quarterly report by Friday", "expected": []},
]


def write_golden(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "golden.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_the_report_compares_the_candidate_with_the_serving_policy(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    golden, result = write_golden(tmp_path, GOLDEN), tmp_path / "result.json"
    monkeypatch.setenv("CANDIDATE", "version: trigger-happy\ndefault_threshold: 0.01\n")
    (tmp_path / "serving.yaml").write_text("version: serving\n")
    code = main(["evaluate", "--gate", "--golden", str(golden), "--policy", "env:CANDIDATE",
                 "--baseline-policy", str(tmp_path / "serving.yaml"), "--result-file", str(result)])
    assert code == 0
    report = json.loads(result.read_text())
    assert len(result.read_bytes()) <= RESULT_LIMIT
    assert report["examples"] == 4 and report["candidate"]["policy"].startswith("trigger-happy@")
    assert report["baseline"]["recall"] == 1.0, "the serving policy flags the threat"
    assert report["candidate"]["flagRate"] > report["baseline"]["flagRate"]
    assert report["candidate"]["categories"]["violence"]["recall"] == 1.0


def test_a_bad_golden_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    golden = write_golden(tmp_path, [GOLDEN[0], {"text": "x", "expected": ["spam"]}])
    assert main(["evaluate", "--golden", str(golden)]) == 2, "--golden alone measures the golden set"
    assert f"{golden}:2: expected.0" in capsys.readouterr().err
