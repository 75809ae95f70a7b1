"""Running ``python -m aaltohub …`` as a real child process against a temporary data dir."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Final

from aaltohub.embedded.process import free_port
from aaltohub.stack import reap_orphans
from aaltohub.stack_file import StackInfo, read_stack
from tests.helpers import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


_READY_LINE: Final = re.compile(r"^ready in [0-9.]+s", re.MULTILINE)


def says_ready(output: str) -> bool:
    """``up`` printed its ready line (a whole line: "already in use" must not count)."""
    return _READY_LINE.search(output) is not None


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI child: this repo importable, only our data dir configured."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AALTOHUB_", "NATS_", "DATABASE_", "TELEGRAM_", "SUPABASE_"))
    }
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["AALTOHUB_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def private_ports() -> dict[str, str]:
    """Free ports for the servers ``up`` would start on fixed ones (NATS 4222, metrics 9101/9102):
    two test runs on one machine must not meet on them."""
    ports: set[int] = set()
    while len(ports) < 3:
        ports.add(free_port())
    names = (
        "AALTOHUB_NATS_PORT",
        "AALTOHUB_INGEST_METRICS_PORT",
        "AALTOHUB_PROJECTOR_METRICS_PORT",
    )
    return {name: str(port) for name, port in zip(names, sorted(ports), strict=True)}


def run_cli(
    data_dir: Path, *args: str, timeout_s: float = 30.0, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run one CLI command to completion (cwd = the data dir's parent, so no stray .env is read)."""
    return subprocess.run(
        [sys.executable, "-m", "aaltohub", *args],
        env=cli_env(data_dir, **extra),
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


class UpProcess:
    """``aaltohub up`` as a child process; ``stop()`` always leaves nothing behind."""

    def __init__(self, data_dir: Path, *args: str, **env: str) -> None:
        self.data_dir = data_dir
        self.args = args  # after `up`
        self.env = {**private_ports(), **env}  # the child's own settings
        self.output = data_dir.parent / f"up-{os.getpid()}-{id(self)}.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn ``aaltohub up``."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "aaltohub", "up", *self.args],
                env=cli_env(self.data_dir, **self.env),
                cwd=self.data_dir.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    async def wait_ready(self, timeout_s: float = 60.0) -> StackInfo:
        """Wait until this process says every service is ready ("ready in"), then read its stack
        file (written as the servers come up, so read before that it may still change)."""

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"aaltohub up exited early:\n{self.text()}")
            stack = read_stack(self.data_dir)
            return stack is not None and stack.pid == self.proc.pid and says_ready(self.text())

        await wait_until(ready, timeout=timeout_s)
        assert "not answering yet" not in self.text(), self.text()  # "ready" means serving
        stack = read_stack(self.data_dir)
        assert stack is not None
        return stack

    def text(self) -> str:
        """Everything the process printed so far."""
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def interrupt(self, timeout_s: float = 45.0, *, sig: int = signal.SIGINT) -> int:
        """SIGINT (Ctrl-C) or ``sig`` and wait for the exit code."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout_s)

    def stop(self) -> None:
        """Stop by SIGINT; kill and reap its servers if it does not go."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.interrupt()
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        reap_orphans(self.data_dir)
        self.proc = None
