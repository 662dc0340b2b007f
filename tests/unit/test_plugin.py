"""`kubectl moderation` without a cluster: health words and the status text
from object dicts, argument parsing, the confirmation, and each command's
requests and waits against the in-memory Kube standing in for the API server
and the operator."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from reconcile.fake_kube import FakeKube

from ai_moderator_operator import plugin
from ai_moderator_operator.api import API_VERSION, KIND
from ai_moderator_operator.naming import (
    BACKUP_NOW_ANNOTATION,
    PAUSED_ANNOTATION,
    PROMOTE_SHADOW_ANNOTATION,
    RESTORE_ANNOTATION,
    RETRY_QUALITY_GATE_ANNOTATION,
    Names,
    labels,
)
from ai_moderator_operator.plugin import Child, Failure, build_parser, child, confirm, exit_code, render, report

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
NS = "shop"


def obj(name: str, **body: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS, "generation": 1, "labels": labels("demo", None)}, **body}


def stack(**changes: Any) -> dict[str, Any]:
    body = {"apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": "demo", "namespace": NS, "generation": 1},
            "spec": {"version": "1.0.0", "backup": {"schedule": "0 3 * * *"}},
            "status": {"phase": "Ready", "version": "1.0.0", "targetVersion": "1.0.0",
                       "endpoint": "http://demo-api.shop.svc:80",
                       "backup": {"location": "/backups", "lastSuccessTime": "2026-11-26T03:00:00Z"},
                       "conditions": [
                           {"type": "Ready", "status": "True", "reason": "Ready",
                            "message": "version 1.0.0 serving: api 2/2, workers 1/1",
                            "lastTransitionTime": "2026-11-26T11:55:00Z"},
                           {"type": "Degraded", "status": "False", "reason": "AsExpected", "message": "",
                            "lastTransitionTime": "2026-11-24T12:00:00Z"}]}}
    body.update(changes)
    return body


@pytest.mark.parametrize("kind, body, health", [
    ("Deployment", {"spec": {"replicas": 2}, "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                                                        "readyReplicas": 2}}, ("Ready", "2/2 ready")),
    ("Deployment", {"spec": {"replicas": 2}, "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 1,
                                                        "readyReplicas": 2}}, ("Progressing", "2/2 ready")),
    ("StatefulSet", {"spec": {"replicas": 1}, "status": {}}, ("Progressing", "0/1 ready")),
    ("Job", {"status": {"completionTime": "2026-11-26T11:58:00Z",
                        "conditions": [{"type": "Complete", "status": "True"}]}}, ("Complete", "completed 2m ago")),
    ("Job", {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                        "message": "Job has reached the specified backoff limit"}]}},
     ("Failed", "BackoffLimitExceeded: Job has reached the specified backoff limit")),
    ("Job", {"status": {"startTime": "2026-11-26T11:59:15Z"}}, ("Running", "started 45s ago")),
    ("CronJob", {"spec": {"schedule": "0 3 * * *", "suspend": True}, "status": {}},
     ("Suspended", '"0 3 * * *", never run')),
    ("CronJob", {"spec": {"schedule": "0 3 * * *"}, "status": {"lastScheduleTime": "2026-11-26T03:00:00Z"}},
     ("Scheduled", '"0 3 * * *", last run 9h ago')),
    ("PersistentVolumeClaim", {"spec": {"resources": {"requests": {"storage": "10Gi"}}},
                               "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}}}, ("Bound", "10Gi")),
    ("PersistentVolumeClaim", {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}, ("Pending", "1Gi")),
    ("Service", {"spec": {"type": "NodePort"}}, ("Present", "NodePort")),
    ("Secret", {"data": {"a": "eA==", "b": "eQ=="}}, ("Present", "2 keys")),
    ("ConfigMap", {"data": {"policy.yaml": "x"}}, ("Present", "1 key")),
    ("HorizontalPodAutoscaler", {"spec": {"minReplicas": 2, "maxReplicas": 5},
                                 "status": {"currentReplicas": 2, "desiredReplicas": 3, "conditions": [
                                     {"type": "ScalingActive", "status": "True"}]}},
     ("Active", "2/3 replicas (min 2, max 5)")),
    ("ScaledObject", {"status": {"conditions": [{"type": "Ready", "status": "False", "message": "no metrics"}]}},
     ("NotReady", "no metrics")),
    ("PodDisruptionBudget", {"status": {"disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1}},
     ("Present", "1 disruption allowed (2 healthy, 1 needed)")),
    ("NetworkPolicy", {"spec": {}}, ("Present", "")),
])
def test_each_child_kind_has_a_health_word_and_detail(kind: str, body: dict[str, Any], health: tuple[str, str]
                                                      ) -> None:
    assert child(kind, obj("x", **body), NOW) == Child(kind, "x", *health)


def test_status_text_shows_the_stack_conditions_backup_and_a_tree_of_children() -> None:
    children = [Child("ConfigMap", "demo-policy", "Present", "1 key"),
                Child("Deployment", "demo-api", "Ready", "2/2 ready"),
                Child("Deployment", "demo-worker", "Progressing", "0/1 ready"),
                Child("Job", "demo-migrate-1a2b3c4d", "Complete", "completed 2h ago")]
    text = render(report(stack(), children, {"Secret": 'secrets is forbidden: User "dev" cannot list'}, NOW), NOW)
    lines = text.splitlines()
    assert lines[0] == "ModerationStack shop/demo: Ready"
    assert "  Version   1.0.0" in lines and "  Message   version 1.0.0 serving: api 2/2, workers 1/1" in lines
    assert "  TYPE      STATUS  REASON      AGE  MESSAGE" in lines
    assert "  Ready     True    Ready       5m   version 1.0.0 serving: api 2/2, workers 1/1" in lines
    assert "  Degraded  False   AsExpected  2d" in lines
    assert 'Backup  "0 3 * * *" to /backups' in lines
    assert "  Last success  2026-11-26T03:00:00Z (9h ago)" in lines and "  Last verify   never" in lines
    tree = lines[lines.index("Children") + 1:]
    assert tree == [
        "demo",
        "├── Secret",
        '│   └── ?                      Unknown      cannot list: secrets is forbidden: User "dev" cannot list',
        "├── ConfigMap",
        "│   └── demo-policy            Present      1 key",
        "├── Deployment",
        "│   ├── demo-api               Ready        2/2 ready",
        "│   └── demo-worker            Progressing  0/1 ready",
        "└── Job",
        "    └── demo-migrate-1a2b3c4d  Complete     completed 2h ago",
    ]


def test_status_text_of_a_new_stack_without_backups_or_children() -> None:
    text = render(report(stack(spec={"version": "1.0.0"}, status=None), [], {}, NOW), NOW)
    assert text.splitlines()[:2] == ["ModerationStack shop/demo: no status yet", "  Version   none rolled out yet"]
    assert "Backup  not configured (spec.backup is unset)" in text
    assert text.endswith("Children\ndemo\n└── (no children yet)")


def test_a_restore_in_status_text() -> None:
    restore = {"request": "db.sql.gz", "job": "demo-restore-1", "phase": "Failed", "message": "exit 1"}
    text = render(report(stack(status={**stack()["status"], "restore": restore}), [], {}, NOW), NOW)
    assert "Restore  db.sql.gz: Failed (Job demo-restore-1): exit 1" in text
    done = {"request": "db.sql.gz", "job": "demo-restore-1", "phase": "Succeeded",
            "completionTime": "2026-11-26T11:00:00Z"}
    text = render(report(stack(status={**stack()["status"], "restore": done}), [], {}, NOW), NOW)
    assert "Restore  db.sql.gz: Succeeded (Job demo-restore-1, 2026-11-26T11:00:00Z)" in text


@pytest.mark.parametrize("phase, code", [("Ready", 0), ("Degraded", 3), ("Progressing", 4), ("Paused", 4),
                                         (None, 4)])
def test_status_exit_codes(phase: str | None, code: int) -> None:
    assert exit_code(phase) == code


@pytest.mark.parametrize("argv, command", [
    (["status", "demo", "-n", "prod", "-o", "json"], "status"), (["backup", "demo", "--timeout", "5"], "backup"),
    (["restore", "demo", "--from", "db.sql.gz", "--yes"], "restore"), (["pause", "demo"], "pause"),
    (["resume", "demo"], "resume"), (["promote-shadow", "demo"], "promote-shadow"), (["gate", "retry", "demo"], "gate"),
])
def test_every_command_parses_with_its_options_after_the_name(argv: list[str], command: str) -> None:
    args = build_parser().parse_args(argv)
    assert args.command == command and args.name == "demo" and callable(args.run)


@pytest.mark.parametrize("argv", [["restore", "demo"], ["gate", "demo"], ["status"], ["status", "demo", "-o", "yaml"]])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_confirmation_refuses_without_a_terminal_unless_yes() -> None:
    with pytest.raises(Failure, match="refusing without --yes: stdin is not a terminal"):
        confirm("Restore?", False, io.StringIO("y\n"))
    confirm("Restore?", True, io.StringIO(""))


@pytest.mark.parametrize("answer, accepted", [("y\n", True), ("YES\n", True), ("n\n", False), ("\n", False),
                                              ("", False)])
def test_confirmation_on_a_terminal(answer: str, accepted: bool, capsys: pytest.CaptureFixture[str]) -> None:
    if accepted:
        confirm("Restore x into demo?", False, Terminal(answer))
    else:
        with pytest.raises(Failure, match="cancelled"):
            confirm("Restore x into demo?", False, Terminal(answer))
    assert capsys.readouterr().err == "Restore x into demo? [y/N] "


class Cluster(FakeKube):
    """The API server with a stack in it, and an operator that answers a
    request annotation at once by what `answer` says."""

    def __init__(self, answer: dict[str, Any] | None = None, **stack_changes: Any) -> None:
        super().__init__()
        self.answer = answer or {}
        self.put(stack(**stack_changes))

    def stack(self) -> dict[str, Any]:
        return self.objects[(API_VERSION, KIND, NS, "demo")]

    async def merge_patch(self, api_version: str, kind: str, namespace: str | None, name: str, patch: dict[str, Any],
                          subresource: str | None = None) -> dict[str, Any] | None:
        result = await super().merge_patch(api_version, kind, namespace, name, patch, subresource)
        annotations = patch.get("metadata", {}).get("annotations", {})
        if BACKUP_NOW_ANNOTATION in annotations and "job" in self.answer:
            job = Names(name).backup_now_job(annotations[BACKUP_NOW_ANNOTATION])
            self.put({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": job, "namespace": NS},
                      "status": self.answer["job"]})
            if "pod" in self.answer:  # how its last pod ended
                self.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
                    "name": f"{job}-1", "namespace": NS, "labels": {"batch.kubernetes.io/job-name": job}},
                    "status": {"containerStatuses": [{"state": {"terminated": self.answer["pod"]}}]}})
        if RESTORE_ANNOTATION in annotations and "restore" in self.answer:
            self.set_status(API_VERSION, KIND, NS, name, {**self.stack()["status"], "restore": self.answer["restore"]})
        return result


def run(kube: FakeKube, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return args.run(kube, NS, args)


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugin, "POLL_SECONDS", 0.01)


async def test_status_json_is_the_report_and_lists_children_by_the_stacks_labels(
        capsys: pytest.CaptureFixture[str]) -> None:
    kube = Cluster()
    kube.put({"apiVersion": "v1", "kind": "Service", **obj("demo-api", spec={"type": "ClusterIP"})})
    kube.put({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "other-api", "namespace": NS,
                                                                  "labels": labels("other", None)}})
    assert await run(kube, "status", "demo", "-o", "json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["phase"] == "Ready" and result["backup"]["location"] == "/backups"
    assert result["children"] == [{"kind": "Service", "name": "demo-api", "health": "Present", "detail": "ClusterIP"}]
    assert [c["type"] for c in result["conditions"]] == ["Ready", "Degraded"]


async def test_backup_sets_a_fresh_token_and_reports_the_jobs_success(capsys: pytest.CaptureFixture[str]) -> None:
    done = {"completionTime": "2026-11-26T12:00:05Z", "conditions": [{"type": "Complete", "status": "True"}]}
    kube = Cluster({"job": done})
    assert await run(kube, "backup", "demo") == 0
    token = kube.stack()["metadata"]["annotations"][BACKUP_NOW_ANNOTATION]
    out = capsys.readouterr().out
    assert out == (f"backup of shop/demo succeeded: Job {Names('demo').backup_now_job(token)} completed at "
                   "2026-11-26T12:00:05Z, stored in /backups\n")


async def test_a_failed_backup_is_explained_by_its_last_pod() -> None:
    failed = {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}
    pod = {"exitCode": 1, "reason": "Error", "finishedAt": "2026-11-26T12:00:05Z",
           "message": "pg_dump: connection refused"}
    with pytest.raises(Failure, match=r"backup of shop/demo failed: Job demo-backup-now-\w+: BackoffLimitExceeded; "
                                      r"last attempt exited 1 \(Error\): pg_dump: connection refused"):
        await run(Cluster({"job": failed, "pod": pod}), "backup", "demo")


async def test_backup_times_out_when_the_operator_does_not_act() -> None:
    with pytest.raises(Failure, match=r"timed out after 0.05s waiting for Job demo-backup-now-\w+; "
                                      r"is the operator running"):
        await run(Cluster(), "backup", "demo", "--timeout", "0.05")


@pytest.mark.parametrize("command", [["backup", "demo"], ["restore", "demo", "--from", "x.sql.gz", "--yes"]])
async def test_backup_and_restore_refuse_what_the_operator_would_not_do(command: list[str]) -> None:
    with pytest.raises(Failure, match="shop/demo has no spec.backup"):
        await run(Cluster(spec={"version": "1.0.0"}), *command)
    paused = Cluster()
    paused.stack()["metadata"]["annotations"] = {PAUSED_ANNOTATION: "true"}
    with pytest.raises(Failure, match="shop/demo is paused.*`kubectl moderation resume demo` first"):
        await run(paused, *command)
    assert paused.written("patch") == []


async def test_restore_waits_for_the_outcome_of_its_file(capsys: pytest.CaptureFixture[str]) -> None:
    finished = {"request": "db.sql.gz", "job": "demo-restore-1", "phase": "Succeeded",
                "completionTime": "2026-11-26T12:01:00Z"}
    kube = Cluster({"restore": finished})
    assert await run(kube, "restore", "demo", "--from", "db.sql.gz", "--yes") == 0
    assert kube.stack()["metadata"]["annotations"][RESTORE_ANNOTATION] == "db.sql.gz"
    assert capsys.readouterr().out == ("restore of db.sql.gz into shop/demo succeeded: Job demo-restore-1 "
                                       "completed at 2026-11-26T12:01:00Z\n")
    failed = Cluster({"restore": {"request": "db.sql.gz", "job": "demo-restore-1", "phase": "Failed",
                                  "message": "BackoffLimitExceeded; last attempt exited 1 (Error): bad dump"}})
    with pytest.raises(Failure, match="restore of db.sql.gz into shop/demo failed: Job demo-restore-1: .*bad dump"):
        await run(failed, "restore", "demo", "--from", "db.sql.gz", "--yes")


async def test_restore_without_yes_and_without_a_terminal_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    kube = Cluster()
    with pytest.raises(Failure, match="refusing without --yes"):
        await run(kube, "restore", "demo", "--from", "db.sql.gz")
    assert kube.written("patch") == []


async def test_a_file_restored_before_is_refused_rather_than_waited_for() -> None:
    kube = Cluster(status={**stack()["status"], "restore": {"request": "db.sql.gz", "phase": "Succeeded"}})
    with pytest.raises(Failure, match=r"db.sql.gz was restored into shop/demo before \(Succeeded\)"):
        await run(kube, "restore", "demo", "--from", "db.sql.gz", "--yes")


async def test_pause_resume_and_the_token_requests_set_their_annotations(capsys: pytest.CaptureFixture[str]) -> None:
    kube = Cluster()
    await run(kube, "pause", "demo")
    assert kube.stack()["metadata"]["annotations"] == {PAUSED_ANNOTATION: "true"}
    await run(kube, "resume", "demo")
    assert kube.stack()["metadata"]["annotations"] == {}
    await run(kube, "promote-shadow", "demo")
    await run(kube, "gate", "retry", "demo")
    annotations = kube.stack()["metadata"]["annotations"]
    assert set(annotations) == {PROMOTE_SHADOW_ANNOTATION, RETRY_QUALITY_GATE_ANNOTATION}
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "paused shop/demo: its operator changes nothing until `kubectl moderation resume demo -n shop`"
    assert out[2] == (f"asked the operator to promote the shadow policy of shop/demo "
                      f"({PROMOTE_SHADOW_ANNOTATION}={annotations[PROMOTE_SHADOW_ANNOTATION]})")
    assert out[3].startswith(
        f"asked the operator to retry the quality gate of shop/demo ({RETRY_QUALITY_GATE_ANNOTATION}=")


async def test_a_missing_stack_is_named() -> None:
    with pytest.raises(Failure, match='moderationstack "nope" not found in namespace "shop"'):
        await run(FakeKube(), "status", "nope")


class Refusing(BaseHTTPRequestHandler):
    """An API server that refuses everyone with the status it is given."""

    code = 403
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.paths.append(self.path)
        reason = {401: "Unauthorized", 403: "Forbidden"}[self.code]
        body = json.dumps({"kind": "Status", "status": "Failure", "reason": reason, "code": self.code,
                           "message": 'moderationstacks.moderation.ai-moderator.io "demo" is forbidden: User "dev" '
                                      'cannot get resource "moderationstacks"'}).encode()
        self.send_response(self.code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def kubeconfig(path: Path, server: str, namespace: str | None = None) -> Path:
    context = {"cluster": "c", "user": "u", **({"namespace": namespace} if namespace else {})}
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "c", "cluster": {"server": server}}], "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": context}]}))
    return path


@pytest.mark.parametrize("code, message", [
    (403, 'error: moderationstacks.moderation.ai-moderator.io "demo" is forbidden: User "dev" cannot get resource '
          '"moderationstacks"'),
    (401, "error: the API server refused the credentials of the kubeconfig's current context (401 Unauthorized); "
          "kubectl-moderation uses its token or client certificate, not exec or auth-provider plugins"),
])
def test_api_errors_are_one_line_on_stderr(code: int, message: str, refusing_server: ThreadingHTTPServer,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(Refusing, "code", code)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    config = kubeconfig(tmp_path / "config", f"http://127.0.0.1:{refusing_server.server_address[1]}", "prod")
    monkeypatch.setattr(Refusing, "paths", [])
    assert plugin.main(["status", "demo", "--kubeconfig", str(config)]) == 1
    assert capsys.readouterr().err == message + "\n"
    # No -n: the namespace of the kubeconfig's context.
    assert Refusing.paths == [f"/apis/{API_VERSION}/namespaces/prod/moderationstacks/demo"]


def test_connection_and_kubeconfig_errors_are_one_line_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    port = closed.server_address[1]
    closed.server_close()
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "config", f"http://127.0.0.1:{port}")))
    assert plugin.main(["pause", "demo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the API server: ") and err.count("\n") == 1

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert plugin.main(["pause", "demo"]) == 1
    assert capsys.readouterr().err.startswith("error: cannot read the kubeconfig: [Errno 2] No such file")

    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert plugin.main(["pause", "demo"]) == 1
    assert capsys.readouterr().err == ("error: no kubeconfig: set KUBECONFIG, pass --kubeconfig or create "
                                       "~/.kube/config\n")
