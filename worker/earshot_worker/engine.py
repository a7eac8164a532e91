"""One loaded faster-whisper model and the jobs it runs, one at a time."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio

from .protocol import SegmentMessage

log = logging.getLogger("earshot_worker")

SAMPLING_RATE = 16000

# The transcribe() keyword arguments a job may set. The gateway validates values; this list keeps
# a malformed message from reaching faster-whisper with arguments it was never meant to get.
ALLOWED_OPTIONS = frozenset(
    {
        "language",
        "task",
        "initial_prompt",
        "temperature",
        "word_timestamps",
        "beam_size",
        "best_of",
        "patience",
        "vad_filter",
        "vad_parameters",
        "hotwords",
        "condition_on_previous_text",
        "without_timestamps",
        "no_speech_threshold",
        "log_prob_threshold",
        "compression_ratio_threshold",
        "hallucination_silence_threshold",
    }
)


class JobError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Job:
    id: str
    audio: str
    options: dict[str, Any]
    cancelled: threading.Event = field(default_factory=threading.Event)


def load_model(model: str, device: str, compute_type: str, cpu_threads: int,
               download_root: str | None, local_files_only: bool) -> WhisperModel:
    return WhisperModel(
        model,
        device=device,
        compute_type=compute_type,
        cpu_threads=cpu_threads,
        download_root=download_root,
        local_files_only=local_files_only,
    )


def warm_up(model: WhisperModel) -> None:
    """One short decode, so that the first real request does not pay for lazy initialisation."""
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(SAMPLING_RATE) * 0.01).astype(np.float32)
    segments, _ = model.transcribe(noise, language="en", beam_size=1, temperature=0.0)
    for _ in segments:
        pass


def decode(path: str) -> np.ndarray:
    try:
        audio = decode_audio(path, sampling_rate=SAMPLING_RATE)
    except Exception as error:  # PyAV raises many types (InvalidDataError, ValueError, …)
        # The message must not reveal the server-side path of the upload.
        reason = re.sub(r"^\[Errno -?\d+\] ", "", str(error).replace(repr(path), "").replace(path, "")).rstrip(" :")
        raise JobError("invalid_audio", f"the file could not be decoded as audio ({reason})") from error
    if audio.size == 0:
        raise JobError("invalid_audio", "the file contains no audio samples")
    return audio


def segment_message(segment: Any) -> SegmentMessage:
    words = None
    if segment.words is not None:
        words = [
            {"word": w.word, "start": w.start, "end": w.end, "probability": w.probability}
            for w in segment.words
        ]
    return {
        "id": segment.id,
        "seek": segment.seek,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        "tokens": list(segment.tokens),
        "temperature": segment.temperature if segment.temperature is not None else 0.0,
        "avg_logprob": segment.avg_logprob,
        "compression_ratio": segment.compression_ratio,
        "no_speech_prob": segment.no_speech_prob,
        "words": words,
    }


def run_job(model: WhisperModel, job: Job, send: Callable[[dict[str, Any]], None]) -> None:
    """Runs one job, sending info, then each segment as it is decoded, then done or error."""
    started = time.monotonic()
    try:
        if job.cancelled.is_set():
            raise JobError("cancelled", "the job was cancelled")
        unknown = sorted(set(job.options) - ALLOWED_OPTIONS)
        if unknown:
            raise JobError("invalid_options", f"unsupported options: {', '.join(unknown)}")
        audio = decode(job.audio)
        try:
            segments, info = model.transcribe(audio, **job.options)
        except (TypeError, ValueError) as error:
            raise JobError("invalid_options", str(error)) from error
        send(
            {
                "type": "info",
                "job": job.id,
                "language": info.language,
                "language_probability": info.language_probability,
                "duration": info.duration,
                "duration_after_vad": info.duration_after_vad,
            }
        )
        for segment in segments:
            if job.cancelled.is_set():
                raise JobError("cancelled", "the job was cancelled")
            send({"type": "segment", "job": job.id, "segment": segment_message(segment)})
        if job.cancelled.is_set():
            raise JobError("cancelled", "the job was cancelled")
        send({"type": "done", "job": job.id, "processing_seconds": time.monotonic() - started})
    except JobError as error:
        send({"type": "error", "job": job.id, "code": error.code, "message": error.message})
    except Exception as error:  # a fault in the engine must cost this job, never the worker
        log.exception("job %s failed", job.id)
        send({"type": "error", "job": job.id, "code": "model_error", "message": f"{type(error).__name__}: {error}"})
