"""One loaded faster-whisper model and the jobs it runs, one at a time."""

from __future__ import annotations

import gc
import itertools
import logging
import math
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import av
import ctranslate2
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.transcribe import get_ctranslate2_storage
from faster_whisper.utils import download_model

from . import contract
from .contract import ALLOWED_OPTIONS as ALLOWED_OPTIONS, WORKER_OPTIONS as WORKER_OPTIONS
from .logprobs import AlignmentRecorder
from .messages import ErrorCode, Send, SegmentMessage, TokenLogprob, TranscribeOptions, WordMessage

log = logging.getLogger("earshot_worker")

SAMPLING_RATE = 16000
# OpenAI refuses audio shorter than 0.1 s ("audio_too_short"); so does earshot.
MINIMUM_SAMPLES = SAMPLING_RATE // 10

# The transcribe() keyword arguments a job may set, and the options the worker handles itself, are
# the contract's (contract.schema.json): a malformed message never reaches faster-whisper with
# arguments it was never meant to get.


class JobError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
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

    def batch_size_for(self, options: Mapping[str, object], audio_seconds: float) -> int | None:
        if self.batch_size <= 0 or audio_seconds < self.min_seconds:
            return None
        # The batched pipeline needs VAD on long audio, never conditions on previous text and skips
        # the hallucination filter: a job that asks for those explicitly keeps sequential decoding
        # (the contract's x-unbatched rule for long_audio).
        if not contract.batchable(options, "long_audio"):
            return None
        return self.batch_size


@dataclass
class Job:
    id: str
    audio: str
    # Checked against the contract (check_options) before the job runs.
    options: TranscribeOptions
    cancelled: threading.Event = field(default_factory=threading.Event)
    # A shard after the first of a job without a language decodes with the one its first shard detected.
    relayed_language: RelayedLanguage = field(default_factory=lambda: RelayedLanguage())


class CancelFlag(Protocol):
    """What a cancel flag must answer: a job's threading.Event, or the flag of several packed jobs."""

    def is_set(self) -> bool: ...


# A shard waits this long at most for the language of its job's first shard (which the gateway passes on
# as soon as that shard has detected it: about a second after the shards start, while this shard is
# still encoding its chunks), then fails rather than hang.
RELAYED_LANGUAGE_TIMEOUT_SECONDS = 120.0


class RelayedLanguage:
    """The language the first shard of a job detected, passed on by the gateway (a `language` command)
    to the job's other shards, so that the language is detected once per job, not once per shard."""

    def __init__(self) -> None:
        self._given = threading.Event()
        self.language = ""

    def give(self, language: str) -> None:
        self.language = language
        self._given.set()

    def wait(self, cancelled: CancelFlag, timeout: float = RELAYED_LANGUAGE_TIMEOUT_SECONDS) -> str:
        """The language once given; a cancel of the job ends the wait."""
        deadline = time.monotonic() + timeout
        while not self._given.wait(0.05):
            if cancelled.is_set():
                raise JobError("cancelled", "the job was cancelled")
            if time.monotonic() >= deadline:
                raise JobError("model_error", f"no language came from the job's first shard within {timeout:.0f} s")
        return self.language


