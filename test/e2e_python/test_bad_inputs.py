"""A corpus of bad inputs against the real earshot server (default model `base`).

Every case asserts the status and the whole OpenAI-shaped error body ({"error": {message, type,
param, code}}, with the status, type and code that src/api-errors.ts gives its kind), and, through the
autouse fixture `server_intact`, that the upload directory is empty afterwards, that no engine
worker died or was replaced, and that the server logged no error. No case may get a 5xx or hang:
every HTTP call and socket has a timeout.

The inputs are generated here (PyAV and numpy) from test/audio/jfk.flac: truncated encodings,
silence, 8 channels, 96 kHz, a video without audio, a hand-made PNG; malformed multipart bodies and
stalled uploads go over raw sockets.

This module starts its own server (not the session one) with EARSHOT_UPLOAD_IDLE_TIMEOUT_MS=2000, so
that a stalled upload is answered within seconds.

"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import re
import socket
import struct
import time
import wave
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Union

import av
import httpx2 as httpx
import numpy as np
import pytest
from conftest import AUDIO_DIR, RunningServer, start_earshot
from earshot_e2e import JFK_TEXT, normalise

IDLE_TIMEOUT_MS = 2000
IDLE_TIMEOUT_S = IDLE_TIMEOUT_MS / 1000
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # the default EARSHOT_MAX_UPLOAD_BYTES
HTTP_TIMEOUT_S = 60
TRANSCRIPTIONS = "/v1/audio/transcriptions"
TRANSLATIONS = "/v1/audio/translations"
BOUNDARY = "earshot-bad-inputs-boundary"

# src/api-errors.ts: kind -> (status, type, code on the wire).
ERROR_KINDS: dict[str, tuple[int, str, str | None]] = {
    "invalid_request": (400, "invalid_request_error", None),
    "missing_file": (400, "invalid_request_error", None),
    "missing_model": (400, "invalid_request_error", "missing_required_parameter"),
    "invalid_value": (400, "invalid_request_error", "invalid_value"),
    "invalid_language": (400, "invalid_request_error", "invalid_language_format"),
    "unsupported_value": (400, "invalid_request_error", "unsupported_value"),
    "invalid_audio": (400, "invalid_request_error", None),
    "audio_too_short": (400, "invalid_request_error", "audio_too_short"),
    "file_too_large": (413, "server_error", None),
    "model_not_found": (404, "invalid_request_error", "model_not_found"),
    "upload_timeout": (408, "invalid_request_error", "upload_timeout"),
    "form_too_large": (413, "invalid_request_error", "form_too_large"),
}

# src/engine/worker.ts appends this to every invalid_audio message.
SUPPORTED_FORMATS = (
    "Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm'] "
    "and any other that FFmpeg decodes"
)
INVALID_DATA = "Invalid data found when processing input"


NO_AUDIO_TRACK = f"Invalid file format: the file has no audio track. {SUPPORTED_FORMATS}"


def invalid_audio(reason: str) -> str:
    """The invalid_audio message for a decoder reason."""
    return f"Invalid file format: the file could not be decoded as audio ({reason}). {SUPPORTED_FORMATS}"


# --------------------------------------------------------------------------------------------------
# The module's own server and its invariants
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {"EARSHOT_UPLOAD_IDLE_TIMEOUT_MS": str(IDLE_TIMEOUT_MS)}
    with start_earshot(tmp_path_factory.mktemp("bad-inputs-server"), env) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    timeout = httpx.Timeout(HTTP_TIMEOUT_S, connect=10)
    with httpx.Client(base_url=server.address, timeout=timeout) as client:
        yield client


def _health(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/health", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _default_pool(health: dict[str, Any]) -> dict[str, Any]:
    pools = [pool for pool in health["models"] if pool["model"] == health["defaultModel"]]
    assert len(pools) == 1, health
    return pools[0]


def _upload_dir(server: RunningServer) -> Path:
    """The server's one upload directory, and nothing else in its temporary directory."""
    entries = sorted(server.tmp_dir.iterdir())
    assert len(entries) == 1 and entries[0].name.startswith("earshot-uploads-"), entries
    return entries[0]


def _uploads_left(server: RunningServer) -> list[str]:
    return sorted(path.name for path in _upload_dir(server).iterdir())


def _wait_for_no_uploads(server: RunningServer, timeout_s: float = 5.0) -> None:
    """For cases whose client hung up: the server removes the upload once it sees the close."""
    deadline = time.monotonic() + timeout_s
    while _uploads_left(server) and time.monotonic() < deadline:
        time.sleep(0.05)


def _workers_started(server: RunningServer) -> int:
    return sum(1 for entry in list(server.logs) if entry.get("msg") == "engine worker ready")


@pytest.fixture(scope="module")
def baseline(server: RunningServer, http: httpx.Client) -> dict[str, int]:
    # /health is 200 once one worker serves; the others of the pool may still be loading.
    deadline = time.monotonic() + 60
    while (pool := _default_pool(_health(http)))["workers"] < pool["size"]:
        assert time.monotonic() < deadline, f"the default model's workers did not all start: {pool}"
        time.sleep(0.1)
    return {"restarts": pool["restarts"], "workers_started": _workers_started(server)}


@pytest.fixture(autouse=True)
def server_intact(server: RunningServer, http: httpx.Client, baseline: dict[str, int]) -> Iterator[None]:
    """Around every case: no upload left behind, no worker died or was replaced, no error logged."""
    assert _uploads_left(server) == []
    logs_before = len(server.logs)
    yield
    assert _uploads_left(server) == [], "an upload was left in the server's upload directory"
    assert server.process.poll() is None, "the server exited"
    pool = _default_pool(_health(http))
    assert pool["state"] == "ready" and pool["workers"] >= 1, pool
    assert pool["restarts"] == baseline["restarts"], f"an engine worker was restarted: {pool}"
    assert _workers_started(server) == baseline["workers_started"], "a new engine worker was started"
    errors = [entry for entry in list(server.logs)[logs_before:] if entry.get("level", 0) >= 50]
    assert errors == [], errors


