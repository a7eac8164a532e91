"""Cross-request batching: several short jobs with the same options decoded in one batch.

The gateway sends jobs that wait together for the same model, with identical options, as one
transcribe_batch message. Each job's audio (at most one 30-second window) becomes one chunk of
faster-whisper's BatchedInferencePipeline, exactly as the chunks of one long file are: the clips are
laid end to end, `clip_timestamps` marks each one, and the encoder and decoder run on all of them at
once. Jobs are grouped by language first (given, or detected per clip, as a single job would), since
one batch decodes in one language. Each segment is then handed back to its own job with its times
made relative to that job's audio again. A job that cannot be batched (longer than a window, alone in
its language, or one the contract's batching rule keeps out) runs on its own.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel

from . import contract
from .contract import WORKER_OPTIONS
from .messages import ErrorCode, SegmentMessage, Send
from .transcribe import (
    SAMPLING_RATE,
    Job,
    LongAudioBatching,
    decoded_jobs,
    run_job,
    segment_message,
)

log = logging.getLogger("earshot_worker")

WINDOW_SAMPLES = 30 * SAMPLING_RATE


def _fail(job: Job, send: Send, code: ErrorCode, message: str) -> None:
    send({"type": "error", "job": job.id, "code": code, "message": message})


def run_batch(model: WhisperModel, jobs: list[Job], send: Send, max_audio_seconds: float,
              long_audio: LongAudioBatching) -> None:
    started = time.monotonic()
    short: list[tuple[Job, np.ndarray]] = []
    for job, audio in decoded_jobs(jobs, send, max_audio_seconds):
        # The gateway batches only what the contract's x-unbatched rule allows; a job it refuses runs alone.
        if audio.size > WINDOW_SAMPLES or not contract.batchable(job.options, "cross_request"):
            run_job(model, job, send, max_audio_seconds, long_audio, audio)
        else:
            short.append((job, audio))

    groups: dict[str, list[tuple[Job, np.ndarray, float]]] = defaultdict(list)
    for job, audio in short:
        language = job.options.get("language")
        probability = 1.0
        if language is None:
            if model.model.is_multilingual:
                language, probability, _ = model.detect_language(audio)
            else:
                language = "en"
        groups[language].append((job, audio, probability))

    for language, members in groups.items():
        if len(members) == 1:
            job, audio, _ = members[0]
            run_job(model, job, send, max_audio_seconds, long_audio, audio)
        else:
            _decode_together(model, language, members, send, started)


def _decode_together(model: WhisperModel, language: str, members: list[tuple[Job, np.ndarray, float]],
                     send: Send, started: float) -> None:
    jobs = [job for job, _, _ in members]
    offsets: list[float] = []
    position = 0
    for _, audio, _ in members:
        offsets.append(position / SAMPLING_RATE)
        position += audio.size
    clips = [
        {"start": offset, "end": offset + audio.size / SAMPLING_RATE}
        for offset, (_, audio, _) in zip(offsets, members)
    ]
    # The jobs share their options (the gateway batches only identical ones).
    options = {name: value for name, value in jobs[0].options.items() if name not in WORKER_OPTIONS}
    options.pop("language", None)
    options.setdefault("without_timestamps", False)
    try:
        segments, _ = BatchedInferencePipeline(model).transcribe(
            np.concatenate([audio for _, audio, _ in members]),
            language=language,
            clip_timestamps=clips,
            batch_size=len(members),
            **options,
        )
        for job, (_, audio, probability) in zip(jobs, members):
            duration = audio.size / SAMPLING_RATE
            send({"type": "info", "job": job.id, "language": language, "language_probability": probability,
                  "duration": duration, "duration_after_vad": duration})
        counts = [0] * len(jobs)
        for segment in segments:
            index = max(i for i, offset in enumerate(offsets) if segment.start >= offset - 0.01)
            job = jobs[index]
            if job.cancelled.is_set():
                continue
            counts[index] += 1
            send({"type": "segment", "job": job.id,
                  "segment": _relative(segment_message(segment, None), offsets[index], counts[index])})
    except Exception as error:  # a fault in the engine costs these jobs, never the worker
        log.exception("batch of %d jobs failed", len(jobs))
        for job in jobs:
            _fail(job, send, "model_error", f"{type(error).__name__}: {error}")
        return
    for job in jobs:
        if job.cancelled.is_set():
            _fail(job, send, "cancelled", "the job was cancelled")
        else:
            send({"type": "done", "job": job.id, "processing_seconds": time.monotonic() - started})


def _relative(segment: SegmentMessage, offset: float, number: int) -> SegmentMessage:
    """A segment of the batch, renumbered and timed as if its job had been decoded alone."""
    segment["id"] = number
    segment["start"] = round(max(0.0, segment["start"] - offset), 3)
    segment["end"] = round(max(0.0, segment["end"] - offset), 3)
    segment["seek"] = max(0, segment["seek"] - round(offset * 100))
    for word in segment["words"] or []:
        word["start"] = round(max(0.0, word["start"] - offset), 3)
        word["end"] = round(max(0.0, word["end"] - offset), 3)
    return segment
