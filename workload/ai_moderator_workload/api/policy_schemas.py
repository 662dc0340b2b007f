"""Bodies of the tenant policy, blocklist and key routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..db.models import CALLBACK_URL_MAX_CHARS, DESCRIPTION_MAX_CHARS
from ..engine.categories import Category
from ..engine.policy import Term
from ..policies import MAX_BLOCKLIST_TERMS, MAX_TERMS_PER_REQUEST
from .schemas import BlocklistNames, Name, no_nul

Description = Annotated[str | None, Field(max_length=DESCRIPTION_MAX_CHARS), AfterValidator(
    lambda v: v if v is None else no_nul(v))]
Threshold = Annotated[float, Field(gt=0, le=1)]
Phrase = Annotated[Term, AfterValidator(no_nul)]


class BlocklistRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: Description = None


class BlocklistView(BaseModel):
    name: str
    description: str | None
    items: int = Field(description=f"Terms on the list (at most {MAX_BLOCKLIST_TERMS}).")
    created_at: datetime
    updated_at: datetime


class BlocklistList(BaseModel):
    items: list[BlocklistView] = Field(description="By name.")


class TermRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    term: Phrase = Field(description="Word or phrase: matched whole-word and case-insensitively.")
    category: Category = Field(description="The category a match flags.")


class TermsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[TermRequest] = Field(min_length=1, max_length=MAX_TERMS_PER_REQUEST)


class TermView(BaseModel):
    id: str
    term: str
    category: str
    created_at: datetime


class TermsView(BaseModel):
    items: list[TermView] = Field(description="The terms sent, as stored (a term already on the list, in any "
                                              "case, took the new spelling and category).")


class TermsPage(BaseModel):
    items: list[TermView] = Field(description="Oldest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class PolicyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: Description = None
    thresholds: dict[Category, Threshold] = Field(
        default_factory=dict, description="Per-category thresholds; they replace the stack policy's for these "
                                          "categories.")
    default_threshold: Threshold | None = Field(
        default=None, description="Threshold of the categories `thresholds` does not list; null: the stack "
                                  "policy's threshold for each.")
    allowlist: list[Phrase] = Field(default_factory=list, max_length=10_000,
                                    description="Phrases removed before scoring, besides the stack policy's.")
    blocklists: BlocklistNames = Field(default_factory=list,
                                       description="Blocklists applied besides the stack policy's own blocklist.")


class PolicyView(BaseModel):
    name: str
    description: str | None
    thresholds: dict[str, float]
    default_threshold: float | None
    allowlist: list[str]
    blocklists: list[str]
    fingerprint: str = Field(description="The policy_version decisions under this policy record now.")
    keys: list[str] = Field(description="Ids of the active API keys bound to this policy.")
    created_at: datetime
    updated_at: datetime


class PolicyList(BaseModel):
    items: list[PolicyView] = Field(description="By name.")


class KeyUpdateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: Name | None = Field(default=None, description="Tenant policy; null: the stack's policy.")
    callback_url: str | None = Field(default=None, max_length=CALLBACK_URL_MAX_CHARS,
                                     description="Default callback URL; null: none.")


class KeyView(BaseModel):
    id: str
    name: str
    prefix: str
    is_admin: bool
    rate_limit_per_minute: int | None
    daily_storage_quota_bytes: int | None
    callback_url: str | None
    policy: str | None
    created_at: str | None
    revoked_at: str | None


class KeyList(BaseModel):
    items: list[KeyView] = Field(description="Oldest first, revoked ones too.")
