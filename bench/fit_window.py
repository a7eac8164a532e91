"""What fit_window saves: a live turn's decode with Whisper's whole 30 s window against the window fitted to
the audio (the audio + 2 s, at least 5 s), through the worker's own run_job, in one process, alternating.

Run: node --import tsx scripts/run-python.ts bench/fit_window.py [--repeats 5] [--threads 1] [--cuts 3,5,8]
     node --import tsx scripts/run-python.ts bench/fit_window.py --quality

Audio: JFK cut after each of --cuts seconds (a turn as it grows); the bundled base model, int8, English.
Greedy (beam 1, temperature 0: a partial) and beam 5 (with the fallback temperatures: a final). Prints the
median wall and CPU time of each decode and whether the words (lowercase, no punctuation) are the same. It
waits for a quiet machine before each clip; CPU time is the figure to trust on a shared one. Not a test.

--quality: the words instead of the time, on 35 clips (JFK cut at 0.6 s and every second, the English half
of the licence reading every 2 s up to 28 s, the hotwords clip and the two-speaker clip every second): the
word differences of the fitted decodes from the whole-window ones, the decodes that repeat a run of words
back to back, and how often a fitted decode repeated itself and was decoded again whole.
"""

from __future__ import annotations

import argparse
import logging
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

import benchlib as b

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "worker"))
from earshot_worker.transcribe import Job, load_model, run_job  # noqa: E402

DECODES: dict[str, dict[str, Any]] = {
    "greedy": {"beam_size": 1, "temperature": [0.0]},
    "beam 5": {"beam_size": 5, "temperature": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]},
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def decode(model: Any, clip: Any, options: dict[str, Any]) -> tuple[float, float, str]:
    """One job through run_job: wall seconds, CPU seconds, its text."""
    sent: list[dict[str, Any]] = []
    cpu, wall = cpu_seconds(), time.perf_counter()
    run_job(model, Job(id="bench", audio="", options=options), sent.append, audio=clip)  # type: ignore[typeddict-item]
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    if sent[-1]["type"] != "done":
        raise RuntimeError(f"the decode failed: {sent[-1]}")
    return wall, cpu, "".join(m["segment"]["text"] for m in sent if m["type"] == "segment")


def repeats_words(words: list[str]) -> bool:
    """Some run of 2 or more words comes twice back to back, or one word three times."""
    for size in range(2, len(words) // 2 + 1):
        if any(words[i:i + size] == words[i + size:i + 2 * size] for i in range(len(words) - 2 * size + 1)):
            return True
    return bool(re.search(r"\b(\w+)( \1){2,}\b", " ".join(words)))


def quality(model: Any) -> None:
    redone = [0]

    class Redone(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            redone[0] += "repeats itself" in record.getMessage()

    logging.getLogger("earshot_worker").addHandler(Redone())
    logging.getLogger("earshot_worker").setLevel(logging.INFO)
    jfk, hotwords, stereo = b.load("jfk.flac"), b.load("hotwords.mp3"), b.load("stereo_diarization.wav")
    licence = b.cut(b.load("multilingual.mp3"), 0, b.MIT_EN_END_SECONDS)
    clips = ([(f"jfk {t}", b.cut(jfk, 0, t)) for t in [0.6, *range(1, 12)]]
             + [(f"licence {t}", b.cut(licence, 0, t)) for t in range(2, 29, 2)]
             + [(f"hotwords {t}", b.cut(hotwords, 0, t)) for t in range(1, 5)]
             + [(f"two speakers {t}", b.cut(stereo, 0, t)) for t in range(1, 6)])
    totals = {name: [0, 0, 0, 0] for name in DECODES}  # word differences, words, repeating whole, fitted
    for clip_name, clip in clips:
        for name, options in DECODES.items():
            whole, fitted = (b.normalise(decode(model, clip, {"language": "en", "fit_window": fit, **options})[2])
                             for fit in (False, True))
            errors, words = b.word_errors(" ".join(whole), " ".join(fitted))
            total = totals[name]
            total[0] += errors
            total[1] += words
            total[2] += repeats_words(whole)
            total[3] += repeats_words(fitted)
            if errors:
                print(f"{clip_name:16} {name:7} whole: {' '.join(whole)}\n{'':24} fitted: {' '.join(fitted)}",
                      flush=True)
    for name, (errors, words, whole_repeats, fitted_repeats) in totals.items():
        print(f"{name:7} fitted vs whole: {errors}/{words} words differ ({100 * errors / max(1, words):.1f} %); "
              f"decodes repeating words: whole {whole_repeats}/{len(clips)}, fitted {fitted_repeats}/{len(clips)}")
    print(f"fitted decodes that repeated themselves and were decoded again whole: {redone[0]}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cuts", default="3,5,8", help="seconds of JFK, comma-separated")
    parser.add_argument("--quality", action="store_true", help="compare the words on 35 clips instead")
    args = parser.parse_args()
    b.print_machine(f"fit_window, base int8, {args.threads} thread(s)"
                    + ("" if args.quality else f", median of {args.repeats}"))
    model = load_model(str(b.MODELS / "base"), "cpu", "int8", args.threads, None, False)
    if args.quality:
        quality(model)
        return 0
    jfk = b.load("jfk.flac")
    decode(model, b.cut(jfk, 0, 1.0), {"language": "en"})  # warm up
    print(f"{'clip':>5}  {'decode':7} {'whole window':>21}  {'fitted window':>21}  {'ratio':>5}  words")
    for cut in (float(value) for value in args.cuts.split(",")):
        clip = b.cut(jfk, 0, cut)
        b.wait_for_quiet()
        for name, options in DECODES.items():
            runs: dict[bool, list[tuple[float, float, str]]] = {False: [], True: []}
            window = b.CpuWindow()
            for _ in range(args.repeats):
                for fit in (False, True):
                    runs[fit].append(decode(model, clip, {"language": "en", "fit_window": fit, **options}))
            window.stop()
            wall = {fit: b.median(run[0] for run in runs[fit]) for fit in runs}
            cpu = {fit: b.median(run[1] for run in runs[fit]) for fit in runs}
            texts = {fit: runs[fit][0][2] for fit in runs}
            same = b.normalise(texts[False]) == b.normalise(texts[True])
            print(f"{cut:4.1f}s  {name:7} {wall[False]:5.2f} s (cpu {cpu[False]:5.2f} s)  "
                  f"{wall[True]:5.2f} s (cpu {cpu[True]:5.2f} s)  {wall[True] / wall[False]:5.2f}  "
                  f"{'same' if same else 'DIFFER: ' + repr(texts[False]) + ' / ' + repr(texts[True])}"
                  f"  [{window.note()}]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
