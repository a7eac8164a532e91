"""Live transcription: realtime transcription sessions streamed at real time, one or many at once.

Run: node --import tsx scripts/run-python.ts bench/realtime.py [--server URL] [--model NAME]
         [--sessions 1,2,3,4,6,8,12,16] [--turns N] [--chunk-ms 40] [--query KEY=VALUE ...] [--json PATH]

Each session is a conversation of real speech turns (3-8 s, cut at pauses found with faster-whisper's
own VAD, `faster_whisper.vad.get_speech_timestamps`) separated by 1-2 s of silence, streamed through the
official Python SDK's realtime client (`client.realtime.connect(extra_query={"intent": "transcription"})`)
as pcm16 24 kHz base64 `input_audio_buffer.append`s paced by the wall clock, after a GA `session.update`
(transcription, server_vad with its defaults, the model, language `en`; `--dialect beta` sends the beta
`transcription_session.update` instead). Every server event is timestamped on arrival (client side)
and checked against the SDK's own event types.

Per turn: the first `delta` after `speech_started` and after the true start of speech (the moment it was
"spoken" in the stream), `speech_stopped` -> `completed`, the completed text. Per session: the lag from the
true end of speech to `completed`, and whether it grows over the session. Per run: word error rates of the
completed transcripts against transcribing the same turns as files with faster-whisper (same model,
in-process, its defaults and language en), and of both against the human texts where there are some.

Sessions: 1, 2, 3, ... at once (`--sessions`), until a level does not keep up. A level keeps up when every
turn the server detected gets its `completed` (within `--drain-seconds` after the audio ends), the median
`speech_stopped` -> `completed` is at most 2 s, and in no session does the lag (true end of speech ->
`completed`) of the last third of its turns exceed that of the first third by more than 1 s. A level where
the client itself fell behind its schedule (sends more than 0.25 s late) is reported as such.

Without --server it starts earshot from this checkout (EARSHOT_DEFAULT_MODEL = --model, plus --env).
With --server it uses a running server (earshot or another, e.g. speaches: bench/README.md says how).

Audio: test/audio (jfk.flac, hotwords.mp3, the English part of multilingual.mp3, each channel of
stereo_diarization.wav) and, when --librivox names it (default: BENCH_LIBRIVOX_DIR), the LibriVox clips
of pocketsphinx's source distribution on PyPI (pocketsphinx-5.1.1.tar.gz, test/data/librivox: "Sense and
Sensibility", public domain, with their human transcriptions).

Word error rates use benchlib's normaliser and word-level edit distance: jiwer is not installed in .venv.
Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import statistics
import sys
import time
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio
from faster_whisper.vad import VadOptions, get_speech_timestamps

import benchlib as b

try:  # the SDK's realtime client needs the `websockets` package (openai[realtime])
    import websockets  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    raise SystemExit("the OpenAI SDK's realtime client needs `websockets` (openai[realtime]), not installed in .venv")
from openai import AsyncOpenAI
from openai.types.realtime import realtime_server_event

STREAM_RATE = 24000
MIN_TURN, MAX_TURN = 3.0, 8.0  # seconds of speech per turn
PAUSE = 1.0                    # a silence at least this long ends a turn; turns are separated by such pauses
EDGE = 0.25                    # seconds of the recording kept around a turn's speech (less if speech is nearer)
LEAD_IN = 1.0                  # silence before the first turn
PAUSES = (1.0, 1.5, 2.0, 1.25)  # silences between turns, in turn
TRAILING = 3.0                 # silence after the last turn
KEEP_UP_STOP_TO_COMPLETED = 2.0
KEEP_UP_LAG_GROWTH = 1.0
CLIENT_LATE = 0.25


# ---------------------------------------------------------------- audio: sources and turns


@dataclass
class Source:
    name: str
    audio16: np.ndarray
    audio24: np.ndarray
    human: str | None  # what is said, where known


@dataclass
class Turn:
    index: int
    source: str
    start: float         # where the turn's audio begins in its source (s)
    end: float
    speech_start: float  # its speech, in seconds from the start of the turn's audio
    speech_end: float
    audio16: np.ndarray = field(repr=False)
    audio24: np.ndarray = field(repr=False)
    file_text: str = ""
    human: str | None = None

    @property
    def speech_seconds(self) -> float:
        return self.speech_end - self.speech_start


def decode(path: Path, channel: int | None = None, end: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """16 kHz (for VAD and the file transcripts) and 24 kHz (streamed) versions of one recording: a channel
    of it, or both mixed."""
    def at(rate: int) -> np.ndarray:
        left, right = decode_audio(str(path), sampling_rate=rate, split_stereo=True)
        audio = (left + right) / 2 if channel is None else (left, right)[channel]
        return audio[: None if end is None else int(end * rate)].astype(np.float32)
    return at(b.RATE), at(STREAM_RATE)


def sources(librivox: Path | None) -> list[Source]:
    found = [
        Source("jfk", *decode(b.AUDIO / "jfk.flac"), b.JFK_TEXT),
        Source("hotwords", *decode(b.AUDIO / "hotwords.mp3"), None),  # no human text (benchlib's is a model's)
        Source("mit_en", *decode(b.AUDIO / "multilingual.mp3", end=b.MIT_EN_END_SECONDS), b.MIT_EN_TEXT),
        Source("stereo_left", *decode(b.AUDIO / "stereo_diarization.wav", channel=0), b.STEREO_LEFT_TEXT),
        Source("stereo_right", *decode(b.AUDIO / "stereo_diarization.wav", channel=1), b.STEREO_RIGHT_TEXT),
    ]
    if librivox:
        for name, text in b.LIBRIVOX.items():
            path = librivox / f"{name}.wav"
            if not path.exists():
                raise SystemExit(f"--librivox {librivox}: {path.name} is missing")
            found.append(Source(name.rsplit("-", 1)[-1], *decode(path), text))
    return found


def split_unit(spans: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """Stretches of speech (separated by pauses shorter than PAUSE) cut at their pauses into pieces of
    MIN_TURN-MAX_TURN s: the cut that makes the shortest cut pause longest, then the fewest pieces.
    No valid cut (too short, or a long stretch without pauses): nothing."""
    best: list[tuple[float, int, int] | None] = [(math.inf, 0, -1)] + [None] * len(spans)  # (min gap, -pieces, from)
    for i in range(1, len(spans) + 1):
        for j in range(i):
            previous = best[j]
            length = spans[i - 1][1] - spans[j][0]
            if previous is None or not MIN_TURN <= length <= MAX_TURN:
                continue
            gap = spans[j][0] - spans[j - 1][1] if j > 0 else math.inf
            candidate = (min(previous[0], gap), previous[1] - 1, j)
            current = best[i]
            if current is None or candidate[:2] > current[:2]:
                best[i] = candidate
    if best[-1] is None:
        return []
    pieces, i = [], len(spans)
    while i > 0:
        entry = best[i]
        assert entry is not None
        pieces.append(spans[entry[2]:i])
        i = entry[2]
    return pieces[::-1]


def turns_of(source: Source) -> list[Turn]:
    duration = source.audio16.size / b.RATE
    found = get_speech_timestamps(source.audio16, VadOptions(min_silence_duration_ms=100, speech_pad_ms=0))
    spans = [(s["start"] / b.RATE, s["end"] / b.RATE) for s in found]
    units: list[list[tuple[float, float]]] = []
    for span in spans:
        if units and span[0] - units[-1][-1][1] < PAUSE:
            units[-1].append(span)
        else:
            units.append([span])
    turns = []
    for unit in units:
        for piece in split_unit(unit):
            first, last = spans.index(piece[0]), spans.index(piece[-1])
            before = spans[first - 1][1] if first > 0 else None
            after = spans[last + 1][0] if last + 1 < len(spans) else None
            pad_before = min(EDGE, piece[0][0] if before is None else (piece[0][0] - before) / 2)
            pad_after = min(EDGE, duration - piece[-1][1] if after is None else (after - piece[-1][1]) / 2)
            start, end = piece[0][0] - pad_before, piece[-1][1] + pad_after
            turns.append(Turn(
                0, source.name, start, end, pad_before, pad_before + piece[-1][1] - piece[0][0],
                source.audio16[int(start * b.RATE):int(end * b.RATE)],
                source.audio24[int(start * STREAM_RATE):int(end * STREAM_RATE)],
            ))
    return turns


# ---------------------------------------------------------------- references


def reference_texts(turns: list[Turn], all_sources: list[Source], model: WhisperModel, language: str) -> None:
    """Each turn's file transcript (the turn alone, as a file) and, where its source has a human text, the
    words of that text spoken within the turn (placed by aligning the text with a word-timed transcript
    of the whole source)."""
    for turn in turns:
        segments, _ = model.transcribe(turn.audio16, language=language)
        turn.file_text = "".join(segment.text for segment in segments).strip()
    for source in all_sources:
        mine = [turn for turn in turns if turn.source == source.name]
        if source.human is None or not mine:
            continue
        segments, _ = model.transcribe(source.audio16, language=language, word_timestamps=True)
        words = [(token, (word.start + word.end) / 2)
                 for segment in segments for word in (segment.words or []) for token in b.normalise(word.word)]
        reference = b.normalise(source.human)
        times = b.align_times(reference, words)
        # each word goes to the nearest turn (word times are approximate), none if it is far from every turn
        # (it was said in a stretch that made no turn)
        chosen: dict[int, list[str]] = {turn.index: [] for turn in mine}
        for word, t in zip(reference, times):
            distance, nearest = min((max(turn.start - t, t - turn.end, 0.0), turn.index) for turn in mine)
            if distance <= 0.5:
                chosen[nearest].append(word)
        for turn in mine:
            turn.human = " ".join(chosen[turn.index])


# ---------------------------------------------------------------- conversations


@dataclass
class Placement:
    turn: Turn
    audio_start: float   # where the turn's audio begins in the session's stream (s)
    speech_start: float  # where its speech begins and ends in the stream
    speech_end: float


def conversation(turns: list[Turn], count: int, offset: int) -> tuple[np.ndarray, list[Placement]]:
    """`count` turns from `offset` on (round the list), with silences between them; 24 kHz."""
    parts = [np.zeros(int(LEAD_IN * STREAM_RATE), np.float32)]
    position = LEAD_IN
    placements = []
    for k in range(count):
        turn = turns[(offset + k) % len(turns)]
        placements.append(Placement(turn, position, position + turn.speech_start, position + turn.speech_end))
        parts.append(turn.audio24)
        position += turn.audio24.size / STREAM_RATE
        pause = PAUSES[(offset + k) % len(PAUSES)] if k + 1 < count else TRAILING
        parts.append(np.zeros(int(pause * STREAM_RATE), np.float32))
        position += pause
    return np.concatenate(parts), placements


def pcm16(audio: np.ndarray) -> bytes:
    return np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2").tobytes()


# ---------------------------------------------------------------- event shapes (the SDK's own types)


def _server_event_types(dialect: str) -> dict[str, Any]:
    module: types.ModuleType = realtime_server_event
    if dialect == "beta":
        from openai.types.beta.realtime import realtime_server_event as beta_events
        module = beta_events
    union = typing.get_args(module.RealtimeServerEvent)[0]
    by_type = {}
    for model in typing.get_args(union):
        for literal in typing.get_args(model.model_fields["type"].annotation):
            by_type[literal] = model
    return by_type


class ShapeCheck:
    """Validates each server event with the SDK's model for its type; keeps the first problem per type."""

    def __init__(self, dialect: str) -> None:
        self.models = _server_event_types(dialect)
        self.problems: dict[str, dict[str, Any]] = {}
        self.counts: dict[str, int] = {}

    def check(self, event: dict[str, Any]) -> None:
        kind = str(event.get("type"))
        self.counts[kind] = self.counts.get(kind, 0) + 1
        model = self.models.get(kind)
        if model is None:
            problem = "not a server event type of the SDK"
        else:
            try:
                model.model_validate(event)
                return
            except Exception as error:  # pydantic's ValidationError, summarised
                problem = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in getattr(error, "errors", lambda: [])()[:4]
                ) or str(error)[:300]
        entry = self.problems.setdefault(kind, {"count": 0, "first": problem, "example": json.dumps(event)[:400]})
        entry["count"] += 1


