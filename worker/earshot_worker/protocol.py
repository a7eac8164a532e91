"""The messages a worker exchanges with the gateway: one JSON object per line.

gateway -> worker (stdin)
  {"type": "transcribe", "job": ID, "audio": PATH, "options": {faster-whisper transcribe() kwargs}}
  {"type": "transcribe_batch", "jobs": [{"job": ID, "audio": PATH, "options": {...}}, ...]}
      short jobs with identical options, decoded together (batching.py); answered per job as above
  {"type": "cancel", "job": ID}
      the job ends with error "cancelled" at the engine's next model call (about a second at most)
  {"type": "shutdown"}
      finish the jobs already sent, then exit (as when stdin closes); SIGINT and SIGTERM are ignored
worker -> gateway (stdout)
  {"type": "ready", "model": NAME, "load_seconds": S}
  {"type": "fatal", "code": CODE, "message": TEXT}              then the worker exits
  {"type": "info", "job": ID, "language": CODE, "language_probability": P, "duration": S,
   "duration_after_vad": S}
  {"type": "segment", "job": ID, "segment": {...}}               one per segment, as decoded
  {"type": "done", "job": ID, "processing_seconds": S}
  {"type": "error", "job": ID, "code": CODE, "message": TEXT}

The TypeScript side of this contract is src/engine/messages.ts.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, BinaryIO, Literal, TypedDict

ErrorCode = Literal["invalid_audio", "audio_too_short", "audio_too_long", "invalid_options", "model_error", "cancelled", "bad_message"]
FatalCode = Literal["model_load_failed", "bad_arguments"]


class WordMessage(TypedDict):
    word: str
    start: float
    end: float
    probability: float


class SegmentMessage(TypedDict):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: list[WordMessage] | None


class ProtocolWriter:
    """Writes protocol messages to a private copy of stdout.

    Native libraries and stray prints may write to file descriptor 1; the worker moves that
    descriptor to stderr at start so that only these messages ever reach the gateway's pipe.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    @classmethod
    def take_over_stdout(cls) -> "ProtocolWriter":
        protocol_fd = os.dup(1)
        os.dup2(2, 1)
        return cls(os.fdopen(protocol_fd, "wb", buffering=0))

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        with self._lock:
            self._stream.write(line)
