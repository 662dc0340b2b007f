"""The PostgreSQL and Redis images built here from Debian packages keep the
contract of the official images the operator defaults to (postgres:15-alpine,
redis:7-alpine): the same environment variables, data directory, user and
port, under the restricted Pod Security Standard with a read-only root."""

from __future__ import annotations

import pytest

from kube import Kubectl
from pods import (POSTGRES_IMAGE, REDIS_IMAGE, VERSION, WORKLOAD_IMAGE, exec_, pod, restricted_namespace,
                  run_to_completion, wait_endpoints, wait_running)

pytestmark = pytest.mark.realpods
NS = "t-images"


def service(name: str, port: int) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"test": name}, "ports": [{"port": port}]}}


def test_postgres_image_honours_the_official_environment(rkubectl: Kubectl) -> None:
    restricted_namespace(rkubectl, NS)
    server = pod("pg", POSTGRES_IMAGE, 70, env={
        "POSTGRES_USER": "alice", "POSTGRES_PASSWORD": "s3cret", "POSTGRES_DB": "shop",
        "PGDATA": "/var/lib/postgresql/data/pgdata"},
        writable=("/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"))
    server["metadata"]["namespace"] = NS
    server["spec"]["containers"][0]["ports"] = [{"containerPort": 5432}]
    server["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["pg_isready", "-U", "alice", "-d", "shop"]}, "periodSeconds": 1}
    rkubectl.apply([server, service("pg", 5432)])
    wait_running(rkubectl, NS, "pg")
    assert exec_(rkubectl, NS, "pg", "id", "-un").stdout.strip() == "postgres"
    assert exec_(rkubectl, NS, "pg", "cat", "/var/lib/postgresql/data/pgdata/PG_VERSION").stdout.strip() == "15"
    wait_endpoints(rkubectl, NS, "pg")
    client = pod("pg-client", f"{WORKLOAD_IMAGE}:{VERSION}", 10001, command=[
        "psql", "postgresql://alice:s3cret@pg:5432/shop", "-tAc", "SELECT current_user, current_database()"])
    assert run_to_completion(rkubectl, NS, client).strip() == "alice|shop"
    wrong = pod("pg-wrong", f"{WORKLOAD_IMAGE}:{VERSION}", 10001, command=[
        "sh", "-c", "psql postgresql://alice:nope@pg:5432/shop -c 'SELECT 1' 2>&1; echo rc=$?"])
    assert "password authentication failed" in run_to_completion(rkubectl, NS, wrong)


def test_redis_image_honours_the_official_arguments(rkubectl: Kubectl) -> None:
    restricted_namespace(rkubectl, NS)
    server = pod("redis", REDIS_IMAGE, 999, writable=("/data", "/tmp"))
    server["metadata"]["namespace"] = NS
    server["spec"]["containers"][0]["args"] = ["--appendonly", "yes", "--requirepass", "s3cret", "--dir", "/data"]
    server["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 6379}, "periodSeconds": 1}
    rkubectl.apply([server, service("redis", 6379)])
    wait_running(rkubectl, NS, "redis")
    assert exec_(rkubectl, NS, "redis", "id", "-un").stdout.strip() == "redis"
    wait_endpoints(rkubectl, NS, "redis")
    script = ("import redis; r = redis.Redis(host='redis', password='s3cret'); r.set('k', 'v'); "
              "print(r.get('k').decode(), r.config_get('appendonly')['appendonly']);"
              "import sys\ntry:\n redis.Redis(host='redis').ping()\nexcept redis.AuthenticationError:\n print('refused')")
    out = run_to_completion(rkubectl, NS, pod("redis-client", f"{WORKLOAD_IMAGE}:{VERSION}", 10001,
                                              command=["python", "-c", script]))
    assert out.split() == ["v", "yes", "refused"]
