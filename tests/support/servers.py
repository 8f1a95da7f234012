"""Real daphne server processes for end-to-end tests, on the test database."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Self

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_database_env() -> dict[str, str]:
    """Points a server process at the database this test run uses."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"MESHSITE_SQLITE_PATH": str(settings_dict["NAME"]), "DATABASE_URL": ""}
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return {"DATABASE_URL": f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"}


class ManagedProcess:
    """A `manage.py` subprocess whose output goes to a log file."""

    process: "subprocess.Popen[bytes] | None"
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class ServerProcess(ManagedProcess):
    """`manage.py serve` in a subprocess: one web node."""

    def __init__(
        self, *, redis_url: str | None = None, env: dict[str, str] | None = None, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "meshsite.settings.test",
            "PYTHONUNBUFFERED": "1",
            "REDIS_URL": redis_url or "",
            **test_database_env(),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = ROOT / "var" / f"test-server-{self.port}.log"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, room: str) -> str:
        return f"ws://127.0.0.1:{self.port}/rooms/{room}/ws"

    def start(self, timeout: float = 30) -> Self:
        self.log_path.parent.mkdir(exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.http_url}/api/v1/health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log()}")


class AgentHostProcess(ManagedProcess):
    """`manage.py agenthost` in a subprocess, running agents against a server process."""

    def __init__(self, server: ServerProcess, env: dict[str, str] | None = None) -> None:
        self.server = server
        self.env = {**server.env, "MESHSITE_AGENT_HOST_POLL_SECONDS": "0.1", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = ROOT / "var" / f"test-agenthost-{server.port}-{os.getpid()}-{time.monotonic_ns()}.log"

    def start(self) -> Self:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "agenthost", "--url", self.server.http_url],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int | None:
        return super().stop(sig, timeout)  # draining agents may take a while