# --------------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str
    value: str


@dataclass(frozen=True)
class File:
    data: bytes
    filename: Union[str, bytes] = "audio.wav"
    name: str = "file"
    content_type: str = "application/octet-stream"


Part = Union[Field, File]


def multipart(*parts: Part, boundary: str = BOUNDARY) -> bytes:
    """A multipart/form-data body built byte by byte, so that duplicates and odd names go out as is."""
    out = bytearray()
    for part in parts:
        out += f"--{boundary}\r\n".encode()
        if isinstance(part, File):
            filename = part.filename.encode() if isinstance(part.filename, str) else part.filename
            out += f'Content-Disposition: form-data; name="{part.name}"; filename="'.encode() + filename + b'"\r\n'
            out += f"Content-Type: {part.content_type}\r\n\r\n".encode()
            out += part.data
        else:
            out += f'Content-Disposition: form-data; name="{part.name}"\r\n\r\n'.encode()
            out += part.value.encode()
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def post_form(http: httpx.Client, *parts: Part, path: str = TRANSCRIPTIONS) -> httpx.Response:
    return http.post(
        path, content=multipart(*parts), headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    )


def assert_error(
    status: int,
    headers: dict[str, str],
    body: bytes,
    kind: str,
    message: Union[str, re.Pattern[str]],
    param: str | None = None,
) -> None:
    """The response is exactly the OpenAI error of `kind` (src/api-errors.ts), as JSON."""
    expected_status, expected_type, expected_code = ERROR_KINDS[kind]
    assert status == expected_status, f"status {status}, expected {expected_status}: {body[:500]!r}"
    assert headers.get("content-type") == "application/json; charset=utf-8", headers
    assert headers.get("x-request-id"), headers
    wire = json.loads(body)
    assert set(wire) == {"error"}, wire
    error = wire["error"]
    assert set(error) == {"message", "type", "param", "code"}, wire
    if isinstance(message, re.Pattern):
        assert isinstance(error["message"], str) and message.fullmatch(error["message"]), wire
        message = error["message"]
    assert error == {"message": message, "type": expected_type, "param": param, "code": expected_code}, wire


def assert_error_response(
    response: httpx.Response, kind: str, message: Union[str, re.Pattern[str]], param: str | None = None
) -> None:
    assert_error(response.status_code, dict(response.headers), response.content, kind, message, param)


def assert_transcript(response: httpx.Response, check: Callable[[str], None], max_seconds: int | None = None) -> str:
    assert response.status_code == 200, f"{response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"text", "usage"}, body
    assert body["usage"]["type"] == "duration" and body["usage"]["seconds"] >= 0, body
    if max_seconds is not None:
        assert body["usage"]["seconds"] <= max_seconds, body
    check(body["text"])
    return body["text"]


def is_jfk(text: str) -> None:
    assert normalise(text) == normalise(JFK_TEXT), text


def is_jfk_opening(text: str) -> None:
    """Some words of the start of the JFK speech, as a truncated file holds only its first second."""
    assert normalise(text) and normalise(JFK_TEXT).startswith(normalise(text)), text


def has_no_words(text: str) -> None:
    """Silence: empty text, or at most punctuation (base transcribes 10 s of zeros as "... ...")."""
    assert normalise(text) == "", text


def is_empty(text: str) -> None:
    assert text == "", text


# Raw HTTP over a socket, for bodies and timings no HTTP client would produce.


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after the response


def _address(server: RunningServer) -> tuple[str, int]:
    match = re.fullmatch(r"http://([^:/]+):(\d+)", server.address)
    assert match, server.address
    return match[1], int(match[2])


def _read_response(sock: socket.socket, deadline: float) -> RawResponse:
    """Reads one response (content-length framed) and then waits for the server to close."""
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"no complete response within the deadline; got {data[:300]!r}") from None
        if not chunk:
            raise AssertionError(f"the server closed the connection without a response; got {data[:300]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ")[1])
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    closed = False
    while len(body) < length or not closed:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            if len(body) < length:
                raise AssertionError(f"incomplete body: {body[:300]!r}") from None
            break  # the body is complete, the connection stays open
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        body += chunk
    return RawResponse(status, headers, body[:length], closed)


def raw_request(server: RunningServer, request: bytes, timeout_s: float = 10) -> RawResponse:
    with socket.create_connection(_address(server), timeout=timeout_s) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (and closed) before reading it all: its answer is still to read
        return _read_response(sock, time.monotonic() + timeout_s)


