"""Diarization quality and cost, on real voices with known truth (results in bench/README.md).

Run: node --import tsx scripts/run-python.ts bench/diarization.py [--cost] [--threshold X]

Voices: the AMI meeting excerpts (CC BY 4.0; 13 × 30 s, 31 speakers) and the two-speaker sample that the
pyannote.audio 4.0.7 source distribution on PyPI ships with their speaker turns (RTTM files), downloaded
once by pip (pinned by hash) into .cache/bench/; and test/audio's voices (JFK; the two speakers of
stereo_diarization.wav).

1. Assembled conversations (2, 3 and 4 speakers, about 60 s each): single-speaker stretches of the AMI
   speakers (their RTTM turns minus everybody else's) put one after another, with short pauses, so the
   truth is exact. Known speakers: a reference clip (2–10 s) of each, from stretches the conversation
   does not use.
2. The real meetings as they are (overlapping speech, short turns): DER against their RTTM.

Metrics: DER (missed speech + false alarm + confusion over the reference speech) with a 0.25 s collar
around each reference boundary, the best one-to-one mapping of speakers, as pyannote.metrics computes it
(`DiarizationErrorRate(collar=0.5)`: pyannote's collar is the whole width); the number of speakers found;
with references, the share of speech time given the right name (no mapping). --cost: the time diarization
adds to transcribing a 60 s conversation through the worker's job path.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchlib import AUDIO, RATE, load, load_channel, machine_summary
from earshot_worker import diarize as diarization
from earshot_worker.speaker_model import default_directory
from earshot_worker.transcribe import decode

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
SDIST = "pyannote_audio-4.0.7.tar.gz"
SDIST_SHA256 = "3a903dfb5ca711d134cc2522561c9158b186836f5d62e8a57c46c6648e8a8229"
DATA = CACHE / "pyannote_audio-4.0.7"
COLLAR = 0.25
STEP = 0.01  # seconds per scoring frame

Interval = tuple[float, float, str]  # start, end, speaker


def fetch_data() -> Path:
    """The pyannote.audio source distribution's AMI excerpts and sample, by pip (pinned), once."""
    if (DATA / "tests" / "data" / "debug.test.rttm").is_file():
        return DATA
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(f"pyannote.audio==4.0.7 --hash=sha256:{SDIST_SHA256}\n", encoding="utf-8")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "--require-hashes", "-r", str(requirements), "-d", scratch], check=True)
        with tarfile.open(Path(scratch) / SDIST) as archive:
            wanted = [m for m in archive.getmembers()
                      if m.isfile() and ("/tests/data/" in m.name or "/audio/sample/" in m.name)]
            archive.extractall(CACHE, members=wanted, filter="data")
    return DATA


