"""Callbacks: once an item's decision is committed, its view (the JSON of GET
/api/v1/content/{id}) is POSTed to the item's callback URL, signed with the
submitting key's callback secret.

Delivery is at least once. Every attempt is counted, and leased, in its own
transaction before the POST, so a worker killed mid-delivery leaves a lease
that runs out and the sweeper re-queues the item; the receiver may then see
the same delivery twice, always with the same X-AI-Moderator-Delivery id, on
which it dedupes.

Callback URLs are checked when submitted and again before every attempt
(DNS can change): http(s) only, the host on CALLBACK_ALLOWED_HOSTS when that
is set, and no address that reaches into the service's own network
(loopback, link-local with the cloud metadata address, private ranges unless
CALLBACK_ALLOW_PRIVATE) — server-side request forgery."""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import hmac
import http.client
import ipaddress
import logging
import random
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import SplitResult, urlsplit, urlunsplit

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from .db.models import CALLBACK_URL_MAX_CHARS, ApiKey, Content, DeliveryStatus, as_utc, utcnow
from .metrics import CALLBACK_DELIVERIES, CALLBACK_LATENCY
from .settings import Settings
from .store import to_record
from .views import view

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-AI-Moderator-Signature"
DELIVERY_HEADER = "X-AI-Moderator-Delivery"
ERROR_MAX_CHARS = 512
# Started early by at most this much, a queued attempt still runs: a Celery
# countdown and the stored due time are taken a few milliseconds apart.
EARLY_SLACK = timedelta(seconds=1)

Resolver = Callable[[str, int], list[str]]
Requeue = Callable[[uuid.UUID, float], None]


class CallbackRefused(ValueError):
    """A callback URL this service will not call; the message says why."""


def new_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-AI-Moderator-Signature value: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">.
    The time is signed too, so a receiver can refuse replays of old deliveries."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, tolerance: float = 300.0, now: float | None = None) -> bool:
    """What a receiver does: recompute the signature, compare in constant time,
    and refuse a timestamp further than `tolerance` seconds from now."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={fields.get('v1', '')}")


def backoff(attempt: int, base: float, cap: float, rand: Callable[[float, float], float] = random.uniform) -> float:
    """Delay before the retry that follows attempt `attempt` (1-based):
    exponential with full jitter, so receivers coming back from an outage
    are not hit by every retry at once."""
    return rand(0.0, min(cap, base * 2.0 ** min(attempt - 1, 62)))


def retryable(status: int) -> bool:
    """408, 429 and 5xx may pass; any other non-2xx answer is final."""
    return status in (408, 429) or status >= 500


def host_allowed(host: str, patterns: list[str]) -> bool:
    """Exact host names, or `*.example.com` for its subdomains; none means any host."""
    host = host.lower().rstrip(".")
    return not patterns or any(fnmatch.fnmatchcase(host, p) if "*" in p else host == p for p in patterns)


# Cloud metadata endpoints outside the link-local ranges (AWS's IPv6 one).
_METADATA = {ipaddress.ip_address("fd00:ec2::254")}
# Carrier-grade NAT: not "private" to the ipaddress module, but not public either.
_SHARED = ipaddress.ip_network("100.64.0.0/10")


def address_refused(address: str, allow_private: bool) -> str | None:
    """Why a callback may not go to this address, or None if it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip.is_link_local or ip in _METADATA:
        return "a link-local or cloud metadata address"
    if ip.is_loopback:  # before is_reserved: ::1 is in the reserved ::/8
        return None if allow_private else "a loopback address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "not a unicast address"
    if not allow_private and (ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED)):
        return "a private address"
    return None


def resolve(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})


def check_url(url: str, settings: Settings, resolver: Resolver = resolve) -> str:
    """The URL if callbacks may go there; CallbackRefused otherwise."""
    _vetted(url, settings, resolver)
    return url


