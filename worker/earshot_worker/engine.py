"""One loaded faster-whisper model and the jobs it runs, one at a time."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import av
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.audio import decode_audio
from faster_whisper.utils import download_model

from .logprobs import AlignmentRecorder
from .protocol import SegmentMessage

log = logging.getLogger("earshot_worker")

SAMPLING_RATE = 16000
# OpenAI refuses audio shorter than 0.1 s ("audio_too_short"); so does earshot.
MINIMUM_SAMPLES = SAMPLING_RATE // 10

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
# Options the worker handles itself rather than passing to transcribe().
WORKER_OPTIONS = frozenset({"logprobs", "batch_size"})


class JobError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Probe:
    """What a file's container says without decoding: None where it says nothing or cannot be read."""
    has_audio: bool | None = None
    duration: float | None = None


def probe(path: str) -> Probe:
    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = next(iter(container.streams.audio), None)
            if stream is None:
                return Probe(has_audio=False)
            if container.duration is not None:
                return Probe(True, container.duration / av.time_base)
            if stream.duration is not None and stream.time_base is not None:
                return Probe(True, float(stream.duration * stream.time_base))
            return Probe(True)
    except Exception:  # an unreadable file is reported by decode() with the decoder's reason
        return Probe()


@dataclass(frozen=True)
class LongAudioBatching:
    """Decode audio of at least `min_seconds` with the batched pipeline (VAD chunks decoded
    `batch_size` at a time), unless the job asks for something that pipeline cannot give."""
    batch_size: int = 0
    min_seconds: float = 60.0

    def batch_size_for(self, options: dict[str, Any], audio_seconds: float) -> int | None:
        if self.batch_size <= 0 or audio_seconds < self.min_seconds:
            return None
        # The batched pipeline needs VAD on long audio, never conditions on previous text and skips
        # the hallucination filter: a job that asks for those explicitly keeps sequential decoding.
        if options.get("vad_filter") is False or options.get("condition_on_previous_text") is True:
            return None
        if options.get("hallucination_silence_threshold") is not None:
            return None
        return self.batch_size


@dataclass
class Job:
    id: str
    audio: str
    options: dict[str, Any]
    cancelled: threading.Event = field(default_factory=threading.Event)


def load_model(model: str, device: str, compute_type: str, cpu_threads: int,
               download_root: str | None, local_files_only: bool) -> WhisperModel:
    if not os.path.isabs(model):
        # A hub id or size name (the gateway sends model directories as absolute paths). faster-whisper
        # would first try it as a directory relative to the working directory: never do that.
        model = download_model(model, local_files_only=local_files_only, cache_dir=download_root)
    whisper = WhisperModel(
        model,
        device=device,
        compute_type=compute_type,
        cpu_threads=cpu_threads,
        download_root=download_root,
        local_files_only=local_files_only,
    )
    whisper.model = AlignmentRecorder(whisper.model)
    return whisper


def warm_up(model: WhisperModel) -> None:
    """One short decode, so that the first real request does not pay for lazy initialisation."""
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(SAMPLING_RATE) * 0.01).astype(np.float32)
    segments, _ = model.transcribe(noise, language="en", beam_size=1, temperature=0.0)
    for _ in segments:
        pass


def decode(path: str, max_seconds: float) -> np.ndarray:
    # Decoding holds the whole file as float32 (about 230 MB an hour), so refuse long audio first.
    declared = probe(path)
    if declared.has_audio is False:
        raise JobError("invalid_audio", "the file has no audio track")
    if declared.duration is not None and declared.duration > max_seconds:
        raise JobError("audio_too_long", f"{declared.duration:.0f} s, more than the limit of {max_seconds:.0f} s")
    try:
        audio = decode_audio(path, sampling_rate=SAMPLING_RATE)
    except Exception as error:  # PyAV raises many types (InvalidDataError, ValueError, …)
        # The message must not reveal the server-side path of the upload.
        reason = re.sub(r"^\[Errno -?\d+\] ", "", str(error).replace(repr(path), "").replace(path, "")).rstrip(" :")
        raise JobError("invalid_audio", f"the file could not be decoded as audio ({reason})") from error
    if audio.size == 0:
        raise JobError("invalid_audio", "the file contains no audio samples")
    if audio.size < MINIMUM_SAMPLES:
        raise JobError("audio_too_short", f"the audio lasts {audio.size / SAMPLING_RATE:.3f} s, less than 0.1 s")
    if audio.size > max_seconds * SAMPLING_RATE:
        raise JobError("audio_too_long", f"{audio.size / SAMPLING_RATE:.0f} s, more than the limit of {max_seconds:.0f} s")
    return audio


def segment_message(segment: Any, logprobs: list | None) -> SegmentMessage:
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
        "logprobs": logprobs,
    }


def check_options(job: Job) -> None:
    unknown = sorted(set(job.options) - ALLOWED_OPTIONS - WORKER_OPTIONS)
    if unknown:
        raise JobError("invalid_options", f"unsupported options: {', '.join(unknown)}")


def run_job(model: WhisperModel, job: Job, send: Callable[[dict[str, Any]], None],
            max_audio_seconds: float = float("inf"), long_audio: LongAudioBatching = LongAudioBatching(),
            audio: np.ndarray | None = None) -> None:
    """Runs one job, sending info, then each segment as it is decoded, then done or error.
    `audio` is the job's audio when the caller has decoded it already."""
    started = time.monotonic()
    recorder: AlignmentRecorder = model.model
    try:
        if job.cancelled.is_set():
            raise JobError("cancelled", "the job was cancelled")
        check_options(job)
        options = {name: value for name, value in job.options.items() if name not in WORKER_OPTIONS}
        want_logprobs = bool(job.options.get("logprobs"))
        if want_logprobs:
            # Token probabilities come from the alignment pass that word timestamps run.
            options["word_timestamps"] = True
            recorder.start()
        if audio is None:
            audio = decode(job.audio, max_audio_seconds)
        batch_size = job.options.get("batch_size")
        if batch_size is None:
            batch_size = long_audio.batch_size_for(options, audio.size / SAMPLING_RATE)
        try:
            if batch_size is not None:
                # The batched pipeline keeps per-call state, so each job gets its own. It decodes
                # without timestamp tokens unless told otherwise, which gives one unpunctuated
                # segment per 30 s chunk: ask for them, as sequential decoding does, unless the job
                # says not to.
                batched = {"without_timestamps": False, **options}
                segments, info = BatchedInferencePipeline(model).transcribe(audio, batch_size=int(batch_size), **batched)
            else:
                segments, info = model.transcribe(audio, **options)
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
        eot = model.hf_tokenizer.token_to_id("<|endoftext|>")
        for segment in segments:
            if job.cancelled.is_set():
                raise JobError("cancelled", "the job was cancelled")
            logprobs = None
            if want_logprobs:
                text_tokens = [token for token in segment.tokens if token < eot]
                logprobs = recorder.take(text_tokens, model.hf_tokenizer)
            send({"type": "segment", "job": job.id, "segment": segment_message(segment, logprobs)})
        if job.cancelled.is_set():
            raise JobError("cancelled", "the job was cancelled")
        send({"type": "done", "job": job.id, "processing_seconds": time.monotonic() - started})
    except JobError as error:
        send({"type": "error", "job": job.id, "code": error.code, "message": error.message})
    except Exception as error:  # a fault in the engine must cost this job, never the worker
        log.exception("job %s failed", job.id)
        send({"type": "error", "job": job.id, "code": "model_error", "message": f"{type(error).__name__}: {error}"})
    finally:
        recorder.stop()
