"""Request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ExternalId = Annotated[str, Field(min_length=1, max_length=255, description="Your id; idempotency key per API key.")]
Metadata = Annotated[dict[str, Any] | None, Field(default=None, description="Stored with the content, returned as is.")]
Text = Annotated[str, Field(min_length=1, description="Text to moderate.")]


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


class ContentRequest(ModerateRequest):
    pass


class Span(BaseModel):
    category: str
    start: int
    end: int
    text: str
    source: Literal["rule", "blocklist", "model"] = Field(
        description="rule or blocklist: the phrase that matched; model: the window of a long text that drove "
                    "the category's score.")


class DecisionView(BaseModel):
    flagged: bool
    categories: list[str] = Field(description="Flagged categories.")
    category_scores: dict[str, float]
    spans: list[Span]
    engine_version: str
    policy_version: str
    decided_at: datetime


class ContentView(BaseModel):
    id: str
    external_id: str | None
    status: Literal["pending", "done"]
    created_at: datetime
    metadata: dict[str, Any] | None
    result: DecisionView | None