def http_request(body: bytes, content_type: str | None, path: str = TRANSCRIPTIONS, extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: earshot\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    head += f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    return head.encode() + body


# --------------------------------------------------------------------------------------------------
# Generated inputs
# --------------------------------------------------------------------------------------------------


def _decode(path: Path, rate: int) -> np.ndarray:
    """A file's audio as float32 mono at `rate`, shape (1, samples)."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
    chunks.extend(out.to_ndarray() for out in resampler.resample(None))
    return np.concatenate(chunks, axis=1).astype(np.float32)


def _encode(
    path: Path,
    samples: np.ndarray,
    rate: int,
    container_format: str,
    codec: str,
    layout: str = "mono",
    container_options: dict[str, str] | None = None,
    codec_options: dict[str, str] | None = None,
) -> Path:
    """Encodes samples (channels × n float32) with PyAV; frames go in as packed float."""
    with av.open(str(path), "w", format=container_format, options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout, options=codec_options or {})
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=rate)
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, samples.shape[1], frame_size):
            chunk = np.ascontiguousarray(samples[:, start : start + frame_size].T).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            for resampled in resampler.resample(frame):
                out.mux(stream.encode(resampled))
        for resampled in resampler.resample(None):
            out.mux(stream.encode(resampled))
        out.mux(stream.encode(None))
    return path


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """16-bit mono PCM WAV of float samples in [-1, 1]."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm)
    return buffer.getvalue()


def _png() -> bytes:
    """A 4×4 red PNG, written by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 4 for _ in range(4))
    header = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


class Media:
    """Test inputs, generated on first use into the module's temporary directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.jfk_path = AUDIO_DIR / "jfk.flac"

    @functools.cached_property
    def jfk_flac(self) -> bytes:
        return self.jfk_path.read_bytes()

    @functools.cached_property
    def jfk_44k(self) -> np.ndarray:
        return _decode(self.jfk_path, 44100)

    def _encoded(self, name: str, rate: int, container_format: str, codec: str, **kwargs: Any) -> bytes:
        samples = self.jfk_44k if rate == 44100 else _decode(self.jfk_path, rate)
        if kwargs.get("layout") == "stereo":
            samples = np.vstack([samples, samples])
        return _encode(self.dir / name, samples, rate, container_format, codec, **kwargs).read_bytes()

    @functools.cache
    def encoded(self, kind: str) -> bytes:
        """The whole JFK speech in one format."""
        if kind == "mp3":
            return self._encoded("jfk.mp3", 44100, "mp3", "libmp3lame")
        if kind == "wav":
            return self._encoded("jfk.wav", 44100, "wav", "pcm_s16le")
        if kind == "flac":
            return self._encoded("jfk-44k.flac", 44100, "flac", "flac")
        if kind == "ogg_vorbis":
            # FFmpeg's own vorbis encoder is experimental and stereo only.
            return self._encoded(
                "jfk.ogg", 44100, "ogg", "vorbis", layout="stereo", codec_options={"strict": "experimental"}
            )
        if kind == "ogg_opus":
            return self._encoded("jfk.opus", 48000, "ogg", "libopus")
        if kind == "m4a":  # moov atom at the end, as FFmpeg writes by default
            return self._encoded("jfk.m4a", 44100, "ipod", "aac")
        if kind == "m4a_faststart":  # moov atom first
            return self._encoded(
                "jfk-faststart.m4a", 44100, "ipod", "aac", container_options={"movflags": "faststart"}
            )
        raise KeyError(kind)

    def truncated(self, kind: str) -> bytes:
        """The first 10 % of an encoded file."""
        data = self.encoded(kind)
        return data[: len(data) // 10]

    @functools.cached_property
    def eight_channels_wav(self) -> bytes:
        eight = np.vstack([_decode(self.jfk_path, 16000) * 0.5] * 8)
        return _encode(self.dir / "jfk-8ch.wav", eight, 16000, "wav", "pcm_s16le", layout="7.1").read_bytes()

    @functools.cached_property
    def wav_96khz(self) -> bytes:
        samples = _decode(self.jfk_path, 96000)
        return _encode(self.dir / "jfk-96k.wav", samples, 96000, "wav", "pcm_s24le").read_bytes()

    @functools.cached_property
    def video_without_audio(self) -> bytes:
        path = self.dir / "video.mp4"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("mpeg4", rate=10)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for index in range(20):
                image = np.full((48, 64, 3), index * 10, np.uint8)
                out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            out.mux(stream.encode(None))
        with av.open(str(path)) as check:
            assert len(check.streams.video) == 1 and len(check.streams.audio) == 0
        return path.read_bytes()

    @staticmethod
    def silence_wav(seconds: float, rate: int) -> bytes:
        return _wav_bytes(np.zeros(int(seconds * rate), np.float32), rate)

    @functools.cached_property
    def tone(self) -> bytes:
        """1 s of 440 Hz at 16 kHz: a valid file for cases whose fields are refused before decoding."""
        n = np.arange(16000)
        return _wav_bytes(0.25 * np.sin(2 * math.pi * 440 * n / 16000), 16000)

    @functools.cached_property
    def too_short(self) -> bytes:
        """0.05 s of 440 Hz: decodes, but is under OpenAI's 0.1 s minimum."""
        n = np.arange(800)
        return _wav_bytes(0.25 * np.sin(2 * math.pi * 440 * n / 16000), 16000)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    return Media(tmp_path_factory.mktemp("bad-inputs-media"))


# --------------------------------------------------------------------------------------------------
# 1. Files that are not (entirely) audio, and odd audio
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    kind: str
    message: Union[str, re.Pattern[str]]
    param: str | None = None


@dataclass(frozen=True)
class Transcribed:
    check: Callable[[str], None]
    max_seconds: int | None = None


# (case id, filename, content, extra fields, expected)
FILE_CASES: list[tuple[str, str, Callable[[Media], bytes], tuple[Field, ...], Union[Refused, Transcribed]]] = [
    ("empty_file", "empty.wav", lambda m: b"", (), Refused("invalid_audio", invalid_audio(INVALID_DATA))),
    (
        "random_bytes",
        "noise.mp3",
        lambda m: np.random.default_rng(1).bytes(64 * 1024),
        (),
        Refused("invalid_audio", invalid_audio(INVALID_DATA)),
    ),
    (
        "random_bytes_streamed",  # stream=true: still a plain JSON 400, the stream starts after decoding
        "noise.wav",
        lambda m: np.random.default_rng(2).bytes(4096),
        (Field("stream", "true"),),
        Refused("invalid_audio", invalid_audio(INVALID_DATA)),
    ),
    (
        "header_only_wav_44_bytes",
        "header.wav",
        lambda m: m.encoded("wav")[:44],
        (),
        Refused("invalid_audio", invalid_audio(INVALID_DATA)),
    ),
    (
        "text_file",
        "notes.txt",
        lambda m: b"This is not audio.\n" * 200,
        (),
        Refused("invalid_audio", invalid_audio(INVALID_DATA)),
    ),
    # FFmpeg opens a PNG (image2 demuxer) and a video, but they hold no audio stream.
    ("png_image", "picture.png", lambda m: _png(), (), Refused("invalid_audio", NO_AUDIO_TRACK)),
    (
        "mp4_video_without_audio",
        "video.mp4",
        lambda m: m.video_without_audio,
        (),
        Refused("invalid_audio", NO_AUDIO_TRACK),
    ),
    (
        "audio_under_0.1s",
        "short.wav",
        lambda m: m.too_short,
        (),
        Refused("audio_too_short", "Audio file is too short. Minimum audio length is 0.1 seconds.", "file"),
    ),
    # The first 10 % of a real encoding: what decodes is transcribed, or the file is refused; which
    # one is a property of the format (decided by FFmpeg), so each is pinned here.
    ("truncated_mp3", "cut.mp3", lambda m: m.truncated("mp3"), (), Transcribed(is_jfk_opening, 2)),
    ("truncated_wav", "cut.wav", lambda m: m.truncated("wav"), (), Transcribed(is_jfk_opening, 2)),
    ("truncated_flac", "cut.flac", lambda m: m.truncated("flac"), (), Transcribed(is_jfk_opening, 2)),
    # Ogg: the demuxer reads past the cut while opening the file, so nothing decodes.
    (
        "truncated_ogg_vorbis",
        "cut.ogg",
        lambda m: m.truncated("ogg_vorbis"),
        (),
        Refused("invalid_audio", invalid_audio("End of file")),
    ),
    (
        "truncated_ogg_opus",
        "cut.opus",
        lambda m: m.truncated("ogg_opus"),
        (),
        Refused("invalid_audio", invalid_audio("End of file")),
    ),
    # m4a as FFmpeg writes it has its index (moov) at the end: cut, it cannot be opened...
    (
        "truncated_m4a",
        "cut.m4a",
        lambda m: m.truncated("m4a"),
        (),
        Refused("invalid_audio", invalid_audio(INVALID_DATA)),
    ),
    # ... with the index first (faststart), the part that arrived decodes.
    (
        "truncated_m4a_faststart",
        "cut.m4a",
        lambda m: m.truncated("m4a_faststart"),
        (),
        Transcribed(is_jfk_opening, 2),
    ),
    ("flac_named_mp3", "jfk.mp3", lambda m: m.jfk_flac, (), Transcribed(is_jfk, 11)),
    ("silence_10s", "silence.wav", lambda m: m.silence_wav(10, 16000), (), Transcribed(has_no_words, 10)),
    # 10 minutes of zeros, 8 kHz mono (9.6 MB), with vad_filter=true to keep the case fast: Silero
    # VAD drops it all in ~2 s. (Decoded sequentially without VAD it took ~16 s on 2 cores and base
    # hallucinated "You You You …".)
    (
        "silence_10min_8khz_vad",
        "silence.wav",
        lambda m: m.silence_wav(600, 8000),
        (Field("vad_filter", "true"),),
        Transcribed(is_empty, 600),
    ),
    ("eight_channels_wav", "jfk-8ch.wav", lambda m: m.eight_channels_wav, (), Transcribed(is_jfk, 11)),
    ("sample_rate_96khz_24bit_wav", "jfk-96k.wav", lambda m: m.wav_96khz, (), Transcribed(is_jfk, 11)),
]


@pytest.mark.parametrize(
    ("filename", "content", "extra", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in FILE_CASES],
)
def test_file(
    http: httpx.Client,
    media: Media,
    filename: str,
    content: Callable[[Media], bytes],
    extra: tuple[Field, ...],
    expected: Union[Refused, Transcribed],
) -> None:
    response = post_form(http, Field("model", "whisper-1"), *extra, File(content(media), filename))
    if isinstance(expected, Refused):
        assert_error_response(response, expected.kind, expected.message, expected.param)
    else:
        assert_transcript(response, expected.check, expected.max_seconds)


def test_translation_of_random_bytes(http: httpx.Client) -> None:
    response = post_form(
        http, Field("model", "whisper-1"), File(np.random.default_rng(3).bytes(2048), "x.mp3"), path=TRANSLATIONS
    )
    assert_error_response(response, "invalid_audio", invalid_audio(INVALID_DATA))


# --------------------------------------------------------------------------------------------------
# 2. Field values: wrong types, out of range, unknown values, bad combinations
# --------------------------------------------------------------------------------------------------


def _number(name: str, raw: str, low: float, high: float, whole: bool = False, exclusive: bool = False) -> str:
    """transcription-request.ts's message for a number out of its rule."""
    kind = "a whole number" if whole else "a number"
    fmt = lambda value: str(int(value)) if float(value).is_integer() else str(value)  # noqa: E731
    span = f"greater than {fmt(low)} and at most {fmt(high)}" if exclusive else f"from {fmt(low)} to {fmt(high)}"
    return f"Invalid {name} '{raw}': use {kind} {span}."


RESPONSE_FORMAT_VALUES = "Supported values are: 'json', 'text', 'srt', 'verbose_json', 'vtt', and 'diarized_json'."
VAD_KEYS = (
    "threshold, neg_threshold, min_speech_duration_ms, max_speech_duration_s, min_silence_duration_ms, speech_pad_ms"
)
HOTWORDS_2000 = "comfy " * 333 + "ui"
assert len(HOTWORDS_2000) == 2000

# (case id, fields, kind, param, message)
FIELD_CASES: list[tuple[str, tuple[Field, ...], str, str | None, str]] = [
    ("temperature_hot", (Field("temperature", "hot"),), "invalid_value", "temperature",
     _number("temperature", "hot", 0, 1)),
    ("temperature_-1", (Field("temperature", "-1"),), "invalid_value", "temperature",
     _number("temperature", "-1", 0, 1)),
    ("temperature_2", (Field("temperature", "2"),), "invalid_value", "temperature",
     _number("temperature", "2", 0, 1)),
    ("temperature_NaN", (Field("temperature", "NaN"),), "invalid_value", "temperature",
     _number("temperature", "NaN", 0, 1)),
    ("temperature_Infinity", (Field("temperature", "Infinity"),), "invalid_value", "temperature",
     _number("temperature", "Infinity", 0, 1)),
    ("response_format_5", (Field("response_format", "5"),), "invalid_value", "response_format",
     f"Invalid value: '5'. {RESPONSE_FORMAT_VALUES}"),
    ("response_format_xml", (Field("response_format", "xml"),), "invalid_value", "response_format",
     f"Invalid value: 'xml'. {RESPONSE_FORMAT_VALUES}"),
    ("speaker_labels_with_diarized_json", (Field("response_format", "diarized_json"), Field("speaker_labels", "true")),
     "invalid_value", "speaker_labels", "speaker_labels needs response_format 'srt' or 'vtt' (diarized_json always has them)."),
    ("timestamp_granularities_char", (Field("response_format", "verbose_json"),
                                      Field("timestamp_granularities[]", "char")),
     "invalid_value", "timestamp_granularities",
     "Invalid timestamp_granularities value 'char': use 'word' and/or 'segment'."),
    ("timestamp_granularities_json_array_number", (Field("response_format", "verbose_json"),
                                                   Field("timestamp_granularities", "[1]")),
     "invalid_value", "timestamp_granularities",
     "Invalid timestamp_granularities value a number: use 'word' and/or 'segment'."),
    ("timestamp_granularities_nested_array", (Field("response_format", "verbose_json"),
                                              Field("timestamp_granularities[]", '[["word"]]')),
     "invalid_value", "timestamp_granularities",
     "Invalid timestamp_granularities value an array: use 'word' and/or 'segment'."),
    ("timestamp_granularities_word_and_nested", (Field("response_format", "verbose_json"),
                                                 Field("timestamp_granularities", '["word",["segment"]]')),
     "invalid_value", "timestamp_granularities",
     "Invalid timestamp_granularities value an array: use 'word' and/or 'segment'."),
    ("timestamp_granularities_object_with_toString", (Field("response_format", "verbose_json"),
                                                      Field("timestamp_granularities", '[{"toString":1}]')),
     "invalid_value", "timestamp_granularities",
     "Invalid timestamp_granularities value an object: use 'word' and/or 'segment'."),
    ("timestamp_granularities_without_verbose_json", (Field("timestamp_granularities[]", "word"),),
     "invalid_value", "timestamp_granularities", "timestamp_granularities needs response_format 'verbose_json'."),
    ("language_xx", (Field("language", "xx"),), "invalid_language", "language",
     "Invalid language 'xx'. Language parameter must be specified in ISO-639-1 format."),
    ("language_12", (Field("language", "12"),), "invalid_language", "language",
     "Invalid language '12'. Language parameter must be specified in ISO-639-1 format."),
    ("stream_maybe", (Field("stream", "maybe"),), "invalid_value", "stream",
     "Invalid stream 'maybe': use true or false."),
    ("stream_with_srt", (Field("stream", "true"), Field("response_format", "srt")), "unsupported_value",
     "response_format", "response_format 'srt' is not compatible with stream=true. Use 'json' or 'text' instead."),
    ("include_nope", (Field("include[]", "nope"),), "invalid_value", "include",
     "Invalid include value 'nope': only 'logprobs'."),
    ("include_logprobs_with_text", (Field("include[]", "logprobs"), Field("response_format", "text")),
     "unsupported_value", "include",
     "include[]=logprobs is not compatible with response_format 'text'. Use 'json' instead."),
    ("chunking_strategy_garbage", (Field("chunking_strategy", "garbage"),), "invalid_value", "chunking_strategy",
     "Invalid chunking_strategy: use 'auto' or an object with type 'server_vad'."),
    ("chunking_strategy_broken_json", (Field("chunking_strategy", "{not json"),), "invalid_value", "chunking_strategy",
     "Invalid chunking_strategy: send a JSON object."),
    ("chunking_strategy_unknown_type", (Field("chunking_strategy[type]", "client_vad"),), "invalid_value",
     "chunking_strategy", "Invalid chunking_strategy: use 'auto' or an object with type 'server_vad'."),
    ("chunking_strategy_threshold_5", (Field("chunking_strategy", '{"type":"server_vad","threshold":5}'),),
     "invalid_value", "chunking_strategy.threshold", _number("chunking_strategy.threshold", "5", 0, 1)),
    ("chunking_strategy_unknown_key", (Field("chunking_strategy", '{"type":"server_vad","foo":1}'),),
     "invalid_value", "chunking_strategy",
     "Unknown chunking_strategy key 'foo': use type, threshold, prefix_padding_ms, silence_duration_ms."),
    ("beam_size_0", (Field("beam_size", "0"),), "invalid_value", "beam_size", _number("beam_size", "0", 1, 20, True)),
    ("beam_size_x", (Field("beam_size", "x"),), "invalid_value", "beam_size", _number("beam_size", "x", 1, 20, True)),
    ("beam_size_1000", (Field("beam_size", "1000"),), "invalid_value", "beam_size",
     _number("beam_size", "1000", 1, 20, True)),
    ("beam_size_1.5", (Field("beam_size", "1.5"),), "invalid_value", "beam_size",
     _number("beam_size", "1.5", 1, 20, True)),
    ("beam_size_twice", (Field("beam_size", "1"), Field("beam_size", "2")), "invalid_value", "beam_size",
     "The field 'beam_size' was sent 2 times; send it once."),
    ("best_of_0", (Field("best_of", "0"),), "invalid_value", "best_of", _number("best_of", "0", 1, 20, True)),
    ("batch_size_0", (Field("batch_size", "0"),), "invalid_value", "batch_size",
     _number("batch_size", "0", 1, 64, True)),
    ("batch_size_65", (Field("batch_size", "65"),), "invalid_value", "batch_size",
     _number("batch_size", "65", 1, 64, True)),
    ("patience_0", (Field("patience", "0"),), "invalid_value", "patience",
     _number("patience", "0", 0, 10, exclusive=True)),
    ("vad_filter_perhaps", (Field("vad_filter", "perhaps"),), "invalid_value", "vad_filter",
     "Invalid vad_filter 'perhaps': use true or false."),
    ("condition_on_previous_text_yes", (Field("condition_on_previous_text", "yes"),), "invalid_value",
     "condition_on_previous_text", "Invalid condition_on_previous_text 'yes': use true or false."),
    ("vad_parameters_array", (Field("vad_parameters", "[]"),), "invalid_value", "vad_parameters",
     "Invalid vad_parameters: send a JSON object."),
    ("vad_parameters_unknown_key", (Field("vad_parameters", '{"bad":1}'),), "invalid_value", "vad_parameters",
     f"Unknown vad_parameters key 'bad': use {VAD_KEYS}."),
    *[(f"vad_parameters_key_{key}", (Field("vad_parameters", f'{{"{key}":1}}'),), "invalid_value", "vad_parameters",
       f"Unknown vad_parameters key '{key}': use {VAD_KEYS}.") for key in ("constructor", "toString", "__proto__")],
    *[(f"chunking_strategy_key_{key}", (Field("chunking_strategy[type]", "server_vad"),
                                        Field(f"chunking_strategy[{key}]", "1")), "invalid_value", "chunking_strategy",
       f"Unknown chunking_strategy key '{key}': use type, threshold, prefix_padding_ms, silence_duration_ms.")
      for key in ("constructor", "toString")],
    *[(f"beam_size_{name}", (Field("beam_size", raw),), "invalid_value", "beam_size",
       _number("beam_size", raw, 1, 20, whole=True))
      for name, raw in {"hex": "0x14", "binary": "0b1", "underscore": "1_0", "leading_space": " 5",
                        "trailing_space": "5 ", "plus": "+5", "Infinity": "Infinity", "NaN": "NaN",
                        "empty": ""}.items()],
    ("temperature_hex", (Field("temperature", "0x1"),), "invalid_value", "temperature",
     _number("temperature", "0x1", 0, 1)),
    ("vad_parameters_threshold_2", (Field("vad_parameters[threshold]", "2"),), "invalid_value",
     "vad_parameters.threshold", _number("vad_parameters.threshold", "2", 0, 1)),
    ("vad_parameters_threshold_null", (Field("vad_parameters", '{"threshold":null}'),), "invalid_value",
     "vad_parameters.threshold", "Invalid vad_parameters.threshold: use a number."),
    ("vad_parameters_json_and_brackets", (Field("vad_parameters", '{"threshold":0.5}'),
                                          Field("vad_parameters[threshold]", "0.5")),
     "invalid_value", "vad_parameters",
     "Send vad_parameters either as one value or as vad_parameters[key] fields, not both."),
    ("no_speech_threshold_2", (Field("no_speech_threshold", "2"),), "invalid_value", "no_speech_threshold",
     _number("no_speech_threshold", "2", 0, 1)),
    ("log_prob_threshold_1", (Field("log_prob_threshold", "1"),), "invalid_value", "log_prob_threshold",
     _number("log_prob_threshold", "1", -100, 0)),
    ("hallucination_silence_threshold_-1", (Field("hallucination_silence_threshold", "-1"),), "invalid_value",
     "hallucination_silence_threshold", _number("hallucination_silence_threshold", "-1", 0, 3600, exclusive=True)),
    ("prompt_over_64_kib", (Field("prompt", "p" * (64 * 1024 + 1)),), "form_too_large", "prompt",
     "The field 'prompt' is over 65536 bytes; text fields are at most 65536 bytes each."),
    ("fields_over_256_kib_together", tuple(Field(f"extra_{i}", "x" * 60 * 1024) for i in range(5)), "form_too_large",
     "extra_4", "The form's text fields are over 262144 bytes together (at the field 'extra_4')."),
    ("hotwords_2000_chars", (Field("hotwords", HOTWORDS_2000),), "invalid_value", "hotwords",
     "hotwords is too long: at most 1000 characters."),
]


@pytest.mark.parametrize(
    ("fields", "kind", "param", "message"), [pytest.param(*case[1:], id=case[0]) for case in FIELD_CASES]
)
def test_field(
    http: httpx.Client, media: Media, fields: tuple[Field, ...], kind: str, param: str | None, message: str
) -> None:
    response = post_form(http, Field("model", "whisper-1"), *fields, File(media.tone, "tone.wav"))
    assert_error_response(response, kind, message, param)


def test_translation_response_format_xml(http: httpx.Client, media: Media) -> None:
    response = post_form(
        http, Field("model", "whisper-1"), Field("response_format", "xml"), File(media.tone), path=TRANSLATIONS
    )
    assert_error_response(
        response, "invalid_value", f"Invalid value: 'xml'. {RESPONSE_FORMAT_VALUES}", "response_format"
    )


# --------------------------------------------------------------------------------------------------
# 3. The form itself: missing, duplicate and misplaced parts
# --------------------------------------------------------------------------------------------------

FORM_CASES: list[tuple[str, Callable[[Media], tuple[Part, ...]], str, str | None, str]] = [
    ("no_model", lambda m: (File(m.tone),), "missing_model", "model", "Missing required parameter: 'model'."),
    ("blank_model", lambda m: (Field("model", "   "), File(m.tone)), "missing_model", "model",
     "Missing required parameter: 'model'."),
    ("no_file", lambda m: (Field("model", "whisper-1"),), "missing_file", None, "Missing required parameter: 'file'."),
    ("two_model_fields", lambda m: (Field("model", "whisper-1"), Field("model", "base"), File(m.tone)),
     "invalid_value", "model", "The field 'model' was sent 2 times; send it once."),
    ("model_and_model_brackets", lambda m: (Field("model", "whisper-1"), Field("model[]", "base"), File(m.tone)),
     "invalid_value", "model", "The field 'model' was sent 2 times; send it once."),
    ("two_files", lambda m: (Field("model", "whisper-1"), File(m.tone, "a.wav"), File(m.tone, "b.wav")),
     "invalid_request", "file", 'Send exactly one file, in the field "file".'),
    ("file_as_text_field", lambda m: (Field("model", "whisper-1"), Field("file", "hello")),
     "invalid_value", "file", "The field 'file' must be a file upload, not a text value."),
    ("file_in_another_field", lambda m: (Field("model", "whisper-1"), File(m.tone, name="audio")),
     "invalid_request", "audio", "Unexpected file in field 'audio'; send it as 'file'."),
    ("__proto___field", lambda m: (Field("model", "whisper-1"), Field("__proto__", "x"), File(m.tone)),
     "invalid_request", None, "The form has a forbidden field name."),
]


@pytest.mark.parametrize(
    ("parts", "kind", "param", "message"), [pytest.param(*case[1:], id=case[0]) for case in FORM_CASES]
)
def test_form(
    http: httpx.Client, media: Media, parts: Callable[[Media], tuple[Part, ...]], kind: str, param: str | None,
    message: str
) -> None:
    assert_error_response(post_form(http, *parts(media)), kind, message, param)


# --------------------------------------------------------------------------------------------------
# 4. Bodies that are not a valid multipart form, sent as raw bytes over a socket
# --------------------------------------------------------------------------------------------------

MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
UNREADABLE = "The multipart/form-data body could not be read: "
NOT_MULTIPART = "Expected a multipart/form-data body with the fields 'file' and 'model'."


def _valid_body(m: Media) -> bytes:
    return multipart(Field("model", "whisper-1"), File(m.tone))


BODY_CASES: list[tuple[str, Callable[[Media], bytes], str | None, str, str | None, str]] = [
    ("wrong_boundary", _valid_body, "multipart/form-data; boundary=not-the-one", "invalid_request", None,
     UNREADABLE + "Unexpected end of multipart data"),
    ("no_boundary_parameter", _valid_body, "multipart/form-data", "invalid_request", None,
     UNREADABLE + "Multipart: Boundary not found"),
    ("garbage_after_headers", lambda m: np.random.default_rng(4).bytes(3000), MULTIPART, "invalid_request", None,
     UNREADABLE + "Unexpected end of multipart data"),
    ("text_after_headers", lambda m: b"hello there\r\n\r\nnot a form", MULTIPART, "invalid_request", None,
     UNREADABLE + "Unexpected end of multipart data"),
    ("no_closing_boundary", lambda m: _valid_body(m)[: -len(f"\r\n--{BOUNDARY}--\r\n")], MULTIPART,
     "invalid_request", None, UNREADABLE + "Part terminated early due to unexpected end of multipart data"),
    ("part_without_headers", lambda m: f"--{BOUNDARY}\r\nnot a header\r\n\r\nvalue\r\n--{BOUNDARY}--\r\n".encode(),
     MULTIPART, "missing_model", "model", "Missing required parameter: 'model'."),
    ("empty_multipart_body", lambda m: b"", MULTIPART, "missing_model", "model",
     "Missing required parameter: 'model'."),
    ("json_body", lambda m: json.dumps({"model": "whisper-1", "file": "jfk.flac"}).encode(), "application/json",
     "invalid_request", None, NOT_MULTIPART),
    ("invalid_json_body", lambda m: b'{"model": ', "application/json", "invalid_request", None,
     "Body is not valid JSON but content-type is set to 'application/json'"),
    ("json_body_over_1_mib", lambda m: json.dumps({"model": "whisper-1", "file": "x" * 2 * 1024 * 1024}).encode(),
     "application/json", "file_too_large", None, "The request body is over the size limit."),
    ("urlencoded_body", lambda m: b"model=whisper-1&file=jfk.flac", "application/x-www-form-urlencoded",
     "invalid_request", None, NOT_MULTIPART),
    ("text_plain_body", lambda m: b"model=whisper-1", "text/plain", "invalid_request", None, NOT_MULTIPART),
    ("no_content_type", _valid_body, None, "invalid_request", None, NOT_MULTIPART),
]


@pytest.mark.parametrize(
    ("body", "content_type", "kind", "param", "message"), [pytest.param(*case[1:], id=case[0]) for case in BODY_CASES]
)
def test_body(
    server: RunningServer,
    media: Media,
    body: Callable[[Media], bytes],
    content_type: str | None,
    kind: str,
    param: str | None,
    message: str,
) -> None:
    response = raw_request(server, http_request(body(media), content_type))
    assert_error(response.status, response.headers, response.body, kind, message, param)
    assert response.closed  # the request asked for Connection: close


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(
            f"POST {TRANSCRIPTIONS} HTTP/1.1\r\nHost: earshot\r\nContent-Type: {MULTIPART}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZZ\r\nhello\r\n0\r\n\r\n",
            id="bad_chunk_size",
        ),
        pytest.param(
            f"POST {TRANSCRIPTIONS} HTTP/1.1\r\nHost: earshot\r\nContent-Type: {MULTIPART}\r\n"
            "Content-Length: abc\r\nConnection: close\r\n\r\nhello",
            id="non_numeric_content_length",
        ),
    ],
)
def test_broken_http_framing(server: RunningServer, request_bytes: str) -> None:
    response = raw_request(server, request_bytes.encode())
    assert response.status == 400, response
    assert response.headers.get("x-request-id"), response.headers
    wire = json.loads(response.body)
    assert set(wire) == {"error"}, wire
    assert wire["error"]["type"] == "invalid_request_error" and wire["error"]["code"] is None, wire
    assert wire["error"]["message"].startswith("The request is not valid HTTP"), wire


