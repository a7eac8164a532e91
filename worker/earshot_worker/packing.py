"""Packing: short clips laid side by side in one Whisper window, decoded once, split back per clip.

Whisper encodes a 30-second window whatever the audio, so a 3-second clip pays for 30 seconds of
encoder. The gateway sends short jobs that wait together for the same model, with the same options
and a known language, as one transcribe_batch message (src/engine/model-pool.ts, packKey); here
their clips are laid end to end into windows of at most WINDOW_SECONDS, GAP_SECONDS of silence
apart, each window is decoded once (the jobs' own options, the language given, word timestamps on,
no conditioning on previous text), and each word goes to the clip its timestamps fall in.

No request may get another's words, so a clip's share of a window is checked before it is sent, and
the clip is decoded alone again (as run_job would have) when:
  - a word overlaps two clips (TOUCH_SECONDS), covers the whole gap between two, or lies mostly
    inside it (GAP_SHARE):
    word timestamps stretch over silence and can be half a second off near a clip's edge, so such a
    word cannot be given to either side with confidence (both sides are decoded alone);
  - the clip comes back without text;
  - its text compresses too well (compression ratio above the job's compression_ratio_threshold,
    2.4 by default: repetition) or its tokens are too unlikely (mean log probability below the job's
    log_prob_threshold, -1 by default);
  - the window's words cannot be matched to its tokens.
A window left with one clip, a clip longer than the packing threshold, and a job whose options need
a decode of its own (the contract's `x-unbatched` rule for `packing`, or no language on a
multilingual model) run alone, as run_job runs them.

Each clip gets its own segments: a segment of the window is cut at clip boundaries, its times made
relative to the clip and clamped to its duration, ids renumbered from 0. `tokens` are the clip's
text tokens (no timestamp tokens); `avg_logprob` is the mean log probability of those tokens under
the alignment pass that word timestamps run (the AlignmentRecorder), not the beam search's score;
`compression_ratio` is computed from the clip's text. `temperature` and `no_speech_prob` are the
window's, and `seek` is 0 (a packed clip lies within one window): see README, "Packing".
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_compression_ratio

from . import contract
from .contract import WORKER_OPTIONS
from .logprobs import AlignmentRecorder
from .messages import SegmentMessage, Send, WordMessage
from .transcribe import (
    SAMPLING_RATE,
    Job,
    JobError,
    LongAudioBatching,
    decoded_jobs,
    run_job,
)

log = logging.getLogger("earshot_worker")

WINDOW_SECONDS = 30.0
# Silence between two clips of a window (the probe of issue 14 used 0.6 s; 1.0 s gave more clips
# decoded alone again on bench/packing.py's clips, not fewer).
GAP_SECONDS = 0.6
# Word timestamps (cross-attention alignment) stretch over silence, and near a clip's edge they can
# be half a second off: a word that overlaps two clips (by more than this each), or lies inside a gap,
# cannot be given to either side with confidence; nor can one that lies mostly inside a gap (a word
# of the next clip placed before it, or a word misheard across the gap). Timestamps are in steps of 20 ms.
TOUCH_SECONDS = 0.02
GAP_SHARE = 0.5
# Whisper's defaults, as faster-whisper's transcribe() has them.
DEFAULT_COMPRESSION_RATIO_THRESHOLD = 2.4
DEFAULT_LOG_PROB_THRESHOLD = -1.0


@dataclass
class Clip:
    job: Job
    audio: np.ndarray
    # Where the clip starts in its window, in seconds.
    offset: float = 0.0

    @property
    def duration(self) -> float:
        return self.audio.size / SAMPLING_RATE

    @property
    def end(self) -> float:
        return self.offset + self.duration


@dataclass
class Piece:
    """The part of one decoded segment that falls in one clip."""
    segment: Any
    words: list[Any]
    tokens: list[int]
    logprobs: list[float]


@dataclass
class Share:
    """What a window gave one clip, and whether it may be sent."""
    pieces: list[Piece] = field(default_factory=list)
    # Why the clip must be decoded alone, when a word makes it unsure.
    doubt: str | None = None


class AllCancelled:
    """The cancel flag of a window: set once every clip in it is cancelled (Interruptible stops it)."""

    def __init__(self, clips: list[Clip]) -> None:
        self.clips = clips

    def is_set(self) -> bool:
        return all(clip.job.cancelled.is_set() for clip in self.clips)


def packing_language(options: Mapping[str, object], multilingual: bool) -> str | None:
    """The language a job is packed in, or None when it must be decoded alone: its options need a
    decode of their own (the contract's rule), or its language is unknown (detecting it per clip
    would cost the encoder pass that packing saves)."""
    if not contract.batchable(options, "packing"):
        return None
    if not multilingual:
        return "en"
    language = options.get("language")
    return language if isinstance(language, str) else None


def packs_all(model: WhisperModel, jobs: list[Job]) -> bool:
    """Whether every job of a batch may be packed (else the batch is decoded by run_batch)."""
    multilingual = bool(model.model.is_multilingual)
    return all(packing_language(job.options, multilingual) is not None for job in jobs)


def _key(options: Mapping[str, object], language: str) -> str:
    # word_timestamps only changes what is sent back: the window is decoded with them either way.
    shared = {name: value for name, value in options.items() if name not in ("word_timestamps", "language")}
    return json.dumps([language, sorted(shared.items())])


def lay_out(clips: list[Clip], window: float = WINDOW_SECONDS, gap: float | None = None) -> list[list[Clip]]:
    """The clips in windows of at most `window` seconds, in their order, `gap` (GAP_SECONDS) apart; sets
    their offsets."""
    gap = GAP_SECONDS if gap is None else gap
    windows: list[list[Clip]] = []
    used = window + 1.0
    for clip in clips:
        start = used + gap
        if not windows or start + clip.duration > window:
            windows.append([])
            start = 0.0
        clip.offset = start
        windows[-1].append(clip)
        used = clip.end
    return windows


def run_packed(model: WhisperModel, jobs: list[Job], send: Send, max_audio_seconds: float,
               long_audio: LongAudioBatching, clip_seconds: float) -> None:
    """Runs the jobs of a transcribe_batch: clips of at most `clip_seconds` packed into shared windows,
    the others alone. Each job gets info, its segments, then done or error, as run_job sends them."""
    started = time.monotonic()
    multilingual = bool(model.model.is_multilingual)
    alone: list[tuple[Job, np.ndarray]] = []
    groups: dict[str, list[Clip]] = defaultdict(list)
    for job, audio in decoded_jobs(jobs, send, max_audio_seconds):
        language = packing_language(job.options, multilingual)
        if language is None or audio.size > clip_seconds * SAMPLING_RATE:
            alone.append((job, audio))
        else:
            groups[_key(job.options, language)].append(Clip(job, audio))

    for clips in groups.values():
        language = packing_language(clips[0].job.options, multilingual) or "en"
        for window in lay_out(clips):
            for clip in _decode_window(model, window, language, send, started):
                alone.append((clip.job, clip.audio))
    for job, audio in alone:
        run_job(model, job, send, max_audio_seconds, long_audio, audio)


def _decode_window(model: WhisperModel, clips: list[Clip], language: str, send: Send,
                   started: float) -> list[Clip]:
    """Decodes the clips of one window together and sends each clip whose share passes the guards its
    info, segments and done; returns the clips to decode alone."""
    live = []
    for clip in clips:
        if clip.job.cancelled.is_set():
            send({"type": "error", "job": clip.job.id, "code": "cancelled", "message": "the job was cancelled"})
        else:
            live.append(clip)
    if len(live) < 2:
        return live
    lay_out(live)
    audio = np.zeros(round(live[-1].end * SAMPLING_RATE), dtype=np.float32)
    for clip in live:
        start = round(clip.offset * SAMPLING_RATE)
        audio[start:start + clip.audio.size] = clip.audio
    # The jobs share these options (they were grouped by them).
    options: dict[str, Any] = {name: value for name, value in live[0].job.options.items()
                               if name not in WORKER_OPTIONS}
    options.update(language=language, word_timestamps=True, condition_on_previous_text=False)
    recorder: AlignmentRecorder = model.model
    model.model.cancelled = AllCancelled(live)
    recorder.start()
    try:
        segments, _ = model.transcribe(audio, **options)
        segments = list(segments)
        recorded = list(recorder.pending)
    except JobError as error:  # every clip of the window was cancelled
        for clip in live:
            send({"type": "error", "job": clip.job.id, "code": error.code, "message": error.message})
        return []
    except Exception:  # the clips get their own decode, and its own error if it fails again
        log.exception("a packed window of %d clips failed; decoding them alone", len(live))
        return live
    finally:
        recorder.stop()
        model.model.cancelled = None

    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual,
                          task=options.get("task", "transcribe"), language=language)
    shares = split(live, segments, recorded, tokenizer)
    if shares is None:
        log.warning("a packed window's words do not match its tokens; decoding its %d clips alone", len(live))
        return live
    again = []
    for clip, share in zip(live, shares):
        doubt = share.doubt or _doubt(clip, share)
        if clip.job.cancelled.is_set():
            send({"type": "error", "job": clip.job.id, "code": "cancelled", "message": "the job was cancelled"})
        elif doubt is not None:
            log.info("job %s: decoding its clip alone again (%s)", clip.job.id, doubt)
            again.append(clip)
        else:
            _send_clip(clip, share, language, send, started)
    return again


def split(clips: list[Clip], segments: list[Any], recorded: list[tuple[int, float]],
          tokenizer: Tokenizer) -> list[Share] | None:
    """Each clip's share of a window's segments, by word timestamps; a clip is marked unsure (doubt)
    when a word overlaps it and another clip, or lies mostly inside a gap beside it (_owner). None when the words cannot be matched to
    the window's tokens."""
    words = [word for segment in segments for word in segment.words or []]
    tokens = _word_tokens(tokenizer, segments, words)
    if tokens is None:
        return None
    probabilities = _token_probabilities(tokens, words, recorded)
    shares = [Share() for _ in clips]
    position = 0
    for segment in segments:
        current: Piece | None = None
        owner = -1
        for word in segment.words or []:
            index, suspects = _owner(clips, word.start, word.end)
            for suspect in suspects:
                shares[suspect].doubt = f"the word {word.word!r} at {word.start:.2f}-{word.end:.2f} s of its window " \
                    "overlaps two clips or lies mostly inside the gap between them"
            if current is None or index != owner:
                current = Piece(segment, [], [], [])
                owner = index
                shares[index].pieces.append(current)
            current.words.append(word)
            current.tokens.extend(tokens[position])
            current.logprobs.extend(math.log(max(p, 1e-30)) for p in probabilities[position])
            position += 1
    return shares


