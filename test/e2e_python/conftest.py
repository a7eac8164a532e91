"""Starts the real earshot server (src/main.ts, as `npm start` does) once per test session, with
test/support/earshot_server.py (which the benchmarks use too). Tests talk to it with the official OpenAI
Python SDK.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import pytest
from openai import OpenAI

REPO_ROOT = Path(__file__).resolve().parents[2]
AUDIO_DIR = REPO_ROOT / "test" / "audio"
sys.path.insert(0, str(REPO_ROOT / "test" / "support"))
from earshot_server import STOP_TIMEOUT_S, EarshotServer  # noqa: E402

READY_TIMEOUT_S = 120


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


@contextlib.contextmanager
def start_earshot(tmp_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[RunningServer]:
    """Starts earshot (uploads under tmp_dir, `extra_env` on top of the usual test environment),
    yields it once /health answers 200, and stops it with SIGTERM, checking that it exits cleanly.
    The session fixture `earshot` uses it; a module that needs other settings starts its own."""
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH; the end-to-end tests need it to start earshot")
    server = EarshotServer({"EARSHOT_TMP_DIR": str(tmp_dir), **(extra_env or {})})
    try:
        server.wait_ready(READY_TIMEOUT_S)
    except BaseException:
        server.stop()
        raise
    assert server.url is not None
    yield RunningServer(address=server.url, process=server.process, tmp_dir=tmp_dir, logs=server.logs,
                        other_output=server.other_output)
    exit_code = server.stop()
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
