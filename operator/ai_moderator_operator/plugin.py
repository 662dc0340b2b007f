"""`kubectl moderation`, a kubectl plugin: kubectl runs the console script
`kubectl-moderation` it finds on PATH. It shows a ModerationStack with its
conditions and a tree of its children, and asks the operator for what the
stack's annotations ask for (a backup now, a restore, pause and resume,
promoting the shadow policy, retrying the quality gate), waiting for the
outcome where the operator reports one. It talks only to the API server,
with the user's kubeconfig: kubectl hands plugins its environment but not
its global flags, hence -n and --kubeconfig of our own."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TextIO, TypeVar

import aiohttp
import kopf
import yaml

from .api import API_VERSION, KIND
from .builders import Manifest
from .kube import ApiError, HttpKube, Kube
from .naming import (
    BACKUP_NOW_ANNOTATION,
    PAUSED_ANNOTATION,
    PROMOTE_SHADOW_ANNOTATION,
    RESTORE_ANNOTATION,
    RETRY_QUALITY_GATE_ANNOTATION,
    Names,
    labels,
)
from .reconcile.jobs import JobOutcomes, job_state, parse_time
from .resources import TABLE
from .status import Workload, now_iso

T = TypeVar("T")
Command = Callable[[Kube, str, argparse.Namespace], Awaitable[int]]

# Exit codes. 3 and 4 come from `status` only, so a script can tell a stack
# that is unwell from one the plugin could not read (1) or a usage error (2,
# from argparse).
OK, FAILED, DEGRADED, NOT_READY = 0, 1, 3, 4
POLL_SECONDS = 1.0
FINISHED = ("Succeeded", "Failed")
# What the operator creates: the kinds it watches or prunes (not the Pods,
# Events and CRDs it only reads).
CHILD_KINDS = [r for r in TABLE if r.watched or r.prunable]
# Why a wait usually times out: nobody acted on the request.
NOT_ACTING_HINT = "; is the operator running, and has the stack rolled out a version? See `kubectl moderation status`"


class Failure(Exception):
    """A refusal or a failed operation: one line on stderr, exit code 1."""


def age(stamp: str | None, now: datetime) -> str:
    """How long ago, as kubectl writes ages (45s, 12m, 3h, 5d); "-" for never."""
    if not stamp:
        return "-"
    seconds = max(0, int((now - parse_time(stamp)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _when(stamp: str | None, now: datetime) -> str:
    return f"{stamp} ({age(stamp, now)} ago)" if stamp else "never"


# Health of one child: a word to scan the tree by, and the detail behind it.
Health = tuple[str, str]


def _deployment(obj: Manifest, now: datetime) -> Health:
    workload = Workload.of(obj)
    return ("Ready" if workload.settled else "Progressing"), f"{workload.summary} ready"


def _statefulset(obj: Manifest, now: datetime) -> Health:
    ready = (obj.get("status") or {}).get("readyReplicas", 0)
    desired = obj.get("spec", {}).get("replicas", 1)
    return ("Ready" if Workload.of_statefulset(obj) else "Progressing"), f"{ready}/{desired} ready"


def _job(obj: Manifest, now: datetime) -> Health:
    state, status = job_state(obj), obj.get("status") or {}
    if state.phase == "Succeeded":
        return "Complete", f"completed {age(status.get('completionTime'), now)} ago"
    if state.phase == "Failed":
        return "Failed", state.message
    started = status.get("startTime")
    return "Running", f"started {age(started, now)} ago" if started else "waiting to start"


def _cronjob(obj: Manifest, now: datetime) -> Health:
    spec, last = obj.get("spec", {}), (obj.get("status") or {}).get("lastScheduleTime")
    runs = f"last run {age(last, now)} ago" if last else "never run"
    return ("Suspended" if spec.get("suspend") else "Scheduled"), f'"{spec.get("schedule", "")}", {runs}'


def _pvc(obj: Manifest, now: datetime) -> Health:
    status = obj.get("status") or {}
    size = (status.get("capacity") or {}).get("storage") or (
        obj.get("spec", {}).get("resources", {}).get("requests", {}).get("storage", ""))
    return status.get("phase", "Pending"), str(size)


def _service(obj: Manifest, now: datetime) -> Health:
    return "Present", obj.get("spec", {}).get("type", "ClusterIP")


def _keys(obj: Manifest, now: datetime) -> Health:
    count = len(obj.get("data") or {})
    return "Present", f"{count} key{'' if count == 1 else 's'}"


def _hpa(obj: Manifest, now: datetime) -> Health:
    spec, status = obj.get("spec", {}), obj.get("status") or {}
    active = any(c.get("type") == "ScalingActive" and c.get("status") == "True" for c in status.get("conditions") or [])
    replicas = (f"{status.get('currentReplicas', 0)}/{status.get('desiredReplicas', 0)} replicas "
                f"(min {spec.get('minReplicas', 1)}, max {spec.get('maxReplicas', '?')})")
    return ("Active" if active else "Inactive"), replicas


def _pdb(obj: Manifest, now: datetime) -> Health:
    status = obj.get("status") or {}
    allowed = status.get("disruptionsAllowed", 0)
    return "Present", (f"{allowed} disruption{'' if allowed == 1 else 's'} allowed "
                       f"({status.get('currentHealthy', 0)} healthy, {status.get('desiredHealthy', 0)} needed)")


def _present(obj: Manifest, now: datetime) -> Health:
    """Kinds without a health of their own, unless they report a Ready condition (a ScaledObject)."""
    ready = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None:
        return "Present", ""
    return ("Ready" if ready.get("status") == "True" else "NotReady"), ready.get("message", "")


HEALTH: dict[str, Callable[[Manifest, datetime], Health]] = {
    "Deployment": _deployment, "StatefulSet": _statefulset, "Job": _job, "CronJob": _cronjob,
    "PersistentVolumeClaim": _pvc, "Service": _service, "Secret": _keys, "ConfigMap": _keys,
    "HorizontalPodAutoscaler": _hpa, "PodDisruptionBudget": _pdb,
}


@dataclass(frozen=True)
class Child:
    kind: str
    name: str
    health: str
    detail: str


def child(kind: str, obj: Manifest, now: datetime) -> Child:
    # Items of a list response carry no kind, hence the kind it was listed as.
    word, detail = HEALTH.get(kind, _present)(obj, now)
    return Child(kind, obj["metadata"]["name"], word, detail)


async def list_children(kube: Kube, namespace: str, stack: str) -> tuple[list[tuple[str, Manifest]], dict[str, str]]:
    """Every child by kind (in CHILD_KINDS order, then by name), and the kinds
    the user may not list with why: a user without access to Secrets still
    sees the rest of the tree."""
    selector = ",".join(f"{k}={v}" for k, v in labels(stack, None).items())

    async def listed(api_version: str, kind: str) -> list[Manifest] | str:
        try:
            return await kube.list(api_version, kind, namespace, selector)
        except ApiError as exc:
            if exc.status != 403:
                raise
            return exc.message

    lists = await asyncio.gather(*(listed(r.api_version, r.kind) for r in CHILD_KINDS))
    found: list[tuple[str, Manifest]] = []
    unlisted: dict[str, str] = {}
    for resource, items in zip(CHILD_KINDS, lists, strict=True):
        if isinstance(items, str):
            unlisted[resource.kind] = items
        else:
            found += [(resource.kind, obj) for obj in sorted(items, key=lambda o: o["metadata"]["name"])]
    return found, unlisted


def report(stack: Manifest, children: list[Child], unlisted: dict[str, str], now: datetime) -> dict[str, Any]:
    """What `status` prints: the text is rendered from this, `-o json` is this."""
    meta, status = stack["metadata"], stack.get("status") or {}
    conditions = [{**c, "age": age(c.get("lastTransitionTime"), now)} for c in status.get("conditions") or []]
    ready = next((c for c in conditions if c.get("type") == "Ready"), {})
    backup_spec = (stack.get("spec") or {}).get("backup")
    return {
        "name": meta["name"], "namespace": meta["namespace"], "phase": status.get("phase"),
        "version": status.get("version"), "targetVersion": status.get("targetVersion"),
        "endpoint": status.get("endpoint"), "message": ready.get("message"), "conditions": conditions,
        "backupSchedule": backup_spec.get("schedule") if backup_spec else None,
        "backup": status.get("backup"), "restore": status.get("restore"),
        "children": [asdict(c) for c in children], "unlisted": unlisted,
    }


def exit_code(phase: str | None) -> int:
    return OK if phase == "Ready" else DEGRADED if phase == "Degraded" else NOT_READY


def _table(rows: Sequence[tuple[str, ...]], indent: str = "") -> list[str]:
    """Columns padded to their widest cell; the last one is free text."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [(indent + "".join(cell.ljust(width + 2) for cell, width in zip(row, widths, strict=False))
             + row[-1]).rstrip() for row in rows]


