"""Helpers to run service processes and watch what they leave behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def wait_until(condition: Callable[[], bool], *, timeout: float = 60.0, what: str = "") -> None:
    """Poll until `condition()` holds; fail (not hang) when it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what or condition}")


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


class Processes:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen[bytes]] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("TOCSIN_SERVICE__LOCK_LEASE_SECONDS", "5")
        env.update(extra)
        return env

    def start(self, args: list[str], *, log: Path, **extra_env: str) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, *args], cwd=REPO, env=self.env(**extra_env), stdout=out, stderr=out
            )
        self.started.append(proc)
        return proc

    def host(self, mode: str, work: Path, **extra_env: str) -> subprocess.Popen[bytes]:
        work.mkdir(parents=True, exist_ok=True)
        args = ["-m", "tests.service.host", mode, str(work)]
        return self.start(args, log=work / "service.log", **extra_env)

    @staticmethod
    def terminate(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=timeout)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    for proc in procs.started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
