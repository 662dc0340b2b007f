"""The operator follows exactly the user Secrets stacks reference, each by
name on the server, and resumes a watch where it left off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from ai_moderator_operator.secretwatch import ReferencedSecrets


class ScriptedWatches:
    """Each watch call gets the next scripted list of events, then waits (as a
    quiet watch does) until cancelled."""

    def __init__(self, *scripts: list[dict[str, Any]]) -> None:
        self.scripts = list(scripts)
        self.calls: list[tuple[str, str, str | None]] = []

    async def watch(self, api_version: str, kind: str, namespace: str, field_selector: str,
                    resource_version: str | None = None) -> AsyncIterator[dict[str, Any]]:
        assert (api_version, kind) == ("v1", "Secret")
        self.calls.append((namespace, field_selector, resource_version))
        for event in self.scripts.pop(0) if self.scripts else []:
            yield event
        if not self.scripts:
            await asyncio.Event().wait()


def event(kind: str, version: str) -> dict[str, Any]:
    return {"type": kind, "object": {"metadata": {"name": "db", "resourceVersion": version}}}


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_only_referenced_secrets_are_watched_each_narrowed_to_its_name() -> None:
    kube = ScriptedWatches()
    secrets = ReferencedSecrets(kube, lambda ns, name: None)
    secrets.sync({("prod", "db"), ("prod", "s3")})
    await settle()
    assert sorted(c[:2] for c in kube.calls) == [("prod", "metadata.name=db"), ("prod", "metadata.name=s3")]
    secrets.sync({("prod", "s3")})
    assert secrets.watched == {("prod", "s3")}, "a Secret no stack references any more is not watched"
    await secrets.close()
    assert secrets.watched == set()


async def test_changes_are_reported_and_the_watch_resumes_from_the_last_version() -> None:
    changed: list[tuple[str, str]] = []
    kube = ScriptedWatches([event("ADDED", "10"), event("MODIFIED", "11"), event("BOOKMARK", "15")],
                           [{"type": "ERROR", "object": {"code": 410}}], [event("MODIFIED", "20")])
    secrets = ReferencedSecrets(kube, lambda ns, name: changed.append((ns, name)))
    secrets.sync({("prod", "db")})
    await settle()
    assert changed == [("prod", "db")] * 3, "ADDED and MODIFIED wake the stacks, bookmarks do not"
    versions = [c[2] for c in kube.calls]
    assert versions == [None, "15", None], "resumed after the bookmark; afresh after 410 Gone"
    await secrets.close()
