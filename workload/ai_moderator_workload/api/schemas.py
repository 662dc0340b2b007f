"""Request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from ..db.models import CALLBACK_URL_MAX_CHARS, NOTE_MAX_CHARS
from ..engine.categories import CATEGORIES, Category
from ..policies import MAX_BLOCKLISTS, NAME_PATTERN
from ..review import Verdict

METADATA_MAX_BYTES = 16 * 1024
METADATA_MAX_DEPTH = 8
_INT64 = (-(2**63), 2**63 - 1)


def no_nul(value: str) -> str:
    # PostgreSQL cannot store U+0000 in text: refused here, with the field named,
    # rather than failing the database write of every request batched with it.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


def _storable(value: Any, depth: int = 0) -> None:
    if depth > METADATA_MAX_DEPTH:
        raise ValueError(f"is nested deeper than {METADATA_MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            no_nul(key)
            _storable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _storable(item, depth + 1)
    elif isinstance(value, str):
        no_nul(value)
    elif isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
        raise ValueError("holds an integer outside the 64-bit range")


def _bounded_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None:
        _storable(value)
        if len(orjson.dumps(value)) > METADATA_MAX_BYTES:
            raise ValueError(f"is larger than {METADATA_MAX_BYTES} bytes as JSON")
    return value


ExternalId = Annotated[str, Field(min_length=1, max_length=255, description="Your id; idempotency key per API key."),
                       AfterValidator(no_nul)]
Metadata = Annotated[dict[str, Any] | None, Field(
    default=None, description=f"Stored with the content, returned as is: at most {METADATA_MAX_BYTES} bytes as JSON, "
                              f"{METADATA_MAX_DEPTH} levels deep, 64-bit integers, no NUL characters."),
    AfterValidator(_bounded_metadata)]
Text = Annotated[str, Field(min_length=1, description="Text to moderate."), AfterValidator(no_nul)]
Name = Annotated[str, Field(pattern=NAME_PATTERN, description="1 to 64 lower-case letters, digits, '.', '_' or '-', "
                                                               "starting and ending with a letter or digit.")]


def _distinct(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


BlocklistNames = Annotated[list[Name], Field(max_length=MAX_BLOCKLISTS), AfterValidator(_distinct)]
RequestBlocklists = Annotated[BlocklistNames, Field(
    description=f"Up to {MAX_BLOCKLISTS} blocklists (PUT /api/v1/blocklists/{{name}}) applied to this request "
                "besides those of the key's policy.")]


class TextPart(BaseModel):
    type: Literal["text"]
    text: Text


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: dict[str, Any]


InputPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class OpenAIModerationRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    input: Text | Annotated[list[Text], Field(min_length=1)] | Annotated[list[InputPart], Field(min_length=1)] = Field(
        description="A string, a list of strings, or a list of OpenAI input parts (text only).")
    model: str | None = Field(default=None, description="Accepted for compatibility; see the README for names.")
    blocklists: RequestBlocklists = []


class OpenAIResult(BaseModel):
    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]
    category_applied_input_types: dict[str, list[str]]


class OpenAIModerationResponse(BaseModel):
    id: str
    model: str
    results: list[OpenAIResult]


class ModerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text
    external_id: ExternalId | None = None
    metadata: Metadata
    blocklists: RequestBlocklists = []


class ContentRequest(ModerateRequest):
    callback_url: str | None = Field(
        default=None, max_length=CALLBACK_URL_MAX_CHARS,
        description="Where the decision is POSTed (the JSON of GET /api/v1/content/{id}, signed with the key's "
                    "callback secret) once committed; default: the key's callback URL. An http(s) URL whose host is "
                    "on the service's CALLBACK_ALLOWED_HOSTS and does not resolve to a loopback, link-local or "
                    "private address.")


class Span(BaseModel):
    category: str
    start: int
    end: int
    text: str
    source: Literal["rule", "blocklist", "model"] = Field(
        description="rule or blocklist: the phrase that matched; model: the window of a long text that drove "
                    "the category's score.")
    blocklist: str | None = Field(default=None, description="The named blocklist a blocklist span's term is on "
                                                            "(absent for the stack policy's own blocklist).")


class ShadowView(BaseModel):
    flagged: bool = Field(description="Whether the shadow policy would have flagged the text.")
    categories: list[str] = Field(description="Categories the shadow policy would have flagged.")
    policy_version: str = Field(description="The shadow policy's name and content hash.")


class DecisionView(BaseModel):
    flagged: bool
    categories: list[str] = Field(description="Flagged categories.")
    category_scores: dict[str, float]
    spans: list[Span]
    engine_version: str
    policy_version: str
    decided_at: datetime
    shadow: ShadowView | None = Field(
        description="What the stack's shadow policy would have decided on the same scores; never enforced. "
                    "Null when no shadow policy was configured.")


class ReviewView(BaseModel):
    flagged: bool = Field(description="The reviewer's decision.")
    categories: list[str] = Field(description="Categories the reviewer flagged.")
    note: str | None
    reviewed_by: str = Field(description="The reviewer's API key id.")
    reviewed_at: datetime


class CallbackView(BaseModel):
    url: str
    status: Literal["pending", "delivered", "failed"] | None = Field(
        description="null until decided; pending: being delivered or retried (with exponential backoff, up to "
                    "CALLBACK_MAX_AGE_SECONDS); failed: a final non-2xx answer or retries ran out.")
    attempts: int = Field(description="Delivery attempts so far.")
    delivered_at: datetime | None
    error: str | None = Field(description="The last attempt's error (network error or HTTP status).")


class ContentView(BaseModel):
    id: str
    external_id: str | None
    status: Literal["pending", "done", "failed"] = Field(
        description="failed: moderation was attempted max_task_attempts times and failed every time.")
    attempts: int = Field(description="Moderation attempts so far (0 for content moderated synchronously).")
    failure_reason: str | None = Field(description="Why the last attempt failed (the error, never the content).")
    created_at: datetime
    metadata: dict[str, Any] | None
    result: DecisionView | None = Field(description="The model's decision, kept as it was when a human reviews it.")
    decided_by: Literal["model", "human"] | None = Field(
        description="human: `review` overrides `result`; model: no review; null: not decided yet.")
    review: ReviewView | None = Field(description="The human decision (POST /api/v1/review/{id}), if any.")
    callback: CallbackView | None = Field(description="Delivery of the decision to callback_url; null without one.")


class ShadowCategoryCounts(BaseModel):
    live: int = Field(description="Decisions where the live policy flagged the category.")
    shadow: int = Field(description="Decisions where the shadow policy flagged the category.")


class ShadowSummary(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    seconds: int = Field(description="Length of the window, ending now.")
    decisions: int = Field(description="Decisions in the window that a shadow policy was evaluated on.")
    live_flagged: int
    shadow_flagged: int
    agreement: float | None = Field(description="Share of decisions where both policies agree on flagged; "
                                                "null without decisions.")
    shadow_policy: str | None = Field(description="policy_version of the newest decision's shadow policy.")
    categories: dict[str, ShadowCategoryCounts] = Field(description="Categories either policy flagged.")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """Every error, in OpenAI's shape."""
    error: ErrorDetail


