"""Test helpers: moto_server, the AWS proxy and a sandbox wired to moto, as subprocesses
on free ports, plus boto3 clients that do not retry (so injected faults are visible)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"},
                    connect_timeout=5, read_timeout=30)


class Proc:
    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None
                 ) -> None:
        self.name, self.log = name, log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         env=dict(os.environ, **(env or {})))

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _wait(proc: Proc, ready, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        proc.check_alive()
        value = ready()
        if value:
            return value
        if time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"{proc.name} not ready in {timeout}s:\n{proc.log.read_text()}")
        time.sleep(0.02)


def start_moto(workdir: Path) -> tuple[str, Proc]:
    proc = Proc("moto_server", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", "0"],
                workdir / "moto.log")

    def port() -> str | None:
        m = re.search(r"Running on http://127\.0\.0\.1:(\d+)", proc.log.read_text(errors="replace"))
        return m.group(1) if m else None

    return f"http://127.0.0.1:{_wait(proc, port)}", proc


def _port_file(proc: Proc, path: Path) -> str | None:
    return path.read_text().strip() if path.exists() else None


def start_proxy(workdir: Path, upstream: str | None = None, upstream_file: Path | None = None
                ) -> tuple[str, Proc]:
    port_file = workdir / "awsproxy.port"
    where = ["--upstream", upstream] if upstream else ["--upstream-file", str(upstream_file)]
    proc = Proc("awsproxy", [sys.executable, "-m", "sandbox.awsproxy", *where,
                             "--port", "0", "--port-file", str(port_file)],
                workdir / "awsproxy.log", env={"PYTHONPATH": str(HERE)})
    return f"http://127.0.0.1:{_wait(proc, lambda: _port_file(proc, port_file))}", proc


def start_sandbox(workdir: Path, *args: str) -> tuple[str, Proc]:
    port_file = workdir / "sandbox.port"
    proc = Proc("sandbox", [sys.executable, "-m", "sandbox", "--port", "0", "--port-file",
                            str(port_file), "--quiet", *args],
                workdir / "sandbox.log", env={"PYTHONPATH": str(HERE)})
    return f"http://127.0.0.1:{_wait(proc, lambda: _port_file(proc, port_file))}", proc


def client(service: str, endpoint: str, region: str = "us-east-1", **creds: str) -> Any:
    return boto3.session.Session().client(
        service, endpoint_url=endpoint, region_name=region, config=NO_RETRIES,
        **(creds or CREDENTIALS))
