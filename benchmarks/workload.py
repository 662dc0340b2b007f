"""Workload benchmark: a naive service running the same engine with one model
call per request, and ours (sync /v1/moderations, micro-batched, persisted in
PostgreSQL), measured in one run on loopback with the same load generator
(wrk) on the same short dev texts."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from .texts import pool

# API processes of both services (same for both: a fair comparison), as a
# 2-core pod would run them.
WORKERS = int(os.environ.get("BENCH_API_WORKERS", "2"))



@dataclass
class Row:
    name: str
    texts_per_request: int
    requests_per_s: float
    texts_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_rss_mib: float


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Peak RSS of the largest process of a server (the uvicorn master or one
    of its workers): the memory one API process needs."""
    def tree(p: int) -> list[int]:
        kids = [int(c) for t in Path(f"/proc/{p}/task").iterdir()
                for c in (t / "children").read_text().split()]
        return [p] + [k for c in kids for k in tree(c)]

    peaks = [int(line.split()[1]) for p in tree(pid) for line in Path(f"/proc/{p}/status").read_text().splitlines()
             if line.startswith("VmHWM:")]
    return max(peaks) / 1024


def start(cmd: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start: {log.read_text()}")


def wrk(url: str, bodies: Path, key: str, seconds: int, connections: int) -> dict[str, float]:
    script = Path(__file__).with_name("wrk_post.lua")
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url],
        env={**os.environ, "BODIES": str(bodies), "KEY": key}, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def bodies_file(out_dir: Path, n_texts: int) -> Path:
    """Request bodies of the short dev texts, one per line: every text alone,
    or 200 lists of `n_texts` drawn at random (fixed seed)."""
    texts = list(pool("short"))
    rng = random.Random(7)
    bodies = ([{"input": t} for t in texts] if n_texts == 1
              else [{"input": rng.sample(texts, n_texts)} for _ in range(200)])
    path = out_dir / f"bodies-{n_texts}.jsonl"
    path.write_text("\n".join(json.dumps(b) for b in bodies) + "\n")
    return path


def measure(name: str, url: str, key: str, n_texts: int, pid: int, seconds: int, connections: int,
            out_dir: Path) -> Row:
    bodies = bodies_file(out_dir, n_texts)
    wrk(url, bodies, key, 2, connections)  # warm-up
    r = wrk(url, bodies, key, seconds, connections)
    rps = r["requests"] / r["seconds"]
    return Row(name, n_texts, round(rps, 1), round(rps * n_texts, 1), round(r["p50_ms"], 2), round(r["p99_ms"], 2),
               int(r["errors"]), round(rss_mib(pid), 1))


def run(out_dir: Path, seconds: int = 10) -> dict[str, object]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    from tests.servers import fresh_database, run_cli  # the same server helpers the tests use

    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    naive_port = free_port()
    naive = start([sys.executable, "-m", "uvicorn", "benchmarks.naive_app:app", "--port", str(naive_port),
                   "--log-level", "warning", "--no-access-log", "--loop", "uvloop", "--http", "httptools",
                   "--workers", str(WORKERS)],
                  {}, naive_port, out_dir / "naive.log")
    try:
        rows.append(measure("naive (model call per request)", f"http://127.0.0.1:{naive_port}/v1/moderations",
                            "", 1, naive.pid, seconds, 64, out_dir))
        rows.append(measure("naive (model call per request)", f"http://127.0.0.1:{naive_port}/v1/moderations",
                            "", 64, naive.pid, seconds, 16, out_dir))
    finally:
        naive.terminate()
        naive.wait()
    with fresh_database() as db_url:
        key = "bench-admin-key-" + os.urandom(8).hex()
        env = {"DATABASE_URL": db_url, "REDIS_URL": os.environ["TEST_REDIS_URL"], "ADMIN_API_KEY": key,
               "RATE_LIMIT_PER_MINUTE": "0", "LOG_LEVEL": "WARNING"}
        run_cli("migrate", env=env)
        for profile in ("cascade", "fast"):
            policy = out_dir / f"policy-{profile}.yaml"
            policy.write_text(f"engine: {profile}\n")
            port = free_port()
            ours = start([sys.executable, "-m", "ai_moderator_workload.cli", "serve", "--port", str(port),
                          "--workers", str(WORKERS)], {**env, "POLICY_FILE": str(policy)}, port,
                         out_dir / f"ours-{profile}.log")
            name = f"ours, {profile} (batched, persisted in PostgreSQL)"
            try:
                url = f"http://127.0.0.1:{port}/v1/moderations"
                rows.append(measure(name, url, key, 1, ours.pid, seconds, 64, out_dir))
                rows.append(measure(name, url, key, 64, ours.pid, seconds, 16, out_dir))
            finally:
                ours.terminate()
                ours.wait()
    # Same engine on both sides: the default policy (cascade).
    single_ratio = rows[2].texts_per_s / rows[0].texts_per_s
    result = {"rows": [asdict(r) for r in rows],
              "ours_vs_naive_single_text": round(single_ratio, 2)}
    (out_dir / "workload.json").write_text(json.dumps(result, indent=2))
    return result


def table(result: dict[str, object]) -> str:
    lines = ["| service | texts/request | requests/s | texts/s | p50 ms | p99 ms | errors | API RSS MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:  # type: ignore[union-attr]
        lines.append(f"| {r['name']} | {r['texts_per_request']} | {r['requests_per_s']} | {r['texts_per_s']} | "
                     f"{r['p50_ms']} | {r['p99_ms']} | {r['errors']} | {r['server_rss_mib']} |")
    lines.append(f"ours / naive, single-text texts/s: {result['ours_vs_naive_single_text']}x")
    return "\n".join(lines)
