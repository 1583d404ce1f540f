"""Run the real service in a uvicorn subprocess on a free loopback port, for tests and benchmarks.

The test binds the socket (port 0: the kernel picks a free one) and hands it to the child,
so there is no race for the port between choosing and listening. The child runs the server
`asr serve` runs (server.app.uvicorn_server: uvicorn's connection limits included).
Its address space is capped, so that a runaway allocation fails in the server instead of
exhausting the machine.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import httpx

REPO = Path(__file__).resolve().parents[1]
MEMORY_CAP = 8 * 2**30  # bytes of address space; an idle server maps about 3.5 GiB

LAUNCH = """
import socket, sys
exec(sys.argv[2])
from server.app import uvicorn_server
from server.settings import Settings
sock = socket.socket(fileno=int(sys.argv[1]))
uvicorn_server(Settings(), log_level="warning").run(sockets=[sock])
"""


class LiveServer:
    def __init__(
        self, env: Optional[dict] = None, wait_for: str = "/ready", timeout: float = 120.0,
        log: Optional[Path] = None, setup: str = "",
    ):
        """env: `ASR_*` settings; log: a file for the server's output (default: this process's stderr);
        setup: Python code the server process runs before it builds the app (tests inject faults with it)."""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        child_env = {**os.environ, "ASR_TORCH_THREADS": "1", **(env or {})}
        self.log = open(log, "wb") if log is not None else None
        self.process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, str(self.sock.fileno()), setup],
            pass_fds=(self.sock.fileno(),), env=child_env, cwd=REPO, preexec_fn=cap_memory,
            stdout=self.log, stderr=self.log,
        )
        self.wait_for(wait_for, timeout)

    def wait_for(self, path: str, timeout: float) -> None:
        """Poll `path` until it answers 200 (e.g. /ready: model loaded and warmed up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"{path} not 200 after {timeout} s")

    def peak_rss_mib(self) -> float:
        """Peak resident memory of the server process (VmHWM), in MiB."""
        return self._status_mib("VmHWM")

    def rss_mib(self) -> float:
        """Resident memory of the server process now (VmRSS), in MiB."""
        return self._status_mib("VmRSS")

    def _status_mib(self, field: str) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith(field + ":")) / 1024

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.sock.close()
        if self.log is not None:
            self.log.close()

    def __enter__(self) -> "LiveServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