# ---------------------------------------------------------------- one session


@dataclass
class SessionResult:
    index: int
    t0: float = 0.0                  # wall time (perf_counter) of stream position 0
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    error: str | None = None
    closed: str | None = None
    audio_seconds: float = 0.0


def session_update(model: str, language: str, dialect: str) -> dict[str, Any]:
    if dialect == "beta":
        return {"type": "transcription_session.update", "session": {
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": model, "language": language},
            "turn_detection": {"type": "server_vad"},
        }}
    return {"type": "session.update", "session": {
        "type": "transcription",
        "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": STREAM_RATE},
            "transcription": {"model": model, "language": language},
            "turn_detection": {"type": "server_vad"},
        }},
    }}


async def run_session(index: int, client: AsyncOpenAI, args: argparse.Namespace, audio: np.ndarray,
                      start_times: list[float], shapes: ShapeCheck, ready: asyncio.Event,
                      go: asyncio.Event) -> SessionResult:
    """Connects, configures, waits for `go`, streams `audio` from start_times[index] on at real time, then
    waits for the completions of the turns the server committed."""
    result = SessionResult(index, audio_seconds=audio.size / STREAM_RATE)
    query = {"intent": "transcription", **dict(item.split("=", 1) for item in args.query)}
    committed: set[str] = set()
    finished: set[str] = set()
    updated = asyncio.Event()
    progress = asyncio.Event()
    try:
        async with client.realtime.connect(extra_query=query) as connection:
            async def read() -> None:
                try:
                    while True:
                        raw = await connection.recv_bytes()
                        arrived = time.perf_counter()
                        event = json.loads(raw)
                        result.events.append((arrived, event))
                        shapes.check(event)
                        kind = event.get("type")
                        if kind in ("session.updated", "transcription_session.updated"):
                            updated.set()
                        elif kind == "error" and not updated.is_set():
                            result.error = f"error before streaming: {json.dumps(event.get('error'))[:300]}"
                            updated.set()
                        elif kind == "input_audio_buffer.committed":
                            committed.add(event.get("item_id", ""))
                        elif kind in ("conversation.item.input_audio_transcription.completed",
                                      "conversation.item.input_audio_transcription.failed"):
                            finished.add(event.get("item_id", ""))
                            progress.set()
                except Exception as error:  # the connection closed (or a frame was not JSON)
                    result.closed = f"{type(error).__name__}: {error}"[:300]
                    progress.set()

            reader = asyncio.create_task(read())
            await connection.send_raw(json.dumps(session_update(args.model, args.language, args.dialect)))
            try:
                await asyncio.wait_for(updated.wait(), 15)
            except asyncio.TimeoutError:
                result.error = "no session.updated within 15 s"
            ready.set()
            await go.wait()
            step = int(STREAM_RATE * args.chunk_ms / 1000)
            data = pcm16(audio)
            start_at = result.t0 = start_times[index]
            chunk_seconds = step / STREAM_RATE
            for i, offset in enumerate(range(0, audio.size, step)):
                due = start_at + (i + 1) * chunk_seconds  # a chunk is there once all of its audio was "spoken"
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if result.closed:
                    break
                payload = base64.b64encode(data[offset * 2:(offset + step) * 2]).decode()
                await connection.input_audio_buffer.append(audio=payload)
                result.lateness.append(time.perf_counter() - due)
            deadline = time.perf_counter() + args.drain_seconds
            while not result.closed and not committed <= finished and time.perf_counter() < deadline:
                progress.clear()
                try:
                    await asyncio.wait_for(progress.wait(), max(0.01, deadline - time.perf_counter()))
                except asyncio.TimeoutError:
                    break
            await asyncio.sleep(0.2)  # a last event in flight
            reader.cancel()
    except Exception as error:
        result.error = result.error or f"{type(error).__name__}: {error}"[:300]
        ready.set()
    return result


