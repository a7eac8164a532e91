"""Diarization quality and cost, on real voices with known truth (results in bench/README.md).

Run: node --import tsx scripts/run-python.ts bench/diarization.py [--rounds N] [--threshold X]
     node --import tsx scripts/run-python.ts bench/diarization.py --cost [--rounds N]

Voices: the AMI meeting excerpts (CC BY 4.0; 13 × 30 s) and the two-speaker sample that the pyannote.audio
4.0.7 source distribution on PyPI ships with their speaker turns (RTTM files), downloaded once by pip
(pinned by hash) into .cache/bench/; and test/audio's voices (JFK; the two speakers of
stereo_diarization.wav). A voice takes part if it has a reference clip of 2 s or more and 5 s of speech
besides: 8 do, split in two groups of 4.

1. Assembled conversations (2, 3 and 4 speakers, up to 60 s): pieces of single-speaker stretches (the
   RTTM turns minus everybody else's) one after another, with pauses of 0.2–0.8 s, so the truth is
   exact. Known speakers: a reference clip of each that the conversation does not use. The clustering
   threshold is chosen on the first group's conversations (lowest mean DER) and reported on the
   second's (held out: other speakers, other conversations).
2. The real recordings as they are (overlapping speech, short turns): DER against their RTTM.

Metrics, by pyannote.metrics: DER (missed speech + false alarm + confusion over the reference speech,
the best one-to-one mapping of speakers) with 0.25 s each side of every reference boundary unscored, as
NIST's md-eval `-c 0.25` (`DiarizationErrorRate(collar=0.5)`: pyannote's collar is the whole width), and
with ±0.125 s (`collar=0.25`); the number of speakers found; with references, the share of speech time
given the right name (`IdentificationErrorRate`'s correct / total: no mapping, no collar).
--cost: the time diarized_json adds to a json transcription of a 60 s file, through a real server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate
from pyannote.metrics.identification import IdentificationErrorRate

from benchlib import (RATE, CpuWindow, Earshot, fetch_sdist, load, load_channel, loadavg, long_recording, machine_summary, median,
                      multipart, wait_for_quiet, write_flac)
from earshot_worker import diarize as diarization
from earshot_worker.speaker_model import default_directory
from earshot_worker.transcribe import decode

DEFAULT_THRESHOLD = diarization.MERGE_SIMILARITY

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
SDIST_SHA256 = "3a903dfb5ca711d134cc2522561c9158b186836f5d62e8a57c46c6648e8a8229"
DATA = CACHE / "pyannote_audio-4.0.7"
# Seconds each side of a reference boundary, as NIST's md-eval `-c 0.25` (pyannote.metrics: collar=0.5).
COLLAR = 0.25

Interval = tuple[float, float, str]  # start, end, speaker


def fetch_data() -> Path:
    """The pyannote.audio source distribution's AMI excerpts and sample, by pip (pinned), once."""
    if not (DATA / "tests" / "data" / "debug.test.rttm").is_file():
        fetch_sdist("pyannote.audio==4.0.7", SDIST_SHA256, CACHE,
                    lambda name: "/tests/data/" in name or "/audio/sample/" in name)
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
    reference: np.ndarray  # a known-speaker clip, 2–10 s, that no conversation uses
    pieces: list[np.ndarray]  # the rest of the voice's speech, in pieces of at most PIECE_SECONDS

    @property
    def seconds(self) -> float:
        return sum(piece.size for piece in self.pieces) / RATE


PIECE_SECONDS = 6.0
# A voice takes part when its reference lasts at least 2 s and it has this much speech besides.
MIN_VOICE_SECONDS = 5.0


