"""Fixtures: one real sandbox process per test session (real HTTP, stdlib client)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
API_KEY = "test-key-123"
ORG_ID = "0b5e0c1e-7a4f-4f7e-9a55-2d1c7b3e9f00"


@dataclass
class Reply:
    status: int
    headers: Any
    body: Any  # parsed JSON, raw text, or None when empty

    def errors(self) -> list[dict[str, Any]]:
        assert isinstance(self.body, dict) and "errors" in self.body, self.body
        return self.body["errors"]


class Http:
    def __init__(self, base: str, api_key: str | None = None) -> None:
        self.base = base
        self.api_key = api_key

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             auth: bool = True, content_type: str = "application/vnd.api+json") -> Reply:
        url = path if path.startswith("http") else self.base + path
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", content_type)
        if auth and self.api_key is not None:
            hdrs.setdefault("Authorization", f"Bearer {self.api_key}")
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, rh, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            status, rh, raw = err.code, err.headers, err.read()
        text = raw.decode()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return Reply(status, rh, parsed)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.call("DELETE", path, **kw)


@pytest.fixture(scope="session")
def sandbox_url():
    workdir = Path(tempfile.mkdtemp(prefix="sandbox-test-"))
    port_file = workdir / "port"
    log_path = workdir / "sandbox.log"
    env = dict(os.environ, PYTHONPATH=str(HERE))
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--port", "0", "--port-file", str(port_file),
             "--api-key", API_KEY, "--org-id", ORG_ID, "--health-delay", "0.2", "--quiet"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox did not start:\n{log_path.read_text()}")
            time.sleep(0.02)
        base = f"http://127.0.0.1:{port_file.read_text().strip()}"
        assert Http(base).get("/_admin/health").status == 200
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def moto_server():
    """One moto_server for every module that needs AWS; each test resets it (/moto-api/reset)."""
    from awsstack import start_moto

    url, proc = start_moto(Path(tempfile.mkdtemp(prefix="moto-test-")))
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture
def admin(sandbox_url) -> Http:
    h = Http(sandbox_url)
    assert h.post("/_admin/reset").status == 204
    return h


@pytest.fixture
def api(sandbox_url, admin) -> Http:
    """A Workbench client with the right key, on a freshly reset sandbox."""
    return Http(sandbox_url, API_KEY)