# ---------------------------------------------------------------- analysis


@dataclass
class Item:
    item_id: str
    started: float | None = None
    stopped: float | None = None
    first_delta: float | None = None
    completed: float | None = None
    failed: bool = False
    deltas: list[str] = field(default_factory=list)
    transcript: str = ""
    first_seen: float = 0.0
    audio_start_ms: int | None = None


def items_of(result: SessionResult) -> list[Item]:
    items: dict[str, Item] = {}
    for arrived, event in result.events:
        item_id = event.get("item_id")
        if not isinstance(item_id, str):
            continue
        item = items.setdefault(item_id, Item(item_id, first_seen=arrived))
        kind = event.get("type")
        if kind == "input_audio_buffer.speech_started":
            item.started = arrived
            item.audio_start_ms = event.get("audio_start_ms")
        elif kind == "input_audio_buffer.speech_stopped":
            item.stopped = arrived
        elif kind == "conversation.item.input_audio_transcription.delta":
            item.first_delta = item.first_delta or arrived
            item.deltas.append(str(event.get("delta") or ""))
        elif kind == "conversation.item.input_audio_transcription.completed":
            item.completed = arrived
            item.transcript = str(event.get("transcript") or "")
        elif kind == "conversation.item.input_audio_transcription.failed":
            item.completed, item.failed = arrived, True
    # only items of audio turns (a speech_started or a commit), in the order they began
    return sorted((i for i in items.values() if i.started is not None or i.completed is not None),
                  key=lambda i: i.started or i.first_seen)


