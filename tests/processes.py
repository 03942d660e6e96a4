"""`watchfloor` processes started by a test: one home, its environment, a log per process.

Used by the scale-out tests (tests/cli/test_scaleout.py) and the reliability campaign
(tests/reliability/)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "watchfloor"]


class Processes:
    """`watchfloor` processes of one deployment (one home, one store, one bus), with their logs."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = {**os.environ, "WATCHFLOOR_HOME": str(home), "COLUMNS": "200", **env}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], env=self.env, capture_output=True, text=True, timeout=300, check=True)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        path = self.home / f"{len(self.procs):03d}-{args[0]}.log"
        with path.open("wb") as log:
            proc = subprocess.Popen([*CLI, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        self.logs[proc.pid] = path
        return proc

    def log_of(self, proc: subprocess.Popen[bytes]) -> str:
        return self.logs[proc.pid].read_text(errors="replace")

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
