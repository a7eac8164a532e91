"""Starts the real earshot server (src/main.ts, as `npm start` does) on a free port of 127.0.0.1, for the
Python end-to-end tests (test/e2e_python/conftest.py) and the benchmarks (bench/benchlib.py). The Node side
of the same is test/support/server.ts.

The server logs pino JSON lines on stdout; "earshot listening" carries its address, and /health answers 200
once the default model can serve.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_S = 30


def environment_without_earshot_settings() -> dict[str, str]:
    """This process's environment without EARSHOT_* settings, so that defaults mean defaults."""
    return {key: value for key, value in os.environ.items() if not key.startswith("EARSHOT_")}


class EarshotServer:
    """One earshot process: `env` on top of `base_env` (this process's environment by default), its log
    lines collected in `logs` (other output in `other_output`). `new_session` starts it in a process group
    of its own, which `stop()` then signals whole."""

    def __init__(self, env: dict[str, str] | None = None, label: str = "earshot", command: list[str] | None = None,
                 new_session: bool = False, base_env: dict[str, str] | None = None,
                 stderr: IO[str] | None = None) -> None:
        self.label = label
        self.env = dict(env or {})
        self.started = time.perf_counter()
        self.logs: list[dict[str, Any]] = []
        self.other_output: list[str] = []
        self.listening_at: float | None = None
        self.url: str | None = None
        self._listening = threading.Event()
        self.process = subprocess.Popen(
            command or ["node", "--import", "tsx", str(REPO_ROOT / "src" / "main.ts")],
            cwd=REPO_ROOT,
            env={**(os.environ if base_env is None else base_env), "PORT": "0", "HOST": "127.0.0.1",
                 "EARSHOT_LOG_LEVEL": "info", **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=new_session,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Reads every stdout line until EOF, so that the pipe never fills and blocks the server."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                self.other_output.append(line.rstrip("\n"))
                continue
            self.logs.append(entry)
            if entry.get("msg") == "earshot listening" and not self._listening.is_set():
                self.url = str(entry["address"])
                self.listening_at = time.perf_counter()
                self._listening.set()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def wait_listening(self, timeout: float = 120) -> str:
        deadline = time.perf_counter() + timeout
        while not self._listening.wait(0.05):
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited with code {self.process.returncode} before listening; "
                                   f"other output: {self.other_output[-20:]}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{self.label} did not listen within {timeout} s")
        assert self.url is not None
        return self.url

    def health_status(self) -> int:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return 0

    def health(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as error:
            return dict(json.loads(error.read()))

    def wait_ready(self, timeout: float = 180) -> float:
        """Waits for /health 200; returns seconds since the process was spawned."""
        self.wait_listening(timeout)
        deadline = time.perf_counter() + timeout
        while self.health_status() != 200:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited with code {self.process.returncode} while loading")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{self.label} was not ready within {timeout} s")
            time.sleep(0.02)
        return time.perf_counter() - self.started

    def stop(self) -> int | None:
        """SIGTERM (to the process group when started in its own session), then SIGKILL after 30 s.
        Returns the exit code, or None when it had to be killed."""
        code: int | None = self.process.poll()
        if code is None:
            if self.process.pid == os.getpgid(self.process.pid):
                os.killpg(self.process.pid, signal.SIGTERM)
            else:
                self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                code = None
        self._reader.join(timeout=5)
        return code

    def __enter__(self) -> "EarshotServer":
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()
