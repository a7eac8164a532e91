"""Long audio's subtitles: the batched long-audio path against sequential decoding, on one file.

Run: node --import tsx scripts/run-python.ts bench/long_subtitles.py [--seconds 220] [--threads 2]

Builds a file of at least --seconds from test/audio (as bench/long_file.py does: jfk, the English part
of multilingual.mp3, hotwords, stereo_diarization mixed to mono, 1 s of silence between them, repeated)
and runs it through the engine worker's own job path (earshot_worker.transcribe.run_job) with the bundled
`base` model, int8:

  sequential   long-audio batching off (EARSHOT_LONG_AUDIO_BATCH_SIZE=0), earshot's default request
  batched      the default long-audio path (batch 8), earshot's default request
  batched-nots the same with without_timestamps=true (what the batched path did before it asked for
               timestamp tokens)

and prints, per method: time, segments (= srt cues), mean and longest segment length, the share of
segments that end in punctuation and start with a capital, and the word error rate against the
reference text and against sequential decoding. Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


import benchlib as b

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worker"))
from earshot_worker.transcribe import Job, LongAudioBatching, load_model, run_job  # noqa: E402

GAP = 1.0


def build(directory: Path, seconds: float) -> tuple[Path, str, float]:
    return b.long_recording(directory, seconds, GAP)


def run(model, path: Path, batching: LongAudioBatching, options: dict) -> tuple[float, list[dict]]:
    messages: list[dict] = []
    started = time.monotonic()
    run_job(model, Job("bench", str(path), dict(options)), messages.append, long_audio=batching)
    elapsed = time.monotonic() - started
    errors = [m for m in messages if m["type"] == "error"]
    if errors:
        raise RuntimeError(errors[0])
    return elapsed, [m["segment"] for m in messages if m["type"] == "segment"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=220.0, help="shortest length of the file (default 220)")
    parser.add_argument("--threads", type=int, default=2, help="CTranslate2 threads (default 2)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per method, alternating; median time (default 2)")
    args = parser.parse_args()
    b.print_machine("long audio subtitles: batched long-audio path vs sequential (base, int8)")
    model = load_model(str(b.MODELS / "base"), "cpu", "int8", args.threads, None, True)
    with tempfile.TemporaryDirectory() as directory:
        path, reference, seconds = build(Path(directory), args.seconds)
        print(f"file: {seconds:.1f} s")
        # earshot's default request sends these (see src/openai/transcription-request.ts).
        request = {"task": "transcribe", "temperature": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]}
        methods = [
            ("sequential", LongAudioBatching(0), request),
            ("batched", LongAudioBatching(8, 60.0), request),
            ("batched-nots", LongAudioBatching(8, 60.0), {**request, "without_timestamps": True}),
        ]
        times: dict[str, list[float]] = {name: [] for name, _, _ in methods}
        cpu: dict[str, list[float]] = {name: [] for name, _, _ in methods}
        last: dict[str, list[dict]] = {}
        for _ in range(args.rounds):
            for name, batching, options in methods:
                window = b.CpuWindow()
                elapsed, segments = run(model, path, batching, options)
                window.stop()
                print(f"  {name}: {elapsed:.1f} s ({window.note()})")
                times[name].append(elapsed)
                # CPU time of this process: the work done, less sensitive than wall time to other load.
                cpu[name].append(window.own_cores * window.seconds)
                last[name] = segments  # the decode is deterministic: every round gives the same segments
        results = {name: (statistics.median(times[name]), segments) for name, segments in last.items()}
        sequential_text = " ".join(s["text"].strip() for s in results["sequential"][1])
        for name in times:
            print(f"{name}: median {statistics.median(times[name]):.1f} s wall, "
                  f"{statistics.median(cpu[name]):.1f} s CPU "
                  f"({statistics.median(cpu[name]) / statistics.median(cpu['sequential']):.3f}× sequential's CPU)")
        print(f"{'method':<13} {'time':>7} {'×seq':>5} {'cues':>5} {'mean s':>7} {'max s':>6} "
              f"{'end .?!,':>8} {'Cap':>5} {'marks/100w':>10} {'WER ref':>8} {'WER seq':>8}")
        for name, (elapsed, segments) in results.items():
            lengths = [s["end"] - s["start"] for s in segments]
            texts = [s["text"].strip() for s in segments if s["text"].strip()]
            punct = sum(t[-1] in ".?!," for t in texts) / len(texts)
            caps = sum(t[0].isupper() for t in texts) / len(texts)
            text = " ".join(texts)
            marks = 100 * sum(text.count(mark) for mark in ".?!,") / len(text.split())
            print(f"{name:<13} {elapsed:6.1f}s {elapsed / results['sequential'][0]:5.3f} {len(segments):5d} "
                  f"{statistics.mean(lengths):7.1f} {max(lengths):6.1f} {punct:8.0%} {caps:5.0%} {marks:10.1f} "
                  f"{b.wer(reference, text):8.1%} {b.wer(sequential_text, text):8.1%}")
        for name, (_, segments) in results.items():
            print(f"{name}, first cues: " + " | ".join(s["text"].strip() for s in segments[:3]))


if __name__ == "__main__":
    main()