# --------------------------------------------------------------------------------------------------
# 5. Path characters: in `model` (refused) and in the filename (never used)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/%ZZ", "/v1/models/%ZZ", "/v1/audio/transcriptions%"])
def test_bad_percent_escape_in_path(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 400, response.text
    assert response.headers.get("x-request-id"), response.headers
    assert response.json() == {"error": {
        "message": "The request is not valid HTTP (the path is not a valid URL: a bad %-escape).",
        "type": "invalid_request_error", "param": None, "code": None,
    }}


@pytest.mark.parametrize(
    "model",
    ["../../etc", "/etc/passwd", "..", "a/../../b", "./base", "base/../base", "..%2f..%2fetc", "base\x00",
     "C:\\Windows\\system32", "~/models"],
    ids=["dotdot_dotdot_etc", "absolute_etc_passwd", "dotdot", "a_dotdot_dotdot_b", "dot_slash_base",
         "base_dotdot_base", "percent_encoded_dotdot", "nul_byte", "windows_path", "tilde"],
)
def test_path_in_model(http: httpx.Client, media: Media, model: str) -> None:
    response = post_form(http, Field("model", model), File(media.tone))
    assert_error_response(
        response, "model_not_found", f"The model `{model}` does not exist or you do not have access to it."
    )


@pytest.mark.parametrize(
    "filename",
    ["../../etc/passwd", "ABSOLUTE", b"jfk\x00.flac", "x" * 4000 + ".flac"],
    ids=["dotdot_etc_passwd", "absolute_path", "nul_byte", "4000_chars"],
)
def test_path_in_filename(
    server: RunningServer, http: httpx.Client, media: Media, tmp_path: Path, filename: Union[str, bytes]
) -> None:
    upload_dir = _upload_dir(server)
    absolute_target = tmp_path / "earshot-must-not-write-here.flac"
    if filename == "ABSOLUTE":
        filename = str(absolute_target)
    traversal_target = (upload_dir / "../../etc/passwd").resolve()
    assert not traversal_target.exists()
    before = sorted(str(path) for path in server.tmp_dir.parent.rglob("*"))

    response = post_form(http, Field("model", "whisper-1"), File(media.jfk_flac, filename))

    assert_transcript(response, is_jfk, 11)
    assert not absolute_target.exists()
    assert not traversal_target.exists()
    assert sorted(str(path) for path in server.tmp_dir.parent.rglob("*")) == before


# --------------------------------------------------------------------------------------------------
# 6. Size and time limits
# --------------------------------------------------------------------------------------------------


def test_upload_over_25_mib(http: httpx.Client) -> None:
    response = post_form(http, Field("model", "whisper-1"), File(np.random.default_rng(5).bytes(26 * 1024 * 1024)))
    assert_error_response(
        response,
        "file_too_large",
        f"Maximum content size limit ({MAX_UPLOAD_BYTES}) exceeded ({MAX_UPLOAD_BYTES + 1} bytes read)",
    )
    assert response.headers["connection"] == "close"


def _stalled_upload(server: RunningServer, request: bytes, sent: int, expect_upload_file: bool) -> RawResponse:
    """Sends the first `sent` bytes of a request and then nothing; returns what the server answers
    within the idle timeout plus 3 s (an AssertionError if nothing)."""
    with socket.create_connection(_address(server), timeout=10) as sock:
        sock.sendall(request[:sent])
        started = time.monotonic()
        try:
            if expect_upload_file:
                # The file part has begun: the upload is on disk while the client stalls.
                while not _uploads_left(server) and time.monotonic() - started < IDLE_TIMEOUT_S / 2:
                    time.sleep(0.02)
                assert len(_uploads_left(server)) == 1, "the file part did not reach the upload directory"
            response = _read_response(sock, started + IDLE_TIMEOUT_S + 3)
            elapsed = time.monotonic() - started
        finally:
            sock.close()
            _wait_for_no_uploads(server)
    assert IDLE_TIMEOUT_S - 0.2 <= elapsed <= IDLE_TIMEOUT_S + 3, elapsed
    return response


def _assert_upload_timeout(response: RawResponse) -> None:
    assert_error(
        response.status, response.headers, response.body, "upload_timeout",
        f"The upload stalled: no data for {IDLE_TIMEOUT_MS} ms.",
    )
    assert response.headers.get("connection") == "close", response.headers
    assert response.closed, "the server kept the connection of a stalled upload open"


def test_upload_stalled_half_way(server: RunningServer, media: Media) -> None:
    body = multipart(Field("model", "whisper-1"), File(media.encoded("wav"), "jfk.wav"))
    request = http_request(body, MULTIPART)
    response = _stalled_upload(server, request, len(request) - len(body) // 2, expect_upload_file=True)
    _assert_upload_timeout(response)


@pytest.mark.parametrize("where", ["after_headers", "in_model_field_before_file", "in_field_after_file"])
def test_upload_stalled_outside_the_file_part(server: RunningServer, media: Media, where: str) -> None:
    if where == "in_field_after_file":
        body = multipart(File(media.tone), Field("model", "whisper-1"))
        stop_at = body.rindex(b"whisper-1") + 3
    else:
        body = multipart(Field("model", "whisper-1"), File(media.tone))
        stop_at = 0 if where == "after_headers" else body.index(b"whisper-1") + 3
    request = http_request(body, MULTIPART)
    head = len(request) - len(body)
    response = _stalled_upload(server, request, head + stop_at, expect_upload_file=where == "in_field_after_file")
    _assert_upload_timeout(response)


# --------------------------------------------------------------------------------------------------
# 7. After all of that, the server still does its job
# --------------------------------------------------------------------------------------------------


def test_still_transcribes_jfk(http: httpx.Client, media: Media, baseline: dict[str, int]) -> None:
    response = post_form(http, Field("model", "whisper-1"), File(media.jfk_flac, "jfk.flac"))
    text = assert_transcript(response, is_jfk, 11)
    assert text == JFK_TEXT
    assert _default_pool(_health(http))["restarts"] == baseline["restarts"]
