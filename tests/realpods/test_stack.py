"""A whole stack on real pods: the operator from its image (Helm chart), the
example ModerationStack on the project's images, then what a user does
through the API Service — moderation, async content decided by a worker and
stored in the stack's PostgreSQL, a version change behind a real migration
Job, backup and restore, a test restore, a database pod killed, and a rolling
restart under load. Tests run in file order on one stack."""

from __future__ import annotations

import gzip
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kube import ROOT, Kubectl, condition, k8s_bin_dir, wait_until
from pods import (OPERATOR_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, VERSION, WORKLOAD_IMAGE, ctr, exec_, json_lines,
                  pod, restricted_namespace, wait_endpoints)
from stacks import example, get_stack, ready, wait_phase

pytestmark = pytest.mark.realpods
CHART = ROOT / "charts" / "ai-moderator-operator"
OPERATOR_NS = "ai-moderator-system"
NS = "t-real"
PREFIX = "moderation.ai-moderator.io"
SMALL = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1536Mi"}}


@pytest.fixture(scope="module")
def operator(rkubectl: Kubectl, real_kubeconfig: Path) -> Iterator[None]:
    restricted_namespace(rkubectl, OPERATOR_NS)
    helm = [str(k8s_bin_dir() / "helm"), "--kubeconfig", str(real_kubeconfig)]
    result = subprocess.run([*helm, "upgrade", "--install", "aimod", str(CHART), "--namespace", OPERATOR_NS,
                             "--set", f"image.repository={OPERATOR_IMAGE}", "--set", f"image.tag={VERSION}",
                             "--set", "image.pullPolicy=Never", "--wait", "--timeout", "180s"],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    yield
    subprocess.run([*helm, "uninstall", "aimod", "--namespace", OPERATOR_NS], capture_output=True, timeout=120)


class Api:
    def __init__(self, kubectl: Kubectl) -> None:
        svc = kubectl.get("service", "demo-api", NS)
        assert svc, "no API Service"
        self.base = f"http://{svc['spec']['clusterIP']}:80"
        self.key = ""

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, headers={"Authorization": f"Bearer {self.key}"})


@pytest.fixture(scope="module")
def stack(rkubectl: Kubectl, operator: None) -> Iterator[Api]:
    restricted_namespace(rkubectl, NS)
    manifest = example(NS, image=WORKLOAD_IMAGE,
                       api={"replicas": 2, "resources": SMALL},
                       worker={"replicas": 1, "concurrency": 2, "resources": SMALL},
                       database={"managed": {"storage": "1Gi", "image": POSTGRES_IMAGE}},
                       redis={"managed": {"storage": "1Gi", "image": REDIS_IMAGE}})
    manifest["spec"]["backup"]["storage"] = {"pvc": {"size": "1Gi"}}
    rkubectl.apply(manifest)
    ready(rkubectl, NS, timeout=600)
    wait_endpoints(rkubectl, NS, "demo-api", count=2)
    api = Api(rkubectl)
    created = exec_(rkubectl, NS, "deploy/demo-api", "ai-moderator", "apikey", "create", "--name", "real-e2e",
                    "--admin").stdout
    api.key = json.loads(created)["key"]
    yield api
    rkubectl.run("delete", "mstack", "demo", "-n", NS, "--wait=true", "--timeout=180s", check=False)


def psql(kubectl: Kubectl, sql: str) -> str:
    return exec_(kubectl, NS, "demo-postgres-0", "psql", "-U", "moderator", "-d", "moderation_db", "-tAc",
                 sql).stdout.strip()


def pods(kubectl: Kubectl, component: str) -> list[dict[str, Any]]:
    return kubectl.items("pods", NS, f"app.kubernetes.io/instance=demo,app.kubernetes.io/component={component}")


def test_the_operator_runs_from_its_image_as_a_pod(rkubectl: Kubectl, operator: None) -> None:
    [operator_pod] = rkubectl.items("pods", OPERATOR_NS, "app.kubernetes.io/instance=aimod")
    assert operator_pod["spec"]["containers"][0]["image"] == f"{OPERATOR_IMAGE}:{VERSION}"
    assert condition(operator_pod, "Ready")["status"] == "True"
    log = rkubectl.run("logs", "-n", OPERATOR_NS, operator_pod["metadata"]["name"]).stdout
    assert json_lines(log), f"the operator's log is not JSON lines:\n{log[:2000]}"