def read_rttm(path: Path) -> dict[str, list[Interval]]:
    turns: dict[str, list[Interval]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts and parts[0] == "SPEAKER":
            start, duration = float(parts[3]), float(parts[4])
            turns.setdefault(parts[1], []).append((start, start + duration, parts[7]))
    return turns


def recordings(data: Path) -> dict[str, tuple[Path, list[Interval]]]:
    """Each real recording with its reference turns."""
    found: dict[str, tuple[Path, list[Interval]]] = {}
    for rttm in sorted((data / "tests" / "data").glob("debug.*.rttm")):
        for uri, turns in read_rttm(rttm).items():
            wav = data / "tests" / "data" / f"{uri}.wav"
            if wav.is_file():
                found[uri] = (wav, turns)
    sample = data / "src" / "pyannote" / "audio" / "sample"
    found["sample"] = (sample / "sample.wav", read_rttm(sample / "sample.rttm")["sample"])
    return found


def single_speaker_stretches(turns: list[Interval], minimum: float = 1.0) -> list[Interval]:
    """The parts of each turn where nobody else speaks, at least `minimum` seconds long."""
    stretches = []
    for start, end, speaker in turns:
        pieces = [(start, end)]
        for other_start, other_end, other in turns:
            if other == speaker:
                continue
            pieces = [part for s, e in pieces for part in
                      ((s, min(e, other_start)), (max(s, other_end), e)) if part[1] - part[0] > 0]
        stretches += [(s + 0.05, e - 0.05, speaker) for s, e in pieces if e - s >= minimum + 0.1]
    return stretches


@dataclass
class Voice:
    speaker: str
    clips: list[np.ndarray]

    @property
    def seconds(self) -> float:
        return sum(clip.size for clip in self.clips) / RATE


def voices(data: Path) -> list[Voice]:
    pool: dict[str, list[np.ndarray]] = {}
    for _, (wav, turns) in recordings(data).items():
        audio = decode(str(wav), 1e9)
        for start, end, speaker in single_speaker_stretches(turns):
            pool.setdefault(speaker, []).append(audio[int(start * RATE):int(end * RATE)])
    pool["JFK"] = [load("jfk.flac")]
    pool["stereo-left"] = [load_channel("stereo_diarization.wav", 0)]
    pool["stereo-right"] = [load_channel("stereo_diarization.wav", 1)]
    return [Voice(speaker, clips) for speaker, clips in sorted(pool.items())]


@dataclass
class Conversation:
    name: str
    audio: np.ndarray
    truth: list[Interval]
    references: dict[str, np.ndarray]


def assemble(voices_: list[Voice], speakers: int, seconds: float, rng: np.random.Generator, name: str) -> Conversation:
    """Turns of `speakers` voices, none twice in a row, pauses of 0.2–0.8 s, about `seconds` long; each
    voice's reference is a clip the conversation does not use (its longest, cut to 2–10 s)."""
    # Voices with a reference of 2 s or more, and at least 5 s more.
    usable = [v for v in voices_ if len(v.clips) >= 2 and v.seconds - max(c.size for c in v.clips) / RATE >= 5
              and max(c.size for c in v.clips) >= 2 * RATE]
    chosen = [usable[i] for i in rng.choice(len(usable), size=speakers, replace=False)]
    references, queues = {}, {}
    for voice in chosen:
        longest = int(np.argmax([clip.size for clip in voice.clips]))
        references[voice.speaker] = voice.clips[longest][:10 * RATE]
        queues[voice.speaker] = [clip for i, clip in enumerate(voice.clips) if i != longest]
        rng.shuffle(queues[voice.speaker])
    parts: list[np.ndarray] = []
    truth: list[Interval] = []
    position, previous = 0.0, None
    order = list(queues)
    while position < seconds:
        candidates = [s for s in order if s != previous and queues[s]]
        if not candidates:
            break
        # Every voice speaks early on, then at random.
        speaker = candidates[0] if len(truth) < speakers else candidates[int(rng.integers(len(candidates)))]
        if len(truth) < speakers:
            order.remove(speaker)
            order.append(speaker)
        clip = queues[speaker].pop()[:int(rng.uniform(2.0, 8.0) * RATE)]
        pause = np.zeros(int(rng.uniform(0.2, 0.8) * RATE), dtype=np.float32)
        parts += [pause, clip]
        start = position + pause.size / RATE
        truth.append((start, start + clip.size / RATE, speaker))
        position = start + clip.size / RATE
        previous = speaker
    audio = np.concatenate(parts + [np.zeros(RATE // 2, dtype=np.float32)])
    return Conversation(name, audio, truth, references)


def frames(intervals: list[Interval], speakers: list[str], count: int) -> np.ndarray:
    """(count, len(speakers)) booleans: who speaks in each STEP frame."""
    grid = np.zeros((count, len(speakers)), dtype=bool)
    for start, end, speaker in intervals:
        grid[int(round(start / STEP)):int(round(end / STEP)), speakers.index(speaker)] = True
    return grid


def der(truth: list[Interval], hypothesis: list[Interval], collar: float = COLLAR) -> float:
    """Diarization error rate with a collar (seconds each side of every reference boundary, not scored)
    and the one-to-one speaker mapping that minimises it (as pyannote.metrics)."""
    end = max([e for _, e, _ in truth] + [e for _, e, _ in hypothesis])
    count = int(np.ceil(end / STEP)) + 1
    reference_speakers = sorted({s for _, _, s in truth})
    hypothesis_speakers = sorted({s for _, _, s in hypothesis})
    ref = frames(truth, reference_speakers, count)
    hyp = frames(hypothesis, hypothesis_speakers, count)
    scored = np.ones(count, dtype=bool)
    for start, stop, _ in truth:
        for boundary in (start, stop):
            scored[max(0, int(round((boundary - collar) / STEP))):int(round((boundary + collar) / STEP))] = False
    ref, hyp = ref[scored], hyp[scored]
    n_ref, n_hyp = ref.sum(axis=1), hyp.sum(axis=1)
    total = float(n_ref.sum())
    # Frames both say a pair speaks, for each (reference, hypothesis) pair.
    together = ref.astype(np.int64).T @ hyp.astype(np.int64)
    best = 0
    for chosen in itertools.permutations(range(len(hypothesis_speakers)), min(len(reference_speakers), len(hypothesis_speakers))):
        rows = range(len(reference_speakers)) if len(reference_speakers) <= len(hypothesis_speakers) else None
        if rows is not None:
            matched = sum(int(together[r, h]) for r, h in zip(rows, chosen))
        else:
            matched = max(sum(int(together[r, h]) for r, h in zip(refs, chosen))
                          for refs in itertools.permutations(range(len(reference_speakers)), len(chosen)))
        best = max(best, matched)
    # pyannote: error = sum over frames of max(n_ref, n_hyp) - min-correct.
    error = float(np.maximum(n_ref, n_hyp).sum()) - best
    return error / total if total else 0.0


def named_accuracy(truth: list[Interval], hypothesis: list[Interval]) -> float:
    """The share of reference speech time whose hypothesis speaker has the reference speaker's name."""
    end = max([e for _, e, _ in truth] + [e for _, e, _ in hypothesis])
    count = int(np.ceil(end / STEP)) + 1
    names = sorted({s for _, _, s in truth} | {s for _, _, s in hypothesis})
    ref, hyp = frames(truth, names, count), frames(hypothesis, names, count)
    speech = ref.any(axis=1)
    return float((ref & hyp).any(axis=1)[speech].mean())


def turns(result: diarization.Diarization) -> list[Interval]:
    return [(turn.start, turn.end, turn.speaker) for turn in result.turns]


def quality(diarizer: diarization.Diarizer, data: Path, rounds: int) -> None:
    pool = voices(data)
    print(f"voices: {len(pool)} speakers, {sum(v.seconds for v in pool):.0f} s of single-speaker speech")
    rng = np.random.default_rng(20240)
    print("\nassembled conversations (60 s): DER (0.25 s collar) | speakers found | with num_speakers | "
          "names right, with references")
    for speakers in (2, 3, 4):
        ders, exact_ders, counts, named = [], [], [], []
        for round_ in range(rounds):
            conversation = assemble(pool, speakers, 60.0, rng, f"{speakers}spk-{round_}")
            found = diarizer.diarize(conversation.audio)
            ders.append(der(conversation.truth, turns(found)))
            counts.append(len({t.speaker for t in found.turns}))
            exact = diarizer.diarize(conversation.audio, diarization.SpeakerCount(exact=speakers))
            exact_ders.append(der(conversation.truth, turns(exact)))
            known = [diarization.KnownSpeaker(name, clip) for name, clip in conversation.references.items()]
            named_result = diarizer.diarize_with_clips(conversation.audio, known=known)
            named.append(named_accuracy(conversation.truth, turns(named_result)))
        right = sum(c == speakers for c in counts)
        print(f"  {speakers} speakers × {rounds}: DER {100 * np.mean(ders):.1f} % (worst {100 * max(ders):.1f} %) | "
              f"right count {right}/{rounds} {counts} | DER {100 * np.mean(exact_ders):.1f} % | "
              f"names {100 * np.mean(named):.1f} % (worst {100 * min(named):.1f} %)")
    print("\nreal meetings (AMI excerpts, overlapping speech), as they are:")
    all_truth = 0.0
    weighted = 0.0
    for uri, (wav, truth) in recordings(data).items():
        audio = decode(str(wav), 1e9)
        found = diarizer.diarize(audio)
        value = der(truth, turns(found))
        speech = sum(e - s for s, e, _ in truth)
        all_truth += speech
        weighted += value * speech
        print(f"  {uri}: {len({s for _, _, s in truth})} speakers, found {len({t.speaker for t in found.turns})}, "
              f"DER {100 * value:.1f} %")
    print(f"  overall DER {100 * weighted / all_truth:.1f} %")
    jfk = diarizer.diarize(load("jfk.flac"))
    print(f"\njfk.flac: {len({t.speaker for t in jfk.turns})} speaker(s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6, help="conversations per number of speakers")
    parser.add_argument("--threshold", type=float, help="override MERGE_SIMILARITY")
    parser.add_argument("--min-share", type=float, help="override MIN_SPEAKER_SHARE")
    parser.add_argument("--model", type=Path, default=default_directory(), help="diarization model directory")
    args = parser.parse_args()
    if args.threshold is not None:
        diarization.MERGE_SIMILARITY = args.threshold
    if args.min_share is not None:
        diarization.MIN_SPEAKER_SHARE = args.min_share
    print(machine_summary())
    diarizer = diarization.load_diarizer(args.model)
    quality(diarizer, fetch_data(), args.rounds)


if __name__ == "__main__":
    main()