class Interruptible:
    """Stands in for the CTranslate2 model (in front of the WindowFitter): before each call into
    it (encode, generate, align, detect_language) the running job's cancel flag is checked, so a
    cancelled job stops at the next model call (between windows, temperature fallbacks and batches)
    rather than at the next segment. The calls themselves cannot be interrupted, so while a batched
    job runs (`batch_steps` set) a call on a batch of chunks is made in steps (BatchSteps)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.cancelled: CancelFlag | None = None
        self.batch_steps: BatchSteps | None = None
        # Called with the prompts before a generate, which it may change (a shard's relayed language).
        self.before_generate: Callable[[list[list[int]]], list[list[int]]] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def _check(self) -> None:
        if self.cancelled is not None and self.cancelled.is_set():
            raise JobError("cancelled", "the job was cancelled")

    def _in_steps(self) -> bool:
        """Whether calls on a batch are made in steps: while a batched job runs, on a CPU (on a GPU a
        batch is made at once)."""
        return self.batch_steps is not None and self._model.device == "cpu"

    def encode(self, features: Any, *args: Any, **kwargs: Any) -> Any:
        self._check()
        if not self._in_steps():
            return self._model.encode(features, *args, **kwargs)
        # Chunk by chunk: on a CPU the encoder gains nothing from a batch (BatchSteps).
        batch = np.asarray(features)
        encoded = []
        for index in range(len(batch)):
            self._check()
            chunk = get_ctranslate2_storage(batch[index:index + 1])
            encoded.append(np.asarray(self._model.encode(chunk, *args, **kwargs)))
        return get_ctranslate2_storage(np.concatenate(encoded))

    def generate(self, features: Any, prompts: list[list[int]], *args: Any, **kwargs: Any) -> Any:
        self._check()
        if self.before_generate is not None:
            prompts = self.before_generate(prompts)
        steps = self.batch_steps
        if steps is None or not self._in_steps():
            return self._model.generate(features, prompts, *args, **kwargs)
        def step(part: np.ndarray, at: slice) -> Any:
            return self._model.generate(get_ctranslate2_storage(part), prompts[at], *args, **kwargs)

        return steps.run(np.asarray(features), self._check, step)

    def align(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return self._model.align(*args, **kwargs)

    def detect_language(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return self._model.detect_language(*args, **kwargs)


# A cancelled batched job must stop within about this long: a call on a batch of chunks is made a few
# chunks at a time, as many as took about this long at the pace measured so far.
CANCEL_CHECK_SECONDS = 3.0


class BatchSteps:
    """While a batched job runs on a CPU, its chunks are encoded one at a time and decoded (generate) in
    steps of as many chunks as take about CANCEL_CHECK_SECONDS at the pace measured so far (the first
    step is one chunk), checking for a cancel before each. The chunks are decoded independently, so the
    steps give what the whole batch gives. Measured with base on one thread
    (bench/cancellable_batches.py, bench/README.md): a chunk takes about 0.85 s to encode, alone or in a
    batch (less CPU alone), and 1.3 s to decode alone, 1.0 s each in a decode of four; encoding and
    decoding one chunk at a time cost about 17 % more CPU than the whole batch at once, decoding in steps
    of about 3 s 2 %. Hence 3 s, not less.

    A decode of several chunks costs less per chunk than one alone, which a pace measured on smaller
    steps cannot show: on two threads one chunk alone took 1.7 s, so steps sized by that pace stayed one
    chunk long and cost a third more CPU. So when a step took at most GROW_BELOW of the time, the next
    takes at least one chunk more.

    With `whole_decode` (a shard of a job shared among workers), the chunks are still encoded one at a
    time, but decoded in one call: on one thread a decode of six chunks took 5.8 s of CPU at once against
    6.8 s in steps of two, and two shards decoding in small steps at once slow each other by a further
    10-25 %. That call cannot be interrupted; the gateway replaces the worker of a cancelled shard that
    has not stopped within 2 s (model-pool.ts, SHARD_CANCEL_GRACE_MS)."""

    GROW_BELOW = 2 / 3

    def __init__(self, whole_decode: bool = False) -> None:
        self.whole_decode = whole_decode
        self.seconds_per_chunk: float | None = None
        self.last: tuple[int, float] | None = None  # the last step's chunks and seconds

    def next_step(self) -> int:
        if self.whole_decode:
            return sys.maxsize
        if self.seconds_per_chunk is None or self.last is None:
            return 1
        step = max(1, int(CANCEL_CHECK_SECONDS / self.seconds_per_chunk))
        count, seconds = self.last
        if seconds <= CANCEL_CHECK_SECONDS * self.GROW_BELOW:
            step = max(step, count + 1)
        return step

    def run(self, batch: np.ndarray, check: Any, step_call: Any) -> list[Any]:
        """step_call(part of the batch, its slice) → a list of results, one per chunk."""
        results: list[Any] = []
        position = 0
        while position < len(batch):
            check()
            at = slice(position, min(position + self.next_step(), len(batch)))
            started = time.monotonic()
            results.extend(step_call(batch[at], at))
            count, seconds = at.stop - at.start, time.monotonic() - started
            pace = self.seconds_per_chunk
            self.seconds_per_chunk = seconds / count if pace is None else 0.5 * (pace + seconds / count)
            self.last = (count, seconds)
            position = at.stop
        return results


# fit_window: the encoder sees a window's audio and this much of faster-whisper's padding after it, in
# whole seconds, at least FIT_MIN_SECONDS (with 1 s of padding a 0.6 s clip decoded to "N N N ..."),
# instead of Whisper's fixed 30 s window; audio longer than FIT_MAX_AUDIO_SECONDS is decoded as usual.
FIT_PADDING_SECONDS = 2
FIT_MIN_SECONDS = 5
FIT_MAX_AUDIO_SECONDS = 30 - FIT_PADDING_SECONDS
# Whisper's log-mel features are 10 ms frames.
FRAMES_PER_SECOND = 100
# A fitted window's decode is bounded to about this many tokens a second of audio (speech is 3 to 5,
# timestamps included), plus a few: a short window that starts to loop stops soon.
FIT_TOKENS_PER_SECOND = 12
FIT_EXTRA_TOKENS = 10

# Audio at most this long (seconds) is decoded with fitted windows unless its job says otherwise
# (fit_window false): a short file then pays for its own seconds of encoder, not Whisper's 30 s.
# Set once for the worker process (--fit-short-audio-seconds, the gateway's EARSHOT_FIT_SHORT_AUDIO_SECONDS);
# 0 leaves every window whole. bench/short_clips.py measures what it gains and what it changes.
fit_short_audio_seconds = 0.0
# ... and at least this long: the benchmark's clips were 2-6 s, and one second of JFK ("And so") came out
# "Answer" in a fitted window where the whole window hears it right. Shorter audio keeps the whole window.
FIT_SHORT_AUDIO_MIN_SECONDS = 2.0
# A language detected on a fitted window with less than this probability is detected again on the whole
# window: on clips of 2-6 s the two agreed on every real clip (bench/packed_language.py), but on one second
# of JFK the fitted window said Italian ("Insomma") where the whole window says English.
FIT_LANGUAGE_MIN_PROBABILITY = 0.8


@dataclass(frozen=True)
class FittedWindow:
    """How much of a window the encoder sees (`frames` of features) and how many tokens a decode of it
    may add after its prompt."""
    frames: int
    max_new_tokens: int


def fitted_window(audio_seconds: float) -> FittedWindow | None:
    """The fitted window for audio this long, or None when the audio needs the whole 30 s window."""
    if audio_seconds > FIT_MAX_AUDIO_SECONDS:
        return None
    seconds = max(FIT_MIN_SECONDS, math.ceil(audio_seconds + FIT_PADDING_SECONDS))
    return FittedWindow(frames=seconds * FRAMES_PER_SECOND,
                        max_new_tokens=math.ceil(FIT_TOKENS_PER_SECOND * audio_seconds) + FIT_EXTRA_TOKENS)


class WindowFitter:
    """Stands in for the CTranslate2 model (between Interruptible and the AlignmentRecorder) and, while a
    fit_window job runs (`fit`), gives the encoder each window fitted to its content (fitted_window) and
    bounds each decode of that window. faster-whisper pads every window's features to Whisper's 30 s
    (3,000 frames) before encoding; CTranslate2's encoder accepts fewer frames, and a short clip then
    costs a fraction of the full window's encoding and decoding. The decoder, the alignment of word
    timestamps (and so the logprobs recorded from it) and language detection all work on the shorter
    encoder output: they never look past a window's content, which the fitted window always holds.

    Each window is fitted, not only the first: when a decode stops short of the end of the audio,
    faster-whisper decodes the rest in a window of its own, and such a remainder (0.16 s of a 20 s clip)
    in a window fitted to the whole clip looped ("and to be a copy of this software and to be a copy
    ..." up to the bound). A window's content is what precedes faster-whisper's padding, which is
    exactly zero; a frame of sound practically never is (each of its 80 values would have to be).
    A fitted decode that still repeats itself (a 3 s clip, beam 5: "and so my fellow Americans and so
    my fellow Americans") is decoded again from the whole window: the slow way, but never worse than
    without fit_window. The bound applies in generate() rather than as faster-whisper's
    max_new_tokens, which refuses a bound that does not fit the model's 448 tokens beside a long prompt."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.fitting = False
        self.cut_repeats = False
        # The window being decoded, set by encode() for the generate() calls that follow it: how it was
        # fitted, and its whole features and encode() arguments for a decode that repeats itself.
        self.window: FittedWindow | None = None
        self.whole: tuple[np.ndarray, tuple[Any, ...], dict[str, Any]] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def fit(self, fitting: bool, cut_repeats: bool = False) -> None:
        """Fits the windows of the running job from now on (False: Whisper's 30 s windows); with
        `cut_repeats` (a live turn's partial decode, which a later decode replaces), a decode that repeats
        itself is cut after the first copy of what repeats instead of decoded again whole, which costs a
        whole window's encoder (about 1 s of base on one core, against 0.1-0.3 s for the partial)."""
        self.fitting = fitting
        self.cut_repeats = fitting and cut_repeats
        self.window = None
        self.whole = None

    def encode(self, features: Any, *args: Any, **kwargs: Any) -> Any:
        self.window = None
        self.whole = None
        if self.fitting:
            # The features come as a StorageView on the CPU (faster-whisper builds it from numpy).
            padded = np.asarray(features)
            self.window = fitted_window(content_frames(padded) / FRAMES_PER_SECOND)
            if self.window is not None and self.window.frames < padded.shape[-1]:
                self.whole = (np.array(padded), args, kwargs)
                features = get_ctranslate2_storage(padded[..., :self.window.frames])
        return self._model.encode(features, *args, **kwargs)

    def generate(self, features: Any, prompts: list[list[int]], *args: Any, **kwargs: Any) -> Any:
        if self.window is None:
            return self._model.generate(features, prompts, *args, **kwargs)
        longest = max((len(prompt) for prompt in prompts), default=0)
        bound = longest + self.window.max_new_tokens
        results = self._model.generate(features, prompts, *args,
                                       **{**kwargs, "max_length": min(int(kwargs.get("max_length", bound)), bound)})
        if self.cut_repeats:
            return [cut_repeat(result) for result in results]
        if self.whole is not None and any(repeats_itself(result.sequences_ids[0]) for result in results):
            log.info("a fitted window's decode repeats itself; decoding the whole window")
            whole, encode_args, encode_kwargs = self.whole
            features = self._model.encode(ctranslate2.StorageView.from_array(whole), *encode_args, **encode_kwargs)
            results = self._model.generate(features, prompts, *args, **kwargs)
        return results


# A decode repeats itself when some run of tokens comes again right after itself, the two (or more)
# together at least this many tokens: "N N N N N N N N", "and so my fellow Americans and so my fellow
# Americans". Speech that says a short thing twice ("no, no") stays below it.
REPEAT_MIN_TOKENS = 8


def first_repeat(tokens: list[int]) -> tuple[int, int] | None:
    """The first run of `tokens` repeated back to back over at least REPEAT_MIN_TOKENS tokens: where its
    first copy begins and how long a copy is (the earliest such run, whatever its period); None if none."""
    values = np.asarray(tokens)
    first: tuple[int, int] | None = None
    for period in range(1, values.size // 2 + 1):
        # A run of `period` tokens repeated r times: period * (r - 1) tokens equal the one `period` before.
        same = np.concatenate(([False], values[period:] == values[:-period], [False]))
        edges = np.flatnonzero(np.diff(same.astype(np.int8)))
        starts, lengths = edges[::2], edges[1::2] - edges[::2]
        repeated = starts[(lengths >= period) & (lengths + period >= REPEAT_MIN_TOKENS)]
        if repeated.size and (first is None or int(repeated[0]) < first[0]):
            first = (int(repeated[0]), period)
    return first


def repeats_itself(tokens: list[int]) -> bool:
    """Whether some run of `tokens` is repeated back to back over at least REPEAT_MIN_TOKENS tokens."""
    return first_repeat(tokens) is not None


@dataclass(frozen=True)
class CutResult:
    """A generation result (the fields faster-whisper reads) with its tokens cut short."""
    sequences_ids: list[list[int]]
    scores: list[float]
    no_speech_prob: float


def cut_repeat(result: Any) -> Any:
    """The result without what comes after the first copy of a repeat ("I'm I'm I'm ..." becomes "I'm",
    a sentence said twice is said once); the result itself when nothing repeats."""
    tokens = result.sequences_ids[0]
    repeat = first_repeat(tokens)
    if repeat is None:
        return result
    start, period = repeat
    return CutResult([tokens[:start + period]], list(result.scores), result.no_speech_prob)


def content_frames(features: np.ndarray) -> int:
    """How many frames of (batch, mel bins, frames) features come before pad_or_trim's zero padding."""
    audible = np.flatnonzero(np.any(features != 0, axis=tuple(range(features.ndim - 1))))
    return int(audible[-1]) + 1 if audible.size else 0


@dataclass(frozen=True)
class Shard:
    """This worker decodes part `index` of `count` of a long job (the gateway sends the same job to
    `count` idle workers and merges their segments in shard order)."""
    index: int
    count: int


# A chunk's share of a shard's work: its seconds of audio plus this many, since the encoder always sees
# a whole 30 s window, however short the chunk.
SHARD_CHUNK_FIXED_SECONDS = 10.0
# Detecting the language is one encoder pass of a whole window, about half of a whole chunk's work
# (encoder and decoder), in the same measure.
SHARD_LANGUAGE_DETECTION_SECONDS = (SHARD_CHUNK_FIXED_SECONDS + 30.0) / 2


def shard_chunks(durations: list[float], shard: Shard, first_detects_language: bool = False) -> range:
    """The chunks (indices, contiguous and in order) that `shard` decodes out of chunks this long: the
    shards get about equal work (SHARD_CHUNK_FIXED_SECONDS + duration each, and the first shard's
    language detection when it detects it for all); a chunk goes to the shard within whose share its
    middle falls. Every shard computes this from the same chunks, so the ranges cover every chunk
    exactly once."""
    weights = [SHARD_CHUNK_FIXED_SECONDS + duration for duration in durations]
    head_start = SHARD_LANGUAGE_DETECTION_SECONDS if first_detects_language else 0.0
    total = sum(weights) + head_start
    bounds = [0]
    cumulative = head_start
    position = 0
    for part in range(1, shard.count):
        while position < len(weights) and cumulative + weights[position] / 2 < total * part / shard.count:
            cumulative += weights[position]
            position += 1
        bounds.append(position)
    bounds.append(len(weights))
    return range(bounds[shard.index], bounds[shard.index + 1])


class CancellableBatchedPipeline(BatchedInferencePipeline):  # type: ignore[misc]  # faster-whisper is untyped
    """faster-whisper's batched pipeline, but the model calls on a batch of `batch_size` chunks are made in
    steps of as many chunks as take about CANCEL_CHECK_SECONDS (BatchSteps, through Interruptible; on a
    GPU the batch is made at once), checking the job's cancel flag between steps. A shard's chunks are
    encoded in such steps but decoded in one call (BatchSteps' whole_decode).

    With a `shard`, everything up to the chunks (VAD, features) is done for the whole audio as without
    one, and then only the shard's chunks (shard_chunks) are decoded: the segments are those the whole
    decode gives for these chunks, with the same times. Without a language, the first shard detects it
    as the whole decode does, and the others encode their chunks, then decode with the language relayed
    from it (`relayed`): the language is found once, not once per shard."""

    def __init__(self, model: WhisperModel, cancelled: threading.Event, shard: Shard | None = None,
                 relayed: RelayedLanguage | None = None) -> None:
        super().__init__(model)
        self.cancelled = cancelled
        self.shard = shard
        self.relayed = relayed
        self.steps = BatchSteps(whole_decode=shard is not None)
        # Whether the job's language is detected (by this pipeline, or by the first shard's).
        self.detects_language = False
        # Whether this shard's language is the placeholder until the first shard's comes.
        self.awaits_language = False

    def transcribe(self, audio: np.ndarray, **options: Any) -> Any:
        self.detects_language = options.get("language") is None and self.model.model.is_multilingual
        if self.detects_language and self.shard is not None and self.shard.index > 0:
            if self.relayed is None:
                raise JobError("invalid_options", "a shard after the first needs its job's relayed language")
            self.awaits_language = True
            # Built into the tokenizer and prompts, replaced before the first decode (use_relayed_language).
            options = {**options, "language": "en"}
        return super().transcribe(audio, **options)

    def use_relayed_language(self, tokenizer: Any, prompts: list[list[int]]) -> list[list[int]]:
        """Waits for the first shard's language, then makes it the tokenizer's (its prompts, and the
        word splitting of word timestamps) and returns the prompts with it, as faster-whisper's own
        per-chunk language detection does (the language token follows the start-of-transcript token)."""
        assert self.relayed is not None and self.shard is not None  # awaits_language says so (transcribe)
        language = self.relayed.wait(self.cancelled)
        token = tokenizer.tokenizer.token_to_id(f"<|{language}|>")
        if token is None:
            raise JobError("model_error", f"the first shard's language {language!r} is not one this model knows")
        tokenizer.language, tokenizer.language_code = token, language
        self.awaits_language = False
        log.info("shard %d of %d: decoding with the first shard's language %s", self.shard.index, self.shard.count,
                 language)
        with_language = []
        for prompt in prompts:
            at = prompt.index(tokenizer.sot) + 1
            with_language.append([*prompt[:at], token, *prompt[at + 1:]])
        return with_language

    def _batched_segments_generator(self, features: Any, tokenizer: Any, chunks_metadata: Any, batch_size: int,
                                    options: Any, log_progress: bool) -> Any:
        if self.shard is not None:
            mine = shard_chunks([chunk["duration"] for chunk in chunks_metadata], self.shard, self.detects_language)
            log.info("shard %d of %d: chunks %d to %d of %d", self.shard.index, self.shard.count, mine.start,
                     mine.stop - 1, len(chunks_metadata))
            features = features[mine.start:mine.stop]
            chunks_metadata = chunks_metadata[mine.start:mine.stop]
        return super()._batched_segments_generator(features, tokenizer, chunks_metadata, batch_size, options,
                                                   log_progress)

    def forward(self, features: Any, tokenizer: Any, chunks_metadata: Any, options: Any) -> Any:
        if self.cancelled.is_set():
            raise JobError("cancelled", "the job was cancelled")
        interruptible: Interruptible = self.model.model
        interruptible.batch_steps = self.steps
        if self.awaits_language:
            # After the chunks are encoded (the encoder needs no language), before they are decoded.
            interruptible.before_generate = lambda prompts: self.use_relayed_language(tokenizer, prompts)
        try:
            return super().forward(features, tokenizer, chunks_metadata, options)
        finally:
            interruptible.batch_steps = None
            interruptible.before_generate = None


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
    whisper.model = Interruptible(WindowFitter(AlignmentRecorder(whisper.model)))
    share_prompt_between_hotwords_and_previous_text(whisper)
    return whisper


def share_prompt_between_hotwords_and_previous_text(whisper: WhisperModel) -> None:
    """faster-whisper gives hotwords and the previous text (the initial prompt, then the text decoded
    so far) up to half of the 448-token context each: with both long, the prompt filled the context
    and every window decoded to nothing. Whisper's design keeps the whole prompt to one half; here the
    hotwords come first and the previous text gets what is left of that half (its most recent tokens).
    Both the sequential and the batched pipeline build their prompts with this method."""
    original = whisper.get_prompt
    half = whisper.max_length // 2 - 1

    def get_prompt(tokenizer: Any, previous_tokens: list[int], without_timestamps: bool = False,
                   prefix: str | None = None, hotwords: str | None = None) -> list[int]:
        if hotwords and not prefix and previous_tokens:
            hotword_count = min(len(tokenizer.encode(" " + hotwords.strip())), half)
            room = half - hotword_count
            previous_tokens = previous_tokens[-room:] if room > 0 else []
        prompt: list[int] = original(tokenizer, previous_tokens, without_timestamps, prefix, hotwords)
        return prompt

    # On this instance only; both pipelines call it as whisper.get_prompt.
    setattr(whisper, "get_prompt", get_prompt)


def warm_up(model: WhisperModel) -> None:
    """One short decode, so that the first real request does not pay for lazy initialisation."""
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(SAMPLING_RATE) * 0.01).astype(np.float32)
    segments, _ = model.transcribe(noise, language="en", beam_size=1, temperature=0.0)
    for _ in segments:
        pass


def decode(path: str, max_seconds: float) -> np.ndarray:
    """The file's audio as 16 kHz mono float32, as faster_whisper.audio.decode_audio gives it, but
    decoded a group of frames at a time and abandoned as soon as it passes `max_seconds`: a file whose
    container lies about its duration (or gives none) cannot make the worker decode hours of audio.
    What a job holds is bounded by the limit: max_seconds × 16,000 samples × 4 bytes (float32), and
    while decoding at most 6 bytes a sample (the int16 samples and the float32 copy being filled),
    plus one group of frames."""
    declared = probe(path)
    if declared.has_audio is False:
        raise JobError("invalid_audio", "the file has no audio track")
    if declared.duration is not None and declared.duration > max_seconds:
        raise JobError("audio_too_long", f"{declared.duration:.0f} s, more than the limit of {max_seconds:.0f} s")
    limit = max_seconds * SAMPLING_RATE
    chunks: list[np.ndarray] = []
    total = 0
    resampler: av.audio.resampler.AudioResampler | None = None
    try:
        # faster-whisper's own steps (skip invalid frames, group them, resample to s16 mono 16 kHz),
        # so that the samples are the same; the sample count is checked after each group.
        resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=SAMPLING_RATE)
        with av.open(path, mode="r", metadata_errors="ignore") as container:
            frames = _group_frames(_ignore_invalid_frames(container.decode(audio=0)), 500_000)
            for group in itertools.chain(frames, [None]):
                for frame in resampler.resample(group):
                    chunk = frame.to_ndarray().reshape(-1)
                    total += chunk.size
                    if total > limit:
                        raise JobError("audio_too_long",
                                       f"more than the limit of {max_seconds:.0f} s (decoding stopped there)")
                    chunks.append(chunk)
    except JobError:
        raise
    except Exception as error:  # PyAV raises many types (InvalidDataError, ValueError, …)
        # The message must not reveal the server-side path of the upload.
        reason = re.sub(r"^\[Errno -?\d+\] ", "", str(error).replace(repr(path), "").replace(path, "")).rstrip(" :")
        raise JobError("invalid_audio", f"the file could not be decoded as audio ({reason})") from error
    finally:
        # As faster-whisper does: some resampler objects are freed only by the garbage collector.
        resampler = None
        gc.collect()
    audio = np.empty(total, dtype=np.float32)
    position = 0
    while chunks:
        chunk = chunks.pop(0)
        audio[position:position + chunk.size] = chunk
        position += chunk.size
    audio /= 32768.0
    if audio.size == 0:
        raise JobError("invalid_audio", "the file contains no audio samples")
    if audio.size < MINIMUM_SAMPLES:
        raise JobError("audio_too_short", f"the audio lasts {audio.size / SAMPLING_RATE:.3f} s, less than 0.1 s")
    return audio


def _ignore_invalid_frames(frames: Any) -> Any:
    iterator = iter(frames)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue


def _group_frames(frames: Any, num_samples: int) -> Any:
    fifo = av.audio.fifo.AudioFifo()
    for frame in frames:
        frame.pts = None  # ignore timestamp checks
        fifo.write(frame)
        if fifo.samples >= num_samples:
            yield fifo.read()
    if fifo.samples > 0:
        yield fifo.read()


def segment_message(segment: Any, logprobs: list[TokenLogprob] | None) -> SegmentMessage:
    words: list[WordMessage] | None = None
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


def detect_language_fitted(model: WhisperModel, fitter: WindowFitter, audio: np.ndarray) -> tuple[str, float]:
    """The audio's language and its probability, detected on the fitted window, or on the whole window when
    the fitted one is unsure (below FIT_LANGUAGE_MIN_PROBABILITY)."""
    language, probability, _ = model.detect_language(audio)
    if probability < FIT_LANGUAGE_MIN_PROBABILITY:
        fitter.fit(False)
        try:
            language, probability, _ = model.detect_language(audio)
        finally:
            fitter.fit(True)
    return str(language), float(probability)


def check_options(job: Job) -> None:
    unknown = sorted(set(job.options) - ALLOWED_OPTIONS - WORKER_OPTIONS)
    if unknown:
        raise JobError("invalid_options", f"unsupported options: {', '.join(unknown)}")
    problems = contract.errors("TranscribeOptions", job.options)
    if problems:
        raise JobError("invalid_options", f"invalid options: {contract.describe(problems)}")
    if job.options.get("fit_window") and job.options.get("batch_size") is not None:
        # The batched pipeline encodes chunks of other lengths together: it has no fitted window.
        raise JobError("invalid_options", "fit_window cannot be combined with batch_size")
    shard = job.options.get("shard")
    if shard is not None and shard["index"] >= shard["count"]:
        raise JobError("invalid_options", f"shard {shard['index']} of {shard['count']} does not exist")
    if shard is not None and job.options.get("diarize") is not None:
        # Each shard would find the speakers on its own: their labels would not agree.
        raise JobError("invalid_options", "shard cannot be combined with diarize")


def job_shard(job: Job) -> Shard | None:
    """The part of the job this worker decodes, when the gateway shares it among workers."""
    shard = job.options.get("shard")
    if shard is None or shard["count"] <= 1:
        return None
    return Shard(shard["index"], shard["count"])


def decoded_jobs(jobs: list[Job], send: Send, max_audio_seconds: float) -> Iterator[tuple[Job, np.ndarray]]:
    """The jobs of a transcribe_batch with their audio, in order; a job that is cancelled, has options the
    contract refuses or audio that cannot be decoded is answered with its error here and left out."""
    for job in jobs:
        try:
            if job.cancelled.is_set():
                raise JobError("cancelled", "the job was cancelled")
            check_options(job)
            audio = decode(job.audio, max_audio_seconds)
        except JobError as error:
            send({"type": "error", "job": job.id, "code": error.code, "message": error.message})
            continue
        yield job, audio


def run_job(model: WhisperModel, job: Job, send: Send,
            max_audio_seconds: float = float("inf"), long_audio: LongAudioBatching = LongAudioBatching(),
            audio: np.ndarray | None = None) -> None:
    """Runs one job, sending info, then each segment as it is decoded, then done or error.
    `audio` is the job's audio when the caller has decoded it already."""
    started = time.monotonic()
    # Interruptible passes everything else on to the WindowFitter and the AlignmentRecorder behind it.
    recorder: AlignmentRecorder = model.model
    fitter: WindowFitter = model.model
    model.model.cancelled = job.cancelled
    try:
        if job.cancelled.is_set():
            raise JobError("cancelled", "the job was cancelled")
        check_options(job)
        options = {name: value for name, value in job.options.items() if name not in WORKER_OPTIONS}
        want_logprobs = bool(job.options.get("logprobs"))
        wants_speakers = job.options.get("diarize")
        if wants_speakers is not None:
            # Speakers are given per word, by its timestamps.
            options["word_timestamps"] = True
        if want_logprobs:
            # Token probabilities come from the alignment pass that word timestamps run.
            options["word_timestamps"] = True
            recorder.start()
        if audio is None:
            audio = decode(job.audio, max_audio_seconds)
        speakers = None
        if wants_speakers is not None:
            from .diarize import ReferenceProblem, diarize_job  # only workers that diarize load it
            try:
                speakers = diarize_job(wants_speakers, audio, decode)
            except ReferenceProblem as problem:
                raise JobError("invalid_speaker_reference", str(problem)) from problem
        batch_size = job.options.get("batch_size")
        if batch_size is None:
            batch_size = long_audio.batch_size_for(job.options, audio.size / SAMPLING_RATE)
        shard = job_shard(job)
        if shard is not None and shard.index > 0 and batch_size is None:
            # Not decoded in chunks: the first shard decodes it whole, the others have nothing to add.
            send({"type": "info", "job": job.id, "language": job.options.get("language", ""),
                  "language_probability": 0.0, "duration": audio.size / SAMPLING_RATE,
                  "duration_after_vad": audio.size / SAMPLING_RATE})
            send({"type": "done", "job": job.id, "processing_seconds": time.monotonic() - started})
            return
        fit = job.options.get("fit_window")
        # The server's short-audio default (a job's own fit_window, as live turns give, is taken as it is).
        fit_by_default = fit is None
        if fit_by_default:
            fit = FIT_SHORT_AUDIO_MIN_SECONDS <= audio.size / SAMPLING_RATE <= fit_short_audio_seconds
        if fit and batch_size is None:
            fitter.fit(audio.size / SAMPLING_RATE <= FIT_MAX_AUDIO_SECONDS, bool(job.options.get("partial")))
        detected = None
        if fit_by_default and fitter.fitting and options.get("language") is None and model.model.is_multilingual \
                and not any(name.startswith("language_detection") for name in options):
            detected = detect_language_fitted(model, fitter, audio)
            options["language"] = detected[0]
        try:
            if batch_size is not None:
                # The batched pipeline keeps per-call state, so each job gets its own. It decodes
                # without timestamp tokens unless told otherwise, which gives one segment per 30 s
                # chunk: ask for them, as sequential decoding does, unless the job says not to.
                batched = {"without_timestamps": False, **options}
                pipeline = CancellableBatchedPipeline(model, job.cancelled, shard, job.relayed_language)
                segments, info = pipeline.transcribe(audio, batch_size=int(batch_size), **batched)
                if pipeline.awaits_language:
                    # Not known yet: the job's language is the first shard's, which reports it.
                    info.language, info.language_probability = "", 0.0
            else:
                segments, info = model.transcribe(audio, **options)
                if job.options.get("partial") and options.get("without_timestamps"):
                    # A partial decode is of its first window, one segment without timestamps: with word
                    # timestamps faster-whisper would go on to decode again whatever follows the last
                    # word (0.1 s more, and a word of noise more, in a partial of a second or two).
                    segments = itertools.islice(segments, 1)
        except (TypeError, ValueError) as error:
            raise JobError("invalid_options", str(error)) from error
        send(
            {
                "type": "info",
                "job": job.id,
                "language": info.language,
                "language_probability": detected[1] if detected else info.language_probability,
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
            message = segment_message(segment, logprobs)
            if speakers is not None:
                from .diarize import label_segment
                label_segment(message, speakers)
            send({"type": "segment", "job": job.id, "segment": message})
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
        fitter.fit(False)
        model.model.cancelled = None
