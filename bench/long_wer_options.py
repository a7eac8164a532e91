"""Why speaches' WER is lower on the long file: its batched-pipeline options against earshot's, one at a time.

Run: node --import tsx scripts/run-python.ts bench/long_wer_options.py [--threads 1] [--rounds 1] [--gap 1]

The 321.6 s file of bench/long_file.py, the bundled base model, int8, in this process. Each variant is
faster-whisper's BatchedInferencePipeline (batch 8, beam 5, language detected, as both servers' default
request); what changes:

  earshot     earshot's long-audio default: VAD chunks as faster-whisper 1.2 builds them (the speech of
              several VAD segments cut out and joined end to end, up to 30 s), timestamp tokens on;
  no-ts       the same without timestamp tokens (speaches' default: one segment per chunk);
  spans       chunks as speaches builds them (faster-whisper 1.1's merge_segments: the audio from the
              first VAD segment's start to the last one's end, silences inside kept, up to 30 s), given as
              clip_timestamps; timestamp tokens on;
  spans-no-ts speaches' pipeline (spans, no timestamp tokens) with faster-whisper 1.2's VAD model.

Prints each variant's WER against the reference, its segment count and its CPU and wall time. Not a test.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib as b

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worker"))
from faster_whisper import BatchedInferencePipeline, WhisperModel  # noqa: E402
from faster_whisper.audio import decode_audio  # noqa: E402
from faster_whisper.vad import VadOptions, get_speech_timestamps  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def speech_spans(audio: Any, max_seconds: float = 30.0) -> list[dict[str, float]]:
    """faster-whisper 1.1's (and speaches') merge_segments over the default VAD: spans in seconds."""
    options = VadOptions(max_speech_duration_s=max_seconds, min_silence_duration_ms=160)
    segments = get_speech_timestamps(audio, options)
    padding = options.speech_pad_ms * b.RATE // 1000
    limit = max_seconds * b.RATE
    spans: list[dict[str, float]] = []
    if not segments:
        return spans
    start, end = segments[0]["start"], 0
    for index, segment in enumerate(segments):
        if index > 0 and segment["start"] < segments[index - 1]["end"]:
            segment["start"] += padding
        if index < len(segments) - 1 and segment["end"] > segments[index + 1]["start"]:
            segment["end"] -= padding
        if segment["end"] - start > limit and end - start > 0:
            spans.append({"start": start / b.RATE, "end": end / b.RATE})
            start = segment["start"]
        end = segment["end"]
    spans.append({"start": start / b.RATE, "end": end / b.RATE})
    return spans


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", action="append", default=[], help="run only this variant (repeatable)")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds of silence between the recordings (default 1)")
    args = parser.parse_args()
    b.print_machine("long file: batched-pipeline options and WER")
    model = WhisperModel(str(b.MODELS / "base"), device="cpu", compute_type="int8", cpu_threads=args.threads)
    with tempfile.TemporaryDirectory(prefix="earshot-bench-") as tmp:
        path, reference, duration = b.long_recording(Path(tmp), 300.0, args.gap)
        audio = decode_audio(str(path))
    print(f"file: {duration:.1f} s, {len(b.normalise(reference))} reference words")
    fallback = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    variants: dict[str, dict[str, Any]] = {
        "earshot": {"without_timestamps": False},
        "no-ts": {"without_timestamps": True},
        "spans": {"without_timestamps": False, "spans": True},
        "spans-no-ts": {"without_timestamps": True, "spans": True},
    }
    for round_ in range(1, args.rounds + 1):
        for name, variant in variants.items():
            if args.only and name not in args.only:
                continue
            options = dict(variant)
            extra: dict[str, Any] = {}
            cpu, wall = cpu_seconds(), time.monotonic()
            if options.pop("spans", False):
                extra["clip_timestamps"] = speech_spans(audio)
            segments, info = BatchedInferencePipeline(model).transcribe(
                audio, batch_size=8, temperature=fallback, **options, **extra)
            segments = list(segments)
            text = "".join(segment.text for segment in segments)
            print(f"round {round_} {name:12} WER {100 * b.wer(reference, text):5.2f} %  {len(segments):3} segments  "
                  f"chunks {len(extra.get('clip_timestamps', [])) or '-'}  cpu {cpu_seconds() - cpu:5.1f} s  "
                  f"wall {time.monotonic() - wall:5.1f} s  load {b.loadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
