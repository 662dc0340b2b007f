"""Process settings, read from the environment: prefix-free names, the same
as the Secret keys and env variables the operator writes into every pod."""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Rate limits charge a text route one unit per input per started UNIT_CHARS
# characters: "hi" costs 1, a list of 256 texts of 32,000 characters 2,048.
UNIT_CHARS = 4000

# Kubernetes' decimal and binary suffixes, so a quantity from a ModerationStack
# spec means the same here.
_BYTE_SUFFIXES = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                  "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_BYTES = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(k|M|G|T|Ki|Mi|Gi|Ti)?\s*")


def parse_bytes(value: str) -> int:
    """A whole number of bytes, plain or with a suffix: 1048576, 500M, 2G, 1Gi, 1.5k."""
    match = _BYTES.fullmatch(value)
    amount = Decimal(match.group(1)) * _BYTE_SUFFIXES[match.group(2) or ""] if match else None
    if amount is None or amount != amount.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number of bytes like 1048576, 500M, 2G or 1Gi")
    return int(amount)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    database_url: str = Field(
        default="sqlite:///./ai-moderator.sqlite3",
        description="SQLAlchemy URL. Unset means the embedded SQLite file, for a quick local run only.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Celery broker and rate-limit store. Unset means queued work runs in-process.",
    )
    api_workers: int = Field(default=1, ge=1, le=64,
                             description="API processes sharing the port (`serve --workers` overrides it).")
    scratch_database_url: SecretStr | None = Field(
        default=None, description="Where `verify-backup` restores into; a temporary database on DATABASE_URL's "
                                  "server when unset.")
    admin_api_key: SecretStr | None = Field(
        default=None, description="Bootstrap admin key, accepted without a database row (from the operator's Secret)."
    )
    secret_key: SecretStr | None = Field(default=None, description="Reserved for signing; never logged.")
    policy_file: Path | None = Field(default=None, description="YAML moderation policy (ConfigMap mount).")
    policy_refresh_seconds: float = Field(
        default=1.0, gt=0, le=5, description="How often each process checks for changed tenant policies and "
                                             "blocklists (a changed one is live within this time).")
    shadow_policy_file: Path | None = Field(
        default=None, description="YAML shadow policy, decided beside the live one and never enforced; its "
                                  "allowlist and engine must be the live policy's (ConfigMap mount).")

    max_text_chars: int = Field(default=32_000, ge=1, description="Longest accepted single text.")
    max_inputs: int = Field(default=256, ge=1, description="Most texts in one request.")
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, description="Largest accepted request body.")

    api_key_cache_seconds: float = Field(default=10.0, ge=0, description="How long a verified key is trusted "
                                         "before the database is asked again (revocation delay).")
    rate_limit_per_minute: int = Field(default=6000, ge=0, description="Default per-key rate; 0 disables limiting.")
    rate_limit_burst: int = Field(default=200, ge=1, description="Token bucket size.")
    daily_storage_quota_bytes: int = Field(
        default=0, ge=0, description="Default per-key bytes of content stored per UTC day (texts as UTF-8 plus "
                                     "metadata as JSON), e.g. 500M or 2Gi; 0 means no quota.")

    review_band: float = Field(
        default=0.1, ge=0, le=1, description="The review queue holds flagged items and those with a category "
                                             "score within this distance of the live policy's threshold.")

    batch_max_size: int = Field(default=512, ge=1, description="Most texts scored in one model call.")
    batch_max_wait_ms: float = Field(default=2.0, ge=0, description="How long an idle batcher waits to fill a batch.")

    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)

    sweep_interval_seconds: float = Field(default=30.0, gt=0,
                                          description="How often stuck pending content is re-queued.")
    pending_timeout_seconds: float = Field(default=120.0, gt=0,
                                           description="Age after which pending content is re-queued.")
    broker_visibility_timeout_seconds: int = Field(default=600, ge=1)
    max_task_attempts: int = Field(default=5, ge=1, description="Attempts at moderating queued content before it "
                                                                 "is marked failed.")

    callback_allowed_hosts: str = Field(
        default="", description="Comma-separated hosts callback URLs may name, exact or `*.` wildcards "
                                "(hooks.example.com,*.internal.example); empty means any host with a public "
                                "address.")
    callback_allow_private: bool = Field(
        default=False, description="Allow callbacks to private (RFC 1918, ULA) and loopback addresses; link-local "
                                   "and cloud metadata addresses are refused regardless.")
    callback_timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one callback attempt.")
    callback_max_age_seconds: float = Field(default=86400.0, gt=0, description="How long after the decision a "
                                            "failing callback is retried before it is marked failed.")
    callback_backoff_base_seconds: float = Field(default=10.0, gt=0, description="First retry delay bound; "
                                                 "doubled per attempt, with full jitter.")
    callback_backoff_cap_seconds: float = Field(default=3600.0, gt=0, description="Largest retry delay.")

    log_json: bool = Field(default=False, description="JSON logs (set in containers).")
    log_level: str = Field(default="INFO")

    @field_validator("redis_url", "policy_file", "shadow_policy_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("daily_storage_quota_bytes", mode="before")
    @classmethod
    def _byte_suffixes(cls, value: object) -> object:
        return parse_bytes(value) if isinstance(value, str) else value

    @property
    def callback_host_patterns(self) -> list[str]:
        return [h.strip().lower() for h in self.callback_allowed_hosts.split(",") if h.strip()]

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: work runs inside the API process."""
        return self.redis_url is None

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


@lru_cache
def get_settings() -> Settings:
    return Settings()
