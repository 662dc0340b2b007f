"""Callback signing, retry backoff and the checks on callback URLs (SSRF)."""

from __future__ import annotations

import hashlib
import hmac
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ai_moderator_workload.callbacks import (
    Attempt,
    CallbackRefused,
    Resolver,
    address_refused,
    backoff,
    check_url,
    host_allowed,
    new_secret,
    post,
    retryable,
    sign,
    verify,
)
from ai_moderator_workload.settings import Settings


def resolver(table: dict[str, list[str]]) -> Resolver:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]
    return resolve


PUBLIC = resolver({"hooks.example.com": ["93.184.216.34"], "a.internal.example": ["93.184.216.35"],
                   "mixed.example.com": ["93.184.216.34", "10.0.0.5"], "localhost": ["127.0.0.1", "::1"],
                   "private.example.com": ["192.168.1.10"]})


def test_the_signature_is_hmac_sha256_of_time_dot_body() -> None:
    secret, body = new_secret(), b'{"id": "x"}'
    header = sign(secret, 1700000000, body)
    expected = hmac.new(secret.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify(secret, header, body, now=1700000010)
    assert not verify(new_secret(), header, body, now=1700000010)  # another secret
    assert not verify(secret, header, body + b" ", now=1700000010)  # another body
    assert not verify(secret, header, body, now=1700000000 + 301)  # a replay past the tolerance
    assert not verify(secret, "v1=abc", body) and not verify(secret, "t=x,v1=abc", body)


def test_secrets_are_random_and_long() -> None:
    assert new_secret() != new_secret() and len(new_secret()) >= 40


@pytest.mark.parametrize("attempt", range(1, 40))
def test_backoff_is_full_jitter_below_the_exponential_bound_and_the_cap(attempt: int) -> None:
    bound = min(3600.0, 10.0 * 2 ** (attempt - 1))
    assert backoff(attempt, 10.0, 3600.0, rand=lambda low, high: high) == bound
    assert backoff(attempt, 10.0, 3600.0, rand=lambda low, high: low) == 0.0
    assert 0.0 <= backoff(attempt, 10.0, 3600.0) <= bound


def test_huge_attempt_counts_do_not_overflow() -> None:
    assert backoff(10_000, 10.0, 3600.0, rand=lambda low, high: high) == 3600.0


@pytest.mark.parametrize(("status", "retry"), [(408, True), (429, True), (500, True), (503, True), (400, False),
                                                (401, False), (404, False), (410, False), (301, False)])
def test_which_answers_are_retried(status: int, retry: bool) -> None:
    assert retryable(status) is retry


def test_host_patterns() -> None:
    patterns = ["hooks.example.com", "*.internal.example"]
    assert host_allowed("hooks.example.com", patterns) and host_allowed("HOOKS.example.com.", patterns)
    assert host_allowed("a.internal.example", patterns) and host_allowed("a.b.internal.example", patterns)
    assert not host_allowed("internal.example", patterns) and not host_allowed("evil.com", patterns)
    assert not host_allowed("hooks.example.com.evil.com", patterns)
    assert host_allowed("anything.example", [])


@pytest.mark.parametrize("address", ["127.0.0.1", "127.1.2.3", "::1", "169.254.169.254", "169.254.1.1", "fe80::1",
                                     "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "10.0.0.1",
                                     "172.16.0.1", "192.168.0.1", "100.64.0.1", "fc00::1", "0.0.0.0", "::",
                                     "224.0.0.1"])
def test_internal_addresses_are_refused_by_default(address: str) -> None:
    assert address_refused(address, allow_private=False) is not None


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.0.0.1", "192.168.0.1", "fc00::1"])
def test_allow_private_opens_private_and_loopback(address: str) -> None:
    assert address_refused(address, allow_private=True) is None


@pytest.mark.parametrize("address", ["169.254.169.254", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254"])
def test_metadata_and_link_local_stay_refused_with_allow_private(address: str) -> None:
    assert address_refused(address, allow_private=True) is not None


def test_public_addresses_pass() -> None:
    assert address_refused("93.184.216.34", False) is None and address_refused("2606:2800:220:1::1", False) is None


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://hooks.example.com/x", "http or https"),
    ("https:///x", "http or https"),
    ("https://user:pw@hooks.example.com/x", "credentials"),
    ("https://localhost/x", "loopback"),
    ("https://127.0.0.1/x", "loopback"),
    ("https://[::1]:8080/x", "loopback"),
    ("http://169.254.169.254/latest/meta-data", "metadata"),
    ("https://private.example.com/x", "private"),
    ("https://mixed.example.com/x", "private"),  # one private record among public ones
    ("https://nowhere.example.com/x", "does not resolve"),
    ("https://hooks.example.com:99999/x", "not a valid URL"),
    ("https://hooks.example.com/" + "x" * 2048, "longer than"),
])
def test_refused_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(CallbackRefused, match=reason):
        check_url(url, Settings(), PUBLIC)


def test_the_allowlist_limits_hosts() -> None:
    settings = Settings(callback_allowed_hosts="hooks.example.com, *.internal.example")
    assert check_url("https://hooks.example.com/cb", settings, PUBLIC)
    assert check_url("http://a.internal.example:8080/cb", settings, PUBLIC)
    with pytest.raises(CallbackRefused, match="CALLBACK_ALLOWED_HOSTS"):
        check_url("https://other.example.com/cb", settings, PUBLIC)


def test_allowed_private_hosts() -> None:
    settings = Settings(callback_allowed_hosts="127.0.0.1", callback_allow_private=True)
    assert check_url("http://127.0.0.1:9999/cb", settings, resolver({"127.0.0.1": ["127.0.0.1"]}))
    with pytest.raises(CallbackRefused, match="CALLBACK_ALLOWED_HOSTS"):
        check_url("http://localhost:9999/cb", settings, PUBLIC)


@pytest.mark.parametrize(("status", "outcome"), [(204, "delivered"), (302, "failed"), (429, "retry"),
                                                  (502, "retry"), (403, "failed")])
def test_one_post_maps_the_answer_and_never_follows_redirects(status: int, outcome: str) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            self.send_header("Location", "http://169.254.169.254/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/cb"
    settings = Settings(callback_allow_private=True, callback_timeout_seconds=5)
    try:
        result, error = post(Attempt(uuid.uuid4(), uuid.uuid4(), url, "s", b"{}", 1, datetime.now(UTC)), settings)
    finally:
        server.server_close()
    assert result == outcome and (error is None) == (outcome == "delivered")
    assert error is None or error == f"HTTP {status}"


def test_a_refused_connection_is_retried_and_a_refused_host_fails() -> None:
    attempt = Attempt(uuid.uuid4(), uuid.uuid4(), "http://127.0.0.1:9/cb", "s", b"{}", 1, datetime.now(UTC))
    result, error = post(attempt, Settings(callback_allow_private=True, callback_timeout_seconds=2))
    assert result == "retry" and error is not None and "refused" in error.lower()
    # Checked again at delivery time: refused without CALLBACK_ALLOW_PRIVATE.
    assert post(attempt, Settings()) == ("failed", "callback_url host '127.0.0.1' resolves to a loopback address "
                                                    "(127.0.0.1), which callbacks may not reach")


def test_the_post_goes_to_the_address_that_was_checked_not_to_a_second_lookup() -> None:
    """DNS rebinding: a name checked as one address must not be connected to
    through another answer. `hooks.invalid` never resolves on this machine,
    so the POST reaches the receiver only through the checked address."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(f"{self.headers['Host']} {self.path}")
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    port = server.server_address[1]
    lookups: list[str] = []

    def once(host: str, _: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    attempt = Attempt(uuid.uuid4(), uuid.uuid4(), f"http://hooks.invalid:{port}/cb?x=1", "s", b"{}", 1,
                      datetime.now(UTC))
    try:
        result = post(attempt, Settings(callback_allow_private=True, callback_timeout_seconds=5), once)
    finally:
        server.server_close()
    assert result == ("delivered", None)
    assert lookups == ["hooks.invalid"]
    assert seen == [f"hooks.invalid:{port} /cb?x=1"]
