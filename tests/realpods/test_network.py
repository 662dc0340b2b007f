"""Pod and Service traffic never leaves the machine (hack/real-node.sh): pods
reach pods, Services and this host only; an address kube-proxy has not
NATed is dropped on a local sink interface; DNS answers cluster.local only."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
from pathlib import Path

import pytest

from kube import Kubectl
from pods import VERSION, WORKLOAD_IMAGE, pod, restricted_namespace, run_to_completion

pytestmark = pytest.mark.realpods
SINK = "aimod-null0"
EGRESS_CHAIN = "AIMOD-POD-EGRESS"
SERVICE_CIDR = ipaddress.ip_network("10.97.0.0/16")

PROBE = """
import json, socket
def connect(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return "connected"
    except socket.timeout:
        return "timeout"
    except OSError as exc:
        return type(exc).__name__
def resolve(name):
    try:
        return sorted({a[4][0] for a in socket.getaddrinfo(name, 443, socket.AF_INET)})
    except OSError as exc:
        return type(exc).__name__
print(json.dumps({
    "outside": {h: connect(h, 443) for h in OUTSIDE},
    "kubernetes_service": connect("kubernetes.default.svc.cluster.local", 443),
    "cluster_name": resolve("kubernetes.default.svc.cluster.local"),
    "outside_name": resolve("pypi.org"),
}))
"""


def drops_from_pods() -> int:
    out = subprocess.run(["iptables", "-L", EGRESS_CHAIN, "-n", "-v", "-x"], check=True, capture_output=True,
                         text=True).stdout
    return sum(int(line.split()[0]) for line in out.splitlines()[2:] if " DROP " in f" {line} ")


def default_gateway() -> str:
    route = subprocess.run(["ip", "-4", "route", "show", "default"], capture_output=True, text=True).stdout
    match = re.search(r"via (\S+)", route)
    return match.group(1) if match else "192.0.2.1"


def test_a_pod_reaches_the_cluster_and_nothing_outside(rkubectl: Kubectl) -> None:
    ns = restricted_namespace(rkubectl, "t-net")
    outside = [default_gateway(), "1.1.1.1"]
    before = drops_from_pods()
    script = f"OUTSIDE = {outside!r}\n{PROBE}"
    log = run_to_completion(rkubectl, ns, pod("egress-probe", f"{WORKLOAD_IMAGE}:{VERSION}", 10001,
                                              command=["python", "-c", script]))
    result = json.loads(log.strip().splitlines()[-1])
    assert result["kubernetes_service"] == "connected", result
    assert result["cluster_name"] == ["10.97.0.1"], result
    assert not isinstance(result["outside_name"], list), f"an outside name resolved: {result}"
    assert all(outcome == "timeout" for outcome in result["outside"].values()), result
    assert drops_from_pods() >= before + len(outside), "the pod's packets to outside were not dropped by the node"
    rkubectl.run("delete", "pod", "egress-probe", "-n", ns, "--wait=false")


def tx_packets(interface: str) -> int:
    return int(Path(f"/sys/class/net/{interface}/statistics/tx_packets").read_text())


def test_an_address_kube_proxy_has_not_programmed_is_dropped_locally() -> None:
    unassigned = str(SERVICE_CIDR[-2])
    route = subprocess.run(["ip", "route", "get", unassigned], capture_output=True, text=True, check=True).stdout
    assert f"dev {SINK}" in route, route
    before = tx_packets(SINK)
    with pytest.raises(OSError):
        socket.create_connection((unassigned, 80), timeout=1)
    assert tx_packets(SINK) > before


def test_a_service_without_endpoints_is_refused_on_this_machine(rkubectl: Kubectl) -> None:
    ns = restricted_namespace(rkubectl, "t-net")
    rkubectl.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nobody", "namespace": ns},
                    "spec": {"selector": {"app": "nobody-here"}, "ports": [{"port": 80}]}})
    ip = rkubectl.get("service", "nobody", ns)["spec"]["clusterIP"]
    assert ipaddress.ip_address(ip) in SERVICE_CIDR
    # kube-proxy answers a Service with no endpoint with a local reject.
    with pytest.raises(ConnectionRefusedError):
        for _ in range(20):
            try:
                socket.create_connection((ip, 80), timeout=1).close()
            except ConnectionRefusedError:
                raise
            except OSError:
                continue
