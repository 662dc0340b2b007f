"""Test helpers for the real PostgreSQL/Redis servers started by `make test`
(hack/services-up.sh) and for running `ai-moderator` processes against them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url

from ai_moderator_workload.callbacks import DELIVERY_HEADER, SIGNATURE_HEADER

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "ai_moderator_workload.cli"]


def required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the tests with `make test`, which starts PostgreSQL and Redis",
                    pytrace=False)
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on the test server; dropped afterwards."""
    admin_url = make_url(required_env("TEST_DATABASE_URL")).set(database="postgres")
    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def alembic_to(conn: Connection, direction: Literal["upgrade", "downgrade"], revision: str) -> None:
    """Run the project's migrations up or down to `revision` on an open connection."""
    from alembic import command

    from ai_moderator_workload.db import migrate

    config = migrate._alembic_config()
    config.attributes["connection"] = conn
    getattr(command, direction)(config, revision)


@contextmanager
def database_at(revision: str) -> Iterator[tuple[str, Engine]]:
    """A fresh database migrated to `revision` (its URL and an engine on it),
    for rows written by an older schema to meet the newer migrations."""
    with fresh_database() as url:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                alembic_to(conn, "upgrade", revision)
            yield url, engine
        finally:
            engine.dispose()


def run_cli(*args: str, env: dict[str, str], check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"ai-moderator {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


class Process:
    """A background `ai-moderator` process with its output kept in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen([*CLI, *args], env={**os.environ, **env}, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        self._out.close()


@contextmanager
def api_server(env: dict[str, str], tmp: Path) -> Iterator[str]:
    port = free_port()
    server = Process(["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp / f"api-{port}.log")
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if server.proc.poll() is not None:
                raise AssertionError(f"API exited during start:\n{server.output()}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"API did not start:\n{server.output()}")
            time.sleep(0.1)
        yield base
    finally:
        server.stop()


class TcpProxy:
    """A loopback TCP proxy that can cut every connection, to play a database
    outage without stopping the shared test server."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self._conns.clear()


@contextmanager
def worker_process(env: dict[str, str], log_dir: Path) -> Iterator[Process]:
    """`ai-moderator worker` (two task slots, no metrics port) for as long as the block runs."""
    proc = Process(["worker", "--concurrency", "2", "--metrics-port", "0"], env, log_dir / "worker.log")
    try:
        yield proc
    finally:
        proc.stop()


def metric(base: str, name: str, **labels: str) -> float:
    """One sample of a process's /metrics (0 when it has not been set)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


@dataclass
class Delivery:
    path: str
    delivery_id: str
    signature: str
    body: bytes


@dataclass
class Receiver:
    """Records every POST; answers each path's scripted statuses in turn
    (200 once they run out), and on `slow` paths sleeps before answering the
    first request of each delivery id."""
    port: int = 0
    scripts: dict[str, list[int]] = field(default_factory=dict)
    slow: dict[str, float] = field(default_factory=dict)
    seen: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def at(self, path: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.seen if d.path == path]


@contextmanager
def callback_receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            delivery = Delivery(self.path, self.headers[DELIVERY_HEADER], self.headers[SIGNATURE_HEADER], body)
            with state.lock:
                first = all(d.delivery_id != delivery.delivery_id for d in state.seen)
                state.seen.append(delivery)
                script = state.scripts.get(self.path, [])
                status = script.pop(0) if script else 200
            if first and self.path in state.slow:
                time.sleep(state.slow[self.path])
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
