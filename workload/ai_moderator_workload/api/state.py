"""What the API process holds between requests, built in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from ..apikeys import KeyVerifier
from ..batching import MicroBatcher
from ..queueing import BrokerMonitor, Dispatcher, Sweeper
from ..quota import StorageQuota
from ..ratelimit import RateLimiter
from ..runtime import Runtime
from ..store import ContentRecord, Submission


@dataclass
class AppState:
    runtime: Runtime
    verifier: KeyVerifier
    limiter: RateLimiter
    quota: StorageQuota
    dispatcher: Dispatcher
    batcher: MicroBatcher[Submission, ContentRecord]
    broker: BrokerMonitor
    sweeper: Sweeper | None = None
