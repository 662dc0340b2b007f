"""The images: hadolint-clean Dockerfiles whose exact install steps, run in a
fresh virtualenv on a copy of the build context, give a working command."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kube import ROOT
from servers import free_port


def test_dockerfiles_pass_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run([str(hadolint), "Dockerfile.operator", "Dockerfile.workload"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def build_context(dockerfile: str, into: Path) -> str:
    """Copy what the build stage COPYs; return its pip install command."""
    text = (ROOT / dockerfile).read_text()
    build_stage = re.split(r"^FROM ", text, flags=re.M)[1]
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", build_stage, re.M):
        for source in sources.split():
            src = ROOT / source.rstrip("/")
            if src.is_dir():
                shutil.copytree(src, into / src.name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                shutil.copy2(src, into / src.name)
    run = re.search(r"^RUN (python -m venv /opt/venv.*?)(?<!\\)$", build_stage, re.M | re.S)
    assert run, f"no venv install step in {dockerfile}"
    return run.group(1).replace("\\\n", " ")


def install(dockerfile: str, tmp_path: Path) -> Path:
    context = tmp_path / "context"
    context.mkdir()
    command = build_context(dockerfile, context)
    venv = tmp_path / "venv"
    command = command.replace("/opt/venv", str(venv)).replace("python -m venv", f"{sys.executable} -m venv")
    result = subprocess.run(["bash", "-c", command], cwd=context, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return venv


def test_operator_image_steps_give_a_working_operator_without_the_model(tmp_path: Path) -> None:
    venv = install("Dockerfile.operator", tmp_path)
    for command in (["ai-moderator-operator"], ["ai-moderator", "operator"]):
        help_text = subprocess.run([str(venv / "bin" / command[0]), *command[1:], "--help"], capture_output=True,
                                   text=True, check=True).stdout
        assert "--namespace" in help_text and "ai-moderator-operator" in help_text
    for absent in ("profanity_check", "sklearn", "fastapi"):
        probe = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {absent}"], capture_output=True)
        assert probe.returncode != 0, f"{absent} must not be in the operator image"
    subprocess.run([str(venv / "bin" / "python"), "-c", "import ai_moderator_operator.handlers"], check=True)


def test_workload_image_steps_give_a_working_api(tmp_path: Path) -> None:
    venv = install("Dockerfile.workload", tmp_path)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "REDIS_URL": "",
           "ADMIN_API_KEY": "image-test-key", "RATE_LIMIT_PER_MINUTE": "0"}
    server = subprocess.Popen([str(venv / "bin" / "ai-moderator"), "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/moderations", json={"input": "I will kill you"},
                            headers={"Authorization": "Bearer image-test-key"})
        assert answer.status_code == 200 and answer.json()["results"][0]["flagged"] is True
    finally:
        server.terminate()
        server.wait(timeout=30)
