"""Tenant policies and named blocklists at decision time.

Every process (API pod, worker) holds a `PolicyCatalog`: the tenant policies,
the compiled blocklists and each key's policy, as of one revision of the
`policy_revision` row. Every change through the API bumps that row in its own
transaction; processes compare it every `POLICY_REFRESH_SECONDS` (1 s) and
reload when it moved, so a change is live everywhere within about a second,
with no broker involved (a version check, not pub/sub: a missed message
cannot leave a pod on an old policy).

A tenant policy is layered on the stack's (`spec.policy`): a category's
threshold is the tenant's for that category, else the tenant's
`default_threshold`, else the stack's; allowlists and blocklists add to the
stack's. The engine profile is always the stack's."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from .db.models import ApiKey, BlocklistItem, PolicyRevision, TenantPolicy
from .db.models import Blocklist as BlocklistRow
from .engine.categories import CATEGORIES
from .engine.policy import Policy
from .engine.policy_rules import Blocklist, PolicyRules, blocklist_of
from .engine.terms import TermMatcher, lowered
from .metrics import POLICY_REVISION

log = logging.getLogger(__name__)

# Lower-case letters, digits and . _ -, starting and ending with a letter or digit.
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"
MAX_BLOCKLIST_TERMS = 10_000
MAX_TERMS_PER_REQUEST = 1_000
MAX_BLOCKLISTS = 10  # attached to a policy, and named by one request
_CACHED_RULES = 1024


class UnknownName(LookupError):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"no {kind} named {name!r}")
        self.kind = kind
        self.name = name


@dataclass(frozen=True, slots=True)
class TenantRules:
    """A tenant policy as stored."""

    name: str
    thresholds: dict[str, float]
    default_threshold: float | None
    allowlist: tuple[str, ...]
    blocklists: tuple[str, ...]

    @classmethod
    def of(cls, row: TenantPolicy) -> TenantRules:
        return cls(row.name, dict(row.thresholds), row.default_threshold, tuple(row.allowlist), tuple(row.blocklists))

    def threshold(self, category: str, stack: Policy) -> float:
        if category in self.thresholds:
            return self.thresholds[category]
        return self.default_threshold if self.default_threshold is not None else stack.threshold(category)


@dataclass(slots=True)
class _Snapshot:
    revision: int | None
    policies: dict[str, TenantRules] = field(default_factory=dict)
    blocklists: dict[str, Blocklist] = field(default_factory=dict)
    key_policies: dict[str, str] = field(default_factory=dict)
    rules: dict[tuple[str | None, tuple[str, ...]], PolicyRules] = field(default_factory=dict)
    allowlists: dict[str, TermMatcher] = field(default_factory=dict)  # a tenant's, with the stack's


class PolicyCatalog:
    def __init__(self, stack: Policy, refresh_seconds: float = 1.0) -> None:
        self.stack = stack
        self.refresh_seconds = refresh_seconds
        self._stack_blocklist = blocklist_of(stack)
        self._stack_allowlist = TermMatcher(stack.allowlist)
        self._snapshot = _Snapshot(None)
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def refresh(self, sessions: sessionmaker[Session]) -> bool:
        """Reload if the revision moved; True if it did. One small query when not."""
        with self._lock:
            self._checked = time.monotonic()
            with sessions() as session:
                if session.get_bind().dialect.name == "postgresql":
                    # One snapshot of every table: a change committed between two of the
                    # reads below must not mix two revisions.
                    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                revision = session.scalar(select(PolicyRevision.revision).where(PolicyRevision.id == 1))
                if revision is None or revision == self._snapshot.revision:
                    return False
                snapshot = _load(session, revision)
            # Compiled before the swap, so no request waits for a tenant's allowlist to compile.
            # Not strict: a policy naming a missing blocklist must not stop every process from loading.
            for name in snapshot.policies:
                self._resolve(snapshot, name, (), strict=False)
            self._snapshot = snapshot
            POLICY_REVISION.set(revision)
            log.info("tenant policies loaded", extra={"revision": revision, "policies": len(snapshot.policies),
                                                      "blocklists": len(snapshot.blocklists)})
            return True

    def refresh_if_due(self, sessions: sessionmaker[Session]) -> None:
        """For processes without a refresh loop (workers): at most one check
        per `refresh_seconds`, and every time until a first load succeeded
        (raising what stopped it), so nothing is decided without them."""
        if self._snapshot.revision is None or time.monotonic() - self._checked >= self.refresh_seconds:
            self.refresh(sessions)

    @property
    def loaded(self) -> bool:
        return self._snapshot.revision is not None

    def policy_of(self, key_id: str) -> str | None:
        return self._snapshot.key_policies.get(key_id)

    def unknown_blocklists(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if n not in self._snapshot.blocklists]

    def rules(self, policy: str | None, extra: Iterable[str] = (), strict: bool = True) -> PolicyRules | None:
        """The rules of `policy` (None: the stack's) with the `extra`
        blocklists; None when that is the stack's policy as it stands. An
        unknown name raises UnknownName, or with `strict=False` is left out
        (an item queued before its policy or blocklist was deleted is still
        decided)."""
        # Sorted: the order a request names its blocklists in changes nothing (one cache entry, one fingerprint).
        extra = tuple(sorted(set(extra)))
        if policy is None and not extra:
            return None
        return self._resolve(self._snapshot, policy, extra, strict)

    def _resolve(self, snapshot: _Snapshot, policy: str | None, extra: tuple[str, ...],
                 strict: bool = True) -> PolicyRules:
        key = (policy, extra)
        cached = snapshot.rules.get(key)
        if cached is not None:
            return cached
        tenant = snapshot.policies.get(policy) if policy is not None else None
        complete = policy is None or tenant is not None
        if not complete:
            _missing("tenant policy", str(policy), strict)
        lists = []
        for name in dict.fromkeys([*(tenant.blocklists if tenant else ()), *extra]):
            if name in snapshot.blocklists:
                lists.append(snapshot.blocklists[name])
            else:
                complete = False
                _missing("blocklist", name, strict)
        allowlist = self._stack_allowlist
        if tenant is not None and tenant.allowlist:
            # Compiled once per snapshot, not once per combination of blocklists a request names.
            if tenant.name not in snapshot.allowlists:
                snapshot.allowlists[tenant.name] = TermMatcher([*self.stack.allowlist, *tenant.allowlist])
            allowlist = snapshot.allowlists[tenant.name]
        rules = self._layered(tenant, lists, extra, allowlist)
        # Rules missing a name are not cached: a strict call for the same key must still raise.
        if complete:
            if len(snapshot.rules) >= _CACHED_RULES:
                snapshot.rules.clear()
            snapshot.rules[key] = rules
        return rules

    def _layered(self, tenant: TenantRules | None, blocklists: Sequence[Blocklist],
                 extra: Sequence[str], allowlist: TermMatcher) -> PolicyRules:
        """The rules of `tenant` (None: the stack's policy alone) with the named
        `blocklists` (the tenant's, then those a request named: `extra`), on
        top of the stack's policy; `allowlist` is the stack's with the
        tenant's. The fingerprint hashes all of it."""
        stack = self.stack
        name = stack.version if tenant is None else tenant.name
        # Lists by name and phrases as matched: their order and case change nothing.
        identity = {"stack": stack.fingerprint, "policy": None if tenant is None else {
            "thresholds": tenant.thresholds, "default_threshold": tenant.default_threshold,
            "allowlist": sorted({lowered(p) for p in tenant.allowlist})},
            "blocklists": sorted([str(b.name), b.digest] for b in blocklists)}
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        thresholds = [stack.threshold(c) if tenant is None else tenant.threshold(c, stack) for c in CATEGORIES]
        return PolicyRules(f"{name}@{digest[:12]}", thresholds, allowlist, [self._stack_blocklist, *blocklists],
                           policy=None if tenant is None else tenant.name, extra=extra)


def _missing(kind: str, name: str, strict: bool) -> None:
    if strict:
        raise UnknownName(kind, name)
    log.warning("deciding without a deleted %s", kind, extra={"missing": name})


def _load(session: Session, revision: int) -> _Snapshot:
    policies = {row.name: TenantRules.of(row) for row in session.scalars(select(TenantPolicy))}
    terms: dict[str, list[tuple[str, str]]] = {}
    for blocklist, term, category in session.execute(
            select(BlocklistItem.blocklist, BlocklistItem.term, BlocklistItem.category)):
        terms.setdefault(blocklist, []).append((term, category))
    names = session.scalars(select(BlocklistRow.name))
    blocklists = {name: Blocklist.compile(name, terms.get(name, ())) for name in names}
    keys = session.execute(select(ApiKey.id, ApiKey.policy).where(ApiKey.policy.is_not(None))).all()
    return _Snapshot(revision, policies, blocklists, {str(k): str(p) for k, p in keys})
