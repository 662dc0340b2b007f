"""Proofs that the local control plane is a real Kubernetes: controllers,
scheduler, kwok, garbage collection and CEL admission all work."""

from __future__ import annotations

import pytest

from kube import Kubectl, KubectlError, condition, wait_until

pytestmark = pytest.mark.cluster


def test_node_is_ready(kubectl: Kubectl) -> None:
    node = kubectl.get("node", "kwok-node-0")
    assert condition(node, "Ready")["status"] == "True"


def test_deployment_becomes_available(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]},
            },
        },
    })

    def available() -> dict | None:
        dep = kubectl.get("deployment", "web", namespace)
        cond = condition(dep, "Available")
        return dep if cond and cond["status"] == "True" and dep["status"].get("readyReplicas") == 3 else None

    dep = wait_until("Deployment web to become Available", available)
    assert dep["status"]["readyReplicas"] == dep["spec"]["replicas"] == 3
    pods = kubectl.items("pods", namespace, "app=web")
    assert len(pods) == 3 and all(p["spec"]["nodeName"] == "kwok-node-0" for p in pods)


def test_job_completes(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "once", "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never",
                                  "containers": [{"name": "c", "image": "example.invalid/job:1"}]}},
        },
    })
    job = wait_until(
        "Job once to reach Complete",
        lambda: (j := kubectl.get("job", "once", namespace)) and (c := condition(j, "Complete"))
        and c["status"] == "True" and j,
    )
    assert job["status"]["succeeded"] == 1


def test_deleting_owner_collects_dependents(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": namespace}})
    owner = kubectl.get("configmap", "owner", namespace)
    kubectl.apply({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": "dependent", "namespace": namespace,
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                                 "uid": owner["metadata"]["uid"]}],
        },
    })
    kubectl.run("delete", "configmap", "owner", "-n", namespace, "--wait=false")
    wait_until("the garbage collector to delete the dependent",
               lambda: kubectl.get("configmap", "dependent", namespace) is None)


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.proof.example.com}
spec:
  group: proof.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              min: {type: integer}
              max: {type: integer}
            x-kubernetes-validations:
            - rule: self.min <= self.max
              message: min must not exceed max
"""


def test_cel_rule_rejects_bad_object(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(CRD)
    kubectl.run("wait", "--for=condition=Established", "crd/widgets.proof.example.com", "--timeout=30s")

    def widget(lo: int, hi: int) -> dict:
        return {"apiVersion": "proof.example.com/v1", "kind": "Widget",
                "metadata": {"name": f"w-{lo}-{hi}", "namespace": namespace}, "spec": {"min": lo, "max": hi}}

    kubectl.apply(widget(1, 2))
    with pytest.raises(KubectlError) as rejected:
        kubectl.apply(widget(5, 2))
    assert "min must not exceed max" in rejected.value.stderr
    assert kubectl.get("widget", "w-5-2", namespace) is None