def test_the_stack_runs_on_real_pods_as_a_non_root_user_on_a_read_only_root(rkubectl: Kubectl, stack: Api) -> None:
    for component in ("api", "worker", "database", "redis"):
        running = pods(rkubectl, component)
        assert running and all(condition(p, "Ready")["status"] == "True" for p in running), component
    assert exec_(rkubectl, NS, "deploy/demo-api", "id", "-u").stdout.strip() == "10001"
    denied = exec_(rkubectl, NS, "deploy/demo-api", "touch", "/opt/venv/x", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    assert exec_(rkubectl, NS, "demo-postgres-0", "id", "-u").stdout.strip() == "70"
    migration = [j for j in rkubectl.items("jobs", NS, "app.kubernetes.io/component=migration")]
    assert migration and all(j["status"].get("succeeded") == 1 for j in migration)


def test_the_restricted_pod_security_standard_is_enforced(rkubectl: Kubectl, stack: Api) -> None:
    privileged = pod("privileged", f"{WORKLOAD_IMAGE}:{VERSION}", 10001)
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    privileged["metadata"]["namespace"] = NS
    refused = rkubectl.run("apply", "-f", "-", stdin=json.dumps(privileged), check=False)
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr


def test_moderation_through_the_service(stack: Api) -> None:
    with stack.client() as client:
        response = client.post("/v1/moderations", json={"input": ["Have a lovely day!", "I will kill you tonight"]})
    assert response.status_code == 200, response.text
    flagged = [r["flagged"] for r in response.json()["results"]]
    assert flagged == [False, True]


def test_async_content_is_decided_by_a_worker_and_stored_in_the_stacks_database(
        rkubectl: Kubectl, stack: Api) -> None:
    with stack.client() as client:
        accepted = client.post("/api/v1/content", json={"text": "I will kill you tonight", "external_id": "real-1"})
        assert accepted.status_code == 202, accepted.text
        content_id = accepted.json()["id"]
        done = wait_until("the worker's decision", lambda: (
            r := client.get(f"/api/v1/content/{content_id}").json())["status"] == "done" and r, timeout=120)
    assert done["result"]["flagged"] is True
    assert psql(rkubectl, f"SELECT status FROM content WHERE id = '{content_id}'") == "done"
    worker_log = rkubectl.run("logs", "-n", NS, "deploy/demo-worker").stdout
    assert content_id in worker_log and "I will kill you" not in worker_log


def test_a_version_change_runs_the_real_migration_job_first(rkubectl: Kubectl, stack: Api) -> None:
    ctr("images", "tag", "--force", f"{WORKLOAD_IMAGE}:{VERSION}", f"{WORKLOAD_IMAGE}:0.1.1")
    before = {j["metadata"]["name"] for j in rkubectl.items("jobs", NS, "app.kubernetes.io/component=migration")}
    rkubectl.run("patch", "mstack", "demo", "-n", NS, "--type=merge", "-p", '{"spec": {"version": "0.1.1"}}')
    new_job = wait_until("a migration Job for 0.1.1", lambda: [
        j for j in rkubectl.items("jobs", NS, "app.kubernetes.io/component=migration")
        if j["metadata"]["name"] not in before], timeout=60)[0]
    assert new_job["spec"]["template"]["spec"]["containers"][0]["image"] == f"{WORKLOAD_IMAGE}:0.1.1"
    ready(rkubectl, NS, timeout=600)
    job = rkubectl.get("job", new_job["metadata"]["name"], NS)
    assert job["status"].get("succeeded") == 1
    log = rkubectl.run("logs", "-n", NS, f"job/{new_job['metadata']['name']}").stdout
    head = psql(rkubectl, "SELECT version_num FROM alembic_version")
    assert f"schema at revision {head}" in log, log
    api_pods = pods(rkubectl, "api")
    assert api_pods and all(p["spec"]["containers"][0]["image"].endswith(":0.1.1") for p in api_pods
                            if p["metadata"].get("deletionTimestamp") is None)
    started = min(c["state"]["running"]["startedAt"] for p in api_pods if p["metadata"].get("deletionTimestamp") is None
                  for c in p["status"]["containerStatuses"])
    assert started >= job["status"]["completionTime"], "API pods of the new version started before the migration"
    wait_endpoints(rkubectl, NS, "demo-api", count=2)


def backup_files(kubectl: Kubectl) -> list[Path]:
    claim = kubectl.get("pvc", "demo-backups", NS)
    volume = kubectl.get("pv", claim["spec"]["volumeName"])
    return sorted(Path(volume["spec"]["hostPath"]["path"]).glob("db-backup-*.sql.gz"))


def test_backup_now_writes_a_dump_and_a_restore_brings_the_rows_back(rkubectl: Kubectl, stack: Api) -> None:
    rows = int(psql(rkubectl, "SELECT count(*) FROM content"))
    assert rows >= 1
    rkubectl.run("annotate", "mstack", "demo", "-n", NS, "--overwrite", f"{PREFIX}/backup-now={time.time()}")
    wait_until("BackupSucceeded", lambda: (c := condition(get_stack(rkubectl, NS), "BackupSucceeded"))
               and c["status"] == "True", timeout=180)
    [dump] = backup_files(rkubectl)[-1:]
    assert b"CREATE TABLE public.content (" in gzip.decompress(dump.read_bytes())

    psql(rkubectl, "DELETE FROM moderation_result; DELETE FROM content")
    assert psql(rkubectl, "SELECT count(*) FROM content") == "0"
    rkubectl.run("annotate", "mstack", "demo", "-n", NS, "--overwrite", f"{PREFIX}/restore={dump.name}")
    wait_until("the restore to succeed", lambda: (
        (get_stack(rkubectl, NS).get("status") or {}).get("restore") or {}).get("phase") == "Succeeded", timeout=300)
    ready(rkubectl, NS, timeout=300)
    assert int(psql(rkubectl, "SELECT count(*) FROM content")) == rows
    wait_endpoints(rkubectl, NS, "demo-api", count=2)
    with stack.client() as client:
        assert client.post("/v1/moderations", json={"input": "hello"}).status_code == 200
    rkubectl.run("annotate", "mstack", "demo", "-n", NS, f"{PREFIX}/restore-")


def test_the_test_restore_cronjob_run_by_hand_succeeds(rkubectl: Kubectl, stack: Api) -> None:
    rkubectl.run("create", "job", "verify-now", "-n", NS, "--from=cronjob/demo-backup-verify")
    job = wait_until("the test restore Job to finish", lambda: (
        j := rkubectl.get("job", "verify-now", NS)) and (j["status"].get("succeeded") or j["status"].get("failed"))
        and j, timeout=300)
    log = rkubectl.run("logs", "-n", NS, "job/verify-now").stdout
    assert job["status"].get("succeeded") == 1, log
    assert '"verified": true' in log


class Traffic:
    """A steady loop of async submissions; remembers every acknowledged id."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.acknowledged: list[str] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.api.client() as client:
            while not self._stop.is_set():
                try:
                    response = client.post("/api/v1/content", json={"text": f"steady {uuid.uuid4()}"}, timeout=10)
                except httpx.HTTPError:
                    self.failures += 1
                    time.sleep(0.1)
                    continue
                if response.status_code == 202:
                    self.acknowledged.append(response.json()["id"])
                else:
                    self.failures += 1
                time.sleep(0.05)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def assert_all_stored(kubectl: Kubectl, ids: list[str]) -> None:
    assert ids, "no request was acknowledged"
    listed = ",".join(f"'{i}'" for i in ids)
    stored = int(psql(kubectl, f"SELECT count(*) FROM content WHERE id IN ({listed})"))
    assert stored == len(ids), f"{len(ids) - stored} of {len(ids)} acknowledged submissions are missing"


def test_killing_the_database_pod_loses_nothing_acknowledged(rkubectl: Kubectl, stack: Api) -> None:
    with Traffic(stack) as traffic:
        wait_until("some acknowledged submissions", lambda: len(traffic.acknowledged) >= 5, timeout=60)
        rkubectl.run("delete", "pod", "demo-postgres-0", "-n", NS, "--grace-period=0", "--force")
        time.sleep(3)
        wait_until("PostgreSQL back", lambda: (p := rkubectl.get("pod", "demo-postgres-0", NS))
                   and condition(p, "Ready") and condition(p, "Ready")["status"] == "True", timeout=180)
        acknowledged_before = len(traffic.acknowledged)
        wait_until("submissions acknowledged again", lambda: len(traffic.acknowledged) > acknowledged_before + 5,
                   timeout=120)
    assert_all_stored(rkubectl, traffic.acknowledged)
    print(f"database pod killed: {len(traffic.acknowledged)} acknowledged, {traffic.failures} refused or failed")


def test_a_rolling_restart_under_load_loses_no_acknowledged_request(rkubectl: Kubectl, stack: Api) -> None:
    with Traffic(stack) as traffic:
        wait_until("some acknowledged submissions", lambda: len(traffic.acknowledged) >= 5, timeout=60)
        rkubectl.run("rollout", "restart", "deployment/demo-api", "-n", NS)
        rkubectl.run("rollout", "status", "deployment/demo-api", "-n", NS, "--timeout=300s")
        wait_endpoints(rkubectl, NS, "demo-api", count=2)
        acknowledged_before = len(traffic.acknowledged)
        wait_until("submissions after the restart", lambda: len(traffic.acknowledged) > acknowledged_before + 5,
                   timeout=60)
    assert_all_stored(rkubectl, traffic.acknowledged)
    print(f"rolling restart: {len(traffic.acknowledged)} acknowledged, {traffic.failures} refused or failed")


GOLDEN = [
    ("I will kill you tonight", ["violence", "harassment", "harassment/threatening"]),
    ("you are a worthless idiot and everyone hates you", ["harassment"]),
    ("I am going to hurt you so badly", ["violence", "harassment", "harassment/threatening"]),
    ("Have a lovely day, see you at the meeting", []),  # the example policy flags it: a known false positive
    ("The recipe needs two cups of flour", []),
    ("Please send the quarterly report by Friday", []),
    ("The train to Berlin leaves at nine", []),
    ("Our team won the match on Saturday", []),
]


def _status(kubectl: Kubectl) -> dict[str, Any]:
    return (get_stack(kubectl, NS) or {}).get("status") or {}


def _operator_metrics(kubectl: Kubectl) -> dict[str, float]:
    """The operator pod's /metrics, through the API server's pod proxy."""
    pods = kubectl.items("pods", OPERATOR_NS, "app.kubernetes.io/name=ai-moderator-operator")
    [name] = [p["metadata"]["name"] for p in pods if p["status"].get("phase") == "Running"]
    text = kubectl.run("get", "--raw", f"/api/v1/namespaces/{OPERATOR_NS}/pods/{name}:8080/proxy/metrics").stdout
    return {line.rpartition(" ")[0]: float(line.rpartition(" ")[2]) for line in text.splitlines()
            if line and not line.startswith("#")}


def _gate(kubectl: Kubectl) -> dict[str, Any]:
    return _status(kubectl).get("qualityGate") or {}


def _policy(stack_spec_policy: dict[str, Any], **changes: Any) -> str:
    """A merge patch of spec.policy (None removes a field)."""
    return json.dumps({"spec": {"policy": {**stack_spec_policy, **changes}}})


def test_the_quality_gate_holds_a_policy_that_doubles_the_flag_rate_and_rolls_out_a_harmless_one(
        rkubectl: Kubectl, stack: Api) -> None:
    golden = "\n".join(json.dumps({"text": t, "expected": e}) for t, e in GOLDEN)
    rkubectl.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "golden", "namespace": NS},
                    "data": {"golden.jsonl": golden}})
    rkubectl.run("patch", "mstack", "demo", "-n", NS, "--type=merge", "-p", json.dumps({"spec": {"qualityGate": {
        "golden": {"configMapKeyRef": {"name": "golden", "key": "golden.jsonl"}}, "maxFlagRateChange": 20}}}))
    first = wait_until("the gate of what serves to pass", lambda: _gate(rkubectl).get("phase") == "Passed"
                       and _gate(rkubectl), timeout=300)
    assert first["examples"] == len(GOLDEN) and first["recall"] == 1.0, first
    ready(rkubectl, NS, timeout=120)
    served = rkubectl.get("configmap", "demo-policy", NS)["data"]["policy.yaml"]
    policy = get_stack(rkubectl, NS)["spec"]["policy"]

    rkubectl.run("patch", "mstack", "demo", "-n", NS, "--type=merge", "-p", _policy(policy, default_threshold=0.01))
    job = wait_until("the gate Job of the new policy", lambda: (g := _gate(rkubectl)).get("phase") == "Running"
                     and g.get("candidate") != first["candidate"] and g["job"], timeout=60)
    # The operator is killed while its gate Job runs: it must not start a second one.
    rkubectl.run("delete", "pod", "-n", OPERATOR_NS, "-l", "app.kubernetes.io/name=ai-moderator-operator",
                 "--grace-period=0", "--force")
    stack_status = wait_phase(rkubectl, NS, "Degraded", timeout=300)
    held = stack_status["status"]["qualityGate"]
    assert held["phase"] == "Failed" and held["job"] == job
    assert held["baselineFlagRate"] == first["flagRate"] and held["flagRate"] - first["flagRate"] > 0.2, held
    assert "maxFlagRateChange 20" in held["message"]
    assert condition(stack_status, "Degraded")["reason"] == "QualityGateFailed"
    metrics = _operator_metrics(rkubectl)
    series = '{namespace="t-real",stack="demo"}'
    assert metrics[f"ai_moderator_quality_gate_passed{series}"] == 0
    assert metrics[f"ai_moderator_quality_gate_flag_rate{series}"] == held["flagRate"]
    assert metrics[f"ai_moderator_quality_gate_baseline_flag_rate{series}"] == held["baselineFlagRate"]
    assert len(rkubectl.items("jobs", NS, "app.kubernetes.io/component=quality-gate")) == 2, "one Job per candidate"
    assert rkubectl.get("configmap", "demo-policy", NS)["data"]["policy.yaml"] == served, "the old policy serves"
    with stack.client() as client:
        answer = client.post("/v1/moderations", json={"input": "The recipe needs two cups of flour"})
    assert answer.status_code == 200 and answer.json()["results"][0]["flagged"] is False

    rkubectl.run("patch", "mstack", "demo", "-n", NS, "--type=merge", "-p",
                 _policy(policy, default_threshold=None,
                         allowlist=[*policy.get("allowlist", []), "shoot the messenger"]))
    wait_until("the harmless policy to pass", lambda: (g := _gate(rkubectl)).get("phase") == "Passed"
               and g["candidate"] != first["candidate"], timeout=300)
    ready(rkubectl, NS, timeout=300)
    assert "shoot the messenger" in rkubectl.get("configmap", "demo-policy", NS)["data"]["policy.yaml"]


def test_a_shadow_policy_is_decided_beside_the_live_one_and_summarised_in_status(
        rkubectl: Kubectl, stack: Api) -> None:
    rkubectl.run("patch", "mstack", "demo", "-n", NS, "--type=merge", "-p",
                 json.dumps({"spec": {"shadowPolicy": {"version": "trial", "default_threshold": 0.01}}}))
    wait_until("the API pods to carry the shadow policy", lambda: "SHADOW_POLICY_FILE" in json.dumps(
        rkubectl.get("deployment", "demo-api", NS)["spec"]["template"]), timeout=60)
    rkubectl.run("rollout", "status", "deployment/demo-api", "-n", NS, "--timeout=300s")
    wait_endpoints(rkubectl, NS, "demo-api", count=2)
    texts = [t for t, _ in GOLDEN]
    with stack.client() as client:
        # One request: its decisions are stored together, so a summary sees all of them or none.
        assert client.post("/v1/moderations", json={"input": texts}).status_code == 200
        decided = client.post("/api/v1/moderate", json={"text": "The train to Berlin leaves at nine"}).json()
    assert decided["result"]["flagged"] is False and decided["result"]["shadow"]["flagged"] is True
    assert decided["result"]["shadow"]["policy_version"].startswith("trial@")
    shadow = wait_until("the operator's summary of the shadow policy", lambda: (
        s := _status(rkubectl).get("shadow") or {}).get("decisions", 0) >= len(texts) and s, timeout=240)
    assert shadow["shadowFlagRate"] > shadow["liveFlagRate"] and shadow["agreement"] < 1, shadow
    assert shadow["policy"].startswith("trial@") and shadow["windowSeconds"] == 3600