def positions(result: SessionResult, items: list[Item]) -> tuple[list[float], str]:
    """Where in the stream each item's speech began: the server's audio_start_ms where it counts from the
    start of the session as OpenAI's does (never decreasing, never ahead of the audio sent), else the
    arrival of its speech_started (later by the server's detection delay)."""
    arrivals = [(item.started or item.first_seen) - result.t0 for item in items]
    reported = [item.audio_start_ms for item in items]
    if items and all(isinstance(ms, int) for ms in reported):
        seconds = [ms / 1000 for ms in typing.cast(list[int], reported)]
        if all(a <= b for a, b in zip(seconds, seconds[1:])) and all(s <= a + 0.2 for s, a in zip(seconds, arrivals)):
            return seconds, "audio_start_ms"
    return arrivals, "arrival"


def turn_records(result: SessionResult, placements: list[Placement]) -> tuple[list[dict[str, Any]], str]:
    """Items given to turns by where their speech began (`positions`): turn k owns the stream from the middle
    of the pause before it to the middle of the pause after it."""
    owned: list[list[Item]] = [[] for _ in placements]
    items = items_of(result)
    where, how = positions(result, items)
    bounds = [(placements[n - 1].audio_start + placements[n - 1].turn.audio24.size / STREAM_RATE + p.audio_start) / 2
              for n, p in enumerate(placements) if n > 0]
    for item, position in zip(items, where):
        k = sum(1 for bound in bounds if bound <= position)
        owned[k].append(item)

    def after(a: float | None, b0: float | None) -> float | None:
        return None if a is None or b0 is None else a - b0

    records = []
    for k, (placement, items) in enumerate(zip(placements, owned)):
        true_start, true_end = result.t0 + placement.speech_start, result.t0 + placement.speech_end
        last = items[-1] if items else None
        started = min((i.started for i in items if i.started is not None), default=None)
        first_delta = min((i.first_delta for i in items if i.first_delta is not None), default=None)
        first_completed = min((i.completed for i in items if i.completed is not None), default=None)
        first_text = min((t for t in (first_delta, first_completed) if t is not None), default=None)
        records.append({
            "k": k, "turn": placement.turn.index, "source": placement.turn.source,
            "speech_seconds": round(placement.turn.speech_seconds, 2),
            "items": len(items),
            "completed": bool(items) and all(i.completed is not None for i in items),
            "failed": sum(i.failed for i in items),
            "started_after_speech": after(started, true_start),
            "first_delta_after_started": after(first_delta, started),
            "first_delta_after_speech": after(first_delta, true_start),
            "first_text_after_started": after(first_text, started),
            "stopped_after_speech_end": after(last.stopped if last else None, true_end),
            "stop_to_completed": after(last.completed, last.stopped) if last else None,
            "end_to_completed": after(last.completed if last else None, true_end),
            "item_stop_to_completed": [after(i.completed, i.stopped) for i in items],
            "deltas": sum(len(i.deltas) for i in items),
            "deltas_equal_transcript": all("".join(i.deltas) == i.transcript for i in items if i.deltas),
            "text": " ".join(i.transcript.strip() for i in items if i.transcript.strip()),
            "file_text": placement.turn.file_text,
            "human": placement.turn.human,
        })
    return records, how