def voice(speaker: str, clips: list[np.ndarray]) -> Voice:
    """The reference: the start of the longest clip, 40 % of the voice's speech (2–10 s); the rest cut
    into pieces (of at least 1 s)."""
    total = sum(clip.size for clip in clips)
    longest = int(np.argmax([clip.size for clip in clips]))
    length = min(clips[longest].size, int(np.clip(0.4 * total, 2 * RATE, 10 * RATE)))
    rest = [clip for i, clip in enumerate(clips) if i != longest] + [clips[longest][length + RATE // 10:]]
    step = int(PIECE_SECONDS * RATE)
    pieces = [clip[i:i + step] for clip in rest for i in range(0, clip.size, step)]
    return Voice(speaker, clips[longest][:length], [piece for piece in pieces if piece.size >= RATE])


def voices(data: Path) -> list[Voice]:
    """The voices with enough speech: single-speaker stretches of the AMI excerpts and of the sample,
    JFK and the two voices of stereo_diarization.wav."""
    pool: dict[str, list[np.ndarray]] = {}
    for _, (wav, turns) in recordings(data).items():
        audio = decode(str(wav), 1e9)
        for start, end, speaker in single_speaker_stretches(turns):
            pool.setdefault(speaker, []).append(audio[int(start * RATE):int(end * RATE)])
    pool["JFK"] = [load("jfk.flac")]
    pool["stereo-left"] = [load_channel("stereo_diarization.wav", 0)]
    pool["stereo-right"] = [load_channel("stereo_diarization.wav", 1)]
    found = [voice(speaker, clips) for speaker, clips in sorted(pool.items())]
    return [v for v in found if v.reference.size >= 2 * RATE and v.seconds >= MIN_VOICE_SECONDS]


# The voices split in two, each with women and men and voices of several recordings: the threshold is
# chosen on conversations of the first group's voices and reported on the second's.
TUNING_VOICES = ("FEE078", "MEE009", "MÉO069", "speaker90")
HELD_OUT_VOICES = ("FEE083", "MEE012", "JFK", "speaker91")


@dataclass
class Conversation:
    name: str
    audio: np.ndarray
    truth: list[Interval]
    references: dict[str, np.ndarray]

    @property
    def seconds(self) -> float:
        return self.audio.size / RATE


def assemble(group: list[Voice], speakers: int, seconds: float, rng: np.random.Generator, name: str) -> Conversation:
    """Turns of `speakers` voices of the group (pieces of their speech, none used twice), none twice in a
    row, pauses of 0.2–0.8 s, up to `seconds` long (less when the voices run out of speech)."""
    chosen = [group[i] for i in rng.choice(len(group), size=speakers, replace=False)]
    queues = {v.speaker: [v.pieces[i] for i in rng.permutation(len(v.pieces))] for v in chosen}
    parts: list[np.ndarray] = []
    truth: list[Interval] = []
    position, previous = 0.0, None
    while position < seconds:
        candidates = [s for s in queues if s != previous and queues[s]]
        if not candidates:
            break
        # Every voice speaks once first, then at random.
        speaker = candidates[0] if len(truth) < speakers else candidates[int(rng.integers(len(candidates)))]
        clip = queues[speaker].pop()
        if len(truth) < speakers:
            queues[speaker] = queues.pop(speaker)  # to the back of the first round
        pause = np.zeros(int(rng.uniform(0.2, 0.8) * RATE), dtype=np.float32)
        parts += [pause, clip]
        start = position + pause.size / RATE
        truth.append((start, start + clip.size / RATE, speaker))
        position = start + clip.size / RATE
        previous = speaker
    audio = np.concatenate(parts + [np.zeros(RATE // 2, dtype=np.float32)])
    return Conversation(name, audio, truth, {v.speaker: v.reference for v in chosen})


def annotation(intervals: list[Interval]) -> Annotation:
    turns = Annotation()
    for index, (start, end, speaker) in enumerate(intervals):
        turns[Segment(start, end), index] = speaker
    return turns


def der(truth: list[Interval], hypothesis: list[Interval], seconds: float, collar: float = COLLAR) -> float:
    """pyannote.metrics' diarization error rate (missed speech + false alarm + confusion, over the reference
    speech; the best one-to-one mapping of speakers) over the whole recording, with `collar` seconds on
    each side of every reference boundary left unscored (pyannote's `collar` is the whole width)."""
    metric = DiarizationErrorRate(collar=2 * collar)
    return float(metric(annotation(truth), annotation(hypothesis), uem=Timeline([Segment(0, seconds)])))


def named_accuracy(truth: list[Interval], hypothesis: list[Interval], seconds: float) -> float:
    """The share of reference speech time given the reference speaker's name (no mapping, no collar):
    pyannote.metrics' identification error rate's `correct` over `total`."""
    components = IdentificationErrorRate()(annotation(truth), annotation(hypothesis),
                                           uem=Timeline([Segment(0, seconds)]), detailed=True)
    return float(components["correct"] / components["total"]) if components["total"] else 0.0


def turns(result: diarization.Diarization) -> list[Interval]:
    return [(turn.start, turn.end, turn.speaker) for turn in result.turns]


@dataclass
class Prepared:
    """A conversation with its embeddings and its known speakers' reference embeddings (computed once,
    clustered at each threshold)."""
    conversation: Conversation
    speech: diarization.EmbeddedSpeech
    references: dict[str, np.ndarray]


def prepare(diarizer: diarization.Diarizer, conversations: list[Conversation]) -> list[Prepared]:
    prepared = []
    for conversation in conversations:
        references = {}
        for name, clip in conversation.references.items():
            embedding = diarizer.reference(clip)
            assert embedding is not None, name
            references[name] = embedding
        prepared.append(Prepared(conversation, diarizer.embed(conversation.audio), references))
    return prepared


@dataclass
class Scores:
    der: float  # ±COLLAR
    der_narrow: float  # pyannote.metrics' collar=0.25: ±0.125 s
    count: int
    der_exact: float  # with num_speakers
    named: float  # names right, with references


def score(item: Prepared, speakers: int) -> Scores:
    conversation, speech = item.conversation, item.speech
    found = turns(diarization.speakers_of(speech, diarization.SpeakerCount(), {}))
    exact = turns(diarization.speakers_of(speech, diarization.SpeakerCount(exact=speakers), {}))
    named = turns(diarization.speakers_of(speech, diarization.SpeakerCount(), item.references))
    return Scores(
        der(conversation.truth, found, conversation.seconds),
        der(conversation.truth, found, conversation.seconds, COLLAR / 2),
        len({speaker for _, _, speaker in found}),
        der(conversation.truth, exact, conversation.seconds),
        named_accuracy(conversation.truth, named, conversation.seconds),
    )


def conversations(group: list[Voice], rounds: int, seed: int) -> dict[int, list[Conversation]]:
    rng = np.random.default_rng(seed)
    return {speakers: [assemble(group, speakers, 60.0, rng, f"{speakers}spk-{round_}") for round_ in range(rounds)]
            for speakers in (2, 3, 4)}


def report(title: str, prepared: dict[int, list[Prepared]]) -> None:
    print(f"\n{title}\n  speakers | DER ±{COLLAR} s (±{COLLAR / 2} s) | speakers counted right | DER with num_speakers | "
          "names right, with references")
    for speakers, items in prepared.items():
        scores = [score(item, speakers) for item in items]
        ders, named = [x.der for x in scores], [x.named for x in scores]
        counts = [x.count for x in scores]
        seconds = np.mean([item.conversation.seconds for item in items])
        print(f"  {speakers} × {len(items)} ({seconds:.0f} s on average) | {100 * np.mean(ders):.1f} % "
              f"(worst {100 * max(ders):.1f} %) ({100 * np.mean([x.der_narrow for x in scores]):.1f} %) | "
              f"{sum(c == speakers for c in counts)}/{len(counts)} {counts} | "
              f"{100 * np.mean([x.der_exact for x in scores]):.1f} % | "
              f"{100 * np.mean(named):.1f} % (worst {100 * min(named):.1f} %)", flush=True)


def tune(prepared: dict[int, list[Prepared]], thresholds: list[float]) -> float:
    """The threshold with the lowest mean DER (speakers not given) over the conversations."""
    print("\nthreshold choice (tuning voices): mean DER, speakers not given | counted right")
    results = {}
    for threshold in thresholds:
        diarization.MERGE_SIMILARITY = threshold
        scores = {k: [score(item, k) for item in items] for k, items in prepared.items()}
        mean = float(np.mean([x.der for values in scores.values() for x in values]))
        right = sum(x.count == k for k, values in scores.items() for x in values)
        total = sum(len(values) for values in scores.values())
        results[threshold] = mean
        print(f"  {threshold:.2f}: {100 * mean:5.1f} % | {right}/{total}", flush=True)
    best = min(results, key=lambda t: (round(results[t], 4), abs(t - 0.65)))
    diarization.MERGE_SIMILARITY = best
    return best


def quality(diarizer: diarization.Diarizer, data: Path, rounds: int, thresholds: list[float]) -> None:
    pool = {v.speaker: v for v in voices(data)}
    print(f"voices with enough speech: {', '.join(f'{v.speaker} {v.seconds:.0f} s' for v in pool.values())}")
    tuning = {k: prepare(diarizer, items) for k, items in
              conversations([pool[name] for name in TUNING_VOICES], rounds, 20240).items()}
    held_out = {k: prepare(diarizer, items) for k, items in
                conversations([pool[name] for name in HELD_OUT_VOICES], rounds, 20250).items()}
    if len(thresholds) > 1:
        chosen = tune(tuning, thresholds)
        print(f"  chosen: {chosen:.2f} (code: {DEFAULT_THRESHOLD:.2f})")
    report(f"tuning voices ({', '.join(TUNING_VOICES)}), threshold {diarization.MERGE_SIMILARITY:.2f}", tuning)
    report(f"held-out voices ({', '.join(HELD_OUT_VOICES)}), threshold {diarization.MERGE_SIMILARITY:.2f}", held_out)
    print("\nreal recordings (AMI excerpts, overlapping speech; pyannote.audio's sample), as they are:")
    all_truth = weighted = 0.0
    for uri, (wav, truth) in recordings(data).items():
        audio = decode(str(wav), 1e9)
        found = turns(diarizer.diarize(audio))
        value = der(truth, found, audio.size / RATE)
        speech = sum(e - s for s, e, _ in truth)
        all_truth += speech
        weighted += value * speech
        print(f"  {uri}: {len({s for _, _, s in truth})} speakers, found {len({s for _, _, s in found})}, "
              f"DER {100 * value:.1f} %")
    print(f"  overall DER {100 * weighted / all_truth:.1f} %")
    jfk = diarizer.diarize(load("jfk.flac"))
    print(f"\njfk.flac: {len({t.speaker for t in jfk.turns})} speaker(s)")


def sixty_seconds(directory: Path) -> Path:
    """The first 60 s of benchlib's long recording of real speech (JFK, the MIT licence read aloud, the
    hotwords clip, the two voices of stereo_diarization.wav)."""
    path, _, _ = long_recording(directory, 60.0)
    return write_flac(directory / "sixty.flac", decode(str(path), 1e9)[:60 * RATE])


def cost(rounds: int) -> None:
    """The time diarized_json adds to a 60 s transcription, on one server with its defaults: json and
    diarized_json requests alternately, each timed whole (upload to answer), with the CPU time of the
    server and its workers; medians (the machine may be shared: each line says how busy it was)."""
    with tempfile.TemporaryDirectory() as scratch, Earshot(label="diarization cost") as server:
        path = sixty_seconds(Path(scratch))
        server.wait_ready()
        address = urlparse(server.url or "")

        def request(format_: str) -> dict[str, Any]:
            body, content_type = multipart(path, {"model": "whisper-1", "response_format": format_})
            connection = http.client.HTTPConnection(address.hostname, address.port, timeout=600)
            try:
                connection.request("POST", "/v1/audio/transcriptions", body, {"Content-Type": content_type})
                response = connection.getresponse()
                answer = json.loads(response.read())
            except OSError:
                print(f"  server exit code {server.process.poll()}; last log lines: {server.logs[-5:]}")
                raise
            assert response.status == 200, answer
            return dict(answer)

        request("diarized_json")  # loads the speaker encoder
        # Per format: wall seconds, and CPU seconds of the server and its workers (less sensitive to
        # other work on a shared machine than wall time).
        times: dict[str, list[tuple[float, float]]] = {"json": [], "diarized_json": []}
        for round_ in range(rounds):
            for format_ in times:
                wait_for_quiet(max_wait=60)
                window = CpuWindow()
                answer = request(format_)
                window.stop()
                cpu = window.own_cores * window.seconds
                speakers = len({s["speaker"] for s in answer.get("segments", [])})
                print(f"  round {round_ + 1} {format_:13} {window.seconds:6.2f} s, CPU {cpu:6.2f} s"
                      f"{f', {speakers} speakers' if speakers else ''} ({window.note()}, load {loadavg()})",
                      flush=True)
                times[format_].append((window.seconds, cpu))
        for index, what in ((0, "wall"), (1, "CPU")):
            plain = median(t[index] for t in times["json"])
            diarized = median(t[index] for t in times["diarized_json"])
            print(f"\n60 s file, medians of {rounds}, {what}: json {plain:.2f} s, diarized_json {diarized:.2f} s: "
                  f"diarization adds {diarized - plain:.2f} s = {100 * (diarized / plain - 1):.1f} % (target ≤ 25 %)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6, help="conversations per number of speakers (or --cost rounds)")
    parser.add_argument("--threshold", type=float, help="use this MERGE_SIMILARITY instead of choosing one")
    parser.add_argument("--min-share", type=float, help="override MIN_SPEAKER_SHARE")
    parser.add_argument("--model", type=Path, default=default_directory(), help="diarization model directory")
    parser.add_argument("--cost", action="store_true", help="measure the time diarization adds instead")
    args = parser.parse_args()
    print(machine_summary())
    if args.cost:
        cost(args.rounds)
        return
    if args.min_share is not None:
        diarization.MIN_SPEAKER_SHARE = args.min_share
    thresholds = [args.threshold] if args.threshold is not None else [round(0.55 + 0.01 * i, 2) for i in range(21)]
    diarization.MERGE_SIMILARITY = thresholds[0]
    quality(diarization.load_diarizer(args.model), fetch_data(), args.rounds, thresholds)


if __name__ == "__main__":
    main()
