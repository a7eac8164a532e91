"""Packing short clips into shared windows (worker/earshot_worker/packing.py) against decoding them one by one.

Run: node --import tsx scripts/run-python.ts bench/packing.py [--set short|mixed] [--model base]
     [--threads 2] [--rounds 2] [--gap 0.6] [--fit-window]

Two sets of English clips: `short` (default), 14 clips of 2.4-5.6 s cut between words (jfk.flac's three
phrases, hotwords.mp3, the left and right voices of stereo_diarization.wav, the English part of
multilingual.mp3 in 8 pieces), like the short requests of issue 14's probe; `mixed`, the clips of
benchlib.short_clips of at most 10 s (3-10 s, several cut in the middle of a word), runs them in this process through the worker's own job paths with
the bundled model, int8, language given, earshot's default temperatures: one by one (run_job), then
all together as one transcribe_batch (run_packed, EARSHOT_PACK_CLIP_SECONDS 10). Prints, per method, the
CPU time of this process (the steadier measure on a shared machine) and the wall time, how many clips
were decoded alone again, and the word error rate of the packed transcripts against the one-by-one
ones. --fit-window also runs the clips one by one with the worker's fit_window (the encoder sees each
clip's window fitted to its content), for comparison. Not a test.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import benchlib as b

sys.path.insert(0, str(b.ROOT / "worker"))

from earshot_worker import packing  # noqa: E402
from earshot_worker.transcribe import Job, LongAudioBatching, decode, load_model, run_job  # noqa: E402

OPTIONS = {"task": "transcribe", "language": "en", "temperature": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]}


class Fallbacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "alone again" in record.getMessage():
            self.count += 1


def transcripts(messages: list[dict]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for message in messages:
        if message["type"] == "segment":
            texts[message["job"]] = texts.get(message["job"], "") + message["segment"]["text"]
    return texts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="base")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fit-window", action="store_true")
    parser.add_argument("--set", choices=["short", "mixed"], default="short")
    parser.add_argument("--gap", type=float, default=packing.GAP_SECONDS)
    args = parser.parse_args()

    b.print_machine("packing probe")
    folder = Path(tempfile.mkdtemp(prefix="earshot-packing-"))
    packing.GAP_SECONDS = args.gap
    clips = short_set(folder) if args.set == "short" else [
        path for path, _ in b.short_clips(folder) if "german" not in path.name and b.load_seconds(path) <= 10.0]
    print(f"{len(clips)} clips, {sum(b.load_seconds(path) for path in clips):.1f} s of audio")

    model = load_model(str(b.MODELS / args.model), "cpu", "int8", args.threads, None, True)
    fallbacks = Fallbacks()
    logging.getLogger("earshot_worker").addHandler(fallbacks)
    logging.getLogger("earshot_worker").setLevel(logging.INFO)

    def jobs(extra: dict[str, object]) -> list[Job]:
        return [Job(path.name, str(path), {**OPTIONS, **extra}) for path in clips]  # type: ignore[typeddict-item]

    def packed(extra: dict[str, object]) -> list[dict]:
        messages: list[dict] = []
        packing.run_packed(model, jobs(extra), messages.append, float("inf"), LongAudioBatching(), 10.0)
        return messages

    methods = {"one by one": lambda: _alone_decoded(model, jobs({}), audio), "packed": lambda: packed({})}
    if args.fit_window:
        # For comparison: the worker's other way to spend less on a short clip's window (live turns use it).
        methods["one by one+fit_window"] = lambda: _alone_decoded(model, jobs({"fit_window": True}), audio)
    # Audio decoding is the same for every method: decoded once, outside the timing.
    audio = {str(path): decode(str(path), float("inf")) for path in clips}
    packing.decode = lambda path, _limit: audio[path]  # type: ignore[assignment]
    original_run_job = run_job
    packing.run_job = lambda model_, job, send, limit, long_audio, samples=None: original_run_job(  # type: ignore[assignment]
        model_, job, send, limit, long_audio, audio[job.audio] if samples is None else samples)

    reference: dict[str, str] = {}
    for round_number in range(args.rounds):
        for name, method in methods.items():
            fallbacks.count = 0
            cpu, wall = time.process_time(), time.monotonic()
            messages = method()
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            texts = transcripts(messages)
            if name == "one by one":
                reference = texts
            errors = sum(b.word_errors(reference[job], texts.get(job, ""))[0] for job in reference)
            words = sum(len(b.normalise(text)) for text in reference.values())
            print(f"round {round_number + 1} {name:18} cpu {cpu:6.1f} s  wall {wall:6.1f} s  "
                  f"alone again {fallbacks.count:2}  WER vs one by one {100 * errors / max(1, words):.2f} %  "
                  f"load {b.loadavg()}")
    return 0


def short_set(folder: Path) -> list[Path]:
    jfk, license_text = b.load("jfk.flac"), b.load("multilingual.mp3")
    pieces = [b.cut(jfk, start, end) for start, end in [(0.0, 2.4), (2.4, 7.5), (7.5, None)]]
    pieces += [b.load("hotwords.mp3"), b.cut(b.load_channel("stereo_diarization.wav", 0), 0, 5.5),
               b.cut(b.load_channel("stereo_diarization.wav", 1), 0, 3)]
    # Between words, by base's word timestamps.
    cuts = [0.0, 4.82, 9.64, 14.7, 19.22, 23.88, 26.5, b.MIT_EN_END_SECONDS]
    pieces += [b.cut(license_text, start, end) for start, end in zip(cuts, cuts[1:])]
    return [b.write_flac(folder / f"{i:02d}.flac", piece) for i, piece in enumerate(pieces)]


def _alone_decoded(model: object, jobs: list[Job], audio: dict[str, object]) -> list[dict]:
    messages: list[dict] = []
    for job in jobs:
        run_job(model, job, messages.append, audio=audio[job.audio])  # type: ignore[arg-type]
    return messages


if __name__ == "__main__":
    sys.exit(main())
