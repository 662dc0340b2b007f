"""The HTTP client's TLS set-up leaves no key material on disk."""

from __future__ import annotations

import base64
import subprocess
import tempfile
from pathlib import Path

import kopf

from ai_moderator_operator.kube import _ssl_context


def test_a_client_certificate_from_kubeconfig_data_leaves_no_file_behind(tmp_path: Path, monkeypatch) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=t",
                    "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem")], check=True,
                   capture_output=True)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    conn = kopf.ConnectionInfo(server="https://127.0.0.1:1",
                               certificate_data=base64.b64encode((tmp_path / "c.pem").read_bytes()),
                               private_key_data=base64.b64encode((tmp_path / "k.pem").read_bytes()))
    assert _ssl_context(conn)
    assert list(scratch.iterdir()) == [], "the client key must not stay in a temporary file"
