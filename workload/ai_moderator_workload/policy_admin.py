"""Changes to tenant policies and blocklists (the admin routes). Each runs in
the caller's transaction, writes an audit event and bumps `policy_revision`,
so every process picks the change up on its next check (policies.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session

from .audit import record
from .db.models import ApiKey, Blocklist, BlocklistItem, PolicyRevision, TenantPolicy, utcnow
from .engine.terms import lowered
from .policies import MAX_BLOCKLIST_TERMS, UnknownName


class InUse(Exception):
    """A blocklist attached to a policy, or a policy keys are bound to."""


class TooManyTerms(Exception):
    pass


def bump_revision(session: Session) -> None:
    session.execute(update(PolicyRevision).where(PolicyRevision.id == 1)
                    .values(revision=PolicyRevision.revision + 1))


def _count(session: Session, name: str) -> int:
    return session.scalar(select(func.count()).select_from(BlocklistItem).where(BlocklistItem.blocklist == name)) or 0


@dataclass(frozen=True, slots=True)
class BlocklistInfo:
    row: Blocklist
    items: int


def blocklists(session: Session) -> list[BlocklistInfo]:
    counts: dict[str, int] = {name: n for name, n in session.execute(
        select(BlocklistItem.blocklist, func.count()).group_by(BlocklistItem.blocklist))}
    return [BlocklistInfo(row, counts.get(row.name, 0)) for row in session.scalars(select(Blocklist)
                                                                                      .order_by(Blocklist.name))]


def blocklist(session: Session, name: str) -> BlocklistInfo | None:
    row = session.get(Blocklist, name)
    return None if row is None else BlocklistInfo(row, _count(session, name))


def put_blocklist(session: Session, name: str, description: str | None, actor: str) -> tuple[BlocklistInfo, bool]:
    """Create the blocklist or change its description; (it, created)."""
    row = session.get(Blocklist, name, with_for_update=True)
    created = row is None
    if row is None:
        row = Blocklist(name=name, description=description)
        session.add(row)
        record(session, actor, "blocklist.create", name, {"after": {"description": description}})
        # A request may name the new list at once, before it holds a term.
        bump_revision(session)
    elif row.description != description:
        record(session, actor, "blocklist.update", name, {"before": {"description": row.description},
                                                          "after": {"description": description}})
        row.description = description
        row.updated_at = utcnow()
    session.flush()
    return BlocklistInfo(row, 0 if created else _count(session, name)), created


def _policies_using(session: Session, blocklist_name: str) -> list[str]:
    return [p.name for p in session.scalars(select(TenantPolicy).order_by(TenantPolicy.name))
            if blocklist_name in p.blocklists]


def delete_blocklist(session: Session, name: str, actor: str) -> bool:
    row = session.get(Blocklist, name, with_for_update=True)
    if row is None:
        return False
    using = _policies_using(session, name)
    if using:
        raise InUse(f"blocklist {name!r} is attached to the policies {using}: detach it from them first "
                    "(PUT /api/v1/policies/{name} without it).")
    items = _count(session, name)
    session.delete(row)
    record(session, actor, "blocklist.delete", name, {"before": {"description": row.description, "items": items}})
    bump_revision(session)
    return True


def _locked(session: Session, name: str) -> Blocklist:
    # The row lock serialises concurrent changes to one list, so its size limit holds.
    row = session.get(Blocklist, name, with_for_update=True)
    if row is None:
        raise UnknownName("blocklist", name)
    return row


def add_items(session: Session, name: str, items: Sequence[tuple[str, str]], actor: str) -> list[BlocklistItem]:
    """Add terms (term, category) to a list; a term already on it (in any case)
    takes the new spelling and category. Returns the items as stored."""
    row = _locked(session, name)
    existing = {i.term_key: i for i in session.scalars(select(BlocklistItem).where(BlocklistItem.blocklist == name))}
    before = len(existing)
    wanted = {lowered(term): (term, category) for term, category in items}
    new = [key for key in wanted if key not in existing]
    if before + len(new) > MAX_BLOCKLIST_TERMS:
        raise TooManyTerms(f"blocklist {name!r} holds {before} terms; adding {len(new)} new ones would pass its "
                           f"limit of {MAX_BLOCKLIST_TERMS}.")
    changed = []
    stored = []
    for key, (term, category) in wanted.items():
        item = existing.get(key)
        if item is None:
            item = BlocklistItem(blocklist=name, term=term, term_key=key, category=category)
            session.add(item)
        elif (item.term, item.category) != (term, category):
            changed.append({"before": {"term": item.term, "category": item.category},
                            "after": {"term": term, "category": category}})
            item.term, item.category = term, category
        stored.append(item)
    row.updated_at = utcnow()
    session.flush()
    record(session, actor, "blocklist.items.add", name, {
        "added": [{"term": wanted[k][0], "category": wanted[k][1]} for k in new], "changed": changed,
        "items": {"before": before, "after": before + len(new)}})
    bump_revision(session)
    return stored


def items(session: Session, name: str, after: tuple[datetime, uuid.UUID] | None,
          limit: int) -> tuple[list[BlocklistItem], bool]:
    """A page of a list's terms, oldest first; and whether more follow."""
    if session.get(Blocklist, name) is None:
        raise UnknownName("blocklist", name)
    i = BlocklistItem
    statement = select(i).where(i.blocklist == name).order_by(i.created_at, i.id).limit(limit + 1)
    if after is not None:
        statement = statement.where(tuple_(i.created_at, i.id) > tuple_(*after))
    found = list(session.scalars(statement))
    return found[:limit], len(found) > limit