def _backup_lines(r: dict[str, Any], now: datetime) -> list[str]:
    if r["backupSchedule"] is None:
        return ["Backup  not configured (spec.backup is unset)"]
    b = r["backup"] or {}
    verify = f"{b['lastVerifyResult']} {_when(b.get('lastVerifyTime'), now)}" if b.get("lastVerifyResult") else "never"
    if b.get("lastVerifyError"):
        verify += f": {b['lastVerifyError']}"
    head = f'Backup  "{r["backupSchedule"]}"' + (f" to {b['location']}" if b.get("location") else "")
    return [head, *_table([("Last success", _when(b.get("lastSuccessTime"), now)),
                           ("Last error", b.get("lastError") or "-"), ("Last verify", verify)], "  ")]


def _restore_line(restore: dict[str, Any]) -> str:
    facts = ([f"Job {restore['job']}"] if restore.get("job") else []) + (
        [restore["completionTime"]] if restore.get("completionTime") else [])
    return (f"Restore  {restore.get('request')}: {restore.get('phase')}" + (f" ({', '.join(facts)})" if facts else "")
            + (f": {restore['message']}" if restore.get("message") else ""))


def _tree(root: str, children: list[dict[str, str]], unlisted: dict[str, str]) -> list[str]:
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for c in children:
        groups.setdefault(c["kind"], []).append((c["name"], c["health"], c["detail"]))
    for kind, reason in unlisted.items():
        groups[kind] = [("?", "Unknown", f"cannot list: {reason}")]
    kinds = [r.kind for r in CHILD_KINDS if r.kind in groups]
    rows = [(root, "", "")]
    for i, kind in enumerate(kinds):
        last_kind = i == len(kinds) - 1
        rows.append((("└── " if last_kind else "├── ") + kind, "", ""))
        for j, (name, health, detail) in enumerate(groups[kind]):
            branch = ("    " if last_kind else "│   ") + ("└── " if j == len(groups[kind]) - 1 else "├── ")
            rows.append((branch + name, health, detail))
    if not kinds:
        rows.append(("└── (no children yet)", "", ""))
    return _table(rows)