def _vetted(url: str, settings: Settings, resolver: Resolver) -> tuple[SplitResult, int, list[str]]:
    """The URL's parts, port and the addresses its host resolves to, if
    callbacks may go there. Every address must pass, so a name with one
    private record among public ones is refused."""
    if len(url) > CALLBACK_URL_MAX_CHARS:
        raise CallbackRefused(f"is longer than {CALLBACK_URL_MAX_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise CallbackRefused(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused("must be an http or https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("must not hold credentials; receivers check the signature instead")
    host = parts.hostname
    if not host_allowed(host, settings.callback_host_patterns):
        raise CallbackRefused(f"host {host!r} is not on the service's CALLBACK_ALLOWED_HOSTS")
    try:
        addresses = [str(ipaddress.ip_address(host))]  # an address literal: nothing to resolve
    except ValueError:
        try:
            addresses = resolver(host, port)
        except (OSError, UnicodeError):
            raise CallbackRefused(f"host {host!r} does not resolve") from None
    for address in addresses:
        reason = address_refused(address, settings.callback_allow_private)
        if reason is not None:
            raise CallbackRefused(f"host {host!r} resolves to {reason} ({address}), which callbacks may not reach")
    if not addresses:
        raise CallbackRefused(f"host {host!r} does not resolve")
    return parts, port, addresses


def lease(settings: Settings) -> timedelta:
    """How long a claimed attempt keeps others off the item: its timeout can
    apply to connecting and to reading in turn, and 5 s cover recording it.
    After that, the sweeper may re-queue the item (the worker died)."""
    return timedelta(seconds=2 * settings.callback_timeout_seconds + 5)


@dataclass(frozen=True, slots=True)
class Attempt:
    content_id: uuid.UUID
    delivery_id: uuid.UUID
    url: str
    secret: str
    body: bytes
    attempt: int
    decided_at: datetime


def _key_secret(session: Session, tenant: str) -> str | None:
    with contextlib.suppress(ValueError):
        key = session.get(ApiKey, uuid.UUID(tenant))
        if key is not None and key.revoked_at is None:
            return key.callback_secret
    return None


def _fail(content: Content, error: str) -> str:
    content.delivery_status = DeliveryStatus.FAILED
    content.next_delivery_at = None
    content.delivery_error = error[:ERROR_MAX_CHARS]
    CALLBACK_DELIVERIES.labels("failed").inc()
    log.info("callback failed", extra={"content_id": str(content.id), "attempts": content.delivery_attempts})
    return "failed"


def _claim(sessions: sessionmaker[Session], content_id: uuid.UUID, settings: Settings) -> Attempt | str:
    """Count and lease the next attempt in its own transaction, before the
    POST: a worker killed during it leaves the count and a lease that runs out."""
    now = utcnow()
    with sessions() as session, session.begin():
        content = session.scalar(
            select(Content).where(Content.id == content_id, Content.delivery_status == DeliveryStatus.PENDING)
            .with_for_update(skip_locked=True, of=Content))
        # Not due: delivered meanwhile, leased by a running attempt, or a retry's time has not come.
        if (content is None or content.next_delivery_at is None or content.result is None
                or content.delivery_id is None or as_utc(content.next_delivery_at) > now + EARLY_SLACK):
            return "skipped"
        decided_at = as_utc(content.result.created_at)  # SQLite (the embedded mode) returns times without a zone
        if now - decided_at > timedelta(seconds=settings.callback_max_age_seconds):
            return _fail(content, f"gave up after {content.delivery_attempts} attempts in "
                                  f"{settings.callback_max_age_seconds:g} s: {content.delivery_error or 'not tried'}")
        secret = _key_secret(session, content.tenant)
        if secret is None:
            return _fail(content, "the submitting API key is revoked or has no callback secret")
        content.delivery_attempts += 1
        content.next_delivery_at = now + lease(settings)
        assert content.callback_url is not None
        body = orjson.dumps(view(to_record(content)))
        return Attempt(content.id, content.delivery_id, content.callback_url, secret, body,
                       content.delivery_attempts, decided_at)


def post(attempt: Attempt, settings: Settings, resolver: Resolver = resolve) -> tuple[str, str | None]:
    """One POST: (delivered | retry | failed, the error if not delivered).
    The connection goes to an address just checked, never to a second
    lookup of the name, which DNS could answer differently (rebinding); TLS
    still verifies the certificate against the URL's host name. Redirects
    are not followed: their target would escape the check."""
    try:
        parts, port, addresses = _vetted(attempt.url, settings, resolver)
    except CallbackRefused as exc:
        return "failed", f"callback_url {exc}"
    headers = {"Content-Type": "application/json", "User-Agent": "ai-moderator-callbacks",
               SIGNATURE_HEADER: sign(attempt.secret, int(time.time()), attempt.body),
               DELIVERY_HEADER: str(attempt.delivery_id)}
    timeout = settings.callback_timeout_seconds
    connection = (http.client.HTTPSConnection(parts.hostname or "", port, timeout=timeout,
                                              context=ssl.create_default_context())
                  if parts.scheme == "https" else http.client.HTTPConnection(parts.hostname or "", port,
                                                                             timeout=timeout))
    address = addresses[0]
    connection._create_connection = (  # type: ignore[attr-defined]
        lambda _, *args, **kwargs: socket.create_connection((address, port), *args, **kwargs))
    try:
        connection.request("POST", urlunsplit(("", "", parts.path or "/", parts.query, "")), attempt.body, headers)
        with connection.getresponse() as response:
            status = int(response.status)
    except (OSError, http.client.HTTPException) as exc:  # refused, timeouts, resets, TLS, malformed answers
        return "retry", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    finally:
        connection.close()
    if 200 <= status < 300:
        return "delivered", None
    return ("retry" if retryable(status) else "failed"), f"HTTP {status}"


def _record(sessions: sessionmaker[Session], attempt: Attempt, outcome: str, error: str | None,
            settings: Settings, requeue: Requeue) -> str:
    now = utcnow()
    delay = 0.0
    with sessions() as session, session.begin():
        content = session.scalar(
            select(Content).where(Content.id == attempt.content_id, Content.delivery_status == DeliveryStatus.PENDING,
                                  Content.delivery_id == attempt.delivery_id).with_for_update(of=Content))
        if content is None:  # deleted (retention) while the POST ran
            return "skipped"
        if outcome == "delivered":
            content.delivery_status = DeliveryStatus.DELIVERED
            content.delivered_at = now
            content.next_delivery_at = None
            content.delivery_error = None
            CALLBACK_DELIVERIES.labels("delivered").inc()
            CALLBACK_LATENCY.observe((now - attempt.decided_at).total_seconds())
            return outcome
        assert error is not None
        if outcome == "failed":
            return _fail(content, error)
        delay = backoff(attempt.attempt, settings.callback_backoff_base_seconds, settings.callback_backoff_cap_seconds)
        if now + timedelta(seconds=delay) - attempt.decided_at > timedelta(seconds=settings.callback_max_age_seconds):
            return _fail(content, f"gave up after {attempt.attempt} attempts in "
                                  f"{settings.callback_max_age_seconds:g} s: {error}")
        content.next_delivery_at = now + timedelta(seconds=delay)
        content.delivery_error = error[:ERROR_MAX_CHARS]
        CALLBACK_DELIVERIES.labels("retry").inc()
    requeue(attempt.content_id, delay)
    return outcome


def deliver(sessions: sessionmaker[Session], settings: Settings, content_id: uuid.UUID, requeue: Requeue) -> str:
    """One delivery attempt of an item's callback, if one is due: delivered,
    retry (queued again after a backoff), failed, or skipped (not due)."""
    attempt = _claim(sessions, content_id, settings)
    if isinstance(attempt, str):
        return attempt
    outcome, error = post(attempt, settings)
    return _record(sessions, attempt, outcome, error, settings, requeue)


def claim_overdue(sessions: sessionmaker[Session], older_than: timedelta, limit: int = 500) -> list[uuid.UUID]:
    """Ids of deliveries due for longer than `older_than` (their message was
    lost, or their worker died and its lease ran out). Each is made due now,
    so it is still claimable but not overdue again for `older_than`."""
    now = utcnow()
    with sessions() as session, session.begin():
        ids = list(session.scalars(
            select(Content.id).where(Content.delivery_status == DeliveryStatus.PENDING,
                                     Content.next_delivery_at < now - older_than)
            .order_by(Content.next_delivery_at).limit(limit).with_for_update(skip_locked=True)))
        if ids:
            session.execute(update(Content).where(Content.id.in_(ids)).values(next_delivery_at=now))
    return ids