def _in_category_order(categories: list[str]) -> list[str]:
    return [c for c in CATEGORIES if c in categories]


Categories = Annotated[list[Category], Field(max_length=len(CATEGORIES), description="Of the 13 categories; "
                                             "returned once each, in the API's category order."),
                       AfterValidator(_in_category_order)]
Note = Annotated[str, Field(max_length=NOTE_MAX_CHARS, description=f"Free text, at most {NOTE_MAX_CHARS} characters."),
                 AfterValidator(no_nul)]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Verdict = Field(description="correct; false_positive: flagged what it should not have (name the "
                                         "categories, or none for all of them); false_negative: missed something "
                                         "(name the categories it missed).")
    categories: Categories = []
    note: Note | None = None


class FeedbackView(BaseModel):
    id: str
    content_id: str
    verdict: Verdict
    categories: list[str]
    note: str | None
    created_at: datetime


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flagged: bool
    categories: Categories = []
    note: Note | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ReviewRequest:
        if self.flagged != bool(self.categories):
            raise ValueError("flagged must be true with at least one category, and false with none")
        return self


class ReviewQueuePage(BaseModel):
    items: list[ContentView] = Field(description="Oldest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class AuditEventView(BaseModel):
    id: int
    created_at: datetime
    actor: str = Field(description="Key id of who acted (or cli, serve, cleanup); never a key.")
    action: str = Field(description="e.g. apikey.create, apikey.revoke, review.record, content.cleanup.")
    target: str | None = Field(description="What was acted on: a key id or prefix, a content id.")
    details: dict[str, Any] | None = Field(description="Before/after summary; never content text or a key.")


class AuditPage(BaseModel):
    items: list[AuditEventView] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
