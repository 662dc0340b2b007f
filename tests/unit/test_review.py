"""The pure parts of feedback and review: cursors, request validation, the
label arithmetic of export-feedback and its lines in the corpus's format,
review outcomes, the REVIEW_BAND setting and the export's command line."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from ai_moderator_workload.api.errors import ApiError
from ai_moderator_workload.api.paging import decode_cursor, encode_cursor
from ai_moderator_workload.api.schemas import FeedbackRequest, ReviewRequest
from ai_moderator_workload.cli import build_parser
from ai_moderator_workload.engine import corpus
from ai_moderator_workload.engine.categories import with_implied
from ai_moderator_workload.engine.corpus import Example
from ai_moderator_workload.review import HumanDecision, corpus_line, outcome, training_example, training_labels
from ai_moderator_workload.settings import Settings

WHEN = datetime(2026, 11, 27, 9, 30, 1, 123456, tzinfo=UTC)
THREAT = ["hate", "hate/threatening", "violence"]


@pytest.mark.parametrize("key", [uuid.UUID("6f1c1a52-0d5e-4a51-9a3c-0b7d2f0e9a11"), 123456789])
def test_a_cursor_gives_back_its_time_and_key(key: uuid.UUID | int) -> None:
    cursor = encode_cursor(WHEN, key)
    assert "=" not in cursor and "|" not in cursor and str(key) not in cursor
    assert decode_cursor(cursor, type(key)) == (WHEN, key)


@pytest.mark.parametrize("cursor", [
    "", "not base64!", base64.urlsafe_b64encode(b"no separator").decode(),
    base64.urlsafe_b64encode(b"yesterday|1").decode(), base64.urlsafe_b64encode(b"2026-11-27T09:30:01|x").decode(),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
])
def test_a_cursor_the_api_did_not_make_is_a_422_naming_it(cursor: str) -> None:
    with pytest.raises(ApiError) as refused:
        decode_cursor(cursor, int)
    assert (refused.value.status, refused.value.code, refused.value.param) == (422, "invalid_cursor", "query.cursor")


@pytest.mark.parametrize(("model", "verdict", "reported", "labels"), [
    (["harassment"], "correct", [], ["harassment"]),
    ([], "correct", ["hate"], []),
    (["harassment"], "false_negative", ["violence", "hate"], ["harassment", "hate", "violence"]),
    (["harassment"], "false_negative", ["harassment"], ["harassment"]),
    (THREAT, "false_positive", [], []),
    (["harassment", "sexual"], "false_positive", ["sexual"], ["harassment"]),
    # Whatever implies a wrong category goes too, or loading the corpus would bring it back.
    (THREAT, "false_positive", ["violence"], ["hate"]),
    (THREAT, "false_positive", ["hate"], ["violence"]),
    (THREAT, "false_positive", ["hate/threatening"], ["hate", "violence"]),
    (["sexual"], "false_positive", ["violence"], ["sexual"]),
])
def test_feedback_labels_correct_the_models(model: list[str], verdict: str, reported: list[str],
                                            labels: list[str]) -> None:
    assert training_labels(model, verdict, reported) == labels
    assert list(with_implied(labels)) == labels


def test_implied_categories_are_added_in_category_order() -> None:
    assert with_implied(["violence", "hate/threatening"]) == ("hate", "hate/threatening", "violence")
    assert with_implied(["sexual/minors"]) == ("sexual", "sexual/minors")
    assert with_implied([]) == ()


def test_export_lines_are_corpus_lines(tmp_path: Path) -> None:
    reviewed = training_example("nice 👍 one", ["hate/threatening"], True, "review:1")
    cleared = training_example("kill -9 the stuck job", [], True, "feedback:false_positive:2")
    unflagged = training_example("see you", [], False, "feedback:correct:3")
    lines = [corpus_line(e) for e in (reviewed, cleared, unflagged)]
    assert lines[0] == ('{"text": "nice 👍 one", "labels": ["hate", "hate/threatening", "violence"], '
                        '"register": "other", "source": "review:1"}')
    assert json.loads(lines[1])["tags"] == ["hard-negative"] and "tags" not in json.loads(lines[2])
    assert [Example.model_validate(json.loads(line)) for line in lines] == [reviewed, cleared, unflagged]
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "export.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert corpus.load("train", tmp_path).examples == [reviewed, cleared, unflagged]


def test_the_corpus_source_is_optional_and_bounded() -> None:
    assert Example.model_validate({"text": "t", "register": "chat"}).source is None
    for source in ("", "x" * 201):
        with pytest.raises(ValidationError):
            Example.model_validate({"text": "t", "register": "chat", "source": source})


@pytest.mark.parametrize(("flagged", "categories", "result"), [
    (True, ["hate"], "agree"), (True, ["hate", "violence"], "overturn"), (False, [], "overturn"),
])
def test_a_review_agrees_when_it_decides_as_the_model_did(flagged: bool, categories: list[str],
                                                          result: str) -> None:
    assert outcome(True, ["hate"], HumanDecision(flagged, categories, None)) == result
    assert outcome(False, [], HumanDecision(False, [], "fine")) == "agree"


def test_request_categories_come_back_once_each_in_category_order() -> None:
    body = FeedbackRequest.model_validate({"verdict": "false_negative",
                                           "categories": ["violence", "hate", "violence"]})
    assert body.categories == ["hate", "violence"]
    assert ReviewRequest.model_validate({"flagged": True, "categories": ["sexual", "hate"]}).categories == [
        "hate", "sexual"]


@pytest.mark.parametrize("body", [
    {"flagged": True}, {"flagged": False, "categories": ["hate"]}, {"flagged": True, "categories": ["spam"]},
    {"flagged": False, "note": "x" * 2001}, {"flagged": False, "decided_by": "human"}, {"categories": []},
])
def test_a_review_must_be_consistent(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ReviewRequest.model_validate(body)


def test_the_review_band_defaults_to_a_tenth(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().review_band == 0.1
    monkeypatch.setenv("REVIEW_BAND", "0.05")
    assert Settings().review_band == 0.05
    monkeypatch.setenv("REVIEW_BAND", "1.5")
    with pytest.raises(ValidationError):
        Settings()


def test_export_feedback_takes_dates_and_times_in_utc_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["export-feedback", "--since", "2026-11-01"])
    assert (args.since, args.until, args.output) == (datetime(2026, 11, 1, tzinfo=UTC), None, None)
    args = parser.parse_args(["export-feedback", "--since", "2026-11-01T12:00:00+01:00", "--until", "2026-11-02",
                              "--output", "out.jsonl"])
    assert args.since == datetime(2026, 11, 1, 12, tzinfo=timezone(timedelta(hours=1)))
    assert args.until == datetime(2026, 11, 2, tzinfo=UTC) and args.output == Path("out.jsonl")
    for argv in (["export-feedback"], ["export-feedback", "--since", "last week"]):
        with pytest.raises(SystemExit) as usage:
            parser.parse_args(argv)
        assert usage.value.code == 2
    assert "not a date or time" in capsys.readouterr().err
