"""What the prompt cancel of batched decodes costs: faster-whisper's BatchedInferencePipeline against
earshot's CancellableBatchedPipeline (the same decode, its chunks encoded one at a time and decoded in steps
of about CANCEL_CHECK_SECONDS of work, so that a cancel takes effect between steps: transcribe.BatchSteps),
on the same audio, in one process, alternating.

Run: node --import tsx scripts/run-python.ts bench/cancellable_batches.py [--rounds 2] [--threads 2]
     [--cancel-seconds S ...]  (decode steps of about S seconds of work each; repeatable; default earshot's, 3)

Audio: JFK and the English half of multilingual.mp3 with 1 s of silence after each, four times (170 s);
the bundled base model, int8, batch 8, with timestamp tokens (earshot's long-audio default). Prints the CPU
and wall time of each decode; CPU time is the figure to compare on a shared machine. Not a test.
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np

import benchlib as b

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worker"))
from faster_whisper import BatchedInferencePipeline  # noqa: E402

from earshot_worker import transcribe  # noqa: E402
from earshot_worker.transcribe import CancellableBatchedPipeline, load_model  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cancel-seconds", type=float, action="append", default=[])
    args = parser.parse_args()
    cancel_seconds = args.cancel_seconds or [transcribe.CANCEL_CHECK_SECONDS]
    b.print_machine("cancellable batches")
    model = load_model(str(b.MODELS / "base"), "cpu", "int8", args.threads, None, False)
    jfk = b.load("jfk.flac")
    mit = b.cut(b.load("multilingual.mp3"), 0, b.MIT_EN_END_SECONDS)
    audio = np.concatenate([jfk, b.silence(1), mit, b.silence(1)] * 4)
    print(f"audio: {audio.size / b.RATE:.1f} s")
    for round_ in range(1, args.rounds + 1):
        for name in ["whole batches", *(f"steps of {seconds:g} s" for seconds in cancel_seconds)]:
            if name == "whole batches":
                pipeline = BatchedInferencePipeline(model)
            else:
                transcribe.CANCEL_CHECK_SECONDS = float(name.split()[2])
                pipeline = CancellableBatchedPipeline(model, threading.Event())
            cpu, wall = cpu_seconds(), time.monotonic()
            segments, _ = pipeline.transcribe(audio, batch_size=8, without_timestamps=False, language="en")
            count = len(list(segments))
            print(f"round {round_} {name:16} {count} segments  cpu {cpu_seconds() - cpu:5.1f} s  "
                  f"wall {time.monotonic() - wall:5.1f} s  load {b.loadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