def values(records: list[dict[str, Any]], key: str) -> list[float]:
    return [r[key] for r in records if r.get(key) is not None]


def quantile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    return float(np.quantile(np.array(xs), q))


def lag_growth(records: list[dict[str, Any]]) -> float | None:
    """Median lag (true end of speech -> completed) of the last third of the turns minus that of the first."""
    lags = [r["end_to_completed"] for r in records if r["end_to_completed"] is not None]
    third = len(lags) // 3
    if third == 0:
        return None
    return statistics.median(lags[-third:]) - statistics.median(lags[:third])


def word_error_rates(sessions: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Realtime against the file transcripts, and both against the human texts. Texts are joined over a
    session (over each run of consecutive turns of one source, for the human texts) so that a word
    given to the neighbouring turn (by the server's VAD or by the approximate word times that place the
    human words) costs nothing."""
    errors = words = 0
    for records in sessions:
        e, w = b.word_errors(" ".join(r["file_text"] for r in records), " ".join(r["text"] for r in records))
        errors, words = errors + e, words + w
    live_e = file_e = human_w = 0
    for records in sessions:
        runs: list[list[dict[str, Any]]] = []
        for r in records:
            if runs and runs[-1][-1]["source"] == r["source"] and runs[-1][-1]["turn"] + 1 == r["turn"]:
                runs[-1].append(r)
            else:
                runs.append([r])
        for run in runs:
            human = " ".join(r["human"] or "" for r in run)
            if run[0]["human"] is None or not human.strip():
                continue
            e1, w1 = b.word_errors(human, " ".join(r["text"] for r in run))
            e2, _ = b.word_errors(human, " ".join(r["file_text"] for r in run))
            live_e, file_e, human_w = live_e + e1, file_e + e2, human_w + w1
    return {
        "live_vs_file": errors / max(1, words), "file_words": words,
        "live_vs_human": live_e / human_w if human_w else None,
        "file_vs_human": file_e / human_w if human_w else None, "human_words": human_w,
    }


def summarise(level: int, results: list[SessionResult], all_records: list[list[dict[str, Any]]],
              cpu: dict[str, float]) -> dict[str, Any]:
    flat = [r for records in all_records for r in records]
    detected = [r for r in flat if r["items"]]
    stop_to_completed = values(flat, "stop_to_completed")
    growth = [g for g in (lag_growth(records) for records in all_records) if g is not None]
    lateness = [x for result in results for x in result.lateness]
    missing = sum(1 for r in detected if not r["completed"])
    errors = [f"session {r.index}: {r.error}" for r in results if r.error]
    error_events = [e for r in results for _, e in r.events if e.get("type") == "error"]
    messages: dict[str, int] = {}
    for event in error_events:
        message = str((event.get("error") or {}).get("message"))[:200]
        messages[message] = messages.get(message, 0) + 1
    errors += [f"session {r.index}: closed ({r.closed})" for r in results if r.closed]
    median_stop = statistics.median(stop_to_completed) if stop_to_completed else None
    reasons = []
    if errors:
        reasons.append("session errors")
    if missing:
        reasons.append(f"{missing} turns without completed")
    if median_stop is None or median_stop > KEEP_UP_STOP_TO_COMPLETED:
        reasons.append(f"median stop->completed {median_stop if median_stop is None else round(median_stop, 2)} s")
    if growth and max(growth) > KEEP_UP_LAG_GROWTH:
        reasons.append(f"lag grew {max(growth):.2f} s")
    client_late = quantile(lateness, 0.99)
    if client_late is not None and client_late > CLIENT_LATE:
        reasons.append(f"client fell behind (p99 send {client_late:.2f} s late)")
    item_stops = [x for r in flat for x in r["item_stop_to_completed"] if x is not None]
    return {
        "sessions": level,
        "turns": len(flat), "turns_detected": len(detected), "turns_completed": sum(r["completed"] for r in flat),
        "turns_split": sum(1 for r in flat if r["items"] > 1), "items": sum(r["items"] for r in flat),
        "items_failed": sum(r["failed"] for r in flat),
        "turns_with_deltas": sum(1 for r in flat if r["deltas"]),
        "deltas_not_equal_transcript": sum(1 for r in flat if not r["deltas_equal_transcript"]),
        "first_delta_after_started": stats(values(flat, "first_delta_after_started")),
        "first_delta_after_speech": stats(values(flat, "first_delta_after_speech")),
        "first_text_after_started": stats(values(flat, "first_text_after_started")),
        "started_after_speech": stats(values(flat, "started_after_speech")),
        "stopped_after_speech_end": stats(values(flat, "stopped_after_speech_end")),
        "stop_to_completed": stats(stop_to_completed),
        "item_stop_to_completed": stats(item_stops),
        "end_to_completed": stats(values(flat, "end_to_completed")),
        "lag_growth_max": max(growth) if growth else None,
        "client_lateness_p99": client_late,
        "wer": word_error_rates(all_records),
        "cpu": cpu,
        "errors": errors,
        "error_events": messages,
        "keeps_up": not reasons,
        "not_keeping_up_because": reasons,
    }


def stats(xs: list[float]) -> dict[str, float | int | None]:
    return {"n": len(xs), "median": quantile(xs, 0.5), "p90": quantile(xs, 0.9), "max": max(xs) if xs else None}


# ---------------------------------------------------------------- a level: N sessions at once


async def run_level(level: int, args: argparse.Namespace, turns: list[Turn], shapes: ShapeCheck,
                    count: int) -> tuple[list[SessionResult], list[list[Placement]]]:
    client = AsyncOpenAI(base_url=f"{args.server.rstrip('/')}/v1", api_key=args.api_key, max_retries=0)
    plans = [conversation(turns, count, offset=(s * 5) % len(turns)) for s in range(level)]
    readies = [asyncio.Event() for _ in range(level)]
    go = asyncio.Event()
    start_times = [0.0] * level
    tasks = [asyncio.create_task(run_session(s, client, args, audio, start_times, shapes, readies[s], go))
             for s, (audio, _) in enumerate(plans)]
    await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), 60)
    begin = time.perf_counter() + 0.5
    start_times[:] = [begin + s * args.stagger for s in range(level)]
    go.set()
    results = await asyncio.gather(*tasks)
    await client.close()
    return list(results), [placements for _, placements in plans]


def cpu_reading(server_pid: int | None) -> dict[str, float]:
    own = os.times()
    return {"at": time.perf_counter(), "machine": b.machine_busy_seconds(), "client": own.user + own.system,
            "server": b.tree_cpu_seconds(server_pid) if server_pid else 0.0}


def cpu_used(before: dict[str, float], after: dict[str, float], server_known: bool) -> dict[str, float]:
    """Average cores over the level: this client, the server (when its process is known) and other work."""
    seconds = after["at"] - before["at"]
    used = {key: (after[key] - before[key]) / seconds for key in ("machine", "client", "server")}
    other = used["machine"] - used["client"] - used["server"]
    return {"seconds": seconds, "client_cores": used["client"],
            "server_cores": used["server"] if server_known else math.nan, "other_cores": max(0.0, other)}


# ---------------------------------------------------------------- output


def ms(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def percent(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def print_table(levels: list[dict[str, Any]]) -> None:
    print("\n| sessions | turns done | first delta after speech_started (median / p90) | first text after "
          "speech_started | stop → completed (median / p90 / max) | lag growth | WER vs files | WER vs human "
          "(files) | server cores | other work | keeps up |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for level in levels:
        delta, text, stop = level["first_delta_after_started"], level["first_text_after_started"], level["stop_to_completed"]
        wer = level["wer"]
        server_cores = level["cpu"]["server_cores"]
        print(f"| {level['sessions']} | {level['turns_completed']}/{level['turns']} "
              f"({level['turns_split']} split) | {ms(delta['median'])} / {ms(delta['p90'])} s | {ms(text['median'])} s | "
              f"{ms(stop['median'])} / {ms(stop['p90'])} / {ms(stop['max'])} s | {ms(level['lag_growth_max'])} s | "
              f"{percent(wer['live_vs_file'])} | {percent(wer['live_vs_human'])} ({percent(wer['file_vs_human'])}) | "
              f"{'—' if math.isnan(server_cores) else f'{server_cores:.2f}'} | {level['cpu']['other_cores']:.2f} | "
              f"{'yes' if level['keeps_up'] else 'no: ' + ', '.join(level['not_keeping_up_because'])} |")


def turn_table(turns: list[Turn]) -> None:
    print(f"\n{len(turns)} turns ({sum(t.speech_seconds for t in turns):.1f} s of speech):")
    for turn in turns:
        print(f"  {turn.index:2d} {turn.source:14} {turn.start:6.2f}-{turn.end:6.2f} s (speech {turn.speech_seconds:4.2f} s) "
              f"{turn.file_text!r}" + ("" if turn.human is None else f"\n     human: {turn.human!r}"))


# ---------------------------------------------------------------- main


def reference_model_name(model: str) -> str:
    """The bundled model directory that stands for a model name (for the file transcripts)."""
    name = model.rsplit("/", 1)[-1].removeprefix("faster-whisper-")
    return "base" if name in ("whisper-1", "default") else name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="URL of a running server (http://HOST:PORT); default: start earshot")
    parser.add_argument("--model", default="base", help="transcription model sent in session.update (default base)")
    parser.add_argument("--reference-model", help="bundled model directory for the file transcripts "
                        "(default: from --model, e.g. Systran/faster-whisper-tiny.en -> tiny.en)")
    parser.add_argument("--sessions", default="1,2,3,4,6,8,12,16",
                        help="levels of concurrent sessions, run in turn until one does not keep up (default 1,2,3,4,6,8,12,16)")
    parser.add_argument("--all-levels", action="store_true", help="run every level, not only until one fails")
    parser.add_argument("--turns", type=int, help="turns per session (default: every turn twice)")
    parser.add_argument("--chunk-ms", type=int, default=40, help="audio per append, 20-100 ms (default 40)")
    parser.add_argument("--language", default="en")
    parser.add_argument("--dialect", choices=("ga", "beta"), default="ga",
                        help="ga: session.update; beta: transcription_session.update (default ga)")
    parser.add_argument("--query", action="append", default=[], metavar="KEY=VALUE",
                        help="extra query parameter of the WebSocket URL besides intent=transcription (repeatable)")
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "unused"))
    parser.add_argument("--server-pid", type=int, help="the running server's process, to count its CPU")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="earshot environment setting when this script starts it (repeatable)")
    parser.add_argument("--librivox", default=os.environ.get("BENCH_LIBRIVOX_DIR"),
                        help="pocketsphinx-5.1.1/test/data/librivox (extracted from its sdist) to add its clips")
    parser.add_argument("--drain-seconds", type=float, default=30.0,
                        help="how long after the audio ends to wait for the last completions (default 30)")
    parser.add_argument("--stagger", type=float, default=0.3, help="seconds between the sessions' starts")
    parser.add_argument("--json", help="write everything measured here")
    parser.add_argument("--label", default="", help="name of the server in the output")
    parser.add_argument("--list-turns", action="store_true", help="print the turns and their references, then stop")
    args = parser.parse_args()
    if not 20 <= args.chunk_ms <= 100:
        parser.error("--chunk-ms must be within 20-100")
    levels = [int(x) for x in args.sessions.split(",")]
    reference_model = args.reference_model or reference_model_name(args.model)
    if not (b.MODELS / reference_model).is_dir():
        parser.error(f"no bundled model {reference_model!r} for the file transcripts: give --reference-model")

    b.print_machine(f"realtime transcription: {args.label or args.server or 'earshot (started here)'}, model {args.model}")
    all_sources = sources(Path(args.librivox) if args.librivox else None)
    turns = [turn for source in all_sources for turn in turns_of(source)]
    for index, turn in enumerate(turns):
        turn.index = index
    print(f"file transcripts with {reference_model} (faster-whisper {args.language}, its defaults) ...", flush=True)
    model = WhisperModel(str(b.MODELS / reference_model), device="cpu", compute_type="int8", cpu_threads=2)
    reference_texts(turns, all_sources, model, args.language)
    del model
    turn_table(turns)
    if args.list_turns:
        return
    count = args.turns or 2 * len(turns)

    earshot = None
    if not args.server:
        env = {"EARSHOT_DEFAULT_MODEL": reference_model, **dict(item.split("=", 1) for item in args.env)}
        earshot = b.Earshot(env, "earshot")
        earshot.wait_ready()
        args.server = earshot.url
        print(f"earshot started: {args.server} ({env})")
    server_pid = earshot.process.pid if earshot else args.server_pid

    measured: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    shapes = ShapeCheck(args.dialect)
    try:
        warm, _ = asyncio.run(run_level(1, args, turns, ShapeCheck(args.dialect), 1))  # loads, warms; not counted
        if warm[0].error or warm[0].closed:
            raise SystemExit(f"the warm-up session failed: {warm[0].error or warm[0].closed}")
        for level in levels:
            b.wait_for_quiet(threshold=0.3, max_wait=float(os.environ.get("BENCH_MAX_WAIT", 120)))
            before = cpu_reading(server_pid)
            results, placements = asyncio.run(run_level(level, args, turns, shapes, count))
            cpu = cpu_used(before, cpu_reading(server_pid), server_pid is not None)
            matched = [turn_records(result, plan) for result, plan in zip(results, placements)]
            records = [records for records, _ in matched]
            summary = summarise(level, results, records, cpu)
            measured.append(summary)
            raw.append({"sessions": level, "per_session": [
                {"index": r.index, "error": r.error, "closed": r.closed, "audio_seconds": r.audio_seconds,
                 "items_placed_by": how,
                 "turns": rec, "event_counts": _counts(r),
                 "error_events": [e for _, e in r.events if e.get("type") == "error"][:20],
                 "events": [[round(t - r.t0, 3), e] for t, e in r.events]}
                for r, rec, (_, how) in zip(results, records, matched)]})
            print(f"{level} sessions: {summary['turns_completed']}/{summary['turns']} turns completed, "
                  f"stop->completed median {ms(summary['stop_to_completed']['median'])} s, first delta median "
                  f"{ms(summary['first_delta_after_started']['median'])} s, lag growth {ms(summary['lag_growth_max'])} s, "
                  f"WER vs files {percent(summary['wer']['live_vs_file'])}, other work {cpu['other_cores']:.2f} cores, "
                  f"load {b.loadavg()}: {'keeps up' if summary['keeps_up'] else 'does not keep up: ' + ', '.join(summary['not_keeping_up_because'])}",
                  flush=True)
            for error in summary["errors"][:5]:
                print(f"  {error}")
            for message, times in summary["error_events"].items():
                print(f"  error event ×{times}: {message}")
            if not summary["keeps_up"] and not args.all_levels:
                break
    finally:
        if earshot:
            notable = [entry for entry in earshot.logs if entry.get("level", 0) >= 40 or "signal" in str(entry.get("msg", ""))]
            for entry in notable[-10:]:
                print(f"  earshot log: {json.dumps(entry)[:300]}")
            earshot.stop()

    print_table(measured)
    kept = [level["sessions"] for level in measured if level["keeps_up"]]
    print(f"\nlargest number of sessions that keeps up: {max(kept) if kept else 'none'} "
          f"(model {args.model}, {args.chunk_ms} ms appends, {count} turns per session)")
    if measured:
        one = measured[0]
        print(f"at {one['sessions']} session(s): median speech_stopped -> completed {ms(one['stop_to_completed']['median'])} s "
              f"(target ≤ 0.8 s); median first delta after speech_started {ms(one['first_delta_after_started']['median'])} s "
              f"(target ≤ 1.5 s); WER vs human {percent(one['wer']['live_vs_human'])} against files' "
              f"{percent(one['wer']['file_vs_human'])} (target: within 1 point)")
    if shapes.problems:
        print("\nserver events that do not match the SDK's types:")
        for kind, problem in shapes.problems.items():
            print(f"  {kind} ×{problem['count']}: {problem['first']}\n    e.g. {problem['example'][:240]}")
    print(f"event types received: {dict(sorted(shapes.counts.items()))}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "args": vars(args), "machine": b.machine_summary(), "reference_model": reference_model,
            "turns": [{k: v for k, v in asdict(t).items() if k not in ("audio16", "audio24")} for t in turns],
            "levels": measured, "raw": raw, "shape_problems": shapes.problems, "event_counts": shapes.counts,
        }, indent=1, default=str))
        print(f"written: {args.json}")


def _counts(result: SessionResult) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, event in result.events:
        counts[str(event.get("type"))] = counts.get(str(event.get("type")), 0) + 1
    return counts


if __name__ == "__main__":
    main()
