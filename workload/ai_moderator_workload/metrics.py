"""Prometheus metrics of the API and the workers. Names are the ones existing
dashboards and alert rules query (http_requests_total, celery_queue_length,
db_connection_pool_*): renaming one breaks them."""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .engine.pipeline import Decision

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests by method, route template and status.",
                        ["method", "route", "status"])
HTTP_DURATION = Histogram("http_request_duration_seconds", "HTTP request latency.", ["method", "route"],
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
TEXTS_MODERATED = Counter("moderation_texts_total", "Texts moderated, by outcome.", ["outcome"])
DECISIONS = Counter("moderation_decisions_total", "Flagged decisions by category.", ["category"])
BATCH_SIZE = Histogram("moderation_batch_size", "Texts per model call.",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
RATE_LIMITED = Counter("rate_limit_rejections_total", "Requests answered 429 by the per-key rate limiter.")
RATE_LIMITER_ERRORS = Counter("rate_limiter_errors_total", "Rate-limiter store errors (requests were allowed).")
STORAGE_QUOTA_REFUSED = Counter("storage_quota_rejections_total",
                                "Requests answered 429 because they would pass their key's daily storage quota.")
STORAGE_QUOTA_ERRORS = Counter("storage_quota_errors_total", "Storage-quota store errors (requests were allowed).")
QUEUE_PUBLISH_ERRORS = Counter("queue_publish_errors_total",
                               "Failed task publications (content stays pending; the sweeper re-queues it).")
TASKS = Counter("celery_tasks_total", "Moderation tasks by final state.", ["state"])
TASK_DURATION = Histogram("celery_task_duration_seconds", "Moderation task latency.",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
ACTIVE_TASKS = Gauge("celery_active_tasks", "Moderation tasks being processed now.", multiprocess_mode="livesum")
SWEPT = Counter("moderation_sweeper_requeued_total", "Pending content re-queued by the sweeper.")
CONTENT_FAILED = Counter("moderation_content_failed_total",
                         "Content given up on after max_task_attempts failed attempts (status failed).")
SHADOW_TEXTS = Counter("moderation_shadow_texts_total",
                       "Texts decided by the live and the shadow policy, by outcome: both_flagged, both_clear, "
                       "live_only or shadow_only (flagged by that policy alone).", ["outcome"])
SHADOW_CATEGORIES = Counter("moderation_shadow_categories_total",
                            "Categories flagged by the live or the shadow policy, by category and outcome: "
                            "both_flagged, live_only or shadow_only.", ["category", "outcome"])

FEEDBACK = Counter("moderation_feedback_total",
                   "Feedback from content owners, by verdict and named category (none when none was named).",
                   ["verdict", "category"])
REVIEWS = Counter("moderation_reviews_total",
                  "Human reviews, by outcome: agree (the model's flagged and categories) or overturn.", ["outcome"])
# Measured when an admin reads the first page of GET /api/v1/review, not at
# scrape time: the count scans content, and /metrics runs on the event loop.
# mostrecent: with several API processes, the last measurement of any of them.
REVIEW_QUEUE_DEPTH = Gauge("moderation_review_queue_depth",
                           "Items waiting for a human review, as last measured by the review queue route.",
                           multiprocess_mode="mostrecent")
REVIEW_OLDEST_AGE = Gauge("moderation_review_oldest_age_seconds",
                          "Age of the oldest item waiting for a human review when last measured (0: none).",
                          multiprocess_mode="mostrecent")
# min: with several processes on one metrics endpoint, the one furthest behind.
POLICY_REVISION = Gauge("moderation_policy_revision",
                        "Revision of tenant policies and blocklists this process decides with.",
                        multiprocess_mode="min")
CALLBACK_DELIVERIES = Counter("moderation_callback_deliveries_total",
                              "Callback attempts by outcome: delivered, retry (will be tried again) or failed "
                              "(given up).", ["outcome"])
CALLBACK_LATENCY = Histogram("moderation_callback_delivery_seconds",
                             "From the decision's commit to its callback's successful delivery.",
                             buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400))


def _agreement(live: bool, shadow: bool) -> str:
    if live:
        return "both_flagged" if shadow else "live_only"
    return "shadow_only" if shadow else "both_clear"


def record_decisions(decisions: Sequence[Decision]) -> None:
    BATCH_SIZE.observe(len(decisions))
    flagged = 0
    # Tallied first: one increment per label set and batch, not per text.
    shadow_texts: collections.Counter[str] = collections.Counter()
    shadow_categories: collections.Counter[tuple[str, str]] = collections.Counter()
    for decision in decisions:
        flagged += decision.flagged
        for category in decision.flagged_categories:
            DECISIONS.labels(category).inc()
        if decision.shadow is not None:
            shadow_texts[_agreement(decision.flagged, decision.shadow["flagged"])] += 1
            live, shadow = set(decision.flagged_categories), set(decision.shadow["categories"])
            for category in live | shadow:
                shadow_categories[category, _agreement(category in live, category in shadow)] += 1
    TEXTS_MODERATED.labels("flagged").inc(flagged)
    TEXTS_MODERATED.labels("clean").inc(len(decisions) - flagged)
    for outcome, n in shadow_texts.items():
        SHADOW_TEXTS.labels(outcome).inc(n)
    for (category, outcome), n in shadow_categories.items():
        SHADOW_CATEGORIES.labels(category, outcome).inc(n)


class GaugeCollector(Collector):
    """Gauges read at scrape time, e.g. pool usage and queue length. A failing
    reader skips its gauge rather than breaking the scrape, and so does one
    that returns None (nothing to report)."""

    def __init__(self, readers: dict[str, tuple[str, Callable[[], float | None]]]) -> None:
        self._readers = readers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, (doc, read) in self._readers.items():
            try:
                value = read()
            except Exception as exc:  # noqa: BLE001
                log.debug("metric reader failed", extra={"metric": name, "error": repr(exc)})
                continue
            if value is not None:
                yield GaugeMetricFamily(name, doc, value=value)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


_installed: list[Collector] = []


def install_collector(collector: Collector) -> None:
    """Register scrape-time gauges, replacing the previous ones (tests build several apps)."""
    while _installed:
        REGISTRY.unregister(_installed.pop())
    REGISTRY.register(collector)
    _installed.append(collector)


def metrics_registry() -> CollectorRegistry:
    """What /metrics exposes: this process's registry, or with several API
    processes the sum of all of them plus this process's scrape-time gauges."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    for collector in _installed:
        registry.register(collector)
    return registry
