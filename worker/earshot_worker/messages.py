"""The messages a worker exchanges with the gateway: one JSON object per line.

gateway -> worker (stdin)
  {"type": "transcribe", "job": ID, "audio": PATH, "options": {faster-whisper transcribe() kwargs}}
  {"type": "transcribe_batch", "jobs": [{"job": ID, "audio": PATH, "options": {...}}, ...]}
      short jobs with identical options, decoded together: packed side by side into shared windows
      (packing.py) when the worker packs (--pack-clip-seconds) and every job may be packed, else in
      one batch (batching.py); answered per job as above
  {"type": "cancel", "job": ID}
      the job ends with error "cancelled" at the engine's next model call (a batched job's calls are
      steps of about 3 s; a shard decodes in one call, and the gateway replaces a shard's worker that
      has not stopped 2 s after a cancel)
  {"type": "language", "job": ID, "language": CODE}
      the language the job's first shard detected, for a shard after the first of a job without a
      language (it decodes with it instead of detecting it again); ignored otherwise
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

The contract is defined once, in src/engine/messages.ts (TypeBox), and generated to
contract.schema.json (`npm run contract`): the worker validates every command against it
(contract.py, __main__.py) and its tests validate every event it writes (worker/tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import threading
from typing import BinaryIO, Callable, Literal, TypedDict, Union

# These types mirror the contract (contract.schema.json, generated from src/engine/messages.ts);
# worker/tests/test_worker_contract.py checks that each has exactly the fields its schema has.

ErrorCode = Literal["invalid_audio", "audio_too_short", "audio_too_long", "invalid_options",
                    "invalid_speaker_reference", "model_error", "cancelled", "bad_message"]
FatalCode = Literal["model_load_failed", "bad_arguments"]


class VadParameters(TypedDict, total=False):
    threshold: float
    neg_threshold: float
    min_speech_duration_ms: int
    max_speech_duration_s: float
    min_silence_duration_ms: int
    speech_pad_ms: int


class KnownSpeakerOption(TypedDict):
    name: str
    audio: str


class DiarizeOptions(TypedDict, total=False):
    num_speakers: int
    min_speakers: int
    max_speakers: int
    known_speakers: list[KnownSpeakerOption]


class ShardOption(TypedDict):
    index: int
    count: int


class TranscribeOptions(TypedDict, total=False):
    language: str
    task: Literal["transcribe", "translate"]
    initial_prompt: str
    temperature: list[float]
    word_timestamps: bool
    beam_size: int
    best_of: int
    patience: float
    vad_filter: bool
    vad_parameters: VadParameters
    hotwords: str
    prefix: str
    condition_on_previous_text: bool
    without_timestamps: bool
    no_speech_threshold: float
    log_prob_threshold: float
    compression_ratio_threshold: float
    hallucination_silence_threshold: float
    logprobs: bool
    batch_size: int
    fit_window: bool
    partial: bool
    diarize: DiarizeOptions
    shard: ShardOption


class JobSpec(TypedDict):
    job: str
    audio: str
    options: TranscribeOptions


class _Word(TypedDict):
    word: str
    start: float
    end: float
    probability: float


class WordMessage(_Word, total=False):
    speaker: str  # with diarize


class TokenLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int]


class _Segment(TypedDict):
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
    logprobs: list[TokenLogprob] | None


class SegmentMessage(_Segment, total=False):
    speaker: str  # with diarize


class ReadyEvent(TypedDict):
    type: Literal["ready"]
    model: str
    load_seconds: float


class FatalEvent(TypedDict):
    type: Literal["fatal"]
    code: FatalCode
    message: str


class InfoEvent(TypedDict):
    type: Literal["info"]
    job: str
    language: str
    language_probability: float
    duration: float
    duration_after_vad: float


class SegmentEvent(TypedDict):
    type: Literal["segment"]
    job: str
    segment: SegmentMessage


class DoneEvent(TypedDict):
    type: Literal["done"]
    job: str
    processing_seconds: float


class ErrorEvent(TypedDict):
    type: Literal["error"]
    job: str
    code: ErrorCode
    message: str


Event = Union[ReadyEvent, FatalEvent, InfoEvent, SegmentEvent, DoneEvent, ErrorEvent]
Send = Callable[[Event], None]


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

    def send(self, message: Event) -> None:
        line = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        with self._lock:
            self._stream.write(line)