def _owner(clips: list[Clip], start: float, end: float) -> tuple[int, list[int]]:
    """The clip a word belongs to and the clips it makes unsure. A word belongs to the clip its
    timestamps overlap most, or, overlapping none, to the clip that holds it (a punctuation mark may
    have no duration). Unsure: the clips a word overlaps (by more than TOUCH_SECONDS each), when it
    overlaps two; both sides of a gap that the word covers whole, or that holds it or more than
    GAP_SHARE of it."""
    overlaps = [min(end, clip.end) - max(start, clip.offset) for clip in clips]
    owner = max(range(len(clips)), key=lambda i: overlaps[i])
    touched = [i for i, overlap in enumerate(overlaps) if overlap > TOUCH_SECONDS]
    if len(touched) > 1:
        return owner, touched
    for before, after in zip(clips, clips[1:]):
        in_gap = min(end, after.offset) - max(start, before.end)
        covers = start <= before.end + TOUCH_SECONDS and end >= after.offset - TOUCH_SECONDS
        inside = before.end < start <= end < after.offset
        if covers or inside or in_gap > GAP_SHARE * (end - start):
            return owner, [clips.index(before), clips.index(after)]
    return owner, []


def _word_tokens(tokenizer: Tokenizer, segments: list[Any], words: list[Any]) -> list[list[int]] | None:
    """The text tokens of each word. faster-whisper splits a window's text tokens into words and then
    moves punctuation onto its neighbours, so each word's text is a run of the split words."""
    eot = tokenizer.eot
    text_tokens = [token for segment in segments for token in segment.tokens if token < eot]
    split_words, split_tokens = tokenizer.split_to_word_tokens(text_tokens)
    result: list[list[int]] = []
    position = 0
    for word in words:
        text, tokens = "", []
        while text != word.word:
            if position >= len(split_words) or len(text) >= len(word.word):
                return None
            text += split_words[position]
            tokens.extend(split_tokens[position])
            position += 1
        result.append(tokens)
    if "".join(split_words[position:]).strip():
        return None
    return result