def render(r: dict[str, Any], now: datetime) -> str:
    version = r["version"] or "none rolled out yet"
    if r["targetVersion"] and r["targetVersion"] != r["version"]:
        version += f" (target {r['targetVersion']})"
    lines = [f"ModerationStack {r['namespace']}/{r['name']}: {r['phase'] or 'no status yet'}",
             *_table([("Version", version), ("Endpoint", r["endpoint"] or "-"), ("Message", r["message"] or "-")],
                     "  ")]
    if r["conditions"]:
        rows = [("TYPE", "STATUS", "REASON", "AGE", "MESSAGE")] + [
            (c["type"], c["status"], c.get("reason", ""), c["age"], c.get("message", "")) for c in r["conditions"]]
        lines += ["", "Conditions", *_table(rows, "  ")]
    lines += ["", *_backup_lines(r, now)]
    if r["restore"]:
        lines += ["", _restore_line(r["restore"])]
    lines += ["", "Children", *_tree(r["name"], r["children"], r["unlisted"])]
    return "\n".join(lines)


def confirm(question: str, yes: bool, stdin: TextIO) -> None:
    """Ask on the terminal unless --yes; with no terminal to ask on, refuse
    rather than guess (a script must say --yes)."""
    if yes:
        return
    if not stdin.isatty():
        raise Failure("refusing without --yes: stdin is not a terminal to confirm on")
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    if stdin.readline().strip().lower() not in ("y", "yes"):
        raise Failure("cancelled")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def wait_for(what: str, probe: Callable[[], Awaitable[T | None]], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise Failure(f"timed out after {timeout:g}s waiting for {what}{NOT_ACTING_HINT}")
        await asyncio.sleep(POLL_SECONDS)


async def get_stack(kube: Kube, namespace: str, name: str) -> Manifest:
    stack = await kube.get(API_VERSION, KIND, namespace, name)
    if stack is None:
        raise Failure(f'moderationstack "{name}" not found in namespace "{namespace}"')
    return stack


async def annotate(kube: Kube, namespace: str, name: str, annotation: str, value: str | None) -> None:
    """A merge patch of one annotation (None removes it)."""
    await kube.merge_patch(API_VERSION, KIND, namespace, name, {"metadata": {"annotations": {annotation: value}}})


def _check_backups_possible(stack: Manifest, action: str) -> None:
    """Refuse what the operator would not act on, instead of waiting for it in vain."""
    meta = stack["metadata"]
    where = f"{meta['namespace']}/{meta['name']}"
    if (meta.get("annotations") or {}).get(PAUSED_ANNOTATION) == "true":
        raise Failure(f"{where} is paused, so its operator would not {action}: "
                      f"run `kubectl moderation resume {meta['name']}` first")
    if not (stack.get("spec") or {}).get("backup"):
        raise Failure(f"{where} has no spec.backup, so there is no backup storage to {action} with")


async def status(kube: Kube, namespace: str, args: argparse.Namespace) -> int:
    stack = await get_stack(kube, namespace, args.name)
    found, unlisted = await list_children(kube, namespace, args.name)
    now = datetime.now(UTC)
    result = report(stack, [child(kind, obj, now) for kind, obj in found], unlisted, now)
    print(json.dumps(result, indent=2) if args.output == "json" else render(result, now))
    return exit_code(result["phase"])


async def backup(kube: Kube, namespace: str, args: argparse.Namespace) -> int:
    stack = await get_stack(kube, namespace, args.name)
    where = f"{namespace}/{args.name}"
    _check_backups_possible(stack, "back up")
    token = now_iso()
    job_name = Names(args.name).backup_now_job(token)
    await annotate(kube, namespace, args.name, BACKUP_NOW_ANNOTATION, token)
    _progress(f"backup of {where} requested ({BACKUP_NOW_ANNOTATION}={token}); waiting for Job {job_name}")

    async def finished() -> Manifest | None:
        job = await kube.get("batch/v1", "Job", namespace, job_name)
        return job if job is not None and job_state(job).phase in FINISHED else None

    job = await wait_for(f"Job {job_name}", finished, args.timeout)
    state = await JobOutcomes(kube).of(job)
    if state.phase == "Failed":
        raise Failure(f"backup of {where} failed: Job {job_name}: {state.message}")
    location = ((stack.get("status") or {}).get("backup") or {}).get("location")
    print(f"backup of {where} succeeded: Job {job_name} completed at {job['status'].get('completionTime')}"
          + (f", stored in {location}" if location else ""))
    return OK


async def restore(kube: Kube, namespace: str, args: argparse.Namespace) -> int:
    stack = await get_stack(kube, namespace, args.name)
    where = f"{namespace}/{args.name}"
    _check_backups_possible(stack, "restore")
    last = (stack.get("status") or {}).get("restore") or {}
    if last.get("request") == args.file and last.get("phase") in FINISHED:
        # The operator restores each file once; asking again would wait forever.
        raise Failure(f"{args.file} was restored into {where} before ({last['phase']}); "
                      "the operator restores each backup file once")
    confirm(f"Restore {args.file} into {args.name}? The API goes out of service until it finishes",
            args.yes, sys.stdin)
    await annotate(kube, namespace, args.name, RESTORE_ANNOTATION, args.file)
    _progress(f"restore of {args.file} into {where} requested; waiting for it to finish")

    async def finished() -> dict[str, Any] | None:
        current = ((await get_stack(kube, namespace, args.name)).get("status") or {}).get("restore") or {}
        return current if current.get("request") == args.file and current.get("phase") in FINISHED else None

    result = await wait_for(f"the restore of {args.file}", finished, args.timeout)
    if result["phase"] == "Failed":
        raise Failure(f"restore of {args.file} into {where} failed: Job {result.get('job')}: "
                      f"{result.get('message') or 'no message'}")
    print(f"restore of {args.file} into {where} succeeded: Job {result.get('job')} completed at "
          f"{result.get('completionTime')}")
    return OK


async def pause(kube: Kube, namespace: str, args: argparse.Namespace) -> int:
    await annotate(kube, namespace, args.name, PAUSED_ANNOTATION, "true")
    print(f"paused {namespace}/{args.name}: its operator changes nothing until "
          f"`kubectl moderation resume {args.name} -n {namespace}`")
    return OK


async def resume(kube: Kube, namespace: str, args: argparse.Namespace) -> int:
    await annotate(kube, namespace, args.name, PAUSED_ANNOTATION, None)
    print(f"resumed {namespace}/{args.name}: its operator reconciles it again")
    return OK


def _request(annotation: str, what: str) -> Command:
    """A command that sets an annotation to a fresh token: the operator acts
    once per new value, so asking again is a new request."""
    async def command(kube: Kube, namespace: str, args: argparse.Namespace) -> int:
        token = now_iso()
        await annotate(kube, namespace, args.name, annotation, token)
        print(f"asked the operator to {what} of {namespace}/{args.name} ({annotation}={token})")
        return OK
    return command


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="the stack's namespace (default: the kubeconfig context's)")
    common.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    parser = argparse.ArgumentParser(
        prog="kubectl moderation", description="Look after ModerationStacks through the API server.",
        epilog="exit codes: 0 ok (status: Ready), 1 failed or refused, 2 usage, "
               "3 status: Degraded, 4 status: any other phase")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(group: Any, name: str, command: Command, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(name, parents=[common], help=help_text,
                                                        description=help_text)
        sub.add_argument("name", metavar="NAME", help="the ModerationStack")
        sub.set_defaults(run=command)
        return sub

    add(commands, "status", status, "the stack, its conditions and its children's health").add_argument(
        "-o", "--output", choices=("text", "json"), default="text")
    add(commands, "backup", backup, "run a backup now and wait for its outcome").add_argument(
        "--timeout", type=float, default=600, help="seconds to wait (default 600)")
    restore_parser = add(commands, "restore", restore, "restore a backup file; the API is out of service meanwhile")
    restore_parser.add_argument("--from", dest="file", metavar="FILE", required=True,
                                help="backup file name, e.g. db-backup-20261126T030000Z.sql.gz")
    restore_parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    restore_parser.add_argument("--timeout", type=float, default=600, help="seconds to wait (default 600)")
    add(commands, "pause", pause, "stop the operator from changing the stack")
    add(commands, "resume", resume, "let the operator reconcile the stack again")
    add(commands, "promote-shadow", _request(PROMOTE_SHADOW_ANNOTATION, "promote the shadow policy"),
        "make the shadow policy the live one")
    gate = commands.add_parser("gate", help="the quality gate")
    gate_commands = gate.add_subparsers(dest="gate_command", required=True, metavar="COMMAND")
    add(gate_commands, "retry", _request(RETRY_QUALITY_GATE_ANNOTATION, "retry the quality gate"),
        "evaluate the candidate against the quality gate again")
    return parser


def connect(kubeconfig: str | None) -> kopf.ConnectionInfo:
    if kubeconfig:
        # kopf reads the path from the environment, as kubectl itself would.
        os.environ["KUBECONFIG"] = kubeconfig
    try:
        conn = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    except KeyError as exc:
        raise Failure(f"the kubeconfig's current context names {exc}, which it does not define") from None
    except (OSError, ValueError, yaml.YAMLError, kopf.LoginError) as exc:
        raise Failure(f"cannot read the kubeconfig: {exc}") from None
    if conn is None:
        raise Failure("no kubeconfig: set KUBECONFIG, pass --kubeconfig or create ~/.kube/config")
    return conn


def _api_message(exc: ApiError) -> str:
    if exc.status == 401:
        return ("the API server refused the credentials of the kubeconfig's current context (401 Unauthorized); "
                "kubectl-moderation uses its token or client certificate, not exec or auth-provider plugins")
    return exc.message or str(exc)


async def _run(args: argparse.Namespace) -> int:
    conn = connect(args.kubeconfig)
    kube = HttpKube(conn)
    try:
        command: Command = args.run
        return await command(kube, args.namespace or conn.default_namespace or "default", args)
    finally:
        await kube.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except Failure as exc:
        message = str(exc)
    except ApiError as exc:
        message = _api_message(exc)
    except TimeoutError:  # before OSError, which it is a kind of
        message = "the API server did not answer in time"
    except (aiohttp.ClientError, OSError) as exc:
        message = f"cannot reach the API server: {exc}"
    except KeyboardInterrupt:
        return 130
    print(f"error: {message}", file=sys.stderr)
    return FAILED

