"""Starts the real earshot server (src/main.ts, as `npm start` does) once per test session.

It mirrors test/support/server.ts: the server listens on a free port, logs pino JSON lines on
stdout (one of them, "earshot listening", carries its address), and /health answers 200 once the
default model is loaded. Tests talk to it with the official OpenAI Python SDK.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import pytest
from openai import OpenAI

REPO_ROOT = Path(__file__).resolve().parents[2]
AUDIO_DIR = REPO_ROOT / "test" / "audio"

LISTEN_TIMEOUT_S = 60
READY_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30


@dataclass
class RunningServer:
    address: str
    process: subprocess.Popen[str]
    tmp_dir: Path
    logs: list[dict[str, Any]] = field(default_factory=list)
    other_output: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"{self.address}/v1"

    def upload_dirs(self) -> list[Path]:
        return sorted(self.tmp_dir.glob("earshot-uploads-*"))


def _drain_stdout(
    server_proc: subprocess.Popen[str],
    logs: list[dict[str, Any]],
    other: list[str],
    listening: threading.Event,
    address_box: list[str],
) -> None:
    """Reads every stdout line until EOF, so the pipe never fills and blocks the server."""
    assert server_proc.stdout is not None
    for line in server_proc.stdout:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            other.append(line.rstrip("\n"))
            continue
        if not isinstance(entry, dict):
            other.append(line.rstrip("\n"))
            continue
        logs.append(entry)
        if entry.get("msg") == "earshot listening" and not listening.is_set():
            address_box.append(str(entry["address"]))
            listening.set()
    listening.set()  # EOF: wake the waiter so it can see the process died.


def _health_status(address: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{address}/health", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def _stop(server_proc: subprocess.Popen[str]) -> int | None:
    if server_proc.poll() is not None:
        return server_proc.returncode
    server_proc.send_signal(signal.SIGTERM)
    try:
        return server_proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server_proc.kill()
        server_proc.wait(timeout=10)
        return None


@contextlib.contextmanager
def start_earshot(tmp_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[RunningServer]:
    """Starts earshot (uploads under tmp_dir, `extra_env` on top of the usual test environment),
    yields it once /health answers 200, and stops it with SIGTERM, checking that it exits cleanly.
    The session fixture `earshot` uses it; a module that needs other settings starts its own."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH; the end-to-end tests need it to start earshot")
    env = {
        **os.environ,
        "PORT": "0",
        "HOST": "127.0.0.1",
        "EARSHOT_LOG_LEVEL": "info",
        "EARSHOT_TMP_DIR": str(tmp_dir),
        **(extra_env or {}),
    }
    server_proc = subprocess.Popen(
        [node, "--import", "tsx", str(REPO_ROOT / "src" / "main.ts")],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=None,  # inherited: the server's stderr shows up in pytest's output on failure
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
    )
    logs: list[dict[str, Any]] = []
    other: list[str] = []
    listening = threading.Event()
    address_box: list[str] = []
    reader = threading.Thread(
        target=_drain_stdout, args=(server_proc, logs, other, listening, address_box), daemon=True
    )
    reader.start()

    try:
        if not listening.wait(LISTEN_TIMEOUT_S) or not address_box:
            raise RuntimeError(
                f"earshot did not log 'earshot listening' (exit code {server_proc.poll()}); "
                f"non-JSON output: {other[-20:]}"
            )
        address = address_box[0]
        deadline = time.monotonic() + READY_TIMEOUT_S
        while _health_status(address) != 200:
            if server_proc.poll() is not None:
                raise RuntimeError(f"earshot exited with code {server_proc.returncode} while loading")
            if time.monotonic() > deadline:
                raise RuntimeError(f"earshot did not become ready within {READY_TIMEOUT_S} s")
            time.sleep(0.2)
    except BaseException:
        _stop(server_proc)
        raise

    server = RunningServer(address=address, process=server_proc, tmp_dir=tmp_dir, logs=logs, other_output=other)
    yield server

    exit_code = _stop(server_proc)
    reader.join(timeout=5)
    assert exit_code is not None, f"earshot did not exit within {STOP_TIMEOUT_S} s of SIGTERM and was killed"
    assert exit_code == 0, f"earshot exited with code {exit_code} after SIGTERM"


@pytest.fixture(scope="session")
def earshot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_earshot(tmp_path_factory.mktemp("earshot-tmp")) as server:
        yield server


@pytest.fixture(scope="session")
def client(earshot: RunningServer) -> OpenAI:
    return OpenAI(base_url=earshot.base_url, api_key="not-needed", max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    assert AUDIO_DIR.is_dir(), f"test audio not found at {AUDIO_DIR}"
    return AUDIO_DIR


def _open_audio(directory: Path, name: str) -> Iterator[BinaryIO]:
    with open(directory / name, "rb") as audio_file:
        yield audio_file


@pytest.fixture
def jfk(audio_dir: Path) -> Iterator[BinaryIO]:
    """jfk.flac (11 s), opened for one test: the reference text is in earshot_e2e.JFK_TEXT."""
    yield from _open_audio(audio_dir, "jfk.flac")


@pytest.fixture
def multilingual(audio_dir: Path) -> Iterator[BinaryIO]:
    """multilingual.mp3 (60 s): the MIT licence read in English, then in German."""
    yield from _open_audio(audio_dir, "multilingual.mp3")


@pytest.fixture
def hotwords(audio_dir: Path) -> Iterator[BinaryIO]:
    """hotwords.mp3 (4 s): says "ComfyUI", which small models miss without it as a hotword."""
    yield from _open_audio(audio_dir, "hotwords.mp3")