def _token_probabilities(tokens: list[list[int]], words: list[Any],
                         recorded: list[tuple[int, float]]) -> list[list[float]]:
    """Each word's token probabilities as the alignment pass gave them; where the record cannot be
    followed (faster-whisper drops an empty segment after aligning it), the word's probability (the
    mean of its tokens') for each of its tokens."""
    result: list[list[float]] = []
    position = 0
    for word_tokens, word in zip(tokens, words):
        found: list[float] = []
        for token in word_tokens:
            while position < len(recorded) and recorded[position][0] != token:
                position += 1
            if position == len(recorded):
                break
            found.append(float(recorded[position][1]))
            position += 1
        if len(found) == len(word_tokens):
            result.append(found)
        else:
            result.append([float(word.probability)] * len(word_tokens))
            position = len(recorded)
    return result


def _doubt(clip: Clip, share: Share) -> str | None:
    """Why a clip's share does not look like a decode of its own (no text, repeated, unlikely), or None."""
    text = "".join(word.word for piece in share.pieces for word in piece.words)
    if not text.strip():
        return "no text"
    options = clip.job.options
    ratio_threshold = options.get("compression_ratio_threshold", DEFAULT_COMPRESSION_RATIO_THRESHOLD)
    if ratio_threshold is not None and get_compression_ratio(text) > ratio_threshold:
        return f"compression ratio {get_compression_ratio(text):.2f} above {ratio_threshold}"
    logprobs = [logprob for piece in share.pieces for logprob in piece.logprobs]
    logprob_threshold = options.get("log_prob_threshold", DEFAULT_LOG_PROB_THRESHOLD)
    if logprob_threshold is not None and logprobs and sum(logprobs) / len(logprobs) < logprob_threshold:
        return f"mean log probability {sum(logprobs) / len(logprobs):.2f} below {logprob_threshold}"
    return None