def delete_item(session: Session, name: str, item_id: uuid.UUID, actor: str) -> bool:
    _locked(session, name)
    item = session.scalar(select(BlocklistItem).where(BlocklistItem.blocklist == name, BlocklistItem.id == item_id))
    if item is None:
        return False
    session.delete(item)
    record(session, actor, "blocklist.items.delete", name,
           {"before": {"id": str(item.id), "term": item.term, "category": item.category}})
    bump_revision(session)
    return True


@dataclass(frozen=True, slots=True)
class PolicyFields:
    description: str | None
    thresholds: dict[str, float]
    default_threshold: float | None
    allowlist: list[str]
    blocklists: list[str]

    def summary(self) -> dict[str, Any]:
        """For the audit log: the allowlist by size, it may be long."""
        return {"description": self.description, "thresholds": self.thresholds,
                "default_threshold": self.default_threshold, "allowlist": len(self.allowlist),
                "blocklists": self.blocklists}


def _fields(row: TenantPolicy) -> PolicyFields:
    return PolicyFields(row.description, dict(row.thresholds), row.default_threshold, list(row.allowlist),
                        list(row.blocklists))


def policies(session: Session) -> list[TenantPolicy]:
    return list(session.scalars(select(TenantPolicy).order_by(TenantPolicy.name)))


def bound_keys(session: Session, name: str) -> list[str]:
    return [str(k) for k in session.scalars(select(ApiKey.id).where(ApiKey.policy == name, ApiKey.revoked_at.is_(None))
                                            .order_by(ApiKey.created_at))]


def put_policy(session: Session, name: str, fields: PolicyFields, actor: str) -> tuple[TenantPolicy, bool]:
    """Create or replace a tenant policy; (it, created). Every attached blocklist must exist."""
    # Locked (in name order) so a concurrent delete_blocklist either sees this policy or deletes first.
    for blocklist_name in sorted(set(fields.blocklists)):
        if session.get(Blocklist, blocklist_name, with_for_update=True) is None:
            raise UnknownName("blocklist", blocklist_name)
    row = session.get(TenantPolicy, name, with_for_update=True)
    created = row is None
    if row is None:
        row = TenantPolicy(name=name)
        session.add(row)
        record(session, actor, "policy.create", name, {"after": fields.summary()})
    elif _fields(row) != fields:
        record(session, actor, "policy.update", name, {"before": _fields(row).summary(), "after": fields.summary()})
        row.updated_at = utcnow()
    else:
        return row, False
    row.description, row.thresholds, row.default_threshold = fields.description, fields.thresholds, \
        fields.default_threshold
    row.allowlist, row.blocklists = fields.allowlist, fields.blocklists
    session.flush()
    bump_revision(session)
    return row, created


def delete_policy(session: Session, name: str, actor: str) -> bool:
    row = session.get(TenantPolicy, name, with_for_update=True)
    if row is None:
        return False
    keys = bound_keys(session, name)
    if keys:
        raise InUse(f"policy {name!r} is the policy of {len(keys)} API keys ({', '.join(keys[:5])}"
                    f"{', …' if len(keys) > 5 else ''}): bind them to another policy first "
                    "(PATCH /api/v1/keys/{id} with \"policy\": null or another name).")
    # Revoked keys may still name it; they no longer decide anything.
    session.execute(update(ApiKey).where(ApiKey.policy == name).values(policy=None))
    session.delete(row)
    record(session, actor, "policy.delete", name, {"before": _fields(row).summary()})
    bump_revision(session)
    return True
