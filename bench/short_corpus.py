"""Short clips of real speech (2-6 s each) cut at pauses, with a reference text each; built once, cached.

Used by bench/short_clips.py and bench/packed_language.py. Not a test.

Recordings (real speech only, all available offline):
  - test/audio: jfk.flac; the English half of multilingual.mp3 (the MIT licence read aloud, 0-29.6 s);
    hotwords.mp3; each channel of stereo_diarization.wav on its own (mixed to mono, the two voices
    overlap from 0.38 to 2.59 s, and overlapped speech has no reference word order);
  - the five LibriVox clips ("Sense and Sensibility", public domain) of pocketsphinx 5.1.1's source
    distribution on PyPI (test/data/librivox), downloaded once by pip, pinned by hash (or
    BENCH_LIBRIVOX_DIR: a directory holding them already);
  - for language detection only: the German half of multilingual.mp3 (29.6 s to the end), no reference.

Cutting: faster-whisper's own VAD (`get_speech_timestamps`, 100 ms minimum silence, no padding) finds the
pauses of each recording; a candidate clip is any run of consecutive stretches of speech that, with up to
0.25 s of the recording kept on each side (never more than half the pause), lasts 2-6 s. So every cut lies
in a pause, and clips of one recording overlap (different runs of the same phrases).

References: the recording's human text (JFK, the licence, the two voices of stereo_diarization.wav,
LibriVox; hotwords.mp3 has none, so benchlib's text, what base and tiny.en transcribe given the hotword,
stands in and is marked "model") is aligned word by word (benchlib.align_times) with a word-timed decode
of the whole recording (bundled base, int8, language given, faster-whisper's defaults); each reference
word goes to the stretch of speech nearest its time, and a clip's reference is the words of its
stretches.

Selection: the candidates of all recordings (52), in a fixed pseudo-random order (seed 14), taken in turn
and again from the first until `count` (116, as in issue 14) are taken: each is used twice or three times,
never twice in a row. The recordings hold about 75 s of distinct speech, too little for 116 distinct clips,
and too few of its candidates are short to match the issue's mean of 2.6 s (298 s in all) without using a
dozen clips ten times each: this corpus has the issue's count and range of lengths, a longer mean (about
3.6 s), which leaves packing less room, not more.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio
from faster_whisper.vad import VadOptions, get_speech_timestamps

import benchlib as b

CACHE = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "earshot-bench"))
POCKETSPHINX_SHA256 = "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355"
MIN_CLIP, MAX_CLIP = 2.0, 6.0  # seconds of audio per clip, the kept edges included
EDGE = 0.25                    # seconds of the recording kept on each side of a clip's speech (at most half a pause)
MIN_PAUSE_MS = 100             # the VAD's minimum silence: a cut needs at least this pause
SEED = 14
# Bump when the recipe changes: the cache is keyed on it.
RECIPE = "v1"


@dataclass
class Recording:
    name: str
    audio: np.ndarray
    text: str | None      # what is said, where known
    reference_kind: str   # "human", "model" (a transcript standing in for one) or "none"
    language: str


@dataclass
class Clip:
    name: str
    recording: str
    start: float          # seconds into its recording
    end: float
    reference: str
    reference_kind: str
    language: str
    path: Path

    @property
    def seconds(self) -> float:
        return self.end - self.start


# ---------------------------------------------------------------- recordings


def librivox_dir() -> Path:
    """pocketsphinx 5.1.1's test/data/librivox: BENCH_LIBRIVOX_DIR, or its sdist fetched by pip (pinned), once."""
    given = os.environ.get("BENCH_LIBRIVOX_DIR")
    if given:
        return Path(given)
    data = CACHE / "pocketsphinx-5.1.1" / "test" / "data" / "librivox"
    if all((data / f"{name}.wav").is_file() for name in b.LIBRIVOX):
        return data
    b.fetch_sdist("pocketsphinx==5.1.1", POCKETSPHINX_SHA256, CACHE, lambda name: "/test/data/librivox/" in name)
    return data


def english_recordings() -> list[Recording]:
    librivox = librivox_dir()
    found = [
        Recording("jfk", b.load("jfk.flac"), b.JFK_TEXT, "human", "en"),
        Recording("mit_en", b.cut(b.load("multilingual.mp3"), 0, b.MIT_EN_END_SECONDS), b.MIT_EN_TEXT, "human", "en"),
        Recording("hotwords", b.load("hotwords.mp3"), b.HOTWORDS_TEXT, "model", "en"),
        Recording("stereo_left", b.load_channel("stereo_diarization.wav", 0), b.STEREO_LEFT_TEXT, "human", "en"),
        Recording("stereo_right", b.load_channel("stereo_diarization.wav", 1), b.STEREO_RIGHT_TEXT, "human", "en"),
    ]
    for name, text in b.LIBRIVOX.items():
        audio = decode_audio(str(librivox / f"{name}.wav"), sampling_rate=b.RATE).astype(np.float32)
        found.append(Recording(f"librivox_{name.rsplit('-', 1)[-1]}", audio, text, "human", "en"))
    return found


def german_recording() -> Recording:
    return Recording("mit_de", b.cut(b.load("multilingual.mp3"), b.MIT_EN_END_SECONDS), None, "none", "de")


# ---------------------------------------------------------------- cutting