def _clamp(seconds: float, clip: Clip) -> float:
    return round(min(max(seconds - clip.offset, 0.0), clip.duration), 3)


def _send_clip(clip: Clip, share: Share, language: str, send: Send, started: float) -> None:
    job = clip.job
    send({"type": "info", "job": job.id, "language": language, "language_probability": 1.0,
          "duration": clip.duration, "duration_after_vad": clip.duration})
    ratio = get_compression_ratio("".join(word.word for piece in share.pieces for word in piece.words))
    want_words = bool(job.options.get("word_timestamps"))
    for number, piece in enumerate(share.pieces):
        words: list[WordMessage] | None = None
        if want_words:
            words = [{"word": word.word, "start": _clamp(word.start, clip), "end": _clamp(word.end, clip),
                      "probability": word.probability} for word in piece.words]
        segment = piece.segment
        message: SegmentMessage = {
            "id": number,
            # A packed clip lies within one window, which starts where the clip starts.
            "seek": 0,
            "start": _clamp(piece.words[0].start, clip),
            "end": _clamp(piece.words[-1].end, clip),
            "text": "".join(word.word for word in piece.words),
            "tokens": piece.tokens,
            "temperature": segment.temperature if segment.temperature is not None else 0.0,
            "avg_logprob": sum(piece.logprobs) / len(piece.logprobs) if piece.logprobs else 0.0,
            "compression_ratio": ratio,
            "no_speech_prob": segment.no_speech_prob,
            "words": words,
            "logprobs": None,
        }
        send({"type": "segment", "job": job.id, "segment": message})
    send({"type": "done", "job": job.id, "processing_seconds": time.monotonic() - started})