def speech_spans(audio: np.ndarray) -> list[tuple[float, float]]:
    found = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=MIN_PAUSE_MS, speech_pad_ms=0))
    return [(s["start"] / b.RATE, s["end"] / b.RATE) for s in found]


def candidate_cuts(audio: np.ndarray, spans: list[tuple[float, float]]) -> list[tuple[int, int, float, float]]:
    """(first span, last span, start, end) of every run of consecutive spans lasting MIN_CLIP-MAX_CLIP s
    with its edges."""
    duration = audio.size / b.RATE
    cuts = []
    for first in range(len(spans)):
        for last in range(first, len(spans)):
            before = spans[first - 1][1] if first > 0 else None
            after = spans[last + 1][0] if last + 1 < len(spans) else None
            pad_before = min(EDGE, spans[first][0] if before is None else (spans[first][0] - before) / 2)
            pad_after = min(EDGE, duration - spans[last][1] if after is None else (after - spans[last][1]) / 2)
            start, end = spans[first][0] - pad_before, spans[last][1] + pad_after
            if end - start > MAX_CLIP:
                break
            if end - start >= MIN_CLIP:
                cuts.append((first, last, round(start, 3), round(end, 3)))
    return cuts


def words_per_span(recording: Recording, spans: list[tuple[float, float]], model: WhisperModel) -> list[list[str]]:
    """The recording's reference words, each given to the stretch of speech nearest its time."""
    chosen: list[list[str]] = [[] for _ in spans]
    if recording.text is None or not spans:
        return chosen
    segments, _ = model.transcribe(recording.audio, language=recording.language, word_timestamps=True)
    words = [(token, (word.start + word.end) / 2)
             for segment in segments for word in (segment.words or []) for token in b.normalise(word.word)]
    reference = b.normalise(recording.text)
    for word, t in zip(reference, b.align_times(reference, words)):
        nearest = min(range(len(spans)), key=lambda k: max(spans[k][0] - t, t - spans[k][1], 0.0))
        chosen[nearest].append(word)
    return chosen


def all_candidates(recordings: list[Recording], model: WhisperModel) -> list[dict[str, object]]:
    found = []
    for recording in recordings:
        spans = speech_spans(recording.audio)
        words = words_per_span(recording, spans, model)
        for first, last, start, end in candidate_cuts(recording.audio, spans):
            found.append({
                "recording": recording.name, "start": start, "end": end, "language": recording.language,
                "reference": " ".join(w for k in range(first, last + 1) for w in words[k]),
                "reference_kind": recording.reference_kind,
            })
    return found


def select(candidates: list[dict[str, object]], count: int) -> list[dict[str, object]]:
    """`count` candidates: all of them in a fixed pseudo-random order, again as often as needed (each is
    used as often as any other, give or take one)."""
    order = list(candidates)
    random.Random(SEED).shuffle(order)
    return [order[i % len(order)] for i in range(count)]


# ---------------------------------------------------------------- the cached corpus


def _build(directory: Path, recordings: list[Recording], count: int, prefix: str) -> list[Clip]:
    model = WhisperModel(str(b.MODELS / "base"), device="cpu", compute_type="int8", cpu_threads=1)
    candidates = all_candidates(recordings, model)
    chosen = select(candidates, count) if count else candidates
    audio = {recording.name: recording.audio for recording in recordings}
    clips = []
    directory.mkdir(parents=True, exist_ok=True)
    for i, c in enumerate(chosen):
        start, end = float(c["start"]), float(c["end"])  # type: ignore[arg-type]
        name = f"{prefix}{i:03d}_{c['recording']}_{start:.2f}-{end:.2f}"
        path = b.write_flac(directory / f"{name}.flac", b.cut(audio[str(c["recording"])], start, end))
        clips.append(Clip(name, str(c["recording"]), start, end, str(c["reference"]), str(c["reference_kind"]),
                          str(c["language"]), path))
    manifest = [{**asdict(clip), "path": clip.path.name} for clip in clips]
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return clips


def _cached(key: str, build: Callable[[Path], list[Clip]]) -> list[Clip]:
    directory = CACHE / f"short-clips-{RECIPE}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"
    manifest = directory / "manifest.json"
    if manifest.is_file():
        entries = json.loads(manifest.read_text(encoding="utf-8"))
        clips = [Clip(**{**entry, "path": directory / entry["path"]}) for entry in entries]
        if all(clip.path.is_file() for clip in clips):
            return clips
    return build(directory)


def english_clips(count: int = 116) -> list[Clip]:
    """The benchmark's corpus: `count` English clips, in a fixed order."""
    return _cached(f"en {count}", lambda d: _build(d, english_recordings(), count, "en"))


def german_clips() -> list[Clip]:
    """Every 2-6 s candidate clip of the German half of multilingual.mp3 (no reference texts)."""
    return _cached("de all", lambda d: _build(d, [german_recording()], 0, "de"))


if __name__ == "__main__":
    corpus = english_clips()
    print(f"{len(corpus)} clips, {sum(c.seconds for c in corpus):.1f} s, "
          f"{len({(c.recording, c.start, c.end) for c in corpus})} distinct, in {corpus[0].path.parent}")
    for clip in corpus:
        print(f"  {clip.name:40} {clip.seconds:5.2f} s  [{clip.reference_kind}] {clip.reference}")
